import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// Helpers shared by the fault-injection, disk and determinism tests: every file of an output directory, checks
/// that each one parses, and byte comparison against a reference run.
enum OutputFiles {
    /// Files excluded from byte comparisons: they record wall-clock facts, not results.
    /// timings.csv holds per-cell wall times; provenance.json holds start/end times, the host and the command line
    /// (which names --out and --resume); .toymoe.lock names the last process that held the directory's lock.
    static let nonReproducible: Set<String> = ["timings.csv", "provenance.json", ".toymoe.lock"]

    /// A leftover of an interrupted atomic write (`.NAME.toymoe-tmp-XXXX`): garbage by construction, never a result.
    static func isTemporary(_ relativePath: String) -> Bool {
        AtomicFile.isTemporaryName((relativePath as NSString).lastPathComponent)
    }

    /// Every regular file under `root` by relative path (temporary files included; filter with `isTemporary`).
    static func all(_ root: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: root.path) else { return out }
        while let rel = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let url = root.appendingPathComponent(rel)
            if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                out[rel] = try Data(contentsOf: url)
            }
        }
        return out
    }

    /// Parses every (non-temporary) file by its kind; returns the problems found ("" list when all parse).
    static func unparsable(_ root: URL) throws -> [String] {
        var problems: [String] = []
        for (rel, data) in try all(root) where !isTemporary(rel) {
            do {
                switch (rel as NSString).pathExtension {
                case "json": _ = try JSONValue(parsing: data)
                case "npz": _ = try Npz.read(data: data)
                case "npy": _ = try NpyArray(npyData: data)
                case "csv":
                    guard let text = String(data: data, encoding: .utf8), text.hasSuffix("\n") else {
                        throw SweepError("not UTF-8 text ending with a newline")
                    }
                    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                    let width = lines.first.map { $0.split(separator: ",", omittingEmptySubsequences: false).count } ?? 0
                    // Our CSVs quote no field in these tests' sweeps, so every row has the header's width.
                    if width == 0 || lines.contains(where: { $0.split(separator: ",", omittingEmptySubsequences: false).count != width }) {
                        throw SweepError("ragged CSV")
                    }
                case "lua":
                    guard String(data: data, encoding: .utf8) != nil else { throw SweepError("not UTF-8") }
                default: break
                }
            } catch {
                problems.append("\(rel): \(error)")
            }
        }
        return problems
    }

    /// Compares every reproducible file of `a` and `b` (same set of names, same bytes); returns the bytes compared.
    /// `normalizeConfig` drops config.json's `jobs` (the one option config.json records that may legitimately differ).
    @discardableResult
    static func expectSame(
        _ a: URL, _ b: URL, normalizeConfig: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Int {
        func reproducible(_ root: URL) throws -> [String: Data] {
            var files = try all(root).filter { !isTemporary($0.key) && !nonReproducible.contains($0.key) }
            if normalizeConfig, let c = files["config.json"], case .object(var o) = try JSONValue(parsing: c) {
                o["jobs"] = nil
                files["config.json"] = Data(try JSONValue.object(o).serialized(options: .compact).utf8)
            }
            return files
        }
        let fa = try reproducible(a), fb = try reproducible(b)
        #expect(fa.keys.sorted() == fb.keys.sorted(), "file sets differ", sourceLocation: sourceLocation)
        var bytes = 0
        for (name, data) in fa {
            #expect(fb[name] == data, "\(name) differs", sourceLocation: sourceLocation)
            bytes += data.count
        }
        return bytes
    }
}

/// Tally of the fault-injection figures reported in RELIABILITY.md (printed by the tests).
final class FaultTally: @unchecked Sendable {
    static let shared = FaultTally()
    private let lock = NSLock()
    private(set) var kills = 0
    func add(kills n: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        kills += n
        return kills
    }
}

