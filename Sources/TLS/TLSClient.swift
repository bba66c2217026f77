import COpenSSL
import Glibc
import Synchronization

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

// MARK: - Where the PEM comes from

/// Where one PEM input of a client context comes from: a file, which rotates (the
/// service account's `ca.crt`, a kubeconfig's `certificate-authority` or
/// `client-certificate`), or bytes given inline (a kubeconfig's `-data` fields), fixed
/// for the life of the process.
public enum TLSPEMSource: Sendable, Equatable, CustomStringConvertible {
    case file(String)
    case inline([UInt8])

    /// The bytes now: the file read whole (a regular file of at most 4 MiB), or the inline bytes.
    public func read() throws(TLSClientError) -> [UInt8] {
        switch self {
        case .inline(let bytes): return bytes
        case .file(let path): return try PEMFile.read(path)
        }
    }

    var path: String? {
        if case .file(let path) = self { return path }
        return nil
    }

    public var description: String {
        switch self {
        case .file(let path): return path
        case .inline(let bytes): return "inline data (\(bytes.count) bytes)"
        }
    }
}

/// Where a client context's trust and credentials come from (each nil when not given:
/// no CA bundle means the system's, no certificate and key means no client certificate).
public struct TLSClientSources: Sendable, Equatable {
    public var trustedCertificates: TLSPEMSource?
    public var clientCertificate: TLSPEMSource?
    public var clientKey: TLSPEMSource?

    public init(trustedCertificates: TLSPEMSource? = nil, clientCertificate: TLSPEMSource? = nil, clientKey: TLSPEMSource? = nil) {
        self.trustedCertificates = trustedCertificates
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }

    /// Fixed bytes: a configuration already read, which never changes.
    public init(_ configuration: TLSClientConfiguration) {
        self.init(trustedCertificates: configuration.trustedCertificatesPEM.map(TLSPEMSource.inline),
                  clientCertificate: configuration.clientCertificatePEM.map(TLSPEMSource.inline),
                  clientKey: configuration.clientKeyPEM.map(TLSPEMSource.inline))
    }

    /// The files among the sources: what a `TLSClientContextSource` watches.
    public var files: [String] {
        [trustedCertificates, clientCertificate, clientKey].compactMap { $0?.path }
    }

    /// Every source read now.
    public func read() throws(TLSClientError) -> TLSClientConfiguration {
        TLSClientConfiguration(trustedCertificatesPEM: try trustedCertificates?.read(),
                               clientCertificatePEM: try clientCertificate?.read(),
                               clientKeyPEM: try clientKey?.read())
    }
}

/// Reading a PEM file whole, and telling cheaply whether it may have changed.
enum PEMFile {
    /// More than any CA bundle (the system's is some 200 KiB): a file past it is refused.
    static let maxBytes = 4 * 1024 * 1024

    static func read(_ path: String) throws(TLSClientError) -> [UInt8] {
        // O_NONBLOCK: a FIFO put in a file's place must not block the opening thread.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .configuration("cannot read \(path): \(errnoText(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .configuration("cannot read \(path): \(errnoText(errno))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .configuration("\(path) is not a regular file") }
        guard info.st_size <= maxBytes else { throw .configuration("\(path) is larger than \(maxBytes) bytes") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                throw .configuration("cannot read \(path): \(errnoText(errno))")
            }
            bytes.append(contentsOf: chunk.prefix(count))
            guard bytes.count <= maxBytes else { throw .configuration("\(path) is larger than \(maxBytes) bytes") }
        }
    }

    /// What identifies a file's content without reading it: the resolved file's device,
    /// inode, size, and modification and change times (to the nanosecond). A Secret
    /// volume's `..data` symlink swap, an atomic rename and a write in place all change it.
    enum State: Equatable, Sendable {
        case present(device: UInt64, inode: UInt64, size: Int, modified: Int, changed: Int)
        case missing(Int32)

        init(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else {
                self = .missing(errno)
                return
            }
            self = .present(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int(info.st_size),
                            modified: info.st_mtim.tv_sec &* 1_000_000_000 &+ info.st_mtim.tv_nsec,
                            changed: info.st_ctim.tv_sec &* 1_000_000_000 &+ info.st_ctim.tv_nsec)
        }
    }
}

