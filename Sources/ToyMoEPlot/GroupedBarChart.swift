// Grouped bar chart (Table 1: mean usage per |M_e|, Xavier vs K-hot, baseline 1/E).

import Foundation

/// One series (one bar per group) of a grouped bar chart.
public struct BarSeries: Sendable, Hashable {
    public var name: String
    /// One value per group; NaN: no bar (e.g. no expert had that many monosemantic features).
    public var values: [Double]
    /// Symmetric error half-widths per group (NaN or missing: none).
    public var errors: [Double]?
    /// nil: tab10 colour of the series index.
    public var color: RGB?
    public init(_ name: String, values: [Double], errors: [Double]? = nil, color: RGB? = nil) {
        self.name = name
        self.values = values
        self.errors = errors
        self.color = color
    }
}

/// Groups along x, one bar per series inside each group (`<rect class="bar">`), error bars
/// (`<line class="errorbar">`), optional dashed reference lines (`class="reference"`) and a legend.
public struct GroupedBarChart: Panel {
    public var title: String?
    /// Group labels along x (e.g. "0", "1", "2" for |M_e|).
    public var groups: [String]
    public var series: [BarSeries]
    public var xLabel: String?
    /// The y axis (linear by default, always including 0).
    public var yAxis: Axis
    /// Horizontal reference lines, e.g. `.horizontal(0.1, label: "1/E")`.
    public var referenceLines: [ReferenceLine]
    public var legend: LegendPosition
    public var footnote: String?
    public var preferredSize: Size

    public init(title: String? = nil, groups: [String], series: [BarSeries], xLabel: String? = nil,
                yAxis: Axis = Axis(includeZero: true), referenceLines: [ReferenceLine] = [],
                legend: LegendPosition = .topLeft, footnote: String? = nil, preferredSize: Size = Size(460, 300)) {
        self.title = title
        self.groups = groups
        self.series = series
        self.xLabel = xLabel
        self.yAxis = yAxis
        self.referenceLines = referenceLines
        self.legend = legend
        self.footnote = footnote
        self.preferredSize = preferredSize
    }

    public var caption: String { title ?? "grouped bar chart" }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        var data: [Double] = [0]
        for s in series {
            for (g, v) in s.values.enumerated() where v.isFinite {
                data.append(v)
                if let e = s.errors, g < e.count, e[g].isFinite { data.append(v + e[g]) }
            }
        }
        data += referenceLines.filter { $0.orientation == .horizontal }.map(\.value)
        var axis = yAxis
        axis.includeZero = true
        let yr = axis.resolve(data)
        let labelled = referenceLines.filter { $0.orientation == .horizontal && $0.label != nil }
        var reserve = (labelled.map { SVGCanvas.textWidth($0.label!, size: Theme.tickSize) }.max() ?? 0)
        if reserve > 0 { reserve += 6 }
        let entries = series.enumerated().map { LegendEntry(label: $0.element.name, color: $0.element.color ?? Palette.tab10($0.offset), kind: .swatch) }
        if legend == .outsideRight { reserve = max(reserve, Draw.legendReserve(entries)) }
        let chrome = PanelChrome(title: title, footnote: footnote, xLabel: xLabel, yLabel: yAxis.label,
                                 yTickLabels: yr.ticks.map(\.label), rightReserve: reserve)
        let plot = chrome.plotRect(in: frame)
        let band = plot.width / Double(max(groups.count, 1))
        let barWidth = band * 0.8 / Double(max(series.count, 1))
        func py(_ v: Double) -> Double {
            let f = yr.fraction(v)
            return plot.maxY - (f.isFinite ? f.clamped(to: 0...1) : 0) * plot.height
        }
        Draw.yAxis(yr, plot: plot, grid: yAxis.grid, on: &canvas)
        Draw.xTicks(groups.indices.map { (plot.minX + (Double($0) + 0.5) * band, groups[$0]) }, plot: plot, grid: false,
                    on: &canvas)
        let dark = RGB(bytes: 0x33, 0x33, 0x33)
        for (si, s) in series.enumerated() {
            let color = s.color ?? Palette.tab10(si)
            canvas.beginGroup(class: "bar-series")
            canvas.tooltip(s.name)
            for g in groups.indices where g < s.values.count && s.values[g].isFinite {
                let v = s.values[g]
                let x = plot.minX + Double(g) * band + band * 0.1 + Double(si) * barWidth
                let top = py(v), zero = py(0)
                canvas.rect(Rect(x: x, y: min(top, zero), width: barWidth * 0.94, height: abs(zero - top)), fill: color,
                            stroke: dark, strokeWidth: 0.4, class: "bar")
                if let e = s.errors, g < e.count, e[g].isFinite, e[g] > 0 {
                    let cx = x + barWidth * 0.47
                    let hi = py(v + e[g]), lo = py(v - e[g])
                    canvas.line(from: Point(cx, hi), to: Point(cx, lo), stroke: dark, width: 1.1, class: "errorbar")
                    canvas.line(from: Point(cx - 3, hi), to: Point(cx + 3, hi), stroke: dark, width: 1.1, class: "errorbar-cap")
                    canvas.line(from: Point(cx - 3, lo), to: Point(cx + 3, lo), stroke: dark, width: 1.1, class: "errorbar-cap")
                }
            }
            canvas.endGroup()
        }
        for line in referenceLines where line.orientation == .horizontal && yr.contains(line.value) {
            let y = py(line.value)
            canvas.line(from: Point(plot.minX, y), to: Point(plot.maxX, y), stroke: line.color, width: line.width,
                        dash: line.dash, class: "reference")
            if let label = line.label {
                canvas.text(label, at: Point(plot.maxX + 4, y + 3.5), size: Theme.tickSize, class: "reference-label",
                            fill: line.color)
            }
        }
        Draw.frame(plot, on: &canvas)
        Draw.legend(entries, position: legend, plot: plot, on: &canvas)
        chrome.drawText(frame: frame, plot: plot, on: &canvas)
    }
}
