import Testing
import Foundation
import ToyMoE
import ToyMoEKernels

/// Every SIMD build this CPU runs (`simd-baseline`, and `simd-avx2` / `simd-avx512` where supported) against the
/// scalar kernels (`MoEKernels`) on awkward shapes (sizes that are not multiples of the SIMD widths, n or m of 1,
/// E = 1, k = E), and against the naive Double twin.
@Suite struct SIMDKernelTests {

    /// The SIMD variants this machine can execute; the others are compiled but cannot be run here
    /// (`ISACoverageTests` checks the CPU detection itself).
    static let variants = KernelVariant.supported.filter(\.isSIMD)

    static let featureCounts = [1, 3, 7, 16, 33, 50]
    static let hiddenCounts = [1, 2, 5, 8, 17, 30]

    /// Random fill: Gaussian weights; inputs uniform in [0, 1) with about 40% exact zeros (the sparse-skip paths),
    /// and one all-zero sample per batch of ≥ 5 (every logit exactly 0: the tie rule decides the experts).
    static func fill(_ p: UnsafeMutablePointer<Float>, _ count: Int, rng: inout RandomStream, sparse: Bool = false) {
        for i in 0..<count {
            if sparse {
                let (u, r) = rng.nextFloatPair()
                p[i] = r < 0.4 ? 0 : u
            } else {
                p[i] = Float(rng.nextGaussian())
            }
        }
    }

    /// |got − want| ≤ tol · max|want| over one array (scale-relative: sums of products of O(1) terms carry errors
    /// relative to the terms, not to a possibly cancelled result). An all-zero reference must be matched exactly.
    static func agree(
        _ got: UnsafePointer<Float>, _ want: UnsafePointer<Float>, _ count: Int, tol: Float = 1e-5,
        _ what: @autoclosure () -> String
    ) {
        var scale: Float = 0
        for i in 0..<count { scale = max(scale, abs(want[i])) }
        var worst: Float = 0
        var worstIndex = -1
        for i in 0..<count {
            let d = abs(got[i] - want[i])
            if d > worst || d.isNaN {
                worst = d
                worstIndex = i
            }
        }
        let ok = scale == 0 ? worst == 0 : worst <= tol * scale
        #expect(ok, "\(what()): index \(worstIndex) differs by \(worst) (scale \(scale))")
    }

    struct Case: CustomStringConvertible {
        var n, m, E, k, batch: Int
        var lb: Bool
        var normalization: LossNormalization
        var tieBreak: TieBreak
        /// Inputs Gaussian with no zeros (every feature present) instead of sparse uniform ones.
        var denseInputs = false
        var description: String {
            "n=\(n) m=\(m) E=\(E) k=\(k) B=\(batch) lb=\(lb) \(normalization.rawValue) tie=\(tieBreak)"
                + (denseInputs ? " dense inputs" : "")
        }
    }

    /// Every combination of E ∈ {1, 3}, k ∈ {1, E}, B ∈ {1, 5, 64}, LB off/on and both loss normalizations for one
    /// (n, m); the tie rule alternates between cases.
    static func cases(n: Int, m: Int) -> [Case] {
        var out: [Case] = []
        for E in [1, 3] {
            for k in Set([1, E]).sorted() {
                for batch in [1, 5, 64] {
                    for lb in [false, true] {
                        for normalization in LossNormalization.allCases {
                            let tie: TieBreak = out.count % 2 == 0 ? .lowestIndex : .highestIndex
                            out.append(Case(n: n, m: m, E: E, k: k, batch: batch, lb: lb, normalization: normalization, tieBreak: tie))
                        }
                    }
                }
            }
        }
        return out
    }

