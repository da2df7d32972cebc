import CLuaShim
import Foundation
import ToyMoE
import ToyMoEIO

extension Bindings {

    // MARK: Files (always inside the output directory, written atomically)

    /// The numbers of `v` (a number or nested lists, already checked rectangular by `Tensor.infer`) as exact
    /// integers, in row-major order: a Lua integer as it is, a float only when it is a whole number inside the
    /// type's range (booleans 0/1). Anything else is an error naming the value, the type's range and its Lua
    /// (1-based) index, e.g. `array[2][3]`.
    static func integers(_ v: LuaValue, _ path: String, int32: Bool) throws(LuaCallError) -> [Int64] {
        let type = int32 ? "int32" : "int64"
        let range = int32 ? "-2147483648...2147483647" : "-9223372036854775808...9223372036854775807"
        func fits(_ i: Int64) -> Bool { !int32 || Int32(exactly: i) != nil }
        switch v {
        case .integer(let i):
            guard fits(i) else { throw LuaCallError("\(path) = \(i) does not fit in \(type) (\(range))") }
            return [i]
        case .number(let d):
            guard d.isFinite, d.rounded() == d else {
                throw LuaCallError("\(path) = \(LuaValue.format(d)) is not a whole number; \(type) needs integer values")
            }
            // Int64(exactly:) is nil for 2^63 and beyond (the largest double below is 2^63 - 1024).
            guard let i = Int64(exactly: d), fits(i) else {
                throw LuaCallError("\(path) = \(LuaValue.format(d)) does not fit in \(type) (\(range))")
            }
            return [i]
        case .boolean(let b): return [b ? 1 : 0]
        case .table(let t):
            var out: [Int64] = []
            for (i, x) in t.array.enumerated() { out += try integers(x, "\(path)[\(i + 1)]", int32: int32) }
            return out
        default:
            throw LuaCallError("\(path): expected numbers, got \(describe(v))")
        }
    }

