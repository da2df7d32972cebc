// Router-dependent metrics (docs/PAPER.md#features-per-dimension–6.8, docs/PAPER.md#fig5): MoE features per dimension, global feature dimensionality,
// expert usage (Table 1), router statistics and the 2-D routing map.
//
// Routing always goes through `Model.route`, i.e. the engine's own Float32 softmax and top-k with the model's tie
// rule, so an analysis sees exactly the routing the training loop saw. "Argmax" below means the first expert that
// top-k selects (`selected[b·k + 0]`): the highest router probability, ties broken by the model's `tieBreak` (lowest
// index by default, docs/PAPER.md#ties), whatever k is.
//
// Sampled metrics take the `RandomStream` as `inout`, so a caller that passes `RandomStream(seed:path:)` (e.g. with
// `StreamPurpose.analysis`) gets reproducible numbers; the draw order of each function is documented.

// MARK: - Shared helpers

extension Metrics {
    /// Checks that a sample count is positive.
    static func requirePositive(_ value: Int, _ name: String, _ context: String) throws {
        if value < 1 { throw ToyMoEError(context, name, "expected a positive integer, got \(value)") }
    }

    /// Validates `distribution` against the model and draws `samples` inputs (samples, n) from it.
    static func drawInputs(
        _ model: Model, _ distribution: DataDistribution, samples: Int, rng: inout RandomStream, context: String
    ) throws -> [Float] {
        try requirePositive(samples, "samples", context)
        try distribution.validate(featureCount: model.featureCount)
        return distribution.sample(batch: samples, rng: &rng)
    }

    /// Dense inputs U[0,1)^n: the distribution with p = 1 for every feature.
    static func denseDistribution(_ n: Int) -> DataDistribution {
        DataDistribution.uniform(featureCount: n, probability: 1)
    }

    /// Number of samples in a flat (B, n) input buffer; traps if the count is not a multiple of n.
    static func batchCount(_ model: Model, _ x: [Float]) -> Int {
        precondition(x.count % model.featureCount == 0, "Metrics: inputs must be (B, n_features) row-major")
        return x.count / model.featureCount
    }

    /// The argmax (top-1) expert of every sample of x (B, n): the first expert top-k selects.
    public static func argmaxExperts(_ model: Model, inputs x: [Float]) -> [Int] {
        let batch = batchCount(model, x)
        let k = model.activeExpertCount
        let selected = model.route(x).selected
        return (0..<batch).map { selected[$0 * k] }
    }

    /// Population mean and standard deviation (ddof = 0, numpy's default). Empty input gives (NaN, NaN).
    static func meanAndStd(_ v: [Double]) -> (mean: Double, std: Double) {
        guard !v.isEmpty else { return (.nan, .nan) }
        let mean = v.reduce(0, +) / Double(v.count)
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)
        return (mean, variance.squareRoot())
    }
}

// MARK: - docs/PAPER.md#features-per-dimension MoE features per dimension

extension Metrics {
    /// Which per-expert weight p_e enters FPD_MoE (docs/PAPER.md#features-per-dimension, docs/PAPER.md#disagreements). Both agree for k = 1.
    public enum ExpertWeighting: String, Sendable, Codable, CaseIterable {
        /// p̄_e = mean over samples of the renormalized gate g_e(x) (0 when e is not selected), Σ_e p̄_e = 1:
        /// the authors' code, which produced the published curves. The default.
        case meanGate = "mean_gate"
        /// p_e = fraction of samples in which e is among the top-k, Σ_e p_e = k: reviewer 3's reading of the paper's
        /// formula ("p_e = k/E under balance"). With the same 1/k prefactor this is k times larger under balance.
        case selectionFrequency = "selection_frequency"
    }