    static func run(_ c: Case, seed: UInt64, _ K: KernelSet) {
        let L = MoELayout(n: c.n, m: c.m, experts: c.E, active: c.k)
        let B = c.batch, n = c.n, m = c.m, E = c.E, k = c.k
        var rng = RandomStream(seed: seed, path: [UInt64(n), UInt64(m), UInt64(E), UInt64(k), UInt64(B)])
        let params = UnsafeMutablePointer<Float>.allocate(capacity: L.count)
        defer { params.deallocate() }
        fill(params, L.count, rng: &rng)
        let importance = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { importance.deallocate() }
        for i in 0..<n { importance[i] = 0.25 + rng.nextFloat() }

        let scalarWS = Workspace(layout: L, batch: B), simdWS = Workspace(layout: L, batch: B)
        fill(scalarWS.x, B * n, rng: &rng, sparse: !c.denseInputs)
        if B >= 5 { for i in 0..<n { scalarWS.x[2 * n + i] = 0 } }
        simdWS.x.update(from: scalarWS.x, count: B * n)
        let sa = scalarWS.activations, va = simdWS.activations

        // Forward: every activation the backward pass reads.
        MoEKernels.forward(params: params, layout: L, batch: B, tieBreak: c.tieBreak, act: sa)
        K.forward(params, L, B, c.tieBreak, va)
        var sameExperts = true
        for t in 0..<(B * k) where sa.selected[t] != va.selected[t] { sameExperts = false }
        #expect(sameExperts, "\(K.variant) \(c): selected experts differ")
        guard sameExperts else { return }
        agree(va.probs, sa.probs, B * E, "\(c): probs")
        agree(va.gates, sa.gates, B * k, "\(c): gates")
        agree(va.hidden, sa.hidden, B * k * m, "\(c): hidden")
        agree(va.preact, sa.preact, B * k * n, "\(c): preact")
        agree(va.xhat, sa.xhat, B * n, "\(c): xhat")

        // Loss and L_LB on each variant's own forward.
        let scale = c.normalization == .sumOverFeatures ? 1 / Double(B) : 1 / Double(B * n)
        let lossS = MoEKernels.reconstructionLoss(x: sa.x, xhat: sa.xhat, importance: importance, batch: B, n: n, scale: scale)
        let lossV = MoEKernels.reconstructionLoss(x: va.x, xhat: va.xhat, importance: importance, batch: B, n: n, scale: scale)
        #expect(abs(lossV - lossS) <= 1e-5 * max(lossS, 1e-6), "\(c): loss \(lossV) vs \(lossS)")
        let alpha: Float? = c.lb ? 0.01 : nil
        if let alpha {
            _ = MoEKernels.loadBalancing(layout: L, batch: B, alpha: alpha, act: sa)
            _ = MoEKernels.loadBalancing(layout: L, batch: B, alpha: alpha, act: va)
        }

        // Backward from the scalar forward's activations for both kernels, so that a pre-activation within rounding
        // of the ReLU kink cannot flip a mask between them; the grads start from the same nonzero values to check
        // that they are accumulated into, not overwritten.
        let gS = UnsafeMutablePointer<Float>.allocate(capacity: L.count)
        let gV = UnsafeMutablePointer<Float>.allocate(capacity: L.count)
        defer {
            gS.deallocate()
            gV.deallocate()
        }
        fill(gS, L.count, rng: &rng)
        for i in 0..<L.count { gS[i] *= 0.01 }
        gV.update(from: gS, count: L.count)
        MoEKernels.backward(
            params: params, grads: gS, layout: L, batch: B, importance: importance, lossScale: Float(scale),
            lbAlpha: alpha, act: sa)
        let dxhatS = Array(UnsafeBufferPointer(start: sa.dxhat, count: n))
        let dgateS = Array(UnsafeBufferPointer(start: sa.dgate, count: k))
        K.backward(params, gV, L, B, importance, Float(scale), alpha, sa)
        agree(gV + L.wOffset, gS + L.wOffset, E * n * m, "\(c): dW")
        agree(gV + L.bOffset, gS + L.bOffset, E * n, "\(c): db")
        agree(gV + L.gOffset, gS + L.gOffset, E * n, "\(c): dG")
        // The last sample's scratch (dx̂ is computed in the same operation order: bitwise equal).
        #expect(Array(UnsafeBufferPointer(start: sa.dxhat, count: n)) == dxhatS, "\(c): dxhat")
        dgateS.withUnsafeBufferPointer { agree(sa.dgate, $0.baseAddress!, k, "\(c): dgate") }
    }

