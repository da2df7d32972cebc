import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

/// fig3_features_per_dim.lua (Fig. 3 and Fig. 7) at a further-reduced scale: only the lowest density p = 0.1, one
/// seed, 800 steps of batch 256. The paper's claim at high sparsity: the dense model packs more features per
/// dimension than every MoE of the same total width, and has the lowest loss.
@Suite struct PaperScriptsFig3Tests {
    static let labels = ["Dense", "4 experts", "10 experts", "20 experts"]

    @Test("fig3_features_per_dim.lua: dense FPD above and dense loss below every MoE at the lowest density; plots")
    func figure3() throws {
        let r = try PaperScriptsTests.runPaper(
            "fig3_features_per_dim.lua",
            params: [("densities", "1"), ("seeds", "1"), ("steps", "800"), ("batch", "256"), ("eval_samples", "1024")])
        let s = r.result
        let densities = s["densities"]?.arrayValue ?? []
        #expect(densities.count == 1)
        #expect(abs((densities.last?.doubleValue ?? 0) - 0.1) < 1e-9)
        func last(_ key: String, _ label: String) -> Double {
            s[key]?[label]?["mean"]?.arrayValue?.last?.doubleValue ?? .nan
        }
        let denseFPD = last("fpd", "Dense"), denseLoss = last("loss", "Dense")
        #expect(denseFPD > 2.5, "dense FPD at p = 0.1 is \(denseFPD) (paper 4.57)")
        for label in Self.labels.dropFirst() {
            let fpd = last("fpd", label), loss = last("loss", label)
            #expect(denseFPD > fpd, "FPD: dense \(denseFPD) vs \(label) \(fpd)")
            #expect(denseLoss < loss, "loss: dense \(denseLoss) vs \(label) \(loss)")
            #expect(fpd > 0.5 && fpd < 4, "\(label) FPD \(fpd)")
        }
        // The authors' B.1 table is embedded, and the verdicts are there.
        #expect(s["paper"]?["b1"]?["rows"]?.arrayValue?.count == 30)
        #expect(s["verdicts"]?["claim_reproduced"]?.boolValue == true)

        let fpdSVG = try PaperScriptsTests.svg(r.directory, "fig3_fpd.svg")
        #expect(PaperScriptsTests.count("class=\"series-group\"", in: fpdSVG) >= 8) // 4 runs + 4 B.1 curves
        #expect(fpdSVG.contains("(B.1)"))
        let lossSVG = try PaperScriptsTests.svg(r.directory, "fig7_loss.svg")
        #expect(PaperScriptsTests.count("class=\"series-group\"", in: lossSVG) >= 4)
        let index = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(PaperScriptsTests.count("<svg", in: index) >= 2)
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("summary.json").path))
    }
}
