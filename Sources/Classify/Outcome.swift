/// A run's verdict, in KCIDB's words.
public enum RunStatus: String, Codable, Sendable {
    /// The kernel and the workload behaved.
    case pass = "PASS"
    /// The kernel or the workload misbehaved: a kernel report, a workload assertion,
    /// a boot failure, a timeout.
    case fail = "FAIL"
    /// The harness or its infrastructure failed (QEMU died, libvirt error, bad input):
    /// nothing is known about the kernel.
    case error = "ERROR"
    /// The run should have produced a result and did not (the workload reported no scenarios).
    case miss = "MISS"
    /// The workload says it cannot run here (e.g. no SVA support).
    case skip = "SKIP"
    /// The kernel did not compile or link, so nothing ran (KCIDB records this on the build).
    case buildFail = "BUILD_FAIL"
}

/// How the run ended, as the harness saw it. The harness fills this in; the
/// classifier decides the verdict from it and the console.
public enum RunEnd: Sendable, Equatable {
    /// The guest printed the done marker or powered off by itself.
    case guestFinished
    /// A phase ("boot", "workload", …) ran past its deadline and the harness stopped the guest.
    case timeout(phase: String)
    /// The user stopped the harness.
    case interrupted(signal: String)
    /// libvirt, QEMU or the harness failed, or the input was not usable (e.g. the image
    /// is not a kernel): not a kernel failure.
    case infrastructure(String)
    /// The harness saw the boot fail (e.g. the guest stopped before its init ran).
    case bootFailed(String)
    /// The guest printed more than the harness keeps, and was stopped.
    case consoleFlood(limitBytes: Int)
    /// The guest wrote more to its trace port than the harness keeps, and was stopped.
    case traceFlood(limitBytes: Int)
}

/// The verdict with its reason and the console lines that support it.
public struct Outcome: Codable, Sendable, Equatable {
    public var status: RunStatus
    public var reason: String
    public var evidence: [String]

    public init(status: RunStatus, reason: String, evidence: [String] = []) {
        self.status = status
        self.reason = reason
        self.evidence = evidence
    }
}

/// What the harness asked of a run, for the rules that compare it with what the guest did.
public struct RunExpectations: Sendable, Equatable {
    /// The workload ("boot", "sva", "custom", …).
    public var workload: String
    /// Scenarios the user asked for (`--scenarios`); empty when the workload chooses.
    public var scenarios: [String]
    /// The machine has the workload's device by construction (the sva machine's
    /// sva-accel): if it did not probe, the kernel under test is to blame.
    public var machineHasDevice: Bool

    public init(workload: String, scenarios: [String] = [], machineHasDevice: Bool = false) {
        self.workload = workload
        self.scenarios = scenarios
        self.machineHasDevice = machineHasDevice
    }
}

