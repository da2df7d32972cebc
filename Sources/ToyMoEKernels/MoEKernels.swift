// Forward and backward kernels of the toy MoE (and of the dense model, which is the E = 1, k = 1 case).
//
// Legend: B = batch, n = features, m = hidden per expert, E = experts, k = active experts per sample.
// Parameters live in one flat Float32 allocation (see `MoELayout`):
//   W (E, n, m)  row i of W[e] is feature i's m-vector in expert e
//   b (E, n)     per-expert output bias ("b_final")
//   G (E, n)     router matrix ("gate"), no bias
// Gradients and AdamW moments share that layout, so the optimizer is one loop over the flat buffer.
//
// Math (docs/PAPER.md#model): z = G x, π = softmax(z), T = top-k(π), g_e = π_e / Σ_{e'∈T} π_{e'} on T, else 0,
// y_e = ReLU(W_e W_eᵀ x + b_e), x̂ = Σ_{e∈T} g_e y_e.
// Only the k routed experts are evaluated (sparse dispatch); unselected experts have g_e = 0 and contribute neither
// to x̂ nor to any gradient, so this equals the authors' dense evaluation exactly (tested against the naive twin).
//
// These are the portable scalar kernels over unsafe buffers; they allocate nothing. The naive twin (plain nested
// arrays in Double, all experts evaluated densely) is `NaiveMoE` in the engine module.

/// Shapes and flat-buffer offsets of one model's parameters.
public struct MoELayout: Sendable, Equatable {
    public let n: Int  // features
    public let m: Int  // hidden per expert
    public let experts: Int  // E
    public let active: Int  // k

    public init(n: Int, m: Int, experts: Int, active: Int) {
        self.n = n
        self.m = m
        self.experts = experts
        self.active = active
    }

    /// Offset of W (E, n, m) in the flat buffer.
    public var wOffset: Int { 0 }
    /// Offset of b (E, n).
    public var bOffset: Int { experts * n * m }
    /// Offset of G (E, n).
    public var gOffset: Int { experts * n * m + experts * n }
    /// Total parameter count: E·n·m + 2·E·n.
    public var count: Int { experts * n * m + 2 * experts * n }
}

/// How top-k breaks ties between equal router probabilities (e.g. every x = 0 sample, docs/PAPER.md#ties).
public enum TieBreak: UInt8, Sendable, CaseIterable {
    /// The lower expert index wins (matches the authors' runs for E ≤ 3; the default).
    case lowestIndex = 0
    /// The higher expert index wins (for studying the asymmetry that tie-breaking induces).
    case highestIndex = 1
}

/// Non-owning pointers to the per-batch activations a training step keeps for its backward pass.
public struct MoEActivations {
    public var x: UnsafeMutablePointer<Float>  // (B, n) inputs
    public var probs: UnsafeMutablePointer<Float>  // (B, E) router probabilities π
    public var selected: UnsafeMutablePointer<Int32>  // (B, k) selected experts, in selection order
    public var gates: UnsafeMutablePointer<Float>  // (B, k) renormalized gate weights g
    public var hidden: UnsafeMutablePointer<Float>  // (B, k, m) h = W_eᵀ x per selected expert
    public var preact: UnsafeMutablePointer<Float>  // (B, k, n) W_e h + b_e (before ReLU)
    public var xhat: UnsafeMutablePointer<Float>  // (B, n) reconstruction
    public var dxhat: UnsafeMutablePointer<Float>  // (n) scratch: dL/dx̂ of one sample
    public var dgate: UnsafeMutablePointer<Float>  // (k) scratch: dL/dg of one sample
    public var dprob: UnsafeMutablePointer<Float>  // (E) scratch: dL/dπ of one sample
    public var dhidden: UnsafeMutablePointer<Float>  // (m) scratch
    public var dispatchFraction: UnsafeMutablePointer<Float>  // (E) f_e: fraction of the batch routed to e
    public var meanProb: UnsafeMutablePointer<Float>  // (E) P_e: batch mean of π_e

