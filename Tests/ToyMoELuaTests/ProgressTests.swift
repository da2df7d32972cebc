import Foundation
import Synchronization
import Testing
import ToyMoEIO
import ToyMoELua

/// Progress on stderr: the ETA arithmetic and line format, the sweep's estimate of its model-steps, the rate
/// limits (terminal and plain), thread safety, and through the real executable: plain lines in logs, `\r` redraws
/// on a pseudo-terminal, silence with --quiet, and results byte-identical with and without progress.
@Suite struct ProgressTests {
    /// A clock the test moves by hand.
    final class FakeClock: @unchecked Sendable {
        let t = Mutex<Double>(0)
        func set(_ v: Double) { t.withLock { $0 = v } }
        func read() -> Double { t.withLock { $0 } }
    }
    /// Collects what the reporter writes, one element per write.
    final class Sink: @unchecked Sendable {
        let writes = Mutex<[String]>([])
        func write(_ s: String) { writes.withLock { $0.append(s) } }
        var all: [String] { writes.withLock { $0 } }
    }

    static func reporter(_ style: ProgressOptions.Style, interval: Double = 30, clock: FakeClock, sink: Sink) -> ProgressReporter {
        ProgressReporter(
            options: ProgressOptions(style: style, interval: interval), columns: 200, sink: { sink.write($0) },
            clock: { clock.read() })
    }

    @Test("ETA arithmetic and formatting: rate, fraction, ETA, clock, thousands, bar")
    func estimateArithmetic() {
        let e = ProgressEstimate(elapsed: 10, done: 1000, total: 4000)
        #expect(e.rate == 100 && e.fraction == 0.25 && e.eta == 30)
        let line = e.line(label: "train", barWidth: 8)
        #expect(line == "train  [##......]   25%  1,000/4,000 model-steps  100 steps/s  elapsed 10s  ETA 30s", "\(line)")
        #expect(!e.line(label: "train", barWidth: 0).contains("["))
        #expect(ProgressEstimate(elapsed: 0, done: 0, total: nil).eta == nil)
        #expect(ProgressEstimate(elapsed: 3, done: 0, total: 100).eta == nil, "no rate before the first step")
        #expect(ProgressEstimate(elapsed: 1, done: 500, total: 100).total == 500, "a total never below what is done")
        #expect(ProgressEstimate.clock(12.4) == "12s" && ProgressEstimate.clock(187) == "3m07s" && ProgressEstimate.clock(3725) == "1h02m")
        #expect(ProgressEstimate.count(1_234_567) == "1,234,567" && ProgressEstimate.count(999) == "999")
        let s = ProgressEstimate(elapsed: 60, done: 3000, total: 12000, estimated: true, cells: (3, 18, 2))
        let sl = s.line(label: "sweep", barWidth: 0)
        #expect(sl.contains("cells 5/20 (2 resumed)") && sl.contains("3,000/~12,000 model-steps") && sl.contains("ETA 3m00s"), "\(sl)")
        #expect(s.finalLine(label: "sweep") == "sweep stopped: 3 cells (+2 resumed), 3,000 model-steps in 1m00s (50 steps/s)", "3 of 18 cells: not done")
        let all = ProgressEstimate(elapsed: 60, done: 3000, total: 3000, estimated: true, cells: (18, 18, 2))
        #expect(all.finalLine(label: "sweep") == "sweep done: 18 cells (+2 resumed), 3,000 model-steps in 1m00s (50 steps/s)")
        #expect(ProgressEstimate(elapsed: 2, done: 10, total: 40).finalLine(label: "train").hasPrefix("train stopped: 10 model-steps"))
    }

