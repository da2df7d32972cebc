import Foundation
import ToyMoE
import ToyMoEIO

/// The state a script's bindings share: where files go, which seed names the current draws, and what the script
/// declared. One per Lua state.
final class ScriptContext {
    let outputDirectory: URL
    let runSeed: UInt64
    let params: [(String, String)]
    let isWorker: Bool
    /// The seed of the current phase: the run seed at top level, the cell's seed inside a sweep's `run`.
    var contextSeed: UInt64
    /// Models and trainings created in the current phase (they name implicit seeds).
    var modelCounter: UInt64 = 0
    var trainCounter: UInt64 = 0
    /// Where relative file names resolve (the output directory, or a cell's directory in a sweep).
    var fileRoot: URL
    /// The sweep the script declared, if any.
    var sweep: SweepDeclaration?
    /// Resolved configurations of the trainings run at top level (for config.json).
    var trainings: [JSONValue] = []
    /// Called with the number of steps each training ran (sweep progress).
    var onSteps: ((Int) -> Void)?
    /// The process's progress display and this state's worker slot in it (0 at top level): trainings declare
    /// their model-steps and report them in strides.
    var progress: ProgressReporter?
    var progressSlot = 0
    /// The options this script runs under (for `toymoe.run_script`); nil in workers.
    var runOptions: ScriptRunOptions?
    /// The first training of the current phase whose loss became NaN or ±Inf: 1-based step and reason.
    /// A sweep worker turns it into a failed (diverged) replicate.
    var divergence: (step: Int, reason: String)?

    /// Records a training's divergence as the phase's first one (1-based step), if it diverged and none was yet.
    func noteDivergence(_ result: TrainingResult) {
        if let d = result.divergence, divergence == nil { divergence = (d.step + 1, d.reason) }
    }
    /// toymoe.train_many's default thread count: every core at top level; in a sweep worker the cores divided by
    /// the sweep's jobs (the jobs already run cells in parallel). Results do not depend on it.
    var trainThreads = LockstepTrainer.defaultThreads
    /// Where `toymoe.param` records the keys it is asked for (nil: not recorded).
    var parameterReads: ParameterReads?
    /// Warnings of the scripts this one ran with `toymoe.run_script` (unread parameters), reported with its own.
    var nestedWarnings: [String] = []

    init(outputDirectory: URL, runSeed: UInt64, params: [(String, String)], isWorker: Bool) {
        self.outputDirectory = outputDirectory
        self.runSeed = runSeed
        self.params = params
        self.isWorker = isWorker
        self.contextSeed = runSeed
        self.fileRoot = outputDirectory
    }

    /// Starts a phase with its own seed: counters reset, so the phase's numbers depend on nothing else.
    func begin(seed: UInt64) {
        contextSeed = seed
        modelCounter = 0
        trainCounter = 0
        divergence = nil
    }

    /// The seed of the next implicitly seeded model.
    func nextModelSeed() -> UInt64 {
        modelCounter += 1
        var r = RandomStream(seed: contextSeed, path: [0x4D4F_4445_4C, modelCounter])  // "MODEL"
        return r.next()
    }

    /// The seed of the next training's data stream.
    func nextTrainSeed() -> UInt64 {
        trainCounter += 1
        var r = RandomStream(seed: contextSeed, path: [0x5452_4149_4E, trainCounter])  // "TRAIN"
        return r.next()
    }

    /// Read-only input directories (`toymoe run --input NAME=DIR`): a file name `NAME/...` reads from DIR.
    var inputs: [String: URL] = [:]

    /// What a script wants to do with a file name.
    enum FileAccess {
        /// Create or replace: only inside the current file root (inside the output directory).
        case write
        /// Read a file of this run: inside the current file root only (e.g. a figure a report links to).
        case readOutput
        /// Read: inside the current file root, or `NAME/...` inside a read-only input.
        case read
    }

