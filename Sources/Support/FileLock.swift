import Foundation

/// An exclusive `flock` on a file, so two harness processes never share one
/// kernel worktree and object directory, or one bisect, at the same time.
public final class FileLock {
    private var descriptor: Int32
    /// The reason given when another process holds the lock.
    public static let heldElsewhere = "locked by another kharness process"

    /// `wait` false: throw at once when another process holds it.
    public init(path: String, wait: Bool = true) throws {
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw HarnessError.infrastructure(path, "cannot open lock file: \(String(cString: strerror(errno)))")
        }
        if flock(descriptor, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            close(descriptor)
            descriptor = -1
            throw HarnessError.infrastructure(path, Self.heldElsewhere)
        }
    }

    /// Waits for the lock without blocking a thread of Swift's cooperative
    /// pool, which has one thread a core: matrix cells waiting in `flock`
    /// for a kernel work directory would otherwise starve the cell that
    /// holds it (and awaits its make) of a thread to resume on.
    public static func acquire(path: String) async throws -> FileLock {
        while true {
            do {
                return try FileLock(path: path, wait: false)
            } catch let error as HarnessError where error.reason == heldElsewhere {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    public func unlock() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { unlock() }
}
