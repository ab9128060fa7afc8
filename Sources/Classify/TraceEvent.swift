import Foundation

/// One ftrace record the sva workload's trace carries, reduced to what the
/// PASID lifecycle oracles and the run report need.
///
/// The JSON form is an interface (one object per line in a run's
/// `trace-events.jsonl`, read by the HTML report): `ts` (seconds, the ftrace
/// timestamp), `pid`, `comm` (optional), `event`, and optionally `pasid`, `mm`
/// (hex), `child` (for fork). The other properties stay on the host: the
/// oracles use them, and `line` is the record as the guest wrote it, kept as
/// evidence.
public struct TraceEvent: Codable, Sendable, Equatable {
    /// The event names, from the tracepoint or kprobe each comes from.
    public enum Kind: String, Sendable, CaseIterable {
        /// sched_process_fork: `pid` forked (or cloned a thread) `child`.
        case fork
        /// sched_process_exit: thread `pid` exited (its files are released after this).
        case exit
        /// sched_process_exec: `pid` replaced its address space.
        case exec
        /// sva_accel_bind with ret=0: process `pid` bound `mm`, got `pasid` (none in DMA-API mode).
        case bind
        /// sva_accel_bind with ret≠0: the driver refused a bind of `mm` (`ret` says why).
        case bindRefused = "bind_refused"
        /// sva_accel_unbind: the binding of `mm` on `pasid` ended (`bindPid` made it).
        case unbind
        /// sva_accel_job: a job ran on `pasid` for the binding of `bindPid`.
        case job
        /// iommu_sva_bind_device entered for `mm`: a bind attempt starts in thread `pid`.
        case bindStart = "bind_start"
        /// iommu_alloc_global_pasid (ioasid_alloc before 6.4) returned `pasid` in thread `pid`.
        case pasidAlloc = "pasid_alloc"
        /// iommu_free_global_pasid (ioasid_free/put before 6.4): `pasid` is free again.
        case pasidFree = "pasid_free"
        /// iommu_attach_device_pasid: a domain is attached to the device at `pasid`.
        case pasidAttach = "pasid_attach"
        /// iommu_detach_device_pasid: the device's `pasid` is detached.
        case pasidDetach = "pasid_detach"
        /// exit_mmap: the last user of `mm` went (its mappings are torn down).
        case mmExit = "mm_exit"
        /// mm_pasid_drop: the kernel lets go of `mm`'s PASID.
        case mmPasidDrop = "mm_pasid_drop"
        /// __mmdrop: the last reference to `mm` went; the struct is freed.
        case mmDrop = "mm_drop"
    }

    public var ts: Double
    public var pid: Int
    public var comm: String?
    public var event: String
    public var pasid: Int?
    public var mm: String?
    public var child: Int?

    /// The traced thread (the record's TASK-PID); `pid` is the process for
    /// the driver's events, which record the thread group.
    public var thread: Int = 0
    /// The binding's process, for unbind and job.
    public var bindPid: Int?
    /// The driver's return value (bind, bind_refused) or job status.
    public var ret: Int?
    /// The record as the guest wrote it (printk prefix removed), at most 400 characters.
    public var line: String = ""

    enum CodingKeys: String, CodingKey {
        case ts, pid, comm, event, pasid, mm, child
    }

    public var kind: Kind? { Kind(rawValue: event) }

    public init(ts: Double, pid: Int, comm: String? = nil, kind: Kind, pasid: Int? = nil, mm: String? = nil,
                child: Int? = nil, thread: Int? = nil, bindPid: Int? = nil, ret: Int? = nil, line: String = "") {
        self.ts = ts
        self.pid = pid
        self.comm = comm
        self.event = kind.rawValue
        self.pasid = pasid
        self.mm = mm
        self.child = child
        self.thread = thread ?? pid
        self.bindPid = bindPid
        self.ret = ret
        self.line = line
    }