    public init(
        x: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, selected: UnsafeMutablePointer<Int32>,
        gates: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, preact: UnsafeMutablePointer<Float>,
        xhat: UnsafeMutablePointer<Float>, dxhat: UnsafeMutablePointer<Float>, dgate: UnsafeMutablePointer<Float>,
        dprob: UnsafeMutablePointer<Float>, dhidden: UnsafeMutablePointer<Float>,
        dispatchFraction: UnsafeMutablePointer<Float>, meanProb: UnsafeMutablePointer<Float>
    ) {
        self.x = x
        self.probs = probs
        self.selected = selected
        self.gates = gates
        self.hidden = hidden
        self.preact = preact
        self.xhat = xhat
        self.dxhat = dxhat
        self.dgate = dgate
        self.dprob = dprob
        self.dhidden = dhidden
        self.dispatchFraction = dispatchFraction
        self.meanProb = meanProb
    }
}

import CToyMoECPU

public enum MoEKernels {

    // MARK: - Data

    /// Draws a fresh batch: x[b, i] = u if r ≤ p_i else 0, with u, r ~ U[0, 1) (docs/PAPER.md#data; `≤` as in the authors'
    /// `torch.rand(...) <= p`). One 64-bit draw yields both uniforms. `scale` (optional, n) multiplies each feature's
    /// value afterwards (the paper-text reading of the relative importance r).
    /// - Shapes: `x` (B, n), `probability` (n), `scale` (n) or nil.
    @inline(__always)
    public static func sampleBatch(
        x: UnsafeMutablePointer<Float>, batch: Int, n: Int, probability: UnsafePointer<Float>,
        scale: UnsafePointer<Float>?, rng: inout RandomStream
    ) {
        for s in 0..<batch {
            let row = x + s * n
            for i in 0..<n {
                let (u, r) = rng.nextFloatPair()
                row[i] = r <= probability[i] ? u : 0
            }
            if let scale {
                for i in 0..<n { row[i] *= scale[i] }
            }
        }
    }

    // MARK: - Router

    /// Router forward for one sample: logits z = G x, π = softmax(z) (max-subtracted, exp = `kernelExp`), top-k selection on π with
    /// the given tie rule, and renormalized gates g = π_T / Σ π_T.
    /// - Shapes: `x` (n), `gate` (E, n), `probs` (E), `selected` (k), `gates` (k).
    @inline(__always)
    public static func route(
        x: UnsafePointer<Float>, gate: UnsafePointer<Float>, layout L: MoELayout, tieBreak: TieBreak,
        probs: UnsafeMutablePointer<Float>, selected: UnsafeMutablePointer<Int32>, gates: UnsafeMutablePointer<Float>
    ) {
        let n = L.n, E = L.experts, k = L.active
        if E == 1 {
            // Softmax of one logit is exactly 1: skip the exp (the result is bitwise the same).
            probs[0] = 1
            selected[0] = 0
            gates[0] = 1
            return
        }
        for e in 0..<E {
            let row = gate + e * n
            var z: Float = 0
            for i in 0..<n { z += row[i] * x[i] }
            probs[e] = z
        }
        selectTopK(logitsToProbabilities: probs, experts: E, active: k, tieBreak: tieBreak, selected: selected, gates: gates)
    }

