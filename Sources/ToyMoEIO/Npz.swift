// NPZ archives: a ZIP file with one NAME.npy member per array, as written by
// numpy.savez.
//
// The writer produces the simplest ZIP numpy (and `unzip`) accept:
//
//   for each member, in caller order:
//     local file header  (30 bytes + name)   signature 0x04034b50
//     member bytes (method 0 = STORED, i.e. uncompressed)
//   central directory    (46 bytes + name per member)  signature 0x02014b50
//   end of central directory record (22 bytes)         signature 0x06054b50
//
// All integers are little-endian. Timestamps are fixed at 1980-01-01 00:00
// (DOS date 0x0021, time 0x0000), the earliest DOS date, so the same arrays
// always give the same bytes. ZIP64 is not written: archives whose sizes or
// offsets reach 4 GiB, or with 65535 or more members, are rejected with
// `NpzError.archiveTooLarge`. The reader does understand ZIP64 records, since
// numpy's own writer adds ZIP64 extra fields to local headers.

import Foundation

/// Errors raised while writing or reading `.npz` archives.
public enum NpzError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The archive would need ZIP64 (a size or offset ≥ 4 GiB, or ≥ 65535 members).
    case archiveTooLarge(String)
    /// An array name is empty, contains NUL, or is too long for a ZIP header.
    case invalidName(String)
    /// Two members have the same name.
    case duplicateName(String)
    /// No end-of-central-directory record was found: not a ZIP file (or truncated).
    case notAZipArchive(String)
    /// A structure in the archive lies partly outside the file or has a bad signature.
    case corrupt(String)
    /// The archive spans several disks.
    case multiDiskUnsupported
    /// The member is DEFLATE-compressed (numpy's savez_compressed).
    case compressedMember(String)
    /// The member uses a compression method other than STORED or DEFLATE.
    case unsupportedCompression(member: String, method: UInt16)
    /// The member is encrypted.
    case encryptedMember(String)
    /// The member's data does not match the CRC-32 recorded in the archive.
    case crcMismatch(member: String, expected: UInt32, actual: UInt32)
    /// A member could not be parsed as an `.npy` array.
    case invalidMember(member: String, error: NpyError)
    /// `NpzArchive.array(named:)` found no such member.
    case missingMember(String)
    /// Reading the file failed.
    case io(path: String, message: String)

    public var description: String {
        switch self {
        case let .archiveTooLarge(detail):
            return "NPZ archive too large: \(detail); ZIP64 output is not supported (sizes and offsets must stay below 4 GiB, at most 65534 members)"
        case let .invalidName(name):
            return "invalid NPZ array name \(String(reflecting: name)): names must be non-empty, contain no NUL and be at most 65531 UTF-8 bytes"
        case let .duplicateName(name):
            return "duplicate NPZ member name \(String(reflecting: name)); every array needs a distinct name"
        case let .notAZipArchive(detail):
            return "not an NPZ/ZIP archive: \(detail)"
        case let .corrupt(detail):
            return "corrupt NPZ archive: \(detail)"
        case .multiDiskUnsupported:
            return "multi-disk ZIP archives are not supported; expected a single-file archive"
        case let .compressedMember(member):
            return "compressed .npz not supported (member \(String(reflecting: member)) uses DEFLATE); save with np.savez instead of np.savez_compressed"
        case let .unsupportedCompression(member, method):
            return "member \(String(reflecting: member)) uses ZIP compression method \(method); only method 0 (STORED, as np.savez writes) is supported"
        case let .encryptedMember(member):
            return "member \(String(reflecting: member)) is encrypted; encrypted ZIP archives are not supported"
        case let .crcMismatch(member, expected, actual):
            return "CRC-32 mismatch in member \(String(reflecting: member)): archive records \(hex(expected)) but the data hashes to \(hex(actual)); the file is corrupt"
        case let .invalidMember(member, error):
            return "member \(String(reflecting: member)) is not a valid .npy array: \(error)"
        case let .missingMember(name):
            return "NPZ archive has no array named \(String(reflecting: name))"
        case let .io(path, message):
            return "NPZ I/O error for \(path): \(message)"
        }
    }
}

/// The arrays of an `.npz` archive, in archive order, with lookup by name.
///
/// Names are the member names with the `.npy` suffix removed, as `np.load`
/// reports them in `NpzFile.files`.
public struct NpzArchive: Sendable {
    /// The arrays in the order their members appear in the central directory.
    public let entries: [(name: String, array: NpyArray)]
    private let index: [String: Int]

