import Store

/// The terminal table: one line per run, then the issues, then totals.
public enum TableReport {
    public static func render(_ report: MatrixReport, width: Int = 160) -> String {
        let compared = report.baselineID != nil
        var header = ["KERNEL", "CONFIG", "MACHINE", "WORKLOAD", "#", "STATUS"]
        if compared { header.append("CHANGE") }
        header.append("REASON")
        var table = TextTable(header: header)
        table.rule = false
        // The reason takes what is left of the line.
        table.width = width
        table.rows = report.cells.map { cell in
            var row = [cell.kernelLabel, cell.configLabel, cell.result.machine,
                       cell.scenarios.isEmpty ? cell.result.workload
                           : "\(cell.result.workload) [\(cell.scenarios.joined(separator: ","))]",
                       String(cell.repeatIndex), cell.status.rawValue]
            if compared { row.append(cell.change?.rawValue ?? "-") }
            row.append(cell.result.reason)
            return row.map { Escape.truncate(Escape.line($0), 60) }
        }
        var out = "matrix run \(Escape.line(report.id))"
        if let baseline = report.baselineID { out += ", compared with \(Escape.line(baseline))" }
        out += "\n\n" + table.render()
        if !report.issues.isEmpty {
            out += "\nissues:\n"
            for issue in report.issues {
                var line = "  \(issue.signature)  \(Escape.truncate(Escape.line(issue.title), 90))  (\(issue.cells.count) run\(issue.cells.count == 1 ? "" : "s")"
                if issue.isNew(in: report) { line += ", new" }
                out += line + ")\n"
            }
        }
        let covered = report.cells.filter { $0.result.coverage != nil }
        if !covered.isEmpty {
            out += "\ncoverage (lines, branches):\n"
            for cell in covered {
                let coverage = cell.result.coverage!
                out += "  \(Escape.line(cell.kernelLabel)) \(Escape.line(cell.configLabel)) #\(cell.repeatIndex)"
                out += coverage.problem.map { ": \(Escape.truncate(Escape.line($0), 100))" } ?? ""
                out += "\n"
                for file in coverage.files {
                    out += "    \(Escape.line(file.path))  \(file.lineText), \(file.branchText)\n"
                }
            }
        }
        var counts: [String: Int] = [:]
        for cell in report.cells { counts[cell.status.rawValue, default: 0] += 1 }
        let order = ["PASS", "FAIL", "ERROR", "SKIP", "MISS", "BUILD_FAIL"]
        let totals = order.compactMap { key in counts[key].map { "\($0) \(key)" } }.joined(separator: ", ")
        out += "\n\(report.cells.count) run\(report.cells.count == 1 ? "" : "s"): \(totals.isEmpty ? "none" : totals)\n"
        return out
    }
}