    /// Resolves a script-given file name inside the output directory (under `fileRoot`), or for reads inside a
    /// read-only input (`NAME/...`). Absolute paths, `..`, empty components and NUL are refused by spelling; then
    /// every component that already exists is checked on disk: a symbolic link is followed only when its real
    /// path stays inside the real path of the output directory (or of the input), so a link such as
    /// `OUT/escape -> /elsewhere` cannot carry a read or a write outside. The returned URL is the real path of
    /// the deepest existing component plus the components still to be created, so the links checked here are not
    /// followed again by the operation. (This guards against a tree prepared before or during the run by the
    /// script's user; it is not a defence against another process swapping directories for links while a file
    /// is being written.)
    func resolve(_ name: String, _ access: FileAccess = .write) throws(LuaCallError) -> URL {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !name.isEmpty, !name.hasPrefix("/"), !parts.contains(".."), !parts.contains(where: { $0.isEmpty }),
            !name.contains("\0")
        else {
            throw LuaCallError("file '\(name)': expected a relative path inside the output directory (no '/' prefix, no '..')")
        }
        if let input = inputs[parts[0]] {
            guard access == .read else {
                throw LuaCallError(
                    "file '\(name)': '\(parts[0])/' is the read-only input --input \(parts[0])=\(input.path); files are written only inside the output directory")
            }
            guard parts.count > 1 else {
                throw LuaCallError("file '\(name)': names the input directory itself; expected a file inside it ('\(parts[0])/...')")
            }
            return try Self.confine(
                Array(parts.dropFirst()), under: input, shown: parts[0] + "/", name: name,
                root: "the input '\(parts[0])' (\(input.path))")
        }
        // The file root is the output directory or a directory inside it (a sweep cell's): confine to the output
        // directory, so a cell directory that is itself a link leading out is refused too.
        let out = outputDirectory.standardizedFileURL.path
        let root = fileRoot.standardizedFileURL.path
        let url: URL
        if root == out || root.hasPrefix(out + "/") {
            let within = root.dropFirst(out.count).split(separator: "/").map(String.init)
            url = try Self.confine(within + parts, under: outputDirectory, shown: "", name: name, root: "the output directory (\(out))")
        } else {
            url = try Self.confine(parts, under: fileRoot, shown: "", name: name, root: "\(root)")
        }
        if access == .write { try refuseReserved(url, name) }
        return url
    }

    /// Files the tool itself writes at the root of the output directory: a script writing one of them would
    /// replace the run's own record (result.json, provenance.json, ...) or its lock, after which a second run
    /// into the same directory would be accepted. None of the bundled scripts writes these names.
    public static let reservedOutputNames: Set<String> = [
        OutputLock.fileName, "sweep.json", "config.json", "provenance.json", "result.json", "summary.csv",
        "results.npz", "timings.csv", "script.lua",
    ]

    /// Refuses a write (already resolved to its real path by `confine`, so a link or `./` cannot disguise it) to
    /// one of `reservedOutputNames` at the output root, or under `cells/` outside the current cell's own
    /// directory (the cell files and the other cells' files are the sweep's record).
    private func refuseReserved(_ url: URL, _ name: String) throws(LuaCallError) {
        guard let realOut = Self.realPath(outputDirectory.path) else { return }  // confine has resolved it already
        let path = url.path
        guard path.hasPrefix(realOut == "/" ? "/" : realOut + "/") else { return }
        let rel = path.dropFirst(realOut == "/" ? 1 : realOut.count + 1).split(separator: "/").map(String.init).filter { $0 != "." }
        if rel.count == 1, Self.reservedOutputNames.contains(rel[0]) {
            throw LuaCallError(
                "file '\(name)': '\(rel[0])' at the root of the output directory is written by toymoe itself (reserved: \(Self.reservedOutputNames.sorted().joined(separator: ", ")) and cells/); choose another name")
        }
        if rel.first == "cells" {
            // The current file root below the output directory, spelled from the real output path (a cell's
            // directory may not exist yet, so it cannot be resolved itself).
            let out = outputDirectory.standardizedFileURL.path, root = fileRoot.standardizedFileURL.path
            let within = root.hasPrefix(out + "/") ? String(root.dropFirst(out.count + 1)) : ""
            let ownRoot = realOut + "/" + within
            let inOwnCell = ownRoot.hasPrefix(realOut + "/cells/") && path.hasPrefix(ownRoot + "/")
            if !inOwnCell {
                throw LuaCallError(
                    "file '\(name)': cells/ in the output directory holds the sweep's cell files, written by toymoe itself (a cell's run writes its own files with plain names, into cells/<id>/r<replicate>/); choose another name")
            }
        }
    }

    /// Walks `components` from the real path of `base`, following a symbolic link only when its real path stays
    /// under that real path; stops at the first component that does not exist (what follows will be created as
    /// plain directories and files). `shown` prefixes the components in messages.
    static func confine(_ components: [String], under base: URL, shown: String, name: String, root: String) throws(LuaCallError) -> URL {
        guard let realBase = realPath(base.path) else {
            throw LuaCallError("file '\(name)': cannot resolve \(root): \(String(cString: strerror(errno)))")
        }
        var current = realBase
        for (i, component) in components.enumerated() {
            let candidate = current == "/" ? "/" + component : current + "/" + component
            var st = stat()
            guard lstat(candidate, &st) == 0 else {
                let code = errno
                if code == ENOENT {
                    return URL(fileURLWithPath: ([candidate] + components[(i + 1)...]).joined(separator: "/"))
                }
                throw LuaCallError("file '\(name)': cannot inspect '\(shown + components[...i].joined(separator: "/"))': \(String(cString: strerror(code)))")
            }
            guard (st.st_mode & S_IFMT) == S_IFLNK else {
                current = candidate
                continue
            }
            let link = shown + components[...i].joined(separator: "/")
            guard let target = realPath(candidate) else {
                throw LuaCallError("file '\(name)': '\(link)' is a symbolic link whose target does not exist; files are confined to \(root)")
            }
            guard target == realBase || target.hasPrefix(realBase == "/" ? "/" : realBase + "/") else {
                throw LuaCallError(
                    "file '\(name)': '\(link)' is a symbolic link to \(target), outside \(root); files are confined there (read other directories with --input NAME=DIR)")
            }
            current = target
        }
        return URL(fileURLWithPath: current)
    }