    static func installFiles(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        func array(_ v: LuaValue, _ name: String, dtype: String) throws(LuaCallError) -> NpyArray {
            let (shape, values) = try Tensor.infer(v, name: name)
            do {
                switch dtype {
                case "float32": return try NpyArray(float32: try Bindings.float32(values, name), shape: shape)
                case "int64", "int32":
                    // From the Lua values themselves, not from `values` (doubles): a Lua integer above 2^53 has no
                    // exact double, so converting through one would silently change it.
                    let ints = try Bindings.integers(v, name, int32: dtype == "int32")
                    return dtype == "int64"
                        ? try NpyArray(int64: ints, shape: shape)
                        : try NpyArray(int32: ints.map { Int32(truncatingIfNeeded: $0) }, shape: shape)  // range checked
                default: return try NpyArray(float64: values, shape: shape)
                }
            } catch let e as LuaCallError { throw e } catch { throw LuaCallError("\(name): \(error)") }
        }
        func lua(_ a: NpyArray, _ name: String, alsoLive: Int = 0) throws(LuaCallError) -> LuaValue {
            // Declared size first: the array's doubles, the LuaValue tree, the push tape and the Lua tables it
            // becomes all exist before the Lua allocator sees the last of them.
            do throws(LuaCallError) {
                try rt.ensureHostCapacity(HostCost.sum(alsoLive, a.data.count, HostCost.loadedNumbers(a.count)))
            } catch {
                throw LuaCallError("\(name): \(a.count) numbers are too many to load: \(error.text)")
            }
            let values: [Double]
            do { values = try a.asFloat64() } catch { throw LuaCallError("\(name): \(error)") }
            if a.shape.isEmpty { return .number(values.first ?? .nan) }
            if a.shape.contains(0) { return .table(LuaTable()) }
            return Tensor.nested(values, shape: a.shape)
        }
        func write(_ url: URL, _ body: () throws -> Void) throws(LuaCallError) {
            do {
                try AtomicFile.createDirectory(at: url.deletingLastPathComponent())
                try body()
            } catch { throw LuaCallError("cannot write '\(url.lastPathComponent)': \(error)") }
        }
        /// Reads a file whose parsing needs `perByte` bytes of host memory per file byte (its buffers and what
        /// is parsed from them), after checking that this fits under the memory limit: nothing is read otherwise.
        func read<T>(_ url: URL, perByte: Int, _ body: () throws -> T) throws(LuaCallError) -> T {
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw LuaCallError("file '\(url.lastPathComponent)' does not exist (\(url.path))")
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            do throws(LuaCallError) { try rt.ensureHostCapacity(HostCost.product(size, perByte)) } catch {
                throw LuaCallError("'\(url.lastPathComponent)' (\(LuaRuntime.formatBytes(size))) is too large to load: \(error.text)")
            }
            do { return try body() } catch { throw LuaCallError("cannot read '\(url.lastPathComponent)': \(error)") }
        }
        let dtypes = ["float64", "float32", "int64", "int32"]
        func dtype(_ args: LuaArgs, _ i: Int) throws(LuaCallError) -> String {
            let d = try args.optionalString(i, "dtype") ?? "float64"
            guard dtypes.contains(d) else { throw args.argumentError("dtype", "expected one of \(dtypes.joined(separator: ", ")), got \"\(d)\"") }
            return d
        }
        try rt.register(module: "toymoe", functions: [
            "save_npy": { args in
                let url = try ctx.resolve(try args.string(1, "file"))
                let value = try args.value(2, "array")
                do throws(LuaCallError) { try rt.ensureHostCapacity(HostCost.savedNumbers(value)) } catch {
                    throw args.argumentError("array", "too large to save: \(error.text)")
                }
                let a = try array(value, "array", dtype: try dtype(args, 3))
                try write(url) { try a.write(to: url) }
                return []
            },
            "save_npz": { args in
                let url = try ctx.resolve(try args.string(1, "file"))
                let table = try args.table(2, "arrays")
                do throws(LuaCallError) { try rt.ensureHostCapacity(HostCost.savedNumbers(.table(table))) } catch {
                    throw args.argumentError("arrays", "too large to save: \(error.text)")
                }
                let kind = try dtype(args, 3)
                var arrays: [(String, NpyArray)] = []
                for (k, v) in table.sortedEntries {
                    guard case .string(let name) = k else { throw args.argumentError("arrays", "keys must be names, got \(k)") }
                    // A ZIP member name ("<name>.npy") has at most 65535 bytes. Refused here, quoting only the
                    // start: the archive writer's error quotes the whole name (60 MB of it took 30 s to report).
                    let bytes = name.utf8.count
                    guard bytes <= 65531 else {
                        throw args.argumentError("arrays", "an array name of \(bytes) bytes (\"\(name.prefix(32))...\"); names have at most 65531 UTF-8 bytes")
                    }
                    arrays.append((name, try array(v, name, dtype: kind)))
                }
                try write(url) { try Npz.write(arrays, to: url) }
                return []
            },
            "load_npy": { args in
                let url = try ctx.resolve(try args.string(1, "file"), .read)
                let a = try read(url, perByte: HostCost.npyReadPerByte) { try NpyArray(contentsOf: url) }
                return [try lua(a, url.lastPathComponent)]
            },
            "load_npz": { args in
                let url = try ctx.resolve(try args.string(1, "file"), .read)
                let archive = try read(url, perByte: HostCost.npzReadPerByte) { try Npz.read(contentsOf: url) }
                var t = LuaTable()
                var converted = archive.entries.reduce(0) { $0 + $1.array.data.count }  // the archive stays alive
                for (name, a) in archive.entries {
                    t.hash[.string(name)] = try lua(a, name, alsoLive: converted)
                    converted = HostCost.sum(converted, HostCost.loadedNumbers(a.count))
                }
                return [.table(t)]
            },
            "save_json": { args in
                let url = try ctx.resolve(try args.string(1, "file"))
                let value = try args.value(2, "value")
                do throws(LuaCallError) { try rt.ensureHostCapacity(HostCost.savedJSON(value)) } catch {
                    throw args.argumentError("value", "too large to save: \(error.text)")
                }
                // NaN and ±Inf are written as {"non_finite": "nan"|"inf"|"-inf"} (the encoding of every JSON file
                // the tool writes; load_json turns them back into numbers), never as null.
                let json = try ScriptRunner.resultJSON(value, "value")
                if let p = SweepSummary.taggedPath(json, "value") {
                    throw args.argumentError("value", "\(p) is a table {\(SweepSummary.nonFiniteTag) = ...}, the shape reserved for writing NaN and ±Inf (it would read back as a number); rename its key")
                }
                let encoded = SweepSummary.encodeNonFinite(json)
                try write(url) { try encoded.write(to: url) }
                return []
            },
            "load_json": { args in
                let url = try ctx.resolve(try args.string(1, "file"), .read)
                let json = try read(url, perByte: HostCost.jsonReadPerByte) { try JSONValue(contentsOf: url) }
                do throws(LuaCallError) { try rt.ensureHostCapacity(HostCost.loadedJSON(json)) } catch {
                    throw LuaCallError("'\(url.lastPathComponent)' is too large to load: \(error.text)")
                }
                return [JSONBridge.lua(SweepSummary.decodeNonFinite(json))]
            },
        ])
    }

