import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// A training whose loss becomes NaN or ±Inf inside a sweep: detected at the step it happens, recorded as a failed
/// replicate (step and reason) in the cell file, summary.csv and results.npz, and the sweep goes on.
@Suite struct DivergenceTests {
    /// lr = 1e9 diverges within a few steps; the other cells train normally.
    static let script = """
        toymoe.sweep{
          grid = { lr = { 1e-3, 1e9, 1e-2 } },
          replicates = 2,
          select = toymoe.param("select", "min") == "min" and { minimize = "final_loss" } or "all",
          run = function(cell, ctx)
            local m = toymoe.model{ n_features = 4, n_hidden = 2 }
            local r = toymoe.train(m, { data = toymoe.data{ n_features = 4, feature_probability = 0.5 },
                                        steps = 200, batch_size = 32, lr = cell.lr })
            if toymoe.param("then_error", 0) == 1 and r.diverged then error("a metric of a NaN model failed") end
            return { final_loss = r.final_loss, steps_run = r.steps }
          end,
          finish = function(rows)
            local f = rows[2].failures
            return { nfail1 = #rows[1].failures, nfail2 = #f, rep = f[2].replicate, step = f[1].step, reason = f[1].reason }
          end,
        }
        """

    @Test("A diverged cell is recorded with its step and reason; the sweep completes; the summary marks the row")
    func divergedCell() throws {
        let r = try ScriptTestResult.run(Self.script, seed: 5)
        let cell = try JSONValue(contentsOf: r.directory.appendingPathComponent("cells/c0001.json"))
        let failures = SweepSummary.failureRecords(cell, id: "c0001")
        #expect(failures.count == 2)
        for f in failures {
            #expect(f.step >= 0 && f.step < 199)  // 0-based in files
            #expect(f.reason.hasPrefix("loss became"), "\(f.reason)")
            // Detected at once: the training stopped at the diverging step (r.steps counts it; f.step is 0-based).
            let steps = cell["replicates"]?[f.replicate]?["steps_run"]?.intValue
            #expect(steps == f.step + 1)
        }
        for id in ["c0000", "c0002"] {
            let ok = try JSONValue(contentsOf: r.directory.appendingPathComponent("cells/\(id).json"))
            #expect(ok["failures"] == .array([]))
        }
        let csv = try String(contentsOf: r.directory.appendingPathComponent("summary.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n").map(String.init)
        #expect(lines[0] == "cell_id,replicate,lr,final_loss,steps_run,seed,status,failed_step,failure_reason")
        #expect(lines[1].hasSuffix(",ok,,"))
        #expect(lines[2].contains(",diverged,\(failures[0].step),loss became"), "\(lines[2])")
        // The final loss is written as what it was: inf for a loss that became infinite, never nan for it.
        let lossField = lines[2].split(separator: ",")[3]
        #expect(failures[0].reason.hasPrefix("loss became inf") ? lossField == "inf" : lossField == "nan", "\(lines[2])")
        #expect(lines[3].hasSuffix(",ok,,"))
        // finish(rows) sees them too.
        #expect(r.result["nfail1"]?.intValue == 0 && r.result["nfail2"]?.intValue == 2 && r.result["rep"]?.intValue == 2)
        // Lua counts from 1: finish sees the step 1-based, like toymoe.train's r.diverged.step.
        #expect(r.result["step"]?.intValue == failures[0].step + 1 && r.result["reason"]?.stringValue == failures[0].reason)
        let npz = try Npz.read(contentsOf: r.directory.appendingPathComponent("results.npz"))
        #expect(try npz.array(named: "failed").asInt64() == [0, 1, 0])
        // 0-based; -1 (never a step, unlike 0) for rows that did not fail.
        #expect(try npz.array(named: "failed_step").asInt64() == [-1, Int64(failures[0].step), -1])
    }

    @Test("select = all: one row per replicate, each with its own status")
    func allReplicates() throws {
        let r = try ScriptTestResult.run(Self.script, params: [("select", "all")], seed: 5)
        let npz = try Npz.read(contentsOf: r.directory.appendingPathComponent("results.npz"))
        #expect(try npz.array(named: "failed").asInt64() == [0, 0, 1, 1, 0, 0])
        let csv = try String(contentsOf: r.directory.appendingPathComponent("summary.csv"), encoding: .utf8)
        #expect(csv.components(separatedBy: ",diverged,").count == 3)
    }

    @Test("A diverged replicate is deterministic, finished (resume does not redo it) and listed in the failures")
    func divergedIsFinished() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-diverge")
        let out = dir.appendingPathComponent("out")
        let first = try ScriptTestResult.run(Self.script, seed: 5, out: out)
        let before = try Data(contentsOf: out.appendingPathComponent("cells/c0001.json"))
        let timings = try String(contentsOf: out.appendingPathComponent("timings.csv"), encoding: .utf8)
        _ = first
        let again = try ScriptTestResult.run(Self.script, seed: 5, out: out, resume: true)
        _ = again
        #expect(try Data(contentsOf: out.appendingPathComponent("cells/c0001.json")) == before)
        // No cell ran again: timings.csv gained no rows.
        #expect(try String(contentsOf: out.appendingPathComponent("timings.csv"), encoding: .utf8) == timings)
        // Same seed elsewhere: the same bytes (the diverging step is part of the deterministic result).
        let other = try ScriptTestResult.run(Self.script, seed: 5, jobs: 2)
        #expect(try LuaSweepTests.resultFiles(other.directory) == LuaSweepTests.resultFiles(out))
        // The outcome lists the failures (for the message printed at the end).
        let o = try ScriptRunner.run(ScriptRunOptions(
            script: out.appendingPathComponent("script.lua"), out: out, seed: 5, resume: true, quiet: true,
            memoryLimit: 512 << 20, printSink: { _ in }))
        #expect(o.failures.map(\.cellID) == ["c0001", "c0001"])
        #expect(o.message.contains("2 replicate(s) failed") && o.message.contains("c0001 replicate 0: diverged at step"))
    }

    @Test("An error raised after a divergence in the same replicate is recorded as that divergence, not a crash")
    func errorAfterDivergence() throws {
        let r = try ScriptTestResult.run(Self.script, params: [("then_error", "1")], seed: 5)
        let cell = try JSONValue(contentsOf: r.directory.appendingPathComponent("cells/c0001.json"))
        #expect(SweepSummary.failureRecords(cell, id: "c0001").count == 2)
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("summary.csv").path))
    }

    @Test("A plain error (no divergence) still stops the sweep")
    func plainErrorStops() throws {
        let script = """
            toymoe.sweep{ grid = { i = {1, 2} }, run = function(cell)
              if cell.i == 1 then error("plain failure") end
              return { v = 1 }
            end }
            """
        #expect(throws: ScriptRunError.self) { _ = try ScriptTestResult.run(script) }
    }

    @Test("toymoe run --quiet still prints the failed replicates on stderr and exits 0")
    func cliReportsFailures() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-diverge-cli")
        try Self.script.write(to: dir.appendingPathComponent("d.lua"), atomically: true, encoding: .utf8)
        let r = try CLITests.toymoe(["run", "d.lua", "--out", "o", "--quiet"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("toymoe: failed: c0001 replicate 0: diverged at step"), "\(r.stderr)")
        let loud = try CLITests.toymoe(["run", "d.lua", "--out", "o", "--resume"], in: dir)
        #expect(loud.stderr.contains("2 replicate(s) failed"), "\(loud.stderr)")
    }
}