    /// realpath(3) as a String, nil on failure (errno set).
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

/// What `toymoe.sweep{...}` declared.
struct SweepDeclaration {
    var spec: SweepSpec
    var run: LuaFunctionRef
    /// Called on the main state once every cell is finished, with the cells' results (plots, summaries).
    var finish: LuaFunctionRef?
}

/// Installs the `toymoe` module into a runtime.
enum Bindings {
    static let modelOptions = ["n_features", "n_hidden", "n_experts", "n_active_experts", "tie_break", "init", "seed"]
    static let initKeys = ["W", "b_final", "gate", "overlay_gate"]
    static let dataOptions = [
        "n_features", "feature_probability", "importance", "input_scale", "relative_importance",
        "relative_importance_mode",
    ]
    static let trainOptions = [
        "data", "steps", "batch_size", "lr", "lr_schedule", "beta1", "beta2", "eps", "weight_decay", "loss",
        "load_balancing", "load_balancing_alpha", "early_stop", "history_every", "hook", "hook_every",
    ]

    static func install(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        try installModel(rt, ctx)
        try installData(rt, ctx)
        try installTraining(rt, ctx)
        try installMetrics(rt, ctx)
        try installFiles(rt, ctx)
        try installSweep(rt, ctx)
        try installRunScript(rt, ctx)
        try installPlots(rt, ctx)
        var params = LuaTable()
        for (k, v) in ctx.params {
            if let i = Int64(v) {
                params.hash[.string(k)] = .integer(i)
            } else if let d = Double(v), d.isFinite {
                params.hash[.string(k)] = .number(d)
            } else if v == "true" || v == "false" {
                params.hash[.string(k)] = .boolean(v == "true")
            } else {
                params.hash[.string(k)] = .string(v)
            }
        }
        func finite(_ args: LuaArgs, _ i: Int, _ name: String) throws(LuaCallError) -> Double {
            let x = try args.number(i, name)
            guard x.isFinite else { throw args.argumentError(name, "expected a finite number, got \(describe(.number(x)))") }
            return x
        }
        try rt.setGlobal("toymoe.params", .table(params))
        // The read-only inputs (`--input NAME=DIR`): NAME -> DIR, so a script can check one was given.
        try rt.setGlobal("toymoe.inputs", .table(LuaTable(hash: Dictionary(uniqueKeysWithValues: ctx.inputs.map {
            (LuaKey.string($0.key), LuaValue.string($0.value.path))
        }))))
        try rt.setGlobal("toymoe.seed", .integer(Int64(bitPattern: ctx.runSeed)))
        try rt.setGlobal("toymoe.version", .string(ToyMoEVersion.string))
        try rt.setGlobal("toymoe.kernel_variant", .string(KernelVariant.current))
        try rt.setGlobal("toymoe.is_worker", .boolean(ctx.isWorker))
        try rt.register(module: "toymoe", functions: [
            "param": { args in
                let key = try args.string(1, "key")
                ctx.parameterReads?.note(key)
                let p = try rt.global("toymoe.params")
                let v = p.tableValue?[key] ?? .nil
                if v.isNil { return [try args.value(2, "default")] }
                if args.count >= 2, args.type(2) == .number, v.doubleValue == nil {
                    throw LuaCallError("parameter '\(key)' must be a number (the default is \(describe(try args.value(2)))), got \(describe(v))")
                }
                return [v]
            },
            "geometric": { args in
                let base = try finite(args, 1, "base")
                let n = try args.integer(2, "n")
                guard n >= 0, n <= 1 << 24 else { throw args.argumentError("n", "expected a count in 0...\(1 << 24), got \(n)") }
                try Tensor.ensureCapacity(rt, shape: [n])  // before the list is built, not after
                return [Tensor.list(Schedules.geometric(base: base, count: n).map(Double.init))]
            },
            "permuted_geometric": { args in
                let base = try finite(args, 1, "base")
                let n = try args.integer(2, "n")
                guard n >= 0, n <= 1 << 24 else { throw args.argumentError("n", "expected a count in 0...\(1 << 24), got \(n)") }
                try Tensor.ensureCapacity(rt, shape: [n])  // before the list is built, not after
                var r = RandomStream(seed: ctx.contextSeed, path: [0x5045_524D, ctx.modelCounter])  // "PERM"
                return [Tensor.list(Schedules.permutedGeometric(base: base, count: n, rng: &r).map(Double.init))]
            },
            "linspace": { args in
                let (a, b, n) = (try finite(args, 1, "start"), try finite(args, 2, "stop"), try args.integer(3, "count"))
                guard n >= 0, n <= 1 << 24 else { throw args.argumentError("count", "expected a count in 0...\(1 << 24), got \(n)") }
                try Tensor.ensureCapacity(rt, shape: [n])
                return [Tensor.list(Schedules.linspace(a, b, count: n))]
            },
            "geomspace": { args in
                let (a, b, n) = (try finite(args, 1, "start"), try finite(args, 2, "stop"), try args.integer(3, "count"))
                guard a > 0 else { throw args.argumentError("start", "expected a positive number, got \(a)") }
                guard b > 0 else { throw args.argumentError("stop", "expected a positive number, got \(b)") }
                guard n >= 0, n <= 1 << 24 else { throw args.argumentError("count", "expected a count in 0...\(1 << 24), got \(n)") }
                try Tensor.ensureCapacity(rt, shape: [n])
                return [Tensor.list(Schedules.geomspace(a, b, count: n))]
            },
            "range": { args in
                let (a, b) = (try finite(args, 1, "start"), try finite(args, 2, "stop"))
                let step = args.isNil(3) ? 1 : try finite(args, 3, "step")
                guard step != 0 else {
                    throw args.argumentError("step", "expected a finite nonzero step, got \(step)")
                }
                let span = ((b - a) / step + 1e-9).rounded(.down) + 1
                guard span.isFinite, span <= Double(1 << 24) else {
                    throw LuaCallError("range from start \(a) to stop \(b) by step \(step) has \(span.isFinite ? String(format: "%.3g", span) : "too many") values; at most \(1 << 24)")
                }
                let count = span < 0 ? 0 : Int(span)
                try Tensor.ensureCapacity(rt, shape: [count])
                // Rounded to 12 significant digits so 0.1 + 0.2·k prints as the decimal the user wrote.
                let values = count <= 0 ? [] : (0..<count).map { (a + Double($0) * step).roundedTo(12) }
                return [Tensor.list(values)]
            },
        ])
    }

