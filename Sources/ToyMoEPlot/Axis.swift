// Continuous axes: linear and logarithmic scales with tick generation.

import Foundation

/// How data values map onto an axis.
public enum ScaleKind: String, Sendable, Hashable {
    case linear
    /// Base-10 logarithmic; non-positive values are not drawn.
    case log
}

/// One labelled tick.
public struct Tick: Sendable, Hashable {
    public var value: Double
    public var label: String
    public init(value: Double, label: String) {
        self.value = value
        self.label = label
    }
}

/// The specification of a continuous axis. The domain is fixed by `domain` or derived from the data:
///
/// * linear: the data range (with 0 if `includeZero`), widened outward to whole multiples of a "nice" tick
///   step (1, 2 or 5 × 10^k);
/// * log: the positive data range, widened outward to the nearest 1, 2 or 5 × 10^k. Data from 1 to 10 thus
///   gives exactly 1…10, with ticks 1, 2, 5, 10 and 1 and 10 at the plot edges.
public struct Axis: Sendable, Hashable {
    /// Axis title, drawn beside the tick labels (nil: none).
    public var label: String?
    public var scale: ScaleKind
    /// A fixed domain; nil derives it from the data.
    public var domain: ClosedRange<Double>?
    /// Linear auto-domains include 0 (bar charts).
    public var includeZero: Bool
    /// Approximate number of major ticks wanted on a linear axis.
    public var targetTickCount: Int
    /// Explicit ticks (replacing the generated ones).
    public var ticks: [Tick]?
    /// Light grid lines at the major ticks.
    public var grid: Bool

    public init(label: String? = nil, scale: ScaleKind = .linear, domain: ClosedRange<Double>? = nil,
                includeZero: Bool = false, targetTickCount: Int = 5, ticks: [Tick]? = nil, grid: Bool = true) {
        self.label = label
        self.scale = scale
        self.domain = domain
        self.includeZero = includeZero
        self.targetTickCount = max(2, targetTickCount)
        self.ticks = ticks
        self.grid = grid
    }

    /// A linear axis.
    public static func linear(_ label: String? = nil, domain: ClosedRange<Double>? = nil,
                              includeZero: Bool = false) -> Axis {
        Axis(label: label, scale: .linear, domain: domain, includeZero: includeZero)
    }

    /// A base-10 logarithmic axis (ticks 1, 2, 5 × 10^k over up to 2.5 decades, powers of ten beyond).
    public static func log(_ label: String? = nil, domain: ClosedRange<Double>? = nil) -> Axis {
        Axis(label: label, scale: .log, domain: domain)
    }

    /// Fixes the domain and ticks for the given data values (non-finite values, and non-positive ones on a
    /// log axis, are ignored).
    public func resolve(_ data: [Double]) -> ResolvedAxis {
        switch scale {
        case .linear: return resolveLinear(data)
        case .log: return resolveLog(data)
        }
    }

    private func resolveLinear(_ data: [Double]) -> ResolvedAxis {
        var lo: Double, hi: Double
        let finite = data.filter { $0.isFinite }
        if let domain, domain.lowerBound.isFinite, domain.upperBound.isFinite {
            lo = domain.lowerBound
            hi = domain.upperBound
        } else {
            lo = finite.min() ?? 0
            hi = finite.max() ?? 1
            if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
        }
        if hi - lo <= 0 {
            let pad = lo == 0 ? 1 : abs(lo) * 0.5
            lo -= pad
            hi += pad
            if includeZero && lo < 0 && finite.allSatisfy({ $0 >= 0 }) { lo = 0 }
        }
        let step = Axis.niceStep((hi - lo) / Double(targetTickCount))
        if domain == nil {
            lo = Axis.clean((lo / step + 1e-9).rounded(.down) * step)
            hi = Axis.clean((hi / step - 1e-9).rounded(.up) * step)
        }
        var generated: [Tick] = []
        if ticks == nil {
            let first = Int((lo / step - 1e-9).rounded(.up))
            let last = Int((hi / step + 1e-9).rounded(.down))
            let values = first <= last ? (first...last).map { Axis.clean(Double($0) * step) } : []
            let decimals = values.map(Axis.decimalsNeeded).max() ?? 0
            generated = values.map { Tick(value: $0, label: SVGFormat.tick($0, decimals: decimals)) }
        }
        return ResolvedAxis(scale: .linear, lower: lo, upper: hi,
                            ticks: (ticks ?? generated).filter { $0.value >= lo - 1e-12 && $0.value <= hi + 1e-12 },
                            minorTicks: [])
    }

