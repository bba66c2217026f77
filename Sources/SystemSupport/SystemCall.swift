import Glibc

/// A system call that failed: which call, and the error number it gave.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call's name, as in its manual page (`epoll_ctl`, `pthread_create`).
    public var call: String
    public var errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// `epoll_ctl: Bad file descriptor (errno 9)`.
    public var description: String { "\(call): \(String(cString: strerror(self.errno))) (errno \(self.errno))" }
}

/// Runs `body`, a system call that returns -1 and sets `errno` when it fails, again as
/// long as a signal interrupts it (EINTR). Returns its result; any other failure is
/// thrown with `name`.
@inlinable
@discardableResult
public func systemCall<Result: FixedWidthInteger & SignedInteger>(
    _ name: String, _ body: () -> Result
) throws(SystemCallError) -> Result {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errno
        if code != EINTR { throw SystemCallError(name, errno: code) }
    }
}

/// `systemCall` on a non-blocking descriptor, where a call that would block is normal:
/// nil then (EAGAIN, EWOULDBLOCK), the result otherwise.
@inlinable
public func nonBlockingSystemCall<Result: FixedWidthInteger & SignedInteger>(
    _ name: String, _ body: () -> Result
) throws(SystemCallError) -> Result? {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { return nil }
        if code != EINTR { throw SystemCallError(name, errno: code) }
    }
}

/// Runs `body`, a call that returns its error number instead of setting `errno`
/// (`pthread_create` and the other `pthread_*` calls): 0 is success.
@inlinable
public func systemCallReturningErrorNumber(_ name: String, _ body: () -> Int32) throws(SystemCallError) {
    while true {
        let code = body()
        if code == 0 { return }
        if code != EINTR { throw SystemCallError(name, errno: code) }
    }
}

/// Closes `descriptor`, once: not retried on EINTR, because Linux has released the
/// descriptor whatever `close` returns, and a retry could close one that another thread
/// has just been given. No failure is reported: the descriptor is gone either way.
/// Closing one that is not open (EBADF) means two owners closed it, or a stale number
/// was kept: a bug, stopped by an assertion in debug builds.
public func closeDescriptor(_ descriptor: Int32) {
    guard close(descriptor) != 0 else { return }
    let code = errno
    assert(code != EBADF, "\(SystemCallError("close", errno: code)): descriptor \(descriptor) closed twice or never open")
}

/// An open descriptor with exactly one owner, which closes it once, when it lets go of it.
public struct FileDescriptor: ~Copyable, Sendable {
    public let rawValue: Int32

    /// Takes ownership of `rawValue`, an open descriptor.
    public init(_ rawValue: Int32) {
        self.rawValue = rawValue
    }

    deinit {
        closeDescriptor(rawValue)
    }
}
