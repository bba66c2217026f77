import CLinux
import Glibc
import SystemSupport

/// Proves that no other socket listens on `address` (or on one that overlaps it, such
/// as `0.0.0.0` for `127.0.0.1`), before the loops bind their listeners; returns the
/// port, chosen by the kernel when `address.port` is 0.
///
/// The loops' listeners share the port through SO_REUSEPORT, and Linux lets any socket of
/// the same user join such a group: a second server would bind without error and take
/// part of the connections. So the address is first bound by a socket without
/// SO_REUSEPORT, which the kernel refuses (EADDRINUSE) while any socket listens there,
/// with SO_REUSEPORT or not; it is closed at once, since it would also keep this
/// server's own loops out. SO_REUSEADDR is set on it like on the listeners, so the
/// TIME_WAIT connections an earlier run left behind do not count as a listener.
///
/// What remains open is the moment between closing this socket and binding the first
/// listener: two servers started within those microseconds on the same address can both
/// pass. Holding the address across that moment would take a listener without
/// SO_REUSEPORT, which is what the loops cannot share.
func claimPort(_ address: ListenAddress) throws(HTTPServerError) -> UInt16 {
    let socket = try boundSocket(address, sharedWithOtherSockets: false)
    do throws(SystemCallError) {
        return try boundPort(socket)
    } catch {
        throw .listenerFailed(address: address.description, error)
    }
}

/// A listening, non-blocking TCP socket with SO_REUSEPORT, so every event loop can
/// bind its own listener to the same port and the kernel spreads connections.
func makeListener(_ address: ListenAddress) throws(HTTPServerError) -> FileDescriptor {
    let socket = try boundSocket(address, sharedWithOtherSockets: true)
    do throws(SystemCallError) {
        try systemCall("listen") { listen(socket.rawValue, 4096) }
    } catch {
        throw error.errno == EADDRINUSE ? .addressInUse(address.description) : .listenerFailed(address: address.description, error)
    }
    return socket
}

/// A non-blocking TCP socket bound to `address`, with SO_REUSEADDR, and with
/// SO_REUSEPORT when `sharedWithOtherSockets`.
private func boundSocket(_ address: ListenAddress, sharedWithOtherSockets: Bool) throws(HTTPServerError) -> FileDescriptor {
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
        try setSocketOption(socket.rawValue, SOL_SOCKET, SO_REUSEADDR, 1)
        // A listener refused SO_REUSEPORT would keep the other loops from binding: a
        // refused option is a start-up error.
        if sharedWithOtherSockets { try setSocketOption(socket.rawValue, SOL_SOCKET, SO_REUSEPORT, 1) }
        _ = try withUnsafePointer(to: &storage) { (pointer) throws(SystemCallError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(SystemCallError) in
                try systemCall("bind") { bind(socket.rawValue, address, length) }
            }
        }
        return socket
    } catch {
        throw error.errno == EADDRINUSE ? .addressInUse(address.description) : .listenerFailed(address: address.description, error)
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
