import Foundation

/// Names of runs: `20261205-200350-1a2b3c`, the UTC start and a random suffix, so
/// they sort by time and two runs started in the same second differ. A record's
/// vocabulary rather than the run stage's: the matrix (`m…`) and the nightly
/// (`n…`) name their own runs with it without importing the runner.
public enum RunID {
    public static func new() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let suffix = String(format: "%06x", UInt32.random(in: 0..<0xFFFFFF))
        return "\(formatter.string(from: Date()))-\(suffix)"
    }
}
