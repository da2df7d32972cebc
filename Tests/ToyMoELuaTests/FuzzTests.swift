import Foundation
import Testing
import ToyMoE
@testable import ToyMoELua

/// A seeded fuzzer of the binding surface: scripts of random calls with random arguments (numbers including NaN,
/// ±Inf, negative and huge ones, strings, nested and ragged tables, functions, models, nil), each under `pcall`,
/// run by the `toymoe` executable in a child process so that a trap shows as a signal instead of killing the tests.
@Suite(.serialized) struct FuzzTests {

    /// A deterministic generator of Lua source.
    struct Generator {
        var rng: RandomStream
        /// Results of earlier calls live in `R[1...16]`, models in `M[1...6]`, distributions in `D[1...3]`.
        init(seed: UInt64, script: Int) { rng = RandomStream(seed: seed, path: [0x46_555A_5A, UInt64(script)]) }  // "FUZZ"

        mutating func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        mutating func chance(_ p: Double) -> Bool { Double(rng.next() >> 11) / Double(1 << 53) < p }
        mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }

        static let wildNumbers = [
            "0", "-1", "1", "2", "3", "4", "0.5", "1.5", "-0.5", "0/0", "1/0", "-1/0", "2^62", "-2^62", "1e300", "-1e300",
            "math.maxinteger", "math.mininteger", "1e-300", "64", "100", "2^31", "2^53", "-0.0", "7",
        ]
        static let strings = [
            "'x'", "'W'", "'gate'", "'b_final'", "'xavier'", "'zero'", "'diagonal'", "'random_khot'", "'ordered_khot'",
            "'a.npy'", "'a.npz'", "'m.npz'", "'a.json'", "'../x'", "'/etc/x'", "''", "'sub/f.svg'", "'mean'", "'sum'",
            "'lowest'", "'highest'", "'usage'", "'dense'", "'training'", "'float32'", "'int64'", "'int32'", "'a\\0b'",
            "'top_left'", "'viridis'", "'linear'", "'cosine'", "string.rep('y', 300)",
        ]
        static let functions = [
            "function() end", "function() return 0/0 end", "function() error('fuzz boom') end", "function(...) return 1 end",
            "function(e, i, j) return (e or 0) * 0.1 end", "function() return {} end", "function() return false end",
            "function(E, n, m) return {{1}} end",
        ]
        static let allKeys = [
            "n_features", "n_hidden", "n_experts", "n_active_experts", "tie_break", "init", "seed", "feature_probability",
            "importance", "input_scale", "relative_importance", "relative_importance_mode", "data", "steps", "batch_size",
            "lr", "lr_schedule", "loss", "hook", "hook_every", "early_stop", "samples", "weighting", "base", "batch",
            "threshold", "grid", "file", "values", "matrix", "series", "panels", "x", "y", "W", "normal", "xavier", "tensor",
            "overlay_gate", "stpes", "n_feature", "title", "label", "groups", "rows", "header", "figures", "summary",
        ]

        /// Any value, `depth` bounding nested tables.
        mutating func value(_ depth: Int = 0) -> String {
            switch int(10) {
            case 0, 1, 2: return pick(Self.wildNumbers)
            case 3: return pick(Self.strings)
            case 4: return pick(["nil", "true", "false"])
            case 5: return depth > 2 ? "{}" : list(depth + 1)
            case 6: return depth > 2 ? "{}" : options(Self.allKeys, depth + 1)
            case 7: return pick(Self.functions)
            case 8: return "M[\(int(6) + 1)]"
            default: return pick(["R[\(int(16) + 1)]", "D[\(int(3) + 1)]", "R[\(int(16) + 1)]"])
            }
        }

        /// A list, sometimes ragged, sometimes a matrix of numbers.
        mutating func list(_ depth: Int) -> String {
            switch int(4) {
            case 0:  // a numeric vector
                return "{" + (0..<int(6)).map { _ in chance(0.8) ? String(int(5)) + "." + String(int(10)) : pick(Self.wildNumbers) }.joined(separator: ", ") + "}"
            case 1:  // a matrix, sometimes ragged
                let rows = int(5) + 1, cols = int(4) + 1
                return "{" + (0..<rows).map { _ in
                    let c = chance(0.15) ? int(5) : cols
                    return "{" + (0..<c).map { _ in chance(0.9) ? "0." + String(int(10)) : pick(Self.wildNumbers) }.joined(separator: ", ") + "}"
                }.joined(separator: ", ") + "}"
            default:
                return "{" + (0..<int(5)).map { _ in value(depth) }.joined(separator: ", ") + "}"
            }
        }

