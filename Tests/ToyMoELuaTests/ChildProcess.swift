import Foundation
import Testing

/// The real `toymoe` executable (`CLITests.executable`) in a child process, with what only a process shows: exit
/// status, the signal that ended it, wall time, its output, and the child's OWN peak resident memory.
///
/// Why not `wait4`'s `ru_maxrss` alone: on Linux, exec records the high-water mark of the address space it replaces
/// into the new program's `maxrss`, and a child started by posix_spawn (vfork + exec) replaces this test process's
/// address space. Measured here: in a whole-suite run every child "peaked" at 188–275 MiB, the test process's own
/// figure. So the peak comes from one of two places:
/// - `run`: the child is started through GNU time (`/usr/bin/time -f %M`), a small process whose own child's
///   `ru_maxrss` is that child's alone: the figure is exact. Without /usr/bin/time: when `CI=true` the run throws
///   (run .ci/install); otherwise `peakRSSMiB` is nil and the reason is in `rssNotMeasured`.
/// - `start`: for a test that must signal the child itself (it needs toymoe's pid, not GNU time's), toymoe is spawned
///   directly and its VmHWM (/proc/<pid>/status, the kernel's high-water mark for its fresh address space) is polled
///   every 2 ms until it exits. A high-water mark keeps a peak reached between polls, but this misses growth in the
///   last moments before exit (after the last poll the address space is gone), and the kernel's RSS counters it
///   reads are approximate (measured here: within 0.3 MiB of GNU time's figure for the same script). When the
///   child's `ru_maxrss` exceeds this process's peak right after the spawn, it cannot be the inherited figure and is
///   the child's own exact peak: the larger of the two is reported.
enum ChildProcess {
    struct Result {
        /// Exit status (0...255) when the child exited; -1 when a signal ended it (see `signal`).
        var status: Int32
        /// The signal that ended the child, if one did.
        var signal: Int32?
        var seconds: Double
        var stdout: String
        var stderr: String
        /// The child's own peak RSS (MiB), nil when it could not be measured (`rssNotMeasured` says why).
        var peakRSSMiB: Double?
        var rssNotMeasured: String?
        /// `ru_maxrss` of the waited-for process as wait4 reports it (MiB): NOT the child's own peak (see the type's
        /// comment); kept only to show the difference.
        var wait4MaxRSSMiB: Double

        var signaled: Bool { signal != nil }

        /// "23.4 MiB", or "not measured (why)".
        var peakRSSText: String {
            peakRSSMiB.map { String(format: "%.1f MiB", $0) } ?? "not measured (\(rssNotMeasured ?? "unknown"))"
        }

        /// "exit 1 in 0.42 s, peak RSS 23.4 MiB" (or "signal 9 after ...").
        var summary: String {
            let end = signal.map { "signal \($0) after" } ?? "exit \(status) in"
            return "\(end) \(String(format: "%.2f", seconds)) s, peak RSS \(peakRSSText)"
        }