    // MARK: Running other scripts

    /// Most `toymoe.run_script` levels one run may nest (the CLI's script is level 0).
    static let maxScriptNesting = 16

    /// `toymoe.run_script{script = "fig1_dense.lua", out = "fig1", params = {scale = "quick"}}` runs another
    /// script in a fresh state (same seed, jobs and limits) into a subdirectory of this run's output and returns
    /// its result table. Scripts are found relative to the calling script's directory and must lie under that
    /// directory's parent (the bundled `scripts/` tree): the sandbox still reads no other files. The nested run
    /// draws from this run's budget (memory, instructions, deadline), and at most `maxScriptNesting` levels nest.
    static func installRunScript(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        try rt.register(module: "toymoe", functions: [
            "run_script": { args in
                let opts = try OptionTable("toymoe.run_script", try args.table(1, "options"), known: ["script", "out", "params"])
                guard let parent = ctx.runOptions else { throw LuaCallError("not available inside a sweep's run") }
                // Each level nests a Lua state and several native frames: bound the depth before the stack is.
                guard parent.nestingDepth < maxScriptNesting else {
                    throw LuaCallError("nesting depth limit reached: \(maxScriptNesting) scripts already run inside one another (does a script run itself?)")
                }
                guard let name = opts.value("script").stringValue, name.hasSuffix(".lua"), !name.hasPrefix("/") else {
                    throw opts.fail("script", "a relative path to a .lua file", opts.value("script"))
                }
                // The scripts tree is taken from where the calling script really lies (its real path), not from the
                // path it was named by: through a symbolically linked directory, '..' would otherwise lead beside the
                // link, outside the tree the script belongs to.
                let realScript = ScriptContext.realPath(parent.script.path).map { URL(fileURLWithPath: $0) } ?? parent.script
                let here = realScript.deletingLastPathComponent().standardizedFileURL
                let allowed = here.deletingLastPathComponent().standardizedFileURL.path + "/"
                let script = here.appendingPathComponent(name).standardizedFileURL
                guard script.path.hasPrefix(allowed) else {
                    throw LuaCallError("script: '\(name)' is outside \(allowed)")
                }
                // A symbolic link on the way may not lead out of the scripts tree either.
                if let real = ScriptContext.realPath(script.path),
                    let realAllowed = ScriptContext.realPath(here.deletingLastPathComponent().path),
                    !real.hasPrefix(realAllowed == "/" ? "/" : realAllowed + "/")
                {
                    throw LuaCallError("script: '\(name)' is a symbolic link to \(real), outside \(allowed)")
                }
                guard FileManager.default.fileExists(atPath: script.path) else {
                    throw LuaCallError("script: '\(name)' does not exist (looked in \(here.path))")
                }
                guard let outName = opts.value("out").stringValue else { throw opts.fail("out", "a subdirectory name", opts.value("out")) }
                let out = try ctx.resolve(outName)
                // The nested run takes its output directory's lock: naming this run's own directory would be refused
                // as held by "another" process (this one). Say what it is instead.
                if let realOut = ScriptContext.realPath(out.path), realOut == ScriptContext.realPath(parent.out.path) {
                    throw LuaCallError("out: '\(outName)' is this run's own output directory; expected a subdirectory name for the nested run (e.g. \"fig1\")")
                }
                var params: [(String, String)] = []
                if let p = try opts.optionalTable("params") {
                    for (k, v) in p.sortedEntries {
                        guard case .string(let key) = k else { throw LuaCallError("params: keys must be names") }
                        switch v {
                        case .string(let s): params.append((key, s))
                        case .integer(let i): params.append((key, String(i)))
                        case .number(let d): params.append((key, "\(d)"))
                        case .boolean(let b): params.append((key, String(b)))
                        default: throw LuaCallError("params.\(key): expected a string, number or boolean, got \(describe(v))")
                        }
                    }
                }
                var o = parent
                o.script = script
                o.chunkName = nil
                o.out = out
                o.params = params
                o.resume = parent.resume
                o.nestingDepth = parent.nestingDepth + 1
                o.budgetParent = RuntimeLink(rt)  // one budget for the whole run: the nested script draws from this one's
                o.outerDeadline = nil
                do {
                    let outcome = try ScriptRunner.run(o)
                    ctx.nestedWarnings += outcome.parameterWarnings
                    return [outcome.result.map { JSONBridge.lua($0) } ?? .nil]
                } catch {
                    throw LuaCallError.verbatim("\(name) failed: \(error)")
                }
            }
        ])
    }

