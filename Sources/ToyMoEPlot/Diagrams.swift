// Geometric diagrams: 2-D feature vectors (TMS intro figure), the phase-diagram colour legend and small
// network sketches.

import Foundation

/// Feature vectors W_i in a 2-D hidden space, each drawn from the origin (`<line class="vector">`) with a
/// dot at its tip (`<circle class="tip">`), coloured by importance; faint unit circle
/// (`<circle class="unit-circle">`) and equal aspect.
public struct VectorDiagram: Panel {
    public var title: String?
    /// One 2-D vector per feature.
    public var vectors: [Point]
    /// Colour values (e.g. importance); nil: every vector gets the colour map's darkest colour.
    public var importance: [Double]?
    public var colormap: Colormap
    /// How `importance` maps onto the colour map (default: divided by its maximum).
    public var normalization: ColorNormalization
    /// Half-width of the square view in data units; nil: max(1, longest vector) × 1.15.
    public var extent: Double?
    /// Write each feature's index next to its tip.
    public var labelTips: Bool
    public var footnote: String?
    public var preferredSize: Size

    public init(title: String? = nil, vectors: [Point], importance: [Double]? = nil, colormap: Colormap = .viridis,
                normalization: ColorNormalization = .divideByMax, extent: Double? = nil, labelTips: Bool = false,
                footnote: String? = nil, preferredSize: Size = Size(200, 220)) {
        self.title = title
        self.vectors = vectors
        self.importance = importance
        self.colormap = colormap
        self.normalization = normalization
        self.extent = extent
        self.labelTips = labelTips
        self.footnote = footnote
        self.preferredSize = preferredSize
    }

    /// From rows of an n×2 weight matrix (extra columns ignored, missing ones read as 0).
    public init(title: String? = nil, rows: [[Double]], importance: [Double]? = nil, colormap: Colormap = .viridis,
                normalization: ColorNormalization = .divideByMax, extent: Double? = nil, labelTips: Bool = false,
                footnote: String? = nil, preferredSize: Size = Size(200, 220)) {
        self.init(title: title, vectors: rows.map { Point($0.count > 0 ? $0[0] : 0, $0.count > 1 ? $0[1] : 0) },
                  importance: importance, colormap: colormap, normalization: normalization, extent: extent,
                  labelTips: labelTips,
                  footnote: footnote, preferredSize: preferredSize)
    }

    public var caption: String { title ?? "feature vectors" }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let chrome = PanelChrome(title: title, footnote: footnote, hasXTickLabels: false)
        let plot = chrome.plotRect(in: frame).inset(left: 4).fitted(aspect: 1)
        let longest = vectors.map { ($0.x * $0.x + $0.y * $0.y).squareRoot() }.filter { $0.isFinite }.max() ?? 1
        let half = extent ?? max(1, longest) * 1.15
        func p(_ v: Point) -> Point {
            Point(plot.midX + v.x / half * plot.width / 2, plot.midY - v.y / half * plot.height / 2)
        }
        let faint = RGB(bytes: 0xbb, 0xbb, 0xbb)
        canvas.line(from: Point(plot.minX, plot.midY), to: Point(plot.maxX, plot.midY), stroke: faint, width: 0.6, class: "axis")
        canvas.line(from: Point(plot.midX, plot.minY), to: Point(plot.midX, plot.maxY), stroke: faint, width: 0.6, class: "axis")
        canvas.circle(center: Point(plot.midX, plot.midY), radius: plot.width / 2 / half, fill: nil, stroke: faint,
                      strokeWidth: 1, class: "unit-circle")
        let normalized = importance.map { normalization.apply($0) }
        // Least important first, so the important vectors end up on top.
        for i in vectors.indices.reversed() {
            let v = vectors[i]
            guard v.x.isFinite, v.y.isFinite else { continue }
            let t = normalized.flatMap { i < $0.count ? $0[i] : nil } ?? 0
            let color = colormap.color(at: t.isNaN ? 0 : t)
            let tip = p(v)
            canvas.beginGroup(class: "feature")
            canvas.tooltip("feature \(i): (\(SVGFormat.number(v.x)), \(SVGFormat.number(v.y)))")
            canvas.line(from: Point(plot.midX, plot.midY), to: tip, stroke: color, width: 2, class: "vector")
            canvas.circle(center: tip, radius: 3.5, fill: color, stroke: .white, strokeWidth: 0.6, class: "tip")
            if labelTips {
                let dx = v.x >= 0 ? 5.0 : -5.0
                canvas.text(String(i), at: Point(tip.x + dx, tip.y - 4), size: Theme.tickSize - 1,
                            anchor: v.x >= 0 ? .start : .end, class: "tip-label")
            }
            canvas.endGroup()
        }
        canvas.rect(plot, fill: nil, stroke: RGB(bytes: 0xdd, 0xdd, 0xdd), strokeWidth: 0.8, class: "frame")
        chrome.drawText(frame: frame, plot: plot, on: &canvas)
    }
}

