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
    public let forward: Forward
    public let reconstructionLoss: Loss
    public let loadBalancing: LoadBalancing
    public let backward: Backward
    public let adamW: AdamW

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
        case .simdBaseline:
            forward = ToyMoEKernelsSIMD.MoEKernelsSIMD.forward
            backward = ToyMoEKernelsSIMD.MoEKernelsSIMD.backward
            adamW = ToyMoEKernelsSIMD.MoEKernelsSIMD.adamW
        case .simdAVX2:
            forward = ToyMoEKernelsAVX2.MoEKernelsSIMD.forward
            backward = ToyMoEKernelsAVX2.MoEKernelsSIMD.backward
            adamW = ToyMoEKernelsAVX2.MoEKernelsSIMD.adamW
        case .simdAVX512:
            forward = ToyMoEKernelsAVX512.MoEKernelsSIMD.forward
            backward = ToyMoEKernelsAVX512.MoEKernelsSIMD.backward
            adamW = ToyMoEKernelsAVX512.MoEKernelsSIMD.adamW
        }
    }
}