    /// The part of the router after the logits, shared by every kernel variant: turns the logits in `probs` (E) into
    /// π = softmax (max-subtracted), selects the top-k experts by π with the tie rule, and writes the renormalized
    /// gates g = π_T / Σ π_T. Shapes: `probs` (E, in: logits, out: π), `selected` (k), `gates` (k).
    @inline(__always)
    public static func selectTopK(
        logitsToProbabilities probs: UnsafeMutablePointer<Float>, experts E: Int, active k: Int, tieBreak: TieBreak,
        selected: UnsafeMutablePointer<Int32>, gates: UnsafeMutablePointer<Float>
    ) {
        var zmax = -Float.infinity
        for e in 0..<E { zmax = Swift.max(zmax, probs[e]) }
        var total: Float = 0
        for e in 0..<E {
            let v = kernelExp(probs[e] - zmax)  // not libm: see Exp.swift (vector and scalar kernels agree bitwise)
            probs[e] = v
            total += v
        }
        let inv = 1 / total
        for e in 0..<E { probs[e] *= inv }
        // Top-k by repeated selection: k ≤ E is small. Strict comparison keeps the first (lowest) index among
        // equals; `highestIndex` uses ≥ instead so the last equal one wins.
        var selectedSum: Float = 0
        for j in 0..<k {
            var best = -1
            var bestValue = -Float.infinity
            for e in 0..<E {
                var taken = false
                for t in 0..<j where selected[t] == Int32(e) { taken = true }
                if taken { continue }
                let v = probs[e]
                let better = tieBreak == .lowestIndex ? (v > bestValue) : (v >= bestValue)
                if best < 0 || better {
                    best = e
                    bestValue = v
                }
            }
            selected[j] = Int32(best)
            selectedSum += bestValue
        }
        for j in 0..<k { gates[j] = probs[Int(selected[j])] / selectedSum }
    }

    // MARK: - Forward

    /// Forward pass over a batch with sparse dispatch. Fills every activation the backward pass needs.
    /// - Shapes: `params` (layout.count); activations as documented on `MoEActivations`.
    public static func forward(
        params: UnsafePointer<Float>, layout L: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let W = params + L.wOffset, bias = params + L.bOffset, G = params + L.gOffset
        for s in 0..<batch {
            let x = UnsafePointer(act.x + s * n)
            route(
                x: x, gate: G, layout: L, tieBreak: tieBreak, probs: act.probs + s * E,
                selected: act.selected + s * k, gates: act.gates + s * k)
            let xhat = act.xhat + s * n
            for i in 0..<n { xhat[i] = 0 }
            for j in 0..<k {
                let e = Int(act.selected[s * k + j])
                let g = act.gates[s * k + j]
                let We = W + e * n * m
                let be = bias + e * n
                let h = act.hidden + (s * k + j) * m
                let pre = act.preact + (s * k + j) * n
                // encode: h = W_eᵀ x   (m) — accumulate row by row so W is read contiguously
                for a in 0..<m { h[a] = 0 }
                for i in 0..<n {
                    let xi = x[i]
                    if xi == 0 { continue }  // sparse inputs: most x_i are exactly 0 at low density
                    let wrow = We + i * m
                    for a in 0..<m { h[a] += wrow[a] * xi }
                }
                // decode: pre = W_e h + b_e, x̂ += g · ReLU(pre)   (n)
                for i in 0..<n {
                    let wrow = We + i * m
                    var v = be[i]
                    for a in 0..<m { v += wrow[a] * h[a] }
                    pre[i] = v
                    if v > 0 { xhat[i] += g * v }
                }
            }
        }
    }

    // MARK: - Loss

    /// Importance-weighted squared error, scaled: L = scale · Σ_b Σ_i I_i (x_bi − x̂_bi)².
    /// `scale` is 1/B for the sum-over-features trainer and 1/(B·n) for the mean-over-features trainer (docs/PAPER.md#loss-normalization).
    /// Accumulates in Double so the reported loss does not depend on batch-summation order.
    public static func reconstructionLoss(
        x: UnsafePointer<Float>, xhat: UnsafePointer<Float>, importance: UnsafePointer<Float>, batch: Int, n: Int,
        scale: Double
    ) -> Double {
        var total = 0.0
        var s = 0
        // Four rows at a time: each row's Float sum keeps the one-row loop's order (so the bits are the same), but
        // the four add chains are independent, so they overlap instead of each waiting on the add latency.
        while s + 4 <= batch {
            let x0 = x + s * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n
            let h0 = xhat + s * n, h1 = h0 + n, h2 = h1 + n, h3 = h2 + n
            var r0: Float = 0, r1: Float = 0, r2: Float = 0, r3: Float = 0
            for i in 0..<n {
                let w = importance[i]
                let d0 = x0[i] - h0[i], d1 = x1[i] - h1[i], d2 = x2[i] - h2[i], d3 = x3[i] - h3[i]
                r0 += w * d0 * d0
                r1 += w * d1 * d1
                r2 += w * d2 * d2
                r3 += w * d3 * d3
            }
            total += Double(r0)
            total += Double(r1)
            total += Double(r2)
            total += Double(r3)
            s += 4
        }
        while s < batch {
            var row: Float = 0
            for i in 0..<n {
                let d = x[s * n + i] - xhat[s * n + i]
                row += importance[i] * d * d
            }
            total += Double(row)
            s += 1
        }
        return total * scale
    }

