import Foundation
import ToyMoE
import ToyMoEIO
import ToyMoEPlot

// `toymoe.plot`: SVG figures and a self-contained HTML report, each function taking one option table.
//
// Every function validates its whole option table before drawing: unknown keys (with "did you mean"), types,
// shapes (ragged matrices, mismatched lengths), sizes and non-finite numbers. Errors name the option by its path
// inside the table (`panels[2].values[3]: expected a finite number, got inf`); the runtime adds the function name
// and the script's `file:line:`. Files go through `ScriptContext.resolve` (inside the output directory), parent
// directories are created, and every file is written atomically.
//
// Non-finite numbers: plotted values must be finite. NaN (`0/0`) is accepted only where the chart has a natural
// "missing" rendering: `y` of `lines`/`scatter` (a gap, no point), the matrices of `heatmap` and `phase` (a grey
// cell), and the values and errors of `grouped_bars` (no bar). ±inf is always an error.
//
// Index conventions (docs/LUA_API.md, "Index convention"): what a plot shows is 0-based — bars sit at x = 0 … n−1
// (the paper's feature indices, so Fig. 1's marker is `m - 0.5`), heatmap tick labels are 0-based, and the default
// `categories` names are "class 0", …; what a script passes in is Lua's: class ids of `categories` are 1-based,
// 0 = blank.

/// Size caps: a script error, never an attempt to draw something absurd.
private enum PlotLimits {
    static let panels = 64
    static let gridSide = 4096
    /// Cells of all grids of one figure, and points of all series of one plot.
    static let gridCells = 1 << 22
    static let totalPoints = 1 << 22
    static let series = 64
    static let points = 1_000_000
    static let bars = 4096
    static let groups = 1024
    static let classes = 256
    static let tableRows = 100_000
    static let tableColumns = 256
    static let figures = 1024
    /// Bytes of one string rendered (a title, label, legend entry, table cell...). A report's `summary` given as
    /// text may be as long as `textTotal`.
    static let textBytes = 64 << 10
    /// Bytes of all strings of one plot or report call together: the text rendered stays a few MiB, whatever the
    /// memory limit, so rendering and writing it take well under a second.
    static let textTotal = 4 << 20
}

/// An option table of a plot function (or a nested table of one, such as `panels[2]`): every key must be known,
/// and errors name the option by its full path (`prefix` + key).
struct PlotTable {
    let table: LuaTable
    /// "" at top level, e.g. "panels[2]." inside a list entry.
    let prefix: String

    init(_ table: LuaTable, prefix: String = "", known: [String]) throws(LuaCallError) {
        self.table = table
        self.prefix = prefix
        let here = prefix.isEmpty ? "" : String(prefix.dropLast()) + ": "
        if !table.array.isEmpty {
            throw LuaCallError("\(here)expected a table of named options (key = value), got a list")
        }
        for key in table.hash.keys.sorted(by: LuaTable.keyOrder) {
            guard case .string(let name) = key else {
                throw LuaCallError("\(here)option keys must be names, got \(key)")
            }
            if !known.contains(name) { throw LuaCallError("\(prefix)\(name): " + Suggest.unknownKey(name, known: known)) }
        }
    }

    /// A table whose keys were already checked.
    init(checked table: LuaTable, prefix: String) {
        self.table = table
        self.prefix = prefix
    }

    func name(_ key: String) -> String { prefix + key }
    func has(_ key: String) -> Bool { !value(key).isNil }
    func value(_ key: String) -> LuaValue { table.hash[.string(key)] ?? .nil }

    func fail(_ key: String, _ expected: String, _ got: LuaValue) -> LuaCallError {
        LuaCallError("\(name(key)): expected \(expected), got \(describe(got))")
    }

    func missing(_ key: String, _ expected: String) -> LuaCallError {
        LuaCallError("\(name(key)): required option is missing (\(expected))")
    }

    // MARK: Scalars

    func string(_ key: String) throws(LuaCallError) -> String {
        guard let s = try optionalString(key) else { throw missing(key, "a string") }
        return s
    }

    /// A string; numbers are accepted and printed (titles and labels such as `3` or `0.5`).
    func optionalString(_ key: String) throws(LuaCallError) -> String? {
        let v = value(key)
        if v.isNil { return nil }
        guard let s = PlotValues.text(v) else { throw fail(key, "a string", v) }
        return s
    }

    /// An axis or colour-bar label: absent gives `def`, `""` gives none.
    func label(_ key: String, default def: String? = nil) throws(LuaCallError) -> String? {
        guard let s = try optionalString(key) else { return def }
        return s.isEmpty ? nil : s
    }

    func boolean(_ key: String, default def: Bool) throws(LuaCallError) -> Bool {
        let v = value(key)
        if v.isNil { return def }
        guard case .boolean(let b) = v else { throw fail(key, "a boolean", v) }
        return b
    }

    func integer(_ key: String, default def: Int, in range: ClosedRange<Int>) throws(LuaCallError) -> Int {
        let v = value(key)
        if v.isNil { return def }
        let what = "an integer in \(range.lowerBound)...\(range.upperBound)"
        guard let i = v.integerValue, let int = Int(exactly: i), range.contains(int) else { throw fail(key, what, v) }
        return int
    }

    func optionalNumber(_ key: String, expected: String = "a finite number",
                        valid: (Double) -> Bool = { _ in true }) throws(LuaCallError) -> Double? {
        let v = value(key)
        if v.isNil { return nil }
        guard let d = v.doubleValue, d.isFinite, valid(d) else { throw fail(key, expected, v) }
        return d
    }

    func choice(_ key: String, _ allowed: [String], default def: String) throws(LuaCallError) -> String {
        let v = value(key)
        if v.isNil { return def }
        guard case .string(let s) = v, allowed.contains(s) else {
            throw fail(key, "one of " + allowed.map { "\"\($0)\"" }.joined(separator: ", "), v)
        }
        return s
    }

    /// `{low, high}` with low < high (both > 0 when `positive`).
    func range(_ key: String, positive: Bool = false) throws(LuaCallError) -> ClosedRange<Double>? {
        let v = value(key)
        if v.isNil { return nil }
        let what = positive ? "{low, high} with 0 < low < high" : "{low, high} with low < high"
        guard case .table(let t) = v, t.hash.isEmpty, t.array.count == 2,
              let lo = t.array[0].doubleValue, let hi = t.array[1].doubleValue,
              lo.isFinite, hi.isFinite, lo < hi, !positive || lo > 0
        else { throw fail(key, what, v) }
        return lo...hi
    }

