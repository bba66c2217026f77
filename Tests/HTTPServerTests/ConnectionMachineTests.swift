@testable import HTTPServer
import XCTest

/// The connection's decisions without a socket: each test feeds I/O outcomes and
/// requests, and checks the action that comes back.
final class ConnectionMachineTests: XCTestCase {
    private let timeouts = ConnectionMachine.Timeouts(HTTPTimeouts(handshake: .milliseconds(10), requestHeaders: .milliseconds(20),
                                                                   requestBody: .milliseconds(30), idle: .milliseconds(40)))

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
        XCTAssertEqual(m.state, .lingering(deadline: 300 + ConnectionMachine.lingerMilliseconds))
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

    /// After the client shut its sending side, every complete request is answered,
    /// however long the answers take to flush, then the connection closes without
    /// lingering.
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

    // MARK: - Transitions

    private typealias Machine = ConnectionMachine
    private typealias State = ConnectionMachine.State

    /// What the parser holds before the event: bytes appended, and parsed as far as they go.
    private enum Bytes {
        case none
        case appended(String)
        case parsed(String)
    }

    private enum Event {
        case resume
        case handshake(Machine.Outcome)
        case read(Machine.Outcome, more: Bool)
        case flushed(Machine.Outcome)
        case answered(hasPendingOutput: Bool)
        case nextRequest(backlog: Int)
        case responded(keepAlive: Bool)
        case startLingering
    }

    /// What the event returned (`.none`: nothing).
    private enum Answer: Equatable {
        case action(Machine.Action)
        case needInput, stop, sendContinue, request, refuse
        case none
    }

    private struct Transition {
        var from: State
        var bytes: Bytes
        var event: Event
        var answer: Answer
        var to: State
        /// The row's line, where a failure is reported.
        var line: UInt

        init(from: State, bytes: Bytes = .none, event: Event, answer: Answer, to: State, line: UInt = #line) {
            self.from = from
            self.bytes = bytes
            self.event = event
            self.answer = answer
            self.to = to
            self.line = line
        }
    }

    private static let now = 1_000

    private static func serving(_ input: Machine.Input, _ measure: Machine.RequestClock.Measure = .headers, at deadline: Int = 120,
                                served: Bool = false) -> State {
        .serving(Machine.Serving(clock: Machine.RequestClock(measure: measure, deadline: deadline), hasServed: served, input: input))
    }

    private static func closing(_ measure: Machine.RequestClock.Measure = .headers, at deadline: Int = 120, linger: Bool) -> State {
        .closing(clock: Machine.RequestClock(measure: measure, deadline: deadline), linger: linger)
    }

    private static let get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    private static let postHead = "POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"

