import Glibc
@testable import HTTPServer
import Synchronization
import SystemSupport
import TLS
import XCTest

/// Starting and stopping the loops: every descriptor a start opens is closed once, also
/// when a loop's thread cannot start part way, and that failure is reported with the
/// error the thread start gave.
final class HTTPServerStartTests: XCTestCase {
    private let address = ListenAddress(host: "127.0.0.1", port: 0)
    private let router = HTTPRouter { status, _ in HTTPResponse(status: status, body: []) }

    func testStopClosesEveryDescriptorTheStartOpened() throws {
        let before = openDescriptors()
        let server = HTTPServer(configuration: HTTPServerConfiguration(address: address, loopCount: 2),
                                tls: TLSContextStore(), router: router)
        XCTAssertNotEqual(try server.start(), 0)
        XCTAssertGreaterThan(openDescriptors().count, before.count)
        server.stop()
        XCTAssertEqual(openDescriptors(), before)
    }

    /// Two of three loop threads start, the third is refused: the two running loops stop
    /// and close their listeners, and nothing closes those descriptors again. Each one
    /// is taken by a sentinel as soon as its loop has closed it, so a second close would
    /// close the sentinel.
    func testThreadThatCannotStartIsReportedAndEachListenerIsClosedOnce() throws {
        let before = openDescriptors()
        let probe = ListenerProbe(descriptorsBefore: before, threadsAllowed: 2)
        let server = HTTPServer(configuration: HTTPServerConfiguration(address: address, loopCount: 3),
                                tls: TLSContextStore(), router: router,
                                startThread: { run throws(SystemCallError) in
                                    guard probe.mayStartThread() else { throw SystemCallError("pthread_create", errno: EAGAIN) }
                                    return try WorkerThread.start {
                                        run()
                                        probe.occupyClosedListeners()
                                    }
                                })
        XCTAssertThrowsError(try server.start()) { error in
            XCTAssertEqual(error as? HTTPServerError, .eventLoopFailed(SystemCallError("pthread_create", errno: EAGAIN)))
        }
        XCTAssertNil(server.port)
        let sentinels = probe.sentinels
        XCTAssertEqual(sentinels.count, 2, "each running loop closed its listener as it stopped")
        for fd in sentinels {
            XCTAssertNotEqual(fcntl(fd, F_GETFD), -1, "listener \(fd) closed a second time")
            close(fd)
        }
        XCTAssertEqual(openDescriptors(), before, "listeners, epoll instances and eventfds all closed")
    }
}

/// The open descriptors of this process.
private func openDescriptors() -> Set<Int32> {
    Set((0..<Int32(4096)).filter { fcntl($0, F_GETFD) != -1 })
}

/// Lets a number of loop threads start, and puts a sentinel (/dev/null) on each
/// listener once its loop has closed it.
private final class ListenerProbe: Sendable {
    private struct State {
        var threadsStarted = 0
        var listeners: Set<Int32> = []
        var sentinels: [Int32] = []
    }

    private let descriptorsBefore: Set<Int32>
    private let threadsAllowed: Int
    private let state = Mutex(State())

    init(descriptorsBefore: Set<Int32>, threadsAllowed: Int) {
        self.descriptorsBefore = descriptorsBefore
        self.threadsAllowed = threadsAllowed
    }

    /// Whether the next thread may start. Before the first, notes the listeners: every
    /// socket the start has opened.
    func mayStartThread() -> Bool {
        state.withLock { state in
            if state.threadsStarted == 0 {
                state.listeners = Set(openDescriptors().subtracting(descriptorsBefore).filter(isSocket))
            }
            state.threadsStarted += 1
            return state.threadsStarted <= threadsAllowed
        }
    }

    func occupyClosedListeners() {
        state.withLock { state in
            for fd in state.listeners where fcntl(fd, F_GETFD) == -1 && !state.sentinels.contains(fd) {
                let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
                if devNull != fd {
                    dup2(devNull, fd)
                    close(devNull)
                }
                state.sentinels.append(fd)
            }
        }
    }

    var sentinels: [Int32] { state.withLock { $0.sentinels } }

    private func isSocket(_ fd: Int32) -> Bool {
        var status = stat()
        return fstat(fd, &status) == 0 && status.st_mode & S_IFMT == S_IFSOCK
    }
}
