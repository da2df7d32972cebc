import Foundation

/// SIGINT and SIGTERM during `toymoe run`: say what is kept and how to continue, then exit with the conventional
/// status (128 + signal: 130, 143).
///
/// Every result file is written atomically (temporary file, then rename), so exiting at any instant leaves each
/// named file complete or absent; a temporary leftover is removed by the next `--resume`. Hence the handler can
/// end the process at once with `_exit`, without waiting for the workers. It only calls async-signal-safe
/// functions (`write`, `_exit`) on a message prepared before the signal.
enum Interruption {
    // Plain pointers, not a dictionary: reading them in the handler retains nothing and allocates nothing.
    nonisolated(unsafe) private static var interruptMessage: UnsafeMutableBufferPointer<UInt8>?
    nonisolated(unsafe) private static var terminateMessage: UnsafeMutableBufferPointer<UInt8>?

    static func install(out: String, advice: String) {
        for (sig, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            let text = "\ntoymoe: interrupted by \(name); every finished file in \(out) is complete (a sweep's finished cells are kept): \(advice)\n"
            let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: text.utf8.count)
            _ = buffer.initialize(from: text.utf8)
            if sig == SIGINT { interruptMessage = buffer } else { terminateMessage = buffer }
        }
        // The messages are in place before any handler can run; handlers only read them. A signal this process
        // was started with ignored stays ignored (a shell's background job ignores SIGINT; so does nohup'd work).
        for sig in [SIGINT, SIGTERM] {
            let previous = signal(sig, handler)
            if unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { signal(sig, SIG_IGN) }
        }
    }

    private static let handler: @convention(c) (Int32) -> Void = { sig in
        if let m = sig == SIGINT ? Interruption.interruptMessage : Interruption.terminateMessage {
            _ = write(2, m.baseAddress, m.count)
        }
        _exit(128 + sig)
    }
}
