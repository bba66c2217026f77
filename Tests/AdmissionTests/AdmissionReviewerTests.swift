import Foundation
import XCTest
@testable import Admission
import JSON
import StreamRules

private func review(kind: String = "AtlasStreamConnection", group: String = "atlas.mongodb.com", operation: String = "CREATE",
                    subResource: String? = nil, apiVersion: String = "admission.k8s.io/v1") -> [UInt8] {
    let sub = subResource.map { #","subResource":"\#($0)""# } ?? ""
    return Array(#"""
    {"apiVersion":"\#(apiVersion)","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"\#(group)","version":"v1","kind":"\#(kind)"},"operation":"\#(operation)"\#(sub),"namespace":"ns","name":"n","userInfo":{"username":"alice"},"object":{"metadata":{"name":"obj"},"spec":{}},"dryRun":true}}
    """#.utf8)
}

private func response(_ outcome: AdmissionOutcome) throws -> [String: Any] {
    guard case .answered(let body, _) = outcome else { throw POSIXError(.EINVAL) }
    let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
    return try XCTUnwrap(root["response"] as? [String: Any])
}

/// Rules that deny everything with two errors and patch and warn, to exercise encoding.
private func stubDecision() -> Decision {
    Decision(errors: [FieldError(rule: .instanceNameRequired, reason: .required, field: FieldPath("spec").child("name"), body: "Required value"),
                      FieldError(rule: .kafkaConfigNoTypedFields, reason: .invalid, field: FieldPath("spec").child("kafkaConfig").child("config").key("a/b"),
                                 body: "Invalid value: \"x\": bad")],
             patch: [PatchOperation(path: ["spec", "a/b~c"], value: .object([("k", .string("v"))]))],
             warnings: ["dup", "dup", "bell\u{7} gone", String(repeating: "w", count: 200), String(repeating: "v", count: 300),
                        "\u{202E}"].map { RuleWarning(.kafkaProtocolEncrypted, $0) })
}

final class AdmissionReviewerTests: XCTestCase {
    func testDecodingErrorsMapToMessages() {
        let reviewer = AdmissionReviewer()
        let cases: [(String, AdmissionDecodingError)] = [
            ("nope", .notJSON(JSONError(reason: .unexpectedByte(UInt8(ascii: "n")), offset: 0))),
            ("[]", .notAnAdmissionReview),
            (#"{"kind":"AdmissionReview"}"#, .notAnAdmissionReview),
            (#"{"kind":"AdmissionReview","apiVersion":"x/v9"}"#, .unknownAPIVersion("x/v9")),
            (#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":5}"#, .missingRequest),
            (#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":""}}"#, .missingUID),
            (#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":"Pod"}}"#,
             .badRequestField("AdmissionReview request.kind must be an object with a string kind")),
            (#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"kind":"K"},"operation":1}}"#,
             .badRequestField("AdmissionReview request.operation must be a string")),
        ]
        for (body, expected) in cases {
            guard case .badRequest(let error) = reviewer.review(Array(body.utf8), at: .validate) else {
                XCTFail("accepted: \(body)")
                continue
            }
            XCTAssertEqual(error, expected, body)
        }
    }

    /// The plain allowance comes from a template; it must be the bytes the general
    /// writer produces (a warning that sanitizes to nothing takes the general path).
    func testPlainAllowanceTemplateWritesWhatTheWriterWrites() throws {
        for version in [AdmissionAPIVersion.v1, .v1beta1] {
            for uid in ["705ab4f5-6393-11e8-b7cc-42010a800002", "quote\" back\\ tab\t é \u{1}"] {
                let request = AdmissionRequest(apiVersion: version, uid: uid, group: "", kind: "K", subResource: nil,
                                               operation: "CREATE", namespace: "", name: "", object: nil, oldObject: nil,
                                               dryRun: false, userInfo: nil)
                let template = AdmissionResponseEncoder.encode(request: request, kind: nil, decision: .allow)
                let general = AdmissionResponseEncoder.encode(request: request, kind: nil, decision: Decision(warnings: [RuleWarning(.kafkaProtocolEncrypted, "\u{7}")]))
                XCTAssertEqual(String(decoding: template, as: UTF8.self), String(decoding: general, as: UTF8.self))
                let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(template)) as? [String: Any])
                XCTAssertEqual(root["apiVersion"] as? String, version.rawValue)
                XCTAssertEqual((root["response"] as? [String: Any])?["uid"] as? String, uid)
            }
        }
    }

    /// The request's members are read in one pass; with duplicate keys the last wins,
    /// as with a lookup by key (Go's encoding/json).
    func testDuplicateRequestMembersLastOneWins() throws {
        let body = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"first","operation":"DELETE","kind":{"kind":"K"},"uid":"second","operation":"CREATE","n\u0061me":"escaped","namespace":null}}"#
        let request = try AdmissionRequest.decode(Array(body.utf8))
        XCTAssertEqual(request.uid, "second")
        XCTAssertEqual(request.operation, "CREATE")
        XCTAssertEqual(request.name, "escaped")
        XCTAssertEqual(request.namespace, "")
    }

    func testAnswerEchoesVersionAndUIDAndCarriesOnlyResponse() throws {
        for version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
            guard case .answered(let body, let summary) = AdmissionReviewer().review(review(apiVersion: version), at: .validate) else {
                return XCTFail("refused")
            }
            let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            XCTAssertEqual(root["apiVersion"] as? String, version)
            XCTAssertEqual(root["kind"] as? String, "AdmissionReview")
            XCTAssertEqual(Set(root.keys), ["apiVersion", "kind", "response"])
            XCTAssertEqual((root["response"] as? [String: Any])?["uid"] as? String, "u-1")
            XCTAssertEqual(summary.user, "alice")
            XCTAssertEqual(summary.name, "obj", "the object's own name wins over request.name")
            XCTAssertTrue(summary.dryRun)
        }
    }

    func testForeignKindsSubresourcesDeleteAndConnectPassUntouched() {
        let reviewer = AdmissionReviewer()
        let passing: [[UInt8]] = [
            review(kind: "Pod", group: ""),
            review(group: "other.example.com"),
            review(subResource: "status"),
            review(operation: "DELETE"),
            review(operation: "CONNECT"),
        ]
        for body in passing {
            guard case .answered(let request, _) = reviewer.review(body, at: .validate),
                  let decoded = try? AdmissionRequest.decode(body) else { return XCTFail("refused") }
            XCTAssertTrue(reviewer.decide(decoded, at: .validate).allowed)
            XCTAssertTrue(reviewer.decide(decoded, at: .mutate).patch.isEmpty)
            XCTAssertFalse(String(decoding: request, as: UTF8.self).contains("patch"))
        }
    }

    func testDenialStatusPatchAndWarningsEncoding() throws {
        let request = try AdmissionRequest.decode(review())
        let body = AdmissionResponseEncoder.encode(request: request, kind: .connection, decision: stubDecision())
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        let response = try XCTUnwrap(root["response"] as? [String: Any])
        XCTAssertEqual(response["allowed"] as? Bool, false)
        let status = try XCTUnwrap(response["status"] as? [String: Any])
        XCTAssertEqual(status["code"] as? Int, 422)
        XCTAssertEqual(status["reason"] as? String, "Invalid")
        XCTAssertEqual(status["message"] as? String,
                       #"AtlasStreamConnection.atlas.mongodb.com "obj" is invalid: [spec.name: Required value, spec.kafkaConfig.config[a/b]: Invalid value: "x": bad]"#)
        let details = try XCTUnwrap(status["details"] as? [String: Any])
        XCTAssertEqual(details["group"] as? String, "atlas.mongodb.com")
        XCTAssertEqual(details["kind"] as? String, "AtlasStreamConnection")
        XCTAssertEqual(details["name"] as? String, "obj")
        let causes = try XCTUnwrap(details["causes"] as? [[String: String]])
        XCTAssertEqual(causes, [["reason": "FieldValueRequired", "message": "Required value", "field": "spec.name"],
                                ["reason": "FieldValueInvalid", "message": "Invalid value: \"x\": bad",
                                 "field": "spec.kafkaConfig.config[a/b]"]])
        XCTAssertEqual(response["patchType"] as? String, "JSONPatch")
        let patch = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(response["patch"] as? String)))
        XCTAssertEqual(String(decoding: patch, as: UTF8.self), #"[{"op":"add","path":"/spec/a~1b~0c","value":{"k":"v"}}]"#)
        let warnings = try XCTUnwrap(response["warnings"] as? [String])
        // Kept whole up to 256 characters, cut only past that.
        XCTAssertEqual(warnings, ["dup", "bell gone", String(repeating: "w", count: 200), String(repeating: "v", count: 256)])
    }

    func testSingleErrorIsNotBracketed() throws {
        let request = try AdmissionRequest.decode(review())
        var decision = stubDecision()
        decision.errors.removeLast()
        let body = String(decoding: AdmissionResponseEncoder.encode(request: request, kind: .connection, decision: decision),
                          as: UTF8.self)
        XCTAssertTrue(body.contains(#"is invalid: spec.name: Required value""#), body)
    }

    func testBase64MatchesFoundation() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            XCTAssertEqual(Base64.encode(bytes), Data(bytes).base64EncodedString())
        }
    }

    func testStatusBody() throws {
        let body = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(Status.failureBody(code: 413, message: "too \"big\""))) as? [String: Any])
        XCTAssertEqual(body["kind"] as? String, "Status")
        XCTAssertEqual(body["apiVersion"] as? String, "v1")
        XCTAssertEqual(body["status"] as? String, "Failure")
        XCTAssertEqual(body["message"] as? String, "too \"big\"")
        XCTAssertEqual(body["reason"] as? String, "RequestEntityTooLarge")
        XCTAssertEqual(body["code"] as? Int, 413)
    }
}
