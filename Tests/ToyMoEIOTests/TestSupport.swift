// Helpers shared by the ToyMoEIO tests.

import Foundation
import Testing
import ToyMoEIO

/// A fresh, uniquely named directory under the system temporary directory.
func makeTemporaryDirectory(_ label: String = "toymoe-io") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs `body` and checks that it throws an error of type `E` accepted by `matches`.
/// Records an issue (instead of crashing or passing silently) otherwise.
func expectError<E: Error>(
    _: E.Type, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void, matches: (E) -> Bool = { _ in true }
) {
    do {
        try body()
        Issue.record("expected \(E.self) to be thrown, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as E {
        #expect(matches(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(E.self), got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
}

/// Output of a finished child process.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `python3 -c script args...` in `directory`. Output goes to files, not
/// pipes, so a chatty child can never block on a full pipe buffer.
func runPython(_ script: String, arguments: [String] = [], in directory: URL) throws -> ProcessResult {
    let stdoutURL = directory.appendingPathComponent("python-\(UUID().uuidString).out")
    let stderrURL = directory.appendingPathComponent("python-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: stdoutURL)
        try? FileManager.default.removeItem(at: stderrURL)
    }
    let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
    let stderrHandle = try FileHandle(forWritingTo: stderrURL)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    process.currentDirectoryURL = directory
    process.standardOutput = stdoutHandle
    process.standardError = stderrHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try stdoutHandle.close()
    try stderrHandle.close()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "")
}

/// True when `python3 -c "import numpy"` succeeds. Evaluated once; prints a
/// note when the numpy interop tests are going to be skipped.
let numpyAvailable: Bool = {
    let available: Bool
    do {
        let directory = try makeTemporaryDirectory("toymoe-numpy-probe")
        defer { try? FileManager.default.removeItem(at: directory) }
        available = try runPython("import numpy", in: directory).status == 0
    } catch {
        available = false
    }
    if !available {
        print("note: python3 with numpy not available; skipping numpy interop tests")
    }
    return available
}()

/// Builds an NPY file by hand from a header dict text, padding it the way the
/// format requires (total header a multiple of 64, ending in '\n').
func craftNpy(_ dict: String, data: [UInt8], major: UInt8 = 1) -> [UInt8] {
    let dictBytes = Array(dict.utf8)
    let prefixLength = major == 1 ? 10 : 12
    let unpadded = dictBytes.count + 1
    let padding = (64 - (prefixLength + unpadded) % 64) % 64
    let headerLength = unpadded + padding
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
    if major == 1 {
        bytes += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
    } else {
        bytes += (0..<4).map { UInt8((headerLength >> (8 * $0)) & 0xFF) }
    }
    bytes += dictBytes + Array(repeating: 0x20, count: padding) + [0x0A]
    return bytes + data
}

/// A deterministic sample array of the given dtype and shape.
func sampleArray(_ dtype: NpyDType, shape: [Int]) throws -> NpyArray {
    let count = shape.reduce(1, *)
    switch dtype {
    case .float32: return try NpyArray(float32: (0..<count).map { Float($0) * 0.37 - 1.5 }, shape: shape)
    case .float64: return try NpyArray(float64: (0..<count).map { Double($0) / 3 - 2.25 }, shape: shape)
    case .int32: return try NpyArray(int32: (0..<count).map { Int32($0) * 100_003 - 7 }, shape: shape)
    case .int64: return try NpyArray(int64: (0..<count).map { Int64($0) * 1_000_000_007_000 - 3 }, shape: shape)
    case .uint8: return try NpyArray(uint8: (0..<count).map { UInt8(($0 * 37) % 256) }, shape: shape)
    case .bool: return try NpyArray(bool: (0..<count).map { $0 % 3 == 0 }, shape: shape)
    }
}

/// Little-endian 16-bit value at `offset` (test-side decoding, independent of the module's).
func le16(_ bytes: [UInt8], _ offset: Int) -> Int {
    Int(bytes[offset]) | Int(bytes[offset + 1]) << 8
}

/// Little-endian 32-bit value at `offset`.
func le32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
}
