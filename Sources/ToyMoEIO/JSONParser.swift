// A strict RFC 8259 JSON parser.

import Foundation

extension JSONValue {
    /// Maximum nesting of arrays and objects the parser accepts. Parsing is
    /// recursive, so a limit keeps hostile input from overflowing the stack
    /// (which would crash rather than throw). Configuration files are far
    /// shallower than this.
    public static let maximumParseDepth = 128

    /// Parses JSON text. See `init(parsing bytes:)`.
    public init(parsing text: String) throws {
        try self.init(parsing: Array(text.utf8))
    }

    /// Parses UTF-8 JSON text strictly per RFC 8259: one value surrounded by
    /// optional whitespace; no comments, trailing commas, single quotes,
    /// leading zeros, NaN or Infinity. A leading UTF-8 byte-order mark is
    /// skipped. Numbers without fraction or exponent that fit in `Int` become
    /// `.int`, others `.number`. Duplicate object keys are an error (the
    /// meaning would be ambiguous). `\u` escapes must pair surrogates.
    ///
    /// - Throws: `JSONError.syntax` with the byte offset, line and column of
    ///   the problem.
    public init(parsing bytes: [UInt8]) throws {
        var parser = JSONParser(bytes)
        self = try parser.parseDocument()
    }

    /// Parses JSON text held in `Data`.
    public init(parsing data: Data) throws {
        try self.init(parsing: [UInt8](data))
    }

