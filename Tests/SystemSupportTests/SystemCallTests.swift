import Glibc
import Synchronization
import SystemSupport
import XCTest

/// The checked system call: interrupted calls are retried, failures name the call and
/// carry its error number, would-block is an answer on a non-blocking descriptor, and a
/// call that returns its error number is reported with that number.
final class SystemCallTests: XCTestCase {
    func testInterruptedCallIsRetriedUntilItAnswers() throws {
        var attempts = 0
        let result = try systemCall("read") { () -> Int in
            attempts += 1
            guard attempts == 3 else {
                errno = EINTR
                return -1
            }
            return 42
        }
        XCTAssertEqual(result, 42)
        XCTAssertEqual(attempts, 3)
    }

    func testFailureNamesTheCallAndItsErrno() {
        XCTAssertThrowsError(try systemCall("dup") { dup(-1) }) { error in
            XCTAssertEqual(error as? SystemCallError, SystemCallError("dup", errno: EBADF))
            XCTAssertEqual("\(error)", "dup: Bad file descriptor (errno 9)")
        }
    }

    func testWouldBlockIsNilOnANonBlockingDescriptor() throws {
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]); close(ends[1]) }
        XCTAssertEqual(fcntl(ends[0], F_SETFL, O_NONBLOCK), 0)
        var byte: UInt8 = 0
        XCTAssertNil(try nonBlockingSystemCall("read") { read(ends[0], &byte, 1) }, "nothing written yet")
        XCTAssertEqual(write(ends[1], "x", 1), 1)
        XCTAssertEqual(try nonBlockingSystemCall("read") { read(ends[0], &byte, 1) }, 1)
        XCTAssertThrowsError(try nonBlockingSystemCall("read") { read(-1, &byte, 1) }) { error in
            XCTAssertEqual(error as? SystemCallError, SystemCallError("read", errno: EBADF))
        }
    }

    /// pthread calls return the error number and leave `errno` alone: the number
    /// returned is the one reported, not whatever `errno` held before.
    func testReturnedErrorNumberIsReportedNotAStaleErrno() {
        errno = ENOENT
        XCTAssertThrowsError(try systemCallReturningErrorNumber("pthread_join") { pthread_join(pthread_self(), nil) }) { error in
            XCTAssertEqual(error as? SystemCallError, SystemCallError("pthread_join", errno: EDEADLK))
        }
        XCTAssertNoThrow(try systemCallReturningErrorNumber("pthread_create") { 0 })
    }

    func testFileDescriptorIsClosedWhenItsOwnerLetsGo() throws {
        let raw = try systemCall("open") { open("/dev/null", O_RDONLY | O_CLOEXEC) }
        do {
            let owned = FileDescriptor(raw)
            XCTAssertEqual(fcntl(owned.rawValue, F_GETFD), FD_CLOEXEC)
        }
        XCTAssertEqual(fcntl(raw, F_GETFD), -1)
        XCTAssertEqual(errno, EBADF)
    }

    func testWorkerThreadRunsItsClosureAndJoins() throws {
        final class Runner: Sendable {
            let thread = Mutex<pthread_t?>(nil)
        }
        let runner = Runner()
        let thread = try WorkerThread.start { runner.thread.withLock { $0 = pthread_self() } }
        thread.join()
        let ranOn = try XCTUnwrap(runner.thread.withLock { $0 })
        XCTAssertEqual(pthread_equal(ranOn, pthread_self()), 0, "ran on a thread of its own")
    }
}
