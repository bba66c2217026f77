import Foundation
import TestSupport
import XCTest

/// The rules through the real TLS server, as the apiserver would call them.
final class AdmissionOverTLSTests: XCTestCase {
    private func post(_ server: RunningServer, _ path: String, fixture: String? = nil, body: Data? = nil) throws -> [String: Any] {
        let data = try body ?? Data(contentsOf: fixtures.appendingPathComponent(try XCTUnwrap(fixture)))
        let result = try server.curl(["-H", "Content-Type: application/json", "--data-binary", "@-", "-w", "\n%{http_code}",
                                      server.url(path)], stdin: data)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.last, "200", result.stdout + result.stderr)
        return try jsonObject(String(lines[0]))
    }

    func testDeniedConnectionCarriesTheKubectlMessageAndCauses() throws {
        let server = try RunningServer()
        let review = try post(server, "/validate", fixture: "review-kafka-denied.json")
        let response = try XCTUnwrap(review["response"] as? [String: Any])
        XCTAssertEqual(response["allowed"] as? Bool, false)
        XCTAssertNil(response["patch"], "/validate never patches")
        let status = try XCTUnwrap(response["status"] as? [String: Any])
        XCTAssertEqual(status["code"] as? Int, 422)
        XCTAssertEqual(status["reason"] as? String, "Invalid")
        XCTAssertTrue((status["message"] as? String ?? "").hasPrefix(
            #"AtlasStreamConnection.atlas.mongodb.com "bad-kafka" is invalid: [spec.kafkaConfig.bootstrapServers: Invalid value: "SASL_SSL://broker-1:9092": must be host:port without a scheme, "#))
        let causes = try XCTUnwrap((status["details"] as? [String: Any])?["causes"] as? [[String: String]])
        XCTAssertEqual(causes.map { $0["field"] ?? "" }, [
            "spec.kafkaConfig.bootstrapServers",
            "spec.kafkaConfig.authentication.credentials.namespace",
            "spec.kafkaConfig.security.certificate.name",
            "spec.kafkaConfig.config[sasl.password]",
        ])
        XCTAssertFalse(String(describing: review).contains("hunter2"), "secret values never echo back")
    }

    func testAllowedWithWarnings() throws {
        let server = try RunningServer()
        let response = try XCTUnwrap(try post(server, "/validate", fixture: "review-kafka-plaintext.json")["response"] as? [String: Any])
        XCTAssertEqual(response["allowed"] as? Bool, true)
        XCTAssertEqual(response["warnings"] as? [String], [
            "spec.kafkaConfig.security.protocol: PLAINTEXT sends stream data unencrypted; use SSL",
            "spec.kafkaConfig.authentication.mechanism: PLAIN over PLAINTEXT sends the password in clear text",
        ])
    }

    func testPatchedInstance() throws {
        let server = try RunningServer()
        let response = try XCTUnwrap(try post(server, "/mutate", fixture: "review-instance.json")["response"] as? [String: Any])
        XCTAssertEqual(response["allowed"] as? Bool, true)
        XCTAssertEqual(response["patchType"] as? String, "JSONPatch")
        let patch = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(response["patch"] as? String)))
        XCTAssertEqual(String(decoding: patch, as: UTF8.self),
                       #"[{"op":"add","path":"/spec/projectRef/namespace","value":"default"},{"op":"add","path":"/spec/connectionRegistry/0/namespace","value":"default"}]"#)
        // The documented examples need nothing.
        for fixture in ["review-kafka.json", "review-sample.json", "review-cluster.json"] {
            let answer = try XCTUnwrap(try post(server, "/mutate", fixture: fixture)["response"] as? [String: Any])
            XCTAssertNil(answer["patch"], fixture)
            XCTAssertNil(answer["patchType"], fixture)
        }
    }

    func testV1beta1AndDryRunAreJudgedTheSame() throws {
        let server = try RunningServer()
        let text = try String(contentsOf: fixtures.appendingPathComponent("review-kafka-denied.json"), encoding: .utf8)
            .replacingOccurrences(of: #""apiVersion":"admission.k8s.io/v1""#, with: #""apiVersion":"admission.k8s.io/v1beta1""#)
            .replacingOccurrences(of: #""dryRun":false"#, with: #""dryRun":true"#)
        XCTAssertTrue(text.contains("v1beta1") && text.contains(#""dryRun":true"#))
        let review = try post(server, "/validate", body: Data(text.utf8))
        XCTAssertEqual(review["apiVersion"] as? String, "admission.k8s.io/v1beta1")
        let response = try XCTUnwrap(review["response"] as? [String: Any])
        XCTAssertEqual(response["allowed"] as? Bool, false)
        XCTAssertEqual(((response["status"] as? [String: Any])?["details"] as? [String: Any])?["kind"] as? String,
                       "AtlasStreamConnection")
    }

    func testWrongTypedFieldIsA422NotA500() throws {
        let server = try RunningServer()
        let text = try String(contentsOf: fixtures.appendingPathComponent("review-sample.json"), encoding: .utf8)
            .replacingOccurrences(of: #""name":"sample_stream_solar""#, with: #""name":5"#)
        for path in ["/validate", "/mutate"] {
            let response = try XCTUnwrap(try post(server, path, body: Data(text.utf8))["response"] as? [String: Any])
            if path == "/mutate" {
                XCTAssertEqual(response["allowed"] as? Bool, true, "mutate never denies")
            } else {
                let status = try XCTUnwrap(response["status"] as? [String: Any])
                XCTAssertEqual(status["code"] as? Int, 422)
                XCTAssertTrue((status["message"] as? String ?? "").contains("spec.name: Invalid value: 5: must be a string"))
            }
        }
        try server.assertHealthy()
    }
}
