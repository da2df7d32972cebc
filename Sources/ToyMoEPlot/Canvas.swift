// An append-only SVG body with helpers for the few primitives the charts need.

import Foundation

/// A point in SVG user units (y grows downward).
public struct Point: Sendable, Hashable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) {
        self.x = x
        self.y = y
    }
}

/// A size in SVG user units.
public struct Size: Sendable, Hashable {
    public var width: Double
    public var height: Double
    public init(_ width: Double, _ height: Double) {
        self.width = width
        self.height = height
    }
}

/// An axis-aligned rectangle in SVG user units.
public struct Rect: Sendable, Hashable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
    public var minX: Double { x }
    public var minY: Double { y }
    public var maxX: Double { x + width }
    public var maxY: Double { y + height }
    public var midX: Double { x + width / 2 }
    public var midY: Double { y + height / 2 }

    /// Shrinks each side by the given amounts (never below zero size).
    public func inset(top: Double = 0, left: Double = 0, bottom: Double = 0, right: Double = 0) -> Rect {
        Rect(x: x + left, y: y + top, width: max(0, width - left - right), height: max(0, height - top - bottom))
    }

    /// The largest square (or rectangle of the given aspect = width / height) centred inside.
    public func fitted(aspect: Double) -> Rect {
        guard aspect > 0, width > 0, height > 0 else { return self }
        var w = width, h = width / aspect
        if h > height { h = height; w = height * aspect }
        return Rect(x: x + (width - w) / 2, y: y + (height - h) / 2, width: w, height: h)
    }
}

/// Horizontal anchoring of a text element.
public enum TextAnchor: String, Sendable {
    case start, middle, end
}

/// Builds an SVG body. Attribute order and number formatting are fixed, so output is deterministic.
///
/// Colours are passed as `RGB` and written as `#rrggbb`; coordinates are written with at most 2 decimals.
public struct SVGCanvas: Sendable {
    /// The accumulated body elements, one per line.
    public private(set) var body: String = ""
    /// `<defs>` children, de-duplicated by id (first definition wins), in insertion order.
    public private(set) var definitions: [(id: String, markup: String)] = []

    public init() {}

    /// Formats a coordinate (2 decimals are enough for screen geometry and keep files small).
    @inline(__always) public static func n(_ v: Double) -> String { SVGFormat.number(v, maxDecimals: 2) }

    /// Appends raw markup (caller is responsible for well-formedness and escaping).
    public mutating func raw(_ markup: String) {
        body += markup
        body += "\n"
    }

    /// Registers a `<defs>` child once per id (e.g. a colour-map gradient). Returns the id.
    @discardableResult
    public mutating func define(id: String, markup: String) -> String {
        if !definitions.contains(where: { $0.id == id }) { definitions.append((id, markup)) }
        return id
    }

    public mutating func beginGroup(class cls: String? = nil, transform: String? = nil, attributes: String = "") {
        var tag = "<g"
        if let cls { tag += " class=\"\(SVGFormat.escape(cls))\"" }
        if let transform { tag += " transform=\"\(transform)\"" }
        if !attributes.isEmpty { tag += " " + attributes }
        raw(tag + ">")
    }

    public mutating func endGroup() { raw("</g>") }

    /// A `<title>` child (tooltip / accessible name) for the enclosing group.
    public mutating func tooltip(_ text: String) { raw("<title>\(SVGFormat.escape(text))</title>") }

    public mutating func rect(_ r: Rect, fill: RGB?, stroke: RGB? = nil, strokeWidth: Double = 1,
                              class cls: String? = nil, opacity: Double? = nil, extra: String = "") {
        var tag = "<rect"
        if let cls { tag += " class=\"\(cls)\"" }
        tag += " x=\"\(Self.n(r.x))\" y=\"\(Self.n(r.y))\" width=\"\(Self.n(max(0, r.width)))\" height=\"\(Self.n(max(0, r.height)))\""
        tag += " fill=\"\(fill?.hex ?? "none")\""
        if let stroke { tag += " stroke=\"\(stroke.hex)\" stroke-width=\"\(Self.n(strokeWidth))\"" }
        if let opacity { tag += " opacity=\"\(SVGFormat.number(opacity))\"" }
        if !extra.isEmpty { tag += " " + extra }
        raw(tag + "/>")
    }

    public mutating func line(from a: Point, to b: Point, stroke: RGB, width: Double = 1, dash: String? = nil,
                              class cls: String? = nil, opacity: Double? = nil) {
        var tag = "<line"
        if let cls { tag += " class=\"\(cls)\"" }
        tag += " x1=\"\(Self.n(a.x))\" y1=\"\(Self.n(a.y))\" x2=\"\(Self.n(b.x))\" y2=\"\(Self.n(b.y))\""
        tag += " stroke=\"\(stroke.hex)\" stroke-width=\"\(Self.n(width))\""
        if let dash { tag += " stroke-dasharray=\"\(dash)\"" }
        if let opacity { tag += " opacity=\"\(SVGFormat.number(opacity))\"" }
        raw(tag + "/>")
    }

