import CLinux
import Glibc
import SystemSupport

/// A listening, non-blocking TCP socket with SO_REUSEPORT, so every event loop can
/// bind its own listener to the same port and the kernel spreads connections.
func makeListener(_ address: ListenAddress) throws(HTTPServerError) -> FileDescriptor {
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
    do throws(SystemCallError) {
        let socket = FileDescriptor(try systemCall("socket") {
            Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | clinux_sock_nonblock_cloexec(), 0)
        })
        // Every loop binds its own listener to the port: without SO_REUSEPORT the second
        // bind would fail, so a refused option is a start-up error.
        try setSocketOption(socket.rawValue, SOL_SOCKET, SO_REUSEADDR, 1)
        try setSocketOption(socket.rawValue, SOL_SOCKET, SO_REUSEPORT, 1)
        _ = try withUnsafePointer(to: &storage) { (pointer) throws(SystemCallError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemCallError) in
                try systemCall("bind") { bind(socket.rawValue, address, length) }
            }
        }
        try systemCall("listen") { listen(socket.rawValue, 4096) }
        return socket
    } catch {
        throw .listenerFailed(address: address.description, error)
    }
}

/// The port `socket` is bound to.
func boundPort(_ socket: borrowing FileDescriptor) throws(SystemCallError) -> UInt16 {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws(SystemCallError) in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemCallError) in
            try systemCall("getsockname") { getsockname(socket.rawValue, address, &length) }
        }
    }
    return withUnsafeBytes(of: storage) { raw in
        // sin_port and sin6_port share the same offset.
        UInt16(bigEndian: raw.load(fromByteOffset: 2, as: UInt16.self))
    }
}
