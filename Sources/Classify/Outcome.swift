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

/// Decides a run's verdict. The rules, first match wins:
///
/// 1. `.infrastructure` → ERROR with the harness's reason, whatever the console shows:
///    an infrastructure failure is never a kernel failure (reports found are evidence).
/// 2. `.interrupted` → ERROR "interrupted by SIG…".
/// 3. A kernel report that no suppression matches → FAIL, reason = the first such report's
///    title (prefixed "boot failure: " when the harness says the boot failed).
/// 4. A scenario the workload reported FAIL (not suppressed) → FAIL "<scenario>: <reason>".
/// 5. No kernel output at all (no "Booting Linux"/"Linux version" banner) in a run the
///    harness watched → FAIL "boot failure: no kernel output".
/// 6. `.bootFailed` → FAIL "boot failure: <reason>".
/// 7. `.timeout` → FAIL "timeout in <phase>; last console line: <line>";
///    `.consoleFlood` → FAIL "console flood: ...; last console line: <line>";
///    `.traceFlood` → FAIL "trace flood: ...".
/// 8. `.guestFinished` without the done marker → FAIL "guest stopped before @@kharness done".
/// 9. Every scenario SKIP → SKIP with their reasons.
/// 10. A scenario began and gave no result → FAIL "<scenario>: began but gave no result".
/// 11. Done marker seen, no scenarios, and the workload is not "boot"/"none"/"" → MISS.
/// 12. Otherwise PASS.
///
/// Like KCIDB: FAIL means the kernel or the workload misbehaved, ERROR that nothing can
/// be said about the kernel. Unexpected reboots and SMMU events are kernel reports.
public func decideOutcome(analysis: ConsoleAnalysis, end: RunEnd, workload: String) -> Outcome {
    decide(analysis: analysis, end: end, workload: workload)
}

/// The verdict for a console log from anywhere (`kharness classify`), with no harness
/// knowledge: no deadline, no done marker expected, maybe not the whole boot. Rules 3,
/// 4, 9 and 10 above apply; otherwise PASS ("no kernel reports").
public func decideLogOutcome(analysis: ConsoleAnalysis) -> Outcome {
    decide(analysis: analysis, end: nil, workload: "")
}

/// `end == nil`: a bare log.
private func decide(analysis: ConsoleAnalysis, end: RunEnd?, workload: String) -> Outcome {
    let kernelReports = analysis.reports.filter { $0.isKernelReport && !$0.suppressed }
    let suppressedWorkload = Set(analysis.reports.filter { !$0.isKernelReport && $0.suppressed }.map(\.title))
    let failed = analysis.scenarios.filter {
        $0.status == .fail && !suppressedWorkload.contains("workload failure in \($0.name)")
    }
    let reportEvidence = kernelReports.prefix(5).map { "\($0.category): \($0.title)" }
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
    if !analysis.scenarios.isEmpty, analysis.scenarios.allSatisfy({ $0.status == .skip }) {
        let reasons = analysis.scenarios.map { "\($0.name): \($0.reason)" }
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
