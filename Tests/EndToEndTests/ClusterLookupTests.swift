import Foundation
import TLS
import TestSupport
import XCTest

/// Cluster lookups end to end: the real server with `--kubeconfig` pointing at the
/// stand-in API server (Tests/Scripts/fake_apiserver.py, a test double), reviewed over
/// TLS with curl.
final class ClusterLookupTests: XCTestCase {
    private var apiserver: FakeAPIServer!
    private var server: ServeProcess?
    private var certificates: DevelopmentCertificates.Paths!
    private var directory = ""
    private static let secretValue = "s3cr3t-value-42"

    override func setUpWithError() throws {
        apiserver = try FakeAPIServer(name: "e2e-" + name.filter { $0.isLetter })
        directory = try temporaryDirectory("cluster-e2e")
        certificates = try DevelopmentCertificates.generate(in: directory + "/serving")
        try apiserver.put(ClusterObjects.secret("team", "creds", data: ["username": "alice", "password": Self.secretValue]))
        try apiserver.put(ClusterObjects.secret("team", "cert", data: ["certificate": "PEM"]))
        try apiserver.put(ClusterObjects.project("team", "proj"))
        try apiserver.put(ClusterObjects.connection("team", "c1", specName: "kafka"))
        try apiserver.put(ClusterObjects.connection("team", "c2", specName: "kafka"))
        try apiserver.put(ClusterObjects.connection("team", "c3", specName: "other"))
        try apiserver.put(ClusterObjects.instance("team", "inst", registry: ["c1"]))
    }

    override func tearDown() {
        server?.stop()
        apiserver.stop()
    }

