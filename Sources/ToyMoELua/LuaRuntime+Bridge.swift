import CLuaShim

// Moving values across the boundary, and the dispatch of host functions.
//
// Reading (Lua → Swift) uses only non-raising API calls: lua_type, lua_to*, lua_rawgeti, lua_next, lua_checkstack.
// Writing (Swift → Lua) has two paths. Scalars (nil, booleans, numbers) are pushed directly: those pushes never
// allocate, after lua_checkstack. Anything that allocates (strings, tables, handles) is flattened into a "tape" of
// C structs and pushed by one protected C call (tml_push_values), so a memory error becomes a status. A binding
// returning a number therefore costs no pcall; one returning a table costs one.

/// The context of one host function: what the trampoline hands back to `dispatch`.
final class CallbackBox {
    /// `module.name`, for error messages.
    let name: String
    let body: LuaFunction
    unowned(unsafe) let runtime: LuaRuntime  // the runtime owns the box and outlives every call through it

    init(name: String, body: @escaping LuaFunction, runtime: LuaRuntime) {
        self.name = name
        self.body = body
        self.runtime = runtime
    }
}

/// A registered host object type.
struct HandleType {
    let name: String
    let metatableRef: Int32
    let hostBytes: ((AnyObject) -> Int)?
}

/// Why a value could not be converted.
struct LuaConversionError: Error {
    var message: String
    /// The value did not fit under the memory limit: reported as Lua's own memory error.
    var isMemory = false
    init(_ message: String, isMemory: Bool = false) {
        self.message = message
        self.isMemory = isMemory
    }
}

extension LuaRuntime {
    /// Called by the trampoline for every host function call. Never raises: returns the result count or a
    /// TML_RAISE_* code with the error value pushed.
    func dispatch(_ box: CallbackBox, _ L: OpaquePointer) -> Int32 {
        let outer = current
        current = L
        defer { current = outer }
        let args = LuaArgs(state: L, runtime: self, functionName: box.name, count: Int(lua_gettop(L)))
        let results: [LuaValue]
        do {
            results = try box.body(args)
        } catch let error as LuaCallError {
            return raise(error.message(in: box.name), on: L, prefixLocation: error.needsLocation)
        } catch let error as LuaError {
            // A Lua error from a nested call (e.g. the script's callback failed): pass it through unchanged, since
            // it already carries its own location.
            return raise(error.message, on: L, prefixLocation: false)
        } catch {
            return raise("\(box.name): \(error)", on: L, prefixLocation: true)
        }
        // A host call that ran past the deadline ends with the budget's error, not its results: whatever it
        // computed, the script must not go on (long calls also check while they run).
        if let error = budgetExceeded() {
            return raise(error.message(in: box.name), on: L, prefixLocation: error.needsLocation)
        }
        do throws(LuaConversionError) {
            let status = try pushValues(L, results)
            switch status {
            case LUA_OK: return Int32(results.count)
            case TML_ERRSTACK: return Int32(TML_RAISE_NOSTACK)
            default: return Int32(TML_RAISE_VALUE)  // the error value (e.g. a memory error) is on top
            }
        } catch {
            // Too large for the memory limit: the same error as when Lua's allocator refuses (kind .memory).
            if error.isMemory { return raise("not enough memory", on: L, prefixLocation: false) }
            return raise("\(box.name): cannot return a value to Lua: \(error.message)", on: L, prefixLocation: true)
        }
    }

