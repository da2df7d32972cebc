import ArgumentParser
import Foundation
import ToyMoE
import ToyMoEIO
import ToyMoELua

/// `toymoe train`: trains one dense or MoE toy model from command-line options and writes its results.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train one dense or Mixture-of-Experts toy model and write its weights, loss curve and metrics.",
        discussion: """
            Presets give the paper's configurations; any option overrides them.
              fig1  dense n_features=20, n_hidden=6, feature_probability=0.1, importance 0.7^i (Fig. 1)
              fig2  MoE n_features=20, n_hidden=2, n_experts=3, k=1, otherwise as fig1 (Fig. 2)
            Results: model.npz (W, b_final, gate), history.npy ((step, loss) rows), metrics.json,
            config.json, provenance.json.
            """)

    enum Preset: String, ExpressibleByArgument, CaseIterable {
        case fig1, fig2
    }

    enum GateInit: String, ExpressibleByArgument, CaseIterable {
        case xavier, zero, diagonal
        case orderedKHot = "ordered-khot"
        case randomKHot = "random-khot"

        var scheme: TensorInit {
            switch self {
            case .xavier: return .xavier()
            case .zero: return .zero
            case .diagonal: return .diagonal
            case .orderedKHot: return .orderedKHot
            case .randomKHot: return .randomKHot
            }
        }
    }

    enum BiasInit: String, ExpressibleByArgument, CaseIterable {
        case xavier, zero
    }

    @Option(help: "Start from a paper configuration: \(Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: Preset?

    @Option(name: .customLong("n-features"), help: "Number of input features n.")
    var nFeatures: Int?
    @Option(name: .customLong("n-hidden"), help: "Hidden width per expert m.")
    var nHidden: Int?
    @Option(name: .customLong("n-experts"), help: "Number of experts E (1 = dense).")
    var nExperts: Int?
    @Option(name: .customLong("n-active-experts"), help: "Active experts per sample k.")
    var nActiveExperts: Int?
    @Option(name: .customLong("feature-probability"), help: "Feature density p = 1 - S (each feature nonzero with probability p).")
    var featureProbability: Float?
    @Option(name: .customLong("importance-base"), help: "Importance I_i = base^i (1 = all ones).")
    var importanceBase: Double?
    @Option(help: "Training steps.")
    var steps: Int?
    @Option(name: .customLong("batch-size"), help: "Samples per step.")
    var batchSize: Int?
    @Option(help: "AdamW learning rate.")
    var lr: Double?
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay (all parameters).")
    var weightDecay: Double?
    @Option(help: "Loss normalization: sum (over features, single-model trainer) or mean (vectorized trainer).")
    var loss: String?
    @Flag(name: .customLong("load-balancing"), help: "Add the load-balancing loss alpha*E*sum f_e P_e.")
    var loadBalancing = false
    @Option(name: .customLong("load-balancing-alpha"), help: "Load-balancing coefficient alpha.")
    var loadBalancingAlpha: Double = 0.01
    @Option(name: .customLong("init-gate"), help: "Router init: \(GateInit.allCases.map(\.rawValue).joined(separator: ", ")).")
    var initGate: GateInit = .xavier
    @Option(name: .customLong("init-bias"), help: "Bias init: xavier (authors' final code) or zero.")
    var initBias: BiasInit = .xavier
    @Option(help: "Seed of every random draw (weights, data, metrics).")
    var seed: UInt64 = 0
    @Option(help: "Output directory.")
    var out: String?
    @Flag(help: "Print nothing but errors.")
    var quiet = false
    @Option(name: .customLong("progress-interval"), help: "When stderr is not a terminal (logs), seconds between two progress lines (default: $TOYMOE_PROGRESS_INTERVAL, else 30). On a terminal a bar is redrawn in place.")
    var progressInterval: Double?

    @Option(help: "Kernel implementation: auto or simd (the widest SIMD build this CPU runs), scalar (alias naive), simd-baseline, simd-avx2 or simd-avx512 (default: $TOYMOE_KERNELS, else auto). Recorded in provenance.json.")
    var kernels: String?

    func validate() throws {
        if let k = kernels, case .failure(let e) = KernelVariant.resolve(k) {
            throw ValidationError("--kernels: \(e.message)")
        }
        if kernels == nil, let e = KernelVariant.environmentError { throw ValidationError(e.message) }
        if let l = loss, LossNormalization(rawValue: l) == nil {
            throw ValidationError("--loss: expected 'sum' or 'mean', got '\(l)'")
        }
        // Every size is checked here, before anything is built: the importance schedule, the data vectors, the
        // model and the training workspace all grow with n_features, and building them first for a huge size
        // would allocate for minutes before the check refused it.
        let (model, training, p, base) = configuration()
        do {
            try model.validate()
            try training.validate()
        } catch let e as ToyMoEError {
            throw ValidationError(e.description)
        }
        guard p >= 0, p <= 1 else { throw ValidationError("--feature-probability: expected a probability in [0, 1], got \(p)") }
        guard base.isFinite, base >= 0 else { throw ValidationError("--importance-base: expected a finite number ≥ 0, got \(base)") }
        // The training's buffers (as the Lua bindings account them) plus the data vectors, against the machine.
        let n = model.featureCount, params = model.layout.count
        let (rows, o1) = training.batchSize.multipliedReportingOverflow(by: n * (3 + 2 * model.activeExpertCount) + model.expertCount)
        let bytes = Double(rows) * 4 + Double(params) * 16 + Double(n) * 8
        let physical = Double(ProcessInfo.processInfo.physicalMemory)
        if o1 || bytes > physical {
            throw ValidationError(
                "a training of n_features=\(n), n_hidden=\(model.hiddenCount), n_experts=\(model.expertCount) with batch_size=\(training.batchSize) needs about \(String(format: "%.1f", bytes / Double(1 << 30))) GiB; this machine has \(String(format: "%.1f", physical / Double(1 << 30))) GiB")
        }
    }

    /// The model and training configurations, feature probability and importance base from the preset and the
    /// options (not yet validated).
    func configuration() -> (ModelConfig, TrainingConfig, Float, Double) {
        var model = ModelConfig(featureCount: 20, hiddenCount: 6)
        var p: Float = 0.1
        var base = 0.7
        switch preset {
        case .fig2: model = ModelConfig(featureCount: 20, hiddenCount: 2, expertCount: 3, activeExpertCount: 1)
        case .fig1, .none: break
        }
        if let v = nFeatures { model.featureCount = v }
        if let v = nHidden { model.hiddenCount = v }
        if let v = nExperts { model.expertCount = v }
        if let v = nActiveExperts { model.activeExpertCount = v }
        if let v = featureProbability { p = v }
        if let v = importanceBase { base = v }
        var training = TrainingConfig()
        if let v = steps { training.steps = v }
        if let v = batchSize { training.batchSize = v }
        if let v = lr { training.learningRate = v }
        if let v = weightDecay { training.weightDecay = v }
        if let v = loss, let l = LossNormalization(rawValue: v) { training.lossNormalization = l }
        training.loadBalancing = loadBalancing
        training.loadBalancingAlpha = loadBalancingAlpha
        training.historyStride = max(1, training.steps / 1000)
        return (model, training, p, base)
    }

    func run() throws {
        if let k = kernels { try KernelVariant.select(k) }
        let (model, training, p, base) = configuration()

        let data = DataDistribution.uniform(
            featureCount: max(model.featureCount, 0), probability: p,
            importance: Schedules.geometric(base: base, count: max(model.featureCount, 0)))
        let initialization = Initialization(bFinal: initBias == .zero ? .zero : .xavier(), gate: initGate.scheme)
        let outDir = URL(fileURLWithPath: out ?? "results/\(preset?.rawValue ?? "train")")

        let net: Model
        let trainer: Trainer
        do {
            net = try Model(config: model, initialization: initialization, seed: seed)
            trainer = try Trainer(model: net, data: data, config: training, seed: seed)
        } catch let e as ToyMoEError {
            throw ValidationError(e.description)
        }
        var provenance = Provenance.start(tool: "toymoe train", seed: seed, kernelVariant: KernelVariant.current)
        if !quiet { print("training \(net) for \(training.steps) steps (seed \(seed))...") }
        let progress: ProgressReporter
        do { progress = ProgressReporter(options: try ProgressOptions.automatic(quiet: quiet, interval: progressInterval)) } catch {
            throw ValidationError("\(error)")
        }
        progress.declare(training.steps)
        let result = trainer.run(hookEvery: max(1, training.steps / 10), hook: { info, _ in
            if !quiet {
                progress.message("  step \(info.step): loss \(String(format: "%.6f", info.loss))")
            }
            return .proceed
        }, progress: progress.isOff ? nil : { progress.add($0) })
        progress.endTraining()
        provenance.finish()

        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        try net.writeNPZ(to: outDir.appendingPathComponent("model.npz"))
        try result.historyArray().write(to: outDir.appendingPathComponent("history.npy"))

        var metrics = JSONObject()
        metrics["training"] = result.toJSON()
        metrics["experts"] = Metrics.geometryJSON(net)
        var rng = RandomStream(seed: seed, path: [0, StreamPurpose.analysis.rawValue])
        metrics["features_per_dimension"] = .finite(try Metrics.moeFeaturesPerDimension(net, distribution: data, rng: &rng))
        let global = try Metrics.globalDimensionality(net, weighting: .usage, distribution: data, rng: &rng)
        metrics["global_dimensionality"] = .numbers(global.perFeature)
        metrics["features_represented"] = .int(global.featuresRepresented())
        try JSONValue.object(metrics).write(to: outDir.appendingPathComponent("metrics.json"), options: JSONWriteOptions(nonFinite: .null))

        var config = JSONObject()
        config["model"] = model.toJSON()
        config["data"] = data.toJSON()
        config["training"] = training.toJSON()
        config["initialization"] = .object(["W": "xavier", "b_final": .string(initBias.rawValue), "gate": .string(initGate.rawValue)])
        config["seed"] = .string(String(seed))
        try JSONValue.object(config).write(to: outDir.appendingPathComponent("config.json"))
        try provenance.toJSON().write(to: outDir.appendingPathComponent("provenance.json"))

        if !quiet {
            let counts = net.expertMatrices().map { Metrics.geometrySummary($0) }
            print("final loss \(String(format: "%.6f", result.finalLoss)) after \(result.stepsRun) steps in \(String(format: "%.1f", result.seconds)) s")
            for (e, s) in counts.enumerated() {
                print("expert \(e): \(s.representedCount) features represented (norm > 0.5), \(s.dedicatedCount) dedicated, \(s.antipodalPairCount) antipodal pairs, features per dimension \(String(format: "%.2f", s.featuresPerDimension))")
            }
            print("results written to \(outDir.path)/ (model.npz, history.npy, metrics.json, config.json, provenance.json)")
        }
    }
}
