// Line plots and scatter plots on linear or log axes, with error bars, reference lines and a legend.

import Foundation

/// One data series of an `XYPlot`.
public struct XYSeries: Sendable, Hashable {
    /// Legend text (nil: not in the legend).
    public var name: String?
    public var x: [Double]
    public var y: [Double]
    /// Symmetric error half-widths per point (mean ± spread); NaN or missing entries draw no bar.
    public var yError: [Double]?
    /// nil: the tab10 colour of the series index.
    public var color: RGB?
    /// Connect the points (false for a scatter).
    public var connected: Bool
    /// SVG dash pattern for the connecting line.
    public var dash: String?
    public var marker: Marker
    public var markerSize: Double
    public var lineWidth: Double
    /// Opacity of the markers (scatter clouds read better below 1).
    public var markerOpacity: Double

    public init(name: String? = nil, x: [Double], y: [Double], yError: [Double]? = nil, color: RGB? = nil,
                connected: Bool = true, dash: String? = nil, marker: Marker = .circle, markerSize: Double = 3,
                lineWidth: Double = 1.8, markerOpacity: Double = 1) {
        self.name = name
        self.x = x
        self.y = y
        self.yError = yError
        self.color = color
        self.connected = connected
        self.dash = dash
        self.marker = marker
        self.markerSize = markerSize
        self.lineWidth = lineWidth
        self.markerOpacity = markerOpacity
    }

    /// A connected series with markers.
    public static func line(_ name: String?, x: [Double], y: [Double], yError: [Double]? = nil, color: RGB? = nil,
                            marker: Marker = .circle, dash: String? = nil) -> XYSeries {
        XYSeries(name: name, x: x, y: y, yError: yError, color: color, connected: true, dash: dash, marker: marker)
    }

    /// Unconnected markers.
    public static func scatter(_ name: String?, x: [Double], y: [Double], color: RGB? = nil,
                               marker: Marker = .circle, size: Double = 2.6, opacity: Double = 0.75) -> XYSeries {
        XYSeries(name: name, x: x, y: y, color: color, connected: false, marker: marker, markerSize: size,
                 markerOpacity: opacity)
    }
}

/// A horizontal or vertical reference line across a plot, e.g. the dashed line at y = 1.
public struct ReferenceLine: Sendable, Hashable {
    public enum Orientation: String, Sendable, Hashable { case horizontal, vertical }
    public var orientation: Orientation
    /// Data value where the line sits (y for horizontal lines, x for vertical ones).
    public var value: Double
    /// Written right of the plot (horizontal lines) or at the top (vertical lines).
    public var label: String?
    public var color: RGB
    public var dash: String?
    public var width: Double
    /// A legend entry saying what the line means (e.g. "one feature per dimension"), drawn with the line's
    /// colour and dash after the series' entries; nil: the line is not in the legend.
    public var legend: String?

    public init(_ orientation: Orientation, at value: Double, label: String? = nil,
                color: RGB = RGB(bytes: 0x33, 0x33, 0x33), dash: String? = "6,4", width: Double = 1.2,
                legend: String? = nil) {
        self.orientation = orientation
        self.value = value
        self.label = label
        self.color = color
        self.dash = dash
        self.width = width
        self.legend = legend
    }

    public static func horizontal(_ y: Double, label: String? = nil, color: RGB = RGB(bytes: 0x33, 0x33, 0x33),
                                  dash: String? = "6,4") -> ReferenceLine {
        ReferenceLine(.horizontal, at: y, label: label, color: color, dash: dash)
    }

    public static func vertical(_ x: Double, label: String? = nil, color: RGB = RGB(bytes: 0x33, 0x33, 0x33),
                                dash: String? = "6,4") -> ReferenceLine {
        ReferenceLine(.vertical, at: x, label: label, color: color, dash: dash)
    }
}

/// A line / scatter plot. Series lines are `<polyline class="series">`, markers `class="point"`, error bars
/// `<line class="errorbar">`, reference lines `<line class="reference">`, the legend `<g class="legend">`.
/// Points outside the domain (or ≤ 0 on a log axis) are skipped and break the line.
public struct XYPlot: Panel {
    public var title: String?
    public var series: [XYSeries]
    public var xAxis: Axis
    public var yAxis: Axis
    public var referenceLines: [ReferenceLine]
    public var legend: LegendPosition
    public var footnote: String?
    public var preferredSize: Size

    public init(title: String? = nil, series: [XYSeries], xAxis: Axis = .linear(), yAxis: Axis = .linear(),
                referenceLines: [ReferenceLine] = [], legend: LegendPosition = .topLeft, footnote: String? = nil,
                preferredSize: Size = Size(440, 300)) {
        self.title = title
        self.series = series
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.referenceLines = referenceLines
        self.legend = legend
        self.footnote = footnote
        self.preferredSize = preferredSize
    }

    public var caption: String { title ?? "plot" }

    func color(of index: Int) -> RGB { series[index].color ?? Palette.tab10(index) }

