import CLuaShim

/// An error a host function throws to fail its Lua call. The runtime adds the function's name and the script's
/// `file:line:` (of the nearest Lua caller):
///
///     throw LuaCallError.argument("n_features", "expected a positive integer, got -3")
///     // script.lua:4: toymoe.model: argument 'n_features': expected a positive integer, got -3
///     throw LuaCallError("the model has no experts")
///     // script.lua:4: toymoe.model: the model has no experts
///
/// Any other Swift error thrown by a host function is reported as `file:line: module.fn: <description>`.
public struct LuaCallError: Error, CustomStringConvertible, Sendable, Equatable {
    enum Form: Sendable, Equatable {
        case plain
        case argument(String)
        case verbatim
        case located
    }

    var form: Form
    /// The message without the function name and location.
    public var text: String

    /// A failure of the function: reported as `module.fn: message`.
    public init(_ message: String) {
        self.form = .plain
        self.text = message
    }

    /// A bad argument: reported as `module.fn: argument 'name': problem`.
    public static func argument(_ name: String, _ problem: String) -> LuaCallError {
        var e = LuaCallError(problem)
        e.form = .argument(name)
        return e
    }

    /// A message reported exactly as given (after the location), e.g. to mimic Lua's own messages.
    public static func verbatim(_ message: String) -> LuaCallError {
        var e = LuaCallError(message)
        e.form = .verbatim
        return e
    }

    /// A message that already carries its own `file:line:` (an error of a Lua callback the host function called):
    /// raised exactly as given, without a second location.
    public static func located(_ message: String) -> LuaCallError {
        var e = LuaCallError(message)
        e.form = .located
        return e
    }

    /// Whether the trampoline should prefix the caller's `file:line:`.
    var needsLocation: Bool { form != .located }

    /// The message as raised from the function `name`.
    public func message(in name: String) -> String {
        switch form {
        case .plain: return "\(name): \(text)"
        case .argument(let argument): return "\(name): argument '\(argument)': \(text)"
        case .verbatim, .located: return text
        }
    }

    public var description: String {
        switch form {
        case .argument(let argument): return "argument '\(argument)': \(text)"
        default: return text
        }
    }
}

/// Lua's value types, as seen by `LuaArgs.type(_:)`.
public enum LuaType: Sendable, Equatable {
    case none, `nil`, boolean, number, string, table, function, userdata, thread, lightUserdata

    /// Lua's name for the type ("no value" for an absent argument).
    public var name: String {
        switch self {
        case .none: return "no value"
        case .nil: return "nil"
        case .boolean: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .table: return "table"
        case .function: return "function"
        case .userdata, .lightUserdata: return "userdata"
        case .thread: return "thread"
        }
    }
}

/// The arguments of a host function call (1-based, like Lua). Valid only during the call.
///
/// Every accessor is non-raising on the Lua side: it inspects the stack with calls that cannot longjmp, and throws
/// a `LuaCallError` naming the argument and what was expected. Accessors taking a `name` use it in that message
/// (use the user-facing key, e.g. "n_features"). Optional accessors return nil for nil or absent arguments.
/// Numbers are not converted from strings (unlike luaL_checknumber): a config value "3" is an error.
public struct LuaArgs {
    let state: OpaquePointer
    /// The runtime, for nested calls (`runtime.call`), host memory accounting, and so on.
    /// (Unowned without checks: the runtime outlives every call it dispatches, and this value is only valid during
    /// the call.)
    public unowned(unsafe) let runtime: LuaRuntime
    /// `module.name` of the function being called.
    public let functionName: String
    /// Number of arguments passed.
    public let count: Int

    init(state: OpaquePointer, runtime: LuaRuntime, functionName: String, count: Int) {
        self.state = state
        self.runtime = runtime
        self.functionName = functionName
        self.count = count
    }

