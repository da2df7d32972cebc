import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// Values and messages a person reads are honest: Lua errors name Lua (1-based) entries, values that do not fit
/// float32 are refused with the value and the range, a saved diverged model loads only when asked, files say how
/// their steps are counted, a script that cannot be loaded says why and where, and a huge size is refused before
/// anything is allocated.
@Suite struct HonestValuesTests {
    func failure(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            let r = try ScriptTestResult.run(source)
            Issue.record("expected an error, got result \(r.result)", sourceLocation: sourceLocation)
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test("toymoe.data names a bad list entry by its Lua index")
    func luaIndexInMessages() {
        let cases: [(String, [String])] = [
            ("toymoe.data{ importance = {1, 2, 3, -1} }", ["toymoe.data", "importance[4]", "-1", "≥ 0"]),
            ("toymoe.data{ feature_probability = {0.5, 1.5} }", ["feature_probability[2]", "1.5", "[0, 1]"]),
            ("toymoe.data{ n_features = 2, input_scale = {1, 0/0} }", ["input_scale[2]", "nan"]),
        ]
        for (source, needles) in cases {
            let e = failure(source)
            for needle in needles { #expect(e.contains(needle), "`\(source)`: expected '\(needle)' in: \(e)") }
            #expect(!e.contains("entry 3"), "0-based entry in a Lua message: \(e)")
        }
    }

    @Test("Values beyond float32 are refused with the value and the float32 range, never stored as inf")
    func float32Range() throws {
        let cases: [(String, [String])] = [
            ("toymoe.data{ importance = {1, 1e39} }", ["toymoe.data", "importance[2]", "1e+39", "3.4028235e38"]),
            ("toymoe.data{ n_features = 2, relative_importance = 1e39 }", ["relative_importance", "1e+39", "3.4028235e38"]),
            ("toymoe.save_npy('x.npy', {1, -1e300}, 'float32')", ["toymoe.save_npy", "array[2]", "-1e+300", "3.4028235e38"]),
            ("toymoe.save_npy('x.npy', {1, 3e9}, 'int32')", ["toymoe.save_npy", "int32", "2147483647"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\nm:set('b_final', {{1, 5e38}})", ["b_final", "5e+38", "3.4028235e38"]),
        ]
        for (source, needles) in cases {
            let e = failure(source)
            for needle in needles { #expect(e.contains(needle), "`\(source)`: expected '\(needle)' in: \(e)") }
            #expect(!e.contains(" inf"), "shown as inf: \(e)")
        }
        // Infinity itself is not "out of range": a float32 file may hold it (it is what the script gave).
        let r = try ScriptTestResult.run("toymoe.save_npy('inf.npy', {math.huge}, 'float32') return { ok = true }")
        #expect(try NpyArray(contentsOf: r.directory.appendingPathComponent("inf.npy")).asFloat32() == [Float.infinity])
    }

    @Test("A diverged replicate's saved model: the sweep goes on, load_model refuses it unless allow_non_finite")
    func nonFiniteModelSaveLoad() throws {
        let r = try ScriptTestResult.run("""
            toymoe.sweep{ grid = { lr = { 1e9 } }, run = function(cell)
              local m = toymoe.model{ n_features = 4, n_hidden = 2 }
              toymoe.train(m, { data = toymoe.data{ n_features = 4, feature_probability = 0.5 }, steps = 200, batch_size = 32, lr = cell.lr })
              m:save('diverged.npz')
              return { saved = true }
            end }
            """)
        let fm = FileManager.default
        let path = try #require(fm.subpaths(atPath: r.directory.path)?.first { $0.hasSuffix("diverged.npz") }, "no model saved")
        let cell = try JSONValue(contentsOf: r.directory.appendingPathComponent("cells/c0000.json"))
        #expect(SweepSummary.failureRecords(cell, id: "c0000").count == 1, "the diverged replicate is a recorded failure")
        let W = try Npz.read(contentsOf: r.directory.appendingPathComponent(path)).array(named: "W").asFloat32()
        #expect(W.contains { !$0.isFinite }, "the saved model is the diverged one")

        func load(_ call: String) throws -> (String?, JSONObject) {
            let dir = try ScriptTestResult.temporaryDirectory("toymoe-nanload")
            defer { try? fm.removeItem(at: dir) }
            let script = dir.appendingPathComponent("test.lua")
            try call.write(to: script, atomically: true, encoding: .utf8)
            var o = ScriptRunOptions(script: script, out: dir.appendingPathComponent("out"), quiet: true, printSink: { _ in })
            o.inputs = ["prev": r.directory]
            do { return (nil, try ScriptRunner.run(o).result?.objectValue ?? JSONObject()) } catch { return ("\(error)", JSONObject()) }
        }
        let (e, _) = try load("toymoe.load_model('prev/\(path)')")
        let message = try #require(e, "a non-finite model loaded without allow_non_finite")
        for needle in ["toymoe.load_model", "W", "non-finite", "diverged", "allow_non_finite = true"] {
            #expect(message.contains(needle), "expected '\(needle)' in: \(message)")
        }
        let (e2, result) = try load("""
            local m = toymoe.load_model('prev/\(path)', { allow_non_finite = true })
            local bad = 0
            for _, row in ipairs(m:get('W')[1]) do for _, v in ipairs(row) do if v ~= v or v == math.huge or v == -math.huge then bad = bad + 1 end end end
            return { bad = bad }
            """)
        #expect(e2 == nil, "\(e2 ?? "")")
        #expect((result["bad"]?.intValue ?? 0) > 0)
    }

    // MARK: The toymoe executable

    /// Peak RSS allowed for a refused command: the process's own baseline is 21–25 MiB (debug build, measured with
    /// GNU time); the old code reached 650 MiB (toymoe.data), 1.1 GiB (toymoe.geometric) or grew without end.
    static let rssBoundMiB = 64.0

    @Test("toymoe train refuses a huge size at once: n_features 1e9 (and an overflowing E·n·m) in under a second")
    func trainHugeSizeRefusedFirst() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-trainhuge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [([String], String)] = [
            (["--n-features", "1000000000"], "n_features"),
            (["--n-features", "100000", "--n-hidden", "100000"], "n_features"),
            (["--preset", "fig2", "--n-features", "4000000000000000000", "--n-experts", "1000"], "overflow"),
            (["--n-features", "20000000", "--n-hidden", "1", "--batch-size", "4000000"], "GiB"),
        ]
        for (options, needle) in cases {
            let r = try ChildProcess.run(["train", "--quiet", "--out", dir.appendingPathComponent("o").path] + options, in: dir)
            print("toymoe train \(options.joined(separator: " ")): \(r.summary)")
            #expect(!r.signaled && r.status != 0, "\(options): status \(r.status)")
            #expect(r.seconds < 1.0, "\(options): took \(r.seconds) s")
            r.expectPeakRSS(atMost: Self.rssBoundMiB, "toymoe train \(options.joined(separator: " "))")
            #expect(r.stderr.contains(needle), "\(options): expected '\(needle)' in: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o").path), "wrote output before refusing")
        }
    }

    @Test("Lua builders check the memory limit before building: a huge toymoe.data or schedule is refused at once")
    func luaBuildersValidateFirst() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-luahuge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(String, [String])] = [
            ("toymoe.data{ n_features = 80000000 }", ["toymoe.data", "n_features", "80000000", "not enough memory"]),
            ("toymoe.geometric(0.5, 16777216)", ["toymoe.geometric", "not enough memory"]),
            ("toymoe.linspace(0, 1, 16777216)", ["toymoe.linspace", "not enough memory"]),
            ("toymoe.range(1, 16777216)", ["toymoe.range", "not enough memory"]),
        ]
        for (i, (source, needles)) in cases.enumerated() {
            let script = dir.appendingPathComponent("s\(i).lua")
            try source.write(to: script, atomically: true, encoding: .utf8)
            let r = try ChildProcess.run(
                ["run", script.path, "--out", dir.appendingPathComponent("o\(i)").path, "--quiet", "--memory-limit", "64"], in: dir)
            print("\(source) under --memory-limit 64: \(r.summary)")
            #expect(!r.signaled && r.status == 1, "\(source): status \(r.status)")
            #expect(r.seconds < 1.0, "\(source): took \(r.seconds) s")
            r.expectPeakRSS(atMost: Self.rssBoundMiB, source)
            #expect(r.stderr.contains("s\(i).lua:1:"), "no file:line: \(r.stderr)")
            for needle in needles { #expect(r.stderr.contains(needle), "\(source): expected '\(needle)' in: \(r.stderr)") }
        }
    }

    @Test("metrics.json of a diverged toymoe train names its step as 0-based; steps_run = zero_based_step + 1")
    func metricsDivergedStep() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-trainnan")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLITests.toymoe(
            ["train", "--quiet", "--out", "o", "--n-features", "4", "--n-hidden", "2", "--lr", "1e9", "--steps", "200", "--batch-size", "32"],
            in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let metrics = try JSONValue(contentsOf: dir.appendingPathComponent("o/metrics.json"))
        let diverged = try #require(metrics["training"]?["diverged"]?.objectValue, "did not diverge: \(metrics)")
        let step = try #require(diverged["zero_based_step"]?.intValue)
        #expect(diverged["step"] == nil, "an unlabelled step key is ambiguous")
        #expect(metrics["training"]?["steps_run"]?.intValue == step + 1)
    }

    // MARK: Loading the script

    func runScript(_ url: URL) -> String? {
        let out = url.deletingLastPathComponent().appendingPathComponent("out-\(UUID().uuidString)")
        do {
            _ = try ScriptRunner.run(ScriptRunOptions(script: url, out: out, quiet: true, printSink: { _ in }))
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("A script that cannot be loaded: the message says what is wrong and names the path")
    func scriptLoadingMessages() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-scriptload")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        let directory = dir.appendingPathComponent("adir.lua")
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let fifo = dir.appendingPathComponent("fifo.lua")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let latin1 = dir.appendingPathComponent("latin1.lua")
        try Data([0x2D, 0x2D, 0x20, 0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: latin1)  // "-- café" in Latin-1
        let cases: [(URL, [String])] = [
            (dir.appendingPathComponent("missing.lua"), ["missing.lua", "does not exist"]),
            (directory, [directory.path, "is a directory"]),
            (URL(fileURLWithPath: "/dev/null"), ["/dev/null", "character device"]),
            (fifo, [fifo.path, "FIFO"]),
            (latin1, [latin1.path, "not UTF-8", "0xE9", "offset 6"]),
        ]
        for (url, needles) in cases {
            let start = Date()
            let e = try #require(runScript(url), "\(url.path) ran")
            #expect(Date().timeIntervalSince(start) < 5, "\(url.path): slow (a FIFO must not be opened)")
            for needle in needles { #expect(e.contains(needle), "\(url.path): expected '\(needle)' in: \(e)") }
            #expect(!e.contains("NSCocoaErrorDomain") && !e.contains("You don't have permission"), "\(e)")
        }
        // Unreadable: root reads any file, so this case only means something for another user.
        if getuid() != 0 {
            let locked = dir.appendingPathComponent("locked.lua")
            try "return {}".write(to: locked, atomically: true, encoding: .utf8)
            chmod(locked.path, 0)
            let e = try #require(runScript(locked))
            #expect(e.contains(locked.path) && e.contains("Permission denied"), "\(e)")
        } else {
            print("scriptLoadingMessages: running as root, the unreadable-script case is skipped")
        }
        // The executable prints the same message and exits 1 (not a usage error, not a crash).
        let r = try CLITests.toymoe(["run", directory.path, "--out", "o"], in: dir)
        #expect(r.status == 1 && r.stderr.contains("is a directory") && r.stderr.contains(directory.path), "\(r.stderr)")
    }

    @Test("The UTF-8 check finds the first invalid byte and accepts valid text of every length")
    func utf8Validator() {
        #expect(ScriptRunner.firstInvalidUTF8(Array("a é € 😀".utf8)) == nil)
        #expect(ScriptRunner.firstInvalidUTF8([0x61, 0xC0, 0x80]) == 1)  // overlong
        #expect(ScriptRunner.firstInvalidUTF8([0xED, 0xA0, 0x80]) == 0)  // surrogate
        #expect(ScriptRunner.firstInvalidUTF8([0x61, 0xE2, 0x82]) == 1)  // truncated at the end
        #expect(ScriptRunner.firstInvalidUTF8([0xF4, 0x90, 0x80, 0x80]) == 0)  // above U+10FFFF
        #expect(ScriptRunner.firstInvalidUTF8([0x80]) == 0)
    }
}