/// `kill -9` at seeded random moments of a running `toymoe run` sweep, each followed by `--resume`.
@Suite(.serialized) struct FaultInjectionTests {
    /// A sweep whose cells take tens of milliseconds (so kills land before, inside and between cells, during the
    /// atomic writes, the summary and `finish`), with cell-saved files, arrays for results.npz and math.random.
    static let script = """
        toymoe.sweep{
          name = "faults",
          grid = { p = { 0.1, 0.3, 0.5, 0.7 }, E = { 1, 2, 3 } },
          order = { "p", "E" },
          replicates = 2,
          select = { minimize = "final_loss" },
          run = function(cell, ctx)
            local m = toymoe.model{ n_features = 12, n_hidden = 4, n_experts = cell.E }
            local d = toymoe.data{ n_features = 12, feature_probability = cell.p }
            local r = toymoe.train(m, { data = d, steps = toymoe.param("steps", 250), batch_size = 128, loss = "mean",
                                        load_balancing = cell.E > 1 })
            toymoe.save_npy("norms.npy", toymoe.metrics.feature_norms(m, 1))
            return { final_loss = r.final_loss, norms = toymoe.metrics.feature_norms(m, 1), noise = math.random() }
          end,
          finish = function(rows)
            local best = rows[1].result.final_loss
            for _, row in ipairs(rows) do best = math.min(best, row.result.final_loss) end
            toymoe.save_json("finish.json", { rows = #rows })
            return { best = best }
          end,
        }
        """

    struct Figures {
        var kills = 0
        var lives = 0
        var checks = 0
        var bytesCompared = 0
        var temporaryLeftovers = 0
        /// Where the kills landed: no cell of the directory finished yet / some / all cells finished (the kill hit
        /// the summary, `finish` or provenance phase) / the kill left an atomic write's temporary file behind.
        var atStart = 0, midway = 0, afterCells = 0, midWrite = 0
        var summary: String {
            "\(kills) kills survived over \(lives) complete sweep(s) (landed: \(atStart) before any cell finished, \(midway) between/inside cells, \(afterCells) after the last cell; \(midWrite) mid atomic write), \(checks) post-kill checks, \(bytesCompared) bytes compared with the uninterrupted run"
        }
    }

