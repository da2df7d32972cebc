// Metrics of the toy models (docs/PAPER.md#metrics): per-expert geometry on plain matrices.
//
// Conventions used throughout the `Metrics` namespace:
// * A weight matrix W is `[[Double]]` with one row per feature: W[i] is feature i's m-vector W_i (n × m, the code's
//   storage order; the paper writes the transpose). Every row must have the same length (precondition).
// * Ŵ_i = W_i / ‖W_i‖. Which normalization (with ε, without ε, guarded) differs between the authors' metrics, and
//   each function states the one it reproduces, because the published figures depend on these details (docs/PAPER.md#disagreements).
// * Everything is computed in Double. Model weights are Float32; `Model.expertMatrices()` widens them.
//
// The sampled, router-dependent metrics are in Metrics+Routing.swift; the phase-diagram classifier and colour map
// are in Metrics+Phase.swift.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Namespace for the analysis metrics of docs/PAPER.md#metrics Caseless: it only groups static functions and result types.
public enum Metrics {
    /// ε of the interference normalization W_i / (ε + ‖W_i‖) (docs/PAPER.md#polysemanticity).
    public static let interferenceEpsilon = 1e-5
    /// Norm (and denominator) guard of the feature-dimensionality helper (docs/PAPER.md#feature-dimensionality).
    public static let dimensionalityGuard = 1e-8

    /// Optional cancellation of the O(n²·m) metrics (gram, interference, polysemanticity, superposition, feature
    /// dimensionality, geometry), asked once per feature row; bind it with `Metrics.withStopCheck(_:_:)`. Once it
    /// answers true the remaining rows are skipped, so the result is meaningless: the caller must discard it and
    /// report the cancellation (the Lua bindings do: the script's deadline). It only reads, so a computation it
    /// never stops is unchanged. Thread-local, so each sweep worker has its own and other threads pay nothing.
    /// (A `@TaskLocal` did this first: its `withValue` from synchronous code crashed release builds on Linux, in
    /// `swift_task_localValuePush`, while debug builds ran; a pthread key has no such dependency on the runtime.)
    public static var shouldStop: (@Sendable () -> Bool)? {
        guard let p = pthread_getspecific(StopCheck.key) else { return nil }
        return Unmanaged<StopCheck>.fromOpaque(p).takeUnretainedValue().check
    }

    /// Runs `body` with `check` as this thread's `shouldStop` (nil: none), restoring the previous one after.
    public static func withStopCheck<T, E: Error>(
        _ check: (@Sendable () -> Bool)?, _ body: () throws(E) -> T
    ) throws(E) -> T {
        let previous = pthread_getspecific(StopCheck.key)
        let box = check.map { Unmanaged.passRetained(StopCheck($0)) }
        pthread_setspecific(StopCheck.key, box.map { UnsafeRawPointer($0.toOpaque()) })
        defer {
            pthread_setspecific(StopCheck.key, previous)
            box?.release()
        }
        return try body()
    }
}

/// The per-thread slot behind `Metrics.shouldStop`.
final class StopCheck {
    let check: @Sendable () -> Bool
    init(_ check: @escaping @Sendable () -> Bool) { self.check = check }
    /// Created once (Swift initializes globals and statics exactly once, thread-safely); never deleted.
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}

// MARK: - Small linear-algebra helpers

extension Metrics {
    /// Σ_k a_k b_k.
    @inline(__always)
    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for k in 0..<Swift.min(a.count, b.count) { s += a[k] * b[k] }
        return s
    }

    /// Width (m) of a matrix given as rows; checks that it is rectangular. An empty matrix has width 0.
    static func columnCount(_ W: [[Double]], _ function: StaticString = #function) -> Int {
        let m = W.first?.count ?? 0
        precondition(W.allSatisfy { $0.count == m }, "Metrics.\(function): rows of W must all have the same length")
        return m
    }

    /// Gram matrix W Wᵀ (n × n): entry (i, j) = W_i · W_j.
    public static func gram(_ W: [[Double]]) -> [[Double]] {
        _ = columnCount(W)
        let n = W.count
        var g = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        let stop = shouldStop
        for i in 0..<n {
            if let stop, stop() { break }
            for j in i..<n {
                let v = dot(W[i], W[j])
                g[i][j] = v
                g[j][i] = v
            }
        }
        return g
    }
}

// MARK: - docs/PAPER.md#feature-norm Feature norm

