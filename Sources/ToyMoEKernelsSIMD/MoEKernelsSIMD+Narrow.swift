// Feature-major forward/backward for every shape with n ≥ 8 that the tiled path does not take (see `usesNarrowPath`:
// m < 8, e.g. Fig. 3's 4 experts of m = 5, 10 of m = 2, 20 of m = 1; routed experts with m < 16, e.g. Table 1's 10 of
// m = 10; and experts of any m with 8 ≤ n < 16), compiled, like MoEKernelsSIMD.swift, once per ISA (the AVX2/AVX-512
// folders hold symlinks to this file).
//
// The tiled path vectorizes over the hidden dimension padded to a multiple of 8 lanes, and the per-sample path over m,
// so with m = 1 … 7 most lanes idle (m = 1: one lane of eight) and the scalar tails dominate. Here every vector
// runs over the n features instead (8 features per SIMD8, n padded to np = n rounded up to 8), with the weights
// repacked once per call in feature-major order:
//
//   Wt (E·m, np)  Wt[e·m + a, i] = W[e, i, a]                     decoder rows, contiguous over features
//   bp (E, np)    b_e, padded
//   R  (n, rp)    per feature i: [G[0, i] … G[E−1, i] | W[0, i, 0…m−1] … W[E−1, i, 0…m−1] | 0 …]
//                 the router columns when E > 1, then every expert's encoder when `encodesAllExperts`
//                 (E·m ≤ 32), padded to rp = a multiple of 8
//
// forward, per sample:  [z | h_all] = Σ_{i: x_i ≠ 0} x_i · R[i, :]          one sparse pass for logits and encoders
//                       π, T, g: softmax and top-k with `MoEKernels.selectTopK`'s rules (`selectTopK` below)
//                       per slot (e, g): pre = Σ_a h_a · Wt[e·m + a, :] + b_e,  x̂ += g · ReLU(pre)
// backward, per sample: dx̂ = c ⊙ (x̂ − x), c = 2 · lossScale · I
//                       per slot: dpre = g · dx̂ ⊙ [pre > 0],  dg = Σ_i dx̂_i · ReLU(pre_i),  db_e += dpre,
//                                 dh_a = dpre · Wt[e·m + a, :],  dWt[e·m + a, :] += h_a · dpre + dh_a · x
//                       router (E > 1 and k > 1 or LB on): dz = π ⊙ (dπ − π·dπ) as in the scalar kernel,
//                                 dGt[i, :] += x_i · dz over the nonzero x_i (E lanes per feature)
//                       then dWt, db and dGt are transposed back and added to the caller's gradients once per call.
//
// With E·m > 32 the encoders are not all computed: each selected expert's h is encoded from W's rows instead.
// Packing and unpacking cost O(E·n·m) per call against O(B·k·n·m) of work. Scratch comes from
// `withUnsafeTemporaryAllocation` once per call (tens of KB at the Fig. 3 shapes, about 90 KB at Table 1's).
//
// The results equal the scalar kernels' up to Float rounding: sums run in another order (per lane, over features
// in batch order; x̂ accumulates the slots in selection order as the scalar kernel does), FMA where the module has
// it. The softmax, the top-k choice and the gates are computed with the scalar kernel's operations from the logits,
// so given the same logits they are bitwise the scalar kernel's (tested); the logits themselves are sums in
// another order.
import ToyMoEKernels

// File-private copies on purpose (see MoEKernelsSIMD+Tiled.swift: debug builds compile each file separately).
@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

@inline(__always)
private func splat(_ x: Float) -> SIMD8<Float> { SIMD8(repeating: x) }