    /// The resolved axes (data ranges include error bars and reference lines).
    public func resolvedAxes() -> (x: ResolvedAxis, y: ResolvedAxis) {
        var xs = series.flatMap(\.x)
        var ys: [Double] = []
        for s in series {
            for (i, y) in s.y.enumerated() {
                ys.append(y)
                if let e = s.yError, i < e.count, e[i].isFinite { ys.append(y + e[i]); ys.append(y - e[i]) }
            }
        }
        for line in referenceLines {
            if line.orientation == .horizontal { ys.append(line.value) } else { xs.append(line.value) }
        }
        return (xAxis.resolve(xs), yAxis.resolve(ys))
    }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let (xr, yr) = resolvedAxes()
        let entries = series.enumerated().compactMap { i, s -> LegendEntry? in
            guard let name = s.name else { return nil }
            return LegendEntry(label: name, color: color(of: i),
                               kind: s.connected ? .line(dash: s.dash, marker: s.marker) : .marker(s.marker))
        } + referenceLines.compactMap { line -> LegendEntry? in
            guard let text = line.legend else { return nil }
            return LegendEntry(label: text, color: line.color, kind: .line(dash: line.dash, marker: .none))
        }
        let horizontalLabels = referenceLines.filter { $0.orientation == .horizontal && $0.label != nil }
        var reserve = (horizontalLabels.map { SVGCanvas.textWidth($0.label!, size: Theme.tickSize) }.max() ?? 0)
        if reserve > 0 { reserve += 6 }
        if legend == .outsideRight && !entries.isEmpty { reserve = max(reserve, Draw.legendReserve(entries)) }
        let verticalLabelled = referenceLines.contains { $0.orientation == .vertical && $0.label != nil }
        let chrome = PanelChrome(title: title, footnote: footnote, xLabel: xAxis.label, yLabel: yAxis.label,
                                 yTickLabels: yr.ticks.map(\.label), rightReserve: reserve,
                                 topReserve: verticalLabelled ? 12 : 0)
        let plot = chrome.plotRect(in: frame)
        func px(_ x: Double) -> Double { plot.minX + xr.fraction(x) * plot.width }
        func py(_ y: Double) -> Double { plot.maxY - yr.fraction(y) * plot.height }

        Draw.xAxis(xr, plot: plot, grid: xAxis.grid, on: &canvas)
        Draw.yAxis(yr, plot: plot, grid: yAxis.grid, on: &canvas)

        // Reference lines below the data.
        canvas.beginGroup(class: "references")
        var labelPositions: [(y: Double, text: String, color: RGB)] = []
        for line in referenceLines {
            switch line.orientation {
            case .horizontal:
                guard yr.contains(line.value) else { continue }
                let y = py(line.value)
                canvas.line(from: Point(plot.minX, y), to: Point(plot.maxX, y), stroke: line.color, width: line.width,
                            dash: line.dash, class: "reference")
                if let label = line.label { labelPositions.append((y, label, line.color)) }
            case .vertical:
                guard xr.contains(line.value) else { continue }
                let x = px(line.value)
                canvas.line(from: Point(x, plot.minY), to: Point(x, plot.maxY), stroke: line.color, width: line.width,
                            dash: line.dash, class: "reference")
                if let label = line.label {
                    canvas.text(label, at: Point(x, plot.minY - 4), size: Theme.tickSize, anchor: .middle,
                                class: "reference-label", fill: line.color)
                }
            }
        }
        labelPositions.sort { $0.y < $1.y }
        let spread = Draw.spread(labelPositions.map(\.y), gap: 11, lower: plot.minY, upper: plot.maxY)
        for (item, y) in zip(labelPositions, spread) {
            canvas.text(item.text, at: Point(plot.maxX + 4, y + 3.5), size: Theme.tickSize, class: "reference-label",
                        fill: item.color)
        }
        canvas.endGroup()

        for (index, s) in series.enumerated() {
            let color = color(of: index)
            canvas.beginGroup(class: "series-group")
            if let name = s.name { canvas.tooltip(name) }
            let count = min(s.x.count, s.y.count)
            // Connected runs of drawable points.
            var points: [Point?] = []
            for i in 0..<count {
                let x = s.x[i], y = s.y[i]
                points.append(x.isFinite && y.isFinite && xr.contains(x) && yr.contains(y) ? Point(px(x), py(y)) : nil)
            }
            if s.connected {
                var run: [Point] = []
                for p in points + [nil] {
                    if let p { run.append(p) } else {
                        canvas.polyline(run, stroke: color, width: s.lineWidth, dash: s.dash, class: "series")
                        run = []
                    }
                }
            }
            if let errors = s.yError {
                for i in 0..<min(count, errors.count) {
                    guard let p = points[i], errors[i].isFinite, errors[i] > 0 else { continue }
                    let lowValue = s.y[i] - errors[i], highValue = s.y[i] + errors[i]
                    let low = lowValue > 0 || yr.scale == .linear ? py(lowValue) : plot.maxY
                    let high = py(highValue)
                    let top = max(min(high, plot.maxY), plot.minY), bottom = min(max(low, plot.minY), plot.maxY)
                    canvas.line(from: Point(p.x, top), to: Point(p.x, bottom), stroke: color, width: 1.1, class: "errorbar")
                    canvas.line(from: Point(p.x - 3, top), to: Point(p.x + 3, top), stroke: color, width: 1.1, class: "errorbar-cap")
                    canvas.line(from: Point(p.x - 3, bottom), to: Point(p.x + 3, bottom), stroke: color, width: 1.1, class: "errorbar-cap")
                }
            }
            if s.marker != .none {
                if s.markerOpacity < 1 { canvas.beginGroup(class: "points", attributes: "opacity=\"\(SVGFormat.number(s.markerOpacity))\"") }
                for p in points.compactMap({ $0 }) {
                    Draw.marker(s.marker, at: p, size: s.markerSize, color: color, class: "point", on: &canvas)
                }
                if s.markerOpacity < 1 { canvas.endGroup() }
            }
            canvas.endGroup()
        }
        Draw.frame(plot, on: &canvas)
        Draw.legend(entries, position: legend, plot: plot, on: &canvas)
        chrome.drawText(frame: frame, plot: plot, on: &canvas)
    }
}
