import Testing
import ToyMoE
import ToyMoEKernels
import ToyMoEKernelsAVX2
import ToyMoEKernelsAVX512
import ToyMoEKernelsSIMD

/// The feature-major ("narrow") SIMD path for experts with m < 8 (`MoEKernelsSIMD.forwardNarrow` /
/// `backwardNarrow`), in every SIMD build this CPU runs: against the scalar kernels at the Fig. 3 / Table 1 shapes
/// and on awkward routed shapes (m = 1 and 3, k = E, experts no sample is routed to, odd n, inputs with every
/// feature present and with almost none), its top-k against the scalar top-k bit for bit, and its gradient against
/// finite differences of the naive Double loss.
@Suite struct NarrowKernelTests {

    /// (forward, backward) of the narrow path of every runnable SIMD build.
    static var builds: [(name: String, forward: KernelSet.Forward, backward: KernelSet.Backward)] {
        SIMDKernelTests.variants.compactMap { v in
            KernelSet(v).paths.first { $0.name == "narrow" }.map { ("\(v)", $0.forward, $0.backward) }
        }
    }

    @Test("Every SIMD build has a narrow path, and auto-dispatch uses it for m < 8 and routed m < 16")
    func pathExists() {
        #expect(Self.builds.count == SIMDKernelTests.variants.count)
        #expect(ToyMoEKernelsSIMD.MoEKernelsSIMD.usesNarrowPath(MoELayout(n: 100, m: 1, experts: 20, active: 5)))
        #expect(ToyMoEKernelsSIMD.MoEKernelsSIMD.usesNarrowPath(MoELayout(n: 100, m: 5, experts: 4, active: 1)))
        #expect(ToyMoEKernelsSIMD.MoEKernelsSIMD.usesNarrowPath(MoELayout(n: 100, m: 10, experts: 10, active: 1)))
        #expect(!ToyMoEKernelsSIMD.MoEKernelsSIMD.usesNarrowPath(MoELayout(n: 100, m: 20, experts: 1, active: 1)))
        #expect(!ToyMoEKernelsSIMD.MoEKernelsSIMD.usesNarrowPath(MoELayout(n: 400, m: 30, experts: 1, active: 1)))
    }

    /// Inputs with the given fraction of exact zeros (1: every sample all-zero, so every logit ties).
    static func inputs(_ x: UnsafeMutablePointer<Float>, _ count: Int, zeros: Float, rng: inout RandomStream) {
        for i in 0..<count {
            let (u, r) = rng.nextFloatPair()
            x[i] = r < zeros ? 0 : u
        }
    }

