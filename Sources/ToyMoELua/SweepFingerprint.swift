import Foundation
import ToyMoE
import ToyMoEBuildInfo
import ToyMoEIO

/// What determines a sweep's results besides its declaration (cells, replicates, selection, seed): the script's
/// text, the KEY=VALUE parameters, the tool version, the kernel variant in use and the build's sources (a SHA-256
/// over every compiled file: a kernel change that moves results keeps the tool version and the variant's name). It is recorded in sweep.json; a
/// `--resume` or a `toymoe merge` whose fingerprint differs is refused with the differing fields named, so one
/// directory never holds cells computed two different ways under one claim.
///
/// Deliberately left out, because results do not depend on them: `--jobs` (cells are seeded by their parameters;
/// byte identity is tested), `--quiet`, the spelling of `--out`, `--shard` and the SLURM variables (shards of one
/// run must merge), and the memory, time and instruction limits (a limit stops a run; it never changes a number).
/// The kernel variant is in: the SIMD variants agree with the scalar kernels only to rounding.
public struct SweepFingerprint: Sendable, Equatable {
    /// Bumped when the directory layout or a file format changes (2: per-replicate directories, 0-based failed
    /// steps, tagged non-finite numbers), so a directory written by an older toymoe is not continued silently.
    public static let layoutVersion = 2

    public var scriptSHA256: String
    /// KEY=VALUE parameters as the script sees them (a repeated key keeps its last value), sorted by key.
    public var params: [(String, String)]
    public var toolVersion: String
    public var kernelVariant: String
    /// `ToyMoEBuild.sourcesSHA256` ("unknown" when the build could not compute it).
    public var sourcesSHA256: String

    public init(script: String, params: [(String, String)], toolVersion: String = ToyMoEVersion.string,
                kernelVariant: String = KernelVariant.current, sourcesSHA256: String? = ToyMoEBuild.sourcesSHA256) {
        self.scriptSHA256 = SHA256.hex(Array(script.utf8))
        var last: [String: String] = [:]
        for (k, v) in params { last[k] = v }
        self.params = last.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.toolVersion = toolVersion
        self.kernelVariant = kernelVariant
        self.sourcesSHA256 = sourcesSHA256 ?? "unknown"
    }

    public static func == (a: SweepFingerprint, b: SweepFingerprint) -> Bool {
        a.json == b.json
    }

    /// The `fingerprint` object of sweep.json.
    public var json: JSONValue {
        var p = JSONObject()
        for (k, v) in params { p[k] = .string(v) }
        return .object([
            "layout_version": .int(Self.layoutVersion), "script_sha256": .string(scriptSHA256), "params": .object(p),
            "tool_version": .string(toolVersion), "kernel_variant": .string(kernelVariant),
            "sources_sha256": .string(sourcesSHA256),
        ])
    }

    /// The fields of two sweep.json documents that differ, each as "field: A vs B" (empty when they agree).
    /// Compares the declaration (name, seed, replicates, select, cells) and every fingerprint field.
    public static func differences(_ a: JSONValue, _ b: JSONValue) -> [String] {
        func show(_ v: JSONValue?) -> String {
            guard let v else { return "(absent)" }
            let text = (try? v.serialized(options: JSONWriteOptions(pretty: false, nonFinite: .null))) ?? "?"
            return text.count > 80 ? String(text.prefix(77)) + "..." : text
        }
        var out: [String] = []
        for key in ["name", "seed", "replicates", "select"] where a[key] != b[key] {
            out.append("\(key): \(show(a[key])) vs \(show(b[key]))")
        }
        if a["cells"] != b["cells"] {
            let ca = a["cells"]?.arrayValue ?? [], cb = b["cells"]?.arrayValue ?? []
            if ca.count != cb.count {
                out.append("cells: \(ca.count) vs \(cb.count) cells")
            } else if let i = ca.indices.first(where: { ca[$0] != cb[$0] }) {
                out.append("cells: cell \(i) is \(show(ca[i])) vs \(show(cb[i]))")
            }
        }
        let fa = a["fingerprint"], fb = b["fingerprint"]
        if fa == nil || fb == nil {
            if fa != fb { out.append("fingerprint: \(fa == nil ? "absent (written by an older toymoe)" : "present") vs \(fb == nil ? "absent (written by an older toymoe)" : "present")") }
            return out
        }
        let labels = [
            "script_sha256": "script (SHA-256 of its text)",
            "sources_sha256": "toymoe build (SHA-256 of its compiled sources: another engine may compute other numbers)",
        ]
        for key in ["layout_version", "script_sha256", "tool_version", "kernel_variant", "sources_sha256"]
        where fa?[key] != fb?[key] {
            out.append("\(labels[key] ?? key): \(show(fa?[key])) vs \(show(fb?[key]))")
        }
        // A build that could not hash its sources (no SHA-256 tool, an unreadable file) cannot be told from another
        // such build: two "unknown"s are not evidence of one engine, so they count as a difference too.
        if fa?["sources_sha256"] == fb?["sources_sha256"], fa?["sources_sha256"]?.stringValue == "unknown" {
            out.append("toymoe build: unknown on both sides (the build could not hash its sources), so the two runs' engines cannot be compared")
        }
        if fa?["params"] != fb?["params"] {
            let pa = fa?["params"]?.objectValue ?? JSONObject(), pb = fb?["params"]?.objectValue ?? JSONObject()
            let keys = Array(Set(pa.keys).union(pb.keys)).sorted()
            let changed = keys.filter { pa[$0] != pb[$0] }.map { k in
                "\(k)=\(pa[k]?.stringValue ?? "(unset)") vs \(k)=\(pb[k]?.stringValue ?? "(unset)")"
            }
            out.append("params: " + changed.joined(separator: ", "))
        }
        return out
    }
}
