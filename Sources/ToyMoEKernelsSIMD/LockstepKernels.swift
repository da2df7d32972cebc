// The lockstep training step (`LockstepKernels.step`): see ToyMoEKernels/Lockstep.swift for the layout, the math and
// why lanes stay bitwise identical to the scalar kernels. Compiled, like MoEKernelsSIMD.swift, once per ISA (the
// AVX2/AVX-512 folders hold symlinks): the AVX2 build does each SIMD8 operation in one YMM instruction, where the
// baseline build needs two SSE ones. It never fuses multiply-adds (no `madd` here), so every build gives the same
// bits.
import ToyMoEKernels

/// The k selection slots of the work area: `SIMD8<Int32>` values stored as their Float bit patterns.
private struct SelectionSlots {
    let base: UnsafeMutablePointer<SIMD8<Float>>
    init(_ base: UnsafeMutablePointer<SIMD8<Float>>) { self.base = base }
    subscript(_ j: Int) -> SIMD8<Int32> {
        @inline(__always) get { unsafeBitCast(base[j], to: SIMD8<Int32>.self) }
        @inline(__always) nonmutating set { base[j] = unsafeBitCast(newValue, to: SIMD8<Float>.self) }
    }
}

public enum LockstepKernels {

    /// One training step for every lane of `group`: fresh batch, forward, loss, backward, AdamW (see the file
    /// comment). `lossScale` is the trainer's (1/B or 1/(B·n)); `lbAlpha` non-nil turns load balancing on.
    /// Allocates nothing.
    public static func step(
        _ group: LockstepGroup, lossScale: Double, lbAlpha: Float?, adamW: LockstepAdamW
    ) -> LockstepLosses {
        let L = group.layout
        // Constant shapes let the compiler unroll every inner loop; the Fig. 4 grid (n 2–3, m 1–2, E 1–3, k = 1)
        // and P1's 3-2-3 k = 2 get their own instances, anything else runs the same code with runtime bounds.
        // (Generic specialization is what makes the shapes constant: one specialized copy of `stepBody` per type.)
        let a = (group, lossScale, lbAlpha, adamW)
        switch (L.n, L.m, L.experts, L.active) {
        case (2, 1, 1, 1): return stepBody(Shape<N2, M1, E1, K1>.self, a)
        case (2, 1, 2, 1): return stepBody(Shape<N2, M1, E2, K1>.self, a)
        case (2, 1, 3, 1): return stepBody(Shape<N2, M1, E3, K1>.self, a)
        case (2, 2, 1, 1): return stepBody(Shape<N2, M2, E1, K1>.self, a)
        case (2, 2, 2, 1): return stepBody(Shape<N2, M2, E2, K1>.self, a)
        case (2, 2, 3, 1): return stepBody(Shape<N2, M2, E3, K1>.self, a)
        case (3, 1, 1, 1): return stepBody(Shape<N3, M1, E1, K1>.self, a)
        case (3, 1, 2, 1): return stepBody(Shape<N3, M1, E2, K1>.self, a)
        case (3, 1, 3, 1): return stepBody(Shape<N3, M1, E3, K1>.self, a)
        case (3, 2, 1, 1): return stepBody(Shape<N3, M2, E1, K1>.self, a)
        case (3, 2, 2, 1): return stepBody(Shape<N3, M2, E2, K1>.self, a)
        case (3, 2, 3, 1): return stepBody(Shape<N3, M2, E3, K1>.self, a)
        case (3, 2, 3, 2): return stepBody(Shape<N3, M2, E3, K2>.self, a)
        default: return stepBody(RuntimeShape.self, a)
        }
    }
}

// MARK: - Shapes as types

