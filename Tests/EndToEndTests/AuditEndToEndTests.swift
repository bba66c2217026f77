import Foundation
import Glibc
import TLS
import TestSupport
import XCTest

/// The audit end to end: the real server (one or two replicas) and the `audit` command
/// against the stand-in API server (Tests/Scripts/fake_apiserver.py, a test double for
/// kube-apiserver), which serves PolicyReports and Leases with resourceVersion
/// preconditions and 409 Conflict as the real one does.
final class AuditEndToEndTests: XCTestCase {
    private var apiserver: FakeAPIServer!
    private var servers: [ServeProcess] = []
    private var certificates: DevelopmentCertificates.Paths!
    private var directory = ""

    /// The election's timing, shortened (the defaults are 15 s, 10 s and 2 s).
    private static let leaseSeconds = 4.0
    private static let retrySeconds = 1.0

    override func setUpWithError() throws {
        apiserver = try FakeAPIServer(name: "audit-" + name.filter { $0.isLetter })
        directory = try temporaryDirectory("audit-e2e")
        certificates = try DevelopmentCertificates.generate(in: directory + "/serving")
        try apiserver.put(ClusterObjects.secret("team", "creds", data: ["username": "alice", "password": "pw"]))
        try apiserver.put(ClusterObjects.secret("team", "cert", data: ["certificate": "PEM"]))
        try apiserver.put(kafka("good", credentials: "creds", certificate: "cert"))
        try apiserver.put(kafka("second", credentials: "creds", certificate: "cert"))
    }

    override func tearDown() {
        for server in servers { server.stop() }
        apiserver.stop()
    }

    // MARK: - Helpers

    private func kafka(_ name: String, namespace: String = "team", specName: String? = nil, credentials: String,
                       certificate: String?) -> [String: Any] {
        var security: [String: Any] = ["protocol": "SSL"]
        if let certificate { security["certificate"] = ["name": certificate] }
        return ["apiVersion": "atlas.mongodb.com/v1", "kind": "AtlasStreamConnection",
                "metadata": ["name": name, "namespace": namespace, "uid": "uid-\(name)"],
                "spec": ["name": specName ?? name, "type": "Kafka",
                         "kafkaConfig": ["bootstrapServers": "broker:9092",
                                         "authentication": ["mechanism": "PLAIN", "credentials": ["name": credentials]],
                                         "security": security]]]
    }

