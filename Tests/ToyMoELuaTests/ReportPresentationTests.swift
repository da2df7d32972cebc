import Foundation
import Testing
import ToyMoEIO
import ToyMoEPlot
@testable import ToyMoELua

/// What a person reads in the bundled reports: indices in the base of the plot beside them (0-based outside Lua),
/// readable verdict lines, reports with tables, provenance and PNG/PDF copies of their figures.
@Suite struct ReportPresentationTests {
    /// The text of every `<tr>` of the table whose `<caption>` starts with `caption`, as rows of cell texts.
    static func tableRows(_ html: String, caption: String) -> [[String]] {
        guard let start = html.range(of: "<caption>" + caption),
              let end = html.range(of: "</table>", range: start.upperBound..<html.endIndex) else { return [] }
        let body = html[start.upperBound..<end.lowerBound]
        return body.components(separatedBy: "<tr>").dropFirst().compactMap { row -> [String]? in
            let cells = row.components(separatedBy: "<td").dropFirst().map { cell -> String in
                let open = cell.firstIndex(of: ">").map { cell.index(after: $0) } ?? cell.startIndex
                let text = cell[open...].components(separatedBy: "</td>").first ?? ""
                return String(text)
            }
            return cells.isEmpty ? nil : cells
        }
    }

    /// Integers in a cell such as "0, 1, 5, 8" or "(0, 3), (1, 2)" ("none": empty).
    static func integers(_ text: String) -> [Int] {
        text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    }

    /// The texts of every `<text class="CLASS" ...>` element of an SVG.
    static func texts(_ svg: String, class cls: String) -> [String] {
        svg.components(separatedBy: "class=\"\(cls)\"").dropFirst().compactMap { rest -> String? in
            guard let open = rest.firstIndex(of: ">") else { return nil }
            let text: String = rest[rest.index(after: open)...].components(separatedBy: "<").first ?? ""
            return text
        }
    }

    @Test("fig2 report: the per-expert feature lists are 0-based like the bars, match model.npz, and name the panels' experts")
    func figure2IndicesMatchPlot() throws {
        let r = try PaperScriptsTests.runPaper("fig2_moe.lua", params: [("steps", "2500"), ("seeds", "1")])
        let html = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        let svg = try PaperScriptsTests.svg(r.directory, "fig2a_norms.svg")
        let rows = Self.tableRows(html, caption: "Features per expert")
        try #require(rows.count == 3, "the report's per-expert table: \(rows)")

        // Panel titles of the bar chart name the same experts as the table's first column: 0, 1, 2.
        let titles = Self.texts(svg, class: "title").filter { $0.hasPrefix("expert ") }
        #expect(titles == ["expert 0", "expert 1", "expert 2"], "bar panels: \(titles)")
        #expect(rows.map { $0[0] } == ["0", "1", "2"])
        // The bars' x tick labels are 0 … 19 in each panel.
        let ticks = Self.texts(svg, class: "tick-label").compactMap { Int($0) }
        #expect(ticks.contains(0) && !ticks.contains(20), "bar ticks 0-based: \(ticks.sorted().suffix(3))")

        // The listed features are exactly those whose norm ‖W[e, i]‖ (numpy indexing of model.npz) exceeds 0.5.
        let W = try Npz.read(contentsOf: r.directory.appendingPathComponent("model.npz")).array(named: "W")
        let values = try W.asFloat64()
        let (n, m) = (W.shape[1], W.shape[2])
        for (e, row) in rows.enumerated() {
            var represented: [Int] = []
            for i in 0..<n {
                var squares = 0.0
                for j in 0..<m { squares += values[(e * n + i) * m + j] * values[(e * n + i) * m + j] }
                if squares.squareRoot() > 0.5 { represented.append(i) }
            }
            #expect(Self.integers(row[1]) == represented, "expert \(e): report \(row[1]), model.npz \(represented)")
            #expect(Self.integers(row[2]).allSatisfy(represented.contains))
            #expect(Self.integers(row[3]).allSatisfy(represented.contains))
        }
        // summary.json agrees (0-based too), and the summary is shown as tables, not a JSON dump.
        let summary = try JSONValue(contentsOf: r.directory.appendingPathComponent("summary.json"))
        for (e, row) in rows.enumerated() {
            let listed = summary["experts"]?[e]?["represented"]?.arrayValue?.compactMap(\.intValue) ?? [-1]
            #expect(listed == Self.integers(row[1]))
        }
        #expect(!html.contains("<pre>") && html.contains(">#</th>"))
        // The verdict says what was compared and the paper's number, never a bare true/false.
        let verdict = try #require(r.stdout.split(separator: "\n").last.map(String.init))
        #expect(verdict.hasPrefix("Fig. 2 verdict: ") && verdict.contains("paper about 8") && verdict.contains("antipodal"))
        #expect(r.stdout.contains("replicate 0:") && !r.stdout.contains("seed 1:"))
    }