    /// `"#rrggbb"`.
    func color(_ key: String) throws(LuaCallError) -> RGB? {
        let v = value(key)
        if v.isNil { return nil }
        guard case .string(let s) = v, let c = RGB(hex: s) else { throw fail(key, "a colour \"#rrggbb\"", v) }
        return c
    }

    func colormap(_ default: Colormap) throws(LuaCallError) -> Colormap {
        switch try choice("colormap", ["viridis", "coolwarm", "greys"], default: `default`.name) {
        case "coolwarm": return .coolwarm
        case "greys": return .greys
        default: return .viridis
        }
    }

    func marker(_ key: String, default def: Marker) throws(LuaCallError) -> Marker {
        Marker(rawValue: try choice(key, ["circle", "square", "triangle", "diamond", "none"], default: def.rawValue))!
    }

    // MARK: Lists and matrices

    /// The entries of a list option (required when `required`).
    func list(_ key: String, required: Bool, expected: String) throws(LuaCallError) -> [LuaValue]? {
        let v = value(key)
        if v.isNil {
            if required { throw missing(key, expected) }
            return nil
        }
        return try PlotValues.list(v, name(key), expected: expected)
    }

    /// A list of numbers: finite (NaN too when `allowNaN`), > 0 when `positive`, ≥ 0 when `nonNegative`, exactly
    /// `count` long when given, at least one entry and at most `limit`.
    func numbers(_ key: String, required: Bool = false, count: Int? = nil, countSource: String? = nil,
                 allowNaN: Bool = false, positive: String? = nil, nonNegative: Bool = false,
                 limit: Int = PlotLimits.points) throws(LuaCallError) -> [Double]? {
        guard let items = try list(key, required: required, expected: "a list of numbers") else { return nil }
        let values = try PlotValues.numbers(items, name(key), allowNaN: allowNaN, positive: positive,
                                            nonNegative: nonNegative)
        try PlotValues.checkCount(values.count, name(key), count: count, countSource: countSource, limit: limit)
        return values
    }

    /// A list of labels (strings or numbers).
    func labels(_ key: String, required: Bool = false, count: Int? = nil, countSource: String? = nil,
                limit: Int = PlotLimits.groups, allowEmpty: Bool = false) throws(LuaCallError) -> [String]? {
        guard let items = try list(key, required: required, expected: "a list of strings") else { return nil }
        if allowEmpty && items.isEmpty { return [] }
        var out: [String] = []
        for (i, x) in items.enumerated() {
            guard let s = PlotValues.text(x) else {
                throw LuaCallError("\(name(key))[\(i + 1)]: expected a string, got \(describe(x))")
            }
            out.append(s)
        }
        try PlotValues.checkCount(out.count, name(key), count: count, countSource: countSource, limit: limit)
        return out
    }

    /// A list of tables, each checked against `known` (`key[i].option` in messages).
    func tables(_ key: String, required: Bool, known: [String], limit: Int,
                allowEmpty: Bool = false) throws(LuaCallError) -> [PlotTable]? {
        guard let items = try list(key, required: required, expected: "a list of tables") else { return nil }
        if allowEmpty && items.isEmpty { return [] }
        try PlotValues.checkCount(items.count, name(key), count: nil, countSource: nil, limit: limit)
        var out: [PlotTable] = []
        for (i, x) in items.enumerated() {
            guard case .table(let t) = x else {
                throw LuaCallError("\(name(key))[\(i + 1)]: expected a table, got \(describe(x))")
            }
            out.append(try PlotTable(t, prefix: "\(name(key))[\(i + 1)].", known: known))
        }
        return out
    }

    /// A rectangular matrix (a list of rows) of numbers, at most 4096 × 4096.
    func matrix(_ key: String, required: Bool, allowNaN: Bool) throws(LuaCallError) -> [[Double]]? {
        guard let rows = try list(key, required: required, expected: "a matrix (a list of rows of numbers)") else {
            return nil
        }
        let n = name(key)
        try PlotValues.checkCount(rows.count, n, count: nil, countSource: nil, limit: PlotLimits.gridSide, what: "rows")
        var out: [[Double]] = []
        out.reserveCapacity(rows.count)
        for (r, row) in rows.enumerated() {
            guard case .table = row else {
                throw LuaCallError("\(n)[\(r + 1)]: expected a row (a list of numbers; a matrix is a list of rows), got \(describe(row))")
            }
            let items = try PlotValues.list(row, "\(n)[\(r + 1)]", expected: "a row (a list of numbers)")
            let values = try PlotValues.numbers(items, "\(n)[\(r + 1)]", allowNaN: allowNaN)
            if let first = out.first, values.count != first.count {
                throw LuaCallError("\(n): ragged matrix: row \(r + 1) has \(values.count) entries, row 1 has \(first.count)")
            }
            if r == 0 {
                try PlotValues.checkCount(values.count, "\(n)[1]", count: nil, countSource: nil,
                                          limit: PlotLimits.gridSide, what: "columns")
            }
            out.append(values)
        }
        return out
    }
}

/// Conversions shared by the plot bindings.
enum PlotValues {
    /// Refuses text too long to render (`PlotLimits.textBytes` per string, `textTotal` per call), naming the key:
    /// titles, labels and table cells of megabytes would make files of hundreds of MiB and take seconds of
    /// uninterruptible rendering.
    static func checkText(_ v: LuaValue, _ path: String, total: inout Int) throws(LuaCallError) {
        switch v {
        case .string(let s):
            let n = s.utf8.count
            total += n
            let cap = path == "summary" ? PlotLimits.textTotal : PlotLimits.textBytes
            if n > cap {
                throw LuaCallError("\(path): text of \(n) bytes is too long to render; at most \(cap) bytes")
            }
            if total > PlotLimits.textTotal {
                throw LuaCallError("\(path): the call's text reaches \(total) bytes; at most \(PlotLimits.textTotal) bytes of text in all per call")
            }
        case .table(let t):
            for (i, x) in t.array.enumerated() { try checkText(x, "\(path)[\(i + 1)]", total: &total) }
            for (k, x) in t.sortedEntries {
                let name: String
                if case .string(let key) = k { name = path.isEmpty ? key : path + "." + key } else { name = "\(path)[\(k.description)]" }
                try checkText(k.value, name, total: &total)
                try checkText(x, name, total: &total)
            }
        default:
            break
        }
    }

    /// A label from a string or a number (integers without a decimal point).
    static func text(_ v: LuaValue) -> String? {
        switch v {
        case .string(let s): return s
        case .integer(let i): return String(i)
        case .number(let d):
            guard d.isFinite else { return nil }
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
            return "\(d)"
        default: return nil
        }
    }

