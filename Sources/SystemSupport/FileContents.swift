import Glibc

/// A file that could not be read, with the system's reason.
public struct FileReadError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var errno: Int32

    public init(path: String, errno: Int32) {
        self.path = path
        self.errno = errno
    }

    public var description: String { "cannot read \(path): \(String(cString: strerror(errno)))" }
}

/// Whole files, read with plain read(2): manifests, the configuration file, standard
/// input, procfs and cgroupfs files.
public enum FileContents {
    /// The file's bytes (`-` reads standard input), at most `limit` of them.
    public static func read(path: String, limit: Int = .max) throws(FileReadError) -> [UInt8] {
        do throws(SystemCallError) {
            if path == "-" { return try readAll(0, limit: limit) }
            let file = FileDescriptor(try systemCall("open") { open(path, O_RDONLY | O_CLOEXEC) })
            return try readAll(file.rawValue, limit: limit)
        } catch {
            throw FileReadError(path: path, errno: error.errno)
        }
    }

    private static func readAll(_ fd: Int32, limit: Int) throws(SystemCallError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while bytes.count < limit {
            let n = try systemCall("read") {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - bytes.count)) }
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Whether `path` names something this process can see.
    public static func exists(path: String) -> Bool {
        (try? systemCall("access") { access(path, F_OK) }) != nil
    }
}
