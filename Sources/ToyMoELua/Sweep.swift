import Foundation
import ToyMoE
import ToyMoEIO

// Sweeps as data. A script declares cells (a grid or an explicit list), replicates, a selection rule and a `run`
// function; this host enumerates the cells with stable ids, runs them on worker threads (each with its own Lua
// state), writes every finished cell atomically, skips finished cells on resume, runs a deterministic shard, and
// assembles a summary CSV and an NPZ of stacked results.
//
// Determinism: a cell's seed depends only on (run seed, the cell's parameters, replicate), never on which worker
// ran it or when, and the summary is assembled in cell order. So the result files are byte-identical whatever
// `--jobs` is, and a resumed sweep equals an uninterrupted one. Timings are kept out of result files for that reason
// (they go to `timings.csv`, which is not part of the result set).

/// How the replicates of a cell are reduced.
public enum SweepSelection: Sendable, Equatable {
    /// Keep every replicate: one summary row per (cell, replicate).
    case all
    /// Keep the replicate with the smallest value of the key (the paper's Fig. 4: lowest final loss).
    case minimize(String)
    /// Keep the replicate with the largest value of the key.
    case maximize(String)
}

/// A declared sweep: what to run, independent of how.
public struct SweepSpec: Sendable {
    public var name: String
    /// The cells, in enumeration order. Each is an object of parameter values.
    public var cells: [JSONObject]
    public var replicates: Int
    public var selection: SweepSelection
    /// Parameters that set what a model-step of a cell costs (`cost_by`): cells with equal values of them form one
    /// cost group, whose cost the progress display learns as a whole. Empty: every cell is its own group.
    /// Never part of the results (not in sweep.json): it changes only the ETA and the execution order.
    public var costBy: [String] = []
    /// In which order this run starts its pending cells. Results never depend on it (see `executionOrder`).
    public var schedule: Schedule = .spread

    public enum Schedule: String, Sendable, Equatable, CaseIterable {
        /// Spread over the grid (`executionOrder`), so the first cells represent the whole sweep (the ETA).
        case spread
        /// The declared cell order.
        case declared
    }

    public init(
        name: String, cells: [JSONObject], replicates: Int = 1, selection: SweepSelection = .all, costBy: [String] = [],
        schedule: Schedule = .spread
    ) {
        self.name = name
        self.cells = cells
        self.replicates = replicates
        self.selection = selection
        self.costBy = costBy
        self.schedule = schedule
    }

    /// The cost group of cell `index`: the values of its `costBy` parameters (compact JSON), or its id when
    /// `costBy` is empty.
    public func costGroup(_ index: Int) -> String {
        guard !costBy.isEmpty else { return cellID(index) }
        let values = costBy.map { cells[index][$0] ?? .null }
        return (try? JSONValue.array(values).serialized(options: .compact)) ?? cellID(index)
    }

    /// A permutation of 0..<n that spreads over the range: the i-th position is the first one not yet taken at or
    /// after ⌊frac(i·φ⁻¹)·n⌋ (cyclically), φ⁻¹ = (√5 − 1)/2, a low-discrepancy (Kronecker) sequence. So any prefix
    /// of it samples the whole range nearly evenly: the first 4 of 20 are 0, 12, 4, 17. Deterministic (IEEE
    /// arithmetic on exact integers and one constant).
    public static func spreadOrder(_ n: Int) -> [Int] {
        guard n > 1 else { return Array(0..<n) }
        let g = (5.0.squareRoot() - 1) / 2
        // nextFree[p]: the first free position at or after p (path-compressed; n means wrap to 0).
        var nextFree = Array(0...n)
        func find(_ p: Int) -> Int {
            var root = p
            while nextFree[root] != root { root = nextFree[root] }
            var q = p
            while nextFree[q] != root {
                let up = nextFree[q]
                nextFree[q] = root
                q = up
            }
            return root
        }
        var order: [Int] = []
        order.reserveCapacity(n)
        for i in 0..<n {
            let x = Double(i) * g
            var p = Swift.min(n - 1, Int(((x - x.rounded(.down)) * Double(n)).rounded(.down)))
            p = find(p)
            if p == n { p = find(0) }
            order.append(p)
            nextFree[p] = p + 1
        }
        return order
    }

    /// The order in which a run starts `pending` (cell indices, in cell order). `.declared`: as given. `.spread`
    /// without `costBy`: `spreadOrder` over the pending cells. `.spread` with `costBy`: round-robin over the cost
    /// groups (taken in spread order of their first appearance), each group's cells in spread order, so every group
    /// runs a cell as early as possible and the display learns each group's cost.
    /// Results do not depend on the order: a cell's seed derives from its parameters, each cell writes its own
    /// files, and the summary is assembled in cell order.
    public func executionOrder(_ pending: [Int]) -> [Int] {
        guard schedule == .spread else { return pending }
        guard !costBy.isEmpty else { return Self.spreadOrder(pending.count).map { pending[$0] } }
        var names: [String] = []
        var members: [String: [Int]] = [:]
        for index in pending {
            let g = costGroup(index)
            if members[g] == nil { names.append(g) }
            members[g, default: []].append(index)
        }
        let groupOrder = Self.spreadOrder(names.count).map { names[$0] }
        let lists = groupOrder.map { g in Self.spreadOrder(members[g]!.count).map { members[g]![$0] } }
        var order: [Int] = []
        order.reserveCapacity(pending.count)
        var round = 0
        while order.count < pending.count {
            for list in lists where round < list.count { order.append(list[round]) }
            round += 1
        }
        return order
    }

    /// Cartesian product of `axes` in the given order; the last axis varies fastest.
    public static func grid(_ axes: [(String, [JSONValue])]) -> [JSONObject] {
        var cells: [JSONObject] = [JSONObject()]
        for (key, values) in axes {
            var next: [JSONObject] = []
            next.reserveCapacity(cells.count * values.count)
            for cell in cells {
                for v in values {
                    var c = cell
                    c[key] = v
                    next.append(c)
                }
            }
            cells = next
        }
        return axes.isEmpty ? [] : cells
    }

