import Foundation
import ToyMoE
import ToyMoEIO

/// Everything `toymoe run` needs to run a script.
public struct ScriptRunOptions: Sendable {
    public var script: URL
    /// Script name in messages (`name:line:`); default the file name.
    public var chunkName: String?
    public var params: [(String, String)]
    public var out: URL
    public var seed: UInt64
    public var jobs: Int
    public var resume: Bool
    public var shard: (index: Int, count: Int)
    public var quiet: Bool
    /// Bytes, counting model buffers: for the top level together with the scripts it runs (`toymoe.run_script`),
    /// and for each sweep cell.
    public var memoryLimit: Int
    /// Seconds per phase (top level, each sweep cell); 0: none.
    public var timeLimit: Double
    /// Lua instructions per phase; 0: none.
    public var instructionLimit: UInt64
    public var commandLine: [String]
    /// Continue a sweep (`--resume`) even when sweep.json records another declaration or fingerprint.
    public var allowMismatch: Bool = false
    /// Receives the script's `print` lines (default: standard output unless quiet). Called on worker threads too.
    public var printSink: (@Sendable (String) -> Void)?
    /// Where progress goes (`--quiet`, `--progress-interval`); nil: `ProgressReporter(quiet: quiet)`. Scripts run
    /// with `toymoe.run_script` inherit it, so the process keeps one display.
    public var progress: ProgressReporter?
    /// Read-only input directories (`--input NAME=DIR`): the script reads `NAME/...` from DIR with
    /// `toymoe.load_*` and can never write there. NAME is a simple identifier (`isInputName`).
    public var inputs: [String: URL] = [:]
    /// `toymoe run --strict`: a `KEY=VALUE` parameter the script never reads is an error, not a warning. A key the
    /// source does not mention at all is refused before anything runs; one that is mentioned but was not read,
    /// after the run (its files are written; the exit status says it failed). See `ParameterCheck`.
    public var strictParameters = false

    /// True for a valid input NAME: a letter or `_`, then letters, digits or `_` (at most 64 ASCII characters).
    public static func isInputName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        func letter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F }
        guard let first = b.first, letter(first), b.count <= 64 else { return false }
        return b.allSatisfy { letter($0) || (0x30...0x39).contains($0) }
    }

    /// How many `toymoe.run_script` calls enclose this run (0 for a run started by the CLI).
    var nestingDepth = 0
    /// The runtime of the script that started this one with `toymoe.run_script`: this run's states draw from its
    /// budget (memory, instructions, deadline). nil for a run started by the CLI.
    var budgetParent: RuntimeLink?
    /// For a sweep declared by a nested script: the deadline of the run that started it (`tml_now()` seconds and
    /// the limit as given), which bounds every cell besides the cell's own limit.
    var outerDeadline: (deadline: Double, seconds: Double)?
    /// The parameters this run's states read (created by `ScriptRunner.run`, shared with its sweep workers).
    var parameterReads: ParameterReads?

    public init(
        script: URL, chunkName: String? = nil, params: [(String, String)] = [], out: URL, seed: UInt64 = 0,
        jobs: Int = 1, resume: Bool = false, shard: (index: Int, count: Int) = (0, 1), quiet: Bool = false,
        memoryLimit: Int = 2048 << 20, timeLimit: Double = 0, instructionLimit: UInt64 = 0,
        commandLine: [String] = [], printSink: (@Sendable (String) -> Void)? = nil
    ) {
        self.script = script
        self.chunkName = chunkName
        self.params = params
        self.out = out
        self.seed = seed
        self.jobs = jobs
        self.resume = resume
        self.shard = shard
        self.quiet = quiet
        self.memoryLimit = memoryLimit
        self.timeLimit = timeLimit
        self.instructionLimit = instructionLimit
        self.commandLine = commandLine
        self.printSink = printSink
    }
}

/// Carries a runtime into `ScriptRunOptions` (which is Sendable): only the thread running that runtime reads it.
final class RuntimeLink: @unchecked Sendable {
    weak var runtime: LuaRuntime?
    init(_ runtime: LuaRuntime) { self.runtime = runtime }
}

