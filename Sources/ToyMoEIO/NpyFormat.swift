// Reading and writing the NPY file format.
//
// Layout (numpy's "NEP 1" format, versions 1.0/2.0/3.0):
//
//   offset 0  6 bytes  magic "\x93NUMPY"
//   offset 6  1 byte   major version
//   offset 7  1 byte   minor version
//   offset 8  2 bytes  header length HLEN, little-endian   (version 1.0)
//             4 bytes  header length HLEN, little-endian   (versions 2.0, 3.0)
//   then      HLEN     ASCII Python dict literal, e.g.
//                      {'descr': '<f4', 'fortran_order': False, 'shape': (3,), }
//                      padded with spaces and ending in '\n' so that
//                      magic + version + length field + HLEN is a multiple of 64
//   then      the element bytes in the order given by fortran_order.
//
// Version 3.0 only differs in allowing UTF-8 in the header; 1.0 and 2.0 are
// Latin-1.

import Foundation

/// Magic bytes that start every NPY file.
let npyMagic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

extension NpyArray {
    // MARK: - Writing

    /// The header dictionary text exactly as numpy (>= 1.24) writes it,
    /// before alignment padding.
    ///
    /// Keys are sorted (`descr`, `fortran_order`, `shape`), each entry is
    /// followed by `", "`, and the shape is Python's tuple repr. numpy then
    /// appends `21 - len(repr(shape[0]))` spaces (for non-0-d arrays) so that
    /// the leading axis can later grow in place; we do the same so that our
    /// files are byte-identical to `np.save` output.
    var npyHeaderDict: String {
        var text = "{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(NpyArray.pythonTuple(shape)), }"
        if let first = shape.first {
            let growthAxisMaxDigits = 21
            text += String(repeating: " ", count: max(0, growthAxisMaxDigits - String(first).count))
        }
        return text
    }

