import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// Files a script names stay inside the output directory (or, for reads, inside a read-only `--input`): a symbolic
/// link that leads elsewhere is refused by every function that reads or writes files, with the function and the
/// path in the message, and nothing outside is created or changed. `--resume` deletes only the tool's own
/// temporaries and never follows a link.
@Suite struct ConfinementTests {
    /// A fresh tree: `base/scripts/sub/test.lua` (so run_script's tree is `base/scripts/`), `base/out` (the output
    /// directory) and `base/elsewhere` (outside both) holding files a script might try to reach.
    struct Tree {
        let base: URL
        var script: URL { base.appendingPathComponent("scripts/sub/test.lua") }
        var out: URL { base.appendingPathComponent("out") }
        var elsewhere: URL { base.appendingPathComponent("elsewhere") }

        init() throws {
            base = try ScriptTestResult.temporaryDirectory("toymoe-confine")
            let fm = FileManager.default
            try fm.createDirectory(at: base.appendingPathComponent("scripts/sub"), withIntermediateDirectories: true)
            try fm.createDirectory(at: out, withIntermediateDirectories: true)
            try fm.createDirectory(at: elsewhere, withIntermediateDirectories: true)
            try NpyArray(float64: [1, 2], shape: [2]).write(to: elsewhere.appendingPathComponent("a.npy"))
            try Npz.write([("x", try NpyArray(float64: [3], shape: [1]))], to: elsewhere.appendingPathComponent("a.npz"))
            try JSONValue.object(["secret": 42]).write(to: elsewhere.appendingPathComponent("a.json"))
            let m = try Model(config: ModelConfig(featureCount: 2, hiddenCount: 1), seed: 1)
            try m.writeNPZ(to: elsewhere.appendingPathComponent("model.npz"))
            try "return {}".write(to: base.appendingPathComponent("evil.lua"), atomically: true, encoding: .utf8)
            try "return { ok = true }".write(to: base.appendingPathComponent("scripts/sub/other.lua"), atomically: true, encoding: .utf8)
        }

        /// The names and sizes of everything under `elsewhere` (to show nothing there changed).
        func elsewhereListing() throws -> [String] {
            let fm = FileManager.default
            return try fm.subpathsOfDirectory(atPath: elsewhere.path).sorted().map { p in
                let size = (try? fm.attributesOfItem(atPath: elsewhere.appendingPathComponent(p).path)[.size] as? Int) ?? -1
                return "\(p):\(size ?? -1)"
            }
        }

        func link(_ name: String, to target: URL) throws {
            let url = out.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: target.path)
        }