    /// One shape: narrow forward and backward against `MoEKernels` (activations, loss, all three gradients and the
    /// scratch outputs), the same comparison and tolerances as `SIMDKernelTests.run`.
    static func compare(
        n: Int, m: Int, E: Int, k: Int, batch B: Int, lb: Bool, zeros: Float, tie: TieBreak, seed: UInt64,
        _ build: (name: String, forward: KernelSet.Forward, backward: KernelSet.Backward)
    ) {
        let L = MoELayout(n: n, m: m, experts: E, active: k)
        let what = "\(build.name) n=\(n) m=\(m) E=\(E) k=\(k) B=\(B) lb=\(lb) zeros=\(zeros) \(tie)"
        var rng = RandomStream(seed: seed, path: [UInt64(n), UInt64(m), UInt64(E), UInt64(k), UInt64(B)])
        let params = UnsafeMutablePointer<Float>.allocate(capacity: L.count)
        let importance = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let gS = UnsafeMutablePointer<Float>.allocate(capacity: L.count)
        let gV = UnsafeMutablePointer<Float>.allocate(capacity: L.count)
        defer { for p in [params, importance, gS, gV] { p.deallocate() } }
        SIMDKernelTests.fill(params, L.count, rng: &rng)
        for i in 0..<n { importance[i] = 0.25 + rng.nextFloat() }
        let sWS = Workspace(layout: L, batch: B), vWS = Workspace(layout: L, batch: B)
        inputs(sWS.x, B * n, zeros: zeros, rng: &rng)
        vWS.x.update(from: sWS.x, count: B * n)
        let sa = sWS.activations, va = vWS.activations

        MoEKernels.forward(params: params, layout: L, batch: B, tieBreak: tie, act: sa)
        build.forward(params, L, B, tie, va)
        var sameExperts = true
        for t in 0..<(B * k) where sa.selected[t] != va.selected[t] { sameExperts = false }
        #expect(sameExperts, "\(what): selected experts differ")
        guard sameExperts else { return }
        SIMDKernelTests.agree(va.probs, sa.probs, B * E, "\(what): probs")
        SIMDKernelTests.agree(va.gates, sa.gates, B * k, "\(what): gates")
        SIMDKernelTests.agree(va.hidden, sa.hidden, B * k * m, "\(what): hidden")
        SIMDKernelTests.agree(va.preact, sa.preact, B * k * n, "\(what): preact")
        SIMDKernelTests.agree(va.xhat, sa.xhat, B * n, "\(what): xhat")

        let scale = 1 / Double(B * n)
        let alpha: Float? = lb ? 0.01 : nil
        if let alpha { _ = MoEKernels.loadBalancing(layout: L, batch: B, alpha: alpha, act: sa) }
        SIMDKernelTests.fill(gS, L.count, rng: &rng)
        for i in 0..<L.count { gS[i] *= 0.01 }
        gV.update(from: gS, count: L.count)
        MoEKernels.backward(
            params: params, grads: gS, layout: L, batch: B, importance: importance, lossScale: Float(scale),
            lbAlpha: alpha, act: sa)
        let dxhatS = Array(UnsafeBufferPointer(start: sa.dxhat, count: n))
        let dgateS = Array(UnsafeBufferPointer(start: sa.dgate, count: k))
        // Poison the scratch the scalar backward just filled, so the checks below see what the SIMD backward wrote.
        for i in 0..<n { sa.dxhat[i] = .nan }
        for j in 0..<k { sa.dgate[j] = .nan }
        build.backward(params, gV, L, B, importance, Float(scale), alpha, sa)
        SIMDKernelTests.agree(gV + L.wOffset, gS + L.wOffset, E * n * m, "\(what): dW")
        SIMDKernelTests.agree(gV + L.bOffset, gS + L.bOffset, E * n, "\(what): db")
        SIMDKernelTests.agree(gV + L.gOffset, gS + L.gOffset, E * n, "\(what): dG")
        #expect(Array(UnsafeBufferPointer(start: sa.dxhat, count: n)) == dxhatS, "\(what): dxhat")
        dgateS.withUnsafeBufferPointer { SIMDKernelTests.agree(sa.dgate, $0.baseAddress!, k, "\(what): dgate") }
    }

    @Test(
        "Narrow path equals the scalar kernels: Fig. 3 / Table 1 shapes and awkward routed shapes",
        arguments: [
            (n: 100, m: 1, E: 20, k: 5), (n: 100, m: 2, E: 10, k: 2), (n: 100, m: 5, E: 4, k: 1),
            (n: 100, m: 20, E: 1, k: 1), (n: 100, m: 10, E: 10, k: 1), (n: 33, m: 3, E: 7, k: 7),
            (n: 9, m: 1, E: 20, k: 5), (n: 8, m: 7, E: 3, k: 2), (n: 17, m: 3, E: 9, k: 9), (n: 1, m: 1, E: 2, k: 1),
            (n: 71, m: 4, E: 65, k: 3),
        ])
    func matchesScalar(shape s: (n: Int, m: Int, E: Int, k: Int)) {
        var index: UInt64 = 0
        for build in Self.builds {
            // B = 1 leaves most experts of E ≥ 3 empty; zeros 0 is p = 1, zeros 0.98 is a tiny p.
            for B in [1, 5, 64] {
                for zeros: Float in [0, 0.4, 0.98] {
                    for lb in [false, true] {
                        index += 1
                        Self.compare(
                            n: s.n, m: s.m, E: s.E, k: s.k, batch: B, lb: lb, zeros: zeros,
                            tie: index % 2 == 0 ? .lowestIndex : .highestIndex, seed: 500 + index, build)
                    }
                }
            }
        }
    }

