import Foundation
import ToyMoEKernels

/// How the reconstruction error is reduced over features (docs/PAPER.md#loss-normalization). The two trainers of the authors differ here,
/// by a factor of n (and so does the weight of L_LB relative to reconstruction).
public enum LossNormalization: String, Sendable, Codable, CaseIterable {
    /// L = Σ_i mean_b I_i (x − x̂)²: the single-model trainer `optimize` (Figs. 1, 2, 5, 6).
    case sumOverFeatures = "sum"
    /// L = mean_{b,i} I_i (x − x̂)²: the vectorized trainer `optimize_vectorized` (Figs. 3, 4, 7, Table 1).
    case meanOverFeatures = "mean"
}

/// Learning-rate multipliers of the authors' helpers (step t of T): constant 1; linear 1 − t/T;
/// cosine cos(π/2 · t/(T − 1)). The paper uses constant everywhere.
public enum LearningRateSchedule: String, Sendable, Codable, CaseIterable {
    case constant
    case linear
    case cosine

    /// The multiplier at step `t` (0-based) of `total`.
    public func factor(step t: Int, of total: Int) -> Double {
        switch self {
        case .constant: return 1
        case .linear: return 1 - Double(t) / Double(total)
        case .cosine: return total > 1 ? cos(0.5 * Double.pi * Double(t) / Double(total - 1)) : 1
        }
    }
}

/// The early-stop rules of Fig. 5's trainer (`other_optimize`, docs/PAPER.md#loss-normalization): after every step whose minibatch loss is
/// below `dropLoss`, the learning rate is multiplied by `dropFactor` (possibly on many consecutive steps);
/// training stops at the first step whose loss is below `stopLoss`.
public struct EarlyStop: Sendable, Equatable, Codable {
    public var dropLoss: Double
    public var stopLoss: Double
    public var dropFactor: Double

    public init(dropLoss: Double = 0.015, stopLoss: Double = 0.01, dropFactor: Double = 0.1) {
        self.dropLoss = dropLoss
        self.stopLoss = stopLoss
        self.dropFactor = dropFactor
    }
}

/// Every option of a training run. Defaults are the paper's: AdamW(lr 1e-3, β 0.9/0.999, ε 1e-8, wd 0.01),
/// constant lr, batch 1024, 10,000 steps, sum-over-features loss, no load balancing.
public struct TrainingConfig: Sendable, Equatable, Codable {
    public var steps: Int = 10_000
    public var batchSize: Int = 1024
    public var learningRate: Double = 1e-3
    public var schedule: LearningRateSchedule = .constant
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    /// Decoupled weight decay applied to every parameter (W, b_final and gate), as PyTorch's AdamW default.
    public var weightDecay: Double = 0.01
    public var lossNormalization: LossNormalization = .sumOverFeatures
    /// Adds α·E·Σ f_e P_e (docs/PAPER.md#load-balancing).
    public var loadBalancing: Bool = false
    public var loadBalancingAlpha: Double = 0.01
    public var earlyStop: EarlyStop? = nil
    /// Record the loss of every `historyStride`-th step (and always the last).
    public var historyStride: Int = 1

    public init() {}

    /// Validates option domains; names the option in the paper's/notebook's spelling.
    public func validate() throws {
        let c = "TrainingConfig"
        if steps < 0 { throw ToyMoEError(c, "steps", "expected a non-negative integer, got \(steps)") }
        if batchSize < 1 { throw ToyMoEError(c, "batch_size", "expected a positive integer, got \(batchSize)") }
        if batchSize > 1 << 22 { throw ToyMoEError(c, "batch_size", "expected at most \(1 << 22), got \(batchSize)") }
        func finite(_ v: Double, _ name: String, _ ok: Bool, _ expected: String) throws {
            if !v.isFinite || !ok { throw ToyMoEError(c, name, "expected \(expected), got \(v)") }
        }
        try finite(learningRate, "lr", learningRate >= 0, "a finite non-negative number")
        try finite(beta1, "beta1", beta1 >= 0 && beta1 < 1, "a number in [0, 1)")
        try finite(beta2, "beta2", beta2 >= 0 && beta2 < 1, "a number in [0, 1)")
        try finite(epsilon, "eps", epsilon > 0, "a finite positive number")
        try finite(weightDecay, "weight_decay", weightDecay >= 0, "a finite non-negative number")
        try finite(loadBalancingAlpha, "load_balancing_alpha", loadBalancingAlpha >= 0, "a finite non-negative number")
        if historyStride < 1 { throw ToyMoEError(c, "history_every", "expected a positive integer, got \(historyStride)") }
        if let es = earlyStop {
            try finite(es.dropLoss, "drop_loss", true, "a finite number")
            try finite(es.stopLoss, "stop_loss", true, "a finite number")
            try finite(es.dropFactor, "drop_factor", es.dropFactor > 0 && es.dropFactor <= 1, "a number in (0, 1]")
        }
    }
}

