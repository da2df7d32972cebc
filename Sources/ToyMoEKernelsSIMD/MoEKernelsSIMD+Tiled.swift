// Cache- and register-tiled forward/backward for wide experts (the P2/P3 shapes: m ≥ 8, n ≥ 16), compiled, like
// MoEKernelsSIMD.swift, once per ISA (the AVX2/AVX-512 folders hold symlinks to this file).
//
// The per-sample kernels in MoEKernelsSIMD.swift walk one sample at a time: the decode is a matrix-vector product
// that streams W_e from L2 once per sample, and the backward updates dW through memory for every sample. Here the
// samples routed to one expert are processed as matrices, in tiles of 4 (sample, slot) pairs ("members"):
//
//   forward   h_q = Σ_i x_qi · W_e[i, :]            encode, one member at a time, skipping x_qi = 0 (sparse inputs)
//             pre_q = h_q W_eᵀ + b_e                 decode, a 4 × 16 register tile over (member, feature), K = m
//             x̂_s += g_q · ReLU(pre_q)
//   backward  dpre_qi = g_q · c_i (x̂_si − x_si) · [pre_qi > 0],  c_i = 2 · lossScale · I_i
//             dh_q = dpre_q W_e                      a 4 × 16 register tile over (member, hidden), K = n
//             dW_e[i, :] += Σ_q dpre_qi h_q + x_qi dh_q   the tile's h and dh held in registers, one pass over i
//             db_e += Σ_q dpre_q,   dg_q = Σ_i c_i (x̂_si − x_si) · ReLU(pre_qi)
//
// Packing: per expert, W_e is copied once per call into Wp (n, mp) with rows zero-padded to mp = m rounded up to 16,
// and (forward) transposed into Wt (m, np), np = n rounded up to 16, so every inner loop runs on whole SIMD8 pairs
// with no tail; padded lanes hold zeros and are never stored back. dW_e and db_e accumulate in padded scratch and
// are added to the caller's gradients once per expert. The packing costs O(n·m) per call against O(B·n·m) of work.
//
// Scratch comes from one `withUnsafeTemporaryAllocation` per call (a few hundred KB at P3's shape: after the first
// call glibc serves it from its heap without touching the OS).
//
// The results equal the scalar kernels' up to Float rounding (different summation order, FMA where built with it);
// the twin tests compare both paths on awkward shapes, including member counts that are not multiples of 4.
import ToyMoEKernels

// These helpers are file-private copies on purpose: debug builds compile this module file by file, where a helper
// from another file (and any generic one) is neither inlined nor specialized, which made the kernels ~20x slower.
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

