import COpenSSL
import Foundation
import Glibc

/// A small blocking TLS client on the system OpenSSL, for tests that need many
/// connections, byte-level control or the server's certificate serial.
public final class TestTLSClient {
    private let context: OpaquePointer
    private let ssl: OpaquePointer
    public let fd: Int32
    /// Bytes read past the last response (pipelined responses arrive together).
    private var pending: [UInt8] = []

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Connects and completes the handshake, verifying the server against `caFile`.
    public init(port: UInt16, caFile: String, certificate: (String, String)? = nil, timeoutSeconds: Double = 5) throws {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw Failure(description: "SSL_CTX_new") }
        self.context = context
        SSL_CTX_load_verify_locations(context, caFile, nil)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let (cert, key) = certificate {
            SSL_CTX_use_certificate_chain_file(context, cert)
            SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM)
        }
        fd = try connectTCP(port: port)
        var timeout = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - timeoutSeconds.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = SSL_new(context) else {
            Glibc.close(fd)
            SSL_CTX_free(context)
            throw Failure(description: "SSL_new")
        }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        _ = "localhost".withCString { SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
        X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), "localhost", 0)
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            // Every stored property is set: deinit frees the session, socket and context.
            throw Failure(description: ERR_reason_error_string(ERR_get_error()).map { String(cString: $0) } ?? "handshake failed")
        }
    }

    deinit {
        SSL_free(ssl)
        Glibc.close(fd)
        SSL_CTX_free(context)
    }

    /// The serial number of the certificate the server presented.
    public var peerSerial: UInt64? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        var serial: UInt64 = 0
        return ASN1_INTEGER_get_uint64(&serial, X509_get_serialNumber(certificate)) == 1 ? serial : nil
    }

    @discardableResult
    public func write(_ text: String) -> Bool {
        write(bytes: Array(text.utf8))
    }

    @discardableResult
    public func write(bytes: [UInt8]) -> Bool {
        var written = 0
        ERR_clear_error()
        return SSL_write_ex(ssl, bytes, bytes.count, &written) == 1 && written == bytes.count
    }

    /// Reads one response (header section and Content-Length body), keeping whatever
    /// follows for the next call; nil when the connection closed or failed first.
    public func readResponse() -> (status: Int, headers: String, body: String)? {
        var data = pending
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            if let end = data.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: data[..<end.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if data.count - end.upperBound >= length {
                    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                    pending = Array(data[(end.upperBound + length)...])
                    return (status, head, String(decoding: data[end.upperBound..<end.upperBound + length], as: UTF8.self))
                }
            }
            var count = 0
            ERR_clear_error()
            guard SSL_read_ex(ssl, &buffer, buffer.count, &count) == 1 else { return nil }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// True when the server has closed the connection (a read ends without data).
    public func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        var count = 0
        ERR_clear_error()
        return SSL_read_ex(ssl, &byte, 1, &count) != 1
    }
}

/// A plain TCP connection to the loopback port.
public func connectTCP(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        close(fd)
        throw POSIXError(.ECONNREFUSED)
    }
    return fd
}