    @Test("A sweep's total model-steps: first declarations × replicates, then the finished cells' mean; running cells count")
    func sweepEstimate() {
        var w = SweepWork(cellsTotal: 10, replicates: 2)
        #expect(w.total == nil && w.done == 0)
        w.replicateStarted(slot: 0)
        w.declare(500, slot: 0)  // the first replicate trains 500 model-steps: a cell ≈ 1000
        #expect(w.stepsPerCell == 1000 && w.total == 10_000)
        w.add(500, slot: 0)
        w.replicateStarted(slot: 0)
        w.declare(500, slot: 0)  // the second replicate repeats it: still 1000 per cell
        #expect(w.stepsPerCell == 1000 && w.done == 500)
        w.add(500, slot: 0)
        w.cellFinished(slot: 0)
        #expect(w.cellsFinished == 1 && w.total == 10_000 && w.done == 1000)
        // a cell that stopped early (600 steps): the mean (800) prices the 8 cells left
        w.replicateStarted(slot: 1)
        w.declare(500, slot: 1)
        w.add(600, slot: 1)
        w.cellFinished(slot: 1)
        #expect(w.stepsPerCell == 800 && w.total == 1600 + 8 * 800)
        // a running cell past the mean counts what it did
        w.replicateStarted(slot: 0)
        w.add(2000, slot: 0)
        #expect(w.done == 3600 && w.total == 1600 + 2000 + 7 * 800)
    }

    @Test("Terminal: nothing before 0.5 s, then redraws at most every 0.2 s with \\r and clear-line; a closing line")
    func terminalRateLimit() {
        let clock = FakeClock(), sink = Sink()
        let r = Self.reporter(.terminal, clock: clock, sink: sink)
        r.declare(100_000)
        for i in 1...1000 {  // 1000 reports over 2 s
            clock.set(Double(i) / 500)
            r.add(100)
        }
        let draws = sink.all.filter { $0.hasPrefix("\r\u{1B}[K") && $0.count > 3 }
        #expect(draws.count >= 6 && draws.count <= 8, "about (2 − 0.5) / 0.2 redraws, got \(draws.count)")
        #expect(sink.all.allSatisfy { !$0.contains("\n") }, "a bar never ends its line while it runs")
        r.endTraining()
        #expect(sink.all.last == "train done: 100,000 model-steps in 2s (50,000 steps/s)\n", "\(sink.all.last ?? "")")
    }

    @Test("Plain: one line at most every interval (not before it), each a whole line, and a closing line; short work shows nothing")
    func plainInterval() {
        let clock = FakeClock(), sink = Sink()
        let r = Self.reporter(.plain, interval: 5, clock: clock, sink: sink)
        r.declare(200 * 100)
        for i in 1...200 {  // 20 s
            clock.set(Double(i) / 10)
            r.add(100)
        }
        let lines = sink.all
        #expect(lines.count == 4 && lines.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") }, "\(lines)")
        #expect(lines.first?.hasPrefix("train   25%  5,000/20,000 model-steps") == true, "\(lines)")
        r.endTraining()
        #expect(sink.all.count == 5 && sink.all.last?.hasPrefix("train done: 20,000 model-steps") == true)
        // a training shorter than the delay: silent, closing line included
        let short = Sink(), c2 = FakeClock()
        let q = Self.reporter(.plain, interval: 0.01, clock: c2, sink: short)
        q.declare(10)
        c2.set(0.3)
        q.add(10)
        q.endTraining()
        #expect(short.all.isEmpty)
    }

    @Test("Off (--quiet): nothing is ever written")
    func quiet() {
        let clock = FakeClock(), sink = Sink()
        let r = Self.reporter(.off, clock: clock, sink: sink)
        r.beginSweep(cells: 3, resumed: 0, replicates: 1)
        for i in 1...100 {
            clock.set(Double(i))
            r.add(10, slot: 0)
        }
        r.cellFinished(slot: 0)
        r.message("hello")
        r.endSweep()
        #expect(sink.all.isEmpty)
    }