/// Decides a run's verdict. The rules, first match wins:
///
/// 1. `.infrastructure` → ERROR with the harness's reason, whatever the console shows:
///    an infrastructure failure is never a kernel failure (reports found are evidence).
/// 2. `.interrupted` → ERROR "interrupted by SIG…".
/// 3. A kernel report that no suppression matches, anywhere in the log → FAIL, reason =
///    the first such report's title (prefixed "boot failure: " when the harness says the
///    boot failed). Every report counts, not only the stored ones: the classifier keeps
///    the first 64 texts, judges the rest and keeps the first unsuppressed one after them.
/// 4. A scenario the workload ever reported FAIL (not suppressed; a later PASS does not
///    undo it) → FAIL "<scenario>: <reason>".
/// 5. More scenarios than the classifier keeps → FAIL "the workload announced more than
///    256 scenarios" (what the dropped ones said is unknown, so they cannot pass).
/// 6. No kernel output at all (no "Booting Linux"/"Linux version" banner) in a run the
///    harness watched → FAIL "boot failure: no kernel output".
/// 7. `.bootFailed` → FAIL "boot failure: <reason>".
/// 8. `.timeout` → FAIL "timeout in <phase>; last console line: <line>";
///    `.consoleFlood` → FAIL "console flood: ...; last console line: <line>";
///    `.traceFlood` → FAIL "trace flood: ...".
/// 9. `.guestFinished` without the done marker → FAIL "guest stopped before @@kharness done".
/// 10. The workload exited non-zero (`@@kharness exit N`) → FAIL "workload exited with
///     status N": it died or gave up between or inside scenarios.
/// 11. A requested scenario (`--scenarios`) that never reported → FAIL "<scenario>:
///     requested but never reported".
/// 12. Every scenario SKIP → SKIP with their reasons; but FAIL "<reason>" when the guest
///     said the workload's device did not probe (`@@kharness probe-failed`) on a machine
///     that has the device by construction: the kernel under test broke the probe.
/// 13. A scenario began and gave no result → FAIL "<scenario>: began but gave no result".
/// 14. Done marker seen, no scenarios, and the workload is not "boot"/"none"/"" → MISS.
/// 15. Otherwise PASS.
///
/// Like KCIDB: FAIL means the kernel or the workload misbehaved, ERROR that nothing can
/// be said about the kernel. Unexpected reboots and SMMU events are kernel reports.
public func decideOutcome(analysis: ConsoleAnalysis, end: RunEnd, expected: RunExpectations) -> Outcome {
    decide(analysis: analysis, end: end, expected: expected)
}

/// ``decideOutcome(analysis:end:expected:)`` for a workload with no requested scenarios.
public func decideOutcome(analysis: ConsoleAnalysis, end: RunEnd, workload: String) -> Outcome {
    decide(analysis: analysis, end: end, expected: RunExpectations(workload: workload))
}

/// The verdict for a console log from anywhere (`kharness classify`), with no harness
/// knowledge: no deadline, no done marker expected, maybe not the whole boot. Rules 3,
/// 4, 5, 10, 12 (SKIP: the machine is unknown), and 13 above apply; otherwise PASS ("no
/// kernel reports").
public func decideLogOutcome(analysis: ConsoleAnalysis) -> Outcome {
    decide(analysis: analysis, end: nil, expected: RunExpectations(workload: ""))
}

