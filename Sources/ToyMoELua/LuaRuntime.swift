import CLuaShim
import Foundation
import ToyMoE

// The embedded, sandboxed Lua 5.4 runtime: one `LuaRuntime` (one lua_State) per thread.
//
// How errors cross the boundary without longjmp over Swift (a Lua error that longjmps over Swift frames leaks
// what they hold, skips `defer`, and was seen to crash later with an access conflict or SIGSEGV):
//   * Swift → Lua: every call that can raise (load, call, push a string or a table, set a global, create a
//     reference, collect garbage) goes through a CLuaShim helper that runs it under lua_pcall and returns a status.
//     Swift only calls the Lua API functions that never raise (the list is in CLuaShim.h).
//   * Lua → Swift: a host function is a C closure (the trampoline) whose upvalue is a `CallbackBox`. The trampoline
//     calls `LuaRuntime.dispatch`, which reads arguments with non-raising calls, runs the Swift closure, and pushes
//     its results through the protected push. On a Swift error it pushes the message and *returns* a code; the
//     trampoline raises the Lua error after the Swift frame is gone. Allocation failures (the capped allocator)
//     can only happen inside the protected helpers, so they too come back as statuses, never as longjmps.

/// A host function callable from Lua. It reads its arguments from `LuaArgs` (non-raising accessors that throw
/// `LuaCallError` with a precise message) and returns its results. Any error it throws becomes a Lua error at the
/// script's current line: `script.lua:12: toymoe.model: argument 'n_features': expected a positive integer, got -3`.
public typealias LuaFunction = (LuaArgs) throws -> [LuaValue]

/// An error that reached the host from Lua.
public struct LuaError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A runtime error (including errors raised by host functions, and Lua's "stack overflow").
        case runtime
        /// The chunk did not compile.
        case syntax
        /// The memory limit was reached.
        case memory
        /// The instruction budget was exceeded.
        case budget
        /// The time limit was exceeded.
        case time
    }

    public var kind: Kind
    /// `file:line: message` (the location is missing only where Lua has none, e.g. memory errors).
    public var message: String
    /// Lua's `stack traceback:` text, or empty (memory errors have none: Lua runs no handler for them).
    public var traceback: String

    public init(kind: Kind, message: String, traceback: String = "") {
        self.kind = kind
        self.message = message
        self.traceback = traceback
    }

    /// The message, then the traceback on the following lines.
    public var description: String { traceback.isEmpty ? message : message + "\n" + traceback }
}

/// A budget for one call: an instruction count and/or wall-clock seconds (nil: unlimited).
public struct LuaBudget: Sendable, Equatable {
    public var instructions: UInt64?
    public var seconds: Double?

    public init(instructions: UInt64? = nil, seconds: Double? = nil) {
        self.instructions = instructions
        self.seconds = seconds
    }
}

/// An embedded Lua 5.4 state with the ToyMoE sandbox.
///
/// - Sandbox: only base, table, string, math, utf8 and coroutine; no `dofile`, `loadfile`, `string.dump`,
///   `io`, `os`, `package`, `require`, `debug`; `load` takes text only; `collectgarbage` only answers "count";
///   `setmetatable` refuses `__gc`; reading an undefined global is an error; `math.random` is seeded from the run
///   seed; `print` goes to `printHandler`. Library calls that would run unbounded in one C call are capped (see
///   `Options`).
/// - Limits: one memory limit for Lua's heap plus the host bytes that bindings account; an instruction budget and
///   a time limit per top-level `run`/`call` (re-armed by the host only: a script cannot catch its way past them).
///   A runtime may share another's budget (`shareBudget(with:)`, for nested scripts); long host functions check the
///   deadline themselves (`budgetExceeded()`, `deadlineCheck()`), and every host call that returns after it reports
///   the time limit instead of its result.
/// - Threads: a runtime and every value it hands out belong to the thread that created it. Use one per worker.
public final class LuaRuntime {
    /// Configuration fixed at creation (limits can also be changed later through the properties below).
    public struct Options: Sendable {
        /// Limit on Lua's heap plus accounted host bytes.
        public var memoryLimit: Int
        /// Instructions per top-level `run`/`call`; nil: unlimited. Counted in periods of 1000 instructions.
        public var instructionLimit: UInt64?
        /// Wall-clock seconds per top-level `run`/`call`; nil: unlimited.
        public var timeLimit: Double?
        /// Seeds `math.random` (see `LuaRuntime.randomStreamTag`).
        public var seed: UInt64
        /// Longest subject of string.find/match/gmatch/gsub, bytes (0: no cap).
        public var patternSubjectLimit: Int = 1 << 20
        /// Longest pattern, bytes (0: no cap).
        public var patternLengthLimit: Int = 256
        /// Matching steps per pattern call (one per character test; about 5 ns each), then "pattern too
        /// complex". Bounds backtracking patterns that the instruction hook cannot interrupt (0: no cap).
        public var patternStepLimit: UInt64 = 50_000_000
        /// Longest result of string.rep, bytes (0: no cap beyond the memory limit).
        public var stringRepLimit: Int = 64 << 20
        /// Most elements one table.move may move (0: no cap).
        public var tableMoveLimit: UInt64 = 1 << 24
        /// Deepest table nesting converted to `LuaValue`.
        public var conversionDepthLimit: Int = 100
        /// Most values (table entries, recursively) one conversion to `LuaValue` may produce.
        public var conversionElementLimit: Int = 1 << 24