/// A compile-time dimension (or nil: take it from the layout at run time).
private protocol Dim { static var value: Int? { get } }
private enum N2: Dim { static var value: Int? { 2 } }
private enum N3: Dim { static var value: Int? { 3 } }
private enum M1: Dim { static var value: Int? { 1 } }
private enum M2: Dim { static var value: Int? { 2 } }
private enum E1: Dim { static var value: Int? { 1 } }
private enum E2: Dim { static var value: Int? { 2 } }
private enum E3: Dim { static var value: Int? { 3 } }
private enum K1: Dim { static var value: Int? { 1 } }
private enum K2: Dim { static var value: Int? { 2 } }
private enum Runtime: Dim { static var value: Int? { nil } }

/// (n, m, E, k) as a type, so that each specialization of `stepBody` sees constant loop bounds.
private protocol ShapeType {
    static func dims(_ L: MoELayout) -> (n: Int, m: Int, E: Int, k: Int)
    static var isFixed: Bool { get }
}
private enum Shape<N: Dim, M: Dim, EE: Dim, K: Dim>: ShapeType {
    static var isFixed: Bool { N.value != nil }
    @inline(__always)
    static func dims(_ L: MoELayout) -> (n: Int, m: Int, E: Int, k: Int) {
        (N.value ?? L.n, M.value ?? L.m, EE.value ?? L.experts, K.value ?? L.active)
    }
}
private typealias RuntimeShape = Shape<Runtime, Runtime, Runtime, Runtime>

// MARK: - The step

/// Eight 64-bit words as their high and low 32-bit halves. xoshiro256++ runs on these in the baseline and AVX2
/// builds: LLVM turns a rotate of 64-bit vector lanes into one scalar `rol` per lane (measured with SSE2 and with
/// AVX2 alike: 16 `rol`s and 32 register transfers per draw), while every 32-bit operation below is a single vector
/// instruction. (The AVX-512 build rotates 64-bit lanes natively and does not use this.)
private struct Words {
    var hi: SIMD8<UInt32>
    var lo: SIMD8<UInt32>

    @inline(__always) init(hi: SIMD8<UInt32>, lo: SIMD8<UInt32>) {
        self.hi = hi
        self.lo = lo
    }

    @inline(__always) init(_ w: SIMD8<UInt64>) {
        hi = SIMD8<UInt32>(truncatingIfNeeded: w &>> SIMD8<UInt64>(repeating: 32))
        lo = SIMD8<UInt32>(truncatingIfNeeded: w)
    }

    @inline(__always) var words: SIMD8<UInt64> {
        (SIMD8<UInt64>(truncatingIfNeeded: hi) &<< SIMD8<UInt64>(repeating: 32)) | SIMD8<UInt64>(truncatingIfNeeded: lo)
    }

    /// a + b mod 2⁶⁴: the carry out of the low halves is the top bit of (a ∧ b) ∨ ((a ∨ b) ∧ ¬(a + b)).
    @inline(__always) static func &+ (a: Words, b: Words) -> Words {
        let lo = a.lo &+ b.lo
        let carry = ((a.lo & b.lo) | ((a.lo | b.lo) & ~lo)) &>> splat(31)
        return Words(hi: a.hi &+ b.hi &+ carry, lo: lo)
    }

    @inline(__always) static func ^ (a: Words, b: Words) -> Words { Words(hi: a.hi ^ b.hi, lo: a.lo ^ b.lo) }

    /// Rotation left by k, 0 < k < 32 (`s` holds k and 32 − k).
    @inline(__always) func rotl(_ s: ShiftPair) -> Words {
        Words(hi: (hi &<< s.k) | (lo &>> s.rest), lo: (lo &<< s.k) | (hi &>> s.rest))
    }

    /// Rotation left by 32 + k, 0 < k < 32 (swap the halves, then rotate by k).
    @inline(__always) func rotl32(plus s: ShiftPair) -> Words { Words(hi: lo, lo: hi).rotl(s) }

    /// Shift left by k, 0 < k < 32.
    @inline(__always) func shl(_ s: ShiftPair) -> Words {
        Words(hi: (hi &<< s.k) | (lo &>> s.rest), lo: lo &<< s.k)
    }
}

