import Foundation
import Support
import Synchronization

/// What a long kernel build reports while it runs, for a terminal status line.
public struct BuildProgress: Sendable, Equatable {
    public enum Phase: String, Sendable, Codable {
        case cacheLookup = "cache"
        case patching = "patch"
        case checkout = "checkout"
        case configuring = "config"
        case compiling = "compile"
        case installing = "install"
        case storing = "store"
        case done = "done"
    }

    public var phase: Phase
    /// kbuild lines such as `  CC      kernel/fork.o` seen so far in this phase.
    public var objectsBuilt: Int
    /// Seconds since the build request started.
    public var elapsed: Double

    public init(phase: Phase, objectsBuilt: Int = 0, elapsed: Double) {
        self.phase = phase
        self.objectsBuilt = objectsBuilt
        self.elapsed = elapsed
    }

    /// Which of a build's reports to pass on: every phase change, and one
    /// every `interval` seconds within a phase, so a 3-minute build is a few
    /// lines, not thousands. `kharness run` and the matrix both print through one.
    public final class Throttle: Sendable {
        private let interval: Double
        /// The phase and the elapsed seconds of the last report passed on.
        private let last = Mutex<(phase: Phase?, elapsed: Double)>((nil, -.infinity))

        public init(interval: Double) { self.interval = interval }

        public func due(_ progress: BuildProgress) -> Bool {
            last.withLock { last in
                guard progress.phase != last.phase || progress.elapsed - last.elapsed >= interval else { return false }
                last = (progress.phase, progress.elapsed)
                return true
            }
        }
    }

    /// `compile  1234 objects  2:05`, for a status line.
    public var line: String {
        let seconds = Int(elapsed)
        let time = String(format: "%d:%02d", seconds / 60, seconds % 60)
        if phase == .compiling || phase == .installing {
            return "\(phase.rawValue)  \(objectsBuilt) objects  \(time)"
        }
        return "\(phase.rawValue)  \(time)"
    }
}

/// A build that failed to compile or link: the BUILD_FAIL outcome. Not a
/// harness error: the kernel under test is broken, the harness is not.
public struct KernelBuildFailure: Error, CustomStringConvertible, Sendable {
    /// What was being built, e.g. `git:/src/linux@v6.12`.
    public var kernel: String
    /// The first compiler or linker error in the log.
    public var reason: String
    public var logPath: String

    public var description: String { "\(kernel): BUILD_FAIL: \(reason) (log: \(logPath))" }

    /// The first line that looks like a compiler, assembler or linker error,
    /// else the first make error, else the last line.
    static func firstError(inLog text: String) -> String {
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let patterns = [": fatal error: ", ": error: ", "undefined reference to ", "Error: ",
                        "multiple definition of ", "ld: "]
        if let line = lines.first(where: { line in patterns.contains { line.contains($0) } }) {
            return String(line.prefix(400))
        }
        if let line = lines.first(where: { $0.contains("***") }) { return String(line.prefix(400)) }
        return String((lines.last ?? "make failed").prefix(400))
    }

    /// The system's words for a failure of the machine, not of the kernel's
    /// source: a compiler or linker that could not write its output.
    static let machineFaults = ["No space left on device", "Disk quota exceeded", "Read-only file system",
                                "Input/output error"]

    /// The first log line that says the machine failed the build (a full disk
    /// under the object directory, a cache removed mid-build), nil when none
    /// does: then the build failed because of the kernel, BUILD_FAIL. make
    /// runs with LC_ALL=C, so the tools say these in English.
    static func machineFault(inLog text: String) -> String? {
        text.split(separator: "\n").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
            .first { line in machineFaults.contains { line.contains($0) } }
            .map { String($0.prefix(400)) }
    }
}

/// Runs make (or any long command) with its output going straight to a log
/// file, and reports kbuild's one-line-per-object output as progress by
/// polling the log, so the harness adds no work per output line.
struct LoggedCommand {
    var executable: String
    var arguments: [String]
    var workingDirectory: String
    var environment: [String: String]
    var logPath: String

    /// Returns the exit status.
    func run(onLines: @escaping @Sendable (Int) -> Void) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if !Files.exists(logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            throw HarnessError.infrastructure(logPath, "cannot open build log for writing")
        }
        defer { try? log.close() }
        _ = try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let startOffset = try log.offset()
        try process.run()
        var counter = ObjectLineCounter()
        var offset = startOffset
        while process.isRunning {
            try await Task.sleep(nanoseconds: 500_000_000)
            offset = counter.consume(logPath: logPath, from: offset)
            onLines(counter.objects)
            if Task.isCancelled { process.terminate() }
        }
        process.waitUntilExit()
        _ = counter.consume(logPath: logPath, from: offset)
        onLines(counter.objects)
        return process.terminationStatus
    }
}

/// Counts kbuild's quiet-mode lines (`  CC      mm/mmap.o`) in a growing log.
struct ObjectLineCounter {
    var objects = 0
    private var partial = Data()

    mutating func consume(logPath: String, from offset: UInt64) -> UInt64 {
        guard let handle = FileHandle(forReadingAtPath: logPath) else { return offset }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        var position = offset
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            position += UInt64(chunk.count)
            partial.append(chunk)
            var start = partial.startIndex
            while let newline = partial[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = partial[start..<newline]
                if Self.isObjectLine(line) { objects += 1 }
                start = partial.index(after: newline)
            }
            partial = Data(partial[start...])
            // A pathological line without newlines must not grow without bound.
            if partial.count > 1 << 16 { partial.removeAll() }
        }
        return position
    }

    static func isObjectLine(_ line: Data) -> Bool {
        // "  CC      kernel/fork.o": two spaces, an upper-case tag, spaces.
        let bytes = Array(line.prefix(12))
        guard bytes.count >= 4, bytes[0] == 0x20, bytes[1] == 0x20,
              (0x41...0x5a).contains(bytes[2]) else { return false }
        return ["CC", "AS", "LD", "AR"].contains { tag in
            bytes.starts(with: Array(("  " + tag).utf8))
        }
    }
}