        public init(memoryLimit: Int = 512 << 20, instructionLimit: UInt64? = nil, timeLimit: Double? = nil,
                    seed: UInt64 = 0) {
            self.memoryLimit = memoryLimit
            self.instructionLimit = instructionLimit
            self.timeLimit = timeLimit
            self.seed = seed
        }
    }

    /// The path word that names the Lua random stream: `RandomStream(seed: options.seed, path: [tag])`.
    public static let randomStreamTag: UInt64 = 0x4C55_4152_4E47  // "LUARNG"

    public let options: Options
    /// Receives each line printed by a script (without the newline). Default: standard output.
    public var printHandler: (String) -> Void = { Swift.print($0) }
    /// Instruction budget of each top-level `run`/`call` (nil: unlimited). Takes effect at the next one.
    public var instructionLimit: UInt64?
    /// Time limit, seconds, of each top-level `run`/`call` (nil: unlimited). Takes effect at the next one.
    public var timeLimit: Double?
    /// Alias of `timeLimit`.
    public var budgetSeconds: Double? {
        get { timeLimit }
        set { timeLimit = newValue }
    }

    /// The main thread's state.
    let state: OpaquePointer
    /// The thread running the innermost host call: the main state, or a coroutine when a host function was called
    /// from one. Host → Lua calls made from inside a host function must use this thread's stack.
    var current: OpaquePointer
    /// Host → Lua calls in progress (`run`/`call` nesting through host functions).
    var activeCalls = 0
    /// Every host function's context. Retained for the runtime's lifetime, which is the state's lifetime.
    var callbacks: [CallbackBox] = []
    var handleTypes: [HandleType] = []
    var handleTypeIndex: [ObjectIdentifier: Int] = [:]
    var random: RandomStream
    /// Registry references dropped without `release()`, possibly on another thread; freed at the next entry.
    private let pendingLock = NSLock()
    private var pendingReleases: [Int32] = []

    /// Creates a state and applies the sandbox. Throws only if the state cannot be built within the memory limit.
    public init(options: Options = Options()) throws(LuaError) {
        guard let L = tml_open(max(0, options.memoryLimit), luaDispatch, luaRetainObject, luaReleaseObject) else {
            throw LuaError(kind: .memory, message: "cannot create a Lua state within \(LuaRuntime.formatBytes(options.memoryLimit))")
        }
        self.options = options
        self.state = L
        self.current = L
        self.instructionLimit = options.instructionLimit
        self.timeLimit = options.timeLimit
        self.random = RandomStream(seed: options.seed, path: [LuaRuntime.randomStreamTag])
        var limits = tml_limits(
            pattern_subject_max: max(0, options.patternSubjectLimit), pattern_length_max: max(0, options.patternLengthLimit),
            pattern_step_max: options.patternStepLimit, rep_max: max(0, options.stringRepLimit),
            table_move_max: options.tableMoveLimit)
        let status = tml_open_sandbox(L, &limits, luaPrintSink, Unmanaged.passUnretained(self).toOpaque())
        if status != LUA_OK { throw error(status: status, on: L) }
        try installRandom()
        try run(string: LuaRuntime.deterministicPairs, chunkName: "=pairs")
        try run(string: LuaRuntime.tablePrinting, chunkName: "=print")
    }