    /// The stable id of cell `index`: its zero-padded position (ids sort in enumeration order).
    public func cellID(_ index: Int) -> String {
        let width = max(4, String(cells.count - 1).count)
        let digits = String(index)
        return "c" + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The seed of (cell, replicate): a hash of the run seed, the cell's canonical parameter text and the replicate.
    /// Reordering or extending a grid therefore keeps every existing cell's seed.
    public static func cellSeed(runSeed: UInt64, params: JSONObject, replicate: Int) -> UInt64 {
        let canonical = (try? JSONValue.object(params.sortedByKey()).serialized(options: .compact)) ?? ""
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64 over the canonical parameter text
        for byte in canonical.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        var rng = RandomStream(seed: runSeed, path: [h, UInt64(replicate), 0x5357_4545_50])  // "SWEEP"
        return rng.next()
    }
}

/// What a worker is told about the cell it runs.
public struct CellContext: Sendable {
    public var cellID: String
    public var index: Int
    public var replicate: Int
    public var seed: UInt64
    /// Where this replicate may write files of its own: `OUT/cells/<id>/r<replicate>/` (created on demand by the
    /// bindings). Every replicate has its own, so no two replicates can write the same file.
    public var directory: URL
}

/// Runs cells; one per worker thread, created on that thread (a Lua state must stay on one thread).
public protocol SweepWorker: AnyObject {
    /// Runs one replicate of one cell and returns its results (scalars and numeric arrays; numbers may be NaN or
    /// ±Inf). Keys in `SweepSummary.reservedKeys` or starting with a reserved prefix are refused by the host.
    /// Throws `SweepCellFailure` when the replicate failed in a way that is a result (a diverged training):
    /// the host records it and goes on. Any other error stops the sweep.
    func run(params: JSONObject, context: CellContext) throws -> JSONObject
}

/// A replicate that failed deterministically (its training diverged: the loss became NaN or ±Inf). It is a finished
/// result: the cell file records it under `failures`, the summary marks its row, and `--resume` does not redo it.
public struct SweepCellFailure: Error, Sendable {
    /// 0-based training step at which the failure was detected (files count from 0; see docs/LUA_API.md).
    public var step: Int
    public var reason: String
    /// Whatever results the replicate still produced (may be empty).
    public var results: JSONObject
    public init(step: Int, reason: String, results: JSONObject = JSONObject()) {
        self.step = step
        self.reason = reason
        self.results = results
    }
}

/// One failed replicate, as read back from a cell file.
public struct SweepFailureRecord: Sendable, Equatable {
    public var cellID: String
    public var replicate: Int
    public var step: Int
    public var reason: String
    public var description: String { "\(cellID) replicate \(replicate): diverged at step \(step): \(reason)" }
}

/// Errors of the sweep host, with the cell they concern.
public struct SweepError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// Where a sweep keeps its files:
///   OUT/cells/<id>.json   one finished cell (written atomically: present ⇔ finished)
///   OUT/cells/<id>/r<R>/  files the cell's replicate R (0-based) saved; removed when an unfinished cell is rerun
///   OUT/sweep.json        the declared cells (so `merge` and `--resume` can check consistency)
///   OUT/summary.csv       one row per kept replicate, written when every cell is finished
///   OUT/results.npz       numeric parameters and results stacked over those rows
///   OUT/timings.csv       wall time per cell, appended as each cell finishes (not part of the reproducible result set)
public struct SweepLayout: Sendable {
    public var root: URL
    public var cellsDirectory: URL { root.appendingPathComponent("cells", isDirectory: true) }
    public func cellFile(_ id: String) -> URL { cellsDirectory.appendingPathComponent("\(id).json") }
    /// The directory of cell `id`'s own files (one subdirectory per replicate).
    public func cellDirectory(_ id: String) -> URL { cellsDirectory.appendingPathComponent(id, isDirectory: true) }
    /// Replicate `replicate` (0-based)'s directory, relative to the root: `cells/<id>/r<replicate>`.
    public static func replicatePath(_ id: String, _ replicate: Int) -> String { "cells/\(id)/r\(replicate)" }
    public func replicateDirectory(_ id: String, _ replicate: Int) -> URL {
        root.appendingPathComponent(Self.replicatePath(id, replicate), isDirectory: true)
    }
    public var specFile: URL { root.appendingPathComponent("sweep.json") }
    public var summaryCSV: URL { root.appendingPathComponent("summary.csv") }
    public var resultsNPZ: URL { root.appendingPathComponent("results.npz") }
    public var timings: URL { root.appendingPathComponent("timings.csv") }
    public init(root: URL) { self.root = root }
}

/// Runs a sweep.
public final class SweepRunner: @unchecked Sendable {
    public let spec: SweepSpec
    public let layout: SweepLayout
    public let seed: UInt64
    public let jobs: Int
    /// (index, count): run only cells with `cellIndex % count == index`.
    public let shard: (index: Int, count: Int)
    public let resume: Bool
    public let progress: ProgressReporter
    /// What else determines the results (script, parameters, version, kernels); recorded in sweep.json and compared
    /// on resume. nil only for hosts that run no script (tests of the host itself).
    public let fingerprint: SweepFingerprint?
    /// Continue even when sweep.json's declaration or fingerprint differs (the differences are printed and recorded).
    public let allowMismatch: Bool
    /// Steps trained so far, reported by workers (for steps/s).
    let stepsLock = NSLock()
    var stepCount = 0
    /// Result keys the last summary left out of results.npz, one message each (empty when none).
    public private(set) var summaryWarnings: [String] = []

