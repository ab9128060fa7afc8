import Foundation

/// The kharness checkout the tests were compiled from, and what the tests find
/// through it: the one place a test target works out where the repository is.
public enum Checkout {
    /// The repository root: Tests/KernelTestSupport/Checkout.swift → ../../..
    public static let rootURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `rootURL` as a path.
    public static let root = rootURL.path

    /// `relative` in the checkout ("guest", "scripts/kernel-source").
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The checkout's guest/ assets as `KHARNESS_GUEST_DIR`, for the tests that run
    /// workloads or validate workload names.
    public static func useGuestAssets() {
        setenv("KHARNESS_GUEST_DIR", path("guest"), 1)
    }

    /// A fresh directory under the temporary directory, `<prefix>-<UUID>`.
    public static func scratchDirectory(_ prefix: String) -> String {
        let directory = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// The kharness executable SwiftPM built beside the test bundle (in the products
    /// directory or the one above it), nil when it was not built.
    public static var builtExecutable: String? {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var kharness = products.appendingPathComponent("kharness").path
        if !FileManager.default.fileExists(atPath: kharness) {
            kharness = products.deletingLastPathComponent().appendingPathComponent("kharness").path
        }
        return FileManager.default.isExecutableFile(atPath: kharness) ? kharness : nil
    }

    /// Why a test that needs `builtExecutable` skips without it.
    public static let missingExecutable = "build the kharness executable first (scripts/test does)"
}