    @Test("The vectorized top-k gives MoEKernels.selectTopK's probabilities, experts and gates bit for bit (ties included)")
    func topKBitwise() {
        var rng = RandomStream(seed: 17)
        for E in [2, 3, 7, 8, 9, 16, 20, 33, 64, 65] {
            for k in Set([1, 2, min(5, E), E]).sorted() {
                for tie in TieBreak.allCases {
                    for trial in 0..<20 {
                        // Coarse logits (multiples of 1/4 in [−2, 2]) make exact ties common; trial 0 is all equal.
                        let logits = (0..<E).map { _ in trial == 0 ? 0.5 : Float(rng.nextInt(below: 17) - 8) / 4 }
                        var pS = logits, pV = logits, pA = logits
                        var sS = [Int32](repeating: -1, count: k), sV = sS, sA = sS
                        var gS = [Float](repeating: 0, count: k), gV = gS, gA = gS
                        var keys = [Int64](repeating: 0, count: (E + 7) / 8 * 8)
                        MoEKernels.selectTopK(logitsToProbabilities: &pS, experts: E, active: k, tieBreak: tie, selected: &sS, gates: &gS)
                        ToyMoEKernelsSIMD.MoEKernelsSIMD.selectTopK(
                            logitsToProbabilities: &pV, experts: E, active: k, tieBreak: tie, selected: &sV, gates: &gV, keys: &keys)
                        #expect(pS == pV && sS == sV && gS == gV, "baseline E=\(E) k=\(k) \(tie) \(logits)")
                        if KernelVariant.simdAVX2.isSupported {
                            ToyMoEKernelsAVX2.MoEKernelsSIMD.selectTopK(
                                logitsToProbabilities: &pA, experts: E, active: k, tieBreak: tie, selected: &sA, gates: &gA, keys: &keys)
                            #expect(pS == pA && sS == sA && gS == gA, "avx2 E=\(E) k=\(k) \(tie) \(logits)")
                        }
                        if KernelVariant.simdAVX512.isSupported {
                            var p5 = logits, s5 = [Int32](repeating: -1, count: k), g5 = [Float](repeating: 0, count: k)
                            ToyMoEKernelsAVX512.MoEKernelsSIMD.selectTopK(
                                logitsToProbabilities: &p5, experts: E, active: k, tieBreak: tie, selected: &s5, gates: &g5, keys: &keys)
                            #expect(pS == p5 && sS == s5 && gS == g5, "avx512 E=\(E) k=\(k) \(tie) \(logits)")
                        }
                    }
                }
            }
        }
    }

    @Test("MoEKernels.reconstructionLoss (four rows at a time) equals the one-row loop bit for bit", arguments: [1, 3, 4, 5, 8, 11])
    func reconstructionLossBitwise(batch: Int) {
        var rng = RandomStream(seed: 29, path: [UInt64(batch)])
        for n in [1, 7, 100] {
            let x = (0..<(batch * n)).map { _ in rng.nextFloat() }
            let xhat = (0..<(batch * n)).map { _ in Float(rng.nextGaussian()) }
            let importance = (0..<n).map { _ in 0.1 + rng.nextFloat() }
            // The reference: the kernel's formula one row at a time, rows summed in Double in batch order.
            var want = 0.0
            for s in 0..<batch {
                var row: Float = 0
                for i in 0..<n {
                    let d = x[s * n + i] - xhat[s * n + i]
                    row += importance[i] * d * d
                }
                want += Double(row)
            }
            want *= 1 / Double(batch)
            let got = MoEKernels.reconstructionLoss(x: x, xhat: xhat, importance: importance, batch: batch, n: n, scale: 1 / Double(batch))
            #expect(got.bitPattern == want.bitPattern, "B=\(batch) n=\(n): \(got) vs \(want)")
        }
    }