    private func raise(_ message: String, on L: OpaquePointer, prefixLocation: Bool) -> Int32 {
        var text = message
        let status = text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { tml_push_string(L, $0.baseAddress, $0.count) }
        }
        switch status {
        case LUA_OK: return Int32(prefixLocation ? TML_RAISE_MESSAGE : TML_RAISE_VALUE)
        case TML_ERRSTACK: return Int32(TML_RAISE_NOSTACK)
        default: return Int32(TML_RAISE_VALUE)
        }
    }

    /// Pushes values; returns a status (LUA_OK, or an error code with the error value pushed instead of the values).
    /// Throws only for values that cannot exist in Lua (an unregistered host type, a foreign function).
    func pushValues(_ L: OpaquePointer, _ values: [LuaValue]) throws(LuaConversionError) -> Int32 {
        if values.isEmpty { return LUA_OK }
        var allScalars = true
        for value in values {
            switch value {
            case .nil, .boolean, .integer, .number: continue
            default: allScalars = false
            }
            if !allScalars { break }
        }
        if allScalars {
            guard lua_checkstack(L, Int32(values.count)) != 0 else { return TML_ERRSTACK }
            for value in values {
                switch value {
                case .boolean(let b): lua_pushboolean(L, b ? 1 : 0)
                case .integer(let i): lua_pushinteger(L, i)
                case .number(let d): lua_pushnumber(L, d)
                default: lua_pushnil(L)
                }
            }
            return LUA_OK
        }
        if values.count == 1, case .string(var s) = values[0] {  // common enough for a shortcut: no tape
            return s.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { tml_push_string(L, $0.baseAddress, $0.count) }
            }
        }
        var tape = ValueTape(runtime: self)
        tape.nodes.reserveCapacity(values.count + 8)
        for value in values { try tape.append(value, depth: 0) }
        return withExtendedLifetime(values) {
            tape.nodes.withUnsafeBufferPointer { nodes in
                tape.arena.withUnsafeBytes { arena in
                    tml_push_values(L, nodes.baseAddress, nodes.count, arena.baseAddress?.assumingMemoryBound(to: CChar.self),
                                    Int32(values.count))
                }
            }
        }
    }
}

/// A `LuaValue` tree flattened in prefix order for `tml_push_values`; string bytes live in one arena.
struct ValueTape {
    unowned(unsafe) let runtime: LuaRuntime  // lives for the duration of one push
    var nodes: [tml_value] = []
    var arena: [UInt8] = []

    init(runtime: LuaRuntime) { self.runtime = runtime }

    private mutating func node(_ tag: Int, a: Int64 = 0, b: Int64 = 0, number: Double = 0,
                               pointer: UnsafeRawPointer? = nil, typeIndex: Int32 = 0) {
        nodes.append(tml_value(tag: Int32(tag), type_index: typeIndex, a: a, b: b, number: number, pointer: pointer))
    }

    mutating func append(_ value: LuaValue, depth: Int) throws(LuaConversionError) {
        switch value {
        case .nil: node(Int(TML_VNIL))
        case .boolean(let v): node(Int(TML_VBOOL), a: v ? 1 : 0)
        case .integer(let v): node(Int(TML_VINT), a: v)
        case .number(let v): node(Int(TML_VNUM), number: v)
        case .string(let s):
            let offset = Int64(arena.count)
            arena.append(contentsOf: s.utf8)
            node(Int(TML_VSTR), a: offset, b: Int64(arena.count) - offset)
        case .table(let t):
            guard depth < runtime.options.conversionDepthLimit else {
                throw LuaConversionError("table nested more than \(runtime.options.conversionDepthLimit) levels deep")
            }
            node(Int(TML_VTABLE), a: Int64(t.array.count), b: Int64(t.hash.count))
            if nodes.count & 0xFFFF < 1 + t.array.count + 2 * t.hash.count {  // about every 64Ki nodes
                let needed = HostCost.product(nodes.count + t.array.count + 2 * t.hash.count, HostCost.tapeNode)
                do throws(LuaCallError) { try runtime.ensureHostCapacity(needed) } catch {
                    throw LuaConversionError("value too large for the memory limit: \(error.text)", isMemory: true)
                }
            }
            for v in t.array { try append(v, depth: depth + 1) }
            for (k, v) in t.hash {
                if case .number(let d) = k, d.isNaN { throw LuaConversionError("a table key is NaN") }
                try append(k.value, depth: depth + 1)
                try append(v, depth: depth + 1)
            }
        case .userdata(let object):
            guard let index = runtime.handleTypeIndex[ObjectIdentifier(type(of: object))] else {
                throw LuaConversionError("\(type(of: object)) is not a registered host type")
            }
            let type = runtime.handleTypes[index]
            let bytes = type.hostBytes.map { Int64(max(0, $0(object))) } ?? 0
            node(Int(TML_VHANDLE), a: Int64(type.metatableRef), b: bytes,
                 pointer: UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()), typeIndex: Int32(index))
        case .function(let f):
            guard f.owner === runtime, !f.isReleased else {
                throw LuaConversionError(f.isReleased ? "a released Lua function" : "a Lua function from another runtime")
            }
            node(Int(TML_VREF), a: Int64(f.reference))
        }
    }
}

