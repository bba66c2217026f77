import Foundation
import Glibc
import HTTPServer
import TLS
import TestSupport
import XCTest

/// Production operation against the real server: deadlines under attack, certificate
/// rotation, mTLS, graceful drain, metrics.
final class OperationsTests: XCTestCase {
    let review = fixtures.appendingPathComponent("review-kafka.json").path

    func testSlowlorisIsClosedAtTheHeaderDeadlineWhileOthersAreServed() throws {
        let server = try RunningServer { $0.timeouts.requestHeaders = .milliseconds(1_500) }
        var attackers: [TestTLSClient] = []
        for _ in 0..<200 {
            attackers.append(try TestTLSClient(port: server.port, caFile: server.certificates.caCertificate))
        }
        let header = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
        let start = Date()
        var served = 0
        var slowest = 0.0
        // One byte a second from every attacker; a real client every 250 ms in between.
        for second in 0..<3 {
            for attacker in attackers {
                attacker.write(String(decoding: [header[second]], as: UTF8.self))
            }
            for _ in 0..<4 {
                let begin = Date()
                if requestOnNewConnection(port: server.port, caFile: server.certificates.caCertificate)?.0 == 200 { served += 1 }
                slowest = max(slowest, Date().timeIntervalSince(begin))
                usleep(250_000)
            }
        }
        XCTAssertEqual(served, 12, "a normal client keeps being served")
        XCTAssertLessThan(slowest, 0.5)
        let closed = attackers.filter { $0.isClosedByPeer() }.count
        XCTAssertEqual(closed, 200, "every trickling connection is closed")
        XCTAssertLessThan(Date().timeIntervalSince(start), 6)
        let metrics = try server.curl([server.url("/metrics")]).stdout
        XCTAssertTrue(metrics.contains("atlas_stream_webhook_timed_out_connections_total 200"), metrics)
    }

