import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// Values written by the tool are the values the script computed: integers stay exact in every file, NaN and ±Inf
/// keep their identity in JSON, out-of-range values are errors (never a trap, never a silent change).
@Suite struct ExactValuesTests {
    static func write(_ source: String, _ name: String = "s.lua", in dir: URL) throws {
        try source.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    @Test("results.npz keeps integer results exact as int64 (math.maxinteger, 2^53+1, -maxinteger, integer arrays); the run and --resume exit 0, never a signal")
    func integerResultsExact() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-exactint")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.write("""
            toymoe.sweep{ name = "c", grid = { p = { 1, 2 } }, run = function(c)
              return { i = math.maxinteger, j = 9007199254740993, k = -9223372036854775807, a = { 9007199254740993, c.p } }
            end }
            """, in: dir)
        for extra in [[], ["--resume"]] {
            let r = try CLITests.toymoe(["run", "s.lua", "--out", "o", "--quiet"] + extra, in: dir)
            #expect(r.status == 0, "\(extra): status \(r.status): \(r.stderr)")
        }
        let npz = try Npz.read(contentsOf: dir.appendingPathComponent("o/results.npz"))
        for (key, expected) in [("i", Int64.max), ("j", 9_007_199_254_740_993), ("k", -9_223_372_036_854_775_807)] {
            let a = try npz.array(named: key)
            #expect(a.dtype == .int64, "\(key): \(a.dtype)")
            #expect(try a.asInt64() == [expected, expected], "\(key)")
        }
        let arr = try npz.array(named: "a")
        #expect(arr.dtype == .int64 && arr.shape == [2, 2])
        #expect(try arr.asInt64() == [9_007_199_254_740_993, 1, 9_007_199_254_740_993, 2])
    }

    @Test("An integer that a float64 column cannot hold exactly is an error naming the key, cell and replicate (exit 1, not a signal)")
    func inexactIntegerInFloatColumn() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-inexact")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.write("""
            toymoe.sweep{ grid = { p = { 1, 2 } }, run = function(c)
              if c.p == 1 then return { v = 0.5 } end
              return { v = 9007199254740993 }
            end }
            """, in: dir)
        let r = try CLITests.toymoe(["run", "s.lua", "--out", "o", "--quiet"], in: dir)
        #expect(r.status == 1, "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("result 'v' of cell c0001 replicate 0 is the integer 9007199254740993"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o/results.npz").path))
    }

    @Test("save_npy int64 converts Lua integers exactly; floats only when whole and in range; errors name the value, the range and the Lua index")
    func saveNpyInt64Exact() throws {
        let r = try ScriptTestResult.run("""
            toymoe.save_npy("a.npy", { 9007199254740993, math.maxinteger, math.maxinteger - 1023, math.mininteger, 2.0^62 }, "int64")
            toymoe.save_npy("b.npy", { { 1, 2 }, { 3, 4 } }, "int32")
            local bad = {}
            for _, case in ipairs{
              { { 1, 2.0^63 }, "int64" }, { { 1.5 }, "int64" }, { { { 1, 2 }, { 3, 2147483648 } }, "int32" }, { { 0/0 }, "int64" },
            } do
              local ok, e = pcall(toymoe.save_npy, "x.npy", case[1], case[2])
              bad[#bad + 1] = ok and "accepted" or e
            end
            return { errors = bad }
            """)
        let a = try NpyArray(contentsOf: r.directory.appendingPathComponent("a.npy"))
        #expect(a.dtype == .int64)
        #expect(try a.asInt64() == [9_007_199_254_740_993, Int64.max, Int64.max - 1023, Int64.min, 1 << 62])
        #expect(try NpyArray(contentsOf: r.directory.appendingPathComponent("b.npy")).asInt32() == [1, 2, 3, 4])
        let errors = (r.result["errors"]?.arrayValue ?? []).compactMap { $0.stringValue }
        try #require(errors.count == 4, "\(r.result)")
        #expect(errors[0].contains("array[2] = 9.2233720368548e+18 does not fit in int64 (-9223372036854775808...9223372036854775807)"), "\(errors[0])")
        #expect(errors[1].contains("array[1] = 1.5 is not a whole number; int64 needs integer values"), "\(errors[1])")
        #expect(errors[2].contains("array[2][2] = 2147483648 does not fit in int32 (-2147483648...2147483647)"), "\(errors[2])")
        #expect(errors[3].contains("array[1] = ") && errors[3].contains("nan is not a whole number"), "\(errors[3])")
        #expect(errors.allSatisfy { $0.contains("test.lua:") }, "\(errors)")
    }

    @Test("NaN and ±Inf in save_json and result.json are {\"non_finite\": ...}, never null; load_json reads them back as numbers")
    func nonFiniteJSONRoundTrip() throws {
        let r = try ScriptTestResult.run("""
            toymoe.save_json("x.json", { 1/0, -1/0, 0/0, 2, { deep = 0/0 } })
            local x = toymoe.load_json("x.json")
            local ok, e = pcall(toymoe.save_json, "y.json", { a = { non_finite = "inf" } })
            return { a = 0/0, b = { 1/0 }, back = { x[1] == math.huge, x[2] == -math.huge, x[3] ~= x[3], x[4] == 2, x[5].deep ~= x[5].deep },
                     refused = ok and "accepted" or e }
            """)
        let saved = try String(contentsOf: r.directory.appendingPathComponent("x.json"), encoding: .utf8)
        #expect(!saved.contains("null"), "\(saved)")
        let x = try JSONValue(contentsOf: r.directory.appendingPathComponent("x.json"))
        #expect(x[0]?["non_finite"]?.stringValue == "inf" && x[1]?["non_finite"]?.stringValue == "-inf")
        #expect(x[2]?["non_finite"]?.stringValue == "nan" && x[4]?["deep"]?["non_finite"]?.stringValue == "nan")
        #expect(r.result["back"] == .array([.bool(true), .bool(true), .bool(true), .bool(true), .bool(true)]), "\(r.result)")
        let refused = r.result["refused"]?.stringValue ?? ""
        #expect(refused.contains("value.a is a table {non_finite = ...}, the shape reserved for writing NaN and ±Inf"), "\(refused)")
        let result = try JSONValue(contentsOf: r.directory.appendingPathComponent("result.json"))
        #expect(result["a"]?["non_finite"]?.stringValue == "nan", "\(result)")
        #expect(result["b"]?[0]?["non_finite"]?.stringValue == "inf", "\(result)")
    }

    @Test("init values outside float32 are refused, naming the tensor, the value and the range (xavier gain, normal std, function with Lua indices)")
    func initOutsideFloat32() throws {
        for (initText, needles) in [
            ("{ W = { xavier = 1e300 } }", ["W: {xavier = 1e+300}", "for W (flat index 0, 0-based), outside float32", "±3.4028235e38"]),
            ("{ W = { normal = 1e300 } }", ["W: {normal = 1e+300}: draws", "outside float32"]),
            ("{ W = function(e, i, j) if i == 2 and j == 1 then return 1e39 end return 0.1 end }",
             ["W: the init function returned 1e+39 at (1, 2, 1), outside float32 (finite values lie within ±3.4028235e38)"]),
        ] {
            do {
                _ = try ScriptTestResult.run("local m = toymoe.model{ n_features = 3, n_hidden = 2, init = \(initText) }\nreturn {}")
                Issue.record("\(initText): accepted")
            } catch let e as ScriptRunError {
                for n in needles { #expect(e.description.contains(n), "\(initText): expected '\(n)' in \(e)") }
                #expect(e.description.contains("test.lua:1:"), "\(e)")
            }
        }
    }

    @Test("A result key that cannot name an NPZ array (\"\") is refused at the first cell, before any cell is recorded")
    func invalidNPZKeyRefusedEarly() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-npzkey")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out")
        do {
            _ = try ScriptTestResult.run("""
                toymoe.sweep{ grid = { i = { 1, 2, 3 } }, run = function(c) return { [""] = 1, v = c.i } end }
                """, out: out)
            Issue.record("accepted")
        } catch let e as ScriptRunError {
            #expect(e.description.contains("cell c0000 replicate 0: run returned the result key \"\", which cannot name an array in results.npz"), "\(e)")
        }
        let cells = (try? FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("cells").path)) ?? []
        #expect(cells.filter { $0.hasSuffix(".json") }.isEmpty, "\(cells)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("summary.csv").path))
    }

    @Test("Top-level return: a number is result.json's value; a function or a model is an error naming it")
    func topLevelReturnValues() throws {
        let ok = try ScriptTestResult.run("return 5")
        #expect(try JSONValue(contentsOf: ok.directory.appendingPathComponent("result.json")) == .int(5))
        for (source, needle) in [
            ("return function() end", "the script's return value is a function, which cannot be saved as result.json"),
            ("return toymoe.model{ n_features = 2, n_hidden = 1 }", "which cannot be saved as result.json"),
        ] {
            do {
                _ = try ScriptTestResult.run(source)
                Issue.record("\(source): accepted")
            } catch let e as ScriptRunError {
                #expect(e.description.contains(needle), "\(source): \(e)")
            }
        }
    }

    @Test("Scripts cannot write the tool's own files at the output root (.toymoe.lock, result.json, ...) nor cell files; bundled names still work")
    func reservedOutputNames() throws {
        let r = try ScriptTestResult.run("""
            local errors = {}
            for _, name in ipairs{ ".toymoe.lock", "result.json", "./provenance.json", "sweep.json", "summary.csv", "results.npz", "cells/c0000.json" } do
              local ok, e = pcall(toymoe.save_json, name, { 1 })
              errors[#errors + 1] = ok and ("accepted " .. name) or e
            end
            toymoe.save_json("summary.json", { 1 })
            toymoe.save_json("sub/result.json", { 1 })
            return { errors = errors }
            """)
        let errors = (r.result["errors"]?.arrayValue ?? []).compactMap { $0.stringValue }
        try #require(errors.count == 7, "\(r.result)")
        for e in errors.prefix(6) { #expect(e.contains("at the root of the output directory is written by toymoe itself"), "\(e)") }
        #expect(errors[6].contains("cells/ in the output directory holds the sweep's cell files"), "\(errors[6])")
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("summary.json").path))
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("sub/result.json").path))
    }

    @Test("A sweep cell still writes its own files, even under a reserved root name (they land in cells/<id>/r<R>/)")
    func cellWritesOwnFiles() throws {
        let r = try ScriptTestResult.run("""
            toymoe.sweep{ grid = { i = { 1 } }, run = function(c)
              toymoe.save_json("result.json", { 1 })
              return { v = 1 }
            end }
            """)
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("cells/c0000/r0/result.json").path))
    }
}

/// CLI checks of the same promises (a child process each).
@Suite(.serialized) struct ExactValuesCLITests {
    @Test("toymoe train --out '' and --out naming a file are refused before training, exit 1")
    func trainOutRefused() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-trainout")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("afile")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        let common = ["train", "--quiet", "--n-features", "4", "--n-hidden", "2", "--steps", "5", "--batch-size", "8"]
        let empty = try CLITests.toymoe(common + ["--out", ""], in: dir)
        #expect(empty.status != 0 && empty.stderr.contains("--out: expected a directory, got an empty path"), "\(empty.status) \(empty.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.npz").path))
        let notDir = try CLITests.toymoe(common + ["--out", file.path], in: dir)
        #expect(notDir.status != 0 && notDir.stderr.contains("expected a directory, but it is a file; nothing was trained"), "\(notDir.status) \(notDir.stderr)")
        let devNull = try CLITests.toymoe(common + ["--out", "/dev/null"], in: dir)
        #expect(devNull.status != 0 && devNull.stderr.contains("nothing was trained"), "\(devNull.status) \(devNull.stderr)")
        #expect(!devNull.stderr.contains("NSCocoaErrorDomain"), "\(devNull.stderr)")
    }

    @Test("metrics.json of a diverged toymoe train writes its NaN/inf loss as {\"non_finite\": ...}, not null")
    func trainMetricsNonFinite() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-trainnf")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLITests.toymoe(
            ["train", "--quiet", "--out", "o", "--n-features", "4", "--n-hidden", "2", "--lr", "1e9", "--steps", "200", "--batch-size", "32"],
            in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOf: dir.appendingPathComponent("o/metrics.json"), encoding: .utf8)
        #expect(!text.contains("null"), "\(text)")
        let metrics = try JSONValue(contentsOf: dir.appendingPathComponent("o/metrics.json"))
        let loss = try #require(metrics["training"]?["final_loss"])
        #expect(["nan", "inf", "-inf"].contains(loss["non_finite"]?.stringValue ?? "?"), "\(loss)")
    }

    @Test("SLURM_ARRAY_TASK_ID without SLURM_ARRAY_TASK_COUNT (or the reverse) is an error naming both")
    func slurmHalfSet() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-slurmhalf")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "toymoe.sweep{ grid = { i = { 1, 2 } }, run = function(c) return { v = c.i } end }".write(
            to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let r = try CLITests.toymoe(["run", "s.lua", "--out", "o", "--quiet"], environment: ["SLURM_ARRAY_TASK_ID": "1"], in: dir)
        #expect(r.status != 0, "\(r.stderr)")
        #expect(r.stderr.contains("SLURM_ARRAY_TASK_ID is set (1) but SLURM_ARRAY_TASK_COUNT is not"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o/cells").path))
    }

    @Test("toymoe merge names each cell file it skips and why (another run seed)")
    func mergeSaysWhySkipped() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-mergeskip")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "toymoe.sweep{ grid = { i = { 1, 2 } }, run = function(c) return { v = c.i } end }".write(
            to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        for (shard, seed) in [("0/2", "1"), ("1/2", "1")] {
            let r = try CLITests.toymoe(["run", "s.lua", "--out", "s\(shard.prefix(1))", "--shard", shard, "--seed", seed, "--quiet"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
        }
        // Forge shard 1's cell as if computed with seed 2.
        let cell = dir.appendingPathComponent("s1/cells/c0001.json")
        guard case .object(var o) = try JSONValue(contentsOf: cell) else { Issue.record("no cell"); return }
        o["run_seed"] = .string("2")
        try JSONValue.object(o).write(to: cell)
        let m = try CLITests.toymoe(["merge", "m", "s0", "s1"], in: dir)
        #expect(m.status == 2, "\(m.status) \(m.stderr)")
        #expect(m.stderr.contains("c0001.json: it was computed with run seed \"2\", but sweep.json records seed \"1\"; not merged"), "\(m.stderr)")
    }

    @Test("SIGINT during toymoe merge: the same message as toymoe run (what is kept, how to continue), exit 130")
    func mergeInterrupted() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-mergeint")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Many cells with a saved file each, so the merge copies long enough for the signal to land mid-merge.
        try """
            local g = {}
            for i = 1, 600 do g[i] = i end
            toymoe.sweep{ grid = { i = g }, run = function(c) toymoe.save_json("f.json", { c.i }) return { v = c.i } end }
            """.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let r = try CLITests.toymoe(["run", "s.lua", "--out", "src", "--quiet"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let dest = dir.appendingPathComponent("dest")
        let child = try ChildProcess.start(["merge", dest.path, dir.appendingPathComponent("src").path], in: dir)
        // Signalled once the merge has started copying (its first cell directory exists).
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, ((try? FileManager.default.contentsOfDirectory(atPath: dest.appendingPathComponent("cells").path)) ?? []).isEmpty {
            usleep(2_000)
        }
        kill(child.pid, SIGINT)
        let w = child.wait()
        #expect(!w.signaled, "died of a signal: \(w.stderr)")
        #expect(w.status == 130, "status \(w.status): \(w.stderr)")
        #expect(w.stderr.contains("toymoe: interrupted by SIGINT; every finished file in \(dest.path) is complete"), "\(w.stderr)")
        #expect(w.stderr.contains("run the same toymoe merge again to continue"), "\(w.stderr)")
        // Running it again completes the merge.
        let again = try CLITests.toymoe(["merge", "dest", "src"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
    }
}