    /// Python's `repr` of a tuple of ints: `()`, `(3,)`, `(2, 3)`.
    static func pythonTuple(_ shape: [Int]) -> String {
        switch shape.count {
        case 0: return "()"
        case 1: return "(\(shape[0]),)"
        default: return "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
    }

    /// Magic, version, length field and padded header dict, as numpy writes them.
    ///
    /// Padding is `64 - (prefix + HLEN_unpadded) % 64` spaces (so 1...64 of
    /// them, exactly numpy's rule) followed by `'\n'`. Version 1.0 is used
    /// unless the padded header does not fit its 16-bit length field, in
    /// which case version 2.0 (32-bit length) is used.
    var npyHeader: [UInt8] {
        let dict = Array(npyHeaderDict.utf8)  // ASCII: descr and digits only
        let alignment = 64
        let unpaddedLength = dict.count + 1  // + "\n"
        var version: UInt8 = 1
        var prefixLength = npyMagic.count + 2 + 2
        var padding = alignment - (prefixLength + unpaddedLength) % alignment
        if unpaddedLength + padding > Int(UInt16.max) {
            version = 2
            prefixLength = npyMagic.count + 2 + 4
            padding = alignment - (prefixLength + unpaddedLength) % alignment
        }
        let headerLength = unpaddedLength + padding
        var writer = ByteWriter(reservingCapacity: prefixLength + headerLength)
        writer.append(contentsOf: npyMagic)
        writer.u8(version)
        writer.u8(0)
        if version == 1 {
            writer.u16(UInt16(truncatingIfNeeded: headerLength))
        } else {
            writer.u32(UInt32(truncatingIfNeeded: headerLength))
        }
        writer.append(contentsOf: dict)
        writer.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        writer.u8(UInt8(ascii: "\n"))
        return writer.bytes
    }

    /// The complete `.npy` file: header followed by the element bytes.
    /// The output is a pure function of the value, so it is reproducible.
    public func npyBytes() -> [UInt8] {
        var bytes = npyHeader
        bytes.append(contentsOf: data)
        return bytes
    }

    /// `npyBytes()` as `Data`.
    public func npyData() -> Data { Data(npyBytes()) }

    /// Writes the `.npy` file atomically (see `AtomicFile`).
    /// - Throws: `AtomicFileError` naming the path on failure.
    public func write(to url: URL) throws {
        try AtomicFile.write(npyBytes(), to: url)
    }

    // MARK: - Reading

    /// Parses a complete `.npy` file.
    ///
    /// Accepts versions 1.0, 2.0 and 3.0, the dtypes of `NpyDType` in either
    /// byte order (big-endian data is converted to little-endian), header keys
    /// in any order with arbitrary spacing and an optional trailing comma.
    ///
    /// - Throws: `NpyError` for bad magic, unsupported version or dtype,
    ///   Fortran order, a malformed header, truncated input, or data whose
    ///   length differs from what the shape requires (trailing bytes included).
    public init(npyBytes bytes: [UInt8]) throws {
        let reader = ByteReader(bytes)
        guard reader.count >= npyMagic.count + 2 else {
            // Still report bad magic when the short input is clearly not NPY.
            let prefix = Array(bytes.prefix(npyMagic.count))
            if prefix != Array(npyMagic.prefix(prefix.count)) { throw NpyError.badMagic(found: prefix) }
            throw NpyError.truncated(what: "magic and version", expectedBytes: npyMagic.count + 2, availableBytes: reader.count)
        }
        guard Array(bytes[0..<npyMagic.count]) == npyMagic else {
            throw NpyError.badMagic(found: Array(bytes[0..<npyMagic.count]))
        }
        let major = bytes[6], minor = bytes[7]
        let headerLength: Int
        let headerStart: Int
        switch (major, minor) {
        case (1, 0):
            guard let length = reader.u16(at: 8) else {
                throw NpyError.truncated(what: "header length field", expectedBytes: 10, availableBytes: reader.count)
            }
            headerLength = Int(length)
            headerStart = 10
        case (2, 0), (3, 0):
            guard let length = reader.u32(at: 8) else {
                throw NpyError.truncated(what: "header length field", expectedBytes: 12, availableBytes: reader.count)
            }
            headerLength = Int(length)
            headerStart = 12
        default:
            throw NpyError.unsupportedVersion(major: major, minor: minor)
        }
        guard let headerBytes = reader.slice(at: headerStart, length: headerLength) else {
            throw NpyError.truncated(what: "header", expectedBytes: headerStart + headerLength, availableBytes: reader.count)
        }
        let headerText: String
        if major == 3 {
            guard let text = String(validating: headerBytes, as: UTF8.self) else {
                throw NpyError.malformedHeader("header of a version 3.0 file is not valid UTF-8")
            }
            headerText = text
        } else {
            // Latin-1: every byte is the Unicode scalar of the same value.
            var text = ""
            text.unicodeScalars.append(contentsOf: headerBytes.map { Unicode.Scalar($0) })
            headerText = text
        }
        let header = try NpyHeader(parsing: headerText)
        if header.fortranOrder {
            throw NpyError.fortranOrder
        }
        let elements = try NpyArray.elementCount(of: header.shape)
        let (expected, overflow) = elements.multipliedReportingOverflow(by: header.dtype.itemSize)
        guard !overflow else { throw NpyError.invalidShape(header.shape) }
        let dataStart = headerStart + headerLength
        let available = reader.count - dataStart
        guard available >= expected else {
            throw NpyError.truncated(
                what: "data for shape \(header.shape) of \(header.dtype.descr)",
                expectedBytes: expected, availableBytes: available)
        }
        guard available == expected else {
            throw NpyError.dataSizeMismatch(
                shape: header.shape, dtype: header.dtype, expectedBytes: expected, actualBytes: available)
        }
        var payload = Array(bytes[dataStart...])
        if header.bigEndian {
            NpyArray.reverseEachElement(&payload, itemSize: header.dtype.itemSize)
        }
        self.init(unchecked: header.dtype, shape: header.shape, data: payload)
    }

    /// Parses a complete `.npy` file held in `Data`. See `init(npyBytes:)`.
    public init(npyData data: Data) throws {
        try self.init(npyBytes: [UInt8](data))
    }

    /// Reads and parses an `.npy` file.
    /// - Throws: `NpyError.io` if the file cannot be read, else as `init(npyBytes:)`.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NpyError.io(path: url.path, message: "cannot read file: \(error.localizedDescription)")
        }
        try self.init(npyData: data)
    }

    /// Converts big-endian element bytes to little-endian in place.
    static func reverseEachElement(_ bytes: inout [UInt8], itemSize: Int) {
        guard itemSize > 1 else { return }
        bytes.withUnsafeMutableBufferPointer { buffer in
            var start = 0
            while start + itemSize <= buffer.count {
                var low = start, high = start + itemSize - 1
                while low < high {
                    buffer.swapAt(low, high)
                    low += 1
                    high -= 1
                }
                start += itemSize
            }
        }
    }
}