    static func list(_ v: LuaValue, _ name: String, expected: String) throws(LuaCallError) -> [LuaValue] {
        guard case .table(let t) = v else { throw LuaCallError("\(name): expected \(expected), got \(describe(v))") }
        if let key = t.hash.keys.sorted(by: LuaTable.keyOrder).first {
            let what: String
            switch key {
            case .string(let s): what = "a named key '\(s)'"
            default: what = "key \(key) after a nil entry (a list cannot contain nil)"
            }
            throw LuaCallError("\(name): expected \(expected), got a table with \(what)")
        }
        return t.array
    }

    static func numbers(_ items: [LuaValue], _ name: String, allowNaN: Bool, positive: String? = nil,
                        nonNegative: Bool = false) throws(LuaCallError) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(items.count)
        for (i, x) in items.enumerated() {
            guard let d = x.doubleValue else {
                throw LuaCallError("\(name)[\(i + 1)]: expected a number, got \(describe(x))")
            }
            if d.isNaN && allowNaN {
                out.append(d)
                continue
            }
            guard d.isFinite else {
                throw LuaCallError("\(name)[\(i + 1)]: expected a finite number\(allowNaN ? " (or nan for a missing value)" : ""), got \(describe(x))")
            }
            if let positive, d <= 0 {
                throw LuaCallError("\(name)[\(i + 1)]: expected a positive number (\(positive)), got \(describe(x))")
            }
            if nonNegative && d < 0 {
                throw LuaCallError("\(name)[\(i + 1)]: expected a number ≥ 0, got \(describe(x))")
            }
            out.append(d)
        }
        return out
    }

    static func checkCount(_ n: Int, _ name: String, count: Int?, countSource: String?, limit: Int,
                           what: String = "entries") throws(LuaCallError) {
        if let count, n != count {
            throw LuaCallError("\(name): expected \(count) \(what)\(countSource.map { " (as many as \($0))" } ?? ""), got \(n)")
        }
        if n == 0 { throw LuaCallError("\(name): expected at least one entry, got an empty list") }
        if n > limit { throw LuaCallError("\(name): too many \(what) (\(n)); at most \(limit)") }
    }

    /// Cell text of an HTML table: strings as given, numbers formatted, booleans as true/false.
    static func cell(_ v: LuaValue, _ name: String, decimals: Int) throws(LuaCallError) -> String {
        switch v {
        case .string(let s): return s
        case .integer(let i): return String(i)
        case .number(let d): return HTMLTable.cell(d, decimals: decimals)
        case .boolean(let b): return String(b)
        default: throw LuaCallError("\(name): expected a string, number or boolean, got \(describe(v))")
        }
    }

    /// The summary value of a report as text (key/value tables, `tostring`-like numbers).
    static func scalarText(_ v: LuaValue) -> String? {
        switch v {
        case .string(let s): return s
        case .integer(let i): return String(i)
        case .number(let d): return LuaValue.format(d)
        case .boolean(let b): return String(b)
        default: return nil
        }
    }

    /// `b` relative to the directory `base`, both '/'-separated paths inside the same root.
    static func relativePath(_ target: String, fromDirectoryOf file: String) -> String {
        let dir = file.split(separator: "/").dropLast().map(String.init)
        let parts = target.split(separator: "/").map(String.init)
        var common = 0
        while common < dir.count, common < parts.count - 1, dir[common] == parts[common] { common += 1 }
        return (Array(repeating: "..", count: dir.count - common) + parts[common...]).joined(separator: "/")
    }
}

extension Bindings {

    // MARK: Plots

    static let plotCommon = ["file", "title", "footnote", "panel_size"]
    static let plotOptions: [String: [String]] = [
        "bars": plotCommon + ["columns", "panels", "values", "color_values", "marker", "marker_label", "x_label", "y_label",
                              "color_label", "y_range", "colormap"],
        "heatmap": plotCommon + ["columns", "panels", "matrix", "range", "x_label", "y_label", "color_label",
                                 "colormap", "show_labels"],
        "lines": plotCommon + ["series", "x_log", "y_log", "x_label", "y_label", "x_range", "y_range",
                               "reference_x", "reference_y", "legend"],
        "scatter": plotCommon + ["series", "x_log", "y_log", "x_label", "y_label", "x_range", "y_range",
                                 "reference_x", "reference_y", "legend"],
        "phase": plotCommon + ["columns", "panels", "norms", "superposition", "row_values", "column_values",
                               "row_label", "column_label", "row_every", "column_every", "decimals", "header",
                               "legend"],
        "categories": plotCommon + ["columns", "panels", "classes", "class_names", "x_values", "y_values",
                                    "x_label", "y_label", "legend_title", "origin"],
        "box": plotCommon + ["groups", "y_log", "y_label", "x_label", "y_range", "show_mean"],
        "grouped_bars": plotCommon + ["groups", "series", "baseline", "x_label", "y_label", "y_range", "legend"],
        "vectors": plotCommon + ["columns", "panels", "W", "importance", "extent", "label_tips", "colormap"],
        "table_html": ["file", "caption", "header", "rows", "decimals"],
        "report": ["file", "title", "introduction", "figures", "summary", "summary_heading", "tables", "export"],
        "export": ["file", "formats"],
    ]

    /// Says "PNG/PDF export skipped" on stderr once per process, however many figures and reports miss it.
    final class ExportWarning: @unchecked Sendable {
        static let shared = ExportWarning()
        private let lock = NSLock()
        private var said = false
        func once(_ text: String) {
            lock.lock()
            let first = !said
            said = true
            lock.unlock()
            if first { FileHandle.standardError.write(Data("toymoe: warning: \(text)\n".utf8)) }
        }
    }

    /// The formats of an `export` option: nil or true → PNG and PDF; false → none; a list of "png"/"pdf".
    static func exportFormats(_ o: PlotTable, _ key: String) throws(LuaCallError) -> [FigureExport.Format] {
        let v = o.value(key)
        switch v {
        case .nil, .boolean(true): return [.png, .pdf]
        case .boolean(false): return []
        case .table:
            var formats: [FigureExport.Format] = []
            for (i, item) in try PlotValues.list(v, o.name(key), expected: "true, false or a list of \"png\"/\"pdf\"").enumerated() {
                guard case .string(let name) = item, let f = FigureExport.Format(rawValue: name) else {
                    throw LuaCallError("\(o.name(key))[\(i + 1)]: expected \"png\" or \"pdf\", got \(describe(item))")
                }
                if !formats.contains(f) { formats.append(f) }
            }
            return formats
        default:
            throw o.fail(key, "true, false or a list of \"png\"/\"pdf\"", v)
        }
    }

