// swift-tools-version:6.1
// ToyMoE: toy models of superposition, dense and Mixture-of-Experts, in Swift.
//
// Layers depend one way only:
//   CToyMoECPU (CPU feature checks) -> ToyMoEKernels (flat-buffer math, no Foundation)
//     -> ToyMoEKernelsSIMD / ToyMoEKernelsAVX2 / ToyMoEKernelsAVX512 (one SIMD source, three ISAs)
//     -> ToyMoE (engine: models, data, training, metrics)
//       -> ToyMoEIO (outputs: NPY/NPZ, JSON, provenance; the formats know nothing of the engine, EngineExport maps it)
//     -> ToyMoELua (embedded, sandboxed Lua 5.4: bindings, sweeps; C shim CLuaShim over the system library CLua)
//       -> toymoe (command-line tool)
import PackageDescription

// The SIMD kernels are one source file compiled three times (the AVX2 and AVX-512 folders hold symlinks to it):
// for the baseline ISA, for x86-64-v3 (AVX2 + FMA) and for x86-64-v4 (AVX-512). Each copy is its own module so that
// wide instructions never leak into code that runs before the CPU check (measured: a binary whose main module is
// built for v3/v4 dies with SIGILL on an older CPU before any check runs). `CToyMoECPU`, built without ISA flags,
// tells at run time which copies this CPU may call. `-Xcc -march=…` also sets Swift's own code generation.
// SwiftPM has no per-architecture flag condition, so the ISA flags are chosen here by the host's architecture
// (the architecture SwiftPM builds for natively); on other machines the three copies are all baseline.
let kernelOptimization: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]
#if arch(x86_64)
let avx2Flags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v3"]), .define("TOYMOE_FMA")]
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v4"]), .define("TOYMOE_FMA"), .define("TOYMOE_AVX512")]
#else
let avx2Flags: [SwiftSetting] = []
let avx512Flags: [SwiftSetting] = []
#endif

let package = Package(
    name: "ToyMoE",
    products: [
        .library(name: "ToyMoE", targets: ["ToyMoE"]),
        .library(name: "ToyMoEIO", targets: ["ToyMoEIO"]),
        .executable(name: "toymoe", targets: ["toymoe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The kernels are compiled with optimization even in debug builds: they are the whole cost of training,
        // and `swift test` (debug) then runs the reduced-scale paper experiments in seconds instead of minutes.
        .target(name: "CToyMoECPU"),
        .target(name: "ToyMoEKernels", dependencies: ["CToyMoECPU"], swiftSettings: kernelOptimization),
        .target(name: "ToyMoEKernelsSIMD", dependencies: ["ToyMoEKernels"], swiftSettings: kernelOptimization),
        .target(
            name: "ToyMoEKernelsAVX2", dependencies: ["ToyMoEKernels"], swiftSettings: kernelOptimization + avx2Flags),
        .target(
            name: "ToyMoEKernelsAVX512", dependencies: ["ToyMoEKernels"],
            swiftSettings: kernelOptimization + avx512Flags),
        .target(
            name: "ToyMoE",
            dependencies: ["ToyMoEKernels", "ToyMoEKernelsSIMD", "ToyMoEKernelsAVX2", "ToyMoEKernelsAVX512"]),
        // The git commit this build comes from (and whether the tree was dirty), written at build time by a plugin.
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .target(name: "ToyMoEBuildInfo", plugins: ["BuildInfoPlugin"]),
        .target(name: "ToyMoEIO", dependencies: ["ToyMoE", "ToyMoEBuildInfo"]),
        .systemLibrary(
            name: "CLua", pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"]), .brew(["lua"])]
        ),
        // Lua's macros and variadic functions are not importable into Swift, and a Lua error must never longjmp
        // over a Swift frame: this C shim wraps the macros and raises errors only from C trampolines.
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        // SVG figures and an HTML index, drawn by hand: no plotting library is available offline.
        .target(name: "ToyMoEPlot", dependencies: ["ToyMoEIO"]),
        .target(name: "ToyMoELua", dependencies: ["ToyMoE", "ToyMoEIO", "ToyMoEPlot", "CLuaShim", "ToyMoEBuildInfo"]),
        .executableTarget(
            name: "toymoe",
            dependencies: [
                "ToyMoE", "ToyMoEIO", "ToyMoELua", "ToyMoEBuildInfo", "ToyMoEPlot",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "ToyMoETests",
            dependencies: ["ToyMoE", "ToyMoEKernels", "ToyMoEKernelsSIMD", "ToyMoEKernelsAVX2", "ToyMoEKernelsAVX512"]),
        .testTarget(name: "ToyMoEIOTests", dependencies: ["ToyMoEIO", "ToyMoE", "ToyMoEBuildInfo"]),
        .testTarget(name: "ToyMoEPlotTests", dependencies: ["ToyMoEPlot"]),
        .testTarget(name: "ToyMoELuaTests", dependencies: ["ToyMoELua", "ToyMoE", "ToyMoEIO"]),
    ]
)
