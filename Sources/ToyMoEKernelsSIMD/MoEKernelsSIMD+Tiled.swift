// Cache- and register-tiled forward/backward for wide experts (the P2/P3 shapes: m ≥ 8, n ≥ 16), compiled, like
// MoEKernelsSIMD.swift, once per ISA (the AVX2/AVX-512 folders hold symlinks to this file).
//
// The per-sample kernels in MoEKernelsSIMD.swift walk one sample at a time: the decode is a matrix-vector product
// that streams W_e from L2 once per sample, and the backward updates dW through memory for every sample. Here the
// samples routed to one expert are processed as matrices of (sample, slot) pairs ("members"):
//
//   forward   h_q = Σ_i x_qi · W_e[i, :]            encode, one member at a time, skipping x_qi = 0 (sparse inputs)
//             pre_q = h_q W_eᵀ + b_e                 decode, a 6 × 16 register tile over (member, feature), K = m
//             x̂_s += g_q · ReLU(pre_q)
//   backward  (per panel of up to 48 members)
//             dpre_qi = g_q · c_i (x̂_si − x_si) · [pre_qi > 0],  c_i = 2 · lossScale · I_i
//             dh_q = dpre_q W_e                      a 6 × 16 register tile over (member, hidden), K = n
//             dW_e[i, :] += Σ_q dpre_qi h_q + x_qi dh_q   a 6 × 16 register block of dW over (feature, hidden),
//                                                    K = the panel's members: dW is read and written once per panel
//             db_e += Σ_q dpre_q,   dg_q = Σ_i c_i (x̂_si − x_si) · ReLU(pre_qi)
//
// 6 × 16 tiles: 12 SIMD8 accumulators, enough independent multiply-add chains to keep both FMA units of current
// x86 cores busy (latency 4-5 cycles × 2 per cycle), and with their operands 15 of AVX2's 16 vector registers.
//
// Packing: per expert, W_e is copied once per call into Wp (n, mp) with rows zero-padded to mp = m rounded up to 8
// (16-unit chunks, then one 8-unit chunk where mp = 8 mod 16: m = 20 pads to 24, not 32), and (forward) transposed
// into Wt (m, np), np = n rounded up to 16, so every inner loop runs on whole SIMD8 vectors with no tail; padded
// lanes hold zeros and are never stored back. dW_e and db_e accumulate in padded scratch and
// are added to the caller's gradients once per expert. The packing costs O(n·m) per call against O(B·n·m) of work.
//
// Scratch comes from one `withUnsafeTemporaryAllocation` per call (a few hundred KB at P3's shape: after the first
// call glibc serves it from its heap without touching the OS).
//
// The results equal the scalar kernels' up to Float rounding (different summation order, FMA where built with it);
// the twin tests compare both paths on awkward shapes, including member counts that are not multiples of the tiles
// and batches of several panels. Each SIMD build is deterministic (fixed order of every sum, independent of
// threads); the 6 × 16 tiles and 48-member panels changed its bits against the earlier 4-member tiles.
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

/// The 6 × 16 register tile of the decode and of dh: C[q, 0..<16] = Σ_κ A[q, κ] · B[κ, 0..<16] for q < 6, κ < K,
/// with A's rows at `a + q·aStride` (one element at a time, broadcast) and B's rows at `b + κ·bStride` (16 lanes,
/// two SIMD8 loads). 12 accumulators (with the 2 loaded B vectors and one broadcast, 15 of AVX2's 16 vector
/// registers): per κ 2 loads, 6 broadcasts and 12 multiply-adds. Twelve independent chains cover the multiply-add
/// latency × throughput of current cores (8 chains, the earlier 4 × 16 tile, left the units idle part of the time).
private struct Tile6x16 {
    var r0lo = SIMD8<Float>(), r0hi = SIMD8<Float>(), r1lo = SIMD8<Float>(), r1hi = SIMD8<Float>()
    var r2lo = SIMD8<Float>(), r2hi = SIMD8<Float>(), r3lo = SIMD8<Float>(), r3hi = SIMD8<Float>()
    var r4lo = SIMD8<Float>(), r4hi = SIMD8<Float>(), r5lo = SIMD8<Float>(), r5hi = SIMD8<Float>()

