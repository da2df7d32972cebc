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
}
