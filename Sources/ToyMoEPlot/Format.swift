// Locale-independent, deterministic text formatting for SVG and HTML output.

import Foundation

/// Number formatting and XML escaping used by every chart.
///
/// Nothing here consults the locale or the C library's `printf`: numbers are rounded to an integer number of
/// units of `10^-decimals` and printed digit by digit, so output is byte-identical on every platform.
public enum SVGFormat {
    /// A coordinate or attribute value: at most `maxDecimals` decimals, trailing zeros removed, no `-0`.
    /// Non-finite values print as `0` (they must never reach an SVG attribute).
    ///
    ///     SVGFormat.number(1.23456)  // "1.235"
    ///     SVGFormat.number(2.5000)   // "2.5"
    ///     SVGFormat.number(-0.0001)  // "0"
    public static func number(_ value: Double, maxDecimals: Int = 3) -> String {
        render(value, decimals: max(0, min(maxDecimals, 9)), trim: true)
    }

    /// Exactly `decimals` decimals (e.g. tick labels `0.0, 0.5, 1.0`). Non-finite values print as `nan`,
    /// `inf` or `-inf`.
    public static func fixed(_ value: Double, decimals: Int) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        return render(value, decimals: max(0, min(decimals, 9)), trim: false)
    }

    /// A short human-readable number: `fixed` for ordinary magnitudes, `1.5e-5` style for very small or very
    /// large ones. Used for tick labels and table cells.
    public static func compact(_ value: Double, decimals: Int) -> String {
        if !value.isFinite { return fixed(value, decimals: decimals) }
        let magnitude = abs(value)
        if magnitude != 0 && (magnitude < 1e-4 || magnitude >= 1e7) { return scientific(value, significant: 3) }
        return fixed(value, decimals: decimals)
    }

    /// `m e k` notation with up to `significant` significant digits, trailing zeros removed: `1e-5`, `2.5e8`.
    public static func scientific(_ value: Double, significant: Int = 3) -> String {
        if !value.isFinite { return fixed(value, decimals: 0) }
        if value == 0 { return "0" }
        var exponent = decimalExponent(abs(value))
        var mantissa = value / power10(exponent)
        // Rounding the mantissa may carry it to 10 (9.9996 -> 10.00).
        let digits = max(0, significant - 1)
        if abs((mantissa * power10(digits)).rounded()) >= 10 * power10(digits) {
            exponent += 1
            mantissa = value / power10(exponent)
        }
        return number(mantissa, maxDecimals: digits) + "e" + String(exponent)
    }

    /// A number as a reader sees it in a figure: `text` with every ASCII hyphen-minus that stands for a minus
    /// sign (at the start, or after an exponent's `e`) replaced by the typographic minus U+2212, so tick labels
    /// read `−0.5` and `1e−5` as in print. Only for drawn text: attribute values and HTML table cells (which
    /// readers copy into other tools) keep ASCII.
    ///
    ///     SVGFormat.typographic("-0.5")    // "−0.5"
    ///     SVGFormat.typographic("1.5e-5")  // "1.5e−5"
    public static func typographic(_ text: String) -> String {
        var out = ""
        var previous: Character? = nil
        for c in text {
            if c == "-" && (previous == nil || previous == "e" || previous == "E" || previous == " " || previous == "(") {
                out.append("\u{2212}")
            } else {
                out.append(c)
            }
            previous = c
        }
        return out
    }

    /// A tick label: `compact` with a typographic minus.
    public static func tick(_ value: Double, decimals: Int) -> String {
        typographic(compact(value, decimals: decimals))
    }

    /// Escapes text for XML character data and attribute values (`& < > " '`). Characters that XML 1.0 does
    /// not allow (most C0 controls, lone surrogates cannot occur in a Swift `String`) are replaced by U+FFFD.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                let v = scalar.value
                if v < 0x20 || v == 0xFFFE || v == 0xFFFF { out += "\u{FFFD}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    // MARK: - Internals

    /// 10^k, correctly rounded for |k| ≤ 22 (10^|k| is exact there, and one division rounds once).
    static func power10(_ k: Int) -> Double {
        var result = 1.0
        for _ in 0..<abs(k) { result *= 10 }
        return k >= 0 ? result : 1 / result
    }

    /// floor(log10(x)) for x > 0, corrected so that 10^e <= x < 10^(e+1) holds exactly.
    static func decimalExponent(_ x: Double) -> Int {
        var e = Int(log10(x).rounded(.down))
        if power10(e) > x { e -= 1 }
        if power10(e + 1) <= x { e += 1 }
        return e
    }

    private static func render(_ value: Double, decimals: Int, trim: Bool) -> String {
        guard value.isFinite else { return "0" }
        let scale = power10(decimals)
        let scaled = (value * scale).rounded(.toNearestOrAwayFromZero)
        if abs(scaled) >= 9.0e15 {
            // Beyond exact integer range: coordinates never get here; print the integer part only.
            return String(Int64(value.rounded()))
        }
        let units = Int64(scaled)
        if units == 0 { return trim ? "0" : (decimals == 0 ? "0" : "0." + String(repeating: "0", count: decimals)) }
        let negative = units < 0
        let magnitude = negative ? -units : units
        let divisor = Int64(scale)
        let integerPart = magnitude / divisor
        var fraction = magnitude % divisor
        var text = String(integerPart)
        if decimals > 0 {
            var digits = decimals
            if trim {
                while digits > 0 && fraction % 10 == 0 { fraction /= 10; digits -= 1 }
            }
            if digits > 0 {
                let raw = String(fraction)
                text += "." + String(repeating: "0", count: digits - raw.count) + raw
            }
        }
        return negative ? "-" + text : text
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}

