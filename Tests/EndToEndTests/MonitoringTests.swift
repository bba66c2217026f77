import Foundation
import TLS
import TestSupport
import XCTest

/// deploy/monitoring against Prometheus's own tools (Tests/Scripts/check_monitoring.py):
/// promtool on the alert rules and their unit tests, and a real `prometheus` scraping the
/// real server, with cluster lookups against the stand-in API server so the cache's
/// series exist too.
final class MonitoringTests: XCTestCase {
    private let script = repositoryRoot.appendingPathComponent("Tests/Scripts/check_monitoring.py").path

    /// `promtool check rules` on the PrometheusRule's spec, `promtool test rules` with a
    /// firing and a quiet case for every alert, runbooks that exist, dashboard queries that
    /// parse and select the webhook's job.
    func testRulesPassPromtoolAndEveryAlertIsUnitTested() throws {
        let result = try runProcess(try testPython(), [script, "static"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("monitoring checks: 0 problems"), result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("ok  promtool test rules"), result.stdout)
    }

    /// Without Prometheus's tools the tests say what to install instead of failing obscurely.
    func testMissingPrometheusToolsAreNamed() throws {
        let python = try testPython()
        let result = try runProcess("/usr/bin/env", ["PATH=/nonexistent", python, script, "static"])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("promtool and prometheus not found"), result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("apt-get install prometheus"), result.stdout)
    }

    /// A real Prometheus scrapes the real server after one allowed and one denied review:
    /// every metric the alerts and the dashboard read has a series, every rule evaluates,
    /// only the expected alert fires on a healthy server, and three faults (a certificate
    /// that does not load, a malformed review, the process gone) each fire their alert.
    func testPrometheusScrapesEverySeriesTheAlertsAndTheDashboardRead() throws {
        let apiserver = try FakeAPIServer(name: "monitoring")
        defer {
            apiserver.stop()
            try? FileManager.default.removeItem(atPath: apiserver.directory)
        }
        try apiserver.put(ClusterObjects.secret("team-a", "kafka-creds", data: ["username": "u", "password": "p"]))
        try apiserver.put(ClusterObjects.project("team-a", "proj"))
        try apiserver.put(ClusterObjects.connection("team-a", "c1", specName: "sample"))
        try apiserver.put(ClusterObjects.instance("team-a", "inst", registry: ["c1"]))

        let directory = try temporaryDirectory("monitoring")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Ten days: the certificate expiry alert (under 14 days) must fire from the real
        // gauge, which proves its unit (seconds since the epoch) is the one the rule assumes.
        let certificates = try DevelopmentCertificates.generate(in: directory + "/serving", validDays: 10)
        // One rule of the denied fixture set to warn: its finding counts as would_deny while
        // the others still deny, so both series the dashboard shows exist.
        let config = directory + "/config.yaml"
        try "enforcement:\n  rules:\n    kafka-config-no-typed-fields: warn\n".write(toFile: config, atomically: true, encoding: .utf8)
        let kubeconfig = try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)")
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--kubeconfig", kubeconfig, "--config", config, "--shutdown-delay", "0s",
                                       "--cert-poll-interval", "1s"])
        defer { server.stop() }

        func curl(_ arguments: [String]) throws -> ProcessResult {
            try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate] + arguments)
        }
        let deadline = Date().addingTimeInterval(20)
        while try curl(["-o", "/dev/null", "-w", "%{http_code}", "https://localhost:\(server.port)/readyz"]).stdout != "200" {
            guard Date() < deadline else { return XCTFail("the server's cluster cache never synced: \(server.log)") }
            usleep(100_000)
        }
        for (fixture, allowed) in [("review-kafka.json", true), ("review-kafka-denied.json", false)] {
            let result = try curl(["-H", "Content-Type: application/json", "--data-binary",
                                   "@" + fixtures.appendingPathComponent(fixture).path,
                                   "https://localhost:\(server.port)/validate"])
            let response = try XCTUnwrap(try jsonObject(result.stdout)["response"] as? [String: Any], result.stdout)
            XCTAssertEqual(response["allowed"] as? Bool, allowed, "\(fixture): \(result.stdout)")
        }

        let result = try runProcess(try testPython(), [
            script, "live", "--port", String(server.port), "--ca", certificates.caCertificate,
            "--certificate", certificates.certificate, "--server-pid", String(server.process.processIdentifier),
            "--expect-firing", "AtlasStreamWebhookCertificateExpiring",
        ])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("monitoring checks: 0 problems"), result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("ok  the server stopped: AtlasStreamWebhookDown fires"), result.stdout)
    }
}