/// A shift amount k and 32 − k, read from memory at run time (`LockstepGroup.rngShifts`). With compile-time constants
/// LLVM recognizes `(a << k) | (b >> (32 − k))` as a funnel shift and, for SSE2, lowers it to one scalar `shld` per
/// lane (measured); amounts it cannot see stay two vector shifts and an or. (AVX2 code is vector either way.)
private struct ShiftPair {
    let k: SIMD8<UInt32>
    let rest: SIMD8<UInt32>
    @inline(__always) init(_ table: UnsafePointer<UInt32>, _ i: Int) {
        k = SIMD8(repeating: table[2 * i])
        rest = SIMD8(repeating: table[2 * i + 1])
    }
}

/// Rotation of 64-bit lanes left by a constant k, 0 < k < 64 (the AVX-512 build: LLVM emits one vprolq).
@inline(__always)
private func rotl64(_ x: SIMD8<UInt64>, _ k: UInt64) -> SIMD8<UInt64> {
    (x &<< SIMD8<UInt64>(repeating: k)) | (x &>> SIMD8<UInt64>(repeating: 64 - k))
}

/// A shift amount as a vector (the scalar-operand SIMD operators may take a generic lane-by-lane path).
@inline(__always)
private func splat(_ k: UInt32) -> SIMD8<UInt32> { SIMD8<UInt32>(repeating: k) }

/// The vector (i, i, ..., i). Comparisons are written vector-to-vector: Swift's `SIMD8<Int32> .== Int32` goes
/// through a generic lane-by-lane loop (measured: a stack round trip per lane), the vector-vector form is one pcmpeqd.
@inline(__always)
private func lane(_ i: Int) -> SIMD8<Int32> { SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: i)) }

/// Lane-wise select of per-expert values: `values[e · stride]` for the lane's expert `e` (expert 0 by default).
@inline(__always)
private func gather(
    _ values: UnsafeMutablePointer<SIMD8<Float>>, stride: Int, experts E: Int, expert: SIMD8<Int32>
) -> SIMD8<Float> {
    var v = values[0]
    for e in 1..<Swift.max(E, 1) {
        v = v.replacing(with: values[e * stride], where: expert .== lane(e))
    }
    return v
}

/// acc ← acc + term in the lanes of `mask`, acc unchanged elsewhere (never an added zero).
@inline(__always)
private func add(_ acc: UnsafeMutablePointer<SIMD8<Float>>, _ term: SIMD8<Float>, where mask: SIMDMask<SIMD8<Int32>>) {
    acc.pointee = acc.pointee.replacing(with: acc.pointee + term, where: mask)
}

/// 16 vectors.
private typealias V16 = (
    SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>,
    SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>
)
/// A stack block of 160 vectors (5 KiB) for the work area of the constant shapes.
private struct LocalWork {
    static let capacity = 160
    var storage: (V16, V16, V16, V16, V16, V16, V16, V16, V16, V16)
    init() {
        let z = SIMD8<Float>()
        let v: V16 = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
        storage = (v, v, v, v, v, v, v, v, v, v)
    }
}

/// The whole step, specialized per shape type (see `LockstepKernels.step`). The work area (per-sample scratch, a
/// copy of the parameters and data vectors, the gradient accumulators) lives on the stack for the constant shapes:
/// the compiler then knows it aliases nothing else, and with every index constant after unrolling it keeps those
/// values in registers (or plain spill slots) instead of re-loading them after every store to the heap. Measured:
/// with the work area in the group's heap block, a third of the time went to such loads and stores.
@inline(never)
private func stepBody<Sh: ShapeType>(
    _ shape: Sh.Type, _ args: (LockstepGroup, Double, Float?, LockstepAdamW)
) -> LockstepLosses {
    let g = args.0
    if Sh.isFixed && lockstepWorkCount(g.layout) <= LocalWork.capacity {
        var local = LocalWork()
        return withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: SIMD8<Float>.self, capacity: LocalWork.capacity) { stepCore(Sh.self, args, $0) }
        }
    }
    return stepCore(Sh.self, args, g.scratch)
}