    private func resolveLog(_ data: [Double]) -> ResolvedAxis {
        var lo: Double, hi: Double
        if let domain, domain.lowerBound > 0, domain.upperBound.isFinite {
            lo = domain.lowerBound
            hi = domain.upperBound
        } else {
            let positive = data.filter { $0.isFinite && $0 > 0 }
            lo = Axis.snapDown(positive.min() ?? 1)
            hi = Axis.snapUp(positive.max() ?? 10)
        }
        if hi <= lo { hi = Axis.snapUp(lo * 1.000_001) }
        if hi <= lo { hi = lo * 10 }
        let decades = log10(hi / lo)
        let firstDecade = SVGFormat.decimalExponent(lo) - 1
        let lastDecade = SVGFormat.decimalExponent(hi) + 1
        let within: (Double) -> Bool = { $0 >= lo * (1 - 1e-9) && $0 <= hi * (1 + 1e-9) }
        var majors: [Double] = []
        var minors: [Double] = []
        let mantissas: [Double] = decades <= 2.5 ? [1, 2, 5] : [1]
        let stride = max(1, Int((decades / 6 - 1e-9).rounded(.up)))
        for k in firstDecade...lastDecade {
            let base = SVGFormat.power10(k)
            for m in 1...9 {
                let v = Axis.clean(Double(m) * base)
                guard within(v) else { continue }
                let isMajor = mantissas.contains(Double(m)) && (m != 1 || ((k % stride) + stride) % stride == 0)
                if isMajor { majors.append(v) } else if decades <= 6 { minors.append(v) }
            }
        }
        if majors.count < 2 {
            // A range narrower than one 1-2-5 step: fall back to linear-looking ticks inside it.
            let linear = Axis(scale: .linear, domain: lo...hi, targetTickCount: 4).resolve([])
            majors = linear.ticks.map(\.value).filter { $0 > 0 }
            minors = []
        }
        let generated = majors.map { Tick(value: $0, label: SVGFormat.tick($0, decimals: Axis.decimalsNeeded($0))) }
        return ResolvedAxis(scale: .log, lower: lo, upper: hi,
                            ticks: (ticks ?? generated).filter { $0.value > 0 && within($0.value) },
                            minorTicks: ticks == nil ? minors : [])
    }

    // MARK: - Helpers

    /// 1, 2 or 5 × 10^k, the smallest at least `raw` (approximately).
    static func niceStep(_ raw: Double) -> Double {
        guard raw.isFinite, raw > 0 else { return 1 }
        let exponent = SVGFormat.decimalExponent(raw)
        let base = SVGFormat.power10(exponent)
        let fraction = raw / base
        let mantissa: Double = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        return mantissa * base
    }

    /// The largest 1, 2 or 5 × 10^k not above v (v > 0).
    static func snapDown(_ v: Double) -> Double {
        let base = SVGFormat.power10(SVGFormat.decimalExponent(v))
        for m in [5.0, 2.0, 1.0] where m * base <= v * (1 + 1e-9) { return clean(m * base) }
        return clean(base)
    }

    /// The smallest 1, 2 or 5 × 10^k not below v (v > 0).
    static func snapUp(_ v: Double) -> Double {
        let base = SVGFormat.power10(SVGFormat.decimalExponent(v))
        for m in [1.0, 2.0, 5.0, 10.0] where m * base >= v * (1 - 1e-9) { return clean(m * base) }
        return clean(10 * base)
    }

    /// Rounds away binary noise (0.30000000000000004 → 0.3) by keeping 12 significant digits.
    static func clean(_ v: Double) -> Double {
        guard v.isFinite, v != 0 else { return v == 0 ? 0 : v }
        let exponent = SVGFormat.decimalExponent(abs(v))
        let scale = SVGFormat.power10(11 - exponent)
        let result = (v * scale).rounded() / scale
        return result == 0 ? 0 : result
    }

    /// The number of decimals (0…6) needed to print v exactly (after `clean`).
    static func decimalsNeeded(_ v: Double) -> Int {
        for d in 0...6 {
            let scaled = v * SVGFormat.power10(d)
            if abs(scaled - scaled.rounded()) < 1e-6 * max(1, abs(scaled)) { return d }
        }
        return 6
    }
}

/// An axis whose domain and ticks are fixed: maps values to a fraction of the axis length.
public struct ResolvedAxis: Sendable, Hashable {
    public let scale: ScaleKind
    public let lower: Double
    public let upper: Double
    /// Major ticks (labelled), all inside the domain.
    public let ticks: [Tick]
    /// Unlabelled minor ticks (log axes: 2…9 × 10^k).
    public let minorTicks: [Double]

    /// 0 at `lower`, 1 at `upper` (not clamped); NaN if the value cannot be shown (≤ 0 on a log axis).
    public func fraction(_ value: Double) -> Double {
        switch scale {
        case .linear:
            return (value - lower) / (upper - lower)
        case .log:
            guard value > 0 else { return .nan }
            return Foundation.log(value / lower) / Foundation.log(upper / lower)
        }
    }

    /// Whether the value lies inside the domain (with a small tolerance).
    public func contains(_ value: Double) -> Bool {
        let f = fraction(value)
        return f.isFinite && f >= -1e-9 && f <= 1 + 1e-9
    }
}
