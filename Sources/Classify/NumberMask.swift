import Foundation

/// The rules that take what varies from run to run (PIDs, PASIDs, addresses, counts,
/// line numbers) out of a title before it becomes a signature, all in one place.
///
/// There are three, not one, because each is already written into stored signatures
/// (the database, result.json, bisect and nightly state) and they disagree on some
/// inputs (NumberRulesTests keeps each one's outputs over real titles):
///
/// - ``digitRuns(_:addresses:)``: lifetime violations (`addresses: false`) and
///   verdicts (`addresses: true`).
/// - ``reportTitle(_:)``: kernel report titles, one pass, so a `0x` inside a number
///   ("10x5") or with no hex digits ("0x") differs from `digitRuns(addresses: true)`.
/// - ``wholeNumbers(_:)``: the failure a bisect hunts: whole words only, marked `#`.
///
/// One more rule shapes titles themselves before any of these sees them:
/// ``titleNumbers(_:)``.
public enum NumberMask {
    /// A report title's own numbers (a panic message, a KASAN function's
    /// suffix): a decimal number that does not continue an identifier becomes
    /// `NUM`, as syzkaller spells its titles, so the title a user reads does
    /// not change from run to run.
    public static func titleNumbers(_ s: String) -> String {
        var out = ""
        var inNumber = false
        var previous: Character = " "
        for c in s {
            if c.isASCII && c.isNumber && !(previous.isLetter || previous == "_") || (inNumber && c.isNumber) {
                if !inNumber { out += "NUM" }
                inNumber = true
            } else {
                inNumber = false
                out.append(c)
            }
            previous = c
        }
        return out
    }

    /// Every digit run becomes `N`; with `addresses`, every `0x<hex digits>` first
    /// becomes `N` as a whole. Without it, "0xa" is "Nxa".
    public static func digitRuns(_ text: String, addresses: Bool) -> String {
        var text = text
        if addresses { text = text.replacingOccurrences(of: "0x[0-9a-fA-F]+", with: "N", options: .regularExpression) }
        return text.replacingOccurrences(of: "[0-9]+", with: "N", options: .regularExpression)
    }

    /// Replaces digit runs (and 0x… hex) with `N`, for text that may carry line numbers or counts.
    public static func reportTitle(_ s: String) -> String {
        var out = ""
        var inNumber = false
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "0", i + 1 < chars.count, chars[i + 1] == "x", !inNumber {
                i += 2
                while i < chars.count, chars[i].isHexDigit { i += 1 }
                out.append("N")
                inNumber = false
                continue
            }
            if c.isASCII && c.isNumber {
                if !inNumber { out.append("N") }
                inNumber = true
            } else {
                inNumber = false
                out.append(c)
            }
            i += 1
        }
        return out
    }

    /// Whole-word decimal and hex numbers become `#`; identifiers that
    /// contain digits (`ext4_foo`, `mmu_notifier2`) are left alone; the
    /// text is trimmed of surrounding whitespace.
    public static func wholeNumbers(_ title: String) -> String {
        var out = ""
        let characters = Array(title.trimmingCharacters(in: .whitespacesAndNewlines))
        var index = 0
        func isWordCharacter(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }
        while index < characters.count {
            let c = characters[index]
            let startsWord = index == 0 || !isWordCharacter(characters[index - 1])
            if startsWord, c.isNumber {
                var end = index
                if c == "0", end + 1 < characters.count, characters[end + 1] == "x" { end += 2 }
                while end < characters.count, characters[end].isHexDigit { end += 1 }
                if end == characters.count || !isWordCharacter(characters[end]) {
                    out.append("#")
                    index = end
                    continue
                }
            }
            out.append(c)
            index += 1
        }
        return out
    }
}
