import Foundation

/// Catches SIGINT/SIGTERM while a guest runs so the run can destroy its
/// domain and record "interrupted" instead of dying with the guest alive.
///
/// Watches nest: a matrix running several cells holds one for the whole
/// matrix and each cell's run holds its own, so the default disposition
/// comes back only when the last watch of a signal stops (otherwise the
/// first cell to finish would leave the others killable by Ctrl-C).
public final class SignalWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Int32?
    private var sources: [DispatchSourceSignal] = []
    private let watched: [Int32]

    private static let countLock = NSLock()
    nonisolated(unsafe) private static var watchers: [Int32: Int] = [:]

    public init(signals: [Int32]) {
        watched = signals
        for sig in signals {
            Self.countLock.lock()
            Self.watchers[sig, default: 0] += 1
            signal(sig, SIG_IGN)
            Self.countLock.unlock()
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                if self.first == nil { self.first = sig }
                self.lock.unlock()
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal seen, if any.
    public var received: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return first
    }

    /// Stops watching (once; later calls do nothing).
    public func stop() {
        lock.lock()
        let stopping = sources
        sources.removeAll()
        lock.unlock()
        guard !stopping.isEmpty else { return }
        for source in stopping { source.cancel() }
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