    /// Per-expert weights p_e over the inputs x (B, n) (see `ExpertWeighting`). Returns E values; zeros if B = 0.
    public static func expertWeights(_ model: Model, inputs x: [Float], weighting: ExpertWeighting = .meanGate)
        -> [Double]
    {
        let batch = batchCount(model, x)
        let k = model.activeExpertCount
        let route = model.route(x)
        var w = [Double](repeating: 0, count: model.expertCount)
        for s in 0..<batch {
            for j in 0..<k {
                let slot = s * k + j
                w[route.selected[slot]] += weighting == .meanGate ? Double(route.gates[slot]) : 1
            }
        }
        return batch == 0 ? w : w.map { $0 / Double(batch) }
    }

    /// MoE features per dimension (docs/PAPER.md#features-per-dimension, Fig. 3): FPD_MoE = (1/k) · Σ_e p_e · ‖W^(e)‖_F² / m, with p_e
    /// estimated on `samples` fresh inputs from `distribution` (the training distribution; default N = 1024).
    ///
    /// Draws: one batch of `samples` from `rng`. For E = 1 (p = [1], k = 1) this is exactly the dense ‖W‖_F²/m
    /// whatever the samples. Throws if `samples` < 1 or the distribution does not fit the model.
    public static func moeFeaturesPerDimension(
        _ model: Model, distribution: DataDistribution, samples: Int = 1024, weighting: ExpertWeighting = .meanGate,
        rng: inout RandomStream
    ) throws -> Double {
        let x = try drawInputs(
            model, distribution, samples: samples, rng: &rng, context: "Metrics.moeFeaturesPerDimension")
        let p = expertWeights(model, inputs: x, weighting: weighting)
        return featuresPerDimension(
            experts: model.expertMatrices(), expertWeights: p, activeExpertCount: model.activeExpertCount,
            hiddenCount: model.hiddenCount)
    }
}

// MARK: - docs/PAPER.md#global-dimensionality Global feature dimensionality

extension Metrics {
    /// The four weightings of the global (cross-expert) dimensionality D_i^glob = Σ_e w_i^(e) D_i^(e) (docs/PAPER.md#global-dimensionality).
    public enum GlobalWeighting: String, Sendable, Codable, CaseIterable {
        /// (a) w^(e) = u_e, the fraction of samples whose argmax expert is e (top-1 regardless of k). The authors'
        /// final variant (`global_feat_dims.py`). Default N = 4096.
        case usage
        /// (b) w^(e) = mean softmax probability π_e over the samples. Default N = 4096.
        case probability
        /// (c) w_i^(e) = S_i^(e) = ‖W_i^(e)‖² / Σ_e' ‖W_i^(e')‖²; no sampling. 0/0 (feature i zero in every
        /// expert) is defined as S = 0, so such a feature gets D^glob = 0 (it is represented nowhere).
        case specialization
        /// (d) w_i^(e) = α_i^(e) = #(x_i > 0 and e selected) / #(x_i > 0), "selected" meaning in the top-k set
        /// (Σ_e α = k), and 0 if feature i never occurs. Default N = 1024.
        case featureConditional = "feature_conditional"

        /// The authors' default sample count for this weighting (0: none drawn).
        public var defaultSamples: Int {
            switch self {
            case .usage, .probability: return 4096
            case .featureConditional: return 1024
            case .specialization: return 0
            }
        }
    }

    /// Result of `globalDimensionality(_:weighting:distribution:samples:rng:)`.
    public struct GlobalDimensionality: Sendable, Equatable, Codable {
        public var weighting: GlobalWeighting
        /// D_i^glob, n values.
        public var perFeature: [Double]
        /// D_i^(e) (guarded, docs/PAPER.md#feature-dimensionality), [e][i].
        public var perExpert: [[Double]]
        /// w_i^(e), [e][i] (constant over i for usage and probability weighting).
        public var weights: [[Double]]
        /// Samples drawn (0 for specialization).
        public var samples: Int

        /// #{i : D_i^glob > threshold} (see `Metrics.featuresRepresented`).
        public func featuresRepresented(threshold: Double = 0.05) -> Int {
            Metrics.featuresRepresented(perFeature, threshold: threshold)
        }
    }