    public init(
        spec: SweepSpec, root: URL, seed: UInt64, jobs: Int = 1, shard: (index: Int, count: Int) = (0, 1),
        resume: Bool = false, progress: ProgressReporter = ProgressReporter(quiet: true),
        fingerprint: SweepFingerprint? = nil, allowMismatch: Bool = false
    ) throws {
        guard !spec.cells.isEmpty else { throw SweepError("sweep '\(spec.name)': the sweep has no cells (empty grid or list)") }
        guard spec.replicates >= 1 else { throw SweepError("sweep '\(spec.name)': replicates must be at least 1, got \(spec.replicates)") }
        guard jobs >= 1 else { throw SweepError("--jobs must be at least 1, got \(jobs)") }
        guard shard.count >= 1, shard.index >= 0, shard.index < shard.count else {
            throw SweepError("--shard: expected I/N with 0 ≤ I < N, got \(shard.index)/\(shard.count)")
        }
        self.spec = spec
        self.layout = SweepLayout(root: root)
        self.seed = seed
        self.jobs = jobs
        self.shard = shard
        self.resume = resume
        self.progress = progress
        self.fingerprint = fingerprint
        self.allowMismatch = allowMismatch
    }

    /// Adds trained steps to the progress counter (called by workers; thread-safe).
    public func addSteps(_ n: Int) {
        stepsLock.lock()
        stepCount += n
        stepsLock.unlock()
    }

    /// The JSON written to sweep.json.
    func specJSON() -> JSONValue {
        let selection: JSONValue
        switch spec.selection {
        case .all: selection = "all"
        case .minimize(let k): selection = .object(["minimize": .string(k)])
        case .maximize(let k): selection = .object(["maximize": .string(k)])
        }
        var json: JSONObject = [
            "name": .string(spec.name), "seed": .string(String(seed)), "replicates": .int(spec.replicates),
            "select": selection, "cells": .array(spec.cells.map { .object($0) }),
        ]
        if let fingerprint { json["fingerprint"] = fingerprint.json }
        return .object(json)
    }

    /// Indices of this shard's cells.
    public var shardIndices: [Int] { spec.cells.indices.filter { $0 % shard.count == shard.index } }

    /// True if a valid finished-cell file exists for `index` with matching parameters and seed.
    func isFinished(_ index: Int) -> Bool {
        let url = layout.cellFile(spec.cellID(index))
        guard let json = try? JSONValue(contentsOf: url), let obj = json.objectValue else { return false }
        return obj["params"] == .object(spec.cells[index]) && obj["run_seed"] == .string(String(seed))
    }

    /// Runs the shard's unfinished cells with `jobs` threads; `makeWorker` is called once on each thread.
    /// Returns true if every cell of the whole sweep is finished afterwards (then the summary has been written).
    @discardableResult
    public func run(makeWorker: @escaping @Sendable (Int) throws -> SweepWorker) throws -> Bool {
        let fm = FileManager.default
        // The host writes cell files itself (not through the scripts' confined names): refuse a cells/ that is a
        // symbolic link leading out of the output directory, rather than write results elsewhere.
        var linkStat = stat()
        if lstat(layout.cellsDirectory.path, &linkStat) == 0, (linkStat.st_mode & S_IFMT) == S_IFLNK {
            let target = ScriptContext.realPath(layout.cellsDirectory.path)
            let root = ScriptContext.realPath(layout.root.path) ?? layout.root.path
            if target == nil || !(target! == root || target!.hasPrefix(root + "/")) {
                throw SweepError(
                    "\(layout.cellsDirectory.path) is a symbolic link to \(target ?? "a missing target"), outside the output directory \(root); remove it or use another --out")
            }
        }
        try AtomicFile.createDirectory(at: layout.cellsDirectory)
        // A sweep.json from another declaration, script, parameters, version or kernels means another experiment:
        // refuse to mix their cells, naming what differs (unless explicitly allowed, which is then recorded).
        if let existing = try? JSONValue(contentsOf: layout.specFile) {
            let differences = SweepFingerprint.differences(existing, specJSON())
            if !differences.isEmpty {
                guard allowMismatch else {
                    throw SweepError(
                        "\(layout.root.path) holds a different run of a sweep; its cells would not be the results of this command. Differences (recorded vs now):\n  "
                            + differences.joined(separator: "\n  ")
                            + "\nUse another --out, or pass --allow-mismatch to mix them anyway (recorded in sweep.json).")
                }
                FileHandle.standardError.write(Data(
                    ("toymoe: warning: --allow-mismatch: continuing a sweep recorded with other settings (recorded vs now):\n  "
                        + differences.joined(separator: "\n  ") + "\n").utf8))
                try SweepSummary.recordMismatches(differences, in: layout.specFile)
            }
            if !resume && fm.fileExists(atPath: layout.cellsDirectory.path),
                !(try fm.contentsOfDirectory(atPath: layout.cellsDirectory.path)).filter({ $0.hasSuffix(".json") }).isEmpty
            {
                throw SweepError("\(layout.root.path) already holds finished cells of this sweep; pass --resume to continue it or use another --out")
            }
        } else {
            try specJSON().write(to: layout.specFile)
        }
        // Leftover temporary files of an interrupted atomic write are garbage, never results: remove them from
        // OUT, OUT/cells and each cell's own directory. Only names this tool provably made
        // (`AtomicFile.isTemporaryName`: `.NAME.toymoe-tmp-` + 16 hex digits) and only regular files are deleted,
        // and only in real directories: a symbolic link (a cell directory linked elsewhere, a linked file) is
        // never followed, so nothing outside OUT and nothing of the user's (`.notes.tmp-draft`) is touched.
        func isRealDirectory(_ url: URL) -> Bool {
            var st = stat()
            return lstat(url.path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }
        var directories = [layout.root, layout.cellsDirectory].filter(isRealDirectory)
        if directories.contains(layout.cellsDirectory) {
            for name in (try? fm.contentsOfDirectory(atPath: layout.cellsDirectory.path)) ?? [] where !name.hasPrefix(".") {
                let url = layout.cellsDirectory.appendingPathComponent(name, isDirectory: true)
                if isRealDirectory(url) { directories.append(url) }
            }
        }
        for directory in directories {
            for name in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? [] where AtomicFile.isTemporaryName(name) {
                let path = directory.appendingPathComponent(name).path
                var st = stat()
                if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { _ = unlink(path) }
            }
        }

        let mine = shardIndices
        // The run order only (see `SweepSpec.executionOrder`): every file below is keyed by the cell, not by when it ran.
        let pending = spec.executionOrder(mine.filter { !isFinished($0) })
        // An unfinished cell's directory holds what an interrupted attempt saved (possibly only some replicates'
        // files): start it afresh, so every file under a finished cell is from the attempt that finished it.
        for index in pending {
            let directory = layout.cellDirectory(spec.cellID(index))
            // A link in the cell's place is not the tool's to delete, nor a place to write through: refuse it.
            var st = stat()
            if lstat(directory.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
                let target = (try? fm.destinationOfSymbolicLink(atPath: directory.path)) ?? "?"
                throw SweepError("\(directory.path) is a symbolic link to \(target), outside the sweep's own tree: toymoe neither writes through nor deletes a link in a cell's place; remove the link and run again")
            }
            if fm.fileExists(atPath: directory.path) {
                do { try fm.removeItem(at: directory) } catch {
                    throw SweepError("cannot remove \(directory.path), left by an unfinished attempt at the cell: \(error.localizedDescription)")
                }
            }
        }
        let skipped = mine.count - pending.count
        let done = skipped
        let workers = min(jobs, max(1, pending.count))
        progress.beginSweep(
            cells: pending.count, resumed: skipped, replicates: spec.replicates, workers: workers,
            groups: spec.costBy.isEmpty ? nil : pending.map { spec.costGroup($0) })
        defer { progress.endSweep() }

        let timingsLog = TimingsLog(url: layout.timings)
        let state = WorkQueue(pending: pending, done: done)
        let group = DispatchGroup()
        for w in 0..<workers {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                let worker: SweepWorker
                do {
                    worker = try makeWorker(w)
                } catch {
                    state.fail(error)
                    return
                }
                while let index = state.take() {
                    progress.cellStarted(slot: w, group: spec.costGroup(index))
                    let started = Date()
                    do {
                        try runCell(index, worker: worker)
                    } catch {
                        state.fail(error)
                        return
                    }
                    let seconds = Date().timeIntervalSince(started)
                    _ = state.finish()
                    timingsLog?.append("\(spec.cellID(index)),\(String(format: "%.3f", seconds))\n")
                    progress.cellFinished(slot: w)
                }
            }
            thread.stackSize = 16 << 20  // Lua recursion and deep Swift frames need more than the 512 KiB default
            thread.start()
        }
        group.wait()
        if let error = state.firstError { throw error }
        let complete = spec.cells.indices.allSatisfy { isFinished($0) }
        if complete { try writeSummary() }
        return complete
    }