    // MARK: Sweeps

    static let sweepOptions = ["name", "grid", "cells", "order", "replicates", "select", "cost_by", "schedule", "run", "finish"]

    static func installSweep(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        try rt.register(module: "toymoe", functions: [
            "sweep": { args in
                let opts = try OptionTable("toymoe.sweep", try args.table(1, "spec"), known: sweepOptions)
                guard ctx.sweep == nil else { throw LuaCallError("a script may declare one sweep; this is the second") }
                guard let run = try opts.optionalFunction("run") else {
                    throw LuaCallError("run: required option is missing (function(cell, ctx) ... return {...} end)")
                }
                let name: String
                switch opts.value("name") {
                case .nil: name = "sweep"
                case .string(let s): name = s
                case let other: throw opts.fail("name", "a string", other)
                }
                var cells: [JSONObject] = []
                if let grid = try opts.optionalTable("grid") {
                    if opts.has("cells") { throw LuaCallError("give either grid or cells, not both") }
                    var keys: [String] = []
                    for k in grid.hash.keys {
                        guard case .string(let s) = k else { throw LuaCallError("grid: axis names must be strings, got \(k)") }
                        keys.append(s)
                    }
                    if !grid.array.isEmpty { throw LuaCallError("grid: expected axes as name = {values}, got a list") }
                    if let order = try opts.optionalTable("order") {
                        let names = order.array.compactMap { $0.stringValue }
                        guard names.count == order.array.count, Set(names) == Set(keys), names.count == keys.count else {
                            throw LuaCallError("order: expected a list naming each grid axis once (\(keys.sorted().joined(separator: ", "))), got \(order.array.map(describe).joined(separator: ", "))")
                        }
                        keys = names
                    } else {
                        keys.sort()
                    }
                    var axes: [(String, [JSONValue])] = []
                    for k in keys {
                        guard case .table(let values) = grid.hash[.string(k)]!, values.hash.isEmpty else {
                            throw LuaCallError("grid: axis '\(k)' must be a list of values")
                        }
                        var items: [JSONValue] = []
                        for v in values.array { items.append(try JSONBridge.json(v, "grid.\(k)")) }
                        axes.append((k, items))
                    }
                    cells = axes.contains { $0.1.isEmpty } ? [] : SweepSpec.grid(axes)
                } else if let list = try opts.optionalTable("cells") {
                    for (i, c) in list.array.enumerated() {
                        guard case .object(let o) = try JSONBridge.json(c, "cells[\(i + 1)]") else {
                            throw LuaCallError("cells[\(i + 1)]: expected a table of parameters, got \(describe(c))")
                        }
                        cells.append(o)
                    }
                } else {
                    throw LuaCallError("grid or cells: one of them is required")
                }
                if cells.isEmpty { throw LuaCallError("the sweep has no cells (an empty grid axis or cell list)") }
                // A parameter named like one of summary.csv's own columns would make two columns of one name.
                for (i, cell) in cells.enumerated() {
                    if let key = cell.keys.first(where: { SweepSummary.reservedParameterNames.contains($0) }) {
                        let what = opts.has("grid") ? "grid: axis '\(key)'" : "cells[\(i + 1)]: parameter '\(key)'"
                        throw LuaCallError("\(what) is reserved for summary.csv's own columns (reserved: \(SweepSummary.reservedParameterNames.joined(separator: ", "))); rename it")
                    }
                }
                if cells.count > 10_000_000 { throw LuaCallError("the sweep has \(cells.count) cells; at most 10,000,000") }
                let replicates = try opts.integer("replicates", default: 1, minimum: 1)
                guard replicates <= 10_000_000 / cells.count else {
                    throw LuaCallError("replicates: \(cells.count) cells × \(replicates) replicates exceed 10,000,000 runs")
                }
                var selection = SweepSelection.all
                switch opts.value("select") {
                case .nil, .string("all"): break
                case .table(let t):
                    let s = try OptionTable("toymoe.sweep: select", t, known: ["minimize", "maximize"])
                    if let k = s.value("minimize").stringValue, !s.has("maximize") {
                        selection = .minimize(k)
                    } else if let k = s.value("maximize").stringValue, !s.has("minimize") {
                        selection = .maximize(k)
                    } else {
                        throw LuaCallError("select: expected {minimize = key} or {maximize = key}")
                    }
                case let other: throw opts.fail("select", "\"all\", {minimize = key} or {maximize = key}", other)
                }
                // What sets a cell's cost per model-step (the ETA learns it per group) and the run order: neither
                // changes a result.
                var costBy: [String] = []
                switch opts.value("cost_by") {
                case .nil: break
                case .string(let k): costBy = [k]
                case .table(let t) where t.hash.isEmpty && !t.array.isEmpty && t.array.allSatisfy({ $0.stringValue != nil }):
                    costBy = t.array.compactMap { $0.stringValue }
                case let other: throw opts.fail("cost_by", "a parameter name or a list of them", other)
                }
                for key in costBy {
                    if let i = cells.firstIndex(where: { $0[key] == nil }) {
                        let names = cells[i].keys.sorted().joined(separator: ", ")
                        throw LuaCallError("cost_by: '\(key)' is not a parameter of cells[\(i + 1)] (its parameters: \(names))")
                    }
                }
                var schedule = SweepSpec.Schedule.spread
                switch opts.value("schedule") {
                case .nil: break
                case .string(let text) where SweepSpec.Schedule(rawValue: text) != nil: schedule = SweepSpec.Schedule(rawValue: text)!
                case let other: throw opts.fail("schedule", "\"spread\" (default) or \"declared\"", other)
                }
                ctx.sweep = SweepDeclaration(
                    spec: SweepSpec(
                        name: name, cells: cells, replicates: replicates, selection: selection, costBy: costBy,
                        schedule: schedule),
                    run: run, finish: try opts.optionalFunction("finish"))
                return []
            }
        ])
    }
}

