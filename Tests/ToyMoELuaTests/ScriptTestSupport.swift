import Foundation
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// A script run into a fresh temporary directory, with its printed output captured.
struct ScriptTestResult {
    var directory: URL
    var result: JSONObject
    var stdout: String

    /// Collects print lines from any thread.
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func append(_ s: String) {
            lock.lock()
            lines.append(s)
            lock.unlock()
        }
        var text: String {
            lock.lock()
            defer { lock.unlock() }
            return lines.map { $0 + "\n" }.joined()
        }
    }

    static func temporaryDirectory(_ label: String = "toymoe-lua") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs a script file in place (so `toymoe.run_script` finds its neighbours).
    static func runFile(_ script: URL, params: [(String, String)] = [], seed: UInt64 = 0, jobs: Int = 1) throws -> ScriptTestResult {
        let outDir = try temporaryDirectory("toymoe-script").appendingPathComponent("out")
        let lines = Lines()
        let options = ScriptRunOptions(
            script: script, params: params, out: outDir, seed: seed, jobs: jobs, quiet: true, memoryLimit: 512 << 20,
            printSink: { lines.append($0) })
        let outcome = try ScriptRunner.run(options)
        return ScriptTestResult(directory: outDir, result: outcome.result?.objectValue ?? JSONObject(), stdout: lines.text)
    }

    /// Writes `source` to `test.lua` and runs it with `ScriptRunner` (quiet progress).
    static func run(
        _ source: String, params: [(String, String)] = [], seed: UInt64 = 0, jobs: Int = 1, out: URL? = nil,
        resume: Bool = false, shard: (Int, Int) = (0, 1), timeLimit: Double = 0, instructionLimit: UInt64 = 0,
        memoryLimit: Int = 512 << 20
    ) throws -> ScriptTestResult {
        let dir = try temporaryDirectory("toymoe-script")
        let script = dir.appendingPathComponent("test.lua")
        try source.write(to: script, atomically: true, encoding: .utf8)
        let outDir = out ?? dir.appendingPathComponent("out")
        let lines = Lines()
        let options = ScriptRunOptions(
            script: script, params: params, out: outDir, seed: seed, jobs: jobs, resume: resume, shard: shard,
            quiet: true, memoryLimit: memoryLimit, timeLimit: timeLimit, instructionLimit: instructionLimit,
            printSink: { lines.append($0) })
        let outcome = try ScriptRunner.run(options)
        return ScriptTestResult(directory: outDir, result: outcome.result?.objectValue ?? JSONObject(), stdout: lines.text)
    }
}