    /// The JSON line for `trace-events.jsonl`, keys sorted.
    public var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

extension TraceEvent {
    /// Parses one line of ftrace text output: the `trace`/`trace_pipe` format
    /// (`comm-pid [cpu] flags 12.345678: event: payload`) or the one
    /// `ftrace_dump_on_oops` prints on the console
    /// (`[ 6.34] comm-pid  0d.... 5521005us : event: payload`). Lines that are
    /// not records of an event this type knows give nil. The line is untrusted:
    /// nothing in it can make this fail or allocate more than the line.
    public static func parse(_ raw: some StringProtocol) -> TraceEvent? {
        guard raw.utf8.count <= 4096, raw.contains(": ") else { return nil }
        var text = Substring(raw)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        // printk prefixes: "[    6.343691] " and an optional caller id "[T86] ".
        for _ in 0..<2 {
            let trimmed = text.drop { $0 == " " }
            guard trimmed.first == "[", let close = trimmed.firstIndex(of: "]"),
                  trimmed[trimmed.index(after: trimmed.startIndex)..<close].allSatisfy({ $0 == " " || $0 == "." || $0 == "T" || $0 == "C" || $0.isNumber })
            else { break }
            text = trimmed[trimmed.index(after: close)...]
        }
        guard let header = Header(text) else { return nil }
        let fields = Fields(header.payload)
        func int(_ key: String) -> Int? { fields[key].flatMap { Int($0) } }
        /// A PASID printed as a decimal (-1 for none).
        func pasid(_ key: String) -> Int? { int(key).flatMap { $0 >= 0 ? $0 : nil } }
        let line = String(text.drop { $0 == " " }.prefix(400))
        var event: TraceEvent
        switch header.event {
        case "sched_process_fork":
            guard let parent = int("pid"), let child = int("child_pid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: parent, comm: fields["comm"], kind: .fork, child: child)
        case "sched_process_exit":
            guard let pid = int("pid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: pid, comm: fields["comm"], kind: .exit)
        case "sched_process_exec":
            guard let pid = int("pid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: pid, comm: header.comm, kind: .exec)
        case "sva_accel_bind":
            guard let pid = int("pid"), let ret = int("ret") else { return nil }
            event = TraceEvent(ts: header.ts, pid: pid, comm: fields["comm"], kind: ret == 0 ? .bind : .bindRefused,
                               pasid: pasid("pasid"), mm: mm(fields["mm"]), ret: ret)
        case "sva_accel_unbind":
            guard let pid = int("pid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: pid, comm: fields["comm"], kind: .unbind, pasid: pasid("pasid"),
                               mm: mm(fields["mm"]), bindPid: int("bind_pid"))
        case "sva_accel_job":
            guard let pid = int("pid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: pid, comm: header.comm, kind: .job, pasid: pasid("pasid"),
                               mm: mm(fields["mm"]), bindPid: int("bind_pid"), ret: fields["status"].flatMap(hex))
        case "sva_bind":
            guard let value = mm(fields["mm"]) else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: fields["comm"], kind: .bindStart, mm: value)
        case "alloc_global_pasid_ret", "ioasid_alloc_ret", "sva_alloc_pasid_ret":
            // The return value is the PASID, or a negative errno as 64-bit hex.
            // PASID 0 is never a process's (it means "no PASID"); 6.1's
            // iommu_sva_alloc_pasid returns 0 for success, and its PASID
            // comes from ioasid_alloc's return.
            guard let ret = fields["ret"].flatMap(hex), ret > 0, ret < 1 << 20 else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: header.comm, kind: .pasidAlloc, pasid: ret)
        case "free_global_pasid", "ioasid_free", "ioasid_put":
            guard let value = pasid("pasid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: fields["comm"], kind: .pasidFree, pasid: value)
        case "attach_pasid":
            guard let value = pasid("pasid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: fields["comm"], kind: .pasidAttach, pasid: value)
        case "detach_pasid":
            guard let value = pasid("pasid") else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: fields["comm"], kind: .pasidDetach, pasid: value)
        case "exit_mmap":
            guard let value = mm(fields["mm"]) else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: fields["comm"], kind: .mmExit, mm: value)
        case "mm_pasid_drop":
            guard let value = mm(fields["mm"]) else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: fields["comm"], kind: .mmPasidDrop, mm: value)
        case "mmdrop":
            guard let value = mm(fields["mm"]) else { return nil }
            event = TraceEvent(ts: header.ts, pid: header.pid, comm: fields["comm"], kind: .mmDrop, mm: value)
        default:
            return nil
        }
        event.thread = header.pid
        event.line = line
        return event
    }

    /// The timestamp and event name of any ftrace record, in either format.
    static func timestamp(of raw: some StringProtocol) -> (ts: Double, event: String)? {
        guard raw.utf8.count <= 4096 else { return nil }
        var text = Substring(raw)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        if text.drop(while: { $0 == " " }).first == "[", let close = text.firstIndex(of: "]") {
            text = text[text.index(after: close)...]
        }
        return Header(text).map { ($0.ts, String($0.event)) }
    }

