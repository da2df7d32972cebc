import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

/// Mistakes a researcher makes while writing and running scripts get a message that says what happened and what to
/// do: a mistyped KEY=VALUE (which used to run the default silently), `row.result` in a sweep that keeps every
/// replicate, `io`/`os`, a data set whose n_features disagrees with its model; and `print` of a table shows it.
@Suite("Researcher workflow") struct ResearcherWorkflowTests {

    /// Runs `source` as `test.lua` in-process and returns the outcome (warnings included) and the printed lines.
    static func outcome(
        _ source: String, params: [(String, String)] = [], jobs: Int = 1, out: URL? = nil, resume: Bool = false,
        shard: (Int, Int) = (0, 1), strict: Bool = false, files: [String: String] = [:], in directory: URL? = nil
    ) throws -> (outcome: ScriptRunOutcome, stdout: String, out: URL) {
        // A resume reuses the first run's directory: config.json records the script's path.
        let dir = try directory ?? ScriptTestResult.temporaryDirectory("toymoe-workflow")
        let script = dir.appendingPathComponent("test.lua")
        try source.write(to: script, atomically: true, encoding: .utf8)
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        let lines = ScriptTestResult.Lines()
        var options = ScriptRunOptions(
            script: script, params: params, out: out ?? dir.appendingPathComponent("out"), jobs: jobs, resume: resume,
            shard: shard, quiet: true, memoryLimit: 256 << 20, printSink: { lines.append($0) })
        options.strictParameters = strict
        let outcome = try ScriptRunner.run(options)
        return (outcome, lines.text, options.out)
    }

    /// The error of a run that fails.
    static func failure(_ source: String, params: [(String, String)] = [], strict: Bool = false) throws -> String {
        do {
            _ = try outcome(source, params: params, strict: strict)
        } catch {
            return "\(error)"
        }
        Issue.record("expected the run to fail")
        return ""
    }

    // MARK: Parameters never read

    static let sweepScript = """
        local steps = toymoe.param("steps", 3)
        toymoe.sweep{
          grid = { x = {1, 2} }, replicates = 2,
          run = function(cell, ctx)        -- 'scale' is read only here, on the workers
            return { v = cell.x * toymoe.param("scale", 1) + steps }
          end,
          finish = function(rows)          -- 'width' is read only here
            return { w = toymoe.param("width", 1), first = rows[1].replicates[1].v }
          end,
        }
        """

