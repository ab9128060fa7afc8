import Foundation
import Support

/// What whole runs on replayed machines need, for the harness's and the
/// matrix's tests alike: recorded consoles, and a kernel that nothing boots.
public enum ReplayFixtures {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// The classifier's recorded arm64 consoles.
    public static let arm64 = Checkout.root + "/Tests/ClassifyTests/testdata/arm64"

    /// A recorded console from the classifier's test data, without its header
    /// (everything up to the first blank line says what the classifier must make of it).
    public static func console(_ name: String) throws -> Data {
        let file = try Data(contentsOf: URL(fileURLWithPath: "\(arm64)/\(name)"))
        guard let blank = file.firstRange(of: Data("\n\n".utf8)) else { throw Missing(description: "\(name) has no header") }
        return file.subdata(in: blank.upperBound..<file.count)
    }

    /// A cache under `directory` with what a run of an `image:` kernel needs
    /// and no network: an arm64 busybox and kernel image that are only their
    /// headers (nothing boots them; the replay plays a recorded console instead).
    public static func fakeKernel(in directory: String) throws -> (cache: CacheDirectory, image: String) {
        let cache = CacheDirectory(root: "\(directory)/cache")
        try FileManager.default.createDirectory(atPath: "\(cache.root)/busybox-arm64/bin", withIntermediateDirectories: true)
        var elf = [UInt8](repeating: 0, count: 64)
        elf[0...3] = [0x7f, 0x45, 0x4c, 0x46]
        elf[18] = 183
        try Data(elf).write(to: URL(fileURLWithPath: "\(cache.root)/busybox-arm64/bin/busybox"))
        var image = [UInt8](repeating: 0, count: 64)
        image[56...59] = [0x41, 0x52, 0x4d, 0x64]
        try Data(image).write(to: URL(fileURLWithPath: "\(directory)/Image"))
        return (cache, "\(directory)/Image")
    }
}
