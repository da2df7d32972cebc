// Random numbers for ToyMoE.
//
// One 64-bit seed determines every draw. Independent streams (one per model, per purpose) are derived by hashing
// (seed, path...) with SplitMix64, so a model's stream never depends on how many threads ran or in which order.
// The generator is xoshiro256++ (Blackman & Vigna): small state, fast, and good enough for Monte-Carlo data.

/// SplitMix64 finalizer: a bijective 64-bit mixer used to derive stream states from (seed, path).
@inline(__always)
public func splitMix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A seedable xoshiro256++ generator.
///
/// - Derivation: `RandomStream(seed: s, path: [a, b, ...])` hashes the seed and the path words one after the other,
///   so `(s, [model, purpose])` names an independent stream. Two streams with different paths share no state.
/// - Floats: `nextFloat()` is uniform on [0, 1) with 24 random bits (every value a multiple of 2⁻²⁴, like
///   `torch.rand` in float32); `nextDouble()` has 53 bits.
/// - Conforms to `RandomNumberGenerator`, so `Array.shuffled(using:)` works with it.
public struct RandomStream: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64
    @usableFromInline var s1: UInt64
    @usableFromInline var s2: UInt64
    @usableFromInline var s3: UInt64

    /// Creates the stream named by `seed` and `path`.
    public init(seed: UInt64, path: [UInt64] = []) {
        var h = splitMix64(seed ^ 0x5449_4F4D_4F45_0001)  // "TOYMOE" domain tag, so seed 0 is not special
        for (depth, word) in path.enumerated() {
            h = splitMix64(h ^ splitMix64(word &+ UInt64(depth + 1) &* 0xD1B5_4A32_D192_ED03))
        }
        s0 = splitMix64(h)
        s1 = splitMix64(s0 ^ 0x1)
        s2 = splitMix64(s1 ^ 0x2)
        s3 = splitMix64(s2 ^ 0x3)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }  // the all-zero state is the one fixed point of xoshiro
    }

    /// The xoshiro256++ state words (s0, s1, s2, s3). For kernels that run many streams side by side, one per SIMD
    /// lane (Lockstep.swift): they load a stream's state, advance it exactly as `next()` does, and store it back.
    public var state: (UInt64, UInt64, UInt64, UInt64) {
        get { (s0, s1, s2, s3) }
        set { (s0, s1, s2, s3) = newValue }
    }

    /// Derives a child stream: `child([a])` of the stream named (seed, p) is independent of the parent's future draws.
    public mutating func split(_ word: UInt64) -> RandomStream {
        let key = next()
        return RandomStream(seed: key, path: [word])
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(s0 &+ s3, 23) &+ s0
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always)
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    /// Uniform on [0, 1) with 24 bits.
    @inline(__always)
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Two independent uniforms on [0, 1), 24 bits each, from one 64-bit draw (the data generator needs two per
    /// feature per sample, and this halves its cost).
    @inline(__always)
    public mutating func nextFloatPair() -> (Float, Float) {
        let w = next()
        return (Float(w >> 40) * 0x1p-24, Float((w >> 16) & 0xFF_FFFF) * 0x1p-24)
    }

    /// Uniform on [0, 1) with 53 bits.
    @inline(__always)
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Standard normal N(0, 1) by the Box–Muller transform (one of the pair is used, so the draw count per
    /// normal is fixed at two: simpler reasoning about reproducibility than caching the spare).
    public mutating func nextGaussian() -> Double {
        let u1 = 1.0 - nextDouble()  // (0, 1]: log is finite
        let u2 = nextDouble()
        return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
    }

    /// Uniform integer in 0..<bound (bound > 0), unbiased (Lemire's method via the standard library).
    public mutating func nextInt(below bound: Int) -> Int {
        Int.random(in: 0..<bound, using: &self)
    }
}

// Elementary functions without Foundation: the kernels module stays dependency-free.
#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@inline(__always) func _expf(_ x: Float) -> Float { Glibc.expf(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
func _environment(_ name: String) -> String? { Glibc.getenv(name).map { String(cString: $0) } }
#elseif canImport(Musl)
import Musl
@inline(__always) func _log(_ x: Double) -> Double { Musl.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Musl.cos(x) }
@inline(__always) func _expf(_ x: Float) -> Float { Musl.expf(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Musl.pow(x, y) }
func _environment(_ name: String) -> String? { Musl.getenv(name).map { String(cString: $0) } }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
@inline(__always) func _expf(_ x: Float) -> Float { Darwin.expf(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { Darwin.pow(x, y) }
func _environment(_ name: String) -> String? { Darwin.getenv(name).map { String(cString: $0) } }
#endif