/// `end == nil`: a bare log.
private func decide(analysis: ConsoleAnalysis, end: RunEnd?, expected: RunExpectations) -> Outcome {
    let workload = expected.workload
    let kernelReports = analysis.reports.filter { $0.isKernelReport && !$0.suppressed }
    let suppressedWorkload = Set(analysis.reports.filter { !$0.isKernelReport && $0.suppressed }.map(\.title))
    let failed = analysis.scenarios.filter {
        $0.status == .fail && !suppressedWorkload.contains("workload failure in \($0.name)")
    }
    var reportEvidence = kernelReports.prefix(5).map { "\($0.category): \($0.title)" }
    let total = analysis.unsuppressedReportCount
    if total > kernelReports.count || analysis.reportsDropped > 0 {
        let byCategory = analysis.unsuppressedReportCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        reportEvidence.append("\(total) unsuppressed kernel report(s) in all (\(byCategory.joined(separator: ", "))); "
            + "\(analysis.reportsDropped) past the first \(ConsoleClassifier.maxStoredReports) not kept")
    }
    let lastLine = analysis.lastLines.last ?? "(none)"

    switch end {
    case .infrastructure(let why)?:
        return Outcome(status: .error, reason: why, evidence: reportEvidence + analysis.lastLines.suffix(5))
    case .interrupted(let signal)?:
        return Outcome(status: .error, reason: "interrupted by \(signal)", evidence: Array(analysis.lastLines.suffix(5)))
    default:
        break
    }
    if let first = kernelReports.first {
        var reason = first.title
        if case .bootFailed? = end { reason = "boot failure: \(reason)" }
        let excerpt = first.text.split(separator: "\n", omittingEmptySubsequences: false).prefix(12).map(String.init)
        return Outcome(status: .fail, reason: reason, evidence: reportEvidence + excerpt)
    }
    if let scenario = failed.first {
        let reason = scenario.reason.isEmpty ? "\(scenario.name): failed" : "\(scenario.name): \(scenario.reason)"
        return Outcome(status: .fail, reason: reason, evidence: failed.map { "\($0.name): \($0.reason)" } + scenario.evidence)
    }
    if analysis.scenariosDropped > 0 {
        return Outcome(
            status: .fail, reason: "the workload announced more than \(ConsoleClassifier.maxScenarios) scenarios",
            evidence: ["\(analysis.scenariosDropped) protocol line(s) about scenarios past the first \(ConsoleClassifier.maxScenarios)"])
    }
    if end != nil, !analysis.sawKernelOutput {
        return Outcome(status: .fail, reason: "boot failure: no kernel output", evidence: Array(analysis.lastLines.suffix(5)))
    }
    switch end {
    case .bootFailed(let why)?:
        return Outcome(status: .fail, reason: "boot failure: \(why)", evidence: Array(analysis.lastLines.suffix(10)))
    case .timeout(let phase)?:
        return Outcome(
            status: .fail, reason: "timeout in \(phase); last console line: \(lastLine)",
            evidence: Array(analysis.lastLines.suffix(10)))
    case .consoleFlood(let limit)?:
        return Outcome(
            status: .fail,
            reason: "console flood: the guest printed more than \(limit >> 20) MiB; last console line: \(lastLine)",
            evidence: Array(analysis.lastLines.suffix(10)))
    case .traceFlood(let limit)?:
        return Outcome(
            status: .fail, reason: "trace flood: the guest wrote more than \(limit >> 20) MiB to its trace port",
            evidence: Array(analysis.lastLines.suffix(10)))
    case .guestFinished? where !analysis.sawDone:
        return Outcome(
            status: .fail, reason: "guest stopped before @@kharness done; last console line: \(lastLine)",
            evidence: Array(analysis.lastLines.suffix(10)))
    default:
        break
    }
    if let status = analysis.workloadExitStatus, status != 0 {
        return Outcome(status: .fail, reason: "workload exited with status \(status)",
                       evidence: analysis.scenarios.map { "\($0.name): \($0.status.rawValue) \($0.reason)" })
    }
    let reported = Set(analysis.scenarios.map(\.name))
    if let missing = expected.scenarios.first(where: { !reported.contains($0) }) {
        let all = expected.scenarios.filter { !reported.contains($0) }
        return Outcome(status: .fail, reason: "\(missing): requested but never reported",
                       evidence: ["requested but never reported: \(all.joined(separator: ", "))"])
    }
    if !analysis.scenarios.isEmpty, analysis.scenarios.allSatisfy({ $0.status == .skip }) {
        let reasons = analysis.scenarios.map { "\($0.name): \($0.reason)" }
        if expected.machineHasDevice, let why = analysis.probeFailure {
            return Outcome(status: .fail, reason: "\(why) (the machine has the device: the kernel did not probe it)",
                           evidence: reasons)
        }
        return Outcome(status: .skip, reason: reasons.joined(separator: "; "), evidence: reasons)
    }
    if let missing = analysis.scenarios.first(where: { $0.status == .miss }) {
        return Outcome(status: .fail, reason: "\(missing.name): began but gave no result", evidence: missing.evidence)
    }
    if end != nil, analysis.scenarios.isEmpty, !isBootOnly(workload) {
        return Outcome(status: .miss, reason: "workload \(workload) reported no scenarios")
    }
    let passed = analysis.scenarios.filter { $0.status == .pass }.map(\.name)
    let reason: String
    if end == nil {
        reason = analysis.reports.isEmpty ? "no kernel reports" : "only suppressed reports"
    } else if passed.isEmpty {
        reason = "booted and finished"
    } else {
        reason = "\(passed.count) scenario(s) passed"
    }
    return Outcome(status: .pass, reason: reason, evidence: passed)
}

private func isBootOnly(_ workload: String) -> Bool {
    ["", "boot", "none"].contains(workload)
}