/// Converts stack values to `LuaValue` with non-raising calls only.
struct StackReader {
    unowned(unsafe) let runtime: LuaRuntime  // lives for the duration of one conversion
    let state: OpaquePointer
    /// Values this conversion may still produce.
    var remaining: Int
    /// Tables on the path from the root, for cycle detection.
    var path: [UnsafeRawPointer] = []

    init(runtime: LuaRuntime, state: OpaquePointer) {
        self.runtime = runtime
        self.state = state
        self.remaining = runtime.options.conversionElementLimit
    }

    mutating func read(_ index: Int32, depth: Int = 0) throws(LuaConversionError) -> LuaValue {
        let L = state
        switch lua_type(L, index) {
        case LUA_TNIL, LUA_TNONE: return .nil
        case LUA_TBOOLEAN: return .boolean(lua_toboolean(L, index) != 0)
        case LUA_TNUMBER:
            if lua_isinteger(L, index) != 0 { return .integer(lua_tointegerx(L, index, nil)) }
            return .number(lua_tonumberx(L, index, nil))
        case LUA_TSTRING: return .string(try string(index))
        case LUA_TTABLE: return .table(try readTable(index, depth: depth))
        case LUA_TUSERDATA:
            guard let handle = tml_handle_peek(L, index) else { throw LuaConversionError("a foreign userdata") }
            let typeIndex = Int(handle.pointee.type_index)
            guard runtime.handleTypes.indices.contains(typeIndex),
                tml_handle_at(L, index, runtime.handleTypes[typeIndex].metatableRef) != nil
            else { throw LuaConversionError("a foreign userdata") }
            guard let object = handle.pointee.object else {
                throw LuaConversionError("a freed \(runtime.handleTypes[typeIndex].name)")
            }
            return .userdata(Unmanaged<AnyObject>.fromOpaque(object).takeUnretainedValue())
        case LUA_TFUNCTION:
            guard lua_checkstack(L, 2) != 0 else { throw LuaConversionError("Lua stack exhausted") }
            lua_pushvalue(L, index)
            var reference: Int32 = 0
            let status = tml_ref(L, &reference)
            if status != LUA_OK {
                if status != TML_ERRSTACK { lua_settop(L, -2) }
                throw LuaConversionError("not enough memory to keep a function")
            }
            return .function(LuaFunctionRef(reference: reference, owner: runtime))
        default:
            throw LuaConversionError("a \(String(cString: lua_typename(L, lua_type(L, index)))) cannot be converted")
        }
    }

