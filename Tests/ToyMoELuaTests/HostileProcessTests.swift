import Foundation
import Testing

/// Hostile scripts run by the real `toymoe` executable in a child process (`ChildProcess.run`: the child's own
/// peak RSS, from GNU time): each must end in a clean Lua error (exit 1, the error on stderr) within its budget, never
/// a crash or a hang, and the child's peak resident memory must stay under a stated bound (RELIABILITY.md). The
/// in-process hostile suite (LuaRuntimeTests) covers many more scripts; this one measures what only a separate
/// process can: exit status, wall time and peak RSS.
@Suite(.serialized) struct HostileProcessTests {
    /// --memory-limit for these runs (MiB) and the RSS bound asserted: the limit plus the child's own baseline
    /// (Swift runtime, Foundation, Lua: the peak of a run of `print('ok')`, measured first) plus slack for allocator
    /// overhead.
    static let memoryLimitMiB = 64
    static let rssSlackMiB = 96
    /// --time-limit of the cases that allocate host objects in a loop (see there); the others use 5 s.
    static let hostLoopTimeLimit = 30

    /// Runs `toymoe run script.lua` with the budgets below (`timeLimit` seconds) in `dir`.
    static func run(_ script: String, timeLimit: Int = 5, in dir: URL) throws -> ChildProcess.Result {
        let name = "s-\(UUID().uuidString.prefix(8)).lua"
        try script.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        return try ChildProcess.run([
            "run", name, "--out", "out-\(name)", "--quiet", "--memory-limit", "\(memoryLimitMiB)",
            "--time-limit", "\(timeLimit)", "--instruction-limit", "2000000000",
        ], in: dir)
    }

    static let cases: [(what: String, script: String, expected: String, timeLimit: Int)] = [
        ("runaway loop in __close", """
            do
              local guard <close> = setmetatable({}, { __close = function() while true do end end })
            end
            """, "limit", 5),  // the time or the instruction budget, whichever comes first
        ("memory bomb: tables", "local t = {} for i = 1, 1e9 do t[i] = { i, i, i } end", "not enough memory", 5),
        ("memory bomb: strings", "local s = 'x' while true do s = s .. s end", "not enough memory", 5),
        ("memory bomb swallowed by pcall in a loop", """
            while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end) end
            """, "limit", 5),
        ("deep recursion", "local function f(n) return f(n + 1) + 1 end f(1)", "stack overflow", 5),
        ("coroutines in a loop", "local cs = {} for i = 1, 1e9 do cs[i] = coroutine.create(function() end) end",
         "not enough memory", 5),
        ("huge model through the bindings", "toymoe.model{ n_features = 100000, n_hidden = 100000 }", "toymoe.model", 5),
        // Host objects allocated in a loop: every parameter is initialized, so filling 64 MiB costs about 1.2-1.6 s of
        // CPU in a debug build whatever the object size (measured: models of 1000 × 100 and of 4000 × 1000 alike),
        // which took over 5 s of wall time in whole-suite runs (load 5-11 on 2 cores) and then hit the time limit
        // first. A 30 s limit leaves the memory limit as what stops them (the expected error says so).
        ("models allocated in a loop", """
            local keep = {} for i = 1, 1e6 do keep[i] = toymoe.model{ n_features = 1000, n_hidden = 100 } end
            """, "not enough memory", hostLoopTimeLimit),
        ("host tables from m:get in a loop", """
            local m = toymoe.model{ n_features = 1000, n_hidden = 100 }
            local keep = {} for i = 1, 1e6 do keep[i] = m:get("W") end
            """, "not enough memory", hostLoopTimeLimit),
        ("data vectors in a loop", """
            local keep = {} for i = 1, 1e6 do keep[i] = toymoe.data{ n_features = 100000 } end
            """, "not enough memory", hostLoopTimeLimit),
    ]

    @Test("Hostile scripts in a child toymoe: a clean error (exit 1, no signal) within the budget; peak RSS ≤ memory limit + baseline + slack")
    func hostileChildren() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-hostile-process")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The baseline is the child's own peak on a script that only prints (Swift runtime, Foundation, Lua).
        let baseline = try Self.run("print('ok')", in: dir)
        #expect(baseline.status == 0 && !baseline.signaled, "baseline: \(baseline.summary): \(baseline.stderr)")
        let bound = baseline.peakRSSMiB.map { Double(Self.memoryLimitMiB) + $0 + Double(Self.rssSlackMiB) }
        print("hostile processes: baseline print('ok'): \(baseline.summary); RSS bound = limit \(Self.memoryLimitMiB) + baseline + slack \(Self.rssSlackMiB) = \(ChildProcess.mib(bound))")
        var worstRSS = baseline.peakRSSMiB, worstSeconds = 0.0
        for c in Self.cases {
            let r = try Self.run(c.script, timeLimit: c.timeLimit, in: dir)
            print("hostile process: \(c.what) (--time-limit \(c.timeLimit)): \(r.summary)")
            #expect(!r.signaled, "\(c.what): killed by signal \(r.signal ?? 0)")
            #expect(r.status == 1, "\(c.what): exit \(r.status); stderr: \(r.stderr)")
            #expect(r.stderr.contains(c.expected), "\(c.what): expected '\(c.expected)' in: \(r.stderr)")
            #expect(r.stderr.contains(".lua:"), "\(c.what): no file:line in: \(r.stderr)")
            #expect(r.seconds < Double(c.timeLimit) + 30, "\(c.what): took \(r.seconds) s")
            r.expectPeakRSS(atMost: bound, c.what)
            if let rss = r.peakRSSMiB { worstRSS = max(worstRSS ?? rss, rss) }
            worstSeconds = max(worstSeconds, r.seconds)
        }
        print("hostile processes: \(Self.cases.count) scripts, baseline RSS \(ChildProcess.mib(baseline.peakRSSMiB)), worst peak RSS \(ChildProcess.mib(worstRSS)) (bound \(ChildProcess.mib(bound)) = limit \(Self.memoryLimitMiB) + baseline + \(Self.rssSlackMiB)), slowest \(String(format: "%.1f", worstSeconds)) s")
    }
}
