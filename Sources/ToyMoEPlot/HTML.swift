// HTML output: tables and a self-contained index page that inlines every figure.

import Foundation
import ToyMoEIO

/// HTML escaping (same rules as XML).
public func htmlEscape(_ text: String) -> String { SVGFormat.escape(text) }

/// A simple HTML table. Cells are plain text (escaped); columns whose body cells all parse as numbers are
/// right-aligned.
public struct HTMLTable: Sendable, Hashable {
    public var caption: String?
    public var header: [String]
    public var rows: [[String]]

    public init(caption: String? = nil, header: [String], rows: [[String]]) {
        self.caption = caption
        self.header = header
        self.rows = rows
    }

    /// A numeric cell: `value` with `decimals` decimals, or `mean ± spread` when `spread` is given
    /// (NaN prints as "–").
    public static func cell(_ value: Double, spread: Double? = nil, decimals: Int = 3) -> String {
        guard value.isFinite else { return "–" }
        let main = SVGFormat.compact(value, decimals: decimals)
        guard let spread, spread.isFinite else { return main }
        return main + " ± " + SVGFormat.compact(spread, decimals: decimals)
    }

    /// The `<table>` element.
    public func html() -> String {
        let columns = max(header.count, rows.map(\.count).max() ?? 0)
        let numeric: [Bool] = (0..<columns).map { c in
            let cells = rows.compactMap { c < $0.count ? $0[c] : nil }.filter { !$0.isEmpty && $0 != "–" }
            return !cells.isEmpty && cells.allSatisfy { cell in
                let head = cell.split(separator: " ").first.map(String.init) ?? cell
                return Double(head.replacingOccurrences(of: "%", with: "")) != nil
            }
        }
        func cellTag(_ tag: String, _ text: String, _ c: Int) -> String {
            let align = c < numeric.count && numeric[c] ? " class=\"num\"" : ""
            return "<\(tag)\(align)>\(htmlEscape(text))</\(tag)>"
        }
        var out = "<table>\n"
        if let caption { out += "<caption>\(htmlEscape(caption))</caption>\n" }
        if !header.isEmpty {
            out += "<thead><tr>" + header.enumerated().map { cellTag("th", $0.element, $0.offset) }.joined() + "</tr></thead>\n"
        }
        out += "<tbody>\n"
        for row in rows {
            out += "<tr>" + (0..<columns).map { c in cellTag("td", c < row.count ? row[c] : "", c) }.joined() + "</tr>\n"
        }
        out += "</tbody>\n</table>\n"
        return out
    }
}

/// Failure to build an HTML index.
public struct HTMLIndexError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "cannot embed figure \(path): \(reason)" }
}

/// One self-contained `index.html`: a title, an optional introduction, a table of contents, each figure
/// (SVG inlined, so the page needs no other file) with its heading, caption and tables, and a summary
/// (pre-formatted JSON or a key/value table). Plain CSS, no JavaScript.
public struct HTMLIndex: Sendable {
    /// Where a figure's SVG comes from.
    public enum FigureSource: Sendable, Hashable {
        /// SVG markup (a prolog `<?xml …?>` / doctype is stripped).
        case inline(String)
        /// An SVG file; relative paths are resolved against the index's directory. Its name is also linked.
        case file(String)
    }

    /// One section of the page.
    public struct Entry: Sendable, Hashable {
        public var heading: String
        public var figure: FigureSource?
        public var caption: String?
        public var tables: [HTMLTable]
        /// Other renderings of the figure (e.g. `fig1.png`, `fig1.pdf`), linked beside the SVG's name.
        public var exports: [String]
        public init(heading: String, figure: FigureSource?, caption: String? = nil, tables: [HTMLTable] = [],
                    exports: [String] = []) {
            self.heading = heading
            self.figure = figure
            self.caption = caption
            self.tables = tables
            self.exports = exports
        }
    }

    /// The closing summary.
    public enum Summary: Sendable, Hashable {
        /// Pre-formatted text (e.g. JSON), shown in a `<pre>` block.
        case json(String)
        /// Rows of a two-column table.
        case keyValues([KeyValue])
        /// A structured value shown as tables (see `HTMLIndex.summaryTables`): scalars as key/value rows,
        /// nested objects as sub-sections, lists of objects as one table with a 0-based `#` column.
        case tree(JSONValue)
    }

    /// A summary row.
    public struct KeyValue: Sendable, Hashable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    public var title: String
    public var introduction: String?
    public var entries: [Entry]
    public var summary: Summary?
    public var summaryHeading: String
    /// What produced the page (tool version, commit, seed, kernels, command), shown in its own section.
    public var provenance: [KeyValue]
    /// Short notes shown under the introduction (e.g. that PNG/PDF export was skipped and why).
    public var notes: [String]

