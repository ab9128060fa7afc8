import Foundation
import Support

/// Checks PASID lifetimes against device bindings and process lifetimes,
/// from the sva workload's trace (the driver's `sva_accel` events, kprobes on
/// the kernel's PASID and mm functions, the scheduler's fork/exit) and from
/// the workload's own canary reports.
///
/// The 2022 PASID use-after-free freed a process's PASID when its address
/// space went away while a driver still had it programmed; a second process
/// then got the same PASID. Memory sanitizers cannot see it: it is a
/// use-after-free of an ID. Each of its observable shapes, and of the
/// opposite mistake (an ID never given back), is a violation with a title of
/// its own:
/// - a PASID freed while a binding still uses it;
/// - a PASID handed out by the allocator while a binding still uses it;
/// - a PASID bound by a second address space while the first still holds it;
/// - a bind refused because its PASID is still held by a binding whose
///   process is dead;
/// - a device write that landed in another process (a canary page changed);
/// - a PASID never freed after every holder is gone (only from a whole trace).
public struct PasidLifecycleOracle: Sendable {
    public struct Violation: Codable, Sendable, Equatable {
        /// e.g. "PASID 1 freed while still bound to pid 84".
        public var title: String
        /// The trace lines that show it, in order.
        public var evidence: [String]

        public init(title: String, evidence: [String]) {
            self.title = title
            self.evidence = evidence
        }

        /// The category stores, comparisons and reports file violations under.
        public static let category = KernelReport.Category.pasidLifetime.rawValue

        /// PIDs and PASID numbers differ from run to run; the kind of
        /// violation does not, so the same bug has the same signature.
        public static func signature(title: String) -> String {
            "lifecycle-" + Digest.sha256(NumberMask.digitRuns(title, addresses: false)).prefix(12)
        }

        /// The violation as a kernel report: what keeps and compares reports
        /// (the store, `kharness compare`) then knows the cause of the oops
        /// that follows, not only the oops, whose signature varies with
        /// where the corrupted slab is hit.
        public var report: KernelReport {
            KernelReport(category: .pasidLifetime, title: title, signature: Self.signature(title: title),
                         guiltyFrame: nil, text: ([title] + evidence).joined(separator: "\n"), corrupted: false)
        }
    }

    private struct Binding: Sendable {
        var pid: Int
        var line: String
        var count: Int
    }

    /// Live bindings: PASID -> mm -> who bound it.
    private var live: [Int: [String: Binding]] = [:]
    /// The PASID each address space holds (the kernel keeps it until the mm is dropped).
    private var owners = PasidOwners()
    /// PASIDs allocated and not yet freed, with the line that showed it.
    private var allocated: [Int: String] = [:]
    /// The mm a thread is binding right now (between bind_start and the driver's verdict).
    private var binding: [Int: (mm: String, pasid: Int?)] = [:]
    /// Address spaces whose last reference went while their PASID was still allocated.
    private var dropped: [Int: (mm: String, pid: Int?, lines: [String])] = [:]
    /// Threads that exited (and were not reused by a later fork).
    private var exited: Set<Int> = []
    private var children: [Int: [Int]] = [:]
    /// Who bound each mm last, for titles.
    private var binderOfMm: [String: Int] = [:]
    /// Successful jobs that ran on a PASID while another process's address
    /// space had it bound, by that process: where a write would land.
    private var strayJobs: [Int: TraceEvent] = [:]
    private var parent: [Int: Int] = [:]
    public private(set) var violations: [Violation] = []
    /// Events read, to tell "no trace" from "a clean trace".
    public private(set) var eventsSeen = 0
    private static let maxViolations = 32
    private static let doneStatus = 0x2

    public init() {}

    /// Feeds a trace line (either ftrace format); lines that are not events are ignored.
    public mutating func observe(_ line: String) {
        if let event = TraceEvent.parse(line) { observe(event) }
    }

