import Foundation
import Synchronization
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// The sweep's ETA when cells differ in what a model-step costs: the cost-weighted estimator (`SweepWork.secondsLeft`,
/// fed synthetic events with injected times: no sleeping, no dependence on this machine's speed), the spread
/// execution order, `cost_by`/`schedule` in `toymoe.sweep`, and that the order never changes a result byte.
@Suite struct SweepETATests {

    // MARK: - The estimator

    @Test("Nothing to estimate from: ETA ? until a cell has both steps and time")
    func nothingToEstimate() {
        var w = SweepWork(cellsTotal: 4, replicates: 1, workers: 2)
        #expect(w.secondsLeft(at: 0) == nil)
        w.cellStarted(slot: 0, group: "c0000", at: 0)
        #expect(w.secondsLeft(at: 5) == nil, "a cell running, but no step done yet")
        w.replicateStarted(slot: 0)
        w.declare(100, slot: 0)
        #expect(w.secondsLeft(at: 5) == nil, "steps declared, none done")
        w.add(10, slot: 0)
        #expect(w.secondsLeft(at: 0) == nil, "steps done, no time elapsed")
        #expect(w.secondsLeft(at: 2) != nil)
        // The line says `ETA ?` rather than a number while nil.
        let e = ProgressEstimate(elapsed: 3, done: 10, total: 400, estimated: true, cells: (0, 4, 0), secondsLeft: .some(nil))
        #expect(e.eta == nil && e.line(label: "sweep", barWidth: 0).hasSuffix("ETA ?"))
        // Without an estimator's value (a top-level training) the ETA stays the steps left at the rate.
        #expect(ProgressEstimate(elapsed: 10, done: 100, total: 400).eta == 30)
    }

    /// Two cost groups, A (0.5 s per model-step) and B (0.1 s), 4 cells each of 100 model-steps, 2 workers.
    static func twoGroups() -> SweepWork {
        var w = SweepWork(cellsTotal: 8, replicates: 1, workers: 2, groups: ["A", "B", "A", "B", "A", "B", "A", "B"])
        w.cellStarted(slot: 0, group: "A", at: 0)
        w.cellStarted(slot: 1, group: "B", at: 0)
        for slot in 0..<2 {
            w.replicateStarted(slot: slot)
            w.declare(100, slot: slot)
        }
        w.add(20, slot: 0)  // A: 20 steps in 10 s
        w.add(100, slot: 1)  // B: its whole cell in 10 s
        w.cellFinished(slot: 1, at: 10)
        return w
    }

    @Test("Cost groups: each group's seconds per model-step is learnt and prices its own cells")
    func groupsPriceTheirCells() throws {
        let w = Self.twoGroups()
        // Left at t = 10: the running A cell 80 × 0.5, 3 waiting A cells 300 × 0.5, 3 waiting B cells 300 × 0.1:
        // 220 worker-seconds over 2 workers.
        let left = try #require(w.secondsLeft(at: 10))
        #expect(abs(left - 110) < 1e-9, "\(left)")
        // The overall model-steps rate (120 steps in 10 s) would say 680 / 12 ≈ 57 s: cheap B dominates it.
        let rateETA = try #require(ProgressEstimate(elapsed: 10, done: w.done, total: w.total).eta)
        #expect(abs(rateETA - 680.0 / 12) < 1e-9)
        // Time runs on with no new step: the running A cell now looks costlier (20 steps in 20 s: 1 s a step). The
        // queue A B A B A B (100, 10, 100, 10, 100, 10 s) goes to the worker free first: [80, 0] → [190, 210].
        let later = try #require(w.secondsLeft(at: 20))
        #expect(abs(later - 210) < 1e-9, "\(later)")
    }

