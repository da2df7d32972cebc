// Test helpers: an XML inspector for SVG output and deterministic sample data.

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import ToyMoEPlot

/// Parses SVG (or XHTML-compatible HTML) with Foundation's XML parser and answers structural questions.
struct XMLInspector {
    let document: XMLDocument
    let root: XMLElement

    init(_ text: String) throws {
        document = try XMLDocument(xmlString: text, options: [])
        guard let root = document.rootElement() else { throw InspectorError.noRoot }
        self.root = root
    }

    enum InspectorError: Error { case noRoot }

    /// All elements named `name` (any namespace) below and including the root, in document order, optionally
    /// restricted to those whose class list contains `cls`.
    func elements(_ name: String? = nil, class cls: String? = nil, in start: XMLElement? = nil) -> [XMLElement] {
        var found: [XMLElement] = []
        func visit(_ element: XMLElement) {
            let local = element.localName ?? element.name ?? ""
            let classes = (XMLInspector.attribute(element, "class") ?? "").split(separator: " ").map(String.init)
            if (name == nil || local == name) && (cls == nil || classes.contains(cls!)) { found.append(element) }
            for child in element.children ?? [] {
                if let e = child as? XMLElement { visit(e) }
            }
        }
        visit(start ?? root)
        return found
    }

    /// Text content of every `<text>` element.
    var texts: [String] { elements("text").map { $0.stringValue ?? "" } }

    /// An attribute's value. (`XMLElement.attribute(forName:)` returns nil on Linux for elements in a
    /// default namespace, so the attribute list is searched instead.)
    static func attribute(_ element: XMLElement, _ name: String) -> String? {
        element.attributes?.first { $0.name == name || $0.localName == name }?.stringValue
    }

    func number(_ element: XMLElement, _ attribute: String) -> Double {
        Double(XMLInspector.attribute(element, attribute) ?? "") ?? .nan
    }

    func string(_ element: XMLElement, _ attribute: String) -> String? {
        XMLInspector.attribute(element, attribute)
    }

    /// The single element of a class (fails the test if there is not exactly one).
    func only(_ name: String, class cls: String, sourceLocation: SourceLocation = #_sourceLocation) -> XMLElement? {
        let found = elements(name, class: cls)
        #expect(found.count == 1, "expected exactly one <\(name) class=\"\(cls)\">, found \(found.count)",
                sourceLocation: sourceLocation)
        return found.first
    }

    /// Rectangle of an element with x / y / width / height attributes.
    func rect(_ element: XMLElement) -> Rect {
        Rect(x: number(element, "x"), y: number(element, "y"), width: number(element, "width"),
             height: number(element, "height"))
    }
}

/// Checks shared by every standalone SVG document.
func expectStandaloneSVG(_ svg: String, title: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> XMLInspector {
    let doc = try XMLInspector(svg)
    #expect(doc.root.localName == "svg", sourceLocation: sourceLocation)
    #expect(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""), sourceLocation: sourceLocation)
    let width = doc.number(doc.root, "width"), height = doc.number(doc.root, "height")
    #expect(width > 0 && height > 0, sourceLocation: sourceLocation)
    #expect(doc.string(doc.root, "viewBox") == "0 0 \(SVGFormat.number(width)) \(SVGFormat.number(height))",
            sourceLocation: sourceLocation)
    let titles = (doc.root.children ?? []).compactMap { $0 as? XMLElement }.filter { $0.localName == "title" }
    #expect(titles.count == 1, "a top-level <title>", sourceLocation: sourceLocation)
    if let title { #expect(titles.first?.stringValue == title, sourceLocation: sourceLocation) }
    #expect(doc.elements("style").count == 1, sourceLocation: sourceLocation)
    #expect(!svg.contains("\"nan") && !svg.contains("\"inf") && !svg.contains("\"-inf"), "no non-finite numbers",
            sourceLocation: sourceLocation)
    return doc
}

/// A small deterministic generator (64-bit LCG) for sample data.
struct SampleRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }
}

/// Sample figures shaped like the paper's, shared by the structure tests and the gallery.
enum Samples {
    static let n = 20

    static var norms: [Double] {
        let represented: Set<Int> = [0, 1, 3, 5, 6, 7, 8, 9, 10, 12]
        return (0..<n).map { (i: Int) -> Double in
            represented.contains(i) ? 1.0 - 0.01 * Double(i) : 0.02 * Double(i % 3)
        }
    }

    static var interference: [Double] {
        let superposed: Set<Int> = [3, 5, 6, 7, 8, 9, 10, 12]
        return (0..<n).map { (i: Int) -> Double in
            i < 2 ? 0.01 : (superposed.contains(i) ? 0.97 : 0.05)
        }
    }

    static func bars(expert: Int = 0) -> BarChart {
        BarChart(title: "expert \(expert)", values: norms.map { $0 * (1 - 0.1 * Double(expert)) },
                 colorValues: interference, markerX: 5.5)
    }

    /// A Gram-like matrix with antipodal pairs.
    static var gram: [[Double]] {
        let pairs: [(Int, Int)] = [(3, 5), (6, 12), (7, 8), (9, 10)]
        return (0..<n).map { i in
            (0..<n).map { j in
                if i == j { return norms[i] * norms[i] }
                if pairs.contains(where: { ($0.0 == i && $0.1 == j) || ($0.1 == i && $0.0 == j) }) { return -0.95 }
                return 0
            }
        }
    }

    static let densities: [Double] = (0..<30).map { (j: Int) -> Double in
        let p = 1 - Double(j) * 0.9 / 29
        return (p * 100).rounded() / 100
    }