extension Metrics {
    /// Feature norms ‖W_i‖₂ (docs/PAPER.md#feature-norm): the bar heights of Figs. 1, 2 and 6 and the "L2 norm" axis of the
    /// phase-diagram colour. Not squared.
    /// - Parameter W: n × m, rows are features.
    /// - Returns: n values ≥ 0.
    public static func featureNorms(_ W: [[Double]]) -> [Double] {
        _ = columnCount(W)
        return W.map { dot($0, $0).squareRoot() }
    }

    /// Squared Frobenius norm ‖W‖_F² = Σ_i ‖W_i‖².
    public static func frobeniusNormSquared(_ W: [[Double]]) -> Double {
        _ = columnCount(W)
        return W.reduce(0) { $0 + dot($1, $1) }
    }
}

// MARK: - docs/PAPER.md#polysemanticity Interference and polysemanticity

extension Metrics {
    /// Interference matrix (docs/PAPER.md#polysemanticity, Elhage style, as the authors' bar-colour code computes it):
    /// ι_ij = (W_i / (1e-5 + ‖W_i‖)) · W_j for j ≠ i, and ι_ii = 0.
    ///
    /// The ε keeps zero rows finite (their row of ι is 0) and makes ι slightly smaller than the cosine-weighted
    /// projection: for unit rows the factor is 1/(1 + 1e-5). ι is not symmetric: row i is normalized by ‖W_i‖.
    /// - Parameter W: n × m, rows are features.
    /// - Returns: n × n.
    public static func interference(_ W: [[Double]]) -> [[Double]] {
        let g = gram(W)
        let n = W.count
        var iota = g
        let stop = shouldStop
        for i in 0..<n {
            if let stop, stop() { break }
            let scale = 1 / (interferenceEpsilon + g[i][i].squareRoot())
            for j in 0..<n { iota[i][j] = j == i ? 0 : g[i][j] * scale }
        }
        return iota
    }

    /// Polysemanticity q_i = sqrt(Σ_{j≠i} ι_ij²) (docs/PAPER.md#polysemanticity): the L2 norm of row i of `interference(W)`, **not** the
    /// squared sum (Elhage's text defines the square; the authors' bars and Table 1 use the root).
    ///
    /// Edge case: a feature with ‖W_i‖ ≪ 1e-5 gets q ≈ 0, i.e. it looks monosemantic. The authors apply no norm
    /// threshold; `monosemanticFeatures(_:threshold:minimumNorm:)` can add one.
    /// - Parameter W: n × m, rows are features.
    /// - Returns: n values ≥ 0. Orthogonal rows give 0; a unit antipodal pair gives 1/(1 + 1e-5) each.
    public static func polysemanticity(_ W: [[Double]]) -> [Double] {
        let stop = shouldStop
        return interference(W).map { row in
            if let stop, stop() { return 0 }
            return row.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
    }

    /// Indices of the monosemantic features: {i : q_i < threshold} (strict), optionally also requiring
    /// ‖W_i‖ > minimumNorm (strict). This is M_e of Table 1 (docs/PAPER.md#expert-usage) when `minimumNorm` is nil, the authors'
    /// criterion, which also counts ignored (near-zero) features because their q is ≈ 0.
    /// - Parameters:
    ///   - W: n × m, rows are features.
    ///   - threshold: the q cut-off; 0.2 in Table 1.
    ///   - minimumNorm: if set, drop features whose norm is not above it (e.g. 0.5) [I].
    /// - Returns: ascending feature indices.
    public static func monosemanticFeatures(
        _ W: [[Double]], threshold: Double = 0.2, minimumNorm: Double? = nil
    ) -> [Int] {
        let q = polysemanticity(W)
        let norms = featureNorms(W)
        return (0..<W.count).filter { i in
            q[i] < threshold && (minimumNorm.map { norms[i] > $0 } ?? true)
        }
    }

    /// Both monosemantic counts docs/PAPER.md describes (docs/PAPER.md#polysemanticity): the authors' count without a norm threshold, and the
    /// count restricted to features with ‖W_i‖ > `normThreshold`.
    public struct MonosemanticCount: Sendable, Equatable, Codable {
        /// #{i : q_i < threshold}: the code's count (includes ignored, near-zero features).
        public var unthresholded: Int
        /// #{i : q_i < threshold and ‖W_i‖ > normThreshold}.
        public var thresholded: Int
        /// The q cut-off used.
        public var threshold: Double
        /// The norm cut-off used for `thresholded`.
        public var normThreshold: Double
    }

    /// Counts monosemantic features with and without a norm threshold (docs/PAPER.md#polysemanticity).
    /// - Parameters:
    ///   - W: n × m, rows are features.
    ///   - threshold: q cut-off (strict), default 0.2 (Table 1).
    ///   - normThreshold: norm cut-off (strict) for the thresholded count, default 0.5.
    public static func monosemanticCount(
        _ W: [[Double]], threshold: Double = 0.2, normThreshold: Double = 0.5
    ) -> MonosemanticCount {
        MonosemanticCount(
            unthresholded: monosemanticFeatures(W, threshold: threshold).count,
            thresholded: monosemanticFeatures(W, threshold: threshold, minimumNorm: normThreshold).count,
            threshold: threshold, normThreshold: normThreshold)
    }
}

// MARK: - docs/PAPER.md#phase-score Superposition score

extension Metrics {
    /// Unit rows Ŵ_i = W_i / ‖W_i‖ without ε; a row whose norm is ≤ `zeroBelow` becomes the zero vector.
    static func unitRows(_ W: [[Double]], zeroBelow: Double) -> [[Double]] {
        W.map { row in
            let norm = dot(row, row).squareRoot()
            return norm <= zeroBelow ? [Double](repeating: 0, count: row.count) : row.map { $0 / norm }
        }
    }

