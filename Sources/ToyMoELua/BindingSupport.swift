import Foundation
import ToyMoE
import ToyMoEIO

// Shared pieces of the `toymoe` bindings: option tables, tensor conversion between nested Lua tables and flat
// engine arrays (the one place where 1-based Lua indices meet 0-based Swift ones), and LuaValue ↔ JSON.

/// A validated option table: every key must be known (a near miss gets "did you mean"), values are checked for
/// type and domain, and each error names the option.
struct OptionTable {
    let function: String
    let table: LuaTable

    /// Checks that every key is a string naming a known option.
    init(_ function: String, _ table: LuaTable, known: [String]) throws(LuaCallError) {
        self.function = function
        self.table = table
        // A nested table ("toymoe.model: init") names its path in messages; the trampoline adds the function.
        let path = function.range(of: ": ").map { String(function[$0.upperBound...]) + ": " } ?? ""
        self.prefix = path
        if !table.array.isEmpty {
            throw LuaCallError("\(path)expected a table of named options (key = value), got a list")
        }
        for key in table.hash.keys.sorted(by: LuaTable.keyOrder) {
            guard case .string(let name) = key else {
                throw LuaCallError("\(path)option keys must be names, got \(key)")
            }
            if !known.contains(name) { throw LuaCallError("\(path)\(name): " + Suggest.unknownKey(name, known: known)) }
        }
    }

    /// "init: " for the options of a nested table, "" at top level.
    let prefix: String

    func has(_ key: String) -> Bool { !(table.hash[.string(key)]?.isNil ?? true) }
    func value(_ key: String) -> LuaValue { table.hash[.string(key)] ?? .nil }

    func fail(_ key: String, _ expected: String, _ got: LuaValue) -> LuaCallError {
        LuaCallError("\(prefix)\(key): expected \(expected), got \(describe(got))")
    }

    /// An integer option. `minimum` bounds it; a missing required option is an error.
    func integer(_ key: String, default def: Int? = nil, minimum: Int? = nil, expected: String? = nil) throws(LuaCallError) -> Int {
        let v = value(key)
        let what = expected ?? (minimum == 1 ? "a positive integer" : minimum == 0 ? "a non-negative integer" : "an integer")
        if v.isNil {
            guard let def else { throw LuaCallError("\(prefix)\(key): required option is missing (\(what))") }
            return def
        }
        guard let i = v.integerValue, let int = Int(exactly: i) else { throw fail(key, what, v) }
        if let minimum, int < minimum { throw fail(key, what, v) }
        return int
    }

    /// A finite number option, with an optional domain check.
    func number(_ key: String, default def: Double? = nil, expected: String = "a finite number", valid: (Double) -> Bool = { _ in true }) throws(LuaCallError) -> Double {
        let v = value(key)
        if v.isNil {
            guard let def else { throw LuaCallError("\(prefix)\(key): required option is missing (\(expected))") }
            return def
        }
        guard let d = v.doubleValue, d.isFinite, valid(d) else { throw fail(key, expected, v) }
        return d
    }

    func optionalNumber(_ key: String, expected: String = "a finite number", valid: (Double) -> Bool = { _ in true }) throws(LuaCallError) -> Double? {
        has(key) ? try number(key, expected: expected, valid: valid) : nil
    }

    func boolean(_ key: String, default def: Bool) throws(LuaCallError) -> Bool {
        let v = value(key)
        if v.isNil { return def }
        guard case .boolean(let b) = v else { throw fail(key, "a boolean", v) }
        return b
    }

    /// A string option restricted to `allowed`.
    func choice(_ key: String, _ allowed: [String], default def: String) throws(LuaCallError) -> String {
        let v = value(key)
        if v.isNil { return def }
        guard case .string(let s) = v, allowed.contains(s) else {
            throw fail(key, "one of " + allowed.map { "'\($0)'" }.joined(separator: ", "), v)
        }
        return s
    }

    func optionalTable(_ key: String) throws(LuaCallError) -> LuaTable? {
        let v = value(key)
        if v.isNil { return nil }
        guard case .table(let t) = v else { throw fail(key, "a table", v) }
        return t
    }

