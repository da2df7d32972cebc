import Foundation
import Testing
import ToyMoE
import ToyMoEKernels

/// The fast scalar kernels against the naive Double reference, and the reference against finite differences.
@Suite struct ForwardBackwardTests {

    /// Architectures with awkward corners: dense, m = 1, n = 1, k = E, k = 2.
    static let shapes: [(n: Int, m: Int, E: Int, k: Int)] = [
        (20, 6, 1, 1), (5, 1, 1, 1), (1, 1, 3, 1), (7, 3, 3, 1), (7, 3, 3, 2), (6, 2, 4, 4), (9, 4, 5, 2),
    ]

    @Test("Forward pass: kernel (sparse dispatch, Float) equals naive (dense dispatch, Double)", arguments: 0..<7)
    func forwardMatchesNaive(_ index: Int) throws {
        let s = Self.shapes[index]
        let model = try Support.model(n: s.n, m: s.m, E: s.E, k: s.k, seed: UInt64(10 + index))
        let x = Support.batch(33, n: s.n, p: 0.4, seed: 5)
        let out = try model.forward(x)
        let naive = NaiveMoE(model)
        for (b, row) in Support.rows(x, n: s.n).enumerated() {
            let ref = naive.forward(row)
            #expect(Array(out.selected[(b * s.k)..<((b + 1) * s.k)]) == ref.selected)
            for i in 0..<s.n {
                #expect(abs(Double(out.reconstruction[b * s.n + i]) - ref.xhat[i]) < 1e-5)
            }
            for e in 0..<s.E {
                #expect(abs(Double(out.probabilities[b * s.E + e]) - ref.probs[e]) < 1e-6)
            }
        }
    }

    @Test("Sparse dispatch equals evaluating every expert densely (naive twin, both modes)")
    func sparseEqualsDense() throws {
        let model = try Support.model(n: 8, m: 3, E: 4, k: 2, seed: 3)
        var dense = NaiveMoE(model)
        var sparse = dense
        dense.dispatch = .dense
        sparse.dispatch = .sparse
        let xs = Support.rows(Support.batch(50, n: 8, p: 0.5, seed: 8), n: 8)
        for x in xs {
            #expect(dense.forward(x).xhat == sparse.forward(x).xhat)
        }
        let imp = [Double](repeating: 1, count: 8)
        let gd = NaiveMoE.flatten(dense.gradients(xs, importance: imp, normalization: .sumOverFeatures, lbAlpha: 0.01))
        let gs = NaiveMoE.flatten(sparse.gradients(xs, importance: imp, normalization: .sumOverFeatures, lbAlpha: 0.01))
        #expect(gd == gs)
    }

    @Test("Hand-set weights: x̂ = Σ_T g_e ReLU(W_e W_eᵀ x + b_e), ReLU inside each expert, renormalized top-2 gates")
    func handSetForward() throws {
        // n = 2, m = 1, E = 3, k = 2. W_0 = (1, 0), W_1 = (0, 2), W_2 = (1, 1); b = 0 except b_2 = (−5, −5).
        // gate rows: z = (x1, x2, 0). For x = (0.5, 0.25): z = (0.5, 0.25, 0), top-2 = {0, 1}.
        let model = try Model(config: ModelConfig(featureCount: 2, hiddenCount: 1, expertCount: 3, activeExpertCount: 2))
        try model.setValues(.W, [1, 0, 0, 2, 1, 1])
        try model.setValues(.bFinal, [0, 0, 0, -0.1, -5, -5])
        try model.setValues(.gate, [1, 0, 0, 1, 0, 0])
        let out = try model.forward([0.5, 0.25])
        let e0 = exp(0.5), e1 = exp(0.25), e2 = 1.0
        let p0 = e0 / (e0 + e1 + e2), p1 = e1 / (e0 + e1 + e2)
        let g0 = p0 / (p0 + p1), g1 = p1 / (p0 + p1)
        // expert 0: h = 0.5, y = ReLU((0.5, 0)) = (0.5, 0)
        // expert 1: h = 0.5, y = ReLU((0, 1.0) + (0, −0.1)) = (0, 0.9)
        #expect(out.selected == [0, 1])
        #expect(abs(Double(out.gates[0]) - g0) < 1e-6 && abs(Double(out.gates[1]) - g1) < 1e-6)
        #expect(abs(Double(out.reconstruction[0]) - g0 * 0.5) < 1e-6)
        #expect(abs(Double(out.reconstruction[1]) - g1 * 0.9) < 1e-6)
    }

