import Foundation
import Testing
import ToyMoE
import ToyMoEKernels

/// `kernelExp` (accuracy against libm, special values, scalar = SIMD bit for bit) and lockstep training
/// (`LockstepTrainer`) against the scalar `Trainer`, byte for byte.
@Suite struct LockstepTests {

    // MARK: - exp

    /// Distance in units in the last place between two non-negative finite floats (or 0 if bitwise equal).
    static func ulps(_ a: Float, _ b: Float) -> Int {
        if a.bitPattern == b.bitPattern { return 0 }
        return abs(Int(a.bitPattern) - Int(b.bitPattern))
    }

    @Test func expIsWithinTwoUlpOfLibmOnADenseSweep() {
        // [-104, 89] in 2²² + 1 evenly spaced points, plus every float in [-2⁻¹⁰, 2⁻¹⁰] around 0's neighbourhood
        // sampled by bit pattern; 8 at a time through the SIMD form, which must equal the scalar form bitwise.
        var points: [Float] = []
        let count = 1 << 22
        for i in 0...count { points.append(-104 + 193 * Float(Double(i) / Double(count))) }
        var bits: UInt32 = 0
        while bits < Float(0x1p-10).bitPattern {
            points.append(Float(bitPattern: bits))
            points.append(-Float(bitPattern: bits))
            bits += 997
        }
        // Around the underflow and overflow thresholds, float by float.
        for anchor: Float in [-103.97, -87.34, 88.72] {
            var x = anchor - 0.01
            while x < anchor + 0.01 {
                points.append(x)
                x = x.nextUp
            }
        }
        while points.count % 8 != 0 { points.append(0) }
        var worst = 0
        var worstAt: Float = 0
        var mismatches = 0
        for start in stride(from: 0, to: points.count, by: 8) {
            var v = SIMD8<Float>()
            for l in 0..<8 { v[l] = points[start + l] }
            let vector = kernelExp(v)
            for l in 0..<8 {
                let x = points[start + l]
                let scalar = kernelExp(x)
                if scalar.bitPattern != vector[l].bitPattern { mismatches += 1 }
                let d = Self.ulps(scalar, expf(x))
                if d > worst {
                    worst = d
                    worstAt = x
                }
            }
        }
        #expect(mismatches == 0, "SIMD and scalar kernelExp differ on \(mismatches) inputs")
        #expect(worst <= 2, "kernelExp is \(worst) ulp from expf at x = \(worstAt)")
    }

    /// The SIMD16 form (the lockstep router's two-samples-per-call exp) equals the scalar form bit for bit, lane by
    /// lane, on a sweep of [-110, 95] (past both clamps), special values, and values around 0 (where the router's
    /// argmax exponent lives).
    @Test func expSIMD16MatchesTheScalarFormBitwise() {
        var points: [Float] = [0, -0.0, .infinity, -.infinity, .nan, -104, 89, 88.72, -87.34, 1e-30, -1e-30]
        for i in 0...(1 << 18) { points.append(-110 + 205 * Float(Double(i) / Double(1 << 18))) }
        var x: Float = -1e-3
        while x < 1e-3 {
            points.append(x)
            x += 1.37e-6
        }
        while points.count % 16 != 0 { points.append(0.5) }
        var mismatches = 0
        var first: Float? = nil
        for start in stride(from: 0, to: points.count, by: 16) {
            var v = SIMD16<Float>()
            for l in 0..<16 { v[l] = points[start + l] }
            let e = kernelExp(v)
            for l in 0..<16 where e[l].bitPattern != kernelExp(points[start + l]).bitPattern {
                mismatches += 1
                if first == nil { first = points[start + l] }
            }
        }
        #expect(mismatches == 0, "SIMD16 and scalar kernelExp differ on \(mismatches) inputs, first at \(first ?? 0)")
    }

    @Test func expSpecialValues() {
        #expect(kernelExp(0).bitPattern == Float(1).bitPattern)
        #expect(kernelExp(-0.0).bitPattern == Float(1).bitPattern)
        #expect(kernelExp(-Float.infinity) == 0)
        #expect(kernelExp(-1000) == 0)
        #expect(kernelExp(-104) == 0)
        #expect(kernelExp(-Float.greatestFiniteMagnitude) == 0)
        #expect(kernelExp(Float.infinity) == .infinity)
        #expect(kernelExp(89) == .infinity)
        #expect(kernelExp(.nan).isNaN)
        #expect(kernelExp(1) == expf(1))
        let v = kernelExp(SIMD8<Float>(0, -.infinity, .infinity, .nan, -1000, 89, -0.0, 1))
        #expect(v[0] == 1 && v[1] == 0 && v[2] == .infinity && v[3].isNaN && v[4] == 0 && v[5] == .infinity)
        #expect(v[6] == 1 && v[7] == kernelExp(Float(1)))
    }