    private mutating func readTable(_ index: Int32, depth: Int) throws(LuaConversionError) -> LuaTable {
        let L = state
        let t = lua_absindex(L, index)
        guard depth < runtime.options.conversionDepthLimit else {
            throw LuaConversionError("table nested more than \(runtime.options.conversionDepthLimit) levels deep")
        }
        guard let identity = lua_topointer(L, t) else { throw LuaConversionError("a table without identity") }
        if path.contains(identity) { throw LuaConversionError("cyclic table (a table contains itself)") }
        guard lua_checkstack(L, 4) != 0 else { throw LuaConversionError("Lua stack exhausted") }
        path.append(identity)
        let top = lua_gettop(L)
        defer {
            lua_settop(L, top)
            path.removeLast()
        }
        var table = LuaTable()
        // The sequence 1, 2, ... up to the first nil.
        table.array.reserveCapacity(Int(min(lua_rawlen(L, t), UInt64(max(0, remaining)))))
        var i: lua_Integer = 1
        while lua_rawgeti(L, t, i) != LUA_TNIL {
            try spend()
            table.array.append(try read(-1, depth: depth + 1))
            lua_settop(L, top)
            i += 1
        }
        lua_settop(L, top)
        // Every other entry.
        let arrayCount = lua_Integer(table.array.count)
        lua_pushnil(L)
        while lua_next(L, t) != 0 {
            let key: LuaKey
            switch lua_type(L, -2) {
            case LUA_TNUMBER:
                if lua_isinteger(L, -2) != 0 {
                    let k = lua_tointegerx(L, -2, nil)
                    if k >= 1 && k <= arrayCount {
                        lua_settop(L, -2)
                        continue
                    }
                    key = .integer(k)
                } else {
                    key = .number(lua_tonumberx(L, -2, nil))
                }
            case LUA_TSTRING: key = .string(try string(-2))
            case LUA_TBOOLEAN: key = .boolean(lua_toboolean(L, -2) != 0)
            default:
                throw LuaConversionError(
                    "table keys must be strings, numbers or booleans (found a \(String(cString: lua_typename(L, lua_type(L, -2)))) key)")
            }
            try spend()
            table.hash[key] = try read(-1, depth: depth + 1)
            lua_settop(L, -2)  // keep the key for lua_next
        }
        return table
    }

    /// Bytes of the strings this conversion copied into host memory so far.
    private(set) var stringBytes = 0

    /// A Lua string copied into a Swift string: the bytes count against what is left of the memory limit, with
    /// `HostCost.stringCopies` copies (the host's copy and what is made of it: an escaped file, a rendered
    /// figure). One Lua string referenced many times (`{s, s, s}`) is copied each time. Checked before the copy,
    /// for strings of 4 KiB or more (smaller ones are counted with the next large one).
    private mutating func string(_ index: Int32) throws(LuaConversionError) -> String {
        var length = 0
        guard let bytes = lua_tolstring(state, index, &length) else { return "" }
        stringBytes += length
        if length >= 1 << 20, let limit = runtime.budgetExceeded() {
            // Copying (and validating) hundreds of MiB of text takes seconds: stop between strings at the deadline.
            throw LuaConversionError(limit.text)
        }
        if length >= 4096 {
            let converted = runtime.options.conversionElementLimit - remaining
            let needed = HostCost.product(stringBytes, HostCost.stringCopies) + HostCost.product(converted, HostCost.luaValue)
            do throws(LuaCallError) { try runtime.ensureHostCapacity(needed) } catch {
                throw LuaConversionError(
                    "strings too large for the memory limit (\(LuaRuntime.formatBytes(stringBytes)) of text so far, counted \(HostCost.stringCopies) times): \(error.text)",
                    isMemory: true)
            }
        }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    private mutating func spend() throws(LuaConversionError) {
        remaining -= 1
        if remaining < 0 {
            throw LuaConversionError("value too large (more than \(runtime.options.conversionElementLimit) elements)")
        }
        // The tree being built is host memory the Lua allocator does not see: every 64Ki values, check that what
        // it has reached still fits under the memory limit (a table of millions of entries is refused early).
        let converted = runtime.options.conversionElementLimit - remaining
        if converted & 0xFFFF == 0 {
            do throws(LuaCallError) { try runtime.ensureHostCapacity(HostCost.product(converted, HostCost.luaValue)) } catch {
                throw LuaConversionError("value too large for the memory limit (\(converted) values so far): \(error.text)")
            }
        }
    }
}

/// The string at `index` (which must have type LUA_TSTRING: lua_tolstring would convert a number in place).
func readString(_ L: OpaquePointer, _ index: Int32) -> String {
    var length = 0
    guard let bytes = lua_tolstring(L, index, &length) else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
}
