import Crypto
import Foundation

public enum Files {
    /// Writes through a temporary file and a rename, so a reader (or a
    /// harness killed mid-write) never sees half a file.
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        // Unique per call, not just per process: a matrix runs cells in
        // parallel threads that may write the same cache file at once, and a
        // shared temporary name let one thread rename the other's file away.
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try data.write(to: tmp)
        if rename(tmp.path, url.path) != 0 {
            let err = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw HarnessError.infrastructure(path, "cannot rename into place: \(err)")
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

    public static func createDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
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