/// The three facts an NPY header dictionary carries.
struct NpyHeader {
    var dtype: NpyDType
    var bigEndian: Bool
    var fortranOrder: Bool
    var shape: [Int]

    /// Parses the header dict text (including trailing padding and newline).
    init(parsing text: String) throws {
        var parser = PythonLiteralParser(text)
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.atEnd else {
            throw NpyError.malformedHeader("unexpected text after the header dictionary at character \(parser.position)")
        }
        guard case let .dict(entries) = value else {
            throw NpyError.malformedHeader("expected a Python dict literal {...}, found \(value.kind)")
        }
        var descr: PythonLiteral?
        var fortran: PythonLiteral?
        var shapeValue: PythonLiteral?
        for (key, entry) in entries {
            switch key {
            case "descr": descr = entry
            case "fortran_order": fortran = entry
            case "shape": shapeValue = entry
            default: continue  // numpy writes no other keys; ignore unknown ones
            }
        }
        guard let descr, let fortran, let shapeValue else {
            let missing = [("descr", descr), ("fortran_order", fortran), ("shape", shapeValue)]
                .filter { $0.1 == nil }.map { "'\($0.0)'" }.joined(separator: ", ")
            throw NpyError.malformedHeader("missing key(s) \(missing); expected 'descr', 'fortran_order' and 'shape'")
        }
        switch descr {
        case let .string(text):
            guard let parsed = NpyDType.parse(descr: text) else { throw NpyError.unsupportedDType("'\(text)'") }
            dtype = parsed.dtype
            bigEndian = parsed.bigEndian
        default:
            // Structured dtypes are written as a list of fields.
            throw NpyError.unsupportedDType("\(descr.kind) (structured dtype)")
        }
        guard case let .bool(isFortran) = fortran else {
            throw NpyError.malformedHeader("'fortran_order' must be True or False, found \(fortran.kind)")
        }
        fortranOrder = isFortran
        guard case let .tuple(items) = shapeValue else {
            throw NpyError.malformedHeader("'shape' must be a tuple of integers, found \(shapeValue.kind)")
        }
        var dims: [Int] = []
        for item in items {
            guard case let .int(extent) = item else {
                throw NpyError.malformedHeader("'shape' must be a tuple of integers, found an element of kind \(item.kind)")
            }
            dims.append(extent)
        }
        shape = dims
    }
}

/// The subset of Python literals that can occur in an NPY header.
indirect enum PythonLiteral {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([(String, PythonLiteral)])

    var kind: String {
        switch self {
        case .string: return "a string"
        case .int: return "an integer"
        case .bool: return "a boolean"
        case .none: return "None"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        }
    }
}

/// Recursive-descent parser for Python literals (strings, ints, True/False/None,
/// tuples, lists and dicts with string keys). Depth-limited so that hostile
/// input cannot exhaust the stack.
struct PythonLiteralParser {
    private let scalars: [Unicode.Scalar]
    private(set) var position = 0
    private var depth = 0
    private let maxDepth = 32

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    var atEnd: Bool { position >= scalars.count }

