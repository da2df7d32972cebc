import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// A generated bad-input matrix: for every binding and every argument or option, each bad value (nil, wrong types,
/// NaN, ±Inf, 0, −1, huge, a string, a table, a function) replaces the argument in an otherwise valid call. Each
/// case either succeeds (the value is valid there: the allow-list) or fails with `test.lua:LINE: <function>: ...`
/// naming the argument — never a trap.
@Suite struct BadInputMatrixTests {

    /// The bad values, as Lua expressions.
    static let badValues: [(key: String, lua: String)] = [
        ("nil", "nil"), ("bool", "true"), ("nan", "0/0"), ("inf", "1/0"), ("-inf", "-1/0"), ("zero", "0"),
        ("neg", "-1"), ("huge", "2^62"), ("1e300", "1e300"), ("maxint", "math.maxinteger"), ("str", "'x'"),
        ("table", "{}"), ("ragged", "{1, {2, 3}}"), ("func", "function() end"),
    ]

    /// One argument (positional) or option (named) and its valid value.
    struct Arg {
        var name: String
        var valid: String
        /// The bad-value keys that are valid here (the call succeeds).
        var allow: Set<String> = []
        /// The word the error must contain (default: the name).
        var needle: String? = nil
        init(_ name: String, _ valid: String, allow: Set<String> = [], needle: String? = nil) {
            self.name = name
            self.valid = valid
            self.allow = allow
            self.needle = needle
        }
    }

    /// A binding: its name in messages, how a call is written, and its arguments.
    struct Binding {
        enum Form {
            /// `fn(a1, a2, ...)`
            case positional(String)
            /// `fn(before{k = v, ...}after)`
            case options(String, before: String, after: String)
        }
        var label: String
        var form: Form
        var args: [Arg]
        /// Extra hand-written cases: (Lua call, needles).
        var extra: [(String, [String])] = []

        func call(replacing index: Int?, with bad: String) -> String {
            switch form {
            case .positional(let fn):
                let list = args.enumerated().map { $0.offset == index ? bad : $0.element.valid }
                return "\(fn)(\(list.joined(separator: ", ")))"
            case .options(let fn, let before, let after):
                let list = args.enumerated().map { "\($0.element.name) = \($0.offset == index ? bad : $0.element.valid)" }
                if fn.hasSuffix("= ") { return "\(fn)\(before){ \(list.joined(separator: ", ")) }\(after)" }  // a nested table
                return "\(fn)(\(before){ \(list.joined(separator: ", ")) }\(after))"
            }
        }
    }

    /// Set-up shared by every script: a dense and an MoE model, a distribution, files to load.
    static let prelude = """
        local m = toymoe.model{ n_features = 4, n_hidden = 2, n_experts = 2, seed = 1 }
        local dense = toymoe.model{ n_features = 2, n_hidden = 1, seed = 2 }
        local d = toymoe.data{ n_features = 4, feature_probability = 0.5 }
        toymoe.save_npy("a.npy", {1, 2, 3})
        toymoe.save_npz("a.npz", { x = {1, 2} })
        toymoe.save_json("a.json", { a = 1 })
        m:save("m.npz")
        local stop = function() return false end
        """

    /// Every value that is a number (the sizes and seeds accept the integer-valued ones).
    static let numbers: Set<String> = ["nan", "inf", "-inf", "zero", "neg", "huge", "1e300", "maxint"]
    static let finite: Set<String> = ["zero", "neg", "huge", "1e300", "maxint"]
    static let nonNegative: Set<String> = ["zero", "huge", "1e300", "maxint"]

