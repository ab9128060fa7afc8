import Classify
import Foundation
import Support

/// kharness's exit codes, derived from the typed values here and nowhere else:
///
/// | code | when |
/// | --- | --- |
/// | 0 | PASS, SKIP or MISS (MISS and SKIP are not failures of the kernel); nothing new |
/// | 1 | FAIL or BUILD_FAIL; a new regression; a check that failed; a bisect with no first bad commit |
/// | 2 | bad input (a spec, a file, an option) |
/// | 3 | ERROR: the harness or its infrastructure failed, nothing is known about the kernel |
/// | 130, 143 | stopped by SIGINT, SIGTERM (128 + the signal, as a shell reports it) |
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    public static let badInput: Int32 = 2
    public static let error: Int32 = 3

    /// A verdict with the way its run ended. An ERROR is bad input only when the
    /// run says so; interruptions are decided by the signal (``interrupted(bySignalNamed:)``).
    public static func of(_ status: RunStatus, end: RunResult.End) -> Int32 {
        switch status {
        case .pass, .skip, .miss: success
        case .fail, .buildFail: failure
        case .error: end == .badInput ? badInput : error
        }
    }

    /// One run: 130/143 when a signal stopped it, else its verdict's code.
    public static func of(_ result: RunResult) -> Int32 {
        if result.end == .interrupted {
            return interrupted(bySignalNamed: result.interruptingSignal ?? "SIGINT")
        }
        return of(result.status, end: result.end)
    }

    /// A harness error that reached the command line.
    public static func of(_ kind: HarnessError.Kind) -> Int32 {
        kind == .badInput ? badInput : error
    }

    /// Stopped by `signal`: 143 for SIGTERM, else 130 (SIGINT, the user's Ctrl-C).
    public static func interrupted(by signal: Int32) -> Int32 {
        signal == SIGTERM ? 143 : 130
    }

    /// ``interrupted(by:)`` for a signal known by name ("SIGTERM"), as records keep it.
    public static func interrupted(bySignalNamed name: String) -> Int32 {
        interrupted(by: name == "SIGTERM" ? SIGTERM : SIGINT)
    }
}
