/// The SMMU's stalls (QEMU patch 0008, the `sva-stall` machine): a faulting transaction
/// of a stall-enabled stream is held in the SMMU and reported to the kernel, which must
/// answer every one (its I/O page-fault handler's page response: CMD_RESUME with retry or
/// abort, or CMD_STALL_TERM for the stream). A stall nobody answers leaves the device waiting
/// for its access forever: the accelerator timeouts of the 2022 hardware, seen from the
/// device's side.
extension DeviceOracle {
    static let maxStallViolations = 16

    /// A stall with no resume of its tag after it, when the workload finished and the trace
    /// is whole (a kernel that died mid-run leaves stalls pending that nobody could answer, and
    /// its panic is the verdict). One violation per PASID, the first such stall as evidence.
    /// Tags are reused once resumed, so each stall is matched with the first resume of the
    /// same stream and tag after it, in file order (the SMMU writes each record as it decides).
    ///
    /// With the trace's clock and binds (`events`, `clock`), a stall answered only after the
    /// unbind of the binding it came through is one too: the fault handler never answered it,
    /// and something else did later (the SMMU disabled at shutdown, a device reset), while the
    /// device waited. A correct kernel answers even a fault of an address space that is gone,
    /// with an abort, as soon as its fault work runs.
    mutating func judgeUnresumedStalls(log: DeviceLog, events: [TraceEvent] = [], clock: CounterClock? = nil) {
        struct Key: Hashable {
            var sid: UInt32
            var stag: Int
        }
        var pending: [Key: Int] = [:]
        var unanswered: [Int] = []
        var answered: [(stall: Int, resume: Int)] = []
        for (i, record) in log.smmuRecords.enumerated() {
            switch record.decision {
            case .stall(let sid, _, _, let stag, _):
                let key = Key(sid: sid, stag: stag)
                // A second stall with a pending tag: the first was never answered (an SMMU
                // reuses a tag only once it is free).
                if let open = pending[key] { unanswered.append(open) }
                pending[key] = i
            case .resume(let sid, let stag, _):
                if let open = pending.removeValue(forKey: Key(sid: sid, stag: stag)), answered.count < 65_536 {
                    answered.append((open, i))
                }
            default:
                continue
            }
        }
        var lateAnswers: [(stall: Int, resume: Int, unbind: TraceEvent)]?
        if let clock, !answered.isEmpty {
            let bindings = Self.pairBindings(events)
            lateAnswers = answered.compactMap { pair in
                guard case .stall(_, let ssid?, _, _, _) = log.smmuRecords[pair.stall].decision else { return nil }
                let stalled = clock.interval(log.smmuRecords[pair.stall].counter)
                let resumed = clock.interval(log.smmuRecords[pair.resume].counter)
                // The binding the stall came through, and whether the answer came after its unbind.
                guard let binding = bindings[ssid]?.last(where: {
                    $0.bind.ts < stalled.earliest && ($0.unbind?.ts ?? .infinity) > stalled.latest
                }), let unbind = binding.unbind, resumed.earliest > unbind.ts else { return nil }
                return (pair.stall, pair.resume, unbind)
            }
        }
        unanswered += pending.values
        if let late = lateAnswers, !late.isEmpty { reportLateAnswers(late, log: log) }
        guard !unanswered.isEmpty else { return }
        unanswered.sort()
        var byPasid: [Int?: [Int]] = [:]
        var order: [Int?] = []
        for i in unanswered {
            guard case .stall(_, let ssid, _, _, _) = log.smmuRecords[i].decision else { continue }
            if byPasid[ssid] == nil { order.append(ssid) }
            byPasid[ssid, default: []].append(i)
        }
        for ssid in order.prefix(Self.maxStallViolations) where violations.count < 64 {
            let stalls = byPasid[ssid]!
            let first = log.smmuRecords[stalls[0]]
            guard case .stall(let sid, _, let iova, let stag, let recorded) = first.decision else { continue }
            var evidence = ["smmu: \(first.line)"]
            if let access = Self.heldAccess(log, stag: stag, pasid: ssid, iova: iova, before: first.counter) {
                evidence.append("device: \(access.line)")
            }
            evidence.append("smmu: no resume of stall tag \(stag) of stream 0x\(String(sid, radix: 16)) in the "
                + "\(log.smmuRecords.count - stalls[0] - 1) SMMU records after it"
                + (recorded ? "" : " (its event never reached the event queue)"))
            let pasid = ssid.map { "PASID \($0)" } ?? "no PASID"
            evidence.append("smmu: \(stalls.count) stalls through \(pasid) never answered")
            let through = ssid.map { "through PASID \($0) " } ?? ""
            violations.append(.init(title: "device access \(through)stalled in the SMMU and was never resumed",
                                    evidence: evidence))
        }
    }

    /// The device's own record of a held access: the same tag, PASID and page, the last one
    /// at or before the SMMU's stall record.
    static func heldAccess(_ log: DeviceLog, stag: Int, pasid: Int?, iova: UInt64, before counter: UInt64) -> DeviceRecord? {
        log.records.last {
            $0.outcome == .stalled(stag: stag) && $0.pasid == pasid && $0.counter <= counter && $0.iova >> 12 == iova >> 12
        }
    }

    /// Stalls answered only after the unbind of their binding: one violation per PASID.
    private mutating func reportLateAnswers(_ late: [(stall: Int, resume: Int, unbind: TraceEvent)], log: DeviceLog) {
        var perPasid: [Int: Int] = [:]
        for entry in late {
            if case .stall(_, let ssid?, _, _, _) = log.smmuRecords[entry.stall].decision { perPasid[ssid, default: 0] += 1 }
        }
        var seen: Set<Int> = []
        for entry in late where violations.count < 64 && seen.count < Self.maxStallViolations {
            guard case .stall(_, let ssid?, let iova, let stag, _) = log.smmuRecords[entry.stall].decision,
                  seen.insert(ssid).inserted else { continue }
            let stall = log.smmuRecords[entry.stall], resume = log.smmuRecords[entry.resume]
            var evidence = ["smmu: \(stall.line)"]
            if let access = Self.heldAccess(log, stag: stag, pasid: ssid, iova: iova, before: stall.counter) {
                evidence.append("device: \(access.line)")
            }
            evidence.append("trace: \(entry.unbind.line) (the binding's unbind, before any answer)")
            evidence.append("smmu: \(resume.line) (the first answer, after the unbind)")
            evidence.append("smmu: \(perPasid[ssid] ?? 0) stalls through PASID \(ssid) answered only after their binding's unbind")
            violations.append(.init(
                title: "device access through PASID \(ssid) stalled in the SMMU and was not answered before its unbind",
                evidence: evidence))
        }
    }
}
