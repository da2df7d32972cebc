import Foundation
import Testing
import ToyMoE
import ToyMoEKernels

@Suite struct OptimizerTests {

    /// Runs the AdamW kernel on one scalar for the given gradients.
    func adamW(theta0: Float, grads: [Float], lr: Double, wd: Double) -> [Float] {
        var p: [Float] = [theta0]
        var m: [Float] = [0]
        var v: [Float] = [0]
        var out: [Float] = []
        for (t, g) in grads.enumerated() {
            MoEKernels.adamW(
                params: &p, grads: [g], m1: &m, m2: &v, count: 1, step: t + 1, lr: lr, beta1: 0.9, beta2: 0.999,
                eps: 1e-8, weightDecay: wd)
            out.append(p[0])
        }
        return out
    }

    @Test("AdamW equals the torch.optim.AdamW formula, worked by hand")
    func adamWByHand() {
        // θ₀ = 1, g = 0.5 twice, lr = 0.1, λ = 0.01.
        // Step 1: θ ← 1·(1 − 0.1·0.01) = 0.999; m = 0.1·0.5 = 0.05; v = 0.001·0.25 = 0.00025;
        //   bc1 = 0.1, bc2 = 0.001; step = lr/bc1 = 1; denom = √0.00025/√0.001 + 1e-8 = 0.5 + 1e-8;
        //   θ = 0.999 − 0.05/(0.5 + 1e-8) = 0.899000002.
        // Step 2: θ ← 0.899000002·0.999 = 0.898101002; m = 0.05 + 0.1·(0.5 − 0.05) = 0.095;
        //   v = 0.999·0.00025 + 0.001·0.25 = 0.00049975; bc1 = 0.19, bc2 = 0.001999;
        //   denom = √(0.00049975/0.001999) + 1e-8 = 0.5 + 1e-8; θ = 0.898101002 − (0.1/0.19)·0.095/0.5 = 0.798101002.
        let got = adamW(theta0: 1, grads: [0.5, 0.5], lr: 0.1, wd: 0.01)
        #expect(abs(got[0] - 0.899000002) < 2e-7)
        #expect(abs(got[1] - 0.798101002) < 2e-7)

        // Sign change, no weight decay: θ₀ = 0, g = (1, −1), lr = 0.01.
        // Step 1: m = 0.1, v = 0.001, θ = −0.01·(0.1/0.1)/(√0.001/√0.001 + 1e-8) = −0.0099999999.
        // Step 2: m = 0.1 + 0.1·(−1 − 0.1) = −0.01; v = 0.000999 + 0.001 = 0.001999; bc1 = 0.19; bc2 = 0.001999:
        //   θ = −0.0099999999 − (0.01/0.19)·(−0.01)/(1 + 1e-8) = −0.0099999999 + 0.000526315784 = −0.009473684.
        let got2 = adamW(theta0: 0, grads: [1, -1], lr: 0.01, wd: 0)
        #expect(abs(got2[0] - -0.0099999999) < 1e-9)
        #expect(abs(got2[1] - -0.009473684) < 1e-8)
    }

    @Test("AdamW with zero gradient is pure decoupled decay: θ·(1 − lr·λ)ᵗ")
    func adamWDecayOnly() {
        let got = adamW(theta0: 2, grads: [Float](repeating: 0, count: 100), lr: 1e-3, wd: 0.01)
        // The factor 1 − 1e-5 is rounded to Float32 (as PyTorch does for a float tensor), ≤ 6e-8 relative per step.
        #expect(abs(Double(got[99]) - 2 * pow(1 - 1e-5, 100)) < 2 * 100 * 6e-8)
    }

    @Test("Learning-rate schedules follow the authors' helpers")
    func schedules() {
        #expect(LearningRateSchedule.constant.factor(step: 7, of: 10) == 1)
        #expect(LearningRateSchedule.linear.factor(step: 0, of: 10) == 1)
        #expect(abs(LearningRateSchedule.linear.factor(step: 5, of: 10) - 0.5) < 1e-15)
        #expect(LearningRateSchedule.cosine.factor(step: 0, of: 11) == 1)
        #expect(abs(LearningRateSchedule.cosine.factor(step: 10, of: 11)) < 1e-15)  // cos(π/2) at the last step
        #expect(abs(LearningRateSchedule.cosine.factor(step: 5, of: 11) - cos(Double.pi / 4)) < 1e-15)
    }

