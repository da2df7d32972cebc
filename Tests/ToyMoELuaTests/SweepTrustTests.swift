import Foundation
import Testing
import ToyMoE
import ToyMoEIO
@testable import ToyMoELua

/// A sweep's results are each replicate's own, belong to the run that claims them, and survive interruption:
/// per-replicate directories, the fingerprint checked by --resume and merge, reserved result keys, non-finite and
/// ragged results, 0-based failed steps in files, the output directory's lock, and SIGINT/SIGTERM.
@Suite struct SweepTrustTests {
    /// Three replicates; the kept one (minimum `v`) is replicate 2 (Lua's ctx.replicate == 2), not the last.
    /// Every replicate saves a model and a JSON file naming itself under the same relative names.
    static let replicateScript = """
        toymoe.sweep{
          grid = { i = { 1, 2 } },
          replicates = 3,
          select = { minimize = "v" },
          run = function(cell, ctx)
            local m = toymoe.model{ n_features = 3, n_hidden = 2 }
            m:save("model.npz")
            toymoe.save_json("who.json", { replicate = ctx.replicate, w11 = m:get("W")[1][1][1] })
            return { v = (ctx.replicate == 2) and 0 or ctx.replicate + cell.i, w11 = m:get("W")[1][1][1] }
          end,
          finish = function(rows)
            local out = {}
            for _, row in ipairs(rows) do
              local kept = toymoe.load_json(row.dir .. "/who.json")
              local m = toymoe.load_model(row.dir .. "/model.npz")
              out[#out + 1] = { kept = kept.replicate, selected = row.selected, ndirs = #row.dirs,
                                dir = row.dir, w_ok = m:get("W")[1][1][1] == row.result.w11 }
            end
            return { rows = out }
          end,
        }
        """

