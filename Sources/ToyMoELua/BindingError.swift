/// An error raised by a binding: names the function, the argument or option, and what was expected.
/// The trampoline prefixes the script's `file:line:`, so the user sees e.g.
/// `fig.lua:12: toymoe.model: n_experts: expected an integer ≥ 1, got -3`.
struct BindingError: Error, CustomStringConvertible {
    var function: String
    var argument: String?
    var message: String

    init(_ function: String, _ argument: String?, _ message: String) {
        self.function = function
        self.argument = argument
        self.message = message
    }

    var description: String {
        if let argument { return "\(function): \(argument): \(message)" }
        return "\(function): \(message)"
    }
}

/// "did you mean" support for option tables.
enum Suggest {
    /// Damerau–Levenshtein (optimal string alignment) distance: a typo like `stpes` is one transposition away.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.lowercased()), y = Array(b.lowercased())
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[x.count][y.count]
    }

    /// The closest known key within a distance of about a third of its length (at least 2), if any.
    static func closest(_ key: String, among known: [String]) -> String? {
        let scored = known.map { ($0, distance(key, $0)) }.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        guard let best = scored.first, best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }

    /// The message for an unknown option key.
    static func unknownKey(_ key: String, known: [String]) -> String {
        if let s = closest(key, among: known) { return "unknown option (did you mean '\(s)'?)" }
        return "unknown option; expected one of \(known.sorted().map { "'\($0)'" }.joined(separator: ", "))"
    }
}
