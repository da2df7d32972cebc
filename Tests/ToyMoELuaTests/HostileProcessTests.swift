import Foundation
import Testing

/// Hostile scripts run by the real `toymoe` executable in a child process, with the child's own resource usage
/// from `wait4`: each must end in a clean Lua error (exit 1, the error on stderr) within its budget, never a crash
/// or a hang, and the child's peak resident memory must stay under a stated bound (RELIABILITY.md). The in-process
/// hostile suite (LuaRuntimeTests) covers many more scripts; this one measures what only a separate process can:
/// exit status, wall time and peak RSS.
@Suite(.serialized) struct HostileProcessTests {
    /// --memory-limit for these runs (MiB) and the RSS bound asserted: the limit plus the process's own baseline
    /// (Swift runtime, Foundation, Lua; measured below) plus slack for allocator overhead.
    static let memoryLimitMiB = 64
    static let rssSlackMiB = 96

    struct Run {
        var status: Int32
        var signaled: Bool
        var stderr: String
        var seconds: Double
        var maxRSSMiB: Double
    }

    /// Runs `toymoe run script.lua` with the budgets below via posix_spawn and wait4 (Foundation's Process does not
    /// report the child's rusage).
    static func run(_ script: String, in dir: URL) throws -> Run {
        let name = "s-\(UUID().uuidString.prefix(8)).lua"
        try script.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        let errPath = dir.appendingPathComponent("\(name).err").path
        let args = [
            CLITests.executable.path, "run", name, "--out", "out-\(name)", "--quiet",
            "--memory-limit", "\(memoryLimitMiB)", "--time-limit", "5", "--instruction-limit", "2000000000",
        ]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let previous = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(dir.path)
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SLURM_ARRAY_TASK_ID")
        var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        var pid: pid_t = 0
        let start = Date()
        let rc = posix_spawn(&pid, args[0], &actions, nil, &cArgs, &cEnv)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = Date().timeIntervalSince(start)
        // WIFSIGNALED / WEXITSTATUS by hand (the C macros are not imported).
        let signaled = (status & 0x7f) != 0 && (status & 0x7f) != 0x7f
        return Run(
            status: (status >> 8) & 0xff, signaled: signaled,
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "", seconds: seconds,
            maxRSSMiB: Double(usage.ru_maxrss) / 1024)
    }

    static let cases: [(what: String, script: String, expected: String)] = [
        ("runaway loop in __close", """
            do
              local guard <close> = setmetatable({}, { __close = function() while true do end end })
            end
            """, "limit"),  // the time or the instruction budget, whichever comes first
        ("memory bomb: tables", "local t = {} for i = 1, 1e9 do t[i] = { i, i, i } end", "not enough memory"),
        ("memory bomb: strings", "local s = 'x' while true do s = s .. s end", "not enough memory"),
        ("memory bomb swallowed by pcall in a loop", """
            while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end) end
            """, "limit"),
        ("deep recursion", "local function f(n) return f(n + 1) + 1 end f(1)", "stack overflow"),
        ("coroutines in a loop", "local cs = {} for i = 1, 1e9 do cs[i] = coroutine.create(function() end) end",
         "not enough memory"),
        ("huge model through the bindings", "toymoe.model{ n_features = 100000, n_hidden = 100000 }", "toymoe.model"),
        ("models allocated in a loop", """
            local keep = {} for i = 1, 1e6 do keep[i] = toymoe.model{ n_features = 1000, n_hidden = 100 } end
            """, "not enough memory"),
        ("host tables from m:get in a loop", """
            local m = toymoe.model{ n_features = 1000, n_hidden = 100 }
            local keep = {} for i = 1, 1e6 do keep[i] = m:get("W") end
            """, "not enough memory"),
        ("data vectors in a loop", """
            local keep = {} for i = 1, 1e6 do keep[i] = toymoe.data{ n_features = 100000 } end
            """, "not enough memory"),
    ]

    @Test("Hostile scripts in a child toymoe: a clean error (exit 1, no signal) within the budget; peak RSS ≤ memory limit + baseline + slack")
    func hostileChildren() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-hostile-process")
        let baseline = try Self.run("print('ok')", in: dir)
        #expect(baseline.status == 0 && !baseline.signaled, "baseline: \(baseline.stderr)")
        let bound = Double(Self.memoryLimitMiB) + baseline.maxRSSMiB + Double(Self.rssSlackMiB)
        var worstRSS = baseline.maxRSSMiB, worstSeconds = 0.0
        for c in Self.cases {
            let r = try Self.run(c.script, in: dir)
            #expect(!r.signaled, "\(c.what): killed by a signal (status \(r.status))")
            #expect(r.status == 1, "\(c.what): exit \(r.status); stderr: \(r.stderr)")
            #expect(r.stderr.contains(c.expected), "\(c.what): expected '\(c.expected)' in: \(r.stderr)")
            #expect(r.stderr.contains(".lua:"), "\(c.what): no file:line in: \(r.stderr)")
            #expect(r.seconds < 60, "\(c.what): took \(r.seconds) s")
            #expect(r.maxRSSMiB <= bound, "\(c.what): peak RSS \(r.maxRSSMiB) MiB > bound \(bound) MiB")
            worstRSS = max(worstRSS, r.maxRSSMiB)
            worstSeconds = max(worstSeconds, r.seconds)
        }
        print(String(
            format: "hostile processes: %d scripts, baseline RSS %.0f MiB, worst peak RSS %.0f MiB (bound %.0f MiB = limit %d + baseline + %d), slowest %.1f s",
            Self.cases.count, baseline.maxRSSMiB, worstRSS, bound, Self.memoryLimitMiB, Self.rssSlackMiB, worstSeconds))
    }
}
