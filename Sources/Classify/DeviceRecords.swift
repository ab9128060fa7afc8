import Foundation

/// One access of the sva-accel device as its `records` chardev reports it
/// (guest/qemu/patches/0005): a page-sized chunk of a job, the PASID it
/// carried, and where it landed or that it faulted, timed with the guest's
/// virtual counter.
public struct DeviceRecord: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// The access succeeded and reached this guest physical address.
        case reached(UInt64)
        /// The access succeeded; the device could not say where ("pa=?").
        case reachedSomewhere
        case fault
    }

    /// CNTVCT (CNTVOFF = 0) just before the access.
    public var counter: UInt64
    public var slot: Int
    /// nil: the access carried no PASID (the DMA API's address space).
    public var pasid: Int?
    public var isWrite: Bool
    public var iova: UInt64
    public var length: UInt64
    public var outcome: Outcome

    public var succeeded: Bool { outcome != .fault }

    /// The record as the device wrote it (rebuilt from the fields: the
    /// parser keeps no text of its own per record).
    public var line: String {
        let where_: String
        switch outcome {
        case .reached(let pa): where_ = "pa=0x" + String(pa, radix: 16)
        case .reachedSomewhere: where_ = "pa=?"
        case .fault: where_ = "fault"
        }
        return "t=\(counter) slot=\(slot) pasid=\(pasid.map(String.init) ?? "-") dir=\(isWrite ? "w" : "r") "
            + "iova=0x\(String(iova, radix: 16)) len=\(length) \(where_)"
    }
}

/// The device's records file (`device.log`), parsed. The file is written by
/// an emulated device a guest drives, so it is untrusted: a line that does
/// not have exactly the documented shape is counted and skipped, numbers
/// that overflow are rejected, at most `limitBytes` and `maxRecords` are
/// read, and nothing in it can make the parser trap.
public struct DeviceLog: Sendable {
    /// From the header line; nil when there was none (the records cannot
    /// be placed on the trace's clock then).
    public private(set) var counterHz: UInt64?
    public private(set) var records: [DeviceRecord] = []
    /// Lines that are not records (or a second header).
    public private(set) var rejectedLines = 0
    /// Records whose counter is below the one before: a device's records
    /// are in time order, so these are lies or corruption (kept, counted).
    public private(set) var outOfOrder = 0
    /// The file went past `limitBytes` or `maxRecords`: the rest was not read.
    public private(set) var truncated = false
    public private(set) var bytes = 0

    public static let header = "# sva-accel records v1 counter-hz="
    public static let maxLineLength = 256
    public static let defaultLimitBytes = 16 << 20
    public static let maxRecords = 400_000

    public init() {}

    /// Reads at most `limitBytes` of the file at `path`; a missing file is
    /// an empty log.
    public static func load(path: String, limitBytes: Int = defaultLimitBytes) -> DeviceLog {
        guard let handle = FileHandle(forReadingAtPath: path) else { return DeviceLog() }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: limitBytes &+ 1)) ?? Data()
        return parse(data, limitBytes: limitBytes)
    }

    public static func parse(_ data: some Collection<UInt8>, limitBytes: Int = defaultLimitBytes) -> DeviceLog {
        var log = DeviceLog()
        let bytes = Array(data.prefix(max(0, limitBytes)))
        log.truncated = data.count > bytes.count
        log.bytes = bytes.count
        var start = 0
        var lastCounter: UInt64 = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            // A last line without its newline may have been cut mid-write.
            if end == bytes.count, log.truncated { break }
            let line = bytes[start..<end]
            start = end + 1
            if line.isEmpty { continue }
            if line.count > maxLineLength { log.rejectedLines += 1; continue }
            if line.first == UInt8(ascii: "#") {
                if log.counterHz == nil, let hz = parseHeader(line) { log.counterHz = hz } else { log.rejectedLines += 1 }
                continue
            }
            guard let record = parseRecord(line) else { log.rejectedLines += 1; continue }
            if log.records.count >= maxRecords { log.truncated = true; break }
            if record.counter < lastCounter { log.outOfOrder += 1 }
            lastCounter = max(lastCounter, record.counter)
            log.records.append(record)
        }
        return log
    }

    static func parseHeader(_ line: ArraySlice<UInt8>) -> UInt64? {
        let prefix = Array(header.utf8)
        guard line.count > prefix.count, line.starts(with: prefix) else { return nil }
        guard let hz = decimal(line.dropFirst(prefix.count)), hz > 0, hz <= 10_000_000_000 else { return nil }
        return hz
    }

    /// `t=<dec> slot=<dec> pasid=<dec|-> dir=<r|w> iova=0x<hex> len=<dec> pa=0x<hex>|pa=?|fault`,
    /// the fields in this order, single spaces.
    static func parseRecord(_ line: ArraySlice<UInt8>) -> DeviceRecord? {
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard words.count == 7,
              let counter = value(words[0], "t=").flatMap(decimal),
              let slot = value(words[1], "slot=").flatMap(decimal), slot < 32,
              let pasidText = value(words[2], "pasid="),
              let dir = value(words[3], "dir="), dir.count == 1,
              let iova = value(words[4], "iova=").flatMap(hex),
              let length = value(words[5], "len=").flatMap(decimal), length > 0, length <= 4096
        else { return nil }
        var pasid: Int?
        if !(pasidText.count == 1 && pasidText.first == UInt8(ascii: "-")) {
            guard let value = decimal(pasidText), value < 1 << 20 else { return nil }
            pasid = Int(value)
        }
        let isWrite: Bool
        switch dir.first {
        case UInt8(ascii: "r"): isWrite = false
        case UInt8(ascii: "w"): isWrite = true
        default: return nil
        }
        let outcome: DeviceRecord.Outcome
        if words[6].elementsEqual("fault".utf8) {
            outcome = .fault
        } else if words[6].elementsEqual("pa=?".utf8) {
            outcome = .reachedSomewhere
        } else if let pa = value(words[6], "pa=").flatMap(hex) {
            outcome = .reached(pa)
        } else {
            return nil
        }
        return DeviceRecord(counter: counter, slot: Int(slot), pasid: pasid, isWrite: isWrite, iova: iova,
                            length: length, outcome: outcome)
    }

    private static func value(_ word: ArraySlice<UInt8>, _ key: String) -> ArraySlice<UInt8>? {
        let prefix = Array(key.utf8)
        guard word.count > prefix.count, word.starts(with: prefix) else { return nil }
        return word.dropFirst(prefix.count)
    }

    /// Decimal digits only, at most UInt64.max; anything else is nil.
    static func decimal(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    /// `0x` and 1 to 16 hex digits.
    static func hex(_ text: ArraySlice<UInt8>) -> UInt64? {
        guard text.count > 2, text.count <= 18, text.starts(with: Array("0x".utf8)) else { return nil }
        var value: UInt64 = 0
        for byte in text.dropFirst(2) {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}