    /// Load-balancing statistics and value: f_e = (1/B) Σ_b [e ∈ T(x_b)], P_e = (1/B) Σ_b π_e(x_b),
    /// L_LB = α · E · Σ_e f_e P_e (docs/PAPER.md#load-balancing). Writes f and P into the activations.
    public static func loadBalancing(layout L: MoELayout, batch: Int, alpha: Float, act: MoEActivations) -> Double {
        let E = L.experts, k = L.active
        for e in 0..<E {
            act.dispatchFraction[e] = 0
            act.meanProb[e] = 0
        }
        for s in 0..<batch {
            for j in 0..<k { act.dispatchFraction[Int(act.selected[s * k + j])] += 1 }
            for e in 0..<E { act.meanProb[e] += act.probs[s * E + e] }
        }
        let invB = 1 / Float(batch)
        var value = 0.0
        for e in 0..<E {
            act.dispatchFraction[e] *= invB
            act.meanProb[e] *= invB
            value += Double(act.dispatchFraction[e]) * Double(act.meanProb[e])
        }
        return Double(alpha) * Double(E) * value
    }

    // MARK: - Backward

    /// Backward pass: accumulates dL/dW, dL/db, dL/dG into `grads` (same layout as the parameters; the caller
    /// zeroes it). The loss is `lossScale · Σ I (x − x̂)²` plus, if `lbAlpha` is non-nil, the load-balancing term
    /// (whose f_e and P_e must already be in the activations).
    ///
    /// Per sample: dx̂ = 2·scale·I ⊙ (x̂ − x); for each selected expert e with gate g:
    ///   dg = dx̂ · ReLU(pre), dpre = g · dx̂ ⊙ [pre > 0] (ReLU'(0) = 0, as PyTorch), db_e += dpre,
    ///   dh = W_eᵀ dpre, dW_e += dpre ⊗ h + x ⊗ dh (tied encoder/decoder).
    /// Router: dπ_e = (dg_e − Σ_T dg g)/Σ_T π on selected experts (the renormalization, differentiated literally;
    /// identically 0 when k = 1), plus α E f_e / B from L_LB; dz = π ⊙ (dπ − π·dπ); dG += dz ⊗ x.
    public static func backward(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout L: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let W = params + L.wOffset
        let dW = grads + L.wOffset, db = grads + L.bOffset, dG = grads + L.gOffset
        // With k = 1 and no LB the router gradient is identically zero (g ≡ π/π = 1): skip that work. The naive
        // twin computes it literally and the tests check it is exactly 0.
        let routerNeeded = E > 1 && (k > 1 || lbAlpha != nil)
        let lbCoefficient: Float = lbAlpha.map { $0 * Float(E) / Float(batch) } ?? 0
        for s in 0..<batch {
            let x = act.x + s * n
            let xhat = act.xhat + s * n
            let dxhat = act.dxhat
            for i in 0..<n { dxhat[i] = 2 * lossScale * importance[i] * (xhat[i] - x[i]) }
            for j in 0..<k {
                let e = Int(act.selected[s * k + j])
                let g = act.gates[s * k + j]
                let We = W + e * n * m
                let dWe = dW + e * n * m
                let dbe = db + e * n
                let h = act.hidden + (s * k + j) * m
                let pre = act.preact + (s * k + j) * n
                let dh = act.dhidden
                for a in 0..<m { dh[a] = 0 }
                var dg: Float = 0
                for i in 0..<n {
                    let v = pre[i]
                    guard v > 0 else { continue }
                    dg += dxhat[i] * v
                    let dpre = g * dxhat[i]
                    dbe[i] += dpre
                    let wrow = We + i * m
                    let dwrow = dWe + i * m
                    for a in 0..<m {
                        dh[a] += wrow[a] * dpre
                        dwrow[a] += dpre * h[a]
                    }
                }
                act.dgate[j] = dg
                for i in 0..<n {
                    let xi = x[i]
                    if xi == 0 { continue }
                    let dwrow = dWe + i * m
                    for a in 0..<m { dwrow[a] += xi * dh[a] }
                }
            }
            guard routerNeeded else { continue }
            let probs = act.probs + s * E
            let dprob = act.dprob
            for e in 0..<E { dprob[e] = lbCoefficient * act.dispatchFraction[e] }
            if k > 1 {
                var selectedSum: Float = 0
                var weighted: Float = 0
                for j in 0..<k {
                    selectedSum += probs[Int(act.selected[s * k + j])]
                    weighted += act.dgate[j] * act.gates[s * k + j]
                }
                for j in 0..<k {
                    dprob[Int(act.selected[s * k + j])] += (act.dgate[j] - weighted) / selectedSum
                }
            }
            var dot: Float = 0
            for e in 0..<E { dot += probs[e] * dprob[e] }
            for e in 0..<E {
                let dz = probs[e] * (dprob[e] - dot)
                if dz == 0 { continue }
                let row = dG + e * n
                for i in 0..<n { row[i] += dz * x[i] }
            }
        }
    }

