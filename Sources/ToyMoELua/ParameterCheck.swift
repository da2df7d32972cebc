import Foundation

/// The `KEY=VALUE` parameters one run's script read, gathered from every Lua state of the run: the top level, each
/// sweep worker (its top level and every `run` call) and `finish`. Shared by the run's `ScriptContext`s through
/// `ScriptRunOptions`; workers run on their own threads, hence the lock.
final class ParameterReads: @unchecked Sendable {
    private let lock = NSLock()
    private var keys: Set<String> = []
    private var cellsRun = 0

    /// Records that the script asked for `key` (`toymoe.param(key, ...)`), whether or not it was given.
    func note(_ key: String) {
        lock.lock()
        keys.insert(key)
        lock.unlock()
    }

    /// Records that a sweep worker called `run` once in this invocation (so `run`'s reads were observed).
    func noteCellRun() {
        lock.lock()
        cellsRun += 1
        lock.unlock()
    }

    var read: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return keys
    }

    var anyCellRun: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cellsRun > 0
    }
}

/// Finds the `KEY=VALUE` parameters a script never read (typos such as `stpes=100` would otherwise silently run
/// the default), and suggests the name the user probably meant.
///
/// A key counts as read when:
///   * the script called `toymoe.param(key, ...)` in any phase that ran (top level, a sweep cell, `finish`);
///   * the source reads it directly as `toymoe.params.KEY` or `toymoe.params["KEY"]` (plain table reads cannot be
///     observed, so they are found in the text);
///   * the source uses `toymoe.params` in any other way (`pairs(toymoe.params)`, `local p = toymoe.params`): the
///     script may read any key, so every key counts as read;
///   * a phase that can read parameters did not run in this invocation (a `--resume` whose cells were all
///     finished, a shard without cells, a shard that does not run `finish`) and the key is mentioned in the source
///     as a word: it may be read there. So a `--resume` warns about the same typos as the first run.
enum ParameterCheck {
    /// The distinct keys of `params` in command-line order.
    static func keys(_ params: [(String, String)]) -> [String] {
        var seen: Set<String> = []
        return params.map(\.0).filter { seen.insert($0).inserted }
    }

    /// Names the source passes literally to `toymoe.param("NAME", ...)` (`called`: observed when they run, used
    /// here only for suggestions), names it reads directly as `toymoe.params.NAME` / `toymoe.params["NAME"]`
    /// (`direct`: not observable), and whether it uses `toymoe.params` in any other way (`generic`).
    static func scan(_ source: String) -> (called: Set<String>, direct: Set<String>, generic: Bool) {
        let text = source as NSString
        let whole = NSRange(location: 0, length: text.length)
        func captures(_ patterns: [String]) -> Set<String> {
            var names: Set<String> = []
            for pattern in patterns {
                let re = try! NSRegularExpression(pattern: pattern)
                for m in re.matches(in: source, range: whole) { names.insert(text.substring(with: m.range(at: 1))) }
            }
            return names
        }
        let called = captures([#"toymoe\s*\.\s*param\s*\(\s*["']([^"'\\\n]+)["']"#])
        let names = captures([
            #"toymoe\s*\.\s*params\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)"#,
            #"toymoe\s*\.\s*params\s*\[\s*["']([^"'\\\n]+)["']\s*\]"#,
        ])
        // Every `toymoe.params` that is not one of the two direct reads above is a generic use.
        let all = try! NSRegularExpression(pattern: #"toymoe\s*\.\s*params\b"#).numberOfMatches(in: source, range: whole)
        let direct = try! NSRegularExpression(
            pattern: #"toymoe\s*\.\s*params\s*(\.\s*[A-Za-z_]|\[\s*["'][^"'\\\n]+["']\s*\])"#
        ).numberOfMatches(in: source, range: whole)
        return (called, names, all > direct)
    }

    /// True when `word` occurs in `source` delimited by characters that cannot continue a Lua name.
    static func mentions(_ source: String, _ word: String) -> Bool {
        guard !word.isEmpty else { return false }
        let s = Array(source.utf8), w = Array(word.utf8)
        func nameByte(_ c: UInt8) -> Bool {
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F
        }
        guard s.count >= w.count else { return false }
        var i = 0
        while i + w.count <= s.count {
            if s[i] == w[0], s[i..<(i + w.count)].elementsEqual(w),
                i == 0 || !nameByte(s[i - 1]) || !nameByte(w[0]),
                i + w.count == s.count || !nameByte(s[i + w.count]) || !nameByte(w[w.count - 1])
            {
                return true
            }
            i += 1
        }
        return false
    }

    /// The keys given but never read (see the type's comment), in command-line order.
    /// `unobservedPhases`: some phase that may read parameters did not run in this invocation.
    static func unread(params: [(String, String)], reads: Set<String>, source: String, unobservedPhases: Bool) -> [String] {
        let (_, names, generic) = scan(source)
        if generic { return [] }
        return keys(params).filter { key in
            !reads.contains(key) && !names.contains(key) && !(unobservedPhases && mentions(source, key))
        }
    }

    /// The keys that the source does not mention at all: no phase can read them (short of building the name at
    /// run time), so `--strict` refuses them before anything runs.
    static func unmentioned(params: [(String, String)], source: String) -> [String] {
        if scan(source).generic { return [] }
        return keys(params).filter { !mentions(source, $0) }
    }

    /// The closest of `candidates` to `key` by edit distance (an adjacent transposition counts as one edit), if
    /// it is close enough to be a typo: at most 1 edit for names of up to 3 characters, 2 beyond. Ties: the first
    /// in byte order.
    static func suggestion(for key: String, among candidates: Set<String>) -> String? {
        let limit = key.count <= 3 ? 1 : 2
        var best: (distance: Int, name: String)?
        for c in candidates.sorted() where c != key {
            let d = Suggest.distance(key, c)  // the option tables' did-you-mean distance
            if d <= limit, best == nil || d < best!.distance { best = (d, c) }
        }
        return best?.name
    }

    /// `parameter 'stpes' was never read by the script (did you mean 'steps'?)`, one per unread key. Suggestions
    /// come from the names the script read and the names its source mentions as parameters.
    static func messages(unread: [String], reads: Set<String>, source: String, verb: String = "was never read by the script") -> [String] {
        let found = scan(source)
        let candidates = reads.union(found.called).union(found.direct)
        return unread.map { key in
            var line = "parameter '\(key)' \(verb)"
            if let s = suggestion(for: key, among: candidates) { line += " (did you mean '\(s)'?)" }
            return line
        }
    }
}