    /// D_i^glob = Σ_e w[e][i] · D[e][i] for per-expert dimensionalities D and weights w, both [e][i].
    public static func globalDimensionality(perExpert D: [[Double]], weights w: [[Double]]) -> [Double] {
        precondition(D.count == w.count, "Metrics.globalDimensionality: one weight row per expert")
        let n = D.first?.count ?? 0
        precondition(
            D.allSatisfy { $0.count == n } && w.allSatisfy { $0.count == n }, "Metrics.globalDimensionality: n mismatch"
        )
        return (0..<n).map { i in (0..<D.count).reduce(0) { $0 + w[$1][i] * D[$1][i] } }
    }

    /// Specialization weights S_i^(e) = ‖W_i^(e)‖² / Σ_e' ‖W_i^(e')‖², [e][i] (docs/PAPER.md#global-dimensionality c). Σ_e S_i^(e) = 1 for
    /// every feature with a nonzero row somewhere; a feature that is exactly zero in every expert gets S = 0
    /// (0/0 defined as 0).
    public static func specializationWeights(_ experts: [[[Double]]]) -> [[Double]] {
        let squared = experts.map { W in featureNorms(W).map { $0 * $0 } }
        let n = squared.first?.count ?? 0
        let totals = (0..<n).map { i in squared.reduce(0) { $0 + $1[i] } }
        return squared.map { row in (0..<n).map { i in totals[i] > 0 ? row[i] / totals[i] : 0 } }
    }

    /// u_e: the fraction of the inputs x (B, n) whose argmax expert is e. E values summing to 1 (zeros if B = 0).
    public static func argmaxUsage(_ model: Model, inputs x: [Float]) -> [Double] {
        let top = argmaxExperts(model, inputs: x)
        var u = [Double](repeating: 0, count: model.expertCount)
        for e in top { u[e] += 1 }
        return top.isEmpty ? u : u.map { $0 / Double(top.count) }
    }

    /// Mean router probability π_e over the inputs x (B, n). E values summing to ≈ 1 (zeros if B = 0).
    public static func meanRouterProbabilities(_ model: Model, inputs x: [Float]) -> [Double] {
        let batch = batchCount(model, x)
        let E = model.expertCount
        let probs = model.route(x).probabilities
        var mean = [Double](repeating: 0, count: E)
        for s in 0..<batch { for e in 0..<E { mean[e] += Double(probs[s * E + e]) } }
        return batch == 0 ? mean : mean.map { $0 / Double(batch) }
    }

    /// α_i^(e) = #(x_i > 0 and e ∈ top-k(x)) / #(x_i > 0) over the inputs x (B, n), [e][i]; 0 for a feature that
    /// is never positive. Σ_e α_i^(e) = k for every feature that occurs.
    public static func featureConditionalSelection(_ model: Model, inputs x: [Float]) -> [[Double]] {
        let batch = batchCount(model, x)
        let n = model.featureCount
        let E = model.expertCount
        let k = model.activeExpertCount
        let selected = model.route(x).selected
        var occurs = [Double](repeating: 0, count: n)
        var joint = [[Double]](repeating: [Double](repeating: 0, count: n), count: E)
        for s in 0..<batch {
            for i in 0..<n where x[s * n + i] > 0 {
                occurs[i] += 1
                for j in 0..<k { joint[selected[s * k + j]][i] += 1 }
            }
        }
        return joint.map { row in (0..<n).map { i in occurs[i] > 0 ? row[i] / occurs[i] : 0 } }
    }