    // MARK: - Optimizer

    /// One AdamW step, `torch.optim.AdamW` semantics (no amsgrad, not maximize):
    ///   θ ← θ·(1 − lr·λ);  m ← m + (1−β₁)(g − m)  (PyTorch's `lerp_`);  v ← β₂v + (1−β₂)g²;
    ///   θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
    /// The bias corrections are computed in Double (as PyTorch computes them as Python floats); the element
    /// update is Float32. `step` is t ≥ 1.
    public static func adamW(
        params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, m1: UnsafeMutablePointer<Float>,
        m2: UnsafeMutablePointer<Float>, count: Int, step: Int, lr: Double, beta1: Double, beta2: Double,
        eps: Double, weightDecay: Double
    ) {
        let c = AdamWCoefficients(step: step, lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        let stepSize = c.stepSize, bc2Sqrt = c.bc2Sqrt, decay = c.decay, b2 = c.beta2, e = c.eps, c1 = c.c1, c2 = c.c2
        for i in 0..<count {
            let g = grads[i]
            var p = params[i] * decay
            let mi = m1[i] + c1 * (g - m1[i])
            let vi = m2[i] * b2 + c2 * g * g
            m1[i] = mi
            m2[i] = vi
            let denom = vi.squareRoot() / bc2Sqrt + e
            p -= stepSize * (mi / denom)
            params[i] = p
        }
    }
}

/// The Float32 scalars of one AdamW step (`MoEKernels.adamW`'s formulas): bias corrections in Double, as PyTorch
/// computes them in Python floats, then rounded once. Every AdamW implementation (scalar, SIMD, lockstep) takes its
/// coefficients from here, so they cannot drift apart.
public struct AdamWCoefficients: Sendable, Equatable {
    /// lr / (1 − β₁ᵗ)
    public var stepSize: Float
    /// √(1 − β₂ᵗ)
    public var bc2Sqrt: Float
    /// 1 − lr·λ (decoupled weight decay)
    public var decay: Float
    /// β₂, ε, 1 − β₁, 1 − β₂ in Float32.
    public var beta2: Float
    public var eps: Float
    public var c1: Float
    public var c2: Float

