import Foundation
import Support
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

@testable import Machine

final class DomainDescriptionTests: XCTestCase {
    private func hostile() -> DomainDescription {
        var d = DomainDescription(
            name: "kh-<evil>&'\"name",
            emulator: "/usr/bin/qemu-system-aarch64",
            kernel: "/tmp/a dir/it's <Image>&\"x\"",
            initrd: "/tmp/in\nitrd",
            cmdline: "console=ttyAMA0 x='</cmdline><devices>' y=\"&amp;\"",
            consoleLog: "/tmp/console'.log")
        d.devices = [RootBusDevice(driver: "edu", slot: 3, properties: ["id": "a'b<c>"])]
        d.globals = ["arm-smmuv3.ssidsize=16"]
        return d
    }

    /// The hostile values survive a real XML parser unchanged, in the places
    /// libvirt reads them from.
    func testHostileValuesRoundTripThroughAnXMLParser() throws {
        let d = hostile()
        let doc = try XMLDocumentParser.parse(d.xml)
        XCTAssertEqual(doc["name"], d.name)
        XCTAssertEqual(doc["kernel"], d.kernel)
        XCTAssertEqual(doc["initrd"], d.initrd)
        XCTAssertEqual(doc["cmdline"], d.cmdline)
        XCTAssertEqual(doc.attributes["path"], [d.consoleLog])
        XCTAssertEqual(doc.attributes["value"], ["-device", d.devices[0].qemuJSON, "-global", "arm-smmuv3.ssidsize=16"])
        let json = try JSONSerialization.jsonObject(with: Data(d.devices[0].qemuJSON.utf8)) as? [String: String]
        XCTAssertEqual(json, ["driver": "edu", "bus": "pcie.0", "addr": "0x3", "id": "a'b<c>"])
    }

    /// libvirt's own schema accepts what we generate.
    func testValidatesAgainstLibvirtSchema() async throws {
        let path = NSTemporaryDirectory() + "kharness-domain-\(UUID().uuidString).xml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        // The schema restricts file names (no spaces or newlines) more than
        // libvirt itself does; hostile values are covered by the round trip.
        var d = hostile()
        d.name = "kharness-schema-test"
        d.kernel = "/var/cache/kharness/Image"
        d.initrd = "/var/cache/kharness/initramfs/abc.cpio"
        d.consoleLog = "/work/results/run/console.log"
        d.traceLog = "/work/results/run/trace.log"
        try d.xml.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await Command.run("virt-xml-validate", [path, "domain"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
    }

    func testControlCharactersAreDropped() {
        XCTAssertEqual(Markup.escape("a\u{1}b\u{0}c", .exact), "abc")
        XCTAssertEqual(Markup.escape("<&>'\"", .exact), "&lt;&amp;&gt;&apos;&quot;")
    }

    /// The records chardevs are QEMU's own (libvirt has no device for them):
    /// one named on the sva-accel device, one on the SMMU with `-global`, both
    /// on the same file in append mode, the path's commas doubled; without
    /// sva-accel there is nothing to wire, without an SMMU no SMMU records.
    func testDeviceRecordsChardevIsWiredToSvaAccel() {
        var description = DomainDescription(name: "d", emulator: "/q", kernel: "/k", initrd: "/i", cmdline: "c",
                                            consoleLog: "/r/console.log")
        description.devices = [RootBusDevice(driver: "sva-accel", slot: 4)]
        description.globals = ["arm-smmuv3.ssidsize=16"]
        description.deviceRecordsLog = "/r,x/device.log"
        let xml = description.xml
        XCTAssertTrue(xml.contains("<qemu:arg value='file,id=kharness-records,path=/r,,x/device.log,append=on'/>"), xml)
        XCTAssertTrue(xml.contains("<qemu:arg value='file,id=kharness-smmu-records,path=/r,,x/device.log,append=on'/>"), xml)
        XCTAssertTrue(xml.contains("&quot;records&quot;:&quot;kharness-records&quot;"), xml)
        XCTAssertTrue(xml.contains("<qemu:arg value='-global'/>\n    <qemu:arg value='arm-smmuv3.ssidsize=16'/>"), xml)
        XCTAssertTrue(xml.contains("<qemu:arg value='-global'/>\n    <qemu:arg value='arm-smmuv3.records=kharness-smmu-records'/>"), xml)
        // Chardevs come before the option that names them (QEMU creates them first anyway).
        XCTAssertLessThan(xml.range(of: "id=kharness-smmu-records")?.lowerBound ?? xml.endIndex,
                          xml.range(of: "arm-smmuv3.records=")?.lowerBound ?? xml.startIndex)
        // The description's own globals are left as they were.
        XCTAssertEqual(description.globals, ["arm-smmuv3.ssidsize=16"])

        description.smmuv3 = false
        XCTAssertTrue(description.xml.contains("id=kharness-records,"))
        XCTAssertFalse(description.xml.contains("kharness-smmu-records"))
        description.smmuv3 = true
        description.deviceRecordsLog = nil
        XCTAssertFalse(description.xml.contains("kharness-"), description.xml)
        description.deviceRecordsLog = "/r/device.log"
        description.devices = [RootBusDevice(driver: "edu", slot: 3)]
        XCTAssertFalse(description.xml.contains("kharness-records"))
        XCTAssertFalse(description.xml.contains("kharness-smmu-records"))
    }
}

/// A tiny SAX collector over Foundation's XMLParser: element texts by name and
/// attribute values by attribute name.
final class XMLDocumentParser: NSObject, XMLParserDelegate {
    private var texts: [String: String] = [:]
    private(set) var attributes: [String: [String]] = [:]
    private var current = ""
    private var stack: [String] = []

    subscript(element: String) -> String? { texts[element] }

    static func parse(_ xml: String) throws -> XMLDocumentParser {
        let collector = XMLDocumentParser()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = collector
        guard parser.parse() else {
            throw NSError(domain: "xml", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(parser.parserError.map { "\($0)" } ?? "parse error")"])
        }
        return collector
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        stack.append(elementName)
        current = ""
        for key in ["path", "value"] {
            if let v = attributeDict[key] { attributes[key, default: []].append(v) }
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        if texts[elementName] == nil, !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            texts[elementName] = current
        }
        current = ""
        stack.removeLast()
    }

}
