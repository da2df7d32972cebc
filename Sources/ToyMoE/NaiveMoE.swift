import Foundation
import ToyMoEKernels

/// The naive reference path: the toy MoE written as plainly as possible, in Double, with nested arrays and the
/// authors' formulation (every expert evaluated densely, then weighted by the gate, which is 0 for unselected
/// experts). It is the baseline the fast kernels are tested against (and later benchmarked against), and the
/// function that finite-difference gradient checks differentiate. Nothing here is tuned for speed.
public struct NaiveMoE: Sendable {
    /// W[e][i][j] (E, n, m).
    public var W: [[[Double]]]
    /// b[e][i] (E, n).
    public var b: [[Double]]
    /// G[e][i] (E, n).
    public var G: [[Double]]
    public var k: Int
    public var tieBreak: TieBreakRule

    /// Whether experts are evaluated for every sample (`dense`, the authors' einsum) or only when routed (`sparse`).
    public enum Dispatch: Sendable { case dense, sparse }
    public var dispatch: Dispatch = .dense

    public var n: Int { W[0].count }
    public var m: Int { W[0][0].count }
    public var E: Int { W.count }

    public init(W: [[[Double]]], b: [[Double]], G: [[Double]], k: Int, tieBreak: TieBreakRule = .lowestIndex) {
        self.W = W
        self.b = b
        self.G = G
        self.k = k
        self.tieBreak = tieBreak
    }

    /// The reference twin of a model (its parameters widened to Double).
    public init(_ model: Model) {
        let c = model.config
        let flatB = model.values(.bFinal), flatG = model.values(.gate)
        self.init(
            W: model.expertMatrices(),
            b: (0..<c.expertCount).map { e in (0..<c.featureCount).map { Double(flatB[e * c.featureCount + $0]) } },
            G: (0..<c.expertCount).map { e in (0..<c.featureCount).map { Double(flatG[e * c.featureCount + $0]) } },
            k: c.activeExpertCount, tieBreak: c.tieBreak)
    }

    /// Everything the forward pass computes for one sample.
    public struct Sample {
        public var logits: [Double]  // (E)
        public var probs: [Double]  // (E)
        public var selected: [Int]  // (k) in selection order
        public var gate: [Double]  // (E), 0 for unselected experts
        public var hidden: [[Double]]  // (E, m)
        public var pre: [[Double]]  // (E, n)
        public var xhat: [Double]  // (n)
    }

    /// Forward pass for one sample x (n).
    public func forward(_ x: [Double]) -> Sample {
        var logits = [Double](repeating: 0, count: E)
        for e in 0..<E { for i in 0..<n { logits[e] += G[e][i] * x[i] } }
        let zmax = logits.max()!
        let ex = logits.map { exp($0 - zmax) }
        let total = ex.reduce(0, +)
        let probs = ex.map { $0 / total }
        // top-k on the probabilities: sort indices by (probability desc, index asc) — or index desc for `highest`.
        let order = (0..<E).sorted { a, c in
            if probs[a] != probs[c] { return probs[a] > probs[c] }
            return tieBreak == .lowestIndex ? a < c : a > c
        }
        let selected = Array(order.prefix(k))
        let selectedSum = selected.reduce(0.0) { $0 + probs[$1] }
        var gate = [Double](repeating: 0, count: E)
        for e in selected { gate[e] = probs[e] / selectedSum }
        var hidden = [[Double]](repeating: [Double](repeating: 0, count: m), count: E)
        var pre = [[Double]](repeating: [Double](repeating: 0, count: n), count: E)
        var xhat = [Double](repeating: 0, count: n)
        for e in 0..<E {
            if dispatch == .sparse && gate[e] == 0 && !selected.contains(e) { continue }
            for j in 0..<m { for i in 0..<n { hidden[e][j] += W[e][i][j] * x[i] } }
            for i in 0..<n {
                var v = b[e][i]
                for j in 0..<m { v += W[e][i][j] * hidden[e][j] }
                pre[e][i] = v
                xhat[i] += gate[e] * max(v, 0)
            }
        }
        return Sample(logits: logits, probs: probs, selected: selected, gate: gate, hidden: hidden, pre: pre, xhat: xhat)
    }

    /// Loss on a batch: reconstruction (sum or mean over features of the batch-mean importance-weighted squared
    /// error) plus, if `lbAlpha` is given, α·E·Σ f_e P_e.
    public func loss(
        _ xs: [[Double]], importance: [Double], normalization: LossNormalization, lbAlpha: Double?
    ) -> (total: Double, reconstruction: Double, loadBalancing: Double) {
        let B = Double(xs.count)
        var recon = 0.0
        var f = [Double](repeating: 0, count: E)
        var P = [Double](repeating: 0, count: E)
        for x in xs {
            let s = forward(x)
            for i in 0..<n { recon += importance[i] * (abs(x[i]) - s.xhat[i]) * (abs(x[i]) - s.xhat[i]) }
            for e in s.selected { f[e] += 1 / B }
            for e in 0..<E { P[e] += s.probs[e] / B }
        }
        recon /= B
        if normalization == .meanOverFeatures { recon /= Double(n) }
        var lb = 0.0
        if let alpha = lbAlpha {
            for e in 0..<E { lb += f[e] * P[e] }
            lb *= alpha * Double(E)
        }
        return (recon + lb, recon, lb)
    }

