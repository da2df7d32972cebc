import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// toymoe.train_many: byte-identical to a loop of toymoe.train (same seeds, same models), and its errors.
@Suite struct TrainManyTests {

    func failure(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            let r = try ScriptTestResult.run(source)
            Issue.record("expected an error, got result \(r.result)", sourceLocation: sourceLocation)
            return ""
        } catch let e as ScriptRunError {
            return e.description
        } catch {
            Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
            return ""
        }
    }

    /// A script that builds 11 models and per-model data, trains them with `train` (a Lua expression using `ms`,
    /// `ds` and `opts`, returning the list of results), and returns every parameter and result field.
    static func script(_ train: String, sharedData: Bool) -> String {
        """
        local ms, ds = {}, {}
        for i = 1, 11 do
          ms[i] = toymoe.model{ n_features = 3, n_hidden = 1, n_experts = 3 }
          ds[i] = toymoe.data{ n_features = 3, feature_probability = 0.3 + 0.05 * (i % 4), importance = { 1, 1, 0.2 * i } }
        end
        local opts = { steps = 60, batch_size = 48, loss = "mean", load_balancing = true, history_every = 7,
                       data = \(sharedData ? "ds[1]" : "ds") }
        local rs = \(train)
        local out = {}
        for i = 1, #ms do
          local r = rs[i]
          out[i] = { W = ms[i]:get("W"), b = ms[i]:get("b_final"), g = ms[i]:get("gate"), loss = r.final_loss,
                     recon = r.final_reconstruction_loss, lb = r.final_load_balancing_loss, steps = r.steps,
                     hs = r.history.step, hl = r.history.loss, early = r.stopped_early }
        end
        return { models = out }
        """
    }

    static let loop = """
        (function()
          local rs = {}
          for i = 1, #ms do
            local o = {}
            for k, v in pairs(opts) do o[k] = v end
            if type(opts.data) == "table" and #opts.data > 0 then o.data = opts.data[i] end
            rs[i] = toymoe.train(ms[i], o)
          end
          return rs
        end)()
        """

    @Test("train_many equals a loop of toymoe.train byte for byte (per-model data list and one shared data)")
    func matchesSequentialTraining() throws {
        for shared in [false, true] {
            let one = try ScriptTestResult.run(Self.script(Self.loop, sharedData: shared), seed: 5)
            let many = try ScriptTestResult.run(Self.script("toymoe.train_many(ms, opts)", sharedData: shared), seed: 5)
            let a = try #require(one.result["models"]?.arrayValue), b = try #require(many.result["models"]?.arrayValue)
            #expect(a.count == 11 && b.count == 11)
            for i in a.indices {
                #expect(a[i] == b[i], "shared=\(shared) model \(i + 1): \(a[i]) vs \(b[i])")
            }
            // The models really trained and differ from each other.
            #expect(a[0]["W"] != a[1]["W"])
            #expect(a[0]["steps"]?.intValue == 60)
        }
    }

    @Test("train_many errors name the function and the argument")
    func errors() {
        let head = """
            local a = toymoe.model{ n_features = 2, n_hidden = 1, n_experts = 2 }
            local b = toymoe.model{ n_features = 3, n_hidden = 1, n_experts = 2 }
            local d = toymoe.data{ n_features = 2, feature_probability = 0.5 }

            """
        let cases: [(String, [String])] = [
            ("toymoe.train_many({ a, b }, { data = d })", ["toymoe.train_many", "models", "same shape"]),
            ("toymoe.train_many({ a, a }, { data = d })", ["toymoe.train_many", "more than once"]),
            ("toymoe.train_many({ a, 5 }, { data = d })", ["toymoe.train_many", "models", "element 2"]),
            ("toymoe.train_many(a, { data = d })", ["toymoe.train_many", "models"]),
            ("toymoe.train_many({ a }, { data = { d, d } })", ["toymoe.train_many", "data", "one data distribution per model"]),
            ("toymoe.train_many({ a }, { steps = 3 })", ["toymoe.train_many", "data", "required"]),
            ("toymoe.train_many({ a }, { data = d, hook = function() end })", ["toymoe.train_many", "hook", "not supported"]),
            ("toymoe.train_many({ a }, { data = d, stpes = 3 })", ["toymoe.train_many", "stpes", "did you mean 'steps'"]),
            ("toymoe.train_many({ a }, { data = d, threads = 0 })", ["toymoe.train_many", "threads"]),
            ("toymoe.train_many({ b }, { data = d })", ["toymoe.train_many", "data", "n_features"]),
            ("toymoe.train_many({ a }, { data = { d, 7 } })", ["toymoe.train_many"]),
        ]
        for (source, needles) in cases {
            let e = failure(head + source)
            for needle in needles {
                #expect(e.contains(needle), "for `\(source)`: expected '\(needle)' in: \(e)")
            }
        }
    }
}
