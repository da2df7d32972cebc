import Foundation
import Testing
import ToyMoE

/// Metrics of docs/PAPER.md#metrics on synthetic matrices and hand-built models with known routing; every expected value is
/// derived in the comments.
@Suite struct MetricsTests {

    // MARK: Helpers (file-private names to avoid clashing with other test files)

    static func close(_ a: Double, _ b: Double, _ tol: Double = 1e-9) -> Bool { abs(a - b) <= tol }

    static func close(_ a: [Double], _ b: [Double], _ tol: Double = 1e-9) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol }
    }

    /// Rounds like the authors' display (3 decimals).
    static func round3(_ v: [Double]) -> [Double] { v.map { ($0 * 1000).rounded() / 1000 } }

    static func model(n: Int, m: Int, E: Int, k: Int = 1, W: [Float], gate: [Float]) throws -> Model {
        let model = try Model(
            config: ModelConfig(featureCount: n, hiddenCount: m, expertCount: E, activeExpertCount: k),
            initialization: .xavier, seed: 1)
        try model.setValues(.W, W)
        try model.setValues(.gate, gate)
        try model.setValues(.bFinal, [Float](repeating: 0, count: E * n))
        return model
    }

    static func stream(_ seed: UInt64) -> RandomStream {
        RandomStream(seed: seed, path: [0, StreamPurpose.analysis.rawValue])
    }

    // MARK: docs/PAPER.md#feature-dimensionality / docs/PAPER.md#features-per-dimension synthetic table

    @Test("Feature dimensionality and D* reproduce the authors' synthetic table (docs/PAPER.md#feature-dimensionality)")
    func dimensionalityTable() {
        // [1,0],[0.8,0],[0,1],[0,0.7]: rows 0 and 1 share e1. Row 0: Σ_j (Ŵ_0·W_j)² = 1² + 0.8² = 1.64, so
        // D_0 = 1/1.64 = 0.6098; row 1: same denominator, D_1 = 0.64/1.64 = 0.3902. Rows 2, 3: 1 + 0.49 = 1.49,
        // D = 1/1.49 = 0.6711 and 0.49/1.49 = 0.3289. D* = m/‖W‖_F² = 2/(1 + 0.64 + 1 + 0.49) = 2/3.13 = 0.639.
        let a: [[Double]] = [[1, 0], [0.8, 0], [0, 1], [0, 0.7]]
        #expect(Self.round3(Metrics.featureDimensionality(a)) == [0.610, 0.390, 0.671, 0.329])
        #expect(Self.close(Metrics.featureDimensionality(a), [1 / 1.64, 0.64 / 1.64, 1 / 1.49, 0.49 / 1.49], 1e-12))
        #expect(Self.close(Metrics.dimensionsPerFeature(a), 2 / 3.13, 1e-12))
        #expect(Self.round3([Metrics.dimensionsPerFeature(a)]) == [0.639])

        // Two identical unit rows share a dimension: denominator 1 + 1 = 2, D = 1/2 each; e2 alone: D = 1.
        // D* = 2 / 3 = 0.667.
        let b: [[Double]] = [[1, 0], [1, 0], [0, 1]]
        #expect(Self.close(Metrics.featureDimensionality(b), [0.5, 0.5, 1.0], 1e-12))
        #expect(Self.close(Metrics.dimensionsPerFeature(b), 2.0 / 3.0, 1e-12))

        // e1, −e1, e2, −e2, 0 (m = 3): each antipodal pair: (Ŵ·W_self)² + (Ŵ·W_partner)² = 1 + 1 = 2, D = 0.5;
        // the zero row is guarded (zero unit vector, denominator 0 ≤ 1e-8) → D = 0. D* = 3/4.
        let c: [[Double]] = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 0]]
        #expect(Self.close(Metrics.featureDimensionality(c), [0.5, 0.5, 0.5, 0.5, 0], 1e-12))
        #expect(Self.close(Metrics.dimensionsPerFeature(c), 0.75, 1e-12))

        // e1, −e1, e2, e3: the pair gets 0.5, the two orthogonal features 1. D* = 3/4.
        let d: [[Double]] = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, 1]]
        #expect(Self.close(Metrics.featureDimensionality(d), [0.5, 0.5, 1, 1], 1e-12))
        #expect(Self.close(Metrics.dimensionsPerFeature(d), 0.75, 1e-12))

        // I_3: all dedicated, D* = 3/3 = 1.
        let e: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        #expect(Self.close(Metrics.featureDimensionality(e), [1, 1, 1], 1e-12))
        #expect(Self.close(Metrics.dimensionsPerFeature(e), 1, 1e-12))
        #expect(Self.close(Metrics.featuresPerDimension(e), 1, 1e-12))
    }

    @Test("Dense features per dimension is ‖W‖_F²/m; an all-zero W has D* = +∞ and FPD = 0")
    func denseFeaturesPerDimension() {
        // ‖W‖_F² = 1 + 1 + (0.25 + 0.25) = 2.5, m = 2 → FPD = 1.25, D* = 0.8.
        let W: [[Double]] = [[1, 0], [0, 1], [0.5, 0.5]]
        #expect(Self.close(Metrics.featuresPerDimension(W), 1.25, 1e-12))
        #expect(Self.close(Metrics.dimensionsPerFeature(W), 0.8, 1e-12))
        let zero: [[Double]] = [[0, 0], [0, 0]]
        #expect(Metrics.dimensionsPerFeature(zero) == .infinity)
        #expect(Metrics.featuresPerDimension(zero) == 0)
        // The m parameter overrides the row width (needed for a matrix without rows).
        #expect(Metrics.featuresPerDimension([], hiddenCount: 3) == 0)
    }

    // MARK: docs/PAPER.md#feature-norm

    @Test("Interference uses W_i/(1e-5 + ‖W_i‖), is zero on the diagonal and is not symmetric (docs/PAPER.md#polysemanticity)")
    func interferenceValues() {
        // ι_01 = (W_0/(1e-5 + 1))·W_1 = 0.8/(1 + 1e-5); ι_10 = (W_1/(1e-5 + 0.8))·W_0 = 0.8/0.80001.
        let W: [[Double]] = [[1, 0], [0.8, 0]]
        let iota = Metrics.interference(W)
        #expect(iota[0][0] == 0 && iota[1][1] == 0)
        #expect(Self.close(iota[0][1], 0.8 / (1 + 1e-5), 1e-15))
        #expect(Self.close(iota[1][0], 0.8 / (0.8 + 1e-5), 1e-15))
        #expect(Self.close(Metrics.featureNorms(W), [1, 0.8], 1e-15))
    }

    @Test("Polysemanticity: 0 for orthogonal rows, 1/(1+1e-5) for a unit antipodal pair (docs/PAPER.md#polysemanticity)")
    func polysemanticityValues() {
        #expect(Metrics.polysemanticity([[1, 0, 0], [0, 2, 0], [0, 0, 0.3]]) == [0, 0, 0])
        // e1 and −e1: ι_01 = (e1/(1 + 1e-5))·(−e1) = −1/(1 + 1e-5), the only off-diagonal term, so
        // q = sqrt(ι²) = 1/(1 + 1e-5) for both.
        let q = Metrics.polysemanticity([[1, 0], [-1, 0]])
        #expect(Self.close(q, [1 / (1 + 1e-5), 1 / (1 + 1e-5)], 1e-15))
        // q is the root, not the square: rows e1, 0.5e1, 0.5e1 → q_0 = sqrt(0.25 + 0.25)/(1 + 1e-5) = 0.7071/(1+ε).
        let r = Metrics.polysemanticity([[1, 0], [0.5, 0], [0.5, 0]])
        #expect(Self.close(r[0], 0.5.squareRoot() / (1 + 1e-5), 1e-12))
    }

    @Test("Monosemantic count with and without a norm threshold; tiny rows count as monosemantic (docs/PAPER.md#polysemanticity)")
    func monosemanticCounts() {
        // Zero row: ι row is 0 → q = 0 < 0.2. Tiny row 1e-7·e1 next to e1: ι = 1e-7/(1e-5 + 1e-7) ≈ 0.0099 < 0.2.
        let W: [[Double]] = [[1, 0], [0, 1], [0, 0], [0, 0]]
        #expect(Metrics.monosemanticFeatures(W) == [0, 1, 2, 3])
        #expect(Metrics.monosemanticFeatures(W, minimumNorm: 0.5) == [0, 1])
        let tiny: [[Double]] = [[1, 0], [1e-7, 0]]
        let qTiny = Metrics.polysemanticity(tiny)[1]
        #expect(Self.close(qTiny, 1e-7 / (1e-5 + 1e-7), 1e-12))
        let count = Metrics.monosemanticCount(tiny)
        // Row 0: ι_01 = 1e-7/(1 + 1e-5) → q ≈ 1e-7, monosemantic too; only row 0 survives the norm threshold.
        #expect(count.unthresholded == 2)
        #expect(count.thresholded == 1)
        #expect(count.threshold == 0.2 && count.normThreshold == 0.5)
        // Antipodal pairs are not monosemantic (q ≈ 1).
        #expect(Metrics.monosemanticFeatures([[1, 0], [-1, 0], [0, 1]]) == [2])
    }

    @Test("Superposition score includes the self term; zero rows give s = 0 and D = 0 (docs/PAPER.md#phase-score, docs/PAPER.md#feature-dimensionality)")
    func superpositionScores() {
        // [1,0],[0.8,0]: s_0 = (Ŵ_0·W_0)² + (Ŵ_0·W_1)² = 1 + 0.64; s_1 = (e1·W_0)² + (e1·W_1)² = 1 + 0.64.
        // Without self: 0.64 and 1.
        let W: [[Double]] = [[1, 0], [0.8, 0]]
        #expect(Self.close(Metrics.superpositionScore(W), [1.64, 1.64], 1e-12))
        #expect(Self.close(Metrics.superpositionScoreExcludingSelf(W), [0.64, 1.0], 1e-12))
        // Orthogonal: s_i = ‖W_i‖² (only the self term).
        #expect(Self.close(Metrics.superpositionScore([[2, 0], [0, 0.5]]), [4, 0.25], 1e-12))
        // A zero row has s = 0 (release behaviour, not NaN) and D = 0 (guard), and does not disturb the others.
        let z: [[Double]] = [[1, 0], [0, 0]]
        #expect(Metrics.superpositionScore(z) == [1, 0])
        #expect(Metrics.superpositionScoreExcludingSelf(z) == [0, 0])
        #expect(Metrics.featureDimensionality(z) == [1, 0])
        // A row of norm 1e-9 ≤ 1e-8 gets a zero unit vector: D = 0; the other row's denominator is 1 + 1e-18.
        let tiny: [[Double]] = [[1e-9, 0], [1, 0]]
        let D = Metrics.featureDimensionality(tiny)
        #expect(D[0] == 0)
        #expect(Self.close(D[1], 1, 1e-12))
        #expect(Metrics.superpositionScore(tiny).allSatisfy { $0.isFinite })
    }

    @Test("Geometry summary: represented, dedicated, antipodal pairs and FPD")
    func geometrySummary() {
        // Norms 1, 1, 1, 0.1: features 0–2 are represented. Feature 2 (e2) is orthogonal to all → q = 0 →
        // dedicated; 0 and 1 are antipodal (cos = −1); feature 3 is below the norm cut-off.
        // FPD = (1 + 1 + 1 + 0.01)/2 = 1.505.
        let W: [[Double]] = [[1, 0], [-1, 0], [0, 1], [0.1, 0]]
        let s = Metrics.geometrySummary(W)
        #expect(s.representedFeatures == [0, 1, 2])
        #expect(s.dedicatedFeatures == [2])
        #expect(s.antipodalPairs == [Metrics.FeaturePair(0, 1)])
        #expect(s.representedCount == 3 && s.dedicatedCount == 1 && s.antipodalPairCount == 1)
        #expect(Self.close(s.featuresPerDimension, 1.505, 1e-12))
        // Per-expert geometry bundle agrees with the single functions.
        let g = Metrics.ExpertGeometry(W)
        #expect(g.dimensionality == Metrics.featureDimensionality(W))
        #expect(g.polysemanticity == Metrics.polysemanticity(W))
    }

    // MARK: docs/PAPER.md#features-per-dimension MoE features per dimension

    @Test("MoE FPD with routing forced to expert 0 uses only expert 0's weights")
    func moeFPDForcedRouting() throws {
        // n = 2, m = 1, E = 2, k = 1. Gate rows [1,1] and [0,0]: for x ≠ 0 logit 0 = x_1 + x_2 > 0 = logit 1, and
        // x = 0 ties → lowest index: expert 0 always, so p̄ = (1, 0). ‖W^(0)‖_F² = 1 + 0.25 = 1.25, m = 1 → 1.25
        // (expert 1's 2² + 2² = 8 must not enter). Both readings agree for k = 1.
        let model = try Self.model(n: 2, m: 1, E: 2, W: [1, 0.5, 2, 2], gate: [1, 1, 0, 0])
        let data = DataDistribution.uniform(featureCount: 2, probability: 0.5)
        var rng = Self.stream(3)
        let fpd = try Metrics.moeFeaturesPerDimension(model, distribution: data, rng: &rng)
        #expect(Self.close(fpd, 1.25, 1e-12))
        let alt = try Metrics.moeFeaturesPerDimension(
            model, distribution: data, weighting: .selectionFrequency, rng: &rng)
        #expect(Self.close(alt, 1.25, 1e-12))
    }

    @Test("MoE FPD for k = 2: the code's mean-gate reading vs the selection-frequency reading")
    func moeFPDTopTwo() throws {
        // Zero gate, E = k = 2: π = (1/2, 1/2) exactly, both experts selected, g = 1/2 each.
        // Code: (1/k) Σ p̄_e ‖W_e‖²/m = (1/2)(0.5·1.25 + 0.5·8) = 2.3125.
        // Selection reading: p = (1, 1): (1/2)(1.25 + 8) = 4.625 (k times larger under balance).
        let model = try Self.model(n: 2, m: 1, E: 2, k: 2, W: [1, 0.5, 2, 2], gate: [0, 0, 0, 0])
        let data = DataDistribution.uniform(featureCount: 2, probability: 0.3)
        var rng = Self.stream(4)
        #expect(Self.close(try Metrics.moeFeaturesPerDimension(model, distribution: data, rng: &rng), 2.3125, 1e-12))
        #expect(
            Self.close(
                try Metrics.moeFeaturesPerDimension(
                    model, distribution: data, weighting: .selectionFrequency, rng: &rng),
                4.625, 1e-12))
    }

    @Test("MoE FPD reduces to the dense formula for E = 1")
    func moeFPDDense() throws {
        let model = try Self.model(n: 3, m: 2, E: 1, W: [1, 0, 0, 1, 0.5, 0.5], gate: [0.3, -0.2, 0.1])
        var rng = Self.stream(5)
        let fpd = try Metrics.moeFeaturesPerDimension(
            model, distribution: .uniform(featureCount: 3, probability: 0.1), rng: &rng)
        #expect(Self.close(fpd, 1.25, 1e-7))
        #expect(Self.close(fpd, Metrics.featuresPerDimension(model.expertMatrices()[0]), 1e-12))
        #expect(throws: ToyMoEError.self) {
            try Metrics.moeFeaturesPerDimension(
                model, distribution: .uniform(featureCount: 3, probability: 0.1), samples: 0, rng: &rng)
        }
        #expect(throws: ToyMoEError.self) {
            try Metrics.moeFeaturesPerDimension(
                model, distribution: .uniform(featureCount: 4, probability: 0.1), rng: &rng)
        }
    }

    // MARK: docs/PAPER.md#global-dimensionality Global dimensionality

    @Test("Global dimensionality: all four weightings on a 2-expert model with known routing (docs/PAPER.md#global-dimensionality)")
    func globalDimensionalityVariants() throws {
        // n = 3, m = 2, E = 2, k = 1. W^(0) = [[1,0],[0.8,0],[0,0]] → D^(0) = [1/1.64, 0.64/1.64, 0];
        // W^(1) = [[0,0],[1,0],[0,0]] → D^(1) = [0, 1, 0]. Gate: expert 0 ← feature 0, expert 1 ← feature 1.
        // Data p = (1, 0, 0): x = (u, 0, 0), logits (u, 0): expert 0 wins (u = 0 ties → expert 0).
        let model = try Self.model(
            n: 3, m: 2, E: 2, W: [1, 0, 0.8, 0, 0, 0, 0, 0, 1, 0, 0, 0], gate: [1, 0, 0, 0, 1, 0])
        let data = DataDistribution(featureProbability: [1, 0, 0], importance: [1, 1, 1])
        let d0 = 1 / 1.64
        let d1 = 0.64 / 1.64
        let f32 = 1e-7  // 0.8 is stored as Float32 in the model, so expect only ~1e-8 relative agreement
        var rng = Self.stream(6)

        // (a) usage: u = (1, 0) → D^glob = D^(0) = [0.6098, 0.3902, 0]; 2 features above 0.05.
        let a = try Metrics.globalDimensionality(model, weighting: .usage, distribution: data, rng: &rng)
        #expect(a.samples == 4096)
        #expect(a.weights.map { $0[0] } == [1, 0])
        #expect(Self.close(a.perFeature, [d0, d1, 0], f32))
        #expect(a.featuresRepresented() == 2)

        // (b) probability: π_0 = σ(u), E[σ(u)] over U[0,1) = ∫₀¹ eᵘ/(1+eᵘ) du = ln((1+e)/2) = 0.620115.
        // D^glob = [P·d0, P·d1 + (1−P)·1, 0].
        let b = try Metrics.globalDimensionality(model, weighting: .probability, distribution: data, rng: &rng)
        let P = log((1 + M_E) / 2)
        #expect(Self.close(b.weights[0][0], P, 0.005))
        #expect(Self.close(b.weights[0][0] + b.weights[1][0], 1, 1e-6))
        #expect(Self.close(b.perFeature, [P * d0, P * d1 + (1 - P), 0], 0.005))

        // (c) specialization: S_0 = (1/(1+0), 0) ; S_1 = (0.64/1.64, 1/1.64); feature 2 is zero everywhere:
        // 0/0 → S = 0. D^glob = [d0, (0.64/1.64)·d1 + (1/1.64)·1, 0] = [0.6098, 0.7620, 0]. No samples drawn.
        let c = try Metrics.globalDimensionality(model, weighting: .specialization, distribution: data, rng: &rng)
        #expect(c.samples == 0)
        #expect(Self.close(c.weights[0], [1, 0.64 / 1.64, 0], f32))
        #expect(Self.close(c.weights[1], [0, 1 / 1.64, 0], f32))
        #expect(Self.close(c.perFeature, [d0, d1 * d1 + 1 / 1.64, 0], f32))

        // (d) feature-conditional: feature 0 occurs (almost) always and always with expert 0 → α_0 = (1, 0);
        // features 1 and 2 never occur → α = 0. D^glob = [d0, 0, 0]: only 1 feature represented.
        let d = try Metrics.globalDimensionality(model, weighting: .featureConditional, distribution: data, rng: &rng)
        #expect(d.samples == 1024)
        #expect(d.weights == [[1, 0, 0], [0, 0, 0]])
        #expect(Self.close(d.perFeature, [d0, 0, 0], f32))
        #expect(d.featuresRepresented() == 1)

        #expect(Metrics.featuresRepresented([0.06, 0.05, 0.049, 1]) == 2)
    }

    @Test("Feature-conditional selection sums to k over experts for k = 2")
    func featureConditionalTopTwo() throws {
        // E = 3, k = 2: every sample selects two experts, so Σ_e α_i^(e) = 2 for every occurring feature.
        let model = try Model(
            config: ModelConfig(featureCount: 4, hiddenCount: 2, expertCount: 3, activeExpertCount: 2), seed: 9)
        var rng = Self.stream(7)
        let x = DataDistribution.uniform(featureCount: 4, probability: 0.5).sample(batch: 500, rng: &rng)
        let alpha = Metrics.featureConditionalSelection(model, inputs: x)
        for i in 0..<4 { #expect(Self.close(alpha.reduce(0) { $0 + $1[i] }, 2, 1e-12)) }
        #expect(Self.close(Metrics.argmaxUsage(model, inputs: x).reduce(0, +), 1, 1e-12))
    }

    // MARK: docs/PAPER.md#expert-usage Expert usage

    /// n = 4, m = 3, E = 2, k = 1. K-hot gate: expert 0 ← features {0, 1}, expert 1 ← {2, 3}.
    /// W^(0) = e1, e2, e3, −e3 → q = (0, 0, ≈1, ≈1), M_0 = {0, 1}; W^(1) = e3, −e3, e1, e2 → M_1 = {2, 3}.
    static func kHotModel() throws -> Model {
        try model(
            n: 4, m: 3, E: 2,
            W: [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, -1, 0, 0, 1, 0, 0, -1, 1, 0, 0, 0, 1, 0],
            gate: [1, 1, 0, 0, 0, 0, 1, 1])
    }

    @Test("Usage under a K-hot gate: only-feature-active and clamped route to the owner (docs/PAPER.md#expert-usage)")
    func usageKHot() throws {
        let model = try Self.kHotModel()
        let training = DataDistribution.uniform(featureCount: 4, probability: 0.1)
        var rng = Self.stream(8)
        let dense = try Metrics.expertUsage(model, distribution: training, base: .dense, rng: &rng)
        #expect(dense.map(\.monosemanticFeatures) == [[0, 1], [2, 3]])
        for u in dense {
            // Only M_e active at c > 0: the owner's logit is 2c, the other's is 0 → usage 1.
            #expect(u.onlyFeatureActive == 1.0)
            // Clamped to 1: the owner's logit is 2 > the other's sum of two U[0,1) → usage 1.
            #expect(u.clamped == 1.0)
        }
        // Unchanged, dense: x_0 + x_1 vs x_2 + x_3 symmetric → ≈ 0.5 each (sd ≈ 0.006 at 8192).
        #expect(Self.close(dense[0].unchanged, 0.5, 0.03))
        #expect(Self.close(dense[0].unchanged + dense[1].unchanged, 1, 1e-12))

        // Training base p = 0.1: both logits are 0 with probability 0.9⁴ = 0.6561 (a tie → expert 0); otherwise
        // the two sums are symmetric, so usage_0 = 0.6561 + (1 − 0.6561)/2 = 0.82805.
        let sparse = try Metrics.expertUsage(model, distribution: training, base: .training, rng: &rng)
        #expect(Self.close(sparse[0].unchanged, 0.82805, 0.02))
        #expect(sparse[0].clamped == 1.0)
        #expect(sparse[1].onlyFeatureActive == 1.0)
    }

    @Test("Zero gate: every input ties and goes to expert 0 (argmax, lowest index)")
    func usageZeroGate() throws {
        // W = e1 in every row of a 1-d expert → all antipodal/parallel → q ≈ sqrt(n−1) > 0.2: M_e = ∅.
        let model = try Self.model(
            n: 3, m: 1, E: 3, W: [Float](repeating: 1, count: 9), gate: [Float](repeating: 0, count: 9))
        var rng = Self.stream(9)
        let usage = try Metrics.expertUsage(
            model, distribution: .uniform(featureCount: 3, probability: 0.1), batch: 1000, rng: &rng)
        #expect(usage.map(\.unchanged) == [1, 0, 0])
        #expect(
            usage.allSatisfy { $0.monosemanticFeatures.isEmpty && $0.clamped == nil && $0.onlyFeatureActive == nil })
        #expect(Metrics.groupByMonosemanticCount(usage).isEmpty)
    }

    @Test("Table 1 aggregation groups by |M_e|, skips |M_e| = 0, pools experts and summarizes models")
    func usageAggregation() {
        let modelA = [
            Metrics.ExpertUsage(
                expert: 0, monosemanticFeatures: [1], unchanged: 0.1, clamped: 0.3, onlyFeatureActive: 0.9),
            Metrics.ExpertUsage(
                expert: 1, monosemanticFeatures: [], unchanged: 0.2, clamped: nil, onlyFeatureActive: nil),
            Metrics.ExpertUsage(
                expert: 2, monosemanticFeatures: [2, 3], unchanged: 0.1, clamped: 0.5, onlyFeatureActive: 1),
        ]
        let modelB = [
            Metrics.ExpertUsage(
                expert: 0, monosemanticFeatures: [4], unchanged: 0.3, clamped: 0.5, onlyFeatureActive: 0.7),
            Metrics.ExpertUsage(
                expert: 1, monosemanticFeatures: [], unchanged: 0.7, clamped: nil, onlyFeatureActive: nil),
        ]
        let groups = Metrics.groupByMonosemanticCount(models: [modelA, modelB])
        #expect(groups.map(\.monosemanticCount) == [1, 2])
        let one = groups[0]
        // |M_e| = 1: one expert per model; clamped 0.3 and 0.5 → mean 0.4, population std 0.1.
        #expect(one.expertCount == 2 && one.modelCount == 2 && one.modelsWithGroup == 2)
        #expect(Self.close(one.meanUsage.clamped, 0.4, 1e-12) && Self.close(one.stdUsage.clamped, 0.1, 1e-12))
        #expect(Self.close(one.meanUsage.onlyFeatureActive, 0.8, 1e-12))
        #expect(Self.close(one.meanUsage.unchanged, 0.2, 1e-12))
        #expect(one.meanExpertsPerModel == 1 && one.stdExpertsPerModel == 0)
        #expect(Self.close(one.meanOfModelMeans.clamped, 0.4, 1e-12))
        // |M_e| = 2: only model A has one → per-model counts (1, 0): mean 0.5, std 0.5.
        let two = groups[1]
        #expect(two.expertCount == 1 && two.modelsWithGroup == 1)
        #expect(two.meanExpertsPerModel == 0.5 && two.stdExpertsPerModel == 0.5)
        #expect(two.meanUsage.clamped == 0.5 && two.stdUsage.clamped == 0)
        // Single-model helper.
        #expect(Metrics.groupByMonosemanticCount(modelA).map(\.expertCount) == [1, 1])
    }

    // MARK: docs/PAPER.md#router-statistics Router statistics

    @Test("Router statistics: zero gate is uniform; uniformity keeps the authors' normalization")
    func routerStatistics() throws {
        let model = try Self.model(n: 2, m: 1, E: 3, W: [1, 0, 1, 0, 1, 0], gate: [Float](repeating: 0, count: 6))
        var rng = Self.stream(10)
        let stats = try Metrics.routerStatistics(
            model, distribution: .uniform(featureCount: 2, probability: 0.1), samples: 200, rng: &rng)
        #expect(Self.close(stats.meanProbabilitiesDense, [1.0 / 3, 1.0 / 3, 1.0 / 3], 1e-6))
        #expect(Self.close(stats.meanProbabilitiesTraining, [1.0 / 3, 1.0 / 3, 1.0 / 3], 1e-6))
        #expect(stats.uniformityDense < 1e-12 && stats.samples == 200)
        // One-hot: var = (E−1)/E², normalizer (1−1/E)²(E−1)/E → E/(E−1)²: 2 for E = 2, 0.75 for E = 3.
        #expect(Self.close(Metrics.routerUniformity([1, 0]), 2, 1e-12))
        #expect(Self.close(Metrics.routerUniformity([1, 0, 0]), 0.75, 1e-12))
        #expect(Metrics.routerUniformity([0.5, 0.5]) == 0)
        #expect(Metrics.routerUniformity([1]) == 0)

        // Diagonal gate, E = 2, dense inputs: π_0 = σ(x_1 − x_2), symmetric → mean 0.5.
        let diag = try Self.model(n: 2, m: 1, E: 2, W: [1, 0, 0, 1], gate: [1, 0, 0, 1])
        let s2 = try Metrics.routerStatistics(
            diag, distribution: .uniform(featureCount: 2, probability: 0.5), samples: 10_000, rng: &rng)
        #expect(Self.close(s2.meanProbabilitiesDense[0], 0.5, 0.01))
    }

    // MARK: Routing map

    @Test("Routing map of a diagonal gate: expert 0 where x1 > x2, expert 1 where x2 > x1, ties to expert 0")
    func routingMapDiagonal() throws {
        // Logits (x1, x2, 0): expert 2 can only tie; the diagonal x1 = x2 (same linspace value, exact tie between 0
        // and 1) and the origin (three-way tie) go to the lowest index, 0.
        let model = try Self.model(n: 2, m: 1, E: 3, W: [1, 0, 1, 0, 1, 0], gate: [1, 0, 0, 1, 0, 0])
        let map = try Metrics.routingMap(model)
        #expect(map.gridSize == 100 && map.experts.count == 10_000)
        #expect(map.coordinates.first == 0 && map.coordinates.last == 1)
        #expect(Self.close(map.coordinates[1], 1.0 / 99, 1e-15))
        var wrong = 0
        for r in 0..<100 {
            for c in 0..<100 {
                let expected = c > r ? 0 : (r > c ? 1 : 0)  // column ↔ x1, row ↔ x2
                if map.expert(row: r, column: c) != expected { wrong += 1 }
            }
        }
        #expect(wrong == 0)
        #expect(map.expert(row: 0, column: 99) == 0)  // (x1, x2) = (1, 0)
        #expect(map.expert(row: 99, column: 0) == 1)  // (0, 1)
        #expect(map.experts[0] == 0)  // origin
        #expect(try Metrics.routingMap(model, gridSize: 1).experts == [0])
        #expect(throws: ToyMoEError.self) { try Metrics.routingMap(model, gridSize: 0) }
        #expect(throws: ToyMoEError.self) { try Metrics.routingMap(model, firstFeature: 1, secondFeature: 1) }
    }

    // MARK: Phase classification and colour map

    @Test("Phase classification of the last feature (docs/PAPER.md#fig4)")
    func phaseClassification() {
        // Last row 0.05·e1: norm < 0.1 → ignored (even though it overlaps e1).
        #expect(Metrics.classifyFeature([[1, 0], [0.05, 0]]) == .ignored)
        #expect(Metrics.classifyFeature([[1, 0], [0, 0]]) == .ignored)
        // Orthogonal to the others: Σ_{j≠last} = 0 → monosemantic.
        #expect(Metrics.classifyFeature([[1, 0], [0, 1]]) == .monosemantic)
        // Small overlap: W_last = [0.3, 1], Ŵ_last = [0.3, 1]/√1.09 = [0.2873, 0.9578]. With W_0 = [1, 0]:
        // Σ = 0.2873² = 0.0826 ≤ 0.1 → monosemantic; with W_0 = [1.2, 0]: (0.2873·1.2)² = 0.1189 > 0.1 → superposed.
        #expect(Metrics.classifyFeature([[1, 0], [0.3, 1]]) == .monosemantic)
        #expect(Metrics.classifyFeature([[1.2, 0], [0.3, 1]]) == .superposed)
        // Antipodal with the first feature: Σ = 1 > 0.1 → superposed; explicit index works too.
        #expect(Metrics.classifyFeature([[1, 0], [-1, 0], [0, 1]], feature: 1) == .superposed)
        #expect(Metrics.FeaturePhase.allCases.map(\.symbol) == [".", "M", "S"])
    }

    @Test("Phase colour map: white when ignored, blue when monosemantic, red when superposed (docs/PAPER.md#phase-colours)")
    func phaseColors() {
        // Panel maxima: N = 2, Σ = 4. Cells: (0, 0) → y = 0 → white; (2, 0) → y = 1, x = 0 → blue;
        // (2, 4) → y = 1, x = 1 → red; (1, 2) → y = x = 0.5 → R = 0.25 + 0.5, G = 0.5, B = 0.25 + 0.5.
        let map = Metrics.phaseColorMap(norms: [[0, 2], [2, 1]], superposition: [[0, 0], [4, 2]])
        #expect(map[0][0] == Metrics.RGB(red: 1, green: 1, blue: 1))
        #expect(map[0][1] == Metrics.RGB(red: 0, green: 0, blue: 1))
        #expect(map[1][0] == Metrics.RGB(red: 1, green: 0, blue: 0))
        #expect(map[1][1] == Metrics.RGB(red: 0.75, green: 0.5, blue: 0.75))
        // Clipping and degenerate panels: an all-zero panel is white; NaN counts as 0.
        #expect(
            Metrics.phaseColor(normFraction: 2, superpositionFraction: -1) == Metrics.RGB(red: 0, green: 0, blue: 1))
        #expect(
            Metrics.phaseColorMap(norms: [[0, 0]], superposition: [[.nan, 0]]).joined().allSatisfy {
                $0 == Metrics.RGB(red: 1, green: 1, blue: 1)
            })
    }

    // MARK: Determinism

    @Test("Sampled metrics are identical for the same stream seed")
    func seededDeterminism() throws {
        let model = try Model(
            config: ModelConfig(featureCount: 6, hiddenCount: 2, expertCount: 3, activeExpertCount: 1), seed: 7)
        let data = DataDistribution.uniform(featureCount: 6, probability: 0.3)
        func run(_ seed: UInt64) throws -> (
            Double, Metrics.GlobalDimensionality, [Metrics.ExpertUsage], Metrics.RouterStatistics
        ) {
            var rng = Self.stream(seed)
            return (
                try Metrics.moeFeaturesPerDimension(model, distribution: data, rng: &rng),
                try Metrics.globalDimensionality(model, weighting: .featureConditional, distribution: data, rng: &rng),
                try Metrics.expertUsage(model, distribution: data, batch: 512, threshold: 0.5, rng: &rng),
                try Metrics.routerStatistics(model, distribution: data, samples: 1000, rng: &rng)
            )
        }
        let first = try run(42)
        let second = try run(42)
        let other = try run(43)
        #expect(first.0 == second.0)
        #expect(first.1 == second.1)
        #expect(first.2 == second.2)
        #expect(first.3 == second.3)
        #expect(first.3.meanProbabilitiesDense != other.3.meanProbabilitiesDense)
    }
}
