// Shared panel furniture: titles, frames, ticks, axis labels, colour bars, legends and markers.

import Foundation

/// The shape drawn at each data point of a series.
public enum Marker: String, Sendable, Hashable {
    case none, circle, square, triangle, diamond
}

/// Where a legend box goes: inside a corner of the plot area, or outside to the right of it.
public enum LegendPosition: String, Sendable, Hashable {
    case topLeft, topRight, bottomLeft, bottomRight, outsideRight, hidden
}

/// One legend row.
struct LegendEntry: Sendable {
    enum Kind: Sendable {
        case swatch
        case line(dash: String?, marker: Marker)
        case marker(Marker)
    }
    var label: String
    var color: RGB
    var kind: Kind
}

/// Text sizes and colours shared by all charts.
enum Theme {
    static let titleSize = 13.0
    static let labelSize = 12.0
    static let tickSize = 10.0
    static let legendSize = 10.5
    static let footnoteSize = 10.5
    static let axisColor = RGB(bytes: 0x55, 0x55, 0x55)
    static let tickTextColor = RGB(bytes: 0x44, 0x44, 0x44)
    static let gridColor = RGB(bytes: 0xe6, 0xe6, 0xe6)
    static let referenceColor = RGB(bytes: 0x33, 0x33, 0x33)
    static let markerRed = RGB(hex: "#d62728")!
    static let tickLength = 4.0
    static let colorBarWidth = 12.0
}

/// Computes a panel's plot area from the text around it and draws that text.
struct PanelChrome {
    var title: String?
    var footnote: String?
    var xLabel: String?
    var yLabel: String?
    /// Labels of the y ticks (their width sets the left margin); empty: no y tick labels.
    var yTickLabels: [String] = []
    var hasXTickLabels = true
    /// Extra space kept free right of the plot (colour bar, outside legend, reference-line labels).
    var rightReserve = 0.0
    /// Extra space above the plot (below the title).
    var topReserve = 0.0

    var titleHeight: Double { title == nil ? 6 : 24 }
    var leftMargin: Double {
        let ticks = yTickLabels.map { SVGCanvas.textWidth($0, size: Theme.tickSize) }.max() ?? 0
        return 6 + (yLabel == nil ? 0 : 18) + ticks + (yTickLabels.isEmpty ? 0 : Theme.tickLength + 4)
    }
    var bottomMargin: Double {
        6 + (hasXTickLabels ? 15 : 0) + (xLabel == nil ? 0 : 17) + (footnote == nil ? 0 : 16)
    }

    func plotRect(in frame: Rect) -> Rect {
        frame.inset(top: titleHeight + topReserve, left: leftMargin, bottom: bottomMargin, right: rightReserve + 8)
    }

    /// Draws the title, the axis labels and the footnote around `plot`.
    func drawText(frame: Rect, plot: Rect, on canvas: inout SVGCanvas) {
        if let title {
            canvas.text(title, at: Point(plot.midX, frame.minY + 16), size: Theme.titleSize, anchor: .middle,
                        class: "title", bold: true)
        }
        if let xLabel {
            let y = plot.maxY + (hasXTickLabels ? 15 : 0) + 17
            canvas.text(xLabel, at: Point(plot.midX, y), size: Theme.labelSize, anchor: .middle, class: "axis-label x-label")
        }
        if let yLabel {
            let x = plot.minX - leftMargin + 6 + 11
            canvas.text(yLabel, at: Point(x, plot.midY), size: Theme.labelSize, anchor: .middle,
                        class: "axis-label y-label", rotation: -90)
        }
        if let footnote {
            canvas.text(footnote, at: Point(plot.midX, frame.maxY - 6), size: Theme.footnoteSize, anchor: .middle,
                        class: "footnote", fill: RGB(bytes: 0x44, 0x44, 0x44))
        }
    }
}

/// Drawing helpers shared by the charts.
enum Draw {
    /// The plot-area outline (`class="frame"`); tests and readers use it to find the data rectangle.
    static func frame(_ plot: Rect, on canvas: inout SVGCanvas) {
        canvas.rect(plot, fill: nil, stroke: Theme.axisColor, strokeWidth: 1, class: "frame")
    }

