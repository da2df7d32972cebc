// exp for the router softmax, in three forms that round identically: a scalar `kernelExp(_: Float)` and the lane-wise
// `kernelExp(_: SIMD8<Float>)` and `kernelExp(_: SIMD16<Float>)` (two SIMD8 vectors side by side: the lockstep router
// evaluates two samples' exponents per call, two independent dependency chains in one instruction stream).
//
// Why not libm: `expf` is scalar only, so a kernel that runs one model per SIMD lane (Lockstep.swift) would have to
// leave the vector registers for every router probability, and libm's result is not something a vector code can
// reproduce bit for bit. Every kernel variant therefore calls these functions, and a model trained in lockstep is
// byte-identical to the same model trained alone.
//
// Method (Cody–Waite range reduction + minimax polynomial, no FMA anywhere):
//   clamp x to [-104, 89] (a NaN passes through both comparisons unchanged);
//   n = round-to-nearest-even(x·log₂e), computed by adding and subtracting 1.5·2²³ (no float→int conversion, which
//       would trap on NaN in Swift); n itself is read from the bits of the rounded sum;
//   r = (x − n·C1) − n·C2 with C1 = 0.693359375 (9 significant bits: n·C1 is exact for |n| ≤ 150) and
//       C1 + C2 ≈ ln 2, so |r| ≲ 0.35;
//   e^r ≈ 1 + r + r²·P(r) with P a degree-5 polynomial (the classic Cephes `expf` coefficients);
//   e^x = e^r · 2^⌊n/2⌋ · 2^(n−⌊n/2⌋): two power-of-two factors, each a normal float, so the only rounding of the
//       scaling happens in the last multiply (correct gradual underflow into subnormals, overflow to +inf).
// Accuracy: within 2 ulp of glibc's correctly rounded expf over [-104, 89] (tested; typically ≤ 1 ulp).
// Special values: exp(0) = 1 exactly, exp(x) = 0 for x ≤ -104 (and -inf), +inf for x ≥ 88.73 (and +inf), NaN → NaN.
//
// Both functions are `@inlinable` so a module that imports ToyMoEKernels and is compiled for a wider ISA gets them
// compiled for that ISA too; they are written as the same sequence of IEEE single operations (mul, add, sub,
// compare-select, integer bit moves), so the SIMD lane and the scalar function agree bit for bit.

/// e^x for one Float (see the file comment for method, accuracy and special values).
@inlinable @inline(__always)
public func kernelExp(_ x: Float) -> Float {
    var x = x
    x = x < -104 ? -104 : x
    x = x > 89 ? 89 : x
    let t = x * 1.442_695_04 + 12_582_912  // 1.5·2²³: the sum's unit in the last place is 1
    let fx = t - 12_582_912
    let n = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000  // bits of 1.5·2²³
    var r = x - fx * 0.693_359_375
    r = r - fx * -2.121_944_40e-4
    let z = r * r
    var p: Float = 1.987_569_150_0e-4
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * z + r + 1
    let n1 = n &>> 1
    let n2 = n &- n1
    let s1 = Float(bitPattern: UInt32(truncatingIfNeeded: (n1 &+ 127) &<< 23))
    let s2 = Float(bitPattern: UInt32(truncatingIfNeeded: (n2 &+ 127) &<< 23))
    return y * s1 * s2
}

/// e^x lane by lane: the same operations as `kernelExp(_: Float)` in each lane, so the results are bitwise equal.
@inlinable @inline(__always)
public func kernelExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var x = x
    x = x.replacing(with: -104, where: x .< -104)
    x = x.replacing(with: 89, where: x .> 89)
    let t = x * 1.442_695_04 + 12_582_912
    let fx = t - 12_582_912
    let n = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    var r = x - fx * 0.693_359_375
    r = r - fx * -2.121_944_40e-4
    let z = r * r
    var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * z + r + 1
    let n1 = n &>> 1
    let n2 = n &- n1
    let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD8<Float>.self)
    let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD8<Float>.self)
    return y * s1 * s2
}

/// e^x lane by lane over 16 lanes: the same operations as `kernelExp(_: Float)` in each lane, so the results are
/// bitwise equal (and equal to two `kernelExp(_: SIMD8<Float>)` calls on the halves).
@inlinable @inline(__always)
public func kernelExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    var x = x
    x = x.replacing(with: -104, where: x .< -104)
    x = x.replacing(with: 89, where: x .> 89)
    let t = x * 1.442_695_04 + 12_582_912
    let fx = t - 12_582_912
    let n = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
    var r = x - fx * 0.693_359_375
    r = r - fx * -2.121_944_40e-4
    let z = r * r
    var p = SIMD16<Float>(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * z + r + 1
    let n1 = n &>> 1
    let n2 = n &- n1
    let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD16<Float>.self)
    let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD16<Float>.self)
    return y * s1 * s2
}
