import Foundation
import ToyMoE
import ToyMoEIO

extension Bindings {

    // MARK: Training

    static func installTraining(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        try rt.register(module: "toymoe", functions: [
            "train": { args in
                let m = try args.object(1, "model", as: Model.self)
                let opts = try OptionTable("toymoe.train", try args.table(2, "options"), known: trainOptions)
                let data: DataDistribution
                switch opts.value("data") {
                case .userdata(let o as DataHandle): data = o.distribution
                case .table(let t): data = try dataDistribution(t, function: "toymoe.train: data", featureCount: m.featureCount)
                case .nil: throw LuaCallError("data: required option is missing (a toymoe.data{...} or a table of its options)")
                case let other: throw opts.fail("data", "a toymoe.data{...} or a table of its options", other)
                }
                if data.featureProbability.count != m.featureCount {
                    throw LuaCallError("data: the distribution has \(data.featureProbability.count) features but the model has n_features = \(m.featureCount)")
                }
                let cfg = try trainingConfig(opts, rt, function: "toymoe.train")
                let hook = try opts.optionalFunction("hook")
                let hookEvery = try opts.integer("hook_every", default: 100, minimum: 1)
                let seed = ctx.nextTrainSeed()
                let trainer: Trainer
                do {
                    trainer = try Trainer(model: m, data: data, config: cfg, seed: seed)
                } catch { throw LuaCallError(engineMessage(error)) }
                try rt.ensureHostCapacity(cfg.batchSize * (m.featureCount * (3 + 2 * m.activeExpertCount) + m.expertCount) * 4 + m.layout.count * 12)

                var hookError: LuaError?
                let result: TrainingResult
                // The script's deadline stops the training between steps (the count hook cannot: no Lua runs).
                let shouldStop = rt.deadlineCheck()
                let (onProgress, endProgress) = progressReporting(ctx, modelSteps: cfg.steps)
                var returned = false
                defer { endProgress(returned) }
                if let hook {
                    result = trainer.run(hookEvery: hookEvery, hook: { info, model in
                        do throws(LuaError) {
                            let out = try rt.call(hook, [
                                .integer(Int64(info.step + 1)), .number(info.loss), .number(info.learningRate), .userdata(model),
                            ])
                            if case .boolean(false)? = out.first { return .stop }
                            return .proceed
                        } catch {
                            hookError = error
                            return .stop
                        }
                    }, shouldStop: shouldStop, progress: onProgress)
                } else {
                    result = trainer.run(shouldStop: shouldStop, progress: onProgress)
                }
                if let hookError { throw hookError }
                if let e = rt.budgetExceeded() { throw e }
                ctx.onSteps?(result.stepsRun)
                if !ctx.isWorker {
                    ctx.trainings.append(.object([
                        "model": m.config.toJSON(), "data": data.toJSON(), "training": cfg.toJSON(),
                        "data_seed": .string(String(seed)),
                    ]))
                }
                ctx.noteDivergence(result)
                returned = true
                return [.table(resultTable(result))]
            },
            "train_many": { args in
                let list = try args.table(1, "models")
                guard list.hash.isEmpty else { throw args.argumentError("models", "expected a list of models, got a table with named keys") }
                var models: [Model] = []
                for (i, v) in list.array.enumerated() {
                    guard case .userdata(let m as Model) = v else {
                        throw args.argumentError("models", "element \(i + 1): expected a model, got \(describe(v))")
                    }
                    models.append(m)
                }
                var known = trainOptions.filter { $0 != "hook" && $0 != "hook_every" }
                known.append("threads")
                let table = try args.table(2, "options")
                for key in ["hook", "hook_every"] where table.hash[.string(key)] != nil {
                    throw LuaCallError("\(key): not supported by toymoe.train_many (use toymoe.train for hooks)")
                }
                let opts = try OptionTable("toymoe.train_many", table, known: known)
                let data = try trainManyData(opts, models: models)
                let cfg = try trainingConfig(opts, rt, function: "toymoe.train_many", histories: max(1, models.count))
                let threads = try opts.integer("threads", default: ctx.trainThreads, minimum: 1)
                // The seeds sequential toymoe.train calls would have drawn, in the same order.
                let seeds = models.map { _ in ctx.nextTrainSeed() }
                let trainer: LockstepTrainer
                do {
                    trainer = try LockstepTrainer(models: models, data: data, config: cfg, seeds: seeds)
                } catch { throw LuaCallError(engineMessage(error)) }
                if let m = models.first {
                    let groups = min(threads, (models.count + 7) / 8)
                    let perGroup = cfg.batchSize * (m.featureCount + m.expertCount + 3 * m.activeExpertCount) * 32 + m.layout.count * 128
                    try rt.ensureHostCapacity(groups * perGroup)
                }
                let (onProgress, endProgress) = progressReporting(ctx, modelSteps: cfg.steps * models.count)
                var returned = false
                defer { endProgress(returned) }
                let results = trainer.run(threads: threads, shouldStop: rt.deadlineCheck(), progress: onProgress)
                if let e = rt.budgetExceeded() { throw e }
                for (i, result) in results.enumerated() {
                    ctx.onSteps?(result.stepsRun)
                    if !ctx.isWorker {
                        ctx.trainings.append(.object([
                            "model": models[i].config.toJSON(), "data": data[i].toJSON(), "training": cfg.toJSON(),
                            "data_seed": .string(String(seeds[i])),
                        ]))
                    }
                }
                for r in results { ctx.noteDivergence(r) }
                returned = true
                return [.table(LuaTable(array: results.map { .table(resultTable($0)) }))]
            },
        ])
    }

