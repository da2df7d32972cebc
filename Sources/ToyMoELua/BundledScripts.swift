import Foundation

/// The scripts bundled with ToyMoE (the repository's `scripts/` tree: `paper/`, `examples/`, `tms/`), found by name
/// from any working directory, and what `toymoe list` says about them.
///
/// Where they are: `$TOYMOE_SCRIPTS` when set, else the `scripts/` directory of the checkout this binary was built
/// from (derived from this source file's path at compile time, so a build from a checkout finds its own scripts
/// wherever it is run; a binary moved to another machine needs `TOYMOE_SCRIPTS`).
///
/// Header convention, followed by every bundled script and checked by the tests:
/// - the first line is a Lua comment (`-- ...`) giving the script's purpose in one complete sentence;
/// - every parameter is read with `toymoe.param("name", default)` and a string-literal name, so that a scan of the
///   source lists it with its default expression as written.
public enum BundledScripts {
    /// The environment variable that overrides where the bundled scripts are.
    public static let environmentVariable = "TOYMOE_SCRIPTS"

    /// `scripts/` of the source tree this file was compiled from (Sources/ToyMoELua/BundledScripts.swift is two
    /// levels below the package root).
    public static let buildTreeDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts", isDirectory: true).standardizedFileURL

    /// The bundled scripts' directory and where it came from (`$TOYMOE_SCRIPTS` or the build tree); throws when it
    /// does not exist, saying where it looked and how to point at it.
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (url: URL, source: String) {
        let (url, source): (URL, String)
        if let value = environment[environmentVariable], !value.isEmpty {
            (url, source) = (URL(fileURLWithPath: value, isDirectory: true).standardizedFileURL, "$\(environmentVariable)")
        } else {
            (url, source) = (buildTreeDirectory, "the source tree toymoe was built from")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ScriptRunError(
                "the bundled scripts are not at \(url.path) (\(source)); set \(environmentVariable) to the scripts/ directory of a ToyMoE checkout")
        }
        return (url, source)
    }

    /// The file `toymoe run ARGUMENT` runs: ARGUMENT itself when something exists at that path (relative to the
    /// current directory, or absolute), else the bundled script of that name (`paper/fig2_moe` or
    /// `paper/fig2_moe.lua`). A name may not be absolute nor contain `..`. Throws saying where it looked.
    public static func resolve(_ argument: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        guard !argument.isEmpty else { throw ScriptRunError("the script argument is empty; expected a file or a bundled script's name (toymoe list)") }
        let direct = URL(fileURLWithPath: argument)
        // Anything at the path wins (a directory or FIFO there is refused, precisely, when the script is read).
        if FileManager.default.fileExists(atPath: direct.path) || isSymbolicLink(direct.path) { return direct }
        let notHere = "script '\(argument)' does not exist: there is no such file"
        let components = argument.split(separator: "/", omittingEmptySubsequences: false)
        guard !argument.hasPrefix("/"), !components.contains(where: { $0 == ".." || $0.isEmpty }) else {
            throw ScriptRunError(notHere)
        }
        let dir: (url: URL, source: String)
        do {
            dir = try directory(environment: environment)
        } catch let e as ScriptRunError {
            throw ScriptRunError("\(notHere), and \(e.description)")
        }
        let candidates = argument.hasSuffix(".lua") ? [argument] : [argument + ".lua", argument]
        for name in candidates {
            let url = dir.url.appendingPathComponent(name).standardizedFileURL
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue { return url }
        }
        throw ScriptRunError(
            "\(notHere) (in \(FileManager.default.currentDirectoryPath)) nor a bundled script '\(candidates[0])' in \(dir.url.path) (\(dir.source)); `toymoe list` lists the bundled scripts")
    }

    private static func isSymbolicLink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    /// One bundled script as `toymoe list` shows it.
    public struct Entry: Sendable, Equatable {
        /// The name `toymoe run` accepts, e.g. `paper/fig2_moe`.
        public var name: String
        public var path: URL
        /// The first line's comment text; nil when the first line is not a comment.
        public var purpose: String?
        /// `toymoe.param` calls in source order: name and the default expression as written.
        public var params: [Param]
    }

    public struct Param: Sendable, Equatable {
        public var name: String
        public var defaultExpression: String
    }

    /// Every `.lua` file under the bundled scripts' directory (sorted by name), with its purpose and parameters.
    public static func list(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [Entry] {
        let dir = try directory(environment: environment).url
        guard let walker = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw ScriptRunError("cannot list \(dir.path)")
        }
        var entries: [Entry] = []
        // Names are paths below the directory as `toymoe run` resolves them (a symbolic link is listed by its own
        // name, as it runs).
        let prefix = dir.standardizedFileURL.path + "/"
        for case let url as URL in walker where url.pathExtension == "lua" {
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(prefix) else { throw ScriptRunError("cannot name \(path): it is not below \(dir.path)") }
            let name = String(path.dropFirst(prefix.count).dropLast(".lua".count))
            let source = try ScriptRunner.readScript(url)
            let (purpose, params) = scan(source)
            entries.append(Entry(name: name, path: url, purpose: purpose, params: params))
        }
        return entries.sorted { $0.name < $1.name }
    }