    /// Thins labels so neighbours do not overlap: keeps every k-th, the smallest k that fits.
    static func labelStride(positions: [Double], extents: [Double], gap: Double = 4) -> Int {
        guard positions.count > 1 else { return 1 }
        for k in 1...positions.count {
            var fits = true
            var i = 0
            while i + k < positions.count {
                if abs(positions[i + k] - positions[i]) < (extents[i] + extents[i + k]) / 2 + gap { fits = false; break }
                i += k
            }
            if fits { return k }
        }
        return positions.count
    }

    /// Ticks below the plot at pixel x positions, labels thinned to avoid overlap.
    static func xTicks(_ ticks: [(x: Double, label: String)], minor: [Double] = [], plot: Rect, grid: Bool,
                       on canvas: inout SVGCanvas) {
        canvas.beginGroup(class: "x-ticks")
        if grid {
            for t in ticks where t.x > plot.minX + 0.5 && t.x < plot.maxX - 0.5 {
                canvas.line(from: Point(t.x, plot.minY), to: Point(t.x, plot.maxY), stroke: Theme.gridColor, class: "grid")
            }
        }
        for x in minor {
            canvas.line(from: Point(x, plot.maxY), to: Point(x, plot.maxY + Theme.tickLength * 0.6),
                        stroke: Theme.axisColor, width: 0.8, class: "minor-tick")
        }
        let k = labelStride(positions: ticks.map(\.x),
                       extents: ticks.map { SVGCanvas.textWidth($0.label, size: Theme.tickSize) })
        for (i, t) in ticks.enumerated() {
            canvas.line(from: Point(t.x, plot.maxY), to: Point(t.x, plot.maxY + Theme.tickLength),
                        stroke: Theme.axisColor, class: "tick")
            if i % k == 0 {
                canvas.text(t.label, at: Point(t.x, plot.maxY + Theme.tickLength + 10), size: Theme.tickSize,
                            anchor: .middle, class: "tick-label", fill: Theme.tickTextColor)
            }
        }
        canvas.endGroup()
    }

    /// Ticks left of the plot at pixel y positions.
    static func yTicks(_ ticks: [(y: Double, label: String)], minor: [Double] = [], plot: Rect, grid: Bool,
                       on canvas: inout SVGCanvas) {
        canvas.beginGroup(class: "y-ticks")
        if grid {
            for t in ticks where t.y > plot.minY + 0.5 && t.y < plot.maxY - 0.5 {
                canvas.line(from: Point(plot.minX, t.y), to: Point(plot.maxX, t.y), stroke: Theme.gridColor, class: "grid")
            }
        }
        for y in minor {
            canvas.line(from: Point(plot.minX - Theme.tickLength * 0.6, y), to: Point(plot.minX, y),
                        stroke: Theme.axisColor, width: 0.8, class: "minor-tick")
        }
        let k = labelStride(positions: ticks.map(\.y), extents: ticks.map { _ in Theme.tickSize }, gap: 2)
        for (i, t) in ticks.enumerated() {
            canvas.line(from: Point(plot.minX - Theme.tickLength, t.y), to: Point(plot.minX, t.y),
                        stroke: Theme.axisColor, class: "tick")
            if i % k == 0 {
                canvas.text(t.label, at: Point(plot.minX - Theme.tickLength - 3, t.y + 3.5), size: Theme.tickSize,
                            anchor: .end, class: "tick-label", fill: Theme.tickTextColor)
            }
        }
        canvas.endGroup()
    }

    /// Continuous x axis ticks.
    static func xAxis(_ axis: ResolvedAxis, plot: Rect, grid: Bool, on canvas: inout SVGCanvas) {
        xTicks(axis.ticks.map { (plot.minX + axis.fraction($0.value) * plot.width, $0.label) },
               minor: axis.minorTicks.map { plot.minX + axis.fraction($0) * plot.width }, plot: plot, grid: grid,
               on: &canvas)
    }