    /// Runs every replicate of one cell, applies the selection and writes the cell file atomically.
    func runCell(_ index: Int, worker: SweepWorker) throws {
        let id = spec.cellID(index)
        let params = spec.cells[index]
        var replicates: [JSONValue] = []
        var values: [Double] = []
        var failures: [JSONValue] = []
        for r in 0..<spec.replicates {
            let s = SweepSpec.cellSeed(runSeed: seed, params: params, replicate: r)
            let ctx = CellContext(
                cellID: id, index: index, replicate: r, seed: s, directory: layout.replicateDirectory(id, r))
            var result: JSONObject
            var failed = false
            do {
                result = try worker.run(params: params, context: ctx)
            } catch let failure as SweepCellFailure {
                result = failure.results
                failed = true
                failures.append(.object(["replicate": .int(r), "step": .int(failure.step), "reason": .string(failure.reason)]))
            }
            // Checked here, at the first replicate that returns one, not when the summary is assembled after every
            // cell has run.
            if let problem = SweepSummary.reservedKeyProblem(result) {
                throw SweepError("cell \(id) replicate \(r): \(problem)")
            }
            let selectionValue: Double? = {
                switch spec.selection {
                case .all: return nil
                case .minimize(let key), .maximize(let key): return result[key]?.doubleValue
                }
            }()
            result = SweepSummary.encodeNonFinite(result)
            result["seed"] = .string(String(s))
            switch spec.selection {
            case .all: break
            case .minimize(let key), .maximize(let key):
                if failed {  // a failed replicate is never kept while another one succeeded
                    values.append(spec.selection == .minimize(key) ? .infinity : -.infinity)
                    break
                }
                guard let v = selectionValue else {
                    throw SweepError("cell \(id) replicate \(r): the selection key '\(key)' is missing from run's result or is not a number")
                }
                values.append(v.isNaN ? (spec.selection == .minimize(key) ? .infinity : -.infinity) : v)
            }
            replicates.append(.object(result))
        }
        var selected: JSONValue = .null
        switch spec.selection {
        case .all: break
        case .minimize:
            selected = .int(values.indices.min { values[$0] < values[$1] } ?? 0)  // first of equal minima
        case .maximize:
            selected = .int(values.indices.min { values[$0] > values[$1] } ?? 0)
        }
        let cell: JSONValue = .object([
            "id": .string(id), "index": .int(index), "run_seed": .string(String(seed)), "params": .object(params),
            "selected": selected, "replicates": .array(replicates), "failures": .array(failures),
        ])
        do {
            try cell.write(to: layout.cellFile(id), options: JSONWriteOptions(nonFinite: .null))
        } catch {
            // Nothing half-written is left behind (the write is atomic): the cell is simply not finished.
            throw SweepError("cell \(id): cannot record the finished cell: \(error)")
        }
    }


    /// The failed replicates of this shard's finished cells, in cell order (including cells finished earlier).
    public func failures() -> [SweepFailureRecord] {
        shardIndices.flatMap { index -> [SweepFailureRecord] in
            let id = spec.cellID(index)
            guard let json = try? JSONValue(contentsOf: layout.cellFile(id)) else { return [] }
            return SweepSummary.failureRecords(json, id: id)
        }
    }