    @Test("Gradients: kernel (Float) equals naive analytic (Double)", arguments: [false, true], 0..<7)
    func gradientsMatchNaive(lb: Bool, index: Int) throws {
        let s = Self.shapes[index]
        let model = try Support.model(n: s.n, m: s.m, E: s.E, k: s.k, seed: UInt64(40 + index))
        var cfg = TrainingConfig()
        cfg.batchSize = 24
        cfg.loadBalancing = lb
        cfg.lossNormalization = index % 2 == 0 ? .sumOverFeatures : .meanOverFeatures
        let imp = Schedules.geometric(base: 0.8, count: s.n)
        let data = DataDistribution(featureProbability: [Float](repeating: 0.5, count: s.n), importance: imp)
        let trainer = try Trainer(model: model, data: data, config: cfg, seed: 1)
        let x = Support.batch(24, n: s.n, p: 0.5, seed: 77)
        let got = try trainer.gradient(for: x)
        let naive = NaiveMoE(model)
        let rows = Support.rows(x, n: s.n)
        let want = NaiveMoE.flatten(
            naive.gradients(rows, importance: imp.map(Double.init), normalization: cfg.lossNormalization,
                            lbAlpha: lb ? 0.01 : nil))
        let ref = naive.loss(rows, importance: imp.map(Double.init), normalization: cfg.lossNormalization, lbAlpha: lb ? 0.01 : nil)
        #expect(abs(got.loss - ref.total) < 1e-5 * max(1, ref.total))
        let scale = max(Support.maxAbs(want), 1e-3)
        for (g, w) in zip(got.gradient, want) {
            #expect(abs(Double(g) - w) < 2e-5 * scale, "gradient entry differs: \(g) vs \(w)")
        }
    }

    /// Central differences of the naive Double loss. An entry is compared only when the perturbation leaves every
    /// discrete decision unchanged (the set of active ReLUs and the selected experts of every sample): across a
    /// ReLU kink or a routing switch the loss is not differentiable and a finite difference means nothing.
    /// The test also asserts that such skipped entries are rare, so it cannot pass vacuously.
    func finiteDifferenceCheck(n: Int, m: Int, E: Int, k: Int, lb: Bool, normalization: LossNormalization) throws {
        let model = try Support.model(n: n, m: m, E: E, k: k, seed: UInt64(n * 100 + E * 10 + k))
        let naive = NaiveMoE(model)
        let xs = Support.rows(Support.batch(16, n: n, p: 0.6, seed: 3), n: n)
        let imp = (0..<n).map { 1.0 - 0.05 * Double($0) }
        let alpha: Double? = lb ? 0.01 : nil
        func signature(_ net: NaiveMoE) -> [Int] {
            xs.flatMap { x -> [Int] in
                let s = net.forward(x)
                return s.selected + s.pre.flatMap { $0.map { $0 > 0 ? 1 : 0 } }
            }
        }
        let base = naive.flatParameters
        let baseSignature = signature(naive)
        let analytic = NaiveMoE.flatten(naive.gradients(xs, importance: imp, normalization: normalization, lbAlpha: alpha))
        let h = 1e-6
        var compared = 0, skipped = 0
        for idx in base.indices {
            var plus = base, minus = base
            plus[idx] += h
            minus[idx] -= h
            let np = naive.with(flat: plus), nm = naive.with(flat: minus)
            if signature(np) != baseSignature || signature(nm) != baseSignature {
                skipped += 1
                continue
            }
            let lp = np.loss(xs, importance: imp, normalization: normalization, lbAlpha: alpha).total
            let lm = nm.loss(xs, importance: imp, normalization: normalization, lbAlpha: alpha).total
            let fd = (lp - lm) / (2 * h)
            #expect(abs(fd - analytic[idx]) < 1e-6 + 1e-5 * abs(fd), "parameter \(idx): fd \(fd) vs analytic \(analytic[idx])")
            compared += 1
        }
        #expect(compared > 0)
        #expect(skipped * 20 <= base.count, "too many entries at a kink: \(skipped) of \(base.count)")
    }

