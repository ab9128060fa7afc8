import Classify

/// What comparisons and reports file an issue under: a kernel report's category, a
/// PASID lifetime violation, or a failure with no kernel report behind it. Written as
/// the strings it always was ("kasan", "pasid-lifetime", "verdict", "build") in
/// `compare --json`, KCIDB and mail; the database keeps a report's category as the
/// classifier's string, which this reads with ``init(rawValue:)``.
public enum IssueCategory: Hashable, Sendable, OpenStringSet {
    /// A kernel report of this category, a PASID lifetime violation included
    /// (``pasidLifetime``).
    case report(KernelReport.Category)
    /// A FAIL without an unsuppressed kernel report: filed under its reason.
    case verdict
    /// The kernel did not build.
    case build
    /// A string this version does not know (from another version's store).
    case other(String)

    /// A PASID lifetime violation (``PasidLifecycleOracle/Violation/category``).
    public static let pasidLifetime = IssueCategory.report(.pasidLifetime)

    public init(rawValue: String) {
        switch rawValue {
        case "verdict": self = .verdict
        case "build": self = .build
        default: self.init(KernelReport.Category(rawValue: rawValue))
        }
    }

    /// A report's category as an issue's: one this version does not know stays
    /// the string it was (``other(_:)``), as ``init(rawValue:)`` reads it.
    public init(_ category: KernelReport.Category) {
        if case .unrecognized(let text) = category { self = .other(text) } else { self = .report(category) }
    }

    public var rawValue: String {
        switch self {
        case .report(let category): category.rawValue
        case .verdict: "verdict"
        case .build: "build"
        case .other(let text): text
        }
    }
}
