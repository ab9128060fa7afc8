import Foundation
import Support
import XCTest

@testable import Report

/// Guest text that reaches a terminal (console lines, titles, reasons, JSON on stdout)
/// carries nothing a terminal acts on or reorders text around.
final class TerminalTextTests: XCTestCase {
    static let hostile = "BUG in \u{1B}[2Jx\u{9B}31m\u{9D}0;title\u{07}\u{85}\u{202E}fdp.exe\u{2066}\u{200E}\u{200F}\u{061C}\r\tok\n"

    func testPlainShowsEveryControlAsAQuestionMark() {
        XCTAssertEqual(TerminalText.plain(Self.hostile), "BUG in ?[2Jx?31m?0;title???fdp.exe?????\tok\n")
        XCTAssertEqual(TerminalText.plain("plain ascii, é, 中文"), "plain ascii, é, 中文")
        XCTAssertEqual(Escape.line(Self.hostile), "BUG in ?[2Jx?31m?0;title???fdp.exe????? ok ")
    }

    func testJSONKeepsTheValueAndEscapesTheControls() throws {
        let encoded = String(decoding: try JSONEncoder().encode(["title": Self.hostile]), as: UTF8.self)
        let safe = TerminalText.json(encoded)
        XCTAssertFalse(safe.unicodeScalars.contains { TerminalText.isUnsafe($0) && $0 != "\n" })
        XCTAssertTrue(safe.contains("\\u009b"), safe)
        XCTAssertTrue(safe.contains("\\u202e"), safe)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(safe.utf8))
        XCTAssertEqual(decoded["title"], Self.hostile)
    }
}