    /// Builds summary.csv and results.npz from the cell files, in cell order.
    public func writeSummary() throws {
        summaryWarnings = try SweepSummary.write(spec: spec, layout: layout)
    }
}

/// `timings.csv`, one line per cell as it finishes (in finish order), so a sweep killed later keeps the timings of
/// the cells it finished. Each line goes out in one `write(2)` on an O_APPEND descriptor: a kill cannot leave half
/// a line, and concurrent workers' lines never interleave. Not part of the reproducible result set (wall times).
final class TimingsLog: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()

    /// Opens (creating with its header) the log; nil if it cannot be opened (timings are then not recorded, which
    /// loses no result).
    init?(url: URL) {
        let fd = open(url.path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { return nil }
        self.fd = fd
        var info = stat()
        if fstat(fd, &info) == 0, info.st_size == 0 { append("cell_id,seconds\n") }
    }

    deinit { close(fd) }

    func append(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
    }
}

/// The shared state of a sweep's worker threads: the next pending cell, the first error (which stops every
/// worker after its current cell), and the finished count.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private let pending: [Int]
    private var next = 0
    private var done: Int
    private(set) var firstError: Error?

    init(pending: [Int], done: Int) {
        self.pending = pending
        self.done = done
    }

    /// The next cell index to run, or nil when none is left or a worker failed.
    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard firstError == nil, next < pending.count else { return nil }
        next += 1
        return pending[next - 1]
    }

    func fail(_ error: Error) {
        lock.lock()
        if firstError == nil { firstError = error }
        lock.unlock()
    }

    /// Records a finished cell; returns the number of finished cells.
    func finish() -> Int {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        return done
    }
}

/// Assembling the summary of a complete sweep from its cell files.
public enum SweepSummary {
    /// Result keys `run` may not return: the summary's own columns and NPZ members (`seed` also because the host
    /// stores each replicate's seed under it in the cell file).
    public static let reservedKeys = ["cell_id", "replicate", "seed", "status", "failed", "failed_step", "failure_reason"]
    /// Parameter (grid axis or cell key) names refused when the sweep is declared: summary.csv's own columns.
    public static let reservedParameterNames = ["cell_id", "replicate", "status", "failed_step", "failure_reason"]
    /// Reserved prefixes: `param_` names parameters in results.npz, `result_` a result whose name is also a
    /// parameter's in summary.csv.
    public static let reservedPrefixes = ["param_", "result_"]
    /// How a non-finite number is stored in a cell file (JSON has no NaN or Infinity): `{"non_finite": "inf"}`,
    /// `"-inf"` or `"nan"`. A result table of exactly this shape is therefore refused too.
    public static let nonFiniteTag = "non_finite"

    /// Why `result` may not be recorded (a reserved key), or nil.
    static func reservedKeyProblem(_ result: JSONObject) -> String? {
        let reservedList = "reserved: \(reservedKeys.joined(separator: ", ")) and names starting with \(reservedPrefixes.joined(separator: " or "))"
        for key in result.keys {
            // results.npz names an array by its key, so a key that is not a valid NPZ name would fail only when
            // the summary is written, after every cell ran: refuse it here, at the first cell that returns it.
            if key.isEmpty || key.contains("\0") || key.utf8.count > 65531 {
                let shown = key.count > 40 ? String(String(reflecting: key).prefix(40)) + "...\" (\(key.utf8.count) bytes)" : String(reflecting: key)
                return "run returned the result key \(shown), which cannot name an array in results.npz (a key must be non-empty, contain no NUL and be at most 65531 UTF-8 bytes); rename it"
            }
            if reservedKeys.contains(key) || reservedPrefixes.contains(where: { key.hasPrefix($0) }) {
                return "run returned the result key '\(key)', which is reserved for the sweep's own columns (\(reservedList)); rename it"
            }
        }
        for (k, v) in result.entries {
            if let p = taggedPath(v, k) {
                return "run returned \(p) = {\(nonFiniteTag) = ...}, a table shape reserved for storing NaN and ±Inf; rename its key"
            }
        }
        return nil
    }

    /// The path (Lua-style, 1-based list indices) of the first table in `v` that has the shape reserved for a
    /// non-finite number (`{non_finite = ...}` and no other key), or nil. Such a table would read back as a number.
    static func taggedPath(_ v: JSONValue, _ path: String) -> String? {
        switch v {
        case .object(let o):
            if o.count == 1, o[nonFiniteTag] != nil { return path }
            for (k, x) in o.entries { if let p = taggedPath(x, "\(path).\(k)") { return p } }
        case .array(let a):
            for (i, x) in a.enumerated() { if let p = taggedPath(x, "\(path)[\(i + 1)]") { return p } }
        default: break
        }
        return nil
    }

    /// Replaces NaN and ±Inf (anywhere in the value) by their tagged form, for writing a cell file.
    static func encodeNonFinite(_ o: JSONObject) -> JSONObject {
        var out = JSONObject()
        for (k, v) in o.entries { out[k] = encodeNonFinite(v) }
        return out
    }

    /// Replaces NaN and ±Inf anywhere in `v` by `{"non_finite": "nan"|"inf"|"-inf"}`: the one encoding of
    /// non-finite numbers in every JSON file the tool writes (cell files, result.json, save_json, metrics.json),
    /// since JSON has no NaN or Infinity and null would lose which one it was. `decodeNonFinite` reverses it.
    public static func encodeNonFinite(_ v: JSONValue) -> JSONValue {
        switch v {
        case .number(let d) where !d.isFinite:
            return .object([nonFiniteTag: .string(d.isNaN ? "nan" : d > 0 ? "inf" : "-inf")])
        case .array(let a): return .array(a.map { encodeNonFinite($0) })
        case .object(let o): return .object(encodeNonFinite(o))
        default: return v
        }
    }