    @Test("fig5 report: expert ids in the legend, the table and the console are 0-based; the verdict is a sentence")
    func figure5IndicesMatchPlot() throws {
        let r = try PaperScriptsTests.runPaper("fig5_routing.lua", params: [("steps", "1500")])
        let svg = try PaperScriptsTests.svg(r.directory, "fig5_routing.svg")
        let legend = Self.texts(svg, class: "legend-label")
        #expect(Array(legend.prefix(3)) == ["expert 0", "expert 1", "expert 2"], "legend: \(legend)")
        let html = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        let rows = Self.tableRows(html, caption: "Per model")
        try #require(rows.count == 3)
        for row in rows {
            let used = Self.integers(row[6])
            #expect(!used.isEmpty && used.allSatisfy { (0...2).contains($0) }, "experts used: \(row[6])")
        }
        #expect(rows.contains { Self.integers($0[6]).contains(0) }, "the zero router's single expert is expert 0")
        let verdict = try #require(r.stdout.split(separator: "\n").last.map(String.init))
        #expect(verdict.hasPrefix("Fig. 5 verdict: ") && verdict.contains("cones") && !verdict.hasSuffix("true"))
    }

    @Test("every bundled paper and TMS script ends with a verdict sentence: what was compared, the numbers, and why a miss may be the scale",
          arguments: [
              ("paper/fig1_dense.lua", [("steps", "300"), ("seeds", "1")], "Fig. 1 verdict: "),
              ("paper/fig3_features_per_dim.lua", [("densities", "1"), ("seeds", "1"), ("steps", "100"), ("batch", "64"),
                                                   ("eval_samples", "256"), ("fpd_samples", "256")], "Fig. 3/7 verdict: "),
              ("paper/fig6_init.lua", [("steps", "300"), ("models", "a")], "Fig. 6 verdict: "),
              ("paper/table1_specialization.lua", [("models", "2"), ("steps", "100"), ("batch", "64"), ("usage_batch", "512")],
               "Table 1 verdict ("),
              ("tms/intro.lua", [("steps", "300")], "TMS intro verdict: "),
              ("tms/fpd_sparsity.lua", [("levels", "3"), ("steps", "200")], "TMS FPD verdict: "),
              ("tms/phase_2x1.lua", [("grid", "3"), ("models", "1"), ("steps", "200"), ("batch", "128")], "TMS 2x1 phase verdict: "),
          ])
    func verdictSentences(script: String, params: [(String, String)], prefix: String) throws {
        let r = try ScriptTestResult.runFile(PaperScriptsTests.root.appendingPathComponent("scripts/" + script),
                                             params: params, jobs: 2)
        let verdict = try #require(r.stdout.split(separator: "\n").last.map(String.init))
        #expect(verdict.hasPrefix(prefix), "\(script): \(verdict)")
        #expect(!verdict.hasSuffix("true") && !verdict.hasSuffix("false") && !verdict.contains(" false,"), "\(verdict)")
        #expect(verdict.contains("ompared") || verdict.contains(" vs "), "says what was compared: \(verdict)")
        // Far below the published scale a miss must come with the reason (the reduced scale) and what to do.
        if verdict.contains("differs") || verdict.contains("NOT reproduced") {
            #expect(verdict.contains("scale") || verdict.contains("steps"), "a miss names the scale: \(verdict)")
        }
    }

    @Test("categories without class_names: Lua's class ids 1, 2 are drawn as class 0, class 1 (the plot is 0-based)")
    func defaultClassNames() throws {
        let r = try ScriptTestResult.run("toymoe.plot.categories{ file = 'c.svg', classes = {{1, 2}, {2, 0}} }")
        let svg = try String(contentsOf: r.directory.appendingPathComponent("c.svg"), encoding: .utf8)
        #expect(Self.texts(svg, class: "legend-label") == ["class 0", "class 1"])
    }

