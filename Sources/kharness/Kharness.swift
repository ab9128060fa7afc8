import ArgumentParser
import Foundation
import Harness
import Support

@main
struct Kharness: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kharness",
        abstract: "Kernel-patch regression harness: arm64 guests with an emulated SMMUv3, through libvirt.",
        subcommands: [
            RunCommand.self,
            BuildCommand.self,
            DoctorCommand.self,
            ClassifyCommand.self,
        ]
    )
}

/// Maps library errors to the documented exit codes: 2 for bad input,
/// 3 for infrastructure, always with one line on stderr.
func exitOnError<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as HarnessError {
        FileHandle.standardError.write(Data("kharness: error: \(error)\n".utf8))
        throw ExitCode(error.kind == .badInput ? 2 : 3)
    }
}
