import Foundation

/// Catches SIGINT/SIGTERM while a guest runs so the run can destroy its
/// domain and record "interrupted" instead of dying with the guest alive.
final class SignalWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Int32?
    private var sources: [DispatchSourceSignal] = []
    private let watched: [Int32]

    init(signals: [Int32]) {
        watched = signals
        for sig in signals {
            signal(sig, SIG_IGN)
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

    var received: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return first
    }

    func stop() {
        for source in sources { source.cancel() }
        sources.removeAll()
        for sig in watched { signal(sig, SIG_DFL) }
    }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }
}
