import Foundation

/// A plain-text table for terminals: columns padded to their widest cell,
/// a rule under the header. Cells are single lines (newlines become spaces).
public struct TextTable: Sendable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(header: [String]) { self.header = header }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> String {
        let all = ([header] + rows).map { row in
            (0..<header.count).map { i in
                i < row.count ? row[i].replacingOccurrences(of: "\n", with: " ") : ""
            }
        }
        let widths = (0..<header.count).map { i in all.map { $0[i].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            zip(row, widths).enumerated().map { i, pair in
                i == row.count - 1 ? pair.0 : pair.0.padding(toLength: pair.1, withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        var text = line(all[0]) + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in all.dropFirst() { text += line(row) + "\n" }
        return text
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