    /// The coefficients of step `step` (t ≥ 1).
    public init(step: Int, lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double) {
        let bc1 = 1 - _pow(beta1, Double(step))
        let bc2 = 1 - _pow(beta2, Double(step))
        stepSize = Float(lr / bc1)
        bc2Sqrt = Float(bc2.squareRoot())
        decay = Float(1 - lr * weightDecay)
        self.beta2 = Float(beta2)
        self.eps = Float(eps)
        c1 = Float(1 - beta1)
        c2 = Float(1 - beta2)
    }
}

/// The kernel implementations training can use, and which one it does. Recorded in every run's provenance.
///
/// The SIMD kernels are one source compiled for three instruction sets (modules `ToyMoEKernelsSIMD`,
/// `ToyMoEKernelsAVX2`, `ToyMoEKernelsAVX512`); `CToyMoECPU` checks at run time which ones this CPU can execute, so
/// the default binary runs on any x86-64 (or arm64) machine and never executes an instruction the CPU lacks.
///
/// Selection, in order: `--kernels` on the command line (which calls `select`), else the environment variable
/// `TOYMOE_KERNELS`, else `auto`. Names: `simd` (the widest SIMD variant this CPU supports), `auto` (the same, but
/// the scalar kernels for tiny models, see `forShape`: measured fastest shape by shape, BENCHMARKS.md), `scalar` (alias `naive`: the portable scalar kernels, the
/// baseline every SIMD kernel is tested against), or one ISA explicitly: `simd-baseline`, `simd-avx2`,
/// `simd-avx512`. Asking for an ISA this CPU lacks is an error, never a SIGILL.
public enum KernelVariant: String, Sendable, CaseIterable {
    /// The portable scalar kernels (`MoEKernels`).
    case scalar
    /// The SIMD kernels built for the baseline ISA (SSE2 on x86-64, NEON on arm64; no FMA).
    case simdBaseline = "simd-baseline"
    /// The SIMD kernels built for x86-64-v3 (AVX2, FMA).
    case simdAVX2 = "simd-avx2"
    /// The SIMD kernels built for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL, FMA).
    case simdAVX512 = "simd-avx512"

    /// Whether this CPU (and OS) can run the variant.
    public var isSupported: Bool {
        switch self {
        case .scalar, .simdBaseline: return true
        case .simdAVX2: return KernelVariant.cpuV3
        case .simdAVX512: return KernelVariant.cpuV4
        }
    }

    /// Whether the variant is one of the SIMD builds.
    public var isSIMD: Bool { self != .scalar }

    private static let cpuV3 = toymoe_cpu_supports_x86_64_v3() != 0
    private static let cpuV4 = toymoe_cpu_supports_x86_64_v4() != 0

    /// The widest SIMD variant this CPU supports.
    public static var bestSIMD: KernelVariant {
        cpuV4 ? .simdAVX512 : cpuV3 ? .simdAVX2 : .simdBaseline
    }

    /// Every variant this CPU can run, portable first.
    public static var supported: [KernelVariant] { allCases.filter(\.isSupported) }

    /// This CPU's brand string ("" if unknown), for provenance and benchmark reports.
    public static var cpuName: String { String(cString: toymoe_cpu_brand()) }

    /// The variant new trainers use. Set it once, before starting threads (the CLI does, from `--kernels`).
    nonisolated(unsafe) public static var selected: KernelVariant = fromEnvironment().variant
    /// The name that was asked for (`auto`, `simd`, `scalar`, an ISA name), kept for provenance.
    nonisolated(unsafe) public static var requested: String = fromEnvironment().name

    /// Under `auto`, models with n·m·k at most this train with the scalar kernels: the per-sample SIMD kernels do
    /// not beat them there (P1 of BENCHMARKS.md: ×0.93–1.09), and the scalar kernels give the bits of lockstep
    /// training (`toymoe.train_many`), so one model trained alone and in a lockstep group agree exactly.
    public static let autoScalarLimit = 16

    /// The variant a trainer of this shape uses: the one forced by name, or under `auto` the scalar kernels for
    /// tiny models (`autoScalarLimit`) and the widest SIMD build otherwise.
    public static func forShape(_ L: MoELayout) -> KernelVariant {
        if requested == "auto" && L.n * L.m * L.active <= autoScalarLimit { return .scalar }
        return selected
    }

    /// What ran, for provenance: the forced variant's name (e.g. `simd-avx2`), or under `auto` the rule, e.g.
    /// `auto: simd-avx2 (scalar where n·m·k ≤ 16)`.
    public static var current: String {
        requested == "auto" ? "auto: \(selected.rawValue) (scalar where n·m·k ≤ \(autoScalarLimit))" : selected.rawValue
    }

