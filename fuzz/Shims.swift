// What the Classify sources need from Support and Yams, for the fuzzer binary,
// which compiles them with swiftc alone (no SwiftPM, no swift-crypto, no libyaml).

/// Not SHA-256 (the fuzzer needs a function of the input, not its digest): 64 hex
/// digits of FNV-1a, so signatures keep their length.
enum Digest {
    static func sha256(_ text: String) -> String { sha256(Array(text.utf8)) }

    static func sha256(_ data: some Sequence<UInt8>) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in data {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        let word = String(h, radix: 16)
        let padded = String(repeating: "0", count: 16 - word.count) + word
        return String(repeating: padded, count: 4)
    }
}

/// The fuzzer builds suppressions in code; YAML is never parsed.
enum Yams {
    static func load(yaml: String) throws -> Any? { nil }
    static func compose(yaml: String) throws -> Node? { nil }
}

/// The shape of Yams' composed node, for the code that counts nodes.
public enum Node {
    case scalar(String)
    case sequence([Node])
    case mapping([(Node, Node)])
    case alias(String)
}