    static let bindings: [Binding] = {
        var b: [Binding] = []
        // Lua converts numbers to strings where a string is expected (file names, titles).
        let stringy: Set<String> = ["zero", "neg", "huge", "1e300", "maxint", "str"]
        // Models.
        b.append(Binding(label: "toymoe.model", form: .options("toymoe.model", before: "", after: ""), args: [
            Arg("n_features", "4"), Arg("n_hidden", "2"), Arg("n_experts", "2", allow: ["nil"], needle: "n_"),
            Arg("n_active_experts", "1", allow: ["nil"]), Arg("tie_break", "'lowest'", allow: ["nil"]),
            Arg("init", "{ W = 'xavier' }", allow: ["nil", "table"]), Arg("seed", "3", allow: ["nil", "zero", "huge", "maxint"]),
        ], extra: [
            ("toymoe.model{ n_features = 4, n_hidden = 2, n_experts = 2, n_active_experts = 3 }", ["n_active_experts"]),
            ("toymoe.model{ n_features = 5, n_hidden = 1, n_experts = 2, init = { gate = 'ordered_khot' } }", ["gate"]),
            ("toymoe.model{ n_features = 2^40, n_hidden = 2^40 }", ["n_features"]),
            ("toymoe.model{ n_features = 2000000, n_hidden = 100 }", ["not enough memory"]),
            ("toymoe.model{ n_features = 20000, n_hidden = 10000, n_experts = 1 }", ["not enough memory", "parameters"]),
            ("toymoe.model{ n_features = 4, n_hidden = 2, init = { overlay_gate = 1 } }", ["init", "overlay_gate"]),
            ("toymoe.model{ n_features = 4, n_hidden = 2, init = { Wx = 'zero' } }", ["init", "Wx"]),
            ("toymoe.model{ n_features = 4, n_hidden = math.maxinteger }", ["n_hidden"]),
            ("toymoe.model{ n_features = 4, n_hidden = 2, n_experts = math.maxinteger, n_active_experts = 2 }", ["n_experts"]),
            ("toymoe.model({ n_features = 4, n_hidden = 2 }, 5)", ["OK"]),
            ("toymoe.model{ 4, 2 }", ["list"]),
        ]))
        b.append(Binding(label: "toymoe.model", form: .options("toymoe.model", before: "", after: "")
            , args: [Arg("n_features", "4"), Arg("n_hidden", "2"), Arg("n_experts", "2", allow: ["nil"]),
                     Arg("init", "{ W = 'zero', b_final = 'zero', gate = 'diagonal' }", allow: ["nil", "table"])]))
        for key in ["W", "b_final", "gate"] {
            let ok: Set<String> = key == "gate" ? ["nil"] : ["nil"]
            b.append(Binding(label: "toymoe.model", form: .options("toymoe.model{ n_features = 4, n_hidden = 2, n_experts = 2, init = ", before: "", after: " }"),
                             args: [Arg(key, "'xavier'", allow: ok, needle: key)],
                             extra: [
                                ("toymoe.model{ n_features = 4, n_hidden = 2, init = { \(key) = { normal = -1 } } }", [key, "std"]),
                                ("toymoe.model{ n_features = 4, n_hidden = 2, init = { \(key) = { xavier = 0/0 } } }", [key, "gain"]),
                                ("toymoe.model{ n_features = 4, n_hidden = 2, init = { \(key) = { tensor = 5 } } }", [key, "tensor"]),
                                ("toymoe.model{ n_features = 4, n_hidden = 2, init = { \(key) = { tensor = function() return {1} end } } }", [key]),
                                ("toymoe.model{ n_features = 4, n_hidden = 2, init = { \(key) = function() return 0/0 end } }", [key, "finite"]),
                                ("toymoe.model{ n_features = 4, n_hidden = 2, init = { \(key) = function() error('boom') end } }", ["!", "test.lua:", "boom"]),
                                ("toymoe.model{ n_features = 4, n_hidden = 2, init = { \(key) = 'bogus' } }", [key, "bogus"]),
                             ]))
        }
        // Model methods.
        let get = Binding(label: "Model:get", form: .positional("m.get"), args: [Arg("self", "m", needle: "self"), Arg("name", "'W'")],
                          extra: [("m:get('V')", ["name", "'W'"]), ("m.get(d, 'W')", ["self"])])
        b.append(get)
        b.append(Binding(label: "Model:set", form: .positional("m.set"), args: [
            Arg("self", "m"), Arg("name", "'b_final'"), Arg("values", "{{1,2,3,4},{5,6,7,8}}", needle: "b_final"),
        ], extra: [
            ("m:set('W', {{{1}}})", ["W", "2"]),
            ("m:set('gate', {{1,2,3,0/0},{1,2,3,4}})", ["gate", "finite"]),
            ("m:set('gate', {1,2,3,4,5,6,7,8})", ["OK"]),
            ("m:set('gate', {1,2,3})", ["gate"]),
            ("m:set('W', {{{1,2},{1,2},{1,2},{1,2}},{{1,2},{1,2},{1,2},{1,1e300}}})", ["W"]),
        ]))
        b.append(Binding(label: "Model:W", form: .positional("m.W"), args: [Arg("self", "m"), Arg("expert", "2")],
                         extra: [("m:W(3)", ["expert", "1...2"]), ("m:W(1.5)", ["expert"])]))
        b.append(Binding(label: "Model:init", form: .positional("m.init"), args: [
            Arg("self", "m"), Arg("name", "'gate'"), Arg("scheme", "'zero'", needle: "gate"),
        ], extra: [("local k = toymoe.model{ n_features = 5, n_hidden = 1, n_experts = 2 }; k:init('gate', 'ordered_khot')", ["gate"])]))
        b.append(Binding(label: "Model:forward", form: .positional("m.forward"), args: [
            Arg("self", "m"), Arg("x", "{1, 0, 0.5, 0}"),
        ], extra: [
            ("m:forward({{1,0,0,0},{1,0,0}})", ["x"]), ("m:forward({{}})", ["x"]), ("m:forward({1,2,3,4,5})", ["x"]),
            ("m:forward({1,2,3,1e300})", ["x"]),
        ]))
        b.append(Binding(label: "Model:route", form: .positional("m.route"), args: [Arg("self", "m"), Arg("x", "{1, 0, 0.5, 0}")],
                         extra: [("m:route({{1,0,0,0}})", ["x", "one input"])]))
        b.append(Binding(label: "Model:copy", form: .positional("m.copy"), args: [Arg("self", "m")]))
        b.append(Binding(label: "Model:save", form: .positional("m.save"), args: [Arg("self", "m"), Arg("file", "'s.npz'", allow: ["str"], needle: "file")],
                         extra: [("m:save('../x.npz')", ["file", "relative"]), ("m:save('/tmp/x.npz')", ["file"]), ("m:save('')", ["file"])]))
        // Data.
        b.append(Binding(label: "toymoe.data", form: .options("toymoe.data", before: "", after: ""), args: [
            Arg("n_features", "4", allow: ["nil"]), Arg("feature_probability", "0.5", allow: ["nil", "zero"]),
            Arg("importance", "{1, 0.5, 0.25, 0.125}", allow: ["nil", "zero", "neg", "huge", "1e300", "maxint", "bool", "nan", "inf", "-inf", "str", "func"]),
            Arg("input_scale", "{1, 1, 1, 1}", allow: ["nil", "zero", "neg", "huge", "1e300", "maxint", "bool", "nan", "inf", "-inf", "str", "func"]),
            Arg("relative_importance", "2", allow: ["zero", "huge", "maxint"]),
            Arg("relative_importance_mode", "'input_scale'", allow: ["nil"]),
        ], extra: [
            ("toymoe.data{ feature_probability = {0.5, 1.5} }", ["feature_probability"]),
            ("toymoe.data{ feature_probability = {} }", ["feature_probability"]),
            ("toymoe.data{ feature_probability = {}, relative_importance = 2 }", ["feature_probability"]),
            ("toymoe.data{ importance = {} }", ["importance"]),
            ("toymoe.data{ feature_probability = {0.5, 0.5}, importance = {1, 2, 3} }", ["importance"]),
            ("toymoe.data{ importance = {1, -1} }", ["importance"]),
            ("toymoe.data{ importance = {1, 1e300} }", ["importance"]),
            ("toymoe.data{ feature_probability = 0.5 }", ["n_features"]),
            ("toymoe.data{ n_features = 2^40 }", ["n_features"]),
            ("toymoe.data{ n_features = 2, relative_importance_mode = 'loss_weight' }", ["relative_importance_mode"]),
            ("toymoe.data{ n_features = 2, relative_importance = 1e300 }", ["relative_importance"]),
            ("toymoe.data{ feature_probability = {{0.5}, {0.5}} }", ["feature_probability"]),
        ]))
        b.append(Binding(label: "Data:sample", form: .positional("d.sample"), args: [Arg("self", "d"), Arg("batch", "3")],
                         extra: [("toymoe.data{ n_features = 100000 }:sample(1000000)", ["batch"])]))
        // Training (a hook stops after the first step, so huge step counts stay fast).
        let trainArgs = [
            Arg("data", "d", allow: ["table"]), Arg("steps", "3", allow: ["nil", "zero"]),
            Arg("batch_size", "4", allow: ["nil"]), Arg("lr", "1e-3", allow: ["nil", "zero", "huge", "1e300", "maxint"]),
            Arg("lr_schedule", "'linear'", allow: ["nil"]), Arg("beta1", "0.9", allow: ["nil", "zero"]),
            Arg("beta2", "0.99", allow: ["nil", "zero"]), Arg("eps", "1e-8", allow: ["nil", "huge", "1e300", "maxint"]),
            Arg("weight_decay", "0.01", allow: ["nil", "zero", "huge", "1e300", "maxint"]), Arg("loss", "'mean'", allow: ["nil"]),
            Arg("load_balancing", "true", allow: ["nil", "bool"]),
            Arg("load_balancing_alpha", "0.01", allow: ["nil", "zero", "huge", "1e300", "maxint"]),
            Arg("early_stop", "{ drop_loss = 0.1 }", allow: ["nil", "table"]), Arg("history_every", "1", allow: ["nil", "huge", "maxint"]),
            Arg("hook", "stop", allow: ["nil", "func"]), Arg("hook_every", "1", allow: ["nil", "huge", "maxint"]),
        ]
        b.append(Binding(label: "toymoe.train", form: .options("toymoe.train", before: "m, ", after: ""), args: trainArgs, extra: [
            ("toymoe.train(m, { data = toymoe.data{ n_features = 3 }, steps = 1 })", ["data", "features"]),
            ("toymoe.train(m, { data = { n_features = 4, feature_probability = 2 }, steps = 1 })", ["feature_probability"]),
            ("toymoe.train(m, { data = d, steps = 1, batch_size = 2^30 })", ["batch_size"]),
            ("toymoe.train(m, { data = d, steps = math.maxinteger })", ["steps"]),
            ("toymoe.train(m, { data = d, steps = 2^40, hook = stop, hook_every = 1 })", ["steps", "history"]),
            ("toymoe.train(m, { data = d, steps = 2^40, history_every = 2^30, hook = stop, hook_every = 1 })", ["OK"]),
            ("toymoe.train(m, { data = d, steps = 1, early_stop = { drop_factor = 0 } })", ["drop_factor"]),
            ("toymoe.train(m, { data = d, steps = 1, early_stop = { stop_loss = 0/0 } })", ["stop_loss"]),
            ("toymoe.train(m, { data = d, steps = 2, hook = function() error('hook failed') end, hook_every = 1 })", ["!", "test.lua:", "hook failed"]),
            ("toymoe.train(d, { data = d })", ["model"]),
        ]))
        b.append(Binding(label: "toymoe.train", form: .positional("toymoe.train"), args: [
            Arg("model", "m"), Arg("options", "{ data = d, steps = 1 }"),
        ]))
        // Metrics taking (m, e).
        for fn in ["feature_norms", "interference", "polysemanticity", "superposition_score", "feature_dimensionality",
                   "dimensions_per_feature", "gram", "geometry", "classify_feature"] {
            var args = [Arg("model", "m", needle: "model|W"), Arg("expert", "2", allow: ["nil"])]
            if fn == "classify_feature" { args.append(Arg("feature", "1", allow: ["nil"])) }
            b.append(Binding(label: "toymoe.metrics.\(fn)", form: .positional("toymoe.metrics.\(fn)"), args: args, extra: [
                ("toymoe.metrics.\(fn)({{1, 2}, {3}})", ["W", "ragged"]),
                ("toymoe.metrics.\(fn)({{}, {}})", ["W"]),
                ("toymoe.metrics.\(fn)({})", ["W"]),
                ("toymoe.metrics.\(fn)({1, 2})", ["W"]),
                ("toymoe.metrics.\(fn)({{1, 2}, {3, 'x'}})", ["W"]),
                ("toymoe.metrics.\(fn)({ a = 1 })", ["W"]),
            ]))
        }
        let metricOptions: [(String, [Arg])] = [
            ("features_per_dimension", [Arg("data", "d", allow: ["table"]), Arg("samples", "16", allow: ["nil"]), Arg("weighting", "'selection_frequency'", allow: ["nil"])]),
            ("global_dimensionality", [Arg("data", "d", allow: ["table"]), Arg("samples", "16", allow: ["nil"]), Arg("weighting", "'probability'", allow: ["nil"])]),
            ("expert_usage", [Arg("data", "d", allow: ["table"]), Arg("base", "'training'", allow: ["nil"]), Arg("batch", "16", allow: ["nil"]),
                              Arg("threshold", "0.2", allow: ["nil", "huge", "1e300", "maxint"])]),
            ("router_statistics", [Arg("data", "d", allow: ["table"]), Arg("samples", "16", allow: ["nil"])]),
            ("routing_map", [Arg("grid", "4", allow: ["nil"])]),
        ]
        for (fn, args) in metricOptions {
            b.append(Binding(label: "toymoe.metrics.\(fn)", form: .options("toymoe.metrics.\(fn)", before: "m, ", after: ""), args: args, extra: [
                ("toymoe.metrics.\(fn)(d, {})", ["model"]), ("toymoe.metrics.\(fn)(m, 5)", ["options"]),
                ("toymoe.metrics.\(fn)(m, { data = toymoe.data{ n_features = 3 } })", ["data"]),
            ]))
        }
        // Files.
        b.append(Binding(label: "toymoe.save_npy", form: .positional("toymoe.save_npy"), args: [
            // 1e300 does not fit the float32 dtype: refused with the value and the range (it used to become inf).
            Arg("file", "'b.npy'", allow: ["str"]), Arg("array", "{{1, 2}, {3, 4}}", allow: ["bool", "nan", "inf", "-inf", "zero", "neg", "huge", "maxint", "table"]),
            Arg("dtype", "'float32'", allow: ["nil"]),
        ], extra: [
            ("toymoe.save_npy('c.npy', {1.5}, 'int64')", ["int64"]), ("toymoe.save_npy('c.npy', {1e300}, 'int32')", ["int32"]),
            ("toymoe.save_npy('c.npy', {0/0}, 'int64')", ["int64"]), ("toymoe.save_npy('../c.npy', {1})", ["file"]),
            ("toymoe.save_npy('c.npy', { a = 1 })", ["array"]),
        ]))
        b.append(Binding(label: "toymoe.save_npz", form: .positional("toymoe.save_npz"), args: [
            Arg("file", "'b.npz'", allow: ["str"]), Arg("arrays", "{ x = {1, 2} }", allow: ["table"]), Arg("dtype", "'int64'", allow: ["nil"]),
        ], extra: [("toymoe.save_npz('c.npz', { x = {1, {2}} })", ["x", "ragged"]), ("toymoe.save_npz('c.npz', { {1} })", ["arrays"])]))
        for fn in ["load_npy", "load_npz", "load_json", "load_model"] {
            let file = fn == "load_npy" ? "'a.npy'" : fn == "load_json" ? "'a.json'" : fn == "load_model" ? "'m.npz'" : "'a.npz'"
            var args = [Arg("file", file)]
            // load_model's second argument may also be an options table ({} is valid).
            if fn == "load_model" { args.append(Arg("n_active_experts", "1", allow: ["nil", "table"])) }
            b.append(Binding(label: "toymoe.\(fn)", form: .positional("toymoe.\(fn)"), args: args, extra: [
                ("toymoe.\(fn)('missing.bin')", ["missing.bin"]), ("toymoe.\(fn)('a.json' == \(file) and 'a.npy' or 'a.json')", ["cannot"]),
            ]))
        }
        b.append(Binding(label: "toymoe.load_model", form: .positional("toymoe.load_model"), args: [Arg("file", "'a.npz'")]))
        b.append(Binding(label: "toymoe.save_json", form: .positional("toymoe.save_json"), args: [
            Arg("file", "'b.json'", allow: ["str"]), Arg("value", "{ a = 1 }", allow: ["nil", "bool", "nan", "inf", "-inf", "zero", "neg", "huge", "1e300", "maxint", "str", "table", "ragged"]),
        ], extra: [("toymoe.save_json('c.json', { f = print })", ["value"])]))
        // Helpers.
        b.append(Binding(label: "toymoe.geometric", form: .positional("toymoe.geometric"), args: [
            Arg("base", "0.7", allow: ["zero", "neg", "huge", "1e300", "maxint"]), Arg("n", "5", allow: ["zero"]),
        ]))
        b.append(Binding(label: "toymoe.permuted_geometric", form: .positional("toymoe.permuted_geometric"), args: [
            Arg("base", "0.7", allow: ["zero", "neg", "huge", "1e300", "maxint"]), Arg("n", "5", allow: ["zero"]),
        ]))
        b.append(Binding(label: "toymoe.linspace", form: .positional("toymoe.linspace"), args: [
            Arg("start", "0", allow: ["zero", "neg", "huge", "1e300", "maxint"]), Arg("stop", "1", allow: ["zero", "neg", "huge", "1e300", "maxint"]),
            Arg("count", "5", allow: ["zero"]),
        ]))
        b.append(Binding(label: "toymoe.geomspace", form: .positional("toymoe.geomspace"), args: [
            Arg("start", "1", allow: ["huge", "1e300", "maxint"]), Arg("stop", "100", allow: ["huge", "1e300", "maxint"]),
            Arg("count", "5", allow: ["zero"]),
        ]))
        b.append(Binding(label: "toymoe.range", form: .positional("toymoe.range"), args: [
            Arg("start", "0", allow: ["zero", "neg", "huge", "1e300", "maxint"]), Arg("stop", "1", allow: ["zero", "neg"]),
            Arg("step", "0.25", allow: ["nil", "neg", "huge", "1e300", "maxint"]),
        ], extra: [
            ("toymoe.range(-1e300, 1e300, 1e-300)", ["step"]), ("toymoe.range(0, 2^62, 1)", ["step"]),
            ("toymoe.range(0, 1, 1e-10)", ["step"]), ("toymoe.range(-1e308, 1e308, 1)", ["step"]),
        ]))
        b.append(Binding(label: "toymoe.param", form: .positional("toymoe.param"), args: [
            Arg("key", "'steps'", allow: ["str"]), Arg("default", "5", allow: Set(badValues.map(\.key))),
        ]))
        // Plots (a few).
        b.append(Binding(label: "toymoe.plot.bars", form: .options("toymoe.plot.bars", before: "", after: ""), args: [
            Arg("file", "'b.svg'", allow: stringy), Arg("values", "{1, 2, 3}"), Arg("color_values", "{0, 1, 0.5}", allow: ["nil"]),
            Arg("marker", "1.5", allow: ["nil", "zero", "neg", "huge", "1e300", "maxint"]), Arg("title", "'t'", allow: stringy.union(["nil"])),
            Arg("y_range", "{0, 4}", allow: ["nil"]), Arg("panel_size", "{200, 150}", allow: ["nil"]),
        ]))
        b.append(Binding(label: "toymoe.plot.heatmap", form: .options("toymoe.plot.heatmap", before: "", after: ""), args: [
            Arg("file", "'h.svg'", allow: stringy), Arg("matrix", "{{1, 0}, {0, 1}}"), Arg("range", "{-1, 1}", allow: ["nil"]),
            Arg("colormap", "'viridis'", allow: ["nil"]), Arg("show_labels", "false", allow: ["nil", "bool"]),
        ]))
        b.append(Binding(label: "toymoe.plot.lines", form: .options("toymoe.plot.lines", before: "", after: ""), args: [
            Arg("file", "'l.svg'", allow: stringy), Arg("series", "{ { label = 'a', x = {1, 2}, y = {1, 4} } }"),
            Arg("x_log", "true", allow: ["nil", "bool"]), Arg("reference_y", "1", allow: ["nil", "zero", "neg", "huge", "1e300", "maxint", "table"]),
            Arg("legend", "'top_right'", allow: ["nil", "bool"]),
        ], extra: [
            ("toymoe.plot.lines{ file = 'l.svg', series = { { x = {1, 2}, y = {1} } } }", ["y"]),
            ("toymoe.plot.lines{ file = 'l.svg', x_log = true, series = { { x = {0, 2}, y = {1, 2} } } }", ["x"]),
        ]))
        // Sweeps run in their own scripts (a declared sweep runs after the top level).
        b.append(Binding(label: "toymoe.sweep", form: .options("toymoe.sweep", before: "", after: ""), args: [
            Arg("name", "'s'", allow: ["nil", "str"]), Arg("grid", "{ a = {1, 2} }"), Arg("replicates", "2", allow: ["nil"]),
            Arg("select", "{ minimize = 'v' }", allow: ["nil"]), Arg("run", "function() return { v = 1 } end", allow: ["func"]),
            Arg("order", "{ 'a' }", allow: ["nil"]), Arg("finish", "function() end", allow: ["nil", "func"]),
        ], extra: [
            ("toymoe.sweep{ grid = { a = {} }, run = function() end }", ["no cells"]),
            ("toymoe.sweep{ grid = {}, run = function() end }", ["no cells"]),
            ("toymoe.sweep{ cells = {}, run = function() end }", ["no cells"]),
            ("toymoe.sweep{ grid = { a = {1} }, cells = { { a = 1 } }, run = function() end }", ["grid"]),
            ("toymoe.sweep{ grid = { a = {1, 2} }, replicates = 2^40, run = function() end }", ["replicates"]),
            ("toymoe.sweep{ grid = { a = {1}, b = {2} }, order = { 'a' }, run = function() end }", ["order"]),
            ("toymoe.sweep{ grid = { a = {1} }, select = { minimize = 'v', maximize = 'v' }, run = function() end }", ["select"]),
            ("toymoe.sweep{ cells = { 5 }, run = function() end }", ["cells[1]"]),
            ("toymoe.sweep{ grid = { a = { print } }, run = function() end }", ["grid.a"]),
        ]))
        return b
    }()

