import Foundation
import Testing
import ToyMoEIO

@Suite("NPY format")
struct NpyTests {
    static let shapes: [[Int]] = [[], [0], [5], [2, 3], [2, 3, 4]]

    @Test("round trip for every dtype and shape", arguments: NpyDType.allCases, NpyTests.shapes)
    func roundTrip(dtype: NpyDType, shape: [Int]) throws {
        let array = try sampleArray(dtype, shape: shape)
        #expect(array.shape == shape)
        #expect(array.count == shape.reduce(1, *))
        let bytes = array.npyBytes()

        // Header: magic, version 1.0, length field, then a 64-byte-aligned total.
        #expect(Array(bytes[0..<6]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59])
        #expect(bytes[6] == 1 && bytes[7] == 0)
        let headerTotal = 10 + le16(bytes, 8)
        #expect(headerTotal % 64 == 0)
        #expect(bytes[headerTotal - 1] == 0x0A)
        #expect(bytes.count == headerTotal + array.count * dtype.itemSize)

        let back = try NpyArray(npyBytes: bytes)
        #expect(back == array)
        #expect(back.dtype == dtype)
        #expect(back.shape == shape)
        #expect(try back.asFloat64() == array.asFloat64())
        switch dtype {
        case .float32: #expect(try back.asFloat32() == array.asFloat32())
        case .int32: #expect(try back.asInt32() == array.asInt32())
        case .int64: #expect(try back.asInt64() == array.asInt64())
        case .float64: #expect(try back.asFloat64() == array.asFloat64())
        case .uint8: #expect(try back.asUInt8() == array.asUInt8())
        case .bool: #expect(try back.asBool() == array.asBool())
        }
    }

    @Test("header of float32 shape (3,) matches the spec byte for byte")
    func exactHeaderFloat32Vector() throws {
        // Dict text, 57 characters, keys sorted as numpy writes them.
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
        #expect(dict.utf8.count == 57)
        // numpy appends 21 - len("3") = 20 spare spaces so the first axis can
        // grow in place: 57 + 20 = 77 characters. With the trailing newline
        // that is 78, and 6 (magic) + 2 (version) + 2 (length) + 78 = 88,
        // so 40 more spaces reach the next multiple of 64, 128.
        // HLEN = 128 - 10 = 118 = 0x76.
        let expectedHeader: [UInt8] = [0x93] + Array("NUMPY".utf8) + [0x01, 0x00, 0x76, 0x00]
            + Array(dict.utf8) + Array(repeating: 0x20, count: 20 + 40) + [0x0A]
        #expect(expectedHeader.count == 128)

        let array = try NpyArray(float32: [1, 2, 3], shape: [3])
        let bytes = array.npyBytes()
        #expect(Array(bytes[0..<128]) == expectedHeader)
        // 1.0f = 0x3F800000, 2.0f = 0x40000000, 3.0f = 0x40400000, little-endian.
        #expect(Array(bytes[128...]) == [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40])
    }

    @Test("header of a 0-d float64 and a 2-D int64 array")
    func exactHeaderScalarAndMatrix() throws {
        // 0-d: "()" and no spare growth spaces. Dict is 55 characters,
        // + newline = 56, 10 + 56 = 66, padded with 62 spaces to 128.
        let scalarDict = "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"
        #expect(scalarDict.utf8.count == 55)
        let scalar = try NpyArray(float64: [1.5], shape: [])
        let scalarBytes = scalar.npyBytes()
        let scalarHeader: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0]
            + Array(scalarDict.utf8) + Array(repeating: 0x20, count: 62) + [0x0A]
        #expect(Array(scalarBytes[0..<128]) == scalarHeader)
        #expect(scalarBytes.count == 136)

