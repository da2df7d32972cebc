// HTML tables and the self-contained index page.

import Foundation
import Testing
@testable import ToyMoEPlot

@Suite("HTML")
struct HTMLTests {
    @Test("tables escape text and right-align numeric columns")
    func table() throws {
        let table = HTMLTable(caption: "Table 1 <usage>", header: ["|M_e|", "Xavier", "K-hot"],
                              rows: [["0", HTMLTable.cell(0.1, spread: 0.02), HTMLTable.cell(.nan)],
                                     ["a & b", "n/a", "0.5"]])
        let html = table.html()
        #expect(html.contains("<caption>Table 1 &lt;usage&gt;</caption>"))
        #expect(html.contains("<td>a &amp; b</td>"))
        #expect(html.contains("0.100 ± 0.020"))
        #expect(html.contains("<td class=\"num\">0.5</td>"))   // K-hot column: numbers and "–" only
        #expect(html.contains("<td>n/a</td>"))                 // Xavier column has text: left-aligned
        let doc = try XMLInspector(html)
        #expect(doc.elements("tr").count == 3)
        #expect(doc.elements("th").count == 3)
    }

    @Test("index embeds every SVG inline, strips prologs, and is well-formed")
    func index() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("toymoe-index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Samples.routing.write(to: directory.appendingPathComponent("fig5.svg"))
        let index = HTMLIndex(
            title: "ToyMoE figures & tables",
            introduction: "Regenerated <all> figures.",
            entries: [
                .init(heading: "Fig. 1", figure: .inline(Samples.bars().svg()), caption: "Norms coloured by superposition."),
                .init(heading: "Fig. 3", figure: .inline(Samples.fpd.svg())),
                .init(heading: "Fig. 5", figure: .file("fig5.svg"), caption: "Routing regions."),
                .init(heading: "Table 1", figure: nil, caption: "Usage.",
                      tables: [HTMLTable(header: ["a", "b"], rows: [["1", "2"]])]),
            ],
            summary: .json("{\n  \"fpd\": 4.57,\n  \"note\": \"<ok>\"\n}"))
        let url = directory.appendingPathComponent("index.html")
        try index.write(to: url)
        let html = try String(contentsOf: url, encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<html") && html.contains("</html>"))
        #expect(html.components(separatedBy: "<svg ").count - 1 == 3)
        #expect(html.components(separatedBy: "<?xml").count == 1)
        #expect(html.contains("<title>ToyMoE figures &amp; tables</title>"))
        #expect(html.contains("&quot;note&quot;: &quot;&lt;ok&gt;&quot;"))
        #expect(html.contains("href=\"fig5.svg\""))
        #expect(!html.contains("<script"))
        let doc = try XMLInspector(html)
        #expect(doc.elements("svg").count == 3)
        #expect(doc.elements("section").count == 5)
        #expect(doc.elements("figcaption").count == 2)
        #expect(doc.elements("table").count == 1)
        #expect(doc.elements("pre").count == 1)
        #expect(doc.elements("a").count == 6)  // 5 table-of-contents links + 1 file link
        // The figure's own elements survive inlining.
        #expect(doc.elements("rect", class: "bar").count == 20)
        #expect(doc.elements("polyline", class: "series").count == 4)

        let keyValues = HTMLIndex(title: "t", entries: [], summary: .keyValues([.init("loss", "0.028")]))
        let kv = try keyValues.html()
        #expect(kv.contains("<td>loss</td>") && kv.contains("0.028"))
        _ = try XMLInspector(kv)
    }

    @Test("a missing figure file is reported with its path")
    func missingFile() {
        let index = HTMLIndex(title: "t", entries: [.init(heading: "h", figure: .file("/no/such/figure.svg"))])
        #expect(throws: HTMLIndexError.self) { try index.html() }
        #expect(HTMLIndex.inlineable("<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<svg/>") == "<svg/>")
    }
}
