// Provenance records: what produced a result, from which code, when and where.

import Foundation
import ToyMoEBuildInfo

/// Facts about the machine a run happened on.
public struct HostInfo: Sendable, Hashable {
    /// Operating system family, fixed at compile time ("Linux", "macOS", ...).
    public var os: String
    /// Operating system version as reported by Foundation.
    public var osVersion: String
    /// CPU architecture, fixed at compile time ("x86_64", "arm64", ...).
    public var architecture: String
    /// Number of processors configured.
    public var cpuCount: Int
    /// Number of processors available to this process.
    public var activeCPUCount: Int

    public init(os: String, osVersion: String, architecture: String, cpuCount: Int, activeCPUCount: Int) {
        self.os = os
        self.osVersion = osVersion
        self.architecture = architecture
        self.cpuCount = cpuCount
        self.activeCPUCount = activeCPUCount
    }

    /// The machine this process runs on.
    public static func current() -> HostInfo {
        #if os(Linux)
        let os = "Linux"
        #elseif os(macOS)
        let os = "macOS"
        #elseif os(Windows)
        let os = "Windows"
        #else
        let os = "unknown"
        #endif
        #if arch(x86_64)
        let architecture = "x86_64"
        #elseif arch(arm64)
        let architecture = "arm64"
        #else
        let architecture = "unknown"
        #endif
        let info = ProcessInfo.processInfo
        return HostInfo(os: os, osVersion: info.operatingSystemVersionString, architecture: architecture,
                        cpuCount: info.processorCount, activeCPUCount: info.activeProcessorCount)
    }

    /// `{"os": ..., "os_version": ..., "arch": ..., "cpu_count": ..., "active_cpu_count": ...}`
    public func toJSON() -> JSONValue {
        [
            "os": .string(os),
            "os_version": .string(osVersion),
            "arch": .string(architecture),
            "cpu_count": .int(cpuCount),
            "active_cpu_count": .int(activeCPUCount),
        ]
    }

    /// Reads back the output of `toJSON()`.
    public init(json: JSONValue) throws {
        os = try Provenance.field(json, "os", "host.os") { $0.stringValue }
        osVersion = try Provenance.field(json, "os_version", "host.os_version") { $0.stringValue }
        architecture = try Provenance.field(json, "arch", "host.arch") { $0.stringValue }
        cpuCount = try Provenance.field(json, "cpu_count", "host.cpu_count") { $0.intValue }
        activeCPUCount = try Provenance.field(json, "active_cpu_count", "host.active_cpu_count") { $0.intValue }
    }
}

/// A field of a provenance JSON document is missing or has the wrong type.
public struct ProvenanceError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Dotted path of the field, e.g. `host.cpu_count`.
    public let field: String
    /// What the field should have been.
    public let expected: String

    public var description: String { "invalid provenance record: field '\(field)' is missing or is not \(expected)" }
}

/// Where a result came from: tool and version, the tool's own build commit,
/// the git commit of the working directory, seed, kernel variant, command line,
/// timing, host and compiler, plus free-form extras.
///
/// Serialised by `toJSON()` as an object with snake_case keys in this order:
/// `tool, tool_version, build_commit (string, "unknown" when the build did not
/// know it), build_dirty (bool or null), build_sources_sha256 (string or null: the
/// hash of the compiled sources, `ToyMoEBuild.sourcesSHA256`), cwd_git_commit (string or null), seed,
/// kernel_variant, command_line, start_time, end_time (or null), wall_seconds
/// (or null), host, swift_compiler, extra`. Times are ISO-8601 UTC with milliseconds
/// (`2024-05-01T12:34:56.789Z`). `seed` is a JSON integer when it fits in
/// `Int64`, otherwise a decimal string, so that its value is never rounded.
public struct Provenance: Sendable, Equatable {
    /// Name of the tool or subcommand, e.g. `"toymoe train"`.
    public var tool: String
    /// Version of the tool; defaults to `ToyMoEVersion.string`.
    public var toolVersion: String
    /// The git commit the running tool was built from (embedded at build time), nil when unknown.
    public var buildCommit: String?
    /// Whether the tool's source tree had uncommitted changes when it was built; nil when unknown.
    public var buildDirty: Bool?
    /// SHA-256 over the compiled sources and Package.swift at build time (two dirty builds of one commit differ).
    public var buildSourcesSHA256: String?
    /// HEAD of the git repository containing the working directory the run started in (the user's project,
    /// which is not necessarily the code that ran), if any.
    public var cwdGitCommit: String?
    /// Random seed of the run.
    public var seed: UInt64
    /// Which kernel implementation ran (e.g. `"scalar"`, `"simd"`).
    public var kernelVariant: String
    /// The process arguments.
    public var commandLine: [String]
    /// Start time, ISO-8601 UTC.
    public var startTime: String
    /// End time, ISO-8601 UTC; nil while running.
    public var endTime: String?
    /// Elapsed wall-clock seconds; nil while running.
    public var wallSeconds: Double?
    /// Machine description.
    public var host: HostInfo
    /// Compiler version bound, see `ToyMoEVersion.swiftCompiler`.
    public var swiftCompiler: String
    /// Additional, caller-defined facts (insertion-ordered).
    public var extra: JSONObject

