import Foundation

/// Draws a ``TraceTimeline`` as inline SVG: one lane per process (pid and
/// comm), a line from its first to its last event, forks as connectors to the
/// child's lane, bindings as green bars from bind to unbind (or to the exit),
/// PASID allocations and frees as triangles. Every mark has a `<title>`
/// tooltip with the raw values.
enum TimelineSVG {
    static let maxLanes = 40
    static let width = 900.0
    static let labelWidth = 150.0
    static let laneHeight = 20.0
    static let top = 24.0

    static func render(_ timeline: TraceTimeline) -> String {
        let lanes = timeline.lanes(limit: maxLanes)
        guard let first = timeline.events.first?.time, let last = timeline.events.last?.time, !lanes.isEmpty else {
            return "<p class=\"no-trace\">The trace has no process or PASID events.</p>"
        }
        let span = max(last - first, 1e-6)
        let plot = width - labelWidth - 20
        func x(_ time: Double) -> Double { labelWidth + (time - first) / span * plot }
        var row: [Int: Int] = [:]
        for (index, lane) in lanes.enumerated() { row[lane.pid] = index }
        func y(_ pid: Int) -> Double? { row[pid].map { top + Double($0) * laneHeight + laneHeight / 2 } }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        let height = top + Double(lanes.count) * laneHeight + 24

        var svg = "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\">\n"
        svg += "<text x=\"\(f(labelWidth))\" y=\"14\" class=\"axis\">\(String(format: "%.6f", first)) s</text>"
        svg += "<text x=\"\(f(width - 20))\" y=\"14\" class=\"axis\" text-anchor=\"end\">\(String(format: "%.6f", last)) s (+\(String(format: "%.3f", last - first)) s)</text>\n"
        for lane in lanes {
            guard let ly = y(lane.pid) else { continue }
            let label = "\(lane.pid)" + (lane.comm.map { " \($0)" } ?? "")
            svg += "<text x=\"4\" y=\"\(f(ly + 4))\" class=\"lane\">\(Escape.markup(Escape.truncate(label, 22)))</text>"
            svg += "<line x1=\"\(f(x(lane.start)))\" y1=\"\(f(ly))\" x2=\"\(f(lane.ended ? x(lane.end) : x(last)))\" y2=\"\(f(ly))\" class=\"life\(lane.ended ? "" : " open")\"/>\n"
        }

        // Bindings: bind opens a bar on the process's lane, unbind or exit closes it.
        var open: [String: (pid: Int, pasid: Int?, start: Double)] = [:]
        var bars = ""
        func closeBar(_ key: String, at time: Double) {
            guard let binding = open.removeValue(forKey: key), let ly = y(binding.pid) else { return }
            let pasid = binding.pasid.map(String.init) ?? "?"
            bars += "<rect class=\"bound\" x=\"\(f(x(binding.start)))\" y=\"\(f(ly - 5))\" width=\"\(f(max(x(time) - x(binding.start), 1)))\" height=\"10\"><title>\(Escape.markup("pid \(binding.pid) bound PASID \(pasid) from \(binding.start) to \(time) s"))</title></rect>\n"
        }
        var marks = ""
        for event in timeline.events {
            guard let ly = y(event.pid) else { continue }
            let ex = x(event.time)
            var tip = "\(event.kind.rawValue) t=\(event.time) pid=\(event.pid)"
            if let comm = event.comm { tip += " comm=\(comm)" }
            if let pasid = event.pasid { tip += " pasid=\(pasid)" }
            if let mm = event.mm { tip += " mm=\(mm)" }
            if let child = event.child { tip += " child=\(child)" }
            let title = "<title>\(Escape.markup(tip))</title>"
            let key = "\(event.pid)/\(event.pasid.map(String.init) ?? "?")"
            switch event.kind {
            case .fork:
                if let child = event.child, let cy = y(child) {
                    marks += "<line class=\"fork\" x1=\"\(f(ex))\" y1=\"\(f(ly))\" x2=\"\(f(ex))\" y2=\"\(f(cy))\"/>"
                }
                marks += "<circle class=\"fork\" cx=\"\(f(ex))\" cy=\"\(f(ly))\" r=\"3.5\">\(title)</circle>\n"
            case .exit:
                for open in open.keys.filter({ $0.hasPrefix("\(event.pid)/") }) { closeBar(open, at: event.time) }
                marks += "<rect class=\"exit\" x=\"\(f(ex - 3.5))\" y=\"\(f(ly - 3.5))\" width=\"7\" height=\"7\">\(title)</rect>\n"
            case .bind:
                if open[key] == nil { open[key] = (event.pid, event.pasid, event.time) }
                marks += "<path class=\"bind\" d=\"M\(f(ex)) \(f(ly - 6))L\(f(ex + 5)) \(f(ly))L\(f(ex)) \(f(ly + 6))L\(f(ex - 5)) \(f(ly))Z\">\(title)</path>\n"
            case .unbind:
                closeBar(key, at: event.time)
                marks += "<path class=\"unbind\" d=\"M\(f(ex)) \(f(ly - 6))L\(f(ex + 5)) \(f(ly))L\(f(ex)) \(f(ly + 6))L\(f(ex - 5)) \(f(ly))Z\">\(title)</path>\n"
            case .exec:
                marks += "<circle class=\"exec\" cx=\"\(f(ex))\" cy=\"\(f(ly))\" r=\"3.5\">\(title)</circle>\n"
            case .bindRefused:
                marks += "<path class=\"refused\" d=\"M\(f(ex - 4)) \(f(ly - 4))L\(f(ex + 4)) \(f(ly + 4))M\(f(ex - 4)) \(f(ly + 4))L\(f(ex + 4)) \(f(ly - 4))\">\(title)</path>\n"
            case .mmPasidDrop:
                marks += "<rect class=\"drop\" x=\"\(f(ex - 1.5))\" y=\"\(f(ly - 7))\" width=\"3\" height=\"14\">\(title)</rect>\n"
            case .pasidAlloc:
                marks += "<path class=\"alloc\" d=\"M\(f(ex - 5)) \(f(ly + 7))L\(f(ex + 5)) \(f(ly + 7))L\(f(ex)) \(f(ly - 2))Z\">\(title)</path>\n"
            case .pasidFree:
                marks += "<path class=\"free\" d=\"M\(f(ex - 5)) \(f(ly - 7))L\(f(ex + 5)) \(f(ly - 7))L\(f(ex)) \(f(ly + 2))Z\">\(title)</path>\n"
            }
        }
        for key in open.keys.sorted() { closeBar(key, at: last) }
        svg += bars + marks
        var note: [String] = []
        if timeline.events.count > 0, lanes.count == maxLanes { note.append("first \(maxLanes) processes") }
        if timeline.droppedEvents > 0 || timeline.truncated { note.append("first \(timeline.events.count) events") }
        if timeline.skippedLines > 0 { note.append("\(timeline.skippedLines) malformed lines skipped") }
        let legend = "● fork  ○ exec  ■ exit  ◆ bind (bar: bound)  ◇ unbind  ✕ bind refused  ▲ PASID alloc  ▼ PASID free  | mm_pasid_drop"
            + (note.isEmpty ? "" : "  (\(note.joined(separator: ", ")))")
        svg += "<text x=\"4\" y=\"\(f(height - 6))\" class=\"axis\">\(Escape.markup(legend))</text>\n"
        svg += "</svg>"
        return svg
    }
}
