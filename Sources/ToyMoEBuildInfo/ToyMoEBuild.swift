// The commit this build of ToyMoE was compiled from, recorded at build time by Plugins/BuildInfoPlugin (which
// regenerates `GeneratedBuildInfo` whenever a tracked file, a target's source or git's HEAD/index/refs change). Kept in its own small module, behind non-inlinable accessors,
// so that a new commit or a tree turning dirty recompiles only this module and relinks.

/// Facts about the build of ToyMoE that is running.
public enum ToyMoEBuild {
    /// The full git commit hash of the source tree at build time, or nil when unknown (built from a tarball or a
    /// copy that is not the top of a git work tree, or git was missing).
    public static var commit: String? {
        let value = GeneratedBuildInfo.commit
        return value == "unknown" ? nil : value
    }

    /// Whether the source tree differed from `commit` at build time (a tracked file modified, staged or deleted, or
    /// an untracked file under Sources/, Tests/ or Plugins/); nil when unknown.
    public static var dirty: Bool? { commit == nil ? nil : GeneratedBuildInfo.dirty }

    /// SHA-256 (hex) over every compiled source file (Sources/, with their paths) and Package.swift at build time,
    /// or nil when it could not be computed. Unlike `commit` it also tells apart two dirty builds of one commit: two
    /// binaries with the same value were built from the same engine, bindings and compiler flags.
    public static var sourcesSHA256: String? {
        let value = GeneratedBuildInfo.sourcesSHA256
        return value == "unknown" ? nil : value
    }

    /// `abc123...` or `abc123... (dirty)` or `unknown`, for `--version` and messages.
    public static var description: String {
        guard let commit else { return "unknown" }
        return commit + (dirty == true ? " (dirty)" : dirty == nil ? " (dirty: unknown)" : "")
    }
}