    /// When `start` was called, for measuring wall time with a monotonic clock.
    /// Not serialised and not part of equality.
    private var startMark: (date: Date, uptime: TimeInterval)?

    public init(tool: String, toolVersion: String = ToyMoEVersion.string, buildCommit: String? = ToyMoEBuild.commit,
                buildDirty: Bool? = ToyMoEBuild.dirty, buildSourcesSHA256: String? = ToyMoEBuild.sourcesSHA256,
                cwdGitCommit: String? = nil, seed: UInt64,
                kernelVariant: String, commandLine: [String] = [], startTime: String, endTime: String? = nil,
                wallSeconds: Double? = nil, host: HostInfo = .current(),
                swiftCompiler: String = ToyMoEVersion.swiftCompiler, extra: JSONObject = [:]) {
        self.tool = tool
        self.toolVersion = toolVersion
        self.buildCommit = buildCommit
        self.buildDirty = buildDirty
        self.buildSourcesSHA256 = buildSourcesSHA256
        self.cwdGitCommit = cwdGitCommit
        self.seed = seed
        self.kernelVariant = kernelVariant
        self.commandLine = commandLine
        self.startTime = startTime
        self.endTime = endTime
        self.wallSeconds = wallSeconds
        self.host = host
        self.swiftCompiler = swiftCompiler
        self.extra = extra
    }

    /// A record for a run starting now: start time, host, compiler, this build's
    /// commit, and the git commit found from `repository` (nil to skip the lookup).
    /// Call `finish()` when the run ends.
    public static func start(tool: String, seed: UInt64, kernelVariant: String,
                             commandLine: [String] = CommandLine.arguments,
                             repository: URL? = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                             extra: JSONObject = [:]) -> Provenance {
        let now = Date()
        var record = Provenance(
            tool: tool, cwdGitCommit: repository.flatMap { gitCommit(at: $0) }, seed: seed,
            kernelVariant: kernelVariant, commandLine: commandLine, startTime: iso8601UTC(now), extra: extra)
        record.startMark = (now, ProcessInfo.processInfo.systemUptime)
        return record
    }

    /// Sets `endTime`, and `wallSeconds` measured with the monotonic system
    /// uptime clock when this record came from `start` (so clock adjustments
    /// during the run do not distort it). For other records `wallSeconds` is
    /// left unchanged.
    public mutating func finish(at end: Date = Date()) {
        endTime = Provenance.iso8601UTC(end)
        if let startMark {
            wallSeconds = max(0, ProcessInfo.processInfo.systemUptime - startMark.uptime)
        }
    }

    public static func == (lhs: Provenance, rhs: Provenance) -> Bool {
        lhs.tool == rhs.tool && lhs.toolVersion == rhs.toolVersion && lhs.buildCommit == rhs.buildCommit
            && lhs.buildDirty == rhs.buildDirty && lhs.buildSourcesSHA256 == rhs.buildSourcesSHA256
            && lhs.cwdGitCommit == rhs.cwdGitCommit
            && lhs.seed == rhs.seed && lhs.kernelVariant == rhs.kernelVariant && lhs.commandLine == rhs.commandLine
            && lhs.startTime == rhs.startTime && lhs.endTime == rhs.endTime && lhs.wallSeconds == rhs.wallSeconds
            && lhs.host == rhs.host && lhs.swiftCompiler == rhs.swiftCompiler && lhs.extra == rhs.extra
    }

    // MARK: - JSON

