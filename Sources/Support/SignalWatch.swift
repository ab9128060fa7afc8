import Foundation

/// Counts per signal number, written by the handler (async-signal-safe:
/// one word each, allocated once, never freed).
private let signalCounts: UnsafeMutablePointer<Int> = {
    let counts = UnsafeMutablePointer<Int>.allocate(capacity: 65)
    counts.initialize(repeating: 0, count: 65)
    return counts
}()

private func countSignal(_ signal: Int32) {
    if signal > 0, signal < 65 { signalCounts[Int(signal)] &+= 1 }
}

/// Catches SIGINT/SIGTERM while a guest runs so the run can destroy its
/// domain and record "interrupted" instead of dying with the guest alive.
///
/// A plain handler counts the signals and each watch compares the counts
/// with those at its start. (A dispatch signal source with SIG_IGN lost
/// signals here: libdispatch blocks the signal only in its own thread, so
/// the kernel hands it to a Swift concurrency thread, where SIG_IGN drops it.)
///
/// Watches nest: a matrix running several cells holds one for the whole
/// matrix and each cell's run holds its own, so the default disposition
/// comes back only when the last watch of a signal stops.
public final class SignalWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private let watched: [Int32]
    private let baseline: [Int]

    private static let countLock = NSLock()
    nonisolated(unsafe) private static var watchers: [Int32: Int] = [:]

    public init(signals: [Int32]) {
        watched = signals
        Self.countLock.lock()
        for sig in signals {
            Self.watchers[sig, default: 0] += 1
            if Self.watchers[sig] == 1 { signal(sig, countSignal) }
        }
        Self.countLock.unlock()
        baseline = signals.map { signalCounts[Int($0)] }
    }

    /// The first watched signal seen since this watch started, if any.
    public var received: Int32? {
        for (sig, before) in zip(watched, baseline) where signalCounts[Int(sig)] != before { return sig }
        return nil
    }

    /// Stops watching (once; later calls do nothing).
    public func stop() {
        lock.lock()
        let already = stopped
        stopped = true
        lock.unlock()
        guard !already else { return }
        Self.countLock.lock()
        for sig in watched {
            Self.watchers[sig, default: 1] -= 1
            if Self.watchers[sig] == 0 { signal(sig, SIG_DFL) }
        }
        Self.countLock.unlock()
    }

    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }
}