    @inline(__always)
    init(a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int, count K: Int) {
        let a0 = a, a1 = a + aStride, a2 = a + 2 * aStride, a3 = a + 3 * aStride
        let a4 = a + 4 * aStride, a5 = a + 5 * aStride
        for kk in 0..<K {
            let row = b + kk * bStride
            let w0 = load8(row), w1 = load8(row + 8)
            var v = splat(a0[kk])
            r0lo = fma8(r0lo, v, w0)
            r0hi = fma8(r0hi, v, w1)
            v = splat(a1[kk])
            r1lo = fma8(r1lo, v, w0)
            r1hi = fma8(r1hi, v, w1)
            v = splat(a2[kk])
            r2lo = fma8(r2lo, v, w0)
            r2hi = fma8(r2hi, v, w1)
            v = splat(a3[kk])
            r3lo = fma8(r3lo, v, w0)
            r3hi = fma8(r3hi, v, w1)
            v = splat(a4[kk])
            r4lo = fma8(r4lo, v, w0)
            r4hi = fma8(r4hi, v, w1)
            v = splat(a5[kk])
            r5lo = fma8(r5lo, v, w0)
            r5hi = fma8(r5hi, v, w1)
        }
    }

    /// Row q (< 6) of the tile as (lanes 0..<8, lanes 8..<16).
    @inline(__always)
    func row(_ q: Int) -> (SIMD8<Float>, SIMD8<Float>) {
        switch q {
        case 0: return (r0lo, r0hi)
        case 1: return (r1lo, r1hi)
        case 2: return (r2lo, r2hi)
        case 3: return (r3lo, r3hi)
        case 4: return (r4lo, r4hi)
        default: return (r5lo, r5hi)
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

    @inline(__always)
    static func roundUp8(_ x: Int) -> Int { (x + 7) & ~7 }

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
        let mp = roundUp8(m), np = roundUp16(n)
        // Members per decode tile (the rows of `Tile6x16`).
        let tile = 6
        let W = params + L.wOffset, bias = params + L.bOffset, G = params + L.gOffset
        for s in 0..<batch {
            route(
                x: UnsafePointer(act.x + s * n), gate: G, layout: L, tieBreak: tieBreak, probs: act.probs + s * E,
                selected: act.selected + s * k, gates: act.gates + s * k)
        }
        // With k = 1 every sample receives exactly one expert's output, so the decode stores x̂ instead of adding
        // into a zeroed x̂: the same bits (0 + y = y, as y = g·ReLU(pre) is never −0 with g ≥ 0) without a zeroing
        // pass and a read of B·n floats (1.6 MB at n = 400: the forward's largest memory traffic after pre).
        if k != 1 { act.xhat.update(repeating: 0, count: batch * n) }
        let floats = n * mp + m * np + tile * mp + np
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buffer in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: batch * k + n) { memberBuffer in
                let wp = buffer.baseAddress!, wt = wp + n * mp, ht = wt + m * np, bp = ht + tile * mp
                let members = memberBuffer.baseAddress!, nz = members + batch * k
                for e in 0..<E {
                    let count = gatherMembers(act.selected, batch * k, expert: e, into: members)
                    if count == 0 { continue }
                    packExpert(W + e * n * m, n: n, m: m, mp: mp, np: np, wp: wp, wt: wt)
                    bp.update(repeating: 0, count: np)
                    bp.update(from: bias + e * n, count: n)
                    var q0 = 0
                    while q0 < count {
                        let rows = min(tile, count - q0)
                        for q in 0..<tile {
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
                        q0 += tile
                    }
                }
            }
        }
    }

