import ArgumentParser
import Foundation
import ToyMoE
import ToyMoEIO

// `toymoe bench`: times kernel variants side by side (naive reference, portable scalar kernels, later SIMD ones) on
// whole training steps and on each kernel, alternating the variants round by round so that a shared, noisy machine
// hits them alike. The method is documented in BENCHMARKS.md; the targets P1–P5 are listed there.
//
// Adding a kernel variant is one line: append it to `BenchVariant.all` (see there).

/// `toymoe bench`: the benchmark harness.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the kernel variants (naive reference vs kernels) on training steps and single kernels.",
        discussion: """
            Configurations (batch in parentheses; feature probability 0.1, importance 1, sum-over-features loss):
              P1  training steps of tiny MoEs with load balancing: n-m-E 2-1-2, 3-1-3 (k=1) and 3-2-3 (k=2) (512)
              P2  training step of n=100, m=10, E=10, k=1 (1024)
              P3  dense n=400, m=30: training step, and forward+backward with GFLOP/s (1024)
              P4  each kernel vs its naive twin: sampleBatch, forward, backward, adamW at P3's shape;
                  forward and backward at P2's shape (routing); training steps of the Fig. 3 shapes (n=100:
                  dense m=20, E4 m5 k1, E10 m2 k2, E20 m1 k5 at p=0.1, and E20 m1 k5 at p=1) and of Table 1's
                  (E10 m10 k1), also with each code path of the widest SIMD build (`<build>:<path>` variants)
              P6  one model on two cores: training steps of growing dense and MoE shapes (1024), each timed
                  whole-batch on one thread and split into two batch halves on two threads (the cut-over of
                  Trainer.splitThreshold); its variants are always those two, with the widest SIMD kernels
            Variants (baseline first): \(BenchVariant.all.map(\.name).joined(separator: ", ")).
            lockstep-1t/-2t (P1 only): LockstepTrainer on 128 models, 1 or 2 threads; one iteration = one model-step.
            Method: one thread (except lockstep-2t, and P6's two-thread variant); each (unit, variant) is warmed up and calibrated to run for at least --min-time
            per round; then --repeats rounds alternate the variants (A B, B A, A B, ...). Reported: median time
            per iteration, p10–p90 over rounds, MAD, rate, GFLOP/s (analytic dense-equivalent flop count, see
            BENCHMARKS.md), % peak (GFLOP/s over the measured multiply-add peak of one core × the variant's threads),
            and speedups (reference time / variant time) computed per round, then median'd.
            Build with `swift build -c release` for meaningful numbers: a debug build is flagged in the output.
            """)

    @Option(help: "Write every measurement, the method and the provenance as JSON to this path.")
    var json: String?

    @Option(help: "Comma-separated configurations to run: P1, P2, P3, P4, P6.")
    var configs: String = "P1,P2,P3,P4"

    @Option(help: "Comma-separated variants to run (default: all; the first one is the reference of the ratios; `simd` = the widest SIMD build here).")
    var variants: String?

    @Option(help: "Timed rounds per unit (each round runs every variant once).")
    var repeats: Int = 7

    @Option(name: .customLong("min-time"), help: "Minimum seconds per variant per round (slow units run 1 iteration).")
    var minTime: Double = 0.15

    @Flag(help: "Print nothing but errors (use with --json).")
    var quiet = false

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats: expected a positive integer, got \(repeats)") }
        if !(minTime >= 0) || !minTime.isFinite { throw ValidationError("--min-time: expected seconds ≥ 0, got \(minTime)") }
        _ = try selectedConfigs()
        _ = try selectedVariants()
    }

    func selectedConfigs() throws -> [String] {
        let names = configs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }
        if names.isEmpty { throw ValidationError("--configs: expected at least one of P1, P2, P3, P4, P6") }
        for n in names where !["P1", "P2", "P3", "P4", "P6"].contains(n) {
            throw ValidationError("--configs: unknown configuration '\(n)'; expected P1, P2, P3, P4 or P6 (P5 is `toymoe run scripts/paper/all.lua`, see BENCHMARKS.md)")
        }
        return names
    }

    func selectedVariants() throws -> [BenchVariant] {
        guard let variants else { return BenchVariant.all }
        let names = variants.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var chosen: [BenchVariant] = []
        for name in names {
            // `simd` names the widest SIMD build this CPU runs (scripts need not know which it is).
            let n = name == "simd" ? KernelVariant.bestSIMD.rawValue : name
            guard let v = BenchVariant.all.first(where: { $0.name == n }) else {
                throw ValidationError("--variants: unknown variant '\(name)'; expected one of \(BenchVariant.all.map(\.name).joined(separator: ", "))")
            }
            chosen.append(v)
        }
        if chosen.isEmpty { throw ValidationError("--variants: expected at least one variant") }
        return chosen
    }

    func run() throws {
        let configNames = try selectedConfigs()
        let variantList = try selectedVariants()
        let machine = MachineInfo.current()
        var provenance = Provenance.start(
            tool: "toymoe bench", seed: 0, kernelVariant: KernelVariant.current,
            extra: ["build": .string(BenchBuild.configuration), "cpu_model": .string(machine.cpuModel)])
        func progress(_ s: String) {
            if !quiet { FileHandle.standardError.write(Data((s + "\n").utf8)) }
        }
        if BenchBuild.configuration == "debug" {
            progress("warning: debug build: the naive reference and this harness are unoptimized; use `swift build -c release` for real numbers")
        }
        let threadsUsed = variantList.map(\.threads).max() ?? 1
        progress("toymoe bench: \(machine.cpuModel), 1 thread (lockstep-Nt: N), variants \(variantList.map(\.name).joined(separator: ", ")), \(repeats) rounds × ≥\(minTime) s")

        let peak = PeakEstimate.measure(seconds: max(0.05, min(0.5, minTime * 2)))
        progress(String(format: "baseline-ISA SIMD mul+add peak (this build, one core): %.1f GFLOP/s", peak))
        let best = KernelVariant.bestSIMD
        let isaPeak = PeakEstimate.measure(seconds: max(0.05, min(0.5, minTime * 2)), probe: KernelSet(best).peakProbe!)
        progress(String(format: "%@ multiply-add peak (one core): %.1f GFLOP/s", best.rawValue, isaPeak))

        var results: [UnitResult] = []
        for unit in BenchUnit.all where configNames.contains(unit.config) {
            progress("\(unit.config) \(unit.name) [\(unit.shape.label)] ...")
            let unitVariants = unit.config == "P6" ? BenchVariant.parallel : variantList.filter { $0.applies(unit) }
            if unitVariants.isEmpty { continue }
            let r = try BenchRunner.measure(unit: unit, variants: unitVariants, repeats: repeats, minTime: minTime)
            results.append(r)
            if !quiet { progress("  " + r.summaryLine()) }
        }
        provenance.finish()

        let machineJSON = machine.toJSON(threadsUsed: threadsUsed)
        if !quiet {
            print(BenchReport.table(results, variants: variantList, peak: peak, isaPeak: isaPeak, machine: machine))
            print(String(format: "%@ multiply-add peak measured in this run: %.1f GFLOP/s per core (the %% peak column: GFLOP/s / (this peak × the variant's threads))", best.rawValue, isaPeak))
        }
        if let json {
            var doc = JSONObject()
            doc["provenance"] = provenance.toJSON()
            doc["machine"] = machineJSON
            doc["method"] = [
                "threads": "1 per variant, except lockstep-Nt (N threads)",
                "repeats": .int(repeats),
                "min_time_seconds": .number(minTime),
                "warm_up": "one calibration iteration, then one calibrated batch of iterations, per unit and variant",
                "order": "variants alternate within each round; the order reverses every other round (A B, B A, ...)",
                "statistics": "per-iteration seconds per round: median, p10, p90 (linear interpolation), MAD; speedup = reference seconds / variant seconds, per round, then median",
                "flops": "dense-equivalent analytic count (BENCHMARKS.md): forward B*(k*(4nm+3n) + [E>1] 2En), backward B*(3n + k*(6nm+4n) + [router] 2En); training-step GFLOP/s counts forward+backward only",
                "build": .string(BenchBuild.configuration),
                "variants": .array(variantList.map { ["name": .string($0.name), "description": .string($0.description)] }),
                "reference": .string(variantList[0].name),
            ]
            doc["peak"] = [
                "baseline_isa_mul_add_gflops": .number(peak),
                "isa_variant": .string(best.rawValue),
                "isa_multiply_add_gflops": .number(isaPeak),
                "note": .string("baseline: SIMD4<Float> multiply and add (separate, no FMA) in 12 independent chains, compiled for the baseline x86-64 ISA. isa: MoEKernelsSIMD.peakProbe of the widest SIMD build this CPU runs (12 SIMD8 chains; one fused multiply-add per lane in the AVX2/AVX-512 builds), the peak the P3 fraction is measured against. \(machine.fmaPeakReference)"),
            ]
            doc["units"] = .array(results.map { $0.toJSON(isaPeak: isaPeak) })
            try JSONValue.object(doc).write(to: URL(fileURLWithPath: json), options: JSONWriteOptions(nonFinite: .null))
            progress("wrote \(json)")
        }
    }
}