    @Test("The last cells: a cell runs on one worker, so 3 equal cells on 2 workers take two cells' time")
    func tail() throws {
        var w = SweepWork(cellsTotal: 3, replicates: 1, workers: 2)
        for slot in 0..<2 {
            w.cellStarted(slot: slot, group: "c\(slot)", at: 0)
            w.replicateStarted(slot: slot)
            w.declare(1000, slot: slot)
            w.add(200, slot: slot)  // 200 steps in 20 s: 0.1 s a step, 100 s a cell
        }
        // Both running cells have 80 s left, then one worker runs the third: 180 s (spreading the third cell over
        // both workers would say 130 s).
        let left = try #require(w.secondsLeft(at: 20))
        #expect(abs(left - 180) < 1e-9, "\(left)")
        #expect(abs((w.secondsLeft(at: 20, cores: 2) ?? 0) - 180) < 1e-9, "a core per worker: no faster alone")
        #expect(abs((w.secondsLeft(at: 20, cores: 3.5) ?? 0) - 180) < 1e-9, "more cores than workers: the same")
        // The process had one core for its two workers: alone, the third cell gets the whole core and runs twice
        // as fast as it was learnt (80 s, then 100 s / 2).
        let shared = try #require(w.secondsLeft(at: 20, cores: 1))
        #expect(abs(shared - 130) < 1e-9, "\(shared)")
        // Half a core for two: alone at most 2× too (speed min(1, 0.5/1) / min(1, 0.5/2) = 2).
        #expect(abs((w.secondsLeft(at: 20, cores: 0.5) ?? 0) - 130) < 1e-9)
        // The third cell, started alone after the others finished: its cost was learnt alone, so no speed-up again.
        var last = SweepWork(cellsTotal: 1, replicates: 1, workers: 2)
        last.cellStarted(slot: 0, group: "c2", at: 100)
        last.declare(1000, slot: 0)
        last.add(200, slot: 0)  // 200 steps in 10 s
        #expect(abs((last.secondsLeft(at: 110, cores: 1) ?? 0) - 40) < 1e-9)
    }

    @Test("A group not seen yet is priced at the unweighted mean of the learnt groups' costs")
    func unseenGroups() throws {
        var w = SweepWork(cellsTotal: 6, replicates: 1, workers: 2, groups: ["A", "B", "C", "C", "C", "C"])
        w.cellStarted(slot: 0, group: "A", at: 0)
        w.cellStarted(slot: 1, group: "B", at: 0)
        w.add(100, slot: 0)
        w.cellFinished(slot: 0, at: 50)  // A: 0.5 s per step, 100 steps a cell
        w.add(900, slot: 1)
        w.cellFinished(slot: 1, at: 90)  // B: 0.1 s per step (900 steps: B counts 9× A's steps, but once)
        // C is priced at (0.5 + 0.1) / 2 = 0.3 s per step; its cells at the mean steps of a cell, 500.
        let left = try #require(w.secondsLeft(at: 90))
        #expect(abs(left - 4 * 500 * 0.3 / 2) < 1e-9, "\(left)")
    }

    @Test("Without cost_by every cell is its own group: waiting cells cost the mean of the cells seen")
    func cellsAsGroups() throws {
        var w = SweepWork(cellsTotal: 4, replicates: 1, workers: 1)
        w.cellStarted(slot: 0, group: "c0000", at: 0)
        w.add(100, slot: 0)
        w.cellFinished(slot: 0, at: 10)  // 0.1 s per step
        w.cellStarted(slot: 0, group: "c0001", at: 10)
        w.add(10, slot: 0)  // 0.5 s per step so far
        let left = try #require(w.secondsLeft(at: 15))
        // running: 90 × 0.5; 2 waiting cells: 2 × 100 × mean(0.1, 0.5)
        #expect(abs(left - (90 * 0.5 + 200 * 0.3)) < 1e-9, "\(left)")
        // The last cells: parallelism is never above the cells left.
        var tail = SweepWork(cellsTotal: 1, replicates: 1, workers: 4)
        tail.cellStarted(slot: 2, group: "c0009", at: 0)
        tail.declare(100, slot: 2)
        tail.add(50, slot: 2)
        #expect(abs((tail.secondsLeft(at: 5) ?? 0) - 5) < 1e-9, "one cell left runs on one worker")
    }

    @Test("A finished sweep has no time left; steps of a cell past the estimate never count negative")
    func finished() throws {
        var w = SweepWork(cellsTotal: 2, replicates: 1, workers: 2)
        for (slot, t) in [(0, 4.0), (1, 6.0)] {
            w.cellStarted(slot: slot, group: "c\(slot)", at: 0)
            w.add(100, slot: slot)
            w.cellFinished(slot: slot, at: t)
        }
        #expect(w.secondsLeft(at: 6) == 0)
        var over = SweepWork(cellsTotal: 2, replicates: 1, workers: 1)
        over.cellStarted(slot: 0, group: "a", at: 0)
        over.add(100, slot: 0)
        over.cellFinished(slot: 0, at: 10)
        over.cellStarted(slot: 0, group: "b", at: 10)
        over.add(300, slot: 0)  // past the 100 steps a cell was estimated at
        #expect(try #require(over.secondsLeft(at: 20)) == 0)
    }

