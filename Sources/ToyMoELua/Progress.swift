import Foundation

/// How progress is shown on standard error.
public struct ProgressOptions: Sendable, Equatable {
    public enum Style: Sendable, Equatable {
        /// Nothing (`--quiet`).
        case off
        /// A bar redrawn in place (`\r`, clear to end of line) at most every `redraw` seconds.
        case terminal
        /// A plain line at most every `interval` seconds (logs: SLURM, CI), and a final line.
        case plain
    }
    public var style: Style
    /// Seconds between two plain lines.
    public var interval: Double
    /// Seconds between two redraws of the terminal bar.
    public var redraw: Double = 0.2
    /// Work that ends sooner than this shows nothing at all (a script of many tiny trainings stays silent).
    public var delay: Double = 0.5

    public init(style: Style, interval: Double = ProgressOptions.defaultInterval) {
        self.style = style
        self.interval = interval
    }

    public static let defaultInterval = 30.0
    /// Seconds between plain lines when `--progress-interval` is not given.
    public static let environmentVariable = "TOYMOE_PROGRESS_INTERVAL"

    /// Checks a plain-line interval (from the option or the environment variable): a finite number of seconds > 0.
    public static func parseInterval(_ text: String, source: String) throws -> Double {
        guard let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite, v > 0 else {
            throw ScriptRunError("\(source): expected a number of seconds greater than 0, got '\(text)'")
        }
        return v
    }

    /// Off when quiet; else a bar when standard error is a terminal, plain lines otherwise. The interval is
    /// `interval` if given, else `$TOYMOE_PROGRESS_INTERVAL` (refused if malformed), else 30 s.
    public static func automatic(quiet: Bool, interval: Double? = nil) throws -> ProgressOptions {
        var seconds = defaultInterval
        if let interval {
            seconds = try parseInterval(String(interval), source: "--progress-interval")
        } else if let text = ProcessInfo.processInfo.environment[environmentVariable] {
            seconds = try parseInterval(text, source: "$\(environmentVariable)")
        }
        if quiet { return ProgressOptions(style: .off, interval: seconds) }
        var options = ProgressOptions(style: isatty(2) != 0 ? .terminal : .plain, interval: seconds)
        // How long work must last before it shows: the tests set 0 so that their short runs always show progress
        // whatever the machine's speed (undocumented for users: 0.5 s keeps tiny trainings quiet).
        if let text = ProcessInfo.processInfo.environment["TOYMOE_PROGRESS_DELAY"] {
            guard let v = Double(text.trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0 else {
                throw ScriptRunError("$TOYMOE_PROGRESS_DELAY: expected a number of seconds ≥ 0, got '\(text)'")
            }
            options.delay = v
        }
        return options
    }
}

/// Work done and the estimated total, in model-steps (one optimizer step of one model), and what a line says
/// about them. Pure arithmetic: no clock, no output.
public struct ProgressEstimate: Sendable, Equatable {
    /// Seconds since the work began.
    public var elapsed: Double
    /// Model-steps done (finished work plus the steps of work still in flight).
    public var done: Int
    /// Estimated model-steps in all (≥ `done`); nil while nothing tells yet.
    public var total: Int?
    /// Whether `total` is an estimate (a sweep's cells not yet run) rather than declared work.
    public var estimated: Bool = false
    /// For a sweep: cells finished (this run), cells to run (this run), cells finished by earlier runs.
    public var cells: (done: Int, total: Int, resumed: Int)?
    /// Seconds left as a cost-weighted estimator computed them (a sweep: `SweepWork.secondsLeft`); when set, `eta`
    /// is this (nil: nothing to estimate from yet) instead of the steps left at the overall rate.
    public var secondsLeft: Double??

