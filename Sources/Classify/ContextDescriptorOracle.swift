/// The SVA maintainer's rule from the 2022 PASID use-after-free thread: at mm exit "the
/// device may still be issuing DMA for that PASID and we need to quiesce the entry rather
/// than deactivate it", and the entry may be cleared only after the driver has stopped the
/// device and unbound.
///
/// A quiesced context descriptor is valid with translation disabled: a DMA through it gets
/// a translation fault (F_TRANSLATION), which the driver expects and the workload provokes.
/// An SMMU event C_BAD_CD naming a SubstreamID says a DMA met that PASID's descriptor
/// invalid: it was deactivated while the device could still issue DMA through it (cleared at
/// mm exit instead of quiesced, cleared under a binding still live, or the device went on
/// after its unbind, which its driver must prevent). Every binding pattern of the workload's
/// driver stops the device before it unbinds, and no scenario aims DMA at a PASID with no
/// descriptor, so on the sva machine any such event is one (none in clean runs of 6.1, 6.12,
/// 7.2 and 7.3 under every pattern). Judged from the console's decoded events (the kernel
/// rate-limits them; the first are enough), one violation per PASID, with what the trace
/// says of the PASID's bindings as evidence (those whose address space was torn down while
/// still bound first: there the descriptor must be quiesced). Not judged when the
/// device's driver traces no binds (the in-tree uio driver: user space drives the device
/// there, and that driver's own faults have their titles).
public enum ContextDescriptorOracle {
    static let maxViolations = 16
    static let maxStories = 3

    public static func judge(smmuEvents: [SmmuEvent], events: [TraceEvent]) -> [PasidLifecycleOracle.Violation] {
        var byPasid: [UInt32: [SmmuEvent]] = [:]
        var order: [UInt32] = []
        for event in smmuEvents where event.name == "C_BAD_CD" {
            guard let ssid = event.substreamID else { continue }
            if byPasid[ssid] == nil { order.append(ssid) }
            byPasid[ssid, default: []].append(event)
        }
        guard !order.isEmpty else { return [] }
        let bindings = DeviceOracle.pairBindings(events) { byPasid[UInt32(clamping: $0)] != nil }
        var exits: [String: [TraceEvent]] = [:]
        for event in events where event.kind == .mmExit {
            if let mm = event.mm, exits[mm, default: []].count < 4096 { exits[mm, default: []].append(event) }
        }
        var violations: [PasidLifecycleOracle.Violation] = []
        for ssid in order.prefix(maxViolations) {
            let seen = byPasid[ssid]!
            let first = seen[0]
            let sid = first.streamID.map { " sid 0x\(String($0, radix: 16))" } ?? ""
            let client = first.client.map { " (\($0))" } ?? ""
            var evidence = [
                "smmu: C_BAD_CD\(sid) ssid 0x\(String(ssid, radix: 16))\(client) at console line \(first.line)",
                "smmu: \(seen.count) C_BAD_CD events through PASID \(ssid) in the console",
                "rule: a PASID's context descriptor stays valid (quiesced: translation disabled) until its device "
                    + "has stopped and unbound; an invalid one met by a DMA was deactivated while DMA could still arrive",
            ]
            // The bindings whose address space was torn down while still bound come first: at
            // the teardown the descriptor must be quiesced, the moment a deactivation happens.
            let stories = (bindings[Int(ssid)] ?? []).map { story in
                (story, story.bind.mm.flatMap { mm in
                    exits[mm]?.first { $0.ts >= story.bind.ts && $0.ts <= (story.unbind?.ts ?? .infinity) }
                })
            }
            if stories.isEmpty { evidence.append("trace: no bind of PASID \(ssid)") }
            let torn = stories.filter { $0.1 != nil }
            for (story, down) in (torn.isEmpty ? stories.suffix(maxStories) : torn.prefix(maxStories)) {
                evidence.append("trace: \(story.bind.line)")
                if let down { evidence.append("trace: \(down.line) (the address space torn down while still bound)") }
                if let unbind = story.unbind { evidence.append("trace: \(unbind.line)") }
            }
            violations.append(.init(
                title: "context descriptor of PASID \(ssid) deactivated while its device still used it (C_BAD_CD)",
                evidence: evidence))
        }
        return violations
    }
}