    @Test("Trainer: same seed gives bitwise identical training; losses fall; history and hooks work")
    func trainerDeterminism() throws {
        func train(seed: UInt64) throws -> (Model, TrainingResult, [Int]) {
            let model = try Support.model(n: 8, m: 3, E: 2, k: 1, seed: seed)
            var cfg = TrainingConfig()
            cfg.steps = 300
            cfg.batchSize = 64
            cfg.historyStride = 50
            cfg.loadBalancing = true
            let trainer = try Trainer(model: model, data: .uniform(featureCount: 8, probability: 0.3), config: cfg, seed: seed)
            var hooked: [Int] = []
            let result = trainer.run(hookEvery: 100) { info, _ in
                hooked.append(info.step)
                return .proceed
            }
            return (model, result, hooked)
        }
        let (a, ra, hooks) = try train(seed: 7)
        let (b, rb, _) = try train(seed: 7)
        let (c, _, _) = try train(seed: 8)
        #expect(Array(a.parameters) == Array(b.parameters))
        #expect(ra.finalLoss == rb.finalLoss)
        #expect(Array(a.parameters) != Array(c.parameters))
        #expect(ra.historySteps == [0, 50, 100, 150, 200, 250, 299])
        #expect(hooks == [0, 100, 200, 299])
        #expect(ra.history.last! < ra.history.first!)
        #expect(ra.stepsRun == 300 && !ra.stoppedEarly && ra.divergence == nil)
    }

    @Test("A hook can stop training; early stop drops the lr and stops below stop_loss")
    func stopping() throws {
        let model = try Support.model(n: 2, m: 1, E: 3, k: 1, seed: 1)
        var cfg = TrainingConfig()
        cfg.steps = 1000
        cfg.batchSize = 100
        let t = try Trainer(model: model, data: .uniform(featureCount: 2, probability: 0.5), config: cfg, seed: 1)
        let r = t.run(hookEvery: 1) { info, _ in info.step == 9 ? .stop : .proceed }
        #expect(r.stepsRun == 10 && r.stoppedEarly)

        // Thresholds above any loss: the first step stops. Drop threshold above, stop below: lr shrinks 10× per step.
        var es = cfg
        es.earlyStop = EarlyStop(dropLoss: 1e9, stopLoss: -1)
        es.steps = 3
        let t2 = try Trainer(model: try Support.model(n: 2, m: 1, E: 3, k: 1), data: .uniform(featureCount: 2, probability: 0.5), config: es, seed: 1)
        var lrs: [Double] = []
        _ = t2.run(hookEvery: 1) { info, _ in
            lrs.append(info.learningRate)
            return .proceed
        }
        #expect(lrs.count == 3)
        #expect(abs(lrs[1] - 1e-4) < 1e-12 && abs(lrs[2] - 1e-5) < 1e-13)
        es.earlyStop = EarlyStop(dropLoss: 1e9, stopLoss: 1e9)
        es.steps = 100
        let t3 = try Trainer(model: try Support.model(n: 2, m: 1, E: 3, k: 1), data: .uniform(featureCount: 2, probability: 0.5), config: es, seed: 1)
        let r3 = t3.run()
        #expect(r3.stepsRun == 1 && r3.stoppedEarly)
    }

    @Test("A huge step count allocates nothing up front: a hook can end it at once")
    func hugeStepCount() throws {
        var cfg = TrainingConfig()
        cfg.steps = 1 << 50
        cfg.batchSize = 8
        let t = try Trainer(model: try Support.model(n: 3, m: 1), data: .uniform(featureCount: 3, probability: 0.5), config: cfg, seed: 1)
        let r = t.run(hookEvery: 1) { info, _ in info.step >= 2 ? .stop : .proceed }
        #expect(r.stepsRun == 3 && r.stoppedEarly)
    }

    @Test("Divergence: a huge learning rate gives a non-finite loss, detected with its step")
    func divergence() throws {
        let model = try Support.model(n: 5, m: 2, seed: 2)
        var cfg = TrainingConfig()
        cfg.steps = 200
        cfg.batchSize = 32
        cfg.learningRate = 1e30
        let t = try Trainer(model: model, data: .uniform(featureCount: 5, probability: 1), config: cfg, seed: 1)
        let r = t.run()
        #expect(r.divergence != nil)
        #expect(r.stepsRun < 200)
    }

    @Test("Bad options are rejected with the option's name")
    func badOptions() throws {
        var cfg = TrainingConfig()
        cfg.learningRate = .nan
        #expect(throws: ToyMoEError.self) { try cfg.validate() }
        do { try cfg.validate() } catch let e as ToyMoEError { #expect(e.argument == "lr") }
        cfg = TrainingConfig()
        cfg.batchSize = 0
        do { try cfg.validate() } catch let e as ToyMoEError { #expect(e.argument == "batch_size") }
        let model = try Support.model(n: 3, m: 1)
        #expect(throws: ToyMoEError.self) {
            _ = try Trainer(model: model, data: .uniform(featureCount: 3, probability: 1.5), config: TrainingConfig(), seed: 0)
        }
        #expect(throws: ToyMoEError.self) {
            _ = try Trainer(model: model, data: .uniform(featureCount: 4, probability: 0.5), config: TrainingConfig(), seed: 0)
        }
        #expect(throws: ToyMoEError.self) { try ModelConfig(featureCount: 4, hiddenCount: 2, expertCount: 2, activeExpertCount: 3).validate() }
        #expect(throws: ToyMoEError.self) { try ModelConfig(featureCount: -1, hiddenCount: 2).validate() }
        #expect(throws: ToyMoEError.self) { try ModelConfig(featureCount: 1 << 40, hiddenCount: 1 << 30).validate() }
        #expect(throws: ToyMoEError.self) { try model.setValues(.W, [1, 2]) }
        #expect(throws: ToyMoEError.self) { try model.setValues(.W, [.nan, 0, 0]) }
    }
}

