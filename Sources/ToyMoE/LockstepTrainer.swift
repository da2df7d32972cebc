import Foundation
import ToyMoEKernels

/// Trains many models of one shape at once, eight per SIMD group (`LockstepKernels` of the chosen ISA build), with results byte-identical
/// to training each model alone:
///
///     LockstepTrainer(models: ms, data: ds, config: c, seeds: ss, modelIDs: ids).run()[i]
///
/// equals `Trainer(model: ms[i], data: ds[i], config: c, seed: ss[i], modelID: ids[i], kernels: .scalar).run()` in
/// parameters, losses, history, early stop and divergence (only `seconds` differs: it is the wall time of the model's
/// group). Each model keeps its own parameters, AdamW moments, data stream, feature probabilities, importance and
/// input scale; the models share the shape (n, m, E, k and the tie rule) and the `TrainingConfig`.
///
/// A model that diverges or stops early leaves its group at that step, exactly as its own `Trainer` would stop; the
/// other lanes go on. Trained parameters are written back into the models. Hooks are not supported (use `Trainer`).
/// Groups are spread over threads; the results do not depend on the thread count.
public final class LockstepTrainer: @unchecked Sendable {  // immutable after init; run() writes only disjoint state
    public let models: [Model]
    public let data: [DataDistribution]
    public let config: TrainingConfig
    public let seeds: [UInt64]
    public let modelIDs: [UInt64]
    /// Which build of the lockstep step runs (`scalar` means the baseline SIMD build: there is no scalar lockstep
    /// step, and every build gives the scalar Trainer's bits; the choice only changes speed).
    public let kernels: KernelVariant

    /// Validates shapes and counts: one data distribution, seed and model ID per model; every model with the same
    /// n_features, n_hidden, n_experts, n_active_experts and tie rule; no model listed twice.
    public init(
        models: [Model], data: [DataDistribution], config: TrainingConfig, seeds: [UInt64], modelIDs: [UInt64]? = nil,
        kernels: KernelVariant = KernelVariant.selected
    ) throws {
        self.kernels = kernels
        let c = "LockstepTrainer"
        let ids = modelIDs ?? [UInt64](repeating: 0, count: models.count)
        guard data.count == models.count else {
            throw ToyMoEError(c, "data", "expected one data distribution per model (\(models.count)), got \(data.count)")
        }
        guard seeds.count == models.count else {
            throw ToyMoEError(c, "seeds", "expected one seed per model (\(models.count)), got \(seeds.count)")
        }
        guard ids.count == models.count else {
            throw ToyMoEError(c, "model_ids", "expected one model ID per model (\(models.count)), got \(ids.count)")
        }
        try config.validate()
        if let first = models.first {
            var seen = Set<ObjectIdentifier>()
            for (i, m) in models.enumerated() {
                let a = m.config, b = first.config
                if a.featureCount != b.featureCount || a.hiddenCount != b.hiddenCount || a.expertCount != b.expertCount
                    || a.activeExpertCount != b.activeExpertCount || a.tieBreak != b.tieBreak
                {
                    throw ToyMoEError(
                        c, "models",
                        "every model must have the same shape; model \(i + 1) is \(m.description) (tie_break \(a.tieBreak.rawValue)) but model 1 is \(first.description) (tie_break \(b.tieBreak.rawValue))")
                }
                if !seen.insert(ObjectIdentifier(m)).inserted {
                    throw ToyMoEError(c, "models", "model \(i + 1) appears more than once (each lane needs its own model)")
                }
                do { try data[i].validate(featureCount: m.featureCount) } catch let e as ToyMoEError {
                    throw ToyMoEError(c, "data", "distribution \(i + 1): \(e.argument): \(e.message)")
                }
            }
        }
        self.models = models
        self.data = data
        self.config = config
        self.seeds = seeds
        self.modelIDs = ids
    }

