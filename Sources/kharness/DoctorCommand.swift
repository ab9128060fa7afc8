import ArgumentParser
import Harness
import RunModel

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check every prerequisite of a run, one line each, with how to fix what is missing.")

    @Option(help: "libvirt connection URI.")
    var connect = "qemu:///system"

    func run() async throws {
        let checks = await Doctor.checks(uri: connect)
        for check in checks {
            print("\(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)\(check.ok ? "" : " -> \(check.fix)")")
        }
        if checks.contains(where: { !$0.ok }) { throw ExitCode(ExitStatus.failure) }
    }
}
