import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

// MARK: - Same seed, same bytes

/// `table.sort` is a stable merge sort: its order is a function of the input and the comparator only.
@Suite struct DeterministicSortTests {
    @Test("table.sort is stable: records with tied keys keep their input order; results and errors as stock Lua")
    func stable() throws {
        let r = try ScriptTestResult.run("""
            local recs = {}
            for i = 1, 5000 do recs[i] = { key = (i * 37) % 11, id = i } end
            table.sort(recs, function(a, b) return a.key < b.key end)
            local stable, sorted = true, true
            for i = 2, #recs do
              if recs[i - 1].key > recs[i].key then sorted = false end
              if recs[i - 1].key == recs[i].key and recs[i - 1].id > recs[i].id then stable = false end
            end
            local nums = {} for i = 1, 1000 do nums[i] = (i * 7919) % 1009 - 500 + (i % 3) * 0.5 end
            table.sort(nums)
            local ascending = true
            for i = 2, #nums do if nums[i - 1] > nums[i] then ascending = false end end
            local words = { "pear", "apple", "fig", "banana" }
            table.sort(words, function(a, b) return a > b end)
            local ok1, e1 = pcall(table.sort, { 3, "x", 1 })
            local ok2, e2 = pcall(table.sort, { 3, 2, 1 }, function() error("comparator failed") end)
            local ok3, e3 = pcall(table.sort, setmetatable({}, { __len = function() return 5 end }))
            local empty, one = {}, { 42 }
            table.sort(empty) table.sort(one)
            return { stable = stable, sorted = sorted, ascending = ascending, words = table.concat(words, ","),
                     e1 = tostring(e1), e2 = tostring(e2), e3 = tostring(e3), ok = not (ok1 or ok2 or ok3),
                     one = one[1], n = #empty }
            """)
        #expect(r.result["sorted"]?.boolValue == true)
        #expect(r.result["stable"]?.boolValue == true, "tied keys reordered: table.sort is not stable")
        #expect(r.result["ascending"]?.boolValue == true)
        #expect(r.result["words"]?.stringValue == "pear,fig,banana,apple")
        #expect(r.result["ok"]?.boolValue == true)
        #expect(r.result["e1"]?.stringValue?.contains("attempt to compare") == true, "\(r.result)")
        #expect(r.result["e2"]?.stringValue?.contains("comparator failed") == true, "\(r.result)")
        #expect(r.result["e3"]?.stringValue?.contains("__len") == true, "\(r.result)")
        #expect(r.result["one"]?.intValue == 42 && r.result["n"]?.intValue == 0)
    }