/// A script failed: the Lua error (`file:line: message` and traceback) or a host-side problem.
public struct ScriptRunError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// What a finished run did.
public struct ScriptRunOutcome {
    public var outputDirectory: URL
    public var result: JSONValue?
    public var sweepComplete: Bool?
    public var message: String
    /// Failed (diverged) replicates of this shard's cells, including cells finished by an earlier run.
    public var failures: [SweepFailureRecord] = []
    /// Result keys left out of results.npz, one message each (printed by `toymoe run`, also with --quiet).
    public var warnings: [String] = []
    /// Parameters the script (or a script it ran) never read, one message each; also in `warnings`.
    public var parameterWarnings: [String] = []
}

/// Runs scripts: the top level in one Lua state, then the declared sweep on worker states.
public enum ScriptRunner {

    /// Creates a sandboxed runtime with the `toymoe` bindings.
    static func makeRuntime(_ o: ScriptRunOptions, _ ctx: ScriptContext) throws -> LuaRuntime {
        var options = LuaRuntime.Options(
            memoryLimit: o.memoryLimit, instructionLimit: o.instructionLimit == 0 ? nil : o.instructionLimit,
            timeLimit: o.timeLimit > 0 ? o.timeLimit : nil, seed: o.seed)
        options.seed = o.seed
        let rt = try LuaRuntime(options: options)
        if let sink = o.printSink {
            rt.printHandler = sink
        } else if o.quiet {
            rt.printHandler = { _ in }
        } else {
            let progress = ctx.progress
            rt.printHandler = { line in
                progress?.clearForOutput()  // a bar on the same terminal would share the line
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        }
        ctx.inputs = o.inputs
        ctx.parameterReads = o.parameterReads
        try Bindings.install(rt, ctx)
        return rt
    }

    /// Largest script accepted (a script is code, not data).
    static let maxScriptBytes = 16 << 20

    /// Reads a script as UTF-8 text, saying what is wrong and where when it cannot: missing, a directory, a FIFO
    /// or device (never opened: opening a FIFO would block), unreadable (the OS reason), too large, or not UTF-8
    /// (the offset of the first invalid byte).
    static func readScript(_ url: URL) throws -> String {
        let path = url.path
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT { throw ScriptRunError("script '\(path)' does not exist") }
            throw ScriptRunError("cannot read script '\(path)': \(String(cString: strerror(code))) (errno \(code))")
        }
        let kind: String?
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = nil
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a FIFO (named pipe)"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        case S_IFSOCK: kind = "a socket"
        default: kind = "not a regular file"
        }
        if let kind { throw ScriptRunError("script '\(path)' is \(kind); expected a Lua source file") }
        guard Int(st.st_size) <= maxScriptBytes else {
            throw ScriptRunError("script '\(path)' is \(st.st_size) bytes; a script may have at most \(maxScriptBytes) bytes")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw ScriptRunError("cannot read script '\(path)': \(String(cString: strerror(code))) (errno \(code))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw ScriptRunError("cannot read script '\(path)': \(String(cString: strerror(code))) (errno \(code))")
            }
            if n == 0 { break }
            bytes += chunk[..<n]
            if bytes.count > maxScriptBytes {
                throw ScriptRunError("script '\(path)' has more than \(maxScriptBytes) bytes")
            }
        }
        if let offset = firstInvalidUTF8(bytes) {
            throw ScriptRunError(
                "script '\(path)' is not UTF-8 text: byte 0x\(String(bytes[offset], radix: 16, uppercase: true)) at offset \(offset) is not valid UTF-8 (save the script as UTF-8)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The offset of the first byte that does not belong to a valid UTF-8 sequence (RFC 3629: no overlong forms,
    /// no surrogates, nothing above U+10FFFF), or nil when all of `bytes` is valid.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let (count, low, high): (Int, UInt8, UInt8)
            switch b {
            case 0xC2...0xDF: (count, low, high) = (1, 0x80, 0xBF)
            case 0xE0: (count, low, high) = (2, 0xA0, 0xBF)
            case 0xE1...0xEC, 0xEE...0xEF: (count, low, high) = (2, 0x80, 0xBF)
            case 0xED: (count, low, high) = (2, 0x80, 0x9F)
            case 0xF0: (count, low, high) = (3, 0x90, 0xBF)
            case 0xF1...0xF3: (count, low, high) = (3, 0x80, 0xBF)
            case 0xF4: (count, low, high) = (3, 0x80, 0x8F)
            default: return i
            }
            // The second byte has the lead's range; later ones are plain continuation bytes.
            guard i + count < bytes.count, (low...high).contains(bytes[i + 1]) else { return i }
            var k = 2
            while k <= count {
                guard (0x80...0xBF).contains(bytes[i + k]) else { return i }
                k += 1
            }
            i += count + 1
        }
        return nil
    }