    /// `print` of a table shows its contents, bounded: two levels deep (deeper non-empty tables print as `{…}`),
    /// at most `printEntries` entries per table (then `… (N more)`), strings cut at 200 bytes, a table that
    /// contains itself as `<cycle>`. Keys come in `pairs`' fixed order (numbers ascending, a list's 1..n without
    /// keys, then strings in byte order, `false`, `true`); keys that are tables, functions or userdata have no
    /// stable order and are only counted (`… (N more)`). Nested tables, functions and userdata print by their
    /// deterministic names, so the same script prints the same text in every run. A table whose metatable has
    /// `__tostring` or `__name` (or hides its metatable) prints as `tostring` shows it. Only `print` changes:
    /// `tostring(t)` and `string.format("%s", t)` still give `table: #N`.
    /// Plain Lua: it runs under the script's budget, and errors (a failing `__tostring`) are ordinary Lua errors.
    static let printEntries = 20
    static let tablePrinting = """
        local hostprint, tostring, type, next, rawget, getmetatable, select = print, tostring, type, next, rawget, getmetatable, select
        local format, concat, mtype, unpack = string.format, table.concat, math.type, table.unpack
        local LIMIT = \(printEntries)
        local keywords = {}
        for w in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while"):gmatch("%a+") do
          keywords[w] = true
        end
        local function plain(t)  -- contents can be shown: no __tostring/__name, metatable not hidden
          local mt = getmetatable(t)
          if mt == nil then return true end
          if type(mt) ~= "table" then return false end
          return rawget(mt, "__tostring") == nil and rawget(mt, "__name") == nil
        end
        local function rank(k)
          local tk = type(k)
          if tk == "number" then return 1 elseif tk == "string" then return 2
          elseif k == false then return 3 elseif k == true then return 4 end
          return nil
        end
        local function quote(s)
          local cut = #s > 200
          if cut then s = s:sub(1, 200) end
          s = format("%q", s):gsub("\\\\\\n", "\\\\n")
          return cut and (s .. "…") or s
        end
        local function less(a, b)  -- pairs' order for numbers, strings and booleans
          local ra, rb = rank(a), rank(b)
          if ra ~= rb then return ra < rb end
          if ra <= 2 then return a < b end
          return false
        end
        local render
        local function value(v, depth, path)
          local tv = type(v)
          if tv == "string" then return quote(v) end
          if tv == "table" and plain(v) then
            if path[v] then return "<cycle>" end
            if depth > 2 then return next(v) == nil and "{}" or "{…}" end
            return render(v, depth, path)
          end
          return tostring(v)
        end
        render = function(t, depth, path)
          -- The first LIMIT + 1 keys in pairs' order, chosen in one pass (no snapshot of a large table).
          -- `last`/`lastRank`: the largest key kept once LIMIT + 1 are kept; most keys of a large table fail the
          -- cheap test against it (a list's keys arrive in ascending order).
          local best, nb, total, unordered, last, lastRank = {}, 0, 0, 0, nil, 0
          local k = next(t)
          while k ~= nil do
            total = total + 1
            local tk = type(k)
            local r = tk == "number" and 1 or tk == "string" and 2 or k == false and 3 or k == true and 4 or nil
            if r == nil then
              unordered = unordered + 1
            elseif nb <= LIMIT or r < lastRank or (r == lastRank and r <= 2 and k < last) then
              local i = nb < LIMIT + 1 and nb + 1 or nb
              while i > 1 and less(k, best[i - 1]) do best[i] = best[i - 1]; i = i - 1 end
              best[i] = k
              if nb < LIMIT + 1 then nb = nb + 1 end
              last = best[nb]
              lastRank = rank(last)
            end
            k = next(t, k)
          end
          path[t] = true
          local parts, shown, position = {}, 0, 1
          for i = 1, nb do
            if i > LIMIT then break end
            local key = best[i]
            local v = rawget(t, key)
            local text = value(v, depth + 1, path)
            if key == position and mtype(key) == "integer" then
              position = position + 1
            elseif type(key) == "string" and key:match("^[%a_][%w_]*$") and not keywords[key] then
              text = key .. " = " .. text
              position = -1
            else
              text = "[" .. (type(key) == "string" and quote(key) or tostring(key)) .. "] = " .. text
              position = -1
            end
            shown = shown + 1
            parts[shown] = text
          end
          path[t] = nil
          if total > shown then parts[shown + 1] = "… (" .. (total - shown) .. " more)" end
          return "{" .. concat(parts, ", ") .. "}"
        end
        print = function(...)
          local n = select("#", ...)
          local args = { ... }
          for i = 1, n do
            local v = args[i]
            if type(v) == "table" and plain(v) then args[i] = render(v, 1, {}) end
          end
          return hostprint(unpack(args, 1, n))
        end
        """