    @Test("Each replicate writes into its own directory; finish(rows) reaches the kept replicate's files by row.dir")
    func replicateFilesAreTheirOwn() throws {
        let r = try ScriptTestResult.run(Self.replicateScript, seed: 3)
        for id in ["c0000", "c0001"] {
            var weights: Set<Double> = []
            for rep in 0..<3 {
                let dir = r.directory.appendingPathComponent("cells/\(id)/r\(rep)")
                let who = try JSONValue(contentsOf: dir.appendingPathComponent("who.json"))
                #expect(who["replicate"]?.intValue == rep + 1, "cells/\(id)/r\(rep) holds replicate \(rep)'s file")
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.npz").path))
                weights.insert(try #require(who["w11"]?.doubleValue))
            }
            #expect(weights.count == 3, "three replicates, three different models")
            // Nothing is written into the cell's directory itself, where replicates would overwrite each other.
            #expect(!FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("cells/\(id)/who.json").path))
        }
        let rows = try #require(r.result["rows"]?.arrayValue)
        #expect(rows.count == 2)
        for (i, row) in rows.enumerated() {
            #expect(row["kept"]?.intValue == 2 && row["selected"]?.intValue == 2, "\(row)")
            #expect(row["dir"]?.stringValue == "cells/c000\(i)/r1" && row["ndirs"]?.intValue == 3)
            #expect(row["w_ok"] == .bool(true), "the kept replicate's saved model is that replicate's")
        }
    }

    /// A sweep whose cells are cheap, for the CLI tests below.
    static let paramScript = """
        local steps = toymoe.param("steps", 3)
        toymoe.sweep{
          grid = { i = { 1, 2, 3, 4 } },
          run = function(cell)
            local m = toymoe.model{ n_features = 3, n_hidden = 2 }
            local r = toymoe.train(m, { data = toymoe.data{ n_features = 3, feature_probability = 0.5 },
                                        steps = steps, batch_size = 8 })
            return { final_loss = r.final_loss }
          end,
        }
        """

    @Test("--resume with other parameters, script, seed or kernels is refused naming what differs; an honest resume is not")
    func resumeRefusesAnotherRun() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-fingerprint")
        try Self.paramScript.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        // Half the cells, with steps=3.
        let half = try CLITests.toymoe(["run", "s.lua", "steps=3", "--out", "o", "--shard", "0/2", "--quiet"], in: dir)
        #expect(half.status == 0, "\(half.stderr)")
        let before = try OutputFiles.all(dir.appendingPathComponent("o")).filter { !OutputFiles.nonReproducible.contains($0.key) }
        func unchanged() throws -> Bool {
            try OutputFiles.all(dir.appendingPathComponent("o")).filter { !OutputFiles.nonReproducible.contains($0.key) } == before
        }
        // Other parameters: refused, naming the parameter and both values; nothing written.
        let other = try CLITests.toymoe(["run", "s.lua", "steps=30", "--out", "o", "--resume", "--quiet"], in: dir)
        #expect(other.status == 1 && other.stderr.contains("params: steps=3 vs steps=30"), "\(other.stderr)")
        #expect(try unchanged(), "config.json, script.lua and the cells still describe the steps=3 run")
        // Another seed, another kernel variant, an edited script: each refused by name.
        let seed = try CLITests.toymoe(["run", "s.lua", "steps=3", "--out", "o", "--resume", "--seed", "1"], in: dir)
        #expect(seed.status == 1 && seed.stderr.contains("seed: \"0\" vs \"1\""), "\(seed.stderr)")
        let kernels = try CLITests.toymoe(
            ["run", "s.lua", "steps=3", "--out", "o", "--resume", "--kernels", "scalar"], in: dir)
        if KernelVariant.current != "scalar" {  // the default is a SIMD variant wherever the CPU has one
            #expect(kernels.status == 1 && kernels.stderr.contains("kernel_variant:"), "\(kernels.stderr)")
        }
        try (Self.paramScript + "\n-- edited\n").write(to: dir.appendingPathComponent("s2.lua"), atomically: true, encoding: .utf8)
        let edited = try CLITests.toymoe(["run", "s2.lua", "steps=3", "--out", "o", "--resume"], in: dir)
        #expect(edited.status == 1 && edited.stderr.contains("script (SHA-256 of its text)"), "\(edited.stderr)")
        #expect(try unchanged())
        // The same run, spelled differently (other --jobs, --out with a trailing slash, no --quiet, other shard
        // option): continues and completes, equal to an uninterrupted run.
        let honest = try CLITests.toymoe(["run", "s.lua", "steps=3", "--out", "o/", "--resume", "--jobs", "2", "--shard", "0/1"], in: dir)
        #expect(honest.status == 0, "\(honest.stderr)")
        let full = try CLITests.toymoe(["run", "s.lua", "steps=3", "--out", "full", "--quiet"], in: dir)
        #expect(full.status == 0)
        try OutputFiles.expectSame(dir.appendingPathComponent("full"), dir.appendingPathComponent("o"), normalizeConfig: true)
        // --allow-mismatch: continues (nothing left to run here) and records what it accepted.
        let forced = try CLITests.toymoe(["run", "s.lua", "steps=30", "--out", "o", "--resume", "--allow-mismatch"], in: dir)
        #expect(forced.status == 0 && forced.stderr.contains("params: steps=3 vs steps=30"), "\(forced.stderr)")
        let spec = try JSONValue(contentsOf: dir.appendingPathComponent("o/sweep.json"))
        #expect(spec["accepted_mismatches"]?.arrayValue?.contains(.string("params: steps=3 vs steps=30")) == true)
    }