    /// The type of argument `i` (`.none` beyond `count`).
    public func type(_ i: Int) -> LuaType {
        guard i >= 1 && i <= count else { return .none }
        switch lua_type(state, Int32(i)) {
        case LUA_TNIL: return .nil
        case LUA_TBOOLEAN: return .boolean
        case LUA_TNUMBER: return .number
        case LUA_TSTRING: return .string
        case LUA_TTABLE: return .table
        case LUA_TFUNCTION: return .function
        case LUA_TUSERDATA: return .userdata
        case LUA_TTHREAD: return .thread
        case LUA_TLIGHTUSERDATA: return .lightUserdata
        default: return .none
        }
    }

    /// Whether argument `i` is nil or absent.
    public func isNil(_ i: Int) -> Bool {
        let t = type(i)
        return t == .none || t == .nil
    }

    /// Argument `i` converted to a `LuaValue` (tables recursively; functions become references).
    public func value(_ i: Int, _ name: String? = nil) throws(LuaCallError) -> LuaValue {
        guard i >= 1 && i <= count else { return .nil }
        var reader = StackReader(runtime: runtime, state: state)
        do throws(LuaConversionError) {
            return try reader.read(Int32(i))
        } catch {
            throw .argument(name ?? "#\(i)", error.message)
        }
    }

    /// A number (integer or float).
    public func number(_ i: Int, _ name: String) throws(LuaCallError) -> Double {
        guard type(i) == .number else { throw mismatch(i, name, "a number") }
        return lua_tonumberx(state, Int32(i), nil)
    }

    /// An integer: a Lua integer, or a float with an exact integral value (as Lua converts `1e6`).
    public func integer(_ i: Int, _ name: String) throws(LuaCallError) -> Int {
        guard type(i) == .number else { throw mismatch(i, name, "an integer") }
        var ok: Int32 = 0
        let v = lua_tointegerx(state, Int32(i), &ok)
        guard ok != 0, let result = Int(exactly: v) else { throw mismatch(i, name, "an integer") }
        return result
    }

    /// A string (numbers are not accepted).
    public func string(_ i: Int, _ name: String) throws(LuaCallError) -> String {
        guard type(i) == .string else { throw mismatch(i, name, "a string") }
        return readString(state, Int32(i))
    }

    /// A boolean (only `true`/`false`; Lua's truthiness of other values is not applied).
    public func boolean(_ i: Int, _ name: String) throws(LuaCallError) -> Bool {
        guard type(i) == .boolean else { throw mismatch(i, name, "a boolean") }
        return lua_toboolean(state, Int32(i)) != 0
    }

    /// A table, converted recursively.
    public func table(_ i: Int, _ name: String) throws(LuaCallError) -> LuaTable {
        guard type(i) == .table else { throw mismatch(i, name, "a table") }
        guard case .table(let t) = try value(i, name) else { throw mismatch(i, name, "a table") }
        return t
    }

    /// A sequence of numbers `{x1, x2, ...}`, read directly (no intermediate `LuaValue`s).
    public func numbers(_ i: Int, _ name: String) throws(LuaCallError) -> [Double] {
        guard type(i) == .table else { throw mismatch(i, name, "a table of numbers") }
        guard lua_checkstack(state, 2) != 0 else { throw .argument(name, "Lua stack exhausted") }
        let n = lua_rawlen(state, Int32(i))
        guard n <= UInt64(runtime.options.conversionElementLimit) else {
            throw .argument(name, "too many elements (\(n); the limit is \(runtime.options.conversionElementLimit))")
        }
        var result: [Double] = []
        result.reserveCapacity(Int(n))
        for k in 0..<Int(n) {
            guard lua_rawgeti(state, Int32(i), lua_Integer(k + 1)) == LUA_TNUMBER else {
                let got = describe(-1)
                lua_settop(state, -2)
                throw .argument(name, "element \(k + 1): expected a number, got \(got)")
            }
            result.append(lua_tonumberx(state, -1, nil))
            lua_settop(state, -2)
        }
        return result
    }