    @Test("SIMD forward/loss/backward equal the scalar kernels on awkward shapes", arguments: featureCounts, hiddenCounts)
    func simdMatchesScalar(n: Int, m: Int) {
        for v in Self.variants {
            for (index, c) in Self.cases(n: n, m: m).enumerated() {
                Self.run(c, seed: UInt64(1000 + index), KernelSet(v))
            }
            for path in KernelSet(v).paths {
                for (index, c) in Self.cases(n: n, m: m).enumerated() {
                    Self.run(c, seed: UInt64(2000 + index), KernelSet(v).with(forward: path.forward, backward: path.backward))
                }
            }
        }
    }

    /// The tiled path (`KernelSet.paths`' "tiled", the one wide experts take) on batches that fill several of its
    /// backward panels (48 members) and end in a partial panel and a partial 6-member tile, on shapes whose n and m
    /// are not multiples of its 6-feature, 6-member and 16-unit tiles: dense and routed (E = 3, k = 1 and k = E,
    /// some experts with few members), sparse and dense inputs. The shapes of `simdMatchesScalar` cover one panel.
    @Test(
        "Tiled SIMD path equals the scalar kernels across several backward panels (sparse and dense inputs)",
        arguments: [(n: 40, m: 9), (n: 67, m: 30), (n: 17, m: 33)], [false, true])
    func tiledPanelsMatchScalar(shape: (n: Int, m: Int), denseInputs: Bool) throws {
        for v in Self.variants {
            let tiled = try #require(KernelSet(v).paths.first { $0.name == "tiled" })
            let K = KernelSet(v).with(forward: tiled.forward, backward: tiled.backward)
            for (index, (E, k)) in [(1, 1), (3, 1), (3, 3)].enumerated() {
                for batch in [49, 150] {
                    let c = Case(
                        n: shape.n, m: shape.m, E: E, k: k, batch: batch, lb: index == 1,
                        normalization: batch == 49 ? .meanOverFeatures : .sumOverFeatures,
                        tieBreak: index == 2 ? .highestIndex : .lowestIndex, denseInputs: denseInputs)
                    Self.run(c, seed: UInt64(3000 + 10 * index + batch), K)
                }
            }
        }
    }

    @Test("SIMD AdamW is bitwise equal to the scalar AdamW (tails included)", arguments: [1, 3, 7, 8, 15, 16, 17, 33, 250])
    func adamWMatchesScalar(count: Int) {
        var rng = RandomStream(seed: 3, path: [UInt64(count)])
        func buffer() -> UnsafeMutablePointer<Float> { .allocate(capacity: count) }
        let pS = buffer(), mS = buffer(), vS = buffer(), pV = buffer(), mV = buffer(), vV = buffer(), g = buffer()
        defer { for p in [pS, mS, vS, pV, mV, vV, g] { p.deallocate() } }
        Self.fill(pS, count, rng: &rng)
        Self.fill(mS, count, rng: &rng)
        Self.fill(vS, count, rng: &rng)
        for i in 0..<count { vS[i] = abs(vS[i]) * 0.01 }
        pV.update(from: pS, count: count)
        mV.update(from: mS, count: count)
        vV.update(from: vS, count: count)
        let start: [[Float]] = [pS, mS, vS].map { (p: UnsafeMutablePointer<Float>) in Array(UnsafeBufferPointer(start: p, count: count)) }
        var grads: [[Float]] = []
        for step in 1...5 {
            Self.fill(g, count, rng: &rng)
            if count > 2 { g[1] = 0 }
            grads.append(Array(UnsafeBufferPointer(start: g, count: count)))
            MoEKernels.adamW(
                params: pS, grads: g, m1: mS, m2: vS, count: count, step: step, lr: 0.01, beta1: 0.9, beta2: 0.999,
                eps: 1e-8, weightDecay: 0.01)
        }
        for v in Self.variants {
            let K = KernelSet(v)
            pV.update(from: start[0], count: count)
            mV.update(from: start[1], count: count)
            vV.update(from: start[2], count: count)
            for (t, gt) in grads.enumerated() {
                gt.withUnsafeBufferPointer { K.adamW(pV, $0.baseAddress!, mV, vV, count, t + 1, 0.01, 0.9, 0.999, 1e-8, 0.01) }
            }
            for (a, b) in [(pV, pS), (mV, mS), (vV, vS)] {
                let got = Array(UnsafeBufferPointer(start: a, count: count))
                let want = Array(UnsafeBufferPointer(start: b, count: count))
                #expect(got == want, "\(v)")
            }
        }
    }