// MARK: - Build and machine facts

enum BenchBuild {
    #if DEBUG
    static let configuration = "debug"
    #else
    static let configuration = "release"
    #endif
}

struct MachineInfo {
    var cpuModel: String
    var flags: Set<String>
    var host: HostInfo

    static func current() -> MachineInfo {
        var model = "unknown"
        var flags: Set<String> = []
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let key = parts[0].trimmingCharacters(in: .whitespaces)
                let value = parts[1].trimmingCharacters(in: .whitespaces)
                if key == "model name", model == "unknown" { model = value }
                if key == "flags", flags.isEmpty { flags = Set(value.split(separator: " ").map(String.init)) }
            }
        }
        return MachineInfo(cpuModel: model, flags: flags, host: .current())
    }

    /// Which widest vector ISA this CPU reports. The peak itself is what the `peak` unit measures in this run: no
    /// figure of another machine is printed as a fact.
    var fmaPeakReference: String {
        if flags.contains("avx512f") { return "This CPU reports AVX-512; the measured peak above is the reference." }
        if flags.contains("avx2") && flags.contains("fma") { return "This CPU reports AVX2+FMA, no AVX-512; the measured peak above is the reference." }
        return "No AVX2/FMA reported by this CPU."
    }

    func toJSON(threadsUsed: Int = 1) -> JSONValue {
        let isa = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"].filter { flags.contains($0) }
        return [
            "cpu_model": .string(cpuModel),
            "isa_flags": .array(isa.map { .string($0) }),
            "host": host.toJSON(),
            "threads_used": .int(threadsUsed),
        ]
    }
}

/// A rough single-core arithmetic peak for the ISA this build targets (the default: baseline x86-64, SSE2, no FMA).
enum PeakEstimate {
    /// GFLOP/s of `probe` (default: the baseline-ISA block below; or a kernel set's `peakProbe`, 12 SIMD8 chains).
    static func measure(seconds: Double, probe: ((Int, Float) -> Float)? = nil) -> Double {
        let inner = 1 << 16
        var blocks = 0
        var total: Float = 0
        let start = BenchClock.now()
        var elapsed = 0.0
        let flopsPerIteration = probe == nil ? 12 * 4 * 2 : 12 * 8 * 2
        repeat {
            let scale = Float(seconds > 0 ? 0.999_999 : 1)
            total += probe?(inner, scale) ?? block(iterations: inner, scale: scale)
            blocks += 1
            elapsed = BenchClock.now() - start
        } while elapsed < seconds
        BenchSink.shared.consume(Double(total))
        return Double(blocks * inner * flopsPerIteration) / elapsed / 1e9
    }

