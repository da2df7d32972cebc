// swift-tools-version:6.1
// ToyMoE: toy models of superposition, dense and Mixture-of-Experts, in Swift.
//
// Layers depend one way only:
//   ToyMoEKernels (flat-buffer math, no Foundation)
//     -> ToyMoE (engine: models, data, training, metrics)
//       -> ToyMoEIO (outputs: NPY/NPZ, JSON, provenance; the formats know nothing of the engine, EngineExport maps it)
//     -> ToyMoELua (embedded, sandboxed Lua 5.4: bindings, sweeps; C shim CLuaShim over the system library CLua)
//       -> toymoe (command-line tool)
import PackageDescription

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
        .target(
            name: "ToyMoEKernels",
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        .target(name: "ToyMoE", dependencies: ["ToyMoEKernels"]),
        .target(name: "ToyMoEIO", dependencies: ["ToyMoE"]),
        .systemLibrary(
            name: "CLua", pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"]), .brew(["lua"])]
        ),
        // Lua's macros and variadic functions are not importable into Swift, and a Lua error must never longjmp
        // over a Swift frame: this C shim wraps the macros and raises errors only from C trampolines.
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        // SVG figures and an HTML index, drawn by hand: no plotting library is available offline.
        .target(name: "ToyMoEPlot", dependencies: ["ToyMoEIO"]),
        .target(name: "ToyMoELua", dependencies: ["ToyMoE", "ToyMoEIO", "ToyMoEPlot", "CLuaShim"]),
        .executableTarget(
            name: "toymoe",
            dependencies: [
                "ToyMoE", "ToyMoEIO", "ToyMoELua",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ToyMoETests", dependencies: ["ToyMoE", "ToyMoEKernels"]),
        .testTarget(name: "ToyMoEIOTests", dependencies: ["ToyMoEIO", "ToyMoE"]),
        .testTarget(name: "ToyMoEPlotTests", dependencies: ["ToyMoEPlot"]),
        .testTarget(name: "ToyMoELuaTests", dependencies: ["ToyMoELua", "ToyMoE", "ToyMoEIO"]),
    ]
)
