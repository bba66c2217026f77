@testable import Audit
@testable import ClusterCache
import JSON
import StreamRules
import XCTest

/// The audit's pure parts: judging an object as the cache keeps it, the index from
/// referenced objects to their referrers, the counts, and the PolicyReport's content.
final class AuditTests: XCTestCase {
    private let judge = AuditJudge(rules: StreamRules())

    private func object(_ json: String) throws -> JSONValue {
        try JSONReader.parse(Array(json.utf8)).root
    }

    private func kafka(_ name: String, credentials: String = "creds", certificate: String? = "ca",
                       deleting: Bool = false) throws -> StoredObject {
        let certificateJSON = certificate.map { #", "certificate": {"name": "\#($0)"}"# } ?? ""
        let deletion = deleting ? #", "deletionTimestamp": "2026-12-01T00:00:00Z""# : ""
        return .kept(try object("""
            {"metadata": {"name": "\(name)", "namespace": "team", "uid": "uid-\(name)"\(deletion)},
             "spec": {"name": "\(name)", "type": "Kafka", "kafkaConfig": {"bootstrapServers": "broker:9092",
               "authentication": {"mechanism": "PLAIN", "credentials": {"name": "\(credentials)"}},
               "security": {"protocol": "SSL"\(certificateJSON)}}}}
            """))
    }

    private func snapshot(secrets: [String]) -> ClusterSnapshot {
        var snapshot = ClusterSnapshot()
        for name in secrets {
            snapshot.secrets["team", default: [:]][name] = SecretRecord(hasCredentialsLabel: true)
        }
        return snapshot
    }

    private func key(_ name: String) -> AuditedObject { AuditedObject(kind: .connection, namespace: "team", name: name) }

    func testAnObjectIsJudgedAsValidateWouldJudgeItsCreate() throws {
        let judged = try XCTUnwrap(judge.judge(.connection, try kafka("k", certificate: nil), namespace: "team",
                                               snapshot: snapshot(secrets: [])))
        XCTAssertEqual(judged.verdict.uid, "uid-k")
        XCTAssertEqual(judged.verdict.findings.map { "\($0.result) \($0.rule.rawValue)" },
                       ["fail kafka-certificate-required", "warn credentials-secret-found"])
        XCTAssertEqual(judged.verdict.findings.first?.field, "spec.kafkaConfig.security.certificate.name")
        XCTAssertEqual(judged.verdict.findings.last?.message,
                       "spec.kafkaConfig.authentication.credentials: Secret team/creds not found")
        XCTAssertEqual(judged.references, [.secret(ObjectReference(namespace: "team", name: "creds"))])
        let passing = try XCTUnwrap(judge.judge(.connection, try kafka("k"), namespace: "team",
                                                snapshot: snapshot(secrets: ["creds", "ca"])))
        XCTAssertEqual(passing.verdict.findings, [])
        XCTAssertNil(judge.judge(.connection, try kafka("k", deleting: true), namespace: "team", snapshot: snapshot(secrets: [])),
                     "an object being deleted is not judged")
    }

    func testWouldBeDenialsAreWarningsThatSaySo() throws {
        var configuration = RuleConfiguration()
        configuration.enforcement = Enforcement(default: .warn)
        let judged = try XCTUnwrap(AuditJudge(rules: StreamRules(configuration: configuration))
            .judge(.connection, try kafka("k", certificate: nil), namespace: "team", snapshot: snapshot(secrets: ["creds"])))
        let finding = try XCTUnwrap(judged.verdict.findings.first)
        XCTAssertEqual(finding.result, .warn)
        XCTAssertTrue(finding.wouldDeny)
        XCTAssertTrue(finding.message.hasPrefix("would be denied: spec.kafkaConfig.security.certificate.name: Required value"),
                      finding.message)
    }

    func testTheIndexFindsWhatAChangeTouchesAndForgetsOldReferences() throws {
        var state = AuditState()
        let cluster = snapshot(secrets: ["creds", "ca", "other"])
        state.record(key("a"), judge.judge(.connection, try kafka("a"), namespace: "team", snapshot: cluster), now: 1)
        state.record(key("b"), judge.judge(.connection, try kafka("b"), namespace: "team", snapshot: cluster), now: 1)
        func affected(_ resource: CachedResource, _ name: String) -> Set<String> {
            Set(state.affected(by: CacheChange(resource: resource, reference: ObjectReference(namespace: "team", name: name))).map(\.name))
        }
        XCTAssertEqual(affected(.secrets, "creds"), ["a", "b"])
        XCTAssertEqual(affected(.credentialSecrets, "ca"), ["a", "b"])
        XCTAssertEqual(affected(.secrets, "other"), [])
        XCTAssertEqual(affected(.connections, "a"), ["a"], "a connection's own change")
        // `a` now names another Secret: the old one no longer leads to it.
        state.record(key("a"), judge.judge(.connection, try kafka("a", credentials: "other"), namespace: "team", snapshot: cluster),
                     now: 2)
        XCTAssertEqual(affected(.secrets, "creds"), ["b"])
        XCTAssertEqual(affected(.secrets, "other"), ["a"])
        state.record(key("b"), nil, now: 3)
        XCTAssertEqual(affected(.secrets, "creds"), [])
        XCTAssertEqual(state.objects(in: "team").map(\.name), ["a"])
    }

    func testCountsFollowEveryChangeOfVerdict() throws {
        var state = AuditState()
        let empty = snapshot(secrets: [])
        let full = snapshot(secrets: ["creds", "ca"])
        state.record(key("a"), judge.judge(.connection, try kafka("a", certificate: nil), namespace: "team", snapshot: empty), now: 1)
        state.record(key("b"), judge.judge(.connection, try kafka("b"), namespace: "team", snapshot: full), now: 1)
        XCTAssertEqual(state.passing, 1)
        XCTAssertEqual(state.findingCounts[.kafkaCertificateRequired]?.fail, 1)
        XCTAssertEqual(state.findingCounts[.credentialsSecretFound]?.warn, 1)
        XCTAssertEqual(state.takeChangedNamespaces(), ["team"])
        // The same verdict again changes nothing, not even the report's namespace.
        state.record(key("b"), judge.judge(.connection, try kafka("b"), namespace: "team", snapshot: full), now: 9)
        XCTAssertEqual(state.takeChangedNamespaces(), [])
        XCTAssertEqual(state.entries[key("b")]?.since, 1)
        state.record(key("a"), judge.judge(.connection, try kafka("a"), namespace: "team", snapshot: full), now: 10)
        XCTAssertEqual(state.passing, 2)
        XCTAssertNil(state.findingCounts[.kafkaCertificateRequired])
        XCTAssertEqual(state.takeChangedNamespaces(), ["team"])
    }

    func testTheReportIsStableAndItsDigestFollowsItsContent() throws {
        var state = AuditState()
        let cluster = snapshot(secrets: ["creds", "ca"])
        state.record(key("a"), judge.judge(.connection, try kafka("a", certificate: nil), namespace: "team", snapshot: cluster), now: 5)
        state.record(key("b"), judge.judge(.connection, try kafka("b"), namespace: "team", snapshot: cluster), now: 5)
        let first = PolicyReport(namespace: "team", objects: state.objects(in: "team"), state: state)
        XCTAssertEqual(first.contentHash, PolicyReport(namespace: "team", objects: state.objects(in: "team"), state: state).contentHash)
        XCTAssertEqual(first.summary, [.fail: 1, .pass: 1])
        let body = try JSONReader.parse(first.body(resourceVersion: "7")).root
        XCTAssertEqual(body["metadata"]?["resourceVersion"]?.string, "7")
        XCTAssertEqual(body["results"]?.count, 2)
        XCTAssertEqual(body["results"]?.elements.first { _ in true }?["properties"]?["field"]?.string,
                       "spec.kafkaConfig.security.certificate.name")
        XCTAssertEqual(body["summary"]?["fail"]?.int, 1)
        state.record(key("a"), judge.judge(.connection, try kafka("a"), namespace: "team", snapshot: cluster), now: 6)
        XCTAssertNotEqual(PolicyReport(namespace: "team", objects: state.objects(in: "team"), state: state).contentHash,
                          first.contentHash)
    }

    func testAReportStaysBelowItsCapWhateverTheNamespaceHolds() throws {
        var state = AuditState()
        let cluster = snapshot(secrets: [])
        // Names at Kubernetes' longest (253 bytes), every object with findings.
        for i in 0..<20_000 {
            let name = String(repeating: "n", count: 240) + String(i)
            state.record(key(name), judge.judge(.connection, try kafka(name, credentials: name, certificate: nil),
                                                 namespace: "team", snapshot: cluster), now: 1)
        }
        let report = PolicyReport(namespace: "team", objects: state.objects(in: "team"), state: state)
        let body = report.body(resourceVersion: nil)
        XCTAssertLessThan(body.count, 1024 * 1024)
        XCTAssertGreaterThan(report.omittedResults, 0)
        let findings = state.entries.values.flatMap(\.verdict.findings)
        XCTAssertEqual(report.summary[.fail], findings.filter { $0.result == .fail }.count, "the summary counts every result")
        XCTAssertEqual(report.summary[.warn], findings.filter { $0.result == .warn }.count)
        XCTAssertGreaterThanOrEqual(report.summary[.fail] ?? 0, 20_000)
        let root = try JSONReader.parse(body).root
        XCTAssertEqual(root["metadata"]?["annotations"]?[member: PolicyReport.omittedAnnotation]?.string, String(report.omittedResults))
    }

    func testTheChangeFeedIsBounded() {
        let feed = CacheChangeFeed()
        for i in 0..<3 { feed.record(CacheChange(resource: .secrets, reference: ObjectReference(namespace: "a", name: "s\(i)"))) }
        feed.record(CacheChange(resource: .secrets, reference: ObjectReference(namespace: "a", name: "s0")))
        guard case .changes(let changes) = feed.take() else { return XCTFail("listed changes expected") }
        XCTAssertEqual(changes.count, 3)
        XCTAssertEqual(feed.take(), .changes([]))
        for i in 0...CacheChangeFeed.maxPending {
            feed.record(CacheChange(resource: .secrets, reference: ObjectReference(namespace: "a", name: "s\(i)")))
        }
        XCTAssertEqual(feed.take(), .everything)
        feed.record(CacheChange(resource: .secrets, reference: ObjectReference(namespace: "a", name: "x")))
        feed.recordEverything()
        XCTAssertEqual(feed.take(), .everything)
    }

    func testLeaseTimesAreMicroTimes() {
        XCTAssertEqual(microTime(0), "1970-01-01T00:00:00.000000Z")
        XCTAssertEqual(microTime(1_796_560_496_789), "2026-12-06T12:34:56.789000Z")
    }

    /// The audit keeps objects up to a budget: one object, and all of them; what is not
    /// kept is counted and reported as not judged, never judged as if it were empty.
    func testObjectsAreKeptWithinTheBudgetAndTheRestAreSkipped() throws {
        var cluster = snapshot(secrets: ["creds", "ca"])
        let object = try kafka("a")
        guard case .kept(let json) = object else { return XCTFail("kept expected") }
        let kept = StoredObjectBudget().admit(json)
        let size = kept.keptBytes
        cluster.storedObjectBudget = StoredObjectBudget(perObject: size, total: 2 * size)
        func reference(_ name: String) -> ObjectReference { ObjectReference(namespace: "team", name: name) }
        for name in ["a", "b", "c"] {
            cluster.setStoredObject(cluster.storedObjectBudget.admit(json), kind: .connection, at: reference(name))
        }
        XCTAssertEqual(cluster.storedObjectBytes, 2 * size)
        guard case .notKept(.budgetSpent(let limit)) = cluster.connectionObjects["team"]?["c"] else { return XCTFail("c over budget") }
        XCTAssertEqual(limit, 2 * size)
        // Removing one frees its share; a relist of the namespace counts again from nothing.
        cluster.setStoredObject(nil, kind: .connection, at: reference("a"))
        XCTAssertEqual(cluster.storedObjectBytes, size)
        cluster.replaceStoredObjects(kind: .connection, in: "team", with: ["team": ["x": kept, "y": kept, "z": kept]])
        XCTAssertEqual(cluster.storedObjectBytes, 2 * size)
        XCTAssertEqual(cluster.connectionObjects["team"]?.count, 3)
        cluster.replaceStoredObjects(kind: .connection, in: nil, with: [:])
        XCTAssertEqual(cluster.storedObjectBytes, 0)

        let larger = StoredObjectBudget(perObject: size - 1).admit(json)
        guard case .notKept(let reason) = larger else { return XCTFail("too large expected") }
        XCTAssertEqual(reason, .tooLarge(bytes: size, limit: size - 1))
        var state = AuditState()
        state.record(key("big"), judge.judge(.connection, larger, namespace: "team", snapshot: cluster), now: 1)
        state.record(key("a"), judge.judge(.connection, object, namespace: "team", snapshot: cluster), now: 1)
        XCTAssertEqual(state.skipped, 1)
        XCTAssertEqual(state.passing, 1)
        let report = PolicyReport(namespace: "team", objects: state.objects(in: "team"), state: state)
        XCTAssertEqual(report.summary, [.pass: 1, .skip: 1])
        let results = try JSONReader.parse(report.body(resourceVersion: nil)).root["results"]
        let skipped = try XCTUnwrap(results?.elements.first { $0["result"]?.string == "skip" })
        XCTAssertEqual(skipped["message"]?.string, reason.description)
        XCTAssertEqual(skipped["rule"]?.string, "all")
    }
}