    /// The purpose (first line, when it is a `--` comment) and the `toymoe.param("name", default)` calls of a
    /// script's source. Comments and string literals are skipped, so a call quoted in a comment is not listed; a
    /// call whose name is not a string literal is not listed either (the header convention forbids it).
    public static func scan(_ source: String) -> (purpose: String?, params: [Param]) {
        let firstLine = source.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var purpose: String?
        if firstLine.hasPrefix("--"), !firstLine.hasPrefix("--[") {
            let text = firstLine.dropFirst(2).trimmingCharacters(in: .whitespaces)
            purpose = text.isEmpty ? nil : text
        }
        let s = Array(source.utf8)
        var params: [Param] = []
        var i = 0
        let needle = Array("toymoe.param".utf8)
        func isIdentifier(_ c: UInt8) -> Bool {
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F
        }
        // Skips a comment or string starting at j; returns the index after it, or nil when none starts at j.
        func skipCommentOrString(_ j: Int) -> Int? {
            let c = s[j]
            if c == UInt8(ascii: "-"), j + 1 < s.count, s[j + 1] == UInt8(ascii: "-") {
                if let end = longBracketEnd(j + 2) { return end }
                var k = j + 2
                while k < s.count, s[k] != UInt8(ascii: "\n") { k += 1 }
                return k
            }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                var k = j + 1
                while k < s.count, s[k] != c, s[k] != UInt8(ascii: "\n") { k += s[k] == UInt8(ascii: "\\") ? 2 : 1 }
                return min(k + 1, s.count)
            }
            if c == UInt8(ascii: "[") { return longBracketEnd(j) }
            return nil
        }
        // `[[ ... ]]` or `[==[ ... ]==]` starting at j: the index after its end.
        func longBracketEnd(_ j: Int) -> Int? {
            guard j < s.count, s[j] == UInt8(ascii: "[") else { return nil }
            var k = j + 1, level = 0
            while k < s.count, s[k] == UInt8(ascii: "=") { level += 1; k += 1 }
            guard k < s.count, s[k] == UInt8(ascii: "[") else { return nil }
            let close = [UInt8(ascii: "]")] + Array(repeating: UInt8(ascii: "="), count: level) + [UInt8(ascii: "]")]
            var m = k + 1
            while m + close.count <= s.count {
                if Array(s[m..<(m + close.count)]) == close { return m + close.count }
                m += 1
            }
            return s.count
        }
        while i < s.count {
            if let next = skipCommentOrString(i) { i = next; continue }
            guard s[i] == needle[0], i + needle.count <= s.count, Array(s[i..<(i + needle.count)]) == needle,
                i == 0 || !(isIdentifier(s[i - 1]) || s[i - 1] == UInt8(ascii: "."))
            else { i += 1; continue }
            var k = i + needle.count
            i = k
            guard k >= s.count || !isIdentifier(s[k]) else { continue }  // toymoe.params
            while k < s.count, s[k] == UInt8(ascii: " ") { k += 1 }
            guard k < s.count, s[k] == UInt8(ascii: "(") else { continue }
            k += 1
            while k < s.count, s[k] == UInt8(ascii: " ") { k += 1 }
            guard k < s.count, s[k] == UInt8(ascii: "\"") || s[k] == UInt8(ascii: "'"), let nameEnd = skipCommentOrString(k) else { continue }
            let name = String(decoding: s[(k + 1)..<(nameEnd - 1)], as: UTF8.self)
            k = nameEnd
            while k < s.count, s[k] == UInt8(ascii: " ") { k += 1 }
            guard k < s.count, s[k] == UInt8(ascii: ",") else { continue }
            k += 1
            // The default: everything up to the call's closing parenthesis, at bracket depth 0.
            let start = k
            var depth = 0
            while k < s.count {
                if let next = skipCommentOrString(k) { k = next; continue }
                let c = s[k]
                if c == UInt8(ascii: "(") || c == UInt8(ascii: "{") || c == UInt8(ascii: "[") { depth += 1 }
                if c == UInt8(ascii: ")") || c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                    if depth == 0 { break }
                    depth -= 1
                }
                k += 1
            }
            let expression = String(decoding: s[start..<min(k, s.count)], as: UTF8.self)
                .split(whereSeparator: \.isWhitespace).joined(separator: " ")
            params.append(Param(name: name, defaultExpression: expression))
            i = k
        }
        return (purpose, params)
    }
}