/// A text placed on a `ColorLegend2D`, at unit coordinates (x right, y up).
public struct LegendAnnotation: Sendable, Hashable {
    public var x: Double
    public var y: Double
    public var text: String
    public var anchor: TextAnchor
    public init(x: Double, y: Double, text: String, anchor: TextAnchor = .middle) {
        self.x = x
        self.y = y
        self.text = text
        self.anchor = anchor
    }
}

/// A square showing a 2-D colour map over the unit square (x to the right, y upward), with axis labels and
/// annotations whose text colour contrasts with the colour beneath. Cells are `<rect class="cell">`.
public struct ColorLegend2D: Panel {
    public var title: String?
    public var xLabel: String?
    public var yLabel: String?
    /// Cells per side.
    public var resolution: Int
    public var color: @Sendable (Double, Double) -> RGB
    public var annotations: [LegendAnnotation]
    public var footnote: String?
    public var preferredSize: Size

    /// `color(x, y)` for x, y in [0, 1].
    public init(title: String? = nil, xLabel: String? = nil, yLabel: String? = nil, resolution: Int = 24,
                annotations: [LegendAnnotation] = [], footnote: String? = nil, preferredSize: Size = Size(240, 240),
                color: @escaping @Sendable (Double, Double) -> RGB) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.resolution = max(2, resolution)
        self.color = color
        self.annotations = annotations
        self.footnote = footnote
        self.preferredSize = preferredSize
    }

    /// The phase-diagram legend of docs/PAPER.md#phase-colours: x = superposition / max, y = ‖W‖ / max; white = ignored,
    /// blue = monosemantic, red = superposed.
    /// Each panel is normalized by its own maxima (`PhaseColorMap.image`), so the key says "panel max".
    public static func phaseDiagram(title: String? = "colour key (normalized per panel)", resolution: Int = 24,
                                    preferredSize: Size = Size(240, 240)) -> ColorLegend2D {
        ColorLegend2D(title: title, xLabel: "superposition / panel max →", yLabel: "norm ‖W‖ / panel max →",
                      resolution: resolution,
                      annotations: [
                          LegendAnnotation(x: 0.5, y: 0.08, text: "white = ignored"),
                          LegendAnnotation(x: 0.04, y: 0.9, text: "blue = monosemantic", anchor: .start),
                          LegendAnnotation(x: 0.96, y: 0.7, text: "red = superposed", anchor: .end),
                      ],
                      preferredSize: preferredSize) { x, y in PhaseColorMap.color(norm: y, superposition: x) }
    }

    public var caption: String { title ?? "colour legend" }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let xAxis = GridAxis(label: xLabel, ticks: [GridTick(position: 0, text: "0"), GridTick(position: 1, text: "1")])
        let yAxis = GridAxis(label: yLabel, ticks: [GridTick(position: 0, text: "1"), GridTick(position: 1, text: "0")])
        let layout = GridFrame(title: title, footnote: footnote, xAxis: xAxis, yAxis: yAxis, aspect: 1, rightReserve: 0)
        let plot = layout.plot(in: frame)
        let n = resolution
        // Cell centres; row 0 is the top (y = 1).
        let cells: [[RGB?]] = (0..<n).map { row in
            let y = 1 - (Double(row) + 0.5) / Double(n)
            return (0..<n).map { column in color((Double(column) + 0.5) / Double(n), y) }
        }
        CellGrid.draw(cells, in: plot, on: &canvas)
        layout.drawAxes(plot: plot, frame: frame, on: &canvas)
        for a in annotations {
            let under = color(a.x.clamped(to: 0...1), a.y.clamped(to: 0...1))
            canvas.text(a.text, at: Point(plot.minX + a.x * plot.width, plot.maxY - a.y * plot.height + 4),
                        size: Theme.tickSize, anchor: a.anchor, class: "annotation", fill: under.contrastingText,
                        bold: true)
        }
    }
}