    public mutating func observe(_ event: TraceEvent) {
        guard let kind = event.kind else { return }
        eventsSeen += 1
        switch kind {
        case .fork:
            if let child = event.child {
                exited.remove(child)
                parent[child] = event.pid
                if children[event.pid, default: []].count < 4096 { children[event.pid, default: []].append(child) }
            }
        case .exit:
            exited.insert(event.pid)
        case .bindStart:
            if let mm = event.mm { binding[event.thread] = (mm, nil) }
        case .pasidAlloc:
            guard let pasid = event.pasid else { break }
            // The allocator hands out an ID a binding still uses: whatever
            // the new holder does with it, two address spaces now share it.
            // An address space keeps its PASID, bound or not, until it is dropped.
            let newOwner = binding[event.thread]?.mm
            if let holder = live[pasid]?.first(where: { $0.key != newOwner && $0.value.count > 0 })?.value {
                record("PASID \(pasid) handed out to pid \(event.pid) while still bound to pid \(holder.pid)",
                       [holder.line, event.line])
            } else if let owner = owners.addressSpaces(holding: pasid).first(where: { $0 != newOwner }),
                      let line = allocated[pasid] {
                let who = binderOfMm[owner].map { "pid \($0)" } ?? owner
                record("PASID \(pasid) handed out to pid \(event.pid) while the address space of \(who) still holds it",
                       [line, event.line])
            }
            // Allocated again: whatever was pending on it was freed unseen.
            dropped[pasid] = nil
            allocated[pasid] = event.line
            if let mm = binding[event.thread]?.mm {
                binding[event.thread]?.pasid = pasid
                owners.assign(pasid, to: mm)
            }
        case .pasidAttach:
            if let pasid = event.pasid, binding[event.thread] != nil { binding[event.thread]?.pasid = pasid }
        case .bind:
            bind(event)
        case .bindRefused:
            refused(event)
        case .unbind:
            binding[event.thread] = nil
            guard let pasid = event.pasid, let mm = event.mm, var held = live[pasid]?[mm] else { return }
            held.count -= 1
            live[pasid]?[mm] = held.count > 0 ? held : nil
        case .job:
            guard event.ret == Self.doneStatus, let pasid = event.pasid, let mm = event.mm,
                  let other = live[pasid]?.first(where: { $0.key != mm && $0.value.count > 0 })?.value else { break }
            if strayJobs.count < 4096 || strayJobs[other.pid] != nil { strayJobs[other.pid] = event }
        case .pasidFree:
            guard let pasid = event.pasid else { break }
            if let holder = live[pasid]?.values.first(where: { $0.count > 0 }) {
                record("PASID \(pasid) freed while still bound to pid \(holder.pid)", [holder.line, event.line])
            }
            allocated[pasid] = nil
            dropped[pasid] = nil
            owners.free(pasid)
        case .mmDrop, .mmPasidDrop:
            guard let mm = event.mm else { break }
            if let pasid = owners.pasid(of: mm), allocated[pasid] != nil, dropped[pasid] == nil {
                let lines = [allocated[pasid]!, event.line].filter { !$0.isEmpty }
                dropped[pasid] = (mm, binderOfMm[mm], lines)
            }
            if kind == .mmDrop { owners.drop(mm) }
        case .exec, .pasidDetach, .mmExit:
            break
        }
    }

    private mutating func bind(_ event: TraceEvent) {
        binding[event.thread] = nil
        guard let pasid = event.pasid, let mm = event.mm else { return }
        if let holder = live[pasid]?.first(where: { $0.key != mm && $0.value.count > 0 }) {
            record("PASID \(pasid) bound by pid \(event.pid) while still bound to pid \(holder.value.pid)",
                   [holder.value.line, event.line])
        }
        live[pasid, default: [:]][mm, default: Binding(pid: event.pid, line: event.line, count: 0)].count += 1
        owners.assign(pasid, to: mm)
        binderOfMm[mm] = event.pid
        if allocated[pasid] == nil { allocated[pasid] = event.line }
        dropped[pasid] = nil
    }

    /// A refused bind whose PASID (the one the kernel allocated or tried to
    /// attach for it, or the one its mm already has) is still bound through
    /// a dead process's binding: the kernel handed out an ID it had not got back.
    private mutating func refused(_ event: TraceEvent) {
        let attempt = binding.removeValue(forKey: event.thread)
        guard let mm = event.mm ?? attempt?.mm,
              let pasid = event.pasid ?? attempt?.pasid ?? owners.pasid(of: mm),
              let holder = live[pasid]?.first(where: { $0.key != mm && $0.value.count > 0 })?.value,
              exited.contains(holder.pid) else { return }
        let errno = event.ret.map { " (\($0))" } ?? ""
        record("bind by pid \(event.pid) refused\(errno): PASID \(pasid) still held by dead pid \(holder.pid)",
               [holder.line, event.line])
    }

    /// A workload line; the canary reports (`@@kharness evidence <scenario>
    /// canary pid=N ...`) say a device write landed in process N. The trace
    /// names the PASID: one N's address space holds, on which a binding of
    /// another process ran jobs.
    public mutating func observeWorkload(_ line: String) {
        // A protocol line by the classifier's rule (at a line's start), not the text anywhere.
        guard let message = ConsoleClassifier.protocolMessage(line), message.hasPrefix("evidence "),
              let range = message.range(of: " canary pid=") else { return }
        guard let victim = Int(message[range.upperBound...].prefix { $0.isNumber }.prefix(9)) else { return }
        let report = String(("@@kharness " + message).prefix(400))
        if let culprit = strayJobs[victim], let pasid = culprit.pasid {
            let owner = culprit.bindPid ?? culprit.pid
            record("device write through PASID \(pasid) of pid \(owner) landed in pid \(victim)", [culprit.line, report])
        } else {
            record("device write landed in pid \(victim), another process's memory", [report])
        }
    }

