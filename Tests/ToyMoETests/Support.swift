import ToyMoE
import ToyMoEKernels

/// Shared helpers for the engine tests.
enum Support {
    /// A model with Xavier W, b and gate from `seed`.
    static func model(n: Int, m: Int, E: Int = 1, k: Int = 1, seed: UInt64 = 1) throws -> Model {
        try Model(
            config: ModelConfig(featureCount: n, hiddenCount: m, expertCount: E, activeExpertCount: k), seed: seed)
    }

    /// A batch of sparse inputs (B, n) from a fixed stream.
    static func batch(_ B: Int, n: Int, p: Float, seed: UInt64) -> [Float] {
        var rng = RandomStream(seed: seed, path: [99])
        return DataDistribution.uniform(featureCount: n, probability: p).sample(batch: B, rng: &rng)
    }

    /// Splits a flat (B, n) Float batch into Double rows.
    static func rows(_ x: [Float], n: Int) -> [[Double]] {
        stride(from: 0, to: x.count, by: n).map { start in x[start..<(start + n)].map(Double.init) }
    }

    static func maxAbs(_ v: [Double]) -> Double { v.map(abs).max() ?? 0 }
}
