import Foundation
import ToyMoE
import ToyMoEIO

extension Bindings {

    // MARK: Files (always inside the output directory, written atomically)

    static func installFiles(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        func array(_ v: LuaValue, _ name: String, dtype: String) throws(LuaCallError) -> NpyArray {
            let (shape, values) = try Tensor.infer(v, name: name)
            do {
                switch dtype {
                case "float32": return try NpyArray(float32: try Bindings.float32(values, name), shape: shape)
                case "int64", "int32":
                    guard values.allSatisfy({ $0.rounded() == $0 && abs($0) < 9.2e18 }) else {
                        throw LuaCallError("\(name): \(dtype) needs integer values")
                    }
                    if dtype == "int32", let v = values.first(where: { $0 < -2_147_483_648 || $0 > 2_147_483_647 }) {
                        throw LuaCallError("\(name): \(describe(.number(v))) does not fit in int32 (-2147483648...2147483647)")
                    }
                    return dtype == "int64"
                        ? try NpyArray(int64: values.map { Int64($0) }, shape: shape)
                        : try NpyArray(int32: values.map { Int32(clamping: Int64($0)) }, shape: shape)
                default: return try NpyArray(float64: values, shape: shape)
                }
            } catch let e as LuaCallError { throw e } catch { throw LuaCallError("\(name): \(error)") }
        }
        func lua(_ a: NpyArray, _ name: String) throws(LuaCallError) -> LuaValue {
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
        func read<T>(_ url: URL, _ body: () throws -> T) throws(LuaCallError) -> T {
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw LuaCallError("file '\(url.lastPathComponent)' does not exist (\(url.path))")
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
                let a = try array(try args.value(2, "array"), "array", dtype: try dtype(args, 3))
                try write(url) { try a.write(to: url) }
                return []
            },
            "save_npz": { args in
                let url = try ctx.resolve(try args.string(1, "file"))
                let table = try args.table(2, "arrays")
                let kind = try dtype(args, 3)
                var arrays: [(String, NpyArray)] = []
                for (k, v) in table.sortedEntries {
                    guard case .string(let name) = k else { throw args.argumentError("arrays", "keys must be names, got \(k)") }
                    arrays.append((name, try array(v, name, dtype: kind)))
                }
                try write(url) { try Npz.write(arrays, to: url) }
                return []
            },
            "load_npy": { args in
                let url = try ctx.resolve(try args.string(1, "file"), .read)
                let a = try read(url) { try NpyArray(contentsOf: url) }
                return [try lua(a, url.lastPathComponent)]
            },
            "load_npz": { args in
                let url = try ctx.resolve(try args.string(1, "file"), .read)
                let archive = try read(url) { try Npz.read(contentsOf: url) }
                var t = LuaTable()
                for (name, a) in archive.entries { t.hash[.string(name)] = try lua(a, name) }
                return [.table(t)]
            },
            "save_json": { args in
                let url = try ctx.resolve(try args.string(1, "file"))
                let json = try JSONBridge.json(try args.value(2, "value"), "value")
                try write(url) { try json.write(to: url) }
                return []
            },
            "load_json": { args in
                let url = try ctx.resolve(try args.string(1, "file"), .read)
                let json = try read(url) { try JSONValue(contentsOf: url) }
                return [JSONBridge.lua(json)]
            },
        ])
    }

    // MARK: Running other scripts

    /// `toymoe.run_script{script = "fig1_dense.lua", out = "fig1", params = {scale = "quick"}}` runs another
    /// script in a fresh state (same seed, jobs and limits) into a subdirectory of this run's output and returns
    /// its result table. Scripts are found relative to the calling script's directory and must lie under that
    /// directory's parent (the bundled `scripts/` tree): the sandbox still reads no other files.
    static func installRunScript(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        try rt.register(module: "toymoe", functions: [
            "run_script": { args in
                let opts = try OptionTable("toymoe.run_script", try args.table(1, "options"), known: ["script", "out", "params"])
                guard let parent = ctx.runOptions else { throw LuaCallError("not available inside a sweep's run") }
                guard let name = opts.value("script").stringValue, name.hasSuffix(".lua"), !name.hasPrefix("/") else {
                    throw opts.fail("script", "a relative path to a .lua file", opts.value("script"))
                }
                let here = parent.script.deletingLastPathComponent().standardizedFileURL
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
                do {
                    let outcome = try ScriptRunner.run(o)
                    return [outcome.result.map { JSONBridge.lua($0) } ?? .nil]
                } catch {
                    throw LuaCallError.verbatim("\(name) failed: \(error)")
                }
            }
        ])
    }

    // MARK: Sweeps

    static let sweepOptions = ["name", "grid", "cells", "order", "replicates", "select", "run", "finish"]

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
                ctx.sweep = SweepDeclaration(
                    spec: SweepSpec(name: name, cells: cells, replicates: replicates, selection: selection), run: run,
                    finish: try opts.optionalFunction("finish"))
                return []
            }
        ])
    }
}
