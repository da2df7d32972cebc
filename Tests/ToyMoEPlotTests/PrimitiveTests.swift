// Number formatting, escaping, colour maps and axis ticks.

import Foundation
import Testing
@testable import ToyMoEPlot

@Suite("Formatting and escaping")
struct FormatTests {
    @Test("numbers: fixed precision, trailing zeros trimmed, no negative zero, no locale")
    func numbers() {
        #expect(SVGFormat.number(1.23456) == "1.235")
        #expect(SVGFormat.number(2.5) == "2.5")
        #expect(SVGFormat.number(3) == "3")
        #expect(SVGFormat.number(-0.0001) == "0")
        #expect(SVGFormat.number(-12.3456, maxDecimals: 2) == "-12.35")
        #expect(SVGFormat.number(0.0005) == "0.001")
        #expect(SVGFormat.number(1_234_567.25) == "1234567.25")
        #expect(SVGFormat.number(.nan) == "0")
        #expect(SVGFormat.fixed(0.5, decimals: 2) == "0.50")
        #expect(SVGFormat.fixed(-1, decimals: 1) == "-1.0")
        #expect(SVGFormat.fixed(0.025, decimals: 2) == "0.03")  // the paper's tick label for S = 0.025
        #expect(SVGFormat.fixed(0.975, decimals: 2) == "0.98")
        #expect(SVGFormat.fixed(.nan, decimals: 2) == "nan")
        #expect(SVGFormat.compact(0.00001, decimals: 2) == "1e-5")
        #expect(SVGFormat.scientific(2.5e8) == "2.5e8")
        #expect(SVGFormat.scientific(9.9996e-6) == "1e-5")
    }

    @Test("XML escaping covers markup characters and removes invalid control characters")
    func escaping() {
        #expect(SVGFormat.escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;")
        #expect(SVGFormat.escape("x\u{01}y") == "x\u{FFFD}y")
        #expect(SVGFormat.escape("‖Wᵢ‖ ✓") == "‖Wᵢ‖ ✓")
    }
}

@Suite("Colours")
struct ColorTests {
    @Test("hex formatting round-trips and clamps")
    func hex() {
        #expect(RGB(1, 0, 0).hex == "#ff0000")
        #expect(RGB(2, -1, 0.5).hex == "#ff0080")
        #expect(RGB(hex: "#1F77B4")?.hex == "#1f77b4")
        #expect(RGB(hex: "12345") == nil)
        #expect(hexColor(RGB(bytes: 0x44, 0x01, 0x54)) == "#440154")
    }