// MARK: - Context

/// A client SSL_CTX: the peer is always verified (chain and host name), TLS 1.2 or newer.
/// Every setup call's result is checked: a context that could not be set up as asked is
/// an error, never a context that verifies less.
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
            ERR_clear_error()
            throw error
        }
        self.context = context
    }

    deinit { SSL_CTX_free(context) }

    private static func configure(_ context: OpaquePointer, _ configuration: TLSClientConfiguration) throws(TLSClientError) {
        guard copenssl_ctx_set_min_proto_version(context, TLS1_2_VERSION) == 1 else {
            throw .configuration("cannot require TLS 1.2 or newer: \(openSSLErrors())")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // SSL_CTX_set_verify returns nothing: read the mode back.
        guard SSL_CTX_get_verify_mode(context) == SSL_VERIFY_PEER else {
            throw .configuration("cannot turn server certificate verification on")
        }
        if let pem = configuration.trustedCertificatesPEM {
            let certificates = try readCertificates(pem, what: "certificate authority")
            guard let store = SSL_CTX_get_cert_store(context) else {
                certificates.forEach { X509_free($0) }
                throw .configuration("no certificate store")
            }
            var failure: String?
            for certificate in certificates {
                // 1 also for a certificate already in the store (a bundle that repeats one).
                if failure == nil && X509_STORE_add_cert(store, certificate) != 1 {
                    failure = "certificate authority: cannot add a certificate to the trust store: \(openSSLErrors())"
                }
                X509_free(certificate)
            }
            if let failure { throw .configuration(failure) }
        } else {
            guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                throw .configuration("cannot load the system's certificate authorities: \(openSSLErrors())")
            }
        }
        switch (configuration.clientCertificatePEM, configuration.clientKeyPEM) {
        case (nil, nil):
            break
        case let (certificatePEM?, keyPEM?):
            try useClientCertificate(context, certificatePEM: certificatePEM, keyPEM: keyPEM)
        default:
            throw .configuration("a client certificate needs its key, and a key its certificate")
        }
    }

    /// The client certificate (the first of the PEM; the rest are its chain) and its key.
    private static func useClientCertificate(_ context: OpaquePointer, certificatePEM: [UInt8],
                                             keyPEM: [UInt8]) throws(TLSClientError) {
        let chain = try readCertificates(certificatePEM, what: "client certificate")
        // `add0` takes ownership of each extra certificate it accepts; the rest are freed here.
        var owned = chain[...]
        defer { owned.forEach { X509_free($0) } }
        guard let leaf = owned.popFirst() else { throw .configuration("client certificate: no PEM certificate found") }
        defer { X509_free(leaf) }
        guard SSL_CTX_use_certificate(context, leaf) == 1 else { throw .configuration("client certificate: \(openSSLErrors())") }
        while let extra = owned.first {
            guard copenssl_ctx_add0_chain_cert(context, extra) == 1 else {
                throw .configuration("client certificate: cannot add its chain: \(openSSLErrors())")
            }
            owned = owned.dropFirst()
        }
        // No passphrase prompt: an encrypted key is an error, never a read from a terminal.
        let key = try withBIO(keyPEM) { bio in PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil) }
        guard let key else { throw .configuration("client key (unencrypted PEM expected): \(openSSLErrors())") }
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(context, key) == 1, SSL_CTX_check_private_key(context) == 1 else {
            throw .configuration("client key does not match the client certificate: \(openSSLErrors())")
        }
    }

    /// Every certificate of a PEM bundle, in order; at least one. A block that is cut
    /// short or corrupt is an error (a half-written file during a rotation), not the end.
    private static func readCertificates(_ pem: [UInt8], what: String) throws(TLSClientError) -> [OpaquePointer] {
        ERR_clear_error()
        let certificates = try withBIO(pem) { bio in
            var out: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(certificate) }
            return out
        }
        // The read that ends the loop leaves "no start line" (no further block); anything else is a bad block.
        let last = ERR_peek_last_error()
        if last != 0 && copenssl_err_is_pem_no_start_line(last) == 0 {
            certificates.forEach { X509_free($0) }
            throw .configuration("\(what): \(openSSLErrors())")
        }
        ERR_clear_error()
        guard !certificates.isEmpty else { throw .configuration("\(what): no PEM certificate found") }
        return certificates
    }

    private static func withBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer) -> T) throws(TLSClientError) -> T {
        guard bytes.count <= Int(Int32.max) else { throw .configuration("PEM input too large") }
        let bio = bytes.withUnsafeBytes { BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }
        guard let bio else { throw .configuration("out of memory") }
        defer { BIO_free(bio) }
        return body(bio)
    }
}

