import Foundation
import Testing
import ToyMoE

/// The optional cancellation of the trainers and metrics (a script's deadline): it stops where asked, and a run it
/// never stops is bit-for-bit the run without it.
@Suite struct CancellationTests {
    static func config() -> TrainingConfig {
        var cfg = TrainingConfig()
        cfg.steps = 200
        cfg.batchSize = 32
        cfg.historyStride = 10
        return cfg
    }

    static func parameters(_ m: Model) -> [Float] { Array(m.parameters) }

    @Test("Trainer.run: a shouldStop that never fires changes no bit; one that fires after 25 asks stops after 25 steps")
    func trainer() throws {
        let data = DataDistribution.uniform(featureCount: 6, probability: 0.3)
        let plainModel = try Support.model(n: 6, m: 2, E: 2, k: 1, seed: 5)
        let plain = try Trainer(model: plainModel, data: data, config: Self.config(), seed: 9).run()
        let watchedModel = try Support.model(n: 6, m: 2, E: 2, k: 1, seed: 5)
        var asks = 0
        let watched = try Trainer(model: watchedModel, data: data, config: Self.config(), seed: 9)
            .run(shouldStop: { asks += 1; return false })
        #expect(asks == 200)
        #expect(Self.parameters(plainModel) == Self.parameters(watchedModel))
        #expect(plain.finalLoss.bitPattern == watched.finalLoss.bitPattern && plain.history == watched.history)

        let stoppedModel = try Support.model(n: 6, m: 2, E: 2, k: 1, seed: 5)
        var left = 25
        let stopped = try Trainer(model: stoppedModel, data: data, config: Self.config(), seed: 9)
            .run(shouldStop: { left -= 1; return left < 0 })
        #expect(stopped.stepsRun == 25 && !stopped.stoppedEarly)
    }

    @Test("LockstepTrainer.run: a shouldStop that never fires changes no bit; one that has fired stops every group")
    func lockstep() throws {
        let data = [DataDistribution](repeating: .uniform(featureCount: 6, probability: 0.3), count: 10)
        func models() throws -> [Model] { try (0..<10).map { try Support.model(n: 6, m: 2, seed: UInt64(20 + $0)) } }
        let seeds = (0..<10).map { UInt64(100 + $0) }
        let a = try models(), b = try models(), c = try models()
        let plain = try LockstepTrainer(models: a, data: data, config: Self.config(), seeds: seeds).run(threads: 2)
        let watched = try LockstepTrainer(models: b, data: data, config: Self.config(), seeds: seeds)
            .run(threads: 2, shouldStop: { false })
        for i in 0..<10 {
            #expect(Self.parameters(a[i]) == Self.parameters(b[i]), "model \(i)")
            #expect(plain[i].finalLoss.bitPattern == watched[i].finalLoss.bitPattern)
        }
        let stopped = try LockstepTrainer(models: c, data: data, config: Self.config(), seeds: seeds)
            .run(threads: 2, shouldStop: { true })
        #expect(stopped.allSatisfy { $0.stepsRun == 0 })
    }

    @Test("Metrics: a shouldStop that never fires changes nothing; one that fires skips the remaining rows")
    func metrics() throws {
        let W = (0..<40).map { i in (0..<5).map { j in sin(Double(i * 5 + j)) } }
        let plain = Metrics.polysemanticity(W)
        let watched = Metrics.withStopCheck({ false }) { Metrics.polysemanticity(W) }
        #expect(plain == watched)
        let stopped = Metrics.withStopCheck({ true }) { Metrics.gram(W) }
        #expect(stopped.allSatisfy { row in row.allSatisfy { $0 == 0 } })
    }
}
