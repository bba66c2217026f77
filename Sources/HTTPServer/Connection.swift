import Glibc
import SystemSupport
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
    /// Nil on a plain-HTTP server: bytes go to and from the socket as they are.
    let session: TLSSession?
    @exclusivity(unchecked) var machine: ConnectionMachine
    /// Response bytes not yet written, from `outputOffset` on.
    @exclusivity(unchecked) var output: [UInt8] = []
    @exclusivity(unchecked) var outputOffset = 0
    /// The epoll events currently registered.
    var interest: UInt32 = 0
    /// Bytes of the body memory budget this connection holds for the body it is reading.
    @exclusivity(unchecked) var reservedBodyBytes = 0
    /// Waiting for the body memory budget: not registered with epoll, not read.
    var awaitingBudget = false

    init(fd: Int32, session: TLSSession?, machine: ConnectionMachine) {
        self.fd = fd
        self.session = session
        self.machine = machine
    }

    var hasPendingOutput: Bool { outputOffset < output.count }

    // MARK: - Transport: TLS, or the socket itself

    /// The TLS handshake step; plain HTTP has none, so it is done at once.
    func handshake() -> TLSIOResult {
        session?.handshake() ?? .done(0)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSIOResult {
        if let session { return session.read(into: buffer) }
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .done(0) }
        do throws(SystemCallError) {
            guard let count = try nonBlockingSystemCall("recv", { recv(fd, base, buffer.count, 0) }) else { return .wantRead }
            return count == 0 ? .closed : .done(count)
        } catch {
            return error.errno == ECONNRESET ? .closed : .failed(error.description)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> TLSIOResult {
        if let session { return session.write(bytes) }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .done(0) }
        do throws(SystemCallError) {
            // MSG_NOSIGNAL: a peer that has gone away is an error here, not SIGPIPE.
            guard let count = try nonBlockingSystemCall("send", { send(fd, base, bytes.count, Int32(MSG_NOSIGNAL)) }) else {
                return .wantWrite
            }
            return .done(count)
        } catch {
            return error.errno == ECONNRESET || error.errno == EPIPE ? .closed : .failed(error.description)
        }
    }

    /// Whether bytes already taken from the socket wait to be read (TLS only: plain reads
    /// leave them in the socket, where epoll sees them).
    var hasBufferedInput: Bool {
        session?.hasBufferedInput ?? false
    }

    /// After the last response: close_notify on TLS; nothing to say on plain HTTP.
    func shutdownTransport() {
        session?.shutdown()
    }
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