    func testRequestTimeoutQueryBoundsTheBodyWait() throws {
        let server = try RunningServer()  // body deadline 30 s
        let client = try TestTLSClient(port: server.port, caFile: server.certificates.caCertificate)
        client.write("POST /validate?timeout=300ms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        let start = Date()
        XCTAssertTrue(client.isClosedByPeer())
        let waited = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(waited, 0.25)
        XCTAssertLessThan(waited, 1.0, "closed at the request's own timeout, not the 30 s default")
    }

    /// Lays out certificates the way a Kubernetes Secret volume does: `tls.crt` ->
    /// `..data/tls.crt`, `..data` -> a timestamped directory, swapped by renaming a symlink.
    final class SecretVolume {
        let root: String
        private var generation = 0

        init() throws {
            root = try temporaryDirectory("secret-volume")
        }

        @discardableResult
        func publish(_ make: (String) throws -> Void) throws -> String {
            generation += 1
            let version = "..2026_11_29_\(generation)"
            try make(root + "/" + version)
            let tmp = root + "/..data_tmp"
            unlink(tmp)
            symlink(version, tmp)
            rename(tmp, root + "/..data")
            for file in ["tls.crt", "tls.key", "ca.crt"] where access(root + "/" + file, F_OK) != 0 {
                symlink("..data/" + file, root + "/" + file)
            }
            return root + "/" + version
        }

        var paths: DevelopmentCertificates.Paths {
            DevelopmentCertificates.paths(in: root)
        }
    }

    func testRotationUnderLoadLosesNoRequestAndServesTheNewCertificate() throws {
        let volume = try SecretVolume()
        let first = try volume.publish { try DevelopmentCertificates.generate(in: $0) }
        let caFile = first + "/ca.crt"  // keep the first CA: the second pair is signed by its own CA
        let server = try RunningServer(certificates: volume.paths)
        let oldSerial = try XCTUnwrap(requestOnNewConnection(port: server.port, caFile: caFile)?.1)

        let tally = Tally()
        let stop = ManagedAtomicFlag()
        let second = try temporaryDirectory("second")
        let secondPaths = try DevelopmentCertificates.generate(in: second)
        // Trust both CAs while the load runs.
        let bundle = second + "/both.crt"
        try (String(contentsOfFile: caFile, encoding: .utf8) + String(contentsOfFile: secondPaths.caCertificate, encoding: .utf8))
            .write(toFile: bundle, atomically: true, encoding: .utf8)
        let port = server.port
        let load = Thread {
            let keepAlive = try? TestTLSClient(port: port, caFile: bundle)
            while !stop.isSet {
                if let (status, _) = requestOnNewConnection(port: port, caFile: bundle), status == 200 {
                    tally.add("ok")
                } else {
                    tally.add("failed", note: "new connection")
                }
                if let keepAlive, keepAlive.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), keepAlive.readResponse()?.status == 200 {
                    tally.add("ok")
                } else {
                    tally.add("failed", note: "kept-alive connection")
                }
            }
            stop.done()
        }
        load.start()
        usleep(300_000)
        try volume.publish { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in ["tls.crt", "tls.key", "ca.crt"] {
                try FileManager.default.copyItem(atPath: second + "/" + file, toPath: directory + "/" + file)
            }
        }
        var newSerial: UInt64?
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            if let serial = requestOnNewConnection(port: port, caFile: bundle)?.1, serial != oldSerial {
                newSerial = serial
                break
            }
            usleep(50_000)
        }
        usleep(300_000)
        stop.set()
        stop.waitDone()
        XCTAssertNotNil(newSerial, "new connections present the new certificate")
        XCTAssertGreaterThan(tally["ok"], 20)
        XCTAssertEqual(tally["failed"], 0, "failures: \(tally.examples)")
        let metrics = try runProcess("/usr/bin/curl", ["-sS", "--cacert", bundle, server.url("/metrics")]).stdout
        XCTAssertTrue(metrics.contains("atlas_stream_webhook_certificate_reloads_total{result=\"success\"} 1"), metrics)
    }

    func testABadNewCertificateIsRefusedAndTheOldKeepsServing() throws {
        let volume = try SecretVolume()
        let first = try volume.publish { try DevelopmentCertificates.generate(in: $0) }
        let server = try RunningServer(certificates: volume.paths)
        let caFile = first + "/ca.crt"
        let oldSerial = try XCTUnwrap(requestOnNewConnection(port: server.port, caFile: caFile)?.1)
        // A new certificate with the old key: mismatched.
        let other = try temporaryDirectory("other")
        try DevelopmentCertificates.generate(in: other)
        try volume.publish { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: other + "/tls.crt", toPath: directory + "/tls.crt")
            try FileManager.default.copyItem(atPath: first + "/tls.key", toPath: directory + "/tls.key")
            try FileManager.default.copyItem(atPath: first + "/ca.crt", toPath: directory + "/ca.crt")
        }
        var refused = false
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline && !refused {
            let metrics = try runProcess("/usr/bin/curl", ["-sS", "--cacert", caFile, server.url("/metrics")]).stdout
            refused = metrics.contains("atlas_stream_webhook_certificate_reloads_total{result=\"failure\"} 1")
            usleep(100_000)
        }
        XCTAssertTrue(refused, "the reload failure is counted")
        XCTAssertEqual(requestOnNewConnection(port: server.port, caFile: caFile)?.1, oldSerial, "the old certificate keeps serving")
        XCTAssertEqual(requestOnNewConnection(port: server.port, caFile: caFile)?.0, 200)
        XCTAssertTrue(server.server.isReady)
    }

    func testMutualTLS() throws {
        let serverDir = try temporaryDirectory("mtls-server")
        let serving = try DevelopmentCertificates.generate(in: serverDir)
        let clientsDir = try temporaryDirectory("mtls-clients")
        let right = try DevelopmentCertificates.generate(in: clientsDir + "/right", dnsNames: ["webhook-client"], ipAddresses: [])
        let server = try RunningServer(certificates: serving) {
            $0.tls.clientCAPath = right.caCertificate
            $0.tls.clientNames = ["webhook-client", "kube-apiserver"]
        }
        // A sibling certificate from the same CA with another name.
        let wrongName = try clientCertificate(in: clientsDir + "/wrong-name", name: "intruder", signedBy: right)
        let otherCA = try DevelopmentCertificates.generate(in: clientsDir + "/other-ca", dnsNames: ["webhook-client"], ipAddresses: [])

        func status(_ certificate: (String, String)?) throws -> String {
            let identity = certificate.map { ["--cert", $0.0, "--key", $0.1] } ?? []
            let result = try server.curl(identity + ["-w", "%{http_code}", "-o", "/dev/null", server.url("/healthz")])
            return result.status == 0 ? result.stdout : "refused"
        }
        XCTAssertEqual(try status(nil), "refused", "no client certificate")
        XCTAssertEqual(try status((otherCA.certificate, otherCA.privateKey)), "refused", "a certificate from another CA")
        XCTAssertEqual(try status((wrongName.certificate, wrongName.privateKey)), "refused", "a name not allowed")
        XCTAssertEqual(try status((right.certificate, right.privateKey)), "200")
        try? FileManager.default.removeItem(atPath: clientsDir)
    }

    func testGracefulDrainUnderLoad() throws {
        let directory = try temporaryDirectory("drain")
        let certificates = try DevelopmentCertificates.generate(in: directory)
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--shutdown-delay", "1s", "--drain-timeout", "3s"])
        let port = server.port
        let caFile = certificates.caCertificate
        let tally = Tally()
        let stop = ManagedAtomicFlag()
        let signalledAt = LockedDate()
        // Keep-alive POSTs; a `Connection: close` answer means reconnect for the next one.
        let load = Thread {
            var client: TestTLSClient?
            let body = (try? String(contentsOfFile: fixtures.appendingPathComponent("review-kafka.json").path, encoding: .utf8)) ?? ""
            while !stop.isSet {
                let sentAt = Date()
                if client == nil { client = try? TestTLSClient(port: port, caFile: caFile) }
                guard let connection = client else {
                    // Refused: only acceptable once the listener has closed (after the shutdown delay).
                    tally.add(signalledAt.elapsed(at: sentAt).map { $0 > 0.9 } == true ? "refused-after-close" : "failed",
                              note: "connect at +\(signalledAt.elapsed(at: sentAt) ?? -1)")
                    usleep(20_000)
                    continue
                }
                let sent = connection.write("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                let response = sent ? connection.readResponse() : nil
                if response?.status == 200 {
                    tally.add("ok")
                    if response?.headers.contains("Connection: close") == true { client = nil; tally.add("closed-by-server") }
                } else if signalledAt.elapsed(at: sentAt).map({ $0 > 0.9 }) == true && !sent {
                    tally.add("refused-after-close")
                    client = nil
                } else {
                    tally.add("failed", note: "request at +\(signalledAt.elapsed(at: sentAt) ?? -1)")
                    client = nil
                }
            }
            stop.done()
        }
        load.start()
        usleep(500_000)
        signalledAt.set()
        kill(server.process.processIdentifier, SIGTERM)
        usleep(150_000)
        let ready = try runProcess("/usr/bin/curl", ["-sS", "--cacert", caFile, "-w", "%{http_code}", "-o", "/dev/null",
                                                     "https://localhost:\(port)/readyz"])
        XCTAssertEqual(ready.stdout, "503", "readiness turns off at once")
        let healthy = try runProcess("/usr/bin/curl", ["-sS", "--cacert", caFile, "-o", "/dev/null", "-w", "%{http_code}",
                                                       "https://localhost:\(port)/healthz"])
        XCTAssertEqual(healthy.stdout, "200", "serving continues during the shutdown delay")
        let exitBy = Date().addingTimeInterval(6)
        while server.process.isRunning && Date() < exitBy { usleep(20_000) }
        stop.set()
        stop.waitDone()
        XCTAssertFalse(server.process.isRunning, "exits within shutdown delay + drain timeout")
        XCTAssertEqual(server.process.terminationStatus, 0)
        let elapsed = signalledAt.elapsed(at: Date()) ?? 0
        XCTAssertLessThan(elapsed, 6)
        XCTAssertGreaterThan(tally["ok"], 50)
        XCTAssertGreaterThanOrEqual(tally["closed-by-server"], 1, "in-flight requests are answered with Connection: close")
        XCTAssertEqual(tally["failed"], 0, "failures: \(tally.examples)")
    }

    func testMetricsParseAsPrometheusTextAndMove() throws {
        let server = try RunningServer()
        func scrape() throws -> String { try server.curl([server.url("/metrics")]).stdout }
        let before = try scrape()
        for _ in 0..<2 {
            _ = try server.curl(["-H", "Content-Type: application/json", "--data-binary", "@\(review)", server.url("/mutate")])
        }
        let after = try scrape()
        XCTAssertFalse(before.contains("webhook=\"/mutate\"} 2"))
        XCTAssertTrue(after.contains("controller_runtime_webhook_requests_total{code=\"200\",webhook=\"/mutate\"} 2"), after)
        let parse = try runProcess(try testPython(), ["-c", """
        import sys
        from prometheus_client.parser import text_string_to_metric_families
        families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
        hist = families["controller_runtime_webhook_latency_seconds"]
        assert hist.type == "histogram", hist.type
        count = [s for s in hist.samples if s.name.endswith("_count") and s.labels["webhook"] == "/mutate"][0]
        assert count.value == 2, count
        print(len(families))
        """], stdin: Data(after.utf8))
        XCTAssertEqual(parse.status, 0, parse.stderr)
        XCTAssertGreaterThanOrEqual(Int(parse.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 9)
    }
}

/// A flag one thread sets and another polls, plus a completion signal.
final class ManagedAtomicFlag: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value = false
    private let finished = DispatchSemaphore(value: 0)

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }

    func done() { finished.signal() }
    func waitDone() { finished.wait() }
}

/// A moment one thread records and others measure from.
final class LockedDate: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var date: Date?

    func set() {
        lock.lock()
        date = Date()
        lock.unlock()
    }

    /// Seconds from the recorded moment to `moment`, nil before it was recorded.
    func elapsed(at moment: Date) -> Double? {
        lock.lock()
        defer { lock.unlock() }
        return date.map { moment.timeIntervalSince($0) }
    }
}