    public static func run(_ given: ScriptRunOptions) throws -> ScriptRunOutcome {
        var o = given
        let reads = ParameterReads()
        o.parameterReads = reads
        let chunk = o.chunkName ?? o.script.lastPathComponent
        let source = try readScript(o.script)
        // --strict: a key the source never mentions cannot be read by any phase; refuse it before any work.
        if o.strictParameters {
            let unmentioned = ParameterCheck.unmentioned(params: o.params, source: source)
            if !unmentioned.isEmpty {
                let lines = ParameterCheck.messages(
                    unread: unmentioned, reads: [], source: source, verb: "is not mentioned in \(chunk)")
                throw ScriptRunError(
                    "--strict: " + lines.joined(separator: "; ") + "; nothing was run (without --strict this is a warning)")
            }
        }
        do {
            try AtomicFile.createDirectory(at: o.out)
        } catch {
            throw ScriptRunError("cannot write to output directory '\(o.out.path)': \(error)")
        }
        // One process at a time per output directory (released by the kernel however this process ends).
        let lock: OutputLock
        do { lock = try OutputLock(directory: o.out, commandLine: o.commandLine) } catch {
            throw ScriptRunError("\(error)")
        }
        defer { withExtendedLifetime(lock) {} }
        // A directory holding a sweep of another script, parameters, seed, version or kernel variant is refused
        // before anything is written: script.lua, config.json and result.json must keep describing its cells.
        // (The declaration itself, known once the top level has run, is compared by SweepRunner.)
        let fingerprint = SweepFingerprint(script: source, params: o.params)
        let specFile = SweepLayout(root: o.out).specFile
        if !o.allowMismatch, case .object(let existing)? = try? JSONValue(contentsOf: specFile) {
            var now = existing
            now["seed"] = .string(String(o.seed))
            now["fingerprint"] = fingerprint.json
            let differences = SweepFingerprint.differences(.object(existing), .object(now))
            if !differences.isEmpty {
                throw ScriptRunError(
                    "\(o.out.path) holds a sweep of another run; continuing it would mix results computed differently. Differences (recorded vs now):\n  "
                        + differences.joined(separator: "\n  ")
                        + "\nUse another --out, or pass --allow-mismatch to mix them anyway (recorded in sweep.json).")
            }
        }
        do {
            try AtomicFile.write(source, to: o.out.appendingPathComponent("script.lua"))
        } catch {
            throw ScriptRunError("cannot write to output directory '\(o.out.path)': \(error)")
        }
        var provenance = Provenance.start(
            tool: "toymoe run", seed: o.seed, kernelVariant: KernelVariant.current, commandLine: o.commandLine,
            extra: ["script": scriptRecord(o, source)])

        // Phase 1: the top level.
        let progress = o.progress ?? ProgressReporter(quiet: o.quiet)
        o.progress = progress
        let ctx = ScriptContext(outputDirectory: o.out, runSeed: o.seed, params: o.params, isWorker: false)
        ctx.progress = progress
        ctx.runOptions = o
        var result: JSONValue?
        do {
            let rt = try makeRuntime(o, ctx)
            // Bindings capture their runtime, so it never deinitializes by itself: close its state when the run
            // ends (a nested script's memory goes back to the shared budget right away).
            defer { rt.close() }
            if let parent = o.budgetParent {
                guard let p = parent.runtime else { throw ScriptRunError("the script that started this one has ended") }
                try rt.shareBudget(with: p)
            }
            let values = try rt.run(string: source, chunkName: chunk)
            result = try Self.topLevelResult(values.first, "the script's return value")
            if let result { try Self.writeResult(result, o.out) }
            try writeConfig(o, ctx, source)
            // Phase 2: the sweep, on fresh states (one per worker thread).
            var complete: Bool? = nil
            var failures: [SweepFailureRecord] = []
            var finalResult: JSONValue? = nil
            var summaryWarnings: [String] = []
            var finishRan = false
            if let declared = ctx.sweep {
                declared.run.release()
                let runner = try SweepRunner(
                    spec: declared.spec, root: o.out, seed: o.seed, jobs: o.jobs, shard: o.shard, resume: o.resume,
                    progress: progress, fingerprint: fingerprint,
                    allowMismatch: o.allowMismatch)
                var workerOptions = o
                if o.budgetParent != nil {
                    // A nested script's sweep is part of the run that started it: its workers share what is left of
                    // that run's memory limit, and its deadline bounds every cell.
                    workerOptions.memoryLimit = max(0, rt.memoryLimit - rt.budgetMemoryUsed) / max(1, o.jobs)
                    workerOptions.outerDeadline = rt.deadlineBound
                }
                complete = try runner.run { [workerOptions] w in
                    try LuaSweepWorker(options: workerOptions, source: source, chunk: chunk, runner: runner, slot: w)
                }
                failures = runner.failures()
                summaryWarnings = runner.summaryWarnings
                // Phase 3: the script's `finish(rows)` on the main state, once every cell (of every shard) is done.
                if complete == true, let finish = declared.finish {
                    let rows = try sweepRows(declared.spec, SweepLayout(root: o.out))
                    ctx.fileRoot = o.out
                    try rt.resetValueNames()  // as in each cell: names in finish do not depend on the top level's
                    let out = try callFinish(rt, finish, rows, keepsAll: declared.spec.selection == .all)
                    finishRan = true
                    finish.release()
                    if let json = try Self.topLevelResult(out.first, "finish's return value") {
                        try Self.writeResult(json, o.out)
                        finalResult = json
                    }
                }
            }
            if let finalResult { result = finalResult }
            // Parameters never read: after every phase of this invocation ran (a warning only: stderr, no file).
            let unobserved = ctx.sweep.map { !reads.anyCellRun || ($0.finish != nil && !finishRan) } ?? false
            let unread = ParameterCheck.unread(
                params: o.params, reads: reads.read, source: source, unobservedPhases: unobserved)
            let parameterWarnings = ParameterCheck.messages(
                unread: unread, reads: reads.read, source: source,
                verb: o.nestingDepth == 0
                    ? "was never read by the script" : "was never read by \(chunk) (given by toymoe.run_script)")
                + ctx.nestedWarnings
            if o.strictParameters, !unread.isEmpty {
                throw ScriptRunError(
                    "--strict: " + parameterWarnings.prefix(unread.count).joined(separator: "; ")
                        + " (the run's files are in \(o.out.path); without --strict this is a warning)")
            }
            provenance.finish()
            try provenance.toJSON().write(to: o.out.appendingPathComponent("provenance.json"))
            var message = "results in \(o.out.path)/"
            if let complete {
                message += complete
                    ? " (sweep complete: summary.csv, results.npz)"
                    : " (shard \(o.shard.index)/\(o.shard.count) done; run the other shards, then `toymoe merge`)"
            }
            if !failures.isEmpty {
                message += "\n\(failures.count) replicate(s) failed (recorded in cells/*.json `failures`, summary.csv `status`):"
                for f in failures.prefix(20) { message += "\n  " + f.description }
                if failures.count > 20 { message += "\n  ... (\(failures.count - 20) more)" }
            }
            return ScriptRunOutcome(
                outputDirectory: o.out, result: result, sweepComplete: complete, message: message, failures: failures,
                warnings: summaryWarnings + parameterWarnings, parameterWarnings: parameterWarnings)
        } catch let e as LuaError {
            throw ScriptRunError(e.description)
        } catch let e as LuaCallError {
            throw ScriptRunError(e.description)
        } catch let e as SweepError {
            throw ScriptRunError(e.description)
        } catch let e as ScriptRunError {
            throw e
        } catch {
            throw ScriptRunError("\(error)")
        }
    }