    @Test("A sweep records the build's source hash; --resume by another build of toymoe is refused by name")
    func resumeRefusesAnotherBuild() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-fingerprint-build")
        try Self.paramScript.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let half = try CLITests.toymoe(["run", "s.lua", "--out", "o", "--shard", "0/2", "--quiet"], in: dir)
        #expect(half.status == 0, "\(half.stderr)")
        let specURL = dir.appendingPathComponent("o/sweep.json")
        let spec = try JSONValue(contentsOf: specURL)
        let recorded = try #require(spec["fingerprint"]?["sources_sha256"]?.stringValue)
        #expect(recorded.count == 64 && recorded.allSatisfy(\.isHexDigit), "\(recorded)")
        let provenance = try JSONValue(contentsOf: dir.appendingPathComponent("o/provenance.json"))
        #expect(provenance["build_sources_sha256"]?.stringValue == recorded, "provenance and fingerprint name one build")
        // What another build would have written (a kernel edited after the first half ran): refused, naming it.
        let other = String(repeating: "0", count: 64)
        let text = try String(contentsOf: specURL, encoding: .utf8).replacingOccurrences(of: recorded, with: other)
        try text.write(to: specURL, atomically: true, encoding: .utf8)
        let before = try OutputFiles.all(dir.appendingPathComponent("o")).filter { !OutputFiles.nonReproducible.contains($0.key) }
        let resumed = try CLITests.toymoe(["run", "s.lua", "--out", "o", "--resume", "--quiet"], in: dir)
        #expect(resumed.status == 1 && resumed.stderr.contains("toymoe build (SHA-256 of its compiled sources")
            && resumed.stderr.contains(other) && resumed.stderr.contains(recorded), "\(resumed.stderr)")
        let after = try OutputFiles.all(dir.appendingPathComponent("o")).filter { !OutputFiles.nonReproducible.contains($0.key) }
        #expect(after == before, "no cell of the other build was added")
    }

    @Test("The build's source hash changes with any compiled file and only with them (build_info.sh)")
    func sourcesHashFollowsTheSources() throws {
        let root = PaperScriptsTests.root
        let copy = try ScriptTestResult.temporaryDirectory("toymoe-sources-hash")
        let fm = FileManager.default
        try fm.copyItem(at: root.appendingPathComponent("Sources"), to: copy.appendingPathComponent("Sources"))
        try fm.copyItem(at: root.appendingPathComponent("Package.swift"), to: copy.appendingPathComponent("Package.swift"))
        func hash() throws -> String {
            let out = copy.appendingPathComponent("generated-\(UUID().uuidString)")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = [root.appendingPathComponent("Plugins/BuildInfoPlugin/build_info.sh").path, copy.path, out.path,
                           copy.appendingPathComponent("work").path]
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let text = try String(contentsOf: out.appendingPathComponent("BuildInfo.swift"), encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.contains("sourcesSHA256") })
            return String(try #require(line.split(separator: "\"").dropFirst().first))
        }
        let first = try hash()
        #expect(first.count == 64)
        #expect(try hash() == first, "the same files give the same hash")
        try "notes".write(to: copy.appendingPathComponent("NOTES.txt"), atomically: true, encoding: .utf8)
        #expect(try hash() == first, "a file outside Sources/ and Package.swift does not count")
        try "x".write(to: copy.appendingPathComponent("Sources/ToyMoE/.DS_Store"), atomically: true, encoding: .utf8)
        try "x".write(to: copy.appendingPathComponent("Sources/ToyMoE/Model.swift.orig"), atomically: true, encoding: .utf8)
        #expect(try hash() == first, "files the compiler does not read (editor and OS leftovers) do not count")
        let kernel = copy.appendingPathComponent("Sources/ToyMoEKernels/MoEKernels.swift")
        try (String(contentsOf: kernel, encoding: .utf8) + "\n").write(to: kernel, atomically: true, encoding: .utf8)
        let edited = try hash()
        #expect(edited != first, "an edited kernel is another build")
        let flags = copy.appendingPathComponent("Package.swift")
        try (String(contentsOf: flags, encoding: .utf8) + "\n// flags\n").write(to: flags, atomically: true, encoding: .utf8)
        #expect(try hash() != edited, "Package.swift (compiler flags) counts")
    }

    @Test("toymoe merge refuses shards of other parameters or of an unrelated run with the same grid")
    func mergeRefusesOtherRuns() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-merge-fp")
        try Self.paramScript.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        try Self.paramScript.replacingOccurrences(of: "feature_probability = 0.5", with: "feature_probability = 0.25")
            .write(to: dir.appendingPathComponent("unrelated.lua"), atomically: true, encoding: .utf8)
        func shard(_ script: String, _ i: Int, _ out: String, _ params: [String] = ["steps=3"]) throws {
            let r = try CLITests.toymoe(["run", script] + params + ["--out", out, "--shard", "\(i)/2", "--quiet"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
        }
        try shard("s.lua", 0, "a0")
        try shard("s.lua", 1, "a1", ["steps=4"])
        try shard("unrelated.lua", 1, "u1")
        try shard("s.lua", 1, "good1")
        let params = try CLITests.toymoe(["merge", "m1", "a0", "a1"], in: dir)
        #expect(params.status == 1 && params.stderr.contains("params: steps=3 vs steps=4"), "\(params.stderr)")
        let unrelated = try CLITests.toymoe(["merge", "m2", "a0", "u1"], in: dir)
        #expect(unrelated.status == 1 && unrelated.stderr.contains("script (SHA-256 of its text)"), "\(unrelated.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("m2/summary.csv").path))
        let good = try CLITests.toymoe(["merge", "m3", "a0", "good1"], in: dir)
        #expect(good.status == 0, "\(good.stderr)")
    }

    @Test("A shard's saved files travel with its cells through toymoe merge")
    func mergeCopiesReplicateFiles() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-merge-files")
        try Self.replicateScript.write(to: dir.appendingPathComponent("r.lua"), atomically: true, encoding: .utf8)
        for i in 0..<2 {
            let r = try CLITests.toymoe(["run", "r.lua", "--out", "s\(i)", "--shard", "\(i)/2", "--quiet"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let merged = try CLITests.toymoe(["merge", "m", "s0", "s1"], in: dir)
        #expect(merged.status == 0, "\(merged.stderr)")
        let full = try CLITests.toymoe(["run", "r.lua", "--out", "full", "--quiet"], in: dir)
        #expect(full.status == 0)
        let a = try OutputFiles.all(dir.appendingPathComponent("full/cells"))
        let b = try OutputFiles.all(dir.appendingPathComponent("m/cells"))
        #expect(a.keys.filter { $0.hasSuffix("model.npz") }.count == 6)
        #expect(a == b, "the merged cells/ (cell files and every replicate's files) equal the unsharded run's")
        // finish runs on the merged directory and reaches the kept replicates' files.
        let finish = try CLITests.toymoe(["run", "r.lua", "--out", "m", "--resume", "--quiet"], in: dir)
        #expect(finish.status == 0, "\(finish.stderr)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("m/result.json")) == Data(contentsOf: dir.appendingPathComponent("full/result.json")))
    }

    @Test("A reserved result key is refused at the first cell that returns it, naming the key and the reserved set")
    func reservedKeys() throws {
        for key in ["replicate", "seed", "failed_step", "param_x"] {
            let script = """
                toymoe.sweep{ grid = { i = { 1, 2, 3 } }, run = function(cell)
                  return { v = cell.i, \(key) = 7 }
                end }
                """
            let dir = try ScriptTestResult.temporaryDirectory("toymoe-reserved")
            let out = dir.appendingPathComponent("out")
            do {
                _ = try ScriptTestResult.run(script, out: out)
                Issue.record("\(key): accepted")
            } catch let e as ScriptRunError {
                #expect(e.description.contains("cell c0000 replicate 0: run returned the result key '\(key)', which is reserved"), "\(e)")
                #expect(e.description.contains("cell_id, replicate, seed, status, failed, failed_step, failure_reason"), "\(e)")
            }
            // Refused before the first cell was recorded, not after every cell ran.
            let cells = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("cells").path)
            #expect(cells.filter { $0.hasSuffix(".json") }.isEmpty, "\(key): \(cells)")
        }
    }

    @Test("A grid axis or cell parameter named like a summary.csv column is refused when the sweep is declared")
    func reservedParameters() throws {
        for (decl, expected) in [
            ("grid = { replicate = { 1, 2 } }", "toymoe.sweep: grid: axis 'replicate' is reserved"),
            ("cells = { { a = 1 }, { status = 2 } }", "toymoe.sweep: cells[2]: parameter 'status' is reserved"),
        ] {
            do {
                _ = try ScriptTestResult.run("toymoe.sweep{ \(decl), run = function() return {} end }")
                Issue.record("\(decl): accepted")
            } catch let e as ScriptRunError {
                #expect(e.description.contains("test.lua:1: ") && e.description.contains(expected), "\(e)")
            }
        }
    }

    @Test("Fingerprint: SHA-256 is right; parameter order and repeats do not matter; an old sweep.json is named")
    func fingerprintUnits() throws {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = String(repeating: "a", count: 1000)  // several 64-byte blocks, padding across a block
        #expect(SHA256.hex(Array(long.utf8)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        let a = SweepFingerprint(script: "x", params: [("b", "2"), ("a", "1")], kernelVariant: "scalar")
        let b = SweepFingerprint(script: "x", params: [("a", "0"), ("a", "1"), ("b", "2")], kernelVariant: "scalar")
        #expect(a == b)
        let recorded: JSONValue = .object(["name": "s", "seed": "0", "cells": .array([])])
        var now = recorded.objectValue!
        now["fingerprint"] = a.json
        #expect(SweepFingerprint.differences(recorded, .object(now)) == ["fingerprint: absent (written by an older toymoe) vs present"])
        // Two builds with a source hash agree only when the hashes do; two without one never agree.
        func declaration(_ f: SweepFingerprint) -> JSONValue {
            var o = recorded.objectValue!
            o["fingerprint"] = f.json
            return .object(o)
        }
        let h1 = String(repeating: "1", count: 64), h2 = String(repeating: "2", count: 64)
        let one = SweepFingerprint(script: "x", params: [], kernelVariant: "scalar", sourcesSHA256: h1)
        #expect(SweepFingerprint.differences(declaration(one), declaration(one)).isEmpty)
        let other = SweepFingerprint(script: "x", params: [], kernelVariant: "scalar", sourcesSHA256: h2)
        #expect(SweepFingerprint.differences(declaration(one), declaration(other)).first?.contains("toymoe build (SHA-256") == true)
        let unknown = SweepFingerprint(script: "x", params: [], kernelVariant: "scalar", sourcesSHA256: nil)
        #expect(unknown.json["sources_sha256"]?.stringValue == "unknown")
        #expect(SweepFingerprint.differences(declaration(unknown), declaration(unknown)).first?.contains("unknown on both sides") == true)
    }

    @Test("A result holding a function names the cell, the replicate and the key")
    func functionResultNamesTheKey() throws {
        let script = """
            toymoe.sweep{ grid = { i = { 1, 2 } }, run = function(cell)
              return { v = 1, nested = { 1, 2, function() end } }
            end }
            """
        do {
            _ = try ScriptTestResult.run(script)
            Issue.record("accepted")
        } catch let e as ScriptRunError {
            #expect(e.description.contains("sweep cell c0000 replicate 0: run's result key 'nested'[3]: cannot store a function"), "\(e)")
        }
    }

    @Test("±Inf results are inf/-inf in summary.csv and numbers in finish; ragged keys are left out with a warning")
    func nonFiniteAndRagged() throws {
        let script = """
            toymoe.sweep{
              grid = { i = { 1, 2, 3 } },
              run = function(cell)
                local r = { loss = cell.i == 1 and math.huge or (cell.i == 2 and -math.huge or 0.5),
                            ragged = {}, label = "x" .. cell.i, list = { cell.i, 0/0 } }
                for k = 1, cell.i do r.ragged[k] = k end
                if cell.i == 2 then r.sometimes = 5 end
                return r
              end,
              finish = function(rows)
                local a, b = rows[1].replicates[1], rows[2].replicates[1]
                return { inf = a.loss == math.huge, neg = b.loss == -math.huge, nan = a.list[2] ~= a.list[2] }
              end,
            }
            """
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-nonfinite")
        try script.replacingOccurrences(of: "toymoe.sweep{", with: "toymoe.sweep{ select = { minimize = \"loss\" },")
            .write(to: dir.appendingPathComponent("n.lua"), atomically: true, encoding: .utf8)
        let cli = try CLITests.toymoe(["run", "n.lua", "--out", "o", "--quiet"], in: dir)
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(cli.stderr.contains("toymoe: warning: result 'ragged' is not in results.npz: its shape differs between rows"), "\(cli.stderr)")
        #expect(!cli.stderr.contains("'label'"), "string columns are CSV-only by design, without a warning")
        let csv = try String(contentsOf: dir.appendingPathComponent("o/summary.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = lines[0]
        #expect(header.prefix(5) == ["cell_id", "replicate", "i", "label", "loss"], "\(header)")
        let loss = try #require(header.firstIndex(of: "loss")), sometimes = try #require(header.firstIndex(of: "sometimes"))
        #expect(lines[1][loss] == "inf" && lines[2][loss] == "-inf" && lines[3][loss] == "0.5", "\(csv)")
        #expect(lines[1][sometimes] == "" && lines[2][sometimes] == "5")
        let npz = try Npz.read(contentsOf: dir.appendingPathComponent("o/results.npz"))
        #expect(!npz.entries.contains { $0.name == "ragged" })
        #expect(try npz.array(named: "loss").asFloat64() == [.infinity, -.infinity, 0.5])
        // A key some rows lack: NaN there (float64), not dropped.
        let filled = try npz.array(named: "sometimes").asFloat64()
        #expect(filled.count == 3 && filled[0].isNaN && filled[1] == 5 && filled[2].isNaN)
        #expect(try npz.array(named: "list").shape == [3, 2])
        #expect(try npz.array(named: "failed_step").asInt64() == [-1, -1, -1])
        let r = try ScriptTestResult.run(script)
        #expect(r.result["inf"] == .bool(true) && r.result["neg"] == .bool(true) && r.result["nan"] == .bool(true), "\(r.result)")
    }

    @Test("--out \"\" is refused; SLURM_ARRAY_TASK_COUNT=0 says what is wrong")
    func badOutAndSlurm() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-badout")
        try Self.paramScript.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let empty = try CLITests.toymoe(["run", "s.lua", "--out", ""], in: dir)
        #expect(empty.status != 0 && empty.stderr.contains("--out: expected a directory, got an empty path"), "\(empty.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("script.lua").path))
        let zero = try CLITests.toymoe(
            ["run", "s.lua", "--out", "o"], environment: ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "0"], in: dir)
        #expect(zero.status != 0 && zero.stderr.contains("SLURM_ARRAY_TASK_COUNT: expected at least 1"), "\(zero.stderr)")
        let word = try CLITests.toymoe(
            ["run", "s.lua", "--out", "o"], environment: ["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"], in: dir)
        #expect(word.status != 0 && word.stderr.contains("SLURM_ARRAY_TASK_ID: expected an integer, got 'x'"), "\(word.stderr)")
    }

    @Test("A second run into a locked output directory is refused, naming the holder")
    func lockedOutput() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-lock")
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var holder: OutputLock? = try OutputLock(directory: out, commandLine: ["toymoe", "run", "holder.lua"])
        do {
            _ = try ScriptTestResult.run(Self.paramScript, out: out)
            Issue.record("ran while the directory was locked")
        } catch let e as ScriptRunError {
            #expect(e.description.contains("is in use by another toymoe process (pid \(getpid()) on "), "\(e)")
            #expect(e.description.contains("command: toymoe run holder.lua"), "\(e)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("cells").path), "nothing was run")
        // Merge takes the same lock.
        #expect(throws: SweepError.self) { _ = try SweepSummary.merge(destination: out, sources: []) }
        holder = nil
        _ = holder
        _ = try ScriptTestResult.run(Self.paramScript, out: out)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("summary.csv").path))
    }
}