/// Host memory the file bindings need beyond what the memory limit already counts, checked (with
/// `LuaRuntime.ensureHostCapacity`) before the buffers are made, so that a file or a table too large for the limit is
/// refused with a clean error instead of growing the process. The per-element figures are the sizes of the
/// structures involved; array growth can double them, which the factor 2 on Swift arrays covers.
enum HostCost {
    /// Per value of a LuaValue tree (Swift array of enums, growth slack included).
    static let luaValue = 2 * MemoryLayout<LuaValue>.stride
    /// Per node of the tape that pushes results into Lua (`tml_value`), growth slack included.
    static let tapeNode = 2 * MemoryLayout<tml_value>.stride
    /// Per value once in Lua (a 16-byte TValue in a table's array part, plus table headers amortized).
    static let luaSlot = 24
    /// Per JSON value parsed (enum in a Swift array or ordered object, growth slack included).
    static let jsonValue = 2 * MemoryLayout<JSONValue>.stride + 16
    /// Per byte of a Lua string converted for the host: the Swift copy and one product of it (a file's text,
    /// a rendered figure), which exist together while a host function runs.
    static let stringCopies = 2

    /// .npy: the file's bytes, the copy parsed from them and the array's payload.
    static let npyReadPerByte = 3
    /// .npz: the file's bytes, a copy, each member's payload and the array parsed from it.
    static let npzReadPerByte = 4
    /// JSON: the file's bytes, a copy, and the parsed tree. The densest JSON ("[1,1,1,...]") has one value per two
    /// bytes; strings and keys are at most their own size again.
    static let jsonReadPerByte = 2 + (jsonValue + 1) / 2