    /// The `TrainingConfig` of toymoe.train's options (shared by toymoe.train and toymoe.train_many). `histories` is
    /// how many loss histories the call keeps (they count against the script's memory limit).
    static func trainingConfig(
        _ opts: OptionTable, _ rt: LuaRuntime, function: String, histories: Int = 1
    ) throws(LuaCallError) -> TrainingConfig {
        var cfg = TrainingConfig()
        cfg.steps = try opts.integer("steps", default: cfg.steps, minimum: 0)
        cfg.batchSize = try opts.integer("batch_size", default: cfg.batchSize, minimum: 1)
        if cfg.batchSize > 1 << 22 { throw LuaCallError("batch_size: expected at most \(1 << 22), got \(cfg.batchSize)") }
        cfg.learningRate = try opts.number("lr", default: cfg.learningRate, expected: "a finite number ≥ 0", valid: { $0 >= 0 })
        cfg.schedule = LearningRateSchedule(rawValue: try opts.choice("lr_schedule", LearningRateSchedule.allCases.map(\.rawValue), default: "constant"))!
        cfg.beta1 = try opts.number("beta1", default: cfg.beta1, expected: "a number in [0, 1)", valid: { $0 >= 0 && $0 < 1 })
        cfg.beta2 = try opts.number("beta2", default: cfg.beta2, expected: "a number in [0, 1)", valid: { $0 >= 0 && $0 < 1 })
        cfg.epsilon = try opts.number("eps", default: cfg.epsilon, expected: "a finite number > 0", valid: { $0 > 0 })
        cfg.weightDecay = try opts.number("weight_decay", default: cfg.weightDecay, expected: "a finite number ≥ 0", valid: { $0 >= 0 })
        cfg.lossNormalization = LossNormalization(rawValue: try opts.choice("loss", ["sum", "mean"], default: "sum"))!
        cfg.loadBalancing = try opts.boolean("load_balancing", default: false)
        cfg.loadBalancingAlpha = try opts.number("load_balancing_alpha", default: 0.01, expected: "a finite number ≥ 0", valid: { $0 >= 0 })
        cfg.historyStride = try opts.integer("history_every", default: 1, minimum: 1)
        // The trainer reserves its loss history up front: bound steps, and count the history against memory.
        if cfg.steps > 1 << 40 { throw LuaCallError("steps: expected at most \(1 << 40), got \(cfg.steps)") }
        do throws(LuaCallError) { try rt.ensureHostCapacity((cfg.steps / cfg.historyStride + 2) * 16 * histories) } catch {
            throw LuaCallError("steps: a loss history of \(cfg.steps / cfg.historyStride + 2) entries (raise history_every): \(error.text)")
        }
        if let es = try opts.optionalTable("early_stop") {
            let e = try OptionTable("\(function): early_stop", es, known: ["drop_loss", "stop_loss", "drop_factor"])
            cfg.earlyStop = EarlyStop(
                dropLoss: try e.number("drop_loss", default: 0.015), stopLoss: try e.number("stop_loss", default: 0.01),
                dropFactor: try e.number("drop_factor", default: 0.1, expected: "a number in (0, 1]", valid: { $0 > 0 && $0 <= 1 }))
        }
        return cfg
    }

