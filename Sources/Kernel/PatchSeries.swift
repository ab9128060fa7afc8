import Foundation
import Support

/// One patch of a series, as `git am` will apply it.
public struct SeriesPatch: Sendable, Codable, Equatable {
    /// The commit subject, without the `[PATCH v2 1/3]` tag.
    public var subject: String
    /// The mail's Message-Id without angle brackets, when the patch came
    /// through a mailing list (b4 mboxes have them, format-patch files not).
    public var messageId: String?
    /// sha256 of the patch text exactly as read, the KCIDB per-patch hash.
    public var sha256: String
    /// Files the patch touches (old and new names), for error messages and
    /// for checking out only what `git am` needs.
    public var files: [String]

    /// The raw mail, kept out of the JSON record.
    var text: Data = Data()

    enum CodingKeys: String, CodingKey { case subject, messageId, sha256, files }

    public init(subject: String, messageId: String?, sha256: String, files: [String]) {
        self.subject = subject
        self.messageId = messageId
        self.sha256 = sha256
        self.files = files
    }
}

/// A patch series read from a directory of `git format-patch` files or from
/// an mbox as `b4 am` writes it.
public struct PatchSeries: Sendable {
    public var source: String
    public var patches: [SeriesPatch]

    /// KCIDB `patchset_hash`: sha256 over the newline-terminated sha256 of
    /// each patch in order of application; empty for no patches.
    public var patchsetHash: String {
        guard !patches.isEmpty else { return "" }
        return Digest.sha256(patches.map { $0.sha256 + "\n" }.joined())
    }

    /// Reads `path`: a directory (its `*.patch` files in name order, cover
    /// letters skipped) or a single mbox or patch file.
    public init(path: String) throws {
        source = path
        guard Files.exists(path) else { throw HarnessError.badInput(path, "patch series not found") }
        var mails: [Data] = []
        if Files.isDirectory(path) {
            let names = try FileManager.default.contentsOfDirectory(atPath: path)
                .filter { $0.hasSuffix(".patch") || $0.hasSuffix(".diff") || $0.hasSuffix(".eml") }
                .sorted()
            for name in names {
                guard let data = FileManager.default.contents(atPath: path + "/" + name) else {
                    throw HarnessError.badInput(path + "/" + name, "cannot read")
                }
                mails.append(contentsOf: PatchSeries.splitMbox(data))
            }
        } else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw HarnessError.badInput(path, "cannot read")
            }
            mails = PatchSeries.splitMbox(data)
        }
        patches = mails.compactMap(PatchSeries.parse)
        guard !patches.isEmpty else {
            throw HarnessError.badInput(path, "no patches found (expected git format-patch files or a b4 mbox)")
        }
    }

    /// Splits an mbox at its `From ` separator lines; a lone patch file is
    /// one message.
    static func splitMbox(_ data: Data) -> [Data] {
        var messages: [Data] = []
        var start = data.startIndex
        var lineStart = data.startIndex
        var previousLineBlank = true
        let from = Array("From ".utf8)
        while lineStart < data.endIndex {
            let lineEnd = data[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            let line = data[lineStart..<lineEnd]
            if previousLineBlank, lineStart != start, line.starts(with: from), isFromLine(line) {
                messages.append(data[start..<lineStart])
                start = lineStart
            }
            previousLineBlank = line.isEmpty || line == Data([UInt8(ascii: "\r")])
            lineStart = lineEnd < data.endIndex ? data.index(after: lineEnd) : data.endIndex
        }
        if start < data.endIndex { messages.append(data[start..<data.endIndex]) }
        return messages.map { Data($0) }
    }

    /// An mbox separator as git mailsplit accepts it, `From <who> <date>`
    /// ending in a time and a year, so a body line that merely starts with
    /// "From " does not split a message.
    static func isFromLine(_ line: Data) -> Bool {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let words = text.split(separator: " ")
        guard words.count >= 3, let year = words.last, year.count == 4, year.allSatisfy(\.isNumber) else {
            return false
        }
        return words.contains { word in
            let parts = word.split(separator: ":")
            return parts.count == 3 && parts.allSatisfy { $0.count == 2 && $0.allSatisfy(\.isNumber) }
        }
    }

    /// A message with a diff becomes a patch; cover letters and replies
    /// (no diff) are dropped.
    static func parse(_ mail: Data) -> SeriesPatch? {
        let text = String(decoding: mail, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        var headers: [(String, String)] = []
        var index = 0
        if index < lines.count, lines[index].hasPrefix("From ") { index += 1 }
        while index < lines.count, !lines[index].isEmpty {
            let line = lines[index]
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].1 += " " + line.trimmingCharacters(in: .whitespaces)
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((line[..<colon].lowercased(),
                                line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            index += 1
        }
        var files: [String] = []
        for line in lines[index...] {
            if line.hasPrefix("diff --git ") {
                for part in line.dropFirst("diff --git ".count).split(separator: " ") {
                    if part.hasPrefix("a/") || part.hasPrefix("b/") { files.append(String(part.dropFirst(2))) }
                }
            } else if line.hasPrefix("+++ b/") || line.hasPrefix("--- a/") {
                files.append(String(line.dropFirst(6)))
            }
        }
        guard !files.isEmpty else { return nil }
        var uniqueFiles: [String] = []
        for file in files where !uniqueFiles.contains(file) { uniqueFiles.append(file) }
        let header = { (name: String) in headers.first { $0.0 == name }?.1 }
        var subject = header("subject") ?? "(no subject)"
        // `git am` drops leading bracketed tags such as "[PATCH v2 3/7]".
        while subject.hasPrefix("["), let close = subject.firstIndex(of: "]") {
            subject = String(subject[subject.index(after: close)...]).trimmingCharacters(in: .whitespaces)
        }
        let messageId = header("message-id").map {
            $0.trimmingCharacters(in: CharacterSet(charactersIn: "<> "))
        }
        var patch = SeriesPatch(subject: subject, messageId: messageId,
                                sha256: Digest.sha256(mail), files: uniqueFiles)
        patch.text = mail
        return patch
    }

    /// For a patch that failed at `file:line`, the hunk whose header starts
    /// at that line, as `hunk #N (@@ -L,n +L,n @@)`.
    static func hunk(in patch: SeriesPatch, file: String, line: Int) -> String? {
        let text = String(decoding: patch.text, as: UTF8.self)
        var inFile = false
        var number = 0
        for raw in text.split(separator: "\n") {
            if raw.hasPrefix("diff --git ") {
                inFile = raw.hasSuffix(" b/" + file)
                number = 0
            } else if inFile, raw.hasPrefix("@@ -") {
                number += 1
                let start = raw.dropFirst(4).prefix { $0.isNumber }
                if Int(start) == line {
                    let header = raw.split(separator: "@@", omittingEmptySubsequences: true).first
                    return "hunk #\(number) (@@\(header ?? "")@@)"
                }
            }
        }
        return nil
    }
}