    /// Which file ran: `{path (absolute, resolved), sha256 (of the source text that ran), bytes}`. The copy
    /// script.lua in the output directory has the same hash.
    static func scriptRecord(_ o: ScriptRunOptions, _ source: String) -> JSONValue {
        let path = o.script.standardizedFileURL.resolvingSymlinksInPath().path
        return ["path": .string(path), "sha256": .string(SHA256.hex(Array(source.utf8))), "bytes": .int(source.utf8.count)]
    }

    /// config.json: the parameters, the run options and the resolved configuration of every top-level training.
    static func writeConfig(_ o: ScriptRunOptions, _ ctx: ScriptContext, _ source: String) throws {
        var params = JSONObject()
        for (k, v) in o.params { params[k] = .string(v) }
        let config: JSONValue = .object([
            "script": .string(o.script.lastPathComponent), "script_file": scriptRecord(o, source), "params": .object(params), "seed": .string(String(o.seed)),
            "jobs": .int(o.jobs), "shard": .string("\(o.shard.index)/\(o.shard.count)"),
            "memory_limit_bytes": .int(o.memoryLimit), "time_limit_seconds": .number(o.timeLimit),
            "instruction_limit": .string(String(o.instructionLimit)), "kernel_variant": .string(KernelVariant.current),
            "trainings": .array(ctx.trainings),
        ])
        var written = config
        if !o.inputs.isEmpty, case .object(var object) = config {
            // Where the read-only inputs came from (only when given, so other runs' config.json is unchanged).
            object["inputs"] = .object(JSONObject(o.inputs.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value.path)) }))
            written = .object(object)
        }
        try written.write(to: o.out.appendingPathComponent("config.json"))
    }
}