    /// The record as a JSON object (key order and formats in the type's documentation).
    public func toJSON() -> JSONValue {
        let seedValue: JSONValue = Int(exactly: seed).map { .int($0) } ?? .string(String(seed))
        return [
            "tool": .string(tool),
            "tool_version": .string(toolVersion),
            "build_commit": .string(buildCommit ?? "unknown"),
            "build_dirty": buildDirty.map { .bool($0) } ?? .null,
            "build_sources_sha256": buildSourcesSHA256.map { .string($0) } ?? .null,
            "cwd_git_commit": cwdGitCommit.map { .string($0) } ?? .null,
            "seed": seedValue,
            "kernel_variant": .string(kernelVariant),
            "command_line": .array(commandLine.map { .string($0) }),
            "start_time": .string(startTime),
            "end_time": endTime.map { .string($0) } ?? .null,
            "wall_seconds": wallSeconds.map { .number($0) } ?? .null,
            "host": host.toJSON(),
            "swift_compiler": .string(swiftCompiler),
            "extra": .object(extra),
        ]
    }

    /// Reads back the output of `toJSON()`.
    /// - Throws: `ProvenanceError` naming the first missing or mistyped field.
    public init(json: JSONValue) throws {
        tool = try Provenance.field(json, "tool") { $0.stringValue }
        toolVersion = try Provenance.field(json, "tool_version") { $0.stringValue }
        let build = try Provenance.field(json, "build_commit") { $0.stringValue }
        buildCommit = build == "unknown" ? nil : build
        buildDirty = try Provenance.optionalField(json, "build_dirty", "a boolean or null") { $0.boolValue }
        // Absent in files written before it was recorded: read as unknown.
        buildSourcesSHA256 = json["build_sources_sha256"] == nil ? nil
            : try Provenance.optionalField(json, "build_sources_sha256", "a string or null") { $0.stringValue }
        cwdGitCommit = try Provenance.optionalField(json, "cwd_git_commit", "a string or null") { $0.stringValue }
        seed = try Provenance.field(json, "seed", expected: "a non-negative integer or decimal string") { value in
            if let int = value.intValue, case .int = value { return UInt64(exactly: int) }
            return value.stringValue.flatMap { UInt64($0) }
        }
        kernelVariant = try Provenance.field(json, "kernel_variant") { $0.stringValue }
        commandLine = try Provenance.field(json, "command_line", expected: "an array of strings") { value in
            guard let elements = value.arrayValue else { return nil }
            let strings = elements.compactMap(\.stringValue)
            return strings.count == elements.count ? strings : nil
        }
        startTime = try Provenance.field(json, "start_time") { $0.stringValue }
        endTime = try Provenance.optionalField(json, "end_time", "a string or null") { $0.stringValue }
        wallSeconds = try Provenance.optionalField(json, "wall_seconds", "a number or null") { $0.doubleValue }
        guard let hostJSON = json["host"] else { throw ProvenanceError(field: "host", expected: "an object") }
        host = try HostInfo(json: hostJSON)
        swiftCompiler = try Provenance.field(json, "swift_compiler") { $0.stringValue }
        extra = try Provenance.field(json, "extra", expected: "an object") { $0.objectValue }
    }

    static func field<T>(_ json: JSONValue, _ key: String, _ path: String? = nil, expected: String? = nil,
                         _ extract: (JSONValue) -> T?) throws -> T {
        guard let value = json[key], let result = extract(value) else {
            throw ProvenanceError(field: path ?? key, expected: expected ?? describe(T.self))
        }
        return result
    }

    static func optionalField<T>(_ json: JSONValue, _ key: String, _ expected: String,
                                 _ extract: (JSONValue) -> T?) throws -> T? {
        guard let value = json[key] else { throw ProvenanceError(field: key, expected: expected) }
        if value.isNull { return nil }
        guard let result = extract(value) else { throw ProvenanceError(field: key, expected: expected) }
        return result
    }

    private static func describe<T>(_: T.Type) -> String {
        if T.self == String.self { return "a string" }
        if T.self == Int.self { return "an integer" }
        return "a value of type \(T.self)"
    }

    // MARK: - Time