    /// The number a tagged non-finite value stands for, or nil.
    static func nonFinite(_ v: JSONValue) -> Double? {
        guard case .object(let o) = v, o.count == 1, let t = o[nonFiniteTag]?.stringValue else { return nil }
        switch t {
        case "inf": return .infinity
        case "-inf": return -.infinity
        case "nan": return .nan
        default: return nil
        }
    }

    /// A cell file's value with tagged non-finite numbers turned back into numbers (for Lua's `finish` rows).
    public static func decodeNonFinite(_ v: JSONValue) -> JSONValue {
        if let d = nonFinite(v) { return .number(d) }
        switch v {
        case .array(let a): return .array(a.map(decodeNonFinite))
        case .object(let o):
            var out = JSONObject()
            for (k, x) in o.entries { out[k] = decodeNonFinite(x) }
            return .object(out)
        default: return v
        }
    }

    /// Records, in sweep.json, differences accepted with `--allow-mismatch` (kept across runs, each once, newest last).
    static func recordMismatches(_ differences: [String], in specFile: URL) throws {
        guard case .object(var json) = try JSONValue(contentsOf: specFile) else { return }
        var list = json["accepted_mismatches"]?.arrayValue ?? []
        for d in differences where !list.contains(.string(d)) { list.append(.string(d)) }
        json["accepted_mismatches"] = .array(list)
        try JSONValue.object(json).write(to: specFile)
    }

    /// Rows: one per cell (selection) or per (cell, replicate) (all). Columns: cell_id, replicate, parameters,
    /// then every scalar result key in first-seen order. Arrays of numbers go to results.npz only.
    /// Returns warnings, one per result key left out of results.npz (ragged shapes or mixed kinds), saying why.
    @discardableResult
    public static func write(spec: SweepSpec, layout: SweepLayout) throws -> [String] {
        var rows: [(id: String, replicate: Int, params: JSONObject, result: JSONObject, failure: SweepFailureRecord?)] = []
        for index in spec.cells.indices {
            let id = spec.cellID(index)
            let json = try JSONValue(contentsOf: layout.cellFile(id))
            guard let reps = json["replicates"]?.arrayValue else { throw SweepError("cell file \(id).json is malformed") }
            let failures = failureRecords(json, id: id)
            func failure(_ r: Int) -> SweepFailureRecord? { failures.first { $0.replicate == r } }
            if let sel = json["selected"]?.intValue {
                rows.append((id, sel, spec.cells[index], reps[sel].objectValue ?? JSONObject(), failure(sel)))
            } else {
                for (r, rep) in reps.enumerated() {
                    rows.append((id, r, spec.cells[index], rep.objectValue ?? JSONObject(), failure(r)))
                }
            }
        }
        var paramKeys: [String] = []
        var resultKeys: [String] = []
        for row in rows {
            for k in row.params.keys where !paramKeys.contains(k) { paramKeys.append(k) }
            for (k, v) in row.result.entries where !resultKeys.contains(k) && isScalar(v) { resultKeys.append(k) }
        }
        // Every summary ends with the row's status: "ok", or "diverged" with the (0-based) step and the reason.
        // Result keys cannot be reserved names (refused when run returned them), so only a parameter's name can
        // clash with a result's: that result's column is `result_<key>`.
        let statusKeys = ["status", "failed_step", "failure_reason"]
        let resultColumns = resultKeys.map { paramKeys.contains($0) || statusKeys.contains($0) ? "result_\($0)" : $0 }
        var csv = (["cell_id", "replicate"] + paramKeys + resultColumns + statusKeys)
            .map(csvField).joined(separator: ",") + "\n"
        for row in rows {
            var fields = [row.id, String(row.replicate)]
            fields += paramKeys.map { csvValue(row.params[$0]) }
            fields += resultKeys.map { csvValue(row.result[$0]) }
            if let f = row.failure {
                fields += ["diverged", String(f.step), f.reason]
            } else {
                fields += ["ok", "", ""]
            }
            csv += fields.map(csvField).joined(separator: ",") + "\n"
        }
        try AtomicFile.write(csv, to: layout.summaryCSV)

        // NPZ: numeric parameters and results, stacked over rows. A row without the key contributes NaN (of the
        // key's shape; the array is then float64). Keys that cannot be stacked (shapes that differ between rows,
        // numbers mixed with strings or tables) are left out with a warning; keys that are strings in every row
        // are CSV columns only, silently (documented).
        var warnings: [String] = []
        var arrays: [(String, NpyArray)] = []
        arrays.append(("replicate", try NpyArray(int64: rows.map { Int64($0.replicate) })))
        // An integer that float64 cannot hold exactly, in a column that is float64 because other values are not
        // integers: refused, naming the row's cell and replicate, rather than stored rounded.
        func stacked(_ values: [JSONValue?], _ what: String) throws -> Stacked {
            do {
                return try stack(values)
            } catch let e as InexactInteger {
                let row = rows[e.row]
                throw SweepError(
                    "\(what) of cell \(row.id) replicate \(row.replicate) is the integer \(e.value), which results.npz cannot "
                        + "store exactly: the column is float64 because other values of it are not integers, and float64 holds "
                        + "integers exactly only up to 2^53 (9007199254740992); return integers only for this key, or a float")
            }
        }
        for key in paramKeys {
            switch try stacked(rows.map { $0.params[key] }, "parameter '\(key)'") {
            case .array(let a): arrays.append(("param_" + key, a))
            case .omitted(let why): warnings.append("parameter '\(key)' is not in results.npz: \(why)")
            case .strings: break
            }
        }
        var resultArrayKeys = resultKeys
        for row in rows { for k in row.result.keys where !resultArrayKeys.contains(k) { resultArrayKeys.append(k) } }
        for key in resultArrayKeys where key != "seed" {
            switch try stacked(rows.map { $0.result[key] }, "result '\(key)'") {
            case .array(let a): arrays.append((key, a))
            case .omitted(let why): warnings.append("result '\(key)' is not in results.npz: \(why) (it stays in cells/*.json)")
            case .strings: break
            }
        }
        arrays.append(("failed", try NpyArray(int64: rows.map { $0.failure == nil ? 0 : 1 })))
        // 0-based like numpy; -1 (never a step) when the row did not fail.
        arrays.append(("failed_step", try NpyArray(int64: rows.map { Int64($0.failure?.step ?? -1) })))
        try Npz.write(arrays, to: layout.resultsNPZ)
        return warnings
    }