    @Test("MoEKernels.sampleBatch equals one nextFloatPair per element, in row order, bit for bit",
          arguments: [1, 7, 8, 9, 100])
    func sampleBatchBitwise(n: Int) {
        // Probabilities 1 and 0 among the others.
        var probability = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let tenths = Float(i % 10) / 10
            probability[i] = i % 5 == 0 ? 1 : (i % 7 == 0 ? 0 : tenths)
        }
        let scale = (0..<n).map { Float(1 + $0 % 3) }
        for useScale in [false, true] {
            var a = RandomStream(seed: 41, path: [UInt64(n)]), b = a
            let B = 3
            var got = [Float](repeating: -1, count: B * n)
            scale.withUnsafeBufferPointer { sc in
                MoEKernels.sampleBatch(
                    x: &got, batch: B, n: n, probability: probability, scale: useScale ? sc.baseAddress! : nil, rng: &a)
            }
            var want = [Float](repeating: 0, count: B * n)
            for s in 0..<B {
                for i in 0..<n {
                    let (u, r) = b.nextFloatPair()
                    want[s * n + i] = r <= probability[i] ? u : 0
                    if useScale { want[s * n + i] *= scale[i] }
                }
            }
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "n=\(n) scale=\(useScale)")
            #expect(a.next() == b.next(), "the stream advanced by exactly B·n draws")
            #expect(got.contains { $0 != 0 } && got.contains { $0 == 0 } || n == 1)
        }
    }

    /// Central differences of the naive Double loss against the narrow backward's Float gradient, on entries whose
    /// perturbation changes no discrete decision (active ReLUs, selected experts), as in ForwardBackwardTests.
    @Test(
        "Narrow backward against finite differences (m = 1 with k = 5 of 20 experts; m = 2, k = 2 with LB; m = 3 dense)",
        arguments: [(n: 9, m: 1, E: 20, k: 5, lb: false), (n: 11, m: 2, E: 5, k: 2, lb: true), (n: 10, m: 3, E: 1, k: 1, lb: false)])
    func finiteDifferences(shape s: (n: Int, m: Int, E: Int, k: Int, lb: Bool)) throws {
        let model = try Support.model(n: s.n, m: s.m, E: s.E, k: s.k, seed: UInt64(7 + s.E))
        let L = model.layout
        let B = 16
        let x = Support.batch(B, n: s.n, p: 0.6, seed: 21)
        let xs = Support.rows(x, n: s.n)
        let importance = (0..<s.n).map { Float(1 - 0.05 * Double($0)) }
        let impD = importance.map(Double.init)
        let alpha: Float? = s.lb ? 0.01 : nil
        let naive = NaiveMoE(model)
        for build in Self.builds {
            let ws = Workspace(layout: L, batch: B)
            x.withUnsafeBufferPointer { ws.x.update(from: $0.baseAddress!, count: B * s.n) }
            let act = ws.activations
            let params = UnsafePointer(model.parameters.baseAddress!)
            build.forward(params, L, B, .lowestIndex, act)
            if let alpha { _ = MoEKernels.loadBalancing(layout: L, batch: B, alpha: alpha, act: act) }
            var grads = [Float](repeating: 0, count: L.count)
            grads.withUnsafeMutableBufferPointer { g in
                importance.withUnsafeBufferPointer { imp in
                    build.backward(params, g.baseAddress!, L, B, imp.baseAddress!, Float(1 / Double(B * s.n)), alpha, act)
                }
            }
            func signature(_ net: NaiveMoE) -> [Int] {
                xs.flatMap { row -> [Int] in
                    let f = net.forward(row)
                    return f.selected + f.pre.flatMap { $0.map { $0 > 0 ? 1 : 0 } }
                }
            }
            let base = naive.flatParameters
            let baseSignature = signature(naive)
            let h = 1e-5
            var compared = 0, skipped = 0, nonzero = 0
            for idx in base.indices {
                var plus = base, minus = base
                plus[idx] += h
                minus[idx] -= h
                let np = naive.with(flat: plus), nm = naive.with(flat: minus)
                if signature(np) != baseSignature || signature(nm) != baseSignature {
                    skipped += 1
                    continue
                }
                let lp = np.loss(xs, importance: impD, normalization: .meanOverFeatures, lbAlpha: s.lb ? 0.01 : nil).total
                let lm = nm.loss(xs, importance: impD, normalization: .meanOverFeatures, lbAlpha: s.lb ? 0.01 : nil).total
                let fd = (lp - lm) / (2 * h)
                // Float gradient against a Double difference quotient: a tolerance for Float rounding.
                #expect(abs(fd - Double(grads[idx])) < 2e-6 + 1e-4 * abs(fd), "\(build.name) parameter \(idx): fd \(fd) vs \(grads[idx])")
                compared += 1
                if fd != 0 { nonzero += 1 }
            }
            #expect(compared > 0 && nonzero > base.count / 4, "\(build.name): compared \(compared), nonzero \(nonzero)")
            #expect(skipped * 20 <= base.count, "\(build.name): too many entries at a kink: \(skipped) of \(base.count)")
            // The router's gradient is really exercised where it exists (k > 1 or LB).
            if s.E > 1 { #expect(grads[L.gOffset..<L.count].contains { $0 != 0 }, "\(build.name)") }
        }
    }
}
