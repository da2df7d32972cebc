import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

/// Bundled scripts by name from any directory, `toymoe list`, and the build commit in provenance (end to end through
/// the built `toymoe`, from temporary directories outside the checkout).
@Suite(.serialized) struct BundledScriptsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var scripts: URL { root.appendingPathComponent("scripts") }

    static func json(_ url: URL) throws -> JSONValue { try JSONValue(contentsOf: url) }

    /// Runs git in the checkout; nil when git is missing or fails.
    static func git(_ arguments: [String], in dir: URL = root) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", dir.path] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    @Test("toymoe run NAME from another directory runs the bundled script and records which file ran and the build commit")
    func runByName() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-byname")
        let r = try CLITests.toymoe(["run", "examples/dense", "steps=20", "--out", "o", "--quiet"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let bundled = Self.scripts.appendingPathComponent("examples/dense.lua").resolvingSymlinksInPath()
        let bytes = try Data(contentsOf: bundled)
        let out = dir.appendingPathComponent("o")
        #expect(try Data(contentsOf: out.appendingPathComponent("script.lua")) == bytes, "script.lua is a copy of what ran")
        let provenance = try Self.json(out.appendingPathComponent("provenance.json"))
        let config = try Self.json(out.appendingPathComponent("config.json"))
        for record in [provenance["extra"]?["script"], config["script_file"]] {
            #expect(record?["path"]?.stringValue == bundled.path)
            #expect(record?["sha256"]?.stringValue == SHA256.hex(bytes))
            #expect(record?["bytes"]?.intValue == bytes.count)
        }
        // The build's own commit, not the working directory's (a temporary directory: no repository at all).
        #expect(provenance["cwd_git_commit"] == .null)
        if let top = Self.git(["rev-parse", "--show-toplevel"]),
            URL(fileURLWithPath: top.trimmingCharacters(in: .whitespacesAndNewlines)).resolvingSymlinksInPath().path
                == Self.root.resolvingSymlinksInPath().path,
            let head = Self.git(["rev-parse", "HEAD"]),
            let tracked = Self.git(["status", "--porcelain", "--untracked-files=no"]),
            let compiled = Self.git(["status", "--porcelain", "--untracked-files=all", "--", "Sources", "Tests", "Plugins"])
        {
            #expect(provenance["build_commit"]?.stringValue == head.trimmingCharacters(in: .whitespacesAndNewlines))
            // `swift test` builds first, and every tracked file is an input of the build-info command.
            #expect(provenance["build_dirty"]?.boolValue == !(tracked + compiled).isEmpty)
        } else {
            #expect(provenance["build_commit"]?.stringValue == "unknown")
        }
        let version = try CLITests.toymoe(["--version"], in: dir)
        #expect(version.stdout.hasPrefix(ToyMoEVersion.string + " (commit "))
        #expect(version.stdout.contains(provenance["build_commit"]?.stringValue ?? "?"))
    }

    @Test("paper/all started by name from another directory runs its neighbours through toymoe.run_script")
    func allByName() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-all-byname")
        let r = try CLITests.toymoe(["run", "paper/all", "only=fig1_dense", "--out", "all", "--quiet"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let child = dir.appendingPathComponent("all/fig1_dense")
        #expect(FileManager.default.fileExists(atPath: child.appendingPathComponent("index.html").path))
        #expect(try Self.json(child.appendingPathComponent("config.json"))["script_file"]?["path"]?.stringValue
            == Self.scripts.appendingPathComponent("paper/fig1_dense.lua").resolvingSymlinksInPath().path)
    }

    @Test("a path that exists wins over a bundled name; NAME and NAME.lua both resolve; .. and absolute names do not")
    func resolution() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-resolve")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("examples"), withIntermediateDirectories: true)
        try "return { mine = 1 }\n".write(to: dir.appendingPathComponent("examples/dense.lua"), atomically: true, encoding: .utf8)
        let mine = try CLITests.toymoe(["run", "examples/dense.lua", "--out", "o", "--quiet"], in: dir)
        #expect(mine.status == 0, "\(mine.stderr)")
        #expect(try Self.json(dir.appendingPathComponent("o/result.json"))["mine"]?.intValue == 1)

        let env = ["TOYMOE_SCRIPTS": Self.scripts.path]
        let a = try BundledScripts.resolve("paper/fig2_moe", environment: env)
        let b = try BundledScripts.resolve("paper/fig2_moe.lua", environment: env)
        #expect(a == b && a.path == Self.scripts.appendingPathComponent("paper/fig2_moe.lua").standardizedFileURL.path)
        for bad in ["../scripts/paper/fig2_moe", "paper/../paper/fig2_moe", "/nonexistent/paper/fig2_moe", "paper//fig2_moe", ""] {
            #expect(throws: ScriptRunError.self, "'\(bad)'") { _ = try BundledScripts.resolve(bad, environment: env) }
        }
    }

    @Test("an unknown name is refused naming where toymoe looked; TOYMOE_SCRIPTS overrides the build tree")
    func notFoundAndOverride() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-notfound")
        let missing = try CLITests.toymoe(["run", "paper/no_such_figure", "--quiet"], in: dir)
        #expect(missing.status == 1)
        for needle in ["script 'paper/no_such_figure' does not exist", Self.scripts.standardizedFileURL.path, "toymoe list"] {
            #expect(missing.stderr.contains(needle), "missing '\(needle)' in: \(missing.stderr)")
        }
        #expect(!missing.stderr.contains("Fatal") && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("results").path))

        let nowhere = try CLITests.toymoe(["run", "paper/fig2_moe"], environment: ["TOYMOE_SCRIPTS": "/nonexistent/scripts"], in: dir)
        #expect(nowhere.status == 1)
        #expect(nowhere.stderr.contains("/nonexistent/scripts") && nowhere.stderr.contains("TOYMOE_SCRIPTS"), "\(nowhere.stderr)")

        // A scripts tree of one's own; a script started by name runs its neighbour through toymoe.run_script.
        let tree = dir.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("mine"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: tree.appendingPathComponent("other"), withIntermediateDirectories: true)
        try """
            -- Runs its neighbour in another folder.
            local a = toymoe.param("a", 3)
            return toymoe.run_script{ script = "../other/leaf.lua", out = "leaf", params = { a = a } }
            """.write(to: tree.appendingPathComponent("mine/top.lua"), atomically: true, encoding: .utf8)
        try "-- Returns its parameter.\nreturn { a = toymoe.param(\"a\", 0) * 2 }\n"
            .write(to: tree.appendingPathComponent("other/leaf.lua"), atomically: true, encoding: .utf8)
        let elsewhere = dir.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let ran = try CLITests.toymoe(["run", "mine/top", "a=5", "--out", "o", "--quiet"], environment: ["TOYMOE_SCRIPTS": tree.path], in: elsewhere)
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(try Self.json(elsewhere.appendingPathComponent("o/result.json"))["a"]?.intValue == 10)
        #expect(try Self.json(elsewhere.appendingPathComponent("o/leaf/config.json"))["script_file"]?["path"]?.stringValue
            == tree.appendingPathComponent("other/leaf.lua").resolvingSymlinksInPath().path)

        let list = try CLITests.toymoe(["list"], environment: ["TOYMOE_SCRIPTS": tree.path], in: elsewhere)
        #expect(list.status == 0)
        #expect(list.stdout == "mine/top    Runs its neighbour in another folder.  [params: a=3]\nother/leaf  Returns its parameter.  [params: a=0]\n", "\(list.stdout)")
    }

    @Test("toymoe list: every bundled script once, with its purpose and its parameters with defaults")
    func listBundled() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-list")
        let r = try CLITests.toymoe(["list"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let files = try FileManager.default.subpathsOfDirectory(atPath: Self.scripts.path).filter { $0.hasSuffix(".lua") }
        #expect(lines.count == files.count && files.count >= 16)
        for f in files {
            let name = String(f.dropLast(4))
            #expect(lines.contains { $0.hasPrefix(name + " ") }, "\(name) not listed")
        }
        let fig2 = try #require(lines.first { $0.hasPrefix("paper/fig2_moe ") })
        #expect(fig2.contains("Fig. 2: a Mixture-of-Experts"))
        #expect(fig2.hasSuffix("[params: scale=\"quick\", steps=scale == \"full\" and 10000 or 3000, seeds=scale == \"full\" and 5 or 3]"), "\(fig2)")
        let fpd = try #require(lines.first { $0.hasPrefix("tms/fpd_sparsity ") })
        #expect(fpd.contains("n=paper and 400 or (full and 200 or 80)"), "nested parentheses: \(fpd)")
    }

    @Test("every bundled script follows the header convention: a one-sentence purpose line, every toymoe.param listed")
    func headerConvention() throws {
        let entries = try BundledScripts.list(environment: ["TOYMOE_SCRIPTS": Self.scripts.path])
        #expect(entries.count >= 16)
        for e in entries {
            let purpose = try #require(e.purpose, "\(e.name): the first line must be a -- comment giving the purpose")
            #expect(purpose.count <= 120 && (purpose.hasSuffix(".") || purpose.hasSuffix("?")), "\(e.name): '\(purpose)'")
            // Every call in code (not in comments) is listed, each with a non-empty default.
            let source = try String(contentsOf: e.path, encoding: .utf8)
            let calls = source.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
                .map { $0.components(separatedBy: "toymoe.param(").count - 1 }.reduce(0, +)
            #expect(e.params.count == calls, "\(e.name): \(e.params.count) listed, \(calls) calls")
            #expect(e.params.allSatisfy { !$0.name.isEmpty && !$0.defaultExpression.isEmpty }, "\(e.name)")
        }
    }

    @Test("the scan skips comments and strings, balances brackets, and ignores toymoe.params")
    func scan() {
        let (purpose, params) = BundledScripts.scan("""
            -- Purpose here.
            -- toymoe.param("in_comment", 1)
            local s = "toymoe.param('in_string', 2)"
            --[[ toymoe.param("in_long_comment", 3) ]]
            local a = toymoe.param("a", f(1, {2, 3}) + t[4])   -- trailing
            local b = toymoe.param( 'b' , "x)y" )
            local c = toymoe.params.c
            local d = mytoymoe.param("d", 1)
            local e = toymoe.param(name, 5)
            """)
        #expect(purpose == "Purpose here.")
        #expect(params == [.init(name: "a", defaultExpression: "f(1, {2, 3}) + t[4]"), .init(name: "b", defaultExpression: "\"x)y\"")])
        #expect(BundledScripts.scan("local x = 1\n-- late comment").purpose == nil)
    }

    @Test("build_info.sh: the commit and dirtiness of a package that is a git work tree, unknown otherwise, rewritten only on change")
    func buildInfoScript() throws {
        let script = Self.root.appendingPathComponent("Plugins/BuildInfoPlugin/build_info.sh")
        guard Self.git(["--version"]) != nil else {
            print("git is not installed: the build-info script's git cases are not checked")
            return
        }
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-buildinfo")
        func run(_ package: URL) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = [script.path, package.path, dir.appendingPathComponent("gen").path, dir.appendingPathComponent("work").path]
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            return try String(contentsOf: dir.appendingPathComponent("gen/BuildInfo.swift"), encoding: .utf8)
        }
        // A tarball: no .git anywhere up the tree (the temporary directory is not in a repository).
        let tarball = dir.appendingPathComponent("tarball")
        try FileManager.default.createDirectory(at: tarball, withIntermediateDirectories: true)
        if Self.git(["rev-parse", "--show-toplevel"], in: tarball) == nil {
            let text = try run(tarball)
            #expect(text.contains("static let commit = \"unknown\"") && text.contains("dirty: Bool? = nil"), "\(text)")
        }
        // A git work tree of its own: its HEAD, clean, then dirty; a copy nested inside it is unknown.
        let repo = dir.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("nested"), withIntermediateDirectories: true)
        try "x\n".write(to: repo.appendingPathComponent("nested/f"), atomically: true, encoding: .utf8)
        for args in [["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c"]] {
            #expect(Self.git(args, in: repo) != nil, "git \(args)")
        }
        let head = try #require(Self.git(["rev-parse", "HEAD"], in: repo)).trimmingCharacters(in: .whitespacesAndNewlines)
        let clean = try run(repo)
        #expect(clean.contains("static let commit = \"\(head)\"") && clean.contains("dirty: Bool? = false"), "\(clean)")
        let generated = dir.appendingPathComponent("gen/BuildInfo.swift")
        let stamp = try FileManager.default.attributesOfItem(atPath: generated.path)[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 1.1)
        _ = try run(repo)
        #expect(try FileManager.default.attributesOfItem(atPath: generated.path)[.modificationDate] as? Date == stamp,
                "an unchanged tree must not rewrite the file (it would recompile)")
        // An untracked file outside the compiled directories is not part of the build; one in Sources/ is.
        try "notes\n".write(to: repo.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        #expect(try run(repo).contains("dirty: Bool? = false"))
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("Sources/X"), withIntermediateDirectories: true)
        try "let x = 1\n".write(to: repo.appendingPathComponent("Sources/X/new.swift"), atomically: true, encoding: .utf8)
        #expect(try run(repo).contains("dirty: Bool? = true"))
        try FileManager.default.removeItem(at: repo.appendingPathComponent("Sources"))
        #expect(try run(repo).contains("dirty: Bool? = false"))
        try "y\n".write(to: repo.appendingPathComponent("nested/f"), atomically: true, encoding: .utf8)
        #expect(try run(repo).contains("dirty: Bool? = true"))
        let nested = try run(repo.appendingPathComponent("nested"))
        #expect(nested.contains("static let commit = \"unknown\""), "a copy inside another repository is not that repository's commit")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("gen").path) == ["BuildInfo.swift"])
    }
}
