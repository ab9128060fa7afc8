import Classify
import Foundation
import Support

/// sva-accel's records file, kept in the run directory as `device.log`; the
/// SMMU writes its decisions into the same file through a second chardev
/// (QEMU patch 0007, both chardevs in append mode: see `DomainDescription`).
///
/// A QEMU `file` chardev rather than a libvirt channel: a libvirt channel
/// needs a guest-side target (a virtio port), while the records come from
/// the device model itself, and a chardev is the device property QEMU
/// offers for that; a `file` backend never blocks the device (a pipe or
/// socket would stall it on a slow reader) and leaves the records on disk
/// on disk even when the harness dies. libvirt does not open it (it sits on
/// the `qemu:commandline`), so QEMU, running as libvirt's unprivileged user,
/// opens it itself. The run directory may be anywhere the user chose (under
/// a 0700 home or a private temporary directory QEMU cannot enter), so QEMU
/// writes into a spool directory in the cache, which QEMU already reads
/// (kernels, initramfs images), and the harness moves the file into the run
/// directory when the run ends (``keep(in:)``); spool files a killed harness
/// left behind are removed after a day. QEMU writes without a limit, so the
/// harness watches its size, stops a guest whose device floods it, and reads
/// at most `DeviceLog.defaultLimitBytes`.
/// Not Sendable: one run's task creates, watches and keeps it, and the compiler holds it there.
final class DeviceRecordsFile {
    /// Where QEMU writes, until ``keep(in:)`` moves it.
    private(set) var path: String
    private(set) var sawFlood = false

    init(path: String) { self.path = path }

    /// The user qemu:///system runs QEMU as on Debian.
    static let qemuUser = "libvirt-qemu"

    static func create(spool: String, runID: String) throws -> DeviceRecordsFile {
        reclaimStale(in: spool)
        let path = "\(spool)/\(runID).log"
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644]) else {
            throw HarnessError.infrastructure(path, "cannot create the device records file")
        }
        if geteuid() == 0, let user = getpwnam(qemuUser) {
            guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw HarnessError.infrastructure(path, "cannot hand the device records file to \(qemuUser): \(String(cString: strerror(errno)))")
            }
        }
        return DeviceRecordsFile(path: path)
    }

    /// Moves the records into the run directory as `device.log` (QEMU is gone by then).
    func keep(in directory: String) throws {
        let target = "\(directory)/device.log"
        guard path != target else { return }
        if rename(path, target) != 0 {
            // Another file system: copy, then drop the spool file.
            do {
                try FileManager.default.copyItem(atPath: path, toPath: target)
                try? FileManager.default.removeItem(atPath: path)
            } catch {
                throw HarnessError.infrastructure(target, "cannot keep the device records: \(error.localizedDescription)")
            }
        }
        path = target
    }

    /// Spool files older than a day belong to harnesses that were killed.
    private static func reclaimStale(in spool: String) {
        let cutoff = Date().addingTimeInterval(-86_400)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: spool) else { return }
        for name in names where name.hasSuffix(".log") {
            let file = "\(spool)/\(name)"
            if let modified = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date,
               modified < cutoff
            {
                try? FileManager.default.removeItem(atPath: file)
            }
        }
    }

    var size: Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    func flooded(limitBytes: Int) -> Bool {
        if size > limitBytes { sawFlood = true }
        return sawFlood
    }

    /// The flood ends the run like the trace port's does, under its own name
    /// (`recordsBytes`: the records file's size).
    static func floodOutcome(_ outcome: Outcome, recordsBytes: Int) -> Outcome {
        guard outcome.reason.hasPrefix("trace flood") else { return outcome }
        return Outcome(status: .fail,
                       reason: "device records flood: sva-accel wrote more than \(recordsBytes >> 20) MiB of access records",
                       evidence: outcome.evidence)
    }
}

extension DeviceRecordsFile {
    /// The device-side oracles over the device's records and the trace from
    /// every channel; keeps the records on the trace's clock as
    /// `device-events.jsonl` when the two clocks could be joined.
    static func oracle(_ deviceRecords: DeviceRecordsFile?, trace: TraceCollector, directory: String,
                       bindingsTraced: Bool = true) -> DeviceOracle {
        guard let deviceRecords else { return DeviceOracle(log: DeviceLog(), traceLines: [], events: []) }
        let log = DeviceLog.load(path: deviceRecords.path)
        let oracle = DeviceOracle(log: log, traceLines: trace.portLines + trace.consoleLines, events: trace.events,
                                  traceComplete: trace.complete, bindingsTraced: bindingsTraced)
        if let clock = oracle.clock {
            var jsonl = ""
            jsonl.reserveCapacity(log.records.count * 120)
            for record in log.records {
                let (earliest, latest) = clock.interval(record.counter)
                let outcome: String
                switch record.outcome {
                case .reached(let pa): outcome = "\"pa\":\"0x\(String(pa, radix: 16))\""
                case .reachedSomewhere: outcome = "\"pa\":\"?\""
                case .fault: outcome = "\"fault\":true"
                case .stalled(let stag): outcome = "\"stall\":\(stag)"
                }
                jsonl += "{\"dir\":\"\(record.isWrite ? "w" : "r")\",\(outcome),\"iova\":\"0x\(String(record.iova, radix: 16))\","
                    + "\"len\":\(record.length),\"pasid\":\(record.pasid.map(String.init) ?? "null"),\"slot\":\(record.slot),"
                    + "\"ts\":\(DeviceOracle.seconds(earliest)),\"ts_latest\":\(DeviceOracle.seconds(latest))}\n"
            }
            try? Files.writeAtomically(jsonl, to: "\(directory)/device-events.jsonl")
        }
        return oracle
    }
}
