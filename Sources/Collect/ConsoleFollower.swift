import Foundation
import Support

/// Reads a console log that QEMU is still writing, in bounded chunks.
///
/// The guest decides how much it prints, so the follower never holds more
/// than one chunk and reports how much it has seen; the harness stops a guest
/// whose console passes its limit.
///
/// libvirt hands file-backed character devices to virtlogd, which rolls the
/// file over at its `max_size` (2 MiB by default): it renames the file to
/// `<path>.0` and starts a new one. The follower reads the old file to its
/// end and goes on with the new one, so `bytesRead` counts everything the
/// guest wrote.
public final class ConsoleFollower {
    public let path: String
    public private(set) var bytesRead: Int = 0
    /// Times the file was rolled over under the follower.
    public private(set) var rollovers = 0
    private var handle: FileHandle?
    private var inode: UInt64 = 0
    private let chunkSize: Int

    public init(path: String, chunkSize: Int = 1 << 20) {
        self.path = path
        self.chunkSize = chunkSize
    }

    deinit { try? handle?.close() }

    /// New bytes since the last call, at most one chunk; empty when none.
    public func read() -> Data {
        if handle == nil {
            guard let opened = FileHandle(forReadingAtPath: path) else { return Data() }
            handle = opened
            inode = Self.inode(of: opened.fileDescriptor) ?? 0
        }
        guard let handle else { return Data() }
        var data = (try? handle.read(upToCount: chunkSize)) ?? Data()
        if data.isEmpty, let current = Self.inode(atPath: path), current != inode {
            // Rolled over. virtlogd's last write to the old file came before
            // the rename this stat saw: read what it added since, then go on
            // with the new file.
            data = (try? handle.read(upToCount: chunkSize)) ?? Data()
            if !data.isEmpty {
                bytesRead += data.count
                return data
            }
            guard let next = FileHandle(forReadingAtPath: path) else { return Data() }
            try? handle.close()
            self.handle = next
            inode = Self.inode(of: next.fileDescriptor) ?? 0
            rollovers += 1
            data = (try? next.read(upToCount: chunkSize)) ?? Data()
        }
        bytesRead += data.count
        return data
    }

    private static func inode(of descriptor: Int32) -> UInt64? {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    private static func inode(atPath path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }
}

/// Splits untrusted console bytes into printable lines for a human watching
/// the terminal: control characters and ANSI escapes removed, invalid UTF-8
/// replaced, long lines cut.
public struct ConsoleLineSplitter {
    public var maxLineLength: Int
    private var pending: [UInt8] = []
    private var truncated = false

    public init(maxLineLength: Int = 512) { self.maxLineLength = maxLineLength }

    public mutating func feed(_ bytes: some Collection<UInt8>) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == 0x0a {
                lines.append(flush())
            } else if pending.count < maxLineLength {
                pending.append(byte)
            } else {
                truncated = true
            }
        }
        return lines
    }

    /// The last line if it had no newline.
    public mutating func finish() -> String? {
        pending.isEmpty ? nil : flush()
    }

    private mutating func flush() -> String {
        let line = Self.printable(pending) + (truncated ? " [...]" : "")
        pending.removeAll(keepingCapacity: true)
        truncated = false
        return line
    }

    /// Drops ANSI CSI sequences and C0 controls, keeps tabs, decodes UTF-8 leniently.
    public static func printable(_ bytes: [UInt8]) -> String {
        var cleaned: [UInt8] = []
        cleaned.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x1b {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "[") {
                    i += 1
                    while i < bytes.count, !(0x40...0x7e).contains(bytes[i]) { i += 1 }
                }
                i += 1
                continue
            }
            if b == 0x09 || b >= 0x20, b != 0x7f { cleaned.append(b) }
            i += 1
        }
        return String(decoding: cleaned, as: UTF8.self)
    }
}
