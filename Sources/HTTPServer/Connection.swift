import TLS

/// One client connection's state, owned by one event loop.
final class Connection {
    enum Phase {
        case handshaking
        case open
        /// Response sent, write side shut: discarding what the client still sends so
        /// that closing does not reset the connection before it read the response.
        case lingering
    }

    let fd: Int32
    let session: TLSSession
    var phase: Phase = .handshaking
    var parser: HTTPRequestParser
    /// Response bytes not yet accepted by TLS, from `outputOffset` on.
    var output: [UInt8] = []
    var outputOffset = 0
    var closeWhenFlushed = false
    /// Linger after flushing (the request was refused, the client may still be sending).
    var lingerWhenFlushed = false
    /// The epoll events currently registered.
    var interest: UInt32 = 0
    /// Monotonic milliseconds after which the connection is closed.
    var deadline: Int
    /// What the deadline currently measures.
    var deadlineKind: DeadlineKind = .handshake
    var requestsServed = 0
    /// Bytes of the body memory budget this connection holds for the body it is reading.
    var reservedBodyBytes = 0
    /// Waiting for the body memory budget: not registered with epoll, not read.
    var awaitingBudget = false
    /// The client shut its sending side: answer what is complete, flush, then close.
    var inputClosed = false

    enum DeadlineKind {
        case handshake, idle, headers, body, linger
    }

    init(fd: Int32, session: TLSSession, limits: HTTPLimits, deadline: Int) {
        self.fd = fd
        self.session = session
        self.parser = HTTPRequestParser(limits: limits)
        self.deadline = deadline
    }

    var hasPendingOutput: Bool { outputOffset < output.count }
}