    static var fpd: XYPlot {
        let x = densities.map { 1 / $0 }
        let names = ["Dense", "4 experts", "10 experts", "20 experts"]
        let finals = [4.57, 2.89, 2.45, 1.88]
        let series = names.indices.map { s in
            let slope: Double = finals[s] - 1
            let y: [Double] = x.map { (v: Double) -> Double in 1 + slope * log10(v) }
            let e: [Double] = x.map { (v: Double) -> Double in 0.005 * v + 0.02 * Double(s) }
            return XYSeries.line(names[s], x: x, y: y, yError: e)
        }
        return XYPlot(title: "features per dimension", series: series,
                      xAxis: .log("1/p (inverse density)"), yAxis: .linear("features per dimension", includeZero: true),
                      referenceLines: [.horizontal(1, label: "y = 1")])
    }

    static let sparsities: [Double] = (1...39).map { Double($0) * 0.025 }
    static let ratios: [Double] = (0..<58).map { 0.1 + Double($0) * 0.05 }

    static func phase(seed: UInt64) -> ImageMap {
        var random = SampleRandom(seed: seed)
        let norms = sparsities.map { s in ratios.map { r in r > 0.5 + s ? 1.0 : 0.1 * random.next() } }
        let supers = sparsities.map { s in ratios.map { r in r < 1.1 + s * 1.5 ? 1.5 + random.next() : 1.0 } }
        return ImageMap(title: "A.1/1", colors: PhaseColorMap.image(norms: norms, superpositions: supers),
                        xAxis: .values(ratios, decimals: 2, every: 7, label: "r (importance of last feature)"),
                        yAxis: .values(sparsities, decimals: 2, every: 6, label: "sparsity S"))
    }

    static var routing: CategoryMap {
        let size = 100
        let classes = (0..<size).map { row -> [Int] in
            let x2 = 1 - (Double(row) + 0.5) / Double(size)
            return (0..<size).map { column in
                let x1 = (Double(column) + 0.5) / Double(size)
                let angle = atan2(x2, x1)
                return angle < 0.5 ? 0 : angle < 1.1 ? 2 : 1
            }
        }
        return CategoryMap(title: "Xavier gate", classes: classes, classNames: ["expert 0", "expert 1", "expert 2"],
                           xAxis: .continuous(0...1, label: "x₁"), yAxis: .continuous(0...1, label: "x₂", descending: true),
                           footnote: "Loss: 0.028")
    }

    static var boxes: BoxPlot {
        let labels = ["A/1", "A/2", "B/1", "B/2", "B/3", "C/1", "C/2", "C/3"]
        var random = SampleRandom(seed: 7)
        let groups = labels.enumerated().map { i, label in
            BoxGroup(label, values: (0..<300).map { _ in
                let u = random.next()
                return 0.008 + 0.06 * pow(u, 2) / Double(1 + i % 3) + (u > 0.98 ? 0.05 : 0)
            })
        }
        return BoxPlot(title: "phase-change losses", groups: groups, yAxis: .log("final loss"), xLabel: "architecture n-m / E",
                       showMean: true)
    }

    static var usage: GroupedBarChart {
        GroupedBarChart(title: "usage when monosemantic features are on", groups: ["0", "1", "2", "3", "4"],
                        series: [BarSeries("Xavier", values: [0.1, 0.09, 0.08, .nan, .nan], errors: [0.02, 0.03, 0.04, .nan, .nan]),
                                 BarSeries("K-hot", values: [0.1, 0.2, 0.35, 0.5, 0.7], errors: [0.01, 0.05, 0.06, 0.08, 0.1])],
                        xLabel: "|M_e| (monosemantic features)", yAxis: .linear("mean usage"),
                        referenceLines: [.horizontal(0.1, label: "1/E")], legend: .topLeft)
    }

    static func vectors(count: Int = 5, angleOffset: Double = 0) -> VectorDiagram {
        let rows = (0..<count).map { i -> [Double] in
            let a = angleOffset + 2 * Double.pi * Double(i) / Double(count)
            return [cos(a) * (1 - 0.05 * Double(i)), sin(a) * (1 - 0.05 * Double(i))]
        }
        return VectorDiagram(title: "1 − S = 0.05", rows: rows, importance: (0..<count).map { pow(0.9, Double($0)) },
                             labelTips: true)
    }

    static var dimensionality: XYPlot {
        var random = SampleRandom(seed: 3)
        let fractions = [1.0, 0.75, 2.0 / 3, 0.5, 0.4, 0.375, 0]
        var x: [Double] = [], y: [Double] = []
        for level in 0..<20 {
            let inverse = pow(20, Double(level) / 19)
            for _ in 0..<40 {
                x.append(inverse)
                y.append(max(0, fractions[Int(random.next() * Double(fractions.count))] + 0.01 * (random.next() - 0.5)))
            }
        }
        let lines = [(1.0, "1"), (0.75, "3/4"), (2.0 / 3, "2/3"), (0.5, "1/2"), (0.4, "2/5"), (0.375, "3/8")]
        return XYPlot(title: "per-feature dimensionality", series: [.scatter("D_i", x: x, y: y)],
                      xAxis: .log("1/(1−S)"), yAxis: .linear("dimensionality Dᵢ", domain: 0...1.1),
                      referenceLines: lines.map { .horizontal($0.0, label: $0.1, color: RGB(bytes: 0x88, 0x88, 0x88), dash: "3,3") },
                      legend: .hidden)
    }
}