    /// 12 independent SIMD4 chains (12 + 2 of the 16 xmm registers), each a multiply then an add: enough
    /// independent work to cover the latencies, so the loop measures throughput. Its own function with no calls
    /// inside, so the accumulators stay in registers (measured: across a clock call they were spilled, 5x slower).
    @inline(never)
    static func block(iterations: Int, scale: Float) -> Float {
        let mul = SIMD4<Float>(repeating: scale), add = SIMD4<Float>(repeating: 1e-7)
        var a0 = SIMD4<Float>(repeating: 0.1), a1 = a0 + 0.1, a2 = a0 + 0.2, a3 = a0 + 0.3, a4 = a0 + 0.4
        var a5 = a0 + 0.5, a6 = a0 + 0.6, a7 = a0 + 0.7, a8 = a0 + 0.8, a9 = a0 + 0.9, a10 = a0 + 1, a11 = a0 + 1.1
        for _ in 0..<iterations {
            a0 = a0 * mul + add; a1 = a1 * mul + add; a2 = a2 * mul + add; a3 = a3 * mul + add
            a4 = a4 * mul + add; a5 = a5 * mul + add; a6 = a6 * mul + add; a7 = a7 * mul + add
            a8 = a8 * mul + add; a9 = a9 * mul + add; a10 = a10 * mul + add; a11 = a11 * mul + add
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).sum()
    }
}

enum BenchClock {
    /// Monotonic seconds.
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// Keeps results alive so the optimizer cannot drop the work that produced them.
final class BenchSink: @unchecked Sendable {
    static let shared = BenchSink()
    private(set) var value = 0.0
    func consume(_ v: Double) { value += v.isFinite ? v * 1e-30 : 0 }
}

// MARK: - Shapes and units

/// One architecture + batch at which units are timed.
struct BenchShape {
    var label: String
    var n: Int, m: Int, experts: Int, active: Int, batch: Int
    var loadBalancing: Bool
    var probability: Float = 0.1

    var modelConfig: ModelConfig {
        ModelConfig(featureCount: n, hiddenCount: m, expertCount: experts, activeExpertCount: active)
    }
    var layout: MoELayout { MoELayout(n: n, m: m, experts: experts, active: active) }

    /// Dense-equivalent flops of one forward pass over the batch (see BENCHMARKS.md): router 2En when E > 1; per
    /// routed expert encode 2nm, decode 2nm + n, ReLU/gate/accumulate 2n.
    var forwardFlops: Double {
        let (n, m, E, k, B) = (Double(n), Double(m), Double(experts), Double(active), Double(batch))
        return B * (k * (4 * n * m + 3 * n) + (experts > 1 ? 2 * E * n : 0))
    }

    /// Dense-equivalent flops of one backward pass: dx̂ 3n; per routed expert dg 2n, dpre and db 2n, dh 2nm,
    /// dW += dpre⊗h 2nm, dW += x⊗dh 2nm; router dG += dz⊗x 2En when it is needed (E > 1 and k > 1 or LB on).
    var backwardFlops: Double {
        let (n, m, E, k, B) = (Double(n), Double(m), Double(experts), Double(active), Double(batch))
        let router = experts > 1 && (active > 1 || loadBalancing)
        return B * (3 * n + k * (6 * n * m + 4 * n) + (router ? 2 * E * n : 0))
    }

    func toJSON() -> JSONValue {
        [
            "label": .string(label), "n_features": .int(n), "n_hidden": .int(m), "n_experts": .int(experts),
            "n_active_experts": .int(active), "batch_size": .int(batch), "load_balancing": .bool(loadBalancing),
            "feature_probability": .number(Double(probability)), "parameters": .int(layout.count),
        ]
    }
}

/// What a timed iteration does.
enum UnitKind: String {
    /// A whole training step: sample + forward + loss (+ L_LB) + backward + AdamW.
    case step = "training step"
    /// Forward + loss (+ L_LB) + backward on a fixed batch.
    case forwardBackward = "forward+backward"
    case sampleBatch = "sampleBatch"
    case forward = "forward"
    case backward = "backward"
    case adamW = "adamW"
}

/// A timed unit: a kind of work at a shape, within one of the configurations.
struct BenchUnit {
    var config: String
    var kind: UnitKind
    var shape: BenchShape
    var name: String { kind.rawValue }

    /// What one iteration counts as, for the rate column.
    var rateLabel: String {
        switch kind {
        case .step: return config == "P1" ? "model-steps/s" : "steps/s"
        default: return "calls/s"
        }
    }

    /// Flops credited to one iteration (nil: not a flop-bound unit).
    var flops: Double? {
        switch kind {
        case .step, .forwardBackward: return shape.forwardFlops + shape.backwardFlops
        case .forward: return shape.forwardFlops
        case .backward: return shape.backwardFlops
        case .sampleBatch, .adamW: return nil
        }
    }

    static let p1Shapes = [
        BenchShape(label: "n2 m1 E2 k1 B512 LB", n: 2, m: 1, experts: 2, active: 1, batch: 512, loadBalancing: true),
        BenchShape(label: "n3 m1 E3 k1 B512 LB", n: 3, m: 1, experts: 3, active: 1, batch: 512, loadBalancing: true),
        BenchShape(label: "n3 m2 E3 k2 B512 LB", n: 3, m: 2, experts: 3, active: 2, batch: 512, loadBalancing: true),
    ]
    static let p2Shape = BenchShape(label: "n100 m10 E10 k1 B1024", n: 100, m: 10, experts: 10, active: 1, batch: 1024, loadBalancing: false)
    static let p3Shape = BenchShape(label: "dense n400 m30 B1024", n: 400, m: 30, experts: 1, active: 1, batch: 1024, loadBalancing: false)
    /// P6: growing work per step (B·k·n·m = 26k … 12M multiply-adds per forward), dense and routed.
    static let p6Shapes = [
        BenchShape(label: "dense n20 m5 B256", n: 20, m: 5, experts: 1, active: 1, batch: 256, loadBalancing: false),
        BenchShape(label: "dense n20 m5 B1024", n: 20, m: 5, experts: 1, active: 1, batch: 1024, loadBalancing: false),
        BenchShape(label: "dense n50 m5 B1024", n: 50, m: 5, experts: 1, active: 1, batch: 1024, loadBalancing: false),
        BenchShape(label: "dense n100 m10 B1024", n: 100, m: 10, experts: 1, active: 1, batch: 1024, loadBalancing: false),
        p2Shape,
        BenchShape(label: "dense n200 m10 B1024", n: 200, m: 10, experts: 1, active: 1, batch: 1024, loadBalancing: false),
        BenchShape(label: "dense n200 m20 B1024", n: 200, m: 20, experts: 1, active: 1, batch: 1024, loadBalancing: false),
        BenchShape(label: "n100 m20 E8 k2 B1024 LB", n: 100, m: 20, experts: 8, active: 2, batch: 1024, loadBalancing: true),
        p3Shape,
    ]

