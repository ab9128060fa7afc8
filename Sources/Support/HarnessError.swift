import Foundation

/// An error that reaches the user as one line, `input: reason`, and whose kind
/// decides the exit code. ``HarnessError`` is the general one; a stage with its
/// own closed set of failures (git's) has its own type and still ends as one
/// line with the right code, through ``HarnessError/init(_:)``.
public protocol OneLineError: Error, CustomStringConvertible {
    var kind: HarnessError.Kind { get }
    /// What was wrong or could not be done: a path, a spec, a command.
    var input: String { get }
    var reason: String { get }
}

extension OneLineError {
    public var description: String { "\(input): \(reason)" }
}

/// An error that reaches the user as one line naming the input and the reason.
///
/// `kind` decides the exit code, so a bad kernel image (the user's input) is
/// never confused with libvirt going away (the infrastructure).
public struct HarnessError: OneLineError, Sendable {
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

    /// Any error as one line with a kind: the one place that decides what an
    /// error nobody classified is. Foundation's file errors (a full disk, a
    /// cache directory removed under a run) name their path and the system's
    /// words for the errno, "No space left on device", instead of a dump of
    /// `NSError` fields; whatever else is unclassified is ours, infrastructure,
    /// because nothing about it says the user's input was wrong.
    public init(_ error: any Error) {
        switch error {
        case let error as HarnessError:
            self = error
        case let error as any OneLineError:
            self.init(error.kind, input: error.input, reason: error.reason)
        case let error as POSIXError:
            self.init(.infrastructure, input: "kharness", reason: Self.text(errno: error.code.rawValue))
        default:
            let error = error as NSError
            var path = error.userInfo[NSFilePathErrorKey] as? String
                ?? (error.userInfo[NSURLErrorKey] as? URL)?.path
            // A copy or a move: which of the two failed is not said, so both are named.
            if let destination = error.userInfo["NSDestinationFilePath"] as? String {
                path = (path.map { $0 + " → " } ?? "") + destination
            }
            // swift-corelibs-foundation keeps the POSIX error as a Swift error value.
            if let underlying = (error.userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }),
               underlying.domain == NSPOSIXErrorDomain {
                self.init(.infrastructure, input: path ?? "kharness", reason: Self.text(errno: Int32(underlying.code)))
            } else if error.domain == NSPOSIXErrorDomain {
                self.init(.infrastructure, input: path ?? "kharness", reason: Self.text(errno: Int32(error.code)))
            } else {
                self.init(.infrastructure, input: path ?? "kharness", reason: Self.oneLine(error.localizedDescription))
            }
        }
    }

    /// This error about `path` when it names nothing more precise itself (an
    /// error with no file path in it says only "kharness").
    public func naming(_ path: String) -> HarnessError {
        input == "kharness" ? HarnessError(kind, input: path, reason: reason) : self
    }

    /// The C library's text for `errno`: "No space left on device".
    public static func text(errno: Int32) -> String { String(cString: strerror(errno)) }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
    }
}
