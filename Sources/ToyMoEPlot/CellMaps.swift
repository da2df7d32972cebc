// Grids of coloured cells: heatmaps (Gram matrices), RGB images (phase diagrams) and categorical maps
// (routing regions).

import Foundation

/// A tick on a cell-grid axis.
public struct GridTick: Sendable, Hashable {
    /// Position as a fraction of the grid's extent: 0 = left edge (x) or top edge (y), 1 = right / bottom.
    public var position: Double
    public var text: String
    public init(position: Double, text: String) {
        self.position = position
        self.text = text
    }
}

/// The labelling of one side of a cell grid.
public struct GridAxis: Sendable, Hashable {
    public var label: String?
    public var ticks: [GridTick]

    public init(label: String? = nil, ticks: [GridTick]) {
        self.label = label
        self.ticks = ticks
    }

    /// One label per cell centre (cell i of `labels.count`), keeping every `every`-th starting at the first.
    public static func cells(_ labels: [String], every: Int = 1, label: String? = nil) -> GridAxis {
        let n = Double(max(labels.count, 1))
        let step = max(1, every)
        let ticks = Swift.stride(from: 0, to: labels.count, by: step).map {
            GridTick(position: (Double($0) + 0.5) / n, text: labels[$0])
        }
        return GridAxis(label: label, ticks: ticks)
    }

    /// Cell-centre labels printed from numeric values, every `every`-th cell, with at least `decimals` decimals
    /// and as many more (up to 6) as a labelled value needs to be printed exactly: a label never rounds the
    /// value it names (sparsity 0.025 … 0.975 every 6th reads 0.025, 0.175, …, not 0.03, 0.18). All labels of
    /// the axis get the same number of decimals; negative values get a typographic minus.
    public static func values(_ values: [Double], decimals: Int, every: Int = 1, label: String? = nil) -> GridAxis {
        let step = max(1, every)
        let shown = Swift.stride(from: 0, to: values.count, by: step).map { values[$0] }.filter { $0.isFinite }
        let needed = max(decimals, shown.map(Axis.decimalsNeeded).max() ?? 0)
        return cells(values.map { SVGFormat.typographic(SVGFormat.fixed($0, decimals: needed)) }, every: every, label: label)
    }

    /// A continuous coordinate spanning the grid's full extent: `range.lowerBound` at the left / top edge
    /// (or at the right / bottom edge when `descending`), with nice ticks in between. For a y axis whose
    /// rows run from high values at the top to low at the bottom, pass `descending: true`.
    public static func continuous(_ range: ClosedRange<Double>, label: String? = nil, descending: Bool = false,
                                  tickCount: Int = 5) -> GridAxis {
        let axis = Axis(domain: range, targetTickCount: tickCount).resolve([])
        let ticks = axis.ticks.map { tick -> GridTick in
            let f = axis.fraction(tick.value)
            return GridTick(position: descending ? 1 - f : f, text: tick.label)
        }
        return GridAxis(label: label, ticks: ticks)
    }
}

/// Draws colour grids compactly.
public enum CellGrid {
    /// Draws `colors` (rows top to bottom, columns left to right) into `area` as `<rect class="cell">`
    /// elements, merging each horizontal run of equal `#rrggbb` colour into one rectangle; `nil` cells are
    /// left empty. A 39×58 grid thus needs at most 2262 rectangles, and a routing map of a few cones
    /// needs a few per row. Returns the number of rectangles drawn.
    @discardableResult
    public static func draw(_ colors: [[RGB?]], in area: Rect, on canvas: inout SVGCanvas) -> Int {
        let rows = colors.count
        let columns = colors.map(\.count).max() ?? 0
        guard rows > 0, columns > 0 else { return 0 }
        func xEdge(_ j: Int) -> Double { area.minX + area.width * Double(j) / Double(columns) }
        func yEdge(_ i: Int) -> Double { area.minY + area.height * Double(i) / Double(rows) }
        var drawn = 0
        canvas.beginGroup(class: "cells", attributes: "shape-rendering=\"crispEdges\"")
        for (i, row) in colors.enumerated() {
            let top = yEdge(i), bottom = yEdge(i + 1)
            var j = 0
            while j < row.count {
                guard let color = row[j] else { j += 1; continue }
                let hex = color.hex
                var end = j + 1
                while end < row.count, let next = row[end], next.hex == hex { end += 1 }
                let left = xEdge(j), right = xEdge(end)
                // Coordinates are written with 2 decimals; derive width/height from rounded edges so
                // neighbouring runs share their boundary exactly.
                let x = (left * 100).rounded() / 100, y = (top * 100).rounded() / 100
                let w = (right * 100).rounded() / 100 - x, h = (bottom * 100).rounded() / 100 - y
                canvas.raw("<rect class=\"cell\" x=\"\(SVGCanvas.n(x))\" y=\"\(SVGCanvas.n(y))\" width=\"\(SVGCanvas.n(w))\" height=\"\(SVGCanvas.n(h))\" fill=\"\(hex)\"/>")
                drawn += 1
                j = end
            }
        }
        canvas.endGroup()
        return drawn
    }
}