/// A small layered network sketch (e.g. "2-1-2": two inputs, one hidden unit, two outputs), nodes
/// `<circle class="node">`, connections `<line class="edge">`.
public struct NetworkDiagram: Panel {
    public var title: String?
    /// Units per layer, input first.
    public var layers: [Int]
    /// Optional caption per layer under its column (e.g. "x", "h", "x̂").
    public var layerLabels: [String]?
    public var footnote: String?
    public var preferredSize: Size

    public init(title: String? = nil, layers: [Int], layerLabels: [String]? = nil, footnote: String? = nil,
                preferredSize: Size = Size(200, 160)) {
        self.title = title
        self.layers = layers
        self.layerLabels = layerLabels
        self.footnote = footnote
        self.preferredSize = preferredSize
    }

    public var caption: String { title ?? layers.map(String.init).joined(separator: "-") }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let chrome = PanelChrome(title: title ?? caption, footnote: footnote, hasXTickLabels: layerLabels != nil)
        let plot = chrome.plotRect(in: frame).inset(left: 8)
        let maxUnits = Double(max(layers.max() ?? 1, 1))
        let radius = min(10, plot.height / (maxUnits * 3), plot.width / Double(max(layers.count, 1) * 4))
        func position(_ layer: Int, _ unit: Int) -> Point {
            let x = plot.minX + plot.width * (Double(layer) + 0.5) / Double(max(layers.count, 1))
            let count = Double(max(layers[layer], 1))
            let spacing = plot.height / maxUnits
            let y = plot.midY + (Double(unit) - (count - 1) / 2) * spacing
            return Point(x, y)
        }
        let edgeColor = RGB(bytes: 0x99, 0x99, 0x99)
        for layer in 0..<max(layers.count - 1, 0) {
            for a in 0..<layers[layer] {
                for b in 0..<layers[layer + 1] {
                    canvas.line(from: position(layer, a), to: position(layer + 1, b), stroke: edgeColor, width: 1,
                                class: "edge")
                }
            }
        }
        for (layer, units) in layers.enumerated() {
            for unit in 0..<units {
                let fill = layer == 0 || layer == layers.count - 1 ? Palette.tab10(0).mixed(with: .white, 0.3)
                                                                   : Palette.tab10(1).mixed(with: .white, 0.3)
                canvas.circle(center: position(layer, unit), radius: radius, fill: fill,
                              stroke: RGB(bytes: 0x33, 0x33, 0x33), strokeWidth: 1, class: "node")
            }
            if let labels = layerLabels, layer < labels.count {
                canvas.text(labels[layer], at: Point(position(layer, 0).x, plot.maxY + 14), size: Theme.tickSize,
                            anchor: .middle, class: "tick-label")
            }
        }
        chrome.drawText(frame: frame, plot: plot, on: &canvas)
    }
}