    /// Builds an archive value from ordered `(name, array)` pairs.
    /// - Throws: `NpzError.duplicateName` if a name repeats.
    public init(_ entries: [(String, NpyArray)]) throws {
        var index: [String: Int] = [:]
        for (position, entry) in entries.enumerated() {
            guard index[entry.0] == nil else { throw NpzError.duplicateName(entry.0) }
            index[entry.0] = position
        }
        self.entries = entries.map { (name: $0.0, array: $0.1) }
        self.index = index
    }

    /// Array names in archive order.
    public var names: [String] { entries.map(\.name) }

    /// The array with this name, or nil.
    public subscript(name: String) -> NpyArray? {
        guard let position = index[name] else { return nil }
        return entries[position].array
    }

    /// The array with this name.
    /// - Throws: `NpzError.missingMember` if there is none.
    public func array(named name: String) throws -> NpyArray {
        guard let array = self[name] else { throw NpzError.missingMember(name) }
        return array
    }
}

/// Writing and reading `.npz` archives (see the file comment for the layout).
public enum Npz {
    private static let localHeaderSignature: UInt32 = 0x0403_4B50
    private static let centralHeaderSignature: UInt32 = 0x0201_4B50
    private static let endOfCentralDirectorySignature: UInt32 = 0x0605_4B50
    private static let zip64EndSignature: UInt32 = 0x0606_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    /// DOS date for 1980-01-01: (year - 1980) << 9 | month << 5 | day.
    private static let dosDate: UInt16 = (0 << 9) | (1 << 5) | 1
    /// DOS time for 00:00:00.
    private static let dosTime: UInt16 = 0
    /// "Version needed to extract" 2.0: the baseline every unzip accepts.
    private static let versionNeeded: UInt16 = 20
    /// "Version made by": upper byte 3 = Unix (so external attributes hold a
    /// mode), lower byte 20 = spec 2.0.
    private static let versionMadeBy: UInt16 = (3 << 8) | 20
    /// Unix mode 0100644 (regular file, rw-r--r--) in the high 16 bits.
    private static let externalAttributes: UInt32 = 0o100644 << 16
    /// General-purpose flag bit 11: file name is UTF-8.
    private static let utf8NameFlag: UInt16 = 1 << 11

    // MARK: - Writing

    /// The `.npz` bytes for `arrays`, members in the given order, each named
    /// `NAME.npy` and stored uncompressed. Deterministic: equal input gives
    /// equal bytes.
    ///
    /// - Throws: `NpzError.invalidName`, `.duplicateName`, or
    ///   `.archiveTooLarge` if ZIP64 would be needed.
    public static func bytes(_ arrays: [(String, NpyArray)]) throws -> [UInt8] {
        let limit = Int(UInt32.max)  // 0xFFFFFFFF itself means "see ZIP64 field"
        guard arrays.count < Int(UInt16.max) else {
            throw NpzError.archiveTooLarge("\(arrays.count) members")
        }
        var seen = Set<String>()
        var output = ByteWriter()
        var central = ByteWriter()
        for (name, array) in arrays {
            guard !name.isEmpty, !name.unicodeScalars.contains("\0") else { throw NpzError.invalidName(name) }
            guard seen.insert(name).inserted else { throw NpzError.duplicateName(name) }
            let memberName = Array((name + ".npy").utf8)
            guard memberName.count <= Int(UInt16.max) else { throw NpzError.invalidName(name) }
            let flags: UInt16 = memberName.contains(where: { $0 >= 0x80 }) ? utf8NameFlag : 0
            let payload = array.npyBytes()
            guard payload.count < limit else {
                throw NpzError.archiveTooLarge("member \(String(reflecting: name)) is \(payload.count) bytes")
            }
            let offset = output.bytes.count
            guard offset < limit else { throw NpzError.archiveTooLarge("member offset \(offset)") }
            let crc = CRC32.checksum(payload)
            let size = UInt32(payload.count)

            output.u32(localHeaderSignature)
            output.u16(versionNeeded)
            output.u16(flags)
            output.u16(0)  // method: STORED
            output.u16(dosTime)
            output.u16(dosDate)
            output.u32(crc)
            output.u32(size)  // compressed size
            output.u32(size)  // uncompressed size
            output.u16(UInt16(memberName.count))
            output.u16(0)  // extra field length
            output.append(contentsOf: memberName)
            output.append(contentsOf: payload)

            central.u32(centralHeaderSignature)
            central.u16(versionMadeBy)
            central.u16(versionNeeded)
            central.u16(flags)
            central.u16(0)
            central.u16(dosTime)
            central.u16(dosDate)
            central.u32(crc)
            central.u32(size)
            central.u32(size)
            central.u16(UInt16(memberName.count))
            central.u16(0)  // extra field length
            central.u16(0)  // comment length
            central.u16(0)  // disk number start
            central.u16(0)  // internal attributes
            central.u32(externalAttributes)
            central.u32(UInt32(offset))
            central.append(contentsOf: memberName)
        }
        let centralOffset = output.bytes.count
        let centralSize = central.bytes.count
        guard centralOffset < limit, centralSize < limit else {
            throw NpzError.archiveTooLarge("central directory at offset \(centralOffset), size \(centralSize)")
        }
        output.append(contentsOf: central.bytes)
        output.u32(endOfCentralDirectorySignature)
        output.u16(0)  // this disk
        output.u16(0)  // disk with central directory
        output.u16(UInt16(arrays.count))  // entries on this disk
        output.u16(UInt16(arrays.count))  // entries in total
        output.u32(UInt32(centralSize))
        output.u32(UInt32(centralOffset))
        output.u16(0)  // comment length
        return output.bytes
    }