    /// A script that sorts records with tied keys, iterates string-keyed tables and saves what it saw: with stock
    /// Lua 5.4, 4 runs gave 4 different files. Separate processes: each has its own address layout and clock.
    @Test("same seed ⇒ byte-identical output files for a script that sorts tied records and iterates with pairs")
    func sameSeedSameBytes() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-sort-bytes")
        try """
            -- Three records with key 1 where the quicksort probes (first, middle, last), the rest tied at 0: the
            -- partition is as unbalanced as can be, and stock Lua 5.4 then draws its pivots from the clock (a C
            -- program running this sort with stock liblua5.4 printed 4 different orders in 4 runs).
            local N, recs = 3001, {}
            for i = 1, N do
              recs[i] = { key = (i == 1 or i == (N + 1) // 2 or i == N) and 1 or 0, name = "r" .. i }
            end
            table.sort(recs, function(a, b) return a.key < b.key end)
            local more = {}
            for i = 1, 2000 do more[i] = { key = math.random(1, 5), name = "m" .. i } end
            table.sort(more, function(a, b) return a.key > b.key end)
            local order = {}
            for i = 1, #recs do order[i] = recs[i].name end
            for i = 1, #more do order[#order + 1] = more[i].name end
            local counts = {}
            for _, r in ipairs(more) do counts["k" .. r.key] = (counts["k" .. r.key] or 0) + 1 end
            local seen = {}
            for k, v in pairs(counts) do seen[#seen + 1] = k .. "=" .. v end
            toymoe.save_json("order.json", { order = order, seen = seen })
            return { first = order[1], last = order[#order] }
            """.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        var files: [Data] = []
        for i in 0..<4 {
            let r = try CLITests.toymoe(["run", "s.lua", "--quiet", "--seed", "7", "--out", "o\(i)"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            files.append(try Data(contentsOf: dir.appendingPathComponent("o\(i)/order.json")))
            files.append(try Data(contentsOf: dir.appendingPathComponent("o\(i)/result.json")))
        }
        #expect(files.count == 8 && files[0].count > 20_000)
        for i in stride(from: 2, to: files.count, by: 2) {
            #expect(files[i] == files[0], "order.json of run \(i / 2) differs from run 0")
            #expect(files[i + 1] == files[1], "result.json of run \(i / 2) differs from run 0")
        }
    }

    /// Stock Lua names tables and functions by address ("table: 0x55d248e4a4c0"), which ASLR changes every run.
    @Test("tostring, print and string.format('%s') name tables and functions deterministically; '%p' is refused")
    func deterministicNames() throws {
        let source = """
            local a, b, f = {}, {}, function() end
            local co = coroutine.create(f)
            print(a, f)
            local names = { tostring(a), tostring(b), tostring(a), tostring(f), tostring(co),
                            string.format("%s|%5s|%s", b, 12, "x"), tostring(setmetatable({}, { __name = "Thing" })),
                            tostring(setmetatable({}, { __tostring = function() return "custom" end })) }
            local ok, err = pcall(string.format, "%p", a)
            return { names = table.concat(names, ";"), err = tostring(err), ok = ok }
            """
        let first = try ScriptTestResult.run(source)
        // Numbered in order of first naming: print names f first (it prints the table a's contents, `{}`, without
        // naming it).
        #expect(first.result["names"]?.stringValue == "table: #2;table: #3;table: #2;function: #1;thread: #4;table: #3|   12|x;Thing: #5;custom",
                "\(first.result)")
        #expect(first.stdout == "{}\tfunction: #1\n", "\(first.stdout)")
        #expect(first.result["ok"]?.boolValue == false)
        #expect(first.result["err"]?.stringValue?.contains("'%p' is not allowed") == true, "\(first.result)")
        // A second state (another run) gives the same names.
        let second = try ScriptTestResult.run(source)
        #expect(second.result["names"] == first.result["names"] && second.stdout == first.stdout)
    }

    @Test("table.sort of 6M numbers stops at the time limit (the sort is one C call the count hook cannot interrupt)")
    func sortHonoursTheDeadline() throws {
        let start = Date()
        // The table is built by a few C calls (string.byte, table.move; ~0.1 s), so on a loaded machine the limit
        // still falls inside the sort (line 5), not in the building of its input: a Lua loop of 6M iterations could
        // take longer than the limit when the whole suite runs in parallel. Unbounded, this sort takes ~15 s in a
        // debug build and ~5 s with stock Lua's quicksort in a release build.
        #expect {
            try ScriptTestResult.run("""
                local chunk = {}; for i = 1, 200 do chunk[i] = (i * 7919) % 251 end
                local s = string.rep(string.char(table.unpack(chunk)), 2500)
                local t, piece = {}, { string.byte(s, 1, #s) }
                for k = 0, 11 do table.move(piece, 1, #piece, k * #piece + 1, t) end
                table.sort(t)
                """, timeLimit: 1, memoryLimit: 1 << 30)
        } throws: { error in
            "\(error)".contains("test.lua:5: time limit of 1 s exceeded")
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < 2.5, "took \(seconds) s")
    }

    @Test("load() of 48 MB of source stops at the time limit, and pcall cannot swallow it")
    func loadHonoursTheDeadline() throws {
        let start = Date()
        #expect {
            try ScriptTestResult.run("""
                local src = string.rep("a = 1\\n", 8000000)
                local ok = pcall(load, src)
                return { survived = true }
                """, timeLimit: 0.5, memoryLimit: 1 << 30)
        } throws: { error in
            "\(error)".contains("time limit of 0.5 s exceeded")
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < 1.5, "took \(seconds) s")
    }
}

// MARK: - Nested scripts

