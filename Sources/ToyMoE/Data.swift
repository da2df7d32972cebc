import Foundation
import ToyMoEKernels

/// The synthetic data distribution and the per-feature loss weights (docs/PAPER.md#data).
///
/// x_i = u_i if r_i ≤ p_i else 0, with u_i, r_i ~ U[0, 1), independently per sample and feature, fresh every step.
/// The reconstruction target is |x| = x. `importance` weights feature i's squared error. `inputScale`, if set,
/// multiplies feature i's value (and therefore its target): the paper-text reading of the phase-change "relative
/// importance" r, offered beside the code's reading (r as a loss weight).
public struct DataDistribution: Sendable, Equatable, Codable {
    /// p_i (`feature_probability`), one per feature.
    public var featureProbability: [Float]
    /// I_i (`importance`), one per feature.
    public var importance: [Float]
    /// Optional per-feature value scale.
    public var inputScale: [Float]?

    /// Per-feature vectors. Use `uniform` for a scalar p.
    public init(featureProbability: [Float], importance: [Float], inputScale: [Float]? = nil) {
        self.featureProbability = featureProbability
        self.importance = importance
        self.inputScale = inputScale
    }

    /// Scalar p shared by all n features; importance all ones unless given.
    public static func uniform(featureCount n: Int, probability p: Float, importance: [Float]? = nil) -> DataDistribution {
        DataDistribution(
            featureProbability: [Float](repeating: p, count: n),
            importance: importance ?? [Float](repeating: 1, count: n))
    }

    /// How the phase-change "relative importance" r of the last feature enters (docs/PAPER.md#data, docs/PAPER.md#disagreements).
    public enum RelativeImportanceMode: String, Sendable, Codable, CaseIterable {
        /// The authors' code: importance = (1, …, 1, r), inputs unscaled. The default.
        case lossWeight = "loss_weight"
        /// The paper's text: inputs x = (x₁, …, r·x_n), importance all ones.
        case inputScale = "input_scale"
    }

    /// The phase-change distribution: all features with density p = 1 − S; the last feature gets r.
    public static func phaseChange(
        featureCount n: Int, sparsity S: Float, relativeImportance r: Float, mode: RelativeImportanceMode = .lossWeight
    ) -> DataDistribution {
        var d = uniform(featureCount: n, probability: 1 - S)
        switch mode {
        case .lossWeight:
            d.importance[n - 1] = r
        case .inputScale:
            var scale = [Float](repeating: 1, count: n)
            scale[n - 1] = r
            d.inputScale = scale
        }
        return d
    }

    /// Checks vector lengths against n and value domains: p ∈ [0, 1], importance finite and ≥ 0, scale finite.
    public func validate(featureCount n: Int) throws {
        func check(_ v: [Float], _ name: String, _ ok: (Float) -> Bool, _ expected: String) throws {
            guard v.count == n else {
                throw ToyMoEError("DataDistribution", name, "expected \(n) values (one per feature), got \(v.count)")
            }
            if let i = v.firstIndex(where: { !ok($0) }) {
                throw ToyMoEError("DataDistribution", name, "entry \(i) (0-based) is \(v[i]); expected \(expected)")
            }
        }
        try check(featureProbability, "feature_probability", { $0 >= 0 && $0 <= 1 }, "a probability in [0, 1]")
        try check(importance, "importance", { $0.isFinite && $0 >= 0 }, "a finite non-negative number")
        if let s = inputScale { try check(s, "input_scale", { $0.isFinite }, "a finite number") }
    }

    /// Draws `batch` samples (B, n) from `rng` into `x` (no allocation: the training loop's path).
    public func sample(into x: UnsafeMutablePointer<Float>, batch: Int, rng: inout RandomStream) {
        let n = featureProbability.count
        featureProbability.withUnsafeBufferPointer { pp in
            if let scale = inputScale {
                scale.withUnsafeBufferPointer { sp in
                    MoEKernels.sampleBatch(
                        x: x, batch: batch, n: n, probability: pp.baseAddress!, scale: sp.baseAddress!, rng: &rng)
                }
            } else {
                MoEKernels.sampleBatch(x: x, batch: batch, n: n, probability: pp.baseAddress!, scale: nil, rng: &rng)
            }
        }
    }

    /// Draws `batch` samples (B, n) from `rng` (allocates; for analysis).
    public func sample(batch: Int, rng: inout RandomStream) -> [Float] {
        var x = [Float](repeating: 0, count: batch * featureProbability.count)
        x.withUnsafeMutableBufferPointer { xp in
            if let base = xp.baseAddress { sample(into: base, batch: batch, rng: &rng) }
        }
        return x
    }
}

/// Helpers for the importance and density vectors the experiments use.
public enum Schedules {
    /// base^i for i = 0 ..< n (e.g. 0.7^i, Fig. 1).
    public static func geometric(base: Double, count n: Int) -> [Float] {
        (0..<n).map { Float(pow(base, Double($0))) }
    }

    /// base^{π(i)} for a uniformly random permutation π drawn from `rng` (Fig. 6c, Table 1).
    public static func permutedGeometric(base: Double, count n: Int, rng: inout RandomStream) -> [Float] {
        let perm = Array(0..<n).shuffled(using: &rng)
        return perm.map { Float(pow(base, Double($0))) }
    }

    /// `count` evenly spaced values from `start` to `end` inclusive (numpy `linspace`).
    public static func linspace(_ start: Double, _ end: Double, count: Int) -> [Double] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        return (0..<count).map { start + (end - start) * Double($0) / Double(count - 1) }
    }

    /// `count` log-spaced values from `start` to `end` inclusive (numpy `geomspace`).
    public static func geomspace(_ start: Double, _ end: Double, count: Int) -> [Double] {
        linspace(log(start), log(end), count: count).map { exp($0) }
    }
}
