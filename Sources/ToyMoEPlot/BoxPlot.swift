// Box plots of several distributions (phase-change losses, docs/PAPER.md#box-plot).

import Foundation

/// Five-number summary with Tukey whiskers, computed from raw values (non-finite values are dropped).
///
/// Quartiles use linear interpolation between order statistics (NumPy's default, "type 7"). Whiskers reach
/// the most extreme data points within 1.5·IQR of the box; points beyond are outliers.
public struct BoxStats: Sendable, Hashable {
    public let count: Int
    public let min: Double
    public let q1: Double
    public let median: Double
    public let q3: Double
    public let max: Double
    public let mean: Double
    public let whiskerLow: Double
    public let whiskerHigh: Double
    /// Values outside the whiskers, ascending.
    public let outliers: [Double]

    /// nil when there are no finite values.
    public init?(values: [Double]) {
        let sorted = values.filter { $0.isFinite }.sorted()
        guard !sorted.isEmpty else { return nil }
        func quantile(_ p: Double) -> Double {
            let h = Double(sorted.count - 1) * p
            let lo = Int(h.rounded(.down)), hi = Swift.min(lo + 1, sorted.count - 1)
            return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
        }
        count = sorted.count
        min = sorted[0]
        max = sorted[sorted.count - 1]
        q1 = quantile(0.25)
        median = quantile(0.5)
        q3 = quantile(0.75)
        mean = sorted.reduce(0, +) / Double(sorted.count)
        let iqr = q3 - q1
        let lowFence = q1 - 1.5 * iqr, highFence = q3 + 1.5 * iqr
        whiskerLow = sorted.first { $0 >= lowFence } ?? q1
        whiskerHigh = sorted.last { $0 <= highFence } ?? q3
        outliers = sorted.filter { $0 < lowFence || $0 > highFence }
    }
}

/// One distribution of a box plot.
public struct BoxGroup: Sendable, Hashable {
    public var label: String
    public var values: [Double]
    /// nil: tab10 colour of the group index.
    public var color: RGB?
    public init(_ label: String, values: [Double], color: RGB? = nil) {
        self.label = label
        self.values = values
        self.color = color
    }
}

/// Side-by-side box plots: `<rect class="box">` (Q1–Q3), `<line class="median">`, `<line class="whisker">`
/// (with caps), `<circle class="outlier">` and optionally a mean marker (`class="mean"`).
public struct BoxPlot: Panel {
    public var title: String?
    public var groups: [BoxGroup]
    public var yAxis: Axis
    public var xLabel: String?
    public var showMean: Bool
    public var footnote: String?
    public var preferredSize: Size

    public init(title: String? = nil, groups: [BoxGroup], yAxis: Axis = .linear(), xLabel: String? = nil,
                showMean: Bool = false, footnote: String? = nil, preferredSize: Size = Size(460, 300)) {
        self.title = title
        self.groups = groups
        self.yAxis = yAxis
        self.xLabel = xLabel
        self.showMean = showMean
        self.footnote = footnote
        self.preferredSize = preferredSize
    }

    public var caption: String { title ?? "box plot" }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let stats = groups.map { BoxStats(values: $0.values) }
        let yr = yAxis.resolve(stats.compactMap { $0 }.flatMap { [$0.min, $0.max] })
        let chrome = PanelChrome(title: title, footnote: footnote, xLabel: xLabel, yLabel: yAxis.label,
                                 yTickLabels: yr.ticks.map(\.label))
        let plot = chrome.plotRect(in: frame)
        let band = plot.width / Double(max(groups.count, 1))
        func px(_ i: Int) -> Double { plot.minX + (Double(i) + 0.5) * band }
        func py(_ v: Double) -> Double {
            let f = yr.fraction(v)
            return plot.maxY - (f.isFinite ? f.clamped(to: 0...1) : 0) * plot.height
        }
        Draw.yAxis(yr, plot: plot, grid: yAxis.grid, on: &canvas)
        Draw.xTicks(groups.indices.map { (px($0), groups[$0].label) }, plot: plot, grid: false, on: &canvas)
        let dark = RGB(bytes: 0x33, 0x33, 0x33)
        for (i, group) in groups.enumerated() {
            guard let s = stats[i] else { continue }
            let color = group.color ?? Palette.tab10(i)
            let x = px(i), half = min(band * 0.3, 28)
            canvas.beginGroup(class: "box-group")
            canvas.tooltip("\(group.label): n=\(s.count) min=\(SVGFormat.number(s.min, maxDecimals: 4)) Q1=\(SVGFormat.number(s.q1, maxDecimals: 4)) median=\(SVGFormat.number(s.median, maxDecimals: 4)) Q3=\(SVGFormat.number(s.q3, maxDecimals: 4)) max=\(SVGFormat.number(s.max, maxDecimals: 4))")
            canvas.line(from: Point(x, py(s.whiskerLow)), to: Point(x, py(s.q1)), stroke: dark, class: "whisker")
            canvas.line(from: Point(x, py(s.q3)), to: Point(x, py(s.whiskerHigh)), stroke: dark, class: "whisker")
            for w in [s.whiskerLow, s.whiskerHigh] {
                canvas.line(from: Point(x - half / 2, py(w)), to: Point(x + half / 2, py(w)), stroke: dark,
                            class: "whisker-cap")
            }
            let top = py(s.q3), bottom = py(s.q1)
            canvas.rect(Rect(x: x - half, y: top, width: 2 * half, height: max(bottom - top, 0.5)),
                        fill: color.mixed(with: .white, 0.35), stroke: dark, strokeWidth: 1, class: "box")
            canvas.line(from: Point(x - half, py(s.median)), to: Point(x + half, py(s.median)), stroke: dark, width: 2,
                        class: "median")
            for v in s.outliers where yr.contains(v) {
                canvas.circle(center: Point(x, py(v)), radius: 2.2, fill: nil, stroke: color, strokeWidth: 0.9,
                              class: "outlier")
            }
            if showMean {
                Draw.marker(.diamond, at: Point(x, py(s.mean)), size: 3.5, color: dark, class: "mean", on: &canvas)
            }
            canvas.endGroup()
        }
        Draw.frame(plot, on: &canvas)
        chrome.drawText(frame: frame, plot: plot, on: &canvas)
    }
}