    /// Any ftrace record in the `trace`/`trace_pipe` format (not the oops
    /// dump's, whose times are relative): its time, thread, event name and
    /// payload. For records this type does not model (markers, return probes).
    static func record(of raw: some StringProtocol) -> (ts: Double, pid: Int, event: String, payload: String)? {
        guard raw.utf8.count <= 4096 else { return nil }
        var text = Substring(raw)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        guard let header = Header(text), !header.relative else { return nil }
        return (header.ts, header.pid, String(header.event), String(header.payload))
    }

    /// `0x…` as the driver and the kprobes print it, lower case, leading zeros dropped.
    private static func mm(_ value: String?) -> String? {
        guard let value, let number = hex(value), number != 0 else { return nil }
        return "0x" + String(UInt64(bitPattern: Int64(number)), radix: 16)
    }

    /// `0x…` (as a signed 64-bit value) or a decimal.
    private static func hex(_ value: String) -> Int? {
        if value.hasPrefix("0x") || value.hasPrefix("0X") {
            return UInt64(value.dropFirst(2), radix: 16).map { Int(bitPattern: UInt($0)) }
        }
        return Int(value)
    }

    /// The part of a record before the payload.
    struct Header {
        var comm: String
        var pid: Int
        var ts: Double
        /// The oops dump's format, whose times start at the buffer's reset.
        var relative = false
        var event: Substring
        var payload: Substring

        /// `comm-pid [cpu] flags ts: event: payload` or `comm-pid cpuflags tsus : event: payload`.
        init?(_ text: Substring) {
            let body = text.drop { $0 == " " }
            // The event name ends the header: the first ": name: " after the timestamp.
            guard let tsEnd = body.range(of: ": ") else { return nil }
            let head = body[..<tsEnd.lowerBound]
            let rest = body[tsEnd.upperBound...]
            guard let nameEnd = rest.range(of: ":") else { return nil }
            let name = rest[..<nameEnd.lowerBound]
            guard !name.isEmpty, name.utf8.count <= 64,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else { return nil }
            event = name
            payload = rest[nameEnd.upperBound...].drop { $0 == " " }
            // head: "comm-pid [000] d.... 7.234626" or "comm-pid  0d.... 5521005us "
            var words = head.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 3, let last = words.popLast() else { return nil }
            if last.hasSuffix("us"), let micros = Int(last.dropLast(2)) {
                ts = Double(micros) / 1_000_000
                relative = true
            } else if let seconds = Double(last), seconds.isFinite, last.contains(".") {
                ts = seconds
            } else {
                return nil
            }
            // The task is everything before the CPU column ("[000]", or the
            // CPU number glued to the flags in the dump format); its comm may hold spaces.
            let cpuIndex: Int
            if let bracket = words.lastIndex(where: { $0.hasPrefix("[") }) {
                cpuIndex = bracket
            } else if let glued = words.last, glued.first?.isNumber == true {
                cpuIndex = words.count - 1
            } else {
                return nil
            }
            var taskWords = words[..<cpuIndex]
            // A "(tgid)" column (options/record-tgid) sits between task and CPU.
            if let tgid = taskWords.last, tgid.hasSuffix(")") {
                taskWords = taskWords.dropLast()
                if !tgid.hasPrefix("("), taskWords.last == "(" { taskWords = taskWords.dropLast() }
            }
            guard !taskWords.isEmpty else { return nil }
            let task = taskWords.joined(separator: " ")
            guard let dash = task.lastIndex(of: "-"), let pid = Int(task[task.index(after: dash)...]), pid >= 0 else { return nil }
            comm = String(task[..<dash])
            self.pid = pid
        }
    }

    /// `key=value` pairs of a payload; values may be double-quoted.
    private struct Fields {
        private var values: [String: String] = [:]

        init(_ payload: Substring) {
            var rest = payload
            while let eq = rest.firstIndex(of: "=") {
                let keyStart = rest[..<eq].lastIndex(of: " ").map { rest.index(after: $0) } ?? rest.startIndex
                let key = String(rest[keyStart..<eq])
                var after = rest[rest.index(after: eq)...]
                let value: Substring
                if after.first == "\"", let close = after.dropFirst().firstIndex(of: "\"") {
                    value = after[after.index(after: after.startIndex)..<close]
                    after = after[after.index(after: close)...]
                } else {
                    let end = after.firstIndex(of: " ") ?? after.endIndex
                    value = after[..<end]
                    after = after[end...]
                }
                if values[key] == nil, !key.isEmpty { values[key] = String(value) }
                rest = after
            }
        }

        subscript(key: String) -> String? { values[key] }
    }
}