    /// Σ_j (Ŵ_i · W_j)² for every i, over all j (or j ≠ i), with Ŵ_i = 0 for rows of norm ≤ `zeroBelow`.
    static func projectionEnergy(_ W: [[Double]], includeSelf: Bool, zeroBelow: Double) -> [Double] {
        _ = columnCount(W)
        let unit = unitRows(W, zeroBelow: zeroBelow)
        let stop = shouldStop
        return (0..<W.count).map { i in
            if let stop, stop() { return 0 }
            var s = 0.0
            for j in 0..<W.count where includeSelf || j != i {
                let p = dot(unit[i], W[j])
                s += p * p
            }
            return s
        }
    }

    /// Phase-diagram superposition score (docs/PAPER.md#phase-score, `phase_change.ipynb`, release version):
    /// s_i = Σ_j (Ŵ_i · W_j)² **including j = i**, i.e. ‖W_i‖² + Σ_{j≠i} (Ŵ_i · W_j)².
    ///
    /// Ŵ_i has no ε. A row with ‖W_i‖ = 0 exactly gets s_i = 0 (the release behaviour; the Aug-2025 notebook
    /// produced NaN). Tiny but nonzero rows are normalized as usual.
    /// - Parameter W: n × m, rows are features.
    /// - Returns: n values ≥ 0. The phase diagrams use only the last feature, s_{n−1}.
    public static func superpositionScore(_ W: [[Double]]) -> [Double] {
        projectionEnergy(W, includeSelf: true, zeroBelow: 0)
    }

    /// Superposition without the self term: Σ_{j≠i} (Ŵ_i · W_j)² (Ŵ without ε, 0 for a zero row). This is the
    /// quantity the phase-map classifier thresholds at 0.1 (docs/PAPER.md#fig4) and equals q_i² up to the ε of
    /// docs/PAPER.md#polysemanticity.
    /// - Parameter W: n × m, rows are features.
    /// - Returns: n values ≥ 0.
    public static func superpositionScoreExcludingSelf(_ W: [[Double]]) -> [Double] {
        projectionEnergy(W, includeSelf: false, zeroBelow: 0)
    }
}

// MARK: - docs/PAPER.md#feature-dimensionality Feature dimensionality, docs/PAPER.md#features-per-dimension dimensions / features per dimension

extension Metrics {
    /// Per-expert feature dimensionality (docs/PAPER.md#feature-dimensionality; Elhage's D_i inside one expert):
    /// D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)², the sum including j = i.
    ///
    /// Guarded as in the authors' `helpers/dimensions_per_feature.py`: Ŵ_i is the zero vector when ‖W_i‖ ≤ 1e-8,
    /// and D_i = 0 when the denominator is ≤ 1e-8 (the unguarded `global_feat_dims.py` gives 0/0 = NaN instead).
    /// Values lie in [0, 1]: 1 for a dedicated orthogonal direction, 1/2 for an antipodal pair, ≈ 0 when ignored.
    /// Example: rows [1,0], [0.8,0]: for row 0 the denominator is 1² + 0.8² = 1.64, so D_0 = 1/1.64 ≈ 0.610.
    /// - Parameter W: n × m, rows are features.
    /// - Returns: n values.
    public static func featureDimensionality(_ W: [[Double]]) -> [Double] {
        let denominators = projectionEnergy(W, includeSelf: true, zeroBelow: dimensionalityGuard)
        return (0..<W.count).map { i in
            denominators[i] <= dimensionalityGuard ? 0 : dot(W[i], W[i]) / denominators[i]
        }
    }