    private var current: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    mutating func skipWhitespace() {
        while let scalar = current, scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" {
            position += 1
        }
    }

    private func error(_ message: String) -> NpyError {
        NpyError.malformedHeader("\(message) at character \(position)")
    }

    private mutating func expect(_ scalar: Unicode.Scalar) throws {
        skipWhitespace()
        guard current == scalar else {
            throw error("expected '\(scalar)', found \(current.map { "'\($0)'" } ?? "end of header")")
        }
        position += 1
    }

    mutating func parseValue() throws -> PythonLiteral {
        skipWhitespace()
        guard let scalar = current else { throw error("expected a value, found end of header") }
        switch scalar {
        case "'", "\"": return .string(try parseString())
        case "{": return try nested { try $0.parseDict() }
        case "(":
            return try nested { parser in
                let (items, sawComma) = try parser.parseSequence(close: ")")
                // "(3)" is just a parenthesised 3 in Python, not a tuple.
                if items.count == 1 && !sawComma { return items[0] }
                return .tuple(items)
            }
        case "[": return try nested { .list(try $0.parseSequence(close: "]").items) }
        case "-", "+", "0"..."9": return .int(try parseInt())
        default:
            let word = parseWord()
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default: throw error("unexpected token '\(word.isEmpty ? String(scalar) : word)'")
            }
        }
    }

    private mutating func nested(_ body: (inout PythonLiteralParser) throws -> PythonLiteral) throws -> PythonLiteral {
        guard depth < maxDepth else { throw error("literal nested more than \(maxDepth) levels deep") }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    private mutating func parseWord() -> String {
        var word = ""
        while let scalar = current, scalar.properties.isAlphabetic || scalar == "_" {
            word.unicodeScalars.append(scalar)
            position += 1
        }
        return word
    }

    private mutating func parseInt() throws -> Int {
        var negative = false
        if current == "-" || current == "+" {
            negative = current == "-"
            position += 1
        }
        var value = 0
        var digits = 0
        while let scalar = current, (48...57).contains(scalar.value) {
            let digit = Int(scalar.value)
            let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = shifted.addingReportingOverflow(digit - 48)
            guard !o1, !o2 else { throw error("integer too large") }
            value = sum
            digits += 1
            position += 1
        }
        guard digits > 0 else { throw error("expected digits") }
        if current == "L" || current == "l" { position += 1 }  // Python 2 long suffix
        return negative ? -value : value
    }

    private mutating func parseString() throws -> String {
        guard let quote = current else { throw error("expected a string") }
        position += 1
        var text = ""
        while true {
            guard let scalar = current else { throw error("unterminated string") }
            position += 1
            if scalar == quote { return text }
            if scalar == "\\" {
                guard let escaped = current else { throw error("unterminated escape in string") }
                position += 1
                switch escaped {
                case "n": text.unicodeScalars.append("\n")
                case "t": text.unicodeScalars.append("\t")
                case "r": text.unicodeScalars.append("\r")
                case "0": text.unicodeScalars.append("\0")
                default: text.unicodeScalars.append(escaped)  // \\ \' \" and anything else literally
                }
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
    }

    /// Parses comma-separated values up to `close`; allows a trailing comma.
    private mutating func parseSequence(close: Unicode.Scalar) throws -> (items: [PythonLiteral], sawComma: Bool) {
        position += 1  // opening bracket
        var items: [PythonLiteral] = []
        var sawComma = false
        while true {
            skipWhitespace()
            if current == close {
                position += 1
                return (items, sawComma)
            }
            items.append(try parseValue())
            skipWhitespace()
            if current == "," {
                position += 1
                sawComma = true
            } else {
                try expect(close)
                return (items, sawComma)
            }
        }
    }

    private mutating func parseDict() throws -> PythonLiteral {
        position += 1  // "{"
        var entries: [(String, PythonLiteral)] = []
        while true {
            skipWhitespace()
            if current == "}" {
                position += 1
                return .dict(entries)
            }
            guard current == "'" || current == "\"" else {
                throw error("expected a string key or '}', found \(current.map { "'\($0)'" } ?? "end of header")")
            }
            let key = try parseString()
            try expect(":")
            let value = try parseValue()
            if entries.contains(where: { $0.0 == key }) { throw error("duplicate key '\(key)'") }
            entries.append((key, value))
            skipWhitespace()
            if current == "," {
                position += 1
            } else {
                try expect("}")
                return .dict(entries)
            }
        }
    }
}