    @Test("Finite differences: dense model (E = 1), LB off and on")
    func fdDense() throws {
        try finiteDifferenceCheck(n: 6, m: 3, E: 1, k: 1, lb: false, normalization: .sumOverFeatures)
        try finiteDifferenceCheck(n: 6, m: 3, E: 1, k: 1, lb: true, normalization: .meanOverFeatures)
    }

    @Test("Finite differences: MoE k = 1, LB off and on")
    func fdMoEk1() throws {
        try finiteDifferenceCheck(n: 5, m: 2, E: 3, k: 1, lb: false, normalization: .sumOverFeatures)
        try finiteDifferenceCheck(n: 5, m: 2, E: 3, k: 1, lb: true, normalization: .meanOverFeatures)
    }

    @Test("Finite differences: MoE k = 2 (renormalized gate), LB off and on")
    func fdMoEk2() throws {
        try finiteDifferenceCheck(n: 5, m: 2, E: 3, k: 2, lb: false, normalization: .sumOverFeatures)
        try finiteDifferenceCheck(n: 5, m: 2, E: 4, k: 2, lb: true, normalization: .meanOverFeatures)
    }

    @Test("ReLU kink: a pre-activation exactly 0 gets derivative 0 (PyTorch's convention), the left derivative")
    func reluKink() throws {
        // n = 1, m = 1, E = 1: pre = w²x + b. With w = 1, x = 0.5, b = −0.5: pre = 0 exactly.
        let model = try Model(config: .dense(featureCount: 1, hiddenCount: 1))
        try model.setValues(.W, [1])
        try model.setValues(.bFinal, [-0.5])
        try model.setValues(.gate, [0])
        var cfg = TrainingConfig()
        cfg.batchSize = 1
        let trainer = try Trainer(model: model, data: .uniform(featureCount: 1, probability: 1), config: cfg, seed: 0)
        let g = try trainer.gradient(for: [0.5])
        // x̂ = ReLU(0) = 0, loss = 0.25. With ReLU'(0) = 0, only nothing flows: dW = db = 0.
        #expect(g.loss == 0.25)
        #expect(g.gradient[0] == 0 && g.gradient[1] == 0)
        // One-sided check: moving b up by h makes x̂ = h, and the loss falls with slope −2·0.5 = −1 on that side,
        // while moving it down leaves the loss flat (slope 0): the kink is real and 0 is the left derivative.
        let naive = NaiveMoE(model)
        let h = 1e-7
        let l0 = naive.loss([[0.5]], importance: [1], normalization: .sumOverFeatures, lbAlpha: nil).total
        var up = naive
        up.b[0][0] += h
        var down = naive
        down.b[0][0] -= h
        let right = (up.loss([[0.5]], importance: [1], normalization: .sumOverFeatures, lbAlpha: nil).total - l0) / h
        let left = (l0 - down.loss([[0.5]], importance: [1], normalization: .sumOverFeatures, lbAlpha: nil).total) / h
        #expect(abs(right + 1) < 1e-5)
        #expect(left == 0)
    }

    @Test("Router gradient is exactly 0 for k = 1 without LB, and nonzero for k = 2 (docs/PAPER.md#router-gradient)")
    func routerGradient() throws {
        for k in [1, 2] {
            let model = try Support.model(n: 10, m: 3, E: 4, k: k, seed: 12)
            var cfg = TrainingConfig()
            cfg.batchSize = 256
            let trainer = try Trainer(model: model, data: .uniform(featureCount: 10, probability: 0.3), config: cfg, seed: 2)
            let x = Support.batch(256, n: 10, p: 0.3, seed: 4)
            let g = try trainer.gradient(for: x).gradient.map(Double.init)
            let L = model.layout
            let gW = Support.maxAbs(Array(g[L.wOffset..<L.bOffset]))
            let gG = Support.maxAbs(Array(g[L.gOffset..<L.count]))
            // The naive twin differentiates the renormalization literally: 1/S − π/S² with π = S.
            let naive = NaiveMoE(model)
            let ng = naive.gradients(
                Support.rows(x, n: 10), importance: [Double](repeating: 1, count: 10), normalization: .sumOverFeatures,
                lbAlpha: nil)
            let naiveG = Support.maxAbs(ng.dG.flatMap { $0 })
            #expect(gW > 1e-3)
            if k == 1 {
                #expect(gG == 0)
                #expect(naiveG <= 1e-12 * gW, "literal derivative of π/π should vanish up to rounding: \(naiveG)")
            } else {
                #expect(gG > 1e-4 * gW, "k = 2 must train the router: |dG| = \(gG), |dW| = \(gW)")
                #expect(naiveG > 1e-4 * gW)
            }
        }
    }