    // MARK: Models

    static func installModel(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        func tensor(_ args: LuaArgs, _ i: Int) throws(LuaCallError) -> ParameterTensor {
            let name = try args.string(i, "name")
            guard let t = ParameterTensor(rawValue: name) else {
                throw args.argumentError("name", "expected 'W', 'b_final' or 'gate', got \"\(name)\"")
            }
            return t
        }
        func model(_ args: LuaArgs) throws(LuaCallError) -> Model { try args.object(1, "self", as: Model.self) }
        try rt.registerType(
            Model.self, name: "Model",
            methods: [
                "get": { args in
                    let m = try model(args)
                    let t = try tensor(args, 2)
                    let shape = t.shape(m.config)
                    try Tensor.ensureCapacity(rt, shape: shape)
                    return [Tensor.nested(m.values(t), shape: shape)]
                },
                "set": { args in
                    let m = try model(args)
                    let t = try tensor(args, 2)
                    let values = try Tensor.floats(try args.value(3, "values"), shape: t.shape(m.config), name: t.rawValue)
                    do { try m.setValues(t, values) } catch { throw LuaCallError(engineMessage(error)) }
                    return []
                },
                "W": { args in
                    let m = try model(args)
                    let e = try args.integer(2, "expert")
                    guard e >= 1, e <= m.expertCount else {
                        throw args.argumentError("expert", "expected an expert index in 1...\(m.expertCount), got \(e)")
                    }
                    try Tensor.ensureCapacity(rt, shape: [m.featureCount, m.hiddenCount])
                    return [Tensor.nested(m.expertWeights(e - 1), shape: [m.featureCount, m.hiddenCount])]
                },
                "init": { args in
                    let m = try model(args)
                    let t = try tensor(args, 2)
                    try applyInit(rt, m, t, try args.value(3, "scheme"), seed: ctx.nextModelSeed(), context: "init")
                    return []
                },
                "forward": { args in
                    let m = try model(args)
                    let (x, batched) = try inputs(try args.value(2, "x"), n: m.featureCount)
                    let rows = x.count / m.featureCount
                    try Tensor.ensureCapacity(rt, shape: [rows, m.featureCount])
                    let out: Model.Output
                    do { out = try m.forward(x) } catch { throw LuaCallError(engineMessage(error)) }
                    let result = Tensor.nested(out.reconstruction, shape: [rows, m.featureCount])
                    return [batched ? result : result.tableValue![1]]
                },
                "route": { args in
                    let m = try model(args)
                    let (x, batched) = try inputs(try args.value(2, "x"), n: m.featureCount)
                    guard !batched else { throw args.argumentError("x", "expected one input (a list of \(m.featureCount) numbers)") }
                    let r = m.route(x)
                    return [.table(LuaTable(hash: [
                        .string("probabilities"): Tensor.list(r.probabilities.map(Double.init)),
                        .string("selected"): Tensor.list(r.selected.map { $0 + 1 }),
                        .string("gates"): Tensor.list(r.gates.map(Double.init)),
                    ]))]
                },
                "copy": { args in
                    let m = try model(args)
                    try rt.ensureHostCapacity(m.layout.count * 4)
                    return [.userdata(Model(copying: m))]
                },
                "save": { args in
                    let m = try model(args)
                    let url = try ctx.resolve(try args.string(2, "file"))
                    do {
                        try AtomicFile.createDirectory(at: url.deletingLastPathComponent())
                        try m.writeNPZ(to: url)
                    } catch { throw LuaCallError("cannot write \(url.lastPathComponent): \(error)") }
                    return []
                },
            ],
            fields: [
                "n_features": { args in [.integer(Int64(try model(args).featureCount))] },
                "n_hidden": { args in [.integer(Int64(try model(args).hiddenCount))] },
                "n_experts": { args in [.integer(Int64(try model(args).expertCount))] },
                "n_active_experts": { args in [.integer(Int64(try model(args).activeExpertCount))] },
                "parameter_count": { args in [.integer(Int64(try model(args).layout.count))] },
            ],
            describe: { $0.description },
            hostBytes: { $0.layout.count * MemoryLayout<Float>.size })

        try rt.register(module: "toymoe", functions: [
            "model": { args in
                let opts = try OptionTable("toymoe.model", try args.table(1, "options"), known: modelOptions)
                var config = ModelConfig(
                    featureCount: try modelSize(opts, "n_features"), hiddenCount: try modelSize(opts, "n_hidden"),
                    expertCount: try modelSize(opts, "n_experts", default: 1),
                    activeExpertCount: try modelSize(opts, "n_active_experts", default: 1))
                let tie = try opts.choice("tie_break", ["lowest", "highest"], default: "lowest")
                config.tieBreak = tie == "lowest" ? .lowestIndex : .highestIndex
                if config.activeExpertCount > config.expertCount {
                    throw LuaCallError("n_active_experts: expected at most n_experts (\(config.expertCount)), got \(config.activeExpertCount)")
                }
                do { try config.validate() } catch { throw LuaCallError(engineMessage(error)) }
                do throws(LuaCallError) { try rt.ensureHostCapacity(config.layout.count * 4) } catch {
                    throw LuaCallError("a model of \(config.layout.count) parameters (E·n·(m+2)): \(error.text)")
                }
                let explicitSeed = opts.has("seed") ? UInt64(try opts.integer("seed", minimum: 0)) : nil
                let seed = explicitSeed ?? ctx.nextModelSeed()
                let m: Model
                do {
                    // Every tensor is initialized below (applyInit overwrites all of it, from the tensor's own
                    // stream): start from zeros instead of drawing Xavier values twice.
                    m = try Model(config: config, initialization: Initialization(W: .zero, bFinal: .zero, gate: .zero), seed: seed)
                } catch { throw LuaCallError(engineMessage(error)) }
                let initTable = try opts.optionalTable("init")
                let initOpts = try OptionTable("toymoe.model: init", initTable ?? LuaTable(), known: initKeys)
                let overlay = try initOpts.boolean("overlay_gate", default: false)
                for t in ParameterTensor.allCases {
                    let scheme = initOpts.value(t.rawValue)
                    if overlay && t == .gate {
                        try applyInit(rt, m, .gate, "xavier", seed: seed, context: "init")
                        try applyInit(rt, m, .gate, scheme.isNil ? "xavier" : scheme, seed: seed, context: "init", zeroFirst: false)
                    } else {
                        try applyInit(rt, m, t, scheme.isNil ? "xavier" : scheme, seed: seed, context: "init")
                    }
                }
                return [.userdata(m)]
            },
            "load_model": { args in
                let url = try ctx.resolve(try args.string(1, "file"), .read)
                do {
                    let archive = try Npz.read(contentsOf: url)
                    let w = try archive.array(named: "W")
                    guard w.shape.count == 3 else { throw LuaCallError("W in \(url.lastPathComponent) has shape \(w.shape); expected (E, n, m)") }
                    let gateShape = try archive.array(named: "gate").shape
                    // Argument 2: n_active_experts, or {n_active_experts = k, allow_non_finite = bool}.
                    var k = 1
                    var allowNonFinite = false
                    if args.type(2) == .table {
                        let o = try OptionTable(
                            "toymoe.load_model: n_active_experts or options", try args.table(2, "options"),
                            known: ["n_active_experts", "allow_non_finite"])
                        if o.has("n_active_experts") { k = try o.integer("n_active_experts") }
                        allowNonFinite = try o.boolean("allow_non_finite", default: false)
                    } else if let given = try args.optionalInteger(2, "n_active_experts") {
                        k = given
                    }
                    guard w.shape.allSatisfy({ $0 >= 1 && $0 <= ModelConfig.maxParameterCount }) else {
                        throw LuaCallError("W in \(url.lastPathComponent) has shape \(w.shape); expected positive sizes")
                    }
                    guard k >= 1, k <= w.shape[0] else {
                        throw args.argumentError("n_active_experts", "expected an integer in 1...\(w.shape[0]) (the file's n_experts), got \(k)")
                    }
                    let config = ModelConfig(featureCount: w.shape[1], hiddenCount: w.shape[2], expertCount: w.shape[0], activeExpertCount: k)
                    do { try config.validate() } catch { throw LuaCallError(engineMessage(error)) }
                    guard gateShape == [w.shape[0], w.shape[1]] else { throw LuaCallError("gate in \(url.lastPathComponent) has shape \(gateShape)") }
                    try rt.ensureHostCapacity(config.layout.count * 4)
                    let m = try Model(config: config, initialization: Initialization(W: .zero, bFinal: .zero, gate: .zero))
                    do { try m.loadNPZ(from: url, allowNonFinite: allowNonFinite) } catch let e as ToyMoEError where e.argument != "" && !allowNonFinite && e.message.contains("non-finite") {
                        throw LuaCallError("\(e.argument): \(e.message) (toymoe.load_model(file, {allow_non_finite = true}))")
                    }
                    return [.userdata(m)]
                } catch let e as LuaCallError {
                    throw e
                } catch {
                    throw LuaCallError("cannot load \(url.lastPathComponent): \(error)")
                }
            },
        ])
    }

