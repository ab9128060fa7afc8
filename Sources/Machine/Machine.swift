import Foundation

/// Whatever runs guest machines: libvirt's QEMU for real runs
/// (``LibvirtMachines``), recorded files played back for tests of what
/// watches a machine (``ReplayMachines``).
///
/// The one seam between a run and the machine it runs on, as syzkaller's
/// `vm/vmimpl` is: the watcher, the verdict and the matrix above it never
/// know which backend started the guest, so they can be tested without
/// booting one, and another host (a remote daemon, another hypervisor) is
/// another backend, not another code path.
///
/// A guest's byte streams (its console, the trace port, the device's
/// records) are the files the ``DomainDescription`` names: QEMU (through
/// virtlogd) writes them, the harness follows them and keeps them in the run
/// directory. Files, not pipes, because a file backend never stalls the guest
/// on a slow reader and is still there when the harness dies. A backend's
/// promise is to write each stream to its file while the machine runs.
public protocol MachineBackend: Sendable {
    /// Reaches what starts machines (for libvirt, the shared connection to
    /// the daemon). Separate from ``start(_:)`` so a run reports a daemon that
    /// is down, and times the two, apart.
    func connect() throws

    /// Starts a guest as `description` says, its streams going to the files
    /// the description names. Throws when nothing started: then there is
    /// nothing to stop.
    func start(_ description: DomainDescription) throws -> any MachineInstance
}

/// A started guest machine, until it is gone.
public protocol MachineInstance: AnyObject, Sendable {
    /// The name it was started under (the description's).
    var name: String { get }

    /// Whether it still runs. Cheap enough to ask every 100 ms.
    func state() -> MachineState

    /// Why it stopped, asked once ``state()`` said ``MachineState/ended``.
    /// May wait a moment: libvirt writes the reason as it cleans up.
    func end() async -> MachineEnd

    /// After the guest said it is done it powers itself off: waits up to
    /// `limit` for the machine to be gone by itself. nil when this backend
    /// cannot watch for that (then the run destroys the machine at once).
    func awaitPowerOff(within limit: Duration) async -> Bool?

    /// Stops the machine now, without a grace period, and makes sure nothing
    /// of it outlives the run (even when its manager died meanwhile).
    func destroy() async

    /// The emulator's own log, kept in the run directory as `qemu.log`, if
    /// the backend has one.
    var emulatorLog: String? { get }
}

/// What the harness can see of a machine between start and end.
public enum MachineState: Equatable, Sendable {
    case running
    case ended
    /// Its manager did not answer (libvirtd died, the connection broke): the
    /// run is the infrastructure's failure; the text is the run's reason, in
    /// the backend's words ("libvirt stopped answering during the run: ...").
    case unknown(String)
}

/// How a machine that ended by itself stopped.
public enum MachineEnd: Equatable, Sendable {
    /// The guest powered off or reset (a panic with `panic=-1` resets), or
    /// the backend saw nothing else. The console says which.
    case stopped
    /// The emulator itself stopped (crashed, failed to run the guest): never
    /// the kernel's failure. `detail` names who said so and why
    /// (`libvirt: reason=crashed`), `lastLine` is the emulator's last
    /// message when there is one.
    case emulatorFailed(detail: String, lastLine: String?)
}
