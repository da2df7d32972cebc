import ToyMoEKernels

/// How one tensor is initialized (docs/PAPER.md#initialization).
public enum TensorInit: Sendable, Equatable {
    /// PyTorch `xavier_normal_` (gain 1): N(0, σ²), σ = gain·√(2 / (fan_in + fan_out)) with PyTorch's fan
    /// convention (see `Initialization.xavierSigma`).
    case xavier(gain: Double = 1)
    /// All zeros.
    case zero
    /// N(0, σ²) with an explicit σ.
    case normal(std: Double)
    /// Router only: G = 0, then G[e, e] = 1 for e < min(E, n): expert e listens to feature e.
    case diagonal
    /// Router only: K = n/E contiguous blocks, G[e, eK ..< (e+1)K] = 1 (needs E | n).
    case orderedKHot
    /// Router only: a uniformly random permutation of the features cut into E groups of K = n/E; G[e, i] = 1 for
    /// every i in group e (needs E | n). The paper's "K-hot" (`my_gate_init`).
    case randomKHot
    /// Explicit values, flat row-major in the tensor's shape.
    case values([Float])

    /// Whether the scheme is defined only for the router matrix.
    var routerOnly: Bool {
        switch self {
        case .diagonal, .orderedKHot, .randomKHot: return true
        default: return false
        }
    }
}

/// Initialization of all three tensors. `overlayGate` writes the router pattern (diagonal/K-hot) on top of a
/// Xavier-initialized gate instead of zeroing first: the "old ES" quirk of the authors' notebooks (docs/PAPER.md#initialization).
public struct Initialization: Sendable, Equatable {
    public var W: TensorInit
    public var bFinal: TensorInit
    public var gate: TensorInit
    public var overlayGate: Bool

    public init(W: TensorInit = .xavier(), bFinal: TensorInit = .xavier(), gate: TensorInit = .xavier(), overlayGate: Bool = false) {
        self.W = W
        self.bFinal = bFinal
        self.gate = gate
        self.overlayGate = overlayGate
    }

    /// The authors' final code: every tensor Xavier-normal.
    public static let xavier = Initialization()

    /// PyTorch's `xavier_normal_` standard deviation for a tensor of `shape`:
    /// receptive = Π shape[2...], fan_in = shape[1]·receptive, fan_out = shape[0]·receptive,
    /// σ = gain·√(2/(fan_in + fan_out)). For W (E, n, m): √(2/(m(n+E))); for b, G (E, n): √(2/(n+E)).
    public static func xavierSigma(shape: [Int], gain: Double = 1) -> Double {
        precondition(shape.count >= 2, "xavier needs at least 2 dimensions (PyTorch raises for fewer)")
        let receptive = shape.dropFirst(2).reduce(1, *)
        let fanIn = Double(shape[1] * receptive)
        let fanOut = Double(shape[0] * receptive)
        return gain * (2.0 / (fanIn + fanOut)).squareRoot()
    }
}

extension Model {
    /// Fills `count` floats with σ·N(0, 1) draws. Every draw is made (and checked) before any is stored: a σ so
    /// large that a draw overflows float32 would otherwise leave ±inf weights in a model that looks created (and
    /// that `load_model` later refuses), so it throws instead, leaving the tensor as it was.
    static func drawGaussian(
        _ base: UnsafeMutablePointer<Float>, _ count: Int, _ sigma: Double, _ rng: inout RandomStream,
        _ tensor: ParameterTensor, what: String, _ shouldStop: (() -> Bool)?
    ) throws {
        // Every value is drawn and checked before any is stored, so a refused init leaves the tensor unchanged;
        // the deadline is asked between chunks of `Model.initializationChunk` draws (the draws are the same).
        var draws = [Float](repeating: 0, count: count)
        var start = 0
        while start < count {
            if let shouldStop, shouldStop() {
                throw ToyMoEError("initialize", tensor.rawValue, "stopped after \(start) of \(count) values")
            }
            let end = Swift.min(count, start + Model.initializationChunk)
            for i in start..<end {
                let x = sigma * rng.nextGaussian()
                guard abs(x) <= Double(Float.greatestFiniteMagnitude) else {
                    throw ToyMoEError(
                        "initialize", what,
                        "draws \(x) for \(tensor.rawValue) (flat index \(i), 0-based), outside float32 (finite values lie within ±3.4028235e38); use a smaller scale")
                }
                draws[i] = Float(x)
            }
            start = end
        }
        for i in 0..<count { base[i] = draws[i] }
    }

