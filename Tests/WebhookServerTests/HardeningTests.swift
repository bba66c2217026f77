import Foundation
import Glibc
import TestSupport
import TLS
import WebhookServer
import XCTest

/// One regression test per finding of the hardening review
/// that concerns the running server. The others: rules in StreamRulesTests.BoundsTests
/// and AdmissionTests.AnswerBoundsTests, TLS in TLSTests.TLSContextTests, the process in
/// EndToEndTests.CommandHardeningTests.
final class HardeningTests: XCTestCase {
    override func setUp() {
        signal(SIGPIPE, SIG_IGN)
    }

    private func validateRequest(_ body: String, connection: String? = nil, version: String = "1.1") -> String {
        let close = connection.map { "Connection: \($0)\r\n" } ?? ""
        return "POST /validate HTTP/\(version)\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\(close)\r\n\(body)"
    }

    private static let review = (try? String(contentsOf: fixtures.appendingPathComponent("review-kafka.json"), encoding: .utf8)) ?? ""

    /// Finding 3: out of descriptors, a loop whose spare descriptor was taken by another
    /// thread spun at 100 % on its level-triggered listener. Here a thread takes every
    /// descriptor freed while clients connect; afterwards the loops must be idle, and
    /// serve again once descriptors are back.
    func testOutOfDescriptorsNoLoopSpins() throws {
        let server = try RunningServer()
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        XCTAssertEqual(getrlimit(resource, &limit), 0)
        let saved = limit
        defer {
            var restore = saved
            setrlimit(resource, &restore)
        }
        // A client in another process, started now, connecting when the directory appears.
        let go = try temporaryDirectory("descriptors") + "/go"
        let script = """
        import os, socket, time
        while not os.path.exists('\(go)'): time.sleep(0.01)
        held = []
        for _ in range(40):
            try:
                s = socket.create_connection(('127.0.0.1', \(server.port)), timeout=2); held.append(s)
            except OSError: pass
        time.sleep(3)
        """
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", "-c", script]
        try client.run()
        // Leave this process no free descriptor, and keep taking any that is freed.
        let openNow = (try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).count
        limit.rlim_cur = rlim_t(openNow + 16)
        XCTAssertEqual(setrlimit(resource, &limit), 0)
        var taken: [Int32] = []
        defer { taken.forEach { close($0) } }
        while case let fd = open("/dev/null", O_RDONLY), fd >= 0 { taken.append(fd) }
        XCTAssertEqual(mkdir(go, 0o755), 0)
        let stealUntil = LinearClock.now + 1.5
        while LinearClock.now < stealUntil {
            let fd = open("/dev/null", O_RDONLY)
            if fd >= 0 { taken.append(fd) }
        }
        // Now measure what the loops burn while nothing can be accepted.
        let before = processCPUSeconds()
        usleep(1_000_000)
        let burnt = processCPUSeconds() - before
        XCTAssertLessThan(burnt, 0.3, "the event loops spun: \(burnt) s of CPU in 1 s")
        taken.forEach { close($0) }
        taken.removeAll()
        var restore = saved
        setrlimit(resource, &restore)
        client.waitUntilExit()
        usleep(300_000)
        try server.assertHealthy()
    }

