import TLS

/// One client connection, owned by one event loop: the I/O objects (socket, TLS
/// session, output buffer, epoll interest, body reservation) around the pure
/// `ConnectionMachine` that decides what happens next.
///
/// The properties touched several times per request skip the runtime's exclusivity
/// check (`@exclusivity(unchecked)`): only the owning loop's thread touches a
/// connection, and never while one of its own accesses to the same property is open.
final class Connection {
    let fd: Int32
    let session: TLSSession
    @exclusivity(unchecked) var machine: ConnectionMachine
    /// Response bytes not yet accepted by TLS, from `outputOffset` on.
    @exclusivity(unchecked) var output: [UInt8] = []
    @exclusivity(unchecked) var outputOffset = 0
    /// The epoll events currently registered.
    var interest: UInt32 = 0
    /// Bytes of the body memory budget this connection holds for the body it is reading.
    @exclusivity(unchecked) var reservedBodyBytes = 0
    /// Waiting for the body memory budget: not registered with epoll, not read.
    var awaitingBudget = false

    init(fd: Int32, session: TLSSession, machine: ConnectionMachine) {
        self.fd = fd
        self.session = session
        self.machine = machine
    }

    var hasPendingOutput: Bool { outputOffset < output.count }
}

extension ConnectionMachine.Outcome {
    init(_ result: TLSIOResult) {
        switch result {
        case .done: self = .done
        case .wantRead: self = .wantRead
        case .wantWrite: self = .wantWrite
        case .closed: self = .closed
        case .failed: self = .failed
        }
    }
}