    // MARK: - Lockstep vs Trainer

    struct Case: CustomStringConvertible {
        var n, m, E, k: Int
        var lanes: Int
        var lb = true
        var normalization: LossNormalization = .meanOverFeatures
        var mode: DataDistribution.RelativeImportanceMode = .lossWeight
        var probability: Float = 0.3
        var steps = 60
        var batch = 64
        var tieBreak: TieBreakRule = .lowestIndex
        var description: String {
            "\(n)-\(m)-\(E) k=\(k) lanes=\(lanes) lb=\(lb) \(normalization.rawValue) \(mode.rawValue) p=\(probability) tie=\(tieBreak)"
        }
    }

    /// The per-model data of a case: phase-change style (last feature's r varies per lane), and every other lane a
    /// slightly different feature probability, so lanes really differ.
    static func distributions(_ c: Case) -> [DataDistribution] {
        (0..<c.lanes).map { l in
            let r = Float(0.1) * Float(l % 11) + 0.05
            var d = DataDistribution.phaseChange(
                featureCount: c.n, sparsity: 1 - c.probability, relativeImportance: r, mode: c.mode)
            if l % 2 == 1 && c.probability < 1 { d.featureProbability[0] = Swift.min(1, c.probability * 1.5) }
            return d
        }
    }

    static func config(_ c: Case) -> TrainingConfig {
        var cfg = TrainingConfig()
        cfg.steps = c.steps
        cfg.batchSize = c.batch
        cfg.lossNormalization = c.normalization
        cfg.loadBalancing = c.lb
        cfg.historyStride = 7
        return cfg
    }

    static func models(_ c: Case) throws -> [Model] {
        let mc = ModelConfig(
            featureCount: c.n, hiddenCount: c.m, expertCount: c.E, activeExpertCount: c.k, tieBreak: c.tieBreak)
        return try (0..<c.lanes).map { try Model(config: mc, seed: 11, modelID: UInt64($0)) }
    }

    /// Trains copies of the same models both ways and compares every result field bit for bit.
    static func compare(
        _ c: Case, config cfg: TrainingConfig, models: [Model], data: [DataDistribution], threads: Int = 1
    ) throws {
        let seeds = (0..<models.count).map { UInt64(1000 + $0 * 7) }
        let ids = (0..<models.count).map { UInt64($0 % 3) }
        let alone = models.map { Model(copying: $0) }
        let want = try alone.indices.map { i in
            try Trainer(model: alone[i], data: data[i], config: cfg, seed: seeds[i], modelID: ids[i], kernels: .scalar).run()
        }
        // Every ISA build of the lockstep step this CPU runs (they never fuse operations: all give the same bits).
        for variant in KernelVariant.supported where variant.isSIMD {
        let together = models.map { Model(copying: $0) }
        let got = try LockstepTrainer(models: together, data: data, config: cfg, seeds: seeds, modelIDs: ids, kernels: variant)
            .run(threads: threads)
        #expect(got.count == want.count)
        for i in want.indices {
            let a = want[i], b = got[i]
            let what = "\(variant) \(c) model \(i)"
            #expect(Array(alone[i].parameters).map(\.bitPattern) == Array(together[i].parameters).map(\.bitPattern), "\(what): parameters")
            #expect(a.finalLoss.bitPattern == b.finalLoss.bitPattern, "\(what): final loss \(a.finalLoss) vs \(b.finalLoss)")
            #expect(a.finalReconstructionLoss.bitPattern == b.finalReconstructionLoss.bitPattern, "\(what): reconstruction")
            #expect(a.finalLoadBalancingLoss.bitPattern == b.finalLoadBalancingLoss.bitPattern, "\(what): load balancing")
            #expect(a.stepsRun == b.stepsRun, "\(what): steps \(a.stepsRun) vs \(b.stepsRun)")
            #expect(a.historySteps == b.historySteps, "\(what): history steps")
            #expect(a.history.map(\.bitPattern) == b.history.map(\.bitPattern), "\(what): history")
            #expect(a.stoppedEarly == b.stoppedEarly, "\(what): stopped early")
            #expect(a.divergence?.step == b.divergence?.step && a.divergence?.reason == b.divergence?.reason, "\(what): divergence")
        }
        }
    }

    static func check(_ c: Case, threads: Int = 1) throws {
        try compare(c, config: config(c), models: try models(c), data: distributions(c), threads: threads)
    }

    @Test func paperShapesMatchTheScalarTrainerBitwise() throws {
        try Self.check(Case(n: 2, m: 1, E: 2, k: 1, lanes: 13))
        try Self.check(Case(n: 3, m: 1, E: 3, k: 1, lanes: 7))
        try Self.check(Case(n: 3, m: 2, E: 3, k: 1, lanes: 9))
        try Self.check(Case(n: 3, m: 2, E: 3, k: 2, lanes: 8))
        try Self.check(Case(n: 2, m: 1, E: 1, k: 1, lanes: 5))
        try Self.check(Case(n: 3, m: 2, E: 2, k: 2, lanes: 3, tieBreak: .highestIndex))
    }