        /// Runs `source` as `scripts/sub/test.lua` into `out` with the given inputs; the error text, or nil.
        func run(_ source: String, inputs: [String: URL] = [:], resume: Bool = false) throws -> (error: String?, result: JSONObject) {
            try source.write(to: script, atomically: true, encoding: .utf8)
            var o = ScriptRunOptions(script: script, out: out, resume: resume, quiet: true, memoryLimit: 256 << 20, printSink: { _ in })
            o.inputs = inputs
            do {
                let outcome = try ScriptRunner.run(o)
                return (nil, outcome.result?.objectValue ?? JSONObject())
            } catch let e as ScriptRunError {
                return (e.description, JSONObject())
            }
        }
    }

    /// Each file function, given a path through `escape -> elsewhere`.
    static let escapes: [(function: String, call: String)] = [
        ("toymoe.save_npy", "toymoe.save_npy('escape/x.npy', {1, 2})"),
        ("toymoe.save_npz", "toymoe.save_npz('escape/x.npz', { a = {1} })"),
        ("toymoe.save_json", "toymoe.save_json('escape/x.json', { a = 1 })"),
        ("toymoe.plot.bars", "toymoe.plot.bars{ file = 'escape/p.svg', title = 't', values = {1, 2} }"),
        ("toymoe.plot.lines", "toymoe.plot.lines{ file = 'escape/deeper/p.svg', title = 't', series = { { x = {1, 2}, y = {3, 4} } } }"),
        ("save", "toymoe.model{ n_features = 2, n_hidden = 1 }:save('escape/m.npz')"),
        ("toymoe.load_npy", "toymoe.load_npy('escape/a.npy')"),
        ("toymoe.load_npz", "toymoe.load_npz('escape/a.npz')"),
        ("toymoe.load_json", "toymoe.load_json('escape/a.json')"),
        ("toymoe.load_model", "toymoe.load_model('escape/model.npz')"),
        ("toymoe.run_script", "toymoe.run_script{ script = 'other.lua', out = 'escape/sub' }"),
    ]

    @Test("Every file function refuses a path through a symbolic link that leaves the output directory")
    func escapesRefused() throws {
        let tree = try Tree()
        defer { try? FileManager.default.removeItem(at: tree.base) }
        try tree.link("escape", to: tree.elsewhere)
        let before = try tree.elsewhereListing()
        for (function, call) in Self.escapes {
            let (error, _) = try tree.run(call)
            let e = try #require(error, "`\(call)` succeeded through a link leading out")
            #expect(e.hasPrefix("test.lua:1:"), "no file:line in: \(e)")
            for needle in [function, "'escape", "symbolic link", "outside"] {
                #expect(e.contains(needle), "`\(call)`: expected '\(needle)' in: \(e)")
            }
            #expect(e.contains(tree.elsewhere.lastPathComponent), "the link's target is not named: \(e)")
        }
        #expect(try tree.elsewhereListing() == before)
    }

    @Test("A link as the file itself, a link deeper down, a dangling link and a linked cell directory are refused too")
    func otherLinks() throws {
        let tree = try Tree()
        defer { try? FileManager.default.removeItem(at: tree.base) }
        try tree.link("data/a.npy", to: tree.elsewhere.appendingPathComponent("a.npy"))
        try tree.link("sub/deep/escape", to: tree.elsewhere)
        try tree.link("dangling", to: tree.elsewhere.appendingPathComponent("missing/dir"))
        let before = try tree.elsewhereListing()
        let cases: [(String, [String])] = [
            ("toymoe.load_npy('data/a.npy')", ["toymoe.load_npy", "'data/a.npy'", "outside"]),
            ("toymoe.save_npy('data/a.npy', {5})", ["toymoe.save_npy", "'data/a.npy'", "outside"]),
            ("toymoe.save_json('sub/deep/escape/b.json', 1)", ["toymoe.save_json", "'sub/deep/escape'", "outside"]),
            ("toymoe.save_json('dangling/b.json', 1)", ["toymoe.save_json", "'dangling'", "does not exist"]),
        ]
        for (call, needles) in cases {
            let e = try #require(try tree.run(call).error, "`\(call)` succeeded")
            for needle in needles { #expect(e.contains(needle), "`\(call)`: expected '\(needle)' in: \(e)") }
        }
        #expect(try tree.elsewhereListing() == before)
        #expect(!FileManager.default.fileExists(atPath: tree.elsewhere.appendingPathComponent("missing").path))

        // Inside a sweep cell: a cell directory linked elsewhere is refused (the root is the output directory).
        let sweep = """
            toymoe.sweep{ grid = { a = {1} }, run = function(cell) toymoe.save_json('r.json', { a = cell.a }) return { a = cell.a } end }
            """
        let cellsTree = try Tree()
        defer { try? FileManager.default.removeItem(at: cellsTree.base) }
        try cellsTree.link("cells/c0000", to: cellsTree.elsewhere)
        let e = try #require(try cellsTree.run(sweep).error, "a cell wrote through a linked cell directory")
        #expect(e.contains("symbolic link") && e.contains("outside"), "\(e)")
        #expect(!FileManager.default.fileExists(atPath: cellsTree.elsewhere.appendingPathComponent("r.json").path))

        // cells/ itself linked elsewhere: the sweep host refuses to write its cell files there.
        let linkedCells = try Tree()
        defer { try? FileManager.default.removeItem(at: linkedCells.base) }
        try linkedCells.link("cells", to: linkedCells.elsewhere)
        let linkedBefore = try linkedCells.elsewhereListing()
        let e2 = try #require(try linkedCells.run(sweep).error, "the sweep wrote through a linked cells/")
        #expect(e2.contains("cells") && e2.contains("symbolic link") && e2.contains("outside"), "\(e2)")
        #expect(try linkedCells.elsewhereListing() == linkedBefore)
    }

    @Test("Links that stay inside the output directory are followed")
    func insideLinksAllowed() throws {
        let tree = try Tree()
        defer { try? FileManager.default.removeItem(at: tree.base) }
        try FileManager.default.createDirectory(at: tree.out.appendingPathComponent("real"), withIntermediateDirectories: true)
        try tree.link("alias", to: tree.out.appendingPathComponent("real"))
        let (error, result) = try tree.run("""
            toymoe.save_json('alias/v.json', { v = 7 })
            return { v = toymoe.load_json('real/v.json').v }
            """)
        #expect(error == nil, "\(error ?? "")")
        #expect(result["v"]?.intValue == 7)
    }

    @Test("run_script refuses a script that is a link leading out of the scripts tree")
    func runScriptLink() throws {
        let tree = try Tree()
        defer { try? FileManager.default.removeItem(at: tree.base) }
        try FileManager.default.createSymbolicLink(
            atPath: tree.base.appendingPathComponent("scripts/sub/linked.lua").path,
            withDestinationPath: tree.base.appendingPathComponent("evil.lua").path)
        let e = try #require(try tree.run("toymoe.run_script{ script = 'linked.lua', out = 'x' }").error)
        #expect(e.contains("toymoe.run_script") && e.contains("linked.lua") && e.contains("symbolic link") && e.contains("outside"), "\(e)")
        // The sibling that is a plain file still runs.
        let ok = try tree.run("return toymoe.run_script{ script = 'other.lua', out = 'x' }")
        #expect(ok.error == nil && ok.result["ok"] == .bool(true), "\(ok.error ?? "")")
    }

    @Test("--input NAME=DIR: readable as NAME/..., never writable, links inside DIR confined to DIR")
    func readOnlyInputs() throws {
        let tree = try Tree()
        defer { try? FileManager.default.removeItem(at: tree.base) }
        let outside = tree.base.appendingPathComponent("outside-input")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try JSONValue.object(["no": 1]).write(to: outside.appendingPathComponent("b.json"))
        try FileManager.default.createSymbolicLink(
            atPath: tree.elsewhere.appendingPathComponent("leak").path, withDestinationPath: outside.path)
        let inputs = ["ref": tree.elsewhere]
        let (error, result) = try tree.run("""
            local m = toymoe.load_model('ref/model.npz')
            return { a = toymoe.load_npy('ref/a.npy'), x = toymoe.load_npz('ref/a.npz').x, s = toymoe.load_json('ref/a.json').secret,
                     n = m.n_features, dir = toymoe.inputs.ref }
            """, inputs: inputs)
        #expect(error == nil, "\(error ?? "")")
        #expect(result["a"] == .array([.number(1), .number(2)]) || result["a"] == .array([.int(1), .int(2)]))
        #expect(result["s"]?.intValue == 42 && result["n"]?.intValue == 2)
        #expect(result["dir"]?.stringValue == tree.elsewhere.path)
        let config = try JSONValue(contentsOf: tree.out.appendingPathComponent("config.json"))
        #expect(config["inputs"]?["ref"]?.stringValue == tree.elsewhere.path)

        let before = try tree.elsewhereListing()
        let cases: [(String, [String])] = [
            ("toymoe.save_npy('ref/x.npy', {1})", ["toymoe.save_npy", "read-only input", "--input ref="]),
            ("toymoe.save_json('ref/a.json', {})", ["toymoe.save_json", "read-only input"]),
            ("toymoe.model{ n_features = 2, n_hidden = 1 }:save('ref/model.npz')", ["save", "read-only input"]),
            ("toymoe.plot.bars{ file = 'ref/p.svg', title = 't', values = {1} }", ["toymoe.plot.bars", "read-only input"]),
            ("toymoe.load_json('ref/leak/b.json')", ["toymoe.load_json", "'ref/leak'", "outside", "input 'ref'"]),
            ("toymoe.load_json('ref')", ["toymoe.load_json", "input directory itself"]),
            ("toymoe.load_json('ref/missing.json')", ["toymoe.load_json", "missing.json", "does not exist"]),
        ]
        for (call, needles) in cases {
            let e = try #require(try tree.run(call, inputs: inputs).error, "`\(call)` succeeded")
            for needle in needles { #expect(e.contains(needle), "`\(call)`: expected '\(needle)' in: \(e)") }
        }
        #expect(try tree.elsewhereListing() == before)
    }

    @Test("toymoe run --input: a bad NAME, a repeated NAME or a DIR that is not a directory is refused before the run")
    func inputOptionValidation() throws {
        let tree = try Tree()
        defer { try? FileManager.default.removeItem(at: tree.base) }
        try "return {}".write(to: tree.script, atomically: true, encoding: .utf8)
        let file = tree.elsewhere.appendingPathComponent("a.json").path
        let cases: [([String], [String])] = [
            (["1ref=\(tree.elsewhere.path)"], ["--input", "1ref", "NAME must be"]),
            (["a/b=\(tree.elsewhere.path)"], ["--input", "NAME must be"]),
            (["ref"], ["--input 'ref'", "NAME=DIR"]),
            (["ref=\(tree.elsewhere.path)", "ref=\(tree.base.path)"], ["'ref' is given twice"]),
            (["ref=\(tree.base.path)/missing"], ["missing", "does not exist"]),
            (["ref=\(file)"], [file, "not a directory"]),
        ]
        for (inputs, needles) in cases {
            let out = tree.base.appendingPathComponent("o-\(UUID().uuidString)")
            let r = try CLITests.toymoe(["run", tree.script.path, "--out", out.path] + inputs.flatMap { ["--input", $0] }, in: tree.base)
            #expect(r.status != 0, "\(inputs) accepted")
            for needle in needles { #expect(r.stderr.contains(needle), "\(inputs): expected '\(needle)' in: \(r.stderr)") }
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(inputs): the run started")
        }
        let ok = try CLITests.toymoe(["run", tree.script.path, "--out", tree.out.path, "--input", "ref_1=\(tree.elsewhere.path)", "--quiet"], in: tree.base)
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test("--resume deletes only the tool's own temporaries, in real directories only")
    func resumeCleanup() throws {
        let tree = try Tree()
        defer { try? FileManager.default.removeItem(at: tree.base) }
        let sweep = "toymoe.sweep{ grid = { a = {1, 2} }, run = function(cell) return { a = cell.a } end }"
        #expect(try tree.run(sweep).error == nil)
        let fm = FileManager.default
        let cells = tree.out.appendingPathComponent("cells")
        // The user's own files whose names merely look temporary, in OUT and OUT/cells.
        let userFiles = [tree.out.appendingPathComponent(".notes.tmp-draft"), cells.appendingPathComponent(".c0000.json.tmp-1"),
                         cells.appendingPathComponent(".x.toymoe-tmp-12345")]
        for f in userFiles { try Data("mine".utf8).write(to: f) }
        // Files behind a linked cell directory, one of them with exactly the tool's temporary form.
        let behindLink = [tree.elsewhere.appendingPathComponent(".r.json.toymoe-tmp-0123456789abcdef"),
                          tree.elsewhere.appendingPathComponent(".notes.tmp-draft")]
        for f in behindLink { try Data("elsewhere".utf8).write(to: f) }
        try tree.link("cells/c0009", to: tree.elsewhere)
        // A leftover of the tool's own interrupted write: deleted.
        let leftover = cells.appendingPathComponent(AtomicFile.temporaryName(for: "c0001.json"))
        try Data("{\"id\": \"c00".utf8).write(to: leftover)
        // A link with the tool's temporary form is not a regular file: left alone.
        let linkLeftover = tree.out.appendingPathComponent(".summary.csv.toymoe-tmp-00000000000000ff")
        try fm.createSymbolicLink(atPath: linkLeftover.path, withDestinationPath: tree.elsewhere.appendingPathComponent("a.npy").path)

        let again = try tree.run(sweep, resume: true)
        #expect(again.error == nil, "\(again.error ?? "")")
        for f in userFiles + behindLink { #expect(fm.fileExists(atPath: f.path), "deleted \(f.path)") }
        #expect(!fm.fileExists(atPath: leftover.path), "the tool's own temporary was not cleaned")
        var st = stat()
        #expect(lstat(linkLeftover.path, &st) == 0, "a link was deleted")
        #expect(fm.fileExists(atPath: tree.elsewhere.appendingPathComponent("a.npy").path))
    }

    @Test("fig4_phase.lua reads the authors' arrays through --input, and says so when the input is missing")
    func fig4ReferenceInput() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = repo.appendingPathComponent("scripts/paper/fig4_phase.lua")
        let out = try ScriptTestResult.temporaryDirectory("toymoe-fig4ref").appendingPathComponent("out")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }

        // A stand-in for the authors' arrays of architecture 211 (n = 2, m = 1, E = 1) on the full 39 × 58 grid,
        // sparsity-major: feature 2 (the last) has norm 1 and is orthogonal to feature 1 everywhere (monosemantic).
        let reference = out.deletingLastPathComponent().appendingPathComponent("authors/211")
        try FileManager.default.createDirectory(at: reference, withIntermediateDirectories: true)
        var keys: [Double] = [], weights: [Float] = []
        for si in 0..<39 {
            for ri in 0..<58 {
                keys += [((0.025 + 0.025 * Double(si)) * 1000).rounded() / 1000, ((0.10 + 0.05 * Double(ri)) * 100).rounded() / 100]
                weights += [0, 1]
            }
        }
        try NpyArray(float64: keys, shape: [2262, 2]).write(to: reference.appendingPathComponent("grid_keys.npy"))
        try NpyArray(float32: weights, shape: [2262, 1, 2, 1]).write(to: reference.appendingPathComponent("expert_weights.npy"))
        try NpyArray(float32: [Float](repeating: 0.05, count: 2262), shape: [2262]).write(to: reference.appendingPathComponent("final_losses.npy"))
        var o = ScriptRunOptions(
            script: script, params: [("archs", "211"), ("s_list", "0.025,0.5,0.9"), ("r_list", "1.5"), ("restarts", "1"), ("steps", "20")],
            out: out, quiet: true, printSink: { _ in })
        o.inputs = ["reference": reference.deletingLastPathComponent()]
        let outcome = try ScriptRunner.run(o)
        let authors = outcome.result?["architectures"]?["211"]?["experts"]?[0]?["authors_at_grid"]
        // Every stand-in cell is monosemantic: the fractions (ignored, monosemantic, superposed) read from the input.
        #expect(authors?["fractions"] == .array([.number(0), .number(1), .number(0)]) || authors?["fractions"] == .array([.int(0), .int(1), .int(0)]),
                "authors_at_grid: \(String(describing: authors))")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("fig4_phase_authors.svg").path))
        try FileManager.default.removeItem(at: out)

        let missing = ScriptRunOptions(script: script, params: [("reference", "ref"), ("archs", "211")], out: out, quiet: true, printSink: { _ in })
        do {
            _ = try ScriptRunner.run(missing)
            Issue.record("reference=ref without --input ref=DIR ran")
        } catch let e as ScriptRunError {
            for needle in ["fig4_phase.lua:", "reference=ref", "no read-only input named 'ref'", "--input ref=DIR"] {
                #expect(e.description.contains(needle), "expected '\(needle)' in: \(e.description)")
            }
        }
    }
}
