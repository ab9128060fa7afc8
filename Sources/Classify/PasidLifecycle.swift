/// Checks PASID lifetimes against device bindings, from the ftrace events the
/// sva workload records (the driver's `sva_accel_bind`/`sva_accel_unbind`
/// tracepoints and kprobes on the kernel's PASID free functions).
///
/// The 2022 PASID use-after-free freed a process's PASID when its address
/// space went away while a driver still had it programmed; a second process
/// then got the same PASID. Memory sanitizers cannot see it: it is a
/// use-after-free of an ID. These are its two observable shapes:
/// - a PASID freed while a binding still uses it;
/// - a PASID bound by a second address space while the first still holds it.
///
/// Trace lines are read in the ftrace text format, with or without a printk
/// prefix (`ftrace_dump_on_oops` dumps them through the console).
public struct PasidLifecycleOracle: Sendable {
    public struct Violation: Codable, Sendable, Equatable {
        /// e.g. "PASID 1 freed while still bound to pid 84".
        public var title: String
        /// The trace lines that show it, in order.
        public var evidence: [String]
    }

    private struct Binding: Sendable {
        var pid: String
        var line: String
        var count: Int
    }

    /// Live bindings: PASID -> mm -> who bound it.
    private var live: [Int: [String: Binding]] = [:]
    public private(set) var violations: [Violation] = []
    /// Events read, to tell "no trace" from "a clean trace".
    public private(set) var eventsSeen = 0
    private static let maxViolations = 32

    public init() {}

    /// Feeds one console or trace line; lines that are not PASID events are ignored.
    public mutating func observe(_ line: String) {
        guard line.contains("pasid=") else { return }
        if line.contains(" sva_accel_bind: ") {
            eventsSeen += 1
            guard field("ret", in: line) == "0", let pasid = field("pasid", in: line).flatMap(Int.init),
                  let mm = field("mm", in: line), let pid = field("pid", in: line) else { return }
            if let holder = live[pasid]?.first(where: { $0.key != mm && $0.value.count > 0 }) {
                record("PASID \(pasid) bound by pid \(pid) while still bound to pid \(holder.value.pid)",
                       [holder.value.line, line])
            }
            live[pasid, default: [:]][mm, default: Binding(pid: pid, line: line, count: 0)].count += 1
        } else if line.contains(" sva_accel_unbind: ") {
            eventsSeen += 1
            guard let pasid = field("pasid", in: line).flatMap(Int.init), let mm = field("mm", in: line),
                  var binding = live[pasid]?[mm] else { return }
            binding.count -= 1
            live[pasid]?[mm] = binding.count > 0 ? binding : nil
        } else if line.contains(" free_global_pasid: ") || line.contains(" ioasid_free: ") || line.contains(" ioasid_put: ") {
            eventsSeen += 1
            guard let pasid = field("pasid", in: line).flatMap(Int.init),
                  let holder = live[pasid]?.values.first(where: { $0.count > 0 }) else { return }
            record("PASID \(pasid) freed while still bound to pid \(holder.pid)", [holder.line, line])
        }
    }

    private mutating func record(_ title: String, _ evidence: [String]) {
        guard violations.count < Self.maxViolations, !violations.contains(where: { $0.title == title }) else { return }
        violations.append(Violation(title: title, evidence: evidence.map { String($0.prefix(400)) }))
    }

    /// The value of `name=value` in a trace line, up to the next space.
    private func field(_ name: String, in line: String) -> String? {
        guard let range = line.range(of: " \(name)=") else { return nil }
        let rest = line[range.upperBound...]
        let value = rest.prefix { !$0.isWhitespace }
        return value.isEmpty ? nil : String(value)
    }
}
