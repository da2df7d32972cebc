import Foundation
import Synchronization
import Testing
import ToyMoE

/// The trainers' progress callback: it reports every step (the calls sum to the steps run, also with early stops
/// and several threads), in strides rather than per step, and a run that reports is bit for bit the run without.
@Suite struct ProgressCallbackTests {
    static func config(steps: Int = 300) -> TrainingConfig {
        var cfg = TrainingConfig()
        cfg.steps = steps
        cfg.batchSize = 32
        cfg.historyStride = 10
        return cfg
    }

    @Test("Trainer.run: progress calls sum to stepsRun, come every progressStride steps, and change no bit")
    func trainer() throws {
        let data = DataDistribution.uniform(featureCount: 6, probability: 0.3)
        let plainModel = try Support.model(n: 6, m: 2, E: 2, k: 1, seed: 5)
        let plain = try Trainer(model: plainModel, data: data, config: Self.config(), seed: 9).run()
        let watchedModel = try Support.model(n: 6, m: 2, E: 2, k: 1, seed: 5)
        var calls: [Int] = []
        let watched = try Trainer(model: watchedModel, data: data, config: Self.config(), seed: 9)
            .run(progress: { calls.append($0) })
        #expect(calls.reduce(0, +) == 300)
        // 300 = 4 × 64 + 44: four strides and the remainder, never one call per step
        #expect(calls == [64, 64, 64, 64, 44])
        #expect(Array(plainModel.parameters) == Array(watchedModel.parameters))
        #expect(plain.finalLoss.bitPattern == watched.finalLoss.bitPattern && plain.history == watched.history)
    }

    @Test("Trainer.run: an early stop's steps are all reported, no more")
    func trainerEarlyStop() throws {
        var cfg = Self.config(steps: 1000)
        cfg.earlyStop = EarlyStop(dropLoss: 10, stopLoss: 10, dropFactor: 1)  // stops at the first step
        let m = try Support.model(n: 6, m: 2, seed: 3)
        var total = 0
        let r = try Trainer(model: m, data: .uniform(featureCount: 6, probability: 0.3), config: cfg, seed: 1)
            .run(progress: { total += $0 })
        #expect(r.stepsRun == 1 && total == 1)
    }

    @Test("LockstepTrainer.run (2 threads): model-steps reported sum to the results' stepsRun; no bit changes")
    func lockstep() throws {
        let data = [DataDistribution](repeating: .uniform(featureCount: 6, probability: 0.3), count: 11)
        func models() throws -> [Model] { try (0..<11).map { try Support.model(n: 6, m: 2, seed: UInt64(20 + $0)) } }
        let seeds = (0..<11).map { UInt64(100 + $0) }
        let a = try models(), b = try models()
        let plain = try LockstepTrainer(models: a, data: data, config: Self.config(), seeds: seeds).run(threads: 2)
        let total = Atomic<Int>(0)
        let calls = Atomic<Int>(0)
        let watched = try LockstepTrainer(models: b, data: data, config: Self.config(), seeds: seeds)
            .run(threads: 2, progress: { n in
                total.wrappingAdd(n, ordering: .relaxed)
                calls.wrappingAdd(1, ordering: .relaxed)
            })
        #expect(total.load(ordering: .relaxed) == 11 * 300)
        #expect(total.load(ordering: .relaxed) == watched.reduce(0) { $0 + $1.stepsRun })
        #expect(calls.load(ordering: .relaxed) <= 2 * (300 / Trainer.progressStride + 1), "in strides, not per step")
        for i in 0..<11 {
            #expect(Array(a[i].parameters) == Array(b[i].parameters), "model \(i)")
            #expect(plain[i].finalLoss.bitPattern == watched[i].finalLoss.bitPattern)
        }
    }
}
