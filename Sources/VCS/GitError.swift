import Foundation
import Support

/// What went wrong with git, split the way the exit codes are: a revision or a
/// path the user gave that git does not know is their input (exit 2); git that
/// cannot be run, a clone that cannot be made, a command that fails on a
/// repository kharness made itself is the machine's (exit 3).
///
/// Callers that know the user's words for the input (`--good v6.12`,
/// `git:/src/linux@v6.12`) catch the bad-input cases and say it in those words;
/// everything else reaches the command line through ``HarnessError/init(_:)``.
public enum GitError: Error, Equatable, Sendable, OneLineError {
    /// The path is not a directory or holds no git repository.
    case notARepository(path: String)
    /// `revision` names no commit in the repository; `detail` is git's complaint
    /// when it said more than that.
    case unknownRevision(String, repository: String, detail: String = "")
    /// git could not be run at all (not installed, not in PATH, out of processes).
    case unavailable(executable: String, reason: String)
    /// A shared clone could not be made or moved into place, and no other
    /// process made it meanwhile.
    case cloneFailed(destination: String, reason: String)
    /// Any other git command that had to succeed did not.
    case failed(command: String, repository: String, reason: String)

    public var kind: HarnessError.Kind {
        switch self {
        case .notARepository, .unknownRevision: .badInput
        case .unavailable, .cloneFailed, .failed: .infrastructure
        }
    }

    public var input: String {
        switch self {
        case .notARepository(let path): path
        case .unknownRevision(let revision, _, _): revision
        case .unavailable(let executable, _): executable
        case .cloneFailed(let destination, _): destination
        case .failed(let command, let repository, _): "\(repository): \(command)"
        }
    }

    public var reason: String {
        switch self {
        case .notARepository: "not a git repository"
        case .unknownRevision(_, let repository, _): "unknown revision in \(repository)"
        case .unavailable(_, let reason): "cannot run git: \(reason)"
        case .cloneFailed(_, let reason): "cannot create the shared clone: \(reason)"
        case .failed(_, _, let reason): reason
        }
    }
}
