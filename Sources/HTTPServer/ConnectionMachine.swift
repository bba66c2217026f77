import SystemSupport

/// What one connection does next, decided from its state alone: a pure value, like the
/// parser, that the event loop drives with the outcome of each I/O step (handshake,
/// read, flush) and the requests it answered. It holds no socket, no TLS session and
/// no output buffer, and is tested without them.
struct ConnectionMachine {
    /// Where the connection is, with only what matters there.
    enum State: Equatable {
        /// The TLS handshake, until `deadline`.
        case handshaking(deadline: Int)
        /// Reading requests and answering them.
        case serving(Serving)
        /// The last answer is queued: flush it, then close, lingering unless the client
        /// had already stopped sending. The request clock runs on.
        case closing(clock: RequestClock, linger: Bool)
        /// After the last answer, with the write side shut: what the client still sends
        /// is dropped until `deadline`, then the connection closes.
        case lingering(deadline: Int)
    }

    struct Serving: Equatable {
        var clock: RequestClock
        /// At least one request answered.
        var hasServed: Bool
        var input: Input
    }

    /// Whether the client still sends, and what that means for the next read.
    enum Input: Equatable {
        /// The client may send more. `mayBeReady`: the socket or OpenSSL may hold bytes
        /// now; after a short read with nothing buffered in OpenSSL, level-triggered epoll
        /// reports the next bytes, so there is no read(2) that would only say EAGAIN.
        /// `requestsLeft`: the last round of answering stopped with requests in the buffer
        /// because output backed up; once it is flushed, answering goes on before any read
        /// (those requests must not wait for bytes the client may never send).
        case open(mayBeReady: Bool, requestsLeft: Bool)
        /// The client shut its sending side: every complete request is answered (however
        /// long the answers take to flush), then the connection closes without lingering.
        case closed
    }

    /// The deadline while requests are served: what it measures, and when it falls.
    struct RequestClock: Equatable {
        enum Measure: Equatable { case idle, headers, body }
        var measure: Measure
        /// Monotonic milliseconds.
        var deadline: Int
    }

    /// `HTTPTimeouts` in milliseconds, the unit of the loop's clock: converted once, when
    /// the loop is made, not per connection.
    struct Timeouts: Equatable {
        var handshake: Int
        var requestHeaders: Int
        var requestBody: Int
        var idle: Int

        init(_ timeouts: HTTPTimeouts) {
            handshake = timeouts.handshake.wholeMilliseconds
            requestHeaders = timeouts.requestHeaders.wholeMilliseconds
            requestBody = timeouts.requestBody.wholeMilliseconds
            idle = timeouts.idle.wholeMilliseconds
        }
    }

    /// What the deadline currently measures.
    enum DeadlineKind: Equatable { case handshake, idle, headers, body, linger }

    /// How one TLS step ended, as the loop saw it.
    enum Outcome: Equatable { case done, wantRead, wantWrite, closed, failed }

    /// What the loop does next.
    enum Action: Equatable {
        /// Run one TLS handshake step, then call `handshake(_:now:)`.
        case handshake
        /// Take the parsed requests in turn (`nextRequest`), then call `answered()`.
        case answer
        /// Write the pending output, then call `flushed(_:)`.
        case flush
        /// Read from TLS into `parser` (its body reserved first), then call `read(_:now:)`.
        case read
        /// Read and drop what a lingering client still sends (see `finish`).
        case discard
        /// Back to epoll until the socket is readable (releasing the parser's idle
        /// buffer) or writable.
        case waitReadable
        case waitWritable
        /// Close now.
        case close(handshakeFailed: Bool)
        /// After the last answer: close_notify, then either close, or shut the write side
        /// and linger (`startLingering`) so that bytes the client still sends do not turn
        /// the close into a reset that destroys the answer before it is read.
        case finish(linger: Bool)
    }

    /// The next step of answering.
    enum Step: Equatable {
        /// Every complete request is answered: more bytes are needed.
        case needInput
        /// Stop answering: the connection closes after its output, or the output waits
        /// for a client that does not read.
        case stop
        case sendContinue
        /// Answer it, then call `responded(keepAlive:now:)`.
        case request(HTTPRequest)
        /// Answer it with its status; the connection closes after.
        case refuse(HTTPParseError)
    }