    /// Formats a date as ISO-8601 UTC with millisecond precision,
    /// `YYYY-MM-DDTHH:MM:SS.sssZ`, truncating (not rounding) sub-millisecond
    /// time so the printed instant never lies in the future of the real one.
    /// The time is first rounded to whole microseconds so that binary
    /// floating-point error (0.123 held as 0.12299999...) cannot lose a
    /// millisecond.
    ///
    /// Computed arithmetically (proleptic Gregorian calendar) rather than with
    /// a formatter so the output does not depend on locale or platform.
    public static func iso8601UTC(_ date: Date) -> String {
        let scaled = (date.timeIntervalSince1970 * 1_000_000).rounded()
        // Clamp instead of trapping on absurd dates (±292,000 years, NaN).
        let microseconds = scaled.isNaN ? 0 : Int64(max(-9.2e18, min(9.2e18, scaled)))
        let (milliseconds, _) = floorDivide(microseconds, 1000)
        let (seconds, millis) = floorDivide(milliseconds, 1000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let hour = secondOfDay / 3600, minute = secondOfDay / 60 % 60, second = secondOfDay % 60
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value.magnitude)
            return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(millis, 3))Z"
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var quotient = value / divisor
        var remainder = value % divisor
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    /// Converts days since 1970-01-01 to a Gregorian (year, month, day).
    ///
    /// Works in 400-year eras (146097 days each) counted from 0000-03-01, so
    /// that the leap day is the last day of each shifted year; month 0 of the
    /// shifted year is March.
    private static func civilDate(daysSinceEpoch days: Int64) -> (Int64, Int64, Int64) {
        let shifted = days + 719_468  // days from 0000-03-01 to 1970-01-01
        let (era, dayOfEra) = floorDivide(shifted, 146_097)
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0 = March ... 11 = February
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    // MARK: - Git

    /// The commit hash HEAD points to in the git repository containing
    /// `directory` (searched upwards like git does), or nil if there is none
    /// (not a repository, unborn branch, unreadable files).
    ///
    /// Reads files only, never runs `git`: `.git` may be a directory or a
    /// `gitdir: PATH` file (worktrees, submodules, with `commondir` honoured);
    /// `HEAD` is either a hash (detached) or `ref: refs/...`, which is resolved
    /// through loose ref files and then `packed-refs`, following symbolic refs
    /// a few levels deep. Returns lower-case hex (40 digits for SHA-1, 64 for SHA-256).
    public static func gitCommit(at directory: URL) -> String? {
        var current = directory.standardizedFileURL
        for _ in 0..<256 {
            if let gitDirectory = gitDirectory(for: current) {
                let common = commonDirectory(for: gitDirectory)
                guard let head = readTrimmed(gitDirectory.appendingPathComponent("HEAD")) else { return nil }
                return resolve(refContent: head, gitDirectory: gitDirectory, common: common, depth: 0)
            }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { break }
            current = parent
        }
        return nil
    }

    private static func gitDirectory(for directory: URL) -> URL? {
        let dotGit = directory.appendingPathComponent(".git")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) else { return nil }
        if isDirectory.boolValue { return dotGit }
        guard let content = readTrimmed(dotGit), content.hasPrefix("gitdir:") else { return nil }
        let path = content.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespaces)
        guard !path.isEmpty else { return nil }
        return path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    }

    private static func commonDirectory(for gitDirectory: URL) -> URL {
        guard let path = readTrimmed(gitDirectory.appendingPathComponent("commondir")), !path.isEmpty else {
            return gitDirectory
        }
        return path.hasPrefix("/") ? URL(fileURLWithPath: path) : gitDirectory.appendingPathComponent(path)
    }

    private static func resolve(refContent: String, gitDirectory: URL, common: URL, depth: Int) -> String? {
        if isHash(refContent) { return refContent.lowercased() }
        guard depth < 8, refContent.hasPrefix("ref:") else { return nil }
        let name = refContent.dropFirst("ref:".count).trimmingCharacters(in: .whitespaces)
        // Refuse names that could escape the git directory.
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !components.contains(where: { $0 == ".." || $0.isEmpty }) else {
            return nil
        }
        for base in [gitDirectory, common] {
            if let content = readTrimmed(base.appendingPathComponent(name)) {
                return resolve(refContent: content, gitDirectory: gitDirectory, common: common, depth: depth + 1)
            }
        }
        // packed-refs lines: "<hash> <refname>"; '#' starts the header,
        // '^' lines give peeled tag targets and are skipped.
        guard let packed = try? String(contentsOf: common.appendingPathComponent("packed-refs"), encoding: .utf8) else {
            return nil
        }
        for line in packed.split(whereSeparator: \.isNewline) {
            guard !line.hasPrefix("#"), !line.hasPrefix("^") else { continue }
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[1].trimmingCharacters(in: .whitespaces) == name, isHash(String(parts[0])) {
                return parts[0].lowercased()
            }
        }
        return nil
    }

    private static func isHash(_ text: String) -> Bool {
        (text.count == 40 || text.count == 64) && text.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit }
    }

    private static func readTrimmed(_ url: URL) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