    /// Lua 5.4 seeds its string hash per state from the time and addresses (ASLR), so stock `pairs` visits string
    /// keys in a different order in every run (measured: 4 runs, 4 orders), and so would anything a script computes
    /// in that order. This `pairs` visits a snapshot of the keys in a fixed order: integer and float keys ascending,
    /// then strings in byte order, then false, true, then other keys (tables, functions, userdata: no stable order
    /// exists for them; they keep the raw order). It honours `__pairs`, skips keys removed during the traversal and
    /// costs O(n log n) only when the keys are not already in order (a plain list is not sorted again).
    static let deterministicPairs = """
        local next, rawget, type, sort, getmetatable, error = next, rawget, type, table.sort, getmetatable, error
        pairs = function(t)
          local mt = getmetatable(t)
          if type(mt) == "table" then
            local mp = rawget(mt, "__pairs")
            if mp ~= nil then
              local f, s, c = mp(t)
              return f, s, c
            end
          end
          if type(t) ~= "table" then
            error("bad argument #1 to 'pairs' (table expected, got " .. type(t) .. ")", 2)
          end
          local nums, strs, others, hasFalse, hasTrue = {}, {}, {}, false, false
          local nn, ns, no, numsSorted, strsSorted = 0, 0, 0, true, true
          local k = next(t)
          while k ~= nil do
            local tk = type(k)
            if tk == "number" then
              nn = nn + 1; nums[nn] = k
              if nn > 1 and numsSorted and not (nums[nn - 1] < k) then numsSorted = false end
            elseif tk == "string" then
              ns = ns + 1; strs[ns] = k
              if ns > 1 and strsSorted and not (strs[ns - 1] < k) then strsSorted = false end
            elseif k == false then hasFalse = true
            elseif k == true then hasTrue = true
            else no = no + 1; others[no] = k end
            k = next(t, k)
          end
          if not numsSorted then sort(nums) end
          if not strsSorted then sort(strs) end
          local keys, n = nums, nn
          for i = 1, ns do n = n + 1; keys[n] = strs[i] end
          if hasFalse then n = n + 1; keys[n] = false end
          if hasTrue then n = n + 1; keys[n] = true end
          for i = 1, no do n = n + 1; keys[n] = others[i] end
          local i = 0
          return function()
            while i < n do
              i = i + 1
              local key = keys[i]
              local v = rawget(t, key)
              if v ~= nil then return key, v end
            end
            return nil
          end, t, nil
        end
        """

    deinit {
        if !isClosed { tml_close(state) }  // runs the handles' finalizers, releasing their host objects
    }

    /// Whether `close()` ran.
    public private(set) var isClosed = false

    /// Closes the Lua state now (running the handles' finalizers, which release their host objects, and giving
    /// its memory back to the budget it drew from) and drops the host functions, which may capture this runtime.
    /// Nothing may use the runtime afterwards (an owner that knows the run is over calls it: `ScriptRunner`).
    public func close() {
        guard !isClosed, activeCalls == 0 else { return }
        isClosed = true
        tml_close(state)
        callbacks.removeAll()
    }

    // MARK: - Running code

    /// Runs a script file; `chunkName` (default: the path) names it in messages as `name:line:`.
    /// Returns the chunk's return values.
    @discardableResult
    public func run(file path: String, chunkName: String? = nil) throws(LuaError) -> [LuaValue] {
        try enter(arm: true) { (L) throws(LuaError) -> [LuaValue] in
            let name = LuaRuntime.luaChunkName(chunkName ?? path)
            let status = tml_load_file(L, path, name)
            if status != LUA_OK { throw error(status: status, on: L, chunk: String(name.dropFirst())) }
            return try callTop(L, arguments: 0, chunk: String(name.dropFirst()))
        }
    }

