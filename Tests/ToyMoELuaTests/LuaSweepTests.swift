import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// Sweeps declared in Lua: determinism across --jobs, resume after a kill, shards, and the CLI end to end.
@Suite(.serialized) struct LuaSweepTests {

    static let sweepScript = """
        -- a small phase-change style sweep
        toymoe.sweep{
          name = "t",
          grid = { S = { 0.1, 0.5, 0.9 }, r = { 0.5, 2.0 } },
          order = { "S", "r" },
          replicates = 2,
          select = { minimize = "final_loss" },
          run = function(cell, ctx)
            local m = toymoe.model{ n_features = 2, n_hidden = 1, n_experts = 2 }
            local d = toymoe.data{ n_features = 2, feature_probability = 1 - cell.S, relative_importance = cell.r }
            local r = toymoe.train(m, { data = d, steps = toymoe.param("steps", 60), batch_size = 64, loss = "mean",
                                        load_balancing = true })
            return { final_loss = r.final_loss, norm = toymoe.metrics.feature_norms(m, 1),
                     noise = math.random(), phase = toymoe.metrics.classify_feature(m, 1) }
          end,
        }
        """

    /// The result files of a sweep directory, by relative path.
    static func resultFiles(_ root: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in ["summary.csv", "results.npz", "sweep.json"] {
            out[name] = try Data(contentsOf: root.appendingPathComponent(name))
        }
        let cells = root.appendingPathComponent("cells")
        for name in try FileManager.default.contentsOfDirectory(atPath: cells.path) where name.hasSuffix(".json") {
            out["cells/" + name] = try Data(contentsOf: cells.appendingPathComponent(name))
        }
        return out
    }

    @Test("--jobs 1 and --jobs 2 give identical bytes (math.random included)")
    func jobs() throws {
        let a = try ScriptTestResult.run(Self.sweepScript, seed: 3, jobs: 1)
        let b = try ScriptTestResult.run(Self.sweepScript, seed: 3, jobs: 2)
        let fa = try Self.resultFiles(a.directory)
        #expect(fa.count == 3 + 6)
        #expect(fa == (try Self.resultFiles(b.directory)))
        let c = try ScriptTestResult.run(Self.sweepScript, seed: 4, jobs: 2)
        #expect(fa["summary.csv"] != (try Self.resultFiles(c.directory))["summary.csv"])
        let csv = String(decoding: fa["summary.csv"]!, as: UTF8.self)
        #expect(csv.hasPrefix("cell_id,replicate,S,r,final_loss,noise,phase,seed,status,failed_step,failure_reason\n"))
    }

    @Test("Shards: each runs its cells; merged, their union equals the full sweep")
    func shards() throws {
        let full = try ScriptTestResult.run(Self.sweepScript, seed: 1)
        let s0 = try ScriptTestResult.run(Self.sweepScript, seed: 1, shard: (0, 2))
        let s1 = try ScriptTestResult.run(Self.sweepScript, seed: 1, shard: (1, 2))
        #expect(!FileManager.default.fileExists(atPath: s0.directory.appendingPathComponent("summary.csv").path))
        let merged = try SweepSummary.merge(destination: s0.directory, sources: [s1.directory])
        #expect(merged.missing.isEmpty && merged.merged == 3)
        #expect(try Self.resultFiles(full.directory) == Self.resultFiles(s0.directory))
    }

    @Test("A run error inside a cell stops the sweep with file:line and keeps the finished cells")
    func cellError() throws {
        let script = """
            toymoe.sweep{ grid = { i = {1, 2, 3} }, run = function(cell)
              if cell.i == 2 then error("boom at cell " .. cell.i) end
              return { v = cell.i * 2 }
            end }
            """
        let dir = try ScriptTestResult.temporaryDirectory()
        do {
            _ = try ScriptTestResult.run(script, out: dir)
            Issue.record("expected the sweep to fail")
        } catch let e as ScriptRunError {
            #expect(e.description.contains("test.lua:2: boom at cell 2"), "\(e)")
            #expect(e.description.contains("c0001"))
        }
        let cells = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("cells").path)
        #expect(cells.contains("c0000.json") && !cells.contains("c0001.json"))
    }

    @Test("A runaway cell is stopped by the per-cell time limit with a clean error")
    func cellBudget() throws {
        let script = "toymoe.sweep{ grid = { i = {1} }, run = function() while true do end end }"
        do {
            _ = try ScriptTestResult.run(script, timeLimit: 0.5)
            Issue.record("expected a time-limit error")
        } catch let e as ScriptRunError {
            #expect(e.description.contains("time limit"), "\(e)")
        }
    }
}

