import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

/// Fig. 5 (routing regions), Fig. 6 (initialization study) and the TMS intro figure at reduced scale: the papers'
/// claims, not exact numbers, plus the structure of the plots.
@Suite struct PaperScriptsRoutingTests {
    @Test("fig5_routing.lua: conical regions, frozen k = 1 routing, diagonal split at x1 = x2, zero init not better")
    func figure5() throws {
        let r = try PaperScriptsTests.runPaper("fig5_routing.lua", params: [("steps", "3000")])
        let s = r.result
        #expect(s["cones"]?.boolValue == true)
        let equal = s["end_equals_start"]
        for name in ["zero", "xavier", "diagonal"] {
            // k = 1: the router gets no reconstruction gradient (docs/PAPER.md#router-gradient), so the map is frozen.
            #expect((equal?[name]?.doubleValue ?? 0) >= 0.99, "\(name) routing map changed")
        }
        #expect((s["diagonal_boundary_x1_eq_x2"]?.doubleValue ?? 0) >= 0.99)
        let zeroLoss = s["eval_loss"]?["zero"]?.doubleValue ?? 0
        let xavierLoss = s["eval_loss"]?["xavier"]?.doubleValue ?? 1
        #expect(zeroLoss >= xavierLoss || s["zero_single_expert"]?.boolValue == true)
        for model in s["models"]?.arrayValue ?? [] {
            #expect((model["cone_fraction_end"]?.doubleValue ?? 0) >= 0.999)
        }
        #expect(s["models"]?.arrayValue?.count == 3)
        let svg = try PaperScriptsTests.svg(r.directory, "fig5_routing.svg")
        #expect(PaperScriptsTests.count("class=\"panel\"", in: svg) == 6)
        #expect(PaperScriptsTests.count("class=\"cell\"", in: svg) > 6)
        #expect(PaperScriptsTests.count("Loss: ", in: svg) == 6)
        let index = try String(contentsOf: r.directory.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(PaperScriptsTests.count("<svg", in: index) >= 1)
    }

    @Test("fig6_init.lua: with a diagonal gate, experts dedicate a direction to their own feature")
    func figure6() throws {
        let r = try PaperScriptsTests.runPaper("fig6_init.lua", params: [("steps", "3000"), ("models", "a")])
        let s = r.result
        #expect((s["a_experts_with_own_feature_dedicated"]?.intValue ?? 0) >= 2)
        let experts = s["models"]?["a"]?["experts"]?.arrayValue ?? []
        #expect(experts.count == 4)
        for (e, ex) in experts.enumerated() {
            // The diagonal gate's group of expert e is feature e (0-based in the summary, like the bars).
            #expect(ex["group"]?.arrayValue?.compactMap(\.intValue) == [e])
            #expect((ex["norms"]?.arrayValue?.count ?? 0) == 20)
        }
        let bars = try PaperScriptsTests.svg(r.directory, "fig6a_norms.svg")
        #expect(PaperScriptsTests.count("class=\"bar\"", in: bars) == 80)
        #expect(PaperScriptsTests.count("class=\"marker\"", in: bars) == 4)
        #expect(PaperScriptsTests.count("class=\"colorbar\"", in: bars) == 4)
    }

    @Test("tms/intro.lua: dense keeps few features, the sparsest packs more; one vector panel per model")
    func tmsIntro() throws {
        let r = try PaperScriptsTests.runPaper("../tms/intro.lua", params: [("steps", "2500")])
        let s = r.result
        #expect((s["dense_features_represented"]?.intValue ?? 99) <= 3)
        #expect((s["sparsest_features_represented"]?.intValue ?? 0) >= 4)
        #expect((s["per_density"]?.arrayValue?.count ?? 0) == 10)
        let svg = try PaperScriptsTests.svg(r.directory, "tms_intro.svg")
        #expect(PaperScriptsTests.count("class=\"panel\"", in: svg) == 11)
        #expect(PaperScriptsTests.count("class=\"vector\"", in: svg) == 55)
    }
}
