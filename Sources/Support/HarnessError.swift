import Foundation

/// An error that reaches the user as one line naming the input and the reason.
///
/// `kind` decides the exit code, so a bad kernel image (the user's input) is
/// never confused with libvirt going away (the infrastructure).
public struct HarnessError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The user's input is wrong: a spec, a file, a patch. Exit 2.
        case badInput
        /// The harness or what it drives failed: libvirt, QEMU, apt. Exit 3.
        case infrastructure
    }

    public var kind: Kind
    public var input: String
    public var reason: String

    public init(_ kind: Kind, input: String, reason: String) {
        self.kind = kind
        self.input = input
        self.reason = reason
    }

    public static func badInput(_ input: String, _ reason: String) -> HarnessError {
        HarnessError(.badInput, input: input, reason: reason)
    }

    public static func infrastructure(_ input: String, _ reason: String) -> HarnessError {
        HarnessError(.infrastructure, input: input, reason: reason)
    }

    public var description: String { "\(input): \(reason)" }
}
