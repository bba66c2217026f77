import CLinux
import Glibc
import SystemSupport

/// One epoll instance with checked calls: every failure is thrown to the caller, which
/// closes what it could not register (a connection left with the wrong interest would
/// wait silently until its deadline).
///
/// `~Copyable`: it owns its descriptor, closed once with it.
struct Epoll: ~Copyable {
    private let descriptor: FileDescriptor

    init() throws(SystemCallError) {
        descriptor = FileDescriptor(try systemCall("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) })
    }

    /// Watches `fd` for `events`.
    func add(_ fd: Int32, events: UInt32) throws(SystemCallError) {
        try control(EPOLL_CTL_ADD, fd, events)
    }

    /// Changes what `fd` is watched for.
    func modify(_ fd: Int32, events: UInt32) throws(SystemCallError) {
        try control(EPOLL_CTL_MOD, fd, events)
    }

    /// Stops watching `fd`. A descriptor that is not watched (ENOENT) or already closed
    /// (EBADF) is no longer watched either: nothing to report.
    func remove(_ fd: Int32) {
        _ = try? control(EPOLL_CTL_DEL, fd, 0)
    }

    private func control(_ operation: Int32, _ fd: Int32, _ events: UInt32) throws(SystemCallError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(UInt32(bitPattern: fd))
        try systemCall("epoll_ctl") { epoll_ctl(descriptor.rawValue, operation, fd, &event) }
    }

    /// Waits up to `timeoutMilliseconds` for events; how many are ready (0: timed out).
    func wait(into events: inout [epoll_event], timeoutMilliseconds: Int32) throws(SystemCallError) -> Int {
        let ready = try systemCall("epoll_wait") {
            events.withUnsafeMutableBufferPointer { buffer in
                epoll_wait(descriptor.rawValue, buffer.baseAddress, Int32(buffer.count), timeoutMilliseconds)
            }
        }
        return Int(ready)
    }
}

/// Sets an integer socket option.
func setSocketOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SystemCallError) {
    var value = value
    try systemCall("setsockopt") { setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
}
