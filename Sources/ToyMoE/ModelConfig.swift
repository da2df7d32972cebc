import ToyMoEKernels

/// Errors the engine reports at its boundaries (building models, setting tensors, configuring training).
/// Hot paths never throw: shapes and options are checked once, here.
public struct ToyMoEError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What was being configured, e.g. "ModelConfig" or "Model.setW".
    public let context: String
    /// The option or argument at fault, using the user-facing (paper/notebook) name, e.g. "n_active_experts".
    public let argument: String
    /// What was wrong and what was expected.
    public let message: String

    public init(_ context: String, _ argument: String, _ message: String) {
        self.context = context
        self.argument = argument
        self.message = message
    }

    public var description: String { "\(context): \(argument): \(message)" }
}

/// Architecture of a toy model (docs/PAPER.md#model). The dense ReLU-output model is `experts == 1, activeExperts == 1`.
///
/// User-facing names (Lua keys, file keys) follow the paper's code: `n_features`, `n_hidden`, `n_experts`,
/// `n_active_experts`; the Swift properties follow the API guidelines and are mapped once, in `userKeys`.
public struct ModelConfig: Sendable, Equatable, Codable {
    /// n: number of input features.
    public var featureCount: Int
    /// m: hidden width per expert.
    public var hiddenCount: Int
    /// E: number of experts (1 = dense model).
    public var expertCount: Int
    /// k: experts evaluated per sample (top-k of the router probabilities).
    public var activeExpertCount: Int
    /// How top-k breaks exact ties (docs/PAPER.md#ties). Default: lowest index wins.
    public var tieBreak: TieBreakRule

    public init(
        featureCount: Int, hiddenCount: Int, expertCount: Int = 1, activeExpertCount: Int = 1,
        tieBreak: TieBreakRule = .lowestIndex
    ) {
        self.featureCount = featureCount
        self.hiddenCount = hiddenCount
        self.expertCount = expertCount
        self.activeExpertCount = activeExpertCount
        self.tieBreak = tieBreak
    }

    /// A dense model: E = k = 1.
    public static func dense(featureCount: Int, hiddenCount: Int) -> ModelConfig {
        ModelConfig(featureCount: featureCount, hiddenCount: hiddenCount)
    }

    /// Largest tensor the engine accepts (elements of W): guards against requests that would exhaust memory.
    public static let maxParameterCount = 1 << 28

    /// Checks sizes: all positive, k ≤ E, parameter count within `maxParameterCount`.
    public func validate() throws {
        func positive(_ v: Int, _ name: String) throws {
            if v < 1 { throw ToyMoEError("ModelConfig", name, "expected a positive integer, got \(v)") }
        }
        try positive(featureCount, "n_features")
        try positive(hiddenCount, "n_hidden")
        try positive(expertCount, "n_experts")
        try positive(activeExpertCount, "n_active_experts")
        if activeExpertCount > expertCount {
            throw ToyMoEError(
                "ModelConfig", "n_active_experts",
                "expected k ≤ n_experts (\(expertCount)), got \(activeExpertCount)")
        }
        let (wCount, o1) = expertCount.multipliedReportingOverflow(by: featureCount)
        let (total, o2) = wCount.multipliedReportingOverflow(by: hiddenCount + 2)
        if o1 || o2 || total > ModelConfig.maxParameterCount {
            throw ToyMoEError(
                "ModelConfig", "n_features",
                "model too large: E·n·(m+2) = \(o1 || o2 ? "overflow" : String(total)) parameters exceeds the limit of \(ModelConfig.maxParameterCount)"
            )
        }
    }

    /// The flat-buffer layout of this architecture's parameters.
    public var layout: MoELayout {
        MoELayout(n: featureCount, m: hiddenCount, experts: expertCount, active: activeExpertCount)
    }

    /// Network sparsity k/E (the paper's central quantity).
    public var networkSparsity: Double { Double(activeExpertCount) / Double(expertCount) }

    /// The configuration as (user-facing key, value) pairs, in a fixed order.
    public var userKeys: [(String, String)] {
        [
            ("n_features", String(featureCount)), ("n_hidden", String(hiddenCount)),
            ("n_experts", String(expertCount)), ("n_active_experts", String(activeExpertCount)),
            ("tie_break", tieBreak.rawValue),
        ]
    }
}

/// Codable mirror of the kernels' `TieBreak`.
public enum TieBreakRule: String, Sendable, Codable, CaseIterable {
    case lowestIndex = "lowest"
    case highestIndex = "highest"

    var kernel: TieBreak { self == .lowestIndex ? .lowestIndex : .highestIndex }
}
