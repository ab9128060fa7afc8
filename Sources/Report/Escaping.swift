import Store
import Support

/// Everything a report shows from the guest (titles, excerpts, reasons, even
/// `comm` names) is untrusted text; these are the only ways it gets out.
enum Escape {
    /// For markup (HTML text and attributes, XML): ``Markup/Style/report``.
    static func markup(_ text: String) -> String { Markup.escape(text, .report) }

    /// For a terminal or a mail: no escape sequences, no carriage returns,
    /// no NULs; newlines and tabs stay.
    static func plain(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar == "\n" || scalar == "\t" {
                out.unicodeScalars.append(scalar)
            } else if scalar.value < 0x20 || scalar.value == 0x7f || (0x80..<0xa0).contains(scalar.value)
                        || isBidiControl(scalar) {
                // C0/C1 controls start escape sequences; bidi overrides reorder what a reader sees.
                out += "?"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Embeddings, overrides, isolates and marks: guest text could reorder what a reader sees.
    static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool { TerminalText.isBidiControl(scalar) }

    /// One line of plain text: newlines become spaces.
    static func line(_ text: String) -> String {
        plain(text).replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ")
    }

    /// Cuts to at most `limit` characters, marking the cut.
    static func truncate(_ text: String, _ limit: Int) -> String { TextTable.truncate(text, limit) }
}
