import Foundation

/// Writes a `newc` cpio archive, the format the kernel unpacks as initramfs.
///
/// Written by hand rather than by calling `cpio` because the archive must
/// contain device nodes and root-owned files whatever user runs the harness,
/// and its bytes must depend only on its contents so it can be cached.
public struct CpioWriter {
    public enum Entry: Equatable {
        case directory(path: String, mode: UInt32)
        case file(path: String, mode: UInt32, contents: Data)
        case symlink(path: String, target: String)
        case characterDevice(path: String, mode: UInt32, major: UInt32, minor: UInt32)

        var path: String {
            switch self {
            case .directory(let p, _), .file(let p, _, _), .symlink(let p, _), .characterDevice(let p, _, _, _): return p
            }
        }
    }

    private(set) public var data = Data()
    private var nextInode: UInt32 = 1
    private var finished = false

    public init() {}

    public mutating func append(_ entry: Entry) {
        precondition(!finished, "append after finish")
        let name = entry.path.hasPrefix("/") ? String(entry.path.dropFirst()) : entry.path
        precondition(!name.isEmpty && !name.contains("\0"), "invalid cpio path")
        switch entry {
        case .directory(_, let mode):
            writeHeader(name: name, mode: 0o040000 | (mode & 0o7777), nlink: 2, size: 0)
        case .file(_, let mode, let contents):
            writeHeader(name: name, mode: 0o100000 | (mode & 0o7777), nlink: 1, size: UInt32(contents.count))
            data.append(contents)
            pad()
        case .symlink(_, let target):
            let bytes = Data(target.utf8)
            writeHeader(name: name, mode: 0o120777, nlink: 1, size: UInt32(bytes.count))
            data.append(bytes)
            pad()
        case .characterDevice(_, let mode, let major, let minor):
            writeHeader(name: name, mode: 0o020000 | (mode & 0o7777), nlink: 1, size: 0,
                        rdevMajor: major, rdevMinor: minor)
        }
    }

    /// Appends the trailer; the archive is complete afterwards.
    public mutating func finish() -> Data {
        if !finished {
            nextInode = 0
            writeHeader(name: "TRAILER!!!", mode: 0, nlink: 1, size: 0)
            finished = true
        }
        return data
    }

    private mutating func writeHeader(name: String, mode: UInt32, nlink: UInt32, size: UInt32,
                                      rdevMajor: UInt32 = 0, rdevMinor: UInt32 = 0) {
        let nameBytes = Array(name.utf8) + [0]
        let fields: [UInt32] = [
            nextInode, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor,
            UInt32(nameBytes.count), 0,
        ]
        if nextInode != 0 { nextInode += 1 }
        var header = "070701"
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            header += String(repeating: "0", count: 8 - hex.count) + hex
        }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: nameBytes)
        pad()
    }

    private mutating func pad() {
        let rem = data.count % 4
        if rem != 0 { data.append(contentsOf: [UInt8](repeating: 0, count: 4 - rem)) }
    }
}