/// The `toymoe` executable end to end.
@Suite(.serialized) struct CLITests {
    /// The built `toymoe` next to the test bundle.
    static var executable: URL {
        var dir = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("toymoe").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("toymoe")
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs toymoe with arguments; output through files (no pipe deadlocks).
    static func toymoe(_ arguments: [String], environment: [String: String] = [:], in dir: URL) throws -> Output {
        let out = dir.appendingPathComponent("stdout-\(UUID().uuidString)")
        let err = dir.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SLURM_ARRAY_TASK_ID")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Output(
            status: p.terminationStatus, stdout: try String(contentsOf: out, encoding: .utf8),
            stderr: try String(contentsOf: err, encoding: .utf8))
    }

    @Test("toymoe --help and each subcommand's help")
    func help() throws {
        #expect(FileManager.default.fileExists(atPath: Self.executable.path), "toymoe not built at \(Self.executable.path)")
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-cli")
        let top = try Self.toymoe(["--help"], in: dir)
        #expect(top.status == 0)
        for needle in ["USAGE: toymoe <subcommand>", "run", "train", "merge", "Toy models of superposition"] {
            #expect(top.stdout.contains(needle), "missing '\(needle)' in: \(top.stdout)")
        }
        let run = try Self.toymoe(["run", "--help"], in: dir)
        // ArgumentParser shortens the usage line to `[<options>]` once the options no longer fit on it.
        for needle in ["USAGE: toymoe run ", "<script> [<assignments> ...]", "--allow-mismatch", "--out", "--seed", "--jobs", "--resume", "--shard", "--quiet",
                       "--memory-limit", "--time-limit", "SLURM_ARRAY_TASK_ID", "--input <NAME=DIR>"] {
            #expect(run.stdout.contains(needle), "missing '\(needle)' in run --help")
        }
        let train = try Self.toymoe(["train", "--help"], in: dir)
        #expect(train.stdout.contains("--n-experts") && train.stdout.contains("--preset"))
        let merge = try Self.toymoe(["merge", "--help"], in: dir)
        #expect(merge.stdout.contains("USAGE: toymoe merge <destination>"))
        let version = try Self.toymoe(["--version"], in: dir)
        #expect(version.stdout.hasPrefix(ToyMoEVersion.string + " (commit "))
    }

