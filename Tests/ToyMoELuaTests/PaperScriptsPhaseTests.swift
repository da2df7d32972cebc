import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

/// fig4_phase.lua (Fig. 4 + appendix box plot) and tms/phase_2x1.lua (the TMS 2-in-1 phase diagram) at a tiny
/// scale, asserting the claims (dense 2→1 phase structure; trained = closed form away from the boundary) and the
/// structure of their plots.
@Suite struct PaperScriptsPhaseTests {
    @Test("fig4_phase.lua (211 only): ignored→monosemantic at low S, superposed at high S; phase + box SVGs")
    func figure4Dense211() throws {
        let r = try PaperScriptsTests.runPaper("fig4_phase.lua", params: [
            // 10 restarts as the authors: a restart that drops feature 1 keeps a dead bias b₁ < 0 about half the
            // time (loss ≈ 0.17 instead of 0.054), so few restarts leave low-S, large-r cells superposed.
            ("archs", "211"), ("s_list", "0.025,0.2,0.9"), ("r_list", "0.2,2.5"), ("restarts", "10"), ("steps", "2000"),
        ])
        let s = r.result
        let dense = s["dense_211"]
        #expect((dense?["low_S_small_r_ignored"]?.doubleValue ?? 0) >= 0.5, "low S, small r: the last feature is ignored")
        #expect((dense?["low_S_large_r_monosemantic"]?.doubleValue ?? 0) >= 0.5, "low S, large r: monosemantic")
        #expect((dense?["high_S_superposed"]?.doubleValue ?? 0) >= 0.5, "high S: superposed dominates")
        let arch = s["architectures"]?["211"]
        #expect(arch?["experts"]?.arrayValue?.count == 1)
        #expect((arch?["loss"]?["min"]?.doubleValue ?? 0) >= 0.0099, "E = 1 carries the constant LB term 0.01")
        let phase = try PaperScriptsTests.svg(r.directory, "fig4_phase.svg")
        // Readable, 0-based panel titles; S ticks exact (0.025, not 0.03).
        #expect(phase.contains("A: n = 2, m = 1, E = 1 · expert 0") && phase.contains("sparsity S") && phase.contains("colour key"))
        #expect(phase.contains(">0.025<") && !phase.contains(">0.03<"))
        #expect(PaperScriptsTests.count("class=\"node\"", in: phase) == 5, "one 2-1-2 network diagram")
        let box = try PaperScriptsTests.svg(r.directory, "box_losses.svg")
        #expect(PaperScriptsTests.count("class=\"box\"", in: box) == 1 && box.contains("2-1-1"))
        // The verdict is a sentence: what was compared, our number vs the paper's, and why a miss is expected here.
        let verdict = try #require(r.stdout.split(separator: "\n").last.map(String.init))
        #expect(verdict.hasPrefix("Fig. 4 verdict: ") && verdict.contains("vs paper"), "\(verdict)")
        #expect(verdict.contains("expected at this scale (a 3 × 2 grid instead of 39 × 58"), "\(verdict)")
        #expect(!verdict.contains("restarts instead of"), "10 restarts are the paper's: not a reduction")
        #expect(!verdict.contains(" false,") && !verdict.hasSuffix("false"))
        let index = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(PaperScriptsTests.count("<svg", in: index) >= 2)
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("results.npz").path))
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("summary.json").path))
    }

    @Test("fig4 by name from outside the checkout, against the authors' arrays shipped in data/reference/phase-change")
    func figure4AgainstShippedReference() throws {
        // What a fresh clone offers: the bundled script by name, the shipped arrays as a read-only input, no symlink.
        let data = PaperScriptsTests.root.appendingPathComponent("data/reference/phase-change")
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-fig4-reference")
        let run = try CLITests.toymoe([
            "run", "paper/fig4_phase", "--input", "reference=\(data.path)", "archs=211,212", "s_list=0.025,0.9",
            "r_list=0.2,2.5", "restarts=1", "steps=100", "--jobs", "2", "--quiet", "--out", "out",
        ], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let out = dir.appendingPathComponent("out")
        let summary = try JSONValue(contentsOf: out.appendingPathComponent("summary.json"))
        #expect(summary["reference"]?.stringValue == "reference")
        // The authors' losses at the four grid points, read here from the shipped file (cell = i_S · 58 + i_r):
        // S 0.025 → i_S 0, S 0.9 → 35; r 0.2 → i_r 2, r 2.5 → 48.
        for arch in ["211", "212"] {
            let losses = try NpyArray(contentsOf: data.appendingPathComponent("\(arch)/final_losses.npy")).asFloat64()
            let cells: [Int] = [2, 48, 35 * 58 + 2, 35 * 58 + 48]
            let atGrid: [Double] = cells.map { losses[$0] }
            let authors = try #require(summary["architectures"]?[arch]?["authors_loss_at_grid"], "arch \(arch)")
            let lo = try #require(authors["min"]?.doubleValue), hi = try #require(authors["max"]?.doubleValue)
            let (authorsMin, authorsMax) = (try #require(atGrid.min()), try #require(atGrid.max()))
            #expect(abs(lo - authorsMin) < 1e-5, "arch \(arch): min \(lo) vs \(atGrid)")
            #expect(abs(hi - authorsMax) < 1e-5, "arch \(arch): max \(hi) vs \(atGrid)")
            let experts = try #require(summary["architectures"]?[arch]?["experts"]?.arrayValue)
            #expect(experts.count == (arch == "211" ? 1 : 2))
            for e in experts {
                let agreement = try #require(e["authors_at_grid"]?["cell_agreement"]?.doubleValue)
                #expect((0...1).contains(agreement))
            }
        }
        let authorsPhase = try PaperScriptsTests.svg(out, "fig4_phase_authors.svg")
        #expect(authorsPhase.contains("(authors)"))
        // Nothing was written into the shipped data, and the run's files name the input it read.
        #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("211/out").path))
        let config = try String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(config.contains("phase-change"), "config.json records the read-only input")
    }

    @Test("tms/phase_2x1.lua: the trained 2→1 phase diagram matches the closed form away from the boundary")
    func tmsPhase2x1() throws {
        let url = PaperScriptsTests.root.appendingPathComponent("scripts/tms/phase_2x1.lua")
        let source = try String(contentsOf: url, encoding: .utf8)
        let r = try ScriptTestResult.run(source, params: [("grid", "6"), ("models", "3"), ("steps", "1500"), ("batch", "512")],
                                         seed: 0, jobs: 2)
        let s = r.result
        #expect((s["cells_away_from_boundary"]?.intValue ?? 0) >= 10)
        #expect((s["agreement_away_from_boundary"]?.doubleValue ?? 0) >= 0.7)
        let svg = try PaperScriptsTests.svg(r.directory, "phase_2x1.svg")
        #expect(svg.contains("closed form") && svg.contains("trained") && svg.contains("antipodal"))
        #expect(PaperScriptsTests.count("class=\"cell\"", in: svg) >= 6)
    }
}
