// SIMD variant of the toy-MoE kernels: same signatures, same activations, same gradient-accumulation contract as
// `MoEKernels` (see MoEKernels.swift for the layout and the math). Only the loop bodies differ.
//
// One source, three modules: this file is compiled as `ToyMoEKernelsSIMD` (baseline ISA), and through symlinks as
// `ToyMoEKernelsAVX2` (-march=x86-64-v3, TOYMOE_FMA) and `ToyMoEKernelsAVX512` (-march=x86-64-v4, TOYMOE_FMA,
// TOYMOE_AVX512). `KernelVariant` decides at run time which copy this CPU may call (Package.swift explains why
// they are separate modules). Callers name the copy by module: `ToyMoEKernelsAVX2.MoEKernelsSIMD.forward`.
//
// Code generation (measured when these kernels were written): in the baseline build `SIMD*.addProduct` lowers to one libm
// `fmaf` call per lane, so every multiply-accumulate goes through `madd`, which is a fused multiply-add only where
// the module is built with FMA and `acc + a * b` otherwise. SIMD8<Float> is two SSE registers in the baseline
// build and one YMM register with AVX2/AVX-512.
//
// Memory: the activation buffers come from one `Workspace` allocation at arbitrary Float offsets, and parameter rows
// start at multiples of m, so nothing is 16-byte aligned: every vector access goes through `loadUnaligned` /
// `storeBytes` (movups, which costs nothing extra on aligned data). No vector access ever touches memory outside
// the row it belongs to: each loop finishes with a SIMD4 step and a scalar tail instead of over-reading.
//
// Summation order differs from the scalar kernels (partial sums per lane), and FMA rounds once where the baseline
// rounds twice, so the three builds agree with the scalar kernels (and each other) to Float rounding, not bitwise.
// AdamW is element-wise with the scalar kernel's exact operation order and no `madd`: bitwise identical in every
// build. Sampling is not vectorized here: its random draws are sequential per model, so callers keep
// `MoEKernels.sampleBatch`.
import ToyMoEKernels

/// acc + a·b, fused (one rounding) where this module is built with FMA, else a multiply and an add.
@inline(__always)
private func madd<V: SIMD>(_ acc: V, _ a: V, _ b: V) -> V where V.Scalar == Float {
    #if TOYMOE_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

@inline(__always)
private func madd(_ acc: Float, _ a: Float, _ b: Float) -> Float {
    #if TOYMOE_FMA
    return acc.addingProduct(a, b)
    #else
    return acc + a * b
    #endif
}

// MARK: - Unaligned vector access

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

@inline(__always)
private func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
}

public enum MoEKernelsSIMD {

    // MARK: - Vector primitives (length-generic, with tails)

