import ToyMoEKernels

/// The three parameter tensors of a toy model, by their notebook names.
public enum ParameterTensor: String, Sendable, CaseIterable, Codable {
    /// W (E, n, m): expert weights; row i of W[e] is feature i's direction in expert e.
    case W
    /// b_final (E, n): per-expert output bias.
    case bFinal = "b_final"
    /// gate (E, n): router matrix G.
    case gate

    /// Shape of the tensor for a given architecture.
    public func shape(_ c: ModelConfig) -> [Int] {
        switch self {
        case .W: return [c.expertCount, c.featureCount, c.hiddenCount]
        case .bFinal, .gate: return [c.expertCount, c.featureCount]
        }
    }

    /// Offset of the tensor in the flat parameter buffer.
    func offset(_ l: MoELayout) -> Int {
        switch self {
        case .W: return l.wOffset
        case .bFinal: return l.bOffset
        case .gate: return l.gOffset
        }
    }

    /// Stable index used to derive this tensor's initialization stream.
    var streamIndex: UInt64 {
        switch self {
        case .W: return 0
        case .bFinal: return 1
        case .gate: return 2
        }
    }
}

/// Purposes of the random streams derived from (seed, model id): each gets its own, so changing one (e.g. the
/// number of steps) never shifts another (e.g. the initial weights).
public enum StreamPurpose: UInt64, Sendable {
    case initialization = 1
    case data = 2
    case analysis = 3
}

/// A dense or Mixture-of-Experts toy model: parameters in one flat Float32 buffer (W, b_final, gate; see
/// `MoELayout`). Not thread-safe: one model belongs to one thread at a time.
public final class Model: @unchecked Sendable {
    public let config: ModelConfig
    public let layout: MoELayout
    /// Flat parameters: W (E·n·m), then b_final (E·n), then gate (E·n).
    public let parameters: UnsafeMutableBufferPointer<Float>

    /// Builds a model and initializes it. The default is the authors' final code: Xavier-normal W, b_final and gate
    /// (docs/PAPER.md#initialization), drawn from the streams named by (seed, modelID).
    public init(
        config: ModelConfig, initialization: Initialization = .xavier, seed: UInt64 = 0, modelID: UInt64 = 0
    ) throws {
        try config.validate()
        self.config = config
        self.layout = config.layout
        self.parameters = .allocate(capacity: layout.count)
        parameters.initialize(repeating: 0)
        try initialize(initialization, seed: seed, modelID: modelID)
    }

    /// A copy of another model (same architecture, same parameter values).
    public init(copying other: Model) {
        config = other.config
        layout = other.layout
        parameters = .allocate(capacity: layout.count)
        _ = parameters.initialize(from: other.parameters)
    }

    deinit { parameters.deallocate() }

    public var featureCount: Int { config.featureCount }
    public var hiddenCount: Int { config.hiddenCount }
    public var expertCount: Int { config.expertCount }
    public var activeExpertCount: Int { config.activeExpertCount }

    // MARK: Reading and writing tensors

    /// The whole tensor as a flat row-major array (shape `tensor.shape(config)`).
    public func values(_ tensor: ParameterTensor) -> [Float] {
        let count = tensor.shape(config).reduce(1, *)
        let start = tensor.offset(layout)
        return Array(parameters[start..<(start + count)])
    }

