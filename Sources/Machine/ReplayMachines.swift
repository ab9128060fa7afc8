import Foundation
import Synchronization

/// Machines that play back what a real guest wrote (its console, trace port
/// and device records) into the files a description names, then end the way
/// the recording says: the guest powers off, QEMU crashes, the guest hangs,
/// keeps printing, or libvirt vanishes.
///
/// It exists to test what consumes a machine (the watcher, the verdict, a
/// whole run, a matrix) without booting one, on real consoles: the bytes
/// arrive in chunks over time as QEMU's do, so the watcher's deadlines,
/// limits and partial lines are exercised, not a file that is simply there.
/// It is not a model of QEMU: nothing about the machine is checked.
public struct ReplayMachines: MachineBackend {
    public var recording: Recording

    public init(_ recording: Recording) { self.recording = recording }

    public func connect() throws {}

    public func start(_ description: DomainDescription) throws -> any MachineInstance {
        let machine = try ReplayMachine(name: description.name, recording: recording, console: description.consoleLog,
                                        trace: description.traceLog, deviceRecords: description.deviceRecordsLog)
        machine.play()
        return machine
    }
}

/// What a replayed machine writes and how it ends.
public struct Recording: Sendable {
    /// The console as QEMU's serial port wrote it (a run's `console.log`).
    public var console: Data
    /// The trace port's bytes (`trace-port.log`), written only when the
    /// description has a trace port, as for a real guest.
    public var trace: Data?
    /// sva-accel's records (`device.log`), written only when the description
    /// names a records file.
    public var deviceRecords: Data?
    /// Bytes per stream per step, and the pause between steps: QEMU's output
    /// arrives in pieces, and a watcher must cope with lines cut between them.
    public var chunkBytes: Int = 4096
    public var interval: Duration = .milliseconds(1)
    public var ending: Ending

    public enum Ending: Sendable, Equatable {
        /// After the last byte the machine stops by itself, as `end` says.
        case stops(MachineEnd)
        /// After the last byte the machine runs on silently until destroyed
        /// (a guest that hangs).
        case hangs
        /// After the last byte the guest prints these bytes over and over
        /// until destroyed (a guest that floods its console).
        case keepsPrinting(Data)
        /// After the last byte the machine's manager stops answering (libvirtd
        /// died); the text is what it would have said.
        case vanishes(String)

        /// The guest powered off (or reset after a panic): libvirt's "shutdown".
        public static let poweredOff = Ending.stops(.stopped)

        /// QEMU crashed, as libvirt reports it, with QEMU's last message.
        public static func emulatorCrashed(lastLine: String?) -> Ending {
            .stops(.emulatorFailed(detail: "libvirt: reason=crashed", lastLine: lastLine))
        }
    }

    public init(console: Data, trace: Data? = nil, deviceRecords: Data? = nil, ending: Ending = .poweredOff) {
        self.console = console
        self.trace = trace
        self.deviceRecords = deviceRecords
        self.ending = ending
    }

    /// The streams a run kept in its directory (`console.log`,
    /// `trace-port.log`, `device.log`; the last two when present).
    public init(runDirectory: String, ending: Ending = .poweredOff) throws {
        func read(_ name: String) -> Data? { FileManager.default.contents(atPath: "\(runDirectory)/\(name)") }
        guard let console = read("console.log") else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: "\(runDirectory)/console.log"])
        }
        self.init(console: console, trace: read("trace-port.log"), deviceRecords: read("device.log"), ending: ending)
    }
}

/// One replayed machine: a task writes the recording into the files, the
/// state says how far it got.
public final class ReplayMachine: MachineInstance, Sendable {
    public let name: String
    public var emulatorLog: String? { nil }
    private let recording: Recording
    private let streams: [(handle: FileHandle, data: Data)]
    private let console: FileHandle

    private struct State {
        var ended: MachineEnd?
        var vanished: String?
        var destroyed = false
        var player: Task<Void, Never>?
    }
    private let box = Mutex(State())

    /// Creates (truncates) every file the description names, as QEMU opens
    /// them with `append='off'`, so a watcher can follow them at once.
    init(name: String, recording: Recording, console: String, trace: String?, deviceRecords: String?) throws {
        self.name = name
        self.recording = recording
        func open(_ path: String) throws -> FileHandle {
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path)
            else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
            return handle
        }
        self.console = try open(console)
        var streams = [(handle: self.console, data: recording.console)]
        if let trace { streams.append((try open(trace), recording.trace ?? Data())) }
        if let deviceRecords { streams.append((try open(deviceRecords), recording.deviceRecords ?? Data())) }
        self.streams = streams
    }

    deinit {
        for stream in streams { try? stream.handle.close() }
    }

    /// True once ``destroy()`` ran: what a test of the watcher checks to know
    /// the run stopped the machine rather than leaving it running.
    public var wasDestroyed: Bool { box.withLock { $0.destroyed } }

    func play() {
        let task = Task.detached { [self] in await self.run() }
        box.withLock { $0.player = task }
    }

    private var isDestroyed: Bool { box.withLock { $0.destroyed } }

    private func run() async {
        let chunk = max(1, recording.chunkBytes)
        let longest = streams.map(\.data.count).max() ?? 0
        var offset = 0
        while offset < longest {
            if isDestroyed { return }
            for stream in streams where offset < stream.data.count {
                let end = min(offset + chunk, stream.data.count)
                try? stream.handle.write(contentsOf: stream.data.subdata(in: offset..<end))
            }
            offset += chunk
            if recording.interval > .zero { try? await Task.sleep(for: recording.interval) }
        }
        switch recording.ending {
        case .stops(let end):
            box.withLock { $0.ended = end }
        case .hangs:
            break
        case .vanishes(let why):
            box.withLock { $0.vanished = why }
        case .keepsPrinting(let bytes):
            // At least a millisecond between writes: a flood, not a disk filler.
            let pause = max(recording.interval, .milliseconds(1))
            while !isDestroyed, !bytes.isEmpty {
                try? console.write(contentsOf: bytes)
                try? await Task.sleep(for: pause)
            }
        }
    }

    public func state() -> MachineState {
        box.withLock { state in
            if let vanished = state.vanished { return .unknown(vanished) }
            return state.ended != nil || state.destroyed ? .ended : .running
        }
    }

    public func end() async -> MachineEnd {
        box.withLock { $0.ended } ?? .stopped
    }

    public func awaitPowerOff(within limit: Duration) async -> Bool? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if box.withLock({ $0.ended != nil }) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return box.withLock { $0.ended != nil }
    }

    /// Stops the playback and waits for it: nothing is written after this returns.
    public func destroy() async {
        let player = box.withLock { state -> Task<Void, Never>? in
            state.destroyed = true
            return state.player
        }
        await player?.value
    }
}
