// Lockstep training: one training step for up to 8 models at once, one model per SIMD lane.
//
// Why: the paper's Fig. 4 trains ~181,000 models with n ≤ 3 features, m ≤ 2 hidden, E ≤ 3 experts. A single such
// model has a dozen parameters, far too few for any vector instruction; eight of them side by side fill a SIMD8
// register and every instruction does eight models' work (the authors used `torch.vmap` for the same reason).
//
// Layout (structure of arrays, lane = model): every per-model scalar becomes one `SIMD8<Float>` whose lane l belongs
// to model l of the group. Parameters, gradients and AdamW moments keep `MoELayout`'s flat order (W | b | G), one
// vector per parameter index: `params[p][l]` is parameter p of model l. Data vectors (p_i, I_i, scale_i) and the
// xoshiro256++ state (four `SIMD8<UInt64>`) are per lane too. Lanes past `laneCount` are padding: they carry copies
// of lane 0 and their results are ignored.
//
// Bitwise identity with the scalar kernels (`MoEKernels`) is the contract: lane l computes exactly the operations
// the scalar kernels perform for model l, in the same order, in IEEE single precision (Double where the scalar code
// uses Double):
//   - every accumulator starts at +0 and receives its terms in the same (sample, slot, feature) order;
//   - no fused multiply-add (`a * b + c` is a rounded multiply then a rounded add, as in the scalar code);
//   - where the scalar code skips work (`if x_i == 0`, `guard pre > 0`, unselected experts, `dz == 0`), a lane-wise
//     select (`replacing(with:where:)`) keeps the old value instead of adding a masked-to-zero term: adding 0 could
//     still turn -0 into +0 or otherwise change bits, a select never does;
//   - experts differ per lane, so reading "the selected expert's weights" is a select chain over the E experts
//     (E ≤ 3 here), and accumulating into "the selected expert's gradient" is one select per expert;
//   - softmax uses `kernelExp` (Exp.swift), whose scalar and SIMD forms agree bit for bit;
//   - AdamW takes its Float scalars from `AdamWCoefficients`, lane by lane (lanes differ in lr under early stop).
//
// One step, per group (B = batch, n, m, E, k as in MoEKernels.swift):
//   pass 1, in tiles of `tileSize` samples: draw the tile's inputs (vectorized xoshiro256++, each lane's stream
//     advanced exactly as `RandomStream.nextFloatPair` would); the router of every sample of the tile (logits,
//     softmax, top-k, renormalized gates, the load-balancing counts f and sums P) in loops of its own, so that the
//     long dependency chains of several samples overlap (the exps run two samples per SIMD16 call, and the argmax's
//     exp, exactly 1, is skipped where zmax is finite); then per sample: sparse forward, the sample's loss row
//     (Double accumulation as `reconstructionLoss`), and the expert part of the backward pass (dW, db). The per-sample
//     intermediates, a copy of the parameters and data vectors and the gradient accumulators live in a work area on
//     the stack (see `stepBody`); nothing of size B is kept except the router stash below.
//   between passes: L_LB from f and P (needs the whole batch);
//   pass 2 (only if the router has a gradient: E > 1 and (k > 1 or LB)): dG from the stashed x, π (and, for k > 1,
//     the selection, gates and dL/dg), because dL/dπ contains α·E·f_e/B, known only after pass 1. The two passes
//     touch disjoint gradient entries (dW, db vs dG), so every entry still receives its terms in sample order.
//   AdamW over all parameter vectors.
//
// This file holds the group's state and the types the step shares with its caller; the step itself
// (`LockstepKernels`, ToyMoEKernelsSIMD/LockstepKernels.swift) is compiled once per ISA like the other SIMD kernels
// and uses only this module's public API (`MoELayout`, `TieBreak`, `AdamWCoefficients`, `kernelExp`,
// `RandomStream.state`, the group and `LockstepScratch`).

/// Up to 8 models of one shape, trained in lockstep by `LockstepKernels.step`. Owns all per-lane state; allocates
/// everything once, at creation.
public final class LockstepGroup: @unchecked Sendable {
    /// Models per group: the SIMD width.
    public static let width = 8
    /// Samples per tile of pass 1: their inputs are drawn together, then processed while still in L1.
    public static let tileSize = 32

