import Foundation

/// The process and PASID lifetimes of one run, read from the
/// `trace-events.jsonl` the sva workload leaves in the run directory (one JSON
/// object per line: `ts`, `pid`, `comm`, `event`, `pasid`, `mm`, `child`).
///
/// The file comes from the guest, so it is read bounded: at most
/// ``maxBytes``, lines longer than ``maxLineBytes`` and lines that do not
/// parse are skipped, unknown events are ignored, and at most ``maxEvents``
/// are kept.
public struct TraceTimeline: Sendable, Equatable {
    /// The events drawn; the file has others (`job`, `mm_drop`, ...), which are counted and left out.
    public enum Kind: String, Sendable, CaseIterable {
        case fork, exit, exec, bind, unbind
        case bindRefused = "bind_refused"
        case pasidAlloc = "pasid_alloc"
        case pasidFree = "pasid_free"
        /// The kernel dropping an address space's PASID (`mm_pasid_drop`): where the 2022 bug freed it early.
        case mmPasidDrop = "mm_pasid_drop"
    }

    public struct Event: Sendable, Equatable {
        public var time: Double
        public var pid: Int
        public var comm: String?
        public var kind: Kind
        public var pasid: Int?
        public var mm: String?
        public var child: Int?
    }

    public var events: [Event] = []
    /// Lines that were not a trace event (malformed, oversized).
    public var skippedLines = 0
    /// Well-formed events of kinds the timeline does not draw.
    public var otherEvents = 0
    /// Events past ``maxEvents`` or past ``maxBytes``, not kept.
    public var droppedEvents = 0
    /// The file was longer than ``maxBytes``.
    public var truncated = false

    public static let maxBytes = 8 << 20
    public static let maxLineBytes = 4096
    public static let maxEvents = 4000

    public init(events: [Event] = []) { self.events = events }

    /// Reads the file; nil when there is none.
    public static func read(path: String) -> TraceTimeline? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxBytes + 1)) ?? Data()
        var timeline = parse(data.prefix(maxBytes))
        if data.count > maxBytes {
            timeline.truncated = true
        }
        return timeline
    }

    public static func parse(_ data: Data) -> TraceTimeline {
        var timeline = TraceTimeline()
        let decoder = JSONDecoder()
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard line.count <= maxLineBytes, let line = try? decoder.decode(Line.self, from: Data(line)), line.ts.isFinite
            else {
                timeline.skippedLines += 1
                continue
            }
            guard let kind = Kind(rawValue: line.event) else {
                timeline.otherEvents += 1
                continue
            }
            guard timeline.events.count < maxEvents else {
                timeline.droppedEvents += 1
                continue
            }
            timeline.events.append(Event(time: line.ts, pid: line.pid, comm: line.comm.map { String($0.prefix(64)) },
                                         kind: kind, pasid: line.pasid, mm: line.mm.map { String($0.prefix(32)) },
                                         child: line.child))
        }
        timeline.events.sort { $0.time < $1.time }
        return timeline
    }

    /// One line of the file: `ts`, `pid` and `event` are required; an
    /// optional field of the wrong type is dropped, not the event.
    private struct Line: Decodable {
        var ts: Double
        var pid: Int
        var event: String
        var comm: String?
        var pasid: Int?
        var mm: String?
        var child: Int?

        enum CodingKeys: String, CodingKey { case ts, pid, event, comm, pasid, mm, child }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            ts = try container.decode(Double.self, forKey: .ts)
            pid = try container.decode(Int.self, forKey: .pid)
            event = try container.decode(String.self, forKey: .event)
            comm = try? container.decodeIfPresent(String.self, forKey: .comm)
            pasid = try? container.decodeIfPresent(Int.self, forKey: .pasid)
            mm = try? container.decodeIfPresent(String.self, forKey: .mm)
            child = try? container.decodeIfPresent(Int.self, forKey: .child)
        }
    }

    /// One row per process: when it appears and ends, and its events.
    struct Lane: Equatable {
        var pid: Int
        var comm: String?
        var start: Double
        var end: Double
        var ended: Bool
    }

    /// Lanes in order of first appearance (a fork's child appears at the fork).
    func lanes(limit: Int) -> [Lane] {
        var lanes: [Lane] = []
        var position: [Int: Int] = [:]
        func touch(_ pid: Int, _ time: Double, _ comm: String?) {
            if let at = position[pid] {
                lanes[at].end = max(lanes[at].end, time)
                if lanes[at].comm == nil { lanes[at].comm = comm }
            } else if lanes.count < limit {
                position[pid] = lanes.count
                lanes.append(Lane(pid: pid, comm: comm, start: time, end: time, ended: false))
            }
        }
        for event in events {
            touch(event.pid, event.time, event.comm)
            if event.kind == .fork, let child = event.child { touch(child, event.time, nil) }
            if event.kind == .exit, let at = position[event.pid] { lanes[at].ended = true }
        }
        return lanes
    }
}
