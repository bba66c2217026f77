import COpenSSL
import Foundation
import Glibc
import Synchronization
@testable import TLS
import TestSupport
import XCTest

/// The cluster client's TLS: the context source that follows rotated files, the name a
/// connection verifies and sends, keepalive, and setup failures that are errors.
final class TLSClientTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try temporaryDirectory("tls-client")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Reloading

    /// The CA file is replaced (a rotated cluster CA): the same source's next context
    /// trusts the new CA and no longer the old; a bad replacement keeps the working context
    /// and is reported once.
    func testRotatedCertificateAuthorityIsTrustedWithoutANewSource() throws {
        let old = try DevelopmentCertificates.generate(in: directory + "/old")
        let new = try DevelopmentCertificates.generate(in: directory + "/new")
        let oldServer = try TestTLSServer(certificates: old)
        let newServer = try TestTLSServer(certificates: new)
        defer { oldServer.stop(); newServer.stop() }
        let caPath = directory + "/ca.crt"
        try replace(caPath, with: try contents(old.caCertificate))

        let events = Events()
        let source = try TLSClientContextSource(sources: TLSClientSources(trustedCertificates: .file(caPath)),
                                                checkIntervalMilliseconds: 0, onReload: { events.add($0) })
        XCTAssertEqual(source.generation, 1)
        XCTAssertEqual(try get(source.current(), oldServer), "ok")
        XCTAssertThrowsError(try get(source.current(), newServer)) { error in
            XCTAssertTrue("\(error)".contains("unable to get local issuer certificate"), "\(error)")
        }
        XCTAssertEqual(events.list, [])

        // Rotated (an atomic rename, as a Secret volume's symlink swap is).
        try replace(caPath, with: try contents(new.caCertificate))
        XCTAssertEqual(try get(source.current(), newServer), "ok")
        XCTAssertThrowsError(try get(source.current(), oldServer))
        XCTAssertEqual(source.generation, 2)
        XCTAssertEqual(events.list, [.reloaded(files: [caPath])])
        XCTAssertNil(source.lastReloadError)

        // Garbage written in place: the working context stays; reported once, not per call.
        let working = source.current()
        usleep(20_000)
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: caPath))
        XCTAssertTrue(source.current() === working)
        XCTAssertTrue(source.current() === working)
        XCTAssertEqual(try get(source.current(), newServer), "ok")
        XCTAssertEqual(events.list.count, 2)
        guard case .kept(let reason)? = events.list.last else { return XCTFail("\(events.list)") }
        XCTAssertTrue(reason.contains("no PEM certificate found") && reason.contains(caPath), reason)
        XCTAssertEqual(source.lastReloadError, reason)

        // A half-written bundle (the second certificate cut short) is refused, not half used.
        let bundle = try contents(new.caCertificate) + contents(old.caCertificate)
        try replace(caPath, with: Array(bundle.prefix(bundle.count - 40)))
        XCTAssertTrue(source.current() === working)
        XCTAssertEqual(events.list.count, 3)

        // The file gone (mid-rotation): kept, reported; back with both CAs: both trusted.
        try FileManager.default.removeItem(atPath: caPath)
        XCTAssertTrue(source.current() === working)
        XCTAssertTrue(source.lastReloadError?.contains("cannot read \(caPath)") == true, "\(source.lastReloadError ?? "")")
        try replace(caPath, with: bundle)
        XCTAssertEqual(try get(source.current(), oldServer), "ok")
        XCTAssertEqual(try get(source.current(), newServer), "ok")
        XCTAssertEqual(source.generation, 3)
        XCTAssertNil(source.lastReloadError)
        XCTAssertEqual(events.list.count, 5)

        // Rewritten with the same bytes: no new context.
        try replace(caPath, with: bundle)
        XCTAssertTrue(source.current() === source.current())
        XCTAssertEqual(source.generation, 3)
    }

    /// A client certificate renewed before its key: refused (mismatch) and reported, the old
    /// pair kept; the key arriving completes the reload.
    func testClientCertificateReloadsOnceItsKeyMatches() throws {
        let first = try DevelopmentCertificates.generate(in: directory + "/first")
        let second = try DevelopmentCertificates.generate(in: directory + "/second")
        let certificatePath = directory + "/client.crt", keyPath = directory + "/client.key"
        try replace(certificatePath, with: try contents(first.certificate))
        try replace(keyPath, with: try contents(first.privateKey))
        let events = Events()
        let source = try TLSClientContextSource(
            sources: TLSClientSources(trustedCertificates: .inline(try contents(first.caCertificate)),
                                      clientCertificate: .file(certificatePath), clientKey: .file(keyPath)),
            checkIntervalMilliseconds: 0, onReload: { events.add($0) })
        let original = source.current()

        try replace(certificatePath, with: try contents(second.certificate))
        XCTAssertTrue(source.current() === original)
        XCTAssertTrue(source.lastReloadError?.contains("does not match") == true, "\(source.lastReloadError ?? "")")
        XCTAssertEqual(events.list.count, 1)

        try replace(keyPath, with: try contents(second.privateKey))
        XCTAssertFalse(source.current() === original)
        XCTAssertEqual(source.generation, 2)
        XCTAssertNil(source.lastReloadError)
        XCTAssertEqual(events.list.last, .reloaded(files: [keyPath]))
    }

    /// Files are looked at no more than once per interval.
    func testChecksAreRateLimited() throws {
        let a = try DevelopmentCertificates.generate(in: directory + "/a")
        let b = try DevelopmentCertificates.generate(in: directory + "/b")
        let caPath = directory + "/ca.crt"
        try replace(caPath, with: try contents(a.caCertificate))
        let source = try TLSClientContextSource(sources: TLSClientSources(trustedCertificates: .file(caPath)),
                                                checkIntervalMilliseconds: 60_000)
        try replace(caPath, with: try contents(b.caCertificate))
        XCTAssertTrue(source.current() === source.current())
        XCTAssertEqual(source.generation, 1)
        // Inline sources never change, and a bad start is an error at once.
        let fixed = try TLSClientContextSource(sources: TLSClientSources(trustedCertificates: .inline(try contents(a.caCertificate))),
                                               checkIntervalMilliseconds: 0)
        XCTAssertTrue(fixed.current() === fixed.current())
        XCTAssertThrowsError(try TLSClientContextSource(sources: TLSClientSources(trustedCertificates: .file(directory + "/none"))))
    }

    // MARK: - Connections

    /// `verifyName` (a kubeconfig's tls-server-name): verified instead of the host
    /// connected to, and sent as SNI; the host's own name is no longer enough.
    func testVerifyNameIsVerifiedAndSentAsServerName() throws {
        let certificates = try DevelopmentCertificates.generate(in: directory + "/internal", dnsNames: ["api.internal"],
                                                                ipAddresses: [])
        let server = try TestTLSServer(certificates: certificates)
        defer { server.stop() }
        let context = try TLSClientContext(configuration: TLSClientConfiguration(
            trustedCertificatesPEM: try contents(certificates.caCertificate)))

        XCTAssertThrowsError(try get(context, server, host: "127.0.0.1")) { error in  // not in the certificate
            XCTAssertTrue("\(error)".contains("IP address mismatch"), "\(error)")
        }
        XCTAssertEqual(try get(context, server, host: "127.0.0.1", verifyName: "api.internal"), "ok")
        XCTAssertEqual(server.serverNames.last, "api.internal")
        XCTAssertThrowsError(try get(context, server, host: "127.0.0.1", verifyName: "other.internal")) { error in
            XCTAssertTrue("\(error)".contains("hostname mismatch") && "\(error)".contains("other.internal"), "\(error)")
        }
        // Names that are not printable ASCII without spaces are refused before connecting.
        for bad in ["", "api internal", "api.internal\r\nX: y"] {
            XCTAssertThrowsError(try get(context, server, host: "127.0.0.1", verifyName: bad)) { error in
                guard case .configuration? = error as? TLSClientError else { return XCTFail("\(bad): \(error)") }
            }
        }
    }

    /// Every connection has keepalive on with the documented timing, and a timeout of 0
    /// (which the kernel reads as "forever") is raised to a second. A DNS name goes as
    /// SNI, an IP address does not.
    func testKeepaliveAndTimeoutsAreSet() throws {
        let certificates = try DevelopmentCertificates.generate(in: directory + "/keepalive")
        let server = try TestTLSServer(certificates: certificates)
        defer { server.stop() }
        let context = try TLSClientContext(configuration: TLSClientConfiguration(
            trustedCertificatesPEM: try contents(certificates.caCertificate)))
        let connection = try TLSClientConnection(context: context, host: "localhost", port: Int(server.port), timeoutSeconds: 5)
        func option(_ level: Int32, _ name: Int32) -> Int32 {
            var value: Int32 = -1
            var length = socklen_t(MemoryLayout<Int32>.size)
            XCTAssertEqual(getsockopt(connection.fd, level, name, &value, &length), 0)
            return value
        }
        XCTAssertEqual(option(SOL_SOCKET, SO_KEEPALIVE), 1)
        XCTAssertEqual(option(Int32(IPPROTO_TCP), TCP_KEEPIDLE), 30)
        XCTAssertEqual(option(Int32(IPPROTO_TCP), TCP_KEEPINTVL), 10)
        XCTAssertEqual(option(Int32(IPPROTO_TCP), TCP_KEEPCNT), 3)
        connection.setTimeout(seconds: 0)
        var timeout = timeval()
        var length = socklen_t(MemoryLayout<timeval>.size)
        XCTAssertEqual(getsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, &length), 0)
        XCTAssertEqual(timeout.tv_sec, 1)
        try connection.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        XCTAssertEqual(try readAll(connection), "ok")
        XCTAssertEqual(server.serverNames.last, "localhost")
        // An IP address is verified against the certificate's addresses and sent as no SNI.
        XCTAssertEqual(try get(context, server, host: "127.0.0.1"), "ok")
        XCTAssertEqual(server.serverNames.last, "")
    }

    // MARK: - Context setup

    /// Inputs that cannot make the context asked for are errors, never a weaker context.
    func testBadInputsAreConfigurationErrors() throws {
        let certificates = try DevelopmentCertificates.generate(in: directory + "/bad")
        let ca = try contents(certificates.caCertificate)
        let certificate = try contents(certificates.certificate)
        let key = try contents(certificates.privateKey)
        func refused(_ configuration: TLSClientConfiguration, _ expected: String, line: UInt = #line) {
            XCTAssertThrowsError(try TLSClientContext(configuration: configuration), line: line) { error in
                guard case .configuration(let why)? = error as? TLSClientError else { return XCTFail("\(error)", line: line) }
                XCTAssertTrue(why.contains(expected), why, line: line)
            }
        }
        refused(TLSClientConfiguration(trustedCertificatesPEM: []), "no PEM certificate found")
        refused(TLSClientConfiguration(trustedCertificatesPEM: Array((ca + ca).dropLast(40))), "certificate authority")
        refused(TLSClientConfiguration(trustedCertificatesPEM: ca, clientCertificatePEM: certificate), "needs its key")
        refused(TLSClientConfiguration(trustedCertificatesPEM: ca, clientCertificatePEM: certificate, clientKeyPEM: ca), "client key")
        // An encrypted key is an error, never a passphrase prompt.
        let encrypted = directory + "/encrypted.key"
        let made = try runProcess("/usr/bin/openssl", ["pkey", "-in", certificates.privateKey, "-aes256", "-passout", "pass:secret",
                                                       "-out", encrypted])
        XCTAssertEqual(made.status, 0, made.stderr)
        refused(TLSClientConfiguration(trustedCertificatesPEM: ca, clientCertificatePEM: certificate,
                                       clientKeyPEM: try contents(encrypted)), "client key")
        // A bundle that repeats a certificate, and a chain after the leaf, are fine.
        XCTAssertNoThrow(try TLSClientContext(configuration: TLSClientConfiguration(
            trustedCertificatesPEM: ca + ca, clientCertificatePEM: certificate + ca, clientKeyPEM: key)))
        XCTAssertNoThrow(try TLSClientContext(configuration: TLSClientConfiguration()))
    }

    // MARK: - Helpers

    private func contents(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes a sibling file and renames it over `path`. The pause first makes the
    /// modification time differ from the last write's (file times move in clock ticks, and
    /// a renamed-over file's inode may be reused at once).
    private func replace(_ path: String, with bytes: [UInt8]) throws {
        usleep(20_000)
        try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// "ok" from `server`, over a connection to `host` verified for `verifyName`.
    private func get(_ context: TLSClientContext, _ server: TestTLSServer, host: String = "localhost",
                     verifyName: String? = nil) throws -> String {
        let connection = try TLSClientConnection(context: context, host: host, port: Int(server.port), verifyName: verifyName,
                                                 timeoutSeconds: 5)
        try connection.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
        return try readAll(connection)
    }

    private func readAll(_ connection: TLSClientConnection) throws -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try connection.read(into: $0) }
            if count == 0 { break }
            bytes += buffer.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What a source reported, in order.
private final class Events: Sendable {
    private let events = Mutex<[TLSClientContextSource.Reload]>([])
    func add(_ event: TLSClientContextSource.Reload) { events.withLock { $0.append(event) } }
    var list: [TLSClientContextSource.Reload] { events.withLock { $0 } }
}

/// A TLS server on 127.0.0.1 for these tests: each connection gets the handshake (the
/// SNI name the client sent is recorded), then "ok" and close_notify. OpenSSL objects
/// live on the server's thread only.
private final class TestTLSServer: Sendable {
    let port: UInt16
    private let listener: Int32
    private let names = Mutex<[String]>([])
    private let done = DispatchSemaphore(value: 0)

    init(certificates: DevelopmentCertificates.Paths) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO, "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.EIO, "bind/listen")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        listener = fd
        let certificate = certificates.certificate, key = certificates.privateKey
        Thread.detachNewThread { [self] in
            serve(certificate: certificate, key: key)
            done.signal()
        }
    }

    /// The SNI names of the completed handshakes so far ("" for none).
    var serverNames: [String] { names.withLock { $0 } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        done.wait()
        close(listener)
    }

    private func serve(certificate: String, key: String) {
        guard let context = SSL_CTX_new(TLS_server_method()) else { return }
        defer { SSL_CTX_free(context) }
        guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1,
              SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1 else { return }
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if let ssl = SSL_new(context) {
                SSL_set_fd(ssl, client)
                if SSL_accept(ssl) == 1 {
                    let name = SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)).map { String(cString: $0) } ?? ""
                    // Recorded before the answer: a client that has "ok" finds its name here.
                    names.withLock { $0.append(name) }
                    var request = [UInt8](repeating: 0, count: 1024)
                    _ = SSL_read(ssl, &request, Int32(request.count))
                    _ = SSL_write(ssl, "ok", 2)
                    _ = SSL_shutdown(ssl)
                }
                SSL_free(ssl)
            }
            ERR_clear_error()
            close(client)
        }
    }
}