    /// Runs source text; `chunkName` names it in messages (`"script.lua"` gives `script.lua:3: ...`).
    @discardableResult
    public func run(string source: String, chunkName: String) throws(LuaError) -> [LuaValue] {
        try enter(arm: true) { (L) throws(LuaError) -> [LuaValue] in
            var text = source
            let name = LuaRuntime.luaChunkName(chunkName)
            let status = text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { tml_load_buffer(L, $0.baseAddress, $0.count, name) }
            }
            if status != LUA_OK { throw error(status: status, on: L, chunk: String(name.dropFirst())) }
            return try callTop(L, arguments: 0, chunk: String(name.dropFirst()))
        }
    }

    /// Calls a Lua function with arguments; returns its results. Nested inside a host function (e.g. a sweep
    /// calling a script's `run` callback) it shares the running budget.
    @discardableResult
    public func call(_ function: LuaFunctionRef, _ arguments: [LuaValue] = []) throws(LuaError) -> [LuaValue] {
        try enter(arm: true) { (L) throws(LuaError) -> [LuaValue] in try callRef(L, function, arguments) }
    }

    /// Calls a Lua function under its own budget, even when nested: the enclosing budget's clock pauses and resumes
    /// afterwards (so a sweep can give each cell its own time limit without charging the script's).
    @discardableResult
    public func call(_ function: LuaFunctionRef, _ arguments: [LuaValue] = [], budget: LuaBudget) throws(LuaError) -> [LuaValue] {
        try enter(arm: false) { (L) throws(LuaError) -> [LuaValue] in
            var saved = tml_budget()
            tml_budget_save(L, &saved)
            tml_budget_arm(L, LuaRuntime.instructionWord(budget.instructions), budget.seconds ?? 0)
            defer { tml_budget_restore(L, &saved) }
            let results = try callRef(L, function, arguments)
            if let error = limitError(L) { throw error }
            return results
        }
    }

    /// Instructions counted by the running (or last) budget, in periods of 1000.
    public var instructionsExecuted: UInt64 { tml_budget_instructions(state) }

    /// Starts the deterministic value names (`tostring({})` → "table: #1") afresh, so that the names a phase
    /// prints or returns depend on that phase alone (a sweep worker calls it before each cell, so results do not
    /// depend on which cells the worker ran before, i.e. on --jobs).
    public func resetValueNames() throws(LuaError) {
        try enter(arm: false) { (L) throws(LuaError) -> Void in
            let status = tml_reset_value_names(L)
            if status != LUA_OK { throw error(status: status, on: L) }
        }
    }

    // MARK: - Globals

    /// Assigns a global, or a field along a dotted path of tables (`"toymoe.version"`), creating missing tables.
    /// Raw assignment: no metamethods run.
    public func setGlobal(_ path: String, _ value: LuaValue) throws(LuaError) {
        try enter(arm: false) { (L) throws(LuaError) -> Void in
            try pushForHost(L, [value])
            let status = tml_set_path(L, path)
            if status != LUA_OK { throw error(status: status, on: L) }
        }
    }

    /// Reads a global, or a field along a dotted path (`.nil` if any part is missing), converted to `LuaValue`.
    public func global(_ path: String) throws(LuaError) -> LuaValue {
        try enter(arm: false) { (L) throws(LuaError) -> LuaValue in
            let status = tml_get_path(L, path)
            if status != LUA_OK { throw error(status: status, on: L) }
            do throws(LuaConversionError) {
                var reader = StackReader(runtime: self, state: L)
                return try reader.read(-1)
            } catch {
                throw LuaError(kind: .runtime, message: "cannot read global '\(path)': \(error.message)")
            }
        }
    }

    // MARK: - Host functions

    /// Registers Swift functions as fields of a module table (created if missing, extended if present), e.g.
    /// `register(module: "toymoe", functions: ["model": makeModel])` gives the script `toymoe.model`. A dotted name
    /// nests tables; an empty name registers globals. Error messages name the function `module.name`.
    public func register(module name: String, functions: [String: LuaFunction]) throws(LuaError) {
        for (function, body) in functions.sorted(by: { $0.key < $1.key }) {
            let box = CallbackBox(name: name.isEmpty ? function : "\(name).\(function)", body: body, runtime: self)
            callbacks.append(box)
            let status = tml_register_function(current, name, function, Unmanaged.passUnretained(box).toOpaque())
            if status != LUA_OK { throw error(status: status, on: current) }
        }
    }

    // MARK: - Memory

    /// Bytes Lua has allocated now.
    public var memoryUsed: Int { tml_memory_used(state) }
    /// Host bytes accounted now (`accountHostBytes` and live handles).
    public var hostBytes: Int { tml_host_bytes(state) }
    /// Largest Lua heap plus host bytes seen so far.
    public var memoryPeak: Int { tml_memory_peak(state) }
    /// The limit on Lua's heap plus host bytes.
    public var memoryLimit: Int {
        get { tml_memory_limit(state) }
        set { tml_set_memory_limit(state, max(0, newValue)) }
    }

    /// Runs a full garbage collection (finalizing unreachable handles, which releases their host objects).
    public func collectGarbage() {
        _ = tml_gc(current, LUA_GCCOLLECT, 0)
    }

    /// Accounts host memory (e.g. a model's parameter buffers) against the memory limit: positive when allocated,
    /// negative when freed. A positive amount that does not fit, even after a full collection, is refused with a
    /// "not enough memory" error and not accounted. Growth also advances Lua's collector by as much, since it cannot
    /// see host memory and would otherwise keep dead handles (and their buffers) alive far too long.
    public func accountHostBytes(_ delta: Int) throws(LuaCallError) {
        if delta <= 0 {
            _ = tml_account_host(current, Int64(delta))
            return
        }
        if tml_account_host(current, Int64(delta)) == 0 {
            collectGarbage()
            if tml_account_host(current, Int64(delta)) == 0 { throw hostMemoryError(delta) }
        }
        _ = tml_gc(current, LUA_GCSTEP, Int32(clamping: delta / 1024))
    }

    /// Checks that `bytes` more host memory would fit under the limit (collecting garbage first if needed) without
    /// accounting them: call it before building a host object whose handle will account its size.
    public func ensureHostCapacity(_ bytes: Int) throws(LuaCallError) {
        func fits() -> Bool {
            let used = tml_memory_total(state)
            return bytes <= 0 || (used <= memoryLimit && bytes <= memoryLimit - used)
        }
        if fits() { return }
        collectGarbage()
        if !fits() { throw hostMemoryError(bytes) }
    }

    private func hostMemoryError(_ bytes: Int) -> LuaCallError {
        .verbatim("not enough memory: \(LuaRuntime.formatBytes(bytes)) more would exceed the memory limit of "
            + "\(LuaRuntime.formatBytes(memoryLimit)) (in use: \(LuaRuntime.formatBytes(tml_memory_total(state))))")
    }

    // MARK: - Shared budgets and long host calls

    /// Makes this (fresh) runtime draw from `parent`'s budget: one memory limit for both states' heaps and host
    /// bytes, and the parent's running instruction count and deadline, which this runtime's `run`/`call` then do
    /// not re-arm. Both runtimes must live on the same thread. Used by `toymoe.run_script`, so that one budget
    /// covers everything a run starts. Throws a memory error if this runtime's state does not fit in what is left.
    public func shareBudget(with parent: LuaRuntime) throws(LuaError) {
        guard tml_budget_share(state, parent.state) != 0 else {
            throw LuaError(kind: .memory, message: "not enough memory: a new Lua state does not fit in what is left of the memory limit of \(LuaRuntime.formatBytes(parent.memoryLimit))")
        }
    }

    /// The earliest deadline bounding this runtime's budget now (`tml_now()` seconds) and its limit as given;
    /// seconds is 0 when none does.
    public var deadlineBound: (deadline: Double, seconds: Double) {
        var seconds = 0.0
        let deadline = tml_budget_deadline(state, &seconds)
        return (deadline, seconds)
    }

    /// Also bounds this runtime's budget by a deadline from elsewhere (see `deadlineBound`), e.g. a sweep worker of
    /// a nested script by the run that started the script: it stops when either its own limit or this one passes.
    public func bound(deadline: Double, seconds: Double) {
        tml_budget_bound(state, deadline, seconds)
    }

    /// Lua heaps plus host bytes of every runtime sharing this runtime's budget.
    public var budgetMemoryUsed: Int { tml_memory_total(state) }

    /// For long host calls (training, metrics, loaders): checks the deadline now and returns the budget's error
    /// ("time limit of 2 s exceeded") if it has passed or the budget had tripped, else nil. Once tripped, the
    /// script stops at its next instruction even if it catches the host function's error.
    public func budgetExceeded() -> LuaCallError? {
        guard tml_budget_check(current) != 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: 128)
        _ = tml_budget_message(current, &buffer, buffer.count)
        return LuaCallError(String(cString: buffer))
    }

    /// A thread-safe check of the running budget's deadline for host work that runs off the Lua thread or must
    /// stay cheap (a training step): true once the deadline has passed. nil when no deadline bounds the budget.
    /// After it returns true, call `budgetExceeded()` on the runtime's thread to trip the budget and get the error.
    public func deadlineCheck() -> (@Sendable () -> Bool)? {
        var seconds = 0.0
        let deadline = tml_budget_deadline(current, &seconds)
        if tml_budget_tripped(current) != 0 { return { true } }
        guard seconds > 0 else { return nil }
        return { tml_now() > deadline }
    }

    // MARK: - Internals shared by the extensions

    /// Every host → Lua entry: frees dropped references, arms the budget for a top-level `run`/`call`, and restores
    /// the stack afterwards.
    func enter<T>(arm: Bool, _ body: (OpaquePointer) throws(LuaError) -> T) throws(LuaError) -> T {
        if isClosed { throw LuaError(kind: .runtime, message: "the Lua runtime was closed") }
        drainPendingReleases()
        let L = current
        let outermost = arm && activeCalls == 0
        if outermost {
            tml_budget_arm(L, LuaRuntime.instructionWord(instructionLimit), timeLimit ?? 0)
        }
        activeCalls += 1
        let top = lua_gettop(L)
        defer {
            lua_settop(L, top)
            activeCalls -= 1
        }
        guard lua_checkstack(L, 8) != 0 else {
            throw LuaError(kind: .memory, message: "Lua stack exhausted")
        }
        let result = try body(L)
        if outermost, let error = limitError(L) { throw error }
        return result
    }

    /// The error of a budget (time, instructions) that was exceeded during a call that nevertheless returned: a
    /// script can catch the limit's error with `pcall` (inside a coroutine, or around a host function such as
    /// `toymoe.train` or `toymoe.run_script`) and return before the hook raises again. Whatever it returns was cut
    /// short, so the call fails with the limit's error. Also trips a deadline that passed while the call ran.
    func limitError(_ L: OpaquePointer) -> LuaError? {
        let caught = tml_budget_tripped(L) != 0
        guard tml_budget_check(L) != 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: 128)
        _ = tml_budget_message(L, &buffer, buffer.count)
        let kind: LuaError.Kind = Int(tml_budget_tripped(L)) == Int(TML_TRIP_INSTRUCTIONS) ? .budget : .time
        let message = String(cString: buffer)
            + (caught
                ? " (the script caught the limit's error and went on; a phase that exceeds its limit fails whatever the script catches)"
                : " (the script returned after its limit)")
        return LuaError(kind: kind, message: message)
    }

    /// Calls the function below `arguments` values on top of the stack; returns its results and pops everything.
    func callTop(_ L: OpaquePointer, arguments: Int32, chunk: String? = nil) throws(LuaError) -> [LuaValue] {
        let base = lua_gettop(L) - arguments - 1
        let status = tml_pcall(L, arguments, tml_multret())
        if status != LUA_OK { throw error(status: status, on: L, chunk: chunk) }
        defer { lua_settop(L, base) }
        var reader = StackReader(runtime: self, state: L)
        var results: [LuaValue] = []
        results.reserveCapacity(Int(lua_gettop(L) - base))
        do throws(LuaConversionError) {
            for i in (base + 1)..<(lua_gettop(L) + 1) { results.append(try reader.read(i)) }
        } catch {
            throw LuaError(kind: .runtime, message: "cannot convert a result: \(error.message)")
        }
        return results
    }

    private func callRef(_ L: OpaquePointer, _ function: LuaFunctionRef, _ arguments: [LuaValue]) throws(LuaError) -> [LuaValue] {
        guard function.owner === self else {
            throw LuaError(kind: .runtime, message: "a Lua function can only be called by the runtime that created it")
        }
        guard !function.isReleased else {
            throw LuaError(kind: .runtime, message: "a released Lua function was called")
        }
        lua_rawgeti(L, luaRegistryIndex, lua_Integer(function.reference))
        try pushForHost(L, arguments)
        return try callTop(L, arguments: Int32(arguments.count))
    }

    /// Pushes values for a host entry point, turning failures into `LuaError`.
    func pushForHost(_ L: OpaquePointer, _ values: [LuaValue]) throws(LuaError) {
        let status: Int32
        do throws(LuaConversionError) {
            status = try pushValues(L, values)
        } catch {
            throw LuaError(kind: .runtime, message: "cannot pass a value to Lua: \(error.message)")
        }
        if status != LUA_OK { throw error(status: status, on: L) }
    }

    /// Builds the `LuaError` for a failed status from the error value on top (which it pops). `chunk` names the
    /// script in messages that have no location of their own.
    func error(status: Int32, on L: OpaquePointer, chunk: String? = nil) -> LuaError {
        if status == TML_ERRSTACK { return LuaError(kind: .memory, message: "Lua stack exhausted") }
        var text = "(no error message)"
        if lua_type(L, -1) == LUA_TSTRING {
            var length = 0
            let bytes = lua_tolstring(L, -1, &length)
            text = String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
        } else if lua_type(L, -1) != LUA_TNONE {
            text = "(error object is a \(String(cString: lua_typename(L, lua_type(L, -1)))) value)"
        }
        lua_settop(L, -2)
        var message = text
        var traceback = ""
        if let range = text.range(of: "\nstack traceback:") {
            message = String(text[..<range.lowerBound])
            traceback = String(text[text.index(after: range.lowerBound)...])
        }
        let kind: LuaError.Kind
        switch status {
        case LUA_ERRSYNTAX: kind = .syntax
        case LUA_ERRMEM: kind = .memory
        case _ where message == "not enough memory":
            kind = .memory  // Lua's memory error object, re-raised as a plain error (by a host function or a script)
        default:
            switch Int(tml_budget_tripped(L)) {
            case Int(TML_TRIP_INSTRUCTIONS): kind = .budget
            case Int(TML_TRIP_TIME): kind = .time
            default: kind = .runtime
            }
        }
        switch kind {
        case .memory:
            // Lua reports memory errors without a location (it runs no message handler for them): name the chunk.
            message = (chunk.map { $0 + ": " } ?? "")
                + "not enough memory: the script reached the memory limit of \(LuaRuntime.formatBytes(memoryLimit))"
        case .budget where !message.contains("instruction budget exceeded"):
            message = "instruction budget exceeded (last error: \(message))"
        case .time where !message.contains("time limit of"):
            message = "time limit exceeded (last error: \(message))"
        default:
            break
        }
        return LuaError(kind: kind, message: message, traceback: traceback)
    }

    /// Frees a registry reference now (on the runtime's thread).
    func releaseReference(_ reference: Int32) {
        if isClosed { return }  // the registry went with the state
        tml_unref(current, reference)
    }

    /// Queues a registry reference dropped without `release()` (from any thread) for the next entry.
    func deferRelease(_ reference: Int32) {
        pendingLock.lock()
        pendingReleases.append(reference)
        pendingLock.unlock()
    }

    private func drainPendingReleases() {
        pendingLock.lock()
        let pending = pendingReleases
        pendingReleases.removeAll()
        pendingLock.unlock()
        for reference in pending { tml_unref(current, reference) }
    }

    static func luaChunkName(_ name: String) -> String {
        name.hasPrefix("@") || name.hasPrefix("=") ? name : "@" + name
    }

    static func instructionWord(_ limit: UInt64?) -> UInt64 {
        guard let limit else { return 0 }
        return max(1, limit)  // 0 means "unlimited" to the shim
    }

    static func formatBytes(_ bytes: Int) -> String {
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 20 { return String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
        if bytes >= 1 << 10 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        return "\(bytes) bytes"
    }
}

let luaRegistryIndex: Int32 = tml_registry_index()

// MARK: - C entry points (no captures, so they convert to C function pointers)

private func luaDispatch(_ L: OpaquePointer?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    guard let L, let context else { return Int32(TML_RAISE_NOSTACK) }
    let box = Unmanaged<CallbackBox>.fromOpaque(context).takeUnretainedValue()
    return box.runtime.dispatch(box, L)
}

private func luaRetainObject(_ object: UnsafeMutableRawPointer?) {
    if let object { _ = Unmanaged<AnyObject>.fromOpaque(object).retain() }
}

private func luaReleaseObject(_ object: UnsafeMutableRawPointer?) {
    if let object { Unmanaged<AnyObject>.fromOpaque(object).release() }
}

private func luaPrintSink(_ context: UnsafeMutableRawPointer?, _ bytes: UnsafePointer<CChar>?, _ length: Int) {
    guard let context else { return }
    let runtime = Unmanaged<LuaRuntime>.fromOpaque(context).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    runtime.printHandler(line)
}
