import CLinux
import Glibc

/// A listening, non-blocking TCP socket with SO_REUSEPORT, so every event loop can
/// bind its own listener to the same port and the kernel spreads connections.
func makeListener(_ address: ListenAddress) throws(HTTPServerError) -> Int32 {
    var storage = sockaddr_storage()
    let length: socklen_t
    let family: Int32
    if address.host.contains(":") {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = address.port.bigEndian
        guard inet_pton(AF_INET6, address.host, &sin6.sin6_addr) == 1 else { throw .invalidAddress(address.description) }
        withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) } }
        length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        family = AF_INET6
    } else {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = address.port.bigEndian
        let host = address.host == "localhost" ? "127.0.0.1" : address.host
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else { throw .invalidAddress(address.description) }
        withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) } }
        length = socklen_t(MemoryLayout<sockaddr_in>.size)
        family = AF_INET
    }
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | clinux_sock_nonblock_cloexec(), 0)
    guard fd >= 0 else { throw .socketFailed(operation: "socket", address: address.description, errno: errno) }
    // Every loop binds its own listener to the port: without SO_REUSEPORT the second
    // bind would fail, so a refused option is a start-up error.
    for (name, option) in [("SO_REUSEADDR", SO_REUSEADDR), ("SO_REUSEPORT", SO_REUSEPORT)] {
        if let code = setSocketOption(fd, SOL_SOCKET, option, 1) {
            close(fd)
            throw .socketFailed(operation: "setsockopt " + name, address: address.description, errno: code)
        }
    }
    let bound = withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else {
        let err = errno
        close(fd)
        throw .socketFailed(operation: "bind", address: address.description, errno: err)
    }
    guard listen(fd, 4096) == 0 else {
        let err = errno
        close(fd)
        throw .socketFailed(operation: "listen", address: address.description, errno: err)
    }
    return fd
}

/// The port a socket is bound to.
func boundPort(_ fd: Int32) -> UInt16 {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return withUnsafeBytes(of: storage) { raw in
        // sin_port and sin6_port share the same offset.
        UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))
    }
}