    public mutating func circle(center c: Point, radius: Double, fill: RGB?, stroke: RGB? = nil,
                                strokeWidth: Double = 1, class cls: String? = nil, opacity: Double? = nil) {
        var tag = "<circle"
        if let cls { tag += " class=\"\(cls)\"" }
        tag += " cx=\"\(Self.n(c.x))\" cy=\"\(Self.n(c.y))\" r=\"\(Self.n(radius))\" fill=\"\(fill?.hex ?? "none")\""
        if let stroke { tag += " stroke=\"\(stroke.hex)\" stroke-width=\"\(Self.n(strokeWidth))\"" }
        if let opacity { tag += " opacity=\"\(SVGFormat.number(opacity))\"" }
        raw(tag + "/>")
    }

    /// A polyline through the points (nothing if fewer than two).
    public mutating func polyline(_ points: [Point], stroke: RGB, width: Double = 1.5, dash: String? = nil,
                                  class cls: String? = nil) {
        guard points.count >= 2 else { return }
        let coordinates = points.map { "\(Self.n($0.x)),\(Self.n($0.y))" }.joined(separator: " ")
        var tag = "<polyline"
        if let cls { tag += " class=\"\(cls)\"" }
        tag += " points=\"\(coordinates)\" fill=\"none\" stroke=\"\(stroke.hex)\" stroke-width=\"\(Self.n(width))\""
        tag += " stroke-linejoin=\"round\""
        if let dash { tag += " stroke-dasharray=\"\(dash)\"" }
        raw(tag + "/>")
    }

    /// A closed polygon.
    public mutating func polygon(_ points: [Point], fill: RGB?, stroke: RGB? = nil, strokeWidth: Double = 1,
                                 class cls: String? = nil) {
        guard points.count >= 3 else { return }
        let coordinates = points.map { "\(Self.n($0.x)),\(Self.n($0.y))" }.joined(separator: " ")
        var tag = "<polygon"
        if let cls { tag += " class=\"\(cls)\"" }
        tag += " points=\"\(coordinates)\" fill=\"\(fill?.hex ?? "none")\""
        if let stroke { tag += " stroke=\"\(stroke.hex)\" stroke-width=\"\(Self.n(strokeWidth))\"" }
        raw(tag + "/>")
    }

    /// A text element. `rotation` (degrees, clockwise) turns it about its anchor point.
    public mutating func text(_ string: String, at p: Point, size: Double, anchor: TextAnchor = .start,
                              class cls: String? = nil, fill: RGB? = nil, bold: Bool = false,
                              rotation: Double? = nil) {
        var tag = "<text"
        if let cls { tag += " class=\"\(cls)\"" }
        tag += " x=\"\(Self.n(p.x))\" y=\"\(Self.n(p.y))\" font-size=\"\(Self.n(size))\""
        if anchor != .start { tag += " text-anchor=\"\(anchor.rawValue)\"" }
        if bold { tag += " font-weight=\"bold\"" }
        if let fill { tag += " fill=\"\(fill.hex)\"" }
        if let rotation, rotation != 0 {
            tag += " transform=\"rotate(\(Self.n(rotation)) \(Self.n(p.x)) \(Self.n(p.y)))\""
        }
        raw(tag + ">" + SVGFormat.escape(string) + "</text>")
    }

    /// Estimated rendered width of `string` at font size `size` (sans-serif, ≈ 0.6 em per character).
    public static func textWidth(_ string: String, size: Double) -> Double {
        var em = 0.0
        for scalar in string.unicodeScalars {
            switch scalar {
            case " ", ".", ",", ":", ";", "'", "|", "i", "l", "j", "!", "(", ")", "[", "]", "/": em += 0.35
            case "m", "w", "M", "W", "‖": em += 0.85
            case "\u{0300}"..."\u{036F}": break // combining marks
            default: em += 0.62
            }
        }
        return em * size
    }
}

/// Document assembly: wraps a body in a standalone `<svg>` element.
public enum SVGDocument {
    /// The stylesheet embedded in every figure: fonts only (colours are attributes, which CSS would
    /// override). Rules are scoped to `svg.tmoe` so figures inlined into one HTML page do not restyle the
    /// page or each other.
    public static let style = """
    svg.tmoe text{font-family:"DejaVu Sans","Helvetica Neue",Helvetica,Arial,sans-serif}
    svg.tmoe .title{font-weight:bold}
    svg.tmoe .footnote{font-style:italic}
    """

    /// A complete SVG document (XML prolog, `xmlns`, `viewBox`, width/height, `<title>`, `<style>`, white
    /// background, `<defs>` then the body).
    public static func wrap(_ canvas: SVGCanvas, size: Size, title: String, description: String? = nil) -> String {
        let w = SVGCanvas.n(size.width.rounded(.up))
        let h = SVGCanvas.n(size.height.rounded(.up))
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"tmoe\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        out += "<title>\(SVGFormat.escape(title))</title>\n"
        if let description { out += "<desc>\(SVGFormat.escape(description))</desc>\n" }
        out += "<style>\n\(style)\n</style>\n"
        if !canvas.definitions.isEmpty {
            out += "<defs>\n"
            for definition in canvas.definitions { out += definition.markup + "\n" }
            out += "</defs>\n"
        }
        out += "<rect class=\"background\" x=\"0\" y=\"0\" width=\"\(w)\" height=\"\(h)\" fill=\"#ffffff\"/>\n"
        out += canvas.body
        out += "</svg>\n"
        return out
    }
}