    /// Ends a trace. Only a whole trace (`complete`) can show that something
    /// never happened. A PASID leaked when it is still allocated although
    /// every holder is gone: the address space it belongs to was dropped (so
    /// no binding and no process used it any more), or the trace ends with a
    /// binding never released although every process of the workload that
    /// could hold its file has exited (so the file was released, and its
    /// mm could never be dropped).
    public mutating func finish(complete: Bool) {
        guard complete else { return }
        for (pasid, drop) in dropped.sorted(by: { $0.key < $1.key }) {
            let who = drop.pid.map { " (pid \($0))" } ?? ""
            record("PASID \(pasid) never freed after every holder was gone: its address space \(drop.mm)\(who) was dropped",
                   drop.lines)
        }
        dropped = [:]
        var tree = ProcessTree(parent: parent, children: children, exited: exited)
        for (pasid, holders) in live.sorted(by: { $0.key < $1.key }) {
            for held in holders.values.sorted(by: { $0.pid < $1.pid }) where held.count > 0 && tree.allGone(around: held.pid) {
                record("PASID \(pasid) never freed after every holder was gone: the binding of pid \(held.pid) was never released",
                       [held.line])
            }
        }
    }

    /// Whether every thread of the process tree the workload started around a pid
    /// (from its topmost ancestor forked while tracing) has exited, for many pids of
    /// one tree: each node's top and each subtree's answer are found once, so the
    /// check at the end of a trace is linear in the tree, not in bindings × tree
    /// (a 16 MiB trace of one large tree took hours). A hostile trace may make the
    /// parent links a cycle: a node already on the way is not followed again.
    private struct ProcessTree {
        let parent: [Int: Int]
        let children: [Int: [Int]]
        let exited: Set<Int>
        private var topOf: [Int: Int] = [:]
        private var subtreeGone: [Int: Bool] = [:]

        init(parent: [Int: Int], children: [Int: [Int]], exited: Set<Int>) {
            self.parent = parent
            self.children = children
            self.exited = exited
        }

        mutating func allGone(around pid: Int) -> Bool {
            gone(top(of: pid))
        }

        /// The topmost ancestor with a recorded parent of its own (the workload's
        /// first process, not the shell that started it).
        private mutating func top(of pid: Int) -> Int {
            var path: [Int] = []
            var seen = Set<Int>()
            var node = pid
            while true {
                if let known = topOf[node] {
                    node = known
                    break
                }
                guard let up = parent[node], parent[up] != nil, seen.insert(node).inserted else { break }
                path.append(node)
                node = up
            }
            for p in path { topOf[p] = node }
            return node
        }

        /// Every thread of `root`'s subtree has exited, each node decided once
        /// (an iterative post-order walk: no recursion for a deep chain).
        private mutating func gone(_ root: Int) -> Bool {
            if let known = subtreeGone[root] { return known }
            var stack: [(node: Int, expanded: Bool)] = [(root, false)]
            var onStack = Set<Int>()
            while let (node, expanded) = stack.popLast() {
                if expanded {
                    onStack.remove(node)
                    subtreeGone[node] = exited.contains(node)
                        && (children[node] ?? []).allSatisfy { subtreeGone[$0] ?? true }
                    continue
                }
                if subtreeGone[node] != nil || onStack.contains(node) { continue }
                onStack.insert(node)
                stack.append((node, true))
                for child in children[node] ?? [] where subtreeGone[child] == nil && !onStack.contains(child) {
                    stack.append((child, false))
                }
            }
            return subtreeGone[root] ?? true
        }
    }

    private mutating func record(_ title: String, _ evidence: [String]) {
        guard violations.count < Self.maxViolations, !violations.contains(where: { $0.title == title }) else { return }
        violations.append(Violation(title: title, evidence: evidence.map { String($0.prefix(400)) }))
    }
}

/// Which address space holds which PASID, indexed both ways: a hostile trace
/// can name as many address spaces as it has lines, and each allocation and
/// free asks who holds a PASID.
private struct PasidOwners: Sendable {
    private var pasidOfMm: [String: Int] = [:]
    private var mmsOfPasid: [Int: Set<String>] = [:]

    func pasid(of mm: String) -> Int? { pasidOfMm[mm] }

    func addressSpaces(holding pasid: Int) -> Set<String> { mmsOfPasid[pasid] ?? [] }

    mutating func assign(_ pasid: Int, to mm: String) {
        drop(mm)
        pasidOfMm[mm] = pasid
        mmsOfPasid[pasid, default: []].insert(mm)
    }

    mutating func drop(_ mm: String) {
        guard let pasid = pasidOfMm.removeValue(forKey: mm) else { return }
        mmsOfPasid[pasid]?.remove(mm)
        if mmsOfPasid[pasid]?.isEmpty == true { mmsOfPasid[pasid] = nil }
    }

    mutating func free(_ pasid: Int) {
        for mm in mmsOfPasid.removeValue(forKey: pasid) ?? [] { pasidOfMm[mm] = nil }
    }
}