    /// SIMD kernels end to end (SIMD forward → loss → L_LB → SIMD backward) against `NaiveMoE` in Double.
    @Test(
        "SIMD kernels equal the naive Double twin",
        arguments: [(n: 33, m: 17, E: 1, k: 1), (n: 20, m: 6, E: 3, k: 2), (n: 7, m: 5, E: 3, k: 3), (n: 16, m: 1, E: 3, k: 1), (n: 41, m: 12, E: 3, k: 2)],
        [false, true])
    func simdMatchesNaive(shape s: (n: Int, m: Int, E: Int, k: Int), lb: Bool) throws {
        for v in Self.variants {
            try simdMatchesNaive(shape: s, lb: lb, KernelSet(v))
            for path in KernelSet(v).paths {
                try simdMatchesNaive(shape: s, lb: lb, KernelSet(v).with(forward: path.forward, backward: path.backward))
            }
        }
    }

    /// The tiled path against the naive twin on batches of several backward panels (48 members), feature
    /// probability 1 (dense inputs) and 0.1, n and m not multiples of the tiles.
    @Test(
        "Tiled SIMD path equals the naive Double twin across several backward panels",
        arguments: [(n: 50, m: 30, E: 1, k: 1), (n: 23, m: 12, E: 3, k: 2)], [Float(1), 0.1])
    func tiledMatchesNaive(shape s: (n: Int, m: Int, E: Int, k: Int), p: Float) throws {
        for v in Self.variants {
            let tiled = try #require(KernelSet(v).paths.first { $0.name == "tiled" })
            let K = KernelSet(v).with(forward: tiled.forward, backward: tiled.backward)
            try simdMatchesNaive(shape: s, lb: s.E > 1, K, batch: 131, p: p)
        }
    }