    /// Loading n numbers into Lua: doubles, the LuaValue tree, the tape, the Lua tables.
    static func loadedNumbers(_ n: Int) -> Int { product(n, 8 + luaValue + tapeNode + luaSlot) }

    /// Loading a parsed JSON tree into Lua: the tree (still alive), the LuaValue tree, the tape, the Lua tables.
    static func loadedJSON(_ json: JSONValue) -> Int {
        let (values, bytes) = measure(json)
        return sum(product(values, jsonValue + luaValue + tapeNode + luaSlot), product(bytes, 3))
    }

    /// Saving a LuaValue tree of numbers as .npy/.npz: the tree (alive), the flattened doubles (inferred
    /// twice over while nesting), the typed array, its file bytes and their copy.
    static func savedNumbers(_ value: LuaValue) -> Int {
        product(count(value).values, luaValue + 5 * 8)
    }

    /// Saving a LuaValue tree as JSON: the tree (alive), the JSON tree, and the text (at most 26 bytes per number,
    /// strings escaped at most six-fold) written through a copy.
    static func savedJSON(_ value: LuaValue) -> Int {
        let (values, bytes) = count(value)
        return sum(product(values, luaValue + jsonValue + 2 * 26), product(bytes, 2 * 6))
    }

    static func count(_ v: LuaValue) -> (values: Int, bytes: Int) {
        switch v {
        case .string(let s): return (1, s.utf8.count)
        case .table(let t):
            var total = (values: 1, bytes: 0)
            for x in t.array {
                let c = count(x)
                total = (total.values + c.values, total.bytes + c.bytes)
            }
            for (k, x) in t.hash {
                let c = count(x)
                var keyBytes = 0
                if case .string(let s) = k { keyBytes = s.utf8.count }
                total = (total.values + c.values + 1, total.bytes + c.bytes + keyBytes)
            }
            return total
        default: return (1, 0)
        }
    }

    static func measure(_ j: JSONValue) -> (values: Int, bytes: Int) {
        switch j {
        case .string(let s): return (1, s.utf8.count)
        case .array(let a):
            var total = (values: 1, bytes: 0)
            for x in a {
                let c = measure(x)
                total = (total.values + c.values, total.bytes + c.bytes)
            }
            return total
        case .object(let o):
            var total = (values: 1, bytes: 0)
            for (k, x) in o.entries {
                let c = measure(x)
                total = (total.values + c.values + 1, total.bytes + c.bytes + k.utf8.count)
            }
            return total
        default: return (1, 0)
        }
    }

    /// Saturating arithmetic: a size that overflows is simply too large.
    static func product(_ a: Int, _ b: Int) -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o || r < 0 ? Int.max : r
    }

    static func sum(_ values: Int...) -> Int {
        var total = 0
        for v in values {
            let (r, o) = total.addingReportingOverflow(v)
            if o { return Int.max }
            total = r
        }
        return total
    }
}