        /// Checks the peak RSS against `bound` (MiB), or prints that it was not checked: a bound that could not be
        /// measured never passes silently. `bound` is nil when a figure it depends on (a baseline) was not measured.
        func expectPeakRSS(
            atMost bound: Double?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
        ) {
            guard let rss = peakRSSMiB, let bound else {
                print("\(what): peak RSS \(peakRSSText), bound \(ChildProcess.mib(bound)): the RSS bound was NOT CHECKED")
                return
            }
            #expect(rss <= bound, "\(what): peak RSS \(String(format: "%.1f", rss)) MiB > bound \(String(format: "%.1f", bound)) MiB",
                    sourceLocation: sourceLocation)
        }
    }

    enum Failure: Error, CustomStringConvertible {
        case gnuTimeMissing
        case gnuTimeReport(String)
        case spawn(String, Int32)

        var description: String {
            switch self {
            case .gnuTimeMissing:
                return "CI=true but /usr/bin/time (GNU time) is not installed, so a child's peak RSS cannot be "
                    + "measured: run .ci/install"
            case .gnuTimeReport(let text): return "GNU time's report is not understood: \(text.debugDescription)"
            case .spawn(let what, let code): return "posix_spawn of \(what) failed: \(String(cString: strerror(code)))"
            }
        }
    }

    /// "12.3 MiB", or "not measured".
    static func mib(_ value: Double?) -> String { value.map { String(format: "%.1f MiB", $0) } ?? "not measured" }

    static let gnuTime: String? = FileManager.default.isExecutableFile(atPath: "/usr/bin/time") ? "/usr/bin/time" : nil
    static var underCI: Bool { ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "") }

    /// Runs `toymoe arguments` to completion in `dir` (relative paths in `arguments` are relative to it), with this
    /// process's environment minus SLURM_ARRAY_TASK_ID, plus `environment`; stdin is /dev/null, stdout and stderr
    /// are captured. The peak RSS is GNU time's (exact; see the type's comment). `gnuTime` and `underCI` are
    /// parameters only so that a test can check what happens without GNU time.
    static func run(
        _ arguments: [String], in dir: URL, environment: [String: String] = [:],
        gnuTime: String? = ChildProcess.gnuTime, underCI: Bool = ChildProcess.underCI
    ) throws -> Result {
        guard let time = gnuTime else {
            if underCI { throw Failure.gnuTimeMissing }
            var r = try start(arguments, in: dir, environment: environment).wait(measuringRSS: false)
            r.rssNotMeasured = "no /usr/bin/time: install GNU time (.ci/install)"
            return r
        }
        let files = try Files()
        defer { files.remove() }
        let report = files.dir.appendingPathComponent("time").path
        let child = try spawn([time, "-f", "%M", "-o", report, CLITests.executable.path] + arguments,
                              in: dir, environment: environment, files: files)
        var status: Int32 = 0
        var usage = rusage()
        while wait4(child.pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = child.elapsed()
        if let signal = terminatingSignal(status) {  // GNU time itself was killed: no report
            return Result(status: -1, signal: signal, seconds: seconds, stdout: files.stdout, stderr: files.stderr,
                          peakRSSMiB: nil, rssNotMeasured: "GNU time was killed by signal \(signal)",
                          wait4MaxRSSMiB: Double(usage.ru_maxrss) / 1024)
        }
        // GNU time exits with the child's status, or 128 + signal; its report says which ("Command terminated by
        // signal N", "Command exited with non-zero status N"), then the %M line (KiB).
        let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let last = lines.last, let kib = Double(last) else { throw Failure.gnuTimeReport(text) }
        let prefix = "Command terminated by signal "
        let signal = lines.first { $0.hasPrefix(prefix) }.flatMap { Int32($0.dropFirst(prefix.count)) }
        return Result(status: signal == nil ? (status >> 8) & 0xff : -1, signal: signal, seconds: seconds,
                      stdout: files.stdout, stderr: files.stderr, peakRSSMiB: kib / 1024, rssNotMeasured: nil,
                      wait4MaxRSSMiB: Double(usage.ru_maxrss) / 1024)
    }

    /// Peak RSS (MiB) of `toymoe run` on a script that only prints (Swift runtime, Foundation, Lua), nil when not
    /// measured.
    static func baselineRSS(in dir: URL) throws -> Double? {
        let script = dir.appendingPathComponent("baseline-\(UUID().uuidString.prefix(8)).lua")
        try "print('ok')".write(to: script, atomically: true, encoding: .utf8)
        let r = try run(["run", script.path, "--quiet", "--out", script.deletingPathExtension().path + "-out"], in: dir)
        #expect(r.status == 0 && !r.signaled, "baseline: \(r.summary): \(r.stderr)")
        return r.peakRSSMiB
    }

    /// A toymoe started by `start`: send it signals by `pid`, then `wait()`.
    struct Running {
        let pid: pid_t
        fileprivate let files: Files
        fileprivate let started: UInt64
        fileprivate let parentPeakKiB: Int

        /// Waits for the child, polling its VmHWM every 2 ms (see the type's comment).
        func wait() -> Result { wait(measuringRSS: true) }

        fileprivate func wait(measuringRSS: Bool) -> Result {
            defer { files.remove() }
            var status: Int32 = 0
            var usage = rusage()
            var polledKiB = 0
            while true {
                let done = wait4(pid, &status, WNOHANG, &usage)
                if done == pid || (done < 0 && errno != EINTR) { break }
                if measuringRSS { polledKiB = max(polledKiB, ChildProcess.highWaterKiB(pid)) }
                usleep(2000)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let signal = ChildProcess.terminatingSignal(status)
            var rss: Double? = nil
            var why: String? = nil
            if measuringRSS {
                let kib = usage.ru_maxrss > parentPeakKiB ? max(usage.ru_maxrss, polledKiB) : polledKiB
                if kib > 0 { rss = Double(kib) / 1024 } else { why = "exited before its VmHWM could be read" }
            }
            return Result(status: signal == nil ? (status >> 8) & 0xff : -1, signal: signal, seconds: seconds,
                          stdout: files.stdout, stderr: files.stderr, peakRSSMiB: rss, rssNotMeasured: why,
                          wait4MaxRSSMiB: Double(usage.ru_maxrss) / 1024)
        }
    }

    /// Starts `toymoe arguments` directly (same directory, environment and output capture as `run`), with the
    /// default disposition and an unblocked mask for SIGINT and SIGTERM whatever the test runner set (a process keeps
    /// an ignored or blocked signal across exec, and toymoe respects an ignored one, like a shell's background job).
    static func start(_ arguments: [String], in dir: URL, environment: [String: String] = [:]) throws -> Running {
        let files = try Files()
        var own = rusage()
        let child = try spawn([CLITests.executable.path] + arguments, in: dir, environment: environment, files: files)
        // posix_spawn returns after the exec: any figure the child inherited is at most this process's peak now.
        getrusage(RUSAGE_SELF.rawValue, &own)
        return Running(pid: child.pid, files: files, started: child.started, parentPeakKiB: own.ru_maxrss)
    }

    // MARK: Plumbing

    /// Scratch files of one child (its stdout and stderr, GNU time's report), kept out of the test's directories.
    fileprivate struct Files {
        let dir: URL
        init() throws { dir = try ScriptTestResult.temporaryDirectory("toymoe-child") }
        var stdoutPath: String { dir.appendingPathComponent("stdout").path }
        var stderrPath: String { dir.appendingPathComponent("stderr").path }
        var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
        func remove() { try? FileManager.default.removeItem(at: dir) }
    }

    /// posix_spawn(argv[0]) in `dir` (a spawn action: changing this process's directory would race with parallel
    /// tests). Foundation's Process does not report the child's rusage.
    private static func spawn(
        _ argv: [String], in dir: URL, environment: [String: String], files: Files
    ) throws -> (pid: pid_t, started: UInt64, elapsed: () -> Double) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let chdir = try addChdir()
        guard chdir(&actions, dir.path) == 0 else { throw Failure.spawn("chdir \(dir.path)", errno) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, files.stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, files.stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), both = sigset_t()
        sigemptyset(&none)
        sigemptyset(&both)
        sigaddset(&both, SIGINT)
        sigaddset(&both, SIGTERM)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &both)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SLURM_ARRAY_TASK_ID")
        env.merge(environment) { $1 }
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        var pid: pid_t = 0
        let started = DispatchTime.now().uptimeNanoseconds
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, &cArgs, &cEnv)
        guard rc == 0 else { throw Failure.spawn(argv[0], rc) }
        return (pid, started, { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 })
    }

    /// glibc's posix_spawn_file_actions_addchdir_np (2.29+), looked up at run time: Swift's Glibc module does not
    /// declare it (it is behind _GNU_SOURCE).
    private typealias AddChdir = @convention(c) (
        UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static func addChdir() throws -> AddChdir {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else {
            throw Failure.spawn("posix_spawn_file_actions_addchdir_np (glibc 2.29 or later is needed)", ENOSYS)
        }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }

    /// WIFSIGNALED / WTERMSIG by hand (the C macros are not imported).
    fileprivate static func terminatingSignal(_ status: Int32) -> Int32? {
        let low = status & 0x7f
        return low != 0 && low != 0x7f ? low : nil
    }

    /// VmHWM of a running process, KiB (0 if unavailable).
    fileprivate static func highWaterKiB(_ pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
}

/// The runner's own promise: the peak RSS it reports is the child's, not this process's.
@Suite(.serialized) struct ChildProcessTests {
    @Test("ChildProcess reports the child's own peak RSS (GNU time and VmHWM polling): not this process's high-water mark, and 128 MiB of strings in the child are seen")
    func childsOwnPeak() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-child-rss")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Raise this process's high-water mark to 384 MiB or more (touched, then freed): a runner that reports what
        // wait4 alone says would report at least that for every child started after this.
        let bytes = 384 << 20
        let block = try #require(malloc(bytes))
        memset(block, 1, bytes)
        free(block)
        var own = rusage()
        getrusage(RUSAGE_SELF.rawValue, &own)
        let parentMiB = Double(own.ru_maxrss) / 1024
        #expect(parentMiB >= 384)
        try "print('ok')".write(to: dir.appendingPathComponent("small.lua"), atomically: true, encoding: .utf8)
        // 128 MiB (two strings: one may not exceed 64 MiB) held while a loop runs (~0.3 s in a debug build), so the
        // polling sees it too.
        try """
            local a, b = string.rep("x", 64 << 20), string.rep("y", 64 << 20)
            local t = 0 for i = 1, 3000000 do t = t + i end
            print(#a + #b)
            """.write(to: dir.appendingPathComponent("big.lua"), atomically: true, encoding: .utf8)
        for script in ["small", "big"] {
            let args = ["run", "\(script).lua", "--out", "out-\(script)-\(UUID().uuidString.prefix(8))"]
            let timed = try ChildProcess.run(args, in: dir)
            let polled = try ChildProcess.start(args, in: dir).wait()
            for (how, r) in [("GNU time", timed), ("VmHWM polling", polled)] {
                print("ChildProcess \(how), \(script).lua (this process peaked at \(ChildProcess.mib(parentMiB))): \(r.summary); wait4 alone: \(ChildProcess.mib(r.wait4MaxRSSMiB))")
                #expect(r.status == 0 && !r.signaled, "\(how), \(script).lua: \(r.summary): \(r.stderr)")
                guard let rss = r.peakRSSMiB else {
                    print("ChildProcess \(how), \(script).lua: peak RSS \(r.peakRSSText): NOT CHECKED")
                    continue
                }
                // The child's own figure: a toymoe that prints is about 30 MiB; the strings add 128 MiB, and
                // string.rep's buffer up to 64 MiB more while it builds one (measured: 222 MiB). Both are far
                // below this process's peak, which the figure must not be.
                if script == "small" {
                    #expect(rss < 100, "\(how), \(script).lua: \(rss) MiB is not the child's own peak")
                } else {
                    #expect(rss >= 128 && rss < 320, "\(how), \(script).lua: \(rss) MiB")
                }
            }
            // stdout and stderr are captured apart, and relative paths are relative to `dir`.
            for r in [timed, polled] {
                #expect(r.stdout == (script == "small" ? "ok\n" : "134217728\n"), "\(r.stdout)")
                #expect(r.stderr.contains("results in \(dir.path)/out-\(script)-"), "\(r.stderr)")
            }
        }
    }

    @Test("Without GNU time: under CI the run fails naming .ci/install; elsewhere the peak RSS is nil and says why")
    func withoutGNUTime() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-child-notime")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "print('ok')".write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let args = ["run", "s.lua", "--out", "o", "--quiet"]
        #expect {
            try ChildProcess.run(args, in: dir, gnuTime: nil, underCI: true)
        } throws: { error in
            "\(error)".contains("/usr/bin/time") && "\(error)".contains("run .ci/install")
        }
        let r = try ChildProcess.run(args, in: dir, gnuTime: nil, underCI: false)
        #expect(r.status == 0 && !r.signaled, "\(r.summary): \(r.stderr)")
        #expect(r.peakRSSMiB == nil && r.rssNotMeasured?.contains("no /usr/bin/time") == true, "\(r.summary)")
        #expect(r.summary.contains("peak RSS not measured (no /usr/bin/time"), "\(r.summary)")
    }
}