    @Test("The reporter's sweep line shows the cost-weighted ETA, with times from its clock")
    func reporterLine() {
        let clock = ProgressTests.FakeClock(), sink = ProgressTests.Sink()
        let r = ProgressTests.reporter(.plain, interval: 1000, clock: clock, sink: sink)
        r.beginSweep(cells: 8, resumed: 0, replicates: 1, workers: 2, groups: ["A", "B", "A", "B", "A", "B", "A", "B"])
        r.cellStarted(slot: 0, group: "A")
        r.cellStarted(slot: 1, group: "B")
        r.replicateStarted(slot: 0)
        r.replicateStarted(slot: 1)
        r.declare(100, slot: 0)
        r.declare(100, slot: 1)
        #expect(r.estimate.eta == nil, "no step yet: ETA ?")
        clock.set(10)
        r.add(20, slot: 0)
        r.add(100, slot: 1)
        r.cellFinished(slot: 1)
        #expect(abs((r.estimate.eta ?? 0) - 110) < 1e-9)
        r.lock.lock()
        r.draw(force: true)
        r.lock.unlock()
        #expect(sink.all.last?.contains("ETA 1m50s") == true, "\(sink.all)")
        r.endSweep()
    }

    // MARK: - The execution order

    @Test("spreadOrder is a permutation whose every prefix samples the range evenly")
    func spreadOrder() {
        #expect(SweepSpec.spreadOrder(0) == [] && SweepSpec.spreadOrder(1) == [0])
        #expect(Array(SweepSpec.spreadOrder(20).prefix(4)) == [0, 12, 4, 17])
        for n in Array(2...64) + [100, 257] {
            let order = SweepSpec.spreadOrder(n)
            #expect(order.sorted() == Array(0..<n), "n = \(n): not a permutation")
            var taken: [Int] = []
            for (k, p) in order.enumerated() {
                taken.append(p)
                let s = taken.sorted()
                var maxGap = s[0] + n - s[s.count - 1]
                for i in 1..<s.count { maxGap = max(maxGap, s[i] - s[i - 1]) }
                // No hole longer than 3n/k among the first k (measured ≤ 2.78 n/k up to n = 400).
                if maxGap * (k + 1) > 3 * n { Issue.record("n = \(n), k = \(k + 1): a gap of \(maxGap)") }
                let low = s.filter { 2 * $0 < n }.count
                if abs(2 * low - (k + 1)) > 4 { Issue.record("n = \(n), k = \(k + 1): \(low) in the lower half") }
            }
        }
    }

    @Test("executionOrder: declared keeps the order; cost_by runs round-robin over the groups")
    func executionOrder() {
        let cells = SweepSpec.grid([("arch", ["E20", "E10", "dense", "E4"]), ("p", [1.0, 0.78, 0.55, 0.33, 0.1])])
        let pending = Array(cells.indices)
        let declared = SweepSpec(name: "s", cells: cells, schedule: .declared)
        #expect(declared.executionOrder(pending) == pending)
        let spread = SweepSpec(name: "s", cells: cells)
        #expect(spread.executionOrder(pending) == SweepSpec.spreadOrder(20))
        #expect(spread.costGroup(3) == "c0003", "without cost_by a cell is its own group")
        let grouped = SweepSpec(name: "s", cells: cells, costBy: ["arch"])
        let order = grouped.executionOrder(pending)
        #expect(order.sorted() == pending)
        #expect(grouped.costGroup(0) == #"["E20"]"# && grouped.costGroup(19) == #"["E4"]"#)
        // Each round of 4 holds one cell of every architecture (groups in spread order: E20, dense, E10, E4).
        for round in 0..<5 {
            let archs = order[(4 * round)..<(4 * round + 4)].map { cells[$0]["arch"]!.stringValue! }
            #expect(archs == ["E20", "dense", "E10", "E4"], "round \(round): \(archs)")
        }
        // A resumed or sharded run orders what is left of its own cells.
        let left = [1, 2, 3, 7, 11, 12, 19]
        #expect(grouped.executionOrder(left).sorted() == left && spread.executionOrder(left).sorted() == left)
    }

    // MARK: - Results do not depend on the order

    /// Every file of a sweep's results (cells, summary, npz, finish's result, files the cells saved), as bytes.
    static func resultFiles(_ root: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        let skip: Set<String> = ["timings.csv", "provenance.json", "sweep.json", "config.json", "script.lua", ".toymoe.lock"]
        for case let path as String in fm.enumerator(atPath: root.path)! {
            let url = root.appendingPathComponent(path)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                !skip.contains(url.lastPathComponent)
            else { continue }
            out[path] = try Data(contentsOf: url)
        }
        return out
    }

