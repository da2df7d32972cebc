// PNG and PDF copies of SVG figures, made by an external SVG renderer (librsvg's `rsvg-convert`).
//
// ToyMoE draws SVG by hand; rasterizing and PDF output need a real renderer (fonts, anti-aliasing, PDF
// structure), which is not worth re-implementing. When none is installed the caller is told so, never left
// with a figure that silently lacks its PNG/PDF.

import Foundation

/// Converts SVG files to PNG and PDF with `rsvg-convert`.
public enum FigureExport {
    /// An output format.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        case png, pdf

        /// The first bytes every valid file of this format starts with.
        public var magic: [UInt8] {
            switch self {
            case .png: return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            case .pdf: return Array("%PDF-".utf8)
            }
        }
    }

    /// The environment variable that overrides the converter: a path to an `rsvg-convert`-compatible program,
    /// or `none` to disable export (e.g. to test the not-installed path, or to save time).
    public static let environmentKey = "TOYMOE_SVG_CONVERTER"

    /// PNG resolution: 2 pixels per SVG unit, sharp on slides and high-DPI screens.
    public static let pngZoom = 2

    /// The converter to use, or nil with the reason: `TOYMOE_SVG_CONVERTER` if set (an executable path, or
    /// `none`), else the first executable `rsvg-convert` on `PATH`.
    public static func converter(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> (url: URL?, reason: String) {
        let fm = FileManager.default
        if let override = environment[environmentKey], !override.isEmpty {
            if override == "none" { return (nil, "\(environmentKey)=none disables PNG/PDF export") }
            if fm.isExecutableFile(atPath: override) { return (URL(fileURLWithPath: override), override) }
            return (nil, "\(environmentKey)=\(override) is not an executable file")
        }
        for dir in (environment["PATH"] ?? "").split(separator: ":") where !dir.isEmpty {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("rsvg-convert")
            if fm.isExecutableFile(atPath: candidate.path) { return (candidate, candidate.path) }
        }
        return (nil, "rsvg-convert is not installed (Debian/Ubuntu: apt-get install librsvg2-bin; macOS: brew install librsvg)")
    }

    /// Failure of one conversion.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let file: String
        public let reason: String
        public var description: String { "cannot export \(file): \(reason)" }
    }

    /// Writes `<svg's name without .svg>.png` / `.pdf` next to `svg` for each format, each written to a
    /// temporary name and renamed once complete and checked (magic bytes), so a reader never sees half a file.
    /// The converter gets `timeout` seconds per file; a slower one is killed. It runs with `SOURCE_DATE_EPOCH=0`
    /// (unless set), so the same SVG gives the same PNG and PDF bytes.
    /// - Returns: the files written, in `formats` order.
    /// - Throws: `Failure` naming the file when the converter fails, times out or writes something that is
    ///   not a PNG/PDF.
    public static func export(svg: URL, formats: [Format], converter: URL, timeout: Double = 60) throws -> [URL] {
        var written: [URL] = []
        let base = svg.deletingPathExtension()
        for format in formats {
            let target = base.appendingPathExtension(format.rawValue)
            let temporary = target.deletingLastPathComponent()
                .appendingPathComponent(".\(target.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: temporary) }
            var arguments = ["--format", format.rawValue, "--output", temporary.path]
            if format == .png { arguments += ["--zoom", String(pngZoom)] }
            arguments.append(svg.path)
            let (status, stderr) = try run(converter, arguments, timeout: timeout, file: target.lastPathComponent)
            guard status == 0 else {
                throw Failure(file: target.lastPathComponent,
                              reason: "\(converter.lastPathComponent) exited with status \(status): \(stderr.prefix(300))")
            }
            let head = (try? FileHandle(forReadingFrom: temporary)).map { h -> [UInt8] in
                defer { try? h.close() }
                return [UInt8]((try? h.read(upToCount: 8)) ?? Data())
            } ?? []
            guard head.starts(with: format.magic) else {
                throw Failure(file: target.lastPathComponent,
                              reason: "\(converter.lastPathComponent) did not write a \(format.rawValue.uppercased()) file")
            }
            do {
                if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
                try FileManager.default.moveItem(at: temporary, to: target)
            } catch {
                throw Failure(file: target.lastPathComponent, reason: "\(error)")
            }
            written.append(target)
        }
        return written
    }

    /// Width and height in pixels from a PNG's IHDR chunk, or nil if `data` is not a PNG.
    public static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, bytes.starts(with: Format.png.magic), Array(bytes[12..<16]) == Array("IHDR".utf8) else { return nil }
        func be32(_ i: Int) -> Int { bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (be32(16), be32(20))
    }

    /// Runs the converter with stdin closed and stderr captured; kills it after `timeout` seconds.
    private static func run(_ program: URL, _ arguments: [String], timeout: Double, file: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        // A PDF records its creation time; a fixed one (the reproducible-builds convention, unless the caller set
        // its own) keeps a rerun's PDF byte-identical, as every other file of a run is.
        var environment = ProcessInfo.processInfo.environment
        if environment["SOURCE_DATE_EPOCH"] == nil { environment["SOURCE_DATE_EPOCH"] = "0" }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let errPipe = Pipe()
        process.standardError = errPipe
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        do { try process.run() } catch {
            throw Failure(file: file, reason: "cannot start \(program.path): \(error)")
        }
        // Drain stderr while the child runs (a full pipe would block it).
        let errData = LockedData()
        let reader = Thread { errData.set(errPipe.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            done.wait()
            throw Failure(file: file, reason: "\(program.lastPathComponent) took longer than \(Int(timeout)) s and was stopped")
        }
        errData.waitUntilSet()
        return (process.terminationStatus, String(decoding: errData.value, as: UTF8.self))
    }

    private final class LockedData: @unchecked Sendable {
        private let condition = NSCondition()
        private var data: Data? = nil
        func set(_ d: Data) { condition.lock(); data = d; condition.broadcast(); condition.unlock() }
        func waitUntilSet() { condition.lock(); while data == nil { condition.wait() }; condition.unlock() }
        var value: Data { condition.lock(); defer { condition.unlock() }; return data ?? Data() }
    }
}
