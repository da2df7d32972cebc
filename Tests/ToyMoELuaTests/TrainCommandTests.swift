import Foundation
import Testing
import ToyMoEIO

/// `toymoe train`: every default in --help, the paper presets, config.json types, the index.html plots.
@Suite(.serialized) struct TrainCommandTests {
    static func json(_ url: URL) throws -> JSONValue { try JSONValue(contentsOf: url) }

    static let presets = ["fig1", "fig2", "fig3-dense", "fig3-e4", "fig3-e10", "fig3-e20",
                          "fig4-211", "fig4-212", "fig4-311", "fig4-312", "fig4-313", "fig4-321", "fig4-322", "fig4-323",
                          "fig5-zero", "fig5-xavier", "fig5-diagonal", "fig6a", "fig6b", "fig6c", "table1-xavier", "table1-khot"]

    @Test("train --help shows every option's default and lists every preset")
    func helpDefaults() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-train-help")
        let r = try CLITests.toymoe(["train", "--help"], in: dir)
        #expect(r.status == 0)
        // Each option's entry runs from its "  --name" to the next option.
        let entries = r.stdout.components(separatedBy: "\n  --").dropFirst().map { "--" + $0 }
        let options = ["preset", "n-features", "n-hidden", "n-experts", "n-active-experts", "feature-probability",
                       "importance-base", "last-importance", "steps", "batch-size", "lr", "weight-decay", "loss",
                       "load-balancing", "load-balancing-alpha", "init-gate", "init-bias", "seed", "out", "kernels"]
        for o in options {
            let entry = entries.first { $0.hasPrefix("--\(o) ") || $0.hasPrefix("--\(o)/") || $0.hasPrefix("--\(o)\n") }
            #expect(entry?.contains("default") == true, "--\(o): \(entry ?? "missing")")
        }
        let lines = r.stdout.split(separator: "\n")
        for p in Self.presets { #expect(lines.contains { $0.hasPrefix(p + " ") }, "preset \(p) not listed") }
        #expect(r.stdout.contains("(default: 20;") && r.stdout.contains("(default: 10000;") && r.stdout.contains("(default: 0)"))
    }

    @Test("every preset trains; presets give the documented configurations; config.json holds numbers as numbers")
    func presetConfigs() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-train-presets")
        for p in Self.presets {
            let r = try CLITests.toymoe(["train", "--preset", p, "--steps", "2", "--out", p, "--quiet"], in: dir)
            #expect(r.status == 0, "\(p): \(r.stderr)")
        }
        func config(_ p: String) throws -> JSONValue { try Self.json(dir.appendingPathComponent("\(p)/config.json")) }
        let e10 = try config("fig3-e10")
        #expect(e10["model"]?["n_features"] == .int(100) && e10["model"]?["n_hidden"] == .int(2))
        #expect(e10["model"]?["n_experts"] == .int(10) && e10["model"]?["n_active_experts"] == .int(2))
        #expect(e10["training"]?["loss"] == .string("mean") && e10["training"]?["batch_size"] == .int(1024))
        #expect(e10["data"]?["importance"]?.arrayValue?.allSatisfy { $0.doubleValue == 1 } == true)
        let fig5 = try config("fig5-diagonal")
        #expect(fig5["init"]?["gate"] == .string("diagonal") && fig5["training"]?["batch_size"] == .int(100))
        #expect(fig5["training"]?["early_stop"]?["stop_loss"]?.doubleValue == 0.01)
        #expect(fig5["data"]?["feature_probability"]?.doubleValue == 0.5)
        let fig6c = try config("fig6c")
        #expect(fig6c["init"]?["gate"] == .string("random_khot") && fig6c["model"]?["n_experts"] == .int(4))
        let importanceValues = fig6c["data"]?["importance"]?.arrayValue ?? []
        let importance = importanceValues.compactMap { $0.doubleValue }
        #expect(importance.count == 20)
        let geometric = (0..<20).map { Float(pow(0.7, Double($0))) }
        let floats = importance.map { Float($0) }
        #expect(floats.sorted(by: >) == geometric && floats != geometric, "a permutation of 0.7^i")
        let table1 = try config("table1-khot")
        #expect(table1["init"]?["gate"] == .string("random_khot") && table1["model"]?["n_hidden"] == .int(10))
        #expect(try config("fig6a")["data"]?["feature_probability"]?.doubleValue == 0.09)
        #expect(try config("fig6b")["init"]?["gate"] == .string("ordered_khot"))