    private func startServer(_ extra: [String] = [], release: Bool = false) throws -> ServeProcess {
        let kubeconfig = try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)")
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--kubeconfig", kubeconfig, "--shutdown-delay", "0s", "--log-level", "debug"] + extra,
                                      release: release)
        self.server = server
        return server
    }

    private func get(_ path: String, _ server: ServeProcess) throws -> (Int, String) {
        let result = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-w", "\n%{http_code}",
                                                      "https://localhost:\(server.port)\(path)"])
        let code = Int(result.stdout.split(separator: "\n").last ?? "") ?? 0
        return (code, String(result.stdout.dropLast(String(code).count + 1)))
    }

    /// The `response` of a review at /validate.
    private func review(_ request: [String: Any], _ server: ServeProcess) throws -> [String: Any] {
        var full = request
        full["uid"] = UUID().uuidString
        let body = try JSONSerialization.data(withJSONObject: ["apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                                               "request": full])
        let result = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-H", "Content-Type: application/json",
                                                      "--data-binary", "@-", "https://localhost:\(server.port)/validate"], stdin: body)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.stdout)
        return try XCTUnwrap(root["response"] as? [String: Any])
    }

    private func create(_ object: [String: Any]) -> [String: Any] {
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        return ["kind": ["group": "atlas.mongodb.com", "version": "v1", "kind": object["kind"] ?? ""], "operation": "CREATE",
                "namespace": metadata["namespace"] ?? "", "name": metadata["name"] ?? "", "object": object,
                "userInfo": ["username": "alice"]]
    }

    private func kafka(credentials: String) -> [String: Any] {
        ["apiVersion": "atlas.mongodb.com/v1", "kind": "AtlasStreamConnection", "metadata": ["name": "k", "namespace": "team"],
         "spec": ["name": "k", "type": "Kafka",
                  "kafkaConfig": ["bootstrapServers": "broker:9092",
                                  "authentication": ["mechanism": "PLAIN", "credentials": ["name": credentials, "namespace": "team"]],
                                  "security": ["protocol": "SSL", "certificate": ["name": "cert", "namespace": "team"]]]]]
    }

    private func warnings(_ response: [String: Any]) -> [String] { response["warnings"] as? [String] ?? [] }

    private func waitReady(_ server: ServeProcess) throws {
        try eventually("ready") { try get("/readyz", server).0 == 200 }
    }

    func testReadinessWaitsForEveryCache() throws {
        try apiserver.send(["op": "slow_list", "seconds": 2])
        let server = try startServer()
        let (code, text) = try get("/readyz", server)
        XCTAssertEqual(code, 503)
        XCTAssertTrue(text.contains("cluster cache"), text)
        XCTAssertEqual(try get("/healthz", server).0, 200, "alive while it syncs")
        try waitReady(server)
        let metrics = try get("/metrics", server).1
        for resource in ["secrets", "credential_secrets", "atlasstreamconnections", "atlasstreaminstances", "atlasprojects"] {
            XCTAssertTrue(metrics.contains("atlas_stream_webhook_cache_synced{resource=\"\(resource)\"} 1"), metrics)
        }
        XCTAssertTrue(metrics.contains("atlas_stream_webhook_cache_objects{resource=\"atlasstreamconnections\"} 3"), metrics)
    }

    func testSecretWarningsFollowTheCluster() throws {
        let server = try startServer()
        try waitReady(server)
        let request = create(kafka(credentials: "new-creds"))
        func credentialWarnings() throws -> [String] {
            warnings(try review(request, server)).filter { $0.hasPrefix("spec.kafkaConfig.authentication.credentials") }
        }
        XCTAssertEqual(try credentialWarnings(), ["spec.kafkaConfig.authentication.credentials: Secret team/new-creds not found"])
        try apiserver.put(ClusterObjects.secret("team", "new-creds", labelled: false, data: ["username": "u", "password": "p"]))
        try eventually("lacks label") {
            try credentialWarnings() == ["spec.kafkaConfig.authentication.credentials: Secret team/new-creds lacks label atlas.mongodb.com/type=credentials"]
        }
        try apiserver.put(ClusterObjects.secret("team", "new-creds", data: ["username": "u"]))
        try eventually("missing key") {
            try credentialWarnings() == [#"spec.kafkaConfig.authentication.credentials: Secret team/new-creds has no key "password""#]
        }
        try apiserver.put(ClusterObjects.secret("team", "new-creds", data: ["username": "u", "password": "p"]))
        try eventually("no warning") { try credentialWarnings().isEmpty }
        XCTAssertEqual(try review(request, server)["allowed"] as? Bool, true)
        try apiserver.delete(kind: "Secret", namespace: "team", name: "new-creds")
        try eventually("not found again") { try credentialWarnings().count == 1 }

        let metrics = try get("/metrics", server).1
        XCTAssertTrue(metrics.contains(#"atlas_stream_webhook_rule_findings_total{rule="credentials-secret-found",action="warn"}"#), metrics)
        XCTAssertFalse(metrics.contains(#"atlas_stream_webhook_rule_findings_total{rule="credentials-secret-found",action="warn"} 0"#), metrics)
    }

    func testMissingReferencesDeniedWhenConfigured() throws {
        let config = directory + "/config.yaml"
        try "cluster:\n  missingReferences: deny\n".write(toFile: config, atomically: true, encoding: .utf8)
        let server = try startServer(["--config", config])
        try waitReady(server)
        let response = try review(create(kafka(credentials: "absent")), server)
        XCTAssertEqual(response["allowed"] as? Bool, false)
        let status = try XCTUnwrap(response["status"] as? [String: Any])
        let causes = try XCTUnwrap((status["details"] as? [String: Any])?["causes"] as? [[String: Any]])
        XCTAssertEqual(causes.first?["reason"] as? String, "FieldValueNotFound")
        XCTAssertEqual(causes.first?["message"] as? String, #"Not found: "team/absent""#)
        XCTAssertEqual(causes.first?["field"] as? String, "spec.kafkaConfig.authentication.credentials")
    }

    func testInstanceReferencesAndTheSameSpecName() throws {
        let server = try startServer()
        try waitReady(server)
        var instance = ClusterObjects.instance("team", "new", registry: ["c1", "c3", "ghost"])
        var spec = instance["spec"] as? [String: Any] ?? [:]
        spec["projectRef"] = ["name": "proj"]
        spec["clusterConfig"] = ["provider": "AWS", "region": "VIRGINIA_USA", "tier": "SP10"]
        instance["spec"] = spec
        let response = try review(create(instance), server)
        XCTAssertEqual(response["allowed"] as? Bool, true)
        XCTAssertEqual(warnings(response), ["spec.connectionRegistry[2]: AtlasStreamConnection team/ghost not found"])

        spec["connectionRegistry"] = [["name": "c1"], ["name": "c2"]]
        instance["spec"] = spec
        let denied = try review(create(instance), server)
        XCTAssertEqual(denied["allowed"] as? Bool, false)
        let message = (denied["status"] as? [String: Any])?["message"] as? String ?? ""
        XCTAssertTrue(message.contains(#"spec.connectionRegistry[1].name: Invalid value: "c2": its spec.name "kafka" is already used by spec.connectionRegistry[0]"#), message)
    }

    func testDeleteOfAListedConnectionIsForbiddenUntilUnlisted() throws {
        let server = try startServer()
        try waitReady(server)
        let deletion: [String: Any] = [
            "kind": ["group": "atlas.mongodb.com", "version": "v1", "kind": "AtlasStreamConnection"], "operation": "DELETE",
            "namespace": "team", "name": "c1", "userInfo": ["username": "alice"],
            "oldObject": ClusterObjects.connection("team", "c1", specName: "kafka"),
        ]
        let denied = try review(deletion, server)
        XCTAssertEqual(denied["allowed"] as? Bool, false)
        let status = try XCTUnwrap(denied["status"] as? [String: Any])
        XCTAssertEqual(status["code"] as? Int, 403)
        XCTAssertEqual(status["reason"] as? String, "Forbidden")
        XCTAssertEqual(status["message"] as? String,
                       #"AtlasStreamConnection.atlas.mongodb.com "c1" is forbidden: listed in spec.connectionRegistry of AtlasStreamInstance team/inst; remove it there first"#)
        // Unlisted in the cluster: the DELETE goes through.
        try apiserver.put(ClusterObjects.instance("team", "inst", registry: ["c3"]))
        try eventually("allowed once unlisted") { try review(deletion, server)["allowed"] as? Bool == true }
        var other = deletion
        other["name"] = "c3"
        other["oldObject"] = ClusterObjects.connection("team", "c3", specName: "other")
        XCTAssertEqual(try review(other, server)["allowed"] as? Bool, false)
        // An instance being deleted no longer holds its connections.
        try apiserver.put(ClusterObjects.instance("team", "inst", registry: ["c3"], deleting: true))
        try eventually("allowed while the instance goes") { try review(other, server)["allowed"] as? Bool == true }
    }

    func testRecoversAfterDroppedWatchesExpiryAndTokenRotation() throws {
        let server = try startServer()
        try waitReady(server)
        var instance = ClusterObjects.instance("team", "x", registry: [])
        instance["spec"] = ["name": "x", "clusterConfig": ["provider": "AWS", "region": "VIRGINIA_USA", "tier": "SP10"],
                            "projectRef": ["name": "later"]]
        func projectWarnings() throws -> [String] { warnings(try review(create(instance), server)) }
        XCTAssertEqual(try projectWarnings(), ["spec.projectRef: AtlasProject team/later not found"])
        // Watches cut, history compacted (410 on resume), the token rotated on disk.
        try "token-rotated".write(toFile: apiserver.tokenFile, atomically: true, encoding: .utf8)
        try apiserver.send(["op": "compact"])
        try apiserver.send(["op": "drop_watches"])
        try apiserver.put(ClusterObjects.project("team", "later"))
        try eventually("the project after relist", seconds: 20) { try projectWarnings().isEmpty }
        XCTAssertTrue(server.waitForLog("resourceVersion expired", seconds: 5))
        XCTAssertEqual(try get("/readyz", server).0, 200)
    }

    func testNoSecretValueInLogsOrMetrics() throws {
        let server = try startServer()
        try waitReady(server)
        _ = try review(create(kafka(credentials: "creds")), server)
        try apiserver.put(ClusterObjects.secret("team", "creds", data: ["username": "bob", "password": Self.secretValue]))
        usleep(300_000)
        let metrics = try get("/metrics", server).1
        XCTAssertTrue(server.waitForLog("admission", seconds: 5))
        let encoded = Data(Self.secretValue.utf8).base64EncodedString()
        for text in [metrics, server.log] {
            XCTAssertFalse(text.contains(Self.secretValue))
            XCTAssertFalse(text.contains(encoded))
        }
        XCTAssertTrue(server.log.contains("cache synced"), server.log)
    }

    /// A tenant's Secrets as large as Kubernetes allows, with kubectl's last-applied copy
    /// in an annotation, cannot grow the process: it keeps records, not objects, through
    /// start, a forced 410 relist and a second start, and answers reviews throughout.
    func testHugeSecretsCannotExhaustMemory() throws {
        try apiserver.bulkSecrets(namespace: "team", count: 200, prefix: "huge", labelled: true,
                                  dataBytes: 900_000, annotationBytes: 900_000)
        try apiserver.bulkSecrets(namespace: "team", count: 500, prefix: "annotated", labelled: false,
                                  dataBytes: 16, annotationBytes: 250_000)
        let review = create(kafka(credentials: "huge-7"))
        for start in 0..<2 {
            // Info: the reviews sent while it lists would fill the unread log pipe at debug.
            let server = try startServer(["--log-level", "info"], release: true)
            var answered = 0
            try eventually("ready with the huge Secrets cached", seconds: 120) {
                // Reviews are answered while the lists stream in.
                if try self.review(review, server)["allowed"] != nil { answered += 1 }
                return try get("/readyz", server).0 == 200
            }
            XCTAssertGreaterThan(answered, 0)
            if start == 0 {
                // History compacted and watches cut: every reflector lists again (a write
                // after the compaction, as a real API server always keeps its latest revision).
                try apiserver.send(["op": "compact"])
                try apiserver.put(ClusterObjects.project("team", "after-compaction"))
                try apiserver.send(["op": "drop_watches"])
                XCTAssertTrue(server.waitForLog("resourceVersion expired", seconds: 30))
                try eventually("relisted", seconds: 120) {
                    try get("/metrics", server).1.contains(#"atlas_stream_webhook_watch_restarts_total{resource="credential_secrets",reason="expired"} 1"#)
                        && get("/readyz", server).0 == 200
                }
            }
            XCTAssertEqual(warnings(try self.review(review, server)).filter { $0.contains("huge-7") }, [],
                           "found, labelled, with both keys")
            let peak = server.peakRSSKiB
            print("huge Secrets, start \(start + 1): peak RSS \(peak / 1024) MiB")
            XCTAssertLessThan(peak, 96 * 1024, "peak RSS \(peak) KiB")
            server.stop()
            self.server = nil
        }
    }

    /// Whatever a hostile API server sends (an endless chunk, a 64 MiB event, malformed
    /// JSON, resets), the process stays small, answers reviews throughout from its last
    /// snapshot, and recovers once the server behaves.
    func testAHostileAPIServerCannotHurtAdmission() throws {
        let server = try startServer(["--log-level", "info"], release: true)
        try waitReady(server)
        let request = create(kafka(credentials: "creds"))
        for (fault, arguments) in [("endless_chunk", ["op": "oversize", "what": "endless_chunk", "bytes": 0] as [String: Any]),
                                   ("64 MiB event", ["op": "oversize", "what": "event", "bytes": 64 * 1024 * 1024]),
                                   ("malformed event", ["op": "malformed", "what": "event_json"]),
                                   ("resets", ["op": "reset", "count": 10])] {
            try apiserver.send(arguments)
            try apiserver.put(ClusterObjects.project("team", "touch-\(fault.filter(\.isLetter))"))
            try apiserver.send(["op": "drop_watches"])
            let started = Date()
            while Date().timeIntervalSince(started) < 3 {
                XCTAssertEqual(try review(request, server)["allowed"] as? Bool, true, fault)
            }
        }
        try apiserver.put(ClusterObjects.project("team", "recovered"))
        var instance = ClusterObjects.instance("team", "y", registry: [])
        instance["spec"] = ["name": "y", "clusterConfig": ["provider": "AWS", "region": "VIRGINIA_USA", "tier": "SP10"],
                            "projectRef": ["name": "recovered"]]
        try eventually("recovered", seconds: 60) { warnings(try review(create(instance), server)).isEmpty }
        let peak = server.peakRSSKiB
        print("hostile API server: peak RSS \(peak / 1024) MiB")
        XCTAssertLessThan(peak, 64 * 1024, "peak RSS \(peak) KiB")
    }

    /// A reference the namespace policy refuses says nothing of the Secret: the answers
    /// are the same bytes whether it exists, is labelled, has its keys, or not.
    func testNoExistenceOracleAcrossNamespaces() throws {
        let server = try startServer()
        try waitReady(server)
        var object = kafka(credentials: "theirs")
        var spec = object["spec"] as? [String: Any] ?? [:]
        var kafkaConfig = spec["kafkaConfig"] as? [String: Any] ?? [:]
        kafkaConfig["authentication"] = ["mechanism": "PLAIN", "credentials": ["name": "theirs", "namespace": "other-team"]]
        spec["kafkaConfig"] = kafkaConfig
        object["spec"] = spec
        var request = create(object)
        request["uid"] = "fixed-uid"
        let body = try JSONSerialization.data(withJSONObject: ["apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                                               "request": request])
        func answer() throws -> String {
            try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-H", "Content-Type: application/json",
                                             "--data-binary", "@-", "https://localhost:\(server.port)/validate"], stdin: body).stdout
        }
        let absent = try answer()
        XCTAssertTrue(absent.contains("may not reference a Secret in namespace"), absent)
        var answers = [absent]
        for (labelled, data) in [(false, ["username": "u"]), (true, [:]), (true, ["username": "u", "password": "p"])] {
            try apiserver.put(ClusterObjects.secret("other-team", "theirs", labelled: labelled, data: data))
            usleep(500_000)
            answers.append(try answer())
        }
        XCTAssertEqual(Set(answers).count, 1, "\(answers)")
    }

    /// Before the first list and while the watches are quiet, references are not judged:
    /// the configured warning or a 503, never a "not found"; and it comes back on its own.
    func testNoVerdictBeforeSyncOrWhileStale() throws {
        try apiserver.holdLists(true)
        try apiserver.bookmarkInterval(0.2)
        let server = try startServer(["--cache-not-ready", "deny", "--cache-stale-after", "2s", "--not-ready-when-stale", "true"])
        let missing = create(kafka(credentials: "absent"))
        var response = try review(missing, server)
        XCTAssertEqual(response["allowed"] as? Bool, false)
        var status = try XCTUnwrap(response["status"] as? [String: Any])
        XCTAssertEqual(status["code"] as? Int, 503)
        XCTAssertEqual(status["message"] as? String, "cluster lookups are not ready; references were not checked")
        XCTAssertEqual(try get("/readyz", server).0, 503)
        XCTAssertTrue(try get("/metrics", server).1.contains(#"atlas_stream_webhook_cache_synced{resource="secrets"} 0"#))
        try apiserver.holdLists(false)
        try waitReady(server)
        XCTAssertEqual(warnings(try review(missing, server)), ["spec.kafkaConfig.authentication.credentials: Secret team/absent not found"])

        try apiserver.stallWatches(true)
        try eventually("stale", seconds: 10) { try get("/readyz", server).0 == 503 }
        response = try review(missing, server)
        status = try XCTUnwrap(response["status"] as? [String: Any])
        XCTAssertEqual(status["code"] as? Int, 503)
        XCTAssertTrue(try get("/readyz", server).1.contains("stale"))
        try apiserver.stallWatches(false)
        try eventually("fresh again", seconds: 10) { try get("/readyz", server).0 == 200 }
        XCTAssertEqual(try review(missing, server)["allowed"] as? Bool, true)
    }

    func testAllowPolicyWarnsOnceBeforeSync() throws {
        try apiserver.holdLists(true)
        let server = try startServer()
        let response = try review(create(kafka(credentials: "absent")), server)
        XCTAssertEqual(response["allowed"] as? Bool, true)
        XCTAssertEqual(warnings(response).filter { $0.contains("cluster") }, ["cluster lookups are not ready; references were not checked"])
        XCTAssertFalse(warnings(response).contains { $0.contains("not found") })
        try apiserver.holdLists(false)
    }

    func testUnsupportedKubeconfigUsersAreAStartupError() throws {
        let exec = try apiserver.kubeconfig(user: "exec:\n      command: aws-iam-authenticator", name: "exec")
        let result = try runProcess(try executablePath(), ["serve", "--listen", "127.0.0.1:0", "--tls-cert", certificates.certificate,
                                                           "--tls-key", certificates.privateKey, "--kubeconfig", exec])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains(#"user \"tester\" authenticates with exec"#), result.stderr)
        let forced = try runProcess(try executablePath(), ["serve", "--listen", "127.0.0.1:0", "--tls-cert", certificates.certificate,
                                                           "--tls-key", certificates.privateKey, "--cluster-lookups=true"])
        XCTAssertEqual(forced.status, 1)
        XCTAssertTrue(forced.stderr.contains("no cluster configuration"), forced.stderr)
    }
}