    public static func == (a: Self, b: Self) -> Bool {
        a.elapsed == b.elapsed && a.done == b.done && a.total == b.total && a.estimated == b.estimated
            && a.cells?.done == b.cells?.done && a.cells?.total == b.cells?.total && a.cells?.resumed == b.cells?.resumed
            && a.secondsLeft == b.secondsLeft
    }

    public init(
        elapsed: Double, done: Int, total: Int?, estimated: Bool = false, cells: (done: Int, total: Int, resumed: Int)? = nil,
        secondsLeft: Double?? = nil
    ) {
        self.elapsed = elapsed
        self.done = done
        self.total = total.map { Swift.max($0, done) }
        self.estimated = estimated
        self.cells = cells
        self.secondsLeft = secondsLeft
    }

    /// Model-steps per second so far (0 before any).
    public var rate: Double { elapsed > 0 ? Double(done) / elapsed : 0 }

    /// Fraction done in [0, 1], nil when the total is unknown.
    public var fraction: Double? {
        guard let total, total > 0 else { return nil }
        return Swift.min(1, Double(done) / Double(total))
    }

    /// Seconds left: `secondsLeft` when an estimator gave it, else the steps left at the rate so far; nil until a
    /// step is done and a total is known.
    public var eta: Double? {
        if let secondsLeft { return secondsLeft.map { Swift.max(0, $0) } }
        guard let total, done > 0, elapsed > 0 else { return nil }
        return Double(total - done) / rate
    }

