// swift-tools-version: 6.2
import PackageDescription

// One target per pipeline stage; dependencies point one way, from the command line
// down to Support:
// - VCS is git, every git process kharness starts (the kernel builder's, the bisect's,
//   the nightly's), over Support.
// - Kernel (over VCS), GuestImage, Machine, Collect and Classify are independent stages over Support.
//   Machine is the one seam to what runs guests (MachineBackend: libvirt for runs,
//   a replay of recorded files for tests); nothing above it names libvirt's paths.
// - RunModel is the run's vocabulary, a request in and a record out (RunRequest,
//   RunResult, how a run ended, exit codes): Classify's verdict types, Kernel's
//   build record and Collect's coverage summary, no I/O. Whatever only reads records depends on it, not on Harness.
// - Harness runs one request through every stage (stage functions over values, the
//   machine through Machine's protocol) and returns its RunResult.
// - Store keeps records (RunModel) in SQLite; Report renders them from the Store.
// - Matrix drives runs through Harness and records them in Store; Bisect drives
//   runs through Harness and decides its steps from records; Nightly runs Matrix,
//   Report and Bisect; the CLI parses arguments for all of them.
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
        .target(name: "VCS", dependencies: ["Support"]),
        .target(name: "Kernel", dependencies: ["VCS", "Support"]),
        .target(name: "GuestImage", dependencies: ["Support"]),
        .target(name: "Machine", dependencies: ["CLibvirt", "Support"]),
        .target(name: "Collect", dependencies: ["Support"]),
        .target(
            name: "Classify",
            dependencies: ["Support", .product(name: "Yams", package: "Yams")]
        ),
        .target(name: "RunModel", dependencies: ["Classify", "Collect", "Kernel", "Support"]),
        .target(
            name: "Harness",
            dependencies: ["RunModel", "Kernel", "GuestImage", "Machine", "Collect", "Classify", "Support"]
        ),
        .target(
            name: "Store",
            dependencies: ["RunModel", "Classify", "Support", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "Matrix",
            dependencies: ["Harness", "RunModel", "Store", "Kernel", "Machine", "Classify", "Support",
                           .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "Report",
            dependencies: ["Store", "RunModel", "Classify", "Collect", "Support", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(name: "Bisect", dependencies: ["Harness", "RunModel", "Kernel", "VCS", "Classify", "Support"]),
        .target(
            name: "Nightly",
            dependencies: ["Matrix", "Report", "Store", "Bisect", "Harness", "RunModel", "Kernel", "VCS", "Support",
                           .product(name: "Yams", package: "Yams")]
        ),
        .executableTarget(
            name: "kharness",
            dependencies: [
                "Harness",
                "RunModel",
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
        // The checkout the tests run from (Checkout: the repository root, guest/, the built
        // executable), Debian's kernel sources for the tests and the release a build of one reports.
        .target(name: "KernelTestSupport", dependencies: ["Support"], path: "Tests/KernelTestSupport"),
        .testTarget(name: "VCSTests", dependencies: ["VCS", "Support"]),
        .testTarget(name: "SupportTests", dependencies: ["Support"]),
        .testTarget(name: "GuestImageTests", dependencies: ["GuestImage"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine"]),
        .testTarget(name: "ClassifyTests", dependencies: ["Classify", "KernelTestSupport"], resources: [.copy("testdata")]),
        .testTarget(name: "KernelTests", dependencies: ["Kernel", "VCS", "Harness", "KernelTestSupport"]),
        .testTarget(name: "HarnessTests", dependencies: ["Harness", "Machine", "Collect", "RunModel", "GuestImage", "Support", "KernelTestSupport"]),
        .testTarget(name: "RunModelTests", dependencies: ["RunModel", "Classify"], resources: [.copy("testdata")]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "RunModel", "Classify", "Bisect", "Support", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "MatrixTests", dependencies: ["Matrix", "Store", "RunModel", "Classify", "Machine", "Support", "KernelTestSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Store", "RunModel", "Classify", "Kernel", "Support", "KernelTestSupport"]),
        .testTarget(name: "BisectTests", dependencies: ["Bisect", "Harness", "RunModel", "Support", "KernelTestSupport"]),
        .testTarget(name: "NightlyTests", dependencies: ["Nightly", "Matrix", "Store", "Kernel", "Support", "KernelTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
