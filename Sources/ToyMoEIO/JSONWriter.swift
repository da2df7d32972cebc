// Deterministic JSON serialisation.

import Foundation

/// Options for `JSONValue.serialized(options:)`.
public struct JSONWriteOptions: Sendable, Hashable {
    /// What to do with NaN and ±infinity, which JSON cannot represent.
    public enum NonFinitePolicy: Sendable, Hashable {
        /// Throw `JSONError.nonFiniteNumber` (the default: silently losing a
        /// NaN in a metrics file hides bugs).
        case throwError
        /// Write `null`.
        case null
    }

    /// Pretty-print with newlines and indentation; otherwise no whitespace at all.
    public var pretty: Bool
    /// Spaces per nesting level when pretty-printing.
    public var indent: Int
    /// Handling of NaN and infinities.
    public var nonFinite: NonFinitePolicy
    /// Write object keys sorted by Swift `String` order instead of insertion order.
    public var sortKeys: Bool
    /// Escape DEL and every non-ASCII character as `\uXXXX` (surrogate pairs
    /// above U+FFFF) instead of writing UTF-8, for ASCII-only output.
    public var escapeNonASCII: Bool

    public init(pretty: Bool = true, indent: Int = 2, nonFinite: NonFinitePolicy = .throwError,
                sortKeys: Bool = false, escapeNonASCII: Bool = false) {
        self.pretty = pretty
        self.indent = indent
        self.nonFinite = nonFinite
        self.sortKeys = sortKeys
        self.escapeNonASCII = escapeNonASCII
    }

    /// Two-space indentation, insertion-ordered keys, NaN rejected.
    public static let pretty = JSONWriteOptions()
    /// No whitespace, insertion-ordered keys, NaN rejected.
    public static let compact = JSONWriteOptions(pretty: false)
}

extension JSONValue {
    /// Serialises the value.
    ///
    /// Format (pretty): one member or element per line, indented by
    /// `options.indent` spaces per level, `": "` between key and value,
    /// `[]` and `{}` for empty containers, no trailing newline; the same
    /// layout as Python's `json.dumps(value, indent=2)`. Object keys are
    /// written in insertion order unless `sortKeys` is set. Integers print in
    /// decimal; doubles use Swift's shortest round-trip `description`
    /// (`0.1`, `1.0`, `1e-07`, `1e+16`), which is valid JSON. Strings are
    /// escaped per RFC 8259: `"` `\` and U+0000–U+001F (`\b \f \n \r \t`
    /// short forms, `\u00XX` otherwise); `/` is not escaped.
    ///
    /// - Throws: `JSONError.nonFiniteNumber` for NaN/infinity unless
    ///   `options.nonFinite == .null`.
    public func serialized(options: JSONWriteOptions = .pretty) throws -> String {
        var output = ""
        try JSONValue.write(self, into: &output, level: 0, path: "$", options: options)
        return output
    }

    /// `serialized(options: .pretty)`.
    public func prettyPrinted() throws -> String { try serialized(options: .pretty) }

    /// `serialized(options: .compact)`.
    public func compactString() throws -> String { try serialized(options: .compact) }

    /// Writes the serialised value plus a final newline to `url` atomically.
    public func write(to url: URL, options: JSONWriteOptions = .pretty) throws {
        try AtomicFile.write(serialized(options: options) + "\n", to: url)
    }

    private static func write(_ value: JSONValue, into output: inout String, level: Int, path: String,
                              options: JSONWriteOptions) throws {
        switch value {
        case .null: output += "null"
        case let .bool(flag): output += flag ? "true" : "false"
        case let .int(number): output += String(number)
        case let .number(number):
            if number.isFinite {
                output += number.description
            } else if options.nonFinite == .null {
                output += "null"
            } else {
                throw JSONError.nonFiniteNumber(path: path)
            }
        case let .string(text): writeString(text, into: &output, asciiOnly: options.escapeNonASCII)
        case let .array(elements):
            guard !elements.isEmpty else {
                output += "[]"
                return
            }
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                newline(&output, level: level + 1, options: options)
                try write(element, into: &output, level: level + 1, path: "\(path)[\(index)]", options: options)
            }
            newline(&output, level: level, options: options)
            output += "]"
        case let .object(object):
            guard !object.isEmpty else {
                output += "{}"
                return
            }
            let ordered = options.sortKeys ? object.sortedByKey() : object
            output += "{"
            for (index, member) in ordered.entries.enumerated() {
                if index > 0 { output += "," }
                newline(&output, level: level + 1, options: options)
                writeString(member.key, into: &output, asciiOnly: options.escapeNonASCII)
                output += options.pretty ? ": " : ":"
                try write(member.value, into: &output, level: level + 1,
                          path: "\(path)[\(String(reflecting: member.key))]", options: options)
            }
            newline(&output, level: level, options: options)
            output += "}"
        }
    }

    private static func newline(_ output: inout String, level: Int, options: JSONWriteOptions) {
        guard options.pretty else { return }
        output += "\n"
        output += String(repeating: " ", count: max(0, options.indent) * level)
    }

    private static func writeString(_ text: String, into output: inout String, asciiOnly: Bool) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            default:
                if scalar.value < 0x20 {
                    output += unicodeEscape(UInt16(scalar.value))
                } else if asciiOnly && scalar.value > 0x7E {
                    // UTF-16 code units; above U+FFFF this gives a surrogate pair.
                    for unit in String(scalar).utf16 { output += unicodeEscape(unit) }
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }

    private static func unicodeEscape(_ unit: UInt16) -> String {
        let digits = String(unit, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }
}