@Suite struct InitializationTests {

    @Test("Xavier σ follows PyTorch's fan convention (docs/PAPER.md#initialization table)")
    func xavierSigma() {
        // W (E, n, m): fan_in = n·m, fan_out = E·m.
        #expect(abs(Initialization.xavierSigma(shape: [1, 2, 1]) - 0.816) < 5e-4)  // n=2, m=1, E=1
        #expect(abs(Initialization.xavierSigma(shape: [1, 2]) - 0.816) < 5e-4)  // b, G for n=2, E=1
        #expect(abs(Initialization.xavierSigma(shape: [1, 20, 6]) - 0.126) < 5e-4)
        #expect(abs(Initialization.xavierSigma(shape: [1, 20]) - 0.309) < 5e-4)
        #expect(abs(Initialization.xavierSigma(shape: [10, 100, 10]) - 0.0426) < 5e-5)
        #expect(abs(Initialization.xavierSigma(shape: [10, 100]) - 0.135) < 5e-4)
        // exact formulas
        #expect(Initialization.xavierSigma(shape: [3, 20, 2]) == (2.0 / (2.0 * 23.0)).squareRoot())
    }

    @Test("Xavier draws have the stated σ (sample std within 3 %)")
    func xavierSample() throws {
        let model = try Model(config: ModelConfig(featureCount: 100, hiddenCount: 10, expertCount: 10), seed: 3)
        let w = model.values(.W).map(Double.init)
        let mean = w.reduce(0, +) / Double(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)).squareRoot()
        #expect(abs(mean) < 0.002)
        #expect(abs(std / Initialization.xavierSigma(shape: [10, 100, 10]) - 1) < 0.03)
    }

    @Test("Same seed → bitwise identical parameters; model ids give independent streams")
    func seeding() throws {
        let c = ModelConfig(featureCount: 20, hiddenCount: 6, expertCount: 3)
        let a = try Model(config: c, seed: 42, modelID: 0)
        let b = try Model(config: c, seed: 42, modelID: 0)
        let d = try Model(config: c, seed: 42, modelID: 1)
        #expect(Array(a.parameters) == Array(b.parameters))
        #expect(Array(a.parameters) != Array(d.parameters))
        // Re-initializing only the gate leaves W untouched.
        let before = a.values(.W)
        try a.initialize(.gate, .normal(std: 1), seed: 5)
        #expect(a.values(.W) == before)
    }

    @Test("K-hot gates: one 1 per feature column, K per row; ordered is contiguous; E ∤ n is an error (docs/PAPER.md#initialization)")
    func kHot() throws {
        let c = ModelConfig(featureCount: 20, hiddenCount: 5, expertCount: 4)
        for scheme in [TensorInit.randomKHot, .orderedKHot] {
            let model = try Model(config: c, initialization: Initialization(gate: scheme), seed: 9)
            let g = model.gateMatrix()
            for i in 0..<20 {
                #expect(g.map { $0[i] }.filter { $0 == 1 }.count == 1)
                #expect(g.map { $0[i] }.allSatisfy { $0 == 0 || $0 == 1 })
            }
            for e in 0..<4 { #expect(g[e].filter { $0 == 1 }.count == 5) }
            if scheme == .orderedKHot {
                for e in 0..<4 { #expect(g[e] == (0..<20).map { $0 / 5 == e ? 1.0 : 0.0 }) }
            }
        }
        // Different models draw different permutations.
        let p1 = try Model(config: c, initialization: Initialization(gate: .randomKHot), seed: 9, modelID: 0).gateMatrix()
        let p2 = try Model(config: c, initialization: Initialization(gate: .randomKHot), seed: 9, modelID: 1).gateMatrix()
        #expect(p1 != p2)
        let bad = ModelConfig(featureCount: 10, hiddenCount: 2, expertCount: 3)
        #expect(throws: ToyMoEError.self) { _ = try Model(config: bad, initialization: Initialization(gate: .randomKHot)) }
        #expect(throws: ToyMoEError.self) { _ = try Model(config: bad, initialization: Initialization(W: .diagonal)) }
    }

    @Test("Diagonal gate; overlay keeps the Xavier gate under the pattern (old-ES quirk)")
    func diagonalAndOverlay() throws {
        let c = ModelConfig(featureCount: 6, hiddenCount: 2, expertCount: 4)
        let m = try Model(config: c, initialization: Initialization(gate: .diagonal), seed: 1)
        let g = m.gateMatrix()
        for e in 0..<4 { for i in 0..<6 { #expect(g[e][i] == (e == i ? 1 : 0)) } }
        let o = try Model(config: c, initialization: Initialization(gate: .diagonal, overlayGate: true), seed: 1)
        let x = try Model(config: c, seed: 1)  // plain Xavier: the same gate stream
        let go = o.gateMatrix(), gx = x.gateMatrix()
        for e in 0..<4 { for i in 0..<6 { #expect(go[e][i] == (e == i ? 1 : gx[e][i])) } }
    }
}

@Suite struct DataTests {

    @Test("Sampling: P(x ≠ 0) = p per feature, values in [0, 1), mean of nonzero ≈ ½; per-feature p")
    func sampling() {
        var rng = RandomStream(seed: 1, path: [1])
        let d = DataDistribution(featureProbability: [0.1, 0.5, 1.0, 0.0], importance: [1, 1, 1, 1])
        let B = 200_000
        let x = d.sample(batch: B, rng: &rng)
        for (i, p) in [0.1, 0.5, 1.0, 0.0].enumerated() {
            let col = stride(from: i, to: x.count, by: 4).map { x[$0] }
            let nz = col.filter { $0 != 0 }
            let frac = Double(nz.count) / Double(B)
            let tolerance: Double = 4 * (p * (1 - p) / Double(B)).squareRoot() + 1e-4
            #expect(abs(frac - p) < tolerance)
            #expect(col.allSatisfy { $0 >= 0 && $0 < 1 })
            if p > 0 {
                let meanNonzero: Double = nz.map(Double.init).reduce(0, +) / Double(nz.count)
                #expect(abs(meanNonzero - 0.5) < 0.01)
            }
        }
    }

    @Test("Relative importance: loss weight (code) vs input scale (paper text)")
    func relativeImportance() {
        let a = DataDistribution.phaseChange(featureCount: 3, sparsity: 0.9, relativeImportance: 2.5)
        #expect(a.importance == [1, 1, 2.5] && a.inputScale == nil)
        #expect(abs(a.featureProbability[0] - 0.1) < 1e-7)
        let b = DataDistribution.phaseChange(featureCount: 3, sparsity: 0.9, relativeImportance: 2.5, mode: .inputScale)
        #expect(b.importance == [1, 1, 1] && b.inputScale == [1, 1, 2.5])
        var rng = RandomStream(seed: 3)
        let x = b.sample(batch: 10_000, rng: &rng)
        let last = stride(from: 2, to: x.count, by: 3).map { x[$0] }
        #expect(last.max()! > 2 && last.max()! < 2.5)
    }

    @Test("Random streams: deterministic, independent by path, uniform floats in [0, 1)")
    func streams() {
        var a = RandomStream(seed: 5, path: [1, 2])
        var b = RandomStream(seed: 5, path: [1, 2])
        var c = RandomStream(seed: 5, path: [2, 1])
        let sa = (0..<10).map { _ in a.next() }
        #expect(sa == (0..<10).map { _ in b.next() })
        #expect(sa != (0..<10).map { _ in c.next() })
        var r = RandomStream(seed: 0)
        var sum = 0.0
        for _ in 0..<100_000 {
            let (u, v) = r.nextFloatPair()
            #expect(u >= 0 && u < 1 && v >= 0 && v < 1)
            sum += Double(u) + Double(v)
        }
        #expect(abs(sum / 200_000 - 0.5) < 0.005)
        let gauss = (0..<50_000).map { _ in r.nextGaussian() }
        let m = gauss.reduce(0, +) / 50_000
        let v = gauss.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 50_000
        #expect(abs(m) < 0.02 && abs(v - 1) < 0.03)
    }

    @Test("Importance helpers: geometric and permuted geometric")
    func importanceHelpers() {
        let g = Schedules.geometric(base: 0.7, count: 4)
        #expect(g == [1, 0.7, Float(0.49), Float(0.7 * 0.7 * 0.7)])
        var rng = RandomStream(seed: 1)
        let p = Schedules.permutedGeometric(base: 0.9, count: 10, rng: &rng)
        #expect(p.sorted(by: >) == Schedules.geometric(base: 0.9, count: 10))
        #expect(Schedules.linspace(0, 1, count: 5) == [0, 0.25, 0.5, 0.75, 1])
    }
}