    @Test("toymoe run: a script into a directory; numpy-format output read back; errors exit non-zero with file:line")
    func runEndToEnd() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-cli")
        try """
            local m = toymoe.model{ n_features = 4, n_hidden = 2 }
            local r = toymoe.train(m, { data = toymoe.data{ feature_probability = 0.5, n_features = 4 }, steps = toymoe.params.steps })
            toymoe.save_npy("norms.npy", toymoe.metrics.feature_norms(m))
            print("loss", r.final_loss)
            return { loss = r.final_loss }
            """.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let ok = try Self.toymoe(["run", "s.lua", "steps=50", "--out", "res", "--seed", "2"], in: dir)
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
        #expect(ok.stdout.hasPrefix("loss\t"))
        let norms = try NpyArray(contentsOf: dir.appendingPathComponent("res/norms.npy"))
        #expect(norms.shape == [4] && norms.dtype == .float64)
        for f in ["config.json", "provenance.json", "script.lua", "result.json"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("res/\(f)").path), "missing \(f)")
        }
        let prov = try JSONValue(contentsOf: dir.appendingPathComponent("res/provenance.json"))
        #expect(prov["seed"]?.intValue == 2)
        #expect(prov["kernel_variant"]?.stringValue == KernelVariant.current)

        try "local x = 1\ntoymoe.model{ n_features = 0, n_hidden = 1 }\n".write(
            to: dir.appendingPathComponent("bad.lua"), atomically: true, encoding: .utf8)
        let bad = try Self.toymoe(["run", "bad.lua", "--out", "bad"], in: dir)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("bad.lua:2: toymoe.model: n_features: expected a positive integer, got 0"), "\(bad.stderr)")
        #expect(bad.stderr.contains("stack traceback"))

        let simd = try Self.toymoe(["run", "s.lua", "steps=20", "--out", "simd", "--kernels", "simd"], in: dir)
        #expect(simd.status == 0, "\(simd.stderr)")
        let simdProvenance = try JSONValue(contentsOf: dir.appendingPathComponent("simd/provenance.json"))
        #expect(simdProvenance["kernel_variant"]?.stringValue == KernelVariant.bestSIMD.rawValue)
        let envScalar = try Self.toymoe(["run", "s.lua", "steps=20", "--out", "envscalar"], environment: ["TOYMOE_KERNELS": "scalar"], in: dir)
        #expect(envScalar.status == 0)
        #expect(try JSONValue(contentsOf: dir.appendingPathComponent("envscalar/provenance.json"))["kernel_variant"]?.stringValue == "scalar")
        let badKernels = try Self.toymoe(["run", "s.lua", "--kernels", "avx9"], in: dir)
        #expect(badKernels.status != 0 && badKernels.stderr.contains("--kernels: unknown kernel variant 'avx9'"), "\(badKernels.stderr)")
        let badEnv = try Self.toymoe(["run", "s.lua", "--out", "badenv"], environment: ["TOYMOE_KERNELS": "avx9"], in: dir)
        #expect(badEnv.status != 0 && badEnv.stderr.contains("TOYMOE_KERNELS: unknown kernel variant 'avx9'"), "\(badEnv.stderr)")
        for v in KernelVariant.allCases where !v.isSupported {
            // An ISA this CPU lacks is refused with a reason, never run into a SIGILL.
            let r = try Self.toymoe(["run", "s.lua", "--out", "unsupported", "--kernels", v.rawValue], in: dir)
            #expect(r.status != 0 && r.stderr.contains("lacks"), "\(r.stderr)")
        }

        let missing = try Self.toymoe(["run", "nope.lua"], in: dir)
        #expect(missing.status != 0 && missing.stderr.contains("nope.lua"))
        let badShard = try Self.toymoe(["run", "s.lua", "--shard", "3/2"], in: dir)
        #expect(badShard.status != 0 && badShard.stderr.contains("--shard"))
    }

    @Test("kill -9 midway (repeatedly), then --resume: the same result files as an uninterrupted run")
    func killAndResume() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-kill")
        try LuaSweepTests.sweepScript.write(to: dir.appendingPathComponent("sweep.lua"), atomically: true, encoding: .utf8)
        let args = ["run", "sweep.lua", "steps=1500", "--quiet"]
        let full = try Self.toymoe(args + ["--out", "full"], in: dir)
        #expect(full.status == 0, "\(full.stderr)")
        let cells = dir.appendingPathComponent("killed/cells")
        func finished() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: cells.path)) ?? []).filter { $0.hasSuffix(".json") }.count
        }
        // Each round: start (resuming after the first), wait until one more cell has been written, then SIGKILL at
        // once — usually while the next cell is being computed or written.
        var kills = 0
        for round in 0..<6 {
            let before = finished()
            if before >= 5 { break }
            let p = Process()
            p.executableURL = Self.executable
            p.arguments = args + ["--out", "killed"] + (round > 0 ? ["--resume"] : [])
            p.currentDirectoryURL = dir
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(60)
            while p.isRunning && finished() <= before && Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            p.waitUntilExit()
        }
        let resumed = try Self.toymoe(args + ["--out", "killed", "--resume"], in: dir)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(kills >= 2, "the sweep finished before it could be killed: \(kills) kills")
        #expect(try LuaSweepTests.resultFiles(dir.appendingPathComponent("full")) == LuaSweepTests.resultFiles(dir.appendingPathComponent("killed")))
    }

    @Test("SLURM array variables choose the shard; toymoe merge completes the sweep")
    func slurmShards() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-slurm")
        try LuaSweepTests.sweepScript.write(to: dir.appendingPathComponent("sweep.lua"), atomically: true, encoding: .utf8)
        for task in 0..<3 {
            let r = try Self.toymoe(
                ["run", "sweep.lua", "--out", "shard\(task)", "--quiet"],
                environment: ["SLURM_ARRAY_TASK_ID": "\(task)", "SLURM_ARRAY_TASK_COUNT": "3"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let cells = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("shard\(task)/cells").path)
            #expect(cells.sorted() == [task, task + 3].map { "c000\($0).json" })
        }
        let m = try Self.toymoe(["merge", "shard0", "shard1", "shard2"], in: dir)
        #expect(m.status == 0, "\(m.stdout) \(m.stderr)")
        let full = try Self.toymoe(["run", "sweep.lua", "--out", "full", "--quiet"], in: dir)
        #expect(full.status == 0)
        #expect(try LuaSweepTests.resultFiles(dir.appendingPathComponent("full")) == LuaSweepTests.resultFiles(dir.appendingPathComponent("shard0")))
    }
}

/// `finish(rows)` after a complete sweep.
@Suite struct SweepFinishTests {
    @Test("finish receives one row per cell in order, with the kept replicate; its table becomes result.json")
    func finish() throws {
        let script = """
            toymoe.sweep{
              grid = { a = {1, 2, 3} }, replicates = 2, select = { maximize = "v" },
              run = function(cell, ctx) return { v = cell.a * 10 + ctx.replicate } end,
              finish = function(rows)
                local out = {}
                for i, row in ipairs(rows) do out[i] = row.result.v * 100 + row.selected end
                toymoe.save_json("finished.json", { n = #rows })
                return { kept = out, id1 = rows[1].id, nrep = #rows[2].replicates }
              end,
            }
            """
        let r = try ScriptTestResult.run(script, jobs: 2)
        #expect(r.result["kept"] == [1202, 2202, 3202])
        #expect(r.result["id1"]?.stringValue == "c0000")
        #expect(r.result["nrep"]?.intValue == 2)
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("finished.json").path))
        // A shard that is not the whole sweep does not call finish.
        let s = try ScriptTestResult.run(script, shard: (0, 2))
        #expect(!FileManager.default.fileExists(atPath: s.directory.appendingPathComponent("finished.json").path))
    }
}