/// What one training step produced (the loss is the minibatch loss before that step's update, as in PyTorch).
public struct StepInfo: Sendable {
    /// 0-based step index.
    public var step: Int
    public var loss: Double
    public var reconstructionLoss: Double
    public var loadBalancingLoss: Double
    public var learningRate: Double
}

/// A hook's answer: keep training or stop now.
public enum HookAction: Sendable {
    case proceed
    case stop
}

/// The outcome of `Trainer.run`.
public struct TrainingResult: Sendable {
    /// Loss of the last minibatch (including L_LB when on): the paper's "final loss".
    public var finalLoss: Double
    public var finalReconstructionLoss: Double
    public var finalLoadBalancingLoss: Double
    /// Steps actually taken.
    public var stepsRun: Int
    /// (step, loss) every `historyStride` steps and at the last step.
    public var historySteps: [Int]
    public var history: [Double]
    /// True if the early-stop rule or a hook ended training.
    public var stoppedEarly: Bool
    /// Set when the loss became NaN or ±Inf: the step and a reason. Training stops at once.
    public var divergence: (step: Int, reason: String)?
    public var seconds: Double
}

/// Trains one model with fresh data every step, hand-written forward/backward and AdamW. A training step
/// allocates nothing: the workspace, gradients and moments are allocated once, here.
public final class Trainer {
    public let model: Model
    public let data: DataDistribution
    public let config: TrainingConfig
    /// The data stream (seed, modelID, data).
    public var rng: RandomStream
    /// Number of optimizer steps taken so far (AdamW's t).
    public private(set) var stepsTaken = 0
    /// Current multiplier from the early-stop rule.
    public private(set) var earlyStopFactor = 1.0

    /// The kernel implementation this trainer runs (fixed at creation; an unsupported request falls back to the
    /// widest variant this CPU runs, see `KernelSet.init`).
    public var kernels: KernelVariant { kernelSet.variant }
    let kernelSet: KernelSet
    let workspace: Workspace
    let grads: UnsafeMutableBufferPointer<Float>
    /// Whether each step's gradient is computed as the sum of two half-batch gradients (see `splitsBatch`).
    public let splitsBatch: Bool
    /// The second half's gradient and per-sample scratch (allocated only when `splitsBatch`).
    let halfGrads: UnsafeMutableBufferPointer<Float>?
    let halfScratch: UnsafeMutableBufferPointer<Float>?
    /// The two halves' activation views (rows 0..<B/2 and B/2..<B of the workspace), made once at init.
    let halfActivations: [MoEActivations]
    let moment1: UnsafeMutableBufferPointer<Float>
    let moment2: UnsafeMutableBufferPointer<Float>
    let importance: [Float]

