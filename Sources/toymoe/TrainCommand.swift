import ArgumentParser
import Foundation
import ToyMoE
import ToyMoEIO
import ToyMoELua

/// `toymoe train`: trains one dense or MoE toy model from command-line options and writes its results.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train one dense or Mixture-of-Experts toy model and write its weights, loss curve, metrics and plots.",
        discussion: """
            Presets give the paper's configurations of one model, as the bundled scripts (scripts/paper/*.lua) train each of their models at full scale; any option overrides them. Without --preset the configuration is fig1's.

            \(TrainPreset.all.map { $0.name.padding(toLength: 14, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n"))

            n = --n-features, m = --n-hidden (per expert), E = --n-experts, k = --n-active-experts, p = --feature-probability. fig4-*: the sparsity S = 1 - p, and r = --last-importance (the last feature's importance, default 1). {perm}: a permutation of the importances drawn from --seed. Early stop: lr × 0.1 once the loss is below 0.015, stop below 0.01.

            Results in --out: model.npz (W, b_final, gate), history.npy ((step, loss) rows, steps 0-based), metrics.json, config.json (the configuration that ran, with the Lua API's key names), provenance.json, and index.html with the plots the scripts draw for one model (feature norms coloured by superposition, Gram matrices W_e W_eᵀ) from norms.svg and gram.svg.
            """)

    enum GateInit: String, ExpressibleByArgument, CaseIterable, Sendable {
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

        /// The spelling of `toymoe.model{init = {gate = ...}}`.
        var luaName: String { rawValue.replacingOccurrences(of: "-", with: "_") }
    }

    enum BiasInit: String, ExpressibleByArgument, CaseIterable, Sendable {
        case xavier, zero
    }

    static let base = TrainPreset.standard

    @Option(help: ArgumentHelp("Start from a paper configuration (listed above; default: fig1's configuration).", valueName: "name"))
    var preset: String?

    @Option(name: .customLong("n-features"), help: "Number of input features n (default: \(base.model.featureCount); presets set their own).")
    var nFeatures: Int?
    @Option(name: .customLong("n-hidden"), help: "Hidden width per expert m (default: \(base.model.hiddenCount); presets set their own).")
    var nHidden: Int?
    @Option(name: .customLong("n-experts"), help: "Number of experts E, 1 = dense (default: \(base.model.expertCount); presets set their own).")
    var nExperts: Int?
    @Option(name: .customLong("n-active-experts"), help: "Active experts per sample k (default: \(base.model.activeExpertCount); presets set their own).")
    var nActiveExperts: Int?
    @Option(name: .customLong("feature-probability"), help: "Feature density p = 1 - S: each feature is nonzero with probability p (default: \(base.featureProbability); presets set their own).")
    var featureProbability: Float?
    @Option(name: .customLong("importance-base"), help: "Importance I_i = base^i, i = 0…n−1; 1 = all ones (default: 0.7; presets set their own, permuted for fig6c and table1-*).")
    var importanceBase: Double?
    @Option(name: .customLong("last-importance"), help: "Importance of the last feature, Fig. 4's r (default: none, the schedule's value; fig4-* presets: 1).")
    var lastImportance: Double?
    @Option(help: "Training steps (default: \(base.training.steps); presets set their own).")
    var steps: Int?
    @Option(name: .customLong("batch-size"), help: "Samples per step (default: \(base.training.batchSize); presets set their own).")
    var batchSize: Int?
    @Option(help: "AdamW learning rate (default: \(base.training.learningRate)).")
    var lr: Double?
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay on all parameters (default: \(base.training.weightDecay)).")
    var weightDecay: Double?
    @Option(help: "Loss normalization: sum (over features, single-model trainer) or mean (vectorized trainer) (default: \(base.training.lossNormalization.rawValue); presets set their own).")
    var loss: String?
    @Flag(name: .customLong("load-balancing"), inversion: .prefixedNo, help: "Add the load-balancing loss alpha*E*sum f_e P_e (default: off; fig4-* presets: on).")
    var loadBalancing: Bool?
    @Option(name: .customLong("load-balancing-alpha"), help: "Load-balancing coefficient alpha.")
    var loadBalancingAlpha: Double = 0.01
    @Option(name: .customLong("init-gate"), help: "Router init: \(GateInit.allCases.map(\.rawValue).joined(separator: ", ")) (default: xavier; presets set their own).")
    var initGate: GateInit?
    @Option(name: .customLong("init-bias"), help: "Bias init: xavier (authors' final code) or zero.")
    var initBias: BiasInit = .xavier
    @Option(help: "Seed of every random draw (weights, data, importance permutation, metrics).")
    var seed: UInt64 = 0
    @Option(help: "Output directory (default: results/<preset>, or results/train without a preset).")
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
        if let name = preset, TrainPreset.named(name) == nil {
            throw ValidationError("--preset: unknown preset '\(name)'; expected one of \(TrainPreset.all.map(\.name).joined(separator: ", "))")
        }
        let c = configuration()
        let (model, training, p) = (c.model, c.training, c.featureProbability)
        let base: Double
        switch c.importance { case .geometric(let b), .permutedGeometric(let b): base = b }
        if let r = c.lastImportance, !(r.isFinite && r >= 0) {
            throw ValidationError("--last-importance: expected a finite number ≥ 0, got \(r)")
        }
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

    /// The resolved configuration: the preset (fig1's without one) with every given option applied (not yet
    /// validated).
    func configuration() -> TrainPreset {
        var c = preset.flatMap(TrainPreset.named) ?? TrainPreset.standard
        if let v = nFeatures { c.model.featureCount = v }
        if let v = nHidden { c.model.hiddenCount = v }
        if let v = nExperts { c.model.expertCount = v }
        if let v = nActiveExperts { c.model.activeExpertCount = v }
        if let v = featureProbability { c.featureProbability = v }
        if let v = importanceBase {
            if case .permutedGeometric = c.importance { c.importance = .permutedGeometric(v) } else { c.importance = .geometric(v) }
        }
        if let v = lastImportance { c.lastImportance = v }
        if let v = steps { c.training.steps = v }
        if let v = batchSize { c.training.batchSize = v }
        if let v = lr { c.training.learningRate = v }
        if let v = weightDecay { c.training.weightDecay = v }
        if let v = loss, let l = LossNormalization(rawValue: v) { c.training.lossNormalization = l }
        if let v = loadBalancing { c.training.loadBalancing = v }
        c.training.loadBalancingAlpha = loadBalancingAlpha
        c.training.historyStride = max(1, c.training.steps / 1000)
        if let v = initGate { c.gate = v }
        c.bias = initBias
        return c
    }

    func run() throws {
        if let k = kernels { try KernelVariant.select(k) }
        let c = configuration()
        let (model, training, p) = (c.model, c.training, c.featureProbability)
        let n = max(model.featureCount, 0)
        var importance: [Float]
        switch c.importance {
        case .geometric(let base): importance = Schedules.geometric(base: base, count: n)
        case .permutedGeometric(let base):
            // Its own stream, so the permutation does not shift the weights' or the data's draws.
            var rng = RandomStream(seed: seed, path: [0, StreamPurpose.analysis.rawValue, 1])
            importance = Schedules.permutedGeometric(base: base, count: n, rng: &rng)
        }
        if let r = c.lastImportance, n > 0 { importance[n - 1] = Float(r) }
        let data = DataDistribution.uniform(featureCount: n, probability: p, importance: importance)
        let initialization = Initialization(bFinal: c.bias == .zero ? .zero : .xavier(), gate: c.gate.scheme)
        // Checked before training, like `toymoe run --out`: an empty path would write into the current directory,
        // and a path that is a file (or cannot be created) would fail only after the whole training.
        if let out, out.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--out: expected a directory, got an empty path (it would write into the current directory; write --out . to mean that)")
        }
        let outDir = URL(fileURLWithPath: out ?? "results/\(preset ?? "train")")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: outDir.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ValidationError("--out '\(outDir.path)': expected a directory, but it is a file; nothing was trained")
            }
        } else {
            do {
                try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
            } catch {
                throw ValidationError("--out '\(outDir.path)': cannot create the directory (\((error as NSError).localizedDescription)); nothing was trained")
            }
        }
        guard FileManager.default.isWritableFile(atPath: outDir.path) else {
            throw ValidationError("--out '\(outDir.path)': the directory is not writable; nothing was trained")
        }

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
        provenance.extra["training_seconds"] = .number(result.seconds)
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

        try JSONValue.object(configJSON(c, data: data)).write(to: outDir.appendingPathComponent("config.json"))
        try provenance.toJSON().write(to: outDir.appendingPathComponent("provenance.json"))
        try TrainReport.write(net, config: c, preset: preset, result: result, to: outDir)

        if !quiet {
            let counts = net.expertMatrices().map { Metrics.geometrySummary($0) }
            print("final loss \(String(format: "%.6f", result.finalLoss)) after \(result.stepsRun) steps in \(String(format: "%.1f", result.seconds)) s")
            for (e, s) in counts.enumerated() {
                print("expert \(e): \(s.representedCount) features represented (norm > 0.5), \(s.dedicatedCount) dedicated, \(s.antipodalPairCount) antipodal pairs, features per dimension \(String(format: "%.2f", s.featuresPerDimension))")
            }
            print("results written to \(outDir.path)/ (index.html, model.npz, history.npy, metrics.json, config.json, provenance.json)")
        }
    }

    /// config.json: the configuration that ran, with the key names and spellings of the Lua API
    /// (`toymoe.model`, `toymoe.data`, `toymoe.train`), numbers as JSON numbers.
    func configJSON(_ c: TrainPreset, data: DataDistribution) -> JSONObject {
        var config = JSONObject()
        config["preset"] = preset.map { .string($0) } ?? .null
        config["model"] = c.model.toJSON()
        var d = JSONObject()
        d["feature_probability"] = .number(Double(String(c.featureProbability)) ?? Double(c.featureProbability))  // the Float as written, not widened
        switch c.importance {
        case .geometric(let b): d["importance_schedule"] = .object(["geometric": .number(b)])
        case .permutedGeometric(let b): d["importance_schedule"] = .object(["permuted_geometric": .number(b)])
        }
        d["last_importance"] = c.lastImportance.map { .number($0) } ?? .null
        d["importance"] = .floats(data.importance)
        config["data"] = .object(d)
        var training = JSONObject()
        if case .object(let o) = c.training.toJSON() {
            for (k, v) in o.entries { training[k == "load_balancing_loss" ? "load_balancing" : k] = v }
        }
        config["training"] = .object(training)
        config["init"] = .object(["W": "xavier", "b_final": .string(c.bias.rawValue), "gate": .string(c.gate.luaName)])
        config["seed"] = Int(exactly: seed).map { .int($0) } ?? .string(String(seed))
        return config
    }
}