    /// A Lua function, as a reference (release it when done if you keep it; see `LuaFunctionRef`).
    public func function(_ i: Int, _ name: String) throws(LuaCallError) -> LuaFunctionRef {
        guard type(i) == .function, case .function(let f) = try value(i, name) else {
            throw mismatch(i, name, "a function")
        }
        return f
    }

    /// The host object of type `T` held by a handle argument. Fails for other types and for freed handles.
    public func object<T: AnyObject>(_ i: Int, _ name: String, as type: T.Type = T.self) throws(LuaCallError) -> T {
        guard let typeIndex = runtime.handleTypeIndex[ObjectIdentifier(T.self)] else {
            throw LuaCallError("\(T.self) is not a registered host type")
        }
        let handleType = runtime.handleTypes[typeIndex]
        guard i >= 1 && i <= count, let handle = tml_handle_at(state, Int32(i), handleType.metatableRef) else {
            var problem = "expected \(handleType.name), got \(describe(i))"
            if i == 1 && name == "self" { problem += " (call methods with ':', as obj:method(...))" }
            throw .argument(name, problem)
        }
        guard let object = handle.pointee.object else {
            throw .argument(name, "this \(handleType.name) was freed")
        }
        return Unmanaged<AnyObject>.fromOpaque(object).takeUnretainedValue() as! T  // the metatable proves the type
    }

    // Optional variants: nil when the argument is nil or absent.

    public func optionalNumber(_ i: Int, _ name: String) throws(LuaCallError) -> Double? {
        isNil(i) ? nil : try number(i, name)
    }
    public func optionalInteger(_ i: Int, _ name: String) throws(LuaCallError) -> Int? {
        isNil(i) ? nil : try integer(i, name)
    }
    public func optionalString(_ i: Int, _ name: String) throws(LuaCallError) -> String? {
        isNil(i) ? nil : try string(i, name)
    }
    public func optionalBoolean(_ i: Int, _ name: String) throws(LuaCallError) -> Bool? {
        isNil(i) ? nil : try boolean(i, name)
    }
    public func optionalTable(_ i: Int, _ name: String) throws(LuaCallError) -> LuaTable? {
        isNil(i) ? nil : try table(i, name)
    }
    public func optionalFunction(_ i: Int, _ name: String) throws(LuaCallError) -> LuaFunctionRef? {
        isNil(i) ? nil : try function(i, name)
    }
    public func optionalObject<T: AnyObject>(_ i: Int, _ name: String, as type: T.Type = T.self) throws(LuaCallError) -> T? {
        isNil(i) ? nil : try object(i, name, as: type)
    }

    /// `module.fn: message`.
    public func error(_ message: String) -> LuaCallError { LuaCallError(message) }

    /// `module.fn: argument 'name': problem`.
    public func argumentError(_ name: String, _ problem: String) -> LuaCallError { .argument(name, problem) }

    /// Argument `i` for messages: numbers and booleans by value, handles by type name, others by Lua type.
    public func describe(_ i: Int) -> String {
        if i < 0 { return describeStack(Int32(i)) }
        guard i >= 1 && i <= count else { return "no value" }
        return describeStack(Int32(i))
    }

    private func describeStack(_ index: Int32) -> String {
        switch lua_type(state, index) {
        case LUA_TNUMBER:
            if lua_isinteger(state, index) != 0 { return String(lua_tointegerx(state, index, nil)) }
            return LuaValue.format(lua_tonumberx(state, index, nil))
        case LUA_TBOOLEAN: return lua_toboolean(state, index) != 0 ? "true" : "false"
        case LUA_TUSERDATA:
            if let h = tml_handle_peek(state, index), runtime.handleTypes.indices.contains(Int(h.pointee.type_index)) {
                return runtime.handleTypes[Int(h.pointee.type_index)].name
            }
            return "userdata"
        case LUA_TNONE: return "no value"
        default: return String(cString: lua_typename(state, lua_type(state, index)))
        }
    }

    private func mismatch(_ i: Int, _ name: String, _ expected: String) -> LuaCallError {
        .argument(name, "expected \(expected), got \(describe(i))")
    }
}