    /// Finding 5: the watcher took its baseline after the initial load, so a rotation in
    /// between was missed until the next one.
    func testRotationBetweenLoadAndStartIsServed() throws {
        let directory = try temporaryDirectory("baseline")
        let first = try DevelopmentCertificates.generate(in: directory)
        let firstSerial = try serial(of: first.certificate)
        // The server's init loads the pair; the files rotate before start().
        let server = try RunningServer(certificates: first, startNow: false) { $0.certificatePollInterval = .milliseconds(200) }
        try DevelopmentCertificates.generate(in: directory)
        let rotatedSerial = try serial(of: first.certificate)
        XCTAssertNotEqual(firstSerial, rotatedSerial)
        try server.start()
        var seen: UInt64?
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            seen = requestOnNewConnection(port: server.port, caFile: first.caCertificate)?.1
            if seen == rotatedSerial { break }
            usleep(100_000)
        }
        XCTAssertEqual(seen, rotatedSerial, "the rotation before start() was never picked up")
    }

    func testWildcardClientCertificateDoesNotStandForARequiredName() throws {
        let serving = try DevelopmentCertificates.generate(in: try temporaryDirectory("wild-server"))
        let clients = try temporaryDirectory("wild-clients")
        let ca = try DevelopmentCertificates.generate(in: clients + "/ca", dnsNames: ["exact.example.com"], ipAddresses: [])
        let server = try RunningServer(certificates: serving) {
            $0.tls.clientCAPath = ca.caCertificate
            $0.tls.clientNames = ["webhook.example.com"]
        }
        let wildcard = try clientCertificate(in: clients + "/wildcard", name: "*.example.com", signedBy: ca)
        let result = try server.curl(["--cert", wildcard.certificate, "--key", wildcard.privateKey, "-o", "/dev/null",
                                      "-w", "%{http_code}", server.url("/healthz")])
        XCTAssertNotEqual(result.stdout, "200", "a wildcard certificate was accepted for webhook.example.com")
    }

    /// Finding 8: HTTP/1.0 with chunked framing was kept alive; kept-alive answers to
    /// HTTP/1.0 clients lacked `Connection: keep-alive`.
    func testHTTP10ChunkedClosesAndKeepAliveIsAnnounced() throws {
        let server = try RunningServer()
        let kept = try TestTLSClient(port: server.port, caFile: server.certificates.caCertificate)
        kept.write("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        let first = try XCTUnwrap(kept.readResponse())
        XCTAssertTrue(first.headers.contains("Connection: keep-alive"), first.headers)
        kept.write("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(kept.readResponse()?.status, 200, "the 1.0 connection was kept")

        let chunked = try TestTLSClient(port: server.port, caFile: server.certificates.caCertificate)
        let body = Self.review
        chunked.write("POST /validate HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n")
        let answer = try XCTUnwrap(chunked.readResponse())
        XCTAssertEqual(answer.status, 200)
        XCTAssertTrue(answer.headers.contains("Connection: close"), answer.headers)
        XCTAssertTrue(chunked.isClosedByPeer())
    }

    /// Finding 10: after `Connection: close` the server closed without lingering, so bytes
    /// the client had already sent could reset the connection and destroy the answer.
    func testCloseAfterConnectionCloseLingersSoTheAnswerArrives() throws {
        let server = try RunningServer()
        for _ in 0..<20 {
            let client = try TestTLSClient(port: server.port, caFile: server.certificates.caCertificate)
            // The request that closes, then a large pipelined request the server never reads.
            let junk = validateRequest(String(repeating: " ", count: 200_000) + Self.review)
            client.write(validateRequest(Self.review, connection: "close") + junk)
            let answer = client.readResponse()
            XCTAssertEqual(answer?.status, 200, "the answer before the close was lost")
        }
    }

    /// Finding 10, second half: after a client half-close, a large answer was flushed once
    /// and cut when the socket buffer filled.
    func testHalfClosedClientGetsEveryAnswer() throws {
        let server = try RunningServer()
        let client = try TestTLSClient(port: server.port, caFile: server.certificates.caCertificate, timeoutSeconds: 10)
        // Each answer is a denial of about 60 KB; 100 of them fill any socket buffer.
        let entries = (0..<300).map { #"{"name":"Bad_\#(String(repeating: "n", count: 80))\#($0)"}"# }.joined(separator: ",")
        let denied = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"AtlasStreamInstance"},"operation":"CREATE","namespace":"a","object":{"metadata":{"name":"i"},"spec":{"name":"i","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":[\#(entries)]}}}}"#
        XCTAssertTrue(client.write(String(repeating: validateRequest(denied), count: 100)))
        shutdown(client.fd, Int32(SHUT_WR))
        usleep(500_000)  // let the server's output back up before reading
        var answered = 0
        while answered < 100, let response = client.readResponse() {
            XCTAssertEqual(response.status, 200)
            answered += 1
        }
        XCTAssertEqual(answered, 100)
    }

    /// Finding 11: a reloaded certificate was checked for expiry but not for notBefore.
    func testCertificateNotYetValidIsRefusedThenTakenWhenValid() throws {
        let directory = try temporaryDirectory("not-before")
        let first = try DevelopmentCertificates.generate(in: directory)
        let server = try RunningServer(certificates: first) { $0.certificatePollInterval = .milliseconds(200) }
        // Valid two seconds from now: refused at first, served once valid.
        let next = try DevelopmentCertificates.generate(in: directory + "/next", validFrom: 2)
        let bothCAs = directory + "/both-ca.crt"
        try (String(contentsOfFile: first.caCertificate, encoding: .utf8) + String(contentsOfFile: next.caCertificate, encoding: .utf8))
            .write(toFile: bothCAs, atomically: true, encoding: .utf8)
        let firstSerial = requestOnNewConnection(port: server.port, caFile: bothCAs)?.1
        XCTAssertNotNil(firstSerial)
        try install(next, over: first)
        let soon = try serial(of: next.certificate)
        usleep(800_000)
        XCTAssertEqual(requestOnNewConnection(port: server.port, caFile: bothCAs)?.1, firstSerial,
                       "a certificate not valid yet was served")
        var seen: UInt64?
        let deadline = Date().addingTimeInterval(6)
        while Date() < deadline && seen != soon {
            seen = requestOnNewConnection(port: server.port, caFile: bothCAs)?.1
            usleep(200_000)
        }
        XCTAssertEqual(seen, soon, "the certificate was not taken once valid")
    }

    // MARK: - Helpers

    /// Puts `pair`'s certificate and key where `served` has them, each by an atomic rename.
    private func install(_ pair: DevelopmentCertificates.Paths, over served: DevelopmentCertificates.Paths) throws {
        for (from, to) in [(pair.privateKey, served.privateKey), (pair.certificate, served.certificate)] {
            try? FileManager.default.removeItem(atPath: to + ".new")
            try FileManager.default.copyItem(atPath: from, toPath: to + ".new")
            XCTAssertEqual(rename(to + ".new", to), 0)
        }
    }

    private func serial(of certificate: String) throws -> UInt64 {
        let text = try runProcess("/usr/bin/openssl", ["x509", "-in", certificate, "-noout", "-serial"]).stdout
        return try XCTUnwrap(UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: ""), radix: 16))
    }
}


