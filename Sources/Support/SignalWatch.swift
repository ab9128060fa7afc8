import Foundation
import Synchronization

/// Counts per signal number, written by the handler (async-signal-safe:
/// one lock-free atomic word each, allocated once, never freed).
/// `nonisolated(unsafe)`: a pointer is never Sendable, and a signal handler
/// cannot take a lock; the pointer never changes and its words are atomics.
nonisolated(unsafe) private let signalCounts: UnsafeMutablePointer<Atomic<Int>> = {
    let counts = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 65)
    for index in 0..<65 { (counts + index).initialize(to: Atomic(0)) }
    return counts
}()

private func countSignal(_ signal: Int32) {
    if signal > 0, signal < 65 { signalCounts[Int(signal)].wrappingAdd(1, ordering: .relaxed) }
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
public final class SignalWatch: Sendable {
    private let stopped = Mutex(false)
    private let watched: [Int32]
    private let baseline: [Int]

    private static let watchers = Mutex<[Int32: Int]>([:])

    public init(signals: [Int32]) {
        watched = signals
        Self.watchers.withLock { watchers in
            for sig in signals {
                watchers[sig, default: 0] += 1
                if watchers[sig] == 1 { signal(sig, countSignal) }
            }
        }
        baseline = signals.map { signalCounts[Int($0)].load(ordering: .relaxed) }
    }

    /// The first watched signal seen since this watch started, if any.
    public var received: Int32? {
        for (sig, before) in zip(watched, baseline) where signalCounts[Int(sig)].load(ordering: .relaxed) != before { return sig }
        return nil
    }

    /// Stops watching (once; later calls do nothing).
    public func stop() {
        let already = stopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !already else { return }
        Self.watchers.withLock { watchers in
            for sig in watched {
                watchers[sig, default: 1] -= 1
                if watchers[sig] == 0 { signal(sig, SIG_DFL) }
            }
        }
    }

    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }
}
