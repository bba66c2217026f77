import COpenSSL
import Glibc

/// The lowest TLS version a server accepts.
public enum TLSMinimumVersion: String, Sendable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"

    var openSSLValue: Int32 {
        switch self {
        case .tls12: return TLS1_2_VERSION
        case .tls13: return TLS1_3_VERSION
        }
    }
}

/// What a server context is built from.
public struct TLSConfiguration: Sendable, Equatable {
    public var certificateChainPath: String
    public var privateKeyPath: String
    public var minimumVersion: TLSMinimumVersion
    /// With a CA bundle, clients must present a certificate it verifies (mTLS).
    public var clientCAPath: String?
    /// With mTLS: the client certificate must name one of these (DNS SAN or CN).
    public var clientNames: [String]

    public init(certificateChainPath: String, privateKeyPath: String, minimumVersion: TLSMinimumVersion = .tls12,
                clientCAPath: String? = nil, clientNames: [String] = []) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.minimumVersion = minimumVersion
        self.clientCAPath = clientCAPath
        self.clientNames = clientNames
    }

    /// Every file the context is built from.
    public var files: [String] {
        [certificateChainPath, privateKeyPath] + (clientCAPath.map { [$0] } ?? [])
    }

    /// The same certificate, key and versions, asking clients for no certificate.
    public var withoutClientCertificates: TLSConfiguration {
        TLSConfiguration(certificateChainPath: certificateChainPath, privateKeyPath: privateKeyPath, minimumVersion: minimumVersion)
    }
}

/// A server `SSL_CTX`: TLS 1.2+ (or 1.3 only), ECDHE AEAD suites, no compression,
/// no renegotiation, TLS 1.3 resumption from stateless tickets, ALPN `http/1.1`, and a certificate
/// chain whose key has been checked against it.
///
/// `@unchecked Sendable`: the context is fully configured in `init` and then only
/// read; OpenSSL allows `SSL_new` on a shared context from any thread.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    public let configuration: TLSConfiguration
    /// Seconds since the epoch when the leaf certificate expires, if readable.
    public let certificateNotAfter: Int?

    /// ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2; TLS 1.3 suites are all AEAD.
    static let tls12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" +
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" +
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    /// The TLS 1.3 suites in the order of the 1.2 list and of Go's crypto/tls (the
    /// apiserver's side): AES-128-GCM first, whose ten rounds cost less per record than
    /// AES-256's fourteen (OpenSSL's own default puts AES-256 first).
    static let tls13Ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

    public init(configuration: TLSConfiguration) throws(TLSError) {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw .contextCreationFailed(openSSLErrors())
        }
        // A throwing initializer runs no deinit: the context is freed here unless it
        // was handed over whole.
        do {
            certificateNotAfter = try TLSContext.configure(ctx, configuration)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        self.context = ctx
        self.configuration = configuration
    }

    /// Sets up `ctx` from `configuration`; returns the leaf certificate's notAfter.
    private static func configure(_ ctx: OpaquePointer, _ configuration: TLSConfiguration) throws(TLSError) -> Int? {
        // Unexpected EOF is reported as a clean close: the HTTP parser, not TLS, decides
        // whether a request was complete (Content-Length and chunked framing prove it).
        // Tickets only for TLS 1.3 (see `ticketsForTLS13Only`): NO_TICKET is lifted per
        // connection when the ClientHello offers 1.3.
        let options = COPENSSL_OP_NO_COMPRESSION | COPENSSL_OP_NO_RENEGOTIATION | COPENSSL_OP_CIPHER_SERVER_PREFERENCE
            | COPENSSL_OP_NO_TICKET | COPENSSL_OP_IGNORE_UNEXPECTED_EOF
        SSL_CTX_set_options(ctx, options)
        guard copenssl_ctx_set_min_proto_version(ctx, configuration.minimumVersion.openSSLValue) == 1,
              SSL_CTX_set_cipher_list(ctx, TLSContext.tls12Ciphers) == 1,
              SSL_CTX_set_ciphersuites(ctx, TLSContext.tls13Ciphersuites) == 1,
              copenssl_ctx_set1_groups_list(ctx, "X25519:P-256:P-384") == 1 else {
            throw .contextCreationFailed(openSSLErrors())
        }
        _ = copenssl_ctx_set_mode(ctx, copenssl_mode_server_io())
        // Read whole records (and what follows) in one read(2) instead of header, then body.
        copenssl_ctx_set_read_ahead(ctx, 1)
        // No session cache: it would hold about 1 KiB per recent client for minutes, spread
        // over the heap. Stateless TLS 1.3 tickets instead (OpenSSL's default two).
        copenssl_ctx_disable_session_cache(ctx)
        SSL_CTX_set_client_hello_cb(ctx, ticketsForTLS13Only, nil)
        let sessionContext = Array("atlas-stream-webhook".utf8)
        _ = SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count))
        SSL_CTX_set_alpn_select_cb(ctx, selectHTTP11, nil)

        guard SSL_CTX_use_certificate_chain_file(ctx, configuration.certificateChainPath) == 1 else {
            throw .certificateUnreadable(path: configuration.certificateChainPath, reason: openSSLErrors())
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, configuration.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            // OpenSSL checks the key against the loaded certificate here already.
            if ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH {
                ERR_clear_error()
                throw .privateKeyDoesNotMatchCertificate(certificate: configuration.certificateChainPath,
                                                         key: configuration.privateKeyPath)
            }
            throw .privateKeyUnreadable(path: configuration.privateKeyPath, reason: openSSLErrors())
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            ERR_clear_error()
            throw .privateKeyDoesNotMatchCertificate(certificate: configuration.certificateChainPath,
                                                     key: configuration.privateKeyPath)
        }
        let leaf = SSL_CTX_get0_certificate(ctx)
        let notAfter = leaf.flatMap { validitySeconds(X509_get0_notAfter($0)) }
        if let notAfter, notAfter < time(nil) {
            throw .certificateExpired(path: configuration.certificateChainPath)
        }
        if let notBefore = leaf.flatMap({ validitySeconds(X509_get0_notBefore($0)) }), notBefore > time(nil) {
            throw .certificateNotYetValid(path: configuration.certificateChainPath)
        }
        if let caPath = configuration.clientCAPath {
            try requireClientCertificates(ctx, caPath: caPath, names: configuration.clientNames)
        }
        return notAfter
    }

    /// mTLS: verify client certificates against the CA bundle and, if names are given,
    /// require one of them as a DNS SAN or the CN. A client without a certificate, with
    /// one from another CA, or with another name fails the handshake.
    private static func requireClientCertificates(_ ctx: OpaquePointer, caPath: String, names: [String]) throws(TLSError) {
        // An empty name would match nothing and pin nothing; a pattern is not a name.
        if let bad = names.first(where: { $0.isEmpty || $0.contains("*") }) {
            throw .contextCreationFailed("client name \"\(bad)\" is not an exact name")
        }
        guard SSL_CTX_load_verify_locations(ctx, caPath, nil) == 1,
              let caNames = SSL_load_client_CA_file(caPath) else {
            throw .clientCAUnreadable(path: caPath, reason: openSSLErrors())
        }
        SSL_CTX_set_client_CA_list(ctx, caNames)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        guard !names.isEmpty, let parameters = SSL_CTX_get0_param(ctx) else { return }
        // A wildcard in the client's certificate (`*.example.com`) does not stand for a
        // required name: the client must carry the name itself.
        X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS))
        for name in names where X509_VERIFY_PARAM_add1_host(parameters, name, 0) != 1 {
            throw .contextCreationFailed("cannot require client name \(name): \(openSSLErrors())")
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// A new server session over a connected, non-blocking socket.
    public func makeSession(socket: Int32) -> TLSSession? {
        ERR_clear_error()
        guard let ssl = SSL_new(context) else { return nil }
        guard SSL_set_fd(ssl, socket) == 1 else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_accept_state(ssl)
        return TLSSession(ssl: ssl)
    }
}

