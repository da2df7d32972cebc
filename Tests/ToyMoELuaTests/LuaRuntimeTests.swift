import Foundation
import Testing
import ToyMoE
import ToyMoELua

// Tests of the embedded Lua runtime: values across the boundary, error reporting, host functions and handles, the
// sandbox against hostile scripts, determinism of math.random, and memory accounting. Scripts are string literals.

/// A runtime with small limits, so hostile scripts fail fast and parallel tests stay light.
private func makeRuntime(
    memory: Int = 32 << 20, instructions: UInt64? = 50_000_000, seconds: Double? = 10, seed: UInt64 = 1,
    _ configure: (inout LuaRuntime.Options) -> Void = { _ in }
) throws -> LuaRuntime {
    var options = LuaRuntime.Options(memoryLimit: memory, instructionLimit: instructions, timeLimit: seconds, seed: seed)
    configure(&options)
    return try LuaRuntime(options: options)
}

/// Runs a script expected to fail; returns the error.
private func failure(_ runtime: LuaRuntime, _ script: String, chunk: String = "script.lua") -> LuaError? {
    do {
        try runtime.run(string: script, chunkName: chunk)
        return nil
    } catch {
        return error
    }
}

/// A host class whose deinitializations are counted (per test, so parallel tests do not interfere).
private final class Probe {
    final class Counter { var deinits = 0 }
    let value: Int
    let counter: Counter
    init(_ value: Int, _ counter: Counter) {
        self.value = value
        self.counter = counter
    }
    deinit { counter.deinits += 1 }
}

@Suite("LuaRuntime basics")
struct LuaRuntimeBasicsTests {
    @Test func returnsValues() throws {
        let lua = try makeRuntime()
        let results = try lua.run(string: "return 1, 2.5, 'x', true, nil, {10, 20, 30, a = {b = 'c'}, [7] = 'seven'}",
                                  chunkName: "values.lua")
        #expect(results.count == 6)
        #expect(results[0] == .integer(1))
        #expect(results[1] == .number(2.5))
        #expect(results[2] == .string("x"))
        #expect(results[3] == .boolean(true))
        #expect(results[4] == .nil)
        let table = try #require(results[5].tableValue)
        #expect(table.array == [10, 20, 30])
        #expect(table["a"] == ["b": "c"])
        #expect(table[7] == "seven")
    }

    @Test func globalsRoundTrip() throws {
        let lua = try makeRuntime()
        try lua.setGlobal("params", ["n_features": 5, "probabilities": [0.1, 0.5], "name": "run"])
        try lua.setGlobal("toymoe.version", "1.0")
        let result = try lua.run(string: """
            local s = 0
            for _, p in ipairs(params.probabilities) do s = s + p end
            results = {sum = s, n = params.n_features * 2, version = toymoe.version}
            """, chunkName: "globals.lua")
        #expect(result.isEmpty)
        let results = try #require(lua.global("results").tableValue)
        #expect(results["sum"] == .number(0.6))
        #expect(results["n"] == .integer(10))
        #expect(results["version"] == "1.0")
        #expect(try lua.global("nothing.here") == .nil)
    }

    @Test func cyclicTableIsRejectedOnRead() throws {
        let lua = try makeRuntime()
        try lua.run(string: "t = {}; t.self = t", chunkName: "cycle.lua")
        #expect(throws: LuaError.self) { try lua.global("t") }
        do {
            _ = try lua.global("t")
        } catch {
            #expect(error.message.contains("cyclic table"))
        }
    }

    @Test func syntaxErrorNamesFileAndLine() throws {
        let lua = try makeRuntime()
        let error = try #require(failure(lua, "local x = 1\nlocal y = = 2\n"))
        #expect(error.kind == .syntax)
        #expect(error.message.hasPrefix("script.lua:2:"))
    }

    @Test func runtimeErrorHasLocationAndTraceback() throws {
        let lua = try makeRuntime()
        let script = """
            local function inner()
              local t = nil
              return t.field
            end
            local function outer() return inner() + 1 end
            outer()
            """
        let error = try #require(failure(lua, script, chunk: "experiments/nested.lua"))
        #expect(error.kind == .runtime)
        #expect(error.message.hasPrefix("experiments/nested.lua:3: attempt to index a nil value"))
        #expect(error.traceback.hasPrefix("stack traceback:"))
        #expect(error.traceback.contains("experiments/nested.lua:3: in"))
        #expect(error.traceback.contains("experiments/nested.lua:5: in"))
        #expect(error.description == error.message + "\n" + error.traceback)
        // The runtime stays usable.
        #expect(try lua.run(string: "return 40 + 2", chunkName: "after.lua") == [42])
    }