/// Child processes: two runs into one directory at once, and SIGINT/SIGTERM during a sweep.
@Suite(.serialized) struct SweepInterruptTests {
    /// Cells of ~0.1-0.3 s each (debug build), so a signal lands mid-sweep.
    static let slowScript = """
        toymoe.sweep{
          grid = { i = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } },
          run = function(cell)
            local m = toymoe.model{ n_features = 20, n_hidden = 5 }
            local r = toymoe.train(m, { data = toymoe.data{ n_features = 20, feature_probability = 0.3 },
                                        steps = 3000, batch_size = 64 })
            toymoe.save_npy("w.npy", m:get("W"))
            return { final_loss = r.final_loss }
          end,
        }
        """

    /// Waits until `count` cell files exist (or 60 s pass).
    static func waitForCells(_ cells: URL, count: Int) {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let n = ((try? FileManager.default.contentsOfDirectory(atPath: cells.path)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.count
            if n >= count { return }
            usleep(5_000)
        }
    }

    @Test("SIGINT and SIGTERM mid-sweep: a message naming --resume, exit 130/143, no file looks finished that is not; --resume completes to the same bytes")
    func interrupted() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-sigint")
        try Self.slowScript.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let reference = try CLITests.toymoe(["run", "s.lua", "--out", "ref", "--quiet"], in: dir)
        #expect(reference.status == 0, "\(reference.stderr)")
        for (sig, expected, name) in [(SIGINT, Int32(130), "SIGINT"), (SIGTERM, Int32(143), "SIGTERM")] {
            let out = "o-\(name)"
            let child = try ChildProcess.start(
                ["run", dir.appendingPathComponent("s.lua").path, "--out", dir.appendingPathComponent(out).path, "--quiet", "--jobs", "2"],
                in: dir)
            Self.waitForCells(dir.appendingPathComponent("\(out)/cells"), count: 3)
            kill(child.pid, sig)
            let r = child.wait()
            #expect(!r.signaled && r.status == expected, "\(name): status \(r.status) signaled \(r.signaled): \(r.stderr)")
            #expect(r.stderr.contains("toymoe: interrupted by \(name)") && r.stderr.contains("run the same command with --resume to continue"), "\(r.stderr)")
            let root = dir.appendingPathComponent(out)
            let files = try OutputFiles.all(root)
            let refFiles = try OutputFiles.all(dir.appendingPathComponent("ref"))
            let finished = files.keys.filter { $0.hasPrefix("cells/c") && $0.hasSuffix(".json") }
            #expect(finished.count >= 3 && finished.count < 16, "\(name): interrupted midway: \(finished.count) cells")
            #expect(files["summary.csv"] == nil)
            // Every finished cell (and its saved files) equals the uninterrupted run's.
            for cell in finished {
                let id = String(cell.dropFirst("cells/".count).dropLast(5))
                for (k, v) in files where k == cell || k.hasPrefix("cells/\(id)/") {
                    #expect(refFiles[k] == v, "\(k) is complete and correct")
                }
            }
            // The same command (absolute paths, --jobs 2) with --resume.
            let resumed = try CLITests.toymoe(
                ["run", dir.appendingPathComponent("s.lua").path, "--out", root.path, "--quiet", "--jobs", "2", "--resume"], in: dir)
            #expect(resumed.status == 0, "\(resumed.stderr)")
            try OutputFiles.expectSame(dir.appendingPathComponent("ref"), root, normalizeConfig: true)
            print("\(name): exit \(r.status) after \(String(format: "%.2f", r.seconds)) s with \(finished.count)/16 cells finished; peak RSS \(r.peakRSSText) (polled); --resume matched the uninterrupted run")
        }
    }