extension ScriptRunner {
    /// Calls the script's `finish(rows)` with every row given a metatable (`finishRowsWrapper`) that turns a read
    /// of a field a row does not have into an error saying where that information is, instead of a nil that fails
    /// later far away (`attempt to index a nil value (field 'result')`). The rows' own fields are untouched:
    /// `pairs`, `rawget`, printing and saving see exactly the plain tables.
    static func callFinish(_ rt: LuaRuntime, _ finish: LuaFunctionRef, _ rows: LuaValue, keepsAll: Bool) throws -> [LuaValue] {
        guard case .function(let wrapper)? = try rt.run(string: finishRowsWrapper, chunkName: "=finish").first else {
            return try rt.call(finish, [rows])
        }
        defer { wrapper.release() }
        return try rt.call(wrapper, [.function(finish), rows, .boolean(keepsAll)])
    }

    /// Lua, so that the errors are raised by Lua code (never across a Swift frame) at the script's line (level 2).
    static let finishRowsWrapper = """
        local setmetatable, error, concat = setmetatable, error, table.concat
        return function(finish, rows, keepsAll)
          local fields = "id, index, cell, result, selected, dir, dirs, replicates, failures"
          local kept = {
            result = "row.result is nil: this sweep keeps every replicate (select = \\"all\\"): use row.replicates[i] (replicate i's results, i = 1..#row.replicates)",
            selected = "row.selected is nil: this sweep keeps every replicate (select = \\"all\\"): there is no selected replicate; use row.replicates[i]",
            dir = "row.dir is nil: this sweep keeps every replicate (select = \\"all\\"): use row.dirs[i] (replicate i's directory)",
          }
          local mistakes = {
            results = "use row.replicates (every replicate's results) or row.result (the kept replicate's, with select = {minimize|maximize = key})",
            params = "use row.cell (the cell's parameters)", parameters = "use row.cell (the cell's parameters)",
            cell_id = "use row.id", replicate = "use row.replicates[i] or row.selected", failed = "use row.failures",
            directory = "use row.dir or row.dirs[i]", seed = "rows do not carry seeds; return ctx.seed from run if you need it",
          }
          local mt = {
            __index = function(_, key)
              if kept[key] ~= nil then
                if keepsAll then error(kept[key], 2) end
                return nil
              end
              local hint = mistakes[key]
              error("finish: a row has no field '" .. tostring(key) .. "'" .. (hint and (": " .. hint) or "")
                    .. " (a row has: " .. fields .. ")", 2)
            end,
          }
          for i = 1, #rows do setmetatable(rows[i], mt) end
          return finish(rows)
        end
        """

    /// What the top level (or `finish`) returned, as result.json's value: nil when it returned nothing (no
    /// result.json); a table, number, string or boolean as it is (JSON allows a bare value); anything else (a
    /// function, a model or another handle) is an error naming it, rather than a run that silently saved nothing.
    static func topLevelResult(_ value: LuaValue?, _ what: String) throws -> JSONValue? {
        guard let value else { return nil }
        switch value {
        case .nil: return nil
        case .userdata, .function:
            throw ScriptRunError(
                "\(what) is \(describe(value)), which cannot be saved as result.json: return a table of numbers, strings and booleans (or nothing)")
        default:
            do { return try resultJSON(value, what) } catch { throw ScriptRunError(error.description) }
        }
    }