        // Fig. 4 at a chosen (S, r); options override the preset.
        let r = try CLITests.toymoe(["train", "--preset", "fig4-323", "--feature-probability", "0.3", "--last-importance", "2.5",
                                     "--steps", "3", "--seed", "7", "--out", "f4", "--quiet"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let f4 = try config("f4")
        #expect(f4["preset"] == .string("fig4-323"))
        #expect(f4["model"]?["n_features"] == .int(3) && f4["model"]?["n_hidden"] == .int(2) && f4["model"]?["n_experts"] == .int(3))
        #expect(f4["data"]?["importance"] == .array([.number(1), .number(1), .number(2.5)]))
        #expect(f4["data"]?["feature_probability"] == .number(0.3), "the Float as given, not 0.30000001192…")
        #expect(f4["training"]?["load_balancing"] == .bool(true) && f4["training"]?["batch_size"] == .int(512))
        #expect(f4["training"]?["steps"] == .int(3) && f4["seed"] == .int(7))
        // No number hides in a string anywhere in config.json.
        func strings(_ v: JSONValue) -> [String] {
            if let s = v.stringValue { return [s] }
            if let a = v.arrayValue { return a.flatMap(strings) }
            if let o = v.objectValue { return o.entries.flatMap { strings($0.value) } }
            return []
        }
        for p in Self.presets + ["f4"] {
            let numeric = strings(try config(p)).filter { Double($0) != nil }
            #expect(numeric.isEmpty, "\(p): numbers as strings: \(numeric)")
        }
        let unknown = try CLITests.toymoe(["train", "--preset", "fig7"], in: dir)
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown preset 'fig7'") && unknown.stderr.contains("table1-khot"))
    }

    @Test("index.html shows the scripts' plots for the model: feature norms by superposition, Gram matrices per expert")
    func indexPlots() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-train-index")
        let r = try CLITests.toymoe(["train", "--preset", "fig2", "--steps", "50", "--out", "o", "--quiet"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOf: dir.appendingPathComponent("o/index.html"), encoding: .utf8)
        #expect(html.components(separatedBy: "<svg").count - 1 >= 2, "both figures inlined")
        for needle in ["Feature norms", "Gram matrices", "expert 0", "expert 2", "sum over experts", "Superposition", "feature i"] {
            #expect(html.contains(needle), "missing '\(needle)'")
        }
        #expect(!html.contains("expert 3"), "experts are numbered 0 … 2")
        for f in ["norms.svg", "gram.svg"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("o/\(f)").path))
        }
    }

    @Test("a diverged training's index.html says so and draws its non-finite weights as missing")
    func indexDiverged() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-train-nan")
        let r = try CLITests.toymoe(["train", "--quiet", "--out", "o", "--n-features", "4", "--n-hidden", "2", "--lr", "1e9",
                                     "--steps", "200", "--batch-size", "32"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOf: dir.appendingPathComponent("o/index.html"), encoding: .utf8)
        #expect(html.contains("DIVERGED at step") && html.contains("(0-based)"), "the page must say the training diverged")
        // (The page quotes the reason, "loss became nan", so only the figures are checked for numbers.)
        for f in ["o/norms.svg", "o/gram.svg"] {
            let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            #expect(!text.lowercased().contains("nan") && !text.contains("inf"), "\(f): a non-finite number was written as text")
        }
    }
}
