import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` (the package's git commit and whether its tree was dirty) before every build of the
/// target that uses it, through `build_info.sh`. The script rewrites the file only when its content changes, so an
/// unchanged tree recompiles nothing; it says "unknown" when the package directory is not itself the top of a git
/// work tree (a tarball, or a copy inside someone else's repository) or git is missing.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let work = context.pluginWorkDirectoryURL
        let generated = work.appendingPathComponent("generated", isDirectory: true)
        let script = context.package.directoryURL.appendingPathComponent("Plugins/BuildInfoPlugin/build_info.sh")
        return [
            .prebuildCommand(
                displayName: "Recording the build's git commit",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, context.package.directoryURL.path, generated.path, work.path],
                outputFilesDirectory: generated)
        ]
    }
}