    /// A model size option: a positive integer, bounded first so that the engine's parameter count (E·n·(m+2))
    /// cannot overflow.
    static func modelSize(_ opts: OptionTable, _ key: String, default def: Int? = nil) throws(LuaCallError) -> Int {
        let v = try opts.integer(key, default: def, minimum: 1)
        guard v <= ModelConfig.maxParameterCount else {
            throw LuaCallError("\(key): expected at most \(ModelConfig.maxParameterCount), got \(v)")
        }
        return v
    }

    /// Applies an initialization scheme given as a Lua value: a name, `{xavier = gain}`, `{normal = std}`, a table
    /// of values, or a function called per entry with 1-based indices.
    static func applyInit(
        _ rt: LuaRuntime, _ m: Model, _ t: ParameterTensor, _ scheme: LuaValue, seed: UInt64, context: String,
        zeroFirst: Bool = true
    ) throws(LuaCallError) {
        let key = t.rawValue
        var tensorInit: TensorInit
        switch scheme {
        case .string(let name):
            switch name {
            case "xavier": tensorInit = .xavier()
            case "zero": tensorInit = .zero
            case "diagonal": tensorInit = .diagonal
            case "ordered_khot": tensorInit = .orderedKHot
            case "random_khot": tensorInit = .randomKHot
            default:
                throw LuaCallError("\(key): unknown scheme \"\(name)\"; expected 'xavier', 'zero', 'diagonal', 'ordered_khot', 'random_khot', {xavier = gain}, {normal = std}, a table of values or a function")
            }
        case .table(let tbl) where tbl.array.isEmpty && tbl.hash.count == 1 && tbl.hash[.string("tensor")] != nil:
            // {tensor = function(E, n[, m]) return nested table end}: one call builds the whole tensor.
            guard case .function(let f)? = tbl.hash[.string("tensor")] else {
                throw LuaCallError("\(key): {tensor = f} needs a function, got \(describe(tbl.hash[.string("tensor")]!))")
            }
            let shape = t.shape(m.config)
            let out: [LuaValue]
            do throws(LuaError) { out = try rt.call(f, shape.map { .integer(Int64($0)) }) } catch { throw LuaCallError.located(error.message) }
            tensorInit = .values(try Tensor.floats(out.first ?? .nil, shape: shape, name: "\(key) (returned by the tensor function)"))
        case .table(let tbl) where tbl.array.isEmpty && tbl.hash.count == 1 && (tbl.hash[.string("xavier")] != nil || tbl.hash[.string("normal")] != nil):
            if let g = tbl.hash[.string("xavier")] {
                guard let gain = g.doubleValue, gain.isFinite, gain >= 0 else { throw LuaCallError("\(key): xavier gain: expected a finite number ≥ 0, got \(describe(g))") }
                tensorInit = .xavier(gain: gain)
            } else {
                let s = tbl.hash[.string("normal")]!
                guard let std = s.doubleValue, std.isFinite, std >= 0 else { throw LuaCallError("\(key): normal std: expected a finite number ≥ 0, got \(describe(s))") }
                tensorInit = .normal(std: std)
            }
        case .table:
            tensorInit = .values(try Tensor.floats(scheme, shape: t.shape(m.config), name: key))
        case .function(let f):
            let shape = t.shape(m.config)
            var values: [Float] = []
            values.reserveCapacity(shape.reduce(1, *))
            let (E, n, h) = (shape[0], shape[1], shape.count > 2 ? shape[2] : 1)
            for e in 1...E {
                for i in 1...n {
                    for j in 1...h {
                        var callArgs: [LuaValue] = [.integer(Int64(e)), .integer(Int64(i))]
                        if shape.count > 2 { callArgs.append(.integer(Int64(j))) }
                        let out: [LuaValue]
                        do throws(LuaError) { out = try rt.call(f, callArgs) } catch { throw LuaCallError.located(error.message) }
                        let at = shape.count > 2 ? "(\(e), \(i), \(j))" : "(\(e), \(i))"  // Lua (1-based) indices
                        guard let v = out.first?.doubleValue, v.isFinite else {
                            throw LuaCallError("\(key): the init function must return a finite number, got \(describe(out.first ?? .nil)) at \(at)")
                        }
                        // Checked here, on the returned double: Float(1e39) is inf, which the model would report
                        // only by a 0-based flat index.
                        guard abs(v) <= float32Max else {
                            throw LuaCallError("\(key): the init function returned \(describe(out.first!)) at \(at), outside float32 (finite values lie within ±3.4028235e38)")
                        }
                        values.append(Float(v))
                    }
                }
            }
            tensorInit = .values(values)
        default:
            throw LuaCallError("\(key): expected a scheme name, a table or a function, got \(describe(scheme))")
        }
        do {
            // Large tensors take seconds to draw: stop at the deadline (checked between chunks of draws).
            let stop = rt.deadlineCheck()
            try m.initialize(t, tensorInit, seed: seed, zeroFirst: zeroFirst, shouldStop: stop.map { f in { f() } })
        } catch {
            if let limit = rt.budgetExceeded() { throw limit }
            throw LuaCallError("\(key): \(engineMessage(error))")
        }
    }

