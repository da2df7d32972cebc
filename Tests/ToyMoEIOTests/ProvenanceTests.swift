import Foundation
import Testing
import ToyMoEBuildInfo
import ToyMoEIO

@Suite("Provenance")
struct ProvenanceTests {
    @Test("ISO-8601 UTC formatting of known instants")
    func iso8601KnownValues() {
        #expect(Provenance.iso8601UTC(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Provenance.iso8601UTC(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(Provenance.iso8601UTC(Date(timeIntervalSince1970: 1_700_000_000.123_4)) == "2023-11-14T22:13:20.123Z")
        #expect(Provenance.iso8601UTC(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
        #expect(Provenance.iso8601UTC(Date(timeIntervalSince1970: 4_107_542_399.999)) == "2100-02-28T23:59:59.999Z")
    }

    @Test("ISO-8601 formatting agrees with Foundation's formatter")
    func iso8601AgreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SplitMix64(seed: 7)
        for _ in 0..<500 {
            // Whole milliseconds between 1900 and 2200, so neither side has to round.
            let millis = Int64(generator.next() % 9_467_280_000_000) - 2_208_988_800_000
            let date = Date(timeIntervalSince1970: Double(millis) / 1000)
            #expect(Provenance.iso8601UTC(date) == formatter.string(from: date))
        }
    }

    @Test("JSON has the documented keys in order and round trips")
    func jsonRoundTrip() throws {
        var record = Provenance(
            tool: "toymoe train", buildCommit: String(repeating: "cd", count: 20), buildDirty: true,
            buildSourcesSHA256: String(repeating: "ef", count: 32), cwdGitCommit: String(repeating: "ab", count: 20), seed: 42, kernelVariant: "simd",
            commandLine: ["toymoe", "train", "--seed", "42"], startTime: "2024-01-01T00:00:00.000Z",
            endTime: "2024-01-01T00:00:01.500Z", wallSeconds: 1.5,
            host: HostInfo(os: "Linux", osVersion: "6.1", architecture: "x86_64", cpuCount: 2, activeCPUCount: 2),
            extra: ["experts": 4, "sparsity": 0.9])
        let json = record.toJSON()
        #expect(json.objectValue?.keys == [
            "tool", "tool_version", "build_commit", "build_dirty", "build_sources_sha256", "cwd_git_commit", "seed", "kernel_variant", "command_line", "start_time",
            "end_time", "wall_seconds", "host", "swift_compiler", "extra",
        ])
        #expect(json["tool_version"] == .string(ToyMoEVersion.string))
        #expect(ToyMoEVersion.string == "0.1.0")
        #expect(json["seed"] == .int(42))
        #expect(json["swift_compiler"]?.stringValue?.hasPrefix(">=") == true)
        let text = try json.prettyPrinted()
        #expect(try Provenance(json: JSONValue(parsing: text)) == record)

        record.seed = .max
        record.cwdGitCommit = nil
        record.buildCommit = nil
        record.buildDirty = nil
        record.endTime = nil
        record.wallSeconds = nil
        #expect(record.toJSON()["seed"] == .string("18446744073709551615"))
        #expect(record.toJSON()["cwd_git_commit"] == .null)
        #expect(record.toJSON()["build_commit"] == .string("unknown"))
        #expect(record.toJSON()["build_dirty"] == .null)
        #expect(try Provenance(json: JSONValue(parsing: record.toJSON().prettyPrinted())) == record)
        #expect(record.toJSON()["build_sources_sha256"] == .string(String(repeating: "ef", count: 32)))
        // A file written before the source hash was recorded reads back with it unknown.
        guard case .object(var old) = record.toJSON() else { Issue.record("not an object"); return }
        old["build_sources_sha256"] = nil
        #expect(try Provenance(json: .object(old)).buildSourcesSHA256 == nil)

        expectError(ProvenanceError.self, { _ = try Provenance(json: ["tool": 3]) }) { $0.field == "tool" }
    }

    @Test("start and finish record times, host and compiler")
    func startFinish() throws {
        var record = Provenance.start(tool: "test", seed: 1, kernelVariant: "scalar", commandLine: ["x"], repository: nil)
        #expect(record.endTime == nil && record.wallSeconds == nil)
        #expect(record.host.cpuCount >= 1)
        #expect(record.cwdGitCommit == nil)
        #expect(record.buildCommit == ToyMoEBuild.commit && record.buildDirty == ToyMoEBuild.dirty)
        #expect(record.buildSourcesSHA256 == ToyMoEBuild.sourcesSHA256 && ToyMoEBuild.sourcesSHA256?.count == 64)
        record.finish()
        #expect(record.endTime != nil)
        #expect((record.wallSeconds ?? -1) >= 0)
        #expect(record.startTime <= record.endTime ?? "")
        _ = try record.toJSON().prettyPrinted()
    }

    @Test("git commit resolution from files: loose refs, packed refs, detached, worktrees")
    func gitCommit() throws {
        let root = try makeTemporaryDirectory("toymoe-git")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        func write(_ text: String, _ path: String, in base: URL = root) throws {
            let url = base.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: false, encoding: .utf8)
        }
        let hashA = "0123456789abcdef0123456789abcdef01234567"
        let hashB = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"

        // Not a repository.
        #expect(Provenance.gitCommit(at: root) == nil)

        // Unborn branch: HEAD names a ref that does not exist.
        try write("ref: refs/heads/main\n", ".git/HEAD")
        #expect(Provenance.gitCommit(at: root) == nil)

        // Packed ref.
        try write("# pack-refs with: peeled fully-peeled sorted \n\(hashB) refs/heads/main\n^\(hashA)\n", ".git/packed-refs")
        #expect(Provenance.gitCommit(at: root) == hashB.lowercased())

        // A loose ref wins over packed-refs; found from a subdirectory too.
        try write("\(hashA)\n", ".git/refs/heads/main")
        #expect(Provenance.gitCommit(at: root) == hashA)
        let sub = root.appendingPathComponent("Sources/Deep")
        try fm.createDirectory(at: sub, withIntermediateDirectories: true)
        #expect(Provenance.gitCommit(at: sub) == hashA)

        // Detached HEAD.
        try write("\(hashB)\n", ".git/HEAD")
        #expect(Provenance.gitCommit(at: root) == hashB.lowercased())

        // Refs that try to escape the git directory are refused.
        try write("ref: ../../etc/passwd\n", ".git/HEAD")
        #expect(Provenance.gitCommit(at: root) == nil)

        // Worktree: .git is a file pointing at a git dir with a commondir.
        try write("ref: refs/heads/main\n", ".git/HEAD")
        let worktree = root.appendingPathComponent("wt")
        try write("gitdir: ../.git/worktrees/wt\n", "wt/.git")
        try write("ref: refs/heads/feature\n", ".git/worktrees/wt/HEAD")
        try write("../..\n", ".git/worktrees/wt/commondir")
        try write("\(hashB)\n", ".git/refs/heads/feature")
        #expect(Provenance.gitCommit(at: worktree) == hashB.lowercased())
    }
}

@Suite("SHA-256")
struct SHA256Tests {
    @Test("FIPS 180-4 test vectors, including the two-block and padding-boundary cases")
    func vectors() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
