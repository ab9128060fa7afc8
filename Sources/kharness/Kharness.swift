import ArgumentParser
import Foundation
import Harness
import Logging
import RunModel
import Support

@main
struct Kharness: AsyncParsableCommand {
    /// Diagnostics go to stderr, beside the one-line errors; stdout carries
    /// only results (run IDs, JSON).
    static func main() async {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "kharness",
        abstract: "Kernel-patch regression harness: arm64 guests with an emulated SMMUv3, through libvirt.",
        subcommands: [
            RunCommand.self,
            BuildCommand.self,
            DoctorCommand.self,
            ClassifyCommand.self,
            MatrixCommand.self,
            CompareCommand.self,
            ReportCommand.self,
            BisectCommand.self,
            NightlyCommand.self,
        ]
    )
}

/// Maps library errors to the documented exit codes: 2 for bad input,
/// 3 for infrastructure, always with one line on stderr. An error no stage
/// classified (Foundation's, a full disk's) is said in one line by
/// ``HarnessError/init(_:)`` and is ERROR: exit 1 is a kernel's FAIL, and
/// nothing is known about the kernel.
func exitOnError<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch let exit as CleanExit {
        throw exit
    } catch let error as ValidationError {
        throw error
    } catch {
        let error = HarnessError(error)
        stderrLine("kharness: error: \(error)")
        throw ExitCode(ExitStatus.of(error.kind))
    }
}
