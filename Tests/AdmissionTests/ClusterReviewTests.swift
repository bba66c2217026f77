import Foundation
import XCTest
import Admission
import StreamRules

private func deleteReview(kind: String = "AtlasStreamConnection", operation: String = "DELETE") -> [UInt8] {
    Array(#"""
    {"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-9","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"\#(kind)"},"operation":"\#(operation)","namespace":"team","name":"conn","userInfo":{"username":"bob"},"object":null,"oldObject":{"metadata":{"name":"conn","namespace":"team"},"spec":{"name":"k"}}}}
    """#.utf8)
}

private func answer(_ outcome: AdmissionOutcome) throws -> [String: Any] {
    guard case .answered(let body, _) = outcome else { throw POSIXError(.EINVAL) }
    let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
    return try XCTUnwrap(root["response"] as? [String: Any])
}

/// DELETE and the cluster snapshot through the reviewer.
final class ClusterReviewTests: XCTestCase {
    private let cluster = ClusterSnapshot(instances: [
        "team": ["inst": InstanceRecord(registry: [ObjectReference(namespace: "team", name: "conn")], isBeingDeleted: false)],
    ])

    func testDeleteOfAListedConnectionIsForbidden() throws {
        let snapshot = cluster
        let reviewer = AdmissionReviewer(cluster: { .ready(snapshot) })
        let response = try answer(reviewer.review(deleteReview(), at: .validate))
        XCTAssertEqual(response["allowed"] as? Bool, false)
        let status = try XCTUnwrap(response["status"] as? [String: Any])
        XCTAssertEqual(status["code"] as? Int, 403)
        XCTAssertEqual(status["reason"] as? String, "Forbidden")
        XCTAssertEqual(status["message"] as? String, #"AtlasStreamConnection.atlas.mongodb.com "conn" is forbidden: listed in spec.connectionRegistry of AtlasStreamInstance team/inst; remove it there first"#)
        let details = try XCTUnwrap(status["details"] as? [String: Any])
        XCTAssertEqual(details["kind"] as? String, "AtlasStreamConnection")
        XCTAssertEqual(details["name"] as? String, "conn")
    }

    func testDeleteIsAllowedWithoutLookupsAtMutateAndForOtherKinds() throws {
        let snapshot = cluster
        XCTAssertEqual(try answer(AdmissionReviewer().review(deleteReview(), at: .validate))["allowed"] as? Bool, true)
        let reviewer = AdmissionReviewer(cluster: { .ready(snapshot) })
        XCTAssertEqual(try answer(reviewer.review(deleteReview(), at: .mutate))["allowed"] as? Bool, true)
        XCTAssertEqual(try answer(reviewer.review(deleteReview(kind: "AtlasStreamInstance"), at: .validate))["allowed"] as? Bool, true)
        XCTAssertEqual(try answer(reviewer.review(deleteReview(operation: "CONNECT"), at: .validate))["allowed"] as? Bool, true)
    }

    func testTheSummaryCarriesTheFindings() throws {
        let snapshot = cluster
        guard case .answered(_, let summary) = AdmissionReviewer(cluster: { .ready(snapshot) }).review(deleteReview(), at: .validate) else {
            return XCTFail("not answered")
        }
        XCTAssertEqual(summary.findings.map(\.rule), [.connectionNotInRegistry])
        XCTAssertEqual(summary.findings.map(\.outcome), [.denied])
        XCTAssertFalse(summary.allowed)
    }

    /// A cache that cannot back a verdict and is set to fail closed: 503, as the
    /// apiserver writes ServiceUnavailable.
    func testNotReadyCacheDeniedAs503() throws {
        let rules = StreamRules(configuration: RuleConfiguration(cacheNotReady: .deny))
        let reviewer = AdmissionReviewer(rules: rules, cluster: { .notReady(reason: "secrets not listed yet") })
        let response = try answer(reviewer.review(deleteReview(), at: .validate))
        XCTAssertEqual(response["allowed"] as? Bool, false)
        let status = try XCTUnwrap(response["status"] as? [String: Any])
        XCTAssertEqual(status["code"] as? Int, 503)
        XCTAssertEqual(status["reason"] as? String, "ServiceUnavailable")
        XCTAssertEqual(status["message"] as? String, "cluster lookups are not ready; references were not checked")
    }
}
