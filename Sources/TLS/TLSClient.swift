import COpenSSL
import Glibc

/// Why a TLS client connection failed: which step, and OpenSSL's or the system's words.
public enum TLSClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case configuration(String)
    case connect(host: String, port: Int, reason: String)
    case handshake(host: String, reason: String)
    case timedOut
    case io(String)

    public var description: String {
        switch self {
        case .configuration(let why): return "TLS client configuration: \(why)"
        case .connect(let host, let port, let why): return "cannot connect to \(host):\(port): \(why)"
        case .handshake(let host, let why): return "TLS handshake with \(host) failed: \(why)"
        case .timedOut: return "timed out"
        case .io(let why): return why
        }
    }
}

/// What a client trusts and presents, as PEM bytes already read from files or a
/// kubeconfig's `-data` fields.
public struct TLSClientConfiguration: Sendable, Equatable {
    /// The CA bundle the server's certificate must chain to; nil for the system's.
    public var trustedCertificatesPEM: [UInt8]?
    /// A client certificate (chain) and its key, for servers that authenticate by it.
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?

    public init(trustedCertificatesPEM: [UInt8]? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil) {
        self.trustedCertificatesPEM = trustedCertificatesPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
    }
}

/// A client SSL_CTX: the peer is always verified (chain and host name), TLS 1.2 or newer.
///
/// `@unchecked Sendable`: the context is fully configured in `init` and only read after
/// (OpenSSL makes SSL_new on a shared SSL_CTX thread-safe).
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer

    public init(configuration: TLSClientConfiguration) throws(TLSClientError) {
        // OpenSSL writes with write(2): a server that closed first would raise SIGPIPE,
        // which ends the process. A client needs it ignored wherever it runs.
        signal(SIGPIPE, SIG_IGN)
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw .configuration(openSSLErrors())
        }
        do {
            try Self.configure(context, configuration)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        self.context = context
    }

    deinit { SSL_CTX_free(context) }

    private static func configure(_ context: OpaquePointer, _ configuration: TLSClientConfiguration) throws(TLSClientError) {
        _ = copenssl_ctx_set_min_proto_version(context, TLS1_2_VERSION)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let pem = configuration.trustedCertificatesPEM {
            let certificates = try readCertificates(pem, what: "certificate authority")
            guard let store = SSL_CTX_get_cert_store(context) else { throw .configuration("no certificate store") }
            for certificate in certificates {
                X509_STORE_add_cert(store, certificate)
                X509_free(certificate)
            }
        } else {
            SSL_CTX_set_default_verify_paths(context)
        }
        switch (configuration.clientCertificatePEM, configuration.clientKeyPEM) {
        case (nil, nil):
            break
        case let (certificatePEM?, keyPEM?):
            var chain = try readCertificates(certificatePEM, what: "client certificate")
            let leaf = chain.removeFirst()
            defer { X509_free(leaf) }
            guard SSL_CTX_use_certificate(context, leaf) == 1 else { throw .configuration("client certificate: \(openSSLErrors())") }
            for extra in chain where copenssl_ctx_add0_chain_cert(context, extra) != 1 {
                X509_free(extra)
            }
            let key = try withBIO(keyPEM) { bio in PEM_read_bio_PrivateKey(bio, nil, nil, nil) }
            guard let key else { throw .configuration("client key: \(openSSLErrors())") }
            defer { EVP_PKEY_free(key) }
            guard SSL_CTX_use_PrivateKey(context, key) == 1, SSL_CTX_check_private_key(context) == 1 else {
                throw .configuration("client key does not match the client certificate: \(openSSLErrors())")
            }
        default:
            throw .configuration("a client certificate needs its key, and a key its certificate")
        }
    }

    /// Every certificate of a PEM bundle, in order; at least one.
    private static func readCertificates(_ pem: [UInt8], what: String) throws(TLSClientError) -> [OpaquePointer] {
        let certificates = try withBIO(pem) { bio in
            var out: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(certificate) }
            return out
        }
        ERR_clear_error()  // the read that ends the loop leaves "no start line"
        guard !certificates.isEmpty else { throw .configuration("\(what): no PEM certificate found") }
        return certificates
    }

    private static func withBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) -> T) throws(TLSClientError) -> T {
        let bio = bytes.withUnsafeBytes { BIO_new_mem_buf($0.baseAddress, Int32(clamping: $0.count)) }
        guard let bio else { throw .configuration("out of memory") }
        defer { BIO_free(bio) }
        return body(bio)
    }
}

