import Foundation

/// The SMMU's own decisions (QEMU patch 0007): what it cached, what the kernel
/// told it to forget, and the one decision that is a kernel bug by itself.
///
/// The SMMUv3's IOTLB is tagged by ASID (and VMID), on silicon as in the model.
/// A kernel that frees an address space's ASID without invalidating it
/// (`CMD_TLBI_NH_ASID`) and hands the ASID to another address space leaves
/// the SMMU translating the new context's addresses through the old one's
/// entries: the device reads or writes another process's memory, with no
/// fault, no event and nothing wrong in the kernel's trace. The SMMU sees it:
/// it knows which context (TTB0) filled each entry, and records a
/// `stale-hit` when an entry serves a context with another TTB0 (once per
/// entry and serving context). No trace is needed to judge it, nor the clock.
extension DeviceOracle {
    /// Violations of this kind at most (one per reuse of an ASID by a context).
    static let maxStaleTlbViolations = 16
    /// Invalidation records quoted per violation; the rest are counted.
    static let maxQuotedInvalidations = 6

    /// A translation served from a TLB entry filled under another context is a
    /// violation, one per (stream, PASID, ASID, filling TTB0, serving TTB0). Its
    /// evidence: the CD record of the context that filled the entry (the last one
    /// before the hit), the CFGI and TLBI records of that stream and ASID between
    /// it and the hit (or that there was no TLB invalidation of the ASID), the CD
    /// record of the context served, the first stale-hit record, the device access
    /// it served (same PASID and page, the nearest counter) if the device's records
    /// have it, and how many entries served the new context.
    ///
    /// The SMMU's records are read in file order, which is the order it decided in
    /// (it writes each record at once; out-of-order counters are only counted).
    mutating func judgeStaleTlbHits(log: DeviceLog) {
        if log.smmuRejectedLines > 0 { notes.append("SMMU records: \(log.smmuRejectedLines) malformed lines skipped") }
        if log.smmuOutOfOrder > 0 { notes.append("SMMU records: \(log.smmuOutOfOrder) records out of time order") }
        if log.smmuTruncated { notes.append("SMMU records: more than \(DeviceLog.maxSmmuRecords), the rest not kept") }
        if let a = log.counterHz, let b = log.smmuCounterHz, a != b {
            notes.append("SMMU records: counter at \(b) Hz, the device's at \(a) Hz: accesses matched by page only")
        }
        let smmu = log.smmuRecords

        struct Key: Hashable {
            var sid: UInt32
            var ssid: Int?
            var asid: Int
            var filledTtb0: UInt64
            var ttb0: UInt64
        }
        var groups: [Key: (first: Int, count: Int)] = [:]
        var order: [Key] = []
        var ungrouped = 0
        for (i, record) in smmu.enumerated() {
            guard case .staleHit(let sid, let ssid, let asid, _, let ttb0, _, let filledTtb0) = record.decision else { continue }
            let key = Key(sid: sid, ssid: ssid, asid: asid, filledTtb0: filledTtb0, ttb0: ttb0)
            if let group = groups[key] {
                groups[key] = (group.first, group.count + 1)
            } else if order.count < Self.maxStaleTlbViolations {
                groups[key] = (i, 1)
                order.append(key)
            } else {
                ungrouped += 1
            }
        }
        guard !order.isEmpty else { return }
        if ungrouped > 0 {
            notes.append("SMMU records: \(ungrouped) stale-hit records past \(Self.maxStaleTlbViolations) reuses not judged")
        }

        // The device's accesses to the pages the first stale hits translated, nearest counter.
        struct Page: Hashable {
            var pasid: Int?
            var page: UInt64
        }
        var wanted: [Page: UInt64] = [:]
        for key in order {
            guard case .staleHit(_, let ssid, _, let iova, _, _, _) = smmu[groups[key]!.first].decision else { continue }
            wanted[Page(pasid: ssid, page: iova >> 12)] = smmu[groups[key]!.first].counter
        }
        var served: [Page: DeviceRecord] = [:]
        func distance(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : b - a }
        for record in log.records {
            let page = Page(pasid: record.pasid, page: record.iova >> 12)
            guard let counter = wanted[page] else { continue }
            if let best = served[page], distance(best.counter, counter) <= distance(record.counter, counter) { continue }
            served[page] = record
        }

        for key in order {
            guard violations.count < 64 else { break }
            let (first, count) = groups[key]!
            let hit = smmu[first]
            guard case .staleHit(_, _, _, let iova, _, let filledSsid, _) = hit.decision else { continue }
            // The CD records of the two contexts: the last of each before the hit.
            func lastCd(ssid: Int?, ttb0: UInt64) -> Int? {
                smmu[..<first].lastIndex {
                    if case .cd(key.sid, ssid, key.asid, ttb0, true) = $0.decision { return true }
                    return false
                }
            }
            let filling = lastCd(ssid: filledSsid, ttb0: key.filledTtb0)
            let serving = lastCd(ssid: key.ssid, ttb0: key.ttb0)
            let pasid = key.ssid.map { "PASID \($0)" } ?? "DMA without PASID"
            var evidence: [String] = []
            if let filling {
                evidence.append("smmu: \(smmu[filling].line) (the context that filled the entry)")
            } else {
                evidence.append("smmu: no record of the CD (ASID \(key.asid), TTB0 0x\(String(key.filledTtb0, radix: 16))) "
                    + "that filled the entry")
            }
            // What the kernel told the SMMU between the filling context's CD and the hit.
            var quoted = 0, more = 0, tlbisOfAsid = 0
            for record in smmu[((filling ?? -1) + 1)..<first] {
                let relevant: Bool
                switch record.decision {
                case .tlbi:
                    relevant = record.invalidatesTlb(asid: key.asid, iova: iova)
                    if relevant { tlbisOfAsid += 1 }
                case .cfgi(let kind, let sid, let ssid):
                    relevant = kind == .all || (sid == key.sid && (ssid == nil || ssid == filledSsid || ssid == key.ssid))
                default:
                    relevant = false
                }
                guard relevant else { continue }
                if quoted < Self.maxQuotedInvalidations {
                    evidence.append("smmu: \(record.line)")
                    quoted += 1
                } else {
                    more += 1
                }
            }
            if more > 0 { evidence.append("smmu: \(more) more invalidations of the stream or the ASID") }
            if tlbisOfAsid == 0 {
                evidence.append("smmu: no TLB invalidation of ASID \(key.asid) between")
            } else {
                // The entry was filled after the CD was fetched, maybe after these too.
                evidence.append("smmu: \(tlbisOfAsid) TLB invalidations of ASID \(key.asid) at 0x\(String(iova, radix: 16)) "
                    + "between, which the entry was filled after")
            }
            if let serving {
                evidence.append("smmu: \(smmu[serving].line) (the context served, same ASID)")
            }
            evidence.append("smmu: \(hit.line)")
            if let access = served[Page(pasid: key.ssid, page: iova >> 12)] {
                let delta = distance(access.counter, hit.counter)
                evidence.append("device: \(access.line) (the access it served, \(delta) counter ticks "
                    + (access.counter <= hit.counter ? "before" : "after") + " the SMMU's record)")
            } else if !log.records.isEmpty {
                evidence.append("device: no access through \(pasid) to page 0x\(String(iova & ~0xfff, radix: 16)) in the records")
            }
            evidence.append("smmu: \(count) TLB \(count == 1 ? "entry" : "entries") of ASID \(key.asid) cached for TTB0 "
                + "0x\(String(key.filledTtb0, radix: 16)) served TTB0 0x\(String(key.ttb0, radix: 16)) "
                + "(the SMMU records each entry once)")
            violations.append(.init(
                title: "SMMU translated \(pasid) through a TLB entry cached for another address space "
                    + "(ASID \(key.asid) reused without invalidation)",
                evidence: evidence))
        }
    }
}
