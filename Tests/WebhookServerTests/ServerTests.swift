import Foundation
import Glibc
import HTTPServer
import TLS
import TestSupport
import XCTest

final class ServerTests: XCTestCase {
    let review = fixtures.appendingPathComponent("review-kafka.json").path

    func testValidateAndMutateAnswerOverVerifiedTLS() throws {
        let server = try RunningServer()
        for path in ["/validate", "/mutate", "/validate?timeout=10s"] {
            let result = try server.curl(["-H", "Content-Type: application/json", "--data-binary", "@\(review)",
                                          "-w", "\n%{http_code} %{http_version} %{ssl_verify_result}", server.url(path)])
            XCTAssertEqual(result.status, 0, result.stderr)
            let lines = result.stdout.split(separator: "\n")
            XCTAssertEqual(lines.last, "200 1.1 0", path)
            let body = try jsonObject(String(lines[0]))
            XCTAssertEqual(body["apiVersion"] as? String, "admission.k8s.io/v1")
            XCTAssertEqual(body["kind"] as? String, "AdmissionReview")
            XCTAssertNil(body["request"], "the request must not be echoed")
            let response = try XCTUnwrap(body["response"] as? [String: Any])
            XCTAssertEqual(response["uid"] as? String, "705ab4f5-6393-11e8-b7cc-42010a800002")
            XCTAssertEqual(response["allowed"] as? Bool, true)
        }
        try server.assertHealthy()
    }

    func testV1beta1IsAnsweredInV1beta1() throws {
        let server = try RunningServer()
        let text = try String(contentsOfFile: review, encoding: .utf8)
            .replacingOccurrences(of: "\"apiVersion\":\"admission.k8s.io/v1\"", with: "\"apiVersion\":\"admission.k8s.io/v1beta1\"")
        let result = try server.curl(["-H", "Content-Type: application/json", "--data-binary", "@-", server.url("/validate")],
                                     stdin: Data(text.utf8))
        XCTAssertEqual(try jsonObject(result.stdout)["apiVersion"] as? String, "admission.k8s.io/v1beta1")
    }

    func testKeepAliveReusesOneConnection() throws {
        let server = try RunningServer()
        let result = try server.curl(["-H", "Content-Type: application/json", "--data-binary", "@\(review)",
                                      "-w", "%{http_code}:%{num_connects}\n",
                                      "-o", "/dev/null", server.url("/validate"), "-o", "/dev/null", server.url("/mutate"),
                                      "-o", "/dev/null", server.url("/validate")])
        XCTAssertEqual(result.stdout, "200:1\n200:0\n200:0\n", "the second and third requests must reuse the connection")
    }

    func testChunkedUploadIsAccepted() throws {
        let server = try RunningServer()
        let result = try server.curl(["-H", "Content-Type: application/json", "-H", "Transfer-Encoding: chunked",
                                      "--data-binary", "@\(review)", "-w", "\n%{http_code}", server.url("/validate")])
        XCTAssertTrue(result.stdout.hasSuffix("\n200"), result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("\"allowed\":true"))
    }

