import ToyMoEKernels
import ToyMoEKernelsAVX2
import ToyMoEKernelsAVX512
import ToyMoEKernelsSIMD

/// The functions of one kernel variant, with `MoEKernels`' signatures (positional, so a set is a table of function
/// values). The trainer and the benchmark call kernels only through a set, so the variant is chosen once, when the
/// set is made, and no per-call switch or CPU check remains in the hot path.
///
/// Sampling, the loss and the load-balancing statistics are the scalar kernels in every set: they are a small part
/// of a step at the shapes where SIMD pays (BENCHMARKS.md), and sharing them keeps the data stream and the reported
/// losses identical across variants.
public struct KernelSet {
    public typealias Sample = (
        UnsafeMutablePointer<Float>, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, inout RandomStream
    ) -> Void
    public typealias Forward = (UnsafePointer<Float>, MoELayout, Int, TieBreak, MoEActivations) -> Void
    public typealias Loss = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, Double) -> Double
    public typealias LoadBalancing = (MoELayout, Int, Float, MoEActivations) -> Double
    public typealias Backward = (
        UnsafePointer<Float>, UnsafeMutablePointer<Float>, MoELayout, Int, UnsafePointer<Float>, Float, Float?,
        MoEActivations
    ) -> Void
    public typealias AdamW = (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
        Int, Int, Double, Double, Double, Double, Double
    ) -> Void

    public let variant: KernelVariant
    public let sampleBatch: Sample
    public private(set) var forward: Forward
    public let reconstructionLoss: Loss
    public let loadBalancing: LoadBalancing
    public private(set) var backward: Backward
    public let adamW: AdamW

    /// For the SIMD variants: the code paths `forward`/`backward` choose between by shape ("tiled" for wide experts,
    /// "narrow" for narrower ones, "per-sample" for n < 8; see `MoEKernelsSIMD.usesTiledPath` and `usesNarrowPath`), each
    /// callable on any shape, so tests and benchmarks can check and time all of them everywhere. Empty for `scalar`.
    public let paths: [(name: String, forward: Forward, backward: Backward)]

    /// For the SIMD variants: the multiply-add throughput probe of that build (`MoEKernelsSIMD.peakProbe`), so the
    /// benchmark measures the peak of the instruction set that actually runs (FMA with AVX2). nil for `scalar`.
    public let peakProbe: ((Int, Float) -> Float)?

    /// One lockstep training step for a group of up to 8 models (`LockstepKernels.step` of this build; the scalar
    /// set uses the baseline build, since lockstep is SIMD by construction and bitwise identical in every build).
    public let lockstepStep: (LockstepGroup, Double, Float?, LockstepAdamW) -> LockstepLosses

    /// The set of `variant`. A variant this CPU cannot run is replaced by the widest one it can (callers that
    /// must not fall back check `variant.isSupported` first; `KernelVariant.resolve` reports why).
    public init(_ variant: KernelVariant) {
        let v = variant.isSupported ? variant : KernelVariant.bestSIMD
        self.variant = v
        sampleBatch = MoEKernels.sampleBatch
        reconstructionLoss = MoEKernels.reconstructionLoss
        loadBalancing = MoEKernels.loadBalancing
        switch v {
        case .scalar:
            forward = MoEKernels.forward
            backward = MoEKernels.backward
            adamW = MoEKernels.adamW
            paths = []
            peakProbe = nil
            // Lockstep is SIMD by construction; every build gives the scalar Trainer's bits.
            lockstepStep = ToyMoEKernelsSIMD.MoEKernelsSIMD.lockstepStep
        case .simdBaseline: (forward, backward, adamW, paths, peakProbe, lockstepStep) = Self.table(ToyMoEKernelsSIMD.MoEKernelsSIMD.self)
        case .simdAVX2: (forward, backward, adamW, paths, peakProbe, lockstepStep) = Self.table(ToyMoEKernelsAVX2.MoEKernelsSIMD.self)
        case .simdAVX512: (forward, backward, adamW, paths, peakProbe, lockstepStep) = Self.table(ToyMoEKernelsAVX512.MoEKernelsSIMD.self)
        }
    }

    /// The function table of one SIMD build.
    private static func table<K: SIMDKernelBuild>(_ build: K.Type) -> (
        Forward, Backward, AdamW, [(name: String, forward: Forward, backward: Backward)], (Int, Float) -> Float,
        (LockstepGroup, Double, Float?, LockstepAdamW) -> LockstepLosses
    ) {
        (
            K.forward, K.backward, K.adamW,
            [("per-sample", K.forwardPerSample, K.backwardPerSample), ("tiled", K.forwardTiled, K.backwardTiled),
             ("narrow", K.forwardNarrow, K.backwardNarrow)],
            K.peakProbe, K.lockstepStep
        )
    }

    /// This set with another forward/backward pair (e.g. one of `paths`), for twin tests and benchmarks.
    public func with(forward: @escaping Forward, backward: @escaping Backward) -> KernelSet {
        var copy = self
        copy.forward = forward
        copy.backward = backward
        return copy
    }
}
