import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoEPlot

/// Figures fit for a paper: real minus signs, tick labels that do not round the value they name, colour bars that
/// say when colours are normalized per panel, legend entries for reference lines, and a report whose summary is
/// tables and whose provenance is on the page.
@Suite struct TypographyTests {
    @Test("tick labels use the minus sign U+2212, never the ASCII hyphen")
    func minusSign() throws {
        #expect(SVGFormat.typographic("-0.5") == "\u{2212}0.5")
        #expect(SVGFormat.typographic("1.5e-5") == "1.5e\u{2212}5")
        #expect(SVGFormat.typographic("2-1-2") == "2-1-2")  // a hyphen inside a name stays
        let axis = Axis(domain: -1...1).resolve([])
        #expect(axis.ticks.map(\.label) == ["\u{2212}1.0", "\u{2212}0.5", "0.0", "0.5", "1.0"])
        let heatmap = Heatmap(title: "G", matrix: [[1, -1], [-1, 1]], range: -1...1, colormap: .coolwarm)
        let doc = try expectStandaloneSVG(heatmap.svg())
        let labels = doc.elements("text", class: "tick-label").map { $0.stringValue ?? "" }
        #expect(labels.contains("\u{2212}1.0") && !labels.contains { $0.contains("-") }, "colour-bar ticks: \(labels)")
    }

    @Test("cell-grid labels never round the value they name (S = 0.025 stays 0.025)")
    func gridLabelsExact() {
        let sparsities = (0..<39).map { 0.025 + 0.025 * Double($0) }
        let axis = GridAxis.values(sparsities, decimals: 2, every: 6)
        let texts = axis.ticks.map(\.text)
        #expect(texts.first == "0.025" && texts.contains("0.175") && !texts.contains("0.03"), "\(texts)")
        // Values that need no more decimals keep the requested ones.
        #expect(GridAxis.values([0.1, 0.5, 1], decimals: 2).ticks.map(\.text) == ["0.10", "0.50", "1.00"])
    }

    @Test("a bar chart normalized per panel says so on its colour bar; one that already names the maximum is left alone")
    func colorBarTitle() throws {
        let normalized = BarChart(values: [1, 2], colorValues: [0.1, 0.4], colorBarLabel: "Superposition")
        let doc = try expectStandaloneSVG(normalized.svg())
        #expect(doc.elements("text", class: "colorbar-label").map { $0.stringValue ?? "" } == ["Superposition (÷ panel max)"])
        #expect(BarChart(values: [1], colorValues: [1], colorBarLabel: "q / max q").colorBarTitle == "q / max q")
        #expect(BarChart(values: [1], colorValues: [1], normalization: .range(0...1), colorBarLabel: "q").colorBarTitle == "q")
        let key = ColorLegend2D.phaseDiagram()
        #expect(key.title == "colour key (normalized per panel)" && key.xLabel == "superposition / panel max →")
    }

    @Test("a reference line with a legend text gets a legend entry drawn in its dash")
    func referenceLegend() throws {
        let plot = XYPlot(series: [.line("Dense", x: [1, 2], y: [1, 2])],
                          referenceLines: [.horizontal(1, label: "1"),
                                           ReferenceLine(.horizontal, at: 1.5, legend: "one feature per dimension")])
        let doc = try expectStandaloneSVG(plot.svg())
        let legend = try #require(doc.elements("g", class: "legend").first)
        #expect(doc.elements("text", in: legend).map { $0.stringValue ?? "" } == ["Dense", "one feature per dimension"])
        let lines = doc.elements("line", class: "legend-line", in: legend)
        #expect(lines.count == 2 && doc.string(lines[1], "stroke-dasharray") == "6,4")
    }

    @Test("report: a nested summary becomes tables (0-based # column for lists), provenance and notes are on the page")
    func reportTables() throws {
        let summary: JSONValue = .object([
            "figure": .string("Fig. 2"), "reproduced": .bool(true),
            "experts": .array([.object(["represented": .array([.int(0), .int(5)])]), .object(["represented": .array([])])]),
            "paper": .object(["features_represented": .int(8), "grid": .array([.array([.int(1), .int(2), .int(3), .int(4), .int(5)])]),
                              "pairs": .array([.array([.int(0), .int(5)]), .array([.int(1), .int(2)])])]),
        ])
        let index = HTMLIndex(title: "T", entries: [.init(heading: "A", figure: .inline("<svg width=\"10\" height=\"10\"></svg>"),
                                                          exports: ["a.png", "a.pdf"])],
                              summary: .tree(summary), provenance: [.init("seed", "3"), .init("command", "toymoe run x.lua")],
                              notes: ["PNG/PDF export skipped: test"])
        let html = try index.html()
        #expect(!html.contains("<pre>"))
        #expect(html.contains("<tr><td>figure</td><td>Fig. 2</td></tr>") && html.contains("<tr><td>reproduced</td><td>true</td></tr>"))
        #expect(html.contains("<h3>experts</h3>"))
        #expect(html.contains("<thead><tr><th class=\"num\">#</th><th>represented</th></tr></thead>"))
        #expect(html.contains("<tr><td class=\"num\">0</td><td>0, 5</td></tr>") && html.contains("<tr><td class=\"num\">1</td><td>(none)</td></tr>"))
        #expect(html.contains("<h3>paper</h3>") && html.contains("<tr><td>grid</td><td>[[1,2,3,4,5]]</td></tr>")
                && html.contains("<tr><td>pairs</td><td>(0, 5), (1, 2)</td></tr>"))
        #expect(html.contains("<section id=\"provenance\">") && html.contains("<tr><th>command</th><td><code>toymoe run x.lua</code></td></tr>"))
        #expect(html.contains("<p class=\"note\">PNG/PDF export skipped: test</p>"))
        #expect(html.contains("figure svg{display:block;max-width:100%;height:auto"))
    }
}
