import Foundation
import Glibc
import TLS
import TestSupport
import XCTest

/// SPEC section 9: a stuck event loop is noticed (`/healthz` 503, logged once with its
/// request, counted) and cannot hold the process past the drain deadline; a review past
/// its request's timeout is abandoned. The debug binary's test hook `POST /test/spin`
/// (compiled only without optimization, and only with ATLAS_STREAM_WEBHOOK_TEST_HOOKS
/// set) keeps one loop busy.
final class WatchdogTests: XCTestCase {
    private var directory = ""
    private var certificates = DevelopmentCertificates.paths(in: "/nonexistent")

    override func setUpWithError() throws {
        signal(SIGPIPE, SIG_IGN)
        directory = try temporaryDirectory("watchdog")
        certificates = try DevelopmentCertificates.generate(in: directory)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func serve(_ arguments: [String]) throws -> ServeProcess {
        try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey, "--loops", "2",
                          "--log-level", "debug"] + arguments,
                         environment: ["ATLAS_STREAM_WEBHOOK_TEST_HOOKS": "1"])
    }

    /// Starts a spin on some loop; the connection is kept so the request stays in hand.
    private func spin(_ server: ServeProcess, seconds: Int) throws -> TestTLSClient {
        let client = try TestTLSClient(port: server.port, caFile: certificates.caCertificate)
        XCTAssertTrue(client.write("POST /test/spin?seconds=\(seconds) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
        return client
    }

    /// `/healthz` from a fresh connection: the status, or nil when nothing answered in time
    /// (the connection went to the stalled loop).
    private func health(_ server: ServeProcess) -> Int? {
        guard let client = try? TestTLSClient(port: server.port, caFile: certificates.caCertificate, timeoutSeconds: 0.2),
              client.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") else { return nil }
        return client.readResponse()?.status
    }

    func testStalledLoopTurnsHealthz503IsLoggedOnceAndCounted() throws {
        let server = try serve(["--loop-stall-timeout", "1s"])
        defer { server.stop() }
        XCTAssertEqual(health(server), 200)
        let spinning = try spin(server, seconds: 4)
        let started = Date()
        var unhealthy: TimeInterval?
        while Date().timeIntervalSince(started) < 3.5 {
            if health(server) == 503 {
                unhealthy = Date().timeIntervalSince(started)
                break
            }
        }
        let after = try XCTUnwrap(unhealthy, "/healthz never answered 503 while a loop spun")
        XCTAssertLessThan(after, 1 + 1, "503 within the stall timeout plus a second")
        XCTAssertTrue(server.waitForLog(#""msg":"event loop stalled""#, seconds: 2), server.log)
        XCTAssertTrue(server.log.contains("POST /test/spin"), "the log names the request: \(server.log)")
        // The spin ends: the loop answers it and health comes back.
        XCTAssertEqual(spinning.readResponse()?.status, 200)
        XCTAssertEqual(health(server), 200)
        let metrics = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate,
                                                       "https://localhost:\(server.port)/metrics"]).stdout
        XCTAssertTrue(metrics.contains("\natlas_stream_webhook_loop_stalls_total 1\n"), metrics)
        XCTAssertEqual(server.log.components(separatedBy: "event loop stalled").count - 1, 1, "logged once")
    }

    func testDrainDeadlineEndsTheProcessWithALoopStuck() throws {
        let server = try serve(["--shutdown-delay", "0s", "--drain-timeout", "2s"])
        let stuck = try spin(server, seconds: 3600)
        usleep(300_000)
        let signalled = Date()
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        let took = Date().timeIntervalSince(signalled)
        XCTAssertLessThan(took, 2 + 1, "exited \(took) s after SIGTERM with a drain timeout of 2 s")
        XCTAssertEqual(server.process.terminationReason, .exit)
        XCTAssertNotEqual(server.process.terminationStatus, 0, "a cut drain exits non-zero")
        XCTAssertTrue(server.waitForLog("drain deadline passed", seconds: 1), server.log)
        XCTAssertTrue(server.log.contains("POST /test/spin"), "the log names what was in flight: \(server.log)")
        _ = stuck
    }

    func testReviewPastItsTimeoutIsAbandonedWithA504() throws {
        let server = try serve([])
        defer { server.stop() }
        // An UPDATE whose spec comparison takes far longer than 20 ms in a debug build.
        let keys = (0..<60_000).map { #""k\#($0)":[\#($0)]"# }
        let body = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"AtlasStreamConnection"},"operation":"UPDATE","namespace":"a","object":{"spec":{"# + keys.joined(separator: ",") + #","x":1}},"oldObject":{"spec":{"x":2,"# + keys.reversed().joined(separator: ",") + "}}}}"
        let client = try TestTLSClient(port: server.port, caFile: certificates.caCertificate, timeoutSeconds: 20)
        XCTAssertTrue(client.write("POST /validate?timeout=20ms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        let answer = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(answer.status, 504, answer.body)
        XCTAssertTrue(answer.body.contains(#""reason":"Timeout""#), answer.body)
        // The same review with time to spare is decided.
        XCTAssertTrue(client.write("POST /validate?timeout=30s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        XCTAssertEqual(client.readResponse()?.status, 200)
    }
}
