import Support

/// Everything a report shows from the guest (titles, excerpts, reasons, even
/// `comm` names) is untrusted text; these are the only ways it gets out.
enum Escape {
    /// For markup (HTML text and attributes, XML): the five special
    /// characters, and everything XML 1.0 cannot carry (controls other than
    /// tab and newline, carriage returns, U+FFFE/U+FFFF) and the bidi
    /// overrides that would reorder the page around them, as U+FFFD.
    static func markup(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f || (0x80..<0xa0).contains(scalar.value)
                    || scalar.value == 0xfffe || scalar.value == 0xffff || isBidiControl(scalar) {
                    out += "\u{fffd}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

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
    static func truncate(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(max(0, limit - 1))) + "…"
    }
}
