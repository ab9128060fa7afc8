import Foundation
import Testing

@testable import Classify

/// The header parser and the known-misses list, on small inputs.
@Suite("test-data headers")
struct TestdataFileTests {
    @Test func headerLogAndReportSectionSplit() throws {
        let text = """
            TITLE: KASAN: use-after-free Read in foo
            ALT: KASAN: use-after-free Read in bar
            ALT: bad-access in foo
            TYPE: KASAN-USE-AFTER-FREE-READ
            CORRUPTED: Y
            # the trace is cut
            PANICKED:
            TAIL REPORTS: none

            [  1.0] BUG: KASAN: use-after-free in foo+0x1/0x2
            REPORTED: is not a marker
            REPORT:
            BUG: KASAN: use-after-free in foo

            """
        let file = try TestdataFile.parse(Data(text.utf8))
        #expect(file.title == "KASAN: use-after-free Read in foo")
        #expect(file.alternatives == ["KASAN: use-after-free Read in bar", "bad-access in foo"])
        #expect(file.type == "KASAN-USE-AFTER-FREE-READ")
        #expect(file.corrupted)
        #expect(file.value("PANICKED") == "")
        #expect(file.value("TAIL REPORTS") == "none")
        #expect(file.fields.contains(TestdataFile.Field(nil, "# the trace is cut")))
        #expect(file.keys == ["TITLE", "ALT", "TYPE", "CORRUPTED", "PANICKED", "TAIL REPORTS"])
        #expect(String(decoding: file.log, as: UTF8.self) == "[  1.0] BUG: KASAN: use-after-free in foo+0x1/0x2\nREPORTED: is not a marker\n")
        #expect(String(decoding: file.trailer, as: UTF8.self) == "REPORT:\nBUG: KASAN: use-after-free in foo\n")
        #expect(file.rendered() == Data(text.utf8), "rendering gives the file back")
        #expect(try TestdataFile.parse(file.rendered()) == file)
    }

    @Test func noHeaderTailReportsAndCRLF() throws {
        let file = try TestdataFile.parse(Data("\nline 1\r\nTAIL REPORTS:\r\nx\nREPORT:\n".utf8))
        #expect(file.fields.isEmpty && file.title == nil && !file.corrupted)
        #expect(file.log == Data("line 1\r\n".utf8))
        #expect(file.rendered() == Data("\nline 1\r\nTAIL REPORTS:\r\nx\nREPORT:\n".utf8))
        let cr = try TestdataFile.parse(Data("TITLE: t\r\n\r\nREPORT:\nrest".utf8))
        #expect(cr.title == "t" && cr.log.isEmpty && cr.trailer == Data("REPORT:\nrest".utf8))
        #expect(try TestdataFile.parse(Data("TITLE: \n\nlog\n".utf8)).title == nil, "an empty TITLE expects no crash")
    }

    @Test func aLogWithoutAHeaderIsRejected() {
        #expect(throws: TestdataFile.ParseError.notAHeaderLine(line: 2, text: "[    0.000000] Booting Linux")) {
            try TestdataFile.parse(Data("TITLE: x\n[    0.000000] Booting Linux\n\nlog\n".utf8))
        }
        for line in ["title: lower case", "TITLE:no space", ": no key", "1KEY: digit first"] {
            #expect(TestdataFile.headerField(line) == nil, "\(line)")
        }
    }

    @Test func knownMissesKeepTheirReasons() throws {
        let known = try KnownMisses.parse("# comment\n\n12 title # real reason\n3 crash\n4 crash # unexplained: old\n5 title # gone\n")
        #expect(known["12", .title] == "real reason" && known["3", .crash] == "" && known["4", .crash] == "unexplained: old")
        let text = known.rendered(misses: [
            .init(file: "12", aspect: .title): "want a got b", .init(file: "12", aspect: .crash): "want a got none",
            .init(file: "3", aspect: .crash): "want no crash", .init(file: "4", aspect: .crash): "new",
        ])
        #expect(
            text == KnownMisses.preamble + "3 crash # unexplained: want no crash\n4 crash # unexplained: new\n"
                + "12 crash # unexplained: want a got none\n12 title # real reason\n")
        #expect(try KnownMisses.parse(text).entries.count == 4)
        #expect(throws: KnownMisses.ParseError.self) { try KnownMisses.parse("12 titel # typo\n") }
        #expect(throws: KnownMisses.ParseError.self) { try KnownMisses.parse("12 title\n12 title # twice\n") }
    }
}
