// Writes every sample figure and an index to $TOYMOE_PLOT_GALLERY (when set) for visual inspection.

import Foundation
import Testing
@testable import ToyMoEPlot

@Suite("Gallery")
struct GalleryTests {
    @Test("sample figures (written only when TOYMOE_PLOT_GALLERY is set)")
    func gallery() throws {
        guard let path = ProcessInfo.processInfo.environment["TOYMOE_PLOT_GALLERY"], !path.isEmpty else { return }
        let directory = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let phasePanels: [any Panel] = [ColorLegend2D.phaseDiagram(), NetworkDiagram(layers: [2, 1, 2]),
                                        Samples.phase(seed: 1), Samples.phase(seed: 2)]
        let figures: [(String, String)] = [
            ("fig1_bars", Figure(title: "Fig. 1a", panels: [Samples.bars()]).svg()),
            ("fig2_bars", Figure(title: "Fig. 2a: per expert", panels: (0..<3).map { Samples.bars(expert: $0) }).svg()),
            ("fig1_gram", Figure(title: "Fig. 1b", panels: [Heatmap(title: "W Wᵀ", matrix: Samples.gram,
                                                                    xLabel: "feature j", yLabel: "feature i")]).svg()),
            ("fig3_fpd", Samples.fpd.svg()),
            ("fig4_phase", Figure(title: "Fig. 4", panels: phasePanels, columns: 2, panelSize: Size(330, 290)).svg()),
            ("fig5_routing", Figure(panels: [Samples.routing, Samples.routing]).svg()),
            ("box", Samples.boxes.svg()),
            ("table1", Samples.usage.svg()),
            ("tms_vectors", Figure(title: "TMS intro", panels: [0.0, 0.4, 0.8].map { Samples.vectors(angleOffset: $0) }).svg()),
            ("tms_dims", Samples.dimensionality.svg()),
        ]
        for (name, svg) in figures {
            try ToyMoEPlotTestsWrite(svg, to: directory.appendingPathComponent(name + ".svg"))
        }
        try HTMLIndex(title: "Gallery", entries: figures.map { .init(heading: $0.0, figure: .file($0.0 + ".svg")) },
                      summary: .keyValues([.init("figures", String(figures.count))]))
            .write(to: directory.appendingPathComponent("index.html"))
    }
}

private func ToyMoEPlotTestsWrite(_ text: String, to url: URL) throws {
    try Data(text.utf8).write(to: url)
}