    @Test("A KEY=VALUE the script never reads is warned about once, with a did-you-mean; reads in run (on workers) and finish count")
    func unreadParameters() throws {
        for jobs in [1, 2] {
            let r = try Self.outcome(
                Self.sweepScript, params: [("stpes", "100"), ("scale", "3"), ("width", "2"), ("other", "1"), ("stpes", "7")],
                jobs: jobs)
            #expect(r.outcome.parameterWarnings == [
                "parameter 'stpes' was never read by the script (did you mean 'steps'?)",
                "parameter 'other' was never read by the script",
            ], "jobs \(jobs): \(r.outcome.parameterWarnings)")
            #expect(r.outcome.warnings == r.outcome.parameterWarnings)
            #expect(r.outcome.result?["w"] == .int(2) && r.outcome.result?["first"] == .int(6), "\(String(describing: r.outcome.result))")
        }
        // Direct reads of the table count (found in the source: a plain table read cannot be observed) ...
        let direct = try Self.outcome("return { s = toymoe.params.steps, t = toymoe.params['tag'] }",
                                      params: [("steps", "1"), ("tag", "a"), ("tga", "b")])
        #expect(direct.outcome.parameterWarnings == ["parameter 'tga' was never read by the script (did you mean 'tag'?)"])
        // ... and a script that uses the table as a whole may read any key: no warning.
        let generic = try Self.outcome("local n = 0 for k in pairs(toymoe.params) do n = n + 1 end return { n = n }",
                                       params: [("a", "1"), ("b", "2")])
        #expect(generic.outcome.parameterWarnings.isEmpty)
        #expect(generic.outcome.result?["n"] == .int(2))
    }

    @Test("--resume (nothing left to run) and a shard warn about the same typo; the warning changes no file")
    func resumeWarnsTheSame() throws {
        let params = [("stpes", "100"), ("scale", "3"), ("width", "2")]
        let first = try Self.outcome(Self.sweepScript, params: params)
        let expected = ["parameter 'stpes' was never read by the script (did you mean 'steps'?)"]
        #expect(first.outcome.parameterWarnings == expected)
        let names = ["summary.csv", "results.npz", "result.json", "sweep.json", "config.json", "cells/c0000.json", "cells/c0001.json"]
        let before = try names.map { try Data(contentsOf: first.out.appendingPathComponent($0)) }
        // Every cell is finished: `run` is not called, so its reads are not observed; 'scale' is mentioned in the
        // source and is not reported, the typo is.
        let resumed = try Self.outcome(
            Self.sweepScript, params: params, out: first.out, resume: true, in: first.out.deletingLastPathComponent())
        #expect(resumed.outcome.parameterWarnings == expected, "\(resumed.outcome.parameterWarnings)")
        let after = try names.map { try Data(contentsOf: first.out.appendingPathComponent($0)) }
        #expect(before == after)
        // A shard that does not run finish: 'width' is not reported either.
        let shard = try Self.outcome(Self.sweepScript, params: params, shard: (0, 2))
        #expect(shard.outcome.parameterWarnings == expected, "\(shard.outcome.parameterWarnings)")
        // Without the typo: no warning, and the same result.
        let clean = try Self.outcome(Self.sweepScript, params: [("scale", "3"), ("width", "2")])
        #expect(clean.outcome.parameterWarnings.isEmpty)
        #expect(clean.outcome.result == first.outcome.result)
    }

    @Test("A script run with toymoe.run_script reports the parameters it was given and never read")
    func nestedRuns() throws {
        let r = try Self.outcome(
            """
            local c = toymoe.run_script{ script = "child.lua", out = "c", params = { scale = "quick", sclae = 1 } }
            return { child = c.scale }
            """, files: ["child.lua": "return { scale = toymoe.param('scale', 'full') }"])
        #expect(r.outcome.parameterWarnings == [
            "parameter 'sclae' was never read by child.lua (given by toymoe.run_script) (did you mean 'scale'?)",
        ], "\(r.outcome.parameterWarnings)")
        #expect(r.outcome.result?["child"] == .string("quick"))
    }

    @Test("--strict: a key the source never mentions fails before anything runs; one mentioned but unread fails after the run")
    func strictInProcess() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-strict")
        let script = dir.appendingPathComponent("s.lua")
        try "toymoe.save_json('ran.json', {1}) return { steps = toymoe.param('steps', 3) }".write(to: script, atomically: true, encoding: .utf8)
        var options = ScriptRunOptions(script: script, params: [("stpes", "100")], out: dir.appendingPathComponent("out"), quiet: true)
        options.strictParameters = true
        #expect {
            try ScriptRunner.run(options)
        } throws: { error in
            "\(error)" == "--strict: parameter 'stpes' is not mentioned in s.lua (did you mean 'steps'?); nothing was run (without --strict this is a warning)"
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path), "nothing may be written")
        let late = try Self.failure(
            "if toymoe.param('branch', false) then return { late = toymoe.param('late', 1) } end return {}",
            params: [("late", "5")], strict: true)
        #expect(late.hasPrefix("--strict: parameter 'late' was never read by the script (the run's files are in "), "\(late)")
        // Everything read: --strict changes nothing.
        let fine = try Self.outcome("return { s = toymoe.param('steps', 1) }", params: [("steps", "4")], strict: true)
        #expect(fine.outcome.result?["s"] == .int(4) && fine.outcome.parameterWarnings.isEmpty)
    }

    @Test("Suggestions: edit distance with transpositions, close names only")
    func suggestions() {
        #expect(Suggest.distance("stpes", "steps") == 1)
        #expect(Suggest.distance("", "abc") == 3)
        #expect(Suggest.distance("kitten", "sitting") == 3)
        #expect(ParameterCheck.suggestion(for: "stpes", among: ["steps", "scale"]) == "steps")
        #expect(ParameterCheck.suggestion(for: "lr", among: ["lr_schedule", "n"]) == nil)
        #expect(ParameterCheck.suggestion(for: "sed", among: ["seed"]) == "seed")
        #expect(ParameterCheck.suggestion(for: "zzzzz", among: ["steps"]) == nil)
        #expect(ParameterCheck.mentions("local steps = 1", "steps") && !ParameterCheck.mentions("local nsteps = 1", "steps"))
        #expect(ParameterCheck.scan("toymoe.param('a', 1) toymoe.params.b toymoe.params[\"c d\"]").direct == ["b", "c d"])
        #expect(ParameterCheck.scan("local p = toymoe.params").generic)
    }

    /// The CLI: the warning on stderr (also with --quiet), exit 0; --strict exits 1 before any work. Child
    /// processes (wait4): exit status, time, peak RSS.
    @Test("toymoe run: the warning on stderr, --strict exits 1 (child processes)")
    func cli() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-workflow-cli")
        let script = dir.appendingPathComponent("dense.lua").path
        try """
            local m = toymoe.model{ n_features = 5, n_hidden = 2 }
            local r = toymoe.train(m, { data = toymoe.data{ model = m, feature_probability = 0.1 }, steps = toymoe.param("steps", 2000), batch_size = 64 })
            return { steps = r.steps }
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("o").path
        let typo = try ChildProcess.run(["run", script, "steps=5", "stpes=100", "--quiet", "--out", out], in: dir)
        #expect(typo.status == 0 && !typo.signaled, "\(typo.stderr)")
        #expect(typo.stderr == "toymoe: warning: parameter 'stpes' was never read by the script (did you mean 'steps'?)\n", "\(typo.stderr)")
        let result = try JSONValue(contentsOf: URL(fileURLWithPath: out + "/result.json"))
        #expect(result["steps"] == .int(5))
        let strict = try ChildProcess.run(["run", script, "stpes=100", "--strict", "--out", out + "-strict"], in: dir)
        #expect(strict.status == 1 && !strict.signaled)
        #expect(strict.stderr.contains("toymoe: --strict: parameter 'stpes' is not mentioned in dense.lua (did you mean 'steps'?); nothing was run"), "\(strict.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out + "-strict"))
        print("unread parameters (CLI): warning run \(typo.summary); --strict \(strict.summary)")
    }

    // MARK: finish rows

    @Test("finish: row.result with select = \"all\" says where the results are; other missing fields name the right one")
    func finishRows() throws {
        func sweep(_ select: String, _ finish: String) -> String {
            """
            toymoe.sweep{
              grid = { x = {1, 2} }, replicates = 2, select = \(select),
              run = function(cell, ctx) return { loss = cell.x + ctx.replicate } end,
              finish = function(rows)
            \(finish)
              end,
            }
            """
        }
        let all = try Self.failure(sweep("\"all\"", "    return { v = rows[1].result.loss }"))
        #expect(all.hasPrefix("test.lua:5: row.result is nil: this sweep keeps every replicate (select = \"all\"): use row.replicates[i]"), "\(all)")
        let dir = try Self.failure(sweep("\"all\"", "    return { v = rows[1].dir }"))
        #expect(dir.hasPrefix("test.lua:5: row.dir is nil: this sweep keeps every replicate (select = \"all\"): use row.dirs[i]"), "\(dir)")
        let typo = try Self.failure(sweep("{ minimize = 'loss' }", "    return { v = rows[1].results }"))
        #expect(typo.hasPrefix("test.lua:5: finish: a row has no field 'results': use row.replicates"), "\(typo)")
        let params = try Self.failure(sweep("{ minimize = 'loss' }", "    return { v = rows[1].params.x }"))
        #expect(params.contains("a row has no field 'params': use row.cell"), "\(params)")
        // The fields a row has still read as before; pairs and rawget see the plain table.
        let ok = try Self.outcome(sweep("{ minimize = 'loss' }", """
                local keys = {}
                for k in pairs(rows[2]) do keys[#keys + 1] = k end
                return { v = rows[2].result.loss, sel = rows[2].selected, dir = rows[2].dir, keys = table.concat(keys, ","),
                         raw = rawget(rows[2], "results") == nil, reps = #rows[2].replicates }
            """))
        let r = try #require(ok.outcome.result)
        #expect(r["v"] == .int(3) && r["sel"] == .int(1) && r["dir"] == .string("cells/c0001/r0") && r["reps"] == .int(2), "\(r)")
        #expect(r["keys"] == .string("cell,dir,dirs,failures,id,index,replicates,result,selected") && r["raw"] == .bool(true), "\(r)")
        let allOK = try Self.outcome(sweep("\"all\"", "    return { v = rows[1].replicates[2].loss, n = #rows[1].dirs }"))
        #expect(allOK.outcome.result?["v"] == .int(3) && allOK.outcome.result?["n"] == .int(2))
    }

    // MARK: print, io, os

    @Test("print of a table shows its contents: fixed order, two levels, 20 entries, cycles, cut strings; tostring unchanged")
    func printTables() throws {
        let source = """
            local t = { 1, 2, 3, [10] = 5, ["a b"] = 2, name = "x\\ny", ["end"] = 0, [true] = 1,
                        nested = { a = { b = { c = 1 } }, list = { 10, 20 }, e = {} }, [{}] = "table key" }
            t.self = t
            print(t, "s", 1.5, {})
            local big = {} for i = 1, 100 do big[i] = i * 0.5 end
            print(big)
            local h = {} for i = 1, 30 do h["k" .. string.format("%02d", 31 - i)] = i end
            print(h)
            print({ string.rep("x", 300) }, setmetatable({}, { __tostring = function() return "custom" end }),
                  setmetatable({ 1 }, { __name = "Thing" }), toymoe.model{ n_features = 2, n_hidden = 1, seed = 1 })
            print({ f = print, g = {} }, tostring({ 1 }))
            return { s = tostring(t):match("^table: #%d+$") ~= nil }
            """
        let first = try ScriptTestResult.run(source)
        let lines = first.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == #"{1, 2, 3, [10] = 5, ["a b"] = 2, ["end"] = 0, name = "x\ny", nested = {a = {…}, e = {}, list = {…}}, self = <cycle>, [true] = 1, … (1 more)}"# + "\ts\t1.5\t{}", "\(lines[0])")
        #expect(lines[1] == "{" + (1...20).map { "\(Double($0) * 0.5)" }.joined(separator: ", ") + ", … (80 more)}", "\(lines[1])")
        #expect(lines[2] == "{" + (1...20).map { String(format: "k%02d = %d", $0, 31 - $0) }.joined(separator: ", ") + ", … (10 more)}", "\(lines[2])")
        #expect(lines[3].hasPrefix("{\"" + String(repeating: "x", count: 200) + "\"…}\tcustom\tThing: #"), "\(lines[3])")
        #expect(lines[3].hasSuffix("\tModel(dense, n_features=2, n_hidden=1, n_experts=1, n_active_experts=1, parameters=6)"), "\(lines[3])")
        #expect(lines[4].hasPrefix("{f = function: #") && lines[4].contains(", g = {}}\ttable: #"), "\(lines[4])")
        #expect(first.result["s"] == .bool(true))
        // Same script, another state: the same text.
        let second = try ScriptTestResult.run(source)
        #expect(second.stdout == first.stdout)
    }

    @Test("io and os say what to use instead; rawget(_G, 'io') stays nil")
    func ioAndOs() throws {
        let r = try ScriptTestResult.run("""
            local ok1, e1 = pcall(function() return io.open("x.txt", "w") end)
            local ok2, e2 = pcall(function() io.write("hi") end)
            local ok3, e3 = pcall(function() return os.time() end)
            return { e1 = e1, e2 = e2, e3 = e3, ok = ok1 or ok2 or ok3, absent = rawget(_G, "io") == nil and rawget(_G, "os") == nil }
            """)
        #expect(r.result["ok"] == .bool(false) && r.result["absent"] == .bool(true))
        for key in ["e1", "e2"] {
            let e = r.result[key]?.stringValue ?? ""
            #expect(e.hasPrefix("test.lua:") && e.contains("undefined global 'io': io is not available in scripts: write files with toymoe.save_json / toymoe.save_npy / toymoe.save_npz"), "\(e)")
        }
        let e3 = r.result["e3"]?.stringValue ?? ""
        #expect(e3.hasPrefix("test.lua:3: undefined global 'os': os is not available in scripts:") && e3.contains("toymoe.param") && e3.contains("toymoe.seed"), "\(e3)")
    }

    // MARK: toymoe.data{model = m}

    @Test("toymoe.data{model = m} takes n_features from the model; a contradicting n_features names both")
    func dataFromModel() throws {
        let r = try ScriptTestResult.run("""
            local m = toymoe.model{ n_features = 7, n_hidden = 2 }
            local d = toymoe.data{ model = m, feature_probability = 0.2 }
            local same = toymoe.data{ model = m, n_features = 7 }
            local r = toymoe.train(m, { data = d, steps = 3, batch_size = 8 })
            local e = {}
            e[1] = select(2, pcall(toymoe.data, { model = m, n_features = 5 }))
            e[2] = select(2, pcall(toymoe.data, { model = 3 }))
            e[3] = select(2, pcall(toymoe.data, { modle = m, n_features = 7 }))
            e[4] = select(2, pcall(toymoe.data, { model = m, importance = { 1, 2 } }))
            return { n = d.n_features, same = same.n_features, steps = r.steps, e = e }
            """)
        #expect(r.result["n"] == .int(7) && r.result["same"] == .int(7) && r.result["steps"] == .int(3), "\(r.result)")
        let e = r.result["e"]?.arrayValue?.map { $0.stringValue ?? "" } ?? []
        #expect(e.count == 4)
        #expect(e.first == "test.lua:6: toymoe.data: n_features = 5 contradicts model's n_features = 7; give one of them", "\(e)")
        #expect(e.dropFirst().first?.hasPrefix("test.lua:7: toymoe.data: model: expected a model (toymoe.model{...}), got ") == true, "\(e)")
        #expect(e.dropFirst(2).first?.contains("modle") == true && e.dropFirst(2).first?.contains("did you mean 'model'") == true, "\(e)")
        #expect(e.last == "test.lua:9: toymoe.data: importance: expected 7 values (one per feature), got 2", "\(e)")
    }
}