    /// Σ_t a[t]·b[t] over `count` elements. Two SIMD8 accumulators (4 independent SSE add chains) hide the add
    /// latency on long rows (the router's n-length rows); then one SIMD8, one SIMD4 and a scalar tail.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var t = 0
        while t + 16 <= count {
            acc0 = madd(acc0, load8(a + t), load8(b + t))
            acc1 = madd(acc1, load8(a + t + 8), load8(b + t + 8))
            t += 16
        }
        if t + 8 <= count {
            acc0 = madd(acc0, load8(a + t), load8(b + t))
            t += 8
        }
        acc0 += acc1
        var acc4 = acc0.lowHalf + acc0.highHalf
        if t + 4 <= count {
            acc4 = madd(acc4, load4(a + t), load4(b + t))
            t += 4
        }
        var s = acc4.sum()
        while t < count {
            s = madd(s, a[t], b[t])
            t += 1
        }
        return s
    }

    /// y[t] += alpha · x[t] over `count` elements (SIMD8 chunks, SIMD4, scalar tail).
    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ count: Int) {
        let a8 = SIMD8<Float>(repeating: alpha)
        var t = 0
        while t + 8 <= count {
            store8(madd(load8(y + t), load8(x + t), a8), y + t)
            t += 8
        }
        if t + 4 <= count {
            store4(madd(load4(y + t), load4(x + t), a8.lowHalf), y + t)
            t += 4
        }
        while t < count {
            y[t] = madd(y[t], x[t], alpha)
            t += 1
        }
    }

    /// Four consecutive rows' dot products with one vector: (r0·h, r1·h, r2·h, r3·h), rows `w + r·stride`,
    /// length `count`. Each h chunk is loaded once for four rows, and the four rows give 8 independent SSE add chains
    /// (the scalar decode is one serial add chain per row, latency-bound). The 4×SIMD4 partial sums are reduced with a
    /// transposing pairwise add instead of four separate horizontal sums.
    @inline(__always)
    static func dot4Rows(_ w: UnsafePointer<Float>, stride: Int, _ h: UnsafePointer<Float>, _ count: Int) -> SIMD4<Float> {
        let w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var t = 0
        while t + 8 <= count {
            let hv = load8(h + t)
            a0 = madd(a0, load8(w0 + t), hv)
            a1 = madd(a1, load8(w1 + t), hv)
            a2 = madd(a2, load8(w2 + t), hv)
            a3 = madd(a3, load8(w3 + t), hv)
            t += 8
        }
        var r0 = a0.lowHalf + a0.highHalf, r1 = a1.lowHalf + a1.highHalf
        var r2 = a2.lowHalf + a2.highHalf, r3 = a3.lowHalf + a3.highHalf
        if t + 4 <= count {
            let hv = load4(h + t)
            r0 = madd(r0, load4(w0 + t), hv)
            r1 = madd(r1, load4(w1 + t), hv)
            r2 = madd(r2, load4(w2 + t), hv)
            r3 = madd(r3, load4(w3 + t), hv)
            t += 4
        }
        // Transpose-reduce: s01 = (r0₀+r0₂, r0₁+r0₃, r1₀+r1₂, r1₁+r1₃), likewise s23; then add even and odd lanes.
        let s01 = SIMD4(lowHalf: r0.lowHalf + r0.highHalf, highHalf: r1.lowHalf + r1.highHalf)
        let s23 = SIMD4(lowHalf: r2.lowHalf + r2.highHalf, highHalf: r3.lowHalf + r3.highHalf)
        let both = SIMD8(lowHalf: s01, highHalf: s23)
        var sums = both.evenHalf + both.oddHalf
        while t < count {
            sums = madd(sums, SIMD4(w0[t], w1[t], w2[t], w3[t]), SIMD4(repeating: h[t]))
            t += 1
        }
        return sums
    }

    // MARK: - Router

    /// Router forward for one sample, as `MoEKernels.route` (same softmax, same top-k and tie rule), with the E
    /// logits z_e = G_e · x computed as SIMD dot products over the n features.
    /// - Shapes: `x` (n), `gate` (E, n), `probs` (E), `selected` (k), `gates` (k).
    @inline(__always)
    public static func route(
        x: UnsafePointer<Float>, gate: UnsafePointer<Float>, layout L: MoELayout, tieBreak: TieBreak,
        probs: UnsafeMutablePointer<Float>, selected: UnsafeMutablePointer<Int32>, gates: UnsafeMutablePointer<Float>
    ) {
        let n = L.n, E = L.experts, k = L.active
        if E == 1 {
            probs[0] = 1
            selected[0] = 0
            gates[0] = 1
            return
        }
        for e in 0..<E { probs[e] = dot(gate + e * n, x, n) }
        // Softmax, top-k and renormalization are shared with the scalar kernel (k ≤ E is small).
        MoEKernels.selectTopK(logitsToProbabilities: probs, experts: E, active: k, tieBreak: tieBreak, selected: selected, gates: gates)
    }

    // MARK: - Forward

    /// Forward pass over a batch with sparse dispatch; writes exactly the activations `MoEKernels.forward` writes
    /// (probs, selected, gates, hidden, preact, xhat).
    /// - Shapes: `params` (layout.count); activations as documented on `MoEActivations`.
    /// - Tiling, per sample and selected expert e:
    ///   encode h = W_eᵀ x (m): for each nonzero x_i (sparse skip), h += x_i · W_e[i, :] as SIMD8/SIMD4 chunks over
    ///   the hidden dimension a, scalar tail for m mod 4;
    ///   decode pre = W_e h + b_e (n): rows in blocks of 4 (`dot4Rows`, SIMD8 over a), the n mod 4 remaining rows
    ///   with `dot`; x̂ += g · ReLU(pre) as SIMD4 over the same 4 features.
    public static func forward(
        params: UnsafePointer<Float>, layout L: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations
    ) {
        if usesTiledPath(L) {
            forwardTiled(params: params, layout: L, batch: batch, tieBreak: tieBreak, act: act)
        } else if usesNarrowPath(L) {
            forwardNarrow(params: params, layout: L, batch: batch, tieBreak: tieBreak, act: act)
        } else {
            forwardPerSample(params: params, layout: L, batch: batch, tieBreak: tieBreak, act: act)
        }
    }

    /// The forward pass one sample at a time (the path `forward` takes for experts neither tiled nor narrow: fewer
    /// than 8 features, see `usesTiledPath` and `usesNarrowPath`).
    public static func forwardPerSample(
        params: UnsafePointer<Float>, layout L: MoELayout, batch: Int, tieBreak: TieBreak, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let W = params + L.wOffset, bias = params + L.bOffset, G = params + L.gOffset
        let zero4 = SIMD4<Float>()
        for s in 0..<batch {
            let x = UnsafePointer(act.x + s * n)
            route(
                x: x, gate: G, layout: L, tieBreak: tieBreak, probs: act.probs + s * E,
                selected: act.selected + s * k, gates: act.gates + s * k)
            let xhat = act.xhat + s * n
            for j in 0..<k {
                let e = Int(act.selected[s * k + j])
                let g = act.gates[s * k + j]
                let We = W + e * n * m
                let be = bias + e * n
                let h = act.hidden + (s * k + j) * m
                let pre = act.preact + (s * k + j) * n
                // encode: h = W_eᵀ x. Row-wise axpy reads W contiguously and skips the zero inputs (at feature
                // probability p only ~p·n rows are touched, so this is a small part of the forward cost).
                h.update(repeating: 0, count: m)
                for i in 0..<n {
                    let xi = x[i]
                    if xi == 0 { continue }
                    axpy(h, xi, We + i * m, m)
                }
                // decode: pre = W_e h + b_e and x̂ += g·ReLU(pre). The first expert stores x̂ instead of
                // accumulating into a zeroed row: 0 + g·v == g·v, so this equals the scalar kernel's zero-then-add.
                let hc = UnsafePointer(h)
                let g4 = SIMD4<Float>(repeating: g)
                var i = 0
                while i + 4 <= n {
                    let v = load4(be + i) + dot4Rows(We + i * m, stride: m, hc, m)
                    store4(v, pre + i)
                    // ReLU as a select: lanes with v ≤ 0 contribute exactly 0 (scalar: `if v > 0`).
                    let y = g4 * v.replacing(with: zero4, where: v .<= zero4)
                    store4(j == 0 ? y : load4(xhat + i) + y, xhat + i)
                    i += 4
                }
                while i < n {
                    let v = be[i] + dot(We + i * m, hc, m)
                    pre[i] = v
                    let y: Float = v > 0 ? g * v : 0
                    xhat[i] = j == 0 ? y : xhat[i] + y
                    i += 1
                }
            }
        }
    }

    // MARK: - Backward

    /// Backward pass, as `MoEKernels.backward`: accumulates dL/dW, dL/db, dL/dG into `grads` (caller zeroes it);
    /// same loss, same LB term, same ReLU'(0) = 0 and k = 1 router shortcut; leaves the last sample's dx̂ and dg in
    /// the `dxhat` / `dgate` scratch as the scalar kernel does.
    /// - Tiling: the (sample, slot) pairs routed to one expert e are processed in groups of 4. For each feature row i
    ///   the W_e and dW_e rows are loaded once for the whole group (per sample they are streamed from L2: W and dW
    ///   of the P3 shape are 2 × 48 KB, more than L1), and over the hidden dimension in SIMD8/SIMD4 chunks with a
    ///   scalar tail: dW_e[i, :] += Σ_q dpre_q,i · h_q and dh_q += dpre_q,i · W_e[i, :]. dpre = g · dx̂ · [pre > 0] is
    ///   computed on the fly (dx̂_i = (2·scale·I_i)(x̂_i − x_i), the scalar kernel's operation order); a row where no
    ///   member of the group is active is skipped. Then dW_e[i, :] += x_i · dh_q over each member's nonzero x_i
    ///   (sparse skip). Router: per sample, dG_e += dz_e · x as a SIMD axpy over n.
    /// - Scratch: 4·m floats for the group's dh and B·k floats for dg, on the stack when small
    ///   (`withUnsafeTemporaryAllocation`); the activations are not modified.
    public static func backward(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout L: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations
    ) {
        if usesTiledPath(L) {
            backwardTiled(
                params: params, grads: grads, layout: L, batch: batch, importance: importance, lossScale: lossScale,
                lbAlpha: lbAlpha, act: act)
        } else if usesNarrowPath(L) {
            backwardNarrow(
                params: params, grads: grads, layout: L, batch: batch, importance: importance, lossScale: lossScale,
                lbAlpha: lbAlpha, act: act)
        } else {
            backwardPerSample(
                params: params, grads: grads, layout: L, batch: batch, importance: importance, lossScale: lossScale,
                lbAlpha: lbAlpha, act: act)
        }
    }

    /// The backward pass in groups of 4 samples per expert without packing (the path `backward` takes for experts
    /// neither tiled nor narrow: fewer than 8 features, see `usesTiledPath` and `usesNarrowPath`).
    public static func backwardPerSample(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout L: MoELayout, batch: Int,
        importance: UnsafePointer<Float>, lossScale: Float, lbAlpha: Float?, act: MoEActivations
    ) {
        let n = L.n, m = L.m, E = L.experts, k = L.active
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * m + batch * k) { scratch in
            let dhs = scratch.baseAddress!  // (4, m): dh of each group member
            let dgs = dhs + 4 * m  // (B, k): dL/dg of every (sample, slot)
            dgs.update(repeating: 0, count: batch * k)
            let twoScale = 2 * lossScale
            for e in 0..<E {
                // Members are flat (sample, slot) indices t = s·k + j with selected[t] == e, in batch order.
                var members = SIMD4<Int>(repeating: -1)
                var count = 0
                for t in 0..<(batch * k) where Int(act.selected[t]) == e {
                    members[count] = t
                    count += 1
                    if count == 4 {
                        expertGroup(params: params, grads: grads, layout: L, expert: e, members: members, count: 4,
                                    importance: importance, twoScale: twoScale, act: act, dhs: dhs, dgs: dgs)
                        count = 0
                    }
                }
                if count > 0 {
                    expertGroup(params: params, grads: grads, layout: L, expert: e, members: members, count: count,
                                importance: importance, twoScale: twoScale, act: act, dhs: dhs, dgs: dgs)
                }
            }
            // The scratch outputs of the scalar kernel: the last sample's dx̂ and dg.
            if batch > 0 {
                let s = batch - 1
                for i in 0..<n { act.dxhat[i] = twoScale * importance[i] * (act.xhat[s * n + i] - act.x[s * n + i]) }
                for j in 0..<k { act.dgate[j] = dgs[s * k + j] }
            }
            routerBackward(grads: grads, layout: L, batch: batch, lbAlpha: lbAlpha, act: act, dgs: dgs)
        }
    }

    /// One group of up to 4 (sample, slot) pairs routed to `expert` (see `backward`). Unused member slots get
    /// dpre = 0 and point at member 0's rows, so the vector loop always runs 4 wide.
    @inline(__always)
    static func expertGroup(
        params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>, layout L: MoELayout, expert e: Int,
        members: SIMD4<Int>, count: Int, importance: UnsafePointer<Float>, twoScale: Float, act: MoEActivations,
        dhs: UnsafeMutablePointer<Float>, dgs: UnsafeMutablePointer<Float>
    ) {
        let n = L.n, m = L.m, k = L.active
        let We = params + L.wOffset + e * n * m
        let dWe = grads + L.wOffset + e * n * m
        let dbe = grads + L.bOffset + e * n
        // Per member q: its sample's x and x̂, its h and pre, its gate (0 for unused slots).
        let t0 = members[0]
        func t(_ q: Int) -> Int { q < count ? members[q] : t0 }
        let s0 = t(0) / k, s1 = t(1) / k, s2 = t(2) / k, s3 = t(3) / k
        let x0 = UnsafePointer(act.x + s0 * n), x1 = UnsafePointer(act.x + s1 * n)
        let x2 = UnsafePointer(act.x + s2 * n), x3 = UnsafePointer(act.x + s3 * n)
        let xh0 = UnsafePointer(act.xhat + s0 * n), xh1 = UnsafePointer(act.xhat + s1 * n)
        let xh2 = UnsafePointer(act.xhat + s2 * n), xh3 = UnsafePointer(act.xhat + s3 * n)
        let h0 = UnsafePointer(act.hidden + t(0) * m), h1 = UnsafePointer(act.hidden + t(1) * m)
        let h2 = UnsafePointer(act.hidden + t(2) * m), h3 = UnsafePointer(act.hidden + t(3) * m)
        let p0 = UnsafePointer(act.preact + t(0) * n), p1 = UnsafePointer(act.preact + t(1) * n)
        let p2 = UnsafePointer(act.preact + t(2) * n), p3 = UnsafePointer(act.preact + t(3) * n)
        let gate = SIMD4<Float>(
            act.gates[t(0)], count > 1 ? act.gates[t(1)] : 0, count > 2 ? act.gates[t(2)] : 0,
            count > 3 ? act.gates[t(3)] : 0)
        let dh0 = dhs, dh1 = dhs + m, dh2 = dhs + 2 * m, dh3 = dhs + 3 * m
        dhs.update(repeating: 0, count: 4 * m)
        var dg = SIMD4<Float>()
        let zero = SIMD4<Float>()
        for i in 0..<n {
            let v = SIMD4(p0[i], p1[i], p2[i], p3[i])
            let active = v .> zero
            if !any(active) { continue }
            let c = twoScale * importance[i]
            let dx = SIMD4(repeating: c) * (SIMD4(xh0[i], xh1[i], xh2[i], xh3[i]) - SIMD4(x0[i], x1[i], x2[i], x3[i]))
            // dg += dx̂·pre and dpre = g·dx̂ on active lanes only (scalar: `guard v > 0`); unused slots have g = 0.
            dg += (dx * v).replacing(with: 0, where: .!active)
            let dpre = (gate * dx).replacing(with: 0, where: .!active)
            // db in member order, as the scalar kernel sums samples in batch order.
            dbe[i] += dpre[0]
            dbe[i] += dpre[1]
            dbe[i] += dpre[2]
            dbe[i] += dpre[3]
            let wrow = We + i * m, dwrow = dWe + i * m
            var a = 0
            let d0 = SIMD8(repeating: dpre[0]), d1 = SIMD8(repeating: dpre[1])
            let d2 = SIMD8(repeating: dpre[2]), d3 = SIMD8(repeating: dpre[3])
            while a + 8 <= m {
                let w = load8(wrow + a)
                let dw = madd(madd(madd(madd(load8(dwrow + a), d0, load8(h0 + a)), d1, load8(h1 + a)), d2,
                                   load8(h2 + a)), d3, load8(h3 + a))
                store8(dw, dwrow + a)
                store8(madd(load8(dh0 + a), w, d0), dh0 + a)
                store8(madd(load8(dh1 + a), w, d1), dh1 + a)
                store8(madd(load8(dh2 + a), w, d2), dh2 + a)
                store8(madd(load8(dh3 + a), w, d3), dh3 + a)
                a += 8
            }
            if a + 4 <= m {
                let w = load4(wrow + a)
                let e0 = d0.lowHalf, e1 = d1.lowHalf, e2 = d2.lowHalf, e3 = d3.lowHalf
                let dw = madd(madd(madd(madd(load4(dwrow + a), e0, load4(h0 + a)), e1, load4(h1 + a)), e2,
                                   load4(h2 + a)), e3, load4(h3 + a))
                store4(dw, dwrow + a)
                store4(madd(load4(dh0 + a), w, e0), dh0 + a)
                store4(madd(load4(dh1 + a), w, e1), dh1 + a)
                store4(madd(load4(dh2 + a), w, e2), dh2 + a)
                store4(madd(load4(dh3 + a), w, e3), dh3 + a)
                a += 4
            }
            while a < m {
                let w = wrow[a]
                dwrow[a] += dpre[0] * h0[a] + dpre[1] * h1[a] + dpre[2] * h2[a] + dpre[3] * h3[a]
                dh0[a] += w * dpre[0]
                dh1[a] += w * dpre[1]
                dh2[a] += w * dpre[2]
                dh3[a] += w * dpre[3]
                a += 1
            }
        }
        // Tied encoder: dW[i, :] += x_i · dh_q over each member's nonzero inputs.
        for q in 0..<count {
            dgs[members[q]] += dg[q]
            let xq = q == 0 ? x0 : q == 1 ? x1 : q == 2 ? x2 : x3
            let dhq = UnsafePointer(dhs + q * m)
            for i in 0..<n {
                let xi = xq[i]
                if xi == 0 { continue }
                axpy(dWe + i * m, xi, dhq, m)
            }
        }
    }

    /// Router backward for every sample, as the scalar kernel's (dπ from the renormalization and L_LB, softmax
    /// Jacobian), with dg read from the (B, k) scratch and dG_e += dz_e · x as a SIMD axpy.
    @inline(__always)
    static func routerBackward(
        grads: UnsafeMutablePointer<Float>, layout L: MoELayout, batch: Int, lbAlpha: Float?, act: MoEActivations,
        dgs: UnsafePointer<Float>
    ) {
        let n = L.n, E = L.experts, k = L.active
        let routerNeeded = E > 1 && (k > 1 || lbAlpha != nil)
        guard routerNeeded else { return }
        let dG = grads + L.gOffset
        let lbCoefficient: Float = lbAlpha.map { $0 * Float(E) / Float(batch) } ?? 0
        for s in 0..<batch {
            let x = UnsafePointer(act.x + s * n)
            let probs = act.probs + s * E
            let dprob = act.dprob
            for e in 0..<E { dprob[e] = lbCoefficient * act.dispatchFraction[e] }
            if k > 1 {
                var selectedSum: Float = 0
                var weighted: Float = 0
                for j in 0..<k {
                    selectedSum += probs[Int(act.selected[s * k + j])]
                    weighted += dgs[s * k + j] * act.gates[s * k + j]
                }
                for j in 0..<k {
                    dprob[Int(act.selected[s * k + j])] += (dgs[s * k + j] - weighted) / selectedSum
                }
            }
            var dot: Float = 0
            for e in 0..<E { dot += probs[e] * dprob[e] }
            for e in 0..<E {
                let dz = probs[e] * (dprob[e] - dot)
                if dz == 0 { continue }
                axpy(dG + e * n, dz, x, n)
            }
        }
    }

    // MARK: - Peak probe

    /// A throughput probe for the benchmark's peak: 12 independent SIMD8 multiply-add chains (one fused
    /// multiply-add per lane where this module is built with FMA, a multiply and an add otherwise) for `iterations`
    /// rounds. 12 chains cover the multiply-add latency at two issues per cycle, so this measures throughput; the
    /// accumulators stay in registers because the loop calls nothing. Flops: iterations · 12 · 8 · 2.
    @inline(never)
    public static func peakProbe(iterations: Int, scale: Float) -> Float {
        let mul = SIMD8<Float>(repeating: scale), add = SIMD8<Float>(repeating: 1e-7)
        var a0 = SIMD8<Float>(repeating: 0.1), a1 = a0 + 0.1, a2 = a0 + 0.2, a3 = a0 + 0.3, a4 = a0 + 0.4
        var a5 = a0 + 0.5, a6 = a0 + 0.6, a7 = a0 + 0.7, a8 = a0 + 0.8, a9 = a0 + 0.9, a10 = a0 + 1, a11 = a0 + 1.1
        for _ in 0..<iterations {
            a0 = madd(add, a0, mul); a1 = madd(add, a1, mul); a2 = madd(add, a2, mul); a3 = madd(add, a3, mul)
            a4 = madd(add, a4, mul); a5 = madd(add, a5, mul); a6 = madd(add, a6, mul); a7 = madd(add, a7, mul)
            a8 = madd(add, a8, mul); a9 = madd(add, a9, mul); a10 = madd(add, a10, mul); a11 = madd(add, a11, mul)
        }
        return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).sum()
    }

    // MARK: - Optimizer

    /// One AdamW step with `MoEKernels.adamW`'s semantics, over the flat buffer in SIMD8 chunks (two per iteration
    /// for independent dependency chains through sqrt and division); the tail is `MoEKernels.adamW`. Each lane performs the scalar
    /// kernel's operations in the same order (IEEE mul/add/sqrt/div are correctly rounded lane by lane and nothing
    /// is contracted into FMA in this build), so the result is bitwise identical to the scalar kernel.
    public static func adamW(
        params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, m1: UnsafeMutablePointer<Float>,
        m2: UnsafeMutablePointer<Float>, count: Int, step: Int, lr: Double, beta1: Double, beta2: Double,
        eps: Double, weightDecay: Double
    ) {
        let c = AdamWCoefficients(step: step, lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        let stepSize = c.stepSize, bc2Sqrt = c.bc2Sqrt, decay = c.decay, b2 = c.beta2, e = c.eps, c1 = c.c1, c2 = c.c2

        @inline(__always)
        func chunk(_ i: Int) {
            let g = load8(grads + i)
            let p = load8(params + i) * SIMD8(repeating: decay)
            let mOld = load8(m1 + i)
            let mi = mOld + SIMD8(repeating: c1) * (g - mOld)
            let vi = load8(m2 + i) * SIMD8(repeating: b2) + SIMD8(repeating: c2) * g * g
            store8(mi, m1 + i)
            store8(vi, m2 + i)
            let denom = vi.squareRoot() / SIMD8(repeating: bc2Sqrt) + SIMD8(repeating: e)
            store8(p - SIMD8(repeating: stepSize) * (mi / denom), params + i)
        }

        var i = 0
        while i + 16 <= count {
            chunk(i)
            chunk(i + 8)
            i += 16
        }
        if i + 8 <= count {
            chunk(i)
            i += 8
        }
        // The tail (count mod 8) is the scalar kernel itself: same step, same coefficients, same bits.
        if i < count {
            MoEKernels.adamW(
                params: params + i, grads: grads + i, m1: m1 + i, m2: m2 + i, count: count - i, step: step, lr: lr,
                beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        }
    }
}
