import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

/// The bundled paper scripts at reduced scale, asserting the paper's claims (not exact numbers) and the structure
/// of their plots.
@Suite struct PaperScriptsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func runPaper(_ name: String, params: [(String, String)], seed: UInt64 = 0, jobs: Int = 2) throws -> ScriptTestResult {
        let source = try String(contentsOf: root.appendingPathComponent("scripts/paper/\(name)"), encoding: .utf8)
        return try ScriptTestResult.run(source, params: params, seed: seed, jobs: jobs)
    }

    static func svg(_ dir: URL, _ name: String) throws -> String {
        let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
        #expect(text.hasPrefix("<svg") || text.hasPrefix("<?xml"), "\(name) is not SVG")
        #expect(text.contains("</svg>"))
        return text
    }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test("fig1_dense.lua: ~10 features in 6 dimensions, dedicated + antipodal; bars, Gram, report")
    func figure1() throws {
        let r = try Self.runPaper("fig1_dense.lua", params: [("steps", "2500"), ("seeds", "2")])
        let s = r.result
        #expect((s["features_represented"]?.intValue ?? 0) >= 8)
        #expect((s["antipodal_pairs"]?.intValue ?? 0) >= 2)
        #expect((s["dedicated"]?.intValue ?? 0) >= 1)
        let bars = try Self.svg(r.directory, "fig1a_norms.svg")
        #expect(Self.count("class=\"bar\"", in: bars) == 20)
        #expect(bars.contains("class=\"marker\""))
        let gram = try Self.svg(r.directory, "fig1b_gram.svg")
        #expect(gram.contains("class=\"colorbar\""))
        let index = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(Self.count("<svg", in: index) >= 2)
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("summary.json").path))
    }

    @Test("fig2_moe.lua: experts hold dedicated features and antipodal pairs only; per-expert and summed Gram")
    func figure2() throws {
        let r = try Self.runPaper("fig2_moe.lua", params: [("steps", "2500"), ("seeds", "1")])
        #expect((r.result["features_represented"]?.intValue ?? 0) >= 6)
        let experts = r.result["experts"]?.arrayValue ?? []
        #expect(experts.count == 3)
        for e in experts {
            // Inside an expert with m = 2: at most 2 dedicated directions or up to 2 antipodal pairs.
            let represented = e["features_represented"]?.intValue ?? 0
            #expect(represented <= 4)
        }
        let gram = try Self.svg(r.directory, "fig2b_gram.svg")
        #expect(gram.contains("sum over experts"))
    }

    @Test("all.lua runs the selected scripts through toymoe.run_script and indexes their verdicts")
    func all() throws {
        let r = try ScriptTestResult.runFile(
            Self.root.appendingPathComponent("scripts/paper/all.lua"), params: [("only", "fig1_dense")], jobs: 2)
        #expect(r.result["experiments"]?["fig1_dense"]?["verdict"]?.stringValue == "reproduced")
        let index = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(index.contains("fig1_dense/index.html"))
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("fig1_dense/fig1a_norms.svg").path))
    }
}
