@testable import Admission
import Foundation
import JSON
import StreamRules
import XCTest

/// A review of `kind` whose request carries `object` (JSON text) and the given fields.
func reviewBody(kind: String = "AtlasStreamInstance", operation: String = "CREATE", uid: String = "u-1",
                object: String, oldObject: String? = nil, userInfo: String = #"{"username":"alice"}"#) -> [UInt8] {
    let old = oldObject.map { #","oldObject":\#($0)"# } ?? ""
    return Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"\#(uid)","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"\#(kind)"},"operation":"\#(operation)","namespace":"team-a","userInfo":\#(userInfo),"object":\#(object)\#(old)}}"#.utf8)
}

/// Bounded answers: at most 100 causes with `and N more`, answers without
/// a patch at most 256 KiB, names and log fields cut.
final class AnswerBoundsTests: XCTestCase {
    let reviewer = AdmissionReviewer()

    private func answer(_ body: [UInt8], at endpoint: AdmissionEndpoint = .validate) throws -> (bytes: Int, response: [String: Any], summary: AdmissionSummary) {
        guard case .answered(let bytes, let summary) = reviewer.review(body, at: endpoint) else {
            throw POSIXError(.EINVAL)
        }
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        return (bytes.count, try XCTUnwrap(root["response"] as? [String: Any]), summary)
    }

    /// An instance whose registry has `entries` entries with invalid names and namespaces
    /// of `padding` bytes each.
    private func manyErrors(entries: Int, padding: Int, name: String = "obj") -> [UInt8] {
        let pad = String(repeating: "X", count: padding)
        let list = (0..<entries).map { #"{"name":"Bad_\#(pad)\#($0)","namespace":"NS_\#(pad)"}"# }.joined(separator: ",")
        return reviewBody(object: #"{"metadata":{"name":"\#(name)","namespace":"team-a"},"spec":{"name":"i","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":[\#(list)]}}"#)
    }

    func testDenialListsOneHundredCausesAndCountsTheRest() throws {
        let (_, response, _) = try answer(manyErrors(entries: 1000, padding: 0))
        let status = try XCTUnwrap(response["status"] as? [String: Any])
        let causes = try XCTUnwrap((status["details"] as? [String: Any])?["causes"] as? [[String: String]])
        XCTAssertEqual(causes.count, 100)
        let message = try XCTUnwrap(status["message"] as? String)
        // Each entry has a bad namespace and a bad name: 2,000 errors.
        XCTAssertTrue(message.hasSuffix(", and 1900 more]"), String(message.suffix(80)))
        XCTAssertTrue(message.hasPrefix(#"AtlasStreamInstance.atlas.mongodb.com "obj" is invalid: [spec.connectionRegistry[0].namespace: "#))
    }

    func testAnswerWithoutPatchStaysUnderTwoHundredFiftySixKiBWhateverTheValues() throws {
        // 100 reported errors, each echoing a value of 100,000 bytes and a long name.
        let (bytes, response, _) = try answer(manyErrors(entries: 50, padding: 100_000, name: String(repeating: "n", count: 100_000)))
        XCTAssertEqual(response["allowed"] as? Bool, false)
        XCTAssertLessThanOrEqual(bytes, 256 * 1024)
        let details = try XCTUnwrap((response["status"] as? [String: Any])?["details"] as? [String: Any])
        XCTAssertEqual(details["name"] as? String, String(repeating: "n", count: 256) + "...")
    }

    func testWarningsAreCappedAtTwenty() throws {
        let warnings = (0..<50).map { RuleWarning(.kafkaProtocolEncrypted, "warning \($0)") }
        let request = try AdmissionRequest.decode(reviewBody(object: "{}"))
        let encoded = AdmissionResponseEncoder.encode(request: request, kind: .instance, decision: Decision(warnings: warnings))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(encoded)) as? [String: Any])
        let response = try XCTUnwrap(root["response"] as? [String: Any])
        XCTAssertEqual(response["warnings"] as? [String], warnings.prefix(20).map(\.message))
    }

    func testOverlongUIDIsABadRequest() {
        let body = reviewBody(uid: String(repeating: "u", count: 257), object: "{}")
        guard case .badRequest(let error) = reviewer.review(body, at: .validate) else { return XCTFail("answered") }
        XCTAssertEqual(error.description, "AdmissionReview request.uid is longer than 256 bytes")
        XCTAssertNotNil(try? answer(reviewBody(uid: String(repeating: "u", count: 256), object: "{}")))
    }

    /// Finding 9 of the hardening review: uid, name and user went into every log line whole.
    func testLoggedTextsAreCutAtTwoHundredFiftySixBytes() throws {
        let long = String(repeating: "z", count: 5000)
        let body = reviewBody(uid: String(repeating: "u", count: 256),
                              object: #"{"metadata":{"name":"\#(long)"},"spec":{}}"#, userInfo: #"{"username":"\#(long)"}"#)
        let (_, _, summary) = try answer(body)
        XCTAssertEqual(summary.name, String(repeating: "z", count: 256) + "...")
        XCTAssertEqual(summary.user, String(repeating: "z", count: 256) + "...")
        XCTAssertEqual(summary.uid.utf8.count, 256)
    }
}