    /// One input (a list of n numbers) or a batch (a list of lists), flattened.
    static func inputs(_ v: LuaValue, n: Int) throws(LuaCallError) -> ([Float], Bool) {
        guard case .table(let t) = v, let first = t.array.first else {
            throw LuaCallError("x: expected a list of \(n) numbers or a list of such lists, got \(describe(v))")
        }
        if case .table = first {
            return (try Tensor.floats(v, shape: [t.array.count, n], name: "x"), true)
        }
        return (try Tensor.floats(v, shape: [n], name: "x"), false)
    }

    // MARK: Data

    static func installData(_ rt: LuaRuntime, _ ctx: ScriptContext) throws(LuaError) {
        func data(_ args: LuaArgs) throws(LuaCallError) -> DataHandle { try args.object(1, "self", as: DataHandle.self) }
        try rt.registerType(
            DataHandle.self, name: "Data",
            methods: [
                "sample": { args in
                    let d = try data(args)
                    let b = try args.integer(2, "batch")
                    guard b >= 1, b <= 1 << 20 else { throw args.argumentError("batch", "expected a batch size in 1...\(1 << 20), got \(b)") }
                    guard b * d.featureCount <= 1 << 24 else {
                        throw args.argumentError("batch", "\(b) samples of \(d.featureCount) features exceed \(1 << 24) values")
                    }
                    var r = RandomStream(seed: ctx.nextTrainSeed(), path: [StreamPurpose.data.rawValue])
                    let x = d.distribution.sample(batch: b, rng: &r)
                    return [Tensor.nested(x, shape: [b, d.featureCount])]
                }
            ],
            fields: [
                "n_features": { args in [.integer(Int64(try data(args).featureCount))] },
                "feature_probability": { args in [Tensor.list(try data(args).distribution.featureProbability.map(Double.init))] },
                "importance": { args in [Tensor.list(try data(args).distribution.importance.map(Double.init))] },
            ],
            describe: { "Data(n_features=\($0.featureCount))" },
            hostBytes: { $0.featureCount * 3 * MemoryLayout<Float>.size })
        try rt.register(module: "toymoe", functions: [
            // `model = m` takes n_features from the model (so a data set matches the model it trains);
            // an n_features that contradicts it is an error naming both.
            "data": { args in
                var options = try args.table(1, "options")
                var featureCount: Int? = nil
                if let given = options.hash.removeValue(forKey: .string("model")) {
                    guard let m = given.object(as: Model.self) else {
                        throw LuaCallError("model: expected a model (toymoe.model{...}), got \(describe(given))")
                    }
                    featureCount = m.featureCount
                    if let n = options.hash[.string("n_features")], n.doubleValue != Double(m.featureCount) {
                        throw LuaCallError(
                            "n_features = \(describe(n)) contradicts model's n_features = \(m.featureCount); give one of them")
                    }
                }
                return [.userdata(DataHandle(try dataDistribution(options, function: "toymoe.data", featureCount: featureCount, runtime: rt, alsoKnown: ["model"])))]
            }
        ])
    }