    public init(title: String, introduction: String? = nil, entries: [Entry], summary: Summary? = nil,
                summaryHeading: String = "Summary", provenance: [KeyValue] = [], notes: [String] = []) {
        self.title = title
        self.introduction = introduction
        self.entries = entries
        self.summary = summary
        self.summaryHeading = summaryHeading
        self.provenance = provenance
        self.notes = notes
    }

    static let css = """
    body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222;line-height:1.4}
    h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}
    h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #eee}
    figure{margin:1em 0}
    figure svg{display:block;max-width:100%;height:auto;border:1px solid #eee}
    h3{font-size:1.05em;margin:1.2em 0 .2em}
    .note{background:#fff8e1;border:1px solid #f0d58c;padding:.4em .8em}
    #provenance td:first-child{white-space:nowrap}
    #provenance code{word-break:break-all}
    figcaption{color:#444;font-size:.95em;margin-top:.4em;max-width:60em}
    table{border-collapse:collapse;margin:1em 0;font-size:.9em}
    caption{caption-side:top;text-align:left;font-weight:bold;padding-bottom:.3em}
    th,td{border:1px solid #ccc;padding:.25em .6em}
    th{background:#f4f4f4}
    td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
    pre{background:#f7f7f7;border:1px solid #ddd;padding:1em;overflow-x:auto;font-size:.85em}
    nav ol{columns:2}
    .file{font-size:.85em;color:#666}
    """

