import Foundation
import Testing
import ToyMoEIO
import ToyMoEKernels

/// `toymoe bench`: the harness runs, writes well-formed JSON and its help. No timing assertions: speed is
/// measured by benchmarks (BENCHMARKS.md), not by tests.
@Suite(.serialized) struct BenchCommandTests {
    /// The default variants on this CPU, in order: naive, every runnable kernel build, then lockstep on 1 and 2 threads.
    static let variantNames = ["naive"] + KernelVariant.supported.map(\.rawValue) + ["lockstep-1t", "lockstep-2t"]

    @Test("toymoe bench --configs P1 writes JSON with every unit, variant and a positive speedup")
    func benchJSON() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-bench")
        let run = try CLITests.toymoe(
            ["bench", "--configs", "P1", "--repeats", "2", "--min-time", "0.01", "--json", "out.json"], in: dir)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("training step") && run.stdout.contains("speedup"), "table missing: \(run.stdout)")
        #expect(run.stdout.contains("% peak"), "fraction-of-peak column missing: \(run.stdout)")
        let doc = try JSONValue(contentsOf: dir.appendingPathComponent("out.json"))

        #expect(doc["provenance"]?["tool"]?.stringValue == "toymoe bench")
        #expect(doc["provenance"]?["kernel_variant"]?.stringValue != nil)
        #expect(doc["machine"]?["cpu_model"]?.stringValue != nil)
        #expect(doc["machine"]?["threads_used"]?.intValue == 2)  // lockstep-2t
        #expect(doc["method"]?["repeats"]?.intValue == 2)
        #expect(doc["method"]?["reference"]?.stringValue == "naive")
        #expect((doc["peak"]?["baseline_isa_mul_add_gflops"]?.doubleValue ?? 0) > 0)

        let units = try #require(doc["units"]?.arrayValue)
        // P1: the three tiny MoE shapes (2-1-2, 3-1-3, 3-2-3), training steps only.
        #expect(units.count == 3)
        #expect(Set(units.compactMap { $0["shape"]?["label"]?.stringValue }).count == 3)
        for unit in units {
            #expect(unit["config"]?.stringValue == "P1")
            #expect(unit["unit"]?.stringValue == "training step")
            #expect(unit["shape"]?["load_balancing"]?.boolValue == true)
            #expect(unit["shape"]?["batch_size"]?.intValue == 512)
            #expect((unit["flops_per_iteration"]?.doubleValue ?? 0) > 0)
            let variants = try #require(unit["variants"]?.arrayValue)
            #expect(variants.compactMap { $0["name"]?.stringValue } == Self.variantNames)
            for v in variants {
                let seconds = try #require(v["seconds_per_iteration"])
                #expect(seconds["samples"]?.arrayValue?.count == 2)
                let median = try #require(seconds["median"]?.doubleValue)
                let p10 = try #require(seconds["p10"]?.doubleValue), p90 = try #require(seconds["p90"]?.doubleValue)
                #expect(median > 0 && p10 <= median && median <= p90)
                #expect((v["iterations_per_round"]?.intValue ?? 0) >= 1)
                #expect((v["rate_per_second"]?.doubleValue ?? 0) > 0)
                #expect((v["gflops"]?.doubleValue ?? 0) > 0)
                // The fraction of the measured multiply-add peak: GFLOP/s / (peak per core × the variant's threads).
                let name = v["name"]?.stringValue ?? ""
                let threads = try #require(v["threads"]?.intValue)
                #expect(threads == (name == "lockstep-2t" ? 2 : 1))
                let gflops = try #require(v["gflops"]?.doubleValue)
                let peak = try #require(doc["peak"]?["isa_multiply_add_gflops"]?.doubleValue)
                let fraction = try #require(v["fraction_of_peak"]?.doubleValue)
                #expect(abs(fraction - gflops / (peak * Double(threads))) <= 1e-9 * max(1, fraction))
            }
            let ratios = try #require(unit["ratios"]?.arrayValue)
            // Each later variant against every earlier one: scalar/naive, simd-baseline/naive, simd-baseline/scalar, ...
            let names = Self.variantNames
            var expected = Set<String>()
            for j in names.indices { for i in 0..<j { expected.insert(names[j] + "/" + names[i]) } }
            #expect(ratios.count == expected.count)
            let pairs = Set(ratios.compactMap { r -> String? in
                guard let v = r["variant"]?.stringValue, let ref = r["reference"]?.stringValue else { return nil }
                return v + "/" + ref
            })
            #expect(pairs == expected)
            for r in ratios {
                #expect((r["speedup_median"]?.doubleValue ?? 0) > 0)
                #expect(r["per_round"]?.arrayValue?.allSatisfy { ($0.doubleValue ?? 0) > 0 } == true)
            }
        }
    }

    @Test("toymoe bench --help lists the options and configurations; bad options exit non-zero")
    func benchHelp() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-bench")
        let help = try CLITests.toymoe(["bench", "--help"], in: dir)
        #expect(help.status == 0)
        for needle in ["USAGE: toymoe bench", "--json", "--configs", "--repeats", "--min-time", "--quiet", "--variants",
                       "P1", "P2", "P3", "P4", "naive", "scalar"] {
            #expect(help.stdout.contains(needle), "missing '\(needle)' in bench --help")
        }
        let bad = try CLITests.toymoe(["bench", "--configs", "P9"], in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("P9"))
        let badVariant = try CLITests.toymoe(["bench", "--variants", "nope"], in: dir)
        #expect(badVariant.status != 0 && badVariant.stderr.contains("nope"))
    }
}