    /// Reads and parses a JSON file.
    /// - Throws: `JSONError.io` if the file cannot be read, `JSONError.syntax` if it is not JSON.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw JSONError.io(path: url.path, message: "cannot read file: \(error.localizedDescription)")
        }
        try self.init(parsing: data)
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var position = 0
    var depth = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    func error(_ message: String, at offset: Int? = nil) -> JSONError {
        let offset = min(offset ?? position, bytes.count)
        var line = 1
        var lineStart = 0
        for index in 0..<offset where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        return JSONError.syntax(message: message, offset: offset, line: line, column: offset - lineStart + 1)
    }

    func describeCurrent() -> String {
        guard let byte = current else { return "end of input" }
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte \(hex(byte))"
    }

    mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            position += 1
        }
    }

    mutating func parseDocument() throws -> JSONValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        skipWhitespace()
        guard current != nil else { throw error("expected a JSON value, found end of input") }
        let value = try parseValue()
        skipWhitespace()
        guard current == nil else { throw error("unexpected \(describeCurrent()) after the JSON value") }
        return value
    }

    mutating func parseValue() throws -> JSONValue {
        skipWhitespace()
        guard let byte = current else { throw error("expected a JSON value, found end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try nested { try $0.parseObject() }
        case UInt8(ascii: "["): return try nested { try $0.parseArray() }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default: throw error("expected a JSON value, found \(describeCurrent())")
        }
    }

    mutating func nested(_ body: (inout JSONParser) throws -> JSONValue) throws -> JSONValue {
        guard depth < JSONValue.maximumParseDepth else {
            throw error("nesting deeper than \(JSONValue.maximumParseDepth) levels")
        }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    mutating func literal(_ word: String, _ value: JSONValue) throws -> JSONValue {
        let expected = Array(word.utf8)
        guard position + expected.count <= bytes.count,
              Array(bytes[position..<(position + expected.count)]) == expected
        else { throw error("invalid literal; expected '\(word)'") }
        position += expected.count
        return value
    }

    mutating func parseArray() throws -> JSONValue {
        position += 1  // "["
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                position += 1
                skipWhitespace()
                if current == UInt8(ascii: "]") { throw error("trailing comma before ']'") }
            case UInt8(ascii: "]"):
                position += 1
                return .array(elements)
            default:
                throw error("expected ',' or ']' in array, found \(describeCurrent())")
            }
        }
    }

    mutating func parseObject() throws -> JSONValue {
        position += 1  // "{"
        var object = JSONObject()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else {
                throw error("expected a string key, found \(describeCurrent())")
            }
            let keyOffset = position
            let key = try parseString()
            guard object[key] == nil else { throw error("duplicate key \(String(reflecting: key))", at: keyOffset) }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else {
                throw error("expected ':' after object key, found \(describeCurrent())")
            }
            position += 1
            object[key] = try parseValue()
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                position += 1
                skipWhitespace()
                if current == UInt8(ascii: "}") { throw error("trailing comma before '}'") }
            case UInt8(ascii: "}"):
                position += 1
                return .object(object)
            default:
                throw error("expected ',' or '}' in object, found \(describeCurrent())")
            }
        }
    }

    mutating func parseString() throws -> String {
        let start = position
        position += 1  // opening quote
        var buffer: [UInt8] = []
        while true {
            guard let byte = current else { throw error("unterminated string (started at byte \(start))") }
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard let text = String(validating: buffer, as: UTF8.self) else {
                    throw error("string is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\\"):
                position += 1
                try parseEscape(into: &buffer)
            case 0x00..<0x20:
                throw error("unescaped control character \(hex(byte)) in string; write it as \\u\(String(format: "%04x", Int(byte)))")
            default:
                buffer.append(byte)
                position += 1
            }
        }
    }

    mutating func parseEscape(into buffer: inout [UInt8]) throws {
        guard let byte = current else { throw error("unterminated escape sequence") }
        position += 1
        let simple: UInt8?
        switch byte {
        case UInt8(ascii: "\""): simple = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): simple = UInt8(ascii: "\\")
        case UInt8(ascii: "/"): simple = UInt8(ascii: "/")
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"): simple = nil
        default:
            throw error("invalid escape '\\\(Character(Unicode.Scalar(byte)))'", at: position - 2)
        }
        if let simple {
            buffer.append(simple)
            return
        }
        let escapeStart = position - 2
        let unit = try parseHex4()
        var scalarValue = UInt32(unit)
        if (0xD800...0xDBFF).contains(unit) {
            guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                throw error("high surrogate \\u\(String(unit, radix: 16)) not followed by a low surrogate", at: escapeStart)
            }
            position += 2
            let low = try parseHex4()
            guard (0xDC00...0xDFFF).contains(low) else {
                throw error("high surrogate \\u\(String(unit, radix: 16)) followed by \\u\(String(low, radix: 16)), which is not a low surrogate", at: escapeStart)
            }
            scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(unit) {
            throw error("lone low surrogate \\u\(String(unit, radix: 16))", at: escapeStart)
        }
        guard let scalar = Unicode.Scalar(scalarValue) else {
            throw error("invalid Unicode escape", at: escapeStart)
        }
        buffer.append(contentsOf: Array(String(scalar).utf8))
    }

    mutating func parseHex4() throws -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw error("incomplete \\u escape; expected 4 hex digits") }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit \(describeCurrent()) in \\u escape; expected 4 hex digits")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = position
        func isDigit(_ byte: UInt8?) -> Bool {
            guard let byte else { return false }
            return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
        }
        if current == UInt8(ascii: "-") { position += 1 }
        // int = zero / ( digit1-9 *DIGIT )
        if current == UInt8(ascii: "0") {
            position += 1
            if isDigit(current) { throw error("leading zeros are not allowed in numbers", at: start) }
        } else if isDigit(current) {
            while isDigit(current) { position += 1 }
        } else {
            throw error("expected a digit, found \(describeCurrent())")
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard isDigit(current) else { throw error("expected a digit after the decimal point, found \(describeCurrent())") }
            while isDigit(current) { position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard isDigit(current) else { throw error("expected a digit in the exponent, found \(describeCurrent())") }
            while isDigit(current) { position += 1 }
        }
        // The grammar above only admits ASCII, so this decoding cannot fail.
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let integer = Int(text) { return .int(integer) }
        guard let double = Double(text), double.isFinite else {
            throw error("number \(text) is out of range for a 64-bit float", at: start)
        }
        return .number(double)
    }
}
