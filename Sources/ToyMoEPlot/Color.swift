// Colours, colour maps and palettes.

import Foundation

/// An sRGB colour with components in [0, 1].
public struct RGB: Sendable, Hashable, CustomStringConvertible {
    public var r: Double
    public var g: Double
    public var b: Double

    /// Components are clamped to [0, 1]; NaN becomes 0.
    public init(_ r: Double, _ g: Double, _ b: Double) {
        func clean(_ v: Double) -> Double { v.isNaN ? 0 : min(max(v, 0), 1) }
        self.r = clean(r)
        self.g = clean(g)
        self.b = clean(b)
    }

    /// From 8-bit components.
    public init(bytes r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.init(Double(r) / 255, Double(g) / 255, Double(b) / 255)
    }

    /// From `#rrggbb` or `rrggbb` (case-insensitive); nil if malformed.
    public init?(hex: String) {
        var digits = Substring(hex)
        if digits.hasPrefix("#") { digits = digits.dropFirst() }
        guard digits.count == 6, let value = UInt32(digits, radix: 16) else { return nil }
        self.init(bytes: UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
    }

    /// 8-bit components, rounded to nearest.
    public var bytes: (r: UInt8, g: UInt8, b: UInt8) {
        func byte(_ v: Double) -> UInt8 { UInt8((v * 255).rounded()) }
        return (byte(r), byte(g), byte(b))
    }

    /// `#rrggbb` in lower case, the form written into every SVG `fill` / `stroke`.
    public var hex: String {
        let (r, g, b) = bytes
        let digits = Array("0123456789abcdef")
        var text = "#"
        for byte in [r, g, b] {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return text
    }

    public var description: String { hex }

    /// Relative luminance (ITU-R BT.709 weights on the encoded values; good enough to pick a text colour).
    public var luminance: Double { 0.2126 * r + 0.7152 * g + 0.0722 * b }

    /// Black or white, whichever reads better on top of this colour.
    public var contrastingText: RGB { luminance > 0.55 ? .black : .white }

    /// Linear interpolation `self + t·(other − self)`, t clamped to [0, 1].
    public func mixed(with other: RGB, _ t: Double) -> RGB {
        let t = t.isNaN ? 0 : min(max(t, 0), 1)
        return RGB(r + (other.r - r) * t, g + (other.g - g) * t, b + (other.b - b) * t)
    }

    public static let black = RGB(0, 0, 0)
    public static let white = RGB(1, 1, 1)
    /// Default colour for missing (NaN) values in colour-mapped cells.
    public static let missing = RGB(bytes: 0xcc, 0xcc, 0xcc)
}

/// Formats a colour as `#rrggbb` (shorthand for `color.hex`).
public func hexColor(_ color: RGB) -> String { color.hex }

/// A continuous colour map: evenly spaced anchor colours with linear interpolation in sRGB.
///
/// The built-in maps are compact approximations: a handful of anchors sampled from the reference maps,
/// which is visually indistinguishable from the full 256-entry tables at plot sizes, and exact at the anchors
/// (in particular at both ends).
public struct Colormap: Sendable, Hashable {
    /// A short identifier, also used as the id of the SVG gradient drawn for colour bars.
    public let name: String
    /// Anchor colours at t = 0, 1/(k−1), …, 1.
    public let anchors: [RGB]

    /// At least two anchors are required.
    public init(name: String, anchors: [RGB]) {
        precondition(anchors.count >= 2, "a colour map needs at least two anchors")
        self.name = name
        self.anchors = anchors
    }

    /// The colour at `t`, clamped to [0, 1]. NaN gives `RGB.missing`.
    public func color(at t: Double) -> RGB {
        if t.isNaN { return .missing }
        let t = min(max(t, 0), 1)
        let position = t * Double(anchors.count - 1)
        let index = min(Int(position.rounded(.down)), anchors.count - 2)
        return anchors[index].mixed(with: anchors[index + 1], position - Double(index))
    }

    /// The colour of `value` mapped linearly from `range` onto [0, 1] (clamped). NaN gives `RGB.missing`.
    public func color(_ value: Double, in range: ClosedRange<Double>) -> RGB {
        let span = range.upperBound - range.lowerBound
        guard span > 0 else { return color(at: 0.5) }
        return color(at: (value - range.lowerBound) / span)
    }

    /// Perceptually uniform sequential map (dark purple → blue → green → yellow), 16 anchors sampled every
    /// 17th entry of matplotlib's 256-entry table. viridis(0) = #440154, viridis(1) = #fde725.
    public static let viridis = Colormap(name: "viridis", anchors: [
        "#440154", "#481a6c", "#472f7d", "#414487", "#39568c", "#31688e", "#2a788e", "#23888e",
        "#1f988b", "#22a884", "#35b779", "#54c568", "#7ad151", "#a5db36", "#d2e21b", "#fde725",
    ].map { RGB(hex: $0)! })

    /// Moreland's diverging "cool to warm" map, 11 anchors (t = 0, 0.1, …, 1): blue #3b4cc0 → light grey
    /// #dddcdc at the centre → red #b40426. Use with a symmetric range such as −1…1.
    public static let coolwarm = Colormap(name: "coolwarm", anchors: [
        "#3b4cc0", "#5977e3", "#7b9ff9", "#9ebeff", "#c0d4f5", "#dddcdc",
        "#f2cbb7", "#f7ac8e", "#ee8468", "#d65244", "#b40426",
    ].map { RGB(hex: $0)! })

    /// White → black, for monochrome needs.
    public static let greys = Colormap(name: "greys", anchors: [.white, .black])
}

/// Categorical palettes.
public enum Palette {
    /// matplotlib's default ten-colour cycle ("tab10").
    public static let tab10: [RGB] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ].map { RGB(hex: $0)! }

    /// The i-th tab10 colour, cycling (negative indices wrap too).
    public static func tab10(_ index: Int) -> RGB {
        let n = tab10.count
        return tab10[((index % n) + n) % n]
    }
}

/// The 2-D colour map of the phase diagrams (docs/PAPER.md#phase-colours).
///
/// With y = normalized norm and x = normalized superposition, both in [0, 1]:
/// R = y·x + (1 − y), G = 1 − y, B = y·(1 − x) + (1 − y). A low norm is white ("ignored"), a high norm with
/// low superposition is blue ("monosemantic"), a high norm with high superposition is red ("superposed").
public enum PhaseColorMap {
    /// The colour for a normalized norm `y` and normalized superposition `x` (each clamped to [0, 1]).
    /// NaN in either gives `RGB.missing`.
    public static func color(norm y: Double, superposition x: Double) -> RGB {
        if x.isNaN || y.isNaN { return .missing }
        let y = min(max(y, 0), 1)
        let x = min(max(x, 0), 1)
        return RGB(y * x + (1 - y), 1 - y, y * (1 - x) + (1 - y))
    }

    /// One panel's image: normalizes `norms` and `superpositions` (same shape, rows top to bottom) by that
    /// panel's maxima of the finite values (a maximum ≤ 0 normalizes everything to 0), then applies
    /// `color(norm:superposition:)`.
    public static func image(norms: [[Double]], superpositions: [[Double]]) -> [[RGB]] {
        func maximum(_ grid: [[Double]]) -> Double {
            grid.joined().filter { $0.isFinite }.max() ?? 0
        }
        let maxNorm = maximum(norms)
        let maxSuper = maximum(superpositions)
        return zip(norms, superpositions).map { normRow, superRow in
            zip(normRow, superRow).map { n, s in
                color(norm: maxNorm > 0 ? n / maxNorm : 0, superposition: maxSuper > 0 ? s / maxSuper : 0)
            }
        }
    }
}
