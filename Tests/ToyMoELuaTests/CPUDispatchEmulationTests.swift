import Foundation
import Testing

/// The default binary on emulated CPUs (qemu user mode, installed by .ci/install on x86-64): on a CPU without AVX
/// (Nehalem) it must run and pick the baseline SIMD build; on an AVX2 CPU (Haswell) the AVX2 build; asking for AVX2
/// on Nehalem must be a clean error, never an illegal instruction. (Measured: a binary whose main module is built
/// for x86-64-v3 dies with SIGILL there; the kernel builds are separate modules chosen by a C CPU check instead.)
@Suite(.serialized) struct CPUDispatchEmulationTests {
    static let qemu = ["/usr/bin/qemu-x86_64", "/usr/local/bin/qemu-x86_64"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func train(cpu: String, extra: [String] = [], in dir: URL, out: String) throws -> CLITests.Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: qemu!)
        p.arguments = ["-cpu", cpu, CLITests.executable.path, "train", "--n-features", "40", "--n-hidden", "10",
                       "--steps", "10", "--batch-size", "128", "--out", out, "--quiet"] + extra
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "TOYMOE_KERNELS")
        p.environment = env
        let errURL = dir.appendingPathComponent("err-\(out)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        p.waitUntilExit()
        let killedBySignal = p.terminationReason == .uncaughtSignal
        return CLITests.Output(
            status: killedBySignal ? 128 + p.terminationStatus : p.terminationStatus, stdout: "",
            stderr: try String(contentsOf: errURL, encoding: .utf8))
    }

    static func kernelVariant(_ dir: URL, _ out: String) throws -> String {
        let data = try Data(contentsOf: dir.appendingPathComponent("\(out)/provenance.json"))
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return json?["kernel_variant"] as? String ?? ""
    }

    @Test("Emulated Nehalem (no AVX) runs simd-baseline, Haswell runs simd-avx2, forcing AVX2 on Nehalem is refused")
    func dispatchOnEmulatedCPUs() throws {
        #if arch(x86_64)
        guard Self.qemu != nil else {
            print("CPUDispatchEmulationTests: skipped (qemu-x86_64 not installed; .ci/install installs qemu-user)")
            return
        }
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-qemu")
        let old = try Self.train(cpu: "Nehalem", in: dir, out: "nehalem")
        #expect(old.status == 0, "Nehalem: exit \(old.status): \(old.stderr)")
        #expect(try Self.kernelVariant(dir, "nehalem").contains("simd-baseline"))
        let new = try Self.train(cpu: "Haswell", in: dir, out: "haswell")
        #expect(new.status == 0, "Haswell: exit \(new.status): \(new.stderr)")
        #expect(try Self.kernelVariant(dir, "haswell").contains("simd-avx2"))
        let forced = try Self.train(cpu: "Nehalem", extra: ["--kernels", "simd-avx2"], in: dir, out: "forced")
        #expect(forced.status != 0 && forced.status < 128, "forced AVX2 on Nehalem: exit \(forced.status)")
        #expect(forced.stderr.contains("needs an instruction set this CPU lacks"), "\(forced.stderr)")
        #endif
    }
}
