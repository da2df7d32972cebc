// The engine re-exports the kernels' public vocabulary (RandomStream, MoELayout, TieBreak), so a Swift user needs
// only `import ToyMoE`.
@_exported import ToyMoEKernels