    /// Runs the sweep into `out` again and again with `--resume`, SIGKILLing it after a seeded random delay, until
    /// `kills` kills have landed on a running process. After every kill: every file that exists parses; every
    /// finished cell file present before is still there with the same bytes, and equals the reference's. When a
    /// round finishes the whole sweep before its kill, that directory is compared with the reference in full and a
    /// new one started ("lives").
    static func killRepeatedly(
        kills wanted: Int, jobs: Int, seed: UInt64, maxDelay: Double, reference: URL, dir: URL, args: [String],
        label: String = "life", startLife: (URL) throws -> Void = { _ in }
    ) throws -> Figures {
        var rng = RandomStream(seed: seed, path: [UInt64(jobs)])
        var figures = Figures()
        var life = 0
        var out = dir.appendingPathComponent("\(label)0")
        try startLife(out)
        var seenCells: [String: Data] = [:]
        let refFiles = try OutputFiles.all(reference)
        var rounds = 0
        func finishLife() throws {
            // Complete it (a kill may have landed after the last cell but before provenance.json), then compare.
            let done = try CLITests.toymoe(args + ["--out", out.lastPathComponent, "--resume", "--jobs", "\(jobs)"], in: dir)
            #expect(done.status == 0, "\(done.stderr)")
            #expect(try OutputFiles.all(out).keys.filter(OutputFiles.isTemporary).isEmpty, "resume leaves no temporary file")
            figures.bytesCompared += try OutputFiles.expectSame(reference, out, normalizeConfig: true)
            figures.lives += 1
            // timings.csv survives the kills: whole lines only, each cell at most once (a cell killed between its
            // cell file and its timing line has none), and the cells of the last, uninterrupted life are all there.
            let timings = try String(contentsOf: out.appendingPathComponent("timings.csv"), encoding: .utf8)
            #expect(timings.hasPrefix("cell_id,seconds\n") && timings.hasSuffix("\n"), "\(timings)")
            let ids = timings.split(separator: "\n").dropFirst().map { $0.split(separator: ",")[0] }
            #expect(Set(ids).count == ids.count, "a cell timed twice: \(timings)")
            #expect(timings.split(separator: "\n").dropFirst().allSatisfy { $0.split(separator: ",").count == 2 && Double($0.split(separator: ",")[1]) != nil })
        }
        while figures.kills < wanted {
            rounds += 1
            if rounds > wanted * 6 { Issue.record("only \(figures.kills) kills landed in \(rounds) rounds"); break }
            let p = Process()
            p.executableURL = CLITests.executable
            p.arguments = args + ["--out", out.lastPathComponent, "--resume", "--jobs", "\(jobs)"]
            p.currentDirectoryURL = dir
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let delay = maxDelay * rng.nextDouble()
            Thread.sleep(forTimeInterval: delay)
            let wasRunning = p.isRunning
            if wasRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            let killed = p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL
            if wasRunning && killed { figures.kills += 1 }

            // Invariants after the kill (or the normal exit).
            let problems = try OutputFiles.unparsable(out)
            #expect(problems.isEmpty, "after kill \(figures.kills): \(problems)")
            figures.checks += 1
            let files = try OutputFiles.all(out)
            let leftovers = files.keys.filter(OutputFiles.isTemporary).count
            figures.temporaryLeftovers += leftovers
            if wasRunning && killed {
                let finished = files.keys.filter { $0.hasPrefix("cells/c") && $0.hasSuffix(".json") && $0.split(separator: "/").count == 2 }.count
                if finished == 0 { figures.atStart += 1 } else if finished < 12 { figures.midway += 1 } else { figures.afterCells += 1 }
                if leftovers > 0 { figures.midWrite += 1 }
            }
            for (name, data) in seenCells {
                #expect(files[name] == data, "finished cell \(name) disappeared or changed after kill \(figures.kills)")
            }
            for (name, data) in files where name.hasPrefix("cells/") && !OutputFiles.isTemporary(name) {
                // A cell's own saved files are final once its cell file exists (they are written before it); an
                // unfinished cell's may hold an earlier replicate's version, which its rerun replaces.
                let parts = name.split(separator: "/")
                let owner = parts.count == 3 ? "cells/\(parts[1]).json" : name
                guard files[owner] != nil else { continue }
                #expect(refFiles[name] == data, "\(name) differs from the uninterrupted run after kill \(figures.kills)")
                if parts.count == 2 && name.hasSuffix(".json") { seenCells[name] = data }
            }
            for name in ["summary.csv", "results.npz", "sweep.json", "script.lua", "finish.json"] {
                if let data = files[name] { #expect(refFiles[name] == data, "\(name) differs after kill \(figures.kills)") }
            }

            if !wasRunning || !killed {
                #expect(p.terminationStatus == 0 || killed, "toymoe exited with \(p.terminationStatus)")
                try finishLife()
                life += 1
                out = dir.appendingPathComponent("\(label)\(life)")
                try startLife(out)
                seenCells = [:]
            }
        }
        try finishLife()
        return figures
    }

    static func prepare(_ label: String) throws -> (dir: URL, reference: URL, args: [String]) {
        let dir = try ScriptTestResult.temporaryDirectory(label)
        try script.write(to: dir.appendingPathComponent("faults.lua"), atomically: true, encoding: .utf8)
        let args = ["run", "faults.lua", "--quiet", "--seed", "9"]
        let ref = try CLITests.toymoe(args + ["--out", "reference"], in: dir)
        #expect(ref.status == 0, "\(ref.stderr)")
        return (dir, dir.appendingPathComponent("reference"), args)
    }

    @Test("kill -9 at 16 seeded random moments of one sweep (--jobs 1), each followed by --resume")
    func killsJobs1() throws {
        let (dir, reference, args) = try Self.prepare("toymoe-faults1")
        let f = try Self.killRepeatedly(kills: 16, jobs: 1, seed: 2024, maxDelay: 0.45, reference: reference, dir: dir, args: args)
        #expect(f.kills >= 16)
        var total = FaultTally.shared.add(kills: f.kills)
        print("fault injection (--jobs 1): \(f.summary) [running total \(total) kills]")

        // Kills in the last phase (summary.csv, results.npz, finish, provenance.json), which random kills over a
        // whole sweep rarely hit: each life starts from a copy of the reference with every cell finished and the
        // later files removed, and the delay is drawn within the time a --resume of that state takes.
        let fm = FileManager.default
        let late: (URL) throws -> Void = { out in
            try? fm.removeItem(at: out)
            try fm.copyItem(at: reference, to: out)
            for name in ["summary.csv", "results.npz", "result.json", "finish.json", "provenance.json", "timings.csv", "config.json"] {
                try? fm.removeItem(at: out.appendingPathComponent(name))
            }
        }
        try late(dir.appendingPathComponent("timing"))
        let started = Date()
        #expect(try CLITests.toymoe(args + ["--out", "timing", "--resume"], in: dir).status == 0)
        let lastPhase = Date().timeIntervalSince(started)
        let g = try Self.killRepeatedly(
            kills: 4, jobs: 1, seed: 99, maxDelay: lastPhase, reference: reference, dir: dir, args: args, label: "late",
            startLife: late)
        #expect(g.kills >= 4)
        total = FaultTally.shared.add(kills: g.kills)
        print("fault injection (last phase, --resume of a sweep whose cells are all finished, \(String(format: "%.0f", lastPhase * 1000)) ms): \(g.summary) [running total \(total) kills]")
        try? FileManager.default.removeItem(at: dir)
    }

    @Test("kill -9 at 8 seeded random moments of a --jobs 2 sweep; the result equals the --jobs 1 reference")
    func killsJobs2() throws {
        let (dir, reference, args) = try Self.prepare("toymoe-faults2")
        let f = try Self.killRepeatedly(kills: 8, jobs: 2, seed: 77, maxDelay: 0.35, reference: reference, dir: dir, args: args)
        #expect(f.kills >= 8)
        let total = FaultTally.shared.add(kills: f.kills)
        print("fault injection (--jobs 2): \(f.summary) [running total \(total) kills]")
        try? FileManager.default.removeItem(at: dir)
    }
}

/// Running `toymoe` inside a private mount namespace, where a test may mount a read-only or a tiny tmpfs without
/// touching the rest of the machine (the mounts vanish with the namespace). Root uses `unshare -m`; other users a
/// user namespace (`unshare -rm`).
enum MountSandbox {
    /// The unshare flags that work here, or nil (then `reason` says why).
    static let flags: String? = {
        for flags in (getuid() == 0 ? ["-m", "-rm"] : ["-rm"]) {
            let probe = "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && touch \"$d/x\" && umount \"$d\" && rmdir \"$d\""
            if let r = try? run(flags: flags, shell: probe, in: FileManager.default.temporaryDirectory), r.status == 0 {
                return flags
            }
        }
        return nil
    }()