    /// P4's training steps: the Fig. 3 architectures (n = 100, total hidden width 20) and Table 1's (P2's shape).
    /// Fig. 3 sweeps p from 0.1 to 1; p = 1 (no zero inputs to skip) is its slowest cell of the slowest shape.
    static let p4Shapes = [
        BenchShape(label: "fig3 dense n100 m20 B1024", n: 100, m: 20, experts: 1, active: 1, batch: 1024, loadBalancing: false),
        BenchShape(label: "fig3 n100 m5 E4 k1 B1024", n: 100, m: 5, experts: 4, active: 1, batch: 1024, loadBalancing: false),
        BenchShape(label: "fig3 n100 m2 E10 k2 B1024", n: 100, m: 2, experts: 10, active: 2, batch: 1024, loadBalancing: false),
        BenchShape(label: "fig3 n100 m1 E20 k5 B1024", n: 100, m: 1, experts: 20, active: 5, batch: 1024, loadBalancing: false),
        BenchShape(
            label: "fig3 n100 m1 E20 k5 B1024 p1", n: 100, m: 1, experts: 20, active: 5, batch: 1024, loadBalancing: false,
            probability: 1),
        BenchShape(label: "table1 n100 m10 E10 k1 B1024", n: 100, m: 10, experts: 10, active: 1, batch: 1024, loadBalancing: false),
    ]

    /// Every unit, in run order.
    static var all: [BenchUnit] {
        p1Shapes.map { BenchUnit(config: "P1", kind: .step, shape: $0) }
            + [BenchUnit(config: "P2", kind: .step, shape: p2Shape)]
            + [BenchUnit(config: "P3", kind: .step, shape: p3Shape), BenchUnit(config: "P3", kind: .forwardBackward, shape: p3Shape)]
            + [UnitKind.sampleBatch, .forward, .backward, .adamW].map { BenchUnit(config: "P4", kind: $0, shape: p3Shape) }
            + [UnitKind.forward, .backward].map { BenchUnit(config: "P4", kind: $0, shape: p2Shape) }
            + p4Shapes.map { BenchUnit(config: "P4", kind: .step, shape: $0) }
            + p6Shapes.map { BenchUnit(config: "P6", kind: .step, shape: $0) }
    }
}

// MARK: - Variants

typealias SampleKernel = (UnsafeMutablePointer<Float>, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, inout RandomStream) -> Void
typealias ForwardKernel = (UnsafePointer<Float>, MoELayout, Int, TieBreak, MoEActivations) -> Void
typealias LossKernel = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, Double) -> Double
typealias LoadBalancingKernel = (MoELayout, Int, Float, MoEActivations) -> Double
typealias BackwardKernel = (UnsafePointer<Float>, UnsafeMutablePointer<Float>, MoELayout, Int, UnsafePointer<Float>, Float, Float?, MoEActivations) -> Void
typealias AdamWKernel = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Double, Double, Double, Double, Double) -> Void

/// A set of flat-buffer kernels with `MoEKernels`' signatures: one of the engine's `KernelSet`s, or any functions
/// with the same signatures (an experimental kernel can be benchmarked before it is a `KernelVariant`).
struct BenchKernelSet {
    var name: String
    /// The engine variant these kernels are, if any (then the training step can run through `Trainer`).
    var variant: KernelVariant?
    var sampleBatch: SampleKernel
    var forward: ForwardKernel
    var reconstructionLoss: LossKernel
    var loadBalancing: LoadBalancingKernel
    var backward: BackwardKernel
    var adamW: AdamWKernel

    /// The engine's kernel set of `variant`, named after it (`scalar`, `simd-avx2`, ...).
    static func engine(_ variant: KernelVariant) -> BenchKernelSet {
        let k = KernelSet(variant)
        return BenchKernelSet(
            name: variant.rawValue, variant: variant, sampleBatch: k.sampleBatch, forward: k.forward,
            reconstructionLoss: k.reconstructionLoss, loadBalancing: k.loadBalancing, backward: k.backward,
            adamW: k.adamW)
    }
}

/// A named variant: builds, for a unit, a closure that runs that unit `iterations` times (setup happens in
/// `make`, outside the timed region).
struct BenchVariant {
    var name: String
    var description: String
    var make: (BenchUnit) throws -> (Int) -> Void
    /// Threads the variant uses (1 for every per-model kernel variant).
    var threads = 1
    /// The units this variant can run (lockstep training only exists for whole training steps of many tiny models).
    var applies: (BenchUnit) -> Bool = { _ in true }

    /// Every variant this CPU runs, the reference (baseline of the speedups) first: the naive reference, then each
    /// engine kernel set (`scalar`, `simd-baseline`, and `simd-avx2` / `simd-avx512` where the CPU has them).
    static var all: [BenchVariant] {
        let engine: [BenchVariant] = KernelVariant.supported.map { .kernels(.engine($0), trainingStepViaTrainer: true) }
        let lockstep: [BenchVariant] = [.lockstep(threads: 1), .lockstep(threads: 2)]
        return [BenchVariant.naive] + engine + lockstep + paths
    }

    /// P4's training steps with each code path of the widest SIMD build forced ("<build>:tiled", ":narrow",
    /// ":per-sample"): the step composed from the path's forward and backward in `Trainer.step`'s order, whole
    /// batch, so the shape rule of `forward`/`backward` can be checked against the alternatives.
    static var paths: [BenchVariant] {
        let best = KernelVariant.bestSIMD
        let set = KernelSet(best)
        return set.paths.map { path in
            var v = BenchVariant.kernels(BenchKernelSet(
                name: "\(best.rawValue):\(path.name)", variant: nil, sampleBatch: set.sampleBatch, forward: path.forward,
                reconstructionLoss: set.reconstructionLoss, loadBalancing: set.loadBalancing, backward: path.backward,
                adamW: set.adamW))
            v.applies = { $0.config == "P4" && $0.kind == .step }
            return v
        }
    }