    /// Global feature dimensionality D_i^glob = Σ_e w_i^(e) D_i^(e) of a model (docs/PAPER.md#global-dimensionality), D^(e) guarded (docs/PAPER.md#feature-dimensionality).
    ///
    /// Draws: one batch of `samples` (default `weighting.defaultSamples`: 4096 for usage/probability, 1024 for
    /// feature-conditional) from `distribution` (the training distribution); nothing for specialization (the rng
    /// and distribution are then unused). Throws on a non-positive sample count or a mismatched distribution.
    public static func globalDimensionality(
        _ model: Model, weighting: GlobalWeighting = .usage, distribution: DataDistribution, samples: Int? = nil,
        rng: inout RandomStream
    ) throws -> GlobalDimensionality {
        let experts = model.expertMatrices()
        let D = experts.map(featureDimensionality)
        let n = model.featureCount
        let weights: [[Double]]
        var drawn = 0
        if weighting == .specialization {
            weights = specializationWeights(experts)
        } else {
            drawn = samples ?? weighting.defaultSamples
            let x = try drawInputs(
                model, distribution, samples: drawn, rng: &rng, context: "Metrics.globalDimensionality")
            switch weighting {
            case .usage:
                weights = argmaxUsage(model, inputs: x).map { [Double](repeating: $0, count: n) }
            case .probability:
                weights = meanRouterProbabilities(model, inputs: x).map { [Double](repeating: $0, count: n) }
            case .featureConditional:
                weights = featureConditionalSelection(model, inputs: x)
            case .specialization:
                fatalError("unreachable")
            }
        }
        return GlobalDimensionality(
            weighting: weighting, perFeature: globalDimensionality(perExpert: D, weights: weights), perExpert: D,
            weights: weights, samples: drawn)
    }

    /// "Number of features represented" (docs/PAPER.md#global-dimensionality): #{i : D_i^glob > threshold}, strict, default 0.05.
    public static func featuresRepresented(_ globalDimensionality: [Double], threshold: Double = 0.05) -> Int {
        globalDimensionality.filter { $0 > threshold }.count
    }
}

// MARK: - docs/PAPER.md#expert-usage Expert usage and specialization (Table 1)

extension Metrics {
    /// The base inputs of the usage conditions "unchanged" and "clamped" (docs/PAPER.md#expert-usage).
    public enum UsageBase: String, Sendable, Codable, CaseIterable {
        /// Dense inputs U[0,1)^n (p = 1): the authors' quirk, which produced the published Table 1. The default.
        case dense
        /// The training distribution passed by the caller (e.g. p = 0.1): the arguably intended variant [I].
        case training
    }

    /// Usage of one expert under the three conditions of Table 1 (docs/PAPER.md#expert-usage).
    public struct ExpertUsage: Sendable, Equatable, Codable {
        /// Expert index e.
        public var expert: Int
        /// M_e = {i : q_i^(e) < threshold} (ascending).
        public var monosemanticFeatures: [Int]
        /// Fraction of a base batch routed (argmax) to e.
        public var unchanged: Double
        /// Fraction routed to e when every feature of M_e is set to 1.0 in a base batch; nil when M_e is empty.
        public var clamped: Double?
        /// Fraction routed to e when only M_e is active, all at one value c ~ U[0,1) per sample; nil when M_e is
        /// empty (the input would be x = 0, a pure tie).
        public var onlyFeatureActive: Double?

        public var monosemanticCount: Int { monosemanticFeatures.count }

        public init(
            expert: Int, monosemanticFeatures: [Int], unchanged: Double, clamped: Double?, onlyFeatureActive: Double?
        ) {
            self.expert = expert
            self.monosemanticFeatures = monosemanticFeatures
            self.unchanged = unchanged
            self.clamped = clamped
            self.onlyFeatureActive = onlyFeatureActive
        }
    }