    /// A case: a call and what its error must contain; `allowed` when it is valid.
    struct Case {
        var binding: String
        var description: String
        var lua: String
        var needles: [String]
        var allowed: Bool
    }

    static func cases(_ b: Binding) -> [Case] {
        var out: [Case] = []
        for (i, arg) in b.args.enumerated() {
            for (key, lua) in badValues {
                out.append(Case(
                    binding: b.label, description: "\(b.label) \(arg.name) = \(key)", lua: b.call(replacing: i, with: lua),
                    needles: [b.label, arg.needle ?? arg.name], allowed: arg.allow.contains(key)))
            }
        }
        for (lua, needles) in b.extra {
            // "!" first: the error is the script's own (raised in a callback), so it need not name the binding.
            let own = needles.first == "!"
            out.append(Case(binding: b.label, description: "\(b.label): \(lua)", lua: lua,
                            needles: own ? Array(needles.dropFirst()) : [b.label] + needles, allowed: needles == ["OK"]))
        }
        return out
    }

    static let separator = "@@CASE@@"

    /// Runs cases in one script (each under pcall, its message printed) and returns one message per case ("" = ok).
    func run(_ cases: [Case]) throws -> [String] {
        if cases.count == 1 && cases[0].binding == "toymoe.sweep" {
            // A declared sweep would run after the top level: end the top level with the outcome instead.
            let source = Self.prelude + "\nlocal ok, e = pcall(function() \(cases[0].lua) end)\nerror(ok and '@@OK@@' or e, 0)\n"
            do {
                _ = try ScriptTestResult.run(source)
                return ["the script did not end with its outcome"]
            } catch let e as ScriptRunError {
                return [e.description.contains("@@OK@@") ? "" : e.description]
            }
        }
        var source = Self.prelude + "\n"
        for c in cases {
            source += "do local ok, e = pcall(function() \(c.lua) end); print('\(Self.separator)' .. (ok and '' or tostring(e))) end\n"
        }
        let r = try ScriptTestResult.run(source)
        var parts = r.stdout.components(separatedBy: Self.separator)
        parts.removeFirst()
        return parts.prefix(cases.count).map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 }
    }

    func check(_ cases: [Case], _ messages: [String]) {
        #expect(messages.count == cases.count, "\(messages.count) messages for \(cases.count) cases")
        for (c, message) in zip(cases, messages) {
            if message.isEmpty {
                #expect(c.allowed, "\(c.description): succeeded but is not on the allow-list: \(c.lua)")
                continue
            }
            #expect(!c.allowed, "\(c.description): allow-listed but failed: \(message)")
            if c.allowed { continue }
            #expect(message.hasPrefix("test.lua:"), "\(c.description): no file:line in: \(message)")
            for needle in c.needles {  // "a|b": either
                let any = needle.split(separator: "|").contains { message.contains($0) }
                #expect(any, "\(c.description): expected '\(needle)' in: \(message)")
            }
        }
    }

    @Test("The matrix: every binding × every argument × every bad value errors cleanly (or is allow-listed)")
    func matrix() throws {
        var total = 0
        for b in Self.bindings where b.label != "toymoe.sweep" {
            let cases = Self.cases(b)
            total += cases.count
            check(cases, try run(cases))
        }
        print("BadInputMatrixTests: \(total) cases outside sweeps")
        #expect(total >= 600)
    }

    @Test("The matrix for toymoe.sweep: one script per case (a valid declaration runs its sweep)")
    func sweepMatrix() throws {
        let b = Self.bindings.first { $0.label == "toymoe.sweep" }!
        let cases = Self.cases(b)
        for c in cases {
            check([c], try run([c]))
        }
        print("BadInputMatrixTests: \(cases.count) sweep cases")
    }

    @Test("The number of generated cases")
    func count() {
        let total = Self.bindings.map { Self.cases($0).count }.reduce(0, +)
        print("BadInputMatrixTests: \(total) cases in all")
        #expect(total >= 600)
    }
}
