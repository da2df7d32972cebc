import Foundation

/// An exclusive lock on an output directory, held while `toymoe run` or `toymoe merge` writes into it, so two
/// processes never run the same cells twice or interleave their files.
///
/// It is a `flock(2)` lock on `OUT/.toymoe.lock`: the kernel releases it when the holder exits in any way,
/// `kill -9` included, so a crash never blocks the next `--resume`. The file's content (pid, host, start time and
/// command of the holder) is only information for the refusal message, emptied on a clean release; the lock is the
/// flock, not the file's existence, and the file is left in place after use (removing it would race with a process
/// about to lock it).
///
/// Scope: one output directory. The SLURM array gives every task its own directory (`OUT/shards/task-N`) and merges
/// afterwards, so tasks never contend; two shards pointed at one `--out` by hand are refused, which is the safe side.
public final class OutputLock {
    public static let fileName = ".toymoe.lock"
    private let fd: Int32

    /// Takes the lock on `directory` (which must exist) without waiting.
    /// - Throws: `SweepError` naming the holder when another process holds it, or the OS reason when the lock file
    ///   cannot be opened.
    public init(directory: URL, commandLine: [String]) throws {
        let path = directory.appendingPathComponent(Self.fileName).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw SweepError("cannot open the lock file \(path): \(String(cString: strerror(code))) (errno \(code))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            var holder = ""
            if code == EWOULDBLOCK {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = pread(fd, &buffer, buffer.count, 0)
                holder = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            }
            if code == ENOLCK || code == EOPNOTSUPP || code == ENOSYS {
                // A file system without locks (some NFS set-ups): running unlocked beats not running at all, but
                // the user must know that two runs into this directory are no longer kept apart.
                FileHandle.standardError.write(Data(
                    "toymoe: warning: cannot lock \(path) (\(String(cString: strerror(code))), errno \(code)): this file system has no locks; make sure no other toymoe process writes into \(directory.path) at the same time\n".utf8))
                self.fd = fd
                return
            }
            close(fd)
            if code == EWOULDBLOCK {
                throw SweepError(
                    "\(directory.path) is in use by another toymoe process (\(holder.isEmpty ? "holder unknown" : holder)); wait for it to finish, or use another --out")
            }
            throw SweepError("cannot lock \(path): \(String(cString: strerror(code))) (errno \(code))")
        }
        self.fd = fd
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let started = ISO8601DateFormatter().string(from: Date())
        let text = "pid \(getpid()) on \(String(cString: host)), started \(started), command: \(commandLine.joined(separator: " "))\n"
        // Rewritten in place; a reader racing with this sees a partial line at worst (information only).
        _ = ftruncate(fd, 0)
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        // Emptied while still held: a lock file with content names a holder that did not exit cleanly (or one
        // running now), and directories of cleanly finished runs hold identical (empty) lock files.
        _ = ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
    }
}