    @Test("The host: declared, spread and cost_by orders, --jobs 1 and 2, give byte-identical result files")
    func hostOrderIndependence() throws {
        let cells = SweepSpec.grid([("E", [1, 2, 3]), ("p", [0.2, 0.5, 0.7, 1.0])])
        var reference: [String: Data]? = nil
        for (costBy, schedule, jobs) in [([], SweepSpec.Schedule.declared, 1), ([], .spread, 1), (["E"], .spread, 2), ([], .spread, 2)] {
            let dir = try ScriptTestResult.temporaryDirectory("toymoe-eta-order")
            defer { try? FileManager.default.removeItem(at: dir) }
            let spec = SweepSpec(
                name: "order", cells: cells, replicates: 2, selection: .minimize("final_loss"), costBy: costBy, schedule: schedule)
            #expect(try SweepRunner(spec: spec, root: dir, seed: 5, jobs: jobs).run { _ in SweepHostTests.TrainingWorker() })
            let files = try Self.resultFiles(dir)
            #expect(files.keys.contains("summary.csv") && files.keys.contains("cells/c0011.json"))
            if let reference {
                let differing = Set(files.keys).union(reference.keys).filter { files[$0] != reference[$0] }.sorted()
                #expect(differing.isEmpty, "\(costBy) \(schedule) jobs \(jobs): \(differing) differ")
            } else {
                reference = files
            }
        }
    }

    /// A script whose cells train, draw from math.random, save a model and keep Lua state on the worker between
    /// cells: whatever order a worker runs them in, every result byte must be the same.
    static let script = """
        -- A sweep whose result files must not depend on the order its cells run in.
        local schedule = toymoe.param("schedule", "spread")
        local by = toymoe.param("by", "none")
        local ran = 0
        toymoe.sweep{
          name = "order",
          grid = { E = {1, 2, 4}, p = {0.3, 0.6, 1.0} },
          replicates = 2,
          schedule = schedule,
          cost_by = by ~= "none" and by or nil,
          run = function(cell, ctx)
            ran = ran + 1   -- worker state that does depend on the order: never returned
            local m = toymoe.model{ n_features = 4, n_hidden = 2, n_experts = cell.E }
            local r = toymoe.train(m, { data = toymoe.data{ n_features = 4, feature_probability = cell.p },
                                        steps = 30, batch_size = 16 })
            m:save("model.npz")
            return { final_loss = r.final_loss, draw = math.random(), seed_text = tostring(ctx.seed) }
          end,
          finish = function(rows)
            local ids = {}
            for i, row in ipairs(rows) do ids[i] = row.id end
            return { ids = table.concat(ids, ","), first_loss = rows[1].replicates[1].final_loss }
          end,
        }
        """

    @Test("A Lua sweep: schedule declared vs spread vs cost_by, --jobs 1 and 2: byte-identical results and finish")
    func scriptOrderIndependence() throws {
        var reference: [String: Data]? = nil
        for (schedule, by, jobs) in [("declared", "none", 1), ("spread", "none", 1), ("spread", "E", 1), ("spread", "E", 2)] {
            let run = try ScriptTestResult.run(Self.script, params: [("schedule", schedule), ("by", by)], seed: 3, jobs: jobs)
            defer { try? FileManager.default.removeItem(at: run.directory.deletingLastPathComponent()) }
            let files = try Self.resultFiles(run.directory)
            #expect(files.keys.contains("cells/c0008/r1/model.npz") && files.keys.contains("result.json"), "\(files.keys.sorted())")
            if let reference {
                let differing = Set(files.keys).union(reference.keys).filter { files[$0] != reference[$0] }.sorted()
                #expect(differing.isEmpty, "schedule \(schedule), cost_by '\(by)', jobs \(jobs): \(differing) differ")
            } else {
                reference = files
            }
        }
    }

    @Test("toymoe.sweep refuses a malformed cost_by or schedule, by name")
    func refusals() throws {
        func message(_ extra: String) -> String {
            let source = "toymoe.sweep{ grid = { a = {1, 2} }, \(extra), run = function() return {} end }"
            do {
                _ = try ScriptTestResult.run(source)
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(message("cost_by = 'b'").contains("cost_by: 'b' is not a parameter of cells[1]"))
        #expect(message("cost_by = 3").contains("cost_by: expected a parameter name or a list of them"))
        #expect(message("cost_by = {}").contains("cost_by: expected"))
        #expect(message("schedule = 'random'").contains("schedule: expected \"spread\" (default) or \"declared\""))
        #expect(message("cost_by = {'a'}, schedule = 'declared'") == "")
    }
}