/// ALPN: pick `http/1.1` when the client offers it; otherwise carry on without ALPN
/// (never abort the handshake over it). The selection points into the client's own
/// list, which OpenSSL copies before the callback's input goes away.
private func selectHTTP11(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?, _ input: UnsafePointer<UInt8>?, _ inputLength: UInt32,
    _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let input, let out, let outLength else { return SSL_TLSEXT_ERR_NOACK }
    let wanted: [UInt8] = Array("http/1.1".utf8)
    var i = 0
    let n = Int(inputLength)
    while i < n {
        let length = Int(input[i])
        let begin = i + 1
        guard begin + length <= n else { break }
        if length == wanted.count {
            var same = true
            for k in 0..<length where input[begin + k] != wanted[k] {
                same = false
                break
            }
            if same {
                out.pointee = input + begin
                outLength.pointee = UInt8(length)
                return SSL_TLSEXT_ERR_OK
            }
        }
        i = begin + length
    }
    return SSL_TLSEXT_ERR_NOACK
}

/// Resumption for TLS 1.3 only. A 1.3 resumption still runs a fresh ECDHE exchange
/// (OpenSSL accepts only psk_dhe_ke), so the ticket key, which lives as long as the
/// context, cannot open recorded traffic; a TLS 1.2 ticket would expose the session's
/// master secret, so 1.2 clients get none. Runs on the ClientHello, before the version
/// is chosen: a client that offers 1.3 gets 1.3 from this server.
private func ticketsForTLS13Only(
    _ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    var versions: UnsafePointer<UInt8>?
    var length = 0
    guard let ssl, SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_supported_versions), &versions, &length) == 1,
          let versions, length > 0 else { return SSL_CLIENT_HELLO_SUCCESS }
    // One length byte, then two bytes per version.
    let end = min(length, 1 + Int(versions[0]))
    var i = 1
    while i + 1 < end {
        if versions[i] == 0x03 && versions[i + 1] == 0x04 {
            SSL_clear_options(ssl, COPENSSL_OP_NO_TICKET)
            break
        }
        i += 2
    }
    return SSL_CLIENT_HELLO_SUCCESS
}

/// A certificate validity bound (notBefore, notAfter) as seconds since the epoch.
func validitySeconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int? {
    guard let time else { return nil }
    var tm = Glibc.tm()
    guard ASN1_TIME_to_tm(time, &tm) == 1 else { return nil }
    return Int(timegm(&tm))
}