/// `LockstepScratch`'s offsets computed here from (n, m, E, k), so that they are compile-time constants in the
/// fixed-shape instances (LockstepScratch's initializer lives in another module and stays opaque to the compiler).
private struct WorkOffsets {
    let probs, gates, weights, bias, hidden, preact, xhat, dxhat, dhidden, dgate, dispatch, probSum, dprob, count: Int
    @inline(__always) init(n: Int, m: Int, E: Int, k: Int) {
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

/// Vectors of the work area: scratch, parameters, gradients, p, I, scale, selection.

@inline(__always)
private func stepCore<Sh: ShapeType>(
    _ shape: Sh.Type, _ args: (LockstepGroup, Double, Float?, LockstepAdamW), _ w: UnsafeMutablePointer<SIMD8<Float>>
) -> LockstepLosses {
    let (g, lossScale, lbAlpha, adamW) = args
    let L = g.layout
    let (n, m, E, k) = Sh.dims(L)
    let B = g.batch
    // Offsets from the shape type's dims (constants for the fixed shapes), not from the group's layout (run-time
    // values to the compiler): with every offset into the stack work area a constant, the compiler can keep the
    // work area's vectors (gradient accumulators, selected weights, ...) in registers across the sample loop
    // instead of loading and storing them per sample. The numbers are the layout's (checked).
    let count = E * n * m + 2 * E * n  // MoELayout.count
    let S = WorkOffsets(n: n, m: m, E: E, k: k)
    precondition(count == L.count && S.count == LockstepScratch(L).count, "LockstepKernels: work-area offsets")
    let probs = w + S.probs, gates = w + S.gates, selW = w + S.weights, selB = w + S.bias, hidden = w + S.hidden
    let preact = w + S.preact, xhat = w + S.xhat, dxhat = w + S.dxhat, dh = w + S.dhidden, dgate = w + S.dgate
    let dispatch = w + S.dispatch, probSum = w + S.probSum, dprob = w + S.dprob
    let params = w + S.count, grads = params + count
    let probability = grads + count, importance = probability + n, scale = importance + n
    // The selected experts (Int32 lanes) are kept as Float bit patterns, so the whole work area is one type.
    let selStore = scale + n
    let sel = SelectionSlots(selStore)
    for p in 0..<count { params[p] = g.params[p] }
    for i in 0..<n {
        probability[i] = g.probability[i]
        importance[i] = g.importance[i]
        scale[i] = g.scale[i]
    }
    let W = params, bias = params + E * n * m, G = params + E * n * m + E * n  // MoELayout's W | b | G
    let dW = grads, db = grads + E * n * m, dG = grads + E * n * m + E * n
    let stash = g.stash, stride = g.stashStride
    let lb = lbAlpha != nil
    let routerNeeded = E > 1 && (k > 1 || lb)
    let lowest = g.tieBreak == .lowestIndex
    let scaled = g.scaled
    // As in `MoEKernels.backward`: dx̂ = ((2·scale)·I)·(x̂ − x) with scale rounded to Float.
    let twoScale = SIMD8<Float>(repeating: 2 * Float(lossScale))
    let zero = SIMD8<Float>(), one = SIMD8<Float>(repeating: 1), infinity = SIMD8<Float>(repeating: .infinity)
    let nm = n * m

    for p in 0..<count { grads[p] = zero }
    for e in 0..<E {
        dispatch[e] = zero
        probSum[e] = zero
    }
    var reconTotal = SIMD8<Double>()

    #if TOYMOE_AVX512
    var s0 = g.rngState[0], s1 = g.rngState[1], s2 = g.rngState[2], s3 = g.rngState[3]
    #else
    var s0 = Words(g.rngState[0]), s1 = Words(g.rngState[1]), s2 = Words(g.rngState[2]), s3 = Words(g.rngState[3])
    let rot23 = ShiftPair(g.rngShifts, 0), shl17 = ShiftPair(g.rngShifts, 1), rot13 = ShiftPair(g.rngShifts, 2)
    let by16 = ShiftPair(g.rngShifts, 3)
    #endif
    var tileStart = 0
    while tileStart < B {
        let tileCount = Swift.min(LockstepGroup.tileSize, B - tileStart)
        // Draw the tile: per sample, per feature, one 64-bit xoshiro256++ output per lane → (u, r) exactly as
        // `RandomStream.nextFloatPair` (both conversions are exact: 24-bit integers times 2⁻²⁴), x = r ≤ p ? u : +0,
        // then x *= scale.
        for s in 0..<tileCount {
            let x = stash + (tileStart + s) * stride
            for i in 0..<n {
                // RandomStream.next(): result = rotl(s0 + s3, 23) + s0; t = s1 << 17; s2 ^= s0; s3 ^= s1;
                // s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45).
                #if TOYMOE_AVX512
                // AVX-512 has 64-bit vector adds, shifts and rotates (vprolq): one ZMM instruction per operation.
                let word = rotl64(s0 &+ s3, 23) &+ s0
                let t = s1 &<< SIMD8<UInt64>(repeating: 17)
                s2 ^= s0
                s3 ^= s1
                s1 ^= s2
                s0 ^= s3
                s2 ^= t
                s3 = rotl64(s3, 45)
                let uBits = SIMD8<UInt32>(truncatingIfNeeded: word &>> SIMD8<UInt64>(repeating: 40))
                let rBits = SIMD8<UInt32>(truncatingIfNeeded: word &>> SIMD8<UInt64>(repeating: 16)) & splat(0xFF_FFFF)
                #else
                let word = (s0 &+ s3).rotl(rot23) &+ s0
                let t = s1.shl(shl17)
                s2 = s2 ^ s0
                s3 = s3 ^ s1
                s1 = s1 ^ s2
                s0 = s0 ^ s3
                s2 = s2 ^ t
                s3 = s3.rotl32(plus: rot13)
                // word >> 40 = hi >> 8; (word >> 16) & 0xFFFFFF = (lo >> 16 | hi << 16) & 0xFFFFFF. Both < 2²⁴.
                let uBits = word.hi &>> splat(8)
                let rBits = ((word.lo &>> by16.k) | (word.hi &<< by16.rest)) & splat(0xFF_FFFF)
                #endif
                let u = SIMD8<Float>(unsafeBitCast(uBits, to: SIMD8<Int32>.self)) * 0x1p-24
                let r = SIMD8<Float>(unsafeBitCast(rBits, to: SIMD8<Int32>.self)) * 0x1p-24
                var v = zero.replacing(with: u, where: r .<= probability[i])
                if scaled { v = v * scale[i] }
                x[i] = v
            }
        }

        // Phase A: the router of every sample of the tile (MoEKernels.route + selectTopK) into the sample's stash row
        // (π, selection, gates), and the load-balancing sums f and P in sample order, in three loops over the tile:
        //   A1: logits, zmax (Swift.max: the later index on ties), the lane's argmax, the exponents z_e − zmax;
        //   A2: kernelExp of the exponents that need it, two samples' vectors per SIMD16 call;
        //   A3: softmax, top-k, gates, load-balancing sums.
        // Why: one sample's router is a long chain of dependent operations (dot products, the exp polynomial, a
        // division). In one loop over samples, consecutive samples' chains hardly overlapped (perf: the hot spots
        // were the exp polynomial's steps; the step was latency-bound). A SIMD16 exp runs two independent chains in
        // one instruction stream (one ZMM instruction per step in the AVX-512 build, two interleaved YMM ones in the
        // AVX2 build). Every lane still gets exactly the scalar router's values.
        if E == 1 {
            // π = 1, expert 0, gate 1 (MoEKernels.route with one expert): only the load-balancing sums move (the
            // select of `add` under an all-true mask is the plain sum).
            if lb {
                for _ in 0..<tileCount {
                    dispatch[0] += one
                    probSum[0] += one
                }
            }
        } else {
            let exps = g.exponents
            var finite = SIMDMask<SIMD8<Int32>>(repeating: true)
            for s in 0..<tileCount {
                let x = stash + (tileStart + s) * stride
                let r = x + n
                for e in 0..<E {
                    let row = G + e * n
                    var z = zero
                    for i in 0..<n { z += row[i] * x[i] }
                    probs[e] = z
                }
                var zmax = SIMD8<Float>(repeating: -.infinity)
                var imax = SIMD8<Int32>()
                for e in 0..<E {
                    let take = probs[e] .>= zmax
                    zmax = zmax.replacing(with: probs[e], where: take)
                    imax.replace(with: lane(e), where: take)
                }
                finite .&= (zmax - zmax) .== zero
                for e in 0..<E { r[e] = probs[e] - zmax }
                r[E] = unsafeBitCast(imax, to: SIMD8<Float>.self)  // until A3 stores the selection there
                // Where zmax is finite, the argmax's exponent is zmax − zmax = +0 and kernelExp(+0) = 1 exactly: only
                // the E − 1 others need the polynomial, packed into E − 1 vectors (slot j: expert j below the lane's
                // argmax, j + 1 above it). E = 2 costs one kernelExp instead of two, E = 3 two instead of three.
                for j in 0..<(E - 1) {
                    exps[s * (E - 1) + j] = r[j].replacing(with: r[j + 1], where: imax .<= lane(j))
                }
            }
            // If some lane's zmax is not finite (overflowed logits or NaN: a diverging model), the whole tile takes
            // the general path, E exps per sample in A3.
            let fast = all(finite)
            if fast {
                let count = tileCount * (E - 1)
                var q = 0
                while q + 1 < count {
                    let v = kernelExp(SIMD16(lowHalf: exps[q], highHalf: exps[q + 1]))
                    exps[q] = v.lowHalf
                    exps[q + 1] = v.highHalf
                    q += 2
                }
                if q < count { exps[q] = kernelExp(exps[q]) }
            }
            for s in 0..<tileCount {
                let x = stash + (tileStart + s) * stride
                let r = x + n
                let imax = unsafeBitCast(r[E], to: SIMD8<Int32>.self)
                var total = zero
                if fast {
                    let ex = exps + s * (E - 1)
                    for e in 0..<E {
                        var v = one
                        if e > 0 { v = v.replacing(with: ex[e - 1], where: imax .< lane(e)) }
                        if e < E - 1 { v = v.replacing(with: ex[e], where: imax .> lane(e)) }
                        probs[e] = v
                        total += v
                    }
                } else {
                    for e in 0..<E {
                        let v = kernelExp(r[e])
                        probs[e] = v
                        total += v
                    }
                }
                let inv = 1 / total
                for e in 0..<E { probs[e] *= inv }
                var selectedSum = zero
                for j in 0..<k {
                    var best = SIMD8<Int32>(repeating: -1)
                    var bestValue = SIMD8<Float>(repeating: -.infinity)
                    for e in 0..<E {
                        var taken = SIMDMask<SIMD8<Int32>>()
                        for t in 0..<j { taken .|= sel[t] .== lane(e) }
                        let v = probs[e]
                        let better = lowest ? v .> bestValue : v .>= bestValue
                        let take = .!taken .& (best .< SIMD8<Int32>() .| better)
                        best.replace(with: lane(e), where: take)
                        bestValue.replace(with: v, where: take)
                    }
                    sel[j] = best
                    gates[j] = bestValue  // π of the selected expert; divided below
                    selectedSum += bestValue
                }
                if k == 1 && all(selectedSum .> zero .& selectedSum .< infinity) {
                    // x / x = 1 exactly for every finite positive x: the one gate is 1 without the division.
                    gates[0] = one
                } else {
                    for j in 0..<k { gates[j] = gates[j] / selectedSum }
                }
                if lb {
                    for j in 0..<k {
                        for e in 0..<E { add(dispatch + e, one, where: sel[j] .== lane(e)) }
                    }
                    for e in 0..<E { probSum[e] += probs[e] }
                }
                if routerNeeded { for e in 0..<E { r[e] = probs[e] } }
                for j in 0..<k {
                    r[E + j] = unsafeBitCast(sel[j], to: SIMD8<Float>.self)
                    r[E + k + j] = gates[j]
                }
            }
        }

        // Phase B: per sample, the forward pass, the loss row and the expert part of the backward pass.
        for s in tileStart..<(tileStart + tileCount) {
            let x = stash + s * stride
            let r = x + n
            if E == 1 {
                sel[0] = SIMD8()
                gates[0] = one
            } else {
                for j in 0..<k {
                    sel[j] = unsafeBitCast(r[E + j], to: SIMD8<Int32>.self)
                    gates[j] = r[E + k + j]
                }
            }
            // Forward (MoEKernels.forward): per slot, gather the selected expert's W and b, encode, decode.
            for i in 0..<n { xhat[i] = zero }
            for j in 0..<k {
                let e = sel[j]
                let gate = gates[j]
                let We = selW + j * nm, be = selB + j * n, h = hidden + j * m, pre = preact + j * n
                for p in 0..<nm { We[p] = gather(W + p, stride: nm, experts: E, expert: e) }
                for i in 0..<n { be[i] = gather(bias + i, stride: n, experts: E, expert: e) }
                for a in 0..<m { h[a] = zero }
                for i in 0..<n {
                    let xi = x[i]
                    let nonzero = xi .!= 0
                    for a in 0..<m { add(h + a, We[i * m + a] * xi, where: nonzero) }
                }
                for i in 0..<n {
                    var v = be[i]
                    for a in 0..<m { v += We[i * m + a] * h[a] }
                    pre[i] = v
                    add(xhat + i, gate * v, where: v .> 0)
                }
            }

            // Loss row (MoEKernels.reconstructionLoss): Σ_i (I_i·d)·d in Float, then added in Double.
            var row = zero
            for i in 0..<n {
                let d = x[i] - xhat[i]
                row += importance[i] * d * d
            }
            reconTotal += SIMD8<Double>(row)

            // Backward, expert part (MoEKernels.backward).
            for i in 0..<n { dxhat[i] = twoScale * importance[i] * (xhat[i] - x[i]) }
            for j in 0..<k {
                let e = sel[j]
                let gate = gates[j]
                let We = selW + j * nm, h = hidden + j * m, pre = preact + j * n
                for a in 0..<m { dh[a] = zero }
                var dg = zero
                for i in 0..<n {
                    let v = pre[i]
                    let positive = v .> 0
                    dg = dg.replacing(with: dg + dxhat[i] * v, where: positive)
                    let dpre = gate * dxhat[i]
                    for a in 0..<m { add(dh + a, We[i * m + a] * dpre, where: positive) }
                }
                dgate[j] = dg
                // db and dW. The scalar backward adds dpre_i·h_a to dW[e][i][a] in a first loop over i and x_i·dh_a
                // in a second one (dh needs every i first); no other term reaches that entry in between, so both
                // are added here in that order with one load and one store of the entry.
                for i in 0..<n {
                    let positive = pre[i] .> 0
                    let dpre = gate * dxhat[i]  // the same product as above: the same bits
                    let xi = x[i]
                    let nonzero = xi .!= 0
                    for ex in 0..<E {
                        let isExpert = e .== lane(ex)
                        let first = positive .& isExpert, second = nonzero .& isExpert
                        add(db + ex * n + i, dpre, where: first)
                        for a in 0..<m {
                            let entry = dW + ex * nm + i * m + a
                            var acc = entry.pointee
                            acc = acc.replacing(with: acc + dpre * h[a], where: first)
                            acc = acc.replacing(with: acc + xi * dh[a], where: second)
                            entry.pointee = acc
                        }
                    }
                }
            }

            if routerNeeded && k > 1 { for j in 0..<k { r[E + 2 * k + j] = dgate[j] } }
        }
        tileStart += tileCount
    }
    #if TOYMOE_AVX512
    g.rngState[0] = s0
    g.rngState[1] = s1
    g.rngState[2] = s2
    g.rngState[3] = s3
    #else
    g.rngState[0] = s0.words
    g.rngState[1] = s1.words
    g.rngState[2] = s2.words
    g.rngState[3] = s3.words
    #endif

    let reconstruction = reconTotal * SIMD8<Double>(repeating: lossScale)

    // Load balancing (MoEKernels.loadBalancing): f_e = count·(1/B), P_e = sum·(1/B), α·E·Σ_e f_e P_e in Double.
    var lbLoss = SIMD8<Double>()
    if let alpha = lbAlpha {
        let invB = SIMD8<Float>(repeating: 1 / Float(B))
        var value = SIMD8<Double>()
        for e in 0..<E {
            dispatch[e] *= invB
            probSum[e] *= invB
            value += SIMD8<Double>(dispatch[e]) * SIMD8<Double>(probSum[e])
        }
        lbLoss = SIMD8<Double>(repeating: Double(alpha) * Double(E)) * value
    }

    // Pass 2: router gradient (MoEKernels.backward's router part), sample by sample from the stash.
    if routerNeeded {
        let lbCoefficient = SIMD8<Float>(repeating: lbAlpha.map { $0 * Float(E) / Float(B) } ?? 0)
        if !lb { for e in 0..<E { dispatch[e] = zero } }
        for s in 0..<B {
            let x = stash + s * stride
            let p = x + n
            for e in 0..<E { dprob[e] = lbCoefficient * dispatch[e] }
            if k > 1 {
                var selectedSum = zero
                var weighted = zero
                for j in 0..<k {
                    let e = unsafeBitCast(p[E + j], to: SIMD8<Int32>.self)
                    selectedSum += gather(p, stride: 1, experts: E, expert: e)
                    weighted += p[E + 2 * k + j] * p[E + k + j]
                }
                for j in 0..<k {
                    let e = unsafeBitCast(p[E + j], to: SIMD8<Int32>.self)
                    let q = (p[E + 2 * k + j] - weighted) / selectedSum
                    for ex in 0..<E { add(dprob + ex, q, where: e .== lane(ex)) }
                }
            }
            var dot = zero
            for e in 0..<E { dot += p[e] * dprob[e] }
            for e in 0..<E {
                let dz = p[e] * (dprob[e] - dot)
                let nonzero = dz .!= 0
                for i in 0..<n { add(dG + e * n + i, dz * x[i], where: nonzero) }
            }
        }
    }

    // AdamW (MoEKernels.adamW), lane-wise coefficients.
    let m1 = g.moment1, m2 = g.moment2, out = g.params
    for i in 0..<count {
        let gr = grads[i]
        var p = params[i] * adamW.decay
        let mi = m1[i] + adamW.c1 * (gr - m1[i])
        let vi = m2[i] * adamW.beta2 + adamW.c2 * gr * gr
        m1[i] = mi
        m2[i] = vi
        let denom = vi.squareRoot() / adamW.bc2Sqrt + adamW.eps
        p -= adamW.stepSize * (mi / denom)
        out[i] = p
    }
    return LockstepLosses(reconstruction: reconstruction, loadBalancing: lbLoss)
}

extension MoEKernelsSIMD: SIMDKernelBuild {
    public static func lockstepStep(
        _ group: LockstepGroup, lossScale: Double, lbAlpha: Float?, adamW: LockstepAdamW
    ) -> LockstepLosses {
        LockstepKernels.step(group, lossScale: lossScale, lbAlpha: lbAlpha, adamW: adamW)
    }
}