    /// Expert usage of a model under the three conditions of Table 1 (docs/PAPER.md#expert-usage), one entry per expert.
    ///
    /// * M_e = `monosemanticFeatures(W^(e), threshold:, minimumNorm:)`, by default {i : q_i < 0.2} with no norm
    ///   threshold, as the authors did.
    /// * unchanged: one base batch of `batch` inputs, shared by all experts (the condition does not depend on e);
    ///   usage_e = fraction whose argmax expert is e.
    /// * clamped: per expert with M_e ≠ ∅, a fresh base batch with x_i = 1.0 for i ∈ M_e.
    /// * only feature active: per expert with M_e ≠ ∅, x = 0 except x_i = c for i ∈ M_e, with one c ~ U[0,1)
    ///   (`nextFloat`, 24 bits) per sample. No input scale is applied.
    /// * Routing is argmax (top-1) whatever k is, ties to the model's tie rule (lowest index by default).
    ///
    /// The base distribution is U[0,1)^n for `.dense` (the authors' p = 1 quirk) or `distribution` for `.training`.
    /// Draws, in order: the unchanged batch; then for each expert e = 0, 1, … with M_e ≠ ∅: its clamped batch, then
    /// its `batch` values of c. Throws on `batch` < 1 or a distribution that does not fit the model.
    public static func expertUsage(
        _ model: Model, distribution: DataDistribution, base: UsageBase = .dense, batch: Int = 8192,
        threshold: Double = 0.2, minimumNorm: Double? = nil, rng: inout RandomStream
    ) throws -> [ExpertUsage] {
        let context = "Metrics.expertUsage"
        try distribution.validate(featureCount: model.featureCount)
        let n = model.featureCount
        let baseDistribution = base == .dense ? denseDistribution(n) : distribution
        let unchanged = argmaxUsage(
            model, inputs: try drawInputs(model, baseDistribution, samples: batch, rng: &rng, context: context))
        let experts = model.expertMatrices()
        var result: [ExpertUsage] = []
        let stop = shouldStop
        for e in 0..<model.expertCount {
            if let stop, stop() { break }  // cancelled: the caller discards the partial result
            let M = monosemanticFeatures(experts[e], threshold: threshold, minimumNorm: minimumNorm)
            var clamped: Double? = nil
            var only: Double? = nil
            if !M.isEmpty {
                var x = baseDistribution.sample(batch: batch, rng: &rng)
                for s in 0..<batch { for i in M { x[s * n + i] = 1 } }
                clamped = usageFraction(model, x, expert: e)
                var y = [Float](repeating: 0, count: batch * n)
                for s in 0..<batch {
                    let c = rng.nextFloat()
                    for i in M { y[s * n + i] = c }
                }
                only = usageFraction(model, y, expert: e)
            }
            result.append(
                ExpertUsage(
                    expert: e, monosemanticFeatures: M, unchanged: unchanged[e], clamped: clamped,
                    onlyFeatureActive: only))
        }
        return result
    }

    /// Fraction of x (B, n) whose argmax expert is `expert`.
    static func usageFraction(_ model: Model, _ x: [Float], expert: Int) -> Double {
        let top = argmaxExperts(model, inputs: x)
        return top.isEmpty ? 0 : Double(top.filter { $0 == expert }.count) / Double(top.count)
    }

    /// One number per usage condition.
    public struct ConditionUsage: Sendable, Equatable, Codable {
        public var unchanged: Double
        public var clamped: Double
        public var onlyFeatureActive: Double

        public init(unchanged: Double, clamped: Double, onlyFeatureActive: Double) {
            self.unchanged = unchanged
            self.clamped = clamped
            self.onlyFeatureActive = onlyFeatureActive
        }
    }

    /// Table 1 row: the experts with |M_e| = `monosemanticCount`, pooled over models, and their usage.
    public struct UsageGroup: Sendable, Equatable, Codable {
        /// |M_e| (≥ 1).
        public var monosemanticCount: Int
        /// Number of experts with this |M_e|, over all models (Table 1's count).
        public var expertCount: Int
        /// Mean usage of those experts, pooled over all of them (Table 1's number).
        public var meanUsage: ConditionUsage
        /// Population std (ddof 0) of the usage over the same experts.
        public var stdUsage: ConditionUsage
        /// Number of models given (including those without such an expert).
        public var modelCount: Int
        /// Mean and population std, over all models, of the per-model number of experts with this |M_e|.
        public var meanExpertsPerModel: Double
        public var stdExpertsPerModel: Double
        /// Number of models with at least one such expert.
        public var modelsWithGroup: Int
        /// Mean and population std, over the models with at least one such expert, of each model's mean usage.
        public var meanOfModelMeans: ConditionUsage
        public var stdOfModelMeans: ConditionUsage
    }