    @Test("viridis endpoints are exact and the map is monotone in lightness")
    func viridis() {
        #expect(Colormap.viridis.color(at: 0).hex == "#440154")
        #expect(Colormap.viridis.color(at: 1).hex == "#fde725")
        #expect(Colormap.viridis.color(at: -3).hex == "#440154")
        #expect(Colormap.viridis.color(at: 7).hex == "#fde725")
        #expect(Colormap.viridis.color(at: 0.5).hex == "#21918c" || Colormap.viridis.color(at: 0.5).hex == "#20908c"
                || Colormap.viridis.color(at: 0.5).hex == "#21908d")
        let lightness = stride(from: 0.0, through: 1.0, by: 0.05).map { Colormap.viridis.color(at: $0).luminance }
        #expect(zip(lightness, lightness.dropFirst()).allSatisfy { $0 < $1 })
        #expect(Colormap.viridis.color(at: .nan) == RGB.missing)
    }

    @Test("coolwarm: −1 blue, 0 light grey, +1 red")
    func coolwarm() {
        let map = Colormap.coolwarm
        let blue = map.color(-1, in: -1...1), middle = map.color(0, in: -1...1), red = map.color(1, in: -1...1)
        #expect(blue.hex == "#3b4cc0")
        #expect(red.hex == "#b40426")
        #expect(blue.b > blue.r + 0.4 && red.r > red.b + 0.4)
        #expect(abs(middle.r - middle.g) < 0.03 && abs(middle.g - middle.b) < 0.03 && middle.r > 0.8)
        #expect(map.color(-5, in: -1...1) == blue)
    }

    @Test("tab10 cycles; the phase map gives white, blue and red at its corners")
    func paletteAndPhaseMap() {
        #expect(Palette.tab10.count == 10)
        #expect(Palette.tab10(0).hex == "#1f77b4" && Palette.tab10(3).hex == "#d62728")
        #expect(Palette.tab10(10) == Palette.tab10(0) && Palette.tab10(-1) == Palette.tab10(9))
        #expect(PhaseColorMap.color(norm: 0, superposition: 0.7) == RGB.white)
        #expect(PhaseColorMap.color(norm: 1, superposition: 0) == RGB(0, 0, 1))
        #expect(PhaseColorMap.color(norm: 1, superposition: 1) == RGB(1, 0, 0))
        let image = PhaseColorMap.image(norms: [[0, 2], [4, 4]], superpositions: [[1, 1], [0, 3]])
        #expect(image[0][0] == RGB.white)
        #expect(image[1][0] == RGB(0, 0, 1))
        #expect(image[1][1] == RGB(1, 0, 0))
        #expect(image[0][1] == PhaseColorMap.color(norm: 0.5, superposition: 1.0 / 3))
    }
}

@Suite("Axes")
struct AxisTests {
    @Test("linear axes extend to nice multiples of a 1-2-5 step")
    func linear() {
        let axis = Axis.linear(includeZero: true).resolve([0.88, 4.57])
        #expect(axis.lower == 0 && axis.upper == 5)
        #expect(axis.ticks.map(\.label) == ["0", "1", "2", "3", "4", "5"])
        let fine = Axis.linear().resolve([0.1, 0.35])
        #expect(fine.ticks.map(\.label) == ["0.10", "0.15", "0.20", "0.25", "0.30", "0.35"])
        let fixed = Axis.linear(domain: 0...1.1).resolve([5])
        #expect(fixed.lower == 0 && fixed.upper == 1.1 && fixed.ticks.last?.label == "1.0")
        let flat = Axis.linear().resolve([2, 2])
        #expect(flat.lower < 2 && flat.upper > 2)
        let empty = Axis.linear().resolve([])
        #expect(empty.lower == 0 && empty.upper == 1)
    }

    @Test("log axes: 1…10 gives ticks 1, 2, 5, 10 at the ends; ranges snap outward to 1-2-5")
    func log() {
        let axis = Axis.log().resolve([1, 1.03, 3.4, 10])
        #expect(axis.lower == 1 && axis.upper == 10)
        #expect(axis.ticks.map(\.label) == ["1", "2", "5", "10"])
        #expect(axis.fraction(1) == 0 && abs(axis.fraction(10) - 1) < 1e-12)
        #expect(abs(axis.fraction(2) - log10(2)) < 1e-12)
        #expect(axis.minorTicks.count == 6)  // 3, 4, 6, 7, 8, 9
        let losses = Axis.log().resolve([0.0085, 0.1408])
        #expect(losses.lower == 0.005 && losses.upper == 0.2)
        #expect(losses.ticks.map(\.label) == ["0.005", "0.01", "0.02", "0.05", "0.1", "0.2"])
        let wide = Axis.log().resolve([1e-6, 1])
        #expect(wide.ticks.map(\.label) == ["1e\u{2212}6", "1e\u{2212}5", "0.0001", "0.001", "0.01", "0.1", "1"])
        let ignoresNonPositive = Axis.log().resolve([-1, 0, 2, 20])
        #expect(ignoresNonPositive.lower == 2 && ignoresNonPositive.upper == 20)
        #expect(ignoresNonPositive.fraction(0).isNaN)
    }
}