    /// Writes result.json, NaN and ±Inf as `{"non_finite": ...}` like every JSON file of the tool.
    static func writeResult(_ result: JSONValue, _ out: URL) throws {
        try SweepSummary.encodeNonFinite(result).write(to: out.appendingPathComponent("result.json"))
    }

    /// A result value as JSON, keeping NaN and ±Inf as numbers (the host stores them tagged; `JSONBridge` would
    /// make them null) and naming the offending path in errors (`run's result key 'f'[2]`).
    static func resultJSON(_ v: LuaValue, _ path: String, depth: Int = 0) throws(LuaCallError) -> JSONValue {
        if depth > 64 { throw LuaCallError("\(path): nesting deeper than 64 levels") }
        switch v {
        case .number(let d) where !d.isFinite: return .number(d)
        case .table(let t):
            if t.hash.isEmpty && !t.array.isEmpty {
                var items: [JSONValue] = []
                for (i, x) in t.array.enumerated() { items.append(try resultJSON(x, "\(path)[\(i + 1)]", depth: depth + 1)) }
                return .array(items)
            }
            if t.isEmpty { return .array([]) }
            var o = JSONObject()
            for (k, x) in t.sortedEntries { o[k.description] = try resultJSON(x, "\(path).\(k.description)", depth: depth + 1) }
            return .object(o)
        case .userdata, .function:
            throw LuaCallError("\(path): cannot store \(describe(v)) (a result holds only numbers, booleans, strings and tables of them)")
        default:
            return try JSONBridge.json(v, path, depth: depth)
        }
    }

    /// The finished sweep as a Lua list, one row per cell in cell order:
    /// `{id, index, cell = {params}, result = {kept replicate} (nil with select = "all"), replicates = {{...}, ...},
    /// failures = {{replicate, step, reason}, ...}, dirs = {per replicate}, dir = kept replicate's (nil with "all")}`.
    /// Lua counts from 1: `index`, `selected`, failures' `replicate` and `step` are 1-based; `dirs[r]` is replicate
    /// r's directory relative to the output directory (`cells/<id>/r<r-1>`, the files' own 0-based name).
    static func sweepRows(_ spec: SweepSpec, _ layout: SweepLayout) throws -> LuaValue {
        var rows: [LuaValue] = []
        for index in spec.cells.indices {
            let id = spec.cellID(index)
            let cell = try JSONValue(contentsOf: layout.cellFile(id))
            var row = LuaTable()
            row.hash[.string("id")] = .string(id)
            row.hash[.string("index")] = .integer(Int64(index + 1))
            row.hash[.string("cell")] = JSONBridge.lua(.object(spec.cells[index]))
            let reps = (cell["replicates"]?.arrayValue ?? []).map(SweepSummary.decodeNonFinite)
            row.hash[.string("dirs")] = .table(LuaTable(array: reps.indices.map { .string(SweepLayout.replicatePath(id, $0)) }))
            row.hash[.string("replicates")] = .table(LuaTable(array: reps.map { JSONBridge.lua($0) }))
            // Failed (diverged) replicates: {replicate (1-based), step, reason}; empty when none failed.
            row.hash[.string("failures")] = .table(LuaTable(array: SweepSummary.failureRecords(cell, id: id).map { f in
                .table(LuaTable(hash: [
                    .string("replicate"): .integer(Int64(f.replicate + 1)), .string("step"): .integer(Int64(f.step + 1)),
                    .string("reason"): .string(f.reason),
                ]))
            }))
            if let sel = cell["selected"]?.intValue, sel < reps.count {
                row.hash[.string("result")] = JSONBridge.lua(reps[sel])
                row.hash[.string("selected")] = .integer(Int64(sel + 1))
                row.hash[.string("dir")] = .string(SweepLayout.replicatePath(id, sel))
            }
            rows.append(.table(row))
        }
        return .table(LuaTable(array: rows))
    }
}

/// A sweep worker: its own Lua state on its own thread, having run the script's top level (so `run` and its
/// upvalues exist), then calling `run(cell, ctx)` per cell with the cell's seed as the context seed.
final class LuaSweepWorker: SweepWorker {
    let runtime: LuaRuntime
    let context: ScriptContext
    let run: LuaFunctionRef
    let cellBudget: LuaBudget

