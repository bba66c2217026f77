@testable import HTTPServer
import XCTest

/// The connection's decisions without a socket: each test feeds I/O outcomes and
/// requests, and checks the action that comes back.
final class ConnectionMachineTests: XCTestCase {
    private let timeouts = HTTPTimeouts(handshake: 10, requestHeaders: 20, requestBody: 30, idle: 40)

    private func machine(requestTimeout: (@Sendable (HTTPRequest) -> Int?)? = nil) -> ConnectionMachine {
        ConnectionMachine(limits: HTTPLimits(), timeouts: timeouts, requestTimeout: requestTimeout, now: 0)
    }

    /// A machine past its handshake, having read `bytes` in one short read.
    private func open(_ bytes: String, more: Bool = false, requestTimeout: (@Sendable (HTTPRequest) -> Int?)? = nil) -> ConnectionMachine {
        var m = machine(requestTimeout: requestTimeout)
        XCTAssertEqual(m.resume(), .handshake)
        XCTAssertEqual(m.handshake(.done, now: 100), .answer)
        XCTAssertEqual(m.nextRequest(backlog: 0), .needInput)
        XCTAssertEqual(m.answered(hasPendingOutput: false, now: 100), .read)
        m.parser.append(Array(bytes.utf8))
        XCTAssertEqual(m.read(.done, more: more, now: 100), .answer)
        return m
    }

    private func request(_ step: ConnectionMachine.Step) -> HTTPRequest? {
        if case .request(let r) = step { return r }
        return nil
    }

    func testHandshakeWaitsForTheSocketAndFailuresAreCounted() {
        var m = machine()
        XCTAssertEqual(m.deadline, 10)
        XCTAssertEqual(m.deadlineKind, .handshake)
        XCTAssertEqual(m.handshake(.wantRead, now: 1), .waitReadable)
        XCTAssertEqual(m.handshake(.wantWrite, now: 1), .waitWritable)
        XCTAssertEqual(m.resume(), .handshake)
        XCTAssertEqual(m.handshake(.failed, now: 1), .close(handshakeFailed: true))
        var done = machine()
        XCTAssertEqual(done.handshake(.done, now: 5), .answer)
        XCTAssertEqual(done.deadlineKind, .headers)
        XCTAssertEqual(done.deadline, 25)
    }