    /// Dimensions per feature D* = m / ‖W‖_F² (docs/PAPER.md#features-per-dimension, Elhage). An all-zero W gives +∞ (IEEE m/0: no feature
    /// uses any dimension); `featuresPerDimension` is the finite inverse and is what the paper plots.
    /// - Parameters:
    ///   - W: n × m, rows are features.
    ///   - m: hidden width; defaults to the row length of W (pass it when W has no rows).
    public static func dimensionsPerFeature(_ W: [[Double]], hiddenCount m: Int? = nil) -> Double {
        let width = m ?? columnCount(W)
        return Double(width) / frobeniusNormSquared(W)
    }

    /// Features per dimension FPD = ‖W‖_F² / m (docs/PAPER.md#features-per-dimension): the dense y-axis of Fig. 3 (reference line at 1).
    /// m = 0 (no hidden units) returns 0 rather than NaN.
    /// - Parameters:
    ///   - W: n × m, rows are features.
    ///   - m: hidden width; defaults to the row length of W.
    public static func featuresPerDimension(_ W: [[Double]], hiddenCount m: Int? = nil) -> Double {
        let width = m ?? columnCount(W)
        return width == 0 ? 0 : frobeniusNormSquared(W) / Double(width)
    }

    /// MoE features per dimension from given expert weights (docs/PAPER.md#features-per-dimension):
    /// FPD_MoE = (1/k) · Σ_e w_e · ‖W^(e)‖_F² / m.
    ///
    /// With w_e = p̄_e, the mean renormalized gate weight (Σ_e p̄_e = 1), this is the authors'
    /// `weighted_avg_features_per_dim`; the 1/k offsets the √k growth of expert weights that are each scaled by
    /// g ≈ 1/k. With E = 1 (w = [1], k = 1) it is the dense FPD. The sampled version is
    /// `moeFeaturesPerDimension(_:distribution:samples:weighting:rng:)`.
    /// - Parameters:
    ///   - experts: E matrices, each n × m.
    ///   - expertWeights: E weights w_e.
    ///   - k: active experts per sample.
    ///   - m: hidden width; defaults to the row length of the first expert.
    public static func featuresPerDimension(
        experts: [[[Double]]], expertWeights: [Double], activeExpertCount k: Int, hiddenCount m: Int? = nil
    ) -> Double {
        precondition(experts.count == expertWeights.count, "Metrics.featuresPerDimension: one weight per expert")
        precondition(k >= 1, "Metrics.featuresPerDimension: k must be ≥ 1")
        var total = 0.0
        for (e, W) in experts.enumerated() {
            total += expertWeights[e] * featuresPerDimension(W, hiddenCount: m ?? (experts.first?.first?.count ?? 0))
        }
        return total / Double(k)
    }
}

// MARK: - Per-expert geometry of a model

extension Metrics {
    /// Every per-expert, per-feature metric of docs/PAPER.md#feature-norm for one expert's W.
    public struct ExpertGeometry: Sendable, Equatable, Codable {
        /// ‖W_i‖ (docs/PAPER.md#feature-norm), n values.
        public var norms: [Double]
        /// q_i (docs/PAPER.md#polysemanticity), n values.
        public var polysemanticity: [Double]
        /// s_i including the self term (docs/PAPER.md#phase-score), n values.
        public var superpositionScore: [Double]
        /// Guarded D_i (docs/PAPER.md#feature-dimensionality), n values.
        public var dimensionality: [Double]
        /// ‖W‖_F² / m (docs/PAPER.md#features-per-dimension).
        public var featuresPerDimension: Double
        /// m / ‖W‖_F² (docs/PAPER.md#features-per-dimension); +∞ for an all-zero W.
        public var dimensionsPerFeature: Double