    /// Every accepted name, for help texts and error messages.
    public static let acceptedNames = ["auto", "simd", "scalar", "naive"] + allCases.filter(\.isSIMD).map(\.rawValue)

    /// Resolves a name to a variant this CPU can run, or explains why it cannot.
    public static func resolve(_ name: String) -> Result<KernelVariant, KernelSelectionError> {
        switch name {
        case "auto", "simd": return .success(bestSIMD)
        case "scalar", "naive": return .success(.scalar)
        default:
            guard let v = KernelVariant(rawValue: name) else {
                return .failure(KernelSelectionError(
                    message: "unknown kernel variant '\(name)'; expected one of \(acceptedNames.joined(separator: ", "))"))
            }
            guard v.isSupported else {
                return .failure(KernelSelectionError(
                    message: "kernel variant '\(name)' needs an instruction set this CPU lacks"
                        + " (supported here: \(supported.map(\.rawValue).joined(separator: ", ")))"))
            }
            return .success(v)
        }
    }

    /// The variant for a name, or nil when the name is unknown or unsupported here (`resolve` says which).
    public static func parse(_ name: String) -> KernelVariant? {
        try? resolve(name).get()
    }

    /// Selects the variant new trainers use; throws for an unknown or unsupported name.
    public static func select(_ name: String) throws(KernelSelectionError) {
        let v = try resolve(name).get()
        selected = v
        requested = name
    }

    /// The problem with `TOYMOE_KERNELS`, if it is set to something unusable (the CLI reports it; the library
    /// falls back to `auto`).
    public static var environmentError: KernelSelectionError? {
        guard let raw = _environment("TOYMOE_KERNELS") else { return nil }
        if case .failure(let e) = resolve(raw) { return KernelSelectionError(message: "TOYMOE_KERNELS: " + e.message) }
        return nil
    }

    static func fromEnvironment() -> (name: String, variant: KernelVariant) {
        if let raw = _environment("TOYMOE_KERNELS"), let v = parse(raw) { return (raw, v) }
        return ("auto", bestSIMD)
    }
}

/// Why a kernel variant name cannot be used here.
public struct KernelSelectionError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// What one ISA build of the SIMD kernels provides. `MoEKernelsSIMD` of each build module (ToyMoEKernelsSIMD,
/// ToyMoEKernelsAVX2, ToyMoEKernelsAVX512: one source) conforms, so the engine makes its function table for any
/// build with one generic function instead of one hand-written table per module.
public protocol SIMDKernelBuild {
    /// Forward with the shape's code path (`forwardPerSample`, `forwardNarrow` or `forwardTiled`).
    static func forward(params: UnsafePointer<Float>, layout: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations)
    static func forwardPerSample(params: UnsafePointer<Float>, layout: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations)
    static func forwardTiled(params: UnsafePointer<Float>, layout: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations)
    /// Backward with the shape's code path (`backwardPerSample`, `backwardNarrow` or `backwardTiled`).
    static func backward(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations)
    static func backwardPerSample(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations)
    static func backwardTiled(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations)
    /// The feature-major path for narrow experts (m < 8, SIMD over the n features).
    static func forwardNarrow(params: UnsafePointer<Float>, layout: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations)
    static func backwardNarrow(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations)
    static func adamW(
        params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, m1: UnsafeMutablePointer<Float>,
        m2: UnsafeMutablePointer<Float>, count: Int, step: Int, lr: Double, beta1: Double, beta2: Double,
        eps: Double, weightDecay: Double)
    /// Multiply-add throughput probe: 12 SIMD8 chains for `iterations` rounds (flops = iterations · 192).
    static func peakProbe(iterations: Int, scale: Float) -> Float
    /// One lockstep training step of a group (`LockstepKernels.step` of this build).
    static func lockstepStep(_ group: LockstepGroup, lossScale: Double, lbAlpha: Float?, adamW: LockstepAdamW) -> LockstepLosses
}
