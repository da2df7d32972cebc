import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` (the package's git commit and whether its tree was dirty) through `build_info.sh`.
///
/// A build command, not a prebuild command: SwiftPM re-runs a prebuild command only when it re-plans the build
/// (measured: editing a source file or committing did not re-run it, so the recorded commit went stale). A build
/// command re-runs whenever one of its declared inputs changes, so the inputs are every file git tracks in the
/// package, every file of the package's targets (an untracked new source file is compiled too), and git's HEAD,
/// index, reflog and refs: an edit, a commit, a checkout or a reset re-runs it. The script rewrites the file only
/// when its content changes, so nothing recompiles when the answer is the same.
/// It says "unknown" when the package directory is not itself the top of a git work tree (a tarball, a copy inside
/// someone else's repository) or git is missing.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let work = context.pluginWorkDirectoryURL
        let generated = work.appendingPathComponent("generated", isDirectory: true)
        let script = root.appendingPathComponent("Plugins/BuildInfoPlugin/build_info.sh")
        var inputs: [URL] = [script, root.appendingPathComponent("Package.swift")]
        for t in context.package.targets {
            if let s = t as? SourceModuleTarget { inputs += s.sourceFiles.map(\.url) }
        }
        if let top = git(root, ["rev-parse", "--show-toplevel"]),
            URL(fileURLWithPath: top).resolvingSymlinksInPath().path == root.resolvingSymlinksInPath().path
        {
            inputs += (git(root, ["ls-files", "-z"]) ?? "").split(separator: "\0").map { root.appendingPathComponent(String($0)) }
            var gitFiles: [URL] = []
            if let dir = git(root, ["rev-parse", "--absolute-git-dir"]) {
                let d = URL(fileURLWithPath: dir)
                gitFiles += ["HEAD", "index", "logs/HEAD"].map { d.appendingPathComponent($0) }
            }
            if let common = git(root, ["rev-parse", "--git-common-dir"]) {
                let c = common.hasPrefix("/") ? URL(fileURLWithPath: common) : root.appendingPathComponent(common)
                gitFiles.append(c.appendingPathComponent("packed-refs"))
                if let ref = git(root, ["symbolic-ref", "-q", "HEAD"]) { gitFiles.append(c.appendingPathComponent(ref)) }
            }
            inputs += gitFiles
        }
        // A missing input (a deleted tracked file, no packed-refs yet) is left out rather than failing the build.
        var seen = Set<String>()
        inputs = inputs.filter { FileManager.default.fileExists(atPath: $0.path) && seen.insert($0.path).inserted }
        return [
            .buildCommand(
                displayName: "Recording the build's git commit",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, root.path, generated.path, work.path],
                inputFiles: inputs,
                outputFiles: [generated.appendingPathComponent("BuildInfo.swift")])
        ]
    }

    /// `git -C dir args...`'s trimmed output, nil when git is missing or fails.
    func git(_ dir: URL, _ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", dir.path] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}
