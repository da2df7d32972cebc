import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// The sweep host with a Swift worker that trains a tiny model per cell (no Lua): determinism across jobs,
/// resume, shards and merge.
@Suite struct SweepHostTests {

    final class TrainingWorker: SweepWorker {
        /// Fails (throws) on this cell index, to simulate a crash midway.
        let failAt: Int?
        init(failAt: Int? = nil) { self.failAt = failAt }

        func run(params: JSONObject, context: CellContext) throws -> JSONObject {
            if context.index == failAt { throw SweepError("injected failure at \(context.cellID)") }
            let p = Float(params["p"]!.doubleValue!)
            let E = params["E"]!.intValue!
            let model = try Model(config: ModelConfig(featureCount: 3, hiddenCount: 1, expertCount: E), seed: context.seed)
            var cfg = TrainingConfig()
            cfg.steps = 40
            cfg.batchSize = 32
            cfg.loadBalancing = true
            let r = try Trainer(model: model, data: .uniform(featureCount: 3, probability: p), config: cfg, seed: context.seed).run()
            return [
                "final_loss": .number(r.finalLoss),
                "norms": .array(Metrics.featureNorms(model.expertMatrices()[0]).map { .number($0) }),
            ]
        }
    }

    static func spec(replicates: Int = 2) -> SweepSpec {
        SweepSpec(
            name: "test",
            cells: SweepSpec.grid([("E", [1, 2]), ("p", [0.2, 0.5, 1.0])]),
            replicates: replicates, selection: .minimize("final_loss"))
    }

    func tempDir(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("toymoe-sweep-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Every result file of a sweep directory (cells, summary, npz, sweep.json) as bytes, by relative path.
    func resultFiles(_ root: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        for name in ["summary.csv", "results.npz", "sweep.json"] {
            out[name] = try Data(contentsOf: root.appendingPathComponent(name))
        }
        for name in try fm.contentsOfDirectory(atPath: root.appendingPathComponent("cells").path) where name.hasSuffix(".json") {
            out["cells/" + name] = try Data(contentsOf: root.appendingPathComponent("cells/" + name))
        }
        return out
    }

    @Test("Grid enumeration: last axis fastest, stable zero-padded ids, seeds independent of order")
    func grid() {
        let cells = SweepSpec.grid([("a", [1, 2]), ("b", ["x", "y", "z"])])
        #expect(cells.count == 6)
        #expect(cells[1]["a"] == 1 && cells[1]["b"] == "y")
        #expect(cells[3]["a"] == 2 && cells[3]["b"] == "x")
        let spec = SweepSpec(name: "g", cells: cells)
        #expect(spec.cellID(3) == "c0003")
        let s1 = SweepSpec.cellSeed(runSeed: 1, params: ["a": 1, "b": "y"], replicate: 0)
        #expect(s1 == SweepSpec.cellSeed(runSeed: 1, params: ["b": "y", "a": 1], replicate: 0))  // key order irrelevant
        #expect(s1 != SweepSpec.cellSeed(runSeed: 1, params: ["a": 1, "b": "y"], replicate: 1))
        #expect(s1 != SweepSpec.cellSeed(runSeed: 2, params: ["a": 1, "b": "y"], replicate: 0))
        #expect(SweepSpec.grid([]).isEmpty)
    }

    @Test("--jobs 1 and --jobs 2 give byte-identical result files; summary has one row per cell")
    func jobsDeterminism() throws {
        let a = try tempDir("j1"), b = try tempDir("j2")
        defer {
            try? FileManager.default.removeItem(at: a)
            try? FileManager.default.removeItem(at: b)
        }
        #expect(try SweepRunner(spec: Self.spec(), root: a, seed: 7, jobs: 1).run { _ in TrainingWorker() })
        #expect(try SweepRunner(spec: Self.spec(), root: b, seed: 7, jobs: 2).run { _ in TrainingWorker() })
        let fa = try resultFiles(a), fb = try resultFiles(b)
        #expect(fa.keys.sorted() == fb.keys.sorted())
        #expect(fa == fb)
        let csv = try String(contentsOf: a.appendingPathComponent("summary.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n")
        #expect(lines.first == "cell_id,replicate,E,p,final_loss,seed,status,failed_step,failure_reason")
        #expect(lines.count == 7)
        let npz = try Npz.read(contentsOf: a.appendingPathComponent("results.npz"))
        #expect(try npz.array(named: "norms").shape == [6, 3])
        #expect(try npz.array(named: "param_E").asInt64() == [1, 1, 1, 2, 2, 2])
        // The kept replicate has the lowest loss of the two.
        let cell = try JSONValue(contentsOf: a.appendingPathComponent("cells/c0000.json"))
        let losses = cell["replicates"]!.arrayValue!.map { $0["final_loss"]!.doubleValue! }
        #expect(losses[cell["selected"]!.intValue!] == losses.min())
    }

    @Test("A sweep that fails midway keeps its finished cells; --resume completes it to the same bytes")
    func resume() throws {
        let full = try tempDir("full"), broken = try tempDir("broken")
        defer {
            try? FileManager.default.removeItem(at: full)
            try? FileManager.default.removeItem(at: broken)
        }
        try SweepRunner(spec: Self.spec(), root: full, seed: 3).run { _ in TrainingWorker() }
        #expect(throws: SweepError.self) {
            try SweepRunner(spec: Self.spec(), root: broken, seed: 3).run { _ in TrainingWorker(failAt: 3) }
        }
        // The cells that ran before cell 3 in the run's order are kept (the order is spread: see executionOrder).
        let order = Self.spec().executionOrder(Array(0..<6))
        let before = Array(order.prefix { $0 != 3 })
        #expect(!before.isEmpty && before.count < 5, "\(order)")
        let finished = try FileManager.default.contentsOfDirectory(atPath: broken.appendingPathComponent("cells").path)
        #expect(finished.sorted() == before.sorted().map { "c000\($0).json" })
        #expect(!FileManager.default.fileExists(atPath: broken.appendingPathComponent("summary.csv").path))
        // A half-written temporary file left by a kill is not a result, and is cleaned up.
        let leftover = "cells/" + AtomicFile.temporaryName(for: "c0003.json")
        try Data("{\"id\": \"c00".utf8).write(to: broken.appendingPathComponent(leftover))
        // A finished cell's own directory of saved files survives the clean-up.
        try FileManager.default.createDirectory(at: broken.appendingPathComponent("cells/c0000"), withIntermediateDirectories: true)
        try Data("kept".utf8).write(to: broken.appendingPathComponent("cells/c0000/model.npz"))
        // Without --resume the host refuses to mix runs.
        #expect(throws: SweepError.self) {
            try SweepRunner(spec: Self.spec(), root: broken, seed: 3).run { _ in TrainingWorker() }
        }
        // Another seed in the same directory is another sweep.
        #expect(throws: SweepError.self) {
            try SweepRunner(spec: Self.spec(), root: broken, seed: 4, resume: true).run { _ in TrainingWorker() }
        }
        var ranAgain: [Int] = []
        final class CountingWorker: SweepWorker {
            let inner = TrainingWorker()
            var seen: [Int] = []
            func run(params: JSONObject, context: CellContext) throws -> JSONObject {
                seen.append(context.index)
                return try inner.run(params: params, context: context)
            }
        }
        let counter = CountingWorker()
        nonisolated(unsafe) let shared = counter
        #expect(try SweepRunner(spec: Self.spec(), root: broken, seed: 3, resume: true).run { _ in shared })
        ranAgain = Set(counter.seen).sorted()
        #expect(ranAgain == Set(0..<6).subtracting(before).sorted())
        #expect(!FileManager.default.fileExists(atPath: broken.appendingPathComponent(leftover).path))
        #expect(FileManager.default.fileExists(atPath: broken.appendingPathComponent("cells/c0000/model.npz").path))
        #expect(try resultFiles(full) == resultFiles(broken))
    }

