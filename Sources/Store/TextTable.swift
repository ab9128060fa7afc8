import Foundation

/// A plain-text table for terminals: columns padded to their widest cell,
/// a rule under the header. Cells are single lines (newlines become spaces).
/// The one table renderer: the comparison, the run summary and the report's
/// table (no rule, a line width) all lay out through it.
public struct TextTable: Sendable {
    public var header: [String]
    public var rows: [[String]] = []
    /// Dashes under the header.
    public var rule = true
    /// The line's width: the last column gets what the others leave of it,
    /// at least `minimumLastColumn` characters, its longer cells cut
    /// (``truncate(_:_:)``). nil: the last column is as wide as its widest cell.
    public var width: Int?
    public var minimumLastColumn = 20

    public init(header: [String]) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> String {
        let all = ([header] + rows).map { row in
            (0..<header.count).map { i in
                i < row.count ? row[i].replacingOccurrences(of: "\n", with: " ") : ""
            }
        }
        var widths = (0..<header.count).map { i in all.map { $0[i].count }.max() ?? 0 }
        if let width, !widths.isEmpty {
            let fixed = widths.dropLast().reduce(0, +) + 2 * (widths.count - 1)
            widths[widths.count - 1] = max(minimumLastColumn, min(widths[widths.count - 1], width - fixed))
        }
        func line(_ row: [String]) -> String {
            zip(row, widths).enumerated().map { i, pair in
                let cell = Self.truncate(pair.0, pair.1)
                return i == row.count - 1 ? cell : cell.padding(toLength: pair.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        var text = line(all[0]) + "\n"
        if rule { text += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        for row in all.dropFirst() { text += line(row) + "\n" }
        return text
    }

    /// Cuts to at most `limit` characters, marking the cut.
    public static func truncate(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(max(0, limit - 1))) + "…"
    }
}

extension Comparison {
    /// The comparison as a terminal table, followed by a count per change.
    public func table() -> String {
        var table = TextTable(header: ["change", "cell", "issue", "run", "baseline"])
        for entry in entries {
            func count(_ side: SideCount) -> String {
                entry.change == .incomplete
                    ? side.statuses.joined(separator: " ")
                    : "\(side.failing)/\(side.usable)"
            }
            table.add([entry.change.rawValue, entry.key.description,
                       entry.issue.map { "\($0.title) [\($0.signature)]" } ?? (entry.note ?? ""),
                       count(entry.run), count(entry.baseline)])
        }
        let counts = Change.allCases.map { "\(entries($0).count) \($0.rawValue)" }.joined(separator: ", ")
        let head = "run \(runID) against baseline \(baselineID)\n"
        let body = entries.isEmpty ? "no failures on either side\n" : table.render()
        return head + body + "\(counts); \(passingKeys) cell(s) passing on both\n"
    }
}

/// The summary of one run: a row per cell key with every repeat's status.
public enum RunSummary {
    /// `kernel  config  machine  workload  repeats  reason` per cell key in
    /// matrix order, then totals per status.
    public static func table(_ results: [CellResult]) -> String {
        var table = TextTable(header: ["kernel", "config", "machine", "workload", "repeats", "first non-PASS reason"])
        var order: [CellKey] = []
        var byKey: [CellKey: [CellResult]] = [:]
        for result in results {
            if byKey[result.cell.key] == nil { order.append(result.cell.key) }
            byKey[result.cell.key, default: []].append(result)
        }
        for key in order {
            let cells = byKey[key]!.sorted { $0.cell.repeatIndex < $1.cell.repeatIndex }
            let statuses = cells.map { $0.outcome?.status.rawValue ?? $0.cell.state.rawValue }
            let reason = cells.compactMap(\.outcome).first { $0.status != .pass }?.reason ?? ""
            let workload = key.workload + (key.scenarios.isEmpty ? "" : ":" + key.scenarios.joined(separator: ","))
            table.add([key.kernel, key.configFragments.joined(separator: ","), key.machine, workload,
                       statuses.joined(separator: " "), String(reason.prefix(100))])
        }
        var totals: [String: Int] = [:]
        for result in results { totals[result.outcome?.status.rawValue ?? result.cell.state.rawValue, default: 0] += 1 }
        let line = totals.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        return table.render() + "\(results.count) cell(s): \(line)\n"
    }
}
