// swift-tools-version: 6.2
import PackageDescription

// One target per pipeline stage; dependencies point one way:
// Kernel -> GuestImage -> Machine -> Collect -> Classify -> Harness -> Store -> CLI;
// Matrix drives runs through Harness and records them in Store.
let package = Package(
    name: "kharness",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kharness", targets: ["kharness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibvirt",
            pkgConfig: "libvirt",
            providers: [.apt(["libvirt-dev"])]
        ),
        .target(
            name: "Support",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        .target(name: "Kernel", dependencies: ["Support"]),
        .target(name: "GuestImage", dependencies: ["Support"]),
        .target(name: "Machine", dependencies: ["CLibvirt", "Support"]),
        .target(name: "Collect", dependencies: ["Support"]),
        .target(
            name: "Classify",
            dependencies: ["Support", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "Harness",
            dependencies: ["Kernel", "GuestImage", "Machine", "Collect", "Classify", "Support"]
        ),
        .target(
            name: "Store",
            dependencies: ["Harness", "Classify", "Support", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "Matrix",
            dependencies: ["Harness", "Store", "Kernel", "Support", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "Report",
            dependencies: ["Store", "Harness", "Classify", "Support", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(name: "Bisect", dependencies: ["Harness", "Kernel", "Classify", "Support"]),
        .target(
            name: "Nightly",
            dependencies: ["Matrix", "Report", "Store", "Bisect", "Harness", "Kernel", "Support",
                           .product(name: "Yams", package: "Yams")]
        ),
        .executableTarget(
            name: "kharness",
            dependencies: [
                "Harness",
                "Store",
                "Matrix",
                "Report",
                "Bisect",
                "Nightly",
                "Classify",
                "Kernel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Debian's kernel sources for the tests and the release a build of one reports.
        .target(name: "KernelTestSupport", dependencies: ["Support"], path: "Tests/KernelTestSupport"),
        .testTarget(name: "GuestImageTests", dependencies: ["GuestImage"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine"]),
        .testTarget(name: "ClassifyTests", dependencies: ["Classify"], resources: [.copy("testdata")]),
        .testTarget(name: "KernelTests", dependencies: ["Kernel", "Harness", "KernelTestSupport"]),
        .testTarget(name: "HarnessTests", dependencies: ["Harness", "KernelTestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Harness", "Support", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "MatrixTests", dependencies: ["Matrix", "Store", "Harness", "Machine", "Support", "KernelTestSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Store", "Harness", "Classify", "Support", "KernelTestSupport"]),
        .testTarget(name: "BisectTests", dependencies: ["Bisect", "Harness"]),
        .testTarget(name: "NightlyTests", dependencies: ["Nightly", "Matrix", "Store", "Kernel", "Support", "KernelTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