    @Test func runsFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lua-runtime-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("exp.lua").path
        try "#!/usr/bin/env toymoe\nreturn 1 +\n  nil_value_here\n".write(toFile: path, atomically: true, encoding: .utf8)
        let lua = try makeRuntime()
        let error = try #require(failure(lua, "return dofile"))  // dofile is gone
        #expect(error.message.contains("undefined global 'dofile'"))
        do {
            try lua.run(file: path, chunkName: "exp.lua")
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "exp.lua:3: undefined global 'nil_value_here'")  // line numbers survive "#!"
        }
        do {
            try lua.run(file: dir.appendingPathComponent("missing.lua").path)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("cannot open"))
        }
    }

    @Test func printGoesToTheSink() throws {
        let lua = try makeRuntime()
        var lines: [String] = []
        lua.printHandler = { lines.append($0) }
        try lua.run(string: "print('a', 1, 2.5, nil, true)\nprint()", chunkName: "print.lua")
        #expect(lines == ["a\t1\t2.5\tnil\ttrue", ""])
    }

    @Test func undefinedGlobalIsAnErrorButDefiningIsAllowed() throws {
        let lua = try makeRuntime()
        let error = try #require(failure(lua, "local a = 1\nreturn a + undefined_thing"))
        #expect(error.message == "script.lua:2: undefined global 'undefined_thing'")
        #expect(try lua.run(string: "defined_later = 3; return defined_later, rawget(_G, 'nope')", chunkName: "g.lua")
            == [3, nil])
        #expect(try lua.run(string: "return getmetatable(_G)", chunkName: "g.lua") == [false])
    }
}

@Suite("LuaRuntime host functions")
struct LuaRuntimeHostFunctionTests {
    private func runtimeWithModule() throws -> LuaRuntime {
        let lua = try makeRuntime()
        try lua.register(module: "test", functions: [
            "positive": { args in
                let n = try args.integer(1, "n")
                guard n > 0 else { throw LuaCallError.argument("n", "expected a positive integer, got \(n)") }
                return [.integer(Int64(n) * 2)]
            },
            "sum": { args in
                let xs = try args.numbers(1, "xs")
                return [.number(xs.reduce(0, +))]
            },
            "echo": { args in (1...max(1, args.count)).map { (try? args.value($0)) ?? .nil } },
            "config": { args in
                let t = try args.table(1, "config")
                let name = try args.optionalString(2, "name") ?? "default"
                return [.string("\(name):\(t["k"].integerValue ?? -1)")]
            },
            "fail": { _ in throw LuaCallError("something broke") },
            "swifterror": { _ in throw ToyMoEError("ModelConfig", "n_hidden", "expected a positive integer, got 0") },
        ])
        return lua
    }

    @Test func bindingsReturnValues() throws {
        let lua = try runtimeWithModule()
        let r = try lua.run(string: """
            return test.positive(21), test.sum({1, 2, 3.5}), test.config({k = 7}), test.config({k = 1}, 'x'),
                   test.echo('s', {1, {2}})
            """, chunkName: "b.lua")
        #expect(r[0] == 42)
        #expect(r[1] == .number(6.5))
        #expect(r[2] == "default:7")
        #expect(r[3] == "x:1")
        #expect(r[4] == "s")
        #expect(r[5] == [1, [2]])
    }

    @Test func bindingErrorCarriesScriptLocation() throws {
        let lua = try runtimeWithModule()
        let error = try #require(failure(lua, "local x = 1\nlocal y = test.positive(-3)\n", chunk: "script.lua"))
        #expect(error.kind == .runtime)
        #expect(error.message == "script.lua:2: test.positive: argument 'n': expected a positive integer, got -3")
        #expect(error.traceback.contains("test.positive"))

        let typeError = try #require(failure(lua, "test.positive('3')"))
        #expect(typeError.message == "script.lua:1: test.positive: argument 'n': expected an integer, got string")
        let floatError = try #require(failure(lua, "test.positive(2.5)"))
        #expect(floatError.message == "script.lua:1: test.positive: argument 'n': expected an integer, got 2.5")
        let elementError = try #require(failure(lua, "test.sum({1, 'x'})"))
        #expect(elementError.message == "script.lua:1: test.sum: argument 'xs': element 2: expected a number, got string")
        let plain = try #require(failure(lua, "\n\ntest.fail()"))
        #expect(plain.message == "script.lua:3: test.fail: something broke")
        let swift = try #require(failure(lua, "test.swifterror()"))
        #expect(swift.message == "script.lua:1: test.swifterror: ModelConfig: n_hidden: expected a positive integer, got 0")
        // Still alive.
        #expect(try lua.run(string: "return test.positive(1)", chunkName: "ok.lua") == [2])
    }