        // 2-D: "(2, 3)" as Python formats tuples; 59 characters + 20 growth
        // spaces (21 - len("2")) + newline = 80, 10 + 80 = 90, 38 more spaces.
        let matrixDict = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"
        #expect(matrixDict.utf8.count == 59)
        let matrix = try NpyArray(int64: [1, 2, 3, 4, 5, 6], shape: [2, 3])
        let matrixHeader: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0]
            + Array(matrixDict.utf8) + Array(repeating: 0x20, count: 20 + 38) + [0x0A]
        #expect(Array(matrix.npyBytes()[0..<128]) == matrixHeader)

        // 1-byte types use '|'.
        let flags = try NpyArray(bool: [true], shape: [1]).npyBytes()
        #expect(String(decoding: flags[10..<70], as: UTF8.self).hasPrefix("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }"))
        let bytes = try NpyArray(uint8: [7], shape: [1, 1]).npyBytes()
        #expect(String(decoding: bytes[10..<70], as: UTF8.self).hasPrefix("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1), }"))
    }

    @Test("writing the same array twice gives identical bytes")
    func reproducible() throws {
        for dtype in NpyDType.allCases {
            let first = try sampleArray(dtype, shape: [2, 3, 4]).npyBytes()
            let second = try sampleArray(dtype, shape: [2, 3, 4]).npyBytes()
            #expect(first == second)
            #expect(try sampleArray(dtype, shape: [2, 3, 4]).npyData() == Data(first))
        }
    }

    @Test("header longer than 65535 bytes switches to format 2.0")
    func version2Header() throws {
        let shape = Array(repeating: 1, count: 30_000)  // "1, " × 30000 ≈ 90 kB of header
        let array = try NpyArray(float32: [42], shape: shape)
        let bytes = array.npyBytes()
        #expect(bytes[6] == 2 && bytes[7] == 0)
        let headerLength = Int(le32(bytes, 8))
        #expect((12 + headerLength) % 64 == 0)
        #expect(headerLength > 65535)
        let back = try NpyArray(npyBytes: bytes)
        #expect(back == array)
    }

    @Test("initialisers reject element counts that do not match the shape")
    func elementCountChecks() {
        expectError(NpyError.self, { _ = try NpyArray(float32: [1, 2, 3], shape: [2, 2]) }) {
            $0 == .elementCountMismatch(count: 3, shape: [2, 2], expected: 4)
        }
        expectError(NpyError.self, { _ = try NpyArray(bool: [], shape: []) }) {
            $0 == .elementCountMismatch(count: 0, shape: [], expected: 1)
        }
        expectError(NpyError.self, { _ = try NpyArray(int32: [], shape: [-1]) }) { $0 == .invalidShape([-1]) }
        expectError(NpyError.self, { _ = try NpyArray(uint8: [], shape: [Int.max, 4]) }) { $0 == .invalidShape([Int.max, 4]) }
        expectError(NpyError.self, { _ = try NpyArray(dtype: .float64, shape: [2], data: [0, 0, 0]) }) {
            $0 == .dataSizeMismatch(shape: [2], dtype: .float64, expectedBytes: 16, actualBytes: 3)
        }
        // Default shape is one-dimensional.
        #expect((try? NpyArray(float64: [1, 2, 3]))?.shape == [3])
    }

    @Test("typed accessors convert between dtypes, exactly or with an error")
    func conversions() throws {
        let ints = try NpyArray(int32: [-2, 0, 7], shape: [3])
        #expect(try ints.asFloat64() == [-2, 0, 7])
        #expect(try ints.asFloat32() == [-2, 0, 7])
        #expect(try ints.asInt64() == [-2, 0, 7])
        #expect(try ints.asBool() == [true, false, true])
        expectError(NpyError.self, { _ = try ints.asUInt8() }) {
            $0 == .lossyConversion(from: .int32, to: "uint8", index: 0, value: "-2")
        }

        let floats = try NpyArray(float64: [1, 2.5, -3], shape: [3])
        #expect(try floats.asFloat32() == [1, 2.5, -3])
        expectError(NpyError.self, { _ = try floats.asInt64() }) {
            $0 == .lossyConversion(from: .float64, to: "int64", index: 1, value: "2.5")
        }
        let nan = try NpyArray(float32: [.nan], shape: [1])
        expectError(NpyError.self, { _ = try nan.asInt32() })
        #expect(try nan.asBool() == [true])

        let big = try NpyArray(int64: [1 << 40], shape: [1])
        expectError(NpyError.self, { _ = try big.asInt32() })
        #expect(try big.asFloat64() == [Double(1 << 40)])

        let flags = try NpyArray(bool: [true, false], shape: [2])
        #expect(try flags.asFloat32() == [1, 0])
        #expect(try flags.asInt32() == [1, 0])
        #expect(try flags.asUInt8() == [1, 0])

        let bytes = try NpyArray(uint8: [0, 255], shape: [2])
        #expect(try bytes.asInt64() == [0, 255])
        #expect(try bytes.asBool() == [false, true])
    }

    @Test("data bytes are little-endian")
    func littleEndianLayout() throws {
        let array = try NpyArray(int32: [0x0102_0304], shape: [1])
        #expect(array.data == [4, 3, 2, 1])
        let doubles = try NpyArray(float64: [1.0], shape: [])
        #expect(doubles.data == [0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
    }

    // MARK: - Reader tolerance

    @Test("reader accepts any key order, extra spaces, no trailing comma, and other byte orders")
    func lenientHeaderParsing() throws {
        let data: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0]
        let reordered = craftNpy("{ 'shape' : ( 2 , ) ,'fortran_order':False,  'descr':'<i4' }", data: data)
        let a = try NpyArray(npyBytes: reordered)
        #expect(a.shape == [2] && a.dtype == .int32)
        #expect(try a.asInt32() == [1, 2])

        let doubleQuoted = craftNpy("{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2,)}", data: data)
        #expect(try NpyArray(npyBytes: doubleQuoted) == a)

        // Python 2 era long suffixes.
        let longs = craftNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (2L,), }", data: data)
        #expect(try NpyArray(npyBytes: longs) == a)

        // Big-endian data is converted to little-endian on load.
        let bigEndian = craftNpy("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", data: [0, 0, 0, 1, 0, 0, 0, 2])
        #expect(try NpyArray(npyBytes: bigEndian) == a)
        let bigDouble = craftNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (), }", data: [0x3F, 0xF0, 0, 0, 0, 0, 0, 0])
        #expect(try NpyArray(npyBytes: bigDouble).asFloat64() == [1.0])
        let native = craftNpy("{'descr': '=f4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0x80, 0x3F])
        #expect(try NpyArray(npyBytes: native).asFloat32() == [1.0])

        // '<u1' and '|u1' both mean uint8; '|b1' is bool.
        let u1 = craftNpy("{'descr': '<u1', 'fortran_order': False, 'shape': (3,), }", data: [1, 2, 3])
        #expect(try NpyArray(npyBytes: u1) == NpyArray(uint8: [1, 2, 3]))
        let b1 = craftNpy("{'descr': '|b1', 'fortran_order': False, 'shape': (1, 2), }", data: [1, 0])
        #expect(try NpyArray(npyBytes: b1) == NpyArray(bool: [true, false], shape: [1, 2]))

        // Format 2.0 and 3.0 headers have a 4-byte length.
        let v2 = craftNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data: data, major: 2)
        #expect(try NpyArray(npyBytes: v2) == a)
        let v3 = craftNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data: data, major: 3)
        #expect(try NpyArray(npyBytes: v3) == a)
    }

    // MARK: - Malformed input

    @Test("bad magic, version, dtype, order and sizes give clear errors")
    func malformedInputs() throws {
        let good = try NpyArray(float32: [1, 2, 3], shape: [3]).npyBytes()

        var badMagic = good
        badMagic[1] = UInt8(ascii: "X")
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: badMagic) }) {
            guard case .badMagic = $0 else { return false }
            return $0.description.contains("NUMPY")
        }
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: Array("PK\u{3}\u{4}hello world".utf8)) }) {
            if case .badMagic = $0 { return true } else { return false }
        }

        var badVersion = good
        badVersion[6] = 9
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: badVersion) }) { $0 == .unsupportedVersion(major: 9, minor: 0) }

        let fortran = craftNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data: Array(repeating: 0, count: 16))
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: fortran) }) {
            $0 == .fortranOrder && $0.description.contains("fortran_order")
        }

        for descr in ["'<c16'", "'<U5'", "'<f2'", "'|O'", "'>b2'", "[('a', '<f4')]", "'|f4'"] {
            let bytes = craftNpy("{'descr': \(descr), 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0])
            expectError(NpyError.self, { _ = try NpyArray(npyBytes: bytes) }) {
                if case .unsupportedDType = $0 { return $0.description.contains("'<f4'") } else { return false }
            }
        }

        let extra = good + [0]
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: extra) }) {
            $0 == .dataSizeMismatch(shape: [3], dtype: .float32, expectedBytes: 12, actualBytes: 13)
        }
        let short = Array(good.dropLast())
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: short) }) {
            if case let .truncated(_, expected, available) = $0 { return expected == 12 && available == 11 }
            return false
        }

        let headerProblems = [
            "{'descr': '<f4', 'shape': (1,), }",  // missing key
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }",  // not a bool
            "{'descr': '<f4', 'fortran_order': False, 'shape': [1], }",  // list, not tuple
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,) ",  // unterminated
            "{'descr': '<f4' 'fortran_order': False, 'shape': (1,), }",  // missing comma
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            "['descr', '<f4']",
            "",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            String(repeating: "(", count: 500),
        ]
        for header in headerProblems {
            let bytes = craftNpy(header, data: [0, 0, 0, 0])
            expectError(NpyError.self, { _ = try NpyArray(npyBytes: bytes) }) {
                if case .malformedHeader = $0 { return true } else { return false }
            }
        }

        let negative = craftNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", data: [])
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: negative) }) { $0 == .invalidShape([-1]) }
        let overflow = craftNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", data: [])
        expectError(NpyError.self, { _ = try NpyArray(npyBytes: overflow) }) { $0 == .invalidShape([4_611_686_018_427_387_904, 4]) }

        expectError(NpyError.self, { _ = try NpyArray(contentsOf: URL(fileURLWithPath: "/nonexistent/x.npy")) }) {
            if case let .io(path, _) = $0 { return path == "/nonexistent/x.npy" } else { return false }
        }
    }

    @Test("every truncation of a valid file throws instead of crashing")
    func everyTruncationThrows() throws {
        let good = try NpyArray(float64: [1, 2, 3, 4, 5, 6], shape: [2, 3]).npyBytes()
        for length in 0..<good.count {
            expectError(NpyError.self, { _ = try NpyArray(npyBytes: Array(good[0..<length])) }) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
    }

    @Test("random corruption of the header never crashes")
    func corruptedHeadersDoNotCrash() throws {
        let good = try NpyArray(int32: [1, 2, 3, 4, 5, 6], shape: [2, 3]).npyBytes()
        var generator = SplitMix64(seed: 12345)
        for _ in 0..<3000 {
            var bytes = good
            for _ in 0..<Int(generator.next() % 4 + 1) {
                let position = Int(generator.next() % 128)
                bytes[position] = UInt8(truncatingIfNeeded: generator.next())
            }
            _ = try? NpyArray(npyBytes: bytes)  // must return or throw, never trap
        }
    }

    @Test("write(to:) and init(contentsOf:) round trip through a file")
    func fileRoundTrip() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("a.npy")
        let array = try sampleArray(.float32, shape: [4, 5])
        try array.write(to: url)
        #expect(try NpyArray(contentsOf: url) == array)
        #expect(try Data(contentsOf: url) == array.npyData())
    }
}

/// Small deterministic PRNG for the corruption test.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
