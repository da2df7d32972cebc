import Foundation
import Testing
import ToyMoEIO
@testable import ToyMoELua

/// Every script under scripts/examples runs (at a reduced step count) and produces what it promises.
@Suite struct ExamplesTests {
    /// The repository root, found from this source file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func runExample(_ name: String, params: [(String, String)] = [("steps", "300")], jobs: Int = 1) throws -> ScriptTestResult {
        let source = try String(contentsOf: Self.root.appendingPathComponent("scripts/examples/\(name)"), encoding: .utf8)
        return try ScriptTestResult.run(source, params: params, seed: 1, jobs: jobs)
    }

    @Test("examples/dense.lua: trains, saves the model, returns its geometry")
    func dense() throws {
        let r = try runExample("dense.lua", params: [("steps", "2000")])
        #expect(r.stdout.contains("features represented in 6 dimensions"))
        #expect((r.result["features_represented"]?.intValue ?? 0) >= 7)
        #expect(FileManager.default.fileExists(atPath: r.directory.appendingPathComponent("model.npz").path))
    }

    @Test("examples/moe.lua, custom_init.lua, hook.lua run")
    func others() throws {
        let moe = try runExample("moe.lua")
        #expect(moe.stdout.contains("expert 2: represents") && !moe.stdout.contains("expert 3"))  // printed 0-based
        let custom = try runExample("custom_init.lua")
        #expect(custom.stdout.contains("gate of expert 0:\t1.0 1.0 1.0 1.0 0.0 0.0 0.0 0.0") || custom.stdout.contains("gate of expert 0:\t1 1 1 1 0 0 0 0"), "\(custom.stdout)")
        let hook = try runExample("hook.lua")
        #expect(hook.stdout.contains("step     0  loss"))  // the hook's step 1, printed 0-based
        #expect(hook.stdout.contains("stopped early:"))
    }

    @Test("examples/sweep.lua: a complete 3×3 sweep with a summary")
    func sweep() throws {
        let r = try runExample("sweep.lua", params: [("steps", "200")], jobs: 2)
        let csv = try String(contentsOf: r.directory.appendingPathComponent("summary.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 10)
        #expect(csv.hasPrefix("cell_id,replicate,S,r,final_loss,norm_last,phase,seed"))
    }
}