/// acc + a·b, fused where this module is built with FMA (see MoEKernelsSIMD.swift).
@inline(__always)
private func fma8(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    #if TOYMOE_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

/// Writes lanes 0..<count (≤ 16) of (lo, hi) to dst: whole vectors where they fit, lane by lane at a row's end, so
/// nothing past dst[count − 1] is touched.
@inline(__always)
private func storeRow16(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 16 {
        store8(lo, dst)
        store8(hi, dst + 8)
        return
    }
    var j = 0
    if count >= 8 {
        store8(lo, dst)
        j = 8
        while j < count {
            dst[j] = hi[j - 8]
            j += 1
        }
        return
    }
    while j < count {
        dst[j] = lo[j]
        j += 1
    }
}

/// The 4 × 16 register tile of the decode and of dh: C[q, 0..<16] = Σ_κ A[q, κ] · B[κ, 0..<16] for q < 4, κ < K,
/// with A's rows at `a + q·aStride` (one element at a time, broadcast) and B's rows at `b + κ·bStride` (16 lanes,
/// two SIMD8 loads). 8 accumulators; per κ 2 loads, 4 broadcasts and 8 multiply-adds.
private struct Tile4x16 {
    var r0lo = SIMD8<Float>(), r0hi = SIMD8<Float>(), r1lo = SIMD8<Float>(), r1hi = SIMD8<Float>()
    var r2lo = SIMD8<Float>(), r2hi = SIMD8<Float>(), r3lo = SIMD8<Float>(), r3hi = SIMD8<Float>()

    @inline(__always)
    init(a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int, count K: Int) {
        let a0 = a, a1 = a + aStride, a2 = a + 2 * aStride, a3 = a + 3 * aStride
        for kk in 0..<K {
            let row = b + kk * bStride
            let w0 = load8(row), w1 = load8(row + 8)
            let b0 = splat(a0[kk]), b1 = splat(a1[kk]), b2 = splat(a2[kk]), b3 = splat(a3[kk])
            r0lo = fma8(r0lo, b0, w0)
            r0hi = fma8(r0hi, b0, w1)
            r1lo = fma8(r1lo, b1, w0)
            r1hi = fma8(r1hi, b1, w1)
            r2lo = fma8(r2lo, b2, w0)
            r2hi = fma8(r2hi, b2, w1)
            r3lo = fma8(r3lo, b3, w0)
            r3hi = fma8(r3hi, b3, w1)
        }
    }
}

extension MoEKernelsSIMD {

    /// Whether `forward`/`backward` take the tiled path for this shape: wide enough that whole 16-lane chunks are
    /// mostly real data (below that, padding m = 1 to 16 lanes would waste most of the work). Routed experts with
    /// m < 16 go to the feature-major narrow path instead, which pads nothing in m: measured with `toymoe bench
    /// --configs P4` (one thread), Table 1's E10 m10 k1 step ×1.11 narrow over tiled, while dense m = 20 (every
    /// sample in one expert's tiles) stays tiled (narrow ×0.74).
    @inline(__always)
    public static func usesTiledPath(_ L: MoELayout) -> Bool { L.m >= 8 && L.n >= 16 && (L.experts == 1 || L.m >= 16) }

    @inline(__always)
    static func roundUp16(_ x: Int) -> Int { (x + 15) & ~15 }

    /// The flat (sample, slot) indices t = s·k + j routed to `expert`, in batch order, into `members`; returns the count.
    @inline(__always)
    static func gatherMembers(
        _ selected: UnsafePointer<Int32>, _ total: Int, expert: Int, into members: UnsafeMutablePointer<Int32>
    ) -> Int {
        var count = 0
        let e = Int32(expert)
        for t in 0..<total where selected[t] == e {
            members[count] = Int32(t)
            count += 1
        }
        return count
    }

    /// Wp (n, mp) ← W_e zero-padded; and, when `wt` is given, Wt (m, np) ← W_eᵀ zero-padded.
    @inline(__always)
    static func packExpert(
        _ We: UnsafePointer<Float>, n: Int, m: Int, mp: Int, np: Int, wp: UnsafeMutablePointer<Float>,
        wt: UnsafeMutablePointer<Float>?
    ) {
        wp.update(repeating: 0, count: n * mp)
        for i in 0..<n { (wp + i * mp).update(from: We + i * m, count: m) }
        guard let wt else { return }
        wt.update(repeating: 0, count: m * np)
        for i in 0..<n {
            let row = We + i * m
            for a in 0..<m { wt[a * np + i] = row[a] }
        }
    }

    // MARK: - Forward

    /// Forward pass over a batch with sparse dispatch, tiled per expert (see the file header). Writes exactly the
    /// activations `MoEKernels.forward` writes (probs, selected, gates, hidden, preact, xhat).
    /// - Shapes: `params` (layout.count); activations as documented on `MoEActivations`. Any shape works; it pays
    ///   for `usesTiledPath(layout)` shapes.
    public static func forwardTiled(
        params: UnsafePointer<Float>, layout L: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let mp = roundUp16(m), np = roundUp16(n)
        let W = params + L.wOffset, bias = params + L.bOffset, G = params + L.gOffset
        for s in 0..<batch {
            route(
                x: UnsafePointer(act.x + s * n), gate: G, layout: L, tieBreak: tieBreak, probs: act.probs + s * E,
                selected: act.selected + s * k, gates: act.gates + s * k)
        }
        act.xhat.update(repeating: 0, count: batch * n)
        let floats = n * mp + m * np + 4 * mp + np
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buffer in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: batch * k + n) { memberBuffer in
                let wp = buffer.baseAddress!, wt = wp + n * mp, ht = wt + m * np, bp = ht + 4 * mp
                let members = memberBuffer.baseAddress!, nz = members + batch * k
                for e in 0..<E {
                    let count = gatherMembers(act.selected, batch * k, expert: e, into: members)
                    if count == 0 { continue }
                    packExpert(W + e * n * m, n: n, m: m, mp: mp, np: np, wp: wp, wt: wt)
                    bp.update(repeating: 0, count: np)
                    bp.update(from: bias + e * n, count: n)
                    var q0 = 0
                    while q0 < count {
                        let rows = min(4, count - q0)
                        for q in 0..<4 {
                            let h = ht + q * mp
                            guard q < rows else {
                                h.update(repeating: 0, count: mp)
                                continue
                            }
                            let t = Int(members[q0 + q])
                            encode(x: UnsafePointer(act.x + (t / k) * n), n: n, wp: wp, mp: mp, h: h, nz: nz)
                            (act.hidden + t * m).update(from: h, count: m)
                        }
                        decodeTile(
                            ht: ht, mp: mp, wt: wt, np: np, bp: bp, n: n, m: m, rows: rows,
                            members: members + q0, k: k, act: act)
                        q0 += 4
                    }
                }
            }
        }
    }

    /// h (mp, padded lanes 0) = Σ_i x_i · Wp[i, :] over the nonzero x_i, in feature order. The nonzero indices are
    /// first compacted without branches into `nz` (n): at feature probability p only ~p·n rows are read, and the
    /// multiply-add loop has no data-dependent branch to mispredict. Up to 32 hidden units stay in 4 registers for
    /// the whole pass.
    @inline(__always)
    static func encode(
        x: UnsafePointer<Float>, n: Int, wp: UnsafePointer<Float>, mp: Int, h: UnsafeMutablePointer<Float>,
        nz: UnsafeMutablePointer<Int32>
    ) {
        var c = 0
        for i in 0..<n {
            nz[c] = Int32(truncatingIfNeeded: i)
            // 1 if x_i ≠ ±0 (NaN included, as the scalar kernel's `x_i == 0` test skips only zeros), in integer
            // arithmetic: a float comparison here compiles to a branch (unordered check) that mispredicts.
            let magnitude = x[i].bitPattern & 0x7FFF_FFFF
            c &+= Int((magnitude &+ 0x7FFF_FFFF) >> 31)
        }
        if mp == 16 {
            var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
            for j in 0..<c {
                let i = Int(nz[j])
                let xv = splat(x[i])
                let row = wp + i * mp
                acc0 = fma8(acc0, xv, load8(row))
                acc1 = fma8(acc1, xv, load8(row + 8))
            }
            store8(acc0, h)
            store8(acc1, h + 8)
            return
        }
        var a0 = 0
        while a0 < mp {
            // 32 units per pass where they exist (mp is a multiple of 16).
            if a0 + 32 <= mp {
                var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
                for j in 0..<c {
                    let i = Int(nz[j])
                    let xv = splat(x[i])
                    let row = wp + i * mp + a0
                    acc0 = fma8(acc0, xv, load8(row))
                    acc1 = fma8(acc1, xv, load8(row + 8))
                    acc2 = fma8(acc2, xv, load8(row + 16))
                    acc3 = fma8(acc3, xv, load8(row + 24))
                }
                store8(acc0, h + a0)
                store8(acc1, h + a0 + 8)
                store8(acc2, h + a0 + 16)
                store8(acc3, h + a0 + 24)
                a0 += 32
            } else {
                var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
                for j in 0..<c {
                    let i = Int(nz[j])
                    let xv = splat(x[i])
                    let row = wp + i * mp + a0
                    acc0 = fma8(acc0, xv, load8(row))
                    acc1 = fma8(acc1, xv, load8(row + 8))
                }
                store8(acc0, h + a0)
                store8(acc1, h + a0 + 8)
                a0 += 16
            }
        }
    }

    /// pre_q = h_q Wt + b and x̂_s += g_q · ReLU(pre_q) for the tile's `rows` members: a 4 × 16 register tile over
    /// (member, feature) per chunk of 16 features, K = m (8 accumulators; per hidden unit 2 loads of Wt, 4
    /// broadcasts, 8 multiply-adds).
    @inline(__always)
    static func decodeTile(
        ht: UnsafePointer<Float>, mp: Int, wt: UnsafePointer<Float>, np: Int, bp: UnsafePointer<Float>, n: Int,
        m: Int, rows: Int, members: UnsafePointer<Int32>, k: Int, act: MoEActivations
    ) {
        let zero = SIMD8<Float>()
        var i0 = 0
        while i0 < np {
            let c = Tile4x16(a: ht, aStride: mp, b: wt + i0, bStride: np, count: m)
            let bias0 = load8(bp + i0), bias1 = load8(bp + i0 + 8)
            let width = min(16, n - i0)
            @inline(__always)
            func finish(_ q: Int, _ lo: SIMD8<Float>, _ hi: SIMD8<Float>) {
                let t = Int(members[q])
                let s = t / k
                let v0 = lo + bias0, v1 = hi + bias1
                storeRow16(v0, v1, act.preact + t * n + i0, width)
                let g = splat(act.gates[t])
                // ReLU as a select: lanes with v ≤ 0 contribute exactly 0 (scalar: `if v > 0`).
                let y0 = g * v0.replacing(with: 0, where: v0 .<= zero)
                let y1 = g * v1.replacing(with: 0, where: v1 .<= zero)
                let xh = act.xhat + s * n + i0
                if width == 16 {
                    store8(load8(xh) + y0, xh)
                    store8(load8(xh + 8) + y1, xh + 8)
                } else {
                    for j in 0..<width { xh[j] += j < 8 ? y0[j] : y1[j - 8] }
                }
            }
            finish(0, c.r0lo, c.r0hi)
            if rows > 1 { finish(1, c.r1lo, c.r1hi) }
            if rows > 2 { finish(2, c.r2lo, c.r2hi) }
            if rows > 3 { finish(3, c.r3lo, c.r3hi) }
            i0 += 16
        }
    }

    // MARK: - Backward

    /// Backward pass tiled per expert (see the file header), with `MoEKernels.backward`'s contract: accumulates
    /// dL/dW, dL/db, dL/dG into `grads` (caller zeroes it); same loss, LB term, ReLU'(0) = 0 and k = 1 router
    /// shortcut; leaves the last sample's dx̂ and dg in the `dxhat` / `dgate` scratch; activations unmodified.
    public static func backwardTiled(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout L: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let mp = roundUp16(m), np = roundUp16(n)
        let twoScale = 2 * lossScale
        // wp, dwp (n, mp); ht, dht (4, mp); dpt, xt (4, np); dbp, coef (np); dgs (B·k).
        let floats = 2 * n * mp + 8 * mp + 8 * np + 2 * np + batch * k
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buffer in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(1, batch * k)) { memberBuffer in
                let wp = buffer.baseAddress!, dwp = wp + n * mp, ht = dwp + n * mp, dht = ht + 4 * mp
                let dpt = dht + 4 * mp, xt = dpt + 4 * np, dbp = xt + 4 * np, coef = dbp + np, dgs = coef + np
                let members = memberBuffer.baseAddress!
                dgs.update(repeating: 0, count: batch * k)
                // c_i = 2·scale·I_i, padded with zeros (the scalar kernel's (2·scale·I_i)·(x̂ − x) order).
                coef.update(repeating: 0, count: np)
                for i in 0..<n { coef[i] = twoScale * importance[i] }
                for e in 0..<E {
                    let count = gatherMembers(act.selected, batch * k, expert: e, into: members)
                    if count == 0 { continue }
                    packExpert(params + L.wOffset + e * n * m, n: n, m: m, mp: mp, np: np, wp: wp, wt: nil)
                    dwp.update(repeating: 0, count: n * mp)
                    dbp.update(repeating: 0, count: np)
                    var q0 = 0
                    while q0 < count {
                        let rows = min(4, count - q0)
                        for q in 0..<4 {
                            let h = ht + q * mp, dp = dpt + q * np, xq = xt + q * np
                            guard q < rows else {
                                h.update(repeating: 0, count: mp)
                                dp.update(repeating: 0, count: np)
                                xq.update(repeating: 0, count: np)
                                continue
                            }
                            let t = Int(members[q0 + q])
                            let s = t / k
                            h.update(from: act.hidden + t * m, count: m)
                            (h + m).update(repeating: 0, count: mp - m)
                            xq.update(from: act.x + s * n, count: n)
                            (xq + n).update(repeating: 0, count: np - n)
                            dgs[t] = memberOutputGradient(
                                x: xq, xhat: act.xhat + s * n, pre: act.preact + t * n, coef: coef, gate: act.gates[t],
                                n: n, np: np, dpre: dp, db: dbp)
                        }
                        hiddenGradientTile(dpt: dpt, np: np, wp: wp, mp: mp, n: n, dht: dht)
                        weightGradientTile(dpt: dpt, xt: xt, np: np, ht: ht, dht: dht, mp: mp, n: n, dwp: dwp)
                        q0 += 4
                    }
                    let dWe = grads + L.wOffset + e * n * m, dbe = grads + L.bOffset + e * n
                    for i in 0..<n {
                        let src = dwp + i * mp, dst = dWe + i * m
                        for a in 0..<m { dst[a] += src[a] }
                    }
                    for i in 0..<n { dbe[i] += dbp[i] }
                }
                // The scratch outputs of the scalar kernel: the last sample's dx̂ and dg.
                if batch > 0 {
                    let s = batch - 1
                    for i in 0..<n {
                        act.dxhat[i] = twoScale * importance[i] * (act.xhat[s * n + i] - act.x[s * n + i])
                    }
                    for j in 0..<k { act.dgate[j] = dgs[s * k + j] }
                }
                routerBackward(grads: grads, layout: L, batch: batch, lbAlpha: lbAlpha, act: act, dgs: dgs)
            }
        }
    }

    /// One member's dpre (np, padded lanes 0) = g · c ⊙ (x̂ − x) on lanes with pre > 0, added into db; returns
    /// dg = Σ_i c_i (x̂_i − x_i) · ReLU(pre_i). `x` is the member's padded input row; `xhat` and `pre` are rows of
    /// length n in the activations (read lane by lane at the row's end).
    @inline(__always)
    static func memberOutputGradient(
        x: UnsafePointer<Float>, xhat: UnsafePointer<Float>, pre: UnsafePointer<Float>, coef: UnsafePointer<Float>,
        gate: Float, n: Int, np: Int, dpre: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>
    ) -> Float {
        let zero = SIMD8<Float>()
        let g = splat(gate)
        var dg = zero
        var i = 0
        while i < np {
            var xh = zero, v = zero
            if i + 8 <= n {
                xh = load8(xhat + i)
                v = load8(pre + i)
            } else {
                for j in 0..<8 where i + j < n {
                    xh[j] = xhat[i + j]
                    v[j] = pre[i + j]
                }
            }
            let dx = load8(coef + i) * (xh - load8(x + i))
            let active = v .> zero
            dg += (dx * v).replacing(with: 0, where: .!active)
            let d = (g * dx).replacing(with: 0, where: .!active)
            store8(d, dpre + i)
            store8(load8(db + i) + d, db + i)
            i += 8
        }
        return dg.sum()
    }

    /// dh_q (mp) = Σ_i dpre_qi · Wp[i, :] for the 4 tile rows: a 4 × 16 register tile per chunk of 16 hidden units,
    /// K = n (per feature 2 loads of Wp, 4 broadcasts, 8 multiply-adds). Padded rows have dpre = 0.
    @inline(__always)
    static func hiddenGradientTile(
        dpt: UnsafePointer<Float>, np: Int, wp: UnsafePointer<Float>, mp: Int, n: Int,
        dht: UnsafeMutablePointer<Float>
    ) {
        var a0 = 0
        while a0 < mp {
            let c = Tile4x16(a: dpt, aStride: np, b: wp + a0, bStride: mp, count: n)
            store8(c.r0lo, dht + a0)
            store8(c.r0hi, dht + a0 + 8)
            store8(c.r1lo, dht + mp + a0)
            store8(c.r1hi, dht + mp + a0 + 8)
            store8(c.r2lo, dht + 2 * mp + a0)
            store8(c.r2hi, dht + 2 * mp + a0 + 8)
            store8(c.r3lo, dht + 3 * mp + a0)
            store8(c.r3hi, dht + 3 * mp + a0 + 8)
            a0 += 16
        }
    }

    /// dWp[i, :] += Σ_q dpre_qi · h_q + x_qi · dh_q for the 4 tile rows (the tied weight's decoder and encoder
    /// terms), per chunk of 8 hidden units with the tile's h and dh chunks held in 8 registers over one pass of i.
    @inline(__always)
    static func weightGradientTile(
        dpt: UnsafePointer<Float>, xt: UnsafePointer<Float>, np: Int, ht: UnsafePointer<Float>,
        dht: UnsafePointer<Float>, mp: Int, n: Int, dwp: UnsafeMutablePointer<Float>
    ) {
        let d0 = dpt, d1 = dpt + np, d2 = dpt + 2 * np, d3 = dpt + 3 * np
        let x0 = xt, x1 = xt + np, x2 = xt + 2 * np, x3 = xt + 3 * np
        var a0 = 0
        while a0 < mp {
            let h0 = load8(ht + a0), h1 = load8(ht + mp + a0), h2 = load8(ht + 2 * mp + a0), h3 = load8(ht + 3 * mp + a0)
            let g0 = load8(dht + a0), g1 = load8(dht + mp + a0)
            let g2 = load8(dht + 2 * mp + a0), g3 = load8(dht + 3 * mp + a0)
            for i in 0..<n {
                let row = dwp + i * mp + a0
                // Four short chains instead of one chain of 8 dependent multiply-adds: the row update is then
                // bound by throughput rather than by the multiply-add latency.
                var s0 = fma8(load8(row), splat(d0[i]), h0)
                var s1 = splat(d1[i]) * h1
                var s2 = splat(x0[i]) * g0
                var s3 = splat(x1[i]) * g1
                s0 = fma8(s0, splat(d2[i]), h2)
                s1 = fma8(s1, splat(d3[i]), h3)
                s2 = fma8(s2, splat(x2[i]), g2)
                s3 = fma8(s3, splat(x3[i]), g3)
                store8((s0 + s1) + (s2 + s3), row)
            }
            a0 += 8
        }
    }
}