// MARK: - Reloading source

/// The client context for the next connection, rebuilt when the files it came from
/// change: the API server's CA and the client certificate rotate while the process runs
/// (kubelet rewrites the service account's `ca.crt`; cert-manager or an operator renews
/// a kubeconfig's files). Several threads call `current()`; each connection keeps the
/// context it was made with.
///
/// At most once per `checkIntervalMilliseconds` a call stats the files (device, inode,
/// size, modification and change times); only when that changed are they read and
/// compared with the bytes the context was built from, and only different bytes build a
/// new context. Files that cannot be read, or that do not make a valid context (a
/// certificate without its new key yet, a half-written file), keep the previous
/// context: that is reported once per change of the files, through `onReload` and
/// `lastReloadError`, and retried when the files change again.
public final class TLSClientContextSource: Sendable {
    /// What a check found, handed to `onReload` (for the log).
    public enum Reload: Sendable, Equatable, CustomStringConvertible {
        /// The files changed and made a new context: connections from now on use it.
        case reloaded(files: [String])
        /// The files changed but could not be read or made no valid context: the
        /// previous context stays in use.
        case kept(reason: String)

        public var description: String {
            switch self {
            case .reloaded(let files):
                return "TLS client credentials reloaded from \(files.joined(separator: ", "))"
            case .kept(let reason):
                return "TLS client files changed but were not loaded; the previous credentials stay in use: \(reason)"
            }
        }
    }

    public let sources: TLSClientSources
    private let files: [String]
    private let checkIntervalMilliseconds: Int
    private let onReload: @Sendable (Reload) -> Void
    private let state: Mutex<State>

    private struct State {
        var context: TLSClientContext
        /// The bytes `context` was built from.
        var loaded: TLSClientConfiguration
        /// `files` as stat saw them at the last check.
        var seen: [PEMFile.State]
        /// Bytes that made no valid context, so that the same bytes are not reported twice.
        var refused: TLSClientConfiguration?
        var lastError: String?
        var nextCheck: Int
        var generation: Int
    }

    /// Reads the sources and builds the first context: any failure here is a startup
    /// error (thrown). `checkIntervalMilliseconds` 0 checks at every call (tests).
    public init(sources: TLSClientSources, checkIntervalMilliseconds: Int = 1000,
                onReload: @escaping @Sendable (Reload) -> Void = { _ in }) throws(TLSClientError) {
        let interval = max(0, checkIntervalMilliseconds)
        self.sources = sources
        files = sources.files
        self.checkIntervalMilliseconds = interval
        self.onReload = onReload
        // Stat before reading: a change made while the files are read is seen at the next check.
        let seen = files.map(PEMFile.State.init(path:))
        let configuration = try sources.read()
        let context = try TLSClientContext(configuration: configuration)
        state = Mutex(State(context: context, loaded: configuration, seen: seen, refused: nil, lastError: nil,
                            nextCheck: clientMonotonicMilliseconds() + interval, generation: 1))
    }