    func optionalFunction(_ key: String) throws(LuaCallError) -> LuaFunctionRef? {
        let v = value(key)
        if v.isNil { return nil }
        guard case .function(let f) = v else { throw fail(key, "a function", v) }
        return f
    }
}

/// A short description of a value for messages: `-3`, `"four"`, `nan`, `a table`, `a Model`.
func describe(_ v: LuaValue) -> String {
    switch v {
    case .nil: return "nil"
    case .boolean(let b): return String(b)
    case .integer(let i): return String(i)
    case .number(let d): return d.isNaN ? "nan" : d.isInfinite ? (d > 0 ? "inf" : "-inf") : "\(d)"
    case .string(let s): return "string \"\(s.count > 40 ? String(s.prefix(40)) + "…" : s)\""
    case .table: return "a table"
    case .userdata(let o): return "a \(type(of: o) == Model.self ? "Model" : type(of: o) == DataHandle.self ? "data distribution" : "userdata")"
    case .function: return "a function"
    }
}

/// Tensors between Lua tables and flat arrays.
enum Tensor {
    /// Reads a tensor of `shape` from nested tables (t[a][b][c], 1-based) or from one flat list of Π shape numbers.
    /// Every value must be a finite number.
    static func floats(_ v: LuaValue, shape: [Int], name: String) throws(LuaCallError) -> [Float] {
        let count = shape.reduce(1, *)
        guard case .table(let t) = v else {
            throw LuaCallError("\(name): expected a table of shape \(shapeText(shape)), got \(describe(v))")
        }
        var out: [Float] = []
        out.reserveCapacity(count)
        if t.array.count == count && t.array.allSatisfy({ $0.doubleValue != nil }) && shape.count > 1 {
            for x in t.array { out.append(try number(x, name)) }  // flat form
            return out
        }
        try read(t, shape[...], name, &out)
        return out
    }

    private static func read(_ t: LuaTable, _ shape: ArraySlice<Int>, _ name: String, _ out: inout [Float]) throws(LuaCallError) {
        let n = shape.first!
        guard t.array.count == n, t.hash.isEmpty else {
            throw LuaCallError("\(name): expected \(n) entries at this level (shape \(shapeText(Array(shape)))), got \(t.array.count)\(t.hash.isEmpty ? "" : " and non-list keys")")
        }
        if shape.count == 1 {
            for x in t.array { out.append(try number(x, name)) }
        } else {
            for x in t.array {
                guard case .table(let sub) = x else {
                    throw LuaCallError("\(name): expected nested tables of shape \(shapeText(Array(shape))), got \(describe(x)) inside")
                }
                try read(sub, shape.dropFirst(), name, &out)
            }
        }
    }

    private static func number(_ x: LuaValue, _ name: String) throws(LuaCallError) -> Float {
        guard let d = x.doubleValue, Float(d).isFinite else {
            throw LuaCallError("\(name): expected finite numbers within the float32 range (±3.4028235e38), got \(describe(x))")
        }
        return Float(d)
    }