/// `toymoe.run_script` nests states: their depth is bounded and they all draw from the budget of the run.
@Suite(.serialized) struct NestedScriptBudgetTests {
    static func scripts(_ files: [String: String]) throws -> URL {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-nested")
        let scripts = dir.appendingPathComponent("scripts")
        try FileManager.default.createDirectory(at: scripts, withIntermediateDirectories: true)
        for (name, source) in files {
            try source.write(to: scripts.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return dir
    }

    static let recursive = """
        local depth = tonumber(toymoe.param("depth", "0"))
        return toymoe.run_script{ script = "rec.lua", out = "d", params = { depth = depth + 1 } }
        """

    @Test("a script that runs itself stops at depth 16 with an error naming toymoe.run_script (a child process: no signal)")
    func depthLimit() throws {
        let dir = try Self.scripts(["rec.lua": Self.recursive])
        let r = try ChildProcess.run(["run", "\(dir.path)/scripts/rec.lua", "--quiet", "--out", "\(dir.path)/o"], in: dir)
        #expect(!r.signaled, "killed by a signal")
        #expect(r.status == 1, "exit \(r.status): \(r.stderr.prefix(500))")
        #expect(r.stderr.contains("rec.lua:2: toymoe.run_script: nesting depth limit reached: 16 scripts"), "\(r.stderr.prefix(2000))")
        // Exactly 16 nested output directories: the 17th level was refused.
        var level = dir.appendingPathComponent("o")
        var depth = 0
        while FileManager.default.fileExists(atPath: level.appendingPathComponent("d/script.lua").path) {
            level = level.appendingPathComponent("d")
            depth += 1
        }
        #expect(depth == 16)
    }

    /// Each level holds 20 MiB of strings while the next runs: 6 levels need 120 MiB. With a fresh limit per state
    /// (the old behaviour) every level fit in 64 MiB and the process grew to 6 × 20 MiB.
    @Test("nested scripts share the run's memory limit: 6 levels × 20 MiB fail under --memory-limit 64, RSS ≤ limit + baseline + 96 MiB")
    func sharedMemory() throws {
        let dir = try Self.scripts(["mem.lua": """
            local depth = tonumber(toymoe.param("depth", "0"))
            local keep = {}
            for i = 1, 20 do keep[i] = string.rep(string.char(65 + i), 1 << 20) end
            if depth < 5 then
              return toymoe.run_script{ script = "mem.lua", out = "d", params = { depth = depth + 1 } }
            end
            return { depth = depth }
            """])
        let baseline = try ChildProcess.baselineRSS(in: dir)
        let r = try ChildProcess.run(["run", "\(dir.path)/scripts/mem.lua", "--quiet", "--out", "\(dir.path)/o", "--memory-limit", "64"], in: dir)
        #expect(!r.signaled)
        #expect(r.status == 1, "exit \(r.status): \(r.stderr.prefix(500))")
        #expect(r.stderr.contains("not enough memory"), "\(r.stderr.prefix(1000))")
        #expect(r.stderr.contains("mem.lua:5:"), "\(r.stderr.prefix(1000))")
        let bound = baseline.map { 64 + $0 + 96 }
        r.expectPeakRSS(atMost: bound, "nested memory under --memory-limit 64")
        // The same scripts fit in a limit that covers all levels at once.
        let ok = try ChildProcess.run(["run", "\(dir.path)/scripts/mem.lua", "--quiet", "--out", "\(dir.path)/o2", "--memory-limit", "256"], in: dir)
        #expect(ok.status == 0, "\(ok.stderr.prefix(1000))")
        print("nested memory: 6 levels × 20 MiB under 64 MiB: \(r.summary) (baseline \(ChildProcess.mib(baseline)), bound \(ChildProcess.mib(bound))); under 256 MiB: \(ok.summary)")
    }

    /// A script's state used to outlive its run (the bindings capture their runtime): 12 scripts run one after the
    /// other, each holding 20 MiB, kept 240 MiB alive. Now each state is closed when its run ends and its memory goes
    /// back to the budget, so they all fit, one at a time, in 64 MiB.
    @Test("scripts run one after the other give their memory back: 12 × 20 MiB under --memory-limit 64, RSS ≤ limit + baseline + 96 MiB")
    func sequentialScriptsFreeTheirMemory() throws {
        let dir = try Self.scripts([
            "child.lua": "local keep = {} for i = 1, 20 do keep[i] = string.rep(string.char(65 + i), 1 << 20) end return { n = #keep }",
            "parent.lua": "local n = 0 for i = 1, 12 do n = n + toymoe.run_script{ script = 'child.lua', out = 'c' .. i }.n end return { n = n }",
        ])
        let baseline = try ChildProcess.baselineRSS(in: dir)
        let r = try ChildProcess.run(["run", "\(dir.path)/scripts/parent.lua", "--quiet", "--out", "\(dir.path)/o", "--memory-limit", "64"], in: dir)
        #expect(r.status == 0, "\(r.stderr.prefix(1000))")
        let result = try JSONValue(contentsOf: dir.appendingPathComponent("o/result.json"))
        #expect(result["n"]?.intValue == 240)
        let bound = baseline.map { 64 + $0 + 96 }
        r.expectPeakRSS(atMost: bound, "sequential scripts under --memory-limit 64")
        print("sequential scripts: 12 × 20 MiB under 64 MiB: \(r.summary) (baseline \(ChildProcess.mib(baseline)), bound \(ChildProcess.mib(bound)))")
    }

    /// Each level spins about 0.4 s (debug build) before starting the next: 4 levels under a 1 s limit. With a fresh
    /// deadline per state (the old behaviour) the run finished after all levels.
    @Test("nested scripts share the run's deadline: 4 levels stop at --time-limit 1 with the time-limit error")
    func sharedDeadline() throws {
        let dir = try Self.scripts(["time.lua": """
            local depth = tonumber(toymoe.param("depth", "0"))
            local deadline = 0
            for i = 1, 1e7 do deadline = deadline + i end
            if depth < 3 then
              return toymoe.run_script{ script = "time.lua", out = "d", params = { depth = depth + 1 } }
            end
            return { depth = depth }
            """])
        // Without a limit all 4 levels complete: how long that takes here.
        let free = try ChildProcess.run(["run", "\(dir.path)/scripts/time.lua", "--quiet", "--out", "\(dir.path)/free"], in: dir)
        #expect(free.status == 0, "\(free.stderr.prefix(1000))")
        let limit = max(0.3, free.seconds / 3)
        let r = try ChildProcess.run(["run", "\(dir.path)/scripts/time.lua", "--quiet", "--out", "\(dir.path)/o", "--time-limit", String(format: "%.2f", limit)], in: dir)
        #expect(!r.signaled)
        #expect(r.status == 1, "exit \(r.status): \(r.stderr.prefix(500))")
        #expect(r.stderr.contains("time limit of"), "\(r.stderr.prefix(1000))")
        #expect(r.seconds < limit + 1, "took \(r.seconds) s under a \(limit) s limit")
        print(String(format: "nested deadline: 4 levels take %.2f s unlimited; under --time-limit %.2f: exit %d after %.2f s",
                     free.seconds, limit, r.status, r.seconds))
    }

    /// Each level runs about 2·10⁷ instructions (two per loop iteration): 4 levels need 8·10⁷. With a fresh budget
    /// per state (the old behaviour) each level fit in 5·10⁷.
    @Test("nested scripts share the run's instruction budget: 4 levels stop at --instruction-limit 50000000")
    func sharedInstructions() throws {
        let dir = try Self.scripts(["count.lua": """
            local depth = tonumber(toymoe.param("depth", "0"))
            local s = 0
            for i = 1, 1e7 do s = s + i end
            if depth < 3 then
              return toymoe.run_script{ script = "count.lua", out = "d", params = { depth = depth + 1 } }
            end
            return { depth = depth }
            """])
        let ok = try ChildProcess.run(["run", "\(dir.path)/scripts/count.lua", "--quiet", "--out", "\(dir.path)/ok", "--instruction-limit", "1000000000"], in: dir)
        #expect(ok.status == 0, "\(ok.stderr.prefix(1000))")
        let r = try ChildProcess.run(["run", "\(dir.path)/scripts/count.lua", "--quiet", "--out", "\(dir.path)/o", "--instruction-limit", "50000000"], in: dir)
        #expect(!r.signaled)
        #expect(r.status == 1, "exit \(r.status): \(r.stderr.prefix(500))")
        #expect(r.stderr.contains("instruction budget exceeded (limit: 50000000 instructions)"), "\(r.stderr.prefix(1000))")
    }

    @Test("a nested script's sweep is bounded by the deadline of the run that started it")
    func nestedSweepDeadline() throws {
        let dir = try Self.scripts([
            "outer.lua": "return toymoe.run_script{ script = \"inner.lua\", out = \"inner\" }",
            "inner.lua": """
                toymoe.sweep{ name = "slow", grid = { k = { 1, 2, 3, 4, 5, 6, 7, 8 } },
                  run = function(cell) local s = 0 for i = 1, 4e6 do s = s + i end return { s = s } end }
                """,
        ])
        let free = try ChildProcess.run(["run", "\(dir.path)/scripts/outer.lua", "--quiet", "--out", "\(dir.path)/free"], in: dir)
        #expect(free.status == 0, "\(free.stderr.prefix(1000))")
        // Each cell alone fits the limit; all 8 together do not.
        let limit = max(0.3, free.seconds / 3)
        let r = try ChildProcess.run(["run", "\(dir.path)/scripts/outer.lua", "--quiet", "--out", "\(dir.path)/o", "--time-limit", String(format: "%.2f", limit)], in: dir)
        #expect(r.status == 1, "exit \(r.status) after \(r.seconds) s: \(r.stderr.prefix(1000))")
        #expect(r.stderr.contains("time limit of"), "\(r.stderr.prefix(1000))")
        #expect(r.seconds < limit + 1, "took \(r.seconds) s under a \(limit) s limit")
    }
}

// MARK: - Long host calls and the deadline

@Suite struct HostCallDeadlineTests {
    /// `slack`: seconds allowed past the limit (scheduling on a loaded 2-core machine; without the fix these calls
    /// ran to completion: tens of seconds).
    static func expectTimeLimit(_ source: String, limit: Double = 0.5, slack: Double = 1, _ needle: String) throws {
        let start = Date()
        #expect {
            try ScriptTestResult.run(source, timeLimit: limit)
        } throws: { error in
            let text = "\(error)"
            let ok = text.contains(needle) && text.contains("time limit of \(limit.formatted()) s exceeded")
            if !ok { Issue.record("unexpected error: \(text.prefix(600))") }
            return ok
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < limit + slack, "took \(seconds) s under a \(limit) s limit")
        print(String(format: "host call under a %.1f s limit: stopped after %.2f s (%@)", limit, seconds, needle))
    }

    @Test("toymoe.train stops between steps at the time limit")
    func train() throws {
        try Self.expectTimeLimit("""
            local m = toymoe.model{ n_features = 20, n_hidden = 5 }
            toymoe.train(m, { data = { feature_probability = 0.1 }, steps = 100000000, history_every = 1000000, batch_size = 1024 })
            """, "test.lua:2: toymoe.train: ")
    }

    @Test("toymoe.train with a hook: the hook cannot swallow the time limit")
    func trainWithHook() throws {
        try Self.expectTimeLimit("""
            local m = toymoe.model{ n_features = 20, n_hidden = 5 }
            toymoe.train(m, { data = { feature_probability = 0.1 }, steps = 100000000, history_every = 1000000, batch_size = 1024,
              hook_every = 1000, hook = function() pcall(function() end) return true end })
            """, "test.lua:")
    }

    @Test("in a sweep cell, toymoe.train stops at the cell's time limit")
    func sweepCell() throws {
        try Self.expectTimeLimit("""
            toymoe.sweep{ grid = { k = { 1 } }, run = function(cell)
              local m = toymoe.model{ n_features = 20, n_hidden = 5 }
              toymoe.train(m, { data = { feature_probability = 0.1 }, steps = 100000000, history_every = 1000000, batch_size = 1024 })
              return {}
            end }
            """, "test.lua:3: toymoe.train: ")
    }

    @Test("toymoe.train_many stops between steps at the time limit")
    func trainMany() throws {
        try Self.expectTimeLimit("""
            local ms = {} for i = 1, 4 do ms[i] = toymoe.model{ n_features = 20, n_hidden = 5 } end
            toymoe.train_many(ms, { data = { feature_probability = 0.1 }, steps = 100000000, history_every = 1000000, batch_size = 1024 })
            """, "test.lua:2: toymoe.train_many: ")
    }

    @Test("a quadratic metric on a 3000 × 200 model stops at the time limit")
    func metrics() throws {
        // A model that is quick to build (600k weights) with a metric that is not: polysemanticity computes the
        // 3000 × 3000 interference matrix (14.5 s in the debug build without a limit, here).
        try Self.expectTimeLimit("""
            local m = toymoe.model{ n_features = 3000, n_hidden = 200 }
            local x = toymoe.metrics.polysemanticity(m, 1)
            """, limit: 1, slack: 1.5, "test.lua:2: toymoe.metrics.polysemanticity: ")
    }

    @Test("a run that never reaches the deadline trains exactly as without one (same bytes)")
    func deadlineDoesNotChangeResults() throws {
        let source = """
            local m = toymoe.model{ n_features = 8, n_hidden = 3, n_experts = 2, n_active_experts = 1 }
            local r = toymoe.train(m, { data = { feature_probability = 0.2 }, steps = 300, batch_size = 64 })
            local ms = { toymoe.model{ n_features = 8, n_hidden = 3 }, toymoe.model{ n_features = 8, n_hidden = 3 } }
            local rs = toymoe.train_many(ms, { data = { feature_probability = 0.2 }, steps = 300, batch_size = 64 })
            toymoe.save_npy("w.npy", m:get("W")[1], "float32")
            toymoe.save_npy("w2.npy", ms[2]:get("W")[1], "float32")
            return { loss = r.final_loss, loss2 = rs[2].final_loss }
            """
        let a = try ScriptTestResult.run(source, seed: 3)
        let b = try ScriptTestResult.run(source, seed: 3, timeLimit: 600)
        #expect(a.result["loss"] == b.result["loss"] && a.result["loss2"] == b.result["loss2"])
        for f in ["w.npy", "w2.npy"] {
            #expect(try Data(contentsOf: a.directory.appendingPathComponent(f)) == Data(contentsOf: b.directory.appendingPathComponent(f)))
        }
    }
}

// MARK: - Host memory of loaders and savers

/// Files and tables larger than the memory limit allows are refused before their buffers are made.
@Suite(.serialized) struct HostMemoryAccountingTests {
    static let limitMiB = 64
    static let slackMiB = 96