    static var available: Bool { flags != nil }
    static let reason = "this machine allows neither `unshare -m` nor `unshare -rm` with a tmpfs mount (no way to make a read-only or full file system without touching the host)"

    /// Single-quotes a path for the shell.
    static func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    static func run(flags: String, shell: String, in dir: URL) throws -> CLITests.Output {
        let out = dir.appendingPathComponent("ns-stdout-\(UUID().uuidString)")
        let err = dir.appendingPathComponent("ns-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["unshare", flags, "/bin/sh", "-c", shell]
        p.currentDirectoryURL = dir
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return CLITests.Output(
            status: p.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
            stderr: try String(contentsOf: err, encoding: .utf8))
    }

    static func run(_ shell: String, in dir: URL) throws -> CLITests.Output {
        try run(flags: flags!, shell: shell, in: dir)
    }
}

/// An unwritable output directory and a full disk: a clear error naming the path and the OS reason, a non-zero exit,
/// nothing half-written counted as done, and a later `--resume` on a good disk completes with the right bytes.
@Suite(.serialized, .enabled(if: MountSandbox.available, "\(MountSandbox.reason)")) struct DiskFaultTests {
    static let toymoe = MountSandbox.q(CLITests.executable.path)

    /// A sweep whose cells write ~60 KB each (a result array and a saved .npy), so a 256 KiB disk fills midway.
    static let bigCells = """
        toymoe.sweep{
          grid = { i = { 1, 2, 3, 4, 5, 6, 7, 8 } },
          run = function(cell, ctx)
            local v = {}
            for j = 1, 2000 do v[j] = math.random() end
            toymoe.save_npy("big.npy", v)
            return { v = v, first = v[1] }
          end,
        }
        """

    @Test("--out on a read-only file system: the error names the path and 'Read-only file system'; exit 1")
    func readOnlyOut() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-ro")
        try FaultInjectionTests.script.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("ro"), withIntermediateDirectories: true)
        let r = try MountSandbox.run(
            "mount -t tmpfs -o ro,size=1m tmpfs ro && \(Self.toymoe) run s.lua steps=5 --out ro/res --quiet", in: dir)
        #expect(r.status == 1, "\(r.stderr)")
        let path = dir.appendingPathComponent("ro/res").path
        #expect(r.stderr.contains("cannot create directory \(path): Read-only file system"), "\(r.stderr)")
        #expect(!r.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test("A half-done sweep whose cells/ turned read-only: --resume fails naming the path; finished cells untouched; a writable --resume completes")
    func readOnlyCells() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-rocells")
        try FaultInjectionTests.script.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let args = ["run", "s.lua", "steps=20", "--quiet"]
        #expect(try CLITests.toymoe(args + ["--out", "full"], in: dir).status == 0)
        // Half the cells, as a shard would leave them.
        #expect(try CLITests.toymoe(args + ["--out", "half", "--shard", "0/2"], in: dir).status == 0)
        let before = try OutputFiles.all(dir.appendingPathComponent("half/cells"))
        let r = try MountSandbox.run(
            "mount --bind half/cells half/cells && mount -o remount,bind,ro half/cells && "
                + "\(Self.toymoe) run s.lua steps=20 --quiet --out half --resume", in: dir)
        #expect(r.status == 1, "\(r.stderr)")
        let cells = dir.appendingPathComponent("half/cells").path
        // The first pending cell (c0001) fails when it saves its first file into cells/c0001/.
        #expect(r.stderr.contains(cells + "/c0001") && r.stderr.contains("Read-only file system"), "\(r.stderr)")
        #expect(try OutputFiles.all(dir.appendingPathComponent("half/cells")) == before)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("half/summary.csv").path))
        let done = try CLITests.toymoe(args + ["--out", "half", "--resume"], in: dir)
        #expect(done.status == 0, "\(done.stderr)")
        let bytes = try OutputFiles.expectSame(dir.appendingPathComponent("full"), dir.appendingPathComponent("half"))
        print("disk faults (read-only cells/): \(bytes) bytes compared after the writable --resume")
    }