    func testErrorRowsOfTheSpec() throws {
        let server = try RunningServer { $0.limits.maxBodyBytes = 1024 }
        func status(_ arguments: [String]) throws -> (code: String, body: String, headers: String) {
            let result = try server.curl(["-D", "-", "-o", "/dev/stderr", "-w", "%{http_code}"] + arguments)
            let code = String(result.stdout.suffix(3))
            return (code, result.stderr, result.stdout)
        }
        // 404
        var r = try status([server.url("/nope")])
        XCTAssertEqual(r.code, "404")
        XCTAssertEqual(try jsonObject(r.body)["reason"] as? String, "NotFound")
        // 405 with Allow
        r = try status([server.url("/validate")])
        XCTAssertEqual(r.code, "405")
        XCTAssertTrue(r.headers.contains("Allow: POST"), r.headers)
        r = try status(["-X", "POST", server.url("/healthz")])
        XCTAssertEqual(r.code, "405")
        XCTAssertTrue(r.headers.contains("Allow: GET"), r.headers)
        // 415
        r = try status(["-H", "Content-Type: text/plain", "--data-binary", "{}", server.url("/validate")])
        XCTAssertEqual(r.code, "415")
        XCTAssertEqual(try jsonObject(r.body)["code"] as? Int, 415)
        r = try status(["-H", "Content-Type: application/json; charset=utf-8", "--data-binary", "@\(review)", server.url("/validate")])
        XCTAssertEqual(r.code, "413", "the fixture is over the 1 KiB limit of this server")
        // 413 decided from Content-Length, connection closed
        XCTAssertTrue(r.headers.lowercased().contains("connection: close"), r.headers)
        XCTAssertEqual(try jsonObject(r.body)["reason"] as? String, "RequestEntityTooLarge")
        // 400: not JSON, not an AdmissionReview, unknown apiVersion, no request, no uid
        let bad: [(String, String)] = [
            ("{", "not valid JSON"),
            (#"{"kind":"Pod","apiVersion":"v1"}"#, "not an AdmissionReview"),
            (#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2","request":{"uid":"u"}}"#, "unsupported AdmissionReview apiVersion"),
            (#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#, "has no request"),
            (#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"kind":{"kind":"X"}}}"#, "has no uid"),
        ]
        for (body, message) in bad {
            r = try status(["-H", "Content-Type: application/json", "--data-binary", body, server.url("/validate")])
            XCTAssertEqual(r.code, "400", body)
            let status = try jsonObject(r.body)
            XCTAssertEqual(status["kind"] as? String, "Status")
            XCTAssertEqual(status["status"] as? String, "Failure")
            XCTAssertEqual(status["reason"] as? String, "BadRequest")
            XCTAssertTrue((status["message"] as? String ?? "").contains(message), "\(body): \(r.body)")
        }
        // 431: a header section over 64 KiB
        r = try status(["-H", "X-Big: " + String(repeating: "a", count: 70_000), server.url("/healthz")])
        XCTAssertEqual(r.code, "431")
        try server.assertHealthy()
    }

    func testMalformedRequestLineGets400AndClose() throws {
        let server = try RunningServer()
        let result = try server.sClient(["-quiet", "-ign_eof"], stdin: Data("GARBAGE\r\n\r\n".utf8))
        XCTAssertTrue(result.stdout.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), result.stdout)
        XCTAssertTrue(result.stdout.contains("Connection: close"))
        XCTAssertTrue(result.stdout.contains("\"reason\":\"BadRequest\""))
        // Both Content-Length and Transfer-Encoding.
        let smuggle = "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        let second = try server.sClient(["-quiet", "-ign_eof"], stdin: Data(smuggle.utf8))
        XCTAssertTrue(second.stdout.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), second.stdout)
        try server.assertHealthy()
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let server = try RunningServer()
        let requests = ["/healthz", "/nope", "/readyz"].map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()
            + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let result = try server.sClient(["-quiet", "-ign_eof"], stdin: Data(requests.utf8))
        let statuses = result.stdout.matches(of: /HTTP\/1\.1 \d{3} [A-Za-z ]+/).map { String($0.output) }
        XCTAssertEqual(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"])
    }

    func testTLS11IsRefusedAndTLS12And13Work() throws {
        let server = try RunningServer()
        // The client is allowed TLS 1.1 at security level 0, so only the server can refuse it.
        let old = try server.sClient(["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        XCTAssertNotEqual(old.status, 0)
        XCTAssertTrue(old.stdout.contains("Cipher is (NONE)"), old.stdout)
        XCTAssertTrue(old.stderr.contains("alert protocol version"), old.stderr)
        for (flag, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
            let ok = try server.sClient([flag, "-verify_return_error"])
            XCTAssertEqual(ok.status, 0, ok.stderr)
            XCTAssertTrue(ok.stdout.contains(name), ok.stdout)
            XCTAssertTrue(ok.stdout.contains("Verify return code: 0 (ok)"))
        }
        // The server's order decides: AES-128-GCM, though OpenSSL's client offers AES-256 first.
        let suite = try server.sClient(["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"])
        XCTAssertTrue(suite.stdout.contains("Cipher is TLS_AES_128_GCM_SHA256"), suite.stdout)
        let aead = try server.sClient(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"])
        XCTAssertNotEqual(aead.status, 0, "a CBC suite must not be negotiated")
        let only13 = try RunningServer(minimumTLS: .tls13)
        XCTAssertNotEqual(try only13.sClient(["-tls1_2"]).status, 0)
        XCTAssertEqual(try only13.sClient(["-tls1_3"]).status, 0)
    }

    func testTLS13ResumesFromATicketAndTLS12NeverResumes() throws {
        let server = try RunningServer()
        let request = Data("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        let session13 = server.directory + "/tls13-session.pem"
        let first = try server.sClient(["-tls1_3", "-ign_eof", "-sess_out", session13], stdin: request)
        XCTAssertTrue(first.stdout.contains("New, TLSv1.3"), first.stdout)
        let resumed = try server.sClient(["-tls1_3", "-ign_eof", "-sess_in", session13], stdin: request)
        XCTAssertTrue(resumed.stdout.contains("Reused, TLSv1.3"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("HTTP/1.1 200 OK"), resumed.stdout)

        // TLS 1.2 gets neither a ticket nor a session ID: every handshake is a full one.
        let session12 = server.directory + "/tls12-session.pem"
        let old = try server.sClient(["-tls1_2", "-ign_eof", "-sess_out", session12], stdin: request)
        XCTAssertTrue(old.stdout.contains("New, TLSv1.2"), old.stdout)
        XCTAssertFalse(old.stdout.contains("TLS session ticket:"), old.stdout)
        if FileManager.default.fileExists(atPath: session12) {
            let again = try server.sClient(["-tls1_2", "-ign_eof", "-sess_in", session12], stdin: request)
            XCTAssertTrue(again.stdout.contains("New, TLSv1.2"), again.stdout)
            XCTAssertTrue(again.stdout.contains("HTTP/1.1 200 OK"), again.stdout)
        }
    }

    func testALPNSelectsHTTP11AndNeverAborts() throws {
        let server = try RunningServer()
        let both = try server.sClient(["-alpn", "h2,http/1.1"])
        XCTAssertEqual(both.status, 0)
        XCTAssertTrue(both.stdout.contains("ALPN protocol: http/1.1"), both.stdout)
        let h2only = try server.sClient(["-alpn", "h2"])
        XCTAssertEqual(h2only.status, 0, "a client offering only h2 still completes the handshake")
        XCTAssertTrue(h2only.stdout.contains("No ALPN negotiated"), h2only.stdout)
        // curl offering h2 and http/1.1 ends up on HTTP/1.1.
        let curl = try server.curl(["--http2", "-w", "%{http_version}", "-o", "/dev/null", server.url("/healthz")])
        XCTAssertEqual(curl.stdout, "1.1")
    }

    func testSilentClientsDoNotDelayOthers() throws {
        let server = try RunningServer()
        // Ten TCP clients that connect and never send a byte, and one that stops mid-ClientHello.
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for i in 0..<11 {
            let fd = try connectTCP(port: server.port)
            sockets.append(fd)
            if i == 10 { _ = write(fd, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01], 6) }
        }
        let start = Date()
        let result = try server.curl(["-w", "%{http_code}", server.url("/healthz")])
        XCTAssertEqual(result.stdout, "ok200")
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.0, "a real request must not wait for silent clients")
    }

    func testHandshakeDeadlineClosesSilentConnections() throws {
        let server = try RunningServer { $0.timeouts.handshake = .milliseconds(300) }
        let fd = try connectTCP(port: server.port)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        let n = read(fd, &buffer, buffer.count)
        XCTAssertEqual(n, 0, "the server closes a connection that never starts a handshake")
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.0)
    }

    func testMetricsCountRequests() throws {
        let server = try RunningServer()
        for _ in 0..<3 {
            _ = try server.curl(["-H", "Content-Type: application/json", "--data-binary", "@\(review)", server.url("/validate")])
        }
        _ = try server.curl(["-H", "Content-Type: application/json", "--data-binary", "x", server.url("/mutate")])
        let metrics = try server.curl(["-D", "-", server.url("/metrics")]).stdout
        XCTAssertTrue(metrics.contains("Content-Type: text/plain; version=0.0.4"), metrics)
        XCTAssertTrue(metrics.contains("controller_runtime_webhook_requests_total{code=\"200\",webhook=\"/validate\"} 3"), metrics)
        XCTAssertTrue(metrics.contains("controller_runtime_webhook_requests_total{code=\"400\",webhook=\"/mutate\"} 1"), metrics)
        XCTAssertTrue(metrics.contains("controller_runtime_webhook_latency_seconds_count{webhook=\"/validate\"} 3"), metrics)
        XCTAssertTrue(metrics.contains("controller_runtime_webhook_latency_seconds_bucket{webhook=\"/validate\",le=\"+Inf\"} 3"))
        XCTAssertTrue(metrics.contains("controller_runtime_webhook_requests_in_flight{webhook=\"/validate\"} 0"))
        XCTAssertTrue(metrics.contains(
            "atlas_stream_webhook_admission_total{kind=\"AtlasStreamConnection\",operation=\"CREATE\",allowed=\"true\"} 3"))
        XCTAssertTrue(metrics.contains("atlas_stream_webhook_certificate_expiry_timestamp_seconds "))
        XCTAssertFalse(metrics.contains("kind=\"other\""), metrics)
        // Every sample line is `name{labels} value` with a numeric value.
        for line in metrics.components(separatedBy: "\n") where !line.isEmpty && !line.hasPrefix("#") && !line.hasPrefix("HTTP/")
            && line.contains(" ") && !line.contains(":") {
            XCTAssertNotNil(Double(line.split(separator: " ").last ?? ""), line)
        }
    }

    /// Kinds and operations are free text in a review; as label values they are bounded, so
    /// no client can grow the metrics (or the server's memory) by inventing new ones.
    func testMetricsLabelValuesAreBounded() throws {
        let server = try RunningServer()
        for i in 0..<25 {
            let body = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-\#(i)","#
                + #""kind":{"group":"example.com","version":"v1","kind":"Kind\#(i)"},"#
                + #""resource":{"group":"example.com","version":"v1","resource":"things"},"operation":"OP\#(i)","object":{}}}"#
            let answer = try server.curl(["-H", "Content-Type: application/json", "--data-binary", body, server.url("/validate")])
            XCTAssertTrue(answer.stdout.contains(#""allowed":true"#), answer.stdout)
        }
        let metrics = try server.curl([server.url("/metrics")]).stdout
        XCTAssertTrue(metrics.contains(#"atlas_stream_webhook_admission_total{kind="other",operation="other",allowed="true"} 25"#), metrics)
        XCTAssertFalse(metrics.contains("Kind1"), metrics)
        XCTAssertFalse(metrics.contains("OP1"), metrics)
        XCTAssertTrue(metrics.contains(#"controller_runtime_webhook_requests_total{code="200",webhook="/validate"} 25"#), metrics)
    }

    func testHealthAndReadiness() throws {
        let server = try RunningServer()
        XCTAssertEqual(try server.curl(["-w", " %{http_code}", server.url("/readyz")]).stdout, "ok 200")
        XCTAssertTrue(server.server.isReady)
        server.server.stop()
        XCTAssertFalse(server.server.isReady, "readiness turns off when the server stops")
    }

}

