import Foundation
import Testing
import ToyMoE
import ToyMoEIO

/// The outputs layer: models and results into files numpy loads.
@Suite struct EngineExportTests {

    func trainedModel() throws -> (Model, TrainingResult) {
        let model = try Model(config: ModelConfig(featureCount: 5, hiddenCount: 2, expertCount: 3, activeExpertCount: 2), seed: 4)
        var cfg = TrainingConfig()
        cfg.steps = 50
        cfg.batchSize = 32
        cfg.historyStride = 10
        let result = try Trainer(model: model, data: .uniform(featureCount: 5, probability: 0.3), config: cfg, seed: 4).run()
        return (model, result)
    }

    @Test("Model NPZ round trip: W, b_final, gate with the notebooks' shapes; reproducible bytes")
    func modelRoundTrip() throws {
        let dir = try makeTemporaryDirectory("toymoe-export")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (model, _) = try trainedModel()
        let url = dir.appendingPathComponent("model.npz")
        try model.writeNPZ(to: url)
        let archive = try Npz.read(contentsOf: url)
        #expect(archive.names == ["W", "b_final", "gate"])
        #expect(try archive.array(named: "W").shape == [3, 5, 2])
        #expect(try archive.array(named: "gate").shape == [3, 5])
        let copy = try Model(config: model.config, initialization: Initialization(W: .zero, bFinal: .zero, gate: .zero))
        try copy.loadNPZ(from: url)
        #expect(Array(copy.parameters) == Array(model.parameters))
        let again = dir.appendingPathComponent("again.npz")
        try copy.writeNPZ(to: again)
        #expect(try Data(contentsOf: url) == Data(contentsOf: again))
        // A model of another shape refuses the file with a clear error.
        let other = try Model(config: .dense(featureCount: 5, hiddenCount: 2))
        #expect(throws: ToyMoEError.self) { try other.loadNPZ(from: url) }
    }

    @Test("numpy loads a trained model and its loss history (skipped without numpy)")
    func numpyLoadsModel() throws {
        guard numpyAvailable else {
            print("skipped: python3 with numpy not available")
            return
        }
        let dir = try makeTemporaryDirectory("toymoe-export-np")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (model, result) = try trainedModel()
        try model.writeNPZ(to: dir.appendingPathComponent("model.npz"))
        try result.historyArray().write(to: dir.appendingPathComponent("history.npy"))
        let script = """
            import numpy as np
            m = np.load("model.npz")
            h = np.load("history.npy")
            print(m["W"].shape, m["W"].dtype, m["b_final"].shape, m["gate"].shape)
            print(h.shape, int(h[-1, 0]))
            print(repr(float(m["W"][1, 3, 1])))
            """
        let out = try runPython(script, in: dir)
        #expect(out.status == 0, "python failed: \(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        #expect(lines[0] == "(3, 5, 2) float32 (3, 5) (3, 5)")
        #expect(lines[1] == "(6, 2) 49")
        #expect(Float(lines[2]) == model.expertWeights(1)[3 * 2 + 1])
    }

    @Test("JSON of configs and metrics: paper key names, shortest floats, non-finite as null")
    func jsonExports() throws {
        let (model, result) = try trainedModel()
        let data = DataDistribution.uniform(featureCount: 5, probability: 0.1)
        let text = try data.toJSON().serialized(options: .compact)
        #expect(text.contains("\"feature_probability\":[0.1,0.1,0.1,0.1,0.1]"))
        let cfg = try model.config.toJSON().serialized(options: .compact)
        #expect(cfg == #"{"n_features":5,"n_hidden":2,"n_experts":3,"n_active_experts":2,"tie_break":"lowest"}"#)
        let r = result.toJSON()
        #expect(r["steps_run"]?.intValue == 50)
        #expect(r["diverged"]?.isNull == true)
        let geometry = Metrics.geometryJSON(model)
        #expect(geometry.arrayValue?.count == 3)
        #expect(geometry[0]?["feature_norms"]?.arrayValue?.count == 5)
        // NaN/±Inf use the one JSON encoding of non-finite numbers, never null.
        #expect(JSONValue.finite(.infinity) == .object(["non_finite": "inf"]))
        #expect(JSONValue.finite(-.infinity) == .object(["non_finite": "-inf"]))
        #expect(JSONValue.finite(.nan) == .object(["non_finite": "nan"]))
        #expect(JSONValue.float(.infinity) == .object(["non_finite": "inf"]))
    }
}