    /// Continuous y axis ticks.
    static func yAxis(_ axis: ResolvedAxis, plot: Rect, grid: Bool, on canvas: inout SVGCanvas) {
        yTicks(axis.ticks.map { (plot.maxY - axis.fraction($0.value) * plot.height, $0.label) },
               minor: axis.minorTicks.map { plot.maxY - axis.fraction($0) * plot.height }, plot: plot, grid: grid,
               on: &canvas)
    }

    /// Width a vertical colour bar needs (bar, ticks, tick labels, rotated label).
    static func colorBarReserve(tickLabels: [String], label: String?) -> Double {
        let labels = tickLabels.map { SVGCanvas.textWidth($0, size: Theme.tickSize) }.max() ?? 0
        return 12 + Theme.colorBarWidth + Theme.tickLength + 3 + labels + (label == nil ? 0 : 18)
    }

    /// A vertical colour bar right of `plot` spanning its height (`<g class="colorbar">`), drawn with an SVG
    /// gradient whose stops are the colour map's anchors (identical to the per-value interpolation).
    static func colorBar(_ colormap: Colormap, range: ClosedRange<Double>, label: String?, plot: Rect,
                         on canvas: inout SVGCanvas, ticks explicitTicks: [Tick]? = nil) {
        let gradientID = "tmoe-cmap-" + colormap.name.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        var stops = ""
        for (i, anchor) in colormap.anchors.enumerated() {
            let offset = Double(i) / Double(colormap.anchors.count - 1)
            stops += "<stop offset=\"\(SVGFormat.number(offset, maxDecimals: 4))\" stop-color=\"\(anchor.hex)\"/>"
        }
        canvas.define(id: gradientID, markup:
            "<linearGradient id=\"\(gradientID)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\(stops)</linearGradient>")
        let bar = Rect(x: plot.maxX + 12, y: plot.minY, width: Theme.colorBarWidth, height: plot.height)
        canvas.beginGroup(class: "colorbar")
        canvas.rect(bar, fill: nil, stroke: Theme.axisColor, strokeWidth: 0.8, class: "colorbar-bar",
                    extra: "style=\"fill:url(#\(gradientID))\"")
        let axis = Axis(domain: range, ticks: explicitTicks).resolve([])
        var maxLabel = 0.0
        for tick in axis.ticks {
            let y = bar.maxY - axis.fraction(tick.value) * bar.height
            canvas.line(from: Point(bar.maxX, y), to: Point(bar.maxX + Theme.tickLength, y), stroke: Theme.axisColor,
                        class: "tick")
            canvas.text(tick.label, at: Point(bar.maxX + Theme.tickLength + 3, y + 3.5), size: Theme.tickSize,
                        class: "tick-label", fill: Theme.tickTextColor)
            maxLabel = max(maxLabel, SVGCanvas.textWidth(tick.label, size: Theme.tickSize))
        }
        if let label {
            let x = bar.maxX + Theme.tickLength + 3 + maxLabel + 12
            canvas.text(label, at: Point(x, bar.midY), size: Theme.labelSize - 1, anchor: .middle,
                        class: "colorbar-label", rotation: 90)
        }
        canvas.endGroup()
    }

    /// A marker shape centred at `c` with "radius" `size`.
    static func marker(_ marker: Marker, at c: Point, size: Double, color: RGB, class cls: String,
                       on canvas: inout SVGCanvas) {
        switch marker {
        case .none:
            return
        case .circle:
            canvas.circle(center: c, radius: size, fill: color, stroke: .white, strokeWidth: 0.6, class: cls)
        case .square:
            canvas.rect(Rect(x: c.x - size * 0.9, y: c.y - size * 0.9, width: size * 1.8, height: size * 1.8),
                        fill: color, stroke: .white, strokeWidth: 0.6, class: cls)
        case .triangle:
            canvas.polygon([Point(c.x, c.y - size * 1.2), Point(c.x + size * 1.1, c.y + size * 0.8),
                            Point(c.x - size * 1.1, c.y + size * 0.8)], fill: color, stroke: .white,
                           strokeWidth: 0.6, class: cls)
        case .diamond:
            canvas.polygon([Point(c.x, c.y - size * 1.3), Point(c.x + size, c.y), Point(c.x, c.y + size * 1.3),
                            Point(c.x - size, c.y)], fill: color, stroke: .white, strokeWidth: 0.6, class: cls)
        }
    }

