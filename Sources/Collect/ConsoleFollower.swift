import Foundation
import Support

/// Reads a console log that QEMU is still writing, in bounded chunks.
///
/// The guest decides how much it prints, so the follower never holds more
/// than one chunk and reports how much it has seen; the harness stops a guest
/// whose console passes its limit.
public final class ConsoleFollower {
    public let path: String
    public private(set) var bytesRead: Int = 0
    private var handle: FileHandle?
    private let chunkSize: Int

    public init(path: String, chunkSize: Int = 1 << 20) {
        self.path = path
        self.chunkSize = chunkSize
    }

    deinit { try? handle?.close() }

    /// New bytes since the last call, at most one chunk; empty when none.
    public func read() -> Data {
        if handle == nil {
            handle = FileHandle(forReadingAtPath: path)
            guard handle != nil else { return Data() }
        }
        guard let handle else { return Data() }
        let data = (try? handle.read(upToCount: chunkSize)) ?? Data()
        bytesRead += data.count
        return data
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