    /// The failed replicates recorded in a cell file (none for cell files written before failures were recorded).
    public static func failureRecords(_ cell: JSONValue, id: String) -> [SweepFailureRecord] {
        (cell["failures"]?.arrayValue ?? []).compactMap { f in
            guard let r = f["replicate"]?.intValue, let step = f["step"]?.intValue else { return nil }
            return SweepFailureRecord(cellID: id, replicate: r, step: step, reason: f["reason"]?.stringValue ?? "")
        }
    }

    static func isScalar(_ v: JSONValue) -> Bool {
        switch v {
        case .int, .number, .bool, .string, .null: return true
        default: return nonFinite(v) != nil
        }
    }

    /// One number of a result as the cell file holds it: an integer stays an integer (exact), so that a key whose
    /// values are all integers can be stored as int64 without passing through a Double (which is exact only up to
    /// 2^53 and cannot hold Int64.max at all).
    enum Number {
        case int(Int)
        case double(Double)
    }

    /// Flattens a numeric JSON value: (shape, values) or nil when not a rectangular numeric array/scalar.
    static func numeric(_ v: JSONValue?) -> ([Int], [Number])? {
        guard let v else { return nil }
        if let d = nonFinite(v) { return ([], [.double(d)]) }
        switch v {
        case .int(let i): return ([], [.int(i)])
        case .number(let d): return ([], [.double(d)])
        case .bool(let b): return ([], [.double(b ? 1 : 0)])
        case .null: return ([], [.double(.nan)])
        case .array(let items):
            var shape: [Int]? = nil
            var flat: [Number] = []
            for item in items {
                guard let (s, vals) = numeric(item) else { return nil }
                if let shape, shape != s { return nil }
                shape = s
                flat += vals
            }
            return ([items.count] + (shape ?? []), flat)
        default: return nil
        }
    }

    enum Stacked {
        case array(NpyArray)
        /// Strings in every row that has the key: a CSV column, not an array.
        case strings
        case omitted(String)
    }

    /// An integer of a float64 column that a Double cannot hold exactly (|value| above 2^53 and not a multiple of
    /// the spacing there): storing it would silently change it, so the summary refuses.
    struct InexactInteger: Error {
        var row: Int
        var value: Int
    }

    /// Stacks one key over the rows. Absent values (nil) become NaN of the common shape.
    /// Dtype: int64 when every row holds the key and every value in it is an integer (exact, any Int64);
    /// otherwise float64, and an integer there that float64 cannot represent exactly throws `InexactInteger`.
    static func stack(_ values: [JSONValue?]) throws -> Stacked {
        let present = values.compactMap { $0 }
        if !present.isEmpty && present.allSatisfy({ if case .string = $0 { return true } else { return false } }) {
            return .strings
        }
        var shape: [Int]? = nil
        var parts: [[Number]?] = []
        for (row, v) in values.enumerated() {
            guard let v else {
                parts.append(nil)
                continue
            }
            guard let (s, vals) = numeric(v) else {
                let kind: String
                switch v {
                case .string: kind = "a string"
                case .object: kind = "a table with named keys"
                default: kind = "a list that is ragged or holds non-numbers"
                }
                return .omitted("row \(row) holds \(kind), other rows numbers")
            }
            if let shape, shape != s {
                return .omitted("its shape differs between rows (\(shape) in earlier rows, \(s) in row \(row))")
            }
            shape = s
            parts.append(vals)
        }
        let shape_ = shape ?? []
        let full = [values.count] + shape_
        let allInts = parts.allSatisfy { part in
            guard let part else { return false }
            return part.allSatisfy { if case .int = $0 { return true } else { return false } }
        }
        if allInts {
            let ints = parts.flatMap { part in part!.map { n -> Int64 in if case .int(let i) = n { return Int64(i) } else { return 0 } } }
            return .array(try NpyArray(int64: ints, shape: full))
        }
        let size = shape_.reduce(1, *)
        var flat: [Double] = []
        flat.reserveCapacity(values.count * size)
        for (row, part) in parts.enumerated() {
            guard let part else {
                flat += [Double](repeating: .nan, count: size)
                continue
            }
            for n in part {
                switch n {
                case .double(let d): flat.append(d)
                case .int(let i):
                    guard let d = Double(exactly: i) else { throw InexactInteger(row: row, value: i) }
                    flat.append(d)
                }
            }
        }
        return .array(try NpyArray(float64: flat, shape: full))
    }

    /// A CSV field: numbers as Swift prints them, ±Inf as `inf`/`-inf`, NaN (and JSON null) as `nan`.
    static func csvValue(_ v: JSONValue?) -> String {
        guard let v else { return "" }
        if let d = nonFinite(v) { return d.isNaN ? "nan" : d > 0 ? "inf" : "-inf" }
        switch v {
        case .int(let i): return String(i)
        case .number(let d): return d.isFinite ? "\(d)" : d.isNaN ? "nan" : d > 0 ? "inf" : "-inf"
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return s
        case .null: return "nan"
        default: return (try? v.serialized(options: JSONWriteOptions(pretty: false, nonFinite: .null))) ?? ""
        }
    }