    init(options o: ScriptRunOptions, source: String, chunk: String, runner: SweepRunner, slot: Int = 0) throws {
        context = ScriptContext(outputDirectory: o.out, runSeed: o.seed, params: o.params, isWorker: true)
        runtime = try ScriptRunner.makeRuntime(o, context)
        if let outer = o.outerDeadline { runtime.bound(deadline: outer.deadline, seconds: outer.seconds) }
        try runtime.run(string: source, chunkName: chunk)
        guard let declared = context.sweep else {
            throw ScriptRunError("\(chunk): the script declared a sweep at top level but not when run as a worker (is toymoe.sweep guarded by toymoe.is_worker?)")
        }
        run = declared.run
        // The cells' trainings feed the sweep's display; the worker's own pass over the top level (above) does not:
        // the sweep's model-steps are its cells'.
        context.progress = runner.progress
        context.progressSlot = slot
        context.onSteps = { [weak runner] n in runner?.addSteps(n) }
        context.trainThreads = max(1, LockstepTrainer.defaultThreads / max(1, o.jobs))
        cellBudget = LuaBudget(
            instructions: o.instructionLimit == 0 ? nil : o.instructionLimit, seconds: o.timeLimit > 0 ? o.timeLimit : nil)
    }

    deinit {
        run.release()
        runtime.close()  // the bindings capture the runtime: without this its state would outlive the worker
    }


    func run(params: JSONObject, context cell: CellContext) throws -> JSONObject {
        context.parameterReads?.noteCellRun()
        // Every draw inside the cell derives from the cell's seed: models, data, math.random.
        context.begin(seed: cell.seed)
        context.fileRoot = cell.directory
        context.progress?.replicateStarted(slot: context.progressSlot)
        runtime.random = RandomStream(seed: cell.seed, path: [LuaRuntime.randomStreamTag])
        // Value names ("table: #N") count from 1 in each cell, whichever cells this worker ran before.
        do { try runtime.resetValueNames() } catch {
            throw ScriptRunError("sweep cell \(cell.cellID) (replicate \(cell.replicate + 1)): \(error.description)")
        }
        var cellTable = LuaTable()
        for (k, v) in params.entries { cellTable.hash[.string(k)] = JSONBridge.lua(v) }
        let info = LuaTable(hash: [
            .string("cell_id"): .string(cell.cellID), .string("index"): .integer(Int64(cell.index + 1)),
            .string("replicate"): .integer(Int64(cell.replicate + 1)),
            .string("seed"): .integer(Int64(bitPattern: cell.seed)),
        ])
        let out: [LuaValue]
        do {
            out = try runtime.call(run, [.table(cellTable), .table(info)], budget: cellBudget)
        } catch {
            // An error after a diverged training (e.g. a metric of a NaN model) is part of that failure.
            if let d = context.divergence { throw SweepCellFailure(step: d.step - 1, reason: d.reason) }
            throw ScriptRunError("sweep cell \(cell.cellID) replicate \(cell.replicate): \(error.description)")
        }
        let results: JSONObject
        let whereText = "sweep cell \(cell.cellID) replicate \(cell.replicate)"  // 0-based, like every file and message outside Lua
        switch out.first {
        case .table(let t)? where t.isEmpty:
            results = JSONObject()
        case .table(let t)?:
            guard !(t.hash.isEmpty && !t.array.isEmpty) else {
                throw ScriptRunError("\(whereText): run must return a table of named results, got a list")
            }
            var o = JSONObject()
            do {
                for (k, v) in t.sortedEntries {
                    let key = k.description
                    o[key] = try ScriptRunner.resultJSON(v, "run's result key '\(key)'")
                }
            } catch {
                throw ScriptRunError("\(whereText): \(error.description)")
            }
            results = o
        case .nil?, nil:
            results = JSONObject()
        case let other?:
            throw ScriptRunError("\(whereText): run must return a table of results, got \(describe(other))")
        }
        // A training of this replicate diverged: the replicate is recorded as failed (with what it returned).
        // The Lua step is 1-based; files count from 0.
        if let d = context.divergence { throw SweepCellFailure(step: d.step - 1, reason: d.reason, results: results) }
        return results
    }
}
