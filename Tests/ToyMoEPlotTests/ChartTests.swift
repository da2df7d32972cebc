// Structure of every chart kind: well-formed XML, expected element counts, legends and labels.

import Foundation
import Testing
@testable import ToyMoEPlot

@Suite("Charts")
struct ChartTests {
    @Test("bar chart: one bar per value, viridis colours by normalized interference, marker, colour bar, labels")
    func barChart() throws {
        let chart = Samples.bars()
        let doc = try expectStandaloneSVG(chart.svg(), title: "expert 0")
        let bars = doc.elements("rect", class: "bar")
        #expect(bars.count == 20)
        // Colours: max interference → viridis(1), the small ones close to viridis(0).
        #expect(doc.string(bars[3], "fill") == "#fde725")
        #expect(chart.barColors[0] == Colormap.viridis.color(at: 0.01 / 0.97))
        // Bar heights are proportional to the values (zero baseline shared).
        let frame = doc.rect(try #require(doc.only("rect", class: "frame")))
        let heights = bars.map { doc.number($0, "height") }
        #expect(abs(heights[0] / heights[1] - Samples.norms[0] / Samples.norms[1]) < 0.01)
        #expect(bars.allSatisfy { abs(doc.number($0, "y") + doc.number($0, "height") - frame.maxY) < 0.02 })
        // Marker between bar 5 and bar 6.
        let marker = try #require(doc.only("line", class: "marker"))
        let x5 = doc.number(bars[5], "x") + doc.number(bars[5], "width"), x6 = doc.number(bars[6], "x")
        #expect(doc.number(marker, "x1") > x5 && doc.number(marker, "x1") < x6)
        #expect(doc.string(marker, "stroke-dasharray") != nil && doc.string(marker, "stroke") == "#d62728")
        #expect(doc.elements("g", class: "colorbar").count == 1)
        #expect(doc.texts.contains("Superposition (÷ panel max)"))  // colours are divided by this panel's maximum
        #expect(doc.texts.contains("‖Wᵢ‖") && doc.texts.contains("feature i"))
        // Feature indices are the x tick labels.
        #expect(doc.texts.contains("0") && doc.texts.contains("18"))
    }

    @Test("panels side by side: a figure of three bar charts has three of everything")
    func figureGrid() throws {
        let figure = Figure(title: "Fig. 2a: norms per expert", panels: (0..<3).map { Samples.bars(expert: $0) })
        let doc = try expectStandaloneSVG(figure.svg(), title: "Fig. 2a: norms per expert")
        #expect(doc.elements("g", class: "panel").count == 3)
        #expect(doc.elements("rect", class: "bar").count == 60)
        #expect(doc.elements("line", class: "marker").count == 3)
        #expect(doc.elements("g", class: "colorbar").count == 3)
        // The colour-bar gradient is defined once.
        #expect(doc.elements("linearGradient").count == 1)
        let frames = doc.elements("rect", class: "frame").map(doc.rect)
        #expect(frames.count == 3)
        #expect(frames[0].maxX < frames[1].minX && frames[1].maxX < frames[2].minX)
        #expect(frames.allSatisfy { $0.maxX <= doc.number(doc.root, "width") })
        let frames2 = GridLayout.frames(count: 5, columns: 2, cellSize: Size(10, 5), spacing: 1)
        #expect(frames2[3] == Rect(x: 11, y: 6, width: 10, height: 5))
        #expect(GridLayout.size(count: 5, columns: 2, cellSize: Size(10, 5), spacing: 1) == Size(21, 17))
    }

    @Test("heatmap: square cells covering the plot, coolwarm on [−1, 1], colour bar and labels")
    func heatmap() throws {
        let map = Heatmap(title: "W Wᵀ", matrix: Samples.gram, xLabel: "feature j", yLabel: "feature i")
        let doc = try expectStandaloneSVG(map.svg())
        let cells = doc.elements("rect", class: "cell")
        #expect(cells.count > 20 && cells.count <= 400)
        let frame = doc.rect(try #require(doc.only("rect", class: "frame")))
        #expect(abs(frame.width - frame.height) < 0.02)
        let rects = cells.map(doc.rect)
        #expect(abs((rects.map(\.minX).min() ?? 0) - frame.minX) < 0.02)
        #expect(abs((rects.map(\.maxX).max() ?? 0) - frame.maxX) < 0.02)
        #expect(abs((rects.map(\.maxY).max() ?? 0) - frame.maxY) < 0.02)
        // Every cell area is covered exactly once.
        let area = rects.reduce(0) { $0 + $1.width * $1.height }
        #expect(abs(area - frame.width * frame.height) / (frame.width * frame.height) < 0.01)
        let fills = Set(cells.compactMap { doc.string($0, "fill") })
        #expect(fills.contains(Colormap.coolwarm.color(-0.95, in: -1...1).hex))
        #expect(fills.contains(Colormap.coolwarm.color(0, in: -1...1).hex))
        #expect(doc.elements("g", class: "colorbar").count == 1)
        #expect(doc.texts.contains("\u{2212}1.0") && doc.texts.contains("1.0") && doc.texts.contains("feature j"))
        // A summed panel next to per-expert panels.
        let figure = Figure(panels: [map, map, Heatmap(title: "sum", matrix: Samples.gram, range: -2...2)], columns: 3)
        #expect(try XMLInspector(figure.svg()).elements("g", class: "colorbar").count == 3)
    }

    @Test("phase diagram 39×58: ≤ 2262 cells spanning the plot, tick labels every 7th column")
    func phaseGrid() throws {
        let panel = Samples.phase(seed: 1)
        let svg = panel.svg()
        let doc = try expectStandaloneSVG(svg)
        let cells = doc.elements("rect", class: "cell")
        #expect(cells.count <= 39 * 58)
        #expect(cells.count < 39 * 58, "runs of equal colour are merged")
        let frame = doc.rect(try #require(doc.only("rect", class: "frame")))
        let rects = cells.map(doc.rect)
        #expect(abs((rects.map(\.minX).min() ?? 0) - frame.minX) < 0.02)
        #expect(abs((rects.map(\.maxX).max() ?? 0) - frame.maxX) < 0.02)
        #expect(abs((rects.map(\.minY).min() ?? 0) - frame.minY) < 0.02)
        #expect(abs((rects.map(\.maxY).max() ?? 0) - frame.maxY) < 0.02)
        let area = rects.reduce(0) { $0 + $1.width * $1.height }
        #expect(abs(area - frame.width * frame.height) / (frame.width * frame.height) < 0.01)
        let texts = doc.texts
        // Rows: S = 0.025 … 0.925 every 6th, printed exactly (once rounded to 0.03 … 0.93).
        #expect(texts.contains("0.025") && texts.contains("0.925") && !texts.contains("0.03"))
        #expect(texts.contains("0.10") && texts.contains("0.45") && texts.contains("2.90"))
        #expect(!texts.contains("0.15"))  // only every 7th column is labelled
        #expect(texts.contains("sparsity S") && texts.contains("A.1/1"))
        // Rows run top to bottom: the label 0.025 sits above 0.925.
        let tickLabels = doc.elements("text", class: "tick-label")
        let y003 = tickLabels.first { $0.stringValue == "0.025" }.map { doc.number($0, "y") } ?? .nan
        let y093 = tickLabels.first { $0.stringValue == "0.925" }.map { doc.number($0, "y") } ?? .nan
        #expect(y003 < y093)
        // A uniform image collapses to one rectangle per row.
        let flat = ImageMap(colors: Array(repeating: Array(repeating: RGB.white, count: 58), count: 39))
        #expect(try XMLInspector(flat.svg()).elements("rect", class: "cell").count == 39)
        #expect(svg.utf8.count < 250_000)
    }

    @Test("routing regions: tab10 classes, few rectangles per row, legend naming the experts")
    func categoryMap() throws {
        let map = Samples.routing
        let doc = try expectStandaloneSVG(map.svg())
        let cells = doc.elements("rect", class: "cell")
        #expect(cells.count >= 100 && cells.count <= 300)
        let fills = Set(cells.compactMap { doc.string($0, "fill") })
        #expect(fills == Set([Palette.tab10(0).hex, Palette.tab10(1).hex, Palette.tab10(2).hex]))
        let legend = try #require(doc.elements("g", class: "legend").first)
        #expect(doc.elements("rect", class: "swatch", in: legend).count == 3)
        let labels = doc.elements("text", in: legend).map { $0.stringValue ?? "" }
        #expect(labels == ["expert 0", "expert 1", "expert 2"])
        #expect(doc.texts.contains("Loss: 0.028") && doc.texts.contains("x₁") && doc.texts.contains("x₂"))
        // The continuous y axis puts 1 at the top.
        let ticks = doc.elements("text", class: "tick-label")
        let yOf: (String) -> [Double] = { label in ticks.filter { $0.stringValue == label }.map { doc.number($0, "y") } }
        #expect((yOf("1.0").min() ?? 0) < (yOf("0.0").max() ?? 0))
        // Negative classes are left blank.
        let holes = CategoryMap(classes: [[0, -1, 0]], classNames: ["a"])
        #expect(try XMLInspector(holes.svg()).elements("rect", class: "cell").count == 2)
    }

    @Test("log-x line plot: 1 and 10 on the plot edges, one line per series, error bars, y = 1, legend")
    func linePlot() throws {
        let plot = Samples.fpd
        let doc = try expectStandaloneSVG(plot.svg())
        let frame = doc.rect(try #require(doc.only("rect", class: "frame")))
        let xTicks = doc.elements("g", class: "x-ticks").first!
        let labels = doc.elements("text", class: "tick-label", in: xTicks)
        func x(of label: String) -> Double? { labels.first { $0.stringValue == label }.map { doc.number($0, "x") } }
        #expect(labels.map { $0.stringValue ?? "" } == ["1", "2", "5", "10"])
        #expect(abs((x(of: "1") ?? .nan) - frame.minX) < 0.01)
        #expect(abs((x(of: "10") ?? .nan) - frame.maxX) < 0.01)
        #expect(abs((x(of: "2") ?? .nan) - (frame.minX + log10(2) * frame.width)) < 0.01)
        #expect(doc.elements("polyline", class: "series").count == 4)
        #expect(doc.elements("circle", class: "point").count == 4 * 30)
        #expect(doc.elements("line", class: "errorbar").count == 4 * 30)
        let reference = try #require(doc.only("line", class: "reference"))
        #expect(doc.string(reference, "stroke-dasharray") != nil)
        let (_, yAxis) = plot.resolvedAxes()
        #expect(abs(doc.number(reference, "y1") - (frame.maxY - yAxis.fraction(1) * frame.height)) < 0.01)
        let legend = try #require(doc.elements("g", class: "legend").first)
        #expect(doc.elements("text", in: legend).map { $0.stringValue ?? "" } == ["Dense", "4 experts", "10 experts", "20 experts"])
        #expect(doc.texts.contains("1/p (inverse density)") && doc.texts.contains("features per dimension"))
    }

    @Test("log y axis and points outside the domain are skipped without breaking the document")
    func logYAndClipping() throws {
        let plot = XYPlot(series: [.line("loss", x: [1, 2, 3, 4], y: [0.1, 0, 0.01, .nan], yError: [0.05, 0.1, 0.2, 1]),
                                   .line(nil, x: [], y: [])],
                          xAxis: .linear("x", domain: 1...3), yAxis: .log("loss"))
        let doc = try expectStandaloneSVG(plot.svg())
        #expect(doc.elements("circle", class: "point").count == 2)
        #expect(doc.elements("polyline", class: "series").isEmpty)  // the two visible points are not adjacent
        #expect(doc.elements("line", class: "errorbar").count == 2)
        #expect(doc.elements("g", class: "legend").count == 1)
    }

    @Test("scatter with labelled reference lines at 1, 3/4, 2/3, 1/2, 2/5, 3/8")
    func scatter() throws {
        let plot = Samples.dimensionality
        let doc = try expectStandaloneSVG(plot.svg())
        #expect(doc.elements("circle", class: "point").count == 800)
        #expect(doc.elements("polyline").isEmpty)
        #expect(doc.elements("line", class: "reference").count == 6)
        let labels = doc.elements("text", class: "reference-label")
        #expect(labels.map { $0.stringValue ?? "" } == ["1", "3/4", "2/3", "1/2", "2/5", "3/8"])
        let ys = labels.map { doc.number($0, "y") }
        #expect(zip(ys, ys.dropFirst()).allSatisfy { $1 - $0 >= 10.9 }, "labels do not overlap")
        #expect(doc.elements("g", class: "legend").isEmpty)
    }

    @Test("box plot: quartiles match NumPy's linear interpolation; one box, median and whisker pair per group")
    func boxPlot() throws {
        let stats = try #require(BoxStats(values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 100, .nan]))
        #expect(stats.count == 10 && stats.min == 1 && stats.max == 100)
        #expect(stats.q1 == 3.25 && stats.median == 5.5 && stats.q3 == 7.75)
        #expect(stats.whiskerLow == 1 && stats.whiskerHigh == 9 && stats.outliers == [100])
        #expect(BoxStats(values: [.nan]) == nil)
        let plot = Samples.boxes
        let doc = try expectStandaloneSVG(plot.svg())
        #expect(doc.elements("rect", class: "box").count == 8)
        #expect(doc.elements("line", class: "median").count == 8)
        #expect(doc.elements("line", class: "whisker").count == 16)
        #expect(!doc.elements("circle", class: "outlier").isEmpty)
        #expect(doc.elements(class: "mean").count == 8)
        let texts = doc.texts
        #expect(["A/1", "A/2", "B/1", "B/2", "B/3", "C/1", "C/2", "C/3"].allSatisfy(texts.contains))
        #expect(texts.contains("0.01") && texts.contains("final loss"))
    }

    @Test("grouped bars: bars for finite values only, error bars, dashed 1/E baseline, legend")
    func groupedBars() throws {
        let doc = try expectStandaloneSVG(Samples.usage.svg())
        #expect(doc.elements("rect", class: "bar").count == 8)
        #expect(doc.elements("line", class: "errorbar").count == 8)
        let baseline = try #require(doc.only("line", class: "reference"))
        #expect(doc.string(baseline, "stroke-dasharray") != nil)
        #expect(doc.texts.contains("1/E") && doc.texts.contains("Xavier") && doc.texts.contains("K-hot"))
        #expect(doc.elements("rect", class: "swatch").count == 2)
    }

    @Test("vector diagram: one vector and tip per feature, unit circle, square view")
    func vectorDiagram() throws {
        let panels = [0.0, 0.3, 0.6].map { Samples.vectors(angleOffset: $0) }
        let doc = try expectStandaloneSVG(Figure(title: "TMS intro", panels: panels).svg())
        #expect(doc.elements("line", class: "vector").count == 15)
        #expect(doc.elements("circle", class: "tip").count == 15)
        let circles = doc.elements("circle", class: "unit-circle")
        #expect(circles.count == 3)
        let frame = doc.rect(doc.elements("rect", class: "frame")[0])
        #expect(abs(frame.width - frame.height) < 0.02)
        // The first vector has norm 1 and points along +x: its tip lies on the unit circle.
        let firstPanel = doc.elements("g", class: "panel")[0]
        let tip = doc.elements("circle", class: "tip", in: firstPanel).last!  // drawn last = feature 0
        let circle = circles[0]
        let dx = doc.number(tip, "cx") - doc.number(circle, "cx")
        #expect(abs(dx - doc.number(circle, "r")) < 0.02)
        #expect(doc.string(tip, "fill") == Colormap.viridis.color(at: 1).hex)
    }

    @Test("2-D colour legend: white, blue and red corners with their annotations")
    func colorLegend() throws {
        let legend = ColorLegend2D.phaseDiagram(resolution: 10)
        let doc = try expectStandaloneSVG(legend.svg())
        let cells = doc.elements("rect", class: "cell")
        #expect(cells.count <= 100 && cells.count >= 10)
        let fills = cells.compactMap { doc.string($0, "fill") }
        // Bottom-left cell (low norm) is nearly white, top-left blue, top-right red.
        let topLeft = try #require(RGB(hex: fills.first!))
        #expect(topLeft.b > 0.9 && topLeft.r < 0.15)
        let texts = doc.texts
        #expect(texts.contains("white = ignored") && texts.contains("blue = monosemantic") && texts.contains("red = superposed"))
        #expect(texts.contains("superposition / panel max →") && texts.contains("norm ‖W‖ / panel max →"))
        let annotation = doc.elements("text", class: "annotation").first { $0.stringValue == "white = ignored" }!
        #expect(doc.string(annotation, "fill") == "#000000")
    }

    @Test("network sketch, text and empty panels draw inside a figure")
    func smallPanels() throws {
        let figure = Figure(panels: [NetworkDiagram(layers: [2, 1, 2]), TextPanel(title: "note", lines: ["a < b"]),
                                     EmptyPanel(), ColorLegend2D.phaseDiagram()], columns: 2)
        let doc = try expectStandaloneSVG(figure.svg())
        #expect(doc.elements("circle", class: "node").count == 5)
        #expect(doc.elements("line", class: "edge").count == 4)
        #expect(doc.texts.contains("a < b") && doc.texts.contains("2-1-2"))
    }

    @Test("hostile and empty input still gives well-formed documents")
    func edgeCases() throws {
        let hostile = "<script>&\"'"
        let charts: [any Panel] = [
            BarChart(title: hostile, values: []),
            BarChart(values: [.nan, -1, 2], colorValues: [.nan, 0, 0], labels: [hostile]),
            Heatmap(matrix: []),
            Heatmap(matrix: [[.nan, 1], [0]]),
            ImageMap(cells: []),
            CategoryMap(classes: [], classNames: []),
            XYPlot(title: hostile, series: []),
            XYPlot(series: [.line(hostile, x: [1], y: [1])], xAxis: .log(), yAxis: .log()),
            BoxPlot(groups: [BoxGroup(hostile, values: [])]),
            GroupedBarChart(groups: [], series: []),
            VectorDiagram(vectors: []),
            NetworkDiagram(layers: []),
        ]
        for chart in charts {
            let svg = chart.svg()
            _ = try expectStandaloneSVG(svg)
            #expect(!svg.contains("<script>"))
        }
        let figure = Figure(title: hostile, panels: charts, columns: 4, footnote: hostile)
        let doc = try expectStandaloneSVG(figure.svg(), title: hostile)
        #expect(doc.texts.contains(hostile))
    }

    @Test("determinism: the same input gives the same bytes")
    func determinism() {
        func all() -> [String] {
            [Samples.bars().svg(), Heatmap(matrix: Samples.gram).svg(), Samples.fpd.svg(), Samples.phase(seed: 2).svg(),
             Samples.routing.svg(), Samples.boxes.svg(), Samples.usage.svg(), Samples.vectors().svg(),
             Samples.dimensionality.svg(), ColorLegend2D.phaseDiagram().svg(),
             Figure(title: "t", panels: [Samples.bars(), Samples.bars(expert: 1)]).svg()]
        }
        let first = all(), second = all()
        #expect(first == second)
        #expect(Set(first).count == first.count)
    }

    @Test("writing to disk is atomic and byte-identical to svg()")
    func writing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("toymoe-plot-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("bars.svg")
        try Samples.bars().write(to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == Samples.bars().svg())
        let figureURL = directory.appendingPathComponent("figure.svg")
        let figure = Figure(panels: [Samples.usage])
        try figure.write(to: figureURL)
        #expect(try String(contentsOf: figureURL, encoding: .utf8) == figure.svg())
    }
}