    /// The context to make the next connection with; rebuilt first when the files
    /// changed (see the type's comment). Never fails: at worst the previous context.
    public func current() -> TLSClientContext {
        let (context, event) = state.withLock { state -> (TLSClientContext, Reload?) in
            let event = check(&state)
            return (state.context, event)
        }
        if let event { onReload(event) }
        return context
    }

    /// Why the files' latest change was not loaded; nil once the context matches the files.
    public var lastReloadError: String? {
        state.withLock { $0.lastError }
    }

    /// How many contexts were built: 1 after `init`, one more per reload.
    public var generation: Int {
        state.withLock { $0.generation }
    }

    private func check(_ state: inout State) -> Reload? {
        guard !files.isEmpty else { return nil }
        let now = clientMonotonicMilliseconds()
        guard now >= state.nextCheck else { return nil }
        state.nextCheck = now + checkIntervalMilliseconds
        let seen = files.map(PEMFile.State.init(path:))
        guard seen != state.seen else { return nil }
        var changed: [String] = []
        for (file, (new, old)) in zip(files, zip(seen, state.seen)) where new != old { changed.append(file) }
        state.seen = seen
        let configuration: TLSClientConfiguration
        do {
            configuration = try sources.read()
        } catch {
            state.refused = nil
            state.lastError = error.description
            return .kept(reason: error.description)
        }
        if configuration == state.loaded {
            // Rewritten with the same content, or put back after a bad change.
            state.refused = nil
            state.lastError = nil
            return nil
        }
        if configuration == state.refused { return nil }
        do {
            state.context = try TLSClientContext(configuration: configuration)
            state.loaded = configuration
            state.refused = nil
            state.lastError = nil
            state.generation += 1
            return .reloaded(files: changed)
        } catch {
            let reason = "\(error.description) (files: \(files.joined(separator: ", ")))"
            state.refused = configuration
            state.lastError = reason
            return .kept(reason: reason)
        }
    }
}

// MARK: - Connection

/// One blocking TLS connection for a client thread (the cluster cache's reflectors):
/// connect with a deadline, handshake verifying the server's chain and its name, then
/// whole writes and reads that wait at most the timeout for data. The socket has TCP
/// keepalive on (first probe after 30 s idle, then every 10 s, 3 unanswered end it), so
/// a connection whose peer vanished (a half-open watch) is noticed by the kernel.
public final class TLSClientConnection {
    private let ssl: OpaquePointer
    let fd: Int32
    /// A failure to set the socket's timeouts: every later read and write throws it
    /// (a read without its timeout could wait forever).
    private var pendingError: TLSClientError?

    /// Keepalive: seconds idle before the first probe, seconds between probes, probes unanswered.
    static let keepalive = (idle: Int32(30), interval: Int32(10), count: Int32(3))