    @Test func optionsMatchTheScalarTrainerBitwise() throws {
        try Self.check(Case(n: 2, m: 1, E: 2, k: 1, lanes: 1, lb: false))
        try Self.check(Case(n: 3, m: 2, E: 3, k: 2, lanes: 7, lb: false, normalization: .sumOverFeatures))
        try Self.check(Case(n: 3, m: 1, E: 3, k: 1, lanes: 13, normalization: .sumOverFeatures, mode: .inputScale))
        try Self.check(Case(n: 2, m: 2, E: 3, k: 1, lanes: 4, probability: 1))
        try Self.check(Case(n: 3, m: 1, E: 2, k: 1, lanes: 6, probability: 0.02, steps: 40, batch: 37))
        // A shape without its own instance (the generic path) and a batch that is not a multiple of the tile.
        try Self.check(Case(n: 5, m: 3, E: 4, k: 2, lanes: 10, steps: 25, batch: 45))
        try Self.check(Case(n: 4, m: 1, E: 1, k: 1, lanes: 2, lb: false, steps: 20))
    }

    @Test func lanesWithAndWithoutInputScaleShareAGroup() throws {
        let c = Case(n: 3, m: 1, E: 3, k: 1, lanes: 6)
        var data = Self.distributions(c)
        for l in 0..<6 where l % 2 == 0 {
            data[l] = .phaseChange(featureCount: 3, sparsity: 0.7, relativeImportance: 2.5, mode: .inputScale)
        }
        try Self.compare(c, config: Self.config(c), models: try Self.models(c), data: data)
    }

    @Test func aDivergingLaneStopsWhereItsTrainerStops() throws {
        // lr 1e30 (no weight decay): lanes with data diverge, at step 0 (weights scaled up to overflow the first
        // loss) or at step 1 (after one giant update); lanes whose data is all zeros (p = 0) only push their biases
        // below 0, keep a finite loss and train to the end.
        let c = Case(n: 3, m: 2, E: 3, k: 1, lanes: 11, steps: 40)
        var cfg = Self.config(c)
        cfg.learningRate = 1e30
        cfg.weightDecay = 0
        let models = try Self.models(c)
        for (l, m) in models.enumerated() where l % 3 == 0 {
            for i in 0..<m.layout.count { m.parameters[i] *= 1e20 }
        }
        var data = Self.distributions(c)
        for l in 0..<c.lanes where l % 3 == 1 { data[l].featureProbability = [0, 0, 0] }
        try Self.compare(c, config: cfg, models: models, data: data)
        let r = try LockstepTrainer(
            models: models.map { Model(copying: $0) }, data: data, config: cfg,
            seeds: (0..<11).map { UInt64(1000 + $0 * 7) }, modelIDs: (0..<11).map { UInt64($0 % 3) }
        ).run(threads: 1)
        #expect(r[0].divergence?.step == 0 && r[2].divergence?.step == 1, "\(r[0].divergence as Any) \(r[2].divergence as Any)")
        #expect(r[1].divergence == nil && r[1].stepsRun == 40)
    }

    @Test func earlyStopMatchesPerLane() throws {
        let c = Case(n: 2, m: 1, E: 2, k: 1, lanes: 9, lb: false, normalization: .sumOverFeatures, probability: 0.05, steps: 300)
        var cfg = Self.config(c)
        cfg.learningRate = 1e-2
        cfg.earlyStop = EarlyStop(dropLoss: 0.02, stopLoss: 0.012, dropFactor: 0.5)
        try Self.compare(c, config: cfg, models: try Self.models(c), data: Self.distributions(c))
        let copies = try Self.models(c)
        let r = try LockstepTrainer(
            models: copies, data: Self.distributions(c), config: cfg, seeds: (0..<9).map { UInt64(1000 + $0 * 7) },
            modelIDs: (0..<9).map { UInt64($0 % 3) }
        ).run(threads: 1)
        #expect(r.contains { $0.stoppedEarly } && r.contains { !$0.stoppedEarly }, "the case should mix stopped and running lanes")
    }

    @Test func scheduleAndZeroStepsMatch() throws {
        let c = Case(n: 2, m: 1, E: 2, k: 1, lanes: 3)
        var cfg = Self.config(c)
        cfg.schedule = .cosine
        try Self.compare(c, config: cfg, models: try Self.models(c), data: Self.distributions(c))
        cfg.steps = 0
        try Self.compare(c, config: cfg, models: try Self.models(c), data: Self.distributions(c))
    }