    @Test("toymoe.plot.export writes a valid PNG (2 px per SVG unit) and PDF; a report links them and shows provenance")
    func exportAndProvenance() throws {
        let converter = FigureExport.converter()
        try #require(converter.url != nil, "this test needs rsvg-convert (apt-get install librsvg2-bin, or .ci/install): \(converter.reason)")
        let r = try ScriptTestResult.run("""
            toymoe.plot.bars{ file = "a.svg", values = {1, 0.5, -0.25}, marker = 0.5, marker_label = "m − 0.5" }
            local files = toymoe.plot.export{ file = "a.svg" }
            toymoe.plot.lines{ file = "figs/b.svg", series = { { label = "s", x = {1, 2}, y = {1, 2} } } }
            toymoe.plot.report{ figures = { { heading = "A", file = "a.svg" }, { heading = "B", file = "figs/b.svg" } },
                                summary = { nested = { x = 1, list = { { e = 1 }, { e = 2 } } }, ok = true } }
            return { files = files }
            """, seed: 7)
        #expect(r.result["files"]?.arrayValue?.compactMap(\.stringValue) == ["a.png", "a.pdf"])
        let svg = try String(contentsOf: r.directory.appendingPathComponent("a.svg"), encoding: .utf8)
        let width = try #require(Self.attribute(svg, "width")), height = try #require(Self.attribute(svg, "height"))
        let png = try Data(contentsOf: r.directory.appendingPathComponent("a.png"))
        let size = try #require(FigureExport.pngSize(png), "a.png is not a PNG")
        #expect(size.width == Int((2 * width).rounded()) && size.height == Int((2 * height).rounded()))
        let pdf = try Data(contentsOf: r.directory.appendingPathComponent("a.pdf"))
        #expect(pdf.starts(with: Array("%PDF-".utf8)) && pdf.count > 500)
        // A second export of the same SVG, a second later (the PDF date's resolution), gives the same bytes: the
        // PDF's creation date is fixed.
        Thread.sleep(forTimeInterval: 1.1)
        let again = try FigureExport.export(svg: r.directory.appendingPathComponent("a.svg"), formats: [.png, .pdf],
                                            converter: try #require(converter.url))
        #expect(try Data(contentsOf: again[0]) == png && Data(contentsOf: again[1]) == pdf, "export is reproducible")
        for name in ["figs/b.png", "figs/b.pdf"] {
            #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent(name).path), "\(name) missing")
        }
        let html = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(html.contains("<a href=\"a.png\">a.png</a>") && html.contains("<a href=\"figs/b.pdf\">figs/b.pdf</a>"))
        #expect(html.contains("max-width:100%") && !html.contains("export skipped"))
        // Provenance on the page; the nested summary as tables (a list of tables: a 0-based # column).
        #expect(html.contains("<section id=\"provenance\">") && html.contains("<th>seed</th><td><code>7</code>"))
        #expect(html.contains("toymoe \(ToyMoEVersion.string)") && html.contains("<th>kernels</th>"))
        let commit = Provenance.gitCommit(at: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            ?? Provenance.gitCommit(at: r.directory)
        #expect(html.contains("<th>git commit</th><td><code>\(commit ?? "unknown")"), "the commit of this checkout")
        #expect(!html.contains("<pre>") && html.contains("nested › list"))
        #expect(html.contains("<tr><td class=\"num\">0</td><td class=\"num\">1</td></tr>"))
    }

    static func attribute(_ svg: String, _ name: String) -> Double? {
        guard let root = svg.range(of: "<svg"), let value = svg.range(of: " \(name)=\"", range: root.upperBound..<svg.endIndex) else { return nil }
        return Double(svg[value.upperBound...].prefix { $0 != "\"" })
    }

    @Test("without rsvg-convert (PATH pointing away) a run still succeeds; the report and stderr (once) say export was skipped")
    func exportMissingConverter() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-export")
        try """
            toymoe.plot.bars{ file = "a.svg", values = {1, 2} }
            toymoe.plot.bars{ file = "b.svg", values = {3, 4} }
            local files, reason = toymoe.plot.export{ file = "a.svg" }
            assert(#files == 0 and reason:find("rsvg%-convert is not installed"), tostring(reason))
            toymoe.plot.report{ figures = { { heading = "A", file = "a.svg" }, { heading = "B", file = "b.svg" } } }
            toymoe.plot.report{ file = "again.html", figures = { { heading = "A", file = "a.svg" } } }
            """.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let out = try CLITests.toymoe(["run", "s.lua", "--out", "o", "--quiet"],
                                      environment: ["PATH": "/nonexistent-toymoe-test", "TOYMOE_SVG_CONVERTER": ""], in: dir)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(out.stderr.components(separatedBy: "PNG/PDF export skipped").count - 1 == 1, "stderr: \(out.stderr)")
        let html = try String(contentsOf: dir.appendingPathComponent("o/index.html"), encoding: .utf8)
        #expect(html.contains("<p class=\"note\">PNG/PDF export skipped: rsvg-convert is not installed"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o/a.png").path))
        // The override disables export the same way; a bad override names itself.
        #expect(FigureExport.converter(environment: ["TOYMOE_SVG_CONVERTER": "none", "PATH": "/usr/bin"]).url == nil)
        let bad = FigureExport.converter(environment: ["TOYMOE_SVG_CONVERTER": "/nonexistent/rsvg"])
        #expect(bad.url == nil && bad.reason.contains("TOYMOE_SVG_CONVERTER=/nonexistent/rsvg is not an executable file"))
    }

    @Test("a sweep's report, its PNG and its PDF are byte-identical with --jobs 1 and --jobs 2 (no run-specific provenance on the page)")
    func reportDeterministic() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-export")
        try """
            toymoe.sweep{ cells = { { a = 1 }, { a = 2 } },
              run = function(cell) return { v = cell.a * 2 } end,
              finish = function(rows)
                local values = {}
                for i, row in ipairs(rows) do values[i] = row.replicates[1].v end
                toymoe.plot.bars{ file = "v.svg", values = values }
                toymoe.plot.report{ figures = { { heading = "V", file = "v.svg" } }, summary = { rows = #rows } }
              end }
            """.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        for jobs in ["1", "2"] {
            let out = try CLITests.toymoe(["run", "s.lua", "k=3", "--out", "o\(jobs)", "--jobs", jobs, "--quiet"], in: dir)
            try #require(out.status == 0, "stderr: \(out.stderr)")
        }
        let exported = FigureExport.converter().url != nil
        for name in ["index.html", "v.svg"] + (exported ? ["v.png", "v.pdf"] : []) {
            let one = try Data(contentsOf: dir.appendingPathComponent("o1/\(name)"))
            let two = try Data(contentsOf: dir.appendingPathComponent("o2/\(name)"))
            #expect(one == two, "\(name) differs between --jobs 1 and --jobs 2")
        }
        let html = try String(contentsOf: dir.appendingPathComponent("o1/index.html"), encoding: .utf8)
        #expect(html.contains("<th>command</th><td><code>toymoe run s.lua k=3 --seed 0</code>"))
    }

