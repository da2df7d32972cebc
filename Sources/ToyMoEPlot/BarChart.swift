// Bar chart with per-bar colours (feature norms coloured by interference, docs/PAPER.md#polysemanticity / Figs. 1, 2, 6).

import Foundation

/// How the colour values of a chart are mapped onto [0, 1] before the colour map is applied.
public enum ColorNormalization: Sendable, Hashable {
    /// Divide by the largest finite value (all-zero or empty data maps to 0). The colour bar then reads 0…1.
    case divideByMax
    /// Map this range linearly onto [0, 1] (clamped). The colour bar shows the range itself.
    case range(ClosedRange<Double>)

    /// The normalized values (NaN stays NaN).
    public func apply(_ values: [Double]) -> [Double] {
        switch self {
        case .divideByMax:
            let maximum = values.filter { $0.isFinite }.max() ?? 0
            return values.map { $0.isNaN ? .nan : (maximum > 0 ? min(max($0 / maximum, 0), 1) : 0) }
        case .range(let r):
            let span = r.upperBound - r.lowerBound
            return values.map { $0.isNaN ? .nan : (span > 0 ? min(max(($0 - r.lowerBound) / span, 0), 1) : 0.5) }
        }
    }

    var colorBarRange: ClosedRange<Double> {
        switch self {
        case .divideByMax: return 0...1
        case .range(let r): return r
        }
    }
}

/// A vertical-line annotation across a plot (e.g. the red dashed line at x = m − 0.5 separating the first m
/// features).
public struct MarkerLine: Sendable, Hashable {
    /// Position in data units (for bar charts: bar i is centred at x = i).
    public var x: Double
    public var label: String?
    public var color: RGB
    /// SVG dash pattern, nil for solid.
    public var dash: String?

    public init(x: Double, label: String? = nil, color: RGB = RGB(hex: "#d62728")!, dash: String? = "5,4") {
        self.x = x
        self.label = label
        self.color = color
        self.dash = dash
    }
}

/// Bars of `values` (bar i centred at x = i), each coloured by a colour map of a second value, with an
/// optional marker line and a colour-bar legend. Bars are `<rect class="bar">`, the marker is
/// `<line class="marker">`, the legend is `<g class="colorbar">`.
public struct BarChart: Panel {
    public var title: String?
    /// Bar heights (NaN: no bar).
    public var values: [Double]
    /// Values coloured through `colormap` after `normalization`; nil: every bar gets `color`.
    public var colorValues: [Double]?
    public var colormap: Colormap
    public var normalization: ColorNormalization
    /// Bar colour when there are no colour values.
    public var color: RGB
    /// Tick labels under the bars (default: the indices 0, 1, …), thinned if crowded.
    public var labels: [String]?
    public var xLabel: String?
    public var yLabel: String?
    /// Fixed y domain (e.g. 0…1.2 to compare experts); nil: 0 to a nice value above the tallest bar.
    public var yDomain: ClosedRange<Double>?
    public var marker: MarkerLine?
    /// Colour-bar title; nil with colour values still draws the bar, unlabelled.
    public var colorBarLabel: String?
    public var footnote: String?
    public var preferredSize: Size

    public init(title: String? = nil, values: [Double], colorValues: [Double]? = nil,
                colormap: Colormap = .viridis, normalization: ColorNormalization = .divideByMax,
                color: RGB = Palette.tab10(0), labels: [String]? = nil, xLabel: String? = "feature i",
                yLabel: String? = "‖Wᵢ‖", yDomain: ClosedRange<Double>? = nil, markerX: Double? = nil,
                marker: MarkerLine? = nil, colorBarLabel: String? = "Superposition", footnote: String? = nil,
                preferredSize: Size = Size(420, 260)) {
        self.title = title
        self.values = values
        self.colorValues = colorValues
        self.colormap = colormap
        self.normalization = normalization
        self.color = color
        self.labels = labels
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.yDomain = yDomain
        self.marker = marker ?? markerX.map { MarkerLine(x: $0) }
        self.colorBarLabel = colorBarLabel
        self.footnote = footnote
        self.preferredSize = preferredSize
    }

    public var caption: String { title ?? "bar chart" }

    /// The colour bar's title as drawn. With `.divideByMax` every panel divides by its own maximum, so the same
    /// colour means different values in two panels: the title says so (" (÷ panel max)") unless it already
    /// mentions a maximum (e.g. "q / max q").
    public var colorBarTitle: String? {
        guard let colorBarLabel else { return nil }
        guard case .divideByMax = normalization, !colorBarLabel.lowercased().contains("max") else { return colorBarLabel }
        return colorBarLabel + " (÷ panel max)"
    }

    /// The fill colour of each bar.
    public var barColors: [RGB] {
        guard let colorValues else { return values.map { _ in color } }
        let normalized = normalization.apply(colorValues)
        return values.indices.map { i in i < normalized.count ? colormap.color(at: normalized[i]) : .missing }
    }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let yAxis = Axis(domain: yDomain, includeZero: true).resolve(values + [0])
        let range = normalization.colorBarRange
        let colorBarTicks = Axis(domain: range).resolve([]).ticks.map(\.label)
        var chrome = PanelChrome(title: title, footnote: footnote, xLabel: xLabel, yLabel: yLabel,
                                 yTickLabels: yAxis.ticks.map(\.label))
        if colorValues != nil { chrome.rightReserve = Draw.colorBarReserve(tickLabels: colorBarTicks, label: colorBarTitle) }
        let plot = chrome.plotRect(in: frame)
        let n = max(values.count, 1)
        let band = plot.width / Double(n)
        func px(_ x: Double) -> Double { plot.minX + (x + 0.5) * band }
        func py(_ y: Double) -> Double { plot.maxY - yAxis.fraction(y).clamped(to: 0...1) * plot.height }

        Draw.yAxis(yAxis, plot: plot, grid: true, on: &canvas)
        let tickLabels = labels ?? values.indices.map(String.init)
        Draw.xTicks(values.indices.map { (px(Double($0)), $0 < tickLabels.count ? tickLabels[$0] : "") },
                    plot: plot, grid: false, on: &canvas)

        canvas.beginGroup(class: "bars")
        let colors = barColors
        let zero = py(0)
        for (i, value) in values.enumerated() where value.isFinite {
            let top = py(value)
            let rect = Rect(x: px(Double(i)) - band * 0.4, y: min(top, zero), width: band * 0.8, height: abs(zero - top))
            canvas.rect(rect, fill: colors[i], stroke: RGB(bytes: 0x33, 0x33, 0x33), strokeWidth: 0.4, class: "bar")
        }
        canvas.endGroup()

        if let marker {
            let x = px(marker.x)
            if x >= plot.minX - 0.01 && x <= plot.maxX + 0.01 {
                canvas.line(from: Point(x, plot.minY), to: Point(x, plot.maxY), stroke: marker.color, width: 1.5,
                            dash: marker.dash, class: "marker")
                if let label = marker.label {
                    canvas.text(label, at: Point(x + 4, plot.minY + 12), size: Theme.tickSize, class: "marker-label",
                                fill: marker.color)
                }
            }
        }
        Draw.frame(plot, on: &canvas)
        if colorValues != nil {
            Draw.colorBar(colormap, range: range, label: colorBarTitle, plot: plot, on: &canvas)
        }
        chrome.drawText(frame: frame, plot: plot, on: &canvas)
    }
}