@inline(__always)
private func fma8(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    #if TOYMOE_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

/// Lanes 0..<count of p (count ≥ 1), zeros beyond: a whole vector when count ≥ 8, else lane by lane, so a row's
/// last chunk never reads past the row's end.
@inline(__always)
private func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> SIMD8<Float> {
    if count >= 8 { return load8(p) }
    var v = SIMD8<Float>()
    for j in 0..<count { v[j] = p[j] }
    return v
}

/// Writes lanes 0..<min(count, 8) of v to p: nothing past p[count − 1] is touched.
@inline(__always)
private func storePartial(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 8 {
        store8(v, p)
        return
    }
    for j in 0..<count { p[j] = v[j] }
}

extension MoEKernelsSIMD {

    /// Whether `forward`/`backward` take the feature-major (narrow) path: experts the tiled path does not take
    /// (m < 8, or routed experts with m < 16) with at least one full vector of features.
    @inline(__always)
    public static func usesNarrowPath(_ L: MoELayout) -> Bool { !usesTiledPath(L) && L.n >= 8 }

    /// Whether the narrow path's sparse pass computes every expert's hidden units alongside the router logits
    /// (cheap while E·m is small: at most 4 more vectors per nonzero input) instead of encoding each selected
    /// expert separately.
    @inline(__always)
    public static func encodesAllExperts(_ L: MoELayout) -> Bool { L.experts * L.m <= 32 }

    // roundUp8 (padding to whole 8-lane vectors) is shared with the tiled path (MoEKernelsSIMD+Tiled.swift).

    /// The narrow path's packed sizes: np (features padded), rp (router + fused encoder lanes), the router's
    /// lane count (E when E > 1, else 0) and whether all experts are encoded in the sparse pass.
    @inline(__always)
    static func narrowSizes(_ L: MoELayout) -> (np: Int, rp: Int, routerLanes: Int, fused: Bool) {
        let routerLanes = L.experts > 1 ? L.experts : 0
        let fused = encodesAllExperts(L)
        let lanes = routerLanes + (fused ? L.experts * L.m : 0)
        return (roundUp8(L.n), roundUp8(max(lanes, 1)), routerLanes, fused)
    }

    /// Softmax, top-k and gates from the logits in `probs` (E): the operations and rules of
    /// `MoEKernels.selectTopK` (max-subtracted `kernelExp`, sum in expert order, strict > for `lowestIndex` and ≥ for
    /// `highestIndex`), so the outputs are bitwise that kernel's; the argmax of each round is a vector maximum over
    /// per-expert integer keys instead of a nested scan. Non-finite logits and E > 64 go to `MoEKernels.selectTopK`.
    /// - Shapes: `probs` (E, in: logits, out: π), `selected` (k), `gates` (k), `keys` scratch (roundUp8(E)).
    @inline(__always)
    public static func selectTopK(
        logitsToProbabilities probs: UnsafeMutablePointer<Float>, experts E: Int, active k: Int, tieBreak: TieBreak,
        selected: UnsafeMutablePointer<Int32>, gates: UnsafeMutablePointer<Float>, keys: UnsafeMutablePointer<Int64>
    ) {
        var finite = true
        var zmax = -Float.infinity
        for e in 0..<E {
            let z = probs[e]
            finite = finite && z.isFinite
            zmax = Swift.max(zmax, z)
        }
        guard finite, E <= 64 else {
            MoEKernels.selectTopK(
                logitsToProbabilities: probs, experts: E, active: k, tieBreak: tieBreak, selected: selected, gates: gates)
            return
        }
        var total: Float = 0
        for e in 0..<E {
            let v = kernelExp(probs[e] - zmax)
            probs[e] = v
            total += v
        }
        let inv = 1 / total
        for e in 0..<E { probs[e] *= inv }
        // One integer key per expert: π's bits (π ≥ +0, so its bit pattern orders like the value) above the
        // index, stored so that the larger key wins ties the way the scalar scan does (lowestIndex: 63 − e, the
        // first equal expert; highestIndex: e, the last). Each round is then a plain maximum over the keys, with no
        // second pass for the index; chosen experts and padding hold Int64.min.
        let chunks = (E + 7) >> 3
        let lowest = tieBreak == .lowestIndex
        for e in 0..<(chunks * 8) {
            keys[e] = e < E ? Int64(probs[e].bitPattern) << 8 | Int64(lowest ? 63 - e : e) : Int64.min
        }
        var selectedSum: Float = 0
        for j in 0..<k {
            var kv = UnsafeRawPointer(keys).loadUnaligned(as: SIMD8<Int64>.self)
            for c in 1..<chunks {
                let v = UnsafeRawPointer(keys + 8 * c).loadUnaligned(as: SIMD8<Int64>.self)
                kv = kv.replacing(with: v, where: v .> kv)
            }
            let k4 = kv.lowHalf.replacing(with: kv.highHalf, where: kv.highHalf .> kv.lowHalf)
            let k2 = k4.lowHalf.replacing(with: k4.highHalf, where: k4.highHalf .> k4.lowHalf)
            let best = Swift.max(k2[0], k2[1])
            let low = Int(best & 0xFF)
            let index = lowest ? 63 - low : low
            selected[j] = Int32(index)
            selectedSum += probs[index]
            keys[index] = Int64.min
        }
        for j in 0..<k { gates[j] = probs[Int(selected[j])] / selectedSum }
    }

    /// The indices i with x_i ≠ ±0 (NaN included, as the scalar kernels' `x_i == 0` test skips only zeros) into
    /// `nz`, without branches (see `encode` in MoEKernelsSIMD+Tiled.swift); returns their count.
    @inline(__always)
    static func nonzeroIndices(_ x: UnsafePointer<Float>, _ n: Int, _ nz: UnsafeMutablePointer<Int32>) -> Int {
        var c = 0
        for i in 0..<n {
            nz[c] = Int32(truncatingIfNeeded: i)
            let magnitude = x[i].bitPattern & 0x7FFF_FFFF
            c &+= Int((magnitude &+ 0x7FFF_FFFF) >> 31)
        }
        return c
    }

    /// out (lanes) = Σ_j x[nz_j] · rows[nz_j · stride ..< + lanes], lanes a multiple of 8, in passes of up to 32
    /// lanes (4 accumulators held across the whole list).
    @inline(__always)
    static func sparseRowSum(
        x: UnsafePointer<Float>, nz: UnsafePointer<Int32>, count c: Int, rows: UnsafePointer<Float>, stride: Int,
        lanes: Int, out: UnsafeMutablePointer<Float>
    ) {
        var a0 = 0
        while a0 < lanes {
            let left = lanes - a0
            if left >= 32 {
                var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
                for j in 0..<c {
                    let i = Int(nz[j])
                    let xv = splat(x[i])
                    let row = rows + i * stride + a0
                    s0 = fma8(s0, xv, load8(row))
                    s1 = fma8(s1, xv, load8(row + 8))
                    s2 = fma8(s2, xv, load8(row + 16))
                    s3 = fma8(s3, xv, load8(row + 24))
                }
                store8(s0, out + a0)
                store8(s1, out + a0 + 8)
                store8(s2, out + a0 + 16)
                store8(s3, out + a0 + 24)
                a0 += 32
            } else if left >= 16 {
                var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
                for j in 0..<c {
                    let i = Int(nz[j])
                    let xv = splat(x[i])
                    let row = rows + i * stride + a0
                    s0 = fma8(s0, xv, load8(row))
                    s1 = fma8(s1, xv, load8(row + 8))
                }
                store8(s0, out + a0)
                store8(s1, out + a0 + 8)
                a0 += 16
            } else {
                var s0 = SIMD8<Float>()
                for j in 0..<c {
                    let i = Int(nz[j])
                    s0 = fma8(s0, splat(x[i]), load8(rows + i * stride + a0))
                }
                store8(s0, out + a0)
                a0 += 8
            }
        }
    }

    /// Packs Wt (E·m, np) and bp (E, np) (zero-padded) from the parameters, and R (n, rp) when `rp` lanes are used.
    @inline(__always)
    static func packNarrow(
        params: UnsafePointer<Float>, layout L: MoELayout, np: Int, rp: Int, routerLanes: Int, fused: Bool,
        wt: UnsafeMutablePointer<Float>, bp: UnsafeMutablePointer<Float>, r: UnsafeMutablePointer<Float>
    ) {
        let n = L.n, m = L.m, E = L.experts
        let W = params + L.wOffset, bias = params + L.bOffset, G = params + L.gOffset
        wt.update(repeating: 0, count: E * m * np)
        bp.update(repeating: 0, count: E * np)
        for e in 0..<E {
            let We = W + e * n * m
            for i in 0..<n {
                for a in 0..<m { wt[(e * m + a) * np + i] = We[i * m + a] }
            }
            (bp + e * np).update(from: bias + e * n, count: n)
        }
        r.update(repeating: 0, count: n * rp)
        for i in 0..<n {
            let row = r + i * rp
            for e in 0..<routerLanes { row[e] = G[e * n + i] }
            if fused {
                // W[e, i, 0..<m] for every e is E·m consecutive lanes: W's rows of feature i, expert after expert.
                for e in 0..<E { (row + routerLanes + e * m).update(from: W + e * n * m + i * m, count: m) }
            }
        }
    }

    // MARK: - Forward

    /// Forward pass over a batch with sparse dispatch, feature-major (see the file header). Writes exactly the
    /// activations `MoEKernels.forward` writes (probs, selected, gates, hidden, preact, xhat).
    /// - Shapes: `params` (layout.count); activations as documented on `MoEActivations`. Any shape works; it pays
    ///   for `usesNarrowPath(layout)` shapes.
    public static func forwardNarrow(
        params: UnsafePointer<Float>, layout L: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let (np, rp, routerLanes, fused) = narrowSizes(L)
        let W = params + L.wOffset
        let floats = E * m * np + E * np + n * rp + rp + np + max(m, 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buffer in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { nzBuffer in
            withUnsafeTemporaryAllocation(of: Int64.self, capacity: roundUp8(E)) { keyBuffer in
                let wt = buffer.baseAddress!, bp = wt + E * m * np, r = bp + E * np, zh = r + n * rp
                let xacc = zh + rp, hs = xacc + np
                let nz = nzBuffer.baseAddress!, keys = keyBuffer.baseAddress!
                packNarrow(
                    params: params, layout: L, np: np, rp: rp, routerLanes: routerLanes, fused: fused, wt: wt, bp: bp,
                    r: r)
                let zero = SIMD8<Float>()
                for s in 0..<batch {
                    let x = UnsafePointer(act.x + s * n)
                    let c = nonzeroIndices(x, n, nz)
                    if routerLanes + (fused ? E * m : 0) > 0 {
                        sparseRowSum(x: x, nz: nz, count: c, rows: r, stride: rp, lanes: rp, out: zh)
                    }
                    let probs = act.probs + s * E, sel = act.selected + s * k, gates = act.gates + s * k
                    if E == 1 {
                        probs[0] = 1
                        sel[0] = 0
                        gates[0] = 1
                    } else {
                        probs.update(from: zh, count: E)
                        selectTopK(
                            logitsToProbabilities: probs, experts: E, active: k, tieBreak: tieBreak, selected: sel,
                            gates: gates, keys: keys)
                    }
                    for j in 0..<k {
                        let t = s * k + j
                        let e = Int(sel[j])
                        let h = act.hidden + t * m
                        if fused {
                            h.update(from: zh + routerLanes + e * m, count: m)
                        } else {
                            // h = Σ_{x_i ≠ 0} x_i · W[e, i, :], in feature order.
                            hs.update(repeating: 0, count: m)
                            let We = W + e * n * m
                            for q in 0..<c {
                                let i = Int(nz[q])
                                axpy(hs, x[i], We + i * m, m)
                            }
                            h.update(from: hs, count: m)
                        }
                        decodeNarrow(
                            h: h, m: m, wt: wt + e * m * np, bias: bp + e * np, np: np, n: n, gate: gates[j],
                            first: j == 0, pre: act.preact + t * n, xacc: xacc, zero: zero)
                    }
                    let xh = act.xhat + s * n
                    var i = 0
                    while i < n {
                        storePartial(load8(xacc + i), xh + i, n - i)
                        i += 8
                    }
                }
            }
            }
        }
    }

    /// pre = Σ_a h_a · Wt[a, :] + b (stored to the row `pre`, n) and xacc (np) = (first ? 0 : xacc) + g · ReLU(pre),
    /// over chunks of 8 features, 4 chunks at a time (independent accumulator chains over a).
    @inline(__always)
    static func decodeNarrow(
        h: UnsafePointer<Float>, m: Int, wt: UnsafePointer<Float>, bias: UnsafePointer<Float>, np: Int, n: Int,
        gate: Float, first: Bool, pre: UnsafeMutablePointer<Float>, xacc: UnsafeMutablePointer<Float>,
        zero: SIMD8<Float>
    ) {
        let g = splat(gate)
        @inline(__always)
        func finish(_ v: SIMD8<Float>, _ i: Int) {
            storePartial(v, pre + i, n - i)
            // ReLU as a select: lanes with v ≤ 0 contribute exactly 0 (scalar: `if v > 0`).
            let y = g * v.replacing(with: 0, where: v .<= zero)
            store8(first ? y : load8(xacc + i) + y, xacc + i)
        }
        var i = 0
        while i + 32 <= np {
            var v0 = load8(bias + i), v1 = load8(bias + i + 8), v2 = load8(bias + i + 16), v3 = load8(bias + i + 24)
            for a in 0..<m {
                let ha = splat(h[a])
                let row = wt + a * np + i
                v0 = fma8(v0, ha, load8(row))
                v1 = fma8(v1, ha, load8(row + 8))
                v2 = fma8(v2, ha, load8(row + 16))
                v3 = fma8(v3, ha, load8(row + 24))
            }
            finish(v0, i)
            finish(v1, i + 8)
            finish(v2, i + 16)  // every chunk below np holds at least one real feature (np < n + 8)
            finish(v3, i + 24)
            i += 32
        }
        while i < np {
            var v = load8(bias + i)
            for a in 0..<m { v = fma8(v, splat(h[a]), load8(wt + a * np + i)) }
            finish(v, i)
            i += 8
        }
    }

    // MARK: - Backward

    /// Backward pass, feature-major (see the file header), with `MoEKernels.backward`'s contract: accumulates
    /// dL/dW, dL/db, dL/dG into `grads` (caller zeroes it); same loss, LB term, ReLU'(0) = 0 and k = 1 router
    /// shortcut; leaves the last sample's dx̂ and dg in the `dxhat` / `dgate` scratch; activations unmodified.
    public static func backwardNarrow(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout L: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let np = roundUp8(n), ep = roundUp8(E)
        let routerNeeded = E > 1 && (k > 1 || lbAlpha != nil)
        let twoScale = 2 * lossScale
        let lbCoefficient: Float = lbAlpha.map { $0 * Float(E) / Float(batch) } ?? 0
        // wt, dwt (E·m, np); dbp (E, np); dgt (n, ep) when the router is trained; coef, dx, xp, dpre (np);
        // dz (ep); dgs (k).
        let gtFloats = routerNeeded ? n * ep : 0
        let floats = 2 * E * m * np + E * np + gtFloats + 4 * np + ep + k
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buffer in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { nzBuffer in
                let wt = buffer.baseAddress!, dwt = wt + E * m * np, dbp = dwt + E * m * np, dgt = dbp + E * np
                let coef = dgt + gtFloats, dx = coef + np, xp = dx + np, dpre = xp + np, dz = dpre + np, dgs = dz + ep
                let nz = nzBuffer.baseAddress!
                let W = params + L.wOffset
                wt.update(repeating: 0, count: E * m * np)
                for e in 0..<E {
                    for i in 0..<n {
                        for a in 0..<m { wt[(e * m + a) * np + i] = W[e * n * m + i * m + a] }
                    }
                }
                dwt.update(repeating: 0, count: E * m * np + E * np + gtFloats)
                dz.update(repeating: 0, count: ep)
                // c_i = 2·scale·I_i, padded with zeros (the scalar kernel's (2·scale·I_i)·(x̂ − x) order).
                coef.update(repeating: 0, count: np)
                for i in 0..<n { coef[i] = twoScale * importance[i] }
                let zero = SIMD8<Float>()
                for s in 0..<batch {
                    let x = UnsafePointer(act.x + s * n), xh = UnsafePointer(act.xhat + s * n)
                    var i = 0
                    while i + 8 <= n {
                        let xv = load8(x + i)
                        store8(xv, xp + i)
                        store8(load8(coef + i) * (load8(xh + i) - xv), dx + i)
                        i += 8
                    }
                    if i < n {
                        let xv = loadPartial(x + i, n - i)
                        store8(xv, xp + i)
                        store8(load8(coef + i) * (loadPartial(xh + i, n - i) - xv), dx + i)
                    }
                    for j in 0..<k {
                        let t = s * k + j
                        let e = Int(act.selected[t])
                        let g = splat(act.gates[t])
                        let pre = UnsafePointer(act.preact + t * n)
                        let dbe = dbp + e * np
                        // dpre and dg, db_e += dpre (whole chunks, then the row's last, partial one).
                        var dg = zero
                        @inline(__always)
                        func outputGradient(_ v: SIMD8<Float>, _ i: Int) {
                            let d = load8(dx + i)
                            let active = v .> zero
                            dg += (d * v).replacing(with: 0, where: .!active)
                            let dp = (g * d).replacing(with: 0, where: .!active)
                            store8(dp, dpre + i)
                            store8(load8(dbe + i) + dp, dbe + i)
                        }
                        i = 0
                        while i + 8 <= n {
                            outputGradient(load8(pre + i), i)
                            i += 8
                        }
                        if i < n { outputGradient(loadPartial(pre + i, n - i), i) }
                        dgs[j] = dg.sum()
                        // Per hidden unit: dh_a = dpre · Wt[a, :], then dWt[a, :] += h_a · dpre + dh_a · x.
                        let h = act.hidden + t * m
                        for a in 0..<m {
                            let row = UnsafePointer(wt + (e * m + a) * np)
                            var s0 = zero, s1 = zero
                            i = 0
                            while i + 16 <= np {
                                s0 = fma8(s0, load8(dpre + i), load8(row + i))
                                s1 = fma8(s1, load8(dpre + i + 8), load8(row + i + 8))
                                i += 16
                            }
                            if i < np { s0 = fma8(s0, load8(dpre + i), load8(row + i)) }
                            let dha = splat((s0 + s1).sum()), ha = splat(h[a])
                            let drow = dwt + (e * m + a) * np
                            i = 0
                            while i < np {
                                store8(fma8(fma8(load8(drow + i), ha, load8(dpre + i)), dha, load8(xp + i)), drow + i)
                                i += 8
                            }
                        }
                    }
                    if s == batch - 1 {
                        // The scratch outputs of the scalar kernel: the last sample's dx̂ and dg.
                        for i in 0..<n { act.dxhat[i] = twoScale * importance[i] * (act.xhat[s * n + i] - act.x[s * n + i]) }
                        for j in 0..<k { act.dgate[j] = dgs[j] }
                    }
                    guard routerNeeded else { continue }
                    // dπ, dz = π ⊙ (dπ − π·dπ) with the scalar kernel's operations; then dGt[i, :] += x_i · dz.
                    let probs = act.probs + s * E
                    let dprob = act.dprob
                    for e in 0..<E { dprob[e] = lbCoefficient * act.dispatchFraction[e] }
                    if k > 1 {
                        var selectedSum: Float = 0
                        var weighted: Float = 0
                        for j in 0..<k {
                            selectedSum += probs[Int(act.selected[s * k + j])]
                            weighted += dgs[j] * act.gates[s * k + j]
                        }
                        for j in 0..<k {
                            dprob[Int(act.selected[s * k + j])] += (dgs[j] - weighted) / selectedSum
                        }
                    }
                    var dot: Float = 0
                    for e in 0..<E { dot += probs[e] * dprob[e] }
                    for e in 0..<E { dz[e] = probs[e] * (dprob[e] - dot) }
                    let c = nonzeroIndices(x, n, nz)
                    for q in 0..<c {
                        let i = Int(nz[q])
                        let xv = splat(x[i])
                        let row = dgt + i * ep
                        var a = 0
                        while a < ep {
                            store8(fma8(load8(row + a), xv, load8(dz + a)), row + a)
                            a += 8
                        }
                    }
                }
                // Back to the parameter layout, added to the caller's gradients.
                let dW = grads + L.wOffset, db = grads + L.bOffset, dG = grads + L.gOffset
                for e in 0..<E {
                    let dWe = dW + e * n * m
                    for a in 0..<m {
                        let src = dwt + (e * m + a) * np
                        for i in 0..<n { dWe[i * m + a] += src[i] }
                    }
                    let src = dbp + e * np, dst = db + e * n
                    for i in 0..<n { dst[i] += src[i] }
                }
                if routerNeeded {
                    for i in 0..<n {
                        let src = dgt + i * ep
                        for e in 0..<E { dG[e * n + i] += src[e] }
                    }
                }
            }
        }
    }
}
