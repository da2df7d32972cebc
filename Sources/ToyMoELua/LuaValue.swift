import Foundation

// Values that cross the boundary between Swift and Lua, by value.
//
// A `LuaValue` read from Lua is a copy: tables are converted recursively (with depth, size and cycle limits), so
// mutating a `LuaTable` in Swift never changes the Lua table, and vice versa. Two cases keep a reference instead:
// `.userdata` (a host object of a registered type, shared with Lua) and `.function` (a Lua function held in the
// registry of the runtime that produced it).

/// A Lua value as seen from Swift.
///
/// - Numbers keep Lua 5.4's two subtypes: `.integer` (64-bit) and `.number` (double).
/// - Strings are decoded as UTF-8; invalid bytes are replaced (scripts here carry names and text, not binary).
/// - Sendability: the plain cases (nil, booleans, numbers, strings, tables of those) may cross threads freely.
///   `.function` belongs to the runtime that produced it (another runtime rejects it), and `.userdata` shares a host
///   object, which must itself be safe to use from wherever the value goes.
public enum LuaValue: @unchecked Sendable {
    case `nil`
    case boolean(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case table(LuaTable)
    /// A host object of a type registered with `LuaRuntime.registerType`; Lua sees it as a userdata handle.
    case userdata(AnyObject)
    case function(LuaFunctionRef)
}

/// A key of a converted table. Lua normalizes float keys with an integral value to integers, so `t[2.0]` reads
/// back as `.integer(2)`.
public enum LuaKey: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case integer(Int64)
    case number(Double)
    case boolean(Bool)

    public var description: String {
        switch self {
        case .string(let s): return s
        case .integer(let i): return String(i)
        case .number(let d): return LuaValue.format(d)
        case .boolean(let b): return String(b)
        }
    }

    var value: LuaValue {
        switch self {
        case .string(let s): return .string(s)
        case .integer(let i): return .integer(i)
        case .number(let d): return .number(d)
        case .boolean(let b): return .boolean(b)
        }
    }
}

/// A Lua table converted to Swift: the sequence `t[1], t[2], ...` (up to the first nil) in `array`, every other
/// entry in `hash`. Iteration order of `hash` is unspecified (as is `pairs` order in Lua).
public struct LuaTable: @unchecked Sendable, Equatable {
    public var array: [LuaValue]
    public var hash: [LuaKey: LuaValue]

    public init(array: [LuaValue] = [], hash: [LuaKey: LuaValue] = [:]) {
        self.array = array
        self.hash = hash
    }

    public var isEmpty: Bool { array.isEmpty && hash.isEmpty }
    /// Number of entries (array and hash).
    public var count: Int { array.count + hash.count }

    /// `t.key`; `.nil` when absent. Assigning `.nil` removes the entry.
    public subscript(key: String) -> LuaValue {
        get { hash[.string(key)] ?? .nil }
        set { hash[.string(key)] = newValue.isNil ? nil : newValue }
    }

    /// `t[index]` (1-based, like Lua); `.nil` when absent.
    public subscript(index: Int) -> LuaValue {
        get {
            if index >= 1 && index <= array.count { return array[index - 1] }
            return hash[.integer(Int64(index))] ?? .nil
        }
        set {
            if index >= 1 && index <= array.count {
                if newValue.isNil {
                    // A hole ends the sequence: the tail moves to the hash part, as Lua would see it.
                    for i in index..<array.count { hash[.integer(Int64(i + 1))] = array[i] }
                    array.removeSubrange((index - 1)...)
                } else {
                    array[index - 1] = newValue
                }
            } else if index == array.count + 1 && !newValue.isNil {
                array.append(newValue)
                hash[.integer(Int64(index))] = nil
                while let next = hash.removeValue(forKey: .integer(Int64(array.count + 1))) { array.append(next) }
            } else {
                hash[.integer(Int64(index))] = newValue.isNil ? nil : newValue
            }
        }
    }

    /// All entries as (key, value) pairs: the array part first in order, then the hash part sorted by key
    /// (strings, then numbers, then booleans), so output built from it is deterministic.
    public var sortedEntries: [(key: LuaKey, value: LuaValue)] {
        var result: [(key: LuaKey, value: LuaValue)] = array.enumerated().map { (.integer(Int64($0.offset + 1)), $0.element) }
        result += hash.sorted { LuaTable.keyOrder($0.key, $1.key) }.map { ($0.key, $0.value) }
        return result
    }

    static func keyOrder(_ a: LuaKey, _ b: LuaKey) -> Bool {
        func rank(_ k: LuaKey) -> Int {
            switch k {
            case .string: return 0
            case .integer, .number: return 1
            case .boolean: return 2
            }
        }
        switch (a, b) {
        case (.string(let x), .string(let y)): return x < y
        case (.integer(let x), .integer(let y)): return x < y
        case (.integer(let x), .number(let y)): return Double(x) < y
        case (.number(let x), .integer(let y)): return x < Double(y)
        case (.number(let x), .number(let y)): return x < y
        case (.boolean(let x), .boolean(let y)): return !x && y
        default: return rank(a) < rank(b)
        }
    }
}

/// A Lua function kept alive in the registry of the runtime that produced it, callable with `LuaRuntime.call`.
///
/// Release it with `release()` when done (e.g. a sweep's `run` callback after the sweep); a reference that is
/// dropped without `release()` is released by its runtime at the runtime's next `run`/`call`. Use it only on the
/// runtime's thread.
public final class LuaFunctionRef: @unchecked Sendable, Hashable, CustomStringConvertible {
    let reference: Int32
    weak var owner: LuaRuntime?
    private(set) var isReleased = false