    /// Largest finite float32 (3.4028234663852886e38): the bound of every value stored as float32.
    static let float32Max = Double(Float.greatestFiniteMagnitude)

    /// `values` as float32, refusing a finite value outside the float32 range (it would become ±inf) with the
    /// value and the range; `name` names the list (entries by Lua index, `name[i]`).
    static func float32(_ values: [Double], _ name: String) throws(LuaCallError) -> [Float] {
        if let i = values.firstIndex(where: { $0.isFinite && abs($0) > float32Max }) {
            let label = values.count == 1 ? name : "\(name)[\(i + 1)]"
            throw LuaCallError(
                "\(label): \(describe(.number(values[i]))) does not fit in float32 (finite values lie within ±3.4028235e38)")
        }
        return values.map(Float.init)
    }

    /// Builds a distribution from `toymoe.data` options.
    /// With `runtime`, the distribution's vectors (3 floats per feature) are checked against the memory limit before
    /// they are built (a data set without a model has no other bound than n_features ≤ maxParameterCount / 3).
    /// `alsoKnown`: options the caller handled itself (named in the unknown-option suggestions).
    static func dataDistribution(_ table: LuaTable, function: String, featureCount: Int? = nil, runtime: LuaRuntime? = nil, alsoKnown: [String] = []) throws(LuaCallError) -> DataDistribution {
        let opts = try OptionTable(function, table, known: dataOptions + alsoKnown)
        var n = opts.has("n_features") ? try opts.integer("n_features", minimum: 1) : featureCount
        // No model can have more features than E·n·(m+2) ≤ maxParameterCount allows with E = m = 1.
        if let count = n, count > ModelConfig.maxParameterCount / 3 {
            throw LuaCallError("n_features: expected at most \(ModelConfig.maxParameterCount / 3), got \(count)")
        }
        func vector(_ key: String) throws(LuaCallError) -> [Float]? {
            guard case .table(let t) = opts.value(key) else { return nil }
            let (shape, values) = try Tensor.infer(.table(t), name: key)
            guard shape.count == 1, !values.isEmpty else { throw LuaCallError("\(key): expected a non-empty list of numbers, got shape \(Tensor.shapeText(shape))") }
            if let n, values.count != n {
                throw LuaCallError("\(key): expected \(n) values (one per feature), got \(values.count)")
            }
            n = values.count
            return try float32(values, key)
        }
        // Entries are checked here, with their Lua (1-based) index, so the message names the entry the script
        // wrote (`importance[4]`); the engine's own check below reports 0-based indices for non-Lua callers.
        func check(_ v: [Float]?, _ key: String, _ expected: String, _ ok: (Float) -> Bool) throws(LuaCallError) {
            guard let v, let i = v.firstIndex(where: { !ok($0) }) else { return }
            throw LuaCallError("\(key)[\(i + 1)]: expected \(expected), got \(describe(.number(Double(v[i]))))")
        }
        let pVector = try vector("feature_probability")
        let importance = try vector("importance")
        let scale = try vector("input_scale")
        try check(pVector, "feature_probability", "a probability in [0, 1]") { $0 >= 0 && $0 <= 1 }
        try check(importance, "importance", "a finite number ≥ 0") { $0.isFinite && $0 >= 0 }
        try check(scale, "input_scale", "a finite number") { $0.isFinite }
        guard let count = n else {
            throw LuaCallError("n_features: required when neither feature_probability nor importance is a list")
        }
        if let runtime {
            do throws(LuaCallError) { try runtime.ensureHostCapacity(count * 3 * MemoryLayout<Float>.size) } catch {
                throw LuaCallError("n_features: a data distribution of \(count) features: \(error.text)")
            }
        }
        var probability: [Float]
        if let pVector {
            probability = pVector
        } else {
            let p = try opts.number("feature_probability", default: 1, expected: "a probability in [0, 1] (or a list)", valid: { $0 >= 0 && $0 <= 1 })
            probability = [Float](repeating: Float(p), count: count)
        }
        var d = DataDistribution(featureProbability: probability, importance: importance ?? [Float](repeating: 1, count: count), inputScale: scale)
        if let r = try opts.optionalNumber("relative_importance", expected: "a finite number ≥ 0", valid: { $0 >= 0 }) {
            _ = try float32([r], "relative_importance")
            let mode = try opts.choice("relative_importance_mode", ["loss_weight", "input_scale"], default: "loss_weight")
            if mode == "loss_weight" {
                d.importance[count - 1] = Float(r)
            } else {
                var s = d.inputScale ?? [Float](repeating: 1, count: count)
                s[count - 1] = Float(r)
                d.inputScale = s
            }
        } else if opts.has("relative_importance_mode") {
            throw LuaCallError("relative_importance_mode: given without relative_importance")
        }
        do { try d.validate(featureCount: count) } catch { throw LuaCallError(engineMessage(error)) }
        return d
    }
}

/// An engine error as a binding message: "argument: message" (the binding's name is added by the trampoline).
func engineMessage(_ error: Error) -> String {
    if let e = error as? ToyMoEError { return "\(e.argument): \(e.message)" }
    return "\(error)"
}

extension Double {
    func roundedTo(_ digits: Int) -> Double {
        guard self != 0, isFinite else { return self }
        let scale = pow(10, Double(digits) - (Foundation.log10(abs(self))).rounded(.up))
        return (self * scale).rounded() / scale
    }
}