    @Test("The union of all shards, merged, equals the full sweep")
    func shardsAndMerge() throws {
        let full = try tempDir("full"), s0 = try tempDir("s0"), s1 = try tempDir("s1"), s2 = try tempDir("s2"),
            merged = try tempDir("merged")
        defer { for d in [full, s0, s1, s2, merged] { try? FileManager.default.removeItem(at: d) } }
        try SweepRunner(spec: Self.spec(), root: full, seed: 11).run { _ in TrainingWorker() }
        for (i, dir) in [s0, s1, s2].enumerated() {
            let complete = try SweepRunner(spec: Self.spec(), root: dir, seed: 11, shard: (i, 3)).run { _ in TrainingWorker() }
            #expect(!complete)
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("cells").path)
            #expect(names.sorted() == [i, i + 3].map { "c000\($0).json" })
        }
        let partial = try SweepSummary.merge(destination: merged, sources: [s0, s1])
        #expect(partial.missing == ["c0002", "c0005"])
        let result = try SweepSummary.merge(destination: merged, sources: [s2])
        #expect(result.missing.isEmpty)
        #expect(try resultFiles(full) == resultFiles(merged))
        // Merging a different sweep is refused.
        let other = try tempDir("other")
        defer { try? FileManager.default.removeItem(at: other) }
        try SweepRunner(spec: Self.spec(replicates: 1), root: other, seed: 11).run { _ in TrainingWorker() }
        #expect(throws: SweepError.self) { _ = try SweepSummary.merge(destination: merged, sources: [other]) }
    }

    @Test("Bad sweep declarations are refused with a clear message")
    func badSpecs() throws {
        let dir = try tempDir("bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: SweepError.self) { _ = try SweepRunner(spec: SweepSpec(name: "e", cells: []), root: dir, seed: 0) }
        #expect(throws: SweepError.self) { _ = try SweepRunner(spec: Self.spec(replicates: 0), root: dir, seed: 0) }
        #expect(throws: SweepError.self) { _ = try SweepRunner(spec: Self.spec(), root: dir, seed: 0, shard: (2, 2)) }
        #expect(throws: SweepError.self) { _ = try SweepRunner(spec: Self.spec(), root: dir, seed: 0, jobs: 0) }
    }
}
