// Crash-safe file replacement.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure while writing a file atomically.
public struct AtomicFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The step that failed ("create temporary file", "write", "fsync", "rename", ...).
    public let operation: String
    /// The path involved in the failing step.
    public let path: String
    /// The `errno` value, or 0 if not applicable.
    public let code: Int32
    /// Human-readable reason (`strerror(code)` where available).
    public let reason: String

    public var description: String {
        "atomic write failed: cannot \(operation) \(path): \(reason)\(code != 0 ? " (errno \(code))" : "")"
    }
}

/// Writes files so that readers see either the old content or the complete
/// new content, never a partial file.
///
/// Steps: create a uniquely named temporary file `.NAME.toymoe-tmp-XXXXXXXXXXXXXXXX`
/// (see `temporaryName(for:)`) in the destination's directory (same directory, hence same file system, so
/// `rename(2)` is atomic), write everything, `fsync` it so the data is on disk
/// before the name points at it, `rename` over the destination, then `fsync`
/// the directory (best effort) so the rename itself survives a crash. On any
/// failure the temporary file is removed. The new file gets mode 0666 minus
/// the umask, like a normally created file. If the destination is a symbolic
/// link, the link itself is replaced.
public enum AtomicFile {
    /// Atomically replaces (or creates) the file at `url` with `bytes`.
    /// - Throws: `AtomicFileError` naming the path and the failing step.
    public static func write(_ bytes: [UInt8], to url: URL) throws {
        try bytes.withUnsafeBytes { try write(buffer: $0, to: url) }
    }

    /// Atomically replaces (or creates) the file at `url` with `data`.
    public static func write(_ data: Data, to url: URL) throws {
        try data.withUnsafeBytes { try write(buffer: $0, to: url) }
    }

    /// Atomically replaces (or creates) the file at `url` with the UTF-8 of `text`.
    public static func write(_ text: String, to url: URL) throws {
        try write(Array(text.utf8), to: url)
    }

    /// Creates a directory and its missing parents (mode 0777 minus the umask), like `mkdir -p`.
    /// - Throws: `AtomicFileError` naming the directory that could not be created and the OS reason
    ///   (e.g. "Read-only file system", "No space left on device", "Not a directory").
    public static func createDirectory(at url: URL) throws {
        let path = url.standardizedFileURL.path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return }
            throw failure("create directory", path, ENOTDIR)
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path { try createDirectory(at: URL(fileURLWithPath: parent, isDirectory: true)) }
        if mkdir(path, 0o777) != 0 && errno != EEXIST { throw failure("create directory", path, errno) }
    }

    /// The marker every temporary file of this tool carries, followed by exactly 16 lowercase hex digits.
    public static let temporaryMarker = ".toymoe-tmp-"
    /// At most this many bytes of the destination's name start a temporary name (for people reading a directory).
    static let temporaryNamePrefixBytes = 96

    /// A fresh temporary name for destination file name `name`: `.` + at most 96 bytes of `name` (cut at a
    /// character boundary of its UTF-8, never inside one) + `.toymoe-tmp-` + 16 random hex digits: at most 125
    /// bytes, well under NAME_MAX (255 bytes) for any legal destination name.
    public static func temporaryName(for name: String) -> String {
        var prefix = ""
        var bytes = 0
        for scalar in name.unicodeScalars {
            let n = UTF8.width(scalar)
            if bytes + n > temporaryNamePrefixBytes { break }
            bytes += n
            prefix.unicodeScalars.append(scalar)
        }
        let hex = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "." + prefix + temporaryMarker + String(repeating: "0", count: 16 - hex.utf8.count) + hex
    }

    /// True when `name` has the exact form `temporaryName(for:)` produces (a leading `.`, the marker, then 16
    /// lowercase hex digits at the end): the only files `--resume` may delete as leftovers of this tool.
    /// A user's `.notes.tmp-draft` or `.x.tmp-1` does not match.
    public static func isTemporaryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        let marker = Array(temporaryMarker.utf8)
        guard bytes.count >= 1 + marker.count + 16, bytes[0] == UInt8(ascii: ".") else { return false }
        let hex = bytes[(bytes.count - 16)...]
        guard hex.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return false }
        return Array(bytes[(bytes.count - 16 - marker.count)..<(bytes.count - 16)]) == marker
    }

    private static func failure(_ operation: String, _ path: String, _ code: Int32) -> AtomicFileError {
        AtomicFileError(operation: operation, path: path, code: code, reason: String(cString: strerror(code)))
    }

    private static func write(buffer: UnsafeRawBufferPointer, to url: URL) throws {
        guard url.isFileURL else {
            throw AtomicFileError(operation: "write", path: url.absoluteString, code: 0, reason: "not a file URL")
        }
        let destination = url.path
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        guard !name.isEmpty, name != "/" else {
            throw AtomicFileError(operation: "write", path: destination, code: 0, reason: "the path has no file name")
        }

        // Create the temporary file; O_EXCL guarantees we never clobber
        // another writer's temporary file, retry with a new name if taken.
        var descriptor: Int32 = -1
        var temporary = ""
        for _ in 0..<16 {
            temporary = (directory as NSString).appendingPathComponent(temporaryName(for: name))
            descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else { throw failure("create temporary file", temporary, errno) }

        var closed = false
        var renamed = false
        defer {
            if !closed { _ = close(descriptor) }
            if !renamed { _ = unlink(temporary) }
        }

        var offset = 0
        while offset < buffer.count {
            guard let base = buffer.baseAddress else { break }
            // Cap each call: some kernels reject single writes above 2 GiB.
            let chunk = min(buffer.count - offset, 1 << 30)
            let written = posixWrite(descriptor, base + offset, chunk)
            if written < 0 {
                if errno == EINTR { continue }
                throw failure("write", temporary, errno)
            }
            offset += written
        }
        guard fsync(descriptor) == 0 else { throw failure("fsync", temporary, errno) }
        closed = true
        guard close(descriptor) == 0 else { throw failure("close", temporary, errno) }
        guard rename(temporary, destination) == 0 else { throw failure("rename temporary file onto", destination, errno) }
        renamed = true

        // Persist the directory entry. Some file systems refuse fsync on
        // directories; the data is already safe, so ignore failures here.
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            _ = close(directoryDescriptor)
        }
    }
}

/// `write(2)`, named so that it does not collide with `AtomicFile.write`.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
