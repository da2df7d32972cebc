import Foundation
import Testing
import ToyMoEIO

@Suite("Atomic file writing")
struct AtomicFileTests {
    @Test("content is written and no temporary file is left behind")
    func writeLeavesNoTemporaryFile() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("out.bin")
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try AtomicFile.write(bytes, to: url)
        #expect([UInt8](try Data(contentsOf: url)) == bytes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.bin"])

        // Replacing an existing file.
        try AtomicFile.write(Data("second".utf8), to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "second")
        try AtomicFile.write("third ✓", to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "third ✓")
        try AtomicFile.write([UInt8](), to: url)
        #expect(try Data(contentsOf: url).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.bin"])
    }

    @Test("failures throw an error naming the path and leave nothing behind")
    func failures() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("no/such/dir/file.txt")
        expectError(AtomicFileError.self, { try AtomicFile.write("x", to: missing) }) {
            $0.description.contains(directory.appendingPathComponent("no/such/dir").path) && $0.code == ENOENT
        }
        // Renaming a file over a non-empty directory fails; the temp file must be cleaned up.
        let occupied = directory.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: occupied.appendingPathComponent("child"), withIntermediateDirectories: true)
        expectError(AtomicFileError.self, { try AtomicFile.write("x", to: occupied) }) {
            $0.operation.contains("rename") && $0.path == occupied.path
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["occupied"])
    }

    @Test("concurrent writers never expose a partial file")
    func concurrentWriters() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("shared.bin")
        let size = 200_000
        try AtomicFile.write([UInt8](repeating: 0, count: size), to: url)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 1...4 {
                group.addTask {
                    for _ in 0..<10 {
                        try AtomicFile.write([UInt8](repeating: UInt8(writer), count: size), to: url)
                    }
                }
            }
            group.addTask {
                for _ in 0..<50 {
                    let content = [UInt8](try Data(contentsOf: url))
                    #expect(content.count == size)
                    #expect(Set(content).count == 1)
                }
            }
            try await group.waitForAll()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["shared.bin"])
    }

    @Test("a legal 244-byte UTF-8 name is written: the temporary name is cut by bytes, not characters")
    func longUTF8Name() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // 81 three-byte characters and one ASCII letter: 244 bytes, a legal name (NAME_MAX is 255 bytes).
        let name = String(repeating: "€", count: 81) + "a"
        #expect(name.utf8.count == 244)
        let url = directory.appendingPathComponent(name)
        try AtomicFile.write("ok", to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == "ok")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [name])
        for candidate in [name, String(repeating: "😀", count: 63), "x"] {
            let t = AtomicFile.temporaryName(for: candidate)
            #expect(t.utf8.count <= 125, "\(t.utf8.count) bytes")
            #expect(AtomicFile.isTemporaryName(t), "\(t)")
            #expect(String(validating: Array(t.utf8), as: UTF8.self) != nil)
        }
    }

    @Test("only the exact temporary form is recognised as the tool's own")
    func temporaryNames() {
        #expect(AtomicFile.isTemporaryName(".model.npz.toymoe-tmp-0123456789abcdef"))
        for name in [".notes.tmp-draft", ".x.tmp-0123456789abcdef", "model.npz.toymoe-tmp-0123456789abcdef",
                     ".x.toymoe-tmp-0123456789ABCDEF", ".x.toymoe-tmp-0123456789abcde", ".x.toymoe-tmp-0123456789abcdefa",
                     ".x.toymoe-tmp-0123456789abcdeg", ".toymoe-tmp-"] {
            #expect(!AtomicFile.isTemporaryName(name), "\(name)")
        }
    }
}