    /// Removes an XML prolog and doctype so the markup can be inlined into HTML.
    public static func inlineable(_ svg: String) -> String {
        var text = Substring(svg)
        while true {
            let trimmed = text.drop { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" || $0 == "\u{FEFF}" }
            if trimmed.hasPrefix("<?"), let end = trimmed.range(of: "?>") {
                text = trimmed[end.upperBound...]
            } else if trimmed.hasPrefix("<!DOCTYPE") || trimmed.hasPrefix("<!doctype"), let end = trimmed.firstIndex(of: ">") {
                text = trimmed[trimmed.index(after: end)...]
            } else {
                text = trimmed
                break
            }
        }
        return String(text)
    }

    /// The page. File figures are read from `baseDirectory` (when relative).
    /// - Throws: `HTMLIndexError` if a file cannot be read or does not contain an `<svg` element.
    public func html(baseDirectory: URL? = nil) throws -> String {
        var out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
        out += "<title>\(htmlEscape(title))</title>\n<style>\n\(Self.css)\n</style>\n</head>\n<body>\n"
        out += "<h1>\(htmlEscape(title))</h1>\n"
        if let introduction { out += "<p>\(htmlEscape(introduction))</p>\n" }
        for note in notes { out += "<p class=\"note\">\(htmlEscape(note))</p>\n" }
        if entries.count > 1 || (!entries.isEmpty && summary != nil) {
            out += "<nav><ol>\n"
            for (i, entry) in entries.enumerated() {
                out += "<li><a href=\"#section-\(i + 1)\">\(htmlEscape(entry.heading))</a></li>\n"
            }
            if summary != nil { out += "<li><a href=\"#summary\">\(htmlEscape(summaryHeading))</a></li>\n" }
            if !provenance.isEmpty { out += "<li><a href=\"#provenance\">Provenance</a></li>\n" }
            out += "</ol></nav>\n"
        }
        for (i, entry) in entries.enumerated() {
            out += "<section id=\"section-\(i + 1)\">\n<h2>\(htmlEscape(entry.heading))</h2>\n"
            if let figure = entry.figure {
                out += "<figure>\n"
                switch figure {
                case .inline(let svg):
                    out += Self.inlineable(svg)
                case .file(let path):
                    let url = path.hasPrefix("/") || baseDirectory == nil
                        ? URL(fileURLWithPath: path) : baseDirectory!.appendingPathComponent(path)
                    let svg: String
                    do {
                        svg = try String(contentsOf: url, encoding: .utf8)
                    } catch {
                        throw HTMLIndexError(path: url.path, reason: "\(error)")
                    }
                    guard svg.contains("<svg") else { throw HTMLIndexError(path: url.path, reason: "no <svg> element") }
                    out += Self.inlineable(svg)
                    let links = ([path] + entry.exports).map { "<a href=\"\(htmlEscape($0))\">\(htmlEscape($0))</a>" }
                    out += "<div class=\"file\">\(links.count > 1 ? "files" : "file"): \(links.joined(separator: ", "))</div>\n"
                }
                if !out.hasSuffix("\n") { out += "\n" }
                if let caption = entry.caption { out += "<figcaption>\(htmlEscape(caption))</figcaption>\n" }
                out += "</figure>\n"
            } else if let caption = entry.caption {
                out += "<p>\(htmlEscape(caption))</p>\n"
            }
            for table in entry.tables { out += table.html() }
            out += "</section>\n"
        }
        if let summary {
            out += "<section id=\"summary\">\n<h2>\(htmlEscape(summaryHeading))</h2>\n"
            switch summary {
            case .json(let text):
                out += "<pre>\(htmlEscape(text))</pre>\n"
            case .keyValues(let rows):
                out += HTMLTable(header: ["key", "value"], rows: rows.map { [$0.key, $0.value] }).html()
            case .tree(let value):
                out += Self.summaryTables(value)
            }
            out += "</section>\n"
        }
        if !provenance.isEmpty {
            out += "<section id=\"provenance\">\n<h2>Provenance</h2>\n<table>\n<tbody>\n"
            for row in provenance {
                out += "<tr><th>\(htmlEscape(row.key))</th><td><code>\(htmlEscape(row.value))</code></td></tr>\n"
            }
            out += "</tbody>\n</table>\n</section>\n"
        }
        out += "</body>\n</html>\n"
        return out
    }

    /// A structured summary as HTML tables, for a person rather than a parser (summary.json keeps the raw
    /// values): the scalars of an object become one key/value table; each nested object becomes an `<h3>` (or
    /// deeper) sub-section; a list of scalars becomes one cell (`a, b, c`); a list of objects becomes one table
    /// whose first column `#` is the 0-based position (the index convention of every file ToyMoE writes);
    /// anything deeper than four levels is shown as compact JSON in its cell.
    public static func summaryTables(_ value: JSONValue) -> String {
        var out = ""
        render(value, path: [], depth: 0, into: &out)
        return out
    }

    private static func render(_ value: JSONValue, path: [String], depth: Int, into out: inout String) {
        let heading = path.joined(separator: " › ")
        let level = min(3 + max(0, depth - 1), 6)
        switch value {
        case .object(let object):
            var rows: [[String]] = []
            var nested: [(String, JSONValue)] = []
            for (key, v) in object.entries {
                if let text = inlineText(v, depth: depth) { rows.append([key, text]) } else { nested.append((key, v)) }
            }
            if !rows.isEmpty {
                if depth > 0 { out += "<h\(level)>\(htmlEscape(heading))</h\(level)>\n" }
                out += HTMLTable(header: ["key", "value"], rows: rows).html()
            }
            for (key, v) in nested { render(v, path: path + [key], depth: depth + 1, into: &out) }
        case .array(let items):
            // A list of objects: one row per item, one column per key (in first-seen order).
            var columns: [String] = []
            for item in items { for (key, _) in item.objectValue ?? [:] where !columns.contains(key) { columns.append(key) } }
            let rows = items.enumerated().map { i, item -> [String] in
                [String(i)] + columns.map { key in
                    guard let v = item.objectValue?[key] else { return "" }
                    return inlineText(v, depth: 99) ?? compactJSON(v)
                }
            }
            if depth > 0 { out += "<h\(level)>\(htmlEscape(heading))</h\(level)>\n" }
            out += HTMLTable(header: ["#"] + columns, rows: rows).html()
        default:
            if depth > 0 { out += "<h\(level)>\(htmlEscape(heading))</h\(level)>\n" }
            out += "<p>\(htmlEscape(inlineText(value, depth: 99) ?? ""))</p>\n"
        }
    }

    /// One cell's text for a scalar, a list of scalars, or (past the depth limit) anything; nil for a value
    /// that gets its own sub-section.
    private static func inlineText(_ value: JSONValue, depth: Int) -> String? {
        switch value {
        case .null: return "–"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let d): return d.isFinite ? SVGFormat.number(d, maxDecimals: 6) : "–"
        case .string(let s): return s
        case .array(let items):
            if items.isEmpty { return "(none)" }
            if items.allSatisfy({ $0.arrayValue == nil && $0.objectValue == nil }) {
                return items.map { inlineText($0, depth: depth) ?? "" }.joined(separator: ", ")
            }
            if depth >= 4 { return compactJSON(value) }
            // Short tuples of scalars (index pairs such as antipodal pairs) read as "(0, 5), (1, 2)".
            let tuples = items.compactMap { $0.arrayValue }
            if tuples.count == items.count, tuples.allSatisfy({ t in
                (1...4).contains(t.count) && t.allSatisfy { $0.arrayValue == nil && $0.objectValue == nil }
            }) {
                return tuples.map { "(" + $0.map { inlineText($0, depth: depth) ?? "" }.joined(separator: ", ") + ")" }
                    .joined(separator: ", ")
            }
            // Longer lists of lists (matrices, grids) stay inline as JSON; lists of objects get a table.
            return items.allSatisfy({ $0.objectValue != nil }) ? nil : compactJSON(value)
        case .object(let object):
            if object.isEmpty { return "(none)" }
            return depth >= 4 ? compactJSON(value) : nil
        }
    }

    private static func compactJSON(_ value: JSONValue) -> String {
        (try? value.serialized(options: JSONWriteOptions(pretty: false, nonFinite: .null))) ?? "?"
    }

    /// Writes the page atomically to `url`, resolving relative figure files against its directory.
    public func write(to url: URL) throws {
        try AtomicFile.write(html(baseDirectory: url.deletingLastPathComponent()), to: url)
    }
}
