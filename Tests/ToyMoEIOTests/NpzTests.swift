import Foundation
import Testing
import ToyMoEIO

@Suite("NPZ archives")
struct NpzTests {
    func members() throws -> [(String, NpyArray)] {
        [
            ("weights", try sampleArray(.float32, shape: [3, 4])),
            ("bias", try sampleArray(.float64, shape: [4])),
            ("steps", try sampleArray(.int64, shape: [])),
            ("mask", try sampleArray(.bool, shape: [2, 2])),
            ("empty", try sampleArray(.int32, shape: [0])),
            ("bytes", try sampleArray(.uint8, shape: [5])),
        ]
    }

    @Test("round trip keeps members, values and order")
    func roundTrip() throws {
        let input = try members()
        let bytes = try Npz.bytes(input)
        let archive = try Npz.read(bytes: bytes)
        #expect(archive.names == input.map(\.0))
        for (name, array) in input {
            #expect(archive[name] == array)
            #expect(try archive.array(named: name) == array)
        }
        #expect(archive["missing"] == nil)
        expectError(NpzError.self, { _ = try archive.array(named: "missing") }) { $0 == .missingMember("missing") }
        #expect(zip(archive.entries, input).allSatisfy { $0.0.name == $0.1.0 && $0.0.array == $0.1.1 })
    }

    @Test("writing the same arrays twice gives identical bytes")
    func reproducible() throws {
        let first = try Npz.bytes(members())
        let second = try Npz.bytes(members())
        #expect(first == second)
        let dictionary = Dictionary(uniqueKeysWithValues: try members())
        #expect(try Npz.bytes(dictionary) == Npz.bytes(dictionary))
    }

    @Test("dictionary convenience sorts members by name")
    func dictionarySorted() throws {
        let dictionary = Dictionary(uniqueKeysWithValues: try members())
        let archive = try Npz.read(bytes: Npz.bytes(dictionary))
        #expect(archive.names == ["bias", "bytes", "empty", "mask", "steps", "weights"])
    }

    @Test("layout: STORED members, fixed 1980-01-01 timestamp, NAME.npy member names")
    func layout() throws {
        let array = try NpyArray(float32: [1, 2, 3], shape: [3])
        let bytes = try Npz.bytes([("x", array)])
        let payload = array.npyBytes()
        #expect(le32(bytes, 0) == 0x0403_4B50)
        #expect(le16(bytes, 8) == 0)  // method STORED
        #expect(le16(bytes, 10) == 0)  // DOS time 00:00:00
        #expect(le16(bytes, 12) == 0x21)  // DOS date 1980-01-01
        #expect(le32(bytes, 14) == CRC32.checksum(payload))
        #expect(Int(le32(bytes, 18)) == payload.count)
        #expect(Int(le32(bytes, 22)) == payload.count)
        #expect(le16(bytes, 26) == 5)
        #expect(String(decoding: bytes[30..<35], as: UTF8.self) == "x.npy")
        #expect(Array(bytes[35..<(35 + payload.count)]) == payload)
        // End of central directory: last 22 bytes, one entry.
        let eocd = bytes.count - 22
        #expect(le32(bytes, eocd) == 0x0605_4B50)
        #expect(le16(bytes, eocd + 10) == 1)
        #expect(Int(le32(bytes, eocd + 16)) == 35 + payload.count)
    }

    @Test("an empty archive round trips")
    func emptyArchive() throws {
        let bytes = try Npz.bytes([(String, NpyArray)]())
        #expect(bytes.count == 22)
        #expect(try Npz.read(bytes: bytes).names.isEmpty)
    }

    @Test("non-ASCII names round trip and set the UTF-8 flag")
    func unicodeNames() throws {
        let array = try NpyArray(uint8: [1])
        let bytes = try Npz.bytes([("gewicht_ä", array), ("π", array)])
        #expect(le16(bytes, 6) & 0x800 != 0)
        #expect(try Npz.read(bytes: bytes).names == ["gewicht_ä", "π"])
    }

    @Test("writer rejects duplicate and empty names")
    func writerValidation() throws {
        let array = try NpyArray(uint8: [1])
        expectError(NpzError.self, { _ = try Npz.bytes([("a", array), ("a", array)]) }) { $0 == .duplicateName("a") }
        expectError(NpzError.self, { _ = try Npz.bytes([("", array)]) }) { $0 == .invalidName("") }
    }

    @Test("corrupted member data is caught by the CRC")
    func corruptedCRC() throws {
        var bytes = try Npz.bytes(members())
        // Flip the last payload byte of the first member.
        let firstPayloadEnd = 30 + le16(bytes, 26) + Int(le32(bytes, 18))
        bytes[firstPayloadEnd - 1] ^= 0xFF
        expectError(NpzError.self, { _ = try Npz.read(bytes: bytes) }) {
            if case let .crcMismatch(member, _, _) = $0 { return member == "weights.npy" && $0.description.contains("CRC-32") }
            return false
        }
    }

    @Test("not-a-zip and every truncation throw instead of crashing")
    func truncatedAndGarbage() throws {
        expectError(NpzError.self, { _ = try Npz.read(bytes: Array("hello".utf8)) }) {
            if case .notAZipArchive = $0 { return true } else { return false }
        }
        expectError(NpzError.self, { _ = try Npz.read(bytes: Array(repeating: 0, count: 1000)) }) {
            if case .notAZipArchive = $0 { return true } else { return false }
        }
        let bytes = try Npz.bytes(Array(members().prefix(2)))
        for length in 0..<bytes.count {
            expectError(NpzError.self, { _ = try Npz.read(bytes: Array(bytes[0..<length])) })
        }
        var generator = SplitMix64(seed: 99)
        for _ in 0..<2000 {
            var corrupted = bytes
            let position = Int(generator.next() % UInt64(bytes.count))
            corrupted[position] = UInt8(truncatingIfNeeded: generator.next())
            _ = try? Npz.read(bytes: corrupted)  // must return or throw, never trap
        }
    }