    /// The provenance rows of a report: what a reader needs to reproduce the page.
    static func reportProvenance(_ ctx: ScriptContext) -> [HTMLIndex.KeyValue] {
        var rows = [HTMLIndex.KeyValue("tool", "toymoe \(ToyMoEVersion.string)")]
        // The working directory's commit, as in provenance.json; run from elsewhere, the script's checkout's.
        if let commit = Provenance.gitCommit(at: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) {
            rows.append(HTMLIndex.KeyValue("git commit", commit))
        } else if let script = ctx.runOptions?.script,
                  let commit = Provenance.gitCommit(at: script.deletingLastPathComponent()) {
            rows.append(HTMLIndex.KeyValue("git commit", commit + " (of the script's checkout)"))
        } else {
            rows.append(HTMLIndex.KeyValue("git commit", "unknown (neither the working directory nor the script is in a git checkout)"))
        }
        rows.append(HTMLIndex.KeyValue("seed", String(ctx.runSeed)))
        rows.append(HTMLIndex.KeyValue("kernels", KernelVariant.current))
        if let o = ctx.runOptions {
            rows.append(HTMLIndex.KeyValue("script", o.script.lastPathComponent))
            // The command that gives these results: the script, its KEY=VALUE words, the seed and the inputs.
            // --jobs, --shard, --resume, --out and the limits do not change the results and are left out, so the
            // page stays byte-identical across them (like every output but provenance.json and timings.csv);
            // provenance.json keeps the literal command line.
            var words = ["toymoe", "run", o.script.relativePath] + o.params.map { "\($0.0)=\($0.1)" }
            words += ["--seed", String(o.seed)]
            words += o.inputs.keys.sorted().map { "--input \($0)=\(o.inputs[$0]!.path)" }
            rows.append(HTMLIndex.KeyValue("command", words.joined(separator: " ")))
        }
        return rows
    }