    /// The thread count `run()` uses by default: the machine's active processors.
    public static var defaultThreads: Int { Swift.max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Trains every model; returns one result per model, in order. `threads` is capped by the number of groups.
    /// `shouldStop` (optional, called from the worker threads before every step of every group, so it must be
    /// thread-safe) cancels: each group then ends at its current step and its models keep the parameters reached;
    /// the caller reports the cancellation. It only reads, so a run it never stops is unchanged, bit for bit.
    /// `progress` (optional, thread-safe, called from the worker threads) receives model-steps done since a group's
    /// previous call (lanes that stepped × steps), every `Trainer.progressStride` group steps and at each group's
    /// end: over the run the calls sum to the results' `stepsRun`. It sees no training state. No cost when nil.
    public func run(
        threads: Int = LockstepTrainer.defaultThreads, shouldStop: (@Sendable () -> Bool)? = nil,
        progress: (@Sendable (Int) -> Void)? = nil
    ) -> [TrainingResult] {
        let width = LockstepGroup.width
        let groups = (models.count + width - 1) / width
        guard groups > 0 else { return [] }
        let placeholder = TrainingResult(
            finalLoss: .nan, finalReconstructionLoss: .nan, finalLoadBalancingLoss: .nan, stepsRun: 0,
            historySteps: [], history: [], stoppedEarly: false, divergence: nil, seconds: 0)
        var results = [TrainingResult](repeating: placeholder, count: models.count)
        let workers = Swift.max(1, Swift.min(threads, groups))
        results.withUnsafeMutableBufferPointer { out in
            let out = UnsafeSendable(out)
            if workers == 1 {
                for g in 0..<groups { runGroup(g, into: out.value, shouldStop: shouldStop, progress: progress) }
            } else {
                let queue = GroupQueue()
                DispatchQueue.concurrentPerform(iterations: workers) { _ in
                    while true {
                        let g = queue.take()
                        if g >= groups { break }
                        self.runGroup(g, into: out.value, shouldStop: shouldStop, progress: progress)
                    }
                }
            }
        }
        return results
    }

    /// Trains group `g` (models 8g ..< 8g + 8) and writes its results into `out` (distinct indices per group).
    func runGroup(
        _ g: Int, into out: UnsafeMutableBufferPointer<TrainingResult>, shouldStop: (@Sendable () -> Bool)? = nil,
        progress: (@Sendable (Int) -> Void)? = nil
    ) {
        let start = DispatchTime.now().uptimeNanoseconds
        let width = LockstepGroup.width
        let first = g * width
        let lanes = Swift.min(width, models.count - first)
        let layout = models[first].layout
        let group = LockstepGroup(
            layout: layout, batch: config.batchSize, tieBreak: models[first].config.tieBreak.kernel, laneCount: lanes)
        let step = KernelSet(kernels).lockstepStep
        for l in 0..<lanes {
            let i = first + l
            let d = data[i]
            let rng = RandomStream(seed: seeds[i], path: [modelIDs[i], StreamPurpose.data.rawValue])
            d.featureProbability.withUnsafeBufferPointer { p in
                d.importance.withUnsafeBufferPointer { imp in
                    if let scale = d.inputScale {
                        scale.withUnsafeBufferPointer { sc in
                            group.setLane(
                                l, parameters: models[i].parameters.baseAddress!, probability: p.baseAddress!,
                                importance: imp.baseAddress!, scale: sc.baseAddress!, rng: rng)
                        }
                    } else {
                        group.setLane(
                            l, parameters: models[i].parameters.baseAddress!, probability: p.baseAddress!,
                            importance: imp.baseAddress!, scale: nil, rng: rng)
                    }
                }
            }
        }

        // Per-lane bookkeeping, a transcription of `Trainer.run` / `Trainer.step`.
        let steps = config.steps
        let B = Double(config.batchSize)
        let lossScale = config.lossNormalization == .sumOverFeatures ? 1 / B : 1 / (B * Double(layout.n))
        let lbAlpha: Float? = config.loadBalancing ? Float(config.loadBalancingAlpha) : nil
        var active = [Bool](repeating: true, count: lanes)
        var activeCount = lanes
        var earlyStopFactor = [Double](repeating: 1, count: lanes)
        var last = [StepInfo](
            repeating: StepInfo(step: -1, loss: .nan, reconstructionLoss: .nan, loadBalancingLoss: .nan, learningRate: 0),
            count: lanes)
        var stepsRun = [Int](repeating: 0, count: lanes)
        let expected = Swift.min(steps / config.historyStride + 2, 1 << 20)
        var history = [[Double]](repeating: [], count: lanes)
        var historySteps = [[Int]](repeating: [], count: lanes)
        for l in 0..<lanes {
            history[l].reserveCapacity(expected)
            historySteps[l].reserveCapacity(expected)
        }
        var stoppedEarly = [Bool](repeating: false, count: lanes)
        var divergence = [(Int, String)?](repeating: nil, count: lanes)
        var lrs = [Double](repeating: 0, count: lanes)

        func writeBack(_ l: Int) {
            group.copyParameters(lane: l, into: models[first + l].parameters.baseAddress!)
        }

        var t = 0
        var unreported = 0  // model-steps not yet passed to `progress`
        var sinceReport = 0  // group steps since the last call
        while t < steps && activeCount > 0 {
            if let shouldStop, shouldStop() { break }
            if progress != nil {
                unreported += activeCount  // the lanes this step trains
                sinceReport += 1
                if sinceReport > Trainer.progressStride, let progress {
                    // the previous strides' steps are done; this one's are not yet: report all but this step's
                    progress(unreported - activeCount)
                    unreported = activeCount
                    sinceReport = 1
                }
            }
            let base = config.learningRate * config.schedule.factor(step: t, of: steps)
            let shared = AdamWCoefficients(
                step: t + 1, lr: base, beta1: config.beta1, beta2: config.beta2, eps: config.epsilon,
                weightDecay: config.weightDecay)
            var adam = LockstepAdamW(shared)
            for l in 0..<lanes {
                lrs[l] = base * earlyStopFactor[l]
                if earlyStopFactor[l] != 1 && active[l] {
                    adam.setLane(
                        l, AdamWCoefficients(
                            step: t + 1, lr: lrs[l], beta1: config.beta1, beta2: config.beta2, eps: config.epsilon,
                            weightDecay: config.weightDecay))
                }
            }
            let losses = step(group, lossScale, lbAlpha, adam)
            let isLast = t + 1 == steps
            for l in 0..<lanes where active[l] {
                let recon = losses.reconstruction[l], lb = losses.loadBalancing[l]
                let info = StepInfo(step: t, loss: recon + lb, reconstructionLoss: recon, loadBalancingLoss: lb, learningRate: lrs[l])
                last[l] = info
                stepsRun[l] = t + 1
                if !info.loss.isFinite {
                    divergence[l] = (t, Trainer.divergenceReason(info))
                }
                var stop = divergence[l] != nil
                if let es = config.earlyStop, !stop {
                    if info.loss < es.stopLoss {
                        stop = true
                        stoppedEarly[l] = true
                    } else if info.loss < es.dropLoss {
                        earlyStopFactor[l] *= es.dropFactor
                    }
                }
                if t % config.historyStride == 0 || isLast || stop {
                    history[l].append(info.loss)
                    historySteps[l].append(t)
                }
                if stop {
                    active[l] = false
                    activeCount -= 1
                    writeBack(l)
                }
            }
            t += 1
        }
        if let progress, unreported > 0 { progress(unreported) }
        for l in 0..<lanes where active[l] { writeBack(l) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        for l in 0..<lanes {
            out[first + l] = TrainingResult(
                finalLoss: last[l].loss, finalReconstructionLoss: last[l].reconstructionLoss,
                finalLoadBalancingLoss: last[l].loadBalancingLoss, stepsRun: stepsRun[l], historySteps: historySteps[l],
                history: history[l], stoppedEarly: stoppedEarly[l], divergence: divergence[l], seconds: seconds)
        }
    }
}

/// Hands out group indices 0, 1, 2, ... to worker threads (groups can end early, so workers take them on demand).
final class GroupQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        return next - 1
    }
}

/// Carries a value the caller guarantees is used safely across threads (here: disjoint indices of one buffer).
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