    @Test func pcallCatchesBindingErrors() throws {
        let lua = try runtimeWithModule()
        let r = try lua.run(string: """
            local ok, e = pcall(test.positive, -3)
            local ok2, e2 = pcall(function() return test.fail() end)
            return ok, e, ok2, e2
            """, chunkName: "p.lua")
        #expect(r[0] == false)
        #expect(r[1] == "p.lua:1: test.positive: argument 'n': expected a positive integer, got -3")
        #expect(r[2] == false)
        #expect(r[3] == "p.lua:2: test.fail: something broke")
    }

    @Test func callsLuaFunctionsFromSwift() throws {
        let lua = try makeRuntime()
        var stored: LuaFunctionRef?
        try lua.register(module: "host", functions: [
            "keep": { args in
                stored = try args.function(1, "callback")
                return []
            },
            "apply": { args in
                // A host function calling back into Lua, nested: errors in the callback keep their own location.
                let f = try args.function(1, "f")
                defer { f.release() }
                return try args.runtime.call(f, [try args.value(2)])
            },
        ])
        try lua.run(string: "host.keep(function(a, b) return a + b, a * b end)", chunkName: "keep.lua")
        let f = try #require(stored)
        #expect(try lua.call(f, [3, 4]) == [7, 12])
        #expect(try lua.call(f, [.number(0.5), 2]) == [2.5, 1.0])
        do {
            _ = try lua.call(f, ["x", 1])
            Issue.record("expected an error")
        } catch {
            #expect(error.message.hasPrefix("keep.lua:1: attempt to"))
        }
        f.release()
        #expect(throws: LuaError.self) { try lua.call(f, [1, 2]) }

        #expect(try lua.run(string: "return host.apply(function(x) return x * 10 end, 4)", chunkName: "a.lua") == [40])
        let nested = try #require(failure(lua, "host.apply(function(x)\n  error('inner failure')\nend, 1)", chunk: "n.lua"))
        #expect(nested.message == "n.lua:2: inner failure")
    }

    @Test func perCallBudgetIsIndependent() throws {
        let lua = try makeRuntime(instructions: nil, seconds: nil)
        let f = try #require(try lua.run(string: "return function(n) local i = 0 while i < n do i = i + 1 end return i end",
                                         chunkName: "f.lua")[0].functionValue)
        #expect(try lua.call(f, [1000], budget: LuaBudget(instructions: 1_000_000)) == [1000])
        do {
            _ = try lua.call(f, [.integer(1 << 40)], budget: LuaBudget(instructions: 200_000))
            Issue.record("expected a budget error")
        } catch {
            #expect(error.kind == .budget)
        }
        let start = Date()
        do {
            _ = try lua.call(f, [.integer(1 << 40)], budget: LuaBudget(seconds: 0.1))
            Issue.record("expected a time error")
        } catch {
            #expect(error.kind == .time)
            #expect(error.message.contains("time limit of 0.1 s exceeded"))
        }
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(try lua.call(f, [10]) == [10])  // the budget is re-armed
    }

    @Test func manyCallsAreCheap() throws {
        let lua = try runtimeWithModule()
        let start = Date()
        let r = try lua.run(string: "local s = 0 for i = 1, 100000 do s = s + test.positive(1) end return s",
                            chunkName: "loop.lua")
        #expect(r == [200_000])
        #expect(Date().timeIntervalSince(start) < 5)
    }
}

@Suite("LuaRuntime handles")
struct LuaRuntimeHandleTests {
    private func runtimeWithProbes(_ counter: Probe.Counter) throws -> LuaRuntime {
        let lua = try makeRuntime()
        try lua.registerType(
            Probe.self, name: "Probe",
            methods: [
                "value": { args in [.integer(Int64(try args.object(1, "self", as: Probe.self).value))] },
                "add": { args in
                    let p = try args.object(1, "self", as: Probe.self)
                    return [.integer(Int64(p.value + (try args.integer(2, "n"))))]
                },
            ],
            fields: ["size": { args in [.integer(Int64(try args.object(1, "self", as: Probe.self).value))] }],
            describe: { "Probe(\($0.value))" },
            hostBytes: { _ in 1 << 20 })
        try lua.register(module: "probe", functions: [
            "new": { args in [.userdata(Probe(try args.integer(1, "value"), counter))] },
            "same": { args in
                let a = try args.object(1, "a", as: Probe.self)
                let b = try args.object(2, "b", as: Probe.self)
                return [.boolean(a === b)]
            },
        ])
        return lua
    }

