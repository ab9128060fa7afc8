import Foundation
import XCTest

@testable import Support

/// A bisect or a matrix makes many runs in one process; each run's watch
/// must see SIGINT/SIGTERM, not only the first one's.
final class SignalWatchTests: XCTestCase {
    func testEveryWatchInAProcessSeesItsSignal() throws {
        for (round, sig) in [SIGINT, SIGTERM, SIGINT, SIGINT].enumerated() {
            let watch = SignalWatch(signals: [SIGINT, SIGTERM])
            XCTAssertNil(watch.received)
            // libdispatch registers the source asynchronously: a signal sent
            // at once may come before it listens, so keep sending.
            let deadline = Date().addingTimeInterval(10)
            while watch.received == nil, Date() < deadline {
                kill(getpid(), sig)
                Thread.sleep(forTimeInterval: 0.05) // a synchronous test: blocking here blocks no task
            }
            XCTAssertEqual(watch.received, sig, "round \(round + 1)")
            watch.stop()
        }
    }
}