    static let lingerMilliseconds = 2_000
    /// Stop parsing pipelined requests while this much output waits for the client.
    static let outputHighWater = 1 << 20

    let timeouts: Timeouts
    /// The body deadline a request's head asks for (`HTTPRouter.requestTimeout`).
    let requestTimeout: (@Sendable (HTTPRequest) -> Int?)?
    var parser: HTTPRequestParser
    private(set) var state: State

    init(limits: HTTPLimits, timeouts: Timeouts, requestTimeout: (@Sendable (HTTPRequest) -> Int?)?, now: Int) {
        self.init(limits: limits, timeouts: timeouts, requestTimeout: requestTimeout,
                  state: .handshaking(deadline: now + timeouts.handshake))
    }

    /// A machine in `state` (a new connection starts handshaking).
    init(limits: HTTPLimits, timeouts: Timeouts, requestTimeout: (@Sendable (HTTPRequest) -> Int?)?, state: State) {
        self.timeouts = timeouts
        self.requestTimeout = requestTimeout
        self.parser = HTTPRequestParser(limits: limits)
        self.state = state
    }

    /// Monotonic milliseconds after which the connection is closed.
    var deadline: Int {
        switch state {
        case .handshaking(let deadline), .lingering(let deadline): return deadline
        case .serving(let serving): return serving.clock.deadline
        case .closing(let clock, _): return clock.deadline
        }
    }

    var deadlineKind: DeadlineKind {
        let clock: RequestClock
        switch state {
        case .handshaking: return .handshake
        case .lingering: return .linger
        case .serving(let serving): clock = serving.clock
        case .closing(let running, _): clock = running
        }
        switch clock.measure {
        case .idle: return .idle
        case .headers: return .headers
        case .body: return .body
        }
    }

    /// Served at least one request and waits for the next: nothing is lost by closing.
    func isIdle(hasPendingOutput: Bool) -> Bool {
        guard case .serving(let serving) = state else { return false }
        return serving.hasServed && !hasPendingOutput && !parser.isMidRequest
    }

    /// The socket is ready (or a drain asks to look again): where to start.
    mutating func resume() -> Action {
        switch state {
        case .handshaking: return .handshake
        case .lingering: return .discard
        case .closing: return .answer
        case .serving(var serving):
            if case .open(_, let requestsLeft) = serving.input {
                serving.input = .open(mayBeReady: true, requestsLeft: requestsLeft)
                state = .serving(serving)
            }
            return .answer
        }
    }

    mutating func handshake(_ outcome: Outcome, now: Int) -> Action {
        switch outcome {
        case .done:
            state = .serving(Serving(clock: RequestClock(measure: .headers, deadline: now + timeouts.requestHeaders),
                                     hasServed: false, input: .open(mayBeReady: true, requestsLeft: false)))
            return .answer
        case .wantRead: return .waitReadable
        case .wantWrite: return .waitWritable
        case .closed, .failed: return .close(handshakeFailed: true)
        }
    }

    /// The next parsed request to answer; `backlog` is the output still waiting.
    mutating func nextRequest(backlog: Int) -> Step {
        guard case .serving(var serving) = state else { return .stop }
        guard backlog < Self.outputHighWater else {
            if case .open(let mayBeReady, _) = serving.input {
                serving.input = .open(mayBeReady: mayBeReady, requestsLeft: true)
                state = .serving(serving)
            }
            return .stop
        }
        switch parser.next() {
        case .needMoreBytes:
            switch serving.input {
            case .open(let mayBeReady, _):
                serving.input = .open(mayBeReady: mayBeReady, requestsLeft: false)
                state = .serving(serving)
            case .closed:
                // Everything complete is answered: nothing more can come.
                state = .closing(clock: serving.clock, linger: false)
            }
            return .needInput
        case .sendContinue:
            return .sendContinue
        case .request(let request):
            return .request(request)
        case .reject(let error):
            closeAfterAnswer()
            return .refuse(error)
        }
    }