    /// toymoe.train's result table.
    static func resultTable(_ result: TrainingResult) -> LuaTable {
        var t = LuaTable()
        t.hash[.string("final_loss")] = .number(result.finalLoss)
        t.hash[.string("final_reconstruction_loss")] = .number(result.finalReconstructionLoss)
        t.hash[.string("final_load_balancing_loss")] = .number(result.finalLoadBalancingLoss)
        t.hash[.string("steps")] = .integer(Int64(result.stepsRun))
        t.hash[.string("stopped_early")] = .boolean(result.stoppedEarly)
        t.hash[.string("seconds")] = .number(result.seconds)
        if let d = result.divergence {
            t.hash[.string("diverged")] = .table(LuaTable(hash: [.string("step"): .integer(Int64(d.step + 1)), .string("reason"): .string(d.reason)]))
        }
        t.hash[.string("history")] = .table(LuaTable(hash: [
            .string("step"): Tensor.list(result.historySteps.map { $0 + 1 }),
            .string("loss"): Tensor.list(result.history),
        ]))
        return t
    }

    /// The data distributions of toymoe.train_many's `data` option: one toymoe.data (or a table of its options) for
    /// every model, or a list with one per model.
    static func trainManyData(_ opts: OptionTable, models: [Model]) throws(LuaCallError) -> [DataDistribution] {
        func one(_ v: LuaValue, _ what: String, _ m: Model) throws(LuaCallError) -> DataDistribution {
            let d: DataDistribution
            switch v {
            case .userdata(let o as DataHandle): d = o.distribution
            case .table(let t): d = try dataDistribution(t, function: "toymoe.train_many: \(what)", featureCount: m.featureCount)
            case let other: throw opts.fail(what, "a toymoe.data{...} or a table of its options", other)
            }
            if d.featureProbability.count != m.featureCount {
                throw LuaCallError("\(what): the distribution has \(d.featureProbability.count) features but the models have n_features = \(m.featureCount)")
            }
            return d
        }
        guard let first = models.first else { return [] }
        switch opts.value("data") {
        case .nil:
            throw LuaCallError("data: required option is missing (a toymoe.data{...}, a table of its options, or a list with one per model)")
        case .table(let t) where !t.array.isEmpty:
            guard t.hash.isEmpty else { throw LuaCallError("data: expected a list of data distributions (one per model) or one distribution, got a table mixing both") }
            guard t.array.count == models.count else {
                throw LuaCallError("data: expected one data distribution per model (\(models.count)), got a list of \(t.array.count)")
            }
            var out: [DataDistribution] = []
            for (i, v) in t.array.enumerated() { out.append(try one(v, "data[\(i + 1)]", models[i])) }
            return out
        case let v:
            return [DataDistribution](repeating: try one(v, "data", first), count: models.count)
        }
    }

    // MARK: Metrics

