import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// Every binding exercised from Lua, with its error messages for bad arguments.
@Suite struct BindingsTests {

    /// Runs `source` as a top-level script named `test.lua` in a fresh output directory.
    func run(_ source: String, params: [(String, String)] = [], seed: UInt64 = 0) throws -> ScriptTestResult {
        try ScriptTestResult.run(source, params: params, seed: seed)
    }

    /// Runs `source` and returns the error message it ends with (fails the test if it succeeds).
    func failure(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            let r = try run(source)
            Issue.record("expected an error, got result \(r.result)", sourceLocation: sourceLocation)
            return ""
        } catch let e as ScriptRunError {
            return e.description
        } catch {
            Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
            return ""
        }
    }

    @Test("Models: creation, fields, tostring, get/set round trip, copy, 1-based indices")
    func models() throws {
        let r = try run("""
            local m = toymoe.model{ n_features = 4, n_hidden = 2, n_experts = 2, n_active_experts = 1, seed = 3 }
            assert(m.n_features == 4 and m.n_hidden == 2 and m.n_experts == 2 and m.n_active_experts == 1)
            assert(m.parameter_count == 2*4*2 + 2*2*4)
            local W = m:get("W")
            assert(#W == 2 and #W[1] == 4 and #W[1][1] == 2)
            W[2][3][1] = 0.5
            m:set("W", W)
            assert(m:get("W")[2][3][1] == 0.5)
            assert(m:W(2)[3][1] == 0.5)
            local c = m:copy()
            m:set("b_final", {{1,2,3,4},{5,6,7,8}})
            assert(c:get("b_final")[1][1] ~= 1)
            assert(m:get("b_final")[2][4] == 8)
            return { s = tostring(m), g = #m:get("gate"), flat = m:get("gate")[1][1] }
            """)
        #expect(r.result["s"]?.stringValue == "Model(MoE, n_features=4, n_hidden=2, n_experts=2, n_active_experts=1, parameters=32)")
        #expect(r.result["g"]?.intValue == 2)
    }

    @Test("Same seed → identical model from Lua and from Swift; implicit seeds derive from the run seed")
    func seeds() throws {
        let r = try run("""
            local a = toymoe.model{ n_features = 3, n_hidden = 1, seed = 9 }
            local b = toymoe.model{ n_features = 3, n_hidden = 1 }
            local c = toymoe.model{ n_features = 3, n_hidden = 1 }
            return { a = a:get("W")[1][1][1], b = b:get("W")[1][1][1], c = c:get("W")[1][1][1],
                     r1 = math.random(), r2 = math.random(1, 100) }
            """, seed: 5)
        let swift = try Model(config: .dense(featureCount: 3, hiddenCount: 1), seed: 9)
        #expect(r.result["a"]?.doubleValue == Double(swift.values(.W)[0]))
        #expect(r.result["b"] != r.result["c"])
        let again = try run("""
            local a = toymoe.model{ n_features = 3, n_hidden = 1, seed = 9 }
            local b = toymoe.model{ n_features = 3, n_hidden = 1 }
            local c = toymoe.model{ n_features = 3, n_hidden = 1 }
            return { a = a:get("W")[1][1][1], b = b:get("W")[1][1][1], c = c:get("W")[1][1][1],
                     r1 = math.random(), r2 = math.random(1, 100) }
            """, seed: 5)
        #expect(again.result == r.result)
        let other = try run("return { r1 = math.random(), b = toymoe.model{ n_features = 3, n_hidden = 1 }:get('W')[1][1][1] }", seed: 6)
        #expect(other.result["r1"] != r.result["r1"])
    }

    @Test("Initializations: built-in schemes, Lua functions per entry, K-hot errors")
    func initializations() throws {
        let r = try run("""
            local m = toymoe.model{ n_features = 6, n_hidden = 1, n_experts = 3,
                                    init = { gate = "ordered_khot", b_final = "zero" } }
            local g = m:get("gate")
            assert(g[1][1] == 1 and g[1][2] == 1 and g[1][3] == 0 and g[3][6] == 1)
            assert(m:get("b_final")[2][5] == 0)
            m:init("W", function(e, i, j) return e * 100 + i * 10 + j end)
            assert(m:get("W")[3][6][1] == 361)
            m:init("gate", function(e, i) return (e == i) and 1 or 0 end)
            assert(m:get("gate")[2][2] == 1 and m:get("gate")[2][3] == 0)
            m:init("gate", "random_khot")
            local ones = 0
            for e = 1, 3 do for i = 1, 6 do ones = ones + m:get("gate")[e][i] end end
            m:init("W", { normal = 0 })
            assert(m:get("W")[1][1][1] == 0)
            local d = toymoe.model{ n_features = 4, n_hidden = 1, n_experts = 2, init = { gate = "diagonal" } }
            return { ones = ones, diag = d:get("gate")[2][2] }
            """)
        #expect(r.result["ones"]?.doubleValue == 6)
        #expect(r.result["diag"]?.doubleValue == 1)
        let e = failure("toymoe.model{ n_features = 5, n_hidden = 1, n_experts = 3, init = { gate = 'random_khot' } }")
        #expect(e.contains("test.lua:1:") && e.contains("divide"))
        // An error inside the script's own init function keeps its own location, once.
        let e3 = failure("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\nm:init('W', function()\n  error('boom')\nend)")
        #expect(e3.hasPrefix("test.lua:3: boom"), "\(e3)")
        #expect(!e3.contains("test.lua:3: test.lua:3:"), "\(e3)")
        let e2 = failure("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\nm:init('W', function() return 'x' end)")
        #expect(e2.contains("test.lua:2:") && e2.contains("init") && e2.contains("number"))
    }

    @Test("Helpers, per-tensor init functions, data:sample, forward and route")
    func helpers() throws {
        let r = try run("""
            local g = toymoe.geometric(0.5, 4)
            assert(g[1] == 1 and g[4] == 0.125)
            local pg = toymoe.permuted_geometric(0.5, 4)
            table.sort(pg, function(a, b) return a > b end)
            assert(pg[1] == 1 and pg[4] == 0.125)
            local l = toymoe.linspace(0, 1, 5)
            local gs = toymoe.geomspace(1, 100, 3)
            local rg = toymoe.range(0.1, 0.9, 0.2)
            local m = toymoe.model{ n_features = 3, n_hidden = 1, n_experts = 2, n_active_experts = 2 }
            m:init("W", { tensor = function(E, n, h) 
              local t = {}
              for e = 1, E do t[e] = {} for i = 1, n do t[e][i] = { e == i and 1 or 0 } end end
              return t
            end })
            m:init("b_final", "zero")
            m:init("gate", "zero")
            local y = m:forward({1, 0, 0})          -- expert 1 reconstructs feature 1 (gate ½ each)
            local batch = m:forward({{1, 0, 0}, {0, 1, 0}})
            local route = m:route({0, 0, 0})
            local d = toymoe.data{ feature_probability = {0, 1, 0.5} }
            local xs = d:sample(4)
            return { l = l, gs = gs, rg = rg, y1 = y[1], b2 = batch[2][2], sel = route.selected, gates = route.gates,
                     nx = #xs, x1 = xs[1][1], x2 = xs[1][2] > 0, dn = d.n_features }
            """)
        func numbers(_ key: String) -> [Double] { r.result[key]?.arrayValue?.compactMap { $0.doubleValue } ?? [] }
        func close(_ a: [Double], _ b: [Double]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-9 } }
        #expect(numbers("l") == [0, 0.25, 0.5, 0.75, 1])
        #expect(close(numbers("gs"), [1, 10, 100]))
        #expect(numbers("rg") == [0.1, 0.3, 0.5, 0.7, 0.9])  // exact decimals, not 0.30000000000000004
        #expect(r.result["y1"]?.doubleValue == 0.5)
        #expect(r.result["b2"]?.doubleValue == 0.5)
        #expect(r.result["sel"] == [1, 2])  // ties: lowest indices first, 1-based
        #expect(r.result["gates"] == [0.5, 0.5])
        #expect(r.result["nx"]?.intValue == 4 && r.result["x1"]?.doubleValue == 0 && r.result["x2"]?.boolValue == true)
        #expect(r.result["dn"]?.intValue == 3)
    }

    @Test("Training: result fields, history, hooks (with stop), early stop, divergence")
    func training() throws {
        let r = try run("""
            local m = toymoe.model{ n_features = 5, n_hidden = 2 }
            local d = toymoe.data{ feature_probability = 0.3, importance = toymoe.geometric(0.9, 5) }
            local seen = {}
            local r = toymoe.train(m, { data = d, steps = 200, batch_size = 64, history_every = 10, hook_every = 50,
              hook = function(step, loss, lr, model)
                seen[#seen + 1] = step
                assert(model.n_features == 5 and lr == 1e-3 and loss > 0)
                if step >= 101 then return false end
              end })
            assert(r.stopped_early and r.steps == 101)
            local r2 = toymoe.train(m, { data = d, steps = 100, batch_size = 32, lr = 1e9 })
            local r3 = toymoe.train(toymoe.model{ n_features = 2, n_hidden = 1, n_experts = 3 },
              { data = toymoe.data{ n_features = 2, feature_probability = 0.5 }, steps = 50, batch_size = 100,
                early_stop = { drop_loss = 1e9, stop_loss = 1e9 } })
            return { seen = seen, nhist = #r.history.loss, first = r.history.step[1],
                     diverged = r2.diverged and r2.diverged.step or -1, es = r3.steps }
            """)
        #expect(r.result["seen"] == [1, 51, 101])
        #expect(r.result["first"]?.intValue == 1)
        #expect(r.result["nhist"]?.intValue == 11)  // steps 1, 11, ..., 101 (every 10; the stop step is one of them)
        #expect((r.result["diverged"]?.intValue ?? -1) >= 1)
        #expect(r.result["es"]?.intValue == 1)
    }

    @Test("Metrics from Lua agree with the engine's")
    func metrics() throws {
        let r = try run("""
            local m = toymoe.model{ n_features = 3, n_hidden = 2, n_experts = 2 }
            m:set("W", { {{1,0},{0,1},{0,0}}, {{1,0},{-1,0},{0,0.7}} })
            local M = toymoe.metrics
            local d = toymoe.data{ n_features = 3, feature_probability = 0.5 }
            return {
              norms = M.feature_norms(m, 2), q = M.polysemanticity(m, 1), D = M.feature_dimensionality(m, 2),
              s = M.superposition_score({{1,0},{0.8,0}}), dstar = M.dimensions_per_feature(m, 1),
              g = M.geometry(m, 2).antipodal_pairs, cls = M.classify_feature(m, 2, 3),
              fpd = M.features_per_dimension(m, { data = d }),
              glob = M.global_dimensionality(m, { data = d, weighting = "specialization" }).features_represented,
              usage = #M.expert_usage(m, { data = d, batch = 256 }),
              rs = #M.router_statistics(m, { data = d, samples = 100 }).mean_probabilities_dense,
              map = #M.routing_map(m, { grid = 5 }).experts,
              gram = M.gram(m, 2)[1][2],
            }
            """)
        func numbers(_ key: String) -> [Double] { r.result[key]?.arrayValue?.compactMap { $0.doubleValue } ?? [] }
        func close(_ a: [Double], _ b: [Double]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 } }
        #expect(close(numbers("norms"), [1, 1, 0.7]))  // 0.7 stored as Float32
        #expect(close(numbers("q"), [0, 0, 0]))
        #expect(close(numbers("D"), [0.5, 0.5, 1]))
        #expect(r.result["dstar"]?.doubleValue == 1)
        #expect(r.result["g"] == [[1, 2]])
        #expect(r.result["cls"]?.stringValue == "monosemantic")
        #expect(r.result["usage"]?.intValue == 2)
        #expect(r.result["rs"]?.intValue == 2)
        #expect(r.result["map"]?.intValue == 25)
        #expect(r.result["gram"]?.doubleValue == -1)
        let s = r.result["s"]!.arrayValue!.map { $0.doubleValue! }
        // s_i includes j = i: row 1 gives 1 + 0.8² = 1.64; row 2's unit vector is also e1, so it is 1.64 too.
        #expect(abs(s[0] - 1.64) < 1e-9 && abs(s[1] - 1.64) < 1e-9)
    }

    @Test("Files: save/load NPY, NPZ, JSON and models inside the output directory only")
    func files() throws {
        let r = try run("""
            toymoe.save_npy("a.npy", {{1, 2, 3}, {4, 5, 6}})
            local a = toymoe.load_npy("a.npy")
            assert(a[2][3] == 6)
            toymoe.save_npz("b.npz", { x = {1, 2}, y = {{0.5}} })
            local b = toymoe.load_npz("b.npz")
            assert(b.x[2] == 2 and b.y[1][1] == 0.5)
            toymoe.save_json("c.json", { k = "v", list = {1, 2} })
            assert(toymoe.load_json("c.json").list[2] == 2)
            local m = toymoe.model{ n_features = 3, n_hidden = 1 }
            m:save("sub/m.npz")
            local m2 = toymoe.load_model("sub/m.npz")
            assert(m2:get("W")[1][2][1] == m:get("W")[1][2][1])
            return { ok = true }
            """)
        let a = try NpyArray(contentsOf: r.directory.appendingPathComponent("a.npy"))
        #expect(a.shape == [2, 3])
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("sub/m.npz").path))
        for bad in ["/etc/passwd", "../x.npy", "a/../../x.npy"] {
            let e = failure("toymoe.save_npy('\(bad)', {1})")
            #expect(e.contains("test.lua:1:") && e.contains("toymoe.save_npy") && e.contains("output directory"), "\(e)")
        }
        let e = failure("toymoe.load_npy('missing.npy')")
        #expect(e.contains("missing.npy"))
    }

    @Test("Option tables are validated: unknown keys (with a suggestion), types, NaN, negatives, k > E")
    func validation() throws {
        let cases: [(String, [String])] = [
            ("toymoe.model{ n_features = 4, n_hiden = 2 }", ["toymoe.model", "n_hiden", "did you mean 'n_hidden'"]),
            ("toymoe.model{ n_features = -3, n_hidden = 2 }", ["toymoe.model", "n_features", "positive integer", "-3"]),
            ("toymoe.model{ n_features = 4 }", ["toymoe.model", "n_hidden", "required"]),
            ("toymoe.model{ n_features = 'four', n_hidden = 2 }", ["n_features", "integer", "string"]),
            ("toymoe.model{ n_features = 4, n_hidden = 2.5 }", ["n_hidden", "integer"]),
            ("toymoe.model{ n_features = 4, n_hidden = 2, n_experts = 2, n_active_experts = 3 }", ["n_active_experts", "n_experts"]),
            ("toymoe.model(5)", ["toymoe.model", "table"]),
            ("toymoe.data{ feature_probability = 0/0, n_features = 2 }", ["toymoe.data", "feature_probability", "nan"]),
            ("toymoe.data{ feature_probability = 1.5, n_features = 2 }", ["feature_probability", "[0, 1]"]),
            ("toymoe.data{ feature_probability = {0.5, 0.5}, importance = {1, 2, 3} }", ["importance", "2"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\ntoymoe.train(m, { data = toymoe.data{ n_features = 2, feature_probability = 1 }, stpes = 3 })", ["toymoe.train", "stpes", "did you mean 'steps'"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\ntoymoe.train(m, { steps = 3 })", ["toymoe.train", "data"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\ntoymoe.train(m, { data = toymoe.data{ n_features = 3, feature_probability = 1 } })", ["toymoe.train", "n_features"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\ntoymoe.train(m, { data = toymoe.data{ n_features = 2, feature_probability = 1 }, lr = -1 })", ["lr"]),
            ("toymoe.train({}, {})", ["toymoe.train", "model"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\nm:set('W', {{{1}}})", ["set", "W", "2"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\nm:get('V')", ["get", "'W', 'b_final' or 'gate'"]),
            ("local m = toymoe.model{ n_features = 2, n_hidden = 1 }\ntoymoe.metrics.feature_norms(m, 2)", ["feature_norms", "expert", "1"]),
            ("toymoe.sweep{ grid = {}, run = function() end }", ["toymoe.sweep", "no cells"]),
            ("toymoe.sweep{ grid = { a = {1} } }", ["toymoe.sweep", "run"]),
            ("toymoe.run_script{ script = '/etc/passwd.lua', out = 'x' }", ["toymoe.run_script", "script", "relative"]),
            ("toymoe.run_script{ script = '../../../../etc/x.lua', out = 'x' }", ["toymoe.run_script", "outside"]),
            ("toymoe.run_script{ script = 'nope.lua', out = 'x' }", ["toymoe.run_script", "does not exist"]),
        ]
        for (source, needles) in cases {
            let e = failure(source)
            for needle in needles {
                #expect(e.contains(needle), "for `\(source)`: expected '\(needle)' in: \(e)")
            }
            #expect(e.hasPrefix("test.lua:"), "no file:line in: \(e)")
        }
    }

    @Test("Params from the command line; print is captured; a returned table becomes result.json")
    func paramsAndOutput() throws {
        let r = try run("""
            print("hello", 1, true)
            return { steps = toymoe.params.steps, scale = toymoe.params.scale, d = toymoe.param("missing", 7),
                     v = toymoe.version }
            """, params: [("steps", "2000"), ("scale", "quick")])
        #expect(r.result["steps"]?.intValue == 2000)
        #expect(r.result["scale"]?.stringValue == "quick")
        #expect(r.result["d"]?.intValue == 7)
        #expect(r.stdout == "hello\t1\ttrue\n")
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("result.json").path))
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("provenance.json").path))
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("script.lua").path))
    }
}