    /// `3m07s`, `1h05m`, `12s`.
    public static func clock(_ seconds: Double) -> String {
        let t = Int(Swift.max(0, seconds).rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return "\(t)s"
    }

    /// `1,234,567`.
    public static func count(_ n: Int) -> String {
        let digits = Array(String(Swift.abs(n)))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// `[#######.............]` for `fraction`, `width` cells inside the brackets.
    public static func bar(_ fraction: Double?, width: Int) -> String {
        let filled = Int(((fraction ?? 0) * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    /// The progress line: `label [bar] 34% cells 3/20 12,000/~36,000 model-steps 1,530 steps/s elapsed 8s ETA 16s`
    /// (the bar only when `barWidth` > 0; `~` marks an estimated total).
    public func line(label: String, barWidth: Int) -> String {
        var parts = [label]
        if barWidth > 0 { parts.append(Self.bar(fraction, width: barWidth)) }
        if let f = fraction { parts.append(String(format: "%3.0f%%", f * 100)) }
        if let cells {
            parts.append("cells \(cells.done + cells.resumed)/\(cells.total + cells.resumed)" + (cells.resumed > 0 ? " (\(cells.resumed) resumed)" : ""))
        }
        parts.append(Self.count(done) + "/" + (total.map { (estimated ? "~" : "") + Self.count($0) } ?? "?") + " model-steps")
        parts.append(Self.count(Int(rate.rounded())) + " steps/s")
        parts.append("elapsed " + Self.clock(elapsed))
        parts.append("ETA " + (eta.map(Self.clock) ?? "?"))
        return parts.joined(separator: "  ")
    }

    /// Whether the work ended before all of it was done (an error, a deadline, an interruption).
    public var unfinished: Bool {
        if let cells { return cells.done < cells.total }
        return total.map { done < $0 } ?? false
    }

    /// The closing line: `sweep done: 20 cells, 24,000 model-steps in 1m12s (333 steps/s)`; `stopped` instead of
    /// `done` when the work ended unfinished.
    public func finalLine(label: String) -> String {
        var text = "\(label) \(unfinished ? "stopped" : "done"): "
        if let cells { text += "\(cells.done) cells" + (cells.resumed > 0 ? " (+\(cells.resumed) resumed)" : "") + ", " }
        return text + "\(Self.count(done)) model-steps in \(Self.clock(elapsed)) (\(Self.count(Int(rate.rounded()))) steps/s)"
    }
}

/// A sweep's work in model-steps, as far as it is known while it runs, and the time it still needs.
///
/// **Steps.** A cell's steps are known only once its trainings start (each declares models × steps) or once it
/// finishes (steps actually run, early stops included). The total is therefore estimated: finished cells count their
/// actual steps; every other cell counts the mean of the finished cells (before any finished: the mean over running
/// cells of what their first replicates declared, times the replicates); a running cell counts at least what it has
/// done. Steps of running cells count as done right away, so the rate, and with it the ETA, move within a cell.
///
/// **Time left** (`secondsLeft`). Cells may differ in what a model-step costs (a 20-expert model's step costs several
/// times a dense one's), so the steps left at the overall rate mislead: cheap cells finish many steps while a costly
/// one runs, and the rate over-represents them. Instead each *cost group* g learns its worker-seconds per model-step
///   c_g = (Σ seconds of its finished cells + Σ time its running cells have run) / (their model-steps),
/// from the cells of g that ran or are running. A group is what the sweep declares with `cost_by` (cells with equal
/// values of those parameters); without it every cell is its own group. A group with no steps yet is priced at the
/// unweighted mean of the learnt groups' c_g (each group counts once, however many steps it ran). A cell then takes
/// S_g·c_g seconds (S_g: the group's mean steps per finished cell, else the sweep's estimate above; a running cell
/// the part it has not done), and secondsLeft is when the last worker is free if the cells not started go, in the
/// run's order, each to the worker free first, as the sweep's queue hands them out (so a last costly cell on one
/// worker is accounted for, not spread over idle ones; a worker left alone runs faster when the process had less
/// than a core per worker, see `secondsLeft(at:cores:)`). nil while no group has both steps and time (nothing to
/// estimate from). Nothing here is hard-coded: the costs are measured as the sweep runs, so they follow kernel
/// changes and machine load; the estimate is only as representative as the cells seen so far, which is why the
/// sweep runs its cells in a spread order (`SweepSpec.executionOrder`).
/// Times are given by the caller (`at:`): the type itself reads no clock, so tests feed it synthetic events.
public struct SweepWork: Sendable, Equatable {
    public struct Slot: Sendable, Equatable {
        public var done = 0
        /// Model-steps the cell's first replicate declared (later replicates repeat its trainings).
        public var declared = 0
        public var replicatesStarted = 0
        /// The running cell's cost group and when it started (nil when not reported).
        public var group: String?
        public var started: Double?
        public init() {}
    }
    /// What the finished cells of one cost group took.
    public struct GroupCost: Sendable, Equatable {
        public var cells = 0
        public var steps = 0
        /// Worker-seconds of the group's finished cells that reported their start.
        public var seconds = 0.0
        /// Model-steps of those timed cells (the divisor of `seconds`).
        public var timedSteps = 0
        public init() {}
    }
    /// Cells this run has to train (finished cells of earlier runs excluded).
    public var cellsTotal: Int
    public var replicates: Int
    /// Worker threads that run cells (the ETA divides the work left among them).
    public var workers: Int
    public var cellsFinished = 0
    public var finishedSteps = 0
    /// Work of cells in flight, by worker.
    public var slots: [Int: Slot] = [:]
    /// Finished work per cost group, and the groups in the order they were first seen (sums run in this order, so
    /// an estimate does not depend on the dictionary's hashing).
    public var groups: [String: GroupCost] = [:]
    public var groupOrder: [String] = []
    /// The cost group of every cell to run, in the order the sweep starts them (empty without `cost_by`).
    public var queue: [String] = []

    /// - Parameter groups: the cost group of every cell to run, or nil when every cell is its own group.
    public init(cellsTotal: Int, replicates: Int, workers: Int = 1, groups: [String]? = nil) {
        self.cellsTotal = cellsTotal
        self.replicates = Swift.max(1, replicates)
        self.workers = Swift.max(1, workers)
        queue = groups ?? []
    }

    public var done: Int { finishedSteps + slots.values.reduce(0) { $0 + $1.done } }

    /// Estimated model-steps of one cell; nil while nothing tells.
    public var stepsPerCell: Double? {
        if cellsFinished > 0 { return Double(finishedSteps) / Double(cellsFinished) }
        let guesses = slots.keys.sorted().compactMap { k -> Double? in
            let s = slots[k]!
            return s.declared > 0 ? Double(s.declared) * Double(replicates) : nil
        }
        return guesses.isEmpty ? nil : guesses.reduce(0, +) / Double(guesses.count)
    }

    /// Running cells (a slot that started a cell or did steps).
    var running: [(key: Int, value: Slot)] {
        slots.sorted { $0.key < $1.key }.filter { $0.value.replicatesStarted > 0 || $0.value.done > 0 || $0.value.started != nil }
    }

    /// Estimated model-steps of this run's cells in all (see the type's description); nil while nothing tells.
    public var total: Int? {
        guard let perCell = stepsPerCell else { return nil }
        let running = self.running
        let notStarted = Swift.max(0, cellsTotal - cellsFinished - running.count)
        let inFlight = running.reduce(0.0) { $0 + Swift.max(perCell, Double($1.value.done)) }
        return Int((Double(finishedSteps) + inFlight + Double(notStarted) * perCell).rounded())
    }

    /// Seconds until the cells of this run are finished, at time `t` (see the type's description); nil while
    /// nothing tells.
    /// - Parameter cores: the cores' worth of CPU this process has had during the sweep (its CPU seconds per wall
    ///   second), or nil when not measured. The costs are learnt while every worker is busy; when fewer are (the last
    ///   cells), each may run faster if the process had less CPU than one core per worker (a shared machine: its
    ///   share goes to the busy workers), up to one core each: a busy worker's speed relative to the learnt one,
    ///   with b workers busy, is min(1, cores/b) / min(1, cores/b₀), b₀ the workers busy now (the costs are taken
    ///   as learnt at b₀: all workers while cells wait). With a core per worker (or nil) it is 1.
    public func secondsLeft(at t: Double, cores: Double? = nil) -> Double? {
        guard let perCell = stepsPerCell else { return nil }
        let running = self.running
        // Learnt seconds per model-step of each group: finished cells plus the running ones so far.
        var seconds: [String: Double] = [:], steps: [String: Int] = [:]
        var order = groupOrder
        for name in groupOrder {
            seconds[name] = groups[name]!.seconds
            steps[name] = groups[name]!.timedSteps
        }
        for (_, slot) in running {
            guard let g = slot.group, let started = slot.started else { continue }
            if seconds[g] == nil { order.append(g) }
            seconds[g, default: 0] += Swift.max(0, t - started)
            steps[g, default: 0] += slot.done
        }
        var cost: [String: Double] = [:]
        var learnt: [Double] = []
        for g in order where steps[g]! > 0 && seconds[g]! > 0 {
            cost[g] = seconds[g]! / Double(steps[g]!)
            learnt.append(cost[g]!)
        }
        guard !learnt.isEmpty else { return nil }
        let unseenCost = learnt.reduce(0, +) / Double(learnt.count)
        func stepsOfCell(_ g: String?) -> Double {
            if let g, let f = groups[g], f.cells > 0 { return Double(f.steps) / Double(f.cells) }
            return perCell
        }
        // Each busy worker's work left (seconds at the learnt speed): a running cell's steps left at its group's cost.
        var busy = running.map { _, slot in
            Swift.max(0, stepsOfCell(slot.group) - Double(slot.done)) * (slot.group.flatMap { cost[$0] } ?? unseenCost)
        }
        // The cells not started, in the order they will start (with `cost_by`, the groups of the run's order; without,
        // every one a cell not seen yet), each going to the worker free first, as the sweep's queue hands them out.
        let notStarted = Swift.max(0, cellsTotal - cellsFinished - running.count)
        let start = Swift.min(queue.count, Swift.max(0, cellsTotal - notStarted))
        var durations: [Double] = queue[start...].prefix(notStarted).map { stepsOfCell($0) * (cost[$0] ?? unseenCost) }
        durations += [Double](repeating: perCell * unseenCost, count: notStarted - durations.count)
        // Beyond a few thousand cells the rest is spread evenly over the workers (the order no longer matters much).
        let simulated = Swift.min(durations.count, 4096)
        let rest = durations[simulated...].reduce(0, +) / Double(workers)
        // Relative to now: the costs were learnt with about as many workers busy as now (all of them while cells
        // wait; in the last cells, a running cell's cost is mostly what it showed lately).
        let current = Swift.max(1, Swift.min(workers, busy.count))
        func speed(_ b: Int) -> Double {
            guard let cores, cores > 0, b > 0 else { return 1 }
            return Swift.min(1, cores / Double(b)) / Swift.min(1, cores / Double(current))
        }
        // Event by event: the busy workers run at speed(b); when one is done it takes the next cell.
        var next = 0
        while busy.count < workers && next < simulated {
            busy.append(durations[next])
            next += 1
        }
        var elapsed = 0.0
        while let least = busy.min() {
            elapsed += least / speed(busy.count)
            let i = busy.firstIndex(of: least)!
            busy = busy.map { $0 - least }
            busy.remove(at: i)
            if next < simulated {
                busy.append(durations[next])
                next += 1
            }
        }
        return elapsed + rest
    }

    public mutating func declare(_ steps: Int, slot: Int) {
        var s = slots[slot, default: Slot()]
        if s.replicatesStarted <= 1 { s.declared += steps }
        slots[slot] = s
    }
    public mutating func add(_ steps: Int, slot: Int) { slots[slot, default: Slot()].done += steps }
    public mutating func replicateStarted(slot: Int) { slots[slot, default: Slot()].replicatesStarted += 1 }
    /// Worker `slot` takes a cell of cost group `group` (its own id when the sweep declares none) at time `t`.
    public mutating func cellStarted(slot: Int, group: String, at t: Double) {
        var s = Slot()
        s.group = group
        s.started = t
        slots[slot] = s
    }
    /// Worker `slot` finished its cell at time `t` (nil: time unknown; the cell then teaches no cost).
    public mutating func cellFinished(slot: Int, at t: Double? = nil) {
        let s = slots.removeValue(forKey: slot) ?? Slot()
        cellsFinished += 1
        finishedSteps += s.done
        guard let g = s.group else { return }
        if groups[g] == nil { groupOrder.append(g) }
        var f = groups[g, default: GroupCost()]
        f.cells += 1
        f.steps += s.done
        if let t, let started = s.started {
            f.seconds += Swift.max(0, t - started)
            f.timedSteps += s.done
        }
        groups[g] = f
    }
}

/// Progress of long work on standard error, one display for the whole process: the trainings of a script's
/// top level (`toymoe.train`, `toymoe.train_many`, `toymoe train`) or a sweep's cells, whose trainings feed the
/// sweep's display (never a nested one). Thread-safe: workers report from their threads; lines never interleave.
/// Work is counted in model-steps; trainers report in strides (`Trainer.progressStride`), and output is
/// rate-limited (a bar at most every `redraw` s, a plain line at most every `interval` s), so the cost is a lock
/// and a clock read per stride. It only writes to standard error: results never depend on it.
public final class ProgressReporter: @unchecked Sendable {
    public let options: ProgressOptions
    let sink: @Sendable (String) -> Void
    let now: @Sendable () -> Double
    /// CPU seconds of the whole process (nil: not measured); with `now`, how many cores' worth the sweep gets.
    let cpuNow: (@Sendable () -> Double)?
    var sweepCPUStart = 0.0
    let lock = NSLock()
    /// Columns of the terminal (the bar line is cut to fit, or `\r` could not redraw a wrapped line).
    let columns: Int

    var label = "train"
    var workStart: Double
    var lastDraw: Double
    /// Something was drawn for the current work (then it gets a closing line).
    var shown = false
    /// A bar is on the terminal without its newline (a message first clears it).
    var barVisible = false
    var sweep: SweepWork?
    var resumed = 0
    var topDone = 0
    var topDeclared = 0

    /// Progress as `toymoe run` shows it by default: off when quiet, a bar on a terminal, plain lines otherwise.
    public convenience init(quiet: Bool) {
        let options = (try? ProgressOptions.automatic(quiet: quiet))
            ?? ProgressOptions(style: quiet ? .off : (isatty(2) != 0 ? .terminal : .plain))
        self.init(options: options)
    }

    /// - Parameters:
    ///   - sink: receives the text to write (default: standard error), under the reporter's lock.
    ///   - clock: monotonic seconds (tests pass their own).
    ///   - cpuClock: the process's CPU seconds; by default the real one, unless `clock` is given (then none, so
    ///     that a test's estimates do not depend on this machine).
    public init(
        options: ProgressOptions, columns: Int? = nil, sink: (@Sendable (String) -> Void)? = nil,
        clock: (@Sendable () -> Double)? = nil, cpuClock: (@Sendable () -> Double)? = nil
    ) {
        self.options = options
        self.sink = sink ?? { FileHandle.standardError.write(Data($0.utf8)) }
        self.now = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        if let cpuClock {
            self.cpuNow = cpuClock
        } else if clock != nil {
            self.cpuNow = nil
        } else {
            self.cpuNow = Self.processCPUSeconds
        }
        self.columns = columns ?? Self.terminalColumns()
        workStart = self.now()
        lastDraw = workStart
    }

    /// CPU seconds used by the whole process (all threads) so far.
    @Sendable static func processCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func terminalColumns() -> Int {
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return 100
    }

    public var isOff: Bool { options.style == .off }

    // MARK: - Reports

    /// A training is about to run `steps` model-steps (models × steps) on worker `slot` (0 at top level).
    public func declare(_ steps: Int, slot: Int = 0) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        if sweep != nil {
            sweep!.declare(steps, slot: slot)
        } else {
            if topDeclared == 0 && topDone == 0 { begin(label: "train") }
            topDeclared += steps
        }
        draw(force: false)
    }

    /// `steps` more model-steps done on worker `slot` (called by trainers every stride; cheap).
    public func add(_ steps: Int, slot: Int = 0) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        if sweep != nil { sweep!.add(steps, slot: slot) } else { topDone += steps }
        draw(force: false)
    }

    /// A top-level training ended: its closing line if anything was shown, and the next one starts afresh.
    /// `finished`: it returned its result (an early stop or a divergence ends it too: its work is what it did);
    /// false when an error (a deadline) cut it short, then the line says `stopped`.
    public func endTraining(finished: Bool = true) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        guard sweep == nil else { return }
        if finished { topDeclared = topDone }
        close()
        topDone = 0
        topDeclared = 0
    }

    /// A sweep starts: `cells` to run now, `resumed` finished before, `replicates` per cell, run by `workers`
    /// threads; `groups`: the cost group of each cell to run (nil: every cell is its own; see `SweepWork`).
    public func beginSweep(cells: Int, resumed: Int, replicates: Int, workers: Int = 1, groups: [String]? = nil) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        begin(label: "sweep")
        sweep = SweepWork(cellsTotal: cells, replicates: replicates, workers: workers, groups: groups)
        sweepCPUStart = cpuNow?() ?? 0
        self.resumed = resumed
    }

    /// Worker `slot` takes a cell of cost group `group` (the cell's id when the sweep declares no `cost_by`).
    public func cellStarted(slot: Int, group: String) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        sweep?.cellStarted(slot: slot, group: group, at: now())
    }