    private func config(_ extra: String = "") throws -> String {
        let path = directory + "/config-\(UUID().uuidString).yaml"
        try """
        audit:
          leaseNamespace: webhook
          leaseDuration: \(Int(Self.leaseSeconds))s
          renewDeadline: 3s
          retryPeriod: \(Int(Self.retrySeconds))s
        \(extra)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @discardableResult
    private func startServer(identity: String = "replica-a", config: String? = nil, _ extra: [String] = [],
                             release: Bool = false) throws -> ServeProcess {
        let kubeconfig = try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)")
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--kubeconfig", kubeconfig, "--shutdown-delay", "0s", "--config", try config ?? self.config()]
                                      + extra, environment: ["POD_NAME": identity], release: release)
        servers.append(server)
        return server
    }

    private func metrics(_ server: ServeProcess) throws -> String {
        try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate,
                                         "https://localhost:\(server.port)/metrics"]).stdout
    }

    private func report(_ namespace: String = "team") throws -> [String: Any]? {
        try apiserver.object("policyreports", namespace: namespace, name: "atlas-stream-webhook")
    }

    /// The report's results: (object name, rule, result, message).
    private func results(_ namespace: String = "team") throws -> [(name: String, rule: String, result: String, message: String)] {
        let items = try report(namespace)?["results"] as? [[String: Any]] ?? []
        return items.map { item in
            let resource = (item["resources"] as? [[String: Any]])?.first ?? [:]
            return (resource["name"] as? String ?? "", item["rule"] as? String ?? "", item["result"] as? String ?? "",
                    item["message"] as? String ?? "")
        }
    }

    private func results(of name: String) throws -> [String] {
        try results().filter { $0.name == name }.map { "\($0.result) \($0.rule)" }
    }

    private func leaseHolder() throws -> String? {
        let lease = try apiserver.object("leases", namespace: "webhook", name: "atlas-stream-webhook-audit")
        return (lease?["spec"] as? [String: Any])?["holderIdentity"] as? String
    }

    // MARK: - Reports

    func testObjectBrokenBeforeStartIsReported() throws {
        try apiserver.put(kafka("no-cert", credentials: "creds", certificate: nil))
        let server = try startServer()
        try eventually("the report", seconds: 20) { try results(of: "no-cert") == ["fail kafka-certificate-required"] }
        let written = try XCTUnwrap(try report())
        let entries = try XCTUnwrap(written["results"] as? [[String: Any]])
        let failing = try XCTUnwrap(entries.first { $0["result"] as? String == "fail" })
        XCTAssertEqual(failing["policy"] as? String, "atlas-stream-webhook")
        XCTAssertEqual(failing["message"] as? String, "spec.kafkaConfig.security.certificate.name: Required value: "
                       + #"the operator reads key "certificate" from this Secret for every Kafka connection"#)
        let resource = try XCTUnwrap((failing["resources"] as? [[String: Any]])?.first)
        XCTAssertEqual(resource["kind"] as? String, "AtlasStreamConnection")
        XCTAssertEqual(resource["uid"] as? String, "uid-no-cert")
        XCTAssertNotNil((failing["timestamp"] as? [String: Any])?["seconds"] as? Int)
        XCTAssertEqual(try results(of: "good"), ["pass all"])
        XCTAssertEqual(try results(of: "second"), ["pass all"])
        let summary = try XCTUnwrap(written["summary"] as? [String: Int])
        XCTAssertEqual(summary["fail"], 1)
        XCTAssertEqual(summary["pass"], 2)
        XCTAssertEqual((written["metadata"] as? [String: Any]).flatMap { $0["labels"] as? [String: String] },
                       ["app.kubernetes.io/managed-by": "atlas-stream-webhook"])

        let text = try metrics(server)
        XCTAssertTrue(text.contains(#"atlas_stream_webhook_audit_results{rule="kafka-certificate-required",result="fail"} 1"#), text)
        XCTAssertTrue(text.contains(#"atlas_stream_webhook_audit_results{rule="all",result="pass"} 2"#), text)
        XCTAssertTrue(text.contains("atlas_stream_webhook_leader 1"), text)
        XCTAssertFalse(text.contains("atlas_stream_webhook_audit_last_pass_timestamp_seconds 0\n"), text)
        XCTAssertEqual(try leaseHolder(), "replica-a")

        // Unchanged content is not written again; a namespace left without objects loses its report.
        let writes = try apiserver.requests()
        sleep(2)
        XCTAssertEqual(try apiserver.requests()["update policyreports"], writes["update policyreports"], "rewritten unchanged")
        for name in ["no-cert", "good", "second"] {
            try apiserver.delete(kind: "AtlasStreamConnection", namespace: "team", name: name)
        }
        try eventually("the report deleted", seconds: 20) { try report() == nil }
    }

    func testDeletedSecretTurnsItsConnectionToFailWithinTwoSeconds() throws {
        try startServer(config: try config("cluster:\n  missingReferences: deny"))
        try eventually("the report", seconds: 20) { try results(of: "good") == ["pass all"] }
        let deleted = Date()
        try apiserver.delete(kind: "Secret", namespace: "team", name: "creds")
        try eventually("fail", seconds: 2) { try results(of: "good") == ["fail credentials-secret-found"] }
        print("a deleted Secret reached the report after \(String(format: "%.2f", Date().timeIntervalSince(deleted))) s")
        XCTAssertEqual(try results().first { $0.name == "good" }?.message,
                       "spec.kafkaConfig.authentication.credentials: Not found: \"team/creds\"")
        try apiserver.put(ClusterObjects.secret("team", "creds", data: ["username": "alice", "password": "pw"]))
        try eventually("pass again", seconds: 2) { try results(of: "good") == ["pass all"] }
        // The Secret's label matters too: a change of what it references, not of the object.
        try apiserver.put(ClusterObjects.secret("team", "creds", labelled: false, data: ["username": "alice", "password": "pw"]))
        try eventually("unlabelled", seconds: 2) { try results(of: "good") == ["fail secret-labelled-for-operator"] }
    }

    func testRegistryFollowsTheConnectionsItLists() throws {
        try apiserver.put(ClusterObjects.project("team", "proj"))
        var instance = ClusterObjects.instance("team", "inst", registry: ["good", "second"])
        var spec = instance["spec"] as? [String: Any] ?? [:]
        spec["projectRef"] = ["name": "proj"]
        spec["clusterConfig"] = ["provider": "AWS", "region": "VIRGINIA_USA"]
        instance["spec"] = spec
        try apiserver.put(instance)
        try startServer()
        try eventually("the instance passes", seconds: 20) { try results(of: "inst") == ["pass all"] }
        // Another connection takes the spec.name of one the registry lists: the instance is judged again.
        try apiserver.put(kafka("second", specName: "good", credentials: "creds", certificate: "cert"))
        try eventually("duplicate spec.name", seconds: 2) { try results(of: "inst") == ["fail registry-spec-name-unique"] }
        try apiserver.delete(kind: "AtlasStreamConnection", namespace: "team", name: "second")
        try eventually("missing connection", seconds: 2) { try results(of: "inst") == ["warn registry-connection-found"] }
    }

    func testConflictOnUpdateIsRetried() throws {
        try startServer()
        try eventually("the report", seconds: 20) { try results(of: "good") == ["pass all"] }
        try apiserver.conflict(resource: "policyreports", count: 2)
        let before = try apiserver.requests()
        try apiserver.put(kafka("good", credentials: "creds", certificate: nil))
        try eventually("the report after conflicts", seconds: 20) { try results(of: "good") == ["fail kafka-certificate-required"] }
        let after = try apiserver.requests()
        XCTAssertEqual((after["update policyreports"] ?? 0) - (before["update policyreports"] ?? 0), 3, "two lost, one written")
        XCTAssertEqual((after["get policyreports"] ?? 0) - (before["get policyreports"] ?? 0), 2, "read again after each conflict")
    }

    func testWithoutThePolicyReportResourceItAuditsIntoMetricsOnly() throws {
        try apiserver.missing(["policyreports"])
        try apiserver.put(kafka("no-cert", credentials: "creds", certificate: nil))
        let server = try startServer()
        XCTAssertTrue(server.waitForLog("PolicyReports cannot be written", seconds: 20), server.log)
        try eventually("metrics", seconds: 20) {
            try metrics(server).contains(#"atlas_stream_webhook_audit_results{rule="kafka-certificate-required",result="fail"} 1"#)
        }
        try apiserver.put(kafka("other", credentials: "creds", certificate: nil))
        try eventually("metrics follow", seconds: 20) {
            try metrics(server).contains(#"atlas_stream_webhook_audit_results{rule="kafka-certificate-required",result="fail"} 2"#)
        }
        XCTAssertEqual(server.log.components(separatedBy: "PolicyReports cannot be written").count - 1, 1, "logged once")
    }

    func testReportsOffWritesNothingAndElectsNoLeader() throws {
        try apiserver.put(kafka("no-cert", credentials: "creds", certificate: nil))
        let server = try startServer(["--audit-reports=false"])
        try eventually("metrics", seconds: 20) {
            try metrics(server).contains(#"atlas_stream_webhook_audit_results{rule="kafka-certificate-required",result="fail"} 1"#)
        }
        XCTAssertTrue(try metrics(server).contains("atlas_stream_webhook_leader 0"))
        let requests = try apiserver.requests()
        XCTAssertNil(requests.keys.first { $0.hasSuffix("policyreports") || $0.hasSuffix("leases") }, "\(requests)")
    }

    /// Connections as large as etcd allows (1.5 MiB) do not stop the cache from listing
    /// nor fill the process: past what the audit keeps of one object they are recorded as
    /// not judged (`skip`), the others judged as usual. Runs the release binary.
    func testConnectionsAsLargeAsKubernetesAllowsAreNotKept() throws {
        let value = String(repeating: "x", count: 1_400_000)
        for batch in 0..<5 {
            try apiserver.bulkPut((0..<10).map { i in
                var object = kafka("huge-\(batch * 10 + i)", credentials: "creds", certificate: "cert")
                var spec = object["spec"] as? [String: Any] ?? [:]
                var config = spec["kafkaConfig"] as? [String: Any] ?? [:]
                config["config"] = ["huge.value": value]
                spec["kafkaConfig"] = config
                object["spec"] = spec
                return object
            })
        }
        let server = try startServer(["--log-level", "info"], release: true)
        try eventually("the report", seconds: 120) {
            try results(of: "good") == ["pass all"] && results(of: "huge-49") == ["skip all"]
        }
        let skipped = try results().filter { $0.result == "skip" }
        XCTAssertEqual(skipped.count, 50)
        XCTAssertTrue(skipped.first?.message.hasPrefix("not audited: it takes ") == true, skipped.first?.message ?? "")
        XCTAssertTrue(try metrics(server).contains(#"atlas_stream_webhook_audit_results{rule="all",result="skip"} 50"#))
        let peak = server.peakRSSKiB
        print("50 connections of 1.4 MB: peak RSS \(peak / 1024) MiB")
        XCTAssertLessThan(peak, 64 * 1024, "peak RSS \(peak) KiB")
        let audit = try runProcess(try executablePath(), ["audit", "--kubeconfig", try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)"),
                                                          "--strict"])
        XCTAssertEqual(audit.status, 1, "not judged fails only with --strict")
        XCTAssertTrue(audit.stdout.contains("team/AtlasStreamConnection/huge-0: not audited: it takes "), audit.stdout)
        XCTAssertTrue(audit.stdout.hasSuffix("audited 52 AtlasStream objects: 0 would be denied, 0 with warnings, 50 not judged\n"),
                      audit.stdout)
    }

    // MARK: - Two replicas

    func testTwoReplicasWriteOneReportAndTheOtherTakesOverWhenTheLeaderDies() throws {
        let first = try startServer(identity: "replica-a")
        try eventually("a leader", seconds: 20) { try leaseHolder() == "replica-a" }
        let second = try startServer(identity: "replica-b")
        try eventually("the report", seconds: 20) { try results(of: "good") == ["pass all"] }
        try eventually("the second replica judged", seconds: 20) {
            try metrics(second).contains(#"atlas_stream_webhook_audit_results{rule="all",result="pass"} 2"#)
        }
        XCTAssertTrue(try metrics(first).contains("atlas_stream_webhook_leader 1"))
        XCTAssertTrue(try metrics(second).contains("atlas_stream_webhook_leader 0"))
        let before = try apiserver.requests()
        XCTAssertEqual(before["create policyreports"], 1, "one report, one writer")

        try apiserver.put(kafka("good", credentials: "creds", certificate: nil))
        try eventually("the change reported", seconds: 20) { try results(of: "good") == ["fail kafka-certificate-required"] }
        sleep(2)
        let after = try apiserver.requests()
        XCTAssertEqual((after["update policyreports"] ?? 0) - (before["update policyreports"] ?? 0), 1, "written once: \(after)")
        XCTAssertEqual(after["create policyreports"], 1)

        // The leader dies without a word: the other takes the Lease once it expires.
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        let killed = Date()
        try eventually("takeover", seconds: Self.leaseSeconds + Self.retrySeconds + 3) { try leaseHolder() == "replica-b" }
        let takeover = Date().timeIntervalSince(killed)
        print("the second replica took the Lease \(String(format: "%.2f", takeover)) s after the leader was killed")
        XCTAssertLessThanOrEqual(takeover, Self.leaseSeconds + Self.retrySeconds + 0.5)
        try apiserver.put(kafka("good", credentials: "creds", certificate: "cert"))
        try eventually("the new leader writes", seconds: 20) { try results(of: "good") == ["pass all"] }
        XCTAssertTrue(try metrics(second).contains("atlas_stream_webhook_leader 1"))

        // Stopped, it gives the Lease up at once.
        second.stop()
        XCTAssertEqual(try leaseHolder(), "")
    }

    // MARK: - The audit command

    private func audit(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try runProcess(try executablePath(), ["audit"] + arguments)
        return (result.status, result.stdout, result.stderr)
    }

    func testAuditCommandPrintsExactlyTheBadObjects() throws {
        try apiserver.put(kafka("no-cert", credentials: "creds", certificate: nil))
        try apiserver.put(kafka("missing-creds", namespace: "other", credentials: "absent", certificate: "cert"))
        let kubeconfig = try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)")
        let result = try audit(["--kubeconfig", kubeconfig])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stdout, """
            other/AtlasStreamConnection/missing-creds: warning: spec.kafkaConfig.authentication.credentials: Secret other/absent not found
            other/AtlasStreamConnection/missing-creds: warning: spec.kafkaConfig.security.certificate: Secret other/cert not found
            team/AtlasStreamConnection/no-cert: spec.kafkaConfig.security.certificate.name: Required value: the operator reads key "certificate" from this Secret for every Kafka connection
            audited 4 AtlasStream objects: 1 would be denied, 1 with warnings

            """)
        let json = try audit(["--kubeconfig", kubeconfig, "--namespace", "team", "--output", "json"])
        XCTAssertEqual(json.status, 1)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(root["objects"] as? Int, 3)
        let findings = try XCTUnwrap(root["findings"] as? [[String: Any]])
        XCTAssertEqual(findings.count, 1)
        XCTAssertEqual(findings.first?["rule"] as? String, "kafka-certificate-required")
        XCTAssertEqual(findings.first?["field"] as? String, "spec.kafkaConfig.security.certificate.name")
        // Warnings fail only with --strict; a namespace with nothing wrong passes.
        XCTAssertEqual(try audit(["--kubeconfig", kubeconfig, "--namespace", "other"]).status, 0)
        XCTAssertEqual(try audit(["--kubeconfig", kubeconfig, "--namespace", "other", "--strict"]).status, 1)
        let requests = try apiserver.requests()
        XCTAssertNil(requests.keys.first { $0.hasPrefix("create") || $0.hasPrefix("update") || $0.hasPrefix("delete") },
                     "read-only: \(requests)")
    }

    func testAuditCommandExitsTwoWhenTheClusterCannotBeRead() throws {
        let kubeconfig = try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)")
        try apiserver.forbid(["atlasstreamconnections"])
        let forbidden = try audit(["--kubeconfig", kubeconfig])
        XCTAssertEqual(forbidden.status, 2)
        XCTAssertTrue(forbidden.stderr.contains("missing permission: list atlasstreamconnections (/apis/atlas.mongodb.com/v1) cluster-wide"),
                      forbidden.stderr)
        try apiserver.forbid([])

        let wrongToken = directory + "/wrong-token"
        try "not-the-token".write(toFile: wrongToken, atomically: true, encoding: .utf8)
        let unauthenticated = try audit(["--kubeconfig", try apiserver.kubeconfig(user: "tokenFile: \(wrongToken)", name: "wrong")])
        XCTAssertEqual(unauthenticated.status, 2)
        XCTAssertTrue(unauthenticated.stderr.contains("HTTP 401"), unauthenticated.stderr)

        // A port nobody listens on.
        let closed = try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)",
                                              cluster: "server: https://127.0.0.1:1\n    certificate-authority: \(apiserver.certificates.caCertificate)",
                                              name: "closed")
        let unreachable = try audit(["--kubeconfig", closed])
        XCTAssertEqual(unreachable.status, 2)
        XCTAssertTrue(unreachable.stderr.contains("cluster unreachable"), unreachable.stderr)
        XCTAssertEqual(unreachable.stdout, "")
    }
}