    @Test func roundTrip() throws {
        let counter = Probe.Counter()
        let lua = try runtimeWithProbes(counter)
        let r = try lua.run(string: """
            local p = probe.new(7)
            return p:value(), p:add(3), p.size, tostring(p), probe.same(p, p), p
            """, chunkName: "h.lua")
        #expect(Array(r.prefix(5)) == [7, 10, 7, "Probe(7)", true])
        #expect(r[5].object(as: Probe.self)?.value == 7)

        let error = try #require(failure(lua, "local p = probe.new(1)\nreturn p.value()"))
        #expect(error.message == "script.lua:2: Probe:value: argument 'self': expected Probe, got no value "
            + "(call methods with ':', as obj:method(...))")
        let typo = try #require(failure(lua, "local p = probe.new(1)\nreturn p.sise"))
        #expect(typo.message == "script.lua:2: Probe has no field or method 'sise'")
        let assign = try #require(failure(lua, "local p = probe.new(1)\np.size = 3"))
        #expect(assign.message.contains("host objects are read-only"))
        #expect(try lua.run(string: "return getmetatable(probe.new(1))", chunkName: "m.lua") == [false])
    }

    @Test func freeAndClose() throws {
        let counter = Probe.Counter()
        let lua = try runtimeWithProbes(counter)
        let base = lua.hostBytes
        let error = try #require(failure(lua, "local p = probe.new(1)\np:free()\nreturn p:value()"))
        #expect(error.message == "script.lua:3: Probe:value: argument 'self': this Probe was freed")
        #expect(counter.deinits == 1)
        #expect(lua.hostBytes == base)
        try lua.run(string: "do local p <close> = probe.new(2); assert(tostring(p) == 'Probe(2)') end", chunkName: "c.lua")
        #expect(counter.deinits == 2)
        #expect(try lua.run(string: "local p = probe.new(3); p:free(); return tostring(p)", chunkName: "t.lua")
            == ["Probe (freed)"])
    }

    @Test func garbageCollectionReleasesHostObjects() throws {
        let counter = Probe.Counter()
        let lua = try runtimeWithProbes(counter)
        try lua.run(string: "kept = probe.new(-1)\nfor i = 1, 200 do local p = probe.new(i) end", chunkName: "gc.lua")
        // Host bytes pace the collector: most of the 200 dead probes (1 MiB each, 32 MiB limit) are gone already.
        #expect(lua.hostBytes <= 32 << 20)
        lua.collectGarbage()
        #expect(counter.deinits == 200)
        #expect(lua.hostBytes == 1 << 20)  // only `kept`
        try lua.setGlobal("kept", .nil)
        lua.collectGarbage()
        #expect(counter.deinits == 201)
        #expect(lua.hostBytes == 0)
    }

    @Test func closingTheStateReleasesEverything() throws {
        let counter = Probe.Counter()
        do {
            let lua = try runtimeWithProbes(counter)
            try lua.run(string: "a = probe.new(1); b = {probe.new(2), probe.new(3)}", chunkName: "k.lua")
            #expect(counter.deinits == 0)
        }
        #expect(counter.deinits == 3)
    }

    @Test func hostMemoryCountsTowardTheLimit() throws {
        let lua = try makeRuntime(memory: 8 << 20)
        try lua.accountHostBytes(4 << 20)
        #expect(lua.hostBytes == 4 << 20)
        #expect(throws: LuaCallError.self) { try lua.accountHostBytes(6 << 20) }
        #expect(lua.hostBytes == 4 << 20)
        let error = try #require(failure(lua, "local t = {} for i = 1, 1e7 do t[i] = i end"))
        #expect(error.kind == .memory)
        try lua.accountHostBytes(-(4 << 20))
        #expect(lua.hostBytes == 0)
        lua.collectGarbage()
        #expect(try lua.run(string: "local t = {} for i = 1, 1e5 do t[i] = i end return #t", chunkName: "ok.lua") == [100_000])
    }
}

@Suite("LuaRuntime sandbox")
struct LuaRuntimeSandboxTests {
    @Test func infiniteLoopHitsTheInstructionBudget() throws {
        let lua = try makeRuntime(instructions: 1_000_000, seconds: nil)
        let error = try #require(failure(lua, "local i = 0\nwhile true do i = i + 1 end"))
        #expect(error.kind == .budget)
        #expect(error.message.hasPrefix("script.lua:2: instruction budget exceeded"))
        #expect(try lua.run(string: "return 1", chunkName: "after.lua") == [1])
    }

