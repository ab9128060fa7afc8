/// Text that reaches the user's terminal: guest output (console lines, report
/// titles, reasons, `comm` names) is untrusted, and a terminal acts on control
/// characters. C0 controls but tab and newline, DEL and the C1 controls
/// (0x80-0x9F: CSI, OSC, … in 8-bit form) start escape sequences; bidi
/// embeddings, overrides, isolates and marks reorder what the reader sees.
public enum TerminalText {
    /// A character a terminal would act on or reorder text around.
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return (v < 0x20 && v != 0x09 && v != 0x0A) || (0x7F...0x9F).contains(v) || isBidiControl(scalar)
    }

    /// Embeddings, overrides and pops (U+202A-202E), isolates (U+2066-2069), the
    /// left-to-right, right-to-left and Arabic letter marks (U+200E/F, U+061C).
    public static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) || v == 0x200E || v == 0x200F || v == 0x061C
    }

    /// Plain text with every unsafe character shown as `?`.
    public static func plain(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { out.append(isUnsafe(scalar) ? "?" : scalar) }
        return String(out)
    }

    /// JSON text with every unsafe character written as a `\uXXXX` escape: the same
    /// JSON value, nothing a terminal acts on (they can only be inside strings).
    public static func json(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
