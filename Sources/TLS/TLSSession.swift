import COpenSSL
import Glibc

/// The outcome of one non-blocking TLS operation.
public enum TLSIOResult: Sendable, Equatable {
    /// Progress: bytes read or written (0 for a finished handshake).
    case done(Int)
    /// Call again when the socket is readable.
    case wantRead
    /// Call again when the socket is writable.
    case wantWrite
    /// The peer closed the connection (close_notify or EOF).
    case closed
    /// A protocol or socket error; the connection is unusable.
    case failed(String)
}

/// One server-side TLS connection over a non-blocking socket. Owned by a single
/// event loop; never shared between threads. Each call starts with the thread's error
/// queue empty and reads `SSL_get_error` right after, with nothing in between.
public final class TLSSession {
    private let ssl: OpaquePointer

    init(ssl: OpaquePointer) {
        self.ssl = ssl
    }

    deinit {
        SSL_free(ssl)
    }

    public func handshake() -> TLSIOResult {
        emptyErrorQueue()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .done(0) }
        return classify(rc)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSIOResult {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .done(0) }
        emptyErrorQueue()
        var count = 0
        let rc = SSL_read_ex(ssl, base, buffer.count, &count)
        if rc == 1 { return .done(count) }
        return classify(rc)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) -> TLSIOResult {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .done(0) }
        emptyErrorQueue()
        var count = 0
        let rc = SSL_write_ex(ssl, base, bytes.count, &count)
        if rc == 1 { return .done(count) }
        return classify(rc)
    }

    /// Sends close_notify without waiting for the peer's (best effort, non-blocking).
    public func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    /// Whether OpenSSL holds bytes (decrypted, or read ahead from the socket) that a
    /// `read` would consume without the socket becoming readable again.
    public var hasBufferedInput: Bool {
        SSL_has_pending(ssl) == 1
    }

    /// The ALPN protocol agreed in the handshake, if any.
    public var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// `ERR_clear_error` walks every slot of the queue; a peek at an empty queue costs a
    /// fraction of that, and it is nearly always empty.
    @inline(__always)
    private func emptyErrorQueue() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    private func classify(_ rc: Int32) -> TLSIOResult {
        let code = SSL_get_error(ssl, rc)
        switch code {
        case SSL_ERROR_WANT_READ:
            return .wantRead
        case SSL_ERROR_WANT_WRITE:
            return .wantWrite
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            let err = errno
            ERR_clear_error()
            if err == 0 || err == ECONNRESET || err == EPIPE { return .closed }
            return .failed("socket error \(err)")
        default:
            return .failed(openSSLErrors())
        }
    }
}