    init(reference: Int32, owner: LuaRuntime) {
        self.reference = reference
        self.owner = owner
    }

    /// Releases the registry slot now. Calling the function afterwards is an error; releasing twice is harmless.
    public func release() {
        guard !isReleased else { return }
        isReleased = true
        owner?.releaseReference(reference)
    }

    deinit {
        if !isReleased { owner?.deferRelease(reference) }
    }

    public static func == (a: LuaFunctionRef, b: LuaFunctionRef) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
    public var description: String { "function (registry ref \(reference))" }
}

// MARK: - Inspecting values

extension LuaValue {
    public var isNil: Bool {
        if case .nil = self { return true }
        return false
    }

    /// Lua's type name: "nil", "boolean", "number", "string", "table", "userdata" or "function".
    public var typeName: String {
        switch self {
        case .nil: return "nil"
        case .boolean: return "boolean"
        case .integer, .number: return "number"
        case .string: return "string"
        case .table: return "table"
        case .userdata: return "userdata"
        case .function: return "function"
        }
    }

    public var boolValue: Bool? {
        if case .boolean(let b) = self { return b }
        return nil
    }

    /// The value as an integer: an `.integer`, or a `.number` with an exact integral value (as Lua converts).
    public var integerValue: Int64? {
        switch self {
        case .integer(let i): return i
        case .number(let d):
            guard d.isFinite, d == d.rounded(), d >= -0x1p63, d < 0x1p63 else { return nil }
            return Int64(d)
        default: return nil
        }
    }

    /// The value as a double (integers converted).
    public var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var tableValue: LuaTable? {
        if case .table(let t) = self { return t }
        return nil
    }

    public var functionValue: LuaFunctionRef? {
        if case .function(let f) = self { return f }
        return nil
    }

    /// The host object, if this is a `.userdata` of type `T`.
    public func object<T: AnyObject>(as type: T.Type = T.self) -> T? {
        if case .userdata(let o) = self { return o as? T }
        return nil
    }

    /// Short form for messages: numbers and booleans by value ("-3", "2.5", "true"), others by type name
    /// ("string", "table", "nil").
    public var shortDescription: String {
        switch self {
        case .integer(let i): return String(i)
        case .number(let d): return LuaValue.format(d)
        case .boolean(let b): return String(b)
        default: return typeName
        }
    }

    /// Formats a double like Lua's `tostring` ("%.14g"; integral values get ".0").
    static func format(_ d: Double) -> String {
        if d.isNaN { return d.sign == .minus ? "-nan" : "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        var text = String(format: "%.14g", d)
        if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "n" || $0 == "i" }) { text += ".0" }
        return text
    }
}

extension LuaValue: Equatable {
    /// Structural equality for plain values; identity for userdata and functions. `.integer(2) == .number(2.0)`,
    /// as in Lua.
    public static func == (a: LuaValue, b: LuaValue) -> Bool {
        switch (a, b) {
        case (.nil, .nil): return true
        case (.boolean(let x), .boolean(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.integer(let x), .number(let y)), (.number(let y), .integer(let x)): return Double(x) == y && y.integerValueExact == x
        case (.string(let x), .string(let y)): return x == y
        case (.table(let x), .table(let y)): return x == y
        case (.userdata(let x), .userdata(let y)): return x === y
        case (.function(let x), .function(let y)): return x === y
        default: return false
        }
    }
}

extension Double {
    fileprivate var integerValueExact: Int64? { LuaValue.number(self).integerValue }
}

extension LuaValue: CustomStringConvertible {
    /// A Lua-like rendering for debugging: `{1, 2, name = "x"}`.
    public var description: String {
        switch self {
        case .string(let s): return "\"" + s + "\""
        case .table(let t):
            let parts = t.sortedEntries.enumerated().map { (i, entry) -> String in
                if case .integer(let k) = entry.key, k == Int64(i + 1), i < t.array.count { return entry.value.description }
                if case .string(let s) = entry.key { return "\(s) = \(entry.value)" }
                return "[\(entry.key)] = \(entry.value)"
            }
            return "{" + parts.joined(separator: ", ") + "}"
        case .userdata(let o): return "userdata(\(type(of: o)))"
        case .function(let f): return f.description
        default: return shortDescription
        }
    }
}

// MARK: - Literals, so bindings can `return [1, "x", ["n": 3]]`

extension LuaValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .nil }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: LuaValue...) { self = .table(LuaTable(array: elements)) }
    public init(dictionaryLiteral elements: (String, LuaValue)...) {
        var table = LuaTable()
        for (k, v) in elements { table[k] = v }
        self = .table(table)
    }
}

extension LuaValue {
    /// `.integer` from any integer.
    public init<I: BinaryInteger>(_ value: I) { self = .integer(Int64(value)) }
    /// `.number` from a double.
    public init(_ value: Double) { self = .number(value) }
    /// `.number` from a float (widened exactly).
    public init(_ value: Float) { self = .number(Double(value)) }
    /// A sequence of numbers.
    public init(_ values: [Double]) { self = .table(LuaTable(array: values.map { .number($0) })) }
    /// A sequence of numbers from floats.
    public init(_ values: [Float]) { self = .table(LuaTable(array: values.map { .number(Double($0)) })) }
}