    func simdMatchesNaive(
        shape s: (n: Int, m: Int, E: Int, k: Int), lb: Bool, _ K: KernelSet, batch B: Int = 24, p: Float = 0.5
    ) throws {
        let model = try Support.model(n: s.n, m: s.m, E: s.E, k: s.k, seed: UInt64(70 + s.n))
        let L = model.layout
        let normalization: LossNormalization = lb ? .meanOverFeatures : .sumOverFeatures
        let x = Support.batch(B, n: s.n, p: p, seed: 11)
        let importance = (0..<s.n).map { Float(0.5 + 0.5 / Double($0 + 1)) }
        let ws = Workspace(layout: L, batch: B)
        let act = ws.activations
        x.withUnsafeBufferPointer { ws.x.update(from: $0.baseAddress!, count: B * s.n) }
        let params = UnsafePointer(model.parameters.baseAddress!)
        K.forward(params, L, B, .lowestIndex, act)

        let naive = NaiveMoE(model)
        let rows = Support.rows(x, n: s.n)
        for (b, row) in rows.enumerated() {
            let ref = naive.forward(row)
            #expect((0..<s.k).map { Int(act.selected[b * s.k + $0]) } == ref.selected)
            for i in 0..<s.n { #expect(abs(Double(act.xhat[b * s.n + i]) - ref.xhat[i]) < 1e-5) }
            for e in 0..<s.E { #expect(abs(Double(act.probs[b * s.E + e]) - ref.probs[e]) < 1e-6) }
        }

        let scale = normalization == .sumOverFeatures ? 1 / Double(B) : 1 / Double(B * s.n)
        let alpha: Float? = lb ? 0.01 : nil
        var loss = importance.withUnsafeBufferPointer {
            MoEKernels.reconstructionLoss(x: act.x, xhat: act.xhat, importance: $0.baseAddress!, batch: B, n: s.n, scale: scale)
        }
        if let alpha { loss += MoEKernels.loadBalancing(layout: L, batch: B, alpha: alpha, act: act) }
        let impD = importance.map(Double.init)
        let ref = naive.loss(rows, importance: impD, normalization: normalization, lbAlpha: lb ? 0.01 : nil)
        #expect(abs(loss - ref.total) < 1e-5 * max(1, ref.total))

        var grads = [Float](repeating: 0, count: L.count)
        grads.withUnsafeMutableBufferPointer { g in
            importance.withUnsafeBufferPointer { imp in
                K.backward(params, g.baseAddress!, L, B, imp.baseAddress!, Float(scale), alpha, act)
            }
        }
        let want = NaiveMoE.flatten(naive.gradients(rows, importance: impD, normalization: normalization, lbAlpha: lb ? 0.01 : nil))
        let gscale = max(Support.maxAbs(want), 1e-3)
        for (g, w) in zip(grads, want) {
            #expect(abs(Double(g) - w) < 2e-5 * gscale, "\(K.variant): gradient entry differs: \(g) vs \(w)")
        }
    }
}

/// The trainer with each SIMD build selected.
@Suite struct SIMDTrainerTests {
    @Test("Trainer with each SIMD build follows the scalar trainer step by step, and still shows Fig. 1's superposition")
    func simdTrainer() throws {
        func losses(_ k: KernelVariant) throws -> [Double] {
            let model = try Model(config: ModelConfig(featureCount: 12, hiddenCount: 3, expertCount: 3, activeExpertCount: 2), seed: 5)
            var cfg = TrainingConfig()
            cfg.steps = 60
            cfg.batchSize = 128
            cfg.loadBalancing = true
            return try Trainer(model: model, data: .uniform(featureCount: 12, probability: 0.3), config: cfg, seed: 5, kernels: k).run().history
        }
        let a = try losses(.scalar)
        for v in SIMDKernelTests.variants {
            let b = try losses(v)
            #expect(a.count == b.count)
            #expect(abs(a[0] - b[0]) <= 1e-6 * abs(a[0]), "\(v)")  // same parameters, same batch: rounding only
            for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-3 * abs(x), "scalar \(x) vs \(v) \(y)") }

            let model = try Model(config: .dense(featureCount: 20, hiddenCount: 6), seed: 1)
            var cfg = TrainingConfig()
            cfg.steps = 2500
            let data = DataDistribution.uniform(featureCount: 20, probability: 0.1, importance: Schedules.geometric(base: 0.7, count: 20))
            let trainer = try Trainer(model: model, data: data, config: cfg, seed: 1, kernels: v)
            #expect(trainer.kernels == v)
            _ = trainer.run()
            #expect(Metrics.geometrySummary(model.expertMatrices()[0]).representedCount >= 8, "\(v)")
        }
    }

    @Test("Kernel names: auto and simd pick the widest supported build, scalar/naive the scalar kernels; unknown or unsupported names are refused with a reason")
    func parse() throws {
        #expect(KernelVariant.parse("simd") == KernelVariant.bestSIMD)
        #expect(KernelVariant.parse("auto") == KernelVariant.bestSIMD)
        #expect(KernelVariant.parse("scalar") == .scalar)
        #expect(KernelVariant.parse("naive") == .scalar)
        #expect(KernelVariant.parse("simd-baseline") == .simdBaseline)
        #expect(KernelVariant.parse("avx9") == nil)
        guard case .failure(let unknown) = KernelVariant.resolve("avx9") else { Issue.record("avx9 accepted"); return }
        #expect(unknown.message.contains("unknown kernel variant 'avx9'") && unknown.message.contains("simd-avx2"))
        for v in KernelVariant.allCases where !v.isSupported {
            guard case .failure(let e) = KernelVariant.resolve(v.rawValue) else { Issue.record("\(v) accepted"); continue }
            #expect(e.message.contains("lacks"), "\(e.message)")
            // A trainer asked for it falls back to a variant this CPU runs instead of dying with SIGILL.
            #expect(KernelSet(v).variant == KernelVariant.bestSIMD)
        }
        #expect(KernelVariant.bestSIMD.isSupported)
    }
}