    /// Every router row of every model equal: all E logits tie on every sample, so the softmax's argmax lane (whose
    /// exponent the lockstep router takes as exactly 1) and the tie rule decide every selection. Lane counts that
    /// are not a multiple of the group width, one lane, both tie rules, k = 1 and k = 2.
    @Test func routerTiesOnEverySampleMatchTheScalarTrainerBitwise() throws {
        let cases = [
            Case(n: 2, m: 1, E: 2, k: 1, lanes: 9, steps: 30),
            Case(n: 2, m: 1, E: 2, k: 1, lanes: 1, steps: 30, tieBreak: .highestIndex),
            Case(n: 3, m: 1, E: 3, k: 1, lanes: 11, steps: 30, tieBreak: .highestIndex),
            Case(n: 3, m: 2, E: 3, k: 2, lanes: 5, steps: 30),
            Case(n: 3, m: 2, E: 3, k: 2, lanes: 10, steps: 30, tieBreak: .highestIndex),
        ]
        for c in cases {
            let models = try Self.models(c)
            for m in models {
                let L = m.layout
                for e in 1..<c.E {
                    for i in 0..<c.n { m.parameters[L.gOffset + e * c.n + i] = m.parameters[L.gOffset + i] }
                }
            }
            try Self.compare(c, config: Self.config(c), models: models, data: Self.distributions(c))
        }
    }

    /// A lane whose router weights are ±3·10³⁸: expert 0's logit overflows to +inf on samples whose inputs sum past
    /// 1.13, the others' to −inf, so its softmax is NaN (inf − inf) as in the scalar router, and such a sample takes
    /// the lockstep router's general path for all lanes; the other lanes must not notice. (The fast path, which
    /// takes the argmax's exponent as 0, would give that lane finite probabilities instead of NaN.)
    @Test func overflowingRouterLogitsTakeTheGeneralSoftmaxBitwise() throws {
        for c in [Case(n: 2, m: 1, E: 2, k: 1, lanes: 10, steps: 12), Case(n: 3, m: 2, E: 3, k: 2, lanes: 7, steps: 12)] {
            let models = try Self.models(c)
            for (l, m) in models.enumerated() where l % 3 == 1 {
                let L = m.layout
                for e in 0..<c.E {
                    for i in 0..<c.n { m.parameters[L.gOffset + e * c.n + i] = e == 0 ? 3e38 : -3e38 }
                }
            }
            try Self.compare(c, config: Self.config(c), models: models, data: Self.distributions(c))
            let r = try LockstepTrainer(
                models: models.map { Model(copying: $0) }, data: Self.distributions(c), config: Self.config(c),
                seeds: (0..<c.lanes).map { UInt64(1000 + $0 * 7) }, modelIDs: (0..<c.lanes).map { UInt64($0 % 3) }
            ).run(threads: 1)
            #expect(r[1].divergence != nil && r[0].divergence == nil, "\(c): lane 1 should diverge, lane 0 not")
        }
    }

    @Test func resultsDoNotDependOnTheThreadCount() throws {
        try Self.check(Case(n: 3, m: 1, E: 3, k: 1, lanes: 29, steps: 20), threads: 2)
        try Self.check(Case(n: 2, m: 1, E: 2, k: 1, lanes: 17, steps: 20), threads: 3)
    }

    @Test func mismatchedInputsAreClearErrors() throws {
        let a = try Support.model(n: 2, m: 1, E: 2)
        let b = try Support.model(n: 3, m: 1, E: 2)
        let d2 = DataDistribution.uniform(featureCount: 2, probability: 0.5)
        let cfg = TrainingConfig()
        #expect(throws: ToyMoEError.self) { try LockstepTrainer(models: [a, b], data: [d2, d2], config: cfg, seeds: [1, 2]) }
        #expect(throws: ToyMoEError.self) { try LockstepTrainer(models: [a], data: [d2, d2], config: cfg, seeds: [1]) }
        #expect(throws: ToyMoEError.self) { try LockstepTrainer(models: [a], data: [d2], config: cfg, seeds: []) }
        #expect(throws: ToyMoEError.self) { try LockstepTrainer(models: [a, a], data: [d2, d2], config: cfg, seeds: [1, 2]) }
        let d3 = DataDistribution.uniform(featureCount: 3, probability: 0.5)
        #expect(throws: ToyMoEError.self) { try LockstepTrainer(models: [a], data: [d3], config: cfg, seeds: [1]) }
        do {
            _ = try LockstepTrainer(models: [a, b], data: [d2, d2], config: cfg, seeds: [1, 2])
        } catch let e as ToyMoEError {
            #expect(e.argument == "models" && e.message.contains("model 2"))
        }
        #expect(try LockstepTrainer(models: [], data: [], config: cfg, seeds: []).run().isEmpty)
    }
}
