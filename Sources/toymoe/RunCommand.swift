import ArgumentParser
import Foundation
import ToyMoE
import ToyMoELua

/// `toymoe run`: runs a Lua script (and the sweep it declares) into an output directory.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a Lua experiment script (and the sweep it declares).",
        discussion: """
            KEY=VALUE words reach the script as toymoe.params (numbers parsed as numbers).
            The output directory receives: config.json (parameters and options), provenance.json (version,
            git commit, seed, command line, kernel variant, times), script.lua (a copy), result.json (the
            script's returned table, if any), the files the script saves, and for a sweep: sweep.json,
            cells/, summary.csv, results.npz, timings.csv.
            The scripting API is documented in docs/LUA_API.md.
            """)

    @Argument(help: "The Lua script to run: a file, or a bundled script's name (paper/fig2_moe; see toymoe list).")
    var script: String

    @Argument(help: "Script parameters, KEY=VALUE (e.g. scale=quick steps=2000).")
    var assignments: [String] = []

    @Option(help: "Output directory (default: results/<script name>).")
    var out: String?

    @Option(help: "Seed of every random draw (models, data, math.random, sweep cells).")
    var seed: UInt64 = 0

    @Option(help: "Worker threads for a sweep (each with its own Lua state).")
    var jobs: Int = 1

    @Flag(help: "Continue a sweep in --out, skipping its finished cells.")
    var resume = false

    @Option(help: "Run only shard I of N of a sweep (cells with index ≡ I mod N). Default: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set, else 0/1.")
    var shard: String?

    @Flag(help: "Silence progress and the script's print output.")
    var quiet = false

    @Option(name: .customLong("progress-interval"), help: "When stderr is not a terminal (logs), seconds between two progress lines (default: $TOYMOE_PROGRESS_INTERVAL, else 30). On a terminal a bar is redrawn in place.")
    var progressInterval: Double?

    @Option(help: "Kernel implementation: auto or simd (the widest SIMD build this CPU runs), scalar (alias naive), simd-baseline, simd-avx2 or simd-avx512 (default: $TOYMOE_KERNELS, else auto). Recorded in provenance.json.")
    var kernels: String?

    @Option(name: .customLong("memory-limit"), help: "Memory cap in MiB, counting model buffers, for the script's top level (with the scripts it runs) and for each sweep cell (16 to 16777216).")
    var memoryLimit: Int = 2048

    @Option(name: .customLong("time-limit"), help: "Wall-clock limit in seconds for the script's top level (with the scripts it runs) and for each sweep cell; long host calls (training, metrics, sort, load) stop at it too (0: none).")
    var timeLimit: Double = 0

    @Option(name: .customLong("instruction-limit"), help: "Lua instruction budget for the top level and for each sweep cell (0: none).")
    var instructionLimit: UInt64 = 0

    // Read-only inputs.
    @Option(name: .customLong("input"), help: ArgumentHelp(
        "A read-only input directory, NAME=DIR (repeatable): the script reads DIR's files as NAME/... with toymoe.load_*; nothing is ever written there. NAME: letters, digits and _, not starting with a digit.",
        valueName: "NAME=DIR"))
    var inputs: [String] = []

    /// `--input NAME=DIR` words as NAME -> the directory's URL; refuses a bad NAME, a repeated NAME, or a DIR
    /// that is not an existing directory, naming the word.
    func parsedInputs() throws -> [String: URL] {
        var out: [String: URL] = [:]
        for word in inputs {
            guard let eq = word.firstIndex(of: "=") else { throw ValidationError("--input '\(word)': expected NAME=DIR") }
            let name = String(word[..<eq]), dir = String(word[word.index(after: eq)...])
            guard ScriptRunOptions.isInputName(name) else {
                throw ValidationError("--input '\(word)': NAME must be letters, digits and _ (not starting with a digit, at most 64), got '\(name)'")
            }
            guard out[name] == nil else { throw ValidationError("--input: NAME '\(name)' is given twice") }
            guard !dir.isEmpty else { throw ValidationError("--input '\(word)': DIR is empty") }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
                throw ValidationError("--input '\(word)': directory '\(dir)' does not exist")
            }
            guard isDirectory.boolValue else { throw ValidationError("--input '\(word)': '\(dir)' is not a directory") }
            out[name] = URL(fileURLWithPath: dir, isDirectory: true).standardizedFileURL
        }
        return out
    }
    @Flag(name: .customLong("allow-mismatch"), help: "Run into --out even when its sweep.json records another script, parameters, seed, grid, selection, tool version or kernel variant (the differences are printed and recorded in sweep.json). Without it such a run is refused.")
    var allowMismatch = false

    @Flag(help: "Fail when a KEY=VALUE parameter is never read by the script (without it: a warning). A key the script does not mention at all is refused before anything runs.")
    var strict = false

    func validate() throws {
        _ = try parsedInputs()
        if let k = kernels, case .failure(let e) = KernelVariant.resolve(k) {
            throw ValidationError("--kernels: \(e.message)")
        }
        if kernels == nil, let e = KernelVariant.environmentError { throw ValidationError(e.message) }
        if jobs < 1 || jobs > Self.maxJobs {
            throw ValidationError("--jobs: expected an integer in 1...\(Self.maxJobs), got \(jobs)")
        }
        if let out, out.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--out: expected a directory, got an empty path (it would write into the current directory; write --out . to mean that)")
        }
        // The limit is converted to bytes (× 2^20): bound it so that cannot wrap around (2^44 bytes = 16 TiB).
        if memoryLimit < 16 || memoryLimit > Self.maxMemoryLimitMiB {
            throw ValidationError("--memory-limit: expected an integer in 16...\(Self.maxMemoryLimitMiB) (MiB), got \(memoryLimit)")
        }
        if !(timeLimit >= 0) || !timeLimit.isFinite || timeLimit > Self.maxTimeLimit {
            throw ValidationError("--time-limit: expected seconds in 0...\(Int(Self.maxTimeLimit)) (0: none), got \(timeLimit)")
        }
        for a in assignments where !a.contains("=") || a.hasPrefix("=") {
            throw ValidationError("parameter '\(a)': expected KEY=VALUE")
        }
        _ = try parsedShard()
    }

    /// Bounds of the numeric options: a value outside is refused, never wrapped or clamped.
    static let maxMemoryLimitMiB = 1 << 24  // 16 TiB
    static let maxTimeLimit = 1e9            // seconds (about 31 years)
    static let maxJobs = 4096

    /// `--shard I/N`, else the SLURM array variables, else 0/1.
    func parsedShard() throws -> (index: Int, count: Int) {
        let env = ProcessInfo.processInfo.environment
        if let s = shard {
            let parts = s.split(separator: "/").map { Int($0) }
            guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, i >= 0, i < n else {
                throw ValidationError("--shard: expected I/N with 0 ≤ I < N, got '\(s)'")
            }
            return (i, n)
        }
        // One variable without the other cannot say which shard this is: running every cell would duplicate the
        // whole sweep in every array task, so refuse instead.
        switch (env["SLURM_ARRAY_TASK_ID"], env["SLURM_ARRAY_TASK_COUNT"]) {
        case (let id?, nil):
            throw ValidationError(
                "SLURM_ARRAY_TASK_ID is set (\(id)) but SLURM_ARRAY_TASK_COUNT is not: both are needed to pick this task's shard of the sweep; set SLURM_ARRAY_TASK_COUNT, or pass --shard I/N")
        case (nil, let count?):
            throw ValidationError(
                "SLURM_ARRAY_TASK_COUNT is set (\(count)) but SLURM_ARRAY_TASK_ID is not: both are needed to pick this task's shard of the sweep; set SLURM_ARRAY_TASK_ID, or pass --shard I/N")
        default: break
        }
        if let id = env["SLURM_ARRAY_TASK_ID"], let count = env["SLURM_ARRAY_TASK_COUNT"] {
            guard let i = Int(id) else {
                throw ValidationError("SLURM_ARRAY_TASK_ID: expected an integer, got '\(id)'")
            }
            guard let n = Int(count) else {
                throw ValidationError("SLURM_ARRAY_TASK_COUNT: expected an integer, got '\(count)'")
            }
            guard n >= 1 else {
                throw ValidationError("SLURM_ARRAY_TASK_COUNT: expected at least 1 (the number of array tasks), got \(n)")
            }
            // SLURM arrays often start at 1 (--array=1-N); map to 0-based when SLURM_ARRAY_TASK_MIN says so.
            let minimum = env["SLURM_ARRAY_TASK_MIN"].flatMap { Int($0) } ?? 0
            let index = i - minimum
            guard index >= 0, index < n else {
                throw ValidationError("SLURM array task \(i) (min \(minimum)) is outside 0..<\(n)")
            }
            return (index, n)
        }
        return (0, 1)
    }

    func run() throws {
        if let k = kernels { try KernelVariant.select(k) }
        // Sweep cells already occupy the cores: a large model then trains its batch halves one after the other
        // (same numbers either way, see Trainer.splitsBatch).
        if jobs > 1 { Trainer.intraModelThreads = 1 }
        // A path wins over a bundled name (BundledScripts.resolve); whether the file is readable UTF-8 is checked
        // when it is read (ScriptRunner.readScript).
        let scriptURL: URL
        do {
            scriptURL = try BundledScripts.resolve(script)
        } catch let error as ScriptRunError {
            FileHandle.standardError.write(Data("toymoe: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        let name = scriptURL.deletingPathExtension().lastPathComponent
        var params: [(String, String)] = []
        for a in assignments {
            let eq = a.firstIndex(of: "=")!
            params.append((String(a[..<eq]), String(a[a.index(after: eq)...])))
        }
        var options = ScriptRunOptions(
            script: scriptURL, params: params, out: URL(fileURLWithPath: out ?? "results/\(name)"), seed: seed,
            jobs: jobs, resume: resume, shard: try parsedShard(), quiet: quiet,
            memoryLimit: memoryLimit << 20, timeLimit: timeLimit, instructionLimit: instructionLimit,
            commandLine: CommandLine.arguments)
        options.inputs = try parsedInputs()
        options.allowMismatch = allowMismatch
        options.strictParameters = strict
        do { options.progress = ProgressReporter(options: try ProgressOptions.automatic(quiet: quiet, interval: progressInterval)) } catch {
            throw ValidationError("\(error)")
        }
        Interruption.install(
            out: options.out.path,
            advice: resume ? "run the same command again to continue" : "run the same command with --resume to continue")
        do {
            let outcome = try ScriptRunner.run(options)
            // Keys left out of results.npz are reported even with --quiet: a missing column is not noise.
            if !outcome.warnings.isEmpty {
                let lines = outcome.warnings.map { "toymoe: warning: " + $0 + "\n" }.joined()
                FileHandle.standardError.write(Data(lines.utf8))
            }
            if !quiet {
                FileHandle.standardError.write(Data((outcome.message + "\n").utf8))
            } else if !outcome.failures.isEmpty {  // failed replicates are reported even with --quiet
                let lines = outcome.failures.map { "toymoe: failed: " + $0.description + "\n" }.joined()
                FileHandle.standardError.write(Data(lines.utf8))
            }
        } catch let error as ScriptRunError {
            FileHandle.standardError.write(Data("toymoe: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `toymoe merge`: combines the cell files of sweep shards into one directory and writes the summary.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the shards of a sweep (run with --shard) into one directory and write its summary.")

    @Argument(help: "Destination directory (may be one of the shard directories).")
    var destination: String

    @Argument(help: "Shard directories to merge into the destination.")
    var sources: [String] = []

    @Flag(name: .customLong("allow-mismatch"), help: "Merge even when the shards' sweep.json differ (other script, parameters, seed, grid, selection, tool version or kernel variant); the differences are printed and recorded in sweep.json.")
    var allowMismatch = false

    func run() throws {
        // Same handler as `toymoe run`: merge writes each cell's files and then its cell file atomically, so an
        // interrupted merge leaves whole cells or unfinished ones, and running it again continues.
        Interruption.install(out: destination, advice: "run the same toymoe merge again to continue")
        do {
            let result = try SweepSummary.merge(
                destination: URL(fileURLWithPath: destination), sources: sources.map { URL(fileURLWithPath: $0) },
                allowMismatch: allowMismatch, commandLine: CommandLine.arguments)
            for w in result.skipped + result.warnings { FileHandle.standardError.write(Data("toymoe merge: warning: \(w)\n".utf8)) }
            if result.missing.isEmpty {
                print("merged \(result.merged) cells; the sweep is complete: \(destination)/summary.csv, \(destination)/results.npz")
            } else {
                let shown = result.missing.prefix(10).joined(separator: ", ")
                print("merged \(result.merged) cells; \(result.missing.count) still missing (\(shown)\(result.missing.count > 10 ? ", ..." : ""))")
                throw ExitCode(2)
            }
        } catch let error as SweepError {
            FileHandle.standardError.write(Data("toymoe merge: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}
