/// What one connection does next, decided from its state alone: a pure value, like the
/// parser, that the event loop drives with the outcome of each I/O step (handshake,
/// read, flush) and the requests it answered. It holds no socket, no TLS session and
/// no output buffer, and is tested without them.
struct ConnectionMachine {
    enum Phase: Equatable { case handshaking, open, lingering }

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

    let timeouts: HTTPTimeouts
    /// The body deadline a request's head asks for (`HTTPRouter.requestTimeout`).
    let requestTimeout: (@Sendable (HTTPRequest) -> Int?)?
    var parser: HTTPRequestParser
    private(set) var phase = Phase.handshaking
    /// Monotonic milliseconds after which the connection is closed.
    private(set) var deadline: Int
    private(set) var deadlineKind = DeadlineKind.handshake
    private(set) var requestsServed = 0
    private(set) var closeWhenFlushed = false
    /// Linger after flushing (the client may still be sending).
    private(set) var lingerWhenFlushed = false
    /// The client shut its sending side: answer what is complete, flush, then close.
    private(set) var inputClosed = false
    /// Whether the socket or OpenSSL may hold more input. After a short read with
    /// nothing buffered in OpenSSL, level-triggered epoll reports the next bytes: no
    /// read(2) that would only say EAGAIN.
    private var mayHaveInput = true
    /// The last round of answering ended wanting bytes.
    private var needsInput = false
    /// The last round of answering stopped with requests left in the buffer because
    /// output backed up: once it is flushed, answering goes on before any read (those
    /// requests must not wait for bytes the client may never send).
    private var stoppedForBacklog = false

    init(limits: HTTPLimits, timeouts: HTTPTimeouts, requestTimeout: (@Sendable (HTTPRequest) -> Int?)?, now: Int) {
        self.timeouts = timeouts
        self.requestTimeout = requestTimeout
        self.parser = HTTPRequestParser(limits: limits)
        self.deadline = now + timeouts.handshake
    }

    /// Served at least one request and waits for the next: nothing is lost by closing.
    func isIdle(hasPendingOutput: Bool) -> Bool {
        phase == .open && requestsServed > 0 && !hasPendingOutput && !parser.isMidRequest
    }

    /// The socket is ready (or a drain asks to look again): where to start.
    mutating func resume() -> Action {
        switch phase {
        case .handshaking: return .handshake
        case .lingering: return .discard
        case .open:
            mayHaveInput = true
            return .answer
        }
    }

    mutating func handshake(_ outcome: Outcome, now: Int) -> Action {
        switch outcome {
        case .done:
            phase = .open
            setDeadline(.headers, now: now)
            mayHaveInput = true
            return .answer
        case .wantRead: return .waitReadable
        case .wantWrite: return .waitWritable
        case .closed, .failed: return .close(handshakeFailed: true)
        }
    }

    /// The next parsed request to answer; `backlog` is the output still waiting.
    mutating func nextRequest(backlog: Int) -> Step {
        guard !closeWhenFlushed, backlog < Self.outputHighWater else {
            needsInput = false
            stoppedForBacklog = !closeWhenFlushed
            return .stop
        }
        switch parser.next() {
        case .needMoreBytes:
            needsInput = true
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
        requestsServed += 1
        if keepAlive {
            setDeadline(.idle, now: now)
            updateRequestDeadline(now: now)
        } else {
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
            mayHaveInput = more
            updateRequestDeadline(now: now)
            return .answer
        case .wantRead: return .waitReadable
        case .wantWrite: return .waitWritable
        case .closed:
            // The client is done sending: answer what is complete (as long as the
            // answers take to flush), then close.
            inputClosed = true
            return .answer
        case .failed: return .close(handshakeFailed: false)
        }
    }

    mutating func startLingering(now: Int) {
        phase = .lingering
        setDeadline(.linger, now: now)
    }

    // MARK: -

    private mutating func afterFlush() -> Action {
        if closeWhenFlushed { return .finish(linger: lingerWhenFlushed) }
        if stoppedForBacklog {
            stoppedForBacklog = false
            return .answer
        }
        if inputClosed {
            // Everything complete is answered and flushed: nothing more can come.
            return needsInput ? .finish(linger: false) : .answer
        }
        return mayHaveInput ? .read : .waitReadable
    }

    /// After the last answer: close once it is flushed, lingering unless the client has
    /// already stopped sending.
    private mutating func closeAfterAnswer() {
        closeWhenFlushed = true
        lingerWhenFlushed = !inputClosed
    }

    private mutating func setDeadline(_ kind: DeadlineKind, now: Int) {
        let span: Int
        switch kind {
        case .handshake: span = timeouts.handshake
        case .idle: span = timeouts.idle
        case .headers: span = timeouts.requestHeaders
        case .body: span = bodyTimeout()
        case .linger: span = Self.lingerMilliseconds
        }
        deadlineKind = kind
        deadline = now + span
    }

    /// Moves the deadline along as a request progresses: the first byte starts the
    /// header clock, a complete header section starts the body clock.
    private mutating func updateRequestDeadline(now: Int) {
        switch deadlineKind {
        case .idle where parser.isMidRequest:
            setDeadline(.headers, now: now)
            if parser.isReadingBody { setDeadline(.body, now: now) }
        case .headers where parser.isReadingBody:
            setDeadline(.body, now: now)
        default:
            break
        }
    }

    /// The body timeout, shortened by what the request's head asks for.
    private func bodyTimeout() -> Int {
        let configured = timeouts.requestBody
        guard let head = parser.requestAwaitingBody, let requested = requestTimeout?(head) else { return configured }
        return min(configured, max(requested, 1))
    }
}