    /// A request was answered; `keepAlive` false closes the connection after the answer.
    mutating func responded(keepAlive: Bool, now: Int) {
        guard case .serving(var serving) = state else { return }
        serving.hasServed = true
        if keepAlive {
            serving.clock = RequestClock(measure: .idle, deadline: now + timeouts.idle)
            state = .serving(serving)
            updateRequestDeadline(now: now)
        } else {
            state = .serving(serving)
            closeAfterAnswer()
        }
    }

    /// Answering stopped: flush what is pending, else go on.
    mutating func answered(hasPendingOutput: Bool, now: Int) -> Action {
        updateRequestDeadline(now: now)
        return hasPendingOutput ? .flush : afterFlush()
    }

    mutating func flushed(_ outcome: Outcome) -> Action {
        switch outcome {
        case .done: return afterFlush()
        case .wantRead: return .waitReadable
        case .wantWrite: return .waitWritable
        case .closed, .failed: return .close(handshakeFailed: false)
        }
    }

    /// A read ended. After `.done`, the bytes are in `parser` and `more` says whether the
    /// socket or OpenSSL may hold more.
    mutating func read(_ outcome: Outcome, more: Bool = false, now: Int) -> Action {
        switch outcome {
        case .done:
            if case .serving(var serving) = state, case .open(_, let requestsLeft) = serving.input {
                serving.input = .open(mayBeReady: more, requestsLeft: requestsLeft)
                state = .serving(serving)
            }
            updateRequestDeadline(now: now)
            return .answer
        case .wantRead: return .waitReadable
        case .wantWrite: return .waitWritable
        case .closed:
            // The client is done sending: answer what is complete, then close.
            if case .serving(var serving) = state {
                serving.input = .closed
                state = .serving(serving)
            }
            return .answer
        case .failed: return .close(handshakeFailed: false)
        }
    }

    mutating func startLingering(now: Int) {
        state = .lingering(deadline: now + Self.lingerMilliseconds)
    }

    // MARK: -

    private mutating func afterFlush() -> Action {
        switch state {
        case .handshaking: return .handshake
        case .lingering: return .discard
        case .closing(_, let linger): return .finish(linger: linger)
        case .serving(var serving):
            switch serving.input {
            case .closed:
                return .answer
            case .open(let mayBeReady, true):
                serving.input = .open(mayBeReady: mayBeReady, requestsLeft: false)
                state = .serving(serving)
                return .answer
            case .open(let mayBeReady, false):
                return mayBeReady ? .read : .waitReadable
            }
        }
    }

    /// After the last answer: close once it is flushed, lingering unless the client has
    /// already stopped sending.
    private mutating func closeAfterAnswer() {
        guard case .serving(let serving) = state else { return }
        state = .closing(clock: serving.clock, linger: serving.input != .closed)
    }

    /// Moves the deadline along as a request progresses.
    private mutating func updateRequestDeadline(now: Int) {
        switch state {
        case .serving(var serving):
            guard let clock = advanced(serving.clock, now: now) else { return }
            serving.clock = clock
            state = .serving(serving)
        case .closing(let clock, let linger):
            guard let clock = advanced(clock, now: now) else { return }
            state = .closing(clock: clock, linger: linger)
        case .handshaking, .lingering:
            break
        }
    }

    /// `clock` moved along: the first byte of a request starts the header clock, a
    /// complete header section the body clock. Nil when it stays.
    private func advanced(_ clock: RequestClock, now: Int) -> RequestClock? {
        switch clock.measure {
        case .idle where parser.isMidRequest:
            if parser.isReadingBody { return RequestClock(measure: .body, deadline: now + bodyTimeout()) }
            return RequestClock(measure: .headers, deadline: now + timeouts.requestHeaders)
        case .headers where parser.isReadingBody:
            return RequestClock(measure: .body, deadline: now + bodyTimeout())
        default:
            return nil
        }
    }

    /// The body timeout, shortened by what the request's head asks for.
    private func bodyTimeout() -> Int {
        let configured = timeouts.requestBody
        guard let head = parser.requestAwaitingBody, let requested = requestTimeout?(head) else { return configured }
        return min(configured, max(requested, 1))
    }
}