        /// An option table: keys from `keys` (sometimes an unknown one), values from `good` or anything.
        mutating func options(_ keys: [String], _ depth: Int = 0, good: [String: [String]] = [:]) -> String {
            var parts: [String] = []
            for key in keys where chance(0.6) {
                if let g = good[key], chance(0.75) {
                    parts.append("\(key) = \(pick(g))")
                } else {
                    parts.append("\(key) = \(value(depth))")
                }
            }
            if chance(0.05) { parts.append("\(pick(Self.allKeys)) = \(value(depth))") }
            if chance(0.03) { parts.append("[\(pick(["1", "true", "0.5"]))] = 1") }
            return "{ " + parts.joined(separator: ", ") + " }"
        }

        static let small = ["1", "2", "3", "4", "5", "8"]
        static let modelGood: [String: [String]] = [
            "n_features": small + ["16", "64"], "n_hidden": small + ["32"], "n_experts": ["1", "2", "3", "4"],
            "n_active_experts": ["1", "2"], "tie_break": ["'lowest'", "'highest'"], "seed": ["0", "7", "2^62"],
            "init": ["{ W = 'zero' }", "{ gate = 'ordered_khot' }", "{ gate = 'random_khot', overlay_gate = true }",
                     "{ gate = 'diagonal' }", "{ W = { normal = 0.1 } }", "{ b_final = function(e, i) return i end }",
                     "{ W = { tensor = function(E, n, m) return {} end } }"],
        ]
        static let dataGood: [String: [String]] = [
            "n_features": small, "feature_probability": ["0.5", "0", "1", "{0.5, 0.5}", "{}", "1.5"],
            "importance": ["{1, 0.5}", "toymoe.geometric(0.7, 4)", "{}"], "input_scale": ["{1, 2}"],
            "relative_importance": ["2", "0"], "relative_importance_mode": ["'input_scale'", "'loss_weight'"],
        ]
        /// Training stays tiny by construction: steps ≤ 5, batch ≤ 8 when valid; the bad values are refused first.
        static let trainGood: [String: [String]] = [
            "data": ["D[1]", "D[2]", "D[3]", "{ n_features = 4 }", "{ feature_probability = 0.5 }"],
            "steps": ["0", "1", "3", "5", "-1", "0/0", "1.5", "'x'", "1e300"],
            "batch_size": ["1", "4", "8", "0", "-1", "2^62", "1/0", "2^30"],
            "lr": ["1e-3", "0", "-1", "0/0", "1e300"], "lr_schedule": ["'linear'", "'cosine'", "'constant'", "'x'"],
            "loss": ["'mean'", "'sum'"], "load_balancing": ["true", "false"], "hook_every": ["1", "2", "0", "2^62"],
            "history_every": ["1", "2", "0", "2^62"], "early_stop": ["{ drop_loss = 1 }", "{ drop_factor = 0 }"],
            "hook": ["function() return false end", "function(s, l, lr, m) m:get('W') end", "function() error('hook boom') end"],
        ]
        static let trainKeys = [
            "data", "steps", "batch_size", "lr", "lr_schedule", "beta1", "beta2", "eps", "weight_decay", "loss",
            "load_balancing", "load_balancing_alpha", "early_stop", "history_every", "hook", "hook_every",
        ]
        static let metricGood: [String: [String]] = [
            "data": ["D[1]", "D[2]", "D[3]", "{ n_features = 4 }"], "samples": ["1", "16", "64", "0", "2^62", "1e300"],
            "batch": ["1", "16", "64", "0", "2^62"], "grid": ["2", "4", "10", "1", "2^62", "3000"],
            "weighting": ["'mean_gate'", "'selection_frequency'", "'usage'", "'probability'", "'specialization'", "'feature_conditional'"],
            "base": ["'dense'", "'training'"], "threshold": ["0.2", "0", "1e300"],
        ]
        static let plotGood: [String: [String]] = [
            "file": ["'p.svg'", "'sub/p.svg'", "'../p.svg'", "''"], "values": ["{1, 2, 3}", "{}", "{0/0}"],
            "color_values": ["{1, 2, 3}", "{1}"], "matrix": ["{{1, 0}, {0, 1}}", "{{1}, {1, 2}}", "{}", "{{0/0}}"],
            "series": ["{ { x = {1, 2}, y = {1, 2} } }", "{ { x = {1}, y = {1, 2} } }", "{ {} }", "{ { x = {0, 1}, y = {0/0, 1} } }"],
            "panels": ["{ { values = {1, 2} } }", "{ {} }", "{}"], "x_log": ["true", "false"], "y_log": ["true"],
            "legend": ["true", "'outside'", "'x'"], "reference_y": ["1", "{ value = 1, label = 'a' }", "{ {value = 0/0} }"],
            "groups": ["{ { label = 'a', values = {1, 2, 3} } }", "{ 'a', 'b' }", "{ { values = {} } }"],
            "norms": ["{{1, 2}, {3, 4}}"], "superposition": ["{{0, 1}, {1, 0}}", "{{1}}"], "classes": ["{{1, 2}, {0, 1}}", "{{-1}}"],
            "W": ["{{1, 0}, {0, 1}}", "{{1, 2, 3}}"], "importance": ["{1, 0.5}"], "header": ["{ 'a', 'b' }", "{ networks = { '2-1-2' } }"],
            "rows": ["{ { 1, 'x' } }", "{ { 1 } }"], "figures": ["{ { heading = 'h', file = 'p.svg' } }", "{ { file = 'nope.svg' } }"],
            "summary": ["{ a = 1 }", "'text'", "{ 1, 2 }"], "panel_size": ["{200, 100}", "{0, 0}", "{1e300, 1}"],
            "columns": ["1", "3", "0", "2^62"], "decimals": ["2", "-1", "2^62"], "extent": ["1", "0", "-1"],
        ]
        static let plotKeys: [String: [String]] = [
            "bars": ["file", "values", "color_values", "marker", "panels", "title", "y_range", "panel_size", "columns"],
            "heatmap": ["file", "matrix", "range", "panels", "show_labels", "colormap", "columns"],
            "lines": ["file", "series", "x_log", "y_log", "legend", "reference_y", "x_range", "reference_x"],
            "scatter": ["file", "series", "x_log", "legend"],
            "phase": ["file", "norms", "superposition", "panels", "header", "decimals", "row_values", "columns"],
            "categories": ["file", "classes", "class_names", "x_values", "origin"],
            "box": ["file", "groups", "y_log", "show_mean"],
            "grouped_bars": ["file", "groups", "series", "baseline", "legend"],
            "vectors": ["file", "W", "importance", "extent", "panels"],
            "table_html": ["file", "header", "rows", "decimals", "caption"],
            "report": ["file", "figures", "summary", "title", "tables"],
        ]