    @Test func pcallCannotSwallowTheBudget() throws {
        let lua = try makeRuntime(instructions: 1_000_000, seconds: nil)
        let script = """
            local caught = 0
            while true do
              local ok = pcall(function() while true do end end)
              if not ok then caught = caught + 1 end
            end
            """
        let error = try #require(failure(lua, script))
        #expect(error.kind == .budget)
        let xpcall = try #require(failure(lua, "while true do xpcall(function() while true do end end, function(e) return e end) end"))
        #expect(xpcall.kind == .budget)
    }

    @Test func loopInACoroutineHitsTheBudget() throws {
        let lua = try makeRuntime(instructions: 1_000_000, seconds: nil)
        let wrapped = try #require(failure(lua, "coroutine.wrap(function() while true do end end)()"))
        #expect(wrapped.kind == .budget)
        let resumed = try #require(failure(lua, """
            local co = coroutine.create(function() while true do end end)
            while true do coroutine.resume(co) end
            """))
        #expect(resumed.kind == .budget)
    }

    @Test func timeLimitStopsALoop() throws {
        let lua = try makeRuntime(instructions: nil, seconds: 0.2)
        let start = Date()
        let error = try #require(failure(lua, "while true do end"))
        #expect(error.kind == .time)
        #expect(error.message == "script.lua:1: time limit of 0.2 s exceeded")
        #expect(Date().timeIntervalSince(start) < 5)
        lua.timeLimit = 5
        #expect(try lua.run(string: "return 2", chunkName: "after.lua") == [2])
    }

    @Test func memoryBombsFailCleanly() throws {
        let lua = try makeRuntime(memory: 32 << 20)
        let baseline = lua.memoryUsed
        let bombs = [
            "local t = {} local i = 1 while true do t[i] = {i} i = i + 1 end",
            "local s = 'x' while true do s = s .. s end",
            "local t = {} for i = 1, 100 do t[i] = string.rep('y', 1 << 20) .. i end",
            "return string.rep('x', 40 * 1024 * 1024)",
        ]
        for bomb in bombs {
            let error = try #require(failure(lua, bomb), "\(bomb)")
            #expect(error.kind == .memory, "\(bomb): \(error)")
            #expect(error.message.contains("not enough memory"))
            lua.collectGarbage()
            #expect(lua.memoryUsed < baseline + (1 << 20), "memory not released after: \(bomb)")
        }
        let rep = try #require(failure(lua, "return string.rep('x', 1e12)"))
        #expect(rep.message.contains("string.rep: a result of 1000000000000 bytes exceeds the limit"))
        #expect(try lua.run(string: "return #string.rep('', 1e15), #string.rep('ab', 3, ',')", chunkName: "r.lua") == [0, 8])
        #expect(lua.memoryPeak <= 32 << 20)
    }

    @Test func hostResultsThatDoNotFitFailCleanly() throws {
        let lua = try makeRuntime(memory: 8 << 20)
        try lua.register(module: "host", functions: [
            "big": { _ in [.table(LuaTable(array: (0..<1_000_000).map { .number(Double($0)) }))] },
            "text": { _ in [.string(String(repeating: "z", count: 16 << 20))] },
        ])
        for script in ["local t = host.big()", "local s = host.text()", "local ok, e = pcall(host.big)\nerror(e, 0)"] {
            let error = try #require(failure(lua, script, chunk: "host.lua"))
            #expect(error.kind == .memory, "\(script): \(error)")
            #expect(error.message.hasPrefix("host.lua: not enough memory"), "\(script): \(error)")
        }
        lua.collectGarbage()
        #expect(try lua.run(string: "return 'alive'", chunkName: "after.lua") == ["alive"])
    }

    @Test func deepRecursionIsAStackOverflow() throws {
        let lua = try makeRuntime(memory: 128 << 20)
        let error = try #require(failure(lua, "local function f(n) return 1 + f(n + 1) end\nreturn f(1)"))
        #expect(error.kind == .runtime)
        #expect(error.message.contains("stack overflow"))
        #expect(try lua.run(string: "return 3", chunkName: "after.lua") == [3])
    }

    @Test(arguments: [
        ("os.execute('echo hacked')", "undefined global 'os'"),
        ("io.open('/etc/passwd')", "undefined global 'io'"),
        ("require('os')", "undefined global 'require'"),
        ("package.loadlib('libc.so.6', 'system')", "undefined global 'package'"),
        ("debug.getinfo(1)", "undefined global 'debug'"),
        ("dofile('/etc/passwd')", "undefined global 'dofile'"),
        ("loadfile('/etc/passwd')", "undefined global 'loadfile'"),
        ("string.dump(print)", "attempt to call a nil value (field 'dump')"),
        ("setmetatable({}, {__gc = function() while true do end end})", "__gc is not allowed in scripts"),
        ("collectgarbage()", "collectgarbage(\"collect\") is not allowed in scripts"),
        ("collectgarbage('stop')", "is not allowed in scripts"),
        ("assert(load('\\27Lua\\x54\\0\\x19\\x93\\r\\n\\x1a\\n'))", "attempt to load a binary chunk"),
        ("assert(load(string.char(27) .. 'Lua', 'x', 'b'))", "attempt to load a binary chunk"),
        ("setmetatable(_G, {})", "cannot change a protected metatable"),
        ("table.insert(setmetatable({}, {__len = function() return 1e15 end}), 1, 1)", "__len metamethod"),
        ("table.move({}, 1, 1e15, 1)", "table.move: moving 1000000000000000 elements exceeds the limit"),
    ])
    func hostileScriptsFailCleanly(script: String, expected: String) throws {
        let lua = try makeRuntime()
        let error = try #require(failure(lua, script))
        #expect(error.message.contains(expected), "\(script): \(error.message)")
        #expect(error.message.hasPrefix("script.lua:1:"), "\(script): \(error.message)")
        #expect(try lua.run(string: "return 'alive'", chunkName: "after.lua") == ["alive"])
    }

    @Test(arguments: [
        "local function f(s) return (s:gsub('.', function(c) return f(c) end)) end\nf('x')",
        "local function f() return pcall(f) end\nlocal ok, e = f()\nerror(e)",
        "local t = setmetatable({}, {__index = function(t, k) return t[k .. 'x'] end})\nreturn t.a",
        "local function f() return tostring(setmetatable({}, {__tostring = f})) end\nf()",
        "local co\nco = coroutine.wrap(function() co() end)\nco()",
        "local function f() return coroutine.wrap(f)() end\nf()",
    ])
    func nativeStackRecursionFailsCleanly(script: String) throws {
        let lua = try makeRuntime()
        let error = try #require(failure(lua, script))
        #expect(error.kind == .runtime || error.kind == .memory, "\(script): \(error)")
        #expect(try lua.run(string: "return 'alive'", chunkName: "after.lua") == ["alive"])
    }

    @Test func recursionThroughAHostFunctionFailsCleanly() throws {
        let lua = try makeRuntime()
        try lua.register(module: "host", functions: [
            "apply": { args in
                let f = try args.function(1, "f")
                defer { f.release() }
                return try args.runtime.call(f, [])
            },
        ])
        let error = try #require(failure(lua, "local function f() return host.apply(f) end\nreturn f()"))
        #expect(error.message.contains("stack overflow"), "\(error)")
        #expect(try lua.run(string: "return 'alive'", chunkName: "after.lua") == ["alive"])
    }

    @Test func allowedLibraryFeaturesStillWork() throws {
        let lua = try makeRuntime()
        let r = try lua.run(string: """
            local f = assert(load('return 1 + ...'))
            local env = {x = 5}
            local g = assert(load('return x', 'chunk', 't', env))
            local mt = setmetatable({}, {__index = function(_, k) return k .. '!' end})
            return f(2), g(), mt.hi, type(collectgarbage('count')), utf8.char(72, 105), math.floor(2.5),
                   select('#', table.unpack({1, 2, 3})), #table.concat({'a', 'b'}, '-')
            """, chunkName: "ok.lua")
        #expect(r[0] == 3)
        #expect(r[1] == 5)
        #expect(r[2] == "hi!")
        #expect(r[3] == "number")
        #expect(r[4] == "Hi")
        #expect(r[5] == 2)
        #expect(r[6] == 3)
        #expect(r[7] == 3)
    }

    @Test func runawayPatternEndsInBoundedTime() throws {
        // O(n^8) backtracking: hours in stock Lua. The default step budget (50M steps) stops it in well under a
        // second in an optimized build; the bound here is loose because debug builds compile the matcher at -O0.
        let lua = try makeRuntime(instructions: nil, seconds: 30)
        let start = Date()
        let error = try #require(failure(lua, "return string.find(string.rep('a', 1e6), '.-.-.-.-.-.-.-.-b')"))
        #expect(error.message == "script.lua:1: string.find: pattern too complex (more than 50000000 matching steps)")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(try lua.run(string: "return ('x = 1'):match('(%w+)%s*=%s*(%w+)')", chunkName: "ok.lua") == ["x", "1"])
    }

    @Test func patternCapsApplyToEveryPatternFunction() throws {
        let lua = try makeRuntime { $0.patternStepLimit = 2_000_000 }
        // Method syntax goes through the same functions; gsub and gmatch are budgeted too.
        let gsub = try #require(failure(lua, "return (('a'):rep(5000)):gsub('.-.-.-b', '')"))
        #expect(gsub.message.contains("string.gsub: pattern too complex"))
        let gmatch = try #require(failure(lua, "for x in (('a'):rep(5000)):gmatch('(.-)(.-)(.-)b') do end"))
        #expect(gmatch.message.contains("string.gmatch: pattern too complex"))
        let match = try #require(failure(lua, "return (('a'):rep(5000)):match('.-.-.-b')"))
        #expect(match.message.contains("string.match: pattern too complex"))
        let caps = try #require(failure(lua, "return string.find(string.rep('a', 2 * 1024 * 1024), 'b')"))
        #expect(caps.message.contains("string.find: a subject of 2097152 bytes exceeds the limit of 1048576 bytes"))
        let long = try #require(failure(lua, "return string.match('x', string.rep('x?', 200))"))
        #expect(long.message.contains("string.match: a pattern of 400 bytes exceeds the limit of 256 bytes"))
    }

    @Test func slowPatternRespectsTheTimeLimit() throws {
        let lua = try makeRuntime(instructions: nil, seconds: 0.2) { $0.patternStepLimit = 0 }
        let start = Date()
        let error = try #require(failure(lua, "return string.find(string.rep('a', 1e6), '.-.-.-.-.-.-.-.-b')"))
        #expect(error.kind == .time)
        #expect(Date().timeIntervalSince(start) < 5)
    }
}

@Suite("LuaRuntime patterns")
struct LuaRuntimePatternTests {
    /// Each case: an expression and its expected results (as Lua 5.4 gives them).
    @Test(arguments: [
        ("string.find('hello world', 'o w')", [5, 7] as [LuaValue]),
        ("string.find('hello', 'l+')", [3, 4]),
        ("string.find('a.b', '.', 1, true)", [2, 2]),
        ("string.find('abc', 'b', -1)", [nil]),
        ("string.find('abc', '', 10)", [nil]),
        ("string.find('abc', '', 4)", [4, 3]),
        ("string.find('key = value', '(%w+)%s*=%s*(%w+)')", [1, 11, "key", "value"]),
        ("string.match('  trim me  ', '^%s*(.-)%s*$')", ["trim me"]),
        ("string.match('2024-01-15', '(%d+)-(%d+)-(%d+)')", ["2024", "01", "15"]),
        ("string.match('hello', '()ll()')", [3, 5]),
        ("string.match('x = \"a\" .. \"b\"', '%b\"\"')", ["\"a\""]),
        ("string.match('THE (quick) fox', '%f[%a]%a+', 5)", ["quick"]),
        ("string.match('abcabc', '(abc)%1')", ["abc"]),
        ("string.match('[x]', '[]]')", ["]"]),
        ("string.match('a-b', '[a%-]+')", ["a-"]),
        ("string.match('hello', '[^aeiou]+$')", [nil]),
        ("string.match('f(a(b)c)d', '%b()')", ["(a(b)c)"]),
        ("string.match('abc', '^(a)(b?)')", ["a", "b"]),
        ("string.match('abc', '^(a)(b)?')", [nil]),  // '?' after ')' is a literal character in Lua
        ("string.match('x$y', 'x$y')", ["x$y"]),
        ("string.gsub('hello world', 'o', '0')", ["hell0 w0rld", 2]),
        ("string.gsub('hello world', '(%w+)', '<%1>')", ["<hello> <world>", 2]),
        ("string.gsub('abc', '%w', '%0%0')", ["aabbcc", 3]),
        ("string.gsub('abc', '', '-')", ["-a-b-c-", 4]),
        ("string.gsub('hello world', '%w+', {hello = 'HI'})", ["HI world", 2]),
        ("string.gsub('a b c', '%a', function(c) if c ~= 'b' then return c:upper() end end)", ["A b C", 3]),
        ("string.gsub('abc', '^a', 'x')", ["xbc", 1]),
        ("string.gsub('aaa', 'a', 'b', 2)", ["bba", 2]),
        ("string.gsub('100%', '%%', ' percent')", ["100 percent", 1]),
        ("string.gsub('abc', '()', '%1')", ["1a2b3c4", 4]),
        ("select(2, pcall(string.gsub, 'x', 'x', '%2'))", ["invalid capture index %2"]),
        ("table.concat((function() local t = {} for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do t[#t + 1] = k .. v end return t end)(), ',')", ["a1,b2"]),
        ("table.concat((function() local t = {} for w in string.gmatch('one two  three', '%a+') do t[#t + 1] = w end return t end)(), '|')", ["one|two|three"]),
        ("table.concat((function() local t = {} for w in string.gmatch('abc', '') do t[#t + 1] = '.' end return t end)())", ["...."]),
        ("table.concat((function() local t = {} for w in string.gmatch('hello world', '%a+', 3) do t[#t + 1] = w end return t end)(), '|')", ["llo|world"]),
        ("select(2, pcall(string.find, 'a', '%'))", ["malformed pattern (ends with '%')"]),
        ("select(2, pcall(string.find, 'a', '[a'))", ["malformed pattern (missing ']')"]),
        ("select(2, pcall(string.find, 'a', '(a'))", ["unfinished capture"]),
        ("select(2, pcall(string.find, 'a', '.)'))", ["invalid pattern capture"]),
        ("string.find('a)', 'a)')", [1, 2]),  // no special characters: a plain search
        ("select(2, pcall(string.find, 'a', '%1'))", ["invalid capture index %1"]),
    ])
    func matchesLikeLua(expression: String, expected: [LuaValue]) throws {
        let lua = try makeRuntime()
        var results = try lua.run(string: "return \(expression)", chunkName: "pattern.lua")
        if expected.count == 1, case .string(let text) = expected[0], expression.hasPrefix("select(2, pcall("),
            case .string(let message)? = results.first {
            #expect(message.hasSuffix(text), "\(expression): \(message)")
            return
        }
        while results.count < expected.count { results.append(.nil) }
        #expect(results == expected, "\(expression)")
    }
}

@Suite("LuaRuntime random")
struct LuaRuntimeRandomTests {
    private let script = """
        local t = {}
        for i = 1, 5 do t[#t + 1] = math.random() end
        for i = 1, 5 do t[#t + 1] = math.random(10) end
        for i = 1, 5 do t[#t + 1] = math.random(-3, 3) end
        t[#t + 1] = math.random(0)
        return t
        """

    @Test func sameSeedSameSequence() throws {
        let a = try makeRuntime(seed: 42).run(string: script, chunkName: "r.lua")
        let b = try makeRuntime(seed: 42).run(string: script, chunkName: "r.lua")
        let c = try makeRuntime(seed: 43).run(string: script, chunkName: "r.lua")
        #expect(a == b)
        #expect(a != c)
        let t = try #require(a[0].tableValue)
        for v in t.array[0..<5] { #expect((0..<1).contains(v.doubleValue ?? -1)) }
        for v in t.array[5..<10] { #expect((1...10).contains(v.integerValue ?? -1)) }
        for v in t.array[10..<15] { #expect((-3...3).contains(v.integerValue ?? -99)) }
        #expect(t.array[15].integerValue != nil)
        // The first draw equals the documented stream's.
        var stream = RandomStream(seed: 42, path: [LuaRuntime.randomStreamTag])
        #expect(t.array[0] == .number(stream.nextDouble()))
    }

    @Test func randomseedIsDeterministic() throws {
        let lua = try makeRuntime(seed: 5)
        let r = try lua.run(string: """
            math.randomseed(7); local a, b = math.random(1000), math.random()
            math.randomseed(7); local c, d = math.random(1000), math.random()
            math.randomseed(); local e = math.random()
            return a == c and b == d, e
            """, chunkName: "s.lua")
        #expect(r[0] == true)
        var stream = RandomStream(seed: 5, path: [LuaRuntime.randomStreamTag])
        #expect(r[1] == .number(stream.nextDouble()))
    }

    @Test func rangeErrors() throws {
        let lua = try makeRuntime()
        #expect(failure(lua, "return math.random(3, 1)")?.message == "script.lua:1: bad argument #2 to 'random' (interval is empty)")
        #expect(failure(lua, "return math.random(-1)")?.message == "script.lua:1: bad argument #1 to 'random' (interval is empty)")
        #expect(failure(lua, "return math.random(1.5)")?.message.contains("number has no integer representation") == true)
        #expect(failure(lua, "return math.random(1, 2, 3)")?.message == "script.lua:1: wrong number of arguments")
        #expect(try lua.run(string: "return math.random(5, 5), math.random(math.mininteger, math.maxinteger) ~= nil",
                            chunkName: "e.lua") == [5, true])
    }
}