    @Test("DEFLATE members give the savez_compressed error")
    func compressedMember() throws {
        var bytes = try Npz.bytes([("x", try NpyArray(uint8: [1, 2, 3]))])
        // Patch the method field (8 = DEFLATE) in the local and central headers.
        let centralOffset = Int(le32(bytes, bytes.count - 22 + 16))
        bytes[8] = 8
        bytes[centralOffset + 10] = 8
        expectError(NpzError.self, { _ = try Npz.read(bytes: bytes) }) {
            $0 == .compressedMember("x.npy") && $0.description.contains("np.savez")
        }
        bytes[8] = 12
        bytes[centralOffset + 10] = 12
        expectError(NpzError.self, { _ = try Npz.read(bytes: bytes) }) {
            $0 == .unsupportedCompression(member: "x.npy", method: 12)
        }
    }

    @Test("invalid .npy member reports the member name")
    func invalidMember() throws {
        let zip = ZipBuilder(members: [("bad.npy", Array("not numpy".utf8))])
        expectError(NpzError.self, { _ = try Npz.read(bytes: zip.bytes()) }) {
            if case let .invalidMember(member, .badMagic) = $0 { return member == "bad.npy" } else { return false }
        }
    }

    @Test("ZIP64 records, comments and directory entries are understood")
    func zip64AndComment() throws {
        let a = try NpyArray(float32: [1, 2], shape: [2])
        let b = try NpyArray(int64: [7], shape: [])
        let zip = ZipBuilder(members: [("dir/", []), ("a.npy", a.npyBytes()), ("b.npy", b.npyBytes())],
                             zip64: true, comment: Array("comment PK\u{5}\u{6} inside".utf8))
        let archive = try Npz.read(bytes: zip.bytes())
        #expect(archive.names == ["a", "b"])
        #expect(archive["a"] == a)
        #expect(archive["b"] == b)
    }

    @Test("file round trip")
    func fileRoundTrip() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.npz")
        try Npz.write(members(), to: url)
        let archive = try Npz.read(contentsOf: url)
        #expect(archive.names == (try members()).map(\.0))
        try Npz.write(["b": try NpyArray(uint8: [1]), "a": try NpyArray(uint8: [2])], to: url)
        #expect(try Npz.read(contentsOf: url).names == ["a", "b"])
    }
}

/// An independent, minimal ZIP writer for building test inputs the module's
/// own writer never produces (ZIP64 records, comments, directories).
struct ZipBuilder {
    var members: [(String, [UInt8])]
    var zip64 = false
    var comment: [UInt8] = []

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func u16(_ v: Int, _ into: inout [UInt8]) { into += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ v: UInt32, _ into: inout [UInt8]) { into += (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
        func u64(_ v: UInt64, _ into: inout [UInt8]) { into += (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }
        for (name, payload) in members {
            let offset = out.count
            let crc = CRC32.checksum(payload)
            let nameBytes = Array(name.utf8)
            var zip64Extra: [UInt8] = []
            if zip64 {
                u16(1, &zip64Extra)
                u16(24, &zip64Extra)
                u64(UInt64(payload.count), &zip64Extra)
                u64(UInt64(payload.count), &zip64Extra)
                u64(UInt64(offset), &zip64Extra)
            }
            u32(0x0403_4B50, &out)
            u16(45, &out); u16(0, &out); u16(0, &out); u16(0, &out); u16(0x21, &out)
            u32(crc, &out)
            let localExtra: [UInt8] = zip64 ? [1, 0, 16, 0] + Array(zip64Extra[4..<20]) : []
            u32(zip64 ? 0xFFFF_FFFF : UInt32(payload.count), &out)
            u32(zip64 ? 0xFFFF_FFFF : UInt32(payload.count), &out)
            u16(nameBytes.count, &out); u16(localExtra.count, &out)
            out += nameBytes + localExtra + payload

            u32(0x0201_4B50, &central)
            u16(45, &central); u16(45, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0x21, &central)
            u32(crc, &central)
            u32(zip64 ? 0xFFFF_FFFF : UInt32(payload.count), &central)
            u32(zip64 ? 0xFFFF_FFFF : UInt32(payload.count), &central)
            u16(nameBytes.count, &central); u16(zip64Extra.count, &central); u16(0, &central)
            u16(0, &central); u16(0, &central); u32(0, &central)
            u32(zip64 ? 0xFFFF_FFFF : UInt32(offset), &central)
            central += nameBytes + zip64Extra
        }
        let centralOffset = out.count
        out += central
        if zip64 {
            let recordOffset = out.count
            u32(0x0606_4B50, &out); u64(44, &out); u16(45, &out); u16(45, &out); u32(0, &out); u32(0, &out)
            u64(UInt64(members.count), &out); u64(UInt64(members.count), &out)
            u64(UInt64(central.count), &out); u64(UInt64(centralOffset), &out)
            u32(0x0706_4B50, &out); u32(0, &out); u64(UInt64(recordOffset), &out); u32(1, &out)
        }
        u32(0x0605_4B50, &out)
        u16(0, &out); u16(0, &out)
        u16(zip64 ? 0xFFFF : members.count, &out); u16(zip64 ? 0xFFFF : members.count, &out)
        u32(zip64 ? 0xFFFF_FFFF : UInt32(central.count), &out)
        u32(zip64 ? 0xFFFF_FFFF : UInt32(centralOffset), &out)
        u16(comment.count, &out)
        return out + comment
    }
}
