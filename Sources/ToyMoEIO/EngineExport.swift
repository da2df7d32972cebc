import Foundation
import ToyMoE

// Turning engine objects into files: a model into an NPZ with the notebooks' tensor names, metrics and configs into
// JSON. This is the "outputs" layer: it depends on the engine, never the other way round.

extension Model {
    /// The parameters as named arrays, in the notebooks' names and shapes: `W` (E, n, m), `b_final` (E, n),
    /// `gate` (E, n), all float32.
    public func namedArrays() throws -> [(String, NpyArray)] {
        try ParameterTensor.allCases.map { t in
            (t.rawValue, try NpyArray(float32: values(t), shape: t.shape(config)))
        }
    }

    /// Writes `W`, `b_final` and `gate` to an NPZ (atomically; byte-reproducible).
    public func writeNPZ(to url: URL, extra: [(String, NpyArray)] = []) throws {
        try Npz.write(try namedArrays() + extra, to: url)
    }

    /// Loads `W`, `b_final` and `gate` from an NPZ written by `writeNPZ` (or numpy with those names and shapes).
    /// A NaN or ±Inf value (the saved model of a diverged training) is refused unless `allowNonFinite`.
    public func loadNPZ(from url: URL, allowNonFinite: Bool = false) throws {
        let archive = try Npz.read(contentsOf: url)
        for t in ParameterTensor.allCases {
            let a = try archive.array(named: t.rawValue)
            let shape = t.shape(config)
            guard a.shape == shape else {
                throw ToyMoEError(
                    "Model.load", t.rawValue, "expected shape \(shape) in \(url.lastPathComponent), found \(a.shape)")
            }
            let values = try a.asFloat32()
            if !allowNonFinite, let bad = values.firstIndex(where: { !$0.isFinite }) {
                let count = values.count(where: { !$0.isFinite })
                throw ToyMoEError(
                    "Model.load", t.rawValue,
                    "\(url.lastPathComponent) holds \(count) non-finite value(s) (the first, \(values[bad]), at flat index \(bad)): the model of a diverged training; load it with non-finite values allowed to inspect it")
            }
            try setValues(t, values, allowNonFinite: allowNonFinite)
        }
    }
}

extension ModelConfig {
    public func toJSON() -> JSONValue {
        .object(JSONObject(userKeys.map { key, value in
            (key, Int(value).map(JSONValue.int) ?? .string(value))
        }))
    }
}

extension DataDistribution {
    public func toJSON() -> JSONValue {
        var o = JSONObject()
        o["feature_probability"] = .floats(featureProbability)
        o["importance"] = .floats(importance)
        if let s = inputScale { o["input_scale"] = .floats(s) }
        return .object(o)
    }
}

extension TrainingConfig {
    public func toJSON() -> JSONValue {
        var o = JSONObject()
        o["steps"] = .int(steps)
        o["batch_size"] = .int(batchSize)
        o["lr"] = .number(learningRate)
        o["lr_schedule"] = .string(schedule.rawValue)
        o["beta1"] = .number(beta1)
        o["beta2"] = .number(beta2)
        o["eps"] = .number(epsilon)
        o["weight_decay"] = .number(weightDecay)
        o["loss"] = .string(lossNormalization.rawValue)
        o["load_balancing_loss"] = .bool(loadBalancing)
        o["load_balancing_alpha"] = .number(loadBalancingAlpha)
        if let es = earlyStop {
            o["early_stop"] = .object(["drop_loss": .number(es.dropLoss), "stop_loss": .number(es.stopLoss), "drop_factor": .number(es.dropFactor)])
        } else {
            o["early_stop"] = .null
        }
        o["history_every"] = .int(historyStride)
        return .object(o)
    }
}

extension TrainingResult {
    public func toJSON() -> JSONValue {
        var o = JSONObject()
        o["final_loss"] = .finite(finalLoss)
        o["final_reconstruction_loss"] = .finite(finalReconstructionLoss)
        o["final_load_balancing_loss"] = .finite(finalLoadBalancingLoss)
        o["steps_run"] = .int(stepsRun)
        o["stopped_early"] = .bool(stoppedEarly)
        // Files are 0-based like numpy (the Lua API is 1-based): the key says so, so nobody has to guess.
        // `zero_based_step` is the index of the step whose loss was NaN/±Inf; steps_run = zero_based_step + 1.
        if let d = divergence {
            o["diverged"] = .object(["zero_based_step": .int(d.step), "reason": .string(d.reason)])
        } else {
            o["diverged"] = .null
        }
        // No wall time here: this is a result, the same bytes for the same seed; `toymoe train` records the time in
        // provenance.json (`extra.training_seconds`) beside the run's other timings.
        return .object(o)
    }

    /// The loss history as an (N, 2) float64 array of (step, loss).
    public func historyArray() throws -> NpyArray {
        var flat: [Double] = []
        flat.reserveCapacity(history.count * 2)
        for (s, l) in zip(historySteps, history) {
            flat.append(Double(s))
            flat.append(l)
        }
        return try NpyArray(float64: flat, shape: [history.count, 2])
    }
}

extension JSONValue {
    /// JSON has no NaN or Infinity. Every JSON file toymoe writes stores them as `{"non_finite": "nan"}`,
    /// `{"non_finite": "inf"}` or `{"non_finite": "-inf"}` (never null, which would lose which one it was); the
    /// tool's readers (`load_json`, the Python loader) turn them back into numbers.
    public static func nonFinite(_ v: Double) -> JSONValue {
        .object(["non_finite": .string(v.isNaN ? "nan" : v > 0 ? "inf" : "-inf")])
    }
    /// A number, or its `nonFinite` encoding when it is NaN or ±Inf.
    public static func finite(_ v: Double) -> JSONValue { v.isFinite ? .number(v) : nonFinite(v) }
    public static func numbers(_ v: [Double]) -> JSONValue { .array(v.map { finite($0) }) }
    /// A Float32 as the shortest decimal that reads back to it (0.1 rather than 0.10000000149011612).
    public static func float(_ v: Float) -> JSONValue { v.isFinite ? .number(Double(v.description) ?? Double(v)) : nonFinite(Double(v)) }
    public static func floats(_ v: [Float]) -> JSONValue { .array(v.map { float($0) }) }
}

extension Metrics {
    /// Per-expert geometry of a model as JSON: norms, q, s, D_i, FPD and the Fig. 1 summary (represented,
    /// dedicated, antipodal pairs).
    public static func geometryJSON(_ model: Model) -> JSONValue {
        let experts = model.expertMatrices()
        return .array(experts.enumerated().map { e, W in
            let summary = geometrySummary(W)
            var o = JSONObject()
            o["expert"] = .int(e)
            o["feature_norms"] = .numbers(featureNorms(W))
            o["polysemanticity"] = .numbers(polysemanticity(W))
            o["superposition_score"] = .numbers(superpositionScore(W))
            o["feature_dimensionality"] = .numbers(featureDimensionality(W))
            o["features_per_dimension"] = .finite(summary.featuresPerDimension)
            o["represented_features"] = .array(summary.representedFeatures.map { .int($0) })
            o["dedicated_features"] = .array(summary.dedicatedFeatures.map { .int($0) })
            o["antipodal_pairs"] = .array(summary.antipodalPairs.map { .array([.int($0.first), .int($0.second)]) })
            o["features_represented"] = .int(summary.representedCount)
            o["dedicated"] = .int(summary.dedicatedCount)
            o["antipodal_pair_count"] = .int(summary.antipodalPairCount)
            return .object(o)
        })
    }
}
