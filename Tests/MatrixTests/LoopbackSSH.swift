import Foundation
import Support
import XCTest

/// A private sshd on a loopback port, so that a `qemu+ssh://` URI reaches
/// this host's libvirtd the way it reaches another host's: libvirt runs
/// `ssh`, and `virt-ssh-helper` on the far side. Its host key, client key
/// and authorized keys live in a scratch directory; root's own ssh files
/// are not touched (the client runs through a wrapper that keeps no known
/// hosts).
final class LoopbackSSH {
    let directory: String
    let port: Int
    private let server: Process

    /// `qemu+ssh://` to this host's system instance, through this sshd.
    var uri: String {
        "qemu+ssh://root@127.0.0.1:\(port)/system?keyfile=\(directory)/client_key&no_verify=1&no_tty=1"
            + "&command=\(directory)/ssh"
    }

    init(directory: String) async throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for key in ["host_key", "client_key"] {
            try await Command.check("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "kharness-test",
                                                   "-f", directory + "/" + key])
        }
        try FileManager.default.copyItem(atPath: directory + "/client_key.pub", toPath: directory + "/authorized_keys")
        try Self.write(directory + "/ssh", mode: 0o755, """
            #!/bin/sh
            exec /usr/bin/ssh -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"

            """)
        port = try Self.freeLoopbackPort()
        try Self.write(directory + "/sshd_config", mode: 0o600, """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(directory)/host_key
            AuthorizedKeysFile \(directory)/authorized_keys
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            StrictModes no
            UsePAM no
            PidFile none

            """)
        // sshd's privilege separation directory, made by the package's service on boot.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/sshd")
        server.arguments = ["-D", "-e", "-f", directory + "/sshd_config"]
        server.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        server.standardError = try FileHandle(forWritingTo: Self.create(directory + "/sshd.log"))
        try server.run()
        for _ in 0..<100 {
            if Self.accepts(port: port) { return }
            guard server.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop()
        let log = (try? String(contentsOfFile: directory + "/sshd.log", encoding: .utf8)) ?? ""
        throw HarnessError.infrastructure("sshd", "did not listen on 127.0.0.1:\(port): \(log)")
    }

    func stop() {
        guard server.isRunning else { return }
        server.terminate()
        server.waitUntilExit()
    }

    deinit { stop() }

    private static func write(_ path: String, mode: Int, _ text: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    private static func create(_ path: String) -> URL {
        FileManager.default.createFile(atPath: path, contents: nil)
        return URL(fileURLWithPath: path)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A port the kernel hands out for 127.0.0.1 now.
    private static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.infrastructure("socket", String(cString: strerror(errno))) }
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw HarnessError.infrastructure("127.0.0.1", String(cString: strerror(errno))) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
