/// Text into XML or HTML markup (element text and single- or double-quoted
/// attributes): the one escaper, for reports and for libvirt's domain XML.
public enum Markup {
    /// What happens to the characters beyond the five special ones.
    public enum Style: Sendable {
        /// Reports (HTML text and attributes, JUnit XML, SVG), which show guest text to
        /// a reader: `'` as `&#39;`; tab and newline as they are; everything XML 1.0
        /// cannot carry (controls other than tab and newline, carriage returns,
        /// U+FFFE/U+FFFF), DEL, the C1 controls and the bidi controls that would
        /// reorder the page around them as U+FFFD, so the reader sees something was there.
        case report
        /// libvirt's domain XML, which must keep each value exactly: `'` as `&apos;`;
        /// tab, newline and carriage return as character references (an attribute
        /// value would otherwise normalise them to spaces); characters XML 1.0 cannot
        /// carry at all (the other C0 controls, U+FFFE/U+FFFF) dropped rather than
        /// producing a document libvirt rejects; everything else as it is.
        case exact
    }

    public static func escape(_ text: String, _ style: Style) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += style == .report ? "&#39;" : "&apos;"
            default:
                let v = scalar.value
                switch style {
                case .report:
                    if scalar == "\t" || scalar == "\n" {
                        out.unicodeScalars.append(scalar)
                    } else if v < 0x20 || v == 0x7f || (0x80..<0xa0).contains(v) || v == 0xfffe || v == 0xffff
                                || TerminalText.isBidiControl(scalar) {
                        out += "\u{fffd}"
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                case .exact:
                    if scalar == "\t" || scalar == "\n" || scalar == "\r" {
                        out += "&#\(v);"
                    } else if v < 0x20 || v == 0xfffe || v == 0xffff {
                        continue
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        return out
    }
}