        mutating func model() -> String { pick(["M[1]", "M[2]", "M[3]", "M[4]", "M[5]", "M[6]"]) }
        mutating func selfArg() -> String { chance(0.93) ? model() : value() }
        mutating func arg(_ good: [String]) -> String { chance(0.7) ? pick(good) : value() }
        mutating func maybe(_ s: String) -> String { chance(0.85) ? s : "" }

        /// One random call (an expression).
        mutating func call() -> String {
            switch int(40) {
            case 0, 1, 2: return "toymoe.model(\(chance(0.95) ? options(Array(Self.modelGood.keys).sorted(), good: Self.modelGood) : value()))"
            case 3, 4: return "toymoe.data(\(chance(0.95) ? options(Array(Self.dataGood.keys).sorted(), good: Self.dataGood) : value()))"
            case 5, 6: return "toymoe.train(\(selfArg()), \(chance(0.95) ? options(Self.trainKeys, good: Self.trainGood) : value()))"
            case 7: return "\(model()).get(\(selfArg()), \(arg(["'W'", "'b_final'", "'gate'"])))"
            case 8, 9: return "\(model()).set(\(selfArg()), \(arg(["'W'", "'b_final'", "'gate'"])), \(arg(["R[\(int(16) + 1)]", "R[\(int(16) + 1)]", list(1)])))"
            case 10: return "\(model()).W(\(selfArg()), \(arg(["1", "2", "3"])))"
            case 11, 12: return "\(model()).init(\(selfArg()), \(arg(["'W'", "'b_final'", "'gate'"])), \(arg(["'xavier'", "'zero'", "'diagonal'", "'ordered_khot'", "'random_khot'", "{ normal = 0.5 }", "{ xavier = 2 }", pick(Self.functions), "{ tensor = \(pick(Self.functions)) }", "R[\(int(16) + 1)]"])))"
            case 13, 14: return "\(model()).forward(\(selfArg()), \(arg(["{1, 0, 0.5, 0}", "{1, 0}", "{{1, 0}, {0, 1}}", "R[\(int(16) + 1)]", list(1)])))"
            case 15: return "\(model()).route(\(selfArg()), \(arg(["{1, 0, 0.5, 0}", "{1, 0}", "{{1, 0}}", list(1)])))"
            case 16: return "\(model()).copy(\(selfArg()))"
            case 17: return "\(model()).save(\(selfArg()), \(arg(["'m.npz'", "'sub/m2.npz'", "'../m.npz'"])))"
            case 18: return "D[\(int(3) + 1)].sample(\(chance(0.9) ? "D[\(int(3) + 1)]" : value()), \(arg(["1", "4", "16", "0", "2^62", "1e300"])))"
            case 19, 20, 21:
                let fn = pick(["feature_norms", "interference", "polysemanticity", "superposition_score", "feature_dimensionality",
                               "dimensions_per_feature", "gram", "geometry", "classify_feature"])
                let first = chance(0.75) ? model() : pick([list(1), "R[\(int(16) + 1)]", value()])
                return "toymoe.metrics.\(fn)(\(first)\(maybe(", " + arg(["1", "2", "3", "0"])))\(fn == "classify_feature" ? maybe(", " + arg(["1", "2", "4"])) : ""))"
            case 22, 23:
                let fn = pick(["features_per_dimension", "global_dimensionality", "expert_usage", "router_statistics", "routing_map"])
                let keys = ["features_per_dimension": ["data", "samples", "weighting"], "global_dimensionality": ["data", "samples", "weighting"],
                            "expert_usage": ["data", "base", "batch", "threshold"], "router_statistics": ["data", "samples"], "routing_map": ["grid"]][fn]!
                var good = Self.metricGood
                if fn != "routing_map" { good["samples"] = ["1", "16", "0", "2^62", "1e300"] }
                return "toymoe.metrics.\(fn)(\(selfArg())\(maybe(", " + (chance(0.9) ? options(keys, good: good) : value()))))"
            case 24: return "toymoe.save_npy(\(arg(["'b.npy'", "'sub/b.npy'"])), \(chance(0.5) ? list(1) : value()), \(arg(["'float32'", "'int64'", "'int32'", "nil"])))"
            case 25: return "toymoe.save_npz(\(arg(["'b.npz'"])), \(chance(0.7) ? "{ x = \(list(1)), y = \(value(1)) }" : value()), \(arg(["'float32'", "nil"])))"
            case 26: return "toymoe.\(pick(["load_npy", "load_npz", "load_json", "load_model"]))(\(arg(["'a.npy'", "'a.npz'", "'a.json'", "'m.npz'", "'b.npy'", "'b.npz'", "'b.json'", "'nope'"])))"
            case 27: return "toymoe.save_json(\(arg(["'b.json'"])), \(value()))"
            case 28: return "toymoe.load_model(\(arg(["'m.npz'", "'a.npz'"])), \(arg(["1", "2", "3", "0"])))"
            case 29: return "toymoe.\(pick(["geometric", "permuted_geometric"]))(\(arg(["0.7", "2", "0", "-1"])), \(arg(["0", "1", "5", "20", "-1", "2^62", "2^24"].filter { $0 != "2^24" })))"
            case 30: return "toymoe.\(pick(["linspace", "geomspace"]))(\(arg(["0", "1", "0.1"])), \(arg(["1", "10", "-1"])), \(arg(["0", "1", "5", "-1", "2^62"])))"
            case 31: return "toymoe.range(\(arg(["0", "0.1", "-1", "1"])), \(arg(["1", "0.9", "10", "-1"])), \(arg(["0.1", "0.2", "1", "-0.5", "0", "nil"])))"
            case 32: return "toymoe.param(\(arg(["'steps'", "'x'"])), \(value()))"
            case 33, 34, 35:
                let fn = pick(Array(Self.plotKeys.keys).sorted())
                return "toymoe.plot.\(fn)(\(chance(0.95) ? options(Self.plotKeys[fn]!, good: Self.plotGood) : value()))"
            case 36: return "toymoe.sweep(\(chance(0.9) ? options(["name", "grid", "cells", "replicates", "select", "run", "order"], good: ["grid": ["{ a = {1, 2} }", "{ a = {} }", "{}", "{ a = { 0/0 } }"], "run": ["function() return { v = 1 } end"], "replicates": ["1", "2", "2^62", "0"], "cells": ["{ { a = 1 } }", "{}", "{ 1 }"]]) : value()))"
            case 37: return "tostring(\(model()))"
            case 38: return "\(model()).\(pick(["n_features", "n_hidden", "n_experts", "n_active_experts", "parameter_count", "nope"]))"
            default: return pick(["M[\(int(6) + 1)]:free()", "D[\(int(3) + 1)].n_features", "D[\(int(3) + 1)].importance", "toymoe.model(\(value()))"])
            }
        }

