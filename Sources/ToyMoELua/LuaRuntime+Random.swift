import ToyMoE

// math.random and math.randomseed on the engine's RandomStream, so a script's draws depend only on the run seed.
// Semantics follow Lua 5.4 (manual §6.7):
//   math.random()      float in [0, 1) (53 random bits)
//   math.random(0)     an integer with all 64 bits random
//   math.random(m)     integer in [1, m]; m < 1 is an error ("interval is empty")
//   math.random(m, n)  integer in [m, n]; m > n is an error
//   math.randomseed(x [, y])  restarts the generator at RandomStream(seed: x, path: [tag, y]), so a given x gives
//                      the same sequence in every run; math.randomseed() (which seeds randomly in Lua 5.4) restarts
//                      the run-seeded stream instead, keeping runs reproducible.
// Integers in a range are drawn without bias by rejection: mask the draw to the range's bit width, retry if above.

extension LuaRuntime {
    func installRandom() throws(LuaError) {
        try register(module: "math", functions: [
            "random": { args in try args.runtime.mathRandom(args) },
            "randomseed": { args in try args.runtime.mathRandomSeed(args) },
        ])
    }

    private func luaInteger(_ args: LuaArgs, _ i: Int, _ function: String) throws(LuaCallError) -> Int64 {
        let value = try args.value(i)
        switch value {
        case .integer(let v): return v
        case .number:
            guard let v = value.integerValue else {
                throw .verbatim("bad argument #\(i) to '\(function)' (number has no integer representation)")
            }
            return v
        default:
            throw .verbatim("bad argument #\(i) to '\(function)' (number expected, got \(args.type(i).name))")
        }
    }

    func mathRandom(_ args: LuaArgs) throws(LuaCallError) -> [LuaValue] {
        let low: Int64
        let high: Int64
        switch args.count {
        case 0:
            return [.number(random.nextDouble())]
        case 1:
            low = 1
            high = try luaInteger(args, 1, "random")
            if high == 0 { return [.integer(Int64(bitPattern: random.next()))] }
        case 2:
            low = try luaInteger(args, 1, "random")
            high = try luaInteger(args, 2, "random")
        default:
            throw .verbatim("wrong number of arguments")
        }
        guard low <= high else { throw .verbatim("bad argument #\(args.count) to 'random' (interval is empty)") }
        let span = UInt64(bitPattern: high &- low)  // the range has span + 1 values
        return [.integer(low &+ Int64(bitPattern: draw(upTo: span)))]
    }

    /// Uniform in 0...span.
    private func draw(upTo span: UInt64) -> UInt64 {
        if span == .max { return random.next() }
        var mask = span
        mask |= mask >> 1
        mask |= mask >> 2
        mask |= mask >> 4
        mask |= mask >> 8
        mask |= mask >> 16
        mask |= mask >> 32
        while true {
            let r = random.next() & mask
            if r <= span { return r }
        }
    }

    func mathRandomSeed(_ args: LuaArgs) throws(LuaCallError) -> [LuaValue] {
        if args.count == 0 {
            random = RandomStream(seed: options.seed, path: [LuaRuntime.randomStreamTag])
            return []
        }
        func word(_ i: Int) throws(LuaCallError) -> UInt64 {
            switch try args.value(i) {
            case .integer(let v): return UInt64(bitPattern: v)
            case .number(let d): return d.bitPattern
            default: throw .verbatim("bad argument #\(i) to 'randomseed' (number expected, got \(args.type(i).name))")
            }
        }
        let x = try word(1)
        let y = args.count >= 2 ? try word(2) : 0
        random = RandomStream(seed: x, path: [LuaRuntime.randomStreamTag, y])
        return []
    }
}
