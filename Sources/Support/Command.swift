import Foundation
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// What a finished external command left behind.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public var succeeded: Bool { status == 0 }

    /// The last non-empty line of stderr (or stdout), for one-line errors.
    public var lastErrorLine: String {
        let lines = (stderr.isEmpty ? stdout : stderr)
            .split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        return lines.last ?? "exit status \(status)"
    }
}

/// Runs external tools (apt, git, make, cpio) through swift-subprocess.
public enum Command {
    /// Output beyond this is an error rather than an unbounded allocation.
    public static let outputLimit = 64 << 20

    /// Runs `executable` (a name looked up in PATH, or an absolute path) and
    /// collects its output. Never throws for a non-zero exit; see `check`.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        workingDirectory: String? = nil,
        environment: [String: String] = [:]
    ) async throws -> CommandResult {
        let exe: Executable = executable.hasPrefix("/")
            ? .path(FilePath(executable)) : .name(executable)
        var env: Environment = .inherit
        if !environment.isEmpty {
            var updates: [Environment.Key: String?] = [:]
            for (k, v) in environment { updates[Environment.Key(stringLiteral: k)] = v }
            env = .inherit.updating(updates)
        }
        let result = try await Subprocess.run(
            exe,
            arguments: Arguments(arguments),
            environment: env,
            workingDirectory: workingDirectory.map { FilePath($0) },
            output: .string(limit: outputLimit),
            error: .string(limit: outputLimit)
        )
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = Int32(code)
        case .signaled(let sig): status = 128 + Int32(sig)
        }
        return CommandResult(
            status: status,
            stdout: result.standardOutput ?? "",
            stderr: result.standardError ?? ""
        )
    }

    /// Runs and requires exit status 0; the error names the command and its
    /// last line of complaint.
    @discardableResult
    public static func check(
        _ executable: String,
        _ arguments: [String],
        workingDirectory: String? = nil,
        environment: [String: String] = [:],
        kind: HarnessError.Kind = .infrastructure,
        input: String? = nil
    ) async throws -> CommandResult {
        let result = try await run(executable, arguments, workingDirectory: workingDirectory,
                                   environment: environment)
        guard result.succeeded else {
            throw HarnessError(kind, input: input ?? ([executable] + arguments.prefix(3)).joined(separator: " "),
                               reason: result.lastErrorLine)
        }
        return result
    }
}
