import CLibvirt
import Foundation
import Support
import Synchronization

/// A connection to a libvirt daemon through its C API.
///
/// Domains started here are transient and auto-destroyed when this
/// connection closes: if the harness dies, libvirt kills the guest, so no
/// QEMU outlives the run that started it.
public final class LibvirtConnection: Sendable {
    public let uri: String
    /// libvirt's connection calls are thread-safe; the lock guards only the
    /// pointer's one change, to nil in ``close()``.
    private let handleStorage: Mutex<virConnectPtr?>
    private var handle: virConnectPtr? { handleStorage.withLock { $0 } }

    private static let silenceDefaultErrorPrinter: Void = {
        // libvirt prints every error to stderr unless a handler is set; the
        // harness reports errors itself, once, in one line.
        virSetErrorFunc(nil) { _, _ in }
        // A daemon that dies leaves a broken socket: writing to it must fail
        // the call, not kill the harness with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
    }()

    public init(uri: String) throws {
        _ = Self.silenceDefaultErrorPrinter
        self.uri = uri
        guard let conn = virConnectOpen(uri) else {
            throw HarnessError.infrastructure(uri, "cannot connect to libvirt: \(Self.lastError()) (is libvirtd running? scripts/setup starts it)")
        }
        handleStorage = Mutex(conn)
    }

    deinit { close() }

    private static let sharedConnections = Mutex<[String: LibvirtConnection]>([:])

    /// One connection per URI for the whole process, reopened when the
    /// daemon went away (a restarted libvirtd). Runs share it rather than
    /// open and close their own: closing a connection makes libvirtd run its
    /// autodestroy callbacks, which wait for any domain of the connection
    /// that is still stopping (libvirt's 200 ms pause, see
    /// `LibvirtMachine.awaitPowerOff`), and the daemon accepts no new connection
    /// meanwhile, so the next run's connect took 190 ms. Domains started on
    /// it are still destroyed when the harness dies (the connection drops).
    public static func shared(uri: String) throws -> LibvirtConnection {
        try sharedConnections.withLock { sharedConnections in
            if let connection = sharedConnections[uri], connection.isAlive() { return connection }
            let connection = try LibvirtConnection(uri: uri)
            sharedConnections[uri] = connection
            return connection
        }
    }

    /// Asks the daemon something, so that a daemon that died since the last
    /// call is noticed now rather than by the next real request.
    func isAlive() -> Bool {
        guard let handle else { return false }
        var version: UInt = 0
        return virConnectGetLibVersion(handle, &version) == 0 && virConnectIsAlive(handle) == 1
    }

    public func close() {
        // Taken and cleared in one step, so two closes cannot both close it.
        let handle = handleStorage.withLock { handle in
            defer { handle = nil }
            return handle
        }
        if let handle { virConnectClose(handle) }
    }

    public func hypervisorVersion() throws -> String {
        var version: UInt = 0
        guard let handle, virConnectGetVersion(handle, &version) == 0 else {
            throw HarnessError.infrastructure(uri, "cannot read hypervisor version: \(Self.lastError())")
        }
        return "\(version / 1_000_000).\(version / 1000 % 1000).\(version % 1000)"
    }

    public func libvirtVersion() throws -> String {
        var version: UInt = 0
        guard let handle, virConnectGetLibVersion(handle, &version) == 0 else {
            throw HarnessError.infrastructure(uri, "cannot read libvirt version: \(Self.lastError())")
        }
        return "\(version / 1_000_000).\(version / 1000 % 1000).\(version % 1000)"
    }

    /// Starts a transient domain that libvirt destroys when this connection closes.
    public func startTransient(_ description: DomainDescription) throws -> Domain {
        guard let handle else { throw HarnessError.infrastructure(uri, "connection closed") }
        let flags = UInt32(VIR_DOMAIN_START_AUTODESTROY.rawValue)
        guard let domain = virDomainCreateXML(handle, description.xml, flags) else {
            throw HarnessError.infrastructure(description.name, "libvirt could not start the domain: \(Self.lastError())")
        }
        return Domain(handle: domain, name: description.name)
    }

    /// Looks a domain up by name; nil when libvirt does not know it (any more).
    public func domain(named name: String) -> Domain? {
        guard let handle, let domain = virDomainLookupByName(handle, name) else { return nil }
        return Domain(handle: domain, name: name)
    }

    /// Names of running domains whose name starts with `prefix`.
    public func activeDomainNames(prefix: String) throws -> [String] {
        guard let handle else { throw HarnessError.infrastructure(uri, "connection closed") }
        var list: UnsafeMutablePointer<virDomainPtr?>?
        let count = virConnectListAllDomains(handle, &list, UInt32(VIR_CONNECT_LIST_DOMAINS_ACTIVE.rawValue))
        guard count >= 0, let list else {
            throw HarnessError.infrastructure(uri, "cannot list domains: \(Self.lastError())")
        }
        defer { free(list) }
        var names: [String] = []
        for i in 0..<Int(count) {
            guard let d = list[i] else { continue }
            if let cName = virDomainGetName(d) {
                let name = String(cString: cName)
                if name.hasPrefix(prefix) { names.append(name) }
            }
            virDomainFree(d)
        }
        return names
    }

    static func lastError() -> String {
        guard let error = virGetLastError(), let message = error.pointee.message else {
            return "unknown libvirt error"
        }
        return String(cString: message).replacingOccurrences(of: "\n", with: " ")
    }
}

/// A running (or just ended) libvirt domain.
/// `@unchecked`: its state is a libvirt domain pointer, which never changes and which libvirt lets any thread use.
public final class Domain: @unchecked Sendable {
    public let name: String
    private let handle: virDomainPtr?

    init(handle: virDomainPtr, name: String) {
        self.handle = handle
        self.name = name
    }

    deinit {
        if let handle { virDomainFree(handle) }
    }

    /// `unknown` when libvirt did not answer: the daemon died or the connection broke.
    public func state() -> MachineState {
        guard let handle else { return .ended }
        switch virDomainIsActive(handle) {
        case 1: return .running
        case 0: return .ended
        default:
            // A transient domain that ended is gone: "no domain with matching uuid".
            let code = virGetLastError()?.pointee.code ?? 0
            if code == Int32(VIR_ERR_NO_DOMAIN.rawValue) { return .ended }
            return .unknown(LibvirtConnection.lastError())
        }
    }

    /// Kills the guest at once: no ACPI shutdown, no grace period.
    @discardableResult
    public func destroy() -> Bool {
        guard let handle else { return true }
        if virDomainDestroy(handle) == 0 { return true }
        let code = virGetLastError()?.pointee.code ?? 0
        return code == Int32(VIR_ERR_NO_DOMAIN.rawValue) || code == Int32(VIR_ERR_OPERATION_INVALID.rawValue)
    }
}
