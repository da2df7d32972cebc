// A small JSON document model with deterministic output.

import Foundation

/// A JSON value.
///
/// Integers and floating-point numbers are distinct cases so that integer
/// fields (seeds, counts) print without a fractional part and floating-point
/// fields always print in a form that parses back as floating point
/// (`1.0`, not `1`). The parser yields `.int` for numbers written without a
/// fraction or exponent that fit in `Int`, and `.number` otherwise.
///
/// Equality is structural and order-sensitive for objects, matching the
/// serialised bytes: `.int(1) != .number(1.0)`.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The string, if this is `.string`.
    public var stringValue: String? {
        if case let .string(value) = self { return value }
        return nil
    }

    /// The boolean, if this is `.bool`.
    public var boolValue: Bool? {
        if case let .bool(value) = self { return value }
        return nil
    }

    /// The value as `Double` for `.number` and `.int`.
    public var doubleValue: Double? {
        switch self {
        case let .number(value): return value
        case let .int(value): return Double(value)
        default: return nil
        }
    }

    /// The value as `Int` for `.int`, or for `.number` holding an integral
    /// value that fits exactly.
    public var intValue: Int? {
        switch self {
        case let .int(value): return value
        case let .number(value): return Int(exactly: value)
        default: return nil
        }
    }

    /// The elements, if this is `.array`.
    public var arrayValue: [JSONValue]? {
        if case let .array(value) = self { return value }
        return nil
    }

    /// The object, if this is `.object`.
    public var objectValue: JSONObject? {
        if case let .object(value) = self { return value }
        return nil
    }

    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Member lookup for objects; nil for other cases or missing keys.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// Element lookup for arrays; nil for other cases or out-of-range indices.
    public subscript(index: Int) -> JSONValue? {
        guard case let .array(elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Keys keep their literal order; a repeated key keeps its first position
    /// and its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

/// A JSON object whose keys keep insertion order.
///
/// Serialisation writes keys in this order, so output is deterministic for a
/// deterministic program. Assigning to an existing key replaces its value in
/// place; assigning `nil` removes the key.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// Keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: JSONValue] = [:]

    /// An empty object.
    public init() {}

    /// An object from ordered pairs; a repeated key keeps its first position
    /// and its last value.
    public init<S: Sequence>(_ pairs: S) where S.Element == (String, JSONValue) {
        for (key, value) in pairs { self[key] = value }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// Number of members.
    public var count: Int { keys.count }

    /// True if there are no members.
    public var isEmpty: Bool { keys.isEmpty }

    /// Values in key order.
    public var values: [JSONValue] { keys.compactMap { storage[$0] } }

    /// Members in key order.
    public var entries: [(key: String, value: JSONValue)] {
        keys.compactMap { key in storage[key].map { (key: key, value: $0) } }
    }

    /// Gets, replaces (keeping position), appends, or (with nil) removes a member.
    public subscript(key: String) -> JSONValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// A copy with keys sorted by Swift `String` order.
    public func sortedByKey() -> JSONObject {
        var copy = self
        copy.keys.sort()
        return copy
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        entries.makeIterator()
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.keys == rhs.keys && lhs.storage == rhs.storage
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(keys)
        for key in keys { hasher.combine(storage[key]) }
    }
}

/// Errors from JSON serialisation, parsing and file I/O.
public enum JSONError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A NaN or infinite number was found at `path` (e.g. `$.metrics[2]`) and
    /// the options did not allow writing it as `null`.
    case nonFiniteNumber(path: String)
    /// The text is not valid JSON. `offset` is a 0-based byte offset; `line`
    /// and `column` are 1-based (column counted in bytes).
    case syntax(message: String, offset: Int, line: Int, column: Int)
    /// Reading the file failed.
    case io(path: String, message: String)

    public var description: String {
        switch self {
        case let .nonFiniteNumber(path):
            return "cannot write non-finite number at \(path): JSON has no NaN or Infinity; use JSONWriteOptions(nonFinite: .null) to write null instead"
        case let .syntax(message, offset, line, column):
            return "JSON parse error at line \(line), column \(column) (byte offset \(offset)): \(message)"
        case let .io(path, message):
            return "JSON I/O error for \(path): \(message)"
        }
    }
}