    /// Overwrites a whole tensor. Throws if the count is wrong or a value is not finite.
    /// Non-finite values are refused unless `allowNonFinite` (loading the saved model of a diverged training).
    public func setValues(_ tensor: ParameterTensor, _ values: [Float], allowNonFinite: Bool = false) throws {
        let shape = tensor.shape(config)
        let count = shape.reduce(1, *)
        guard values.count == count else {
            throw ToyMoEError(
                "Model.set", tensor.rawValue,
                "expected \(count) values for shape \(shape), got \(values.count)")
        }
        if !allowNonFinite, let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw ToyMoEError("Model.set", tensor.rawValue, "value at flat index \(bad) (0-based) is \(values[bad]); expected a finite number")
        }
        let start = tensor.offset(layout)
        for (i, v) in values.enumerated() { parameters[start + i] = v }
    }

    /// W of one expert, (n, m) row-major.
    public func expertWeights(_ expert: Int) -> [Float] {
        let size = featureCount * hiddenCount
        let start = layout.wOffset + expert * size
        return Array(parameters[start..<(start + size)])
    }

    /// W of every expert as nested arrays [e][i][j] in Double (for metrics).
    public func expertMatrices() -> [[[Double]]] {
        (0..<expertCount).map { e in
            let flat = expertWeights(e)
            return (0..<featureCount).map { i in
                (0..<hiddenCount).map { j in Double(flat[i * hiddenCount + j]) }
            }
        }
    }

    /// The router matrix as [e][i] in Double.
    public func gateMatrix() -> [[Double]] {
        let g = values(.gate)
        return (0..<expertCount).map { e in (0..<featureCount).map { Double(g[e * featureCount + $0]) } }
    }

    /// Element access by (tensor, flat index); used by tests and bindings.
    public subscript(tensor: ParameterTensor, index: Int) -> Float {
        get { parameters[tensor.offset(layout) + index] }
        set { parameters[tensor.offset(layout) + index] = newValue }
    }

    // MARK: Inference

    /// Result of a forward pass over a batch.
    public struct Output: Sendable {
        /// x̂ (B, n).
        public var reconstruction: [Float]
        /// π (B, E).
        public var probabilities: [Float]
        /// Selected experts (B, k) in selection order.
        public var selected: [Int]
        /// Renormalized gates (B, k), aligned with `selected`.
        public var gates: [Float]
    }

    /// Runs the model on `x` (B, n). Allocates; for analysis, not for training loops.
    public func forward(_ x: [Float]) throws -> Output {
        let n = featureCount
        guard x.count % n == 0 else {
            throw ToyMoEError("Model.forward", "x", "expected a multiple of n_features (\(n)) values, got \(x.count)")
        }
        let batch = x.count / n
        let ws = Workspace(layout: layout, batch: Swift.max(batch, 1))
        x.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { ws.x.update(from: base, count: x.count) }
        }
        MoEKernels.forward(
            params: UnsafePointer(parameters.baseAddress!), layout: layout, batch: batch,
            tieBreak: config.tieBreak.kernel, act: ws.activations)
        let k = activeExpertCount
        return Output(
            reconstruction: Array(UnsafeBufferPointer(start: ws.xhat, count: batch * n)),
            probabilities: Array(UnsafeBufferPointer(start: ws.probs, count: batch * expertCount)),
            selected: UnsafeBufferPointer(start: ws.selected, count: batch * k).map { Int($0) },
            gates: Array(UnsafeBufferPointer(start: ws.gates, count: batch * k)))
    }

    /// Router only: (π (B, E), selected (B, k), gates (B, k)) for inputs `x` (B, n).
    public func route(_ x: [Float]) -> (probabilities: [Float], selected: [Int], gates: [Float]) {
        let n = featureCount, E = expertCount, k = activeExpertCount
        let batch = x.count / n
        var probs = [Float](repeating: 0, count: batch * E)
        var sel = [Int32](repeating: 0, count: batch * k)
        var gates = [Float](repeating: 0, count: batch * k)
        let G = UnsafePointer(parameters.baseAddress! + layout.gOffset)
        x.withUnsafeBufferPointer { xp in
            probs.withUnsafeMutableBufferPointer { pp in
                sel.withUnsafeMutableBufferPointer { sp in
                    gates.withUnsafeMutableBufferPointer { gp in
                        for s in 0..<batch {
                            MoEKernels.route(
                                x: xp.baseAddress! + s * n, gate: G, layout: layout, tieBreak: config.tieBreak.kernel,
                                probs: pp.baseAddress! + s * E, selected: sp.baseAddress! + s * k,
                                gates: gp.baseAddress! + s * k)
                        }
                    }
                }
            }
        }
        return (probs, sel.map { Int($0) }, gates)
    }
}

extension Model: CustomStringConvertible {
    public var description: String {
        let kind = expertCount == 1 ? "dense" : "MoE"
        return
            "Model(\(kind), n_features=\(featureCount), n_hidden=\(hiddenCount), n_experts=\(expertCount), n_active_experts=\(activeExpertCount), parameters=\(layout.count))"
    }
}

/// Per-batch activation buffers for one architecture and batch size, allocated once and reused every step.
public final class Workspace: @unchecked Sendable {
    public let layout: MoELayout
    public let batch: Int
    let storage: UnsafeMutablePointer<Float>
    let selectedStorage: UnsafeMutablePointer<Int32>
    public let x, probs, gates, hidden, preact, xhat, dxhat, dgate, dprob, dhidden, fraction, meanProb:
        UnsafeMutablePointer<Float>
    public var selected: UnsafeMutablePointer<Int32> { selectedStorage }

    public init(layout L: MoELayout, batch B: Int) {
        self.layout = L
        self.batch = B
        let n = L.n, m = L.m, E = L.experts, k = L.active
        let sizes = [B * n, B * E, B * k, B * k * m, B * k * n, B * n, n, k, E, m, E, E]
        let total = sizes.reduce(0, +)
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
        var offsets: [Int] = []
        var running = 0
        for s in sizes {
            offsets.append(running)
            running += s
        }
        x = storage + offsets[0]
        probs = storage + offsets[1]
        gates = storage + offsets[2]
        hidden = storage + offsets[3]
        preact = storage + offsets[4]
        xhat = storage + offsets[5]
        dxhat = storage + offsets[6]
        dgate = storage + offsets[7]
        dprob = storage + offsets[8]
        dhidden = storage + offsets[9]
        fraction = storage + offsets[10]
        meanProb = storage + offsets[11]
        selectedStorage = .allocate(capacity: B * k)
        selectedStorage.initialize(repeating: 0, count: B * k)
    }

    deinit {
        storage.deallocate()
        selectedStorage.deallocate()
    }

    public var activations: MoEActivations {
        MoEActivations(
            x: x, probs: probs, selected: selectedStorage, gates: gates, hidden: hidden, preact: preact, xhat: xhat,
            dxhat: dxhat, dgate: dgate, dprob: dprob, dhidden: dhidden, dispatchFraction: fraction,
            meanProb: meanProb)
    }
}