    @Test("Two runs into one --out at once: the second is refused at once naming the first; kill -9 of the holder frees the lock")
    func concurrentRuns() throws {
        let dir = try ScriptTestResult.temporaryDirectory("toymoe-concurrent")
        try Self.slowScript.write(to: dir.appendingPathComponent("s.lua"), atomically: true, encoding: .utf8)
        let script = dir.appendingPathComponent("s.lua").path, out = dir.appendingPathComponent("o").path
        let first = try ChildProcess.start(["run", script, "--out", out, "--quiet"], in: dir)
        Self.waitForCells(dir.appendingPathComponent("o/cells"), count: 1)
        let started = Date()
        let second = try CLITests.toymoe(["run", "s.lua", "--out", "o", "--quiet", "--resume"], in: dir)
        let seconds = Date().timeIntervalSince(started)
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("is in use by another toymoe process (pid \(first.pid) on "), "\(second.stderr)")
        #expect(second.stderr.contains("command: \(CLITests.executable.path) run \(script) --out \(out) --quiet"), "\(second.stderr)")
        kill(first.pid, SIGKILL)
        let r = first.wait()
        #expect(r.signaled)
        let resumed = try CLITests.toymoe(["run", script, "--out", out, "--quiet", "--resume"], in: dir)
        #expect(resumed.status == 0, "the kernel released the killed holder's lock: \(resumed.stderr)")
        let timings = try String(contentsOf: dir.appendingPathComponent("o/timings.csv"), encoding: .utf8)
        let ids = timings.split(separator: "\n").dropFirst().map { $0.split(separator: ",")[0] }
        // No cell computed twice (a cell finished just before the kill may lack its timing row).
        #expect(ids.count == Set(ids).count && ids.count >= 15, "every cell computed once: \(ids)")
        print("concurrent run refused in \(String(format: "%.2f", seconds)) s; resume after kill -9 of the holder succeeded")
    }
}
