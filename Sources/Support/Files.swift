import Crypto
import Foundation

public enum Files {
    /// Writes through a temporary file and a rename, so a reader (or a
    /// harness killed mid-write) never sees half a file.
    ///
    /// A write that fails (a full disk, a directory removed under the run)
    /// removes its temporary file and throws an infrastructure error naming
    /// `path` and the system's reason ("No space left on device"): the file
    /// keeps its old content, nothing half-written is left beside it.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        // Unique per call, not just per process: a matrix runs cells in
        // parallel threads that may write the same cache file at once, and a
        // shared temporary name let one thread rename the other's file away.
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))").path
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw HarnessError.infrastructure(path, HarnessError.text(errno: errno))
        }
        do {
            try writeAll(data, to: fd, path: path)
            // close reports what the filesystem only found out late (NFS, quotas).
            guard close(fd) == 0 else {
                throw HarnessError.infrastructure(path, HarnessError.text(errno: errno))
            }
        } catch {
            _ = close(fd)  // EBADF when closed above: harmless
            unlink(tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let err = HarnessError.text(errno: errno)
            unlink(tmp)
            throw HarnessError.infrastructure(path, "cannot rename into place: \(err)")
        }
    }

    /// Writes all of `data` to `fd`, retrying short writes and EINTR; a failure
    /// is an infrastructure error naming `path` (what the user knows the file as)
    /// and the errno's text.
    public static func writeAll(_ data: Data, to fd: Int32, path: String) throws {
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw HarnessError.infrastructure(path, HarnessError.text(errno: errno))
                }
                offset += written
            }
        }
    }

    /// Removes what a harness killed outright (SIGKILL, a power cut) left in
    /// `directory`: entries named `<prefix><pid>-…` or `<prefix><key>-<pid>…`
    /// whose process is gone. `pidField` is the index of the pid among the
    /// `-`-separated fields after the prefix. An entry of a live process (or of
    /// one whose pid was reused: then it stays until the next start) is kept.
    /// Returns the paths removed.
    @discardableResult
    public static func reclaimStale(in directory: String, prefix: String, pidField: Int) -> [String] {
        var removed: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
            let fields = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard fields.count > pidField,
                  let pid = Int32(fields[pidField].prefix(while: \.isNumber)), pid > 0, pid != getpid(),
                  !processExists(pid) else { continue }
            let path = directory + "/" + name
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }

    /// A process with this pid exists (ours or another user's).
    public static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    public static func writeAtomically(_ text: String, to path: String) throws {
        try writeAtomically(Data(text.utf8), to: path)
    }

    public static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
    }

    /// Creates `path` and its parents; a failure names the path and the reason,
    /// as an infrastructure error.
    public static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw HarnessError(error).naming(path)
        }
    }

    public static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

public enum Digest {
    public static func sha256(_ data: some DataProtocol) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    public static func sha256(_ text: String) -> String { sha256(Data(text.utf8)) }

    /// Streams the file, so hashing a 60 MB kernel image does not load it whole.
    public static func sha256(file path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw HarnessError.badInput(path, "cannot open for reading")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
