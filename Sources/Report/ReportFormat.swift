import Foundation
import Support

/// The formats of `kharness report`.
public enum ReportFormat: String, CaseIterable, Sendable {
    case table, junit, kcidb, html, email

    /// Renders `report` for writing to `outputPath` (nil: standard output);
    /// HTML links are made relative to the output's directory.
    public func render(_ report: MatrixReport, outputPath: String?, artifactBaseURL: String? = nil) throws -> Data {
        switch self {
        case .table: return Data(TableReport.render(report).utf8)
        case .junit: return Data(JUnitReport.render(report).utf8)
        case .kcidb: return try KcidbReport.render(report, artifactBaseURL: artifactBaseURL) + Data("\n".utf8)
        case .email: return Data(EmailReport.render(report).utf8)
        case .html:
            let directory = outputPath.map { URL(fileURLWithPath: Files.absolute($0)).deletingLastPathComponent().path }
                ?? FileManager.default.currentDirectoryPath
            return Data(HtmlReport.render(report, outputDirectory: directory).utf8)
        }
    }
}
