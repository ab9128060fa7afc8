/// Arithmetic on numbers the guest chose. Every count and number read from the
/// console or the trace is untrusted: an overflow would trap and take the harness
/// (and a matrix or bisect with it) down before it records a verdict, so sums
/// saturate and conversions clamp instead.
extension Int {
    /// `self + other`, held at `Int.max`/`Int.min` instead of trapping.
    @inline(__always)
    func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// A finite or infinite `Double` rounded toward zero and clamped to `Int`'s range;
    /// NaN gives nil.
    static func clamping(_ value: Double) -> Int? {
        guard !value.isNaN else { return nil }
        if value >= 9.2e18 { return .max }
        if value <= -9.2e18 { return .min }
        return Int(value)
    }

    /// Decimal ASCII digits at the start of `text`, saturating at `Int.max`; nil when
    /// there are none.
    static func saturatingDecimal(prefixOf text: some StringProtocol) -> Int? {
        var value = 0
        var any = false
        for byte in text.utf8 {
            guard byte &- 0x30 < 10 else { break }
            any = true
            value = value.multipliedReportingOverflow(by: 10).overflow ? .max : value * 10
            value = value.saturatingAdd(Int(byte &- 0x30))
        }
        return any ? value : nil
    }
}