    @Test("Four threads reporting at once: every write is one whole redraw, and no step is lost")
    func threads() {
        let sink = Sink()
        let r = ProgressReporter(
            options: { var o = ProgressOptions(style: .terminal); o.delay = 0; o.redraw = 0; return o }(), columns: 200,
            sink: { sink.write($0) })
        r.beginSweep(cells: 4, resumed: 0, replicates: 1)
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            r.replicateStarted(slot: w)
            r.declare(20_000, slot: w)
            for _ in 0..<2000 { r.add(10, slot: w) }
            r.cellFinished(slot: w)
        }
        #expect(r.estimate.done == 80_000)
        for w in sink.all {
            #expect(w == "\r\u{1B}[K" || (w.hasPrefix("\r\u{1B}[Ksweep  [") && w.contains(" model-steps ") && !w.dropFirst().contains("\r")), "\(w.debugDescription)")
        }
        r.endSweep()
        #expect(sink.all.last?.hasPrefix("sweep done: 4 cells, 80,000 model-steps") == true)
    }

    // MARK: - Through the executable

    /// A top-level training and a 4-cell sweep, each taking about a second in a debug build.
    static let script = """
        local steps = toymoe.param("steps", 600)
        local m = toymoe.model{ n_features = 20, n_hidden = 5 }
        toymoe.train(m, { data = toymoe.data{ n_features = 20, feature_probability = 0.1 }, steps = 4 * steps, batch_size = 256 })
        print("between")
        toymoe.sweep{
          grid = { i = { 1, 2, 3, 4 } },
          run = function(cell)
            local ms = {}
            for j = 1, 2 do ms[j] = toymoe.model{ n_features = 20, n_hidden = 5 } end
            local r = toymoe.train_many(ms, { data = toymoe.data{ n_features = 20, feature_probability = 0.1 },
                                             steps = steps // 2, batch_size = 256 })
            return { final_loss = r[1].final_loss }
          end,
        }
        """

    static func directory() throws -> URL {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-progress")
        try script.write(to: dir.appendingPathComponent("p.lua"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test("toymoe run, stderr not a terminal: plain lines at the interval (no \\r), closing lines; --quiet: none; results identical")
    func plainCLI() throws {
        let dir = try Self.directory()
        let started = Date()
        // TOYMOE_PROGRESS_DELAY=0 and short intervals: on an idle machine each phase lasts well under the default
        // 0.5 s delay, and the test must see lines whatever the machine's speed.
        let plain = try CLITests.toymoe(
            ["run", "p.lua", "--out", "plain", "--jobs", "2", "--progress-interval", "0.02"],
            environment: ["TOYMOE_PROGRESS_DELAY": "0"], in: dir)
        let seconds = Date().timeIntervalSince(started)
        #expect(plain.status == 0, "\(plain.stderr)")
        let lines = plain.stderr.split(separator: "\n").filter { $0.contains("model-steps") }
        #expect(!plain.stderr.contains("\r") && !plain.stdout.contains("model-steps"), "progress only on stderr, no redraws")
        #expect(lines.contains { $0.hasPrefix("train ") && $0.contains("/2,400 model-steps") }, "\(plain.stderr)")
        #expect(lines.contains { $0.hasPrefix("sweep ") && $0.contains("cells ") && $0.contains("ETA ") }, "\(plain.stderr)")
        #expect(plain.stderr.contains("train done: 2,400 model-steps") && plain.stderr.contains("sweep done: 4 cells, 2,400 model-steps"), "\(plain.stderr)")
        #expect(lines.count <= Int(seconds / 0.02) + 4, "at most one line per 0.02 s: \(lines.count) lines in \(seconds) s")
        let quiet = try CLITests.toymoe(["run", "p.lua", "--out", "quiet", "--jobs", "2", "--quiet"], in: dir)
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        let env = try CLITests.toymoe(["run", "p.lua", "--out", "env", "steps=300"], environment: ["TOYMOE_PROGRESS_INTERVAL": "0.01", "TOYMOE_PROGRESS_DELAY": "0"], in: dir)
        #expect(env.status == 0 && env.stderr.contains("sweep  "), "the environment sets the interval: \(env.stderr)")
        _ = try OutputFiles.expectSame(dir.appendingPathComponent("plain"), dir.appendingPathComponent("quiet"))
    }

    @Test("A malformed interval is refused by name (option or environment variable)")
    func badInterval() throws {
        let dir = try Self.directory()
        let zero = try CLITests.toymoe(["run", "p.lua", "--out", "o", "--progress-interval", "0"], in: dir)
        #expect(zero.status != 0 && zero.stderr.contains("--progress-interval: expected a number of seconds greater than 0"), "\(zero.stderr)")
        let env = try CLITests.toymoe(["train", "--out", "t", "--steps", "5"], environment: ["TOYMOE_PROGRESS_INTERVAL": "soon"], in: dir)
        #expect(env.status != 0 && env.stderr.contains("$TOYMOE_PROGRESS_INTERVAL: expected a number of seconds greater than 0, got 'soon'"), "\(env.stderr)")
    }

    @Test("On a pseudo-terminal (script -qc): \\r redraws, at most 5 a second, the bar cleared before print; results identical")
    func terminalCLI() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            print("skipped: util-linux `script` is not installed")
            return
        }
        let dir = try Self.directory()
        // TOYMOE_PROGRESS_DELAY=0: on an idle machine the top-level training ends before the default 0.5 s delay.
        let command = "TOYMOE_PROGRESS_DELAY=0 \(CLITests.executable.path) run p.lua --out tty --jobs 2 > stdout.txt"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        p.arguments = ["-qec", command, "/dev/null"]
        p.currentDirectoryURL = dir
        let log = dir.appendingPathComponent("terminal.txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: log)
        p.standardInput = FileHandle.nullDevice
        let started = Date()
        try p.run()
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(started)
        #expect(p.terminationStatus == 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        let redraws = text.components(separatedBy: "\r\u{1B}[K").filter { $0.hasPrefix("train  [") || $0.hasPrefix("sweep  [") }
        #expect(redraws.count >= 2, "\(text.debugDescription)")
        #expect(Double(redraws.count) <= seconds * 5 + 4, "\(redraws.count) redraws in \(seconds) s")
        #expect(text.contains("train done: 2,400 model-steps") && text.contains("sweep done: 4 cells"), "\(text.debugDescription)")
        let stdout = try String(contentsOf: dir.appendingPathComponent("stdout.txt"), encoding: .utf8)
        #expect(!stdout.contains("model-steps") && stdout.contains("between"))
        let quiet = try CLITests.toymoe(["run", "p.lua", "--out", "quiet", "--jobs", "2", "--quiet"], in: dir)
        #expect(quiet.status == 0)
        _ = try OutputFiles.expectSame(dir.appendingPathComponent("tty"), dir.appendingPathComponent("quiet"))
    }

    @Test("toymoe train shows its progress (plain lines at the interval); --quiet silences it")
    func trainCLI() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-progress-train")
        // No minimum duration (TOYMOE_PROGRESS_DELAY=0) and a short interval: lines show however fast the machine is
        // (the faster kernels finish 1500 steps of this model in under the default half-second delay).
        let r = try CLITests.toymoe(["train", "--out", "t", "--steps", "1500", "--progress-interval", "0.01"],
                                    environment: ["TOYMOE_PROGRESS_DELAY": "0"], in: dir)
        #expect(r.status == 0 && r.stderr.contains("/1,500 model-steps") && r.stderr.contains("train done: 1,500 model-steps"), "\(r.stderr)")
        let q = try CLITests.toymoe(["train", "--out", "q", "--steps", "1500", "--quiet"], in: dir)
        #expect(q.status == 0 && q.stderr.isEmpty, "\(q.stderr)")
        func read(_ path: String) -> Data? { FileManager.default.contents(atPath: dir.appendingPathComponent(path).path) }
        // Every result file is byte-identical (the training's wall time is in provenance.json, not in metrics.json).
        for name in ["model.npz", "history.npy", "metrics.json", "config.json", "index.html", "norms.svg", "gram.svg"] {
            let t = read("t/\(name)"), q = read("q/\(name)")
            #expect(t == q && q != nil, "\(name)")
        }
        let provenance = try JSONValue(contentsOf: dir.appendingPathComponent("q/provenance.json"))
        #expect((provenance["extra"]?["training_seconds"]?.doubleValue ?? -1) > 0)
    }
}
