// Panels and their arrangement into one SVG figure.

import Foundation
import ToyMoEIO

/// Anything that can draw itself into a rectangle of an SVG canvas: every chart type conforms.
public protocol Panel: Sendable {
    /// Size used when the panel is rendered alone or as the default cell size of a `Figure`.
    var preferredSize: Size { get }
    /// Short text naming the panel (its title), used for the document `<title>` of a lone panel.
    var caption: String { get }
    /// Draws the panel inside `frame`. Implementations must stay inside the frame.
    func draw(in frame: Rect, on canvas: inout SVGCanvas)
}

extension Panel {
    /// This panel alone as a complete SVG document.
    public func svg(size: Size? = nil) -> String {
        Figure(title: nil, panels: [self], columns: 1, panelSize: size ?? preferredSize, margin: 4).svg()
    }

    /// Writes `svg(size:)` atomically to `url`.
    public func write(to url: URL, size: Size? = nil) throws {
        try AtomicFile.write(svg(size: size), to: url)
    }
}

/// Positions of equally sized cells on a grid, row-major (left to right, then top to bottom).
public enum GridLayout {
    /// Frames of `count` cells of `cellSize` in `columns` columns, starting at `origin`, separated by
    /// `spacing` both ways.
    public static func frames(count: Int, columns: Int, cellSize: Size, origin: Point = Point(0, 0),
                              spacing: Double = 0) -> [Rect] {
        let columns = max(1, columns)
        return (0..<max(0, count)).map { i in
            let row = i / columns, column = i % columns
            return Rect(x: origin.x + Double(column) * (cellSize.width + spacing),
                        y: origin.y + Double(row) * (cellSize.height + spacing),
                        width: cellSize.width, height: cellSize.height)
        }
    }

    /// Total size of such a grid (without the origin offset).
    public static func size(count: Int, columns: Int, cellSize: Size, spacing: Double = 0) -> Size {
        let columns = max(1, min(columns, max(count, 1)))
        let rows = max(1, (max(count, 1) + columns - 1) / columns)
        return Size(Double(columns) * cellSize.width + Double(columns - 1) * spacing,
                    Double(rows) * cellSize.height + Double(rows - 1) * spacing)
    }
}

/// Several panels on a grid in one standalone SVG document, with an optional figure title and footnote.
public struct Figure: Sendable {
    /// Drawn centred at the top and used as the document `<title>` (falls back to the panel captions).
    public var title: String?
    public var panels: [any Panel]
    public var columns: Int
    /// Size of every grid cell; nil uses the largest preferred size among the panels.
    public var panelSize: Size?
    /// Gap between cells.
    public var spacing: Double
    /// Blank border around everything.
    public var margin: Double
    /// A line of small italic text under the grid.
    public var footnote: String?

    public init(title: String? = nil, panels: [any Panel], columns: Int? = nil, panelSize: Size? = nil,
                spacing: Double = 8, margin: Double = 8, footnote: String? = nil) {
        self.title = title
        self.panels = panels
        self.columns = max(1, columns ?? panels.count)
        self.panelSize = panelSize
        self.spacing = spacing
        self.margin = margin
        self.footnote = footnote
    }

    /// The complete SVG document.
    public func svg() -> String {
        let cell = panelSize ?? Size(panels.map(\.preferredSize.width).max() ?? 300,
                                     panels.map(\.preferredSize.height).max() ?? 200)
        let columns = min(self.columns, max(1, panels.count))
        let grid = GridLayout.size(count: panels.count, columns: columns, cellSize: cell, spacing: spacing)
        let titleHeight = title == nil ? 0.0 : 30
        let footHeight = footnote == nil ? 0.0 : 22
        let width = max(grid.width, title.map { SVGCanvas.textWidth($0, size: 16) + 20 } ?? 0) + 2 * margin
        let height = grid.height + titleHeight + footHeight + 2 * margin
        var canvas = SVGCanvas()
        if let title {
            canvas.text(title, at: Point(width / 2, margin + 19), size: 16, anchor: .middle, class: "title figure-title",
                        bold: true)
        }
        let origin = Point(margin + (width - 2 * margin - grid.width) / 2, margin + titleHeight)
        let frames = GridLayout.frames(count: panels.count, columns: columns, cellSize: cell, origin: origin,
                                       spacing: spacing)
        for (panel, frame) in zip(panels, frames) {
            canvas.beginGroup(class: "panel")
            panel.draw(in: frame, on: &canvas)
            canvas.endGroup()
        }
        if let footnote {
            canvas.text(footnote, at: Point(margin, height - margin - 6), size: 11, class: "footnote")
        }
        let documentTitle = title ?? panels.map(\.caption).filter { !$0.isEmpty }.joined(separator: " | ")
        return SVGDocument.wrap(canvas, size: Size(width, height),
                                title: documentTitle.isEmpty ? "figure" : documentTitle)
    }

    /// Writes `svg()` atomically to `url`.
    public func write(to url: URL) throws {
        try AtomicFile.write(svg(), to: url)
    }
}

/// A blank grid cell.
public struct EmptyPanel: Panel {
    public var preferredSize: Size
    public init(preferredSize: Size = Size(100, 100)) { self.preferredSize = preferredSize }
    public var caption: String { "" }
    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {}
}

/// A few lines of text in a grid cell (e.g. notes beside a row of plots).
public struct TextPanel: Panel {
    public var title: String?
    public var lines: [String]
    public var fontSize: Double
    public var preferredSize: Size

    public init(title: String? = nil, lines: [String], fontSize: Double = 12, preferredSize: Size = Size(260, 160)) {
        self.title = title
        self.lines = lines
        self.fontSize = fontSize
        self.preferredSize = preferredSize
    }

    public var caption: String { title ?? lines.first ?? "" }

    public func draw(in frame: Rect, on canvas: inout SVGCanvas) {
        var y = frame.minY + 18
        if let title {
            canvas.text(title, at: Point(frame.midX, y), size: 13, anchor: .middle, class: "title", bold: true)
            y += 20
        }
        for line in lines {
            canvas.text(line, at: Point(frame.minX + 10, y), size: fontSize, class: "text")
            y += fontSize * 1.4
        }
    }
}