    /// Worker `slot` starts a replicate of its cell (the first one starts the cell).
    public func replicateStarted(slot: Int) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        sweep?.replicateStarted(slot: slot)
    }

    /// Worker `slot` finished its cell.
    public func cellFinished(slot: Int) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        sweep?.cellFinished(slot: slot, at: now())
        draw(force: false)
    }

    /// The sweep ended (complete or not): its closing line.
    public func endSweep() {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        guard sweep != nil else { return }
        shown = true  // a sweep always closes with its line
        close()
        sweep = nil
    }

    /// A line of its own (e.g. a warning), clearing the bar first so the two do not share a line.
    public func message(_ text: String) {
        guard !isOff else { return }
        lock.lock()
        defer { lock.unlock() }
        clearBar()
        sink(text + "\n")
    }

    /// Clears the bar before other output reaches the same terminal (a script's `print`).
    public func clearForOutput() {
        guard options.style == .terminal else { return }
        lock.lock()
        defer { lock.unlock() }
        clearBar()
    }

    /// The current estimate (for tests and the closing line).
    public var estimate: ProgressEstimate {
        lock.lock()
        defer { lock.unlock() }
        return currentEstimate(at: now())
    }

    // MARK: - Drawing (under the lock)

    func begin(label: String) {
        clearBar()
        self.label = label
        workStart = now()
        lastDraw = workStart
        shown = false
    }

    func currentEstimate(at t: Double) -> ProgressEstimate {
        if let sweep {
            // Cores' worth of CPU the process had since the sweep began (see SweepWork.secondsLeft).
            let cores = cpuNow.flatMap { cpu in t > workStart ? (cpu() - sweepCPUStart) / (t - workStart) : nil }
            return ProgressEstimate(
                elapsed: t - workStart, done: sweep.done, total: sweep.total, estimated: true,
                cells: (sweep.cellsFinished, sweep.cellsTotal, resumed), secondsLeft: .some(sweep.secondsLeft(at: t, cores: cores)))
        }
        return ProgressEstimate(elapsed: t - workStart, done: topDone, total: topDeclared > 0 ? topDeclared : nil)
    }

    func draw(force: Bool) {
        let t = now()
        guard force || t - workStart >= options.delay else { return }
        switch options.style {
        case .off: return
        case .terminal:
            guard force || t - lastDraw >= options.redraw || !shown else { return }
            var line = currentEstimate(at: t).line(label: label, barWidth: 20)
            if line.count > columns - 1 { line = String(line.prefix(columns - 1)) }
            sink("\r\u{1B}[K" + line)
            barVisible = true
        case .plain:
            guard force || t - lastDraw >= options.interval else { return }
            sink(currentEstimate(at: t).line(label: label, barWidth: 0) + "\n")
        }
        lastDraw = t
        shown = true
    }

    func clearBar() {
        if barVisible {
            sink("\r\u{1B}[K")
            barVisible = false
        }
    }

    func close() {
        guard shown else { return }
        clearBar()
        sink(currentEstimate(at: now()).finalLine(label: label) + "\n")
        shown = false
    }
}

extension Bindings {
    /// Declares a training's model-steps to the progress display and returns the trainer's stride callback (nil
    /// when progress is off: the trainer then does no progress work at all) and what to call when it ends (a
    /// top-level training closes its line; in a sweep the cell's trainings feed the sweep's display).
    static func progressReporting(_ ctx: ScriptContext, modelSteps: Int) -> (progress: (@Sendable (Int) -> Void)?, end: (Bool) -> Void) {
        guard let reporter = ctx.progress, !reporter.isOff else { return (nil, { _ in }) }
        let slot = ctx.progressSlot
        reporter.declare(modelSteps, slot: slot)
        let end: (Bool) -> Void = ctx.isWorker ? { _ in } : { reporter.endTraining(finished: $0) }
        return ({ n in reporter.add(n, slot: slot) }, end)
    }
}
