import Foundation
import Testing
@testable import ToyMoELua

/// `toymoe.plot`: every function writes its file with the expected structure, and bad options fail with messages
/// naming the function and the option.
@Suite struct PlotBindingsTests {

    /// Runs `source` as `test.lua` and returns the output directory.
    func run(_ source: String) throws -> URL {
        try ScriptTestResult.run(source).directory
    }

    /// Runs `source` and returns the error message it ends with (fails the test if it succeeds).
    func failure(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            _ = try run(source)
            Issue.record("expected an error", sourceLocation: sourceLocation)
            return ""
        } catch let e as ScriptRunError {
            return e.description
        } catch {
            Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
            return ""
        }
    }

    func read(_ dir: URL, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let url = dir.appendingPathComponent(name)
        #expect(FileManager.default.fileExists(atPath: url.path), "\(name) was not written", sourceLocation: sourceLocation)
        return try String(contentsOf: url, encoding: .utf8)
    }

    func count(_ text: String, _ needle: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    /// A standalone SVG document with the given title somewhere in it.
    func expectSVG(_ svg: String, title: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(svg.contains("<svg") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\"") && svg.hasSuffix("</svg>\n"),
                sourceLocation: sourceLocation)
        #expect(svg.contains(title), "title '\(title)' missing", sourceLocation: sourceLocation)
        #expect(!svg.contains("\"nan") && !svg.contains("\"inf"), "non-finite attribute", sourceLocation: sourceLocation)
    }

    @Test("bars: panels with interference colours and the marker; one-panel shorthand into a new directory")
    func bars() throws {
        let dir = try run("""
            toymoe.plot.bars{ file = "fig2.svg", title = "Fig. 2a", marker = 1.5, columns = 2,
              panels = { { title = "expert 1", values = {1, 0.9, 0.1, 0.8, 0}, color_values = {0, 0.1, 0.5, 1, 0} },
                         { title = "expert 2", values = {0.2, 1, 1, 0.3, 0.4}, color_values = {1, 1, 0, 0, 0.2},
                           marker = 2.5 } } }
            toymoe.plot.bars{ file = "figs/one/fig1.svg", title = "Fig. 1a", values = {1, 1, 0.5, 0} }
            """)
        let svg = try read(dir, "fig2.svg")
        expectSVG(svg, title: "Fig. 2a")
        #expect(count(svg, "class=\"bar\"") == 10)
        #expect(count(svg, "class=\"marker\"") == 2)
        #expect(count(svg, "class=\"colorbar\"") == 2)
        #expect(svg.contains("expert 1") && svg.contains("expert 2") && svg.contains("Superposition"))
        #expect(svg.contains("#fde725"), "the largest colour value is yellow (viridis, divided by the panel max)")
        let one = try read(dir, "figs/one/fig1.svg")
        expectSVG(one, title: "Fig. 1a")
        #expect(count(one, "class=\"bar\"") == 4, "a zero bar still draws (height 0)")
        #expect(!one.contains("class=\"colorbar\"") && !one.contains("class=\"marker\""))
    }

    @Test("heatmap: Gram matrices on coolwarm, NaN drawn as a missing (grey) cell")
    func heatmap() throws {
        let dir = try run("""
            local W = {{1, 0}, {0, 1}, {-1, 0}}
            local G = toymoe.metrics.gram(W)
            toymoe.plot.heatmap{ file = "gram.svg", title = "W Wᵀ", x_label = "feature j", y_label = "feature i",
              panels = { { title = "expert 1", matrix = G }, { title = "gap", matrix = {{1, 0/0}, {0, -1}} } } }
            """)
        let svg = try read(dir, "gram.svg")
        expectSVG(svg, title: "W Wᵀ")
        #expect(svg.contains("class=\"cell\""))
        #expect(svg.contains("#b40426") && svg.contains("#3b4cc0"), "coolwarm ends for +1 and −1")
        #expect(svg.contains("#cccccc"), "NaN cell")
        #expect(svg.contains("feature j") && svg.contains("expert 1"))
    }

    @Test("lines: log x, error bars, dashed series, NaN gap, labelled reference lines, legend")
    func lines() throws {
        let dir = try run("""
            local x = {1, 2, 3, 5, 10}
            toymoe.plot.lines{ file = "fpd.svg", title = "FPD vs 1/(1-S)", x_log = true, x_label = "1/(1-S)",
              y_label = "features per dimension", reference_y = { 1, { value = 2, label = "two" } },
              series = { { label = "Dense", x = x, y = {1, 2, 0/0, 4, 4.5}, y_error = {0.1, 0.1, 0/0, 0.2, 0.2} },
                         { label = "4 experts", x = x, y = {1, 1.5, 2, 2.5, 2.9}, dashed = true, color = "#ff0000" } } }
            """)
        let svg = try read(dir, "fpd.svg")
        expectSVG(svg, title: "FPD vs 1/(1-S)")
        #expect(count(svg, "class=\"series\"") == 3, "the NaN splits the first line in two")
        #expect(count(svg, "class=\"point\"") == 9)
        #expect(count(svg, "class=\"errorbar\"") == 4)
        #expect(count(svg, "class=\"reference\"") == 2)
        #expect(svg.contains(">two<") && svg.contains("class=\"legend\"") && svg.contains("4 experts"))
        #expect(svg.contains("stroke=\"#ff0000\"") && svg.contains("stroke-dasharray=\"6,4\""))
    }

    @Test("scatter: markers only, labelled reference lines")
    func scatter() throws {
        let dir = try run("""
            toymoe.plot.scatter{ file = "dims.svg", title = "D_i", y_label = "D_i", legend = false,
              reference_y = { { value = 1, label = "1" }, { value = 0.5, label = "1/2" } },
              series = { { x = {0.1, 0.2, 0.3}, y = {1, 0.5, 0.49} }, { x = {0.4}, y = {0.33}, marker = "square" } } }
            """)
        let svg = try read(dir, "dims.svg")
        expectSVG(svg, title: "D_i")
        #expect(count(svg, "class=\"series\"") == 0)
        #expect(count(svg, "class=\"point\"") == 4)
        #expect(count(svg, "class=\"reference\"") == 2 && svg.contains(">1/2<"))
        #expect(!svg.contains("class=\"legend\""))
    }

    @Test("phase: docs/PAPER.md#phase-colours colours per panel, axes from the swept values, network header and 2-D legend")
    func phase() throws {
        let dir = try run("""
            local N1 = {{0, 1, 1}, {0, 1, 1}}
            local S1 = {{0, 0, 1}, {0, 0, 1}}
            toymoe.plot.phase{ file = "phase.svg", title = "Fig. 4", row_values = {0.025, 0.05},
              column_values = {0.1, 0.15, 0.2}, row_label = "sparsity S", column_label = "r",
              header = { networks = {"2-1-2", {3, 1, 3}} },
              panels = { { title = "A.1/1", norms = N1, superposition = S1 },
                         { title = "A.1/2", norms = {{2, 2, 2}, {2, 2, 0/0}}, superposition = {{0, 0, 0}, {0, 0, 0}} } } }
            """)
        let svg = try read(dir, "phase.svg")
        expectSVG(svg, title: "Fig. 4")
        #expect(svg.contains("fill=\"#ffffff\""), "a zero norm is white (ignored)")
        #expect(svg.contains("fill=\"#0000ff\""), "a maximal norm without superposition is blue (monosemantic)")
        #expect(svg.contains("fill=\"#ff0000\""), "a maximal norm with maximal superposition is red")
        #expect(svg.contains("#cccccc"), "NaN is a missing cell")
        #expect(count(svg, "class=\"node\"") == 5 + 7)
        #expect(svg.contains("colour key (normalized per panel)") && svg.contains("sparsity S"))
        // Tick labels never round the value they name: S = 0.025 is not shown as 0.03.
        #expect(svg.contains(">0.025<") && !svg.contains(">0.03<"))
        #expect(svg.contains("A.1/1") && svg.contains("A.1/2"))
    }

    @Test("categories: 1-based class ids with names, 0 blank, lower origin by default")
    func categories() throws {
        let dir = try run("""
            toymoe.plot.categories{ file = "routing.svg", title = "Fig. 5", class_names = {"expert 1", "expert 2", "expert 3"},
              x_values = toymoe.linspace(0, 1, 3), y_values = toymoe.linspace(0, 1, 2), x_label = "x1", y_label = "x2",
              panels = { { title = "zero", classes = {{1, 1, 1}, {1, 1, 1}}, footnote = "Loss: 0.075" },
                         { title = "diagonal", classes = {{0, 1, 1}, {2, 2, 3}} } } }
            """)
        let svg = try read(dir, "routing.svg")
        expectSVG(svg, title: "Fig. 5")
        #expect(svg.contains("expert 1") && svg.contains("expert 3") && svg.contains("Loss: 0.075"))
        #expect(svg.contains("#1f77b4") && svg.contains("#ff7f0e") && svg.contains("#2ca02c"), "tab10 colours of classes 1–3")
        // Runs of equal colour are merged: panel 1 has 2 rows of 1 run; panel 2 has runs {1,1} and {2,2},{3}.
        #expect(count(svg, "class=\"cell\"") == 2 + 1 + 2)
    }

    @Test("box: one box per group, log axis")
    func box() throws {
        let dir = try run("""
            toymoe.plot.box{ file = "box.svg", title = "phase-change losses", y_log = true, y_label = "final loss",
              groups = { { label = "A/1", values = {0.01, 0.02, 0.04, 0.06} }, { label = "A/2", values = {0.009, 0.02, 0.08} },
                         { label = "B/1", values = {0.05} } } }
            """)
        let svg = try read(dir, "box.svg")
        expectSVG(svg, title: "phase-change losses")
        #expect(count(svg, "class=\"box\"") == 3 && count(svg, "class=\"median\"") == 3)
        #expect(svg.contains("A/2") && svg.contains("final loss"))
    }

    @Test("grouped_bars: one bar per series and group, NaN = no bar, error bars, dashed baseline")
    func groupedBars() throws {
        let dir = try run("""
            toymoe.plot.grouped_bars{ file = "table1.svg", title = "Table 1", groups = {0, 1, 2}, y_label = "usage",
              baseline = { value = 0.1, label = "1/E" },
              series = { { label = "Xavier", values = {0.1, 0.09, 0/0}, errors = {0.01, 0.02, 0/0} },
                         { label = "K-hot", values = {0.1, 0.3, 0.6} } } }
            """)
        let svg = try read(dir, "table1.svg")
        expectSVG(svg, title: "Table 1")
        #expect(count(svg, "class=\"bar\"") == 5)
        #expect(count(svg, "class=\"errorbar\"") == 2)
        #expect(count(svg, "class=\"reference\"") == 1 && svg.contains(">1/E<"))
        #expect(svg.contains("Xavier") && svg.contains("K-hot"))
    }

    @Test("vectors: one arrow per feature row, coloured by importance")
    func vectors() throws {
        let dir = try run("""
            toymoe.plot.vectors{ file = "tms.svg", title = "TMS intro", label_tips = true,
              panels = { { title = "S = 0", W = {{1, 0}, {0, 1}, {0, 0}}, importance = toymoe.geometric(0.7, 3) },
                         { title = "S = 0.9", W = {{1, 0}, {-0.5, 0.86}, {-0.5, -0.86}} } } }
            """)
        let svg = try read(dir, "tms.svg")
        expectSVG(svg, title: "TMS intro")
        #expect(count(svg, "class=\"vector\"") == 6 && count(svg, "class=\"tip\"") == 6)
        #expect(count(svg, "class=\"unit-circle\"") == 2)
        #expect(svg.contains("#440154") && svg.contains("#fde725"), "viridis by importance")
    }

    @Test("table_html: an HTML fragment with caption, header and formatted cells")
    func tableHTML() throws {
        let dir = try run("""
            toymoe.plot.table_html{ file = "tables/t1.html", caption = "Table 1 <usage>", decimals = 2,
              header = {"|M_e|", "Xavier", "K-hot"}, rows = { {0, 0.1, 0.1234}, {1, 0/0, true}, {"2+", "n/a", 1e-7} } }
            """)
        let html = try read(dir, "tables/t1.html")
        #expect(html.hasPrefix("<table>") && html.contains("<caption>Table 1 &lt;usage&gt;</caption>"))
        #expect(count(html, "</th>") == 3 && count(html, "<tr>") == 4)
        #expect(html.contains(">0.12<") && html.contains(">–<") && html.contains(">true<") && html.contains(">1e-7<"))
    }

    @Test("report: one self-contained index.html embedding the SVGs, tables and the summary")
    func report() throws {
        let dir = try run("""
            toymoe.plot.bars{ file = "figs/bars.svg", title = "Bars figure", values = {1, 0.5} }
            toymoe.plot.lines{ file = "figs/loss.svg", title = "Loss figure", series = { { x = {1, 2}, y = {3, 4} } } }
            toymoe.plot.report{ file = "report/index.html", title = "My run", introduction = "Toy models & MoE.",
              figures = { { heading = "Fig. 1", file = "figs/bars.svg", caption = "Norms.",
                            tables = { { header = {"a", "b"}, rows = {{1, 2}} } } },
                          { heading = "Fig. 7", file = "figs/loss.svg" },
                          { heading = "Notes", caption = "text only" } },
              tables = { { caption = "Extra table", header = {"k"}, rows = {{"v"}} } },
              summary = { fpd = 1.67, nested = { losses = {0.1, 0.2} } } }
            toymoe.plot.report{ title = "Flat", summary = { fpd = 1.5, name = "dense", ok = true } }
            toymoe.plot.report{ file = "empty.html", figures = {}, tables = {} }
            """)
        let html = try read(dir, "report/index.html")
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("<title>My run</title>"))
        #expect(count(html, "<svg") == 2, "both figures inline")
        #expect(html.contains("Bars figure") && html.contains("Loss figure"))
        #expect(html.contains("href=\"../figs/bars.svg\""), "links are relative to the index")
        #expect(html.contains("Toy models &amp; MoE.") && html.contains("<figcaption>Norms.</figcaption>"))
        // Tables: the figure's, the extra one, the summary's two (top level, `nested`) and the provenance.
        #expect(html.contains("text only") && html.contains("Extra table") && count(html, "<table>") == 5)
        #expect(!html.contains("<pre>") && html.contains("<tr><td>fpd</td><td class=\"num\">1.67</td></tr>"))
        #expect(html.contains("<h3>nested</h3>") && html.contains("<tr><td>losses</td><td>0.1, 0.2</td></tr>"))
        #expect(html.contains("<section id=\"provenance\">") && html.contains("<th>command</th><td><code>toymoe run "))
        #expect(!html.contains("<?xml"))
        let flat = try read(dir, "index.html")
        #expect(flat.contains("<title>Flat</title>") && !flat.contains("<pre>"))
        #expect(flat.contains("<td>fpd</td>") && flat.contains("<td>dense</td>") && flat.contains("<td>true</td>"))
        #expect(try read(dir, "empty.html").contains("<h1>ToyMoE report</h1>"))
    }

    @Test("Bad options: unknown keys with suggestions, ragged matrices, wrong types, lengths, non-finite values, limits")
    func badOptions() {
        let cases: [(String, [String])] = [
            ("toymoe.plot.bars{ file = 'a.svg', valeus = {1, 2} }",
             ["toymoe.plot.bars", "valeus", "did you mean 'values'"]),
            ("toymoe.plot.bars{ file = 'a.svg', panels = { { values = {1}, colour_values = {1} } } }",
             ["toymoe.plot.bars", "panels[1].colour_values", "did you mean 'color_values'"]),
            ("toymoe.plot.heatmap{ file = 'a.svg', panels = { { matrix = {{1, 2}} }, { matrix = {{1, 2}, {3}} } } }",
             ["toymoe.plot.heatmap", "panels[2].matrix", "ragged matrix: row 2 has 1 entries, row 1 has 2"]),
            ("toymoe.plot.lines{ file = 'a.svg', series = { { x = 'abc', y = {1} } } }",
             ["toymoe.plot.lines", "series[1].x", "expected a list of numbers, got string"]),
            ("toymoe.plot.lines{ file = 'a.svg', series = { { x = {1, 2}, y = {1} } } }",
             ["toymoe.plot.lines", "series[1].y", "expected 2 entries (as many as x), got 1"]),
            ("toymoe.plot.lines{ file = 'a.svg', y_log = true, series = { { x = {1, 2}, y = {1, 0} } } }",
             ["toymoe.plot.lines", "series[1].y[2]", "positive", "y_log"]),
            ("toymoe.plot.bars{ file = 'a.svg', values = {1, 1/0} }",
             ["toymoe.plot.bars", "values[2]", "expected a finite number, got inf"]),
            ("toymoe.plot.bars{ file = 'a.svg', values = {1, 0/0} }",
             ["toymoe.plot.bars", "values[2]", "finite"]),
            ("toymoe.plot.bars{ file = 'a.svg', values = {1, 2}, color_values = {1} }",
             ["toymoe.plot.bars", "color_values", "expected 2 entries (as many as values), got 1"]),
            ("toymoe.plot.bars{ values = {1} }", ["toymoe.plot.bars", "file: required option is missing"]),
            ("toymoe.plot.bars{ file = '../a.svg', values = {1} }", ["toymoe.plot.bars", "file '../a.svg'", "relative path"]),
            ("toymoe.plot.bars('a.svg')", ["toymoe.plot.bars", "argument 'options'", "expected a table"]),
            ("toymoe.plot.bars{ file = 'a.svg', marker = 'x', values = {1} }", ["toymoe.plot.bars", "marker: expected a finite number, got string"]),
            ("toymoe.plot.bars{ file = 'a.svg', values = {1}, panels = { { values = {1} } } }", ["toymoe.plot.bars", "values: give either panels"]),
            ("local p = {} for i = 1, 65 do p[i] = { values = {1} } end toymoe.plot.bars{ file = 'a.svg', panels = p }",
             ["toymoe.plot.bars", "panels: too many entries (65); at most 64"]),
            ("toymoe.plot.heatmap{ file = 'a.svg', matrix = {1, 2} }", ["toymoe.plot.heatmap", "matrix[1]: expected a row"]),
            ("toymoe.plot.heatmap{ file = 'a.svg', matrix = {{1}}, range = {1, -1} }", ["toymoe.plot.heatmap", "range: expected {low, high}"]),
            ("toymoe.plot.phase{ file = 'a.svg', norms = {{1, 2}}, superposition = {{1}} }",
             ["toymoe.plot.phase", "superposition: expected the shape of norms (1×2), got 1×1"]),
            ("toymoe.plot.phase{ file = 'a.svg', norms = {{1}}, superposition = {{1}}, row_values = {1, 2} }",
             ["toymoe.plot.phase", "row_values: expected one value per row"]),
            ("toymoe.plot.phase{ file = 'a.svg', norms = {{1}}, superposition = {{1}}, header = { networks = {'2-x-2'} } }",
             ["toymoe.plot.phase", "header.networks[1]", "layer sizes"]),
            ("toymoe.plot.categories{ file = 'a.svg', class_names = {'a', 'b'}, classes = {{1, 3}} }",
             ["toymoe.plot.categories", "classes[1][2]", "class id in 1...2"]),
            ("toymoe.plot.categories{ file = 'a.svg', classes = {{1, 1.5}} }", ["toymoe.plot.categories", "classes[1][2]"]),
            ("toymoe.plot.box{ file = 'a.svg', groups = { { label = 'A', values = {} } } }",
             ["toymoe.plot.box", "groups[1].values: expected at least one entry"]),
            ("toymoe.plot.grouped_bars{ file = 'a.svg', groups = {'a', 'b'}, series = { { values = {1, 2, 3} } } }",
             ["toymoe.plot.grouped_bars", "series[1].values", "expected 2 entries (as many as groups), got 3"]),
            ("toymoe.plot.grouped_bars{ file = 'a.svg', groups = {'a'}, series = { { values = {1} } }, baseline = 'x' }",
             ["toymoe.plot.grouped_bars", "baseline: expected a number"]),
            ("toymoe.plot.vectors{ file = 'a.svg', W = {{1, 0, 0}} }", ["toymoe.plot.vectors", "W: expected an n×2 matrix"]),
            ("toymoe.plot.lines{ file = 'a.svg', series = { { x = {1}, y = {1}, color = 'red' } } }",
             ["toymoe.plot.lines", "series[1].color", "#rrggbb"]),
            ("toymoe.plot.lines{ file = 'a.svg', legend = 'left', series = { { x = {1}, y = {1} } } }",
             ["toymoe.plot.lines", "legend: expected true, false or one of"]),
            ("toymoe.plot.scatter{ file = 'a.svg', series = { { x = {1}, y = {1}, dashed = true } } }",
             ["toymoe.plot.scatter", "series[1].dashed", "unknown option"]),
            ("toymoe.plot.table_html{ file = 't.html', header = {'a', 'b'}, rows = { {1, 2}, {3} } }",
             ["toymoe.plot.table_html", "rows[2]: expected 2 cells"]),
            ("toymoe.plot.report{ figures = { { heading = 'x', file = 'missing.svg' } } }",
             ["toymoe.plot.report", "figures[1].file", "missing.svg", "does not exist"]),
            ("toymoe.plot.report{ figures = { { heading = 'x', file = '/etc/passwd' } } }",
             ["toymoe.plot.report", "figures[1].file '/etc/passwd'"]),
            ("toymoe.plot.report{ figures = { { heading = 'x', fiel = 'a.svg' } } }",
             ["toymoe.plot.report", "figures[1].fiel", "did you mean 'file'"]),
            ("toymoe.plot.report{ summary = 3 }", ["toymoe.plot.report", "summary: expected a table or a string, got 3"]),
        ]
        for (source, needles) in cases {
            let e = failure(source)
            #expect(e.hasPrefix("test.lua:1:"), "no file:line in: \(e)")
            for needle in needles {
                #expect(e.contains(needle), "for `\(source)`: expected '\(needle)' in: \(e)")
            }
        }
    }
}