    static func csvField(_ s: String) -> String {
        if s.contains(",") || s.contains("\"") || s.contains("\n") {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }

    /// `toymoe merge`: copies the finished cells of `sources` (each cell file with its directory of saved files)
    /// into `destination` (which must hold, or receives, the same sweep.json: same declaration and fingerprint),
    /// then writes the summary if the union is complete. Holds the destination's lock meanwhile.
    /// Returns (cells merged, missing, warnings about results.npz, cell files skipped with the reason each).
    public static func merge(
        destination: URL, sources: [URL], allowMismatch: Bool = false, commandLine: [String] = []
    ) throws -> (merged: Int, missing: [String], warnings: [String], skipped: [String]) {
        let fm = FileManager.default
        let dest = SweepLayout(root: destination)
        try AtomicFile.createDirectory(at: destination)
        let lock = try OutputLock(directory: destination, commandLine: commandLine)
        defer { withExtendedLifetime(lock) {} }
        try AtomicFile.createDirectory(at: dest.cellsDirectory)
        var specJSON: JSONValue? = try? JSONValue(contentsOf: dest.specFile)
        var specOrigin = destination.path
        var merged = 0
        var skipped: [String] = []
        for src in sources {
            let s = SweepLayout(root: src)
            guard let other = try? JSONValue(contentsOf: s.specFile) else {
                throw SweepError("\(src.path) is not a sweep directory (no sweep.json)")
            }
            if let specJSON {
                let differences = SweepFingerprint.differences(specJSON, other)
                if !differences.isEmpty {
                    guard allowMismatch else {
                        throw SweepError(
                            "\(src.path) holds a different run than \(specOrigin) (sweep.json differs); merging would mix results computed differently. Differences (\(specOrigin) vs \(src.path)):\n  "
                                + differences.joined(separator: "\n  ") + "\nPass --allow-mismatch to merge anyway (recorded in sweep.json).")
                    }
                    FileHandle.standardError.write(Data(
                        ("toymoe merge: warning: --allow-mismatch: \(src.path) differs from \(specOrigin):\n  "
                            + differences.joined(separator: "\n  ") + "\n").utf8))
                    if fm.fileExists(atPath: dest.specFile.path) { try recordMismatches(differences, in: dest.specFile) }
                }
            } else {
                try other.write(to: dest.specFile)
                specJSON = other
                specOrigin = src.path
            }
            guard let spec = try? specFrom(json: other) else { throw SweepError("\(src.path)/sweep.json is malformed") }
            let sourceSeed = other["seed"]
            for name in try fm.contentsOfDirectory(atPath: s.cellsDirectory.path).sorted() where name.hasSuffix(".json") && !name.hasPrefix(".") {
                let id = String(name.dropLast(5))
                let from = s.cellsDirectory.appendingPathComponent(name)
                let to = dest.cellsDirectory.appendingPathComponent(name)
                // Unreadable, or not a cell of this sweep with this seed: not a finished cell of this run. Skipped,
                // and said so with the reason: a cell that silently stays missing reads as a merge that lost work.
                func skip(_ why: String) { skipped.append("\(from.path): \(why); not merged") }
                guard let cell = try? JSONValue(contentsOf: from) else { skip("unreadable or not JSON"); continue }
                guard let index = cell["index"]?.intValue, spec.cells.indices.contains(index), spec.cellID(index) == id else {
                    skip("its index does not name cell \(id) of this sweep (\(spec.cells.count) cells)")
                    continue
                }
                guard cell["params"] == .object(spec.cells[index]) else {
                    skip("its parameters differ from cell \(id)'s in sweep.json (another grid)")
                    continue
                }
                guard cell["run_seed"] == sourceSeed else {
                    func text(_ v: JSONValue?) -> String { v.map { (try? $0.serialized(options: JSONWriteOptions(pretty: false))) ?? "?" } ?? "none" }
                    skip("it was computed with run seed \(text(cell["run_seed"])), but sweep.json records seed \(text(sourceSeed))")
                    continue
                }
                if fm.fileExists(atPath: to.path) { continue }
                // The cell's files first, the cell file last: a merge killed halfway leaves the cell unfinished
                // (and its partial directory is removed before the cell is run or merged again).
                let fromDir = s.cellDirectory(id), toDir = dest.cellDirectory(id)
                if fm.fileExists(atPath: toDir.path) { try fm.removeItem(at: toDir) }
                if fm.fileExists(atPath: fromDir.path) { try copyTree(fromDir, toDir) }
                try AtomicFile.write(try Data(contentsOf: from), to: to)
                merged += 1
            }
        }
        guard let specJSON, let spec = try? specFrom(json: specJSON) else {
            throw SweepError("nothing to merge: no sweep.json in \(destination.path) or the sources")
        }
        let missing = spec.cells.indices.map { spec.cellID($0) }.filter { !fm.fileExists(atPath: dest.cellFile($0).path) }
        var warnings: [String] = []
        if missing.isEmpty { warnings = try write(spec: spec, layout: dest) }
        return (merged, missing, warnings, skipped)
    }

    /// Copies a directory tree, each file atomically (temporary leftovers of the source are skipped).
    static func copyTree(_ from: URL, _ to: URL) throws {
        let fm = FileManager.default
        try AtomicFile.createDirectory(at: to)
        for name in try fm.contentsOfDirectory(atPath: from.path).sorted() where !(name.hasPrefix(".") && name.contains(".tmp-")) {
            let src = from.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: src.path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                try copyTree(src, to.appendingPathComponent(name, isDirectory: true))
            } else {
                try AtomicFile.write(try Data(contentsOf: src), to: to.appendingPathComponent(name))
            }
        }
    }

    /// Reads a SweepSpec back from sweep.json.
    public static func specFrom(json: JSONValue) throws -> SweepSpec {
        guard let name = json["name"]?.stringValue, let cells = json["cells"]?.arrayValue,
            let replicates = json["replicates"]?.intValue
        else { throw SweepError("malformed sweep.json") }
        var selection = SweepSelection.all
        if let k = json["select"]?["minimize"]?.stringValue { selection = .minimize(k) }
        if let k = json["select"]?["maximize"]?.stringValue { selection = .maximize(k) }
        return SweepSpec(
            name: name, cells: cells.compactMap { $0.objectValue }, replicates: replicates, selection: selection)
    }
}