    /// P6's variants: the widest SIMD kernels through `Trainer.step()`: whole batch on one thread, two batch halves
    /// on one thread (the same numbers as on two: isolates what the split itself costs or saves), and two batch
    /// halves on two threads.
    static var parallel: [BenchVariant] {
        [(false, 1, "whole/1t"), (true, 1, "halves/1t"), (true, 2, "halves/2t")].map { split, threads, name in
            BenchVariant(
                name: name,
                description: "Trainer.step() with \(KernelVariant.bestSIMD.rawValue), "
                    + (split ? "two batch halves" : "whole batch") + ", \(threads) thread(s)"
            ) { unit in
                let fixture = try KernelFixture(unit: unit, set: .engine(KernelVariant.bestSIMD), viaTrainer: true)
                let trainer = try fixture.makeTrainer(split: split)
                trainer.threads = threads
                return { iterations in
                    for _ in 0..<iterations { BenchSink.shared.consume(trainer.step().loss) }
                }
            }
        }
    }

    /// `LockstepTrainer` on \(LockstepFixture.modelCount) models of the unit's shape (P1 training steps only): one
    /// iteration is one model-step, so its rate compares directly with the per-model variants'.
    static func lockstep(threads: Int) -> BenchVariant {
        BenchVariant(
            name: "lockstep-\(threads)t",
            description: "LockstepTrainer.run(threads: \(threads)) on \(LockstepFixture.modelCount) models (8 per SIMD group, each group trained through all its steps by one thread; includes the per-step bookkeeping and the per-call setup); one iteration = one model-step",
            make: { unit in try LockstepFixture(unit: unit, threads: threads).body() },
            threads: threads,
            applies: { $0.config == "P1" && $0.kind == .step })
    }

    /// The naive reference: `NaiveMoE` (nested Double arrays, every expert evaluated densely) for forward,
    /// loss and gradients; bench-local plain-loop baselines (`NaiveBaselines`) for sampling and AdamW.
    static var naive: BenchVariant {
        BenchVariant(
            name: "naive",
            description: "NaiveMoE (Double, nested arrays, dense over experts) for forward/loss/gradients; bench-local plain-loop Swift-array baselines for sampling and AdamW. Its training step and forward+backward call loss() and gradients(), which each run the forward pass; its backward unit is gradients() (which includes a forward)."
        ) { unit in try NaiveFixture(unit: unit).body() }
    }

    /// A kernel set run over the engine's flat buffers. With `trainingStepViaTrainer`, the training-step unit is
    /// `Trainer.step()` itself (only meaningful for the kernels `Trainer` calls); otherwise the harness composes the
    /// step from the set's kernels in `Trainer.step`'s order.
    static func kernels(_ set: BenchKernelSet, trainingStepViaTrainer: Bool = false) -> BenchVariant {
        BenchVariant(
            name: set.name,
            description: trainingStepViaTrainer
                ? "kernel set '\(set.name)' over flat buffers; training step = Trainer.step()"
                : "kernel set '\(set.name)' over flat buffers; training step composed in Trainer.step's order"
        ) { unit in try KernelFixture(unit: unit, set: set, viaTrainer: trainingStepViaTrainer).body() }
    }
}

/// Many models of one P1 shape for `LockstepTrainer`. A call trains the models for `iterations / modelCount` steps,
/// then the first `iterations mod modelCount` of them for one more step: exactly `iterations` model-steps.
final class LockstepFixture {
    static let modelCount = 128
    let unit: BenchUnit
    let threads: Int
    let models: [Model]
    let data: [DataDistribution]
    var config = TrainingConfig()

    init(unit: BenchUnit, threads: Int) throws {
        self.unit = unit
        self.threads = threads
        let s = unit.shape
        models = try (0..<Self.modelCount).map { try Model(config: s.modelConfig, seed: 1, modelID: UInt64($0)) }
        data = [DataDistribution](repeating: .uniform(featureCount: s.n, probability: s.probability), count: Self.modelCount)
        config.batchSize = s.batch
        config.loadBalancing = s.loadBalancing
        config.historyStride = 1 << 30
    }

    func train(_ count: Int, steps: Int) -> Double {
        var c = config
        c.steps = steps
        let trainer = try! LockstepTrainer(
            models: Array(models[0..<count]), data: Array(data[0..<count]), config: c,
            seeds: [UInt64](repeating: 7, count: count), modelIDs: (0..<count).map { UInt64($0) })
        return trainer.run(threads: threads).reduce(0) { $0 + $1.finalLoss }
    }

    func body() -> (Int) -> Void {
        { [self] iterations in
            var acc = 0.0
            let rounds = iterations / Self.modelCount, rest = iterations % Self.modelCount
            if rounds > 0 { acc += train(Self.modelCount, steps: rounds) }
            if rest > 0 { acc += train(rest, steps: 1) }
            BenchSink.shared.consume(acc)
        }
    }
}

/// Flat-buffer state for one (unit, kernel set): a model, a workspace holding a fixed batch, gradients, moments.
final class KernelFixture {
    let unit: BenchUnit
    let set: BenchKernelSet
    let viaTrainer: Bool
    let model: Model
    let workspace: Workspace
    let grads, m1, m2: UnsafeMutableBufferPointer<Float>
    let probability: [Float]
    let importance: [Float]
    var rng: RandomStream
    var t = 0
    let trainer: Trainer?

    init(unit: BenchUnit, set: BenchKernelSet, viaTrainer: Bool) throws {
        self.unit = unit
        self.set = set
        self.viaTrainer = viaTrainer
        let s = unit.shape
        model = try Model(config: s.modelConfig, seed: 1)
        workspace = Workspace(layout: s.layout, batch: s.batch)
        let count = s.layout.count
        grads = .allocate(capacity: count)
        m1 = .allocate(capacity: count)
        m2 = .allocate(capacity: count)
        grads.initialize(repeating: 0)
        m1.initialize(repeating: 0)
        m2.initialize(repeating: 0)
        probability = [Float](repeating: s.probability, count: s.n)
        importance = [Float](repeating: 1, count: s.n)
        rng = RandomStream(seed: 7, path: [0, StreamPurpose.data.rawValue])
        if viaTrainer && set.variant != nil && unit.kind == .step {
            // One thread, like every unit of P1–P4 (P6 makes its own trainers with one and two threads).
            let t = try Self.trainer(unit: unit, model: model, variant: set.variant ?? .scalar, split: nil)
            t.threads = 1
            trainer = t
        } else {
            trainer = nil
        }
        // The fixed batch (the same for every variant: the data stream is seeded identically), and the activations
        // and gradients that the backward and AdamW units start from.
        MoEKernels.sampleBatch(x: workspace.x, batch: s.batch, n: s.n, probability: probability, scale: nil, rng: &rng)
        _ = forwardBackward()
    }

