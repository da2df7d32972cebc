import Foundation
import ToyMoE
import ToyMoEIO

/// What determines a sweep's results besides its declaration (cells, replicates, selection, seed): the script's
/// text, the KEY=VALUE parameters, the tool version and the kernel variant in use. It is recorded in sweep.json; a
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

    public init(script: String, params: [(String, String)], toolVersion: String = ToyMoEVersion.string,
                kernelVariant: String = KernelVariant.current) {
        self.scriptSHA256 = SHA256.hex(Array(script.utf8))
        var last: [String: String] = [:]
        for (k, v) in params { last[k] = v }
        self.params = last.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.toolVersion = toolVersion
        self.kernelVariant = kernelVariant
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
        for key in ["layout_version", "script_sha256", "tool_version", "kernel_variant"] where fa?[key] != fb?[key] {
            out.append("\(key == "script_sha256" ? "script (SHA-256 of its text)" : key): \(show(fa?[key])) vs \(show(fb?[key]))")
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

/// SHA-256 (FIPS 180-4), for the script fingerprint: small, dependency-free, not performance-critical.
enum SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ message: [UInt8]) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var data = message
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        let bits = UInt64(message.count) &* 8
        for i in (0..<8).reversed() { data.append(UInt8(truncatingIfNeeded: bits >> (UInt64(i) * 8))) }
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let j = chunk + 4 * i
                w[i] = UInt32(data[j]) << 24 | UInt32(data[j + 1]) << 16 | UInt32(data[j + 2]) << 8 | UInt32(data[j + 3])
            }
            for i in 16..<64 {
                let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d
            h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }
}