/// Shared layout of the three grid charts.
struct GridFrame {
    var chrome: PanelChrome
    var xAxis: GridAxis?
    var yAxis: GridAxis?
    /// Width / height of the cell area; nil fills the available space.
    var aspect: Double?

    func plot(in frame: Rect) -> Rect {
        let available = chrome.plotRect(in: frame)
        guard let aspect else { return available }
        return available.fitted(aspect: aspect)
    }

    func drawAxes(plot: Rect, frame: Rect, on canvas: inout SVGCanvas) {
        if let xAxis {
            Draw.xTicks(xAxis.ticks.map { (plot.minX + $0.position * plot.width, $0.text) }, plot: plot, grid: false,
                        on: &canvas)
        }
        if let yAxis {
            Draw.yTicks(yAxis.ticks.map { (plot.minY + $0.position * plot.height, $0.text) }, plot: plot, grid: false,
                        on: &canvas)
        }
        Draw.frame(plot, on: &canvas)
        chrome.drawText(frame: frame, plot: plot, on: &canvas)
    }

    init(title: String?, footnote: String?, xAxis: GridAxis?, yAxis: GridAxis?, aspect: Double?, rightReserve: Double) {
        chrome = PanelChrome(title: title, footnote: footnote, xLabel: xAxis?.label, yLabel: yAxis?.label,
                             yTickLabels: yAxis?.ticks.map(\.text) ?? [],
                             hasXTickLabels: !(xAxis?.ticks.isEmpty ?? true), rightReserve: rightReserve)
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.aspect = aspect
    }
}

/// A matrix drawn as coloured cells (e.g. the Gram matrix W Wᵀ) with a diverging colour map, square cells
/// and a colour bar. Row 0 is at the top, column 0 at the left.
public struct Heatmap: Panel {
    public var title: String?
    /// Rows of values (NaN: grey).
    public var matrix: [[Double]]
    public var range: ClosedRange<Double>
    public var colormap: Colormap
    /// Row / column tick labels; nil: indices. Thinned automatically when crowded.
    public var rowLabels: [String]?
    public var columnLabels: [String]?
    /// Draw row / column tick labels at all.
    public var showLabels: Bool
    public var xLabel: String?
    public var yLabel: String?
    public var colorBarLabel: String?
    public var footnote: String?
    /// Square cells (true) or fill the panel.
    public var equalAspect: Bool
    public var preferredSize: Size

    public init(title: String? = nil, matrix: [[Double]], range: ClosedRange<Double> = -1...1,
                colormap: Colormap = .coolwarm, rowLabels: [String]? = nil, columnLabels: [String]? = nil,
                showLabels: Bool = true, xLabel: String? = nil, yLabel: String? = nil,
                colorBarLabel: String? = nil, footnote: String? = nil, equalAspect: Bool = true,
                preferredSize: Size = Size(340, 300)) {
        self.title = title
        self.matrix = matrix
        self.range = range
        self.colormap = colormap
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.showLabels = showLabels
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.colorBarLabel = colorBarLabel
        self.footnote = footnote
        self.equalAspect = equalAspect
        self.preferredSize = preferredSize
    }

    public var caption: String { title ?? "heatmap" }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let rows = matrix.count
        let columns = matrix.map(\.count).max() ?? 0
        let xAxis = GridAxis.cells(showLabels ? (columnLabels ?? (0..<columns).map(String.init)) : [], label: xLabel)
        let yAxis = GridAxis.cells(showLabels ? (rowLabels ?? (0..<rows).map(String.init)) : [], label: yLabel)
        let barTicks = Axis(domain: range).resolve([]).ticks.map(\.label)
        let layout = GridFrame(title: title, footnote: footnote, xAxis: xAxis, yAxis: yAxis,
                               aspect: equalAspect && rows > 0 && columns > 0 ? Double(columns) / Double(rows) : nil,
                               rightReserve: Draw.colorBarReserve(tickLabels: barTicks, label: colorBarLabel))
        let plot = layout.plot(in: frame)
        let colors: [[RGB?]] = matrix.map { row in row.map { colormap.color($0, in: range) } }
        CellGrid.draw(colors, in: plot, on: &canvas)
        layout.drawAxes(plot: plot, frame: frame, on: &canvas)
        Draw.colorBar(colormap, range: range, label: colorBarLabel, plot: plot, on: &canvas)
    }
}

