/// Gathers the sva workload's ftrace records from every channel that carries
/// them and says whether the trace is whole.
///
/// The guest streams `trace_pipe` to a virtio console port (a file on the
/// host); what it had not streamed when the kernel died, `ftrace_dump_on_oops`
/// prints on the console; a guest without the port prints the whole trace on
/// the console between `@@kharness trace-begin` and `@@kharness trace-end`.
/// The channels do not overlap (a record read from `trace_pipe` is gone from
/// the buffer) and the port's records all come before the dump's, whatever
/// order the host's polling finds them in; `events` lists them so. The dump
/// prints times relative to the buffer's last reset, the port absolute ones:
/// the guest writes a `kharness-clock` marker just after the reset, and the
/// dump's times are moved by the marker's time (to within the millisecond
/// between the two writes) so one file has one clock.
///
/// Everything here is untrusted guest output: lines are cut, the stored text
/// is capped at `limitBytes`, and a capped trace never counts as whole.
public struct TraceCollector: Sendable {
    public let limitBytes: Int
    /// Trace lines as received, port first, then the console's (for `trace.log`).
    public private(set) var portLines: [String] = []
    public private(set) var consoleLines: [String] = []
    private var storedBytes = 0
    private var parsedPort: [TraceEvent] = []
    private var parsedConsole: [TraceEvent] = []
    /// The port's time of the clock marker: where the dump's zero is.
    public private(set) var dumpClockOffset = 0.0
    private var consoleIsDump: [Bool] = []
    /// More arrived than `limitBytes`: the rest was dropped.
    public private(set) var truncated = false
    /// The guest said the trace ended (port footer or console end marker).
    public private(set) var sawEnd = false
    /// Events the ring buffer lost, as the guest counted them.
    public private(set) var overruns = 0
    private var consoleSection: ConsoleSection = .none

    private enum ConsoleSection { case none, handOver, dumpHeader, dump }

    /// The trace_marker text the guest writes right after resetting the buffer.
    public static let clockMarker = "kharness-clock"

    /// The guest's port header and footer lines.
    public static let portBegin = "# kharness trace-begin"
    public static let portEnd = "# kharness trace-end"

    public init(limitBytes: Int = 16 << 20) { self.limitBytes = limitBytes }

    /// The trace is whole: the guest handed it over to the end, it lost no
    /// events and nothing was cut. Only then can the absence of an event
    /// (a PASID never freed) be a finding.
    public var complete: Bool { sawEnd && overruns == 0 && !truncated }

    /// A line from the trace port.
    public mutating func addPortLine(_ line: String) {
        if line.hasPrefix(Self.portBegin) {
            return
        }
        if line.hasPrefix(Self.portEnd) {
            sawEnd = true
            overruns += Self.overruns(in: line)
            return
        }
        if line.hasPrefix("#") || line.isEmpty { return }
        store(line, inPort: true)
    }

    /// A console line: trace records appear in the hand-over section and in
    /// `ftrace_dump_on_oops`'s dump.
    public mutating func addConsoleLine(_ line: String) {
        if line.contains("@@kharness trace-begin") {
            consoleSection = .handOver
            overruns += Self.overruns(in: line)
            return
        }
        if line.contains("@@kharness trace-end") {
            if consoleSection == .handOver { sawEnd = true }
            consoleSection = .none
            return
        }
        let isRule = line.hasSuffix("---------------------------------")
        switch consoleSection {
        case .none:
            if line.hasSuffix("Dumping ftrace buffer:") { consoleSection = .dumpHeader }
            return
        case .dumpHeader:
            consoleSection = isRule ? .dump : .none
            return
        case .dump:
            if isRule {
                consoleSection = .none
                return
            }
        case .handOver:
            if line.hasPrefix("#") { return }
        }
        store(line, inPort: false)
    }

    private mutating func store(_ line: String, inPort: Bool) {
        let cut = String(line.prefix(1024))
        guard storedBytes + cut.utf8.count < limitBytes else {
            truncated = true
            return
        }
        storedBytes += cut.utf8.count + 1
        if inPort { portLines.append(cut) } else { consoleLines.append(cut) }
        if inPort, cut.hasSuffix(Self.clockMarker), let marker = TraceEvent.timestamp(of: cut),
           marker.event == "tracing_mark_write" {
            dumpClockOffset = marker.ts
        }
        if let event = TraceEvent.parse(cut) {
            if inPort {
                parsedPort.append(event)
            } else {
                parsedConsole.append(event)
                consoleIsDump.append(consoleSection == .dump)
            }
        }
    }

    /// The events of every channel, each once: the port's, then the
    /// console's (dump times moved to the port's clock), each channel in
    /// timestamp order (stable: records with one timestamp keep the order
    /// the guest wrote them in).
    public var events: [TraceEvent] {
        var console = parsedConsole
        for index in console.indices where consoleIsDump[index] { console[index].ts += dumpClockOffset }
        var seen = Set<String>()
        return (Self.inOrder(parsedPort) + Self.inOrder(console)).filter { seen.insert(Self.identity($0)).inserted }
    }

    private static func inOrder(_ events: [TraceEvent]) -> [TraceEvent] {
        events.enumerated()
            .sorted { $0.element.ts != $1.element.ts ? $0.element.ts < $1.element.ts : $0.offset < $1.offset }
            .map(\.element)
    }

    /// The trace text for `trace.log`.
    public var text: String {
        var out = portLines
        if !consoleLines.isEmpty {
            if !out.isEmpty { out.append("# from the console") }
            out += consoleLines
        }
        return out.isEmpty ? "" : out.joined(separator: "\n") + "\n"
    }

    public var isEmpty: Bool { portLines.isEmpty && consoleLines.isEmpty }

    /// One record printed on two channels: the dump format cuts the task's
    /// name and prints microseconds, so the comparison leaves the name out.
    private static func identity(_ e: TraceEvent) -> String {
        let micros = Int((e.ts * 1_000_000).rounded())
        return "\(micros) \(e.thread) \(e.pid) \(e.event) \(e.pasid ?? -1) \(e.mm ?? "") \(e.child ?? -1) \(e.ret ?? 0) \(e.bindPid ?? -1)"
    }

    private static func overruns(in line: String) -> Int {
        guard let range = line.range(of: "overruns=") else { return 0 }
        return Int(line[range.upperBound...].prefix { $0.isNumber }.prefix(12)) ?? 0
    }
}