        /// Computes every field for W (n × m).
        public init(_ W: [[Double]]) {
            norms = Metrics.featureNorms(W)
            polysemanticity = Metrics.polysemanticity(W)
            superpositionScore = Metrics.superpositionScore(W)
            dimensionality = Metrics.featureDimensionality(W)
            featuresPerDimension = Metrics.featuresPerDimension(W)
            dimensionsPerFeature = Metrics.dimensionsPerFeature(W)
        }
    }

    /// `ExpertGeometry` of every expert of a model (from `model.expertMatrices()`), indexed by expert.
    public static func expertGeometry(_ model: Model) -> [ExpertGeometry] {
        model.expertMatrices().map(ExpertGeometry.init)
    }

    /// D_i^(e) for every expert: [e][i].
    public static func featureDimensionality(_ model: Model) -> [[Double]] {
        model.expertMatrices().map(featureDimensionality)
    }
}

// MARK: - Fig. 1 style geometry summary

extension Metrics {
    /// An unordered pair of features (first < second).
    public struct FeaturePair: Sendable, Equatable, Hashable, Codable {
        public var first: Int
        public var second: Int
        public init(_ first: Int, _ second: Int) {
            self.first = first
            self.second = second
        }
    }

    /// Summary of one expert's geometry in the terms used to describe Figs. 1, 2 and 6 (docs/PAPER.md#fig1, docs/PAPER.md#fig2).
    public struct GeometrySummary: Sendable, Equatable, Codable {
        /// Features with ‖W_i‖ > representedNorm.
        public var representedFeatures: [Int]
        /// Represented features with q_i < dedicatedPolysemanticity (a direction of their own).
        public var dedicatedFeatures: [Int]
        /// Pairs i < j, both represented, with cos(W_i, W_j) < antipodalCosine.
        public var antipodalPairs: [FeaturePair]
        /// ‖W‖_F² / m.
        public var featuresPerDimension: Double
        /// Thresholds used.
        public var representedNorm: Double
        public var dedicatedPolysemanticity: Double
        public var antipodalCosine: Double

        public var representedCount: Int { representedFeatures.count }
        public var dedicatedCount: Int { dedicatedFeatures.count }
        public var antipodalPairCount: Int { antipodalPairs.count }
    }

    /// Counts represented, dedicated and antipodal features of one expert (Fig. 1 style) [I: thresholds chosen here].
    ///
    /// * represented: ‖W_i‖ > 0.5 (the norm cut-off docs/PAPER.md suggests for the thresholded monosemantic count);
    /// * dedicated: represented and q_i < 0.1. A unit feature with q < 0.1 has less than 1% of its squared norm in
    ///   interference; this is stricter than Table 1's 0.2 because Fig. 1's dedicated features show q ≈ 0;
    /// * antipodal pair: i < j, both represented, cos(W_i, W_j) = W_i·W_j / (‖W_i‖‖W_j‖) < −0.9. Both norms exceed
    ///   the represented cut-off, so the cosine is always defined. A feature may appear in several pairs if several
    ///   represented features point against it (not the case for clean antipodal geometry).
    /// - Parameters:
    ///   - W: n × m, rows are features.
    ///   - representedNorm: strict norm cut-off, default 0.5.
    ///   - dedicatedPolysemanticity: strict q cut-off, default 0.1.
    ///   - antipodalCosine: strict cosine cut-off, default −0.9.
    public static func geometrySummary(
        _ W: [[Double]], representedNorm: Double = 0.5, dedicatedPolysemanticity: Double = 0.1,
        antipodalCosine: Double = -0.9
    ) -> GeometrySummary {
        let g = gram(W)
        let norms = featureNorms(W)
        let q = polysemanticity(W)
        let represented = (0..<W.count).filter { norms[$0] > representedNorm }
        let dedicated = represented.filter { q[$0] < dedicatedPolysemanticity }
        var pairs: [FeaturePair] = []
        for (a, i) in represented.enumerated() {
            for j in represented[(a + 1)...] where g[i][j] / (norms[i] * norms[j]) < antipodalCosine {
                pairs.append(FeaturePair(i, j))
            }
        }
        return GeometrySummary(
            representedFeatures: represented, dedicatedFeatures: dedicated, antipodalPairs: pairs,
            featuresPerDimension: featuresPerDimension(W), representedNorm: representedNorm,
            dedicatedPolysemanticity: dedicatedPolysemanticity, antipodalCosine: antipodalCosine)
    }
}