        /// A script of `count` calls; the result of each successful call goes to `R`, fresh models refill `M`.
        mutating func script(calls count: Int) -> String {
            var s = """
                local M, D, R = {}, {}, {}
                local function fresh(i)
                  M[i] = toymoe.model{ n_features = ({4, 2, 4, 8, 3, 4})[i], n_hidden = 2, n_experts = ({1, 1, 2, 3, 1, 4})[i],
                                       n_active_experts = ({1, 1, 1, 2, 1, 2})[i], seed = i }
                end
                for i = 1, 6 do fresh(i) end
                D[1] = toymoe.data{ n_features = 4, feature_probability = 0.5 }
                D[2] = toymoe.data{ n_features = 2, feature_probability = 0.3, relative_importance = 2 }
                D[3] = toymoe.data{ n_features = 8, feature_probability = 0.1, importance = toymoe.geometric(0.7, 8) }
                toymoe.save_npy("a.npy", {1, 2, 3})
                toymoe.save_npz("a.npz", { x = {1, 2} })
                toymoe.save_json("a.json", { a = 1 })
                M[3]:save("m.npz")
                local calls, ok_calls = 0, 0
                local function record(i, ok, r)
                  calls = calls + 1
                  if ok then
                    ok_calls = ok_calls + 1
                    R[i % 16 + 1] = r
                    if type(r) == "userdata" and tostring(r):sub(1, 5) == "Model" then M[i % 6 + 1] = r end
                  end
                  if i % 97 == 0 then for k = 1, 6 do if not pcall(function() return M[k].n_features end) then fresh(k) end end end
                end

                """
            for i in 1...count {
                s += "do local ok, r = pcall(function() return \(call()) end); record(\(i), ok, r) end\n"
            }
            s += "print(string.format('FUZZ_CALLS %d %d', calls, ok_calls))\n"
            return s
        }
    }

    static let scripts = 5
    static let callsPerScript = 2_200

    @Test("Seeded random calls across the binding surface never trap (child processes; ≥ 10,000 calls)")
    func fuzz() throws {
        let executable = CLITests.executable
        try #require(FileManager.default.fileExists(atPath: executable.path), "toymoe not built at \(executable.path)")
        let seed = UInt64(ProcessInfo.processInfo.environment["TOYMOE_FUZZ_SEED"] ?? "") ?? 20_250_101
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-fuzz")
        var total = 0, succeeded = 0
        var statuses: [Int32] = []
        for index in 0..<Self.scripts {
            var g = Generator(seed: seed, script: index)
            let script = dir.appendingPathComponent("fuzz\(index).lua")
            try g.script(calls: Self.callsPerScript).write(to: script, atomically: true, encoding: .utf8)
            let out = try CLITests.toymoe(
                ["run", script.path, "--out", dir.appendingPathComponent("out\(index)").path, "--seed", String(seed),
                 "--memory-limit", "512"], in: dir)
            statuses.append(out.status)
            let context = "seed \(seed), script \(script.path): status \(out.status), stderr: \(out.stderr.suffix(2000))"
            // A trap or a signal shows as a status of 128+ or a Swift "Fatal error" (never a clean script error).
            #expect(!out.stderr.contains("Fatal error") && !out.stderr.contains("Illegal instruction"), "\(context)")
            #expect(out.status == 0 || (out.status < 128 && out.stderr.contains("fuzz\(index).lua:")), "\(context)")
            guard let line = out.stdout.split(separator: "\n").last(where: { $0.hasPrefix("FUZZ_CALLS ") }) else {
                Issue.record("no FUZZ_CALLS line: \(context)")
                continue
            }
            let fields = line.split(separator: " ")
            let calls = Int(fields[1]) ?? 0
            #expect(calls == Self.callsPerScript, "\(context)")
            total += calls
            succeeded += Int(fields[2]) ?? 0
        }
        print("FuzzTests: \(total) calls (\(succeeded) succeeded), seed \(seed), exit statuses \(statuses)")
        #expect(total >= 10_000)
    }
}