    static func legendSize(_ entries: [LegendEntry]) -> Size {
        let width = (entries.map { SVGCanvas.textWidth($0.label, size: Theme.legendSize) }.max() ?? 0) + 40
        return Size(width, Double(entries.count) * 15 + 8)
    }

    /// Width an outside-right legend needs.
    static func legendReserve(_ entries: [LegendEntry]) -> Double { legendSize(entries).width + 12 }

    /// A legend box (`<g class="legend">`) in the chosen corner of `plot` (or right of it).
    static func legend(_ entries: [LegendEntry], position: LegendPosition, plot: Rect, title: String? = nil,
                       on canvas: inout SVGCanvas) {
        guard !entries.isEmpty, position != .hidden else { return }
        var size = legendSize(entries)
        if let title { size.height += 15; size.width = max(size.width, SVGCanvas.textWidth(title, size: Theme.legendSize) + 12) }
        let x: Double, y: Double
        switch position {
        case .topLeft: x = plot.minX + 6; y = plot.minY + 6
        case .topRight: x = plot.maxX - 6 - size.width; y = plot.minY + 6
        case .bottomLeft: x = plot.minX + 6; y = plot.maxY - 6 - size.height
        case .bottomRight: x = plot.maxX - 6 - size.width; y = plot.maxY - 6 - size.height
        case .outsideRight, .hidden: x = plot.maxX + 12; y = plot.minY
        }
        canvas.beginGroup(class: "legend")
        canvas.rect(Rect(x: x, y: y, width: size.width, height: size.height), fill: .white,
                    stroke: RGB(bytes: 0xbb, 0xbb, 0xbb), strokeWidth: 0.8, class: "legend-box", opacity: 0.9)
        var rowY = y + 4
        if let title {
            canvas.text(title, at: Point(x + 6, rowY + 11), size: Theme.legendSize, class: "legend-title", bold: true)
            rowY += 15
        }
        for entry in entries {
            let mid = rowY + 7.5
            switch entry.kind {
            case .swatch:
                canvas.rect(Rect(x: x + 8, y: mid - 5, width: 18, height: 10), fill: entry.color,
                            stroke: RGB(bytes: 0x66, 0x66, 0x66), strokeWidth: 0.5, class: "swatch")
            case .line(let dash, let m):
                canvas.line(from: Point(x + 6, mid), to: Point(x + 28, mid), stroke: entry.color, width: 2, dash: dash,
                            class: "legend-line")
                Draw.marker(m, at: Point(x + 17, mid), size: 3.2, color: entry.color, class: "legend-marker", on: &canvas)
            case .marker(let m):
                Draw.marker(m == .none ? .circle : m, at: Point(x + 17, mid), size: 3.5, color: entry.color,
                            class: "legend-marker", on: &canvas)
            }
            canvas.text(entry.label, at: Point(x + 34, mid + 3.6), size: Theme.legendSize, class: "legend-label")
            rowY += 15
        }
        canvas.endGroup()
    }

    /// Spreads label positions (sorted ascending) so consecutive ones are at least `gap` apart, staying
    /// within `lower...upper` when possible.
    static func spread(_ positions: [Double], gap: Double, lower: Double, upper: Double) -> [Double] {
        guard !positions.isEmpty else { return [] }
        var out = positions
        for i in 1..<out.count where out[i] < out[i - 1] + gap { out[i] = out[i - 1] + gap }
        if out[out.count - 1] > upper {
            out[out.count - 1] = upper
            for i in stride(from: out.count - 2, through: 0, by: -1) where out[i] > out[i + 1] - gap {
                out[i] = out[i + 1] - gap
            }
        }
        if out[0] < lower { out[0] = max(out[0], lower) }
        return out
    }
}
