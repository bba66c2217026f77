import Foundation
import TLS
import TestSupport
import XCTest

/// Enforcement as a platform team rolls out: warn first, then rule by rule.
final class EnforcementEndToEndTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try temporaryDirectory("enforcement")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func config(_ text: String) throws -> String {
        let path = directory + "/config-\(UUID().uuidString).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The `response` of `review --validate` for `body`.
    private func validate(_ body: Data, config: String?) throws -> [String: Any] {
        let result = try runProcess(try releaseExecutablePath(), ["review", "--validate"] + (config.map { ["--config", $0] } ?? []), stdin: body)
        XCTAssertEqual(result.status, 0, result.stderr)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return try XCTUnwrap(root["response"] as? [String: Any])
    }

    /// Every fixture review that denies in deny mode is admitted in warn mode, its
    /// warnings each cause as `would be denied: field: message`, then those of deny mode.
    func testWarnModeAdmitsEveryDenialWithItsMessagesAsWarnings() throws {
        let warn = try config("enforcement:\n  default: warn\n")
        let reviews = try FileManager.default.contentsOfDirectory(atPath: fixtures.path).filter { $0.hasPrefix("review-") }.sorted()
        var denials = 0
        for name in reviews {
            let body = try Data(contentsOf: fixtures.appendingPathComponent(name))
            let denied = try validate(body, config: nil)
            let warned = try validate(body, config: warn)
            XCTAssertEqual(warned["allowed"] as? Bool, true, name)
            guard denied["allowed"] as? Bool == false else {
                XCTAssertEqual(warned["warnings"] as? [String], denied["warnings"] as? [String], name)
                continue
            }
            denials += 1
            let status = try XCTUnwrap(denied["status"] as? [String: Any], name)
            let causes = ((status["details"] as? [String: Any])?["causes"] as? [[String: Any]]) ?? []
            let expected = causes.map { "would be denied: \($0["field"] as? String ?? ""): \($0["message"] as? String ?? "")" }
                + (denied["warnings"] as? [String] ?? [])
            XCTAssertEqual(warned["warnings"] as? [String], expected, name)
            XCTAssertNil(warned["status"], name)
        }
        XCTAssertGreaterThan(denials, 0, "the fixtures hold a denial")
    }

    func testAPerRuleSettingTurnsOnlyThatRule() throws {
        let body = try Data(contentsOf: fixtures.appendingPathComponent("review-kafka-denied.json"))
        let denied = try validate(body, config: nil)
        let causes = (((denied["status"] as? [String: Any])?["details"] as? [String: Any])?["causes"] as? [[String: Any]]) ?? []
        let relaxed = try validate(body, config: try config("enforcement:\n  rules:\n    kafka-certificate-required: warn\n"))
        let relaxedCauses = (((relaxed["status"] as? [String: Any])?["details"] as? [String: Any])?["causes"] as? [[String: Any]]) ?? []
        XCTAssertEqual(relaxed["allowed"] as? Bool, false)
        XCTAssertEqual(relaxedCauses.count, causes.count - 1)
        XCTAssertFalse(relaxedCauses.contains { ($0["field"] as? String) == "spec.kafkaConfig.security.certificate.name" })
        XCTAssertTrue((relaxed["warnings"] as? [String] ?? []).contains {
            $0.hasPrefix("would be denied: spec.kafkaConfig.security.certificate.name: Required value")
        }, "\(relaxed)")
        let off = try validate(body, config: try config("enforcement:\n  rules:\n    kafka-certificate-required: off\n"))
        XCTAssertFalse((off["warnings"] as? [String] ?? []).contains { $0.contains("certificate.name") }, "\(off)")
    }

    func testAnUnknownRuleIdStopsTheStart() throws {
        let bad = try config("enforcement:\n  default: warn\n  rules:\n    kafka-certificate-requried: deny\n")
        let result = try runProcess(try releaseExecutablePath(), ["serve", "--dev", "--listen", "127.0.0.1:0", "--config", bad])
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains(":4: enforcement.rules.kafka-certificate-requried: unknown rule id"), result.stderr)
    }

    /// The server in warn mode: admitted, and one log line names the rules and fields
    /// that would have denied (never a value).
    func testTheServerLogsWhatWouldHaveDenied() throws {
        let certificates = try DevelopmentCertificates.generate(in: directory)
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--enforcement", "warn", "--log-level", "info"], release: true)
        defer { server.stop() }
        let body = try Data(contentsOf: fixtures.appendingPathComponent("review-kafka-denied.json"))
        let result = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-H", "Content-Type: application/json",
                                                      "--data-binary", "@-", "https://localhost:\(server.port)/validate"], stdin: body)
        XCTAssertTrue(result.stdout.contains(#""allowed":true"#), result.stdout)
        XCTAssertTrue(server.waitForLog("would_deny", seconds: 2), server.log)
        let line = try XCTUnwrap(server.log.split(separator: "\n").first { $0.contains("would_deny") })
        XCTAssertTrue(line.contains("kafka-certificate-required spec.kafkaConfig.security.certificate.name"), String(line))
        XCTAssertTrue(line.contains("bad-kafka") && line.contains(#""operation":"CREATE""#), String(line))
        XCTAssertFalse(line.contains("hunter2"), "no value from the object")
        let metrics = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate,
                                                       "https://localhost:\(server.port)/metrics"]).stdout
        XCTAssertTrue(metrics.contains(#"atlas_stream_webhook_rule_findings_total{rule="kafka-certificate-required",action="would_deny"} 1"#),
                      metrics)
        XCTAssertTrue(metrics.contains(#"atlas_stream_webhook_rule_findings_total{rule="bootstrap-servers-format",action="would_deny"} 1"#),
                      metrics)
        XCTAssertFalse(metrics.contains(#"action="deny"}"#), "nothing was denied: \(metrics)")
        XCTAssertTrue(metrics.contains(#"atlas_stream_webhook_admission_total{kind="AtlasStreamConnection",operation="CREATE",allowed="true"} 1"#),
                      metrics)
    }
}
