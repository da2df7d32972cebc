// Phase-diagram metrics (docs/PAPER.md#phase-colours, docs/PAPER.md#fig4): the class of the last feature of one expert per cell,
// and the blue/red/white colour map of Fig. 4.

extension Metrics {
    /// Class of one feature in a phase-diagram cell (docs/PAPER.md#fig4).
    public enum FeaturePhase: String, Sendable, Codable, CaseIterable {
        /// ‖W_i‖ < 0.1 (`.` in docs/PAPER.md#fig4).
        case ignored
        /// Represented and Σ_{j≠i} (Ŵ_i · W_j)² ≤ 0.1 (`M`).
        case monosemantic
        /// Represented and Σ_{j≠i} (Ŵ_i · W_j)² > 0.1 (`S`).
        case superposed

        /// The one-character symbol of docs/PAPER.md#fig4.
        public var symbol: Character {
            switch self {
            case .ignored: return "."
            case .monosemantic: return "M"
            case .superposed: return "S"
            }
        }
    }

    /// Classifies feature `feature` (default: the last, i = n − 1, whose importance r the phase sweep varies) of one
    /// expert W (docs/PAPER.md#fig4): ignored if ‖W_i‖ < normThreshold (strict), else superposed if
    /// Σ_{j≠i} (Ŵ_i · W_j)² > superpositionThreshold (strict; Ŵ without ε), else monosemantic. Both thresholds
    /// default to 0.1. A zero row is ignored (so its undefined Ŵ never matters). Traps on an empty W or a bad index.
    public static func classifyFeature(
        _ W: [[Double]], feature: Int? = nil, normThreshold: Double = 0.1, superpositionThreshold: Double = 0.1
    ) -> FeaturePhase {
        let i = feature ?? (W.count - 1)
        precondition(W.indices.contains(i), "Metrics.classifyFeature: feature index out of range")
        if featureNorms(W)[i] < normThreshold { return .ignored }
        return superpositionScoreExcludingSelf(W)[i] > superpositionThreshold ? .superposed : .monosemantic
    }

    /// An RGB colour with components in [0, 1].
    public struct RGB: Sendable, Equatable, Codable {
        public var red: Double
        public var green: Double
        public var blue: Double
        public init(red: Double, green: Double, blue: Double) {
            self.red = red
            self.green = green
            self.blue = blue
        }
    }

    /// Colour of one phase-diagram cell (docs/PAPER.md#phase-colours) from its normalized norm y and normalized superposition x,
    /// both clipped to [0, 1]: R = y·x + (1 − y), G = 1 − y, B = y·(1 − x) + (1 − y).
    /// y = 0 is white (ignored); y = 1, x = 0 is blue (monosemantic); y = 1, x = 1 is red (superposed).
    public static func phaseColor(normFraction y: Double, superpositionFraction x: Double) -> RGB {
        let y = Swift.min(Swift.max(y, 0), 1)
        let x = Swift.min(Swift.max(x, 0), 1)
        return RGB(red: y * x + (1 - y), green: 1 - y, blue: y * (1 - x) + (1 - y))
    }

    /// Phase-diagram colour map of one expert's panel (docs/PAPER.md#phase-colours).
    ///
    /// `norms[s][r]` = ‖W_last‖ and `superposition[s][r]` = s_last (docs/PAPER.md#phase-score, self term included) per cell (rows are
    /// sparsity S, columns r). Each grid is divided by **this panel's** maximum and clipped to [0, 1], then coloured
    /// by `phaseColor`. Conventions for degenerate panels: non-finite entries (e.g. the NaN of the Aug-2025 score)
    /// are treated as 0, and a grid whose maximum is ≤ 0 normalizes to all zeros (an all-ignored panel is white).
    /// Both grids must have the same shape (precondition).
    /// - Returns: colours with the same shape as the inputs.
    public static func phaseColorMap(norms: [[Double]], superposition: [[Double]]) -> [[RGB]] {
        precondition(
            norms.count == superposition.count && zip(norms, superposition).allSatisfy { $0.count == $1.count },
            "Metrics.phaseColorMap: norms and superposition grids must have the same shape")
        func normalized(_ grid: [[Double]]) -> [[Double]] {
            let clean = grid.map { row in row.map { $0.isFinite ? $0 : 0 } }
            let peak = clean.joined().max() ?? 0
            return clean.map { row in row.map { peak > 0 ? Swift.min(Swift.max($0 / peak, 0), 1) : 0 } }
        }
        let y = normalized(norms)
        let x = normalized(superposition)
        return zip(y, x).map { yr, xr in zip(yr, xr).map { phaseColor(normFraction: $0, superpositionFraction: $1) } }
    }
}
