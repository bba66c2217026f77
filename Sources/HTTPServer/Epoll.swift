import CLinux
import Glibc

/// One epoll instance with checked calls: `EINTR` is retried, and every other failure is
/// returned to the caller, which closes what it could not register (a connection left
/// with the wrong interest would wait silently until its deadline).
///
/// `~Copyable`: it owns its descriptor and closes it once.
struct Epoll: ~Copyable {
    let fd: Int32

    init() throws(HTTPServerError) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .eventLoopFailed(operation: "epoll_create1", errno: errno) }
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    /// Watches `descriptor` for `events`; the errno on failure.
    func add(_ descriptor: Int32, events: UInt32) -> Int32? {
        control(EPOLL_CTL_ADD, descriptor, events)
    }

    /// Changes what `descriptor` is watched for; the errno on failure.
    func modify(_ descriptor: Int32, events: UInt32) -> Int32? {
        control(EPOLL_CTL_MOD, descriptor, events)
    }

    /// Stops watching `descriptor`. A descriptor that is not watched (ENOENT) or already
    /// closed (EBADF) is no longer watched either: nothing to report.
    func remove(_ descriptor: Int32) {
        _ = control(EPOLL_CTL_DEL, descriptor, 0)
    }

    private func control(_ operation: Int32, _ descriptor: Int32, _ events: UInt32) -> Int32? {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(UInt32(bitPattern: descriptor))
        while epoll_ctl(fd, operation, descriptor, &event) != 0 {
            if errno == EINTR { continue }
            return errno
        }
        return nil
    }

    /// Waits up to `timeoutMilliseconds` for events; the count (0 when interrupted by a
    /// signal or timed out), or nil when epoll itself failed.
    func wait(into events: inout [epoll_event], timeoutMilliseconds: Int32) -> Int? {
        let ready = events.withUnsafeMutableBufferPointer { buffer in
            epoll_wait(fd, buffer.baseAddress, Int32(buffer.count), timeoutMilliseconds)
        }
        if ready >= 0 { return Int(ready) }
        return errno == EINTR ? 0 : nil
    }
}

/// Sets an integer socket option; the errno on failure.
func setSocketOption(_ descriptor: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Int32? {
    var value = value
    return setsockopt(descriptor, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 ? nil : errno
}
