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

    static func write(_ net: Model, config c: TrainPreset, preset: String?, finalLoss: Double, to dir: URL) throws {
        let experts = net.expertMatrices()
        let n = net.featureCount, m = net.hiddenCount
        let shape = "n_features=\(n), n_hidden=\(m), n_experts=\(net.expertCount), k=\(net.activeExpertCount), p=\(c.featureProbability)"
        let single = experts.count == 1
        let bars: [any Panel] = experts.enumerated().map { e, W in
            BarChart(title: single ? nil : "expert \(e)", values: Metrics.featureNorms(W),
                     colorValues: Metrics.polysemanticity(W), xLabel: "feature i", yLabel: "‖W_i‖",
                     markerX: Double(m) - 0.5, colorBarLabel: "Superposition")
        }
        var grams: [any Panel] = []
        var summed = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for (e, W) in experts.enumerated() {
            let G = Metrics.gram(W)
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
            introduction: "One model: \(shape), \(c.training.steps) steps, seed recorded in provenance.json. Feature indices are 0-based.",
            entries: [
                .init(heading: "Feature norms", figure: .file(normsFile),
                      caption: "Bar height ‖W_i‖ per feature, colour: superposition (polysemanticity, normalized by each panel's maximum); the dashed line is at m − 0.5."),
                .init(heading: "Gram matrices", figure: .file(gramFile), caption: "W_e W_eᵀ, colour range −1 … 1."),
            ],
            summary: .keyValues([.init("final_loss", String(finalLoss))]))
        try AtomicFile.write(try index.html(baseDirectory: dir), to: dir.appendingPathComponent(indexFile))
    }
}