    /// A trainer over this fixture's model for `Trainer.step()` units (`split`: nil = by shape, or forced).
    func makeTrainer(split: Bool?) throws -> Trainer {
        try Self.trainer(unit: unit, model: model, variant: set.variant ?? .scalar, split: split)
    }

    static func trainer(unit: BenchUnit, model: Model, variant: KernelVariant, split: Bool?) throws -> Trainer {
        let s = unit.shape
        var config = TrainingConfig()
        config.steps = 1 << 40
        config.batchSize = s.batch
        config.loadBalancing = s.loadBalancing
        return try Trainer(
            model: model, data: .uniform(featureCount: s.n, probability: s.probability), config: config, seed: 7,
            kernels: variant, splitBatch: split)
    }

    deinit {
        grads.deallocate()
        m1.deallocate()
        m2.deallocate()
    }

    var alpha: Float? { unit.shape.loadBalancing ? 0.01 : nil }
    var lossScale: Double { 1 / Double(unit.shape.batch) }

    func forward() {
        let s = unit.shape
        set.forward(UnsafePointer(model.parameters.baseAddress!), s.layout, s.batch, .lowestIndex, workspace.activations)
    }

    func backward() {
        let s = unit.shape
        for i in 0..<grads.count { grads[i] = 0 }
        importance.withUnsafeBufferPointer { imp in
            set.backward(
                UnsafePointer(model.parameters.baseAddress!), grads.baseAddress!, s.layout, s.batch, imp.baseAddress!,
                Float(lossScale), alpha, workspace.activations)
        }
    }

    /// Forward, loss, L_LB, backward: returns the loss.
    func forwardBackward() -> Double {
        let s = unit.shape
        forward()
        let recon = importance.withUnsafeBufferPointer { imp in
            set.reconstructionLoss(workspace.x, workspace.xhat, imp.baseAddress!, s.batch, s.n, lossScale)
        }
        var lb = 0.0
        if let alpha { lb = set.loadBalancing(s.layout, s.batch, alpha, workspace.activations) }
        backward()
        return recon + lb
    }

    func adamW() {
        t += 1
        set.adamW(
            model.parameters.baseAddress!, UnsafePointer(grads.baseAddress!), m1.baseAddress!, m2.baseAddress!,
            grads.count, t, 1e-3, 0.9, 0.999, 1e-8, 0.01)
    }

    func sample() {
        let s = unit.shape
        probability.withUnsafeBufferPointer { p in
            set.sampleBatch(workspace.x, s.batch, s.n, p.baseAddress!, nil, &rng)
        }
    }

    func body() -> (Int) -> Void {
        switch unit.kind {
        case .step:
            if let trainer {
                return { iterations in
                    var acc = 0.0
                    for _ in 0..<iterations { acc += trainer.step().loss }
                    BenchSink.shared.consume(acc)
                }
            }
            return { [self] iterations in
                var acc = 0.0
                for _ in 0..<iterations {
                    sample()
                    acc += forwardBackward()
                    adamW()
                }
                BenchSink.shared.consume(acc)
            }
        case .forwardBackward:
            return { [self] iterations in
                var acc = 0.0
                for _ in 0..<iterations { acc += forwardBackward() }
                BenchSink.shared.consume(acc)
            }
        case .sampleBatch:
            return { [self] iterations in
                for _ in 0..<iterations { sample() }
                BenchSink.shared.consume(Double(workspace.x[0]))
            }
        case .forward:
            return { [self] iterations in
                for _ in 0..<iterations { forward() }
                BenchSink.shared.consume(Double(workspace.xhat[0]))
            }
        case .backward:
            return { [self] iterations in
                for _ in 0..<iterations { backward() }
                BenchSink.shared.consume(Double(grads[0]))
            }
        case .adamW:
            return { [self] iterations in
                for _ in 0..<iterations { adamW() }
                BenchSink.shared.consume(Double(model.parameters[0]))
            }
        }
    }
}

/// State of the naive reference for one unit.
final class NaiveFixture {
    let unit: BenchUnit
    var net: NaiveMoE
    var flat: [Double]
    var m1: [Double], m2: [Double]
    var t = 0
    var rng: RandomStream
    let probability: [Float]
    let importance: [Double]
    let xs: [[Double]]
    let grads: [Float]
    var flatFloat: [Float]
    var m1Float: [Float], m2Float: [Float]

    init(unit: BenchUnit) throws {
        self.unit = unit
        let s = unit.shape
        let model = try Model(config: s.modelConfig, seed: 1)
        net = NaiveMoE(model)
        net.dispatch = .dense
        flat = net.flatParameters
        m1 = [Double](repeating: 0, count: flat.count)
        m2 = m1
        probability = [Float](repeating: s.probability, count: s.n)
        importance = [Double](repeating: 1, count: s.n)
        rng = RandomStream(seed: 7, path: [0, StreamPurpose.data.rawValue])
        // The same fixed batch as the kernel fixtures (same seeded stream, same draw order).
        xs = NaiveBaselines.sampleBatch(batch: s.batch, probability: probability, rng: &rng).map { $0.map(Double.init) }
        flatFloat = flat.map(Float.init)
        m1Float = [Float](repeating: 0, count: flat.count)
        m2Float = m1Float
        if unit.kind == .adamW {
            grads = NaiveMoE.flatten(
                net.gradients(xs, importance: importance, normalization: .sumOverFeatures, lbAlpha: nil)
            ).map(Float.init)
        } else {
            grads = []
        }
    }

    var alpha: Double? { unit.shape.loadBalancing ? 0.01 : nil }

    func lossAndGradients(_ batch: [[Double]]) -> (Double, [Double]) {
        let loss = net.loss(batch, importance: importance, normalization: .sumOverFeatures, lbAlpha: alpha)
        let g = net.gradients(batch, importance: importance, normalization: .sumOverFeatures, lbAlpha: alpha)
        return (loss.total, NaiveMoE.flatten(g))
    }

