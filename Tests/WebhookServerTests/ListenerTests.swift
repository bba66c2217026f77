import Foundation
import Glibc
import HTTPServer
import TLS
import TestSupport
import WebhookServer
import XCTest

/// The health and metrics listeners beside the webhook's port: against the real server,
/// with certificates made for each test.
final class ListenerTests: XCTestCase {
    /// A rotated certificate reaches the metrics listener too, though under mTLS it serves
    /// from a TLS context of its own; the webhook's port keeps demanding a client
    /// certificate after the reload.
    func testTheMetricsListenerServesTheRotatedCertificateUnderMutualTLS() throws {
        let volume = try OperationsTests.SecretVolume()
        let first = try volume.publish { try DevelopmentCertificates.generate(in: $0) }
        let server = try RunningServer(certificates: volume.paths) {
            $0.tls.clientCAPath = volume.paths.caCertificate
            $0.metricsAddress = ListenAddress(host: "127.0.0.1", port: 0)
        }
        let metricsPort = try XCTUnwrap(server.server.metricsPort)
        let firstScrape = try XCTUnwrap(requestOnNewConnection(port: metricsPort, caFile: first + "/ca.crt", path: "/metrics"))
        XCTAssertEqual(firstScrape.0, 200)
        XCTAssertEqual(requestOnNewConnection(port: server.port, caFile: first + "/ca.crt")?.0, nil, "no client certificate")

        let second = try temporaryDirectory("second")
        defer { try? FileManager.default.removeItem(atPath: second) }
        let secondPaths = try DevelopmentCertificates.generate(in: second)
        try volume.publish { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in ["tls.crt", "tls.key", "ca.crt"] {
                try FileManager.default.copyItem(atPath: second + "/" + file, toPath: directory + "/" + file)
            }
        }
        var rotated: (Int, UInt64?)?
        let deadline = Date().addingTimeInterval(3)
        while rotated == nil && Date() < deadline {
            rotated = requestOnNewConnection(port: metricsPort, caFile: secondPaths.caCertificate, path: "/metrics")
            usleep(50_000)
        }
        XCTAssertEqual(rotated?.0, 200, "the metrics listener presents the new certificate")
        XCTAssertNotEqual(rotated?.1, firstScrape.1)
        XCTAssertEqual(requestOnNewConnection(port: server.port, caFile: secondPaths.caCertificate)?.0, nil,
                       "the webhook's port still asks for a client certificate")
    }

    /// The health listener runs on the same machinery as the webhook: a connection cap of
    /// its own (a flood of probes cannot take the webhook's connections, nor the webhook
    /// the probes'), and the header deadline.
    func testTheHealthListenerHasItsOwnCapAndTheDeadlines() throws {
        let server = try RunningServer(http: { $0.timeouts.requestHeaders = .milliseconds(500) }) {
            $0.healthAddress = ListenAddress(host: "127.0.0.1", port: 0)
        }
        let health = try XCTUnwrap(server.server.healthPort)
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<WebhookConfiguration.operationsMaxConnections { held.append(try connectTCP(port: health)) }
        usleep(100_000)
        let extra = try connectTCP(port: health)
        defer { close(extra) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        var byte: UInt8 = 0
        XCTAssertLessThanOrEqual(read(extra, &byte, 1), 0)
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.3, "past the cap, closed at accept")
        try server.assertHealthy()

        // The held connections sent nothing: closed at the header deadline, after which
        // the listener serves again.
        for fd in held {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            XCTAssertLessThanOrEqual(read(fd, &byte, 1), 0)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.5)
        let probe = try runProcess("/usr/bin/curl", ["-sS", "--max-time", "5", "-w", " %{http_code}", "http://127.0.0.1:\(health)/healthz"])
        XCTAssertEqual(probe.stdout, "ok 200", probe.stderr)
    }
}