/// The run-time CPU check (`CToyMoECPU`, CPUID + XGETBV) against the kernel's own view in /proc/cpuinfo.
@Suite struct ISACoverageTests {
    @Test("CPU detection agrees with /proc/cpuinfo's flags for the x86-64-v3 and v4 feature sets")
    func detectionMatchesCPUInfo() throws {
        #if arch(x86_64) && os(Linux)
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            Issue.record("no flags line in /proc/cpuinfo")
            return
        }
        let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
        let v3 = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "abm", "xsave"].allSatisfy(flags.contains)
        let v4 = v3 && ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        #expect(KernelVariant.simdAVX2.isSupported == v3, "cpuinfo says v3 = \(v3)")
        #expect(KernelVariant.simdAVX512.isSupported == v4, "cpuinfo says v4 = \(v4)")
        print("ISA coverage on \(KernelVariant.cpuName): runs \(KernelVariant.supported.map(\.rawValue)); compiled but not runnable here: \(KernelVariant.allCases.filter { !$0.isSupported }.map(\.rawValue))")
        #endif
    }
}

/// One model's step split into two batch halves (`Trainer.splitsBatch`), on one or two threads.
@Suite struct SplitStepTests {
    static func trainer(_ model: Model, lb: Bool, split: Bool?, threads: Int, kernels: KernelVariant = .simdBaseline) throws -> Trainer {
        var cfg = TrainingConfig()
        cfg.steps = 30
        cfg.batchSize = 256
        cfg.loadBalancing = lb
        cfg.lossNormalization = .meanOverFeatures
        let t = try Trainer(
            model: model, data: .uniform(featureCount: model.featureCount, probability: 0.3), config: cfg, seed: 4,
            kernels: kernels, splitBatch: split)
        t.threads = threads
        return t
    }

    @Test("A split step gives the same bits on one and on two threads, for every runnable kernel variant")
    func threadsDoNotChangeResults() throws {
        for v in KernelVariant.supported {
            var finals: [[Float]] = []
            var histories: [[Double]] = []
            for threads in [1, 2] {
                let model = try Support.model(n: 40, m: 9, E: 3, k: 2, seed: 8)
                let t = try Self.trainer(model, lb: true, split: true, threads: threads, kernels: v)
                #expect(t.splitsBatch)
                histories.append(t.run().history)
                finals.append(Array(model.parameters))
            }
            #expect(finals[0] == finals[1], "\(v): parameters differ between 1 and 2 threads")
            #expect(histories[0] == histories[1], "\(v)")
        }
    }

    @Test("The split gradient (halves summed, α/2 per half) equals the naive whole-batch gradient, LB on and off",
          arguments: [false, true])
    func splitMatchesNaive(lb: Bool) throws {
        let model = try Support.model(n: 21, m: 10, E: 3, k: 2, seed: 12)
        let t = try Self.trainer(model, lb: lb, split: true, threads: 2)
        let B = 256, n = 21
        let x = Support.batch(B, n: n, p: 0.4, seed: 5)
        let (loss, _, _, grad) = try t.gradient(for: x)
        let naive = NaiveMoE(model)
        let rows = Support.rows(x, n: n)
        let importance = [Double](repeating: 1, count: n)
        let ref = naive.loss(rows, importance: importance, normalization: .meanOverFeatures, lbAlpha: lb ? 0.01 : nil)
        #expect(abs(loss - ref.total) <= 1e-5 * ref.total)
        let want = NaiveMoE.flatten(naive.gradients(rows, importance: importance, normalization: .meanOverFeatures, lbAlpha: lb ? 0.01 : nil))
        let scale = max(Support.maxAbs(want), 1e-4)
        var worst = 0.0
        for (g, w) in zip(grad, want) { worst = max(worst, abs(Double(g) - w)) }
        #expect(worst <= 2e-5 * scale, "worst gradient difference \(worst) (scale \(scale))")
        // The router gradient is really exercised (k = 2, and LB when on).
        let L = model.layout
        #expect(grad[L.gOffset..<L.count].contains { $0 != 0 })
    }

    @Test("Splitting is decided by shape (work per step and an even batch), never by the machine")
    func splitRule() {
        #expect(!Trainer.splitsBatch(layout: MoELayout(n: 2, m: 1, experts: 2, active: 1), batch: 512))
        #expect(Trainer.splitsBatch(layout: MoELayout(n: 400, m: 30, experts: 1, active: 1), batch: 1024))
        #expect(!Trainer.splitsBatch(layout: MoELayout(n: 400, m: 30, experts: 1, active: 1), batch: 1023))
    }
}