    func body() -> (Int) -> Void {
        switch unit.kind {
        case .step:
            return { [self] iterations in
                var acc = 0.0
                for _ in 0..<iterations {
                    let batch = NaiveBaselines.sampleBatch(batch: unit.shape.batch, probability: probability, rng: &rng)
                        .map { $0.map(Double.init) }
                    let (loss, g) = lossAndGradients(batch)
                    t += 1
                    NaiveBaselines.adamW(params: &flat, grads: g, m1: &m1, m2: &m2, step: t)
                    net = net.with(flat: flat)
                    acc += loss
                }
                BenchSink.shared.consume(acc)
            }
        case .forwardBackward:
            return { [self] iterations in
                var acc = 0.0
                for _ in 0..<iterations {
                    let (loss, g) = lossAndGradients(xs)
                    acc += loss + g[0]
                }
                BenchSink.shared.consume(acc)
            }
        case .sampleBatch:
            return { [self] iterations in
                var acc: Float = 0
                for _ in 0..<iterations {
                    let batch = NaiveBaselines.sampleBatch(batch: unit.shape.batch, probability: probability, rng: &rng)
                    acc += batch[0][0]
                }
                BenchSink.shared.consume(Double(acc))
            }
        case .forward:
            return { [self] iterations in
                var acc = 0.0
                for _ in 0..<iterations {
                    for x in xs { acc += net.forward(x).xhat[0] }
                }
                BenchSink.shared.consume(acc)
            }
        case .backward:
            return { [self] iterations in
                var acc = 0.0
                for _ in 0..<iterations {
                    let g = net.gradients(xs, importance: importance, normalization: .sumOverFeatures, lbAlpha: alpha)
                    acc += g.dW[0][0][0]
                }
                BenchSink.shared.consume(acc)
            }
        case .adamW:
            return { [self] iterations in
                for _ in 0..<iterations {
                    t += 1
                    NaiveBaselines.adamW(params: &flatFloat, grads: grads, m1: &m1Float, m2: &m2Float, step: t)
                }
                BenchSink.shared.consume(Double(flatFloat[0]))
            }
        }
    }
}

/// Bench-local baselines for kernels that have no naive twin in the engine: written as plainly as possible over
/// Swift arrays (bounds-checked, allocating), as a first implementation would be. Not used outside benchmarks.
enum NaiveBaselines {
    /// Sampling (docs/PAPER.md#data) into nested arrays: x = u if r ≤ p else 0, with the engine's generator.
    static func sampleBatch(batch: Int, probability: [Float], rng: inout RandomStream) -> [[Float]] {
        var xs: [[Float]] = []
        for _ in 0..<batch {
            var row: [Float] = []
            for i in 0..<probability.count {
                let (u, r) = rng.nextFloatPair()
                row.append(r <= probability[i] ? u : 0)
            }
            xs.append(row)
        }
        return xs
    }

    /// AdamW (torch.optim.AdamW's formulas, the paper's hyperparameters) over arrays, in the arrays' precision.
    static func adamW<T: BinaryFloatingPoint>(
        params: inout [T], grads: [T], m1: inout [T], m2: inout [T], step: Int, lr: Double = 1e-3,
        beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01
    ) {
        let bc1 = 1 - pow(beta1, Double(step))
        let bc2 = 1 - pow(beta2, Double(step))
        for i in 0..<params.count {
            params[i] = params[i] * T(1 - lr * weightDecay)
            m1[i] = T(beta1) * m1[i] + T(1 - beta1) * grads[i]
            m2[i] = T(beta2) * m2[i] + T(1 - beta2) * grads[i] * grads[i]
            let mHat = m1[i] / T(bc1)
            let vHat = m2[i] / T(bc2)
            params[i] = params[i] - T(lr) * mHat / (vHat.squareRoot() + T(eps))
        }
    }
}

// MARK: - Measurement

/// Order statistics of a sample.
struct Stats {
    var samples: [Double]
    var sorted: [Double]

    init(_ samples: [Double]) {
        self.samples = samples
        self.sorted = samples.sorted()
    }

    /// Linear-interpolation quantile (numpy's default).
    func quantile(_ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Int(pos.rounded(.up))
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }
    var median: Double { quantile(0.5) }
    var p10: Double { quantile(0.1) }
    var p90: Double { quantile(0.9) }
    /// Median absolute deviation from the median.
    var mad: Double {
        let med = median
        return Stats(samples.map { abs($0 - med) }).median
    }

    func toJSON() -> JSONValue {
        ["median": .number(median), "p10": .number(p10), "p90": .number(p90), "mad": .number(mad),
         "samples": .array(samples.map { .number($0) })]
    }
}

struct VariantResult {
    var name: String
    var iterationsPerRound: Int
    var seconds: Stats  // per iteration, one sample per round
    /// Threads the variant ran on (its peak is that many cores' worth).
    var threads = 1

    /// GFLOP/s at the median time, or nil for a unit without a flop count.
    func gflops(_ unit: BenchUnit) -> Double? { unit.flops.map { $0 / seconds.median / 1e9 } }

    /// The median GFLOP/s as a fraction of `isaPeak` (one core's measured multiply-add peak) × `threads`; nil for a
    /// unit without a flop count or an unusable peak.
    func fractionOfPeak(_ unit: BenchUnit, isaPeak: Double) -> Double? {
        guard let g = gflops(unit), isaPeak > 0, isaPeak.isFinite else { return nil }
        return g / (isaPeak * Double(threads))
    }
}

struct RatioResult {
    var variant: String
    var reference: String
    var speedup: Stats  // reference seconds / variant seconds, per round
}

struct UnitResult {
    var unit: BenchUnit
    var variants: [VariantResult]
    var ratios: [RatioResult]

    func summaryLine() -> String {
        let times = variants.map { "\($0.name) \(BenchReport.duration($0.seconds.median))" }.joined(separator: ", ")
        let speed = ratios.map { "\($0.variant)/\($0.reference) ×\(BenchReport.ratio($0.speedup.median))" }.joined(separator: ", ")
        return times + (speed.isEmpty ? "" : "; speedup " + speed)
    }