/// One blocking TLS connection for a client thread (the cluster cache's reflectors):
/// connect with a deadline, handshake verifying the server's chain and its name, then
/// whole writes and reads that wait at most `timeoutSeconds` for data.
public final class TLSClientConnection {
    private let ssl: OpaquePointer
    private let fd: Int32

    /// `host` is a DNS name (verified against the certificate's DNS names, and sent as
    /// SNI) or an IP address (verified against its IP addresses).
    public init(context: TLSClientContext, host: String, port: Int, timeoutSeconds: Int) throws(TLSClientError) {
        let fd = try Self.connect(host: host, port: port, timeoutSeconds: timeoutSeconds)
        guard let ssl = SSL_new(context.context) else {
            Glibc.close(fd)
            throw .handshake(host: host, reason: openSSLErrors())
        }
        SSL_set_fd(ssl, fd)
        let isAddress = Self.isIPAddress(host)
        if isAddress {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), host, 0)
            _ = host.withCString { SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
        }
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            let verify = SSL_get_verify_result(ssl)
            let reason = verify != X509_V_OK ? String(cString: X509_verify_cert_error_string(verify)) : openSSLErrors()
            SSL_free(ssl)
            Glibc.close(fd)
            throw .handshake(host: host, reason: reason)
        }
        self.ssl = ssl
        self.fd = fd
    }

    deinit {
        SSL_free(ssl)
        Glibc.close(fd)
    }

    /// Sets how long a read or write may wait.
    public func setTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    public func write(_ bytes: [UInt8]) throws(TLSClientError) {
        var written = 0
        ERR_clear_error()
        let ok = bytes.withUnsafeBytes { SSL_write_ex(ssl, $0.baseAddress, $0.count, &written) }
        guard ok == 1, written == bytes.count else { throw failure(ok, "write") }
    }

    /// Reads what is there (at least a byte) into `buffer`; 0 at the end of the stream.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSClientError) -> Int {
        var count = 0
        ERR_clear_error()
        let ok = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count)
        if ok == 1 { return count }
        let code = SSL_get_error(ssl, 0)
        if code == SSL_ERROR_ZERO_RETURN { return 0 }
        // A peer that closes without close_notify (as many HTTP servers do) is an end too.
        if code == SSL_ERROR_SYSCALL && errno == 0 { return 0 }
        throw failure(ok, "read")
    }

    /// Ends the connection from another thread: a read waiting on it returns at once.
    public func interrupt() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    private func failure(_ result: Int32, _ what: String) -> TLSClientError {
        let code = SSL_get_error(ssl, result)
        if code == SSL_ERROR_SYSCALL || code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE,
           errno == EAGAIN || errno == EWOULDBLOCK {
            return .timedOut
        }
        if code == SSL_ERROR_SYSCALL { return .io("\(what): \(String(cString: strerror(errno)))") }
        return .io("\(what): \(openSSLErrors())")
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// A TCP connection to the first address of `host` that answers within the deadline.
    private static func connect(host: String, port: Int, timeoutSeconds: Int) throws(TLSClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .connect(host: host, port: port, reason: String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = String(cString: strerror(errno))
                Glibc.close(fd)
                continue
            }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard poll(&poller, 1, Int32(clamping: timeoutSeconds * 1000)) == 1,
                  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length) == 0, soError == 0 else {
                lastError = soError != 0 ? String(cString: strerror(soError)) : "timed out"
                Glibc.close(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            return fd
        }
        throw .connect(host: host, port: port, reason: lastError)
    }
}
