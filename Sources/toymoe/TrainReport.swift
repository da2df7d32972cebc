import Foundation
import ToyMoE
import ToyMoEIO
import ToyMoEPlot

/// The figures `toymoe train` draws for its one model: what scripts/paper/fig1_dense.lua and fig2_moe.lua draw
/// (toymoe.plot.bars of the feature norms coloured by polysemanticity, one panel per expert, with the marker at
/// m − 0.5; toymoe.plot.heatmap of W_e W_eᵀ per expert and, for an MoE, summed), and an index.html showing them.
/// Feature indices are 0-based, as everywhere outside Lua.
enum TrainReport {
    /// File names in the output directory.
    static let normsFile = "norms.svg", gramFile = "gram.svg", indexFile = "index.html"

    static func write(_ net: Model, config c: TrainPreset, preset: String?, result: TrainingResult, to dir: URL) throws {
        // A diverged model's weights may be ±inf or NaN: drawn as missing (no bar, a grey cell), never as numbers,
        // and the page says why.
        let experts = net.expertMatrices().map { W in W.map { row in row.map { $0.isFinite ? $0 : .nan } } }
        let n = net.featureCount, m = net.hiddenCount
        let shape = "n_features=\(n), n_hidden=\(m), n_experts=\(net.expertCount), k=\(net.activeExpertCount), p=\(c.featureProbability)"
        let single = experts.count == 1
        let bars: [any Panel] = experts.enumerated().map { e, W in
            BarChart(title: single ? nil : "expert \(e)", values: finite(Metrics.featureNorms(W)),
                     colorValues: finite(Metrics.polysemanticity(W)), xLabel: "feature i", yLabel: "‖W_i‖",
                     markerX: Double(m) - 0.5, colorBarLabel: "Superposition")
        }
        var grams: [any Panel] = []
        var summed = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for (e, W) in experts.enumerated() {
            let G = Metrics.gram(W).map(finite)
            for i in 0..<n { for j in 0..<n { summed[i][j] += G[i][j] } }
            grams.append(Heatmap(title: single ? nil : "expert \(e)", matrix: G, range: -1...1))
        }
        if !single { grams.append(Heatmap(title: "sum over experts", matrix: summed, range: -1...1)) }
        let normsTitle = single ? "Feature norms ‖W_i‖ (\(shape))" : "Feature norms per expert (\(shape))"
        let gramTitle = single ? "W Wᵀ" : "W_e W_eᵀ per expert and summed"
        try AtomicFile.write(Figure(title: normsTitle, panels: bars, columns: min(4, bars.count)).svg(),
                             to: dir.appendingPathComponent(normsFile))
        try AtomicFile.write(Figure(title: gramTitle, panels: grams, columns: min(4, grams.count)).svg(),
                             to: dir.appendingPathComponent(gramFile))
        let index = HTMLIndex(
            title: "toymoe train" + (preset.map { " — preset \($0)" } ?? ""),
            introduction: "One model: \(shape), \(c.training.steps) steps, seed recorded in provenance.json. Feature indices are 0-based."
                + (result.divergence.map { " The training DIVERGED at step \($0.step) (0-based): \($0.reason). Non-finite weights are drawn as missing (no bar, grey cells)." } ?? ""),
            entries: [
                .init(heading: "Feature norms", figure: .file(normsFile),
                      caption: "Bar height ‖W_i‖ per feature, colour: superposition (polysemanticity, normalized by each panel's maximum); the dashed line is at m − 0.5."),
                .init(heading: "Gram matrices", figure: .file(gramFile), caption: "W_e W_eᵀ, colour range −1 … 1."),
            ],
            summary: .keyValues([
                .init("final_loss", String(result.finalLoss)), .init("steps_run", String(result.stepsRun)),
                .init("diverged", result.divergence.map { "at step \($0.step) (0-based): \($0.reason)" } ?? "no"),
            ]))
        try AtomicFile.write(try index.html(baseDirectory: dir), to: dir.appendingPathComponent(indexFile))
    }

    /// Non-finite values as NaN (the charts' "missing").
    static func finite(_ v: [Double]) -> [Double] { v.map { $0.isFinite ? $0 : .nan } }
}