    /// Connects to `host` (a DNS name or an IP address) and verifies the server's
    /// certificate for `verifyName` (default: `host`), which is also sent as SNI when it
    /// is a DNS name; an IP address is verified against the certificate's IP addresses.
    /// `verifyName` is a kubeconfig's `tls-server-name`: the name the certificate was
    /// issued for when the server is reached by another (an IP, a tunnel).
    public init(context: TLSClientContext, host: String, port: Int, verifyName: String? = nil,
                timeoutSeconds: Int) throws(TLSClientError) {
        let name = verifyName ?? host
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .configuration("the name to verify the server's certificate for is empty or not printable ASCII: \(name.debugDescription)")
        }
        let fd = try Self.connect(host: host, port: port, timeoutSeconds: timeoutSeconds)
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else {
            Glibc.close(fd)
            throw .handshake(host: host, reason: openSSLErrors())
        }
        do {
            try Self.prepare(ssl, fd: fd, verifyName: name)
            try Self.handshake(ssl, host: host, verifyName: name)
        } catch {
            SSL_free(ssl)
            Glibc.close(fd)
            ERR_clear_error()
            throw error
        }
        self.ssl = ssl
        self.fd = fd
    }

    deinit {
        SSL_free(ssl)
        Glibc.close(fd)
    }

    /// The socket, and what the server's certificate must name.
    private static func prepare(_ ssl: OpaquePointer, fd: Int32, verifyName name: String) throws(TLSClientError) {
        guard SSL_set_fd(ssl, fd) == 1 else { throw .configuration("cannot attach the socket: \(openSSLErrors())") }
        guard let parameters = SSL_get0_param(ssl) else { throw .configuration("no verification parameters") }
        if isIPAddress(name) {
            guard X509_VERIFY_PARAM_set1_ip_asc(parameters, name) == 1 else {
                throw .configuration("cannot verify the server's certificate for IP address \(name): \(openSSLErrors())")
            }
        } else {
            // A wildcard matches one whole left-most label only (as Go's crypto/tls does).
            X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            guard X509_VERIFY_PARAM_set1_host(parameters, name, 0) == 1 else {
                throw .configuration("cannot verify the server's certificate for \(name): \(openSSLErrors())")
            }
            guard copenssl_set_tlsext_host_name(ssl, name) == 1 else {
                throw .configuration("cannot send \(name) as the server name (SNI): \(openSSLErrors())")
            }
        }
    }

    /// The handshake, and then (though SSL_VERIFY_PEER already fails it otherwise) a
    /// certificate from the server that verified.
    private static func handshake(_ ssl: OpaquePointer, host: String, verifyName name: String) throws(TLSClientError) {
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            let verify = SSL_get_verify_result(ssl)
            let reason = verify != X509_V_OK ? String(cString: X509_verify_cert_error_string(verify)) : openSSLErrors()
            throw .handshake(host: host, reason: name == host ? reason : "\(reason) (verifying for \(name))")
        }
        guard SSL_get0_peer_certificate(ssl) != nil, SSL_get_verify_result(ssl) == X509_V_OK else {
            throw .handshake(host: host, reason: "the server's certificate was not verified")
        }
    }

    /// Sets how long a read or write may wait (at least a second: 0 would mean forever).
    /// If the socket refuses, the connection is shut and later reads and writes throw.
    public func setTimeout(seconds: Int) {
        if let failure = Self.setTimeouts(fd, seconds: seconds) {
            pendingError = .io("cannot set the socket timeout: \(failure)")
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    public func write(_ bytes: [UInt8]) throws(TLSClientError) {
        if let pendingError { throw pendingError }
        guard !bytes.isEmpty else { return }
        var written = 0
        ERR_clear_error()
        let ok = bytes.withUnsafeBytes { SSL_write_ex(ssl, $0.baseAddress, $0.count, &written) }
        let code = errno
        guard ok == 1, written == bytes.count else { throw failure(ok, code, "write") }
    }

    /// Reads what is there (at least a byte) into `buffer`; 0 at the end of the stream.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSClientError) -> Int {
        if let pendingError { throw pendingError }
        var count = 0
        ERR_clear_error()
        let ok = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count)
        let savedErrno = errno
        if ok == 1 { return count }
        let code = SSL_get_error(ssl, ok)
        if code == SSL_ERROR_ZERO_RETURN { return 0 }
        // A peer that closes without close_notify (as many HTTP servers do) is an end too.
        if code == SSL_ERROR_SYSCALL && savedErrno == 0 { return 0 }
        throw failure(ok, savedErrno, "read")
    }

    /// Ends the connection from another thread: a read waiting on it returns at once.
    public func interrupt() {
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// `savedErrno` is errno right after the failed call (OpenSSL's error lookups may change it).
    private func failure(_ result: Int32, _ savedErrno: Int32, _ what: String) -> TLSClientError {
        let code = SSL_get_error(ssl, result)
        if code == SSL_ERROR_SYSCALL || code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE,
           savedErrno == EAGAIN || savedErrno == EWOULDBLOCK {
            return .timedOut
        }
        if code == SSL_ERROR_SYSCALL { return .io("\(what): \(errnoText(savedErrno))") }
        return .io("\(what): \(openSSLErrors())")
    }

    /// Whether `host` is an IPv4 or IPv6 address (IPv6 without brackets), which is
    /// verified against a certificate's IP addresses rather than its DNS names.
    public static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// SO_RCVTIMEO and SO_SNDTIMEO; the failure's words, or nil.
    private static func setTimeouts(_ fd: Int32, seconds: Int) -> String? {
        var timeout = timeval(tv_sec: max(1, seconds), tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO]
        where setsockopt(fd, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size)) != 0 {
            return errnoText(errno)
        }
        return nil
    }

    /// SO_KEEPALIVE with `keepalive`'s timing; the failure's words, or nil.
    private static func enableKeepalive(_ fd: Int32) -> String? {
        let options: [(level: Int32, name: Int32, value: Int32, label: String)] = [
            (SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"),
            (Int32(IPPROTO_TCP), TCP_KEEPIDLE, keepalive.idle, "TCP_KEEPIDLE"),
            (Int32(IPPROTO_TCP), TCP_KEEPINTVL, keepalive.interval, "TCP_KEEPINTVL"),
            (Int32(IPPROTO_TCP), TCP_KEEPCNT, keepalive.count, "TCP_KEEPCNT"),
        ]
        for option in options {
            var value = option.value
            guard setsockopt(fd, option.level, option.name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                return "\(option.label): \(errnoText(errno))"
            }
        }
        return nil
    }

    /// A TCP connection to the first address of `host` that answers within the deadline
    /// (each address gets `timeoutSeconds`, at least one), with keepalive and the
    /// timeouts set, in blocking mode.
    private static func connect(host: String, port: Int, timeoutSeconds: Int) throws(TLSClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            let reason = rc == EAI_SYSTEM ? errnoText(errno) : String(cString: gai_strerror(rc))
            throw .connect(host: host, port: port, reason: reason)
        }
        defer { freeaddrinfo(list) }
        let timeout = max(1, timeoutSeconds)
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = errnoText(errno); continue }
            if let failure = enableKeepalive(fd) {
                Glibc.close(fd)
                throw .connect(host: host, port: port, reason: "cannot enable TCP keepalive: \(failure)")
            }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = errnoText(errno)
                Glibc.close(fd)
                continue
            }
            if let failure = waitConnected(fd, seconds: timeout) {
                lastError = failure
                Glibc.close(fd)
                continue
            }
            let flags = fcntl(fd, F_GETFL)
            if flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 {
                let failure = errnoText(errno)
                Glibc.close(fd)
                throw .connect(host: host, port: port, reason: "cannot make the socket blocking: \(failure)")
            }
            if let failure = setTimeouts(fd, seconds: timeout) {
                Glibc.close(fd)
                throw .connect(host: host, port: port, reason: "cannot set the socket timeout: \(failure)")
            }
            return fd
        }
        throw .connect(host: host, port: port, reason: lastError)
    }

    /// Waits for a non-blocking connect to finish (a signal's EINTR waits on for the
    /// time left); nil when connected, else why not.
    private static func waitConnected(_ fd: Int32, seconds: Int) -> String? {
        let deadline = clientMonotonicMilliseconds() + seconds * 1000
        while true {
            let left = deadline - clientMonotonicMilliseconds()
            guard left > 0 else { return "timed out" }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, Int32(clamping: left))
            if ready < 0 {
                if errno == EINTR { continue }
                return errnoText(errno)
            }
            if ready == 0 { return "timed out" }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length) == 0 else { return errnoText(errno) }
            return soError == 0 ? nil : errnoText(soError)
        }
    }
}

/// strerror's words for an errno value.
private func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Milliseconds on the monotonic clock (the TLS room does not use SystemSupport).
private func clientMonotonicMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}