    public let layout: MoELayout
    public let batch: Int
    public let tieBreak: TieBreak
    /// Lanes that hold real models (1...8); the others are padding.
    public let laneCount: Int
    /// Whether any lane scales its inputs (lanes without a scale use 1, which multiplies exactly).
    public private(set) var scaled = false

    /// (layout.count) vectors each: parameters, AdamW first and second moments. (The gradient lives only inside a
    /// step, in its work area.)
    public let params, moment1, moment2: UnsafeMutablePointer<SIMD8<Float>>
    /// (n) vectors each: feature probability p_i, importance I_i, input scale.
    public let probability, importance, scale: UnsafeMutablePointer<SIMD8<Float>>
    /// xoshiro256++ state words s0...s3, one stream per lane.
    public let rngState: UnsafeMutablePointer<SIMD8<UInt64>>
    /// The generator's shift amounts as (k, 32 − k) pairs: 23, 17, 13 (see `ShiftPair`), and 16 twice.
    public let rngShifts: UnsafeMutablePointer<UInt32>

    /// Router stash (B rows of `stashStride` vectors): x (n), π (E), the selection (k, Int32 bits), the gates (k),
    /// and for k > 1 dL/dg (k). Rows of the current tile also carry pass 1's inputs and its router results from the
    /// router phase to the forward/backward phase.
    public let stash: UnsafeMutablePointer<SIMD8<Float>>
    public let stashStride: Int
    /// The work area of shapes without a specialization (see `stepBody`).
    public let scratch: UnsafeMutablePointer<SIMD8<Float>>
    /// The router's exponents of one tile (tileSize · max(E − 1, 1) vectors), evaluated together between the
    /// router's loops (see LockstepKernels.swift, phase A).
    public let exponents: UnsafeMutablePointer<SIMD8<Float>>

    public init(layout: MoELayout, batch: Int, tieBreak: TieBreak, laneCount: Int) {
        precondition(laneCount >= 1 && laneCount <= Self.width, "LockstepGroup: laneCount must be in 1...8")
        precondition(batch >= 1, "LockstepGroup: batch must be positive")
        self.layout = layout
        self.batch = batch
        self.tieBreak = tieBreak
        self.laneCount = laneCount
        let count = layout.count, n = layout.n
        func vectors(_ c: Int) -> UnsafeMutablePointer<SIMD8<Float>> {
            let p = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: Swift.max(c, 1))
            p.initialize(repeating: SIMD8(), count: Swift.max(c, 1))
            return p
        }
        params = vectors(count)
        moment1 = vectors(count)
        moment2 = vectors(count)
        probability = vectors(n)
        importance = vectors(n)
        scale = vectors(n)
        scale.update(repeating: SIMD8(repeating: 1), count: n)
        rngState = .allocate(capacity: 4)
        rngState.initialize(repeating: SIMD8(), count: 4)
        rngShifts = .allocate(capacity: 8)
        rngShifts.initialize(from: [23, 9, 17, 15, 13, 19, 16, 16], count: 8)
        let k = layout.active
        stashStride = n + layout.experts + 2 * k + (k > 1 ? k : 0)
        stash = vectors(batch * stashStride)
        scratch = vectors(lockstepWorkCount(layout))
        exponents = vectors(Self.tileSize * Swift.max(layout.experts - 1, 1))
    }

    deinit {
        for p in [params, moment1, moment2, probability, importance, scale, stash, scratch, exponents] { p.deallocate() }
        rngState.deallocate()
        rngShifts.deallocate()
    }

    /// Loads model `lane`: its parameters (layout.count Floats), data vectors (n each; `scale` nil means none), and
    /// its data stream. Moments start at zero. Lane 0 is also copied into every padding lane, so set lane 0 first
    /// (or at least once).
    public func setLane(
        _ lane: Int, parameters: UnsafePointer<Float>, probability p: UnsafePointer<Float>,
        importance imp: UnsafePointer<Float>, scale sc: UnsafePointer<Float>?, rng: RandomStream
    ) {
        precondition(lane >= 0 && lane < laneCount, "LockstepGroup.setLane: lane out of range")
        let lanes = lane == 0 ? [0] + Array(laneCount..<Self.width) : [lane]
        let (r0, r1, r2, r3) = rng.state
        if sc != nil { scaled = true }
        for l in lanes {
            for i in 0..<layout.count {
                params[i][l] = parameters[i]
                moment1[i][l] = 0
                moment2[i][l] = 0
            }
            for i in 0..<layout.n {
                probability[i][l] = p[i]
                importance[i][l] = imp[i]
                scale[i][l] = sc?[i] ?? 1
            }
            rngState[0][l] = r0
            rngState[1][l] = r1
            rngState[2][l] = r2
            rngState[3][l] = r3
        }
    }

    /// Copies lane `lane`'s parameters (layout.count Floats) out.
    public func copyParameters(lane: Int, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<layout.count { out[i] = params[i][lane] }
    }

    /// Lane `lane`'s data stream as it stands (after the draws of the steps taken so far).
    public func randomStream(lane: Int) -> RandomStream {
        var r = RandomStream(seed: 0)
        r.state = (rngState[0][lane], rngState[1][lane], rngState[2][lane], rngState[3][lane])
        return r
    }
}

