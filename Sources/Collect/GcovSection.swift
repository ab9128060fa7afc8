import Foundation

/// The gcov counters a coverage kernel's guest sends over the trace port, before
/// the trace's footer (guest/init/workloads/sva.sh, `send_gcov`):
///
///     # kharness gcov-begin
///     # kharness gcov-file path=<path under debugfs gcov/> bytes=<n>
///     <base64 lines>
///     # kharness gcov-end files=<count>
///
/// The guest is untrusted: a path must be relative, end in `.gcda`, have no `.` or
/// `..` component and only the characters of a kernel tree path; each file is at
/// most `maxFileBytes`, all of them `maxTotalBytes`, at most `maxFiles` files; the
/// decoded size must be the size announced. The first thing wrong ends the section
/// with `problem` set and nothing kept, so a half-read archive is never rendered.
/// Lines of the section never reach the trace (`take` says which lines it took).
public struct GcovSection: Sendable {
    public static let begin = "# kharness gcov-begin"
    public static let filePrefix = "# kharness gcov-file "
    public static let end = "# kharness gcov-end"

    public static let maxFiles = 256
    public static let maxFileBytes = 4 << 20
    public static let maxTotalBytes = 32 << 20

    public let maxFiles: Int
    public let maxFileBytes: Int
    public let maxTotalBytes: Int

    public struct File: Sendable, Equatable {
        /// As the guest named it, e.g. `var/cache/.../obj-x/drivers/iommu/iommu-sva.gcda`.
        public var path: String
        public var data: Data
    }

    /// Whole files, once the section ended without a problem.
    public private(set) var files: [File] = []
    /// The guest began a section.
    public private(set) var began = false
    /// The guest ended it (whatever came before).
    public private(set) var ended = false
    /// What was wrong with it, in one line; nothing is kept then.
    public private(set) var problem: String?

    private var inside = false
    private var current: (path: String, bytes: Int, text: [UInt8])?
    private var totalBytes = 0

    public init(maxFiles: Int = GcovSection.maxFiles, maxFileBytes: Int = GcovSection.maxFileBytes,
                maxTotalBytes: Int = GcovSection.maxTotalBytes) {
        self.maxFiles = maxFiles
        self.maxFileBytes = maxFileBytes
        self.maxTotalBytes = maxTotalBytes
    }

    /// Takes `line` when it belongs to a gcov section (its markers included).
    public mutating func take(_ line: String) -> Bool {
        if !inside {
            guard line == Self.begin || line.hasPrefix(Self.begin + " ") else { return false }
            // A second section is nobody's (init sends one): it is swallowed, and spoils the first.
            if began { fail("a second gcov section") }
            began = true
            inside = true
            return true
        }
        if line.hasPrefix(Self.end) {
            inside = false
            ended = true
            closeFile()
            if problem == nil, let count = Self.number(after: "files=", in: line), count != files.count {
                fail("the guest said \(count) files, sent \(files.count)")
            }
            if problem == nil, Self.number(after: "files=", in: line) == nil {
                fail("'\(Self.cut(line))': no files= count")
            }
            return true
        }
        guard problem == nil else { return true }
        if line.hasPrefix(Self.filePrefix) {
            openFile(line)
            return true
        }
        guard current != nil else {
            fail("'\(Self.cut(line))' outside a gcov-file")
            return true
        }
        // Base64 text is 4/3 of the data; a file may not send more than its share.
        let limit = (current!.bytes + 2) / 3 * 4
        let text = line.utf8.filter { $0 != UInt8(ascii: "\r") }
        guard current!.text.count + text.count <= limit else {
            fail("\(current!.path): more than the \(current!.bytes) bytes it announced")
            return true
        }
        current!.text.append(contentsOf: text)
        return true
    }

    /// The port ended (or the run did): a section that never ended is a problem.
    public mutating func finish() {
        if inside {
            inside = false
            fail("the section did not end (the guest stopped or its output was cut)")
        }
    }

    private mutating func openFile(_ line: String) {
        let words = line.dropFirst(Self.filePrefix.count).split(separator: " ")
        guard words.count == 2, words[0].hasPrefix("path="), words[1].hasPrefix("bytes="),
              let bytes = Int(words[1].dropFirst("bytes=".count)), bytes >= 0 else {
            fail("'\(Self.cut(line))': expected path=<path> bytes=<n>")
            return
        }
        let path = String(words[0].dropFirst("path=".count))
        guard Self.isSafe(path) else {
            fail("file \(files.count + 1): '\(Self.cut(path))' is not a relative .gcda path")
            return
        }
        guard files.count + (current == nil ? 0 : 1) < maxFiles else {
            fail("more than \(maxFiles) files")
            return
        }
        guard bytes <= maxFileBytes else {
            fail("\(path): \(bytes) bytes, more than \(maxFileBytes)")
            return
        }
        guard totalBytes + bytes <= maxTotalBytes else {
            fail("more than \(maxTotalBytes) bytes in all")
            return
        }
        closeFile()
        guard problem == nil else { return }
        totalBytes += bytes
        current = (path, bytes, [])
    }

    private mutating func closeFile() {
        guard let file = current else { return }
        current = nil
        guard problem == nil else { return }
        guard let data = Data(base64Encoded: Data(file.text)) else {
            fail("\(file.path): not base64")
            return
        }
        guard data.count == file.bytes else {
            fail("\(file.path): \(data.count) bytes, the guest announced \(file.bytes)")
            return
        }
        files.append(File(path: file.path, data: data))
    }

    private mutating func fail(_ reason: String) {
        guard problem == nil else { return }
        problem = "gcov data from the guest: " + reason
        files = []
        current = nil
    }

    /// A relative path of tree-path characters ending in `.gcda`, no `.`/`..`/empty component.
    static func isSafe(_ path: String) -> Bool {
        guard path.utf8.count <= 512, path.hasSuffix(".gcda"), !path.hasPrefix("/"),
              path.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/_-.+,".contains($0)) })
        else { return false }
        return !path.split(separator: "/", omittingEmptySubsequences: false)
            .contains { $0.isEmpty || $0 == "." || $0 == ".." }
    }

    static func number(after key: String, in line: String) -> Int? {
        guard let range = line.range(of: key) else { return nil }
        let digits = line[range.upperBound...].prefix { $0.isNumber }
        return digits.isEmpty || digits.count > 9 ? nil : Int(digits)
    }

    static func cut(_ text: String) -> String { text.count > 80 ? String(text.prefix(80)) + "..." : text }
}
