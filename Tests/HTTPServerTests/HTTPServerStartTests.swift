import Foundation
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
                                transport: .tls(TLSContextStore()), router: router)
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
                                transport: .tls(TLSContextStore()), router: router,
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

    /// One server per address: its own loops share the port, and nothing else may listen
    /// there, neither another server (whose SO_REUSEPORT group a bind would join), nor a
    /// listener without SO_REUSEPORT, nor one on the wildcard address that covers it. The
    /// refusal names the address and leaves no descriptor open.
    func testAnAddressAnotherSocketListensOnIsRefused() throws {
        let first = HTTPServer(configuration: HTTPServerConfiguration(address: address, loopCount: 2),
                               transport: .tls(TLSContextStore()), router: router)
        let port = try first.start()
        defer { first.stop() }
        let before = openDescriptors()
        assertRefused(port: port, "a second server")
        XCTAssertEqual(openDescriptors(), before, "nothing the refused start opened stays open")
        for (host, reusePort) in [("127.0.0.1", true), ("127.0.0.1", false), ("0.0.0.0", false)] {
            let holder = try listeningSocket(host: host, reusePort: reusePort)
            assertRefused(port: try XCTUnwrap(localPort(holder)), "a listener on \(host), SO_REUSEPORT \(reusePort)")
            close(holder)
        }
    }

    /// A restart binds again at once: the connections the last run closed first wait in
    /// TIME_WAIT on its port, and they are not a listener.
    func testTheConnectionsAStoppedServerLeftDoNotRefuseTheNext() throws {
        let first = HTTPServer(configuration: HTTPServerConfiguration(address: address, loopCount: 1),
                               transport: .tls(TLSContextStore()), router: router)
        let port = try first.start()
        // With no certificate loaded every connection is closed by the server at accept.
        for _ in 0..<3 {
            let client = try connectedSocket(port: port)
            var byte: UInt8 = 0
            XCTAssertEqual(read(client, &byte, 1), 0)
            close(client)
        }
        first.stop()
        let again = HTTPServer(configuration: HTTPServerConfiguration(address: ListenAddress(host: "127.0.0.1", port: port), loopCount: 2),
                               transport: .tls(TLSContextStore()), router: router)
        XCTAssertEqual(try again.start(), port)
        again.stop()
    }

    /// Plain HTTP: the same parser, pipelining and keep-alive, straight on the socket;
    /// the loop's thread carries the configured name.
    func testPlainTransportServesHTTPOverTCP() throws {
        var plainRouter = router
        plainRouter.add("GET", "/ping") { _ in HTTPResponse(status: .ok, contentType: "text/plain", body: Array("pong".utf8)) }
        let server = HTTPServer(configuration: HTTPServerConfiguration(address: address, loopCount: 1, loopName: "plain-loop"),
                                transport: .plain, router: plainRouter)
        let port = try server.start()
        defer { server.stop() }
        let client = try connectedSocket(port: port)
        defer { close(client) }
        let requests = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        XCTAssertEqual(write(client, requests, requests.utf8.count), requests.utf8.count)
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(client, &buffer, buffer.count)
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        let text = String(decoding: answer, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\npong"), text)
        XCTAssertTrue(text.contains("HTTP/1.1 404 Not Found"), text)
        XCTAssertTrue(text.hasSuffix("Connection: close\r\n\r\n"), "both answered, then the connection closed: \(text)")
        XCTAssertTrue(threadNames().contains("plain-loop-0"), "\(threadNames())")
    }

    private func assertRefused(port: UInt16, _ holder: String, line: UInt = #line) {
        let server = HTTPServer(configuration: HTTPServerConfiguration(address: ListenAddress(host: "127.0.0.1", port: port), loopCount: 2),
                                transport: .tls(TLSContextStore()), router: router)
        XCTAssertThrowsError(try server.start(), holder, line: line) { error in
            XCTAssertEqual(error as? HTTPServerError, .addressInUse("127.0.0.1:\(port)"), holder, line: line)
            XCTAssertTrue("\(error)".hasPrefix("cannot listen on 127.0.0.1:\(port): address already in use"), "\(error)", line: line)
        }
        XCTAssertNil(server.port, holder, line: line)
    }
}

/// A listening TCP socket on an ephemeral port of `host`, as another program would hold it.
private func listeningSocket(host: String, reusePort: Bool) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var on: Int32 = 1
    if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, socklen_t(MemoryLayout<Int32>.size)) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr(host)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 16) == 0 else {
        close(fd)
        throw SystemCallError("bind", errno: errno)
    }
    return fd
}

private func localPort(_ fd: Int32) -> UInt16? {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return named == 0 ? UInt16(bigEndian: address.sin_port) : nil
}

/// A blocking TCP connection to the loopback port, with a 5 s receive timeout.
private func connectedSocket(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw SystemCallError("connect", errno: errno)
    }
    return fd
}

/// The names of this process's threads.
private func threadNames() -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
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