    /// Every transition of the machine: from a state, one event, what it answers and the
    /// state it leaves. Timeouts: handshake 10, headers 20, body 30, idle 40; now 1000.
    private static let transitions: [Transition] = {
        let waiting = Machine.Input.open(mayBeReady: false, requestsLeft: false)
        let backlogged = Machine.Input.open(mayBeReady: false, requestsLeft: true)
        let ready = Machine.Input.open(mayBeReady: true, requestsLeft: false)
        let readyBacklogged = Machine.Input.open(mayBeReady: true, requestsLeft: true)
        return [
            // Handshake.
            Transition(from: .handshaking(deadline: 10), event: .resume, answer: .action(.handshake), to: .handshaking(deadline: 10)),
            Transition(from: .handshaking(deadline: 10), event: .handshake(.done), answer: .action(.answer),
                       to: serving(ready, .headers, at: now + 20)),
            Transition(from: .handshaking(deadline: 10), event: .handshake(.wantRead), answer: .action(.waitReadable),
                       to: .handshaking(deadline: 10)),
            Transition(from: .handshaking(deadline: 10), event: .handshake(.wantWrite), answer: .action(.waitWritable),
                       to: .handshaking(deadline: 10)),
            Transition(from: .handshaking(deadline: 10), event: .handshake(.failed), answer: .action(.close(handshakeFailed: true)),
                       to: .handshaking(deadline: 10)),
            Transition(from: .handshaking(deadline: 10), event: .handshake(.closed), answer: .action(.close(handshakeFailed: true)),
                       to: .handshaking(deadline: 10)),
            // Resuming.
            Transition(from: serving(waiting), event: .resume, answer: .action(.answer), to: serving(ready)),
            Transition(from: serving(backlogged), event: .resume, answer: .action(.answer), to: serving(readyBacklogged)),
            Transition(from: serving(.closed), event: .resume, answer: .action(.answer), to: serving(.closed)),
            Transition(from: closing(linger: true), event: .resume, answer: .action(.answer), to: closing(linger: true)),
            Transition(from: .lingering(deadline: 5), event: .resume, answer: .action(.discard), to: .lingering(deadline: 5)),
            // Taking the parsed requests.
            Transition(from: serving(waiting), event: .nextRequest(backlog: 0), answer: .needInput, to: serving(waiting)),
            Transition(from: serving(backlogged), event: .nextRequest(backlog: 0), answer: .needInput, to: serving(waiting)),
            Transition(from: serving(waiting), bytes: .appended(get), event: .nextRequest(backlog: 0), answer: .request,
                       to: serving(waiting)),
            Transition(from: serving(waiting), bytes: .appended("POST /v HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
                       event: .nextRequest(backlog: 0), answer: .sendContinue, to: serving(waiting)),
            Transition(from: serving(waiting), bytes: .appended(get), event: .nextRequest(backlog: Machine.outputHighWater),
                       answer: .stop, to: serving(backlogged)),
            Transition(from: serving(.closed), bytes: .appended(get), event: .nextRequest(backlog: Machine.outputHighWater),
                       answer: .stop, to: serving(.closed)),
            Transition(from: serving(.closed), event: .nextRequest(backlog: 0), answer: .needInput, to: closing(linger: false)),
            Transition(from: serving(waiting), bytes: .appended("NONSENSE\r\n\r\n"), event: .nextRequest(backlog: 0),
                       answer: .refuse, to: closing(linger: true)),
            Transition(from: serving(.closed), bytes: .appended("NONSENSE\r\n\r\n"), event: .nextRequest(backlog: 0),
                       answer: .refuse, to: closing(linger: false)),
            Transition(from: closing(linger: true), bytes: .appended(get), event: .nextRequest(backlog: 0), answer: .stop,
                       to: closing(linger: true)),
            // Answered.
            Transition(from: serving(waiting, .headers, at: 5), event: .responded(keepAlive: true), answer: .none,
                       to: serving(waiting, .idle, at: now + 40, served: true)),
            Transition(from: serving(waiting, .headers, at: 5), bytes: .appended("GE"), event: .responded(keepAlive: true),
                       answer: .none, to: serving(waiting, .headers, at: now + 20, served: true)),
            Transition(from: serving(waiting, .headers, at: 5), event: .responded(keepAlive: false), answer: .none,
                       to: closing(.headers, at: 5, linger: true)),
            Transition(from: serving(.closed, .headers, at: 5), event: .responded(keepAlive: false), answer: .none,
                       to: closing(.headers, at: 5, linger: false)),
            // Answering stopped; flushing.
            Transition(from: serving(ready), event: .answered(hasPendingOutput: true), answer: .action(.flush), to: serving(ready)),
            Transition(from: serving(ready), event: .answered(hasPendingOutput: false), answer: .action(.read), to: serving(ready)),
            Transition(from: serving(waiting), event: .answered(hasPendingOutput: false), answer: .action(.waitReadable),
                       to: serving(waiting)),
            Transition(from: serving(backlogged), event: .answered(hasPendingOutput: false), answer: .action(.answer),
                       to: serving(waiting)),
            Transition(from: serving(.closed), event: .answered(hasPendingOutput: false), answer: .action(.answer),
                       to: serving(.closed)),
            Transition(from: closing(linger: true), event: .answered(hasPendingOutput: false), answer: .action(.finish(linger: true)),
                       to: closing(linger: true)),
            Transition(from: closing(linger: false), event: .flushed(.done), answer: .action(.finish(linger: false)),
                       to: closing(linger: false)),
            Transition(from: serving(ready), event: .flushed(.done), answer: .action(.read), to: serving(ready)),
            Transition(from: serving(ready), event: .flushed(.wantRead), answer: .action(.waitReadable), to: serving(ready)),
            Transition(from: serving(ready), event: .flushed(.wantWrite), answer: .action(.waitWritable), to: serving(ready)),
            Transition(from: serving(ready), event: .flushed(.failed), answer: .action(.close(handshakeFailed: false)),
                       to: serving(ready)),
            Transition(from: closing(linger: true), event: .flushed(.closed), answer: .action(.close(handshakeFailed: false)),
                       to: closing(linger: true)),
            // The request clock.
            Transition(from: serving(waiting, .idle, at: 5, served: true), bytes: .appended("GET"),
                       event: .answered(hasPendingOutput: true), answer: .action(.flush),
                       to: serving(waiting, .headers, at: now + 20, served: true)),
            Transition(from: serving(waiting, .headers, at: 5), bytes: .parsed(postHead), event: .answered(hasPendingOutput: false),
                       answer: .action(.waitReadable), to: serving(waiting, .body, at: now + 30)),
            Transition(from: serving(waiting, .idle, at: 5, served: true), bytes: .parsed(postHead),
                       event: .answered(hasPendingOutput: true), answer: .action(.flush),
                       to: serving(waiting, .body, at: now + 30, served: true)),
            Transition(from: closing(.headers, at: 5, linger: true), bytes: .parsed(postHead), event: .answered(hasPendingOutput: true),
                       answer: .action(.flush), to: closing(.body, at: now + 30, linger: true)),
            Transition(from: serving(waiting, .body, at: 5), bytes: .parsed(postHead), event: .answered(hasPendingOutput: true),
                       answer: .action(.flush), to: serving(waiting, .body, at: 5)),
            // Reading.
            Transition(from: serving(waiting), event: .read(.done, more: true), answer: .action(.answer), to: serving(ready)),
            Transition(from: serving(readyBacklogged), event: .read(.done, more: false), answer: .action(.answer),
                       to: serving(backlogged)),
            Transition(from: serving(ready, .idle, at: 5, served: true), bytes: .appended("G"), event: .read(.done, more: false),
                       answer: .action(.answer), to: serving(waiting, .headers, at: now + 20, served: true)),
            Transition(from: serving(ready), event: .read(.wantRead, more: false), answer: .action(.waitReadable), to: serving(ready)),
            Transition(from: serving(ready), event: .read(.wantWrite, more: false), answer: .action(.waitWritable), to: serving(ready)),
            Transition(from: serving(readyBacklogged), event: .read(.closed, more: false), answer: .action(.answer),
                       to: serving(.closed)),
            Transition(from: serving(ready), event: .read(.failed, more: false), answer: .action(.close(handshakeFailed: false)),
                       to: serving(ready)),
            // Lingering.
            Transition(from: closing(linger: true), event: .startLingering, answer: .none,
                       to: .lingering(deadline: now + Machine.lingerMilliseconds)),
        ]
    }()

    func testEveryTransitionOfTheTable() {
        for transition in Self.transitions {
            var m = ConnectionMachine(limits: HTTPLimits(), timeouts: timeouts, requestTimeout: nil, state: transition.from)
            switch transition.bytes {
            case .none:
                break
            case .appended(let text):
                m.parser.append(Array(text.utf8))
            case .parsed(let text):
                m.parser.append(Array(text.utf8))
                _ = m.parser.next()
            }
            let answer = Self.apply(transition.event, to: &m)
            XCTAssertEqual(answer, transition.answer, "answer", line: transition.line)
            XCTAssertEqual(m.state, transition.to, "state", line: transition.line)
        }
    }

    private static func apply(_ event: Event, to m: inout ConnectionMachine) -> Answer {
        switch event {
        case .resume: return .action(m.resume())
        case .handshake(let outcome): return .action(m.handshake(outcome, now: now))
        case .read(let outcome, let more): return .action(m.read(outcome, more: more, now: now))
        case .flushed(let outcome): return .action(m.flushed(outcome))
        case .answered(let pending): return .action(m.answered(hasPendingOutput: pending, now: now))
        case .nextRequest(let backlog):
            switch m.nextRequest(backlog: backlog) {
            case .needInput: return .needInput
            case .stop: return .stop
            case .sendContinue: return .sendContinue
            case .request: return .request
            case .refuse: return .refuse
            }
        case .responded(let keepAlive):
            m.responded(keepAlive: keepAlive, now: now)
            return .none
        case .startLingering:
            m.startLingering(now: now)
            return .none
        }
    }
}