    /// - Parameter kernels: nil (the default) uses `KernelVariant.forShape(model.layout)`.
    /// - Parameter splitBatch: nil (the default) splits by shape (`splitsBatch(layout:batch:)`); true/false forces
    ///   it (for benchmarks and tests; a forced split needs an even batch and is ignored otherwise).
    public init(
        model: Model, data: DataDistribution, config: TrainingConfig, seed: UInt64, modelID: UInt64 = 0,
        kernels: KernelVariant? = nil, splitBatch: Bool? = nil
    ) throws {
        self.kernelSet = KernelSet(kernels ?? KernelVariant.forShape(model.layout))
        try config.validate()
        try data.validate(featureCount: model.featureCount)
        self.model = model
        self.data = data
        self.config = config
        self.rng = RandomStream(seed: seed, path: [modelID, StreamPurpose.data.rawValue])
        self.workspace = Workspace(layout: model.layout, batch: config.batchSize)
        let count = model.layout.count
        grads = .allocate(capacity: count)
        moment1 = .allocate(capacity: count)
        moment2 = .allocate(capacity: count)
        grads.initialize(repeating: 0)
        moment1.initialize(repeating: 0)
        moment2.initialize(repeating: 0)
        importance = data.importance
        splitsBatch = config.batchSize % 2 == 0 && config.batchSize >= 2
            && (splitBatch ?? Trainer.splitsBatch(layout: model.layout, batch: config.batchSize))
        if splitsBatch {
            let L = model.layout
            let h = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            h.initialize(repeating: 0)
            halfGrads = h
            let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: L.n + L.active + L.experts + L.m)
            scratch.initialize(repeating: 0)
            halfScratch = scratch
            let act = workspace.activations
            halfActivations = [Trainer.rows(act, layout: L, from: 0, scratch: nil),
                               Trainer.rows(act, layout: L, from: config.batchSize / 2, scratch: scratch.baseAddress!)]
        } else {
            halfGrads = nil
            halfScratch = nil
            halfActivations = []
        }
    }

    deinit {
        halfGrads?.deallocate()
        halfScratch?.deallocate()
        grads.deallocate()
        moment1.deallocate()
        moment2.deallocate()
    }

    /// The loss scale that turns Σ_b Σ_i I(x − x̂)² into the configured normalization.
    var lossScale: Double {
        let B = Double(config.batchSize)
        switch config.lossNormalization {
        case .sumOverFeatures: return 1 / B
        case .meanOverFeatures: return 1 / (B * Double(model.featureCount))
        }
    }

    /// The learning rate step `t` will use.
    public func learningRate(at t: Int) -> Double {
        config.learningRate * config.schedule.factor(step: t, of: config.steps) * earlyStopFactor
    }

    /// Draws a batch into the workspace.
    func sampleBatch() {
        data.sample(into: workspace.x, batch: config.batchSize, rng: &rng)
    }

    // MARK: - Splitting one model's step over two cores

    /// Forward multiply-adds per step (B·k·n·m) from which a step is split into two batch halves. Measured with
    /// `toymoe bench --configs P6` (BENCHMARKS.md): two threads lose at 26k (an 80 µs step: ×0.8) and win from
    /// about 100k on (a 400 µs step: ×1.2–1.4).
    public static let splitThreshold = 100_000

    /// Threads a split step uses: 2 on a machine with two or more cores, else 1. Set it to 1 before training when
    /// other work already occupies the cores (`toymoe run --jobs 2` does). Results do not depend on it.
    nonisolated(unsafe) public static var intraModelThreads = Swift.min(2, ProcessInfo.processInfo.activeProcessorCount)

    /// Whether a step of this shape computes its gradient as two half-batch gradients summed (half 1 + half 2).
    /// It is a property of the shape only, never of the machine or the thread count, so a run's numbers are the
    /// same with 1 or 2 threads (the halves are then computed one after the other). Needs an even batch so the
    /// load-balancing coefficient α·E/B is exactly (α/2)·E/(B/2).
    public static func splitsBatch(layout L: MoELayout, batch B: Int) -> Bool {
        B % 2 == 0 && B >= 64 && B * L.active * L.n * L.m >= splitThreshold
    }

    /// The activations of rows `first ..< first + count` of the batch (pointers into the same workspace), with
    /// per-sample scratch from `scratch` when given (each concurrent half needs its own).
    static func rows(_ act: MoEActivations, layout L: MoELayout, from first: Int, scratch: UnsafeMutablePointer<Float>?)
        -> MoEActivations
    {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        var a = act
        a.x = act.x + first * n
        a.probs = act.probs + first * E
        a.selected = act.selected + first * k
        a.gates = act.gates + first * k
        a.hidden = act.hidden + first * k * m
        a.preact = act.preact + first * k * n
        a.xhat = act.xhat + first * n
        if let scratch {
            a.dxhat = scratch
            a.dgate = scratch + n
            a.dprob = scratch + n + k
            a.dhidden = scratch + n + k + E
        }
        return a
    }

    /// Threads this trainer's split steps use (defaults to `intraModelThreads`; results do not depend on it).
    public var threads: Int = Trainer.intraModelThreads

    /// Runs `body(0)` and `body(1)`, on two threads when `threads` allows.
    func halves(_ body: (Int) -> Void) {
        if threads >= 2 {
            // The halves touch disjoint rows, scratch and gradient buffers, and read shared parameters only, so
            // running them concurrently is safe although the closure (holding raw pointers) is not `@Sendable`.
            withoutActuallyEscaping(body) { body in
                DispatchQueue.concurrentPerform(
                    iterations: 2, execute: unsafeBitCast(body, to: (@Sendable (Int) -> Void).self))
            }
        } else {
            body(0)
            body(1)
        }
    }

    /// Loss and gradients for the batch currently in the workspace; gradients land in `grads`.
    /// Returns (reconstruction, load-balancing).
    func lossAndGradients() -> (Double, Double) {
        splitsBatch ? splitLossAndGradients() : wholeLossAndGradients()
    }

    /// `lossAndGradients` over two batch halves: forward per half, the loss and load-balancing statistics over the
    /// whole batch, backward per half into its own gradient buffer, then grads = half 1 + half 2. The halves use
    /// α/2 as the load-balancing weight so that the kernels' α·E/batch becomes (α/2)·E/(B/2) = α·E/B exactly.
    func splitLossAndGradients() -> (Double, Double) {
        let L = model.layout
        let B = config.batchSize, h = B / 2
        let params = UnsafePointer(model.parameters.baseAddress!)
        let act = workspace.activations
        let K = kernelSet
        let tie = model.config.tieBreak.kernel
        let parts = halfActivations
        halves { K.forward(params, L, h, tie, parts[$0]) }
        let (recon, lb, alpha) = lossTerms(act)
        let scale = lossScale
        let halfAlpha = alpha.map { $0 / 2 }
        let g0 = grads.baseAddress!, g1 = halfGrads!.baseAddress!
        let count = grads.count
        importance.withUnsafeBufferPointer { imp in
            let importance = imp.baseAddress!
            halves { part in
                let g = part == 0 ? g0 : g1
                g.update(repeating: 0, count: count)
                K.backward(params, g, L, h, importance, Float(scale), halfAlpha, parts[part])
            }
        }
        for i in 0..<count { g0[i] += g1[i] }
        return (recon, lb)
    }

    /// The reconstruction loss over the whole batch and, when load balancing is on, L_LB (which also stores the
    /// f_e and P_e statistics the backward reads), with α (nil when off).
    func lossTerms(_ act: MoEActivations) -> (recon: Double, lb: Double, alpha: Float?) {
        let L = model.layout, B = config.batchSize
        let scale = lossScale
        let recon = importance.withUnsafeBufferPointer { imp in
            kernelSet.reconstructionLoss(workspace.x, workspace.xhat, imp.baseAddress!, B, L.n, scale)
        }
        let alpha: Float? = config.loadBalancing ? Float(config.loadBalancingAlpha) : nil
        let lb = alpha.map { kernelSet.loadBalancing(L, B, $0, act) } ?? 0
        return (recon, lb, alpha)
    }

    /// `lossAndGradients` over the whole batch at once.
    func wholeLossAndGradients() -> (Double, Double) {
        let L = model.layout
        let B = config.batchSize
        let params = UnsafePointer(model.parameters.baseAddress!)
        let act = workspace.activations
        let K = kernelSet
        K.forward(params, L, B, model.config.tieBreak.kernel, act)
        let (recon, lb, alpha) = lossTerms(act)
        let scale = lossScale
        for i in 0..<grads.count { grads[i] = 0 }
        importance.withUnsafeBufferPointer { imp in
            K.backward(params, grads.baseAddress!, L, B, imp.baseAddress!, Float(scale), alpha, act)
        }
        return (recon, lb)
    }

    /// One training step: fresh batch, forward, loss, backward, AdamW. Returns the step's (pre-update) loss.
    @discardableResult
    public func step() -> StepInfo {
        let t = stepsTaken
        let lr = learningRate(at: t)
        sampleBatch()
        let (recon, lb) = lossAndGradients()
        // Every variant's AdamW is bitwise identical to the scalar one (tested); the SIMD ones are faster.
        kernelSet.adamW(
            model.parameters.baseAddress!, UnsafePointer(grads.baseAddress!), moment1.baseAddress!,
            moment2.baseAddress!, grads.count, t + 1, lr, config.beta1, config.beta2, config.epsilon,
            config.weightDecay)
        stepsTaken += 1
        return StepInfo(step: t, loss: recon + lb, reconstructionLoss: recon, loadBalancingLoss: lb, learningRate: lr)
    }

    /// The reason recorded when a step's loss is not finite (the step itself is recorded beside it).
    static func divergenceReason(_ info: StepInfo) -> String {
        "loss became \(info.loss) (lr \(info.learningRate))"
    }

    /// Steps between two calls of `run`'s `progress` callback: a few milliseconds of work at the smallest sizes,
    /// so a display redrawn a few times a second stays current while the callback's cost stays invisible.
    public static let progressStride = 64

    /// Trains for `config.steps` steps (or until early stop, a hook's `.stop`, or divergence).
    /// - Parameters:
    ///   - hookEvery: call `hook` every this many steps (step % hookEvery == 0) and at the last step.
    ///   - hook: optional; receives the step's info and the model (read it, don't resize it). No per-step cost when nil.
    ///   - shouldStop: optional cancellation (e.g. a script's deadline), asked before every step; when it answers
    ///     true, training ends there and the result covers the steps taken (the caller reports the cancellation).
    ///     It only reads, so a run it never stops is the same, bit for bit, as one without it. No cost when nil.
    ///   - progress: optional; called with the number of steps taken since its previous call, every
    ///     `Trainer.progressStride` steps and once at the end with the remainder (so the calls sum to `stepsRun`).
    ///     It sees no training state, so it cannot change the result. No cost when nil.
    public func run(
        hookEvery: Int = 100, hook: ((StepInfo, Model) -> HookAction)? = nil, shouldStop: (() -> Bool)? = nil,
        progress: ((Int) -> Void)? = nil
    ) -> TrainingResult {
        let start = DispatchTime.now().uptimeNanoseconds
        var history: [Double] = []
        var historySteps: [Int] = []
        // Reserve up front so recording never reallocates mid-run, but never more than a bounded amount: a huge
        // step count must not turn into a huge allocation before the first step (an early stop may end it soon).
        let expected = Swift.min(config.steps / config.historyStride + 2, 1 << 20)
        history.reserveCapacity(expected)
        historySteps.reserveCapacity(expected)
        var last = StepInfo(step: -1, loss: .nan, reconstructionLoss: .nan, loadBalancingLoss: .nan, learningRate: 0)
        var stoppedEarly = false
        var divergence: (Int, String)? = nil
        let every = Swift.max(1, hookEvery)
        var reported = stepsTaken
        while stepsTaken < config.steps {
            if let shouldStop, shouldStop() { break }
            last = step()
            // Reported in strides, never per step: the callback may take a lock and read a clock.
            if let progress, stepsTaken - reported >= Trainer.progressStride {
                progress(stepsTaken - reported)
                reported = stepsTaken
            }
            let t = last.step
            let isLast = stepsTaken == config.steps
            if !last.loss.isFinite {
                divergence = (t, Trainer.divergenceReason(last))
            }
            var stop = divergence != nil
            if let es = config.earlyStop, !stop {
                if last.loss < es.stopLoss {
                    stop = true
                    stoppedEarly = true
                } else if last.loss < es.dropLoss {
                    earlyStopFactor *= es.dropFactor
                }
            }
            if t % config.historyStride == 0 || isLast || stop {
                history.append(last.loss)
                historySteps.append(t)
            }
            if let hook, t % every == 0 || isLast || stop {
                if hook(last, model) == .stop && !stop {
                    stop = true
                    stoppedEarly = true
                }
            }
            if stop { break }
        }
        if let progress, stepsTaken > reported { progress(stepsTaken - reported) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return TrainingResult(
            finalLoss: last.loss, finalReconstructionLoss: last.reconstructionLoss,
            finalLoadBalancingLoss: last.loadBalancingLoss, stepsRun: stepsTaken, historySteps: historySteps,
            history: history, stoppedEarly: stoppedEarly, divergence: divergence, seconds: seconds)
    }

    /// Loss and a copy of the gradient for a given batch `x` (B, n), without updating anything. For gradient checks
    /// and analysis; `x.count` must be `batchSize · n`.
    public func gradient(for x: [Float]) throws -> (loss: Double, reconstruction: Double, loadBalancing: Double, gradient: [Float]) {
        let n = model.featureCount
        guard x.count == config.batchSize * n else {
            throw ToyMoEError("Trainer.gradient", "x", "expected \(config.batchSize * n) values (batch_size × n_features), got \(x.count)")
        }
        x.withUnsafeBufferPointer { workspace.x.update(from: $0.baseAddress!, count: x.count) }
        let (recon, lb) = lossAndGradients()
        return (recon + lb, recon, lb, Array(grads))
    }
}