/// Per-lane AdamW scalars of one step (`AdamWCoefficients` per lane; lanes differ when early stop lowered some
/// lanes' learning rate).
public struct LockstepAdamW {
    public var stepSize: SIMD8<Float>
    public var decay: SIMD8<Float>
    public var bc2Sqrt: SIMD8<Float>
    public var beta2: SIMD8<Float>
    public var eps: SIMD8<Float>
    public var c1: SIMD8<Float>
    public var c2: SIMD8<Float>

    /// Every lane with the same coefficients.
    public init(_ c: AdamWCoefficients) {
        stepSize = SIMD8(repeating: c.stepSize)
        decay = SIMD8(repeating: c.decay)
        bc2Sqrt = SIMD8(repeating: c.bc2Sqrt)
        beta2 = SIMD8(repeating: c.beta2)
        eps = SIMD8(repeating: c.eps)
        c1 = SIMD8(repeating: c.c1)
        c2 = SIMD8(repeating: c.c2)
    }

    /// Sets one lane's coefficients.
    public mutating func setLane(_ lane: Int, _ c: AdamWCoefficients) {
        stepSize[lane] = c.stepSize
        decay[lane] = c.decay
        bc2Sqrt[lane] = c.bc2Sqrt
        beta2[lane] = c.beta2
        eps[lane] = c.eps
        c1[lane] = c.c1
        c2[lane] = c.c2
    }
}

/// Offsets of the per-sample scratch block (in vectors), shared by the group (which sizes it) and the step.
public struct LockstepScratch {
    public let probs: Int  // E: logits, then π
    public let gates: Int  // k: renormalized gates
    public let weights: Int  // k·n·m: the selected expert's W, per slot
    public let bias: Int  // k·n: the selected expert's b, per slot
    public let hidden: Int  // k·m
    public let preact: Int  // k·n
    public let xhat: Int  // n
    public let dxhat: Int  // n
    public let dhidden: Int  // m
    public let dgate: Int  // k
    public let dispatch: Int  // E: Σ_b [e selected] (then f_e)
    public let probSum: Int  // E: Σ_b π_e (then P_e)
    public let dprob: Int  // E
    public let count: Int

    public init(_ L: MoELayout) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        probs = 0
        gates = probs + E
        weights = gates + k
        bias = weights + k * n * m
        hidden = bias + k * n
        preact = hidden + k * m
        xhat = preact + k * n
        dxhat = xhat + n
        dhidden = dxhat + n
        dgate = dhidden + m
        dispatch = dgate + k
        probSum = dispatch + E
        dprob = probSum + E
        count = dprob + E
    }
}

/// Vectors of a group's work area for shapes without a specialization: the per-sample scratch, a copy of the
/// parameters and the gradient accumulators, the data vectors, and the k selection slots.
public func lockstepWorkCount(_ L: MoELayout) -> Int { LockstepScratch(L).count + 2 * L.count + 3 * L.n + L.active }

/// The (per-lane) losses of one lockstep step, as `MoEKernels.reconstructionLoss` and `MoEKernels.loadBalancing`
/// would return them for each lane's model (load balancing 0 when off).
public struct LockstepLosses {
    public var reconstruction: SIMD8<Double>
    public var loadBalancing: SIMD8<Double>

    public init(reconstruction: SIMD8<Double>, loadBalancing: SIMD8<Double>) {
        self.reconstruction = reconstruction
        self.loadBalancing = loadBalancing
    }
}