    @Test("A full disk (256 KiB tmpfs) midway: 'No space left on device' with the path; exit 1; no partial cell; --resume elsewhere completes")
    func fullDisk() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-full")
        try Self.bigCells.write(to: dir.appendingPathComponent("big.lua"), atomically: true, encoding: .utf8)
        let ref = try CLITests.toymoe(["run", "big.lua", "--quiet", "--out", "reference"], in: dir)
        #expect(ref.status == 0, "\(ref.stderr)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("small"), withIntermediateDirectories: true)
        // The namespace's tmpfs disappears with it: copy what the failed run left to a good disk before leaving.
        let r = try MountSandbox.run(
            "mount -t tmpfs -o size=256k tmpfs small && \(Self.toymoe) run big.lua --quiet --out small/res; rc=$?; "
                + "cp -a small/res saved && exit $rc", in: dir)
        #expect(r.status == 1, "\(r.stderr)")
        let path = dir.appendingPathComponent("small/res").path
        #expect(r.stderr.contains("No space left on device"), "\(r.stderr)")
        #expect(r.stderr.contains(path + "/cells/"), "the error names the path: \(r.stderr)")
        let saved = dir.appendingPathComponent("saved")
        let files = try OutputFiles.all(saved)
        #expect(files.keys.filter(OutputFiles.isTemporary).isEmpty, "a failed atomic write removes its temporary file")
        #expect(try OutputFiles.unparsable(saved).isEmpty)
        let refFiles = try OutputFiles.all(dir.appendingPathComponent("reference"))
        let finished = files.keys.filter { $0.hasPrefix("cells/c") && $0.hasSuffix(".json") }
        #expect(finished.count >= 1 && finished.count < 8, "the disk filled midway: \(finished.sorted())")
        for name in files.keys where name.hasPrefix("cells/") {
            #expect(files[name] == refFiles[name], "\(name): every file that exists is complete and correct")
        }
        #expect(files["summary.csv"] == nil && files["results.npz"] == nil)
        let resumed = try CLITests.toymoe(["run", "big.lua", "--quiet", "--out", "saved", "--resume"], in: dir)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let bytes = try OutputFiles.expectSame(dir.appendingPathComponent("reference"), saved)
        print("disk faults (full disk): \(finished.count) of 8 cells finished before ENOSPC; \(bytes) bytes compared after --resume")
        try? FileManager.default.removeItem(at: dir)
    }
}