/// A grid of caller-coloured cells (e.g. a phase diagram coloured by `PhaseColorMap`), rows top to bottom.
public struct ImageMap: Panel {
    public var title: String?
    /// Rows (top to bottom) of colours; nil cells are left blank.
    public var cells: [[RGB?]]
    public var xAxis: GridAxis?
    public var yAxis: GridAxis?
    public var footnote: String?
    /// Width / height of the drawn grid; nil fills the panel.
    public var aspect: Double?
    public var preferredSize: Size

    public init(title: String? = nil, cells: [[RGB?]], xAxis: GridAxis? = nil, yAxis: GridAxis? = nil,
                footnote: String? = nil, aspect: Double? = nil, preferredSize: Size = Size(300, 260)) {
        self.title = title
        self.cells = cells
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.footnote = footnote
        self.aspect = aspect
        self.preferredSize = preferredSize
    }

    /// Convenience for non-optional colours.
    public init(title: String? = nil, colors: [[RGB]], xAxis: GridAxis? = nil, yAxis: GridAxis? = nil,
                footnote: String? = nil, aspect: Double? = nil, preferredSize: Size = Size(300, 260)) {
        self.init(title: title, cells: colors.map { $0.map { Optional($0) } }, xAxis: xAxis, yAxis: yAxis,
                  footnote: footnote, aspect: aspect, preferredSize: preferredSize)
    }

    public var caption: String { title ?? "image" }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let layout = GridFrame(title: title, footnote: footnote, xAxis: xAxis, yAxis: yAxis, aspect: aspect,
                               rightReserve: 0)
        let plot = layout.plot(in: frame)
        CellGrid.draw(cells, in: plot, on: &canvas)
        layout.drawAxes(plot: plot, frame: frame, on: &canvas)
    }
}

/// A grid of integer classes drawn with a categorical palette (e.g. the top-1 expert over a 100×100 input
/// grid), with a legend naming each class. Negative classes are left blank.
public struct CategoryMap: Panel {
    public var title: String?
    /// Rows (top to bottom) of class indices.
    public var classes: [[Int]]
    /// Legend names, one per class index (e.g. "expert 0", "expert 1", "expert 2").
    public var classNames: [String]
    /// Colour of class i is `colors[i % colors.count]`.
    public var colors: [RGB]
    public var xAxis: GridAxis?
    public var yAxis: GridAxis?
    public var legendTitle: String?
    public var footnote: String?
    /// Width / height of the drawn grid; nil fills the panel. Default 1 (square).
    public var aspect: Double?
    public var preferredSize: Size

    public init(title: String? = nil, classes: [[Int]], classNames: [String], colors: [RGB] = Palette.tab10,
                xAxis: GridAxis? = nil, yAxis: GridAxis? = nil, legendTitle: String? = nil,
                footnote: String? = nil, aspect: Double? = 1, preferredSize: Size = Size(340, 280)) {
        self.title = title
        self.classes = classes
        self.classNames = classNames
        self.colors = colors.isEmpty ? Palette.tab10 : colors
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.legendTitle = legendTitle
        self.footnote = footnote
        self.aspect = aspect
        // The legend sits right of the grid: widen the panel by whatever the legend needs beyond the default's
        // allowance, so long class names never squeeze the cells away.
        let entries = classNames.map { LegendEntry(label: $0, color: RGB(0, 0, 0), kind: .swatch) }
        var reserve = Draw.legendReserve(entries)
        if let legendTitle { reserve = max(reserve, SVGCanvas.textWidth(legendTitle, size: Theme.legendSize) + 24) }
        self.preferredSize = Size(preferredSize.width + max(0, reserve - 90), preferredSize.height)
    }

    public var caption: String { title ?? "category map" }

    public func color(ofClass c: Int) -> RGB { colors[((c % colors.count) + colors.count) % colors.count] }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        let entries = classNames.enumerated().map { LegendEntry(label: $0.element, color: color(ofClass: $0.offset), kind: .swatch) }
        var reserve = Draw.legendReserve(entries)
        if let legendTitle { reserve = max(reserve, SVGCanvas.textWidth(legendTitle, size: Theme.legendSize) + 24) }
        let layout = GridFrame(title: title, footnote: footnote, xAxis: xAxis, yAxis: yAxis, aspect: aspect,
                               rightReserve: reserve)
        let plot = layout.plot(in: frame)
        let cells: [[RGB?]] = classes.map { row in row.map { $0 < 0 ? nil : color(ofClass: $0) } }
        CellGrid.draw(cells, in: plot, on: &canvas)
        layout.drawAxes(plot: plot, frame: frame, on: &canvas)
        Draw.legend(entries, position: .outsideRight, plot: plot, title: legendTitle, on: &canvas)
    }
}
