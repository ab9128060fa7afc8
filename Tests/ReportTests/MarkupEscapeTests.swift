import Foundation
import Support
import XCTest

@testable import Report

/// ``Markup/escape(_:_:)`` in its two styles, reports' (HTML and XML reports) and
/// libvirt's domain XML, over the same inputs, byte for byte as recorded from the two
/// escapers it replaced (Report's `Escape.markup`, Machine's `XMLEscaping.escape`).
/// They differ on purpose: a report shows the reader that something was there
/// (U+FFFD) and keeps tabs and newlines as text; a domain description keeps every
/// value exactly, so whitespace is a character reference and only what XML cannot
/// carry is dropped.
final class MarkupEscapeTests: XCTestCase {
    static let inputs = [
        "plain text, nothing to escape",
        "<a href='x'>&\"</a>",
        "tab\there, newline\nthere, return\rthere",
        "C0 \u{0}\u{1}\u{8}\u{b}\u{c}\u{1b}[31m end",
        "DEL \u{7f} C1 \u{80}\u{85}\u{9b}\u{9f} end",
        "bidi \u{202a}\u{202e}\u{2066}\u{2069}\u{200e}\u{200f}\u{61c} end",
        "nonchars \u{fffe}\u{ffff} replacement \u{fffd}",
        "unicode é ü 中文 🙂 e\u{301} \u{a0}\u{2028}",
        "/var/cache/kharness/kernel-source/linux-6.12 console=ttyAMA0 iommu.strict=0",
        "",
    ]

    /// Input; then the report's escape and the domain description's, as Swift literals.
    static let recorded: [(String, String, String)] = [
        ("plain text, nothing to escape", "plain text, nothing to escape", "plain text, nothing to escape"),
        ("<a href='x'>&\"</a>", "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;", "&lt;a href=&apos;x&apos;&gt;&amp;&quot;&lt;/a&gt;"),
        ("tab\u{9}here, newline\u{a}there, return\u{d}there", "tab\u{9}here, newline\u{a}there, return\u{fffd}there", "tab&#9;here, newline&#10;there, return&#13;there"),
        ("C0 \u{0}\u{1}\u{8}\u{b}\u{c}\u{1b}[31m end", "C0 \u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}[31m end", "C0 [31m end"),
        ("DEL \u{7f} C1 \u{80}\u{85}\u{9b}\u{9f} end", "DEL \u{fffd} C1 \u{fffd}\u{fffd}\u{fffd}\u{fffd} end", "DEL \u{7f} C1 \u{80}\u{85}\u{9b}\u{9f} end"),
        ("bidi \u{202a}\u{202e}\u{2066}\u{2069}\u{200e}\u{200f}\u{61c} end", "bidi \u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd} end", "bidi \u{202a}\u{202e}\u{2066}\u{2069}\u{200e}\u{200f}\u{61c} end"),
        ("nonchars \u{fffe}\u{ffff} replacement \u{fffd}", "nonchars \u{fffd}\u{fffd} replacement \u{fffd}", "nonchars  replacement \u{fffd}"),
        ("unicode \u{e9} \u{fc} \u{4e2d}\u{6587} \u{1f642} e\u{301} \u{a0}\u{2028}", "unicode \u{e9} \u{fc} \u{4e2d}\u{6587} \u{1f642} e\u{301} \u{a0}\u{2028}", "unicode \u{e9} \u{fc} \u{4e2d}\u{6587} \u{1f642} e\u{301} \u{a0}\u{2028}"),
        ("/var/cache/kharness/kernel-source/linux-6.12 console=ttyAMA0 iommu.strict=0", "/var/cache/kharness/kernel-source/linux-6.12 console=ttyAMA0 iommu.strict=0", "/var/cache/kharness/kernel-source/linux-6.12 console=ttyAMA0 iommu.strict=0"),
        ("", "", ""),
    ]

    static func outputs(_ text: String) -> (String, String) {
        (Escape.markup(text), Markup.escape(text, .exact))
    }

    func testBothEscapesKeepTheirRecordedBytes() {
        if Self.recorded.isEmpty {
            for input in Self.inputs {
                let o = Self.outputs(input)
                print("        (\(literal(input)), \(literal(o.0)), \(literal(o.1))),")
            }
        }
        XCTAssertEqual(Self.recorded.map(\.0), Self.inputs)
        for row in Self.recorded {
            let o = Self.outputs(row.0)
            XCTAssertEqual(Array(o.0.utf8), Array(row.1.utf8), "report: \(literal(row.0))")
            XCTAssertEqual(Array(o.1.utf8), Array(row.2.utf8), "domain: \(literal(row.0))")
        }
    }

    private func literal(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            default:
                if scalar.value < 0x20 || scalar.value >= 0x7f { out += "\\u{\(String(scalar.value, radix: 16))}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
