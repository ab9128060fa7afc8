import Classify
import Foundation
import XCTest
@testable import RunModel

/// Issue categories are written as the strings they always were.
final class IssueCategoryTests: XCTestCase {
    func testStrings() throws {
        for category in KernelReport.Category.allCases {
            XCTAssertEqual(IssueCategory(rawValue: category.rawValue), .report(category))
            XCTAssertEqual(IssueCategory.report(category).rawValue, category.rawValue)
        }
        XCTAssertEqual(IssueCategory(rawValue: "pasid-lifetime"), .pasidLifetime)
        XCTAssertEqual(IssueCategory.pasidLifetime.rawValue, PasidLifecycleOracle.Violation.category)
        XCTAssertEqual(IssueCategory(rawValue: "verdict"), .verdict)
        XCTAssertEqual(IssueCategory(rawValue: "build"), .build)
        XCTAssertEqual(IssueCategory(rawValue: "smmu-event"), .report(.smmuEvent))
        XCTAssertEqual(IssueCategory(rawValue: "from-the-future"), .other("from-the-future"))
        let all: [IssueCategory] = [.report(.kasan), .pasidLifetime, .verdict, .build, .other("x")]
        let json = try JSONEncoder().encode(all)
        XCTAssertEqual(String(decoding: json, as: UTF8.self), #"["kasan","pasid-lifetime","verdict","build","x"]"#)
        XCTAssertEqual(try JSONDecoder().decode([IssueCategory].self, from: json), all)
    }
}