    /// Initializes every tensor. Each tensor draws from its own stream (seed, modelID, initialization, tensor),
    /// so re-initializing one tensor never changes the others.
    public func initialize(_ scheme: Initialization, seed: UInt64, modelID: UInt64 = 0) throws {
        try initialize(.W, scheme.W, seed: seed, modelID: modelID)
        try initialize(.bFinal, scheme.bFinal, seed: seed, modelID: modelID)
        if scheme.overlayGate && scheme.gate.routerOnly {
            try initialize(.gate, .xavier(), seed: seed, modelID: modelID)
            try initialize(.gate, scheme.gate, seed: seed, modelID: modelID, zeroFirst: false)
        } else {
            try initialize(.gate, scheme.gate, seed: seed, modelID: modelID)
        }
    }

    /// Initializes one tensor with a scheme. Router-only schemes on W or b_final, K-hot with E ∤ n, wrong explicit
    /// value counts and non-finite σ raise `ToyMoEError`. `shouldStop` (e.g. a script's deadline) is asked every
    /// `initializationChunk` random draws; when it answers true the tensor is left partly initialized and a
    /// `ToyMoEError` ("stopped") is thrown, which the caller replaces by its own reason. Chunking does not change
    /// the values drawn.
    public func initialize(
        _ tensor: ParameterTensor, _ scheme: TensorInit, seed: UInt64, modelID: UInt64 = 0, zeroFirst: Bool = true,
        shouldStop: (() -> Bool)? = nil
    ) throws {
        let shape = tensor.shape(config)
        let count = shape.reduce(1, *)
        let base = parameters.baseAddress! + tensor.offset(layout)
        var rng = RandomStream(seed: seed, path: [modelID, StreamPurpose.initialization.rawValue, tensor.streamIndex])
        let context = "initialize"
        if scheme.routerOnly && tensor != .gate {
            throw ToyMoEError(context, tensor.rawValue, "\(scheme) is a router initialization; it applies to gate only")
        }
        let n = featureCount, E = expertCount
        switch scheme {
        case .xavier(let gain):
            guard gain.isFinite, gain >= 0 else {
                throw ToyMoEError(context, "gain", "expected a finite non-negative number, got \(gain)")
            }
            let sigma = Initialization.xavierSigma(shape: shape, gain: gain)
            try Self.drawGaussian(base, count, sigma, &rng, tensor, what: "{xavier = \(gain)} (σ = \(sigma))", shouldStop)
        case .normal(let std):
            guard std.isFinite, std >= 0 else {
                throw ToyMoEError(context, "std", "expected a finite non-negative number, got \(std)")
            }
            try Self.drawGaussian(base, count, std, &rng, tensor, what: "{normal = \(std)}", shouldStop)
        case .zero:
            base.update(repeating: 0, count: count)  // one memset: an element loop took about 1 s for 64M parameters (debug build), unchecked
        case .values(let v):
            try setValues(tensor, v)
        case .diagonal:
            if zeroFirst { base.update(repeating: 0, count: count) }
            for e in 0..<Swift.min(E, n) { base[e * n + e] = 1 }
        case .orderedKHot, .randomKHot:
            guard n % E == 0 else {
                throw ToyMoEError(
                    context, "gate",
                    "K-hot needs n_experts to divide n_features (n_features = \(n), n_experts = \(E)); choose E | n")
            }
            let K = n / E
            var order = Array(0..<n)
            if case .randomKHot = scheme { order.shuffle(using: &rng) }
            if zeroFirst { base.update(repeating: 0, count: count) }
            for e in 0..<E {
                for j in 0..<K { base[e * n + order[e * K + j]] = 1 }
            }
        }
    }

    /// Random draws between two `shouldStop` questions: a 16M-parameter tensor asks about 250 times.
    static let initializationChunk = 1 << 16
}