    /// Nested tables of `shape` from a flat row-major array.
    /// Checks that a nested table of `shape` fits under the memory limit before it is built: the host-side
    /// `LuaValue` tree and the Lua table it becomes exist at the same time while it is pushed, and the Swift side
    /// is not seen by the Lua allocator. Per number: a `LuaValue` (Swift) + a 16-byte `TValue` (Lua) + 8 bytes of
    /// the source buffer; per inner list: a Swift array header and `LuaTable`, and a 56-byte Lua `Table`.
    static func ensureCapacity(_ rt: LuaRuntime, shape: [Int]) throws(LuaCallError) {
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: max($1, 0)).partialValue }
        let lists = shape.dropLast().reduce(1) { $0.multipliedReportingOverflow(by: max($1, 0)).partialValue }
        let perNumber = MemoryLayout<LuaValue>.stride + 16 + 8
        let perList = MemoryLayout<LuaTable>.stride + 32 + 56
        let (a, o1) = count.multipliedReportingOverflow(by: perNumber)
        let (b, o2) = lists.multipliedReportingOverflow(by: perList)
        try rt.ensureHostCapacity(o1 || o2 ? Int.max : a &+ b)
    }

    static func nested<T: BinaryFloatingPoint>(_ flat: [T], shape: [Int]) -> LuaValue {
        func build(_ offset: Int, _ dims: ArraySlice<Int>) -> LuaValue {
            let n = dims.first!
            if dims.count == 1 {
                return .table(LuaTable(array: (0..<n).map { .number(Double(flat[offset + $0])) }))
            }
            let stride = dims.dropFirst().reduce(1, *)
            return .table(LuaTable(array: (0..<n).map { build(offset + $0 * stride, dims.dropFirst()) }))
        }
        return shape.isEmpty ? .number(Double(flat[0])) : build(0, shape[...])
    }

    static func list(_ v: [Double]) -> LuaValue { .table(LuaTable(array: v.map { .number($0) })) }
    static func list(_ v: [Int]) -> LuaValue { .table(LuaTable(array: v.map { .integer(Int64($0)) })) }
    static func matrix(_ m: [[Double]]) -> LuaValue { .table(LuaTable(array: m.map { list($0) })) }

    static func shapeText(_ s: [Int]) -> String { "(" + s.map(String.init).joined(separator: ", ") + ")" }

    /// Infers the shape of nested numeric tables and flattens them (for saving arbitrary arrays).
    static func infer(_ v: LuaValue, name: String) throws(LuaCallError) -> (shape: [Int], values: [Double]) {
        switch v {
        case .integer, .number:
            return ([], [v.doubleValue!])
        case .boolean(let b):
            return ([], [b ? 1 : 0])
        case .table(let t):
            guard t.hash.isEmpty else { throw LuaCallError("\(name): expected a list (or nested lists) of numbers, got a table with named keys") }
            var shape: [Int]? = nil
            var values: [Double] = []
            for x in t.array {
                let (s, vals) = try infer(x, name: name)
                if let shape, shape != s {
                    throw LuaCallError("\(name): ragged nested lists (rows of shape \(shapeText(shape)) and \(shapeText(s)))")
                }
                shape = s
                values += vals
            }
            return ([t.array.count] + (shape ?? []), values)
        default:
            throw LuaCallError("\(name): expected numbers, got \(describe(v))")
        }
    }
}

/// LuaValue ↔ JSONValue, for results, cells and JSON files. Tables with only a list part become arrays (an empty
/// table becomes `[]`), others objects with keys in sorted order (deterministic output); functions and userdata are
/// refused.
enum JSONBridge {
    static func json(_ v: LuaValue, _ name: String, depth: Int = 0) throws(LuaCallError) -> JSONValue {
        if depth > 64 { throw LuaCallError("\(name): nesting deeper than 64 levels") }
        switch v {
        case .nil: return .null
        case .boolean(let b): return .bool(b)
        case .integer(let i): return .int(Int(i))
        case .number(let d): return d.isFinite ? .number(d) : .null
        case .string(let s): return .string(s)
        case .table(let t):
            if t.hash.isEmpty && !t.array.isEmpty {
                var items: [JSONValue] = []
                for x in t.array { items.append(try json(x, name, depth: depth + 1)) }
                return .array(items)
            }
            if t.isEmpty { return .array([]) }  // Lua cannot tell {} from an empty list; lists are the common case
            var o = JSONObject()
            for (k, x) in t.sortedEntries { o[k.description] = try json(x, name, depth: depth + 1) }
            return .object(o)
        case .userdata, .function:
            throw LuaCallError("\(name): cannot store \(describe(v)) (only numbers, booleans, strings and tables)")
        }
    }

    static func lua(_ j: JSONValue) -> LuaValue {
        switch j {
        case .null: return .nil
        case .bool(let b): return .boolean(b)
        case .int(let i): return .integer(Int64(i))
        case .number(let d): return .number(d)
        case .string(let s): return .string(s)
        case .array(let a): return .table(LuaTable(array: a.map { lua($0) }))
        case .object(let o):
            var t = LuaTable()
            for (k, v) in o.entries { t.hash[.string(k)] = lua(v) }
            return .table(t)
        }
    }
}

/// A data distribution as a Lua handle.
final class DataHandle {
    let distribution: DataDistribution
    init(_ d: DataDistribution) { distribution = d }
    var featureCount: Int { distribution.featureProbability.count }
}