    /// `isaPeak`: one core's measured multiply-add peak of the widest SIMD build (GFLOP/s), the reference of every
    /// variant's `fraction_of_peak`.
    func toJSON(isaPeak: Double) -> JSONValue {
        [
            "config": .string(unit.config),
            "unit": .string(unit.name),
            "shape": unit.shape.toJSON(),
            "rate_unit": .string(unit.rateLabel),
            "flops_per_iteration": unit.flops.map { .number($0) } ?? .null,
            "variants": .array(variants.map { v in
                [
                    "name": .string(v.name),
                    "iterations_per_round": .int(v.iterationsPerRound),
                    "seconds_per_iteration": v.seconds.toJSON(),
                    "rate_per_second": .number(1 / v.seconds.median),
                    "gflops": v.gflops(unit).map { .number($0) } ?? .null,
                    "threads": .int(v.threads),
                    "fraction_of_peak": v.fractionOfPeak(unit, isaPeak: isaPeak).map { .number($0) } ?? .null,
                ]
            }),
            "ratios": .array(ratios.map { r in
                [
                    "variant": .string(r.variant), "reference": .string(r.reference),
                    "speedup_median": .number(r.speedup.median), "speedup_p10": .number(r.speedup.p10),
                    "speedup_p90": .number(r.speedup.p90), "per_round": .array(r.speedup.samples.map { .number($0) }),
                ]
            }),
        ]
    }
}

enum BenchRunner {
    /// Warm-up and calibration per variant, then `repeats` alternating rounds.
    static func measure(unit: BenchUnit, variants: [BenchVariant], repeats: Int, minTime: Double) throws -> UnitResult {
        var bodies: [(Int) -> Void] = []
        var iterations: [Int] = []
        for v in variants {
            let body = try v.make(unit)
            // Warm-up and calibration: one iteration, then (if fast) one batch sized to about min-time.
            var t0 = BenchClock.now()
            body(1)
            var perIteration = BenchClock.now() - t0
            var count = iterationsFor(perIteration, minTime)
            if count > 1 {
                t0 = BenchClock.now()
                body(count)
                perIteration = (BenchClock.now() - t0) / Double(count)
                count = iterationsFor(perIteration, minTime)
            }
            bodies.append(body)
            iterations.append(count)
        }
        var samples = [[Double]](repeating: [], count: variants.count)
        for round in 0..<repeats {
            let order = round % 2 == 0 ? Array(variants.indices) : Array(variants.indices.reversed())
            for i in order {
                let t0 = BenchClock.now()
                bodies[i](iterations[i])
                samples[i].append((BenchClock.now() - t0) / Double(iterations[i]))
            }
        }
        let results = variants.indices.map {
            VariantResult(
                name: variants[$0].name, iterationsPerRound: iterations[$0], seconds: Stats(samples[$0]),
                threads: variants[$0].threads)
        }
        var ratios: [RatioResult] = []
        for j in variants.indices.dropFirst() {
            // Against the reference (first) variant, and against each later-listed earlier one (e.g. simd vs scalar).
            for i in 0..<j {
                let perRound = zip(samples[i], samples[j]).map { $0 / $1 }
                ratios.append(RatioResult(variant: variants[j].name, reference: variants[i].name, speedup: Stats(perRound)))
            }
        }
        return UnitResult(unit: unit, variants: results, ratios: ratios)
    }

    static func iterationsFor(_ perIteration: Double, _ minTime: Double) -> Int {
        guard perIteration > 0 else { return 1_000_000 }
        return max(1, min(1_000_000_000, Int((minTime / perIteration).rounded(.up))))
    }
}

// MARK: - Report

enum BenchReport {
    static func duration(_ s: Double) -> String {
        if !s.isFinite { return "-" }
        if s >= 1 { return String(format: "%.3g s", s) }
        if s >= 1e-3 { return String(format: "%.3g ms", s * 1e3) }
        if s >= 1e-6 { return String(format: "%.3g µs", s * 1e6) }
        return String(format: "%.3g ns", s * 1e9)
    }

    static func ratio(_ r: Double) -> String {
        r >= 100 ? String(format: "%.0f", r) : r >= 10 ? String(format: "%.1f", r) : String(format: "%.2f", r)
    }

    static func rate(_ r: Double) -> String {
        if r >= 1e6 { return String(format: "%.3gM", r / 1e6) }
        if r >= 1e3 { return String(format: "%.3gk", r / 1e3) }
        return String(format: "%.3g", r)
    }

    static func pad(_ s: String, _ w: Int) -> String {
        s.count >= w ? s : s + String(repeating: " ", count: w - s.count)
    }

    /// `isaPeak`: one core's measured multiply-add peak (GFLOP/s), the reference of the "% peak" column.
    static func table(
        _ results: [UnitResult], variants: [BenchVariant], peak: Double, isaPeak: Double, machine: MachineInfo
    ) -> String {
        var rows: [[String]] = [["config", "unit", "shape", "variant", "median", "p10–p90", "rate", "GFLOP/s", "% peak", "speedup (p10–p90)"]]
        for r in results {
            for v in r.variants {
                let speedups = r.ratios.filter { $0.variant == v.name }.map {
                    "×\(ratio($0.speedup.median)) vs \($0.reference) (\(ratio($0.speedup.p10))–\(ratio($0.speedup.p90)))"
                }
                rows.append([
                    r.unit.config, r.unit.name, r.unit.shape.label, v.name, duration(v.seconds.median),
                    "\(duration(v.seconds.p10))–\(duration(v.seconds.p90))",
                    "\(rate(1 / v.seconds.median)) \(r.unit.rateLabel)",
                    v.gflops(r.unit).map { String(format: "%.2f", $0) } ?? "",
                    v.fractionOfPeak(r.unit, isaPeak: isaPeak).map { String(format: "%.1f %%", 100 * $0) } ?? "",
                    speedups.joined(separator: "; "),
                ])
            }
        }
        let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        var out = rows.map { row in
            row.indices.map { pad(row[$0], widths[$0]) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        out.insert(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)), at: 1)
        out.append("")
        out.append(String(format: "one thread (lockstep-Nt: N threads); build %@; baseline-ISA (SSE2) mul+add peak %.1f GFLOP/s. ", BenchBuild.configuration, peak) + machine.fmaPeakReference)
        out.append("GFLOP/s: dense-equivalent analytic flops (BENCHMARKS.md); % peak = GFLOP/s / (measured multiply-add peak per core × the variant's threads); speedup = reference time / variant time, per round, median")
        return out.joined(separator: "\n")
    }
}
