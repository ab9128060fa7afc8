import Foundation

/// Byte-level helpers for the classifier's hot path.
///
/// Console lines are untrusted bytes; most of them are ordinary printk output
/// that only needs a few prefix comparisons, so nothing here allocates.
enum Bytes {
    /// True when `line[at...]` starts with `prefix`.
    @inline(__always)
    static func hasPrefix(_ line: UnsafeBufferPointer<UInt8>, at offset: Int, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard offset >= 0, line.count - offset >= count else { return false }
        let p = prefix.utf8Start
        var i = 0
        while i < count {
            if line[offset + i] != p[i] { return false }
            i += 1
        }
        return true
    }

    /// Index of the first occurrence of `needle` in `line[from...]`, or nil.
    static func find(_ line: UnsafeBufferPointer<UInt8>, _ needle: StaticString, from: Int = 0) -> Int? {
        let count = needle.utf8CodeUnitCount
        guard let base = line.baseAddress, from >= 0, line.count - from >= count, count > 0 else { return nil }
        let first = Int32(needle.utf8Start[0])
        let last = line.count - count
        var i = from
        while i <= last {
            guard let hit = memchr(base + i, first, last - i + 1) else { return nil }
            let at = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + at, needle.utf8Start, count) == 0 { return at }
            i = at + 1
        }
        return nil
    }

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    @inline(__always)
    static func isHexDigit(_ b: UInt8) -> Bool {
        isDigit(b) || (b | 0x20) &- 0x61 < 6
    }

    /// Offset of the printk message inside a console line: skips a syslog
    /// level (`<6>`), a timestamp (`[   12.345678]`) and a caller id
    /// (`[ T123]`, `[C1]`), in any combination, and one following space.
    static func messageStart(_ line: UnsafeBufferPointer<UInt8>, from start: Int = 0) -> Int {
        let n = line.count
        var i = skipNoise(line, from: start)
        if i < n, line[i] == UInt8(ascii: "<") {
            var j = i + 1
            while j < n, j - i <= 4, isDigit(line[j]) { j += 1 }
            if j < n, j > i + 1, line[j] == UInt8(ascii: ">") { i = j + 1 }
        }
        var groups = 0
        while groups < 2, i < n, line[i] == UInt8(ascii: "[") {
            var j = i + 1
            var sawDigit = false
            var ok = true
            while j < n, line[j] != UInt8(ascii: "]") {
                let b = line[j]
                if isDigit(b) {
                    sawDigit = true
                } else if b != UInt8(ascii: " ") && b != UInt8(ascii: ".") && b != UInt8(ascii: "T")
                    && b != UInt8(ascii: "C")
                {
                    ok = false
                    break
                }
                j += 1
                if j - i > 24 { ok = false; break }
            }
            guard ok, sawDigit, j < n else { break }
            i = j + 1
            groups += 1
            if i + 1 < n, line[i] == UInt8(ascii: " "), line[i + 1] == UInt8(ascii: "[") { i += 1 }
        }
        if groups > 0, i < n, line[i] == UInt8(ascii: " ") { i += 1 }
        return groups > 0 ? skipNoise(line, from: i) : i
    }

    /// Skips NULs, other control bytes and ANSI escape sequences (colours a serial
    /// console or a terminal program added) at `from`.
    @inline(__always)
    static func skipNoise(_ line: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
        var i = from
        let n = line.count
        while i < n, line[i] < 0x20 {
            if line[i] == 0x1B, i + 1 < n, line[i + 1] == UInt8(ascii: "[") {
                i += 2
                while i < n, !(line[i] >= 0x40 && line[i] <= 0x7E) { i += 1 }
            }
            i += 1
        }
        return i
    }

    /// The printk caller id in the prefix before `end` (`[ T123]` → 123, `[ C1]` → -2),
    /// 0 when there is none. Lines from one task share an id, so a report can skip
    /// lines other CPUs interleave into it.
    static func callerID(_ line: UnsafeBufferPointer<UInt8>, end: Int) -> Int {
        var i = 0
        while i < end {
            if line[i] == UInt8(ascii: "[") {
                var j = i + 1
                while j < end, line[j] == UInt8(ascii: " ") { j += 1 }
                if j < end, line[j] == UInt8(ascii: "T") || line[j] == UInt8(ascii: "C") {
                    let isTask = line[j] == UInt8(ascii: "T")
                    var k = j + 1
                    var value = 0
                    while k < end, isDigit(line[k]), value < 1 << 40 {
                        value = value * 10 + Int(line[k] &- 0x30)
                        k += 1
                    }
                    if k > j + 1, k < end, line[k] == UInt8(ascii: "]") { return isTask ? value + 1 : -(value + 1) }
                }
            }
            i += 1
        }
        return 0
    }

    /// Offset just after an embedded timestamp (`... [  12.3] message`)
    /// later in the line, for output glued to a previous unterminated line
    /// such as a login prompt. Nil when there is none.
    static func embeddedMessageStart(_ line: UnsafeBufferPointer<UInt8>, after start: Int) -> Int? {
        guard let base = line.baseAddress else { return nil }
        var from = start + 1
        while from < line.count {
            guard let hit = memchr(base + from, Int32(UInt8(ascii: "[")), line.count - from) else { return nil }
            let idx = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if idx + 3 < line.count, line[idx + 1] == UInt8(ascii: " ") || isDigit(line[idx + 1]) {
                // A timestamp has a decimal point: "[3615]" in "syz[3615] general protection
                // fault" (a user-space trap) is a pid, not a message start.
                var close = idx + 1
                while close < line.count, close - idx < 24, line[close] != UInt8(ascii: "]") { close += 1 }
                if close < line.count, line[idx..<close].contains(UInt8(ascii: ".")) {
                    let m = messageStart(line, from: idx)
                    if m > idx { return m }
                }
            }
            from = idx + 1
        }
        return nil
    }

    /// A printable, single-line Swift string: invalid UTF-8 becomes U+FFFD,
    /// ANSI escape sequences and control characters (but tab) are removed,
    /// and the result is at most `limit` bytes long.
    static func sanitize(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int = 1024) -> String {
        var out = [UInt8]()
        out.reserveCapacity(min(bytes.count, limit))
        var i = 0
        let n = bytes.count
        while i < n, out.count < limit {
            let b = bytes[i]
            if b == 0x1B {
                // ESC [ params final, ESC ] ... BEL/ST, or a two-byte escape.
                i += 1
                if i < n, bytes[i] == UInt8(ascii: "[") {
                    i += 1
                    while i < n, !(bytes[i] >= 0x40 && bytes[i] <= 0x7E) { i += 1 }
                    i += 1
                } else if i < n, bytes[i] == UInt8(ascii: "]") {
                    while i < n, bytes[i] != 0x07, bytes[i] != 0x1B { i += 1 }
                    i += 1
                } else {
                    i += 1
                }
                continue
            }
            if b < 0x20 && b != 0x09 || b == 0x7F {
                i += 1
                continue
            }
            out.append(b)
            i += 1
        }
        // Do not cut a multi-byte sequence in half at the limit.
        if out.count >= limit {
            while let last = out.last, last & 0xC0 == 0x80 { out.removeLast() }
            if let last = out.last, last >= 0xC0 { out.removeLast() }
        }
        let text = String(decoding: out, as: UTF8.self)
        guard text.utf8.count > limit else { return text }
        // Invalid bytes became U+FFFD (3 bytes each): cut again to the limit.
        var scalars = String.UnicodeScalarView()
        var size = 0
        for scalar in text.unicodeScalars {
            size += UTF8.width(scalar)
            if size > limit { break }
            scalars.append(scalar)
        }
        return String(scalars)
    }

    static func sanitize(_ bytes: [UInt8], limit: Int = 1024) -> String {
        bytes.withUnsafeBufferPointer { sanitize($0, limit: limit) }
    }
}

extension Bytes {
    /// True when `line[at...]` starts with `prefix`.
    @inline(__always)
    static func hasPrefix(_ line: UnsafeBufferPointer<UInt8>, at offset: Int, _ prefix: [UInt8]) -> Bool {
        let count = prefix.count
        guard offset >= 0, line.count - offset >= count else { return false }
        var i = 0
        while i < count {
            if line[offset + i] != prefix[i] { return false }
            i += 1
        }
        return true
    }

    /// Index of the first occurrence of `needle` in `line[from...]`, or nil.
    static func find(_ line: UnsafeBufferPointer<UInt8>, _ needle: [UInt8], from: Int = 0) -> Int? {
        let count = needle.count
        guard let base = line.baseAddress, from >= 0, line.count - from >= count, count > 0 else { return nil }
        let last = line.count - count
        var i = from
        return needle.withUnsafeBufferPointer { n -> Int? in
            while i <= last {
                guard let hit = memchr(base + i, Int32(n[0]), last - i + 1) else { return nil }
                let at = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if memcmp(base + at, n.baseAddress!, count) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }
}