    /// Groups one model's experts by |M_e| (skipping |M_e| = 0), ascending; see `groupByMonosemanticCount(models:)`.
    public static func groupByMonosemanticCount(_ experts: [ExpertUsage]) -> [UsageGroup] {
        groupByMonosemanticCount(models: [experts])
    }

    /// Table 1 aggregation (docs/PAPER.md#expert-usage, docs/PAPER.md#table1): groups the experts of several models by |M_e|, skipping |M_e| = 0,
    /// ascending by |M_e|. For each group: the pooled expert count and mean/std usage per condition, and the
    /// mean/std over models of the per-model count and of the per-model mean usage. Missing (nil) clamped or
    /// only-active values, which `expertUsage` never produces for |M_e| ≥ 1, count as NaN.
    public static func groupByMonosemanticCount(models: [[ExpertUsage]]) -> [UsageGroup] {
        let sizes = Set(models.joined().map(\.monosemanticCount)).filter { $0 > 0 }.sorted()
        func usage(_ list: [ExpertUsage], _ f: (ExpertUsage) -> Double) -> (mean: Double, std: Double) {
            meanAndStd(list.map(f))
        }
        func stats(_ list: [ExpertUsage]) -> (mean: ConditionUsage, std: ConditionUsage) {
            let u = usage(list) { $0.unchanged }
            let c = usage(list) { $0.clamped ?? .nan }
            let o = usage(list) { $0.onlyFeatureActive ?? .nan }
            return (
                ConditionUsage(unchanged: u.mean, clamped: c.mean, onlyFeatureActive: o.mean),
                ConditionUsage(unchanged: u.std, clamped: c.std, onlyFeatureActive: o.std)
            )
        }
        return sizes.map { size in
            let perModel = models.map { $0.filter { $0.monosemanticCount == size } }
            let pooled = Array(perModel.joined())
            let pooledStats = stats(pooled)
            let counts = meanAndStd(perModel.map { Double($0.count) })
            let modelMeans = perModel.filter { !$0.isEmpty }.map { stats($0).mean }
            let mu = meanAndStd(modelMeans.map(\.unchanged))
            let mc = meanAndStd(modelMeans.map(\.clamped))
            let mo = meanAndStd(modelMeans.map(\.onlyFeatureActive))
            return UsageGroup(
                monosemanticCount: size, expertCount: pooled.count, meanUsage: pooledStats.mean,
                stdUsage: pooledStats.std, modelCount: models.count, meanExpertsPerModel: counts.mean,
                stdExpertsPerModel: counts.std, modelsWithGroup: modelMeans.count,
                meanOfModelMeans: ConditionUsage(unchanged: mu.mean, clamped: mc.mean, onlyFeatureActive: mo.mean),
                stdOfModelMeans: ConditionUsage(unchanged: mu.std, clamped: mc.std, onlyFeatureActive: mo.std))
        }
    }
}

// MARK: - docs/PAPER.md#router-statistics Router statistics

extension Metrics {
    /// Mean router probabilities without and with data (docs/PAPER.md#router-statistics).
    public struct RouterStatistics: Sendable, Equatable, Codable {
        /// Mean π_e under dense uniform inputs U[0,1)^n ("without data").
        public var meanProbabilitiesDense: [Double]
        /// Mean π_e under the training distribution ("with data").
        public var meanProbabilitiesTraining: [Double]
        /// `routerUniformity` of each vector.
        public var uniformityDense: Double
        public var uniformityTraining: Double
        /// Samples per condition.
        public var samples: Int
    }

    /// The authors' "uniformity" of a probability vector (docs/PAPER.md#router-statistics): var(p) / ((1 − 1/E)² (E − 1)/E), with the
    /// population variance over the E entries. 0 means perfectly uniform.
    ///
    /// The normalization is off: var of a one-hot vector is (E − 1)/E², so a one-hot gives E/(E − 1)², not 1
    /// (2 for E = 2, 0.75 for E = 3). Reproduced as the code has it. E = 1 (0/0) returns 0; empty input returns 0.
    public static func routerUniformity(_ probabilities: [Double]) -> Double {
        let E = Double(probabilities.count)
        guard probabilities.count > 1 else { return 0 }
        let variance = meanAndStd(probabilities).std
        return variance * variance / ((1 - 1 / E) * (1 - 1 / E) * (E - 1) / E)
    }