    static func installPlots(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        func options(_ args: LuaArgs, _ function: String) throws(LuaCallError) -> PlotTable {
            let table = try args.table(1, "options")
            var total = 0
            try PlotValues.checkText(.table(table), "", total: &total)
            return try PlotTable(table, known: plotOptions[function]!)
        }
        func output(_ o: PlotTable, default def: String? = nil) throws(LuaCallError) -> (url: URL, name: String) {
            let name: String
            if let def, !o.has("file") { name = def } else { name = try o.string("file") }
            return (try ctx.resolve(name), name)
        }
        func write(_ text: String, _ url: URL) throws(LuaCallError) {
            // A figure that took past the deadline to render is not written (the call fails with the limit).
            if let limit = rt.budgetExceeded() { throw limit }
            do {
                try AtomicFile.createDirectory(at: url.deletingLastPathComponent())
                try AtomicFile.write(text, to: url)
            } catch { throw LuaCallError("file: cannot write '\(url.lastPathComponent)': \(error)") }
        }
        func panelSize(_ o: PlotTable) throws(LuaCallError) -> Size? {
            let v = o.value("panel_size")
            if v.isNil { return nil }
            guard case .table(let t) = v, t.hash.isEmpty, t.array.count == 2,
                  let w = t.array[0].doubleValue, let h = t.array[1].doubleValue,
                  (50...4000).contains(w), (50...4000).contains(h)
            else { throw o.fail("panel_size", "{width, height} in pixels, each in 50...4000", v) }
            return Size(w, h)
        }
        /// A figure of several panels, written as one SVG.
        func writeFigure(_ o: PlotTable, _ panels: [any Panel], columns defaultColumns: Int) throws(LuaCallError) {
            let (url, _) = try output(o)
            let columns = try o.integer("columns", default: min(panels.count, defaultColumns), in: 1...PlotLimits.panels)
            let figure = Figure(title: try o.optionalString("title"), panels: panels, columns: columns,
                                panelSize: try panelSize(o), footnote: try o.optionalString("footnote"))
            try write(figure.svg(), url)
        }
        /// A single-panel chart (its title is the panel's), written as one SVG.
        func writePanel(_ o: PlotTable, _ panel: any Panel) throws(LuaCallError) {
            let (url, _) = try output(o)
            try write(panel.svg(size: try panelSize(o)), url)
        }
        /// The panels of a multi-panel function: `panels = {...}`, or the data keys at top level for one panel.
        func panels(_ o: PlotTable, data: [String], extra: [String] = []) throws(LuaCallError) -> [PlotTable] {
            if o.has("panels") {
                if let k = data.first(where: { o.has($0) }) {
                    throw LuaCallError("\(k): give either panels = {...} or the panel's \(data.joined(separator: "/")) at top level (one panel), not both")
                }
                return try o.tables("panels", required: true, known: ["title", "footnote"] + data + extra,
                                    limit: PlotLimits.panels)!
            }
            guard data.contains(where: { o.has($0) }) else {
                throw o.missing("panels", "a list of panels {title = ..., \(data[0]) = ...}, or \(data[0]) for one panel")
            }
            var t = LuaTable()
            for k in data { t[k] = o.value(k) }
            return [PlotTable(checked: t, prefix: "")]
        }
        /// Caps the cells of a figure, and checks that its SVG (some 64 bytes a cell at worst) fits in memory.
        func checkCells(_ grids: [[[Double]]], _ o: PlotTable) throws(LuaCallError) {
            let total = grids.reduce(0) { $0 + $1.count * ($1.first?.count ?? 0) }
            if total > PlotLimits.gridCells {
                throw LuaCallError("panels: \(total) cells in all; at most \(PlotLimits.gridCells)")
            }
            try rt.ensureHostCapacity(total * 64)
        }
        /// `legend`: true/false or a position.
        func legend(_ o: PlotTable) throws(LuaCallError) -> LegendPosition {
            let v = o.value("legend")
            let names: [String: LegendPosition] = [
                "top_left": .topLeft, "top_right": .topRight, "bottom_left": .bottomLeft,
                "bottom_right": .bottomRight, "outside": .outsideRight, "none": .hidden,
            ]
            switch v {
            case .nil, .boolean(true): return .topLeft
            case .boolean(false): return .hidden
            case .string(let s) where names[s] != nil: return names[s]!
            default:
                throw o.fail("legend", "true, false or one of \"top_left\", \"top_right\", \"bottom_left\", \"bottom_right\", \"outside\", \"none\"", v)
            }
        }
        /// Reference lines: a number, `{value = v, label = "...", color = "#rrggbb"}`, or a list of those.
        func references(_ o: PlotTable, _ key: String, _ orientation: ReferenceLine.Orientation,
                        positive: String?) throws(LuaCallError) -> [ReferenceLine] {
            let v = o.value(key)
            var entries: [(LuaValue, String)] = []
            switch v {
            case .nil: return []
            case .integer, .number: entries = [(v, o.name(key))]
            case .table(let t) where t.hash[.string("value")] != nil || t.hash[.string("label")] != nil:
                entries = [(v, o.name(key))]
            case .table:
                let items = try PlotValues.list(v, o.name(key), expected: "a number, {value = v, label = \"...\"} or a list of those")
                if items.count > PlotLimits.groups { throw LuaCallError("\(o.name(key)): too many lines (\(items.count)); at most \(PlotLimits.groups)") }
                entries = items.enumerated().map { ($0.element, "\(o.name(key))[\($0.offset + 1)]") }
            default:
                throw o.fail(key, "a number, {value = v, label = \"...\"} or a list of those", v)
            }
            var lines: [ReferenceLine] = []
            for (entry, name) in entries {
                var value: Double
                var label: String? = nil
                var legendText: String? = nil
                var color = RGB(bytes: 0x33, 0x33, 0x33)
                switch entry {
                case .integer, .number: value = entry.doubleValue!
                case .table(let t):
                    let e = try PlotTable(t, prefix: name + ".", known: ["value", "label", "color", "legend"])
                    guard let d = e.value("value").doubleValue else {
                        throw e.has("value") ? e.fail("value", "a finite number", e.value("value")) : e.missing("value", "a number")
                    }
                    value = d
                    label = try e.optionalString("label")
                    legendText = try e.optionalString("legend")
                    color = try e.color("color") ?? color
                default:
                    throw LuaCallError("\(name): expected a number or {value = v, label = \"...\"}, got \(describe(entry))")
                }
                guard value.isFinite else { throw LuaCallError("\(name): expected a finite number, got \(describe(.number(value)))") }
                if let positive, value <= 0 {
                    throw LuaCallError("\(name): expected a positive value (\(positive)), got \(LuaValue.format(value))")
                }
                lines.append(ReferenceLine(orientation, at: value, label: label, color: color, legend: legendText))
            }
            return lines
        }
        func axis(_ o: PlotTable, _ letter: String, includeZero: Bool = false) throws(LuaCallError) -> Axis {
            let log = try o.boolean("\(letter)_log", default: false)
            return Axis(label: try o.label("\(letter)_label"), scale: log ? .log : .linear,
                        domain: try o.range("\(letter)_range", positive: log), includeZero: includeZero && !log)
        }
        /// `lines` and `scatter`.
        func xyPlot(_ args: LuaArgs, _ function: String) throws(LuaCallError) -> [LuaValue] {
            let o = try options(args, function)
            let connected = function == "lines"
            let xAxis = try axis(o, "x"), yAxis = try axis(o, "y")
            let known = connected ? ["label", "x", "y", "y_error", "dashed", "color", "marker"]
                                  : ["label", "x", "y", "color", "marker", "size", "opacity"]
            let list = try o.tables("series", required: true, known: known, limit: PlotLimits.series)!
            var series: [XYSeries] = []
            var total = 0
            for s in list {
                let x = try s.numbers("x", required: true, positive: xAxis.scale == .log ? "x_log = true" : nil)!
                let y = try s.numbers("y", required: true, count: x.count, countSource: "x", allowNaN: true,
                                      positive: yAxis.scale == .log ? "y_log = true" : nil)!
                total += x.count
                if total > PlotLimits.totalPoints {
                    throw LuaCallError("series: \(total) points in all; at most \(PlotLimits.totalPoints)")
                }
                let label = try s.optionalString("label")
                let color = try s.color("color")
                if connected {
                    let errors = try s.numbers("y_error", count: x.count, countSource: "x", allowNaN: true, nonNegative: true)
                    let marker = try s.marker("marker", default: x.count > 200 ? .none : .circle)
                    series.append(.line(label, x: x, y: y, yError: errors, color: color, marker: marker,
                                        dash: try s.boolean("dashed", default: false) ? "6,4" : nil))
                } else {
                    let size = try s.optionalNumber("size", expected: "a number in [0.5, 20]", valid: { $0 >= 0.5 && $0 <= 20 }) ?? 2.6
                    let opacity = try s.optionalNumber("opacity", expected: "a number in [0, 1]", valid: { $0 >= 0 && $0 <= 1 }) ?? 0.75
                    series.append(.scatter(label, x: x, y: y, color: color, marker: try s.marker("marker", default: .circle),
                                           size: size, opacity: opacity))
                }
            }
            let refs = try references(o, "reference_y", .horizontal, positive: yAxis.scale == .log ? "y_log = true" : nil)
                + references(o, "reference_x", .vertical, positive: xAxis.scale == .log ? "x_log = true" : nil)
            let plot = XYPlot(title: try o.optionalString("title"), series: series, xAxis: xAxis, yAxis: yAxis,
                              referenceLines: refs, legend: try legend(o), footnote: try o.optionalString("footnote"))
            try writePanel(o, plot)
            return []
        }
        /// An HTML table from `{caption, header, rows, decimals}`.
        func htmlTable(_ t: PlotTable) throws(LuaCallError) -> HTMLTable {
            let decimals = try t.integer("decimals", default: 3, in: 0...9)
            let header = try t.labels("header", limit: PlotLimits.tableColumns, allowEmpty: true) ?? []
            let rowItems = try t.list("rows", required: true, expected: "a list of rows (lists of cells)")!
            if rowItems.count > PlotLimits.tableRows {
                throw LuaCallError("\(t.name("rows")): too many rows (\(rowItems.count)); at most \(PlotLimits.tableRows)")
            }
            var rows: [[String]] = []
            for (r, row) in rowItems.enumerated() {
                let name = "\(t.name("rows"))[\(r + 1)]"
                let cells = try PlotValues.list(row, name, expected: "a row (a list of cells)")
                let width = header.isEmpty ? (rows.first?.count ?? cells.count) : header.count
                if cells.count != width {
                    throw LuaCallError("\(name): expected \(width) cells (\(header.isEmpty ? "as many as row 1" : "one per header entry")), got \(cells.count)")
                }
                if cells.count > PlotLimits.tableColumns {
                    throw LuaCallError("\(name): too many cells (\(cells.count)); at most \(PlotLimits.tableColumns)")
                }
                var texts: [String] = []
                for (c, cell) in cells.enumerated() { texts.append(try PlotValues.cell(cell, "\(name)[\(c + 1)]", decimals: decimals)) }
                rows.append(texts)
            }
            return HTMLTable(caption: try t.optionalString("caption"), header: header, rows: rows)
        }

        try rt.register(module: "toymoe.plot", functions: [
            "bars": { args in
                let o = try options(args, "bars")
                let marker = try o.optionalNumber("marker")
                let markerLabel = try o.optionalString("marker_label")
                let colormap = try o.colormap(.viridis)
                let xLabel = try o.label("x_label", default: "feature i")
                let yLabel = try o.label("y_label", default: "‖Wᵢ‖")
                let colorLabel = try o.label("color_label", default: "Superposition")
                let yRange = try o.range("y_range")
                var charts: [any Panel] = []
                for p in try panels(o, data: ["values", "color_values"], extra: ["marker"]) {
                    let values = try p.numbers("values", required: true, limit: PlotLimits.bars)!
                    let colors = try p.numbers("color_values", count: values.count, countSource: "values")
                    charts.append(BarChart(title: try p.optionalString("title"), values: values, colorValues: colors,
                                           colormap: colormap, xLabel: xLabel, yLabel: yLabel, yDomain: yRange,
                                           marker: (try p.optionalNumber("marker") ?? marker).map { MarkerLine(x: $0, label: markerLabel) },
                                           colorBarLabel: colorLabel,
                                           footnote: try p.optionalString("footnote")))
                }
                try writeFigure(o, charts, columns: 4)
                return []
            },
            "heatmap": { args in
                let o = try options(args, "heatmap")
                let range = try o.range("range") ?? -1...1
                let colormap = try o.colormap(.coolwarm)
                let showLabels = try o.boolean("show_labels", default: true)
                let xLabel = try o.label("x_label"), yLabel = try o.label("y_label")
                let colorLabel = try o.label("color_label")
                var maps: [any Panel] = []
                var grids: [[[Double]]] = []
                for p in try panels(o, data: ["matrix"]) {
                    let m = try p.matrix("matrix", required: true, allowNaN: true)!
                    grids.append(m)
                    maps.append(Heatmap(title: try p.optionalString("title"), matrix: m, range: range, colormap: colormap,
                                        showLabels: showLabels, xLabel: xLabel, yLabel: yLabel, colorBarLabel: colorLabel,
                                        footnote: try p.optionalString("footnote")))
                }
                try checkCells(grids, o)
                try writeFigure(o, maps, columns: 4)
                return []
            },
            "lines": { args in try xyPlot(args, "lines") },
            "scatter": { args in try xyPlot(args, "scatter") },
            "phase": { args in
                let o = try options(args, "phase")
                let list = try panels(o, data: ["norms", "superposition"])
                var images: [any Panel] = []
                var grids: [[[Double]]] = []
                var shape: (rows: Int, columns: Int)? = nil
                let rowValues = try o.numbers("row_values", limit: PlotLimits.gridSide)
                let columnValues = try o.numbers("column_values", limit: PlotLimits.gridSide)
                let decimals = try o.integer("decimals", default: 2, in: 0...9)
                let rowEvery = try o.integer("row_every", default: max(1, ((rowValues?.count ?? 0) + 6) / 7), in: 1...PlotLimits.gridSide)
                let columnEvery = try o.integer("column_every", default: max(1, ((columnValues?.count ?? 0) + 7) / 8), in: 1...PlotLimits.gridSide)
                let rowLabel = try o.label("row_label"), columnLabel = try o.label("column_label")
                let yAxis = rowValues.map { GridAxis.values($0, decimals: decimals, every: rowEvery, label: rowLabel) }
                    ?? GridAxis(label: rowLabel, ticks: [])
                let xAxis = columnValues.map { GridAxis.values($0, decimals: decimals, every: columnEvery, label: columnLabel) }
                    ?? GridAxis(label: columnLabel, ticks: [])
                for p in list {
                    let norms = try p.matrix("norms", required: true, allowNaN: true)!
                    let superposition = try p.matrix("superposition", required: true, allowNaN: true)!
                    if superposition.count != norms.count || superposition[0].count != norms[0].count {
                        throw LuaCallError("\(p.name("superposition")): expected the shape of norms (\(norms.count)×\(norms[0].count)), got \(superposition.count)×\(superposition[0].count)")
                    }
                    if let rowValues, rowValues.count != norms.count {
                        throw LuaCallError("row_values: expected one value per row of \(p.name("norms")) (\(norms.count)), got \(rowValues.count)")
                    }
                    if let columnValues, columnValues.count != norms[0].count {
                        throw LuaCallError("column_values: expected one value per column of \(p.name("norms")) (\(norms[0].count)), got \(columnValues.count)")
                    }
                    if shape == nil { shape = (norms.count, norms[0].count) }
                    grids.append(norms)
                    images.append(ImageMap(title: try p.optionalString("title"),
                                           colors: PhaseColorMap.image(norms: norms, superpositions: superposition),
                                           xAxis: xAxis, yAxis: yAxis, footnote: try p.optionalString("footnote")))
                }
                try checkCells(grids, o)
                // Header row: network sketches, then the colour legend; padded to whole rows.
                var header: [any Panel] = []
                if let h = o.value("header").tableValue ?? (o.has("header") ? nil : LuaTable()) {
                    let ht = try PlotTable(h, prefix: "header.", known: ["networks"])
                    for (i, item) in (try ht.list("networks", required: false, expected: "a list of networks such as \"2-1-2\"") ?? []).enumerated() {
                        let name = "header.networks[\(i + 1)]"
                        var layers: [Int] = []
                        switch item {
                        case .string(let s):
                            let parts = s.split(separator: "-", omittingEmptySubsequences: false)
                            layers = parts.compactMap { Int($0) }
                            if layers.count != parts.count { layers = [] }
                        case .table:
                            let items = try PlotValues.list(item, name, expected: "layer sizes such as {2, 1, 2}")
                            layers = items.compactMap { $0.integerValue.flatMap { Int(exactly: $0) } }
                            if layers.count != items.count { layers = [] }
                        default: break
                        }
                        guard (2...8).contains(layers.count), layers.allSatisfy({ (1...16).contains($0) }) else {
                            throw LuaCallError("\(name): expected layer sizes such as \"2-1-2\" or {2, 1, 2} (2 to 8 layers of 1 to 16 units), got \(describe(item))")
                        }
                        header.append(NetworkDiagram(layers: layers))
                    }
                    if header.count > PlotLimits.panels { throw LuaCallError("header.networks: too many networks (\(header.count)); at most \(PlotLimits.panels)") }
                } else {
                    throw o.fail("header", "a table {networks = {\"2-1-2\", ...}}", o.value("header"))
                }
                if try o.boolean("legend", default: true) { header.append(ColorLegend2D.phaseDiagram()) }
                let columns = try o.integer("columns", default: min(images.count, 3), in: 1...PlotLimits.panels)
                if !header.isEmpty {
                    while header.count % columns != 0 { header.append(EmptyPanel()) }
                }
                let (url, _) = try output(o)
                let figure = Figure(title: try o.optionalString("title"), panels: header + images, columns: columns,
                                    panelSize: try panelSize(o) ?? Size(300, 270), footnote: try o.optionalString("footnote"))
                try write(figure.svg(), url)
                return []
            },
            "categories": { args in
                let o = try options(args, "categories")
                let list = try panels(o, data: ["classes"])
                let names = try o.labels("class_names", limit: PlotLimits.classes)
                let lower = try o.choice("origin", ["lower", "upper"], default: "lower") == "lower"
                let xValues = try o.numbers("x_values", limit: PlotLimits.gridSide)
                let yValues = try o.numbers("y_values", limit: PlotLimits.gridSide)
                let xLabel = try o.label("x_label"), yLabel = try o.label("y_label")
                /// Nice ticks for evenly spaced cell-centre coordinates `values` (reversed: first value at the end).
                func gridAxis(_ values: [Double]?, label: String?, reversed: Bool) -> GridAxis {
                    guard let values, let first = values.first, let last = values.last else { return GridAxis(label: label, ticks: []) }
                    let n = Double(values.count)
                    if values.count == 1 || first == last {
                        return GridAxis(label: label, ticks: [GridTick(position: 0.5, text: SVGFormat.number(first))])
                    }
                    let ticks = Axis(domain: min(first, last)...max(first, last)).resolve([]).ticks.map { tick -> GridTick in
                        let index = (tick.value - first) / (last - first) * (n - 1)
                        let f = (index + 0.5) / n
                        return GridTick(position: reversed ? 1 - f : f, text: tick.label)
                    }
                    return GridAxis(label: label, ticks: ticks)
                }
                let xAxis = gridAxis(xValues, label: xLabel, reversed: false)
                let yAxis = gridAxis(yValues, label: yLabel, reversed: lower)
                var parsed: [(title: String?, classes: [[Int]], footnote: String?)] = []
                var grids: [[[Double]]] = []
                var largest = 0
                for p in list {
                    let m = try p.matrix("classes", required: true, allowNaN: false)!
                    var classes: [[Int]] = []
                    for (r, row) in m.enumerated() {
                        var out: [Int] = []
                        for (c, v) in row.enumerated() {
                            let limit = names?.count ?? PlotLimits.classes
                            guard v == v.rounded(), v >= 0, v <= Double(limit) else {
                                throw LuaCallError("\(p.name("classes"))[\(r + 1)][\(c + 1)]: expected a class id in 1...\(limit)\(names == nil ? "" : " (one per class_names entry)") or 0 for a blank cell, got \(LuaValue.format(v))")
                            }
                            out.append(Int(v) - 1)
                            largest = max(largest, Int(v))
                        }
                        classes.append(out)
                    }
                    if let xValues, xValues.count != m[0].count {
                        throw LuaCallError("x_values: expected one value per column of \(p.name("classes")) (\(m[0].count)), got \(xValues.count)")
                    }
                    if let yValues, yValues.count != m.count {
                        throw LuaCallError("y_values: expected one value per row of \(p.name("classes")) (\(m.count)), got \(yValues.count)")
                    }
                    grids.append(m)
                    parsed.append((try p.optionalString("title"), lower ? Array(classes.reversed()) : classes,
                                   try p.optionalString("footnote")))
                }
                try checkCells(grids, o)
                // Default names follow the index convention: Lua's class id 1 is drawn as "class 0".
                let classNames = names ?? (0..<max(largest, 1)).map { "class \($0)" }
                let legendTitle = try o.label("legend_title")
                let maps: [any Panel] = parsed.map {
                    CategoryMap(title: $0.title, classes: $0.classes, classNames: classNames, xAxis: xAxis, yAxis: yAxis,
                                legendTitle: legendTitle, footnote: $0.footnote)
                }
                try writeFigure(o, maps, columns: 4)
                return []
            },
            "box": { args in
                let o = try options(args, "box")
                let yAxis = try axis(o, "y")
                let list = try o.tables("groups", required: true, known: ["label", "values", "color"], limit: PlotLimits.groups)!
                var groups: [BoxGroup] = []
                for (i, g) in list.enumerated() {
                    let values = try g.numbers("values", required: true, positive: yAxis.scale == .log ? "y_log = true" : nil)!
                    groups.append(BoxGroup(try g.optionalString("label") ?? String(i + 1), values: values, color: try g.color("color")))
                }
                let plot = BoxPlot(title: try o.optionalString("title"), groups: groups, yAxis: yAxis,
                                   xLabel: try o.label("x_label"), showMean: try o.boolean("show_mean", default: false),
                                   footnote: try o.optionalString("footnote"))
                try writePanel(o, plot)
                return []
            },
            "grouped_bars": { args in
                let o = try options(args, "grouped_bars")
                let groups = try o.labels("groups", required: true)!
                let list = try o.tables("series", required: true, known: ["label", "values", "errors", "color"], limit: PlotLimits.series)!
                var series: [BarSeries] = []
                for (i, s) in list.enumerated() {
                    let values = try s.numbers("values", required: true, count: groups.count, countSource: "groups", allowNaN: true)!
                    let errors = try s.numbers("errors", count: groups.count, countSource: "groups", allowNaN: true, nonNegative: true)
                    series.append(BarSeries(try s.optionalString("label") ?? "series \(i + 1)", values: values, errors: errors,
                                            color: try s.color("color")))
                }
                let chart = GroupedBarChart(title: try o.optionalString("title"), groups: groups, series: series,
                                            xLabel: try o.label("x_label"),
                                            yAxis: Axis(label: try o.label("y_label"), domain: try o.range("y_range"), includeZero: true),
                                            referenceLines: try references(o, "baseline", .horizontal, positive: nil),
                                            legend: try legend(o), footnote: try o.optionalString("footnote"))
                try writePanel(o, chart)
                return []
            },
            "vectors": { args in
                let o = try options(args, "vectors")
                let extent = try o.optionalNumber("extent", expected: "a finite number > 0", valid: { $0 > 0 })
                let labelTips = try o.boolean("label_tips", default: false)
                let colormap = try o.colormap(.viridis)
                var diagrams: [any Panel] = []
                for p in try panels(o, data: ["W", "importance"]) {
                    let W = try p.matrix("W", required: true, allowNaN: false)!
                    guard W[0].count == 2 else {
                        throw LuaCallError("\(p.name("W")): expected an n×2 matrix (one 2-D vector per feature), got \(W.count)×\(W[0].count)")
                    }
                    let importance = try p.numbers("importance", count: W.count, countSource: "the rows of W")
                    diagrams.append(VectorDiagram(title: try p.optionalString("title"), rows: W, importance: importance,
                                                  colormap: colormap, extent: extent, labelTips: labelTips,
                                                  footnote: try p.optionalString("footnote")))
                }
                try writeFigure(o, diagrams, columns: 4)
                return []
            },
            "table_html": { args in
                let o = try options(args, "table_html")
                let (url, _) = try output(o)
                try write(try htmlTable(o).html(), url)
                return []
            },
            "export": { args in
                let o = try options(args, "export")
                let name = try o.string("file")
                guard name.hasSuffix(".svg") else { throw o.fail("file", "an SVG file name ending in .svg", o.value("file")) }
                let svgURL: URL
                do throws(LuaCallError) { svgURL = try ctx.resolve(name, .readOutput) } catch { throw LuaCallError("file: " + error.text) }
                guard let svg = try? String(contentsOf: svgURL, encoding: .utf8) else {
                    throw LuaCallError("file: '\(name)' does not exist in the output directory (write it first, e.g. with toymoe.plot.bars)")
                }
                guard svg.contains("<svg") else { throw LuaCallError("file: '\(name)' is not an SVG file (no <svg> element)") }
                // The outputs are checked like any written file (no link out of the output directory).
                let stem = String(name.dropLast(4))
                let formats = try exportFormats(o, "formats")
                for f in formats { _ = try ctx.resolve(stem + "." + f.rawValue) }
                let converter = FigureExport.converter()
                guard let program = converter.url else {
                    ExportWarning.shared.once("PNG/PDF export skipped: \(converter.reason); the figures are SVG only")
                    return [.table(LuaTable()), .string(converter.reason)]
                }
                let files: [URL]
                do { files = try FigureExport.export(svg: svgURL, formats: formats, converter: program) } catch {
                    throw LuaCallError("file: \(error)")
                }
                var list = LuaTable()
                for file in files { list.array.append(.string(stem + "." + file.pathExtension)) }
                return [.table(list)]
            },
            "report": { args in
                let o = try options(args, "report")
                let (url, indexName) = try output(o, default: "index.html")
                let tableKeys = ["caption", "header", "rows", "decimals"]
                let formats = try exportFormats(o, "export")
                let converter = formats.isEmpty ? (url: nil, reason: "") : FigureExport.converter()
                var notes: [String] = []
                if !formats.isEmpty, converter.url == nil {
                    let text = "PNG/PDF export skipped: \(converter.reason); the figures are SVG only"
                    notes.append(text)
                    ExportWarning.shared.once(text)
                }
                var entries: [HTMLIndex.Entry] = []
                for f in try o.tables("figures", required: false, known: ["heading", "file", "caption", "tables"],
                                      limit: PlotLimits.figures, allowEmpty: true) ?? [] {
                    var figure: HTMLIndex.FigureSource? = nil
                    var exports: [String] = []
                    if f.has("file") {
                        let name = try f.string("file")
                        let figureURL: URL
                        do throws(LuaCallError) { figureURL = try ctx.resolve(name, .readOutput) } catch { throw LuaCallError(f.prefix + error.text) }
                        guard let svg = try? String(contentsOf: figureURL, encoding: .utf8) else {
                            throw LuaCallError("\(f.name("file")): '\(name)' does not exist in the output directory (write it first, e.g. with toymoe.plot.bars)")
                        }
                        guard svg.contains("<svg") else {
                            throw LuaCallError("\(f.name("file")): '\(name)' is not an SVG file (no <svg> element)")
                        }
                        let shown = PlotValues.relativePath(name, fromDirectoryOf: indexName)
                        figure = .file(shown)
                        if let program = converter.url {
                            do {
                                let files = try FigureExport.export(svg: figureURL, formats: formats, converter: program)
                                let stem = shown.hasSuffix(".svg") ? String(shown.dropLast(4)) : shown
                                exports = files.map { stem + "." + $0.pathExtension }
                            } catch {
                                throw LuaCallError("\(f.name("file")): \(error) (export = false skips PNG/PDF export)")
                            }
                        }
                    }
                    var tables: [HTMLTable] = []
                    for t in try f.tables("tables", required: false, known: tableKeys, limit: PlotLimits.figures, allowEmpty: true) ?? [] {
                        tables.append(try htmlTable(t))
                    }
                    entries.append(HTMLIndex.Entry(heading: try f.string("heading"), figure: figure,
                                                   caption: try f.optionalString("caption"), tables: tables,
                                                   exports: exports))
                }
                if let list = try o.tables("tables", required: false, known: tableKeys, limit: PlotLimits.figures, allowEmpty: true),
                   !list.isEmpty {
                    var tables: [HTMLTable] = []
                    for t in list { tables.append(try htmlTable(t)) }
                    entries.append(HTMLIndex.Entry(heading: "Tables", figure: nil, tables: tables))
                }
                var summary: HTMLIndex.Summary? = nil
                switch o.value("summary") {
                case .nil: break
                case .string(let s): summary = .json(s)
                case .table(let t):
                    let flat = t.array.isEmpty && !t.hash.isEmpty && t.hash.allSatisfy { key, value in
                        if case .string = key, PlotValues.scalarText(value) != nil { return true }
                        return false
                    }
                    if flat {
                        summary = .keyValues(t.sortedEntries.map { HTMLIndex.KeyValue($0.key.description, PlotValues.scalarText($0.value)!) })
                    } else {
                        summary = .tree(try JSONBridge.json(.table(t), "summary"))
                    }
                case let other: throw o.fail("summary", "a table or a string", other)
                }
                let index = HTMLIndex(title: try o.optionalString("title") ?? "ToyMoE report",
                                      introduction: try o.optionalString("introduction"), entries: entries,
                                      summary: summary, summaryHeading: try o.optionalString("summary_heading") ?? "Summary",
                                      provenance: reportProvenance(ctx), notes: notes)
                // The index's directory must exist before figure paths relative to it ("../figs/a.svg") resolve.
                let html: String
                do {
                    try AtomicFile.createDirectory(at: url.deletingLastPathComponent())
                    html = try index.html(baseDirectory: url.deletingLastPathComponent())
                } catch { throw LuaCallError("figures: \(error)") }
                try write(html, url)
                return []
            },
        ])
    }
}