    /// Analytic gradients of `loss`, by the chain rule written out in full (including the literal derivative of
    /// the renormalization π_e / Σ_T π, which is exactly 0 for k = 1). ReLU'(0) = 0 and f_e carries no gradient.
    public func gradients(
        _ xs: [[Double]], importance: [Double], normalization: LossNormalization, lbAlpha: Double?
    ) -> (dW: [[[Double]]], db: [[Double]], dG: [[Double]]) {
        let B = Double(xs.count)
        let scale = normalization == .meanOverFeatures ? 1 / (B * Double(n)) : 1 / B
        var dW = W.map { $0.map { $0.map { _ in 0.0 } } }
        var db = b.map { $0.map { _ in 0.0 } }
        var dG = G.map { $0.map { _ in 0.0 } }
        let samples = xs.map { forward($0) }
        var f = [Double](repeating: 0, count: E)
        for s in samples { for e in s.selected { f[e] += 1 / B } }
        for (x, s) in zip(xs, samples) {
            let dxhat = (0..<n).map { 2 * scale * importance[$0] * (s.xhat[$0] - abs(x[$0])) }
            var dgate = [Double](repeating: 0, count: E)
            for e in 0..<E {
                // x̂ = Σ_e gate_e · relu(pre_e): unselected experts have gate 0, so their parameter gradients vanish.
                for i in 0..<n { dgate[e] += dxhat[i] * max(s.pre[e][i], 0) }
                let dpre = (0..<n).map { s.pre[e][$0] > 0 ? s.gate[e] * dxhat[$0] : 0 }
                var dh = [Double](repeating: 0, count: m)
                for i in 0..<n {
                    db[e][i] += dpre[i]
                    for j in 0..<m {
                        dW[e][i][j] += dpre[i] * s.hidden[e][j]
                        dh[j] += W[e][i][j] * dpre[i]
                    }
                }
                for i in 0..<n { for j in 0..<m { dW[e][i][j] += x[i] * dh[j] } }
            }
            // gate_e = π_e / Σ_{T} π for e ∈ T: ∂gate_e/∂π_c = [e = c]/S − π_e/S² for c ∈ T.
            let S = s.selected.reduce(0.0) { $0 + s.probs[$1] }
            var dprob = [Double](repeating: 0, count: E)
            for c in s.selected {
                for e in s.selected {
                    let partial = (e == c ? 1 / S : 0) - s.probs[e] / (S * S)
                    dprob[c] += dgate[e] * partial
                }
            }
            if let alpha = lbAlpha {
                // L_LB = α E Σ_e f_e P_e, P_e = (1/B) Σ_b π_e(x_b)
                for e in 0..<E { dprob[e] += alpha * Double(E) * f[e] / B }
            }
            // softmax: ∂π_e/∂z_c = π_e([e = c] − π_c)
            for c in 0..<E {
                var dz = 0.0
                for e in 0..<E { dz += dprob[e] * s.probs[e] * ((e == c ? 1 : 0) - s.probs[c]) }
                for i in 0..<n { dG[c][i] += dz * x[i] }
            }
        }
        return (dW, db, dG)
    }

    /// Flattens (dW, db, dG) into the engine's parameter layout.
    public static func flatten(_ g: (dW: [[[Double]]], db: [[Double]], dG: [[Double]])) -> [Double] {
        g.dW.flatMap { $0.flatMap { $0 } } + g.db.flatMap { $0 } + g.dG.flatMap { $0 }
    }

    /// The parameters in the engine's flat layout.
    public var flatParameters: [Double] { W.flatMap { $0.flatMap { $0 } } + b.flatMap { $0 } + G.flatMap { $0 } }

    /// Rebuilds from a flat parameter vector in the engine's layout.
    public func with(flat p: [Double]) -> NaiveMoE {
        var copy = self
        var idx = 0
        for e in 0..<E { for i in 0..<n { for j in 0..<m { copy.W[e][i][j] = p[idx]; idx += 1 } } }
        for e in 0..<E { for i in 0..<n { copy.b[e][i] = p[idx]; idx += 1 } }
        for e in 0..<E { for i in 0..<n { copy.G[e][i] = p[idx]; idx += 1 } }
        return copy
    }
}