    /// Router statistics of a model (docs/PAPER.md#router-statistics) over `samples` inputs each (default N = 10,000).
    ///
    /// Draws, in order: `samples` dense inputs U[0,1)^n, then `samples` from `distribution`. Throws on a
    /// non-positive count or a distribution that does not fit the model.
    public static func routerStatistics(
        _ model: Model, distribution: DataDistribution, samples: Int = 10_000, rng: inout RandomStream
    ) throws -> RouterStatistics {
        let context = "Metrics.routerStatistics"
        try distribution.validate(featureCount: model.featureCount)
        let dense = meanRouterProbabilities(
            model,
            inputs: try drawInputs(
                model, denseDistribution(model.featureCount), samples: samples, rng: &rng, context: context))
        let trained = meanRouterProbabilities(
            model, inputs: try drawInputs(model, distribution, samples: samples, rng: &rng, context: context))
        return RouterStatistics(
            meanProbabilitiesDense: dense, meanProbabilitiesTraining: trained, uniformityDense: routerUniformity(dense),
            uniformityTraining: routerUniformity(trained), samples: samples)
    }
}

// MARK: - Routing map (Fig. 5, docs/PAPER.md#fig5)

extension Metrics {
    /// Top-1 expert over a G × G grid of two input features.
    public struct RoutingMap: Sendable, Equatable, Codable {
        /// G: points per axis.
        public var gridSize: Int
        /// linspace(0, 1, G): the coordinate values, shared by both axes.
        public var coordinates: [Double]
        /// Argmax expert, row-major (G × G): `experts[r * G + c]` is at x_first = coordinates[c] (columns) and
        /// x_second = coordinates[r] (rows). Row 0 is x_second = 0, so plot with the origin at the lower left.
        public var experts: [Int]
        /// The two features varied (all others are 0).
        public var firstFeature: Int
        public var secondFeature: Int

        /// Expert at grid row r (x_second = coordinates[r]) and column c (x_first = coordinates[c]).
        public func expert(row r: Int, column c: Int) -> Int { experts[r * gridSize + c] }
    }

    /// Routing map of Fig. 5 (docs/PAPER.md#fig5): the argmax expert at every point of a G × G grid over [0,1]² (default
    /// 100 × 100). x_first = linspace(0,1,G)[column], x_second = linspace(0,1,G)[row], every other feature 0;
    /// values are converted to Float for the router. Ties (x = 0 at the origin, the diagonal of a diagonal gate)
    /// follow the model's tie rule. G = 1 is the single point (0, 0).
    /// Throws if G < 1, the model has fewer than 2 features, or the feature indices are invalid or equal.
    public static func routingMap(
        _ model: Model, gridSize G: Int = 100, firstFeature: Int = 0, secondFeature: Int = 1
    ) throws -> RoutingMap {
        let context = "Metrics.routingMap"
        try requirePositive(G, "grid_size", context)
        let n = model.featureCount
        for (name, f) in [("first_feature", firstFeature), ("second_feature", secondFeature)] where !(0..<n).contains(f)
        {
            throw ToyMoEError(context, name, "expected a feature index in 0..<\(n), got \(f)")
        }
        if firstFeature == secondFeature {
            throw ToyMoEError(
                context, "second_feature", "expected a feature different from first_feature (\(firstFeature))")
        }
        let coordinates = Schedules.linspace(0, 1, count: G)
        var x = [Float](repeating: 0, count: G * G * n)
        for r in 0..<G {
            for c in 0..<G {
                let s = r * G + c
                x[s * n + firstFeature] = Float(coordinates[c])
                x[s * n + secondFeature] = Float(coordinates[r])
            }
        }
        return RoutingMap(
            gridSize: G, coordinates: coordinates, experts: argmaxExperts(model, inputs: x), firstFeature: firstFeature,
            secondFeature: secondFeature)
    }
}