    /// The `.npz` bytes for a dictionary of arrays, members sorted by name
    /// (Swift `String` ordering) so the output is reproducible.
    public static func bytes(_ arrays: [String: NpyArray]) throws -> [UInt8] {
        try bytes(arrays.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// Writes an `.npz` atomically, members in the given order.
    public static func write(_ arrays: [(String, NpyArray)], to url: URL) throws {
        try AtomicFile.write(bytes(arrays), to: url)
    }

    /// Writes an `.npz` atomically, members sorted by name.
    public static func write(_ arrays: [String: NpyArray], to url: URL) throws {
        try AtomicFile.write(bytes(arrays), to: url)
    }

    // MARK: - Reading

    /// Parses an `.npz` archive.
    ///
    /// Locates the end-of-central-directory record by scanning backwards
    /// (it may be followed by a comment of up to 65535 bytes), follows ZIP64
    /// records when present, reads every central-directory entry, checks each
    /// member's local header and CRC-32, and parses the member as `.npy`.
    /// Directory entries (names ending in `/`) are skipped; a `.npy` suffix is
    /// removed from member names.
    ///
    /// - Throws: `NpzError` describing the first problem found; DEFLATE
    ///   members give `.compressedMember` (re-save with `np.savez`).
    public static func read(bytes: [UInt8]) throws -> NpzArchive {
        let reader = ByteReader(bytes)
        let eocd = try findEndOfCentralDirectory(reader)
        guard let diskNumber = reader.u16(at: eocd + 4),
              let centralDisk = reader.u16(at: eocd + 6),
              let entries16 = reader.u16(at: eocd + 10),
              let centralSize32 = reader.u32(at: eocd + 12),
              let centralOffset32 = reader.u32(at: eocd + 16)
        else { throw NpzError.corrupt("end of central directory record is truncated") }

        var entryCount = Int(entries16)
        var centralSize = Int(centralSize32)
        var centralOffset = Int(centralOffset32)
        if entries16 == 0xFFFF || centralSize32 == 0xFFFF_FFFF || centralOffset32 == 0xFFFF_FFFF
            || diskNumber == 0xFFFF || centralDisk == 0xFFFF,
            reader.u32(at: eocd - 20) == zip64LocatorSignature {
            // ZIP64 end-of-central-directory locator sits right before the EOCD.
            guard let recordOffset64 = reader.u64(at: eocd - 20 + 8),
                  let recordOffset = Int(exactly: recordOffset64),
                  reader.u32(at: recordOffset) == zip64EndSignature,
                  let disk64 = reader.u32(at: recordOffset + 16),
                  let centralDisk64 = reader.u32(at: recordOffset + 20),
                  let count64 = reader.u64(at: recordOffset + 32),
                  let size64 = reader.u64(at: recordOffset + 40),
                  let offset64 = reader.u64(at: recordOffset + 48),
                  let count = Int(exactly: count64), let size = Int(exactly: size64), let offset = Int(exactly: offset64)
            else { throw NpzError.corrupt("ZIP64 end of central directory record is missing or truncated") }
            guard disk64 == 0, centralDisk64 == 0 else { throw NpzError.multiDiskUnsupported }
            entryCount = count
            centralSize = size
            centralOffset = offset
        } else {
            guard diskNumber == 0, centralDisk == 0 else { throw NpzError.multiDiskUnsupported }
        }
        guard reader.contains(offset: centralOffset, length: centralSize) else {
            throw NpzError.corrupt("central directory (offset \(centralOffset), \(centralSize) bytes) extends past the end of the \(reader.count)-byte file")
        }

        var result: [(String, NpyArray)] = []
        var seen = Set<String>()
        var position = centralOffset
        let centralEnd = centralOffset + centralSize
        for entryNumber in 0..<entryCount {
            let member = try readCentralEntry(reader, at: position, end: centralEnd, number: entryNumber)
            position = member.nextEntry
            if member.name.hasSuffix("/") { continue }  // directory entry
            let payload = try memberPayload(reader, member)
            var name = member.name
            if name.hasSuffix(".npy") { name.removeLast(4) }
            guard seen.insert(name).inserted else { throw NpzError.duplicateName(name) }
            do {
                result.append((name, try NpyArray(npyBytes: payload)))
            } catch let error as NpyError {
                throw NpzError.invalidMember(member: member.name, error: error)
            }
        }
        return try NpzArchive(result)
    }

    /// Parses an `.npz` archive held in `Data`. See `read(bytes:)`.
    public static func read(data: Data) throws -> NpzArchive {
        try read(bytes: [UInt8](data))
    }

    /// Reads and parses an `.npz` file. See `read(bytes:)`.
    public static func read(contentsOf url: URL) throws -> NpzArchive {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NpzError.io(path: url.path, message: "cannot read file: \(error.localizedDescription)")
        }
        return try read(data: data)
    }

    /// Facts about one member, from its central-directory entry.
    private struct CentralEntry {
        var name: String
        var flags: UInt16
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
        var nextEntry: Int
    }

    /// Scans backwards for the EOCD signature. The record is 22 bytes plus a
    /// comment of at most 65535 bytes, so the search window is bounded. A
    /// candidate is accepted only if its comment length fits in the file,
    /// which rejects signature bytes that happen to occur in a comment.
    private static func findEndOfCentralDirectory(_ reader: ByteReader) throws -> Int {
        let fixedSize = 22
        guard reader.count >= fixedSize else {
            throw NpzError.notAZipArchive("file is \(reader.count) bytes, shorter than the 22-byte end of central directory record")
        }
        let lowest = max(0, reader.count - fixedSize - Int(UInt16.max))
        var candidate = reader.count - fixedSize
        while candidate >= lowest {
            if reader.u32(at: candidate) == endOfCentralDirectorySignature,
               let commentLength = reader.u16(at: candidate + 20),
               candidate + fixedSize + Int(commentLength) <= reader.count {
                return candidate
            }
            candidate -= 1
        }
        throw NpzError.notAZipArchive("no end of central directory record (signature 50 4B 05 06) in the last \(reader.count - lowest) bytes")
    }

    private static func readCentralEntry(_ reader: ByteReader, at offset: Int, end: Int, number: Int) throws -> CentralEntry {
        let fixedSize = 46
        guard offset <= end - fixedSize,
              reader.u32(at: offset) == centralHeaderSignature,
              let flags = reader.u16(at: offset + 8),
              let method = reader.u16(at: offset + 10),
              let crc = reader.u32(at: offset + 16),
              let compressed32 = reader.u32(at: offset + 20),
              let uncompressed32 = reader.u32(at: offset + 24),
              let nameLength = reader.u16(at: offset + 28),
              let extraLength = reader.u16(at: offset + 30),
              let commentLength = reader.u16(at: offset + 32),
              let diskStart = reader.u16(at: offset + 34),
              let localOffset32 = reader.u32(at: offset + 42)
        else { throw NpzError.corrupt("central directory entry \(number) at offset \(offset) is missing or has a bad signature") }
        let nameStart = offset + fixedSize
        let extraStart = nameStart + Int(nameLength)
        let nextEntry = extraStart + Int(extraLength) + Int(commentLength)
        guard nextEntry <= end,
              let nameBytes = reader.slice(at: nameStart, length: Int(nameLength)),
              let extra = reader.slice(at: extraStart, length: Int(extraLength))
        else { throw NpzError.corrupt("central directory entry \(number) extends past the central directory") }
        let name = decodeName(nameBytes)

        var compressedSize = Int(compressed32)
        var uncompressedSize = Int(uncompressed32)
        var localOffset = Int(localOffset32)
        if compressed32 == 0xFFFF_FFFF || uncompressed32 == 0xFFFF_FFFF || localOffset32 == 0xFFFF_FFFF || diskStart == 0xFFFF {
            // ZIP64 extended information (header ID 0x0001) holds, in this
            // order, only the fields whose 32-bit slots are saturated.
            guard let zip64 = findExtraField(ReaderSlice(extra), id: 0x0001) else {
                throw NpzError.corrupt("member \(String(reflecting: name)) needs a ZIP64 extra field but has none")
            }
            var cursor = 0
            func next() throws -> Int {
                guard let value = zip64.u64(at: cursor), let int = Int(exactly: value) else {
                    throw NpzError.corrupt("ZIP64 extra field of member \(String(reflecting: name)) is truncated")
                }
                cursor += 8
                return int
            }
            if uncompressed32 == 0xFFFF_FFFF { uncompressedSize = try next() }
            if compressed32 == 0xFFFF_FFFF { compressedSize = try next() }
            if localOffset32 == 0xFFFF_FFFF { localOffset = try next() }
        }
        return CentralEntry(
            name: name, flags: flags, method: method, crc: crc,
            compressedSize: compressedSize, uncompressedSize: uncompressedSize,
            localHeaderOffset: localOffset, nextEntry: nextEntry)
    }

    /// Validates the local header and returns the member's stored bytes after
    /// checking method, encryption, sizes and CRC-32.
    private static func memberPayload(_ reader: ByteReader, _ member: CentralEntry) throws -> [UInt8] {
        let quoted = String(reflecting: member.name)
        if member.flags & 1 != 0 { throw NpzError.encryptedMember(member.name) }
        switch member.method {
        case 0: break
        case 8: throw NpzError.compressedMember(member.name)
        default: throw NpzError.unsupportedCompression(member: member.name, method: member.method)
        }
        guard member.compressedSize == member.uncompressedSize else {
            throw NpzError.corrupt("stored member \(quoted) has compressed size \(member.compressedSize) but uncompressed size \(member.uncompressedSize)")
        }
        let offset = member.localHeaderOffset
        guard reader.u32(at: offset) == localHeaderSignature,
              let nameLength = reader.u16(at: offset + 26),
              let extraLength = reader.u16(at: offset + 28)
        else { throw NpzError.corrupt("local header of member \(quoted) at offset \(offset) is missing or has a bad signature") }
        let dataStart = offset + 30 + Int(nameLength) + Int(extraLength)
        guard let payload = reader.slice(at: dataStart, length: member.compressedSize) else {
            throw NpzError.corrupt("data of member \(quoted) (\(member.compressedSize) bytes at offset \(dataStart)) extends past the end of the \(reader.count)-byte file")
        }
        let actual = CRC32.checksum(payload)
        guard actual == member.crc else {
            throw NpzError.crcMismatch(member: member.name, expected: member.crc, actual: actual)
        }
        return Array(payload)
    }

    /// Member names are UTF-8 when flag bit 11 is set; otherwise the spec says
    /// CP437, but in practice they are ASCII or UTF-8 either way, so decode
    /// UTF-8 and fall back to mapping each byte to the scalar of the same value.
    private static func decodeName(_ bytes: ArraySlice<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var text = ""
        text.unicodeScalars.append(contentsOf: bytes.map { Unicode.Scalar($0) })
        return text
    }

    /// Finds the data of extra field `id` in a ZIP extra block
    /// (a sequence of: 2-byte id, 2-byte size, data).
    private static func findExtraField(_ extra: ReaderSlice, id: UInt16) -> ReaderSlice? {
        var cursor = 0
        while let fieldID = extra.u16(at: cursor), let size = extra.u16(at: cursor + 2) {
            guard let body = extra.slice(at: cursor + 4, length: Int(size)) else { return nil }
            if fieldID == id { return body }
            cursor += 4 + Int(size)
        }
        return nil
    }
}

/// Zero-based, bounds-checked little-endian reads from an array slice.
private struct ReaderSlice {
    let reader: ByteReader
    init(_ slice: ArraySlice<UInt8>) { reader = ByteReader(Array(slice)) }
    func u16(at offset: Int) -> UInt16? { reader.u16(at: offset) }
    func u64(at offset: Int) -> UInt64? { reader.u64(at: offset) }
    func slice(at offset: Int, length: Int) -> ReaderSlice? {
        reader.slice(at: offset, length: length).map(ReaderSlice.init)
    }
}
