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
///
/// Who can write what: the port carries only what the guest's init streams to it
/// from `trace_pipe`; the console is written by the kernel and by every guest
/// process, so any of them could print a hand-over section, a dump header or
/// records. With a port (`hasPort`), the console's hand-over markers are ignored
/// (that guest never prints them) and a dump section is read only after the
/// console showed an oops or a panic (`ftrace_dump_on_oops` runs when the kernel
/// dies, and that report fails the run whatever the records say); only the port's
/// first clock marker (init writes it before any workload runs) sets the dump's
/// clock; only the first hand-over section counts. Whenever records come from the
/// console, ``untrusted`` says so and the run records it.
public struct TraceCollector: Sendable {
    public let limitBytes: Int
    /// The machine has the trace port: the console is not the trace's channel.
    public let hasPort: Bool
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
    private var sawClockMarker = false
    private var sawHandOver = false

    private enum ConsoleSection { case none, handOver, dumpHeader, dump }

    /// The trace_marker text the guest writes right after resetting the buffer.
    public static let clockMarker = "kharness-clock"

    /// The guest's port header and footer lines.
    public static let portBegin = "# kharness trace-begin"
    public static let portEnd = "# kharness trace-end"

    public init(limitBytes: Int = 16 << 20, hasPort: Bool = false) {
        self.limitBytes = limitBytes
        self.hasPort = hasPort
    }

    /// Some records came from the console, which any guest process can write: the
    /// lifecycle verdicts drawn from them are only as good as the guest.
    public var untrusted: Bool { !consoleLines.isEmpty }

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
            overruns = overruns.saturatingAdd(Self.overruns(in: line))
            return
        }
        if line.hasPrefix("#") || line.isEmpty { return }
        store(line, inPort: true)
    }

    /// A console line: trace records appear in the hand-over section (a guest
    /// without the port) and in `ftrace_dump_on_oops`'s dump. `afterKernelDied`:
    /// the console showed an oops or a panic before this line (with a port, a dump
    /// is believed only then).
    public mutating func addConsoleLine(_ line: String, afterKernelDied: Bool = true) {
        if let message = ConsoleClassifier.protocolMessage(line) {
            guard !hasPort else { return }
            if message.hasPrefix("trace-begin") {
                // The first section is init's; a later one is anybody's.
                guard !sawHandOver else { return }
                sawHandOver = true
                consoleSection = .handOver
                overruns = overruns.saturatingAdd(Self.overruns(in: message))
                return
            }
            if message.hasPrefix("trace-end") {
                if consoleSection == .handOver { sawEnd = true }
                consoleSection = .none
                return
            }
        }
        let isRule = line.hasSuffix("---------------------------------")
        switch consoleSection {
        case .none:
            if line.hasSuffix("Dumping ftrace buffer:"), !hasPort || afterKernelDied { consoleSection = .dumpHeader }
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
        if inPort, !sawClockMarker, cut.hasSuffix(Self.clockMarker), let marker = TraceEvent.timestamp(of: cut),
           marker.event == "tracing_mark_write" {
            // Only the first: init writes it before any workload process runs.
            sawClockMarker = true
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
        let micros = Int.clamping((e.ts * 1_000_000).rounded()) ?? 0
        return "\(micros) \(e.thread) \(e.pid) \(e.event) \(e.pasid ?? -1) \(e.mm ?? "") \(e.child ?? -1) \(e.ret ?? 0) \(e.bindPid ?? -1)"
    }

    private static func overruns(in line: some StringProtocol) -> Int {
        guard let range = line.range(of: "overruns=") else { return 0 }
        return Int.saturatingDecimal(prefixOf: line[range.upperBound...]) ?? 0
    }
}