    /// Runs `script` with `files` in its output directory under --memory-limit `limit`.
    static func run(_ script: String, files: [String: Data] = [:], limit: Int = limitMiB, in dir: URL) throws -> ChildProcess.Result {
        let name = "s-\(UUID().uuidString.prefix(8))"
        let out = dir.appendingPathComponent("out-\(name)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        for (file, data) in files { try data.write(to: out.appendingPathComponent(file)) }
        try script.write(to: dir.appendingPathComponent("\(name).lua"), atomically: true, encoding: .utf8)
        return try ChildProcess.run(["run", dir.appendingPathComponent("\(name).lua").path, "--quiet", "--out", out.path, "--memory-limit", "\(limit)"], in: dir)
    }

    @Test("load_npy/load_npz/load_json of 40 MB files, save_npy/save_json of a 4M-entry table: clean errors, peak RSS ≤ limit + baseline + 96 MiB; small files still load")
    func loadersAndSavers() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-host-memory")
        let baseline = try ChildProcess.baselineRSS(in: dir)
        let n = 5_000_000  // 40 MB of float64
        let big = try NpyArray(float64: (0..<n).map { Double($0 % 1000) }, shape: [n / 1000, 1000])
        let npy = Data(big.npyBytes())
        let npz = Data(try Npz.bytes([("big", big)]))
        var json = "["
        json.reserveCapacity(45_000_000)
        for i in 0..<(20_000_000 / 2) { json += i == 0 ? "1" : ",1" }
        json += "]"
        let small = Data(try NpyArray(float64: [1, 2, 3, 4, 5, 6], shape: [2, 3]).npyBytes())
        let cases: [(what: String, script: String, files: [String: Data], limit: Int, expected: String)] = [
            ("load_npy 40 MB", "local a = toymoe.load_npy('big.npy')", ["big.npy": npy], Self.limitMiB, "too large to load"),
            ("load_npz 40 MB", "local a = toymoe.load_npz('big.npz')", ["big.npz": npz], Self.limitMiB, "too large to load"),
            ("load_json 20 MB", "local a = toymoe.load_json('big.json')", ["big.json": Data(json.utf8)], Self.limitMiB, "too large to load"),
            ("save_npy 4M entries", """
                local t = {} for i = 1, 4000000 do t[i] = i end
                toymoe.save_npy('x.npy', t)
                """, [:], 128, "memory"),
            ("save_json 4M entries", """
                local t = {} for i = 1, 4000000 do t[i] = i end
                toymoe.save_json('x.json', t)
                """, [:], 128, "memory"),
        ]
        var report: [String] = []
        for c in cases {
            let r = try Self.run(c.script, files: c.files, limit: c.limit, in: dir)
            #expect(!r.signaled, "\(c.what): killed by a signal")
            #expect(r.status == 1, "\(c.what): exit \(r.status): \(r.stderr.prefix(500))")
            #expect(r.stderr.contains(c.expected), "\(c.what): expected '\(c.expected)' in \(r.stderr.prefix(800))")
            #expect(r.stderr.contains(".lua:"), "\(c.what): no file:line in \(r.stderr.prefix(800))")
            let bound = baseline.map { Double(c.limit) + $0 + Double(Self.slackMiB) }
            r.expectPeakRSS(atMost: bound, c.what)
            report.append("\(c.what) (limit \(c.limit)): \(r.summary), bound \(ChildProcess.mib(bound))")
        }
        let ok = try Self.run("""
            local a = toymoe.load_npy('small.npy')
            assert(#a == 2 and #a[1] == 3 and a[2][3] == 6)
            local z = toymoe.load_npz('small.npz')
            assert(z.s[1][2] == 2)
            toymoe.save_json('j.json', { a = a })
            assert(toymoe.load_json('j.json').a[2][1] == 4)
            """, files: ["small.npy": small, "small.npz": Data(try Npz.bytes([("s", try NpyArray(float64: [1, 2, 3, 4, 5, 6], shape: [2, 3]))]))],
            in: dir)
        #expect(ok.status == 0, "small files: \(ok.stderr)")
        print("host memory: baseline \(ChildProcess.mib(baseline)); " + report.joined(separator: "; "))
    }
}

// MARK: - Numeric options of `toymoe run`

@Suite struct RunOptionRangeTests {
    @Test("--memory-limit, --time-limit and --jobs outside their range are refused (no wrap-around to 16 MiB, no negative byte count)")
    func outOfRange() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-options")
        try "return { ok = true }".write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--memory-limit", "17592186044432"], "--memory-limit: expected an integer in 16...16777216"),
            (["--memory-limit", "99999999999999"], "--memory-limit: expected an integer in 16...16777216"),
            (["--memory-limit", "15"], "--memory-limit"),
            (["--time-limit", "1e300"], "--time-limit: expected seconds in 0...1000000000"),
            (["--time-limit", "-1"], "--time-limit"),
            (["--jobs", "100000"], "--jobs: expected an integer in 1...4096"),
        ]
        for (options, expected) in cases {
            let r = try CLITests.toymoe(["run", "s.lua", "--quiet", "--out", "o"] + options, in: dir)
            #expect(r.status != 0, "\(options): accepted")
            #expect(r.stderr.contains(expected), "\(options): \(r.stderr)")
        }
        let ok = try CLITests.toymoe(["run", "s.lua", "--quiet", "--out", "o", "--memory-limit", "16777216", "--time-limit", "1000000000"], in: dir)
        #expect(ok.status == 0, "\(ok.stderr)")
    }
}
