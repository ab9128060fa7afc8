import Classify
import Support

extension RunResult {
    /// How the harness saw a run end, as `result.json` and the database's `outcomes.end`
    /// spell it ("finished", "timeout", ...). Classify's `RunEnd` is what the harness
    /// tells the classifier (with the phase, the signal, the limit); this is what is
    /// recorded of it, plus the ends that never reach the classifier (a build failure,
    /// bad input, a harness that died).
    ///
    /// Records are read back from files and databases written by older harnesses, so a
    /// string this version does not know decodes to ``other(_:)`` and encodes back
    /// unchanged, instead of making the whole record unreadable.
    public enum End: Hashable, Sendable, OpenStringSet {
        /// The guest printed the done marker or powered off by itself.
        case finished
        /// A phase ran past its deadline and the harness stopped the guest.
        case timeout
        /// SIGINT or SIGTERM stopped the run (the reason names the signal).
        case interrupted
        /// libvirt, QEMU or the harness failed: nothing is known about the kernel.
        case infrastructure
        /// The user's input was not usable (a spec, a file, an option).
        case badInput
        /// The kernel did not compile or link, so nothing ran.
        case buildFailed
        /// The harness saw the boot fail (e.g. the guest stopped before its init ran).
        case bootFailed
        /// The guest printed more than the harness keeps, and was stopped.
        case consoleFlood
        /// The guest wrote more to its trace port than the harness keeps, and was stopped.
        case traceFlood
        /// The provisional record written when a run starts, left as it was because the
        /// harness died (or was killed) before the run ended; also what the store writes
        /// for cells a dead harness left running.
        case harnessDied
        /// A string this version does not know (a record from another version), or a
        /// stand-in where no run ended (a report's cell that is still pending).
        case other(String)

        public init(rawValue: String) {
            switch rawValue {
            case "finished": self = .finished
            case "timeout": self = .timeout
            case "interrupted": self = .interrupted
            case "infrastructure": self = .infrastructure
            case "bad-input": self = .badInput
            case "build-failed": self = .buildFailed
            case "boot-failed": self = .bootFailed
            case "console-flood": self = .consoleFlood
            case "trace-flood": self = .traceFlood
            case "harness-died": self = .harnessDied
            default: self = .other(rawValue)
            }
        }

        public var rawValue: String {
            switch self {
            case .finished: "finished"
            case .timeout: "timeout"
            case .interrupted: "interrupted"
            case .infrastructure: "infrastructure"
            case .badInput: "bad-input"
            case .buildFailed: "build-failed"
            case .bootFailed: "boot-failed"
            case .consoleFlood: "console-flood"
            case .traceFlood: "trace-flood"
            case .harnessDied: "harness-died"
            case .other(let text): text
            }
        }

        /// Every end this version writes (not ``other(_:)``).
        public static let known: [End] = [
            .finished, .timeout, .interrupted, .infrastructure, .badInput, .buildFailed, .bootFailed,
            .consoleFlood, .traceFlood, .harnessDied,
        ]

        /// What is recorded of the end the harness told the classifier.
        public init(_ end: RunEnd) {
            switch end {
            case .guestFinished: self = .finished
            case .timeout: self = .timeout
            case .interrupted: self = .interrupted
            case .infrastructure: self = .infrastructure
            case .bootFailed: self = .bootFailed
            case .consoleFlood: self = .consoleFlood
            case .traceFlood: self = .traceFlood
            }
        }

        /// A harness error's end: the user's input, or the infrastructure.
        public init(_ kind: HarnessError.Kind) {
            self = kind == .badInput ? .badInput : .infrastructure
        }

        /// A string this version does not write.
        public var isOther: Bool {
            if case .other = self { return true }
            return false
        }
    }
}