    func testKeptAliveRequestIsAnsweredFlushedAndTheConnectionWaits() {
        var m = open("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(request(m.nextRequest(backlog: 0))?.path, "/healthz")
        m.responded(keepAlive: true, now: 200)
        XCTAssertEqual(m.deadlineKind, .idle)
        XCTAssertEqual(m.deadline, 240)
        XCTAssertEqual(m.nextRequest(backlog: 100), .needInput)
        XCTAssertEqual(m.answered(hasPendingOutput: true, now: 200), .flush)
        XCTAssertEqual(m.flushed(.wantWrite), .waitWritable)
        XCTAssertEqual(m.flushed(.done), .waitReadable, "the read was short: epoll reports the next bytes")
        XCTAssertTrue(m.isIdle(hasPendingOutput: false))
        XCTAssertEqual(m.resume(), .answer)
    }

    func testConnectionCloseFinishesWithALingerAfterTheFlush() {
        var m = open("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /more HTTP/1.1\r\n")
        let first = request(m.nextRequest(backlog: 0))
        XCTAssertEqual(first?.keepAlive, false)
        m.responded(keepAlive: false, now: 200)
        XCTAssertEqual(m.nextRequest(backlog: 50), .stop, "nothing after the closing request is answered")
        XCTAssertEqual(m.answered(hasPendingOutput: true, now: 200), .flush)
        XCTAssertEqual(m.flushed(.done), .finish(linger: true))
        m.startLingering(now: 300)
        XCTAssertEqual(m.phase, .lingering)
        XCTAssertEqual(m.deadline, 300 + ConnectionMachine.lingerMilliseconds)
        XCTAssertEqual(m.resume(), .discard)
    }

    func testRefusedBytesAreAnsweredThenTheConnectionLingers() {
        var m = open("NONSENSE\r\n\r\n")
        guard case .refuse(let error) = m.nextRequest(backlog: 0) else { return XCTFail("not refused") }
        XCTAssertEqual(error.status, .badRequest)
        XCTAssertEqual(m.nextRequest(backlog: 100), .stop)
        XCTAssertEqual(m.answered(hasPendingOutput: true, now: 1), .flush)
        XCTAssertEqual(m.flushed(.done), .finish(linger: true))
    }

    /// Finding 10 of the hardening review: after the client shut its sending side, every
    /// complete request is answered, however long the answers take to flush, then the
    /// connection closes without lingering.
    func testHalfClosedClientGetsEveryAnswerThenACloseWithoutLinger() {
        let one = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        var m = open(String(repeating: one, count: 3))
        XCTAssertEqual(m.read(.closed, now: 1), .answer)
        for _ in 0..<2 {
            XCTAssertNotNil(request(m.nextRequest(backlog: 0)))
            m.responded(keepAlive: true, now: 1)
        }
        XCTAssertEqual(m.nextRequest(backlog: ConnectionMachine.outputHighWater), .stop, "output backed up")
        XCTAssertEqual(m.answered(hasPendingOutput: true, now: 1), .flush)
        XCTAssertEqual(m.flushed(.wantWrite), .waitWritable, "a full socket buffer waits, it does not cut the answer")
        XCTAssertEqual(m.resume(), .answer)
        XCTAssertEqual(m.answered(hasPendingOutput: true, now: 1), .flush)
        XCTAssertEqual(m.flushed(.done), .answer, "the third request is still to answer")
        XCTAssertNotNil(request(m.nextRequest(backlog: 0)))
        m.responded(keepAlive: true, now: 1)
        XCTAssertEqual(m.nextRequest(backlog: 10), .needInput)
        XCTAssertEqual(m.answered(hasPendingOutput: true, now: 1), .flush)
        XCTAssertEqual(m.flushed(.done), .finish(linger: false))
    }

    func testRequestsLeftBehindByABackloggedOutputAreAnsweredAfterTheFlush() {
        let one = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        var m = open(String(repeating: one, count: 2))
        XCTAssertNotNil(request(m.nextRequest(backlog: 0)))
        m.responded(keepAlive: true, now: 1)
        XCTAssertEqual(m.nextRequest(backlog: ConnectionMachine.outputHighWater), .stop)
        XCTAssertEqual(m.answered(hasPendingOutput: true, now: 1), .flush)
        XCTAssertEqual(m.flushed(.done), .answer, "not a wait for bytes the client will not send")
        XCTAssertNotNil(request(m.nextRequest(backlog: 0)))
    }

    func testDeadlinesFollowTheRequest() {
        // Headers complete, body pending: the body clock, shortened by the request's own timeout.
        let head = "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"
        var m = open(head, requestTimeout: { _ in 7 })
        XCTAssertEqual(m.nextRequest(backlog: 0), .needInput)
        XCTAssertEqual(m.answered(hasPendingOutput: false, now: 500), .waitReadable)
        XCTAssertEqual(m.deadlineKind, .body)
        XCTAssertEqual(m.deadline, 507)
        // Between requests: idle; the next request's first byte starts the header clock.
        var kept = open("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = kept.nextRequest(backlog: 0)
        kept.responded(keepAlive: true, now: 1000)
        _ = kept.nextRequest(backlog: 0)
        XCTAssertEqual(kept.answered(hasPendingOutput: false, now: 1000), .waitReadable)
        XCTAssertEqual(kept.deadlineKind, .idle)
        kept.parser.append(Array("GET".utf8))
        XCTAssertEqual(kept.read(.done, now: 2000), .answer)
        XCTAssertEqual(kept.deadlineKind, .headers)
        XCTAssertEqual(kept.deadline, 2020)
        XCTAssertFalse(kept.isIdle(hasPendingOutput: false), "mid-request")
    }

    func testReadFailuresAndFlushFailuresClose() {
        var m = open("")
        XCTAssertEqual(m.read(.failed, now: 1), .close(handshakeFailed: false))
        XCTAssertEqual(m.flushed(.closed), .close(handshakeFailed: false))
        XCTAssertEqual(m.read(.wantWrite, now: 1), .waitWritable)
    }
}