    @Test("Ties: zero gate and x = 0 go to expert 0 by default, to the last expert with highestIndex (docs/PAPER.md#ties)")
    func tieRule() throws {
        for E in [2, 3, 5] {
            var config = ModelConfig(featureCount: 4, hiddenCount: 2, expertCount: E, activeExpertCount: 1)
            let zeroGate = Initialization(gate: .zero)
            let low = try Model(config: config, initialization: zeroGate, seed: 1)
            #expect(try low.forward([0, 0, 0, 0]).selected == [0])
            #expect(low.route([0.3, 0.2, 0.9, 0.1]).selected == [0])  // zero gate: every input ties
            config.tieBreak = .highestIndex
            let high = try Model(config: config, initialization: zeroGate, seed: 1)
            #expect(try high.forward([0, 0, 0, 0]).selected == [E - 1])
            var naive = NaiveMoE(high)
            naive.tieBreak = .highestIndex
            #expect(naive.forward([0, 0, 0, 0]).selected == [E - 1])
        }
        // k = 2 with all tied: the two lowest indices, in order.
        let m2 = try Model(
            config: ModelConfig(featureCount: 3, hiddenCount: 1, expertCount: 4, activeExpertCount: 2),
            initialization: Initialization(gate: .zero))
        let out = try m2.forward([0, 0, 0])
        #expect(out.selected == [0, 1])
        #expect(out.gates == [0.5, 0.5])
    }

    @Test("Load balancing: E = 1 gives exactly α = 0.01; a balanced hard router gives α (docs/PAPER.md#load-balancing)")
    func loadBalancingValues() throws {
        let dense = try Support.model(n: 5, m: 2, E: 1, k: 1)
        var cfg = TrainingConfig()
        cfg.batchSize = 64
        cfg.loadBalancing = true
        let t = try Trainer(model: dense, data: .uniform(featureCount: 5, probability: 0.5), config: cfg, seed: 1)
        let g = try t.gradient(for: Support.batch(64, n: 5, p: 0.5, seed: 1))
        #expect(abs(g.loadBalancing - 0.01) < 1e-9)
        // E = 2, gate = (1000·e1, 1000·e2): x = (1, 0) routes to 0 with π ≈ (1, 0); x = (0, 1) to 1.
        // Half the batch each: f = (½, ½), P ≈ (½, ½), L = α·2·(¼ + ¼) = α.
        let moe = try Model(config: ModelConfig(featureCount: 2, hiddenCount: 1, expertCount: 2, activeExpertCount: 1))
        try moe.setValues(.gate, [1000, 0, 0, 1000])
        var cfg2 = TrainingConfig()
        cfg2.batchSize = 4
        cfg2.loadBalancing = true
        cfg2.loadBalancingAlpha = 0.03
        let t2 = try Trainer(model: moe, data: .uniform(featureCount: 2, probability: 1), config: cfg2, seed: 1)
        let g2 = try t2.gradient(for: [1, 0, 0, 1, 1, 0, 0, 1])
        #expect(abs(g2.loadBalancing - 0.03) < 1e-7)
        // All to one expert: f = (1, 0), P = (1, 0): L = α·2·1 = 2α.
        let g3 = try t2.gradient(for: [1, 0, 1, 0, 1, 0, 1, 0])
        #expect(abs(g3.loadBalancing - 0.06) < 1e-7)
    }
}