    /// h (mp, padded lanes 0) = Σ_i x_i · Wp[i, :] over the nonzero x_i, in feature order. The nonzero indices are
    /// first compacted without branches into `nz` (n): at feature probability p only ~p·n rows are read, and the
    /// multiply-add loop has no data-dependent branch to mispredict. Up to 32 hidden units stay in 4 registers for
    /// one pass over the nonzero rows (mp = 24, e.g. m = 20, in one pass of 3).
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
            // 32 units per pass where they exist; the rest (8, 16 or 24: mp is a multiple of 8) in one more pass.
            let rest = mp - a0
            if rest >= 32 {
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
            } else if rest == 24 {
                var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>()
                for j in 0..<c {
                    let i = Int(nz[j])
                    let xv = splat(x[i])
                    let row = wp + i * mp + a0
                    acc0 = fma8(acc0, xv, load8(row))
                    acc1 = fma8(acc1, xv, load8(row + 8))
                    acc2 = fma8(acc2, xv, load8(row + 16))
                }
                store8(acc0, h + a0)
                store8(acc1, h + a0 + 8)
                store8(acc2, h + a0 + 16)
                a0 += 24
            } else if rest == 16 {
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
            } else {
                var acc0 = SIMD8<Float>()
                for j in 0..<c {
                    let i = Int(nz[j])
                    acc0 = fma8(acc0, splat(x[i]), load8(wp + i * mp + a0))
                }
                store8(acc0, h + a0)
                a0 += 8
            }
        }
    }

    /// pre_q = h_q Wt + b and x̂_s += g_q · ReLU(pre_q) for the tile's `rows` (≤ 6) members: a 6 × 16 register tile
    /// over (member, feature) per chunk of 16 features, K = m (12 accumulators; per hidden unit 2 loads of Wt, 6
    /// broadcasts, 12 multiply-adds).
    @inline(__always)
    static func decodeTile(
        ht: UnsafePointer<Float>, mp: Int, wt: UnsafePointer<Float>, np: Int, bp: UnsafePointer<Float>, n: Int,
        m: Int, rows: Int, members: UnsafePointer<Int32>, k: Int, act: MoEActivations
    ) {
        let zero = SIMD8<Float>()
        var i0 = 0
        while i0 < np {
            let c = Tile6x16(a: ht, aStride: mp, b: wt + i0, bStride: np, count: m)
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
                if k == 1 {
                    storeRow16(y0, y1, xh, width)
                } else if width == 16 {
                    store8(load8(xh) + y0, xh)
                    store8(load8(xh + 8) + y1, xh + 8)
                } else {
                    for j in 0..<width { xh[j] += j < 8 ? y0[j] : y1[j - 8] }
                }
            }
            for q in 0..<rows {
                let (lo, hi) = c.row(q)
                finish(q, lo, hi)
            }
            i0 += 16
        }
    }

    // MARK: - Backward

    /// Backward pass tiled per expert (see the file header), with `MoEKernels.backward`'s contract: accumulates
    /// dL/dW, dL/db, dL/dG into `grads` (caller zeroes it); same loss, LB term, ReLU'(0) = 0 and k = 1 router
    /// shortcut; leaves the last sample's dx̂ and dg in the `dxhat` / `dgate` scratch; activations unmodified.
    ///
    /// The members routed to an expert are taken in panels of up to `panel` (48). Per panel, the member rows are
    /// gathered as matrices H (rows × mp), X and D = dpre (rows × ps), then
    ///   dH = D Wp                 6 × 16 register tiles over (member, hidden), K = n
    ///   dWp += Dᵀ H + Xᵀ dH       6 × 16 register tiles over (feature, hidden), K = the panel's members:
    ///                             the dW block stays in 12 registers across the whole panel, so dW is read and
    ///                             written once per panel instead of once per 4 members.
    /// A panel's D, X, H and dH (≈ 170 KB at n = 400, m = 30) stay in L2 while its tiles sweep them.
    /// Summation order: dWp[i, a] accumulates member by member in batch order within a panel, panels in order, then
    /// is added to the caller's gradient once per expert (deterministic; a different order from the scalar kernel,
    /// so the bits differ from it within Float rounding).
    public static func backwardTiled(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout L: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        // Rows of the dW tiles (6 features each) and the padded row stride of the panel's D and X: whole 6-row
        // tiles and whole SIMD8 pairs, the padding lanes zero.
        let nr = (n + 5) / 6 * 6
        let mp = roundUp8(m), ps = roundUp16(nr)
        let panel = 48
        let twoScale = 2 * lossScale
        // wp, dwp (nr, mp); hp, dhp (panel, mp); dp, xp (panel, ps); dbp, coef (ps); dgs (B·k).
        let floats = 2 * nr * mp + 2 * panel * mp + 2 * panel * ps + 2 * ps + batch * k
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buffer in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(1, batch * k)) { memberBuffer in
                let wp = buffer.baseAddress!, dwp = wp + nr * mp, hp = dwp + nr * mp, dhp = hp + panel * mp
                let dp = dhp + panel * mp, xp = dp + panel * ps, dbp = xp + panel * ps, coef = dbp + ps
                let dgs = coef + ps
                let members = memberBuffer.baseAddress!
                dgs.update(repeating: 0, count: batch * k)
                // c_i = 2·scale·I_i, padded with zeros (the scalar kernel's (2·scale·I_i)·(x̂ − x) order).
                coef.update(repeating: 0, count: ps)
                for i in 0..<n { coef[i] = twoScale * importance[i] }
                // Padding rows of Wp (features n..<nr) are zero so the dH tiles read defined values; D's padding
                // lanes are zero, so they add nothing.
                wp.update(repeating: 0, count: nr * mp)
                for e in 0..<E {
                    let count = gatherMembers(act.selected, batch * k, expert: e, into: members)
                    if count == 0 { continue }
                    packExpert(params + L.wOffset + e * n * m, n: n, m: m, mp: mp, np: 0, wp: wp, wt: nil)
                    dwp.update(repeating: 0, count: nr * mp)
                    dbp.update(repeating: 0, count: ps)
                    var q0 = 0
                    while q0 < count {
                        let rows = min(panel, count - q0)
                        // The dH tiles run over whole groups of 6 members: rows up to the next multiple of 6 are
                        // zero (their dH is computed and never read).
                        let tileRows = (rows + 5) / 6 * 6
                        for q in 0..<tileRows {
                            let h = hp + q * mp, d = dp + q * ps, xq = xp + q * ps
                            guard q < rows else {
                                d.update(repeating: 0, count: ps)
                                continue
                            }
                            let t = Int(members[q0 + q])
                            let s = t / k
                            h.update(from: act.hidden + t * m, count: m)
                            (h + m).update(repeating: 0, count: mp - m)
                            xq.update(from: act.x + s * n, count: n)
                            (xq + n).update(repeating: 0, count: ps - n)
                            dgs[t] = memberOutputGradient(
                                x: xq, xhat: act.xhat + s * n, pre: act.preact + t * n, coef: coef, gate: act.gates[t],
                                n: n, np: ps, dpre: d, db: dbp)
                        }
                        hiddenGradientPanel(dp: dp, ps: ps, wp: wp, mp: mp, n: n, tileRows: tileRows, dhp: dhp)
                        weightGradientPanel(dp: dp, xp: xp, ps: ps, hp: hp, dhp: dhp, mp: mp, nr: nr, rows: rows, dwp: dwp)
                        q0 += rows
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

    /// dH (tileRows × mp) = D Wp: dh_q = Σ_i dpre_qi · Wp[i, :] for every panel member q < tileRows (a multiple
    /// of 6), as 6 × 16 register tiles over (member, hidden unit), K = n (per feature 2 loads of Wp, 6 broadcasts,
    /// 12 multiply-adds). D's rows have stride ps; rows beyond the panel's members are zero.
    @inline(__always)
    static func hiddenGradientPanel(
        dp: UnsafePointer<Float>, ps: Int, wp: UnsafePointer<Float>, mp: Int, n: Int, tileRows: Int,
        dhp: UnsafeMutablePointer<Float>
    ) {
        var q0 = 0
        while q0 < tileRows {
            var a0 = 0
            while a0 + 16 <= mp {
                let c = Tile6x16(a: dp + q0 * ps, aStride: ps, b: wp + a0, bStride: mp, count: n)
                for q in 0..<6 {
                    let (lo, hi) = c.row(q)
                    let dst = dhp + (q0 + q) * mp + a0
                    store8(lo, dst)
                    store8(hi, dst + 8)
                }
                a0 += 16
            }
            if a0 < mp {
                // The last 8 hidden units (mp = 8 mod 16): a 6 × 8 tile, 6 accumulators.
                let a = dp + q0 * ps, b = wp + a0
                var r0 = SIMD8<Float>(), r1 = SIMD8<Float>(), r2 = SIMD8<Float>()
                var r3 = SIMD8<Float>(), r4 = SIMD8<Float>(), r5 = SIMD8<Float>()
                for kk in 0..<n {
                    let w = load8(b + kk * mp)
                    r0 = fma8(r0, splat(a[kk]), w)
                    r1 = fma8(r1, splat(a[ps + kk]), w)
                    r2 = fma8(r2, splat(a[2 * ps + kk]), w)
                    r3 = fma8(r3, splat(a[3 * ps + kk]), w)
                    r4 = fma8(r4, splat(a[4 * ps + kk]), w)
                    r5 = fma8(r5, splat(a[5 * ps + kk]), w)
                }
                let dst = dhp + q0 * mp + a0
                store8(r0, dst)
                store8(r1, dst + mp)
                store8(r2, dst + 2 * mp)
                store8(r3, dst + 3 * mp)
                store8(r4, dst + 4 * mp)
                store8(r5, dst + 5 * mp)
            }
            q0 += 6
        }
    }

    /// dWp[i, a] += Σ_q dpre_qi · h_qa + x_qi · dh_qa over the panel's `rows` members (the tied weight's decoder
    /// and encoder terms): for each 6 × 16 block of dWp (features i0..<i0+6, hidden units a0..<a0+16, nr a multiple
    /// of 6) the block is loaded into 12 registers, receives both terms of every member in order, and is stored
    /// once. Per member: 2 + 2 loads (h, dh), 6 + 6 broadcasts (dpre, x), 24 multiply-adds.
    @inline(__always)
    static func weightGradientPanel(
        dp: UnsafePointer<Float>, xp: UnsafePointer<Float>, ps: Int, hp: UnsafePointer<Float>,
        dhp: UnsafePointer<Float>, mp: Int, nr: Int, rows: Int, dwp: UnsafeMutablePointer<Float>
    ) {
        var i0 = 0
        while i0 < nr {
            var a0 = 0
            while a0 + 16 <= mp {
                let w = dwp + i0 * mp + a0
                var c0lo = load8(w), c0hi = load8(w + 8)
                var c1lo = load8(w + mp), c1hi = load8(w + mp + 8)
                var c2lo = load8(w + 2 * mp), c2hi = load8(w + 2 * mp + 8)
                var c3lo = load8(w + 3 * mp), c3hi = load8(w + 3 * mp + 8)
                var c4lo = load8(w + 4 * mp), c4hi = load8(w + 4 * mp + 8)
                var c5lo = load8(w + 5 * mp), c5hi = load8(w + 5 * mp + 8)
                for q in 0..<rows {
                    let h = hp + q * mp + a0, g = dhp + q * mp + a0
                    let d = dp + q * ps + i0, x = xp + q * ps + i0
                    // Decoder term dpre_qi · h_q.
                    var lo = load8(h), hi = load8(h + 8)
                    var v = splat(d[0])
                    c0lo = fma8(c0lo, v, lo)
                    c0hi = fma8(c0hi, v, hi)
                    v = splat(d[1])
                    c1lo = fma8(c1lo, v, lo)
                    c1hi = fma8(c1hi, v, hi)
                    v = splat(d[2])
                    c2lo = fma8(c2lo, v, lo)
                    c2hi = fma8(c2hi, v, hi)
                    v = splat(d[3])
                    c3lo = fma8(c3lo, v, lo)
                    c3hi = fma8(c3hi, v, hi)
                    v = splat(d[4])
                    c4lo = fma8(c4lo, v, lo)
                    c4hi = fma8(c4hi, v, hi)
                    v = splat(d[5])
                    c5lo = fma8(c5lo, v, lo)
                    c5hi = fma8(c5hi, v, hi)
                    // Encoder term x_qi · dh_q.
                    lo = load8(g)
                    hi = load8(g + 8)
                    v = splat(x[0])
                    c0lo = fma8(c0lo, v, lo)
                    c0hi = fma8(c0hi, v, hi)
                    v = splat(x[1])
                    c1lo = fma8(c1lo, v, lo)
                    c1hi = fma8(c1hi, v, hi)
                    v = splat(x[2])
                    c2lo = fma8(c2lo, v, lo)
                    c2hi = fma8(c2hi, v, hi)
                    v = splat(x[3])
                    c3lo = fma8(c3lo, v, lo)
                    c3hi = fma8(c3hi, v, hi)
                    v = splat(x[4])
                    c4lo = fma8(c4lo, v, lo)
                    c4hi = fma8(c4hi, v, hi)
                    v = splat(x[5])
                    c5lo = fma8(c5lo, v, lo)
                    c5hi = fma8(c5hi, v, hi)
                }
                store8(c0lo, w)
                store8(c0hi, w + 8)
                store8(c1lo, w + mp)
                store8(c1hi, w + mp + 8)
                store8(c2lo, w + 2 * mp)
                store8(c2hi, w + 2 * mp + 8)
                store8(c3lo, w + 3 * mp)
                store8(c3hi, w + 3 * mp + 8)
                store8(c4lo, w + 4 * mp)
                store8(c4hi, w + 4 * mp + 8)
                store8(c5lo, w + 5 * mp)
                store8(c5hi, w + 5 * mp + 8)
                a0 += 16
            }
            if a0 < mp {
                // The last 8 hidden units (mp = 8 mod 16): a 6 × 8 block, 6 accumulators.
                let w = dwp + i0 * mp + a0
                var c0 = load8(w), c1 = load8(w + mp), c2 = load8(w + 2 * mp)
                var c3 = load8(w + 3 * mp), c4 = load8(w + 4 * mp), c5 = load8(w + 5 * mp)
                for q in 0..<rows {
                    let h = load8(hp + q * mp + a0), g = load8(dhp + q * mp + a0)
                    let d = dp + q * ps + i0, x = xp + q * ps + i0
                    c0 = fma8(fma8(c0, splat(d[0]), h), splat(x[0]), g)
                    c1 = fma8(fma8(c1, splat(d[1]), h), splat(x[1]), g)
                    c2 = fma8(fma8(c2, splat(d[2]), h), splat(x[2]), g)
                    c3 = fma8(fma8(c3, splat(d[3]), h), splat(x[3]), g)
                    c4 = fma8(fma8(c4, splat(d[4]), h), splat(x[4]), g)
                    c5 = fma8(fma8(c5, splat(d[5]), h), splat(x[5]), g)
                }
                store8(c0, w)
                store8(c1, w + mp)
                store8(c2, w + 2 * mp)
                store8(c3, w + 3 * mp)
                store8(c4, w + 4 * mp)
                store8(c5, w + 5 * mp)
            }
            i0 += 6
        }
    }
}