    static func installMetrics(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        /// (model, expert) or a plain matrix at argument 1.
        func matrix(_ args: LuaArgs) throws(LuaCallError) -> [[Double]] {
            if case .table = args.type(1) {
                let (shape, values) = try Tensor.infer(try args.value(1, "W"), name: "W")
                guard shape.count == 2, shape[0] >= 1, shape[1] >= 1 else {
                    throw args.argumentError("W", "expected a matrix (a list of feature rows), got shape \(Tensor.shapeText(shape))")
                }
                return (0..<shape[0]).map { i in Array(values[(i * shape[1])..<((i + 1) * shape[1])]) }
            }
            let m = try args.object(1, "model", as: Model.self)
            let e = try expert(args, m, 2)
            return m.expertMatrices()[e]
        }
        func expert(_ args: LuaArgs, _ m: Model, _ i: Int) throws(LuaCallError) -> Int {
            let e = try args.optionalInteger(i, "expert") ?? 1
            guard e >= 1, e <= m.expertCount else {
                throw args.argumentError("expert", "expected an expert index in 1...\(m.expertCount), got \(e)")
            }
            return e - 1
        }
        func options(_ args: LuaArgs, _ i: Int, _ name: String, _ known: [String]) throws(LuaCallError) -> OptionTable {
            try OptionTable("toymoe.metrics.\(name)", try args.optionalTable(i, "options") ?? LuaTable(), known: known)
        }
        func dataOption(_ o: OptionTable, _ m: Model, required: Bool) throws(LuaCallError) -> DataDistribution {
            switch o.value("data") {
            case .userdata(let d as DataHandle):
                guard d.featureCount == m.featureCount else {
                    throw LuaCallError("data: the distribution has \(d.featureCount) features but the model has \(m.featureCount)")
                }
                return d.distribution
            case .table(let t): return try dataDistribution(t, function: "metrics: data", featureCount: m.featureCount)
            case .nil:
                if required { throw LuaCallError("data: required option is missing (the training distribution, toymoe.data{...})") }
                return .uniform(featureCount: m.featureCount, probability: 1)
            case let other: throw o.fail("data", "a toymoe.data{...}", other)
            }
        }
        /// A sample count: positive and bounded (the metrics allocate samples × n_features values).
        func count(_ o: OptionTable, _ key: String, default def: Int?, _ m: Model) throws(LuaCallError) -> Int {
            let v = try o.integer(key, default: def, minimum: 1)
            let limit = min(1 << 22, (1 << 26) / m.featureCount)
            guard v <= limit else { throw LuaCallError("\(key): expected at most \(limit) for \(m.featureCount) features, got \(v)") }
            return v
        }
        func rng(_ purpose: UInt64) -> RandomStream {
            RandomStream(seed: ctx.contextSeed, path: [StreamPurpose.analysis.rawValue, purpose, ctx.modelCounter, ctx.trainCounter])
        }
        func engine<T>(_ body: () throws -> T) throws(LuaCallError) -> T {
            do { return try body() } catch { throw LuaCallError(engineMessage(error)) }
        }
        /// The matrix a quadratic metric computed, unless the deadline passed meanwhile (then it is partial, and
        /// turning its n² entries into Lua values would only take more time).
        func checked(_ m: [[Double]]) throws(LuaCallError) -> [[Double]] {
            if let e = rt.budgetExceeded() { throw e }
            return m
        }
        let M = "toymoe.metrics"
        // Every metric runs under the script's deadline: the quadratic ones stop between feature rows (then
        // the dispatcher reports the time limit instead of the partial result).
        func underDeadline(_ functions: [String: LuaFunction]) -> [String: LuaFunction] {
            functions.mapValues { body in
                { args in try Metrics.withStopCheck(rt.deadlineCheck()) { try body(args) } }
            }
        }
        try rt.register(module: M, functions: underDeadline([
            "feature_norms": { args in [Tensor.list(Metrics.featureNorms(try matrix(args)))] },
            "interference": { args in [Tensor.matrix(try checked(Metrics.interference(try matrix(args))))] },
            "polysemanticity": { args in [Tensor.list(Metrics.polysemanticity(try matrix(args)))] },
            "superposition_score": { args in [Tensor.list(Metrics.superpositionScore(try matrix(args)))] },
            "feature_dimensionality": { args in [Tensor.list(Metrics.featureDimensionality(try matrix(args)))] },
            "dimensions_per_feature": { args in [.number(Metrics.dimensionsPerFeature(try matrix(args)))] },
            "gram": { args in [Tensor.matrix(try checked(Metrics.gram(try matrix(args))))] },
            "geometry": { args in
                let g = Metrics.geometrySummary(try matrix(args))
                return [.table(LuaTable(hash: [
                    .string("represented"): Tensor.list(g.representedFeatures.map { $0 + 1 }),
                    .string("dedicated"): Tensor.list(g.dedicatedFeatures.map { $0 + 1 }),
                    .string("antipodal_pairs"): .table(LuaTable(array: g.antipodalPairs.map { Tensor.list([$0.first + 1, $0.second + 1]) })),
                    .string("features_represented"): .integer(Int64(g.representedCount)),
                    .string("features_per_dimension"): .number(g.featuresPerDimension),
                ]))]
            },
            "classify_feature": { args in
                let W = try matrix(args)
                var feature: Int? = nil
                if let i = try args.optionalInteger(3, "feature") {
                    guard i >= 1, i <= W.count else { throw args.argumentError("feature", "expected a feature index in 1...\(W.count), got \(i)") }
                    feature = i - 1
                }
                return [.string(Metrics.classifyFeature(W, feature: feature).rawValue)]
            },
            "features_per_dimension": { args in
                let m = try args.object(1, "model", as: Model.self)
                let o = try options(args, 2, "features_per_dimension", ["data", "samples", "weighting"])
                let data = try dataOption(o, m, required: m.expertCount > 1)
                let samples = try count(o, "samples", default: 1024, m)
                let w = try o.choice("weighting", ["mean_gate", "selection_frequency"], default: "mean_gate")
                var r = rng(1)
                let weighting: Metrics.ExpertWeighting = w == "mean_gate" ? .meanGate : .selectionFrequency
                return [.number(try engine { try Metrics.moeFeaturesPerDimension(m, distribution: data, samples: samples, weighting: weighting, rng: &r) })]
            },
            "global_dimensionality": { args in
                let m = try args.object(1, "model", as: Model.self)
                let o = try options(args, 2, "global_dimensionality", ["data", "samples", "weighting"])
                let data = try dataOption(o, m, required: true)
                let w = try o.choice("weighting", Metrics.GlobalWeighting.allCases.map(\.luaName), default: "usage")
                let weighting = Metrics.GlobalWeighting.allCases.first { $0.luaName == w }!
                let samples = o.has("samples") ? try count(o, "samples", default: nil, m) : nil
                var r = rng(2)
                let g = try engine { try Metrics.globalDimensionality(m, weighting: weighting, distribution: data, samples: samples, rng: &r) }
                return [.table(LuaTable(hash: [
                    .string("per_feature"): Tensor.list(g.perFeature),
                    .string("features_represented"): .integer(Int64(g.featuresRepresented())),
                    .string("weights"): Tensor.matrix(g.weights),
                ]))]
            },
            "expert_usage": { args in
                let m = try args.object(1, "model", as: Model.self)
                let o = try options(args, 2, "expert_usage", ["data", "base", "batch", "threshold"])
                let data = try dataOption(o, m, required: true)
                let base = try o.choice("base", ["dense", "training"], default: "dense")
                let batch = try count(o, "batch", default: 8192, m)
                let threshold = try o.number("threshold", default: 0.2, expected: "a number > 0", valid: { $0 > 0 })
                var r = rng(3)
                let usage = try engine {
                    try Metrics.expertUsage(m, distribution: data, base: base == "dense" ? .dense : .training, batch: batch, threshold: threshold, rng: &r)
                }
                return [.table(LuaTable(array: usage.map { u in
                    var t = LuaTable()
                    t.hash[.string("expert")] = .integer(Int64(u.expert + 1))
                    t.hash[.string("monosemantic")] = Tensor.list(u.monosemanticFeatures.map { $0 + 1 })
                    t.hash[.string("unchanged")] = .number(u.unchanged)
                    if let c = u.clamped { t.hash[.string("clamped")] = .number(c) }
                    if let c = u.onlyFeatureActive { t.hash[.string("only_feature_active")] = .number(c) }
                    return .table(t)
                }))]
            },
            "router_statistics": { args in
                let m = try args.object(1, "model", as: Model.self)
                let o = try options(args, 2, "router_statistics", ["data", "samples"])
                let data = try dataOption(o, m, required: true)
                let samples = try count(o, "samples", default: 10_000, m)
                var r = rng(4)
                let s = try engine { try Metrics.routerStatistics(m, distribution: data, samples: samples, rng: &r) }
                return [.table(LuaTable(hash: [
                    .string("mean_probabilities_dense"): Tensor.list(s.meanProbabilitiesDense),
                    .string("mean_probabilities_training"): Tensor.list(s.meanProbabilitiesTraining),
                    .string("uniformity_dense"): .number(s.uniformityDense),
                    .string("uniformity_training"): .number(s.uniformityTraining),
                ]))]
            },
            "routing_map": { args in
                let m = try args.object(1, "model", as: Model.self)
                let o = try options(args, 2, "routing_map", ["grid"])
                let grid = try o.integer("grid", default: 100, minimum: 2)
                guard grid <= 2000 else { throw LuaCallError("grid: expected at most 2000, got \(grid)") }
                guard m.featureCount >= 2 else { throw LuaCallError("a routing map needs n_features ≥ 2, the model has \(m.featureCount)") }
                let map = try engine { try Metrics.routingMap(m, gridSize: grid) }
                return [.table(LuaTable(hash: [
                    .string("grid"): .integer(Int64(grid)),
                    .string("coordinates"): Tensor.list(map.coordinates),
                    .string("experts"): Tensor.list(map.experts.map { $0 + 1 }),
                ]))]
            },
        ]))
    }
}

extension Metrics.GlobalWeighting {
    /// The name scripts use.
    var luaName: String {
        switch self {
        case .usage: return "usage"
        case .probability: return "probability"
        case .specialization: return "specialization"
        case .featureConditional: return "feature_conditional"
        }
    }
}