    @Test("bad export options: a clear error with file:line naming the option, never a converter run on a wrong file")
    func exportBadOptions() throws {
        let cases: [(String, [String])] = [
            ("toymoe.plot.export{}", ["toymoe.plot.export", "file"]),
            ("toymoe.plot.export{ file = 'a.txt' }", ["toymoe.plot.export", "file: expected an SVG file name ending in .svg"]),
            ("toymoe.plot.export{ file = 'missing.svg' }", ["toymoe.plot.export", "'missing.svg' does not exist"]),
            ("toymoe.plot.export{ file = '../x.svg' }", ["toymoe.plot.export", "relative path inside the output directory"]),
            ("toymoe.plot.bars{ file = 'a.svg', values = {1} } toymoe.plot.export{ file = 'a.svg', formats = {'gif'} }",
             ["toymoe.plot.export", "formats[1]: expected \"png\" or \"pdf\", got string \"gif\""]),
            ("toymoe.plot.bars{ file = 'a.svg', values = {1} } toymoe.plot.export{ file = 'a.svg', formats = 'png' }",
             ["toymoe.plot.export", "formats: expected true, false or a list"]),
            ("toymoe.plot.bars{ file = 'a.svg', values = {1} } toymoe.plot.report{ export = 'yes', figures = { { heading = 'a', file = 'a.svg' } } }",
             ["toymoe.plot.report", "export: expected true, false or a list"]),
            ("toymoe.save_json('j.svg', { a = 1 }) toymoe.plot.export{ file = 'j.svg' }",
             ["toymoe.plot.export", "'j.svg' is not an SVG file"]),
        ]
        for (source, needles) in cases {
            var message = ""
            do { _ = try ScriptTestResult.run(source); Issue.record("expected an error for `\(source)`") } catch {
                message = "\(error)"
            }
            #expect(message.hasPrefix("test.lua:1:"), "no file:line in: \(message)")
            for needle in needles { #expect(message.contains(needle), "for `\(source)`: expected '\(needle)' in: \(message)") }
        }
    }

    @Test("a converter that exits 0 without writing a PNG is an error naming the file, never a silent bad file")
    func exportBrokenConverter() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-export")
        let fake = dir.appendingPathComponent("fake-rsvg")
        // Writes text where the PNG should be (the argument after --output).
        try "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --output ]; then echo not-a-png > \"$2\"; fi; shift; done\n"
            .write(to: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let svg = dir.appendingPathComponent("x.svg")
        try BarChart(values: [1, 2]).svg().write(to: svg, atomically: true, encoding: .utf8)
        #expect {
            try FigureExport.export(svg: svg, formats: [.png], converter: fake)
        } throws: { error in
            "\(error)".contains("cannot export x.png: fake-rsvg did not write a PNG file")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.png").path))
    }
}
