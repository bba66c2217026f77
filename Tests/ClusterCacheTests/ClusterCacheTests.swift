import ClusterCache
import Foundation
import JSON
import KubernetesClient
import Logging
import Manifests
import Metrics
import StreamRules
import Synchronization
import TLS
import TestSupport
import XCTest

/// The cache against the stand-in API server (Tests/Scripts/fake_apiserver.py): real
/// TLS, real chunked watch streams, the faults a real API server shows.
final class ClusterCacheTests: XCTestCase {
    private var apiserver: FakeAPIServer!
    private var cache: ClusterCache?
    private let logs = LogLines()

    override func setUpWithError() throws {
        apiserver = try FakeAPIServer(name: name.filter { $0.isLetter })
    }

    override func tearDown() {
        cache?.stop()
        apiserver.stop()
    }

    private func startCache(namespaces: [String]? = nil, token: BearerToken? = nil) throws -> ClusterCache {
        let access = ClusterAccess(host: "localhost", port: Int(apiserver.port),
                                   tls: TLSClientConfigurationFromFile(apiserver.certificates.caCertificate),
                                   token: token ?? .file(apiserver.tokenFile), origin: "test")
        let logs = self.logs
        let logger = Logger(label: "test") { _ in CollectingLogHandler(lines: logs) }
        let cache = ClusterCache(client: try KubernetesAPIClient(access: access), namespaces: namespaces, logger: logger)
        self.cache = cache
        try cache.start()
        return cache
    }

    /// Waits until `condition` holds (the watch side is asynchronous).
    private func eventually(_ what: String, seconds: Double = 15, _ condition: () -> Bool,
                            file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            usleep(20_000)
        }
        XCTFail("timed out waiting for \(what); log: \(logs.all.suffix(10))", file: file, line: line)
    }

    func testListsInPagesThenFollowsAddsChangesAndDeletes() throws {
        // 1,200 Secrets: three pages of 500.
        for i in 0..<1_200 {
            try apiserver.put(ClusterObjects.secret("team", "s\(i)", labelled: i % 2 == 0, data: ["username": "u", "password": "p"]))
        }
        try apiserver.put(ClusterObjects.project("team", "proj"))
        let cache = try startCache()
        eventually("sync") { cache.isSynced }
        var snapshot = cache.snapshot()
        XCTAssertEqual(snapshot.secrets["team"]?.count, 1_200)
        XCTAssertEqual(snapshot.credentialKeys["team"]?.count, 600)
        XCTAssertEqual(snapshot.secrets["team"]?["s1"], SecretRecord(hasCredentialsLabel: false))
        XCTAssertEqual(snapshot.credentialKeys["team"]?["s0"].map { Set($0) }, ["username", "password"])
        XCTAssertNotNil(snapshot.projects["team"]?["proj"])
        XCTAssertGreaterThanOrEqual(try apiserver.requests()["list secrets"] ?? 0, 4, "3 metadata pages and 2 labelled pages")

        // Added, changed (label taken off: it leaves the labelled watch), deleted.
        try apiserver.put(ClusterObjects.connection("team", "c1", specName: "kafka"))
        try apiserver.put(ClusterObjects.secret("team", "s0", labelled: false))
        try apiserver.delete(kind: "AtlasProject", namespace: "team", name: "proj")
        eventually("the watch events") {
            let s = cache.snapshot()
            return s.connections["team"]?["c1"] == ConnectionRecord(specName: "kafka")
                && s.secrets["team"]?["s0"] == SecretRecord(hasCredentialsLabel: false)
                && s.credentialKeys["team"]?["s0"] == nil && s.projects["team"]?["proj"] == nil
        }
        snapshot = cache.snapshot()
        XCTAssertEqual(snapshot.credentialKeys["team"]?.count, 599)
        let metrics = metricsText(cache)
        XCTAssertTrue(metrics.contains("atlas_stream_webhook_cache_objects{resource=\"secrets\"} 1200"), metrics)
        XCTAssertTrue(metrics.contains("atlas_stream_webhook_cache_synced{resource=\"atlasprojects\"} 1"), metrics)
    }

    func testNotSyncedUntilEveryResourceListed() throws {
        try apiserver.send(["op": "slow_list", "seconds": 1.5])
        let cache = try startCache()
        usleep(500_000)
        XCTAssertFalse(cache.isSynced)
        XCTAssertTrue(metricsText(cache).contains("atlas_stream_webhook_cache_synced{resource=\"secrets\"} 0"))
        eventually("sync") { cache.isSynced }
    }

    func testRecoversFromDroppedWatches() throws {
        let cache = try startCache()
        eventually("sync") { cache.isSynced }
        eventually("watches open") { ((try? self.apiserver.requests()["watch atlasstreamconnections"]) ?? 0) >= 1 }
        try apiserver.send(["op": "drop_watches"])
        try apiserver.put(ClusterObjects.connection("team", "after-drop", specName: "x"))
        eventually("the object made while the watch was down") { cache.snapshot().connections["team"]?["after-drop"] != nil }
        XCTAssertGreaterThanOrEqual(try apiserver.requests()["watch atlasstreamconnections"] ?? 0, 2)
    }

    func testListsAgainWhenTheResourceVersionExpired() throws {
        try apiserver.put(ClusterObjects.connection("team", "old", specName: "x"))
        let cache = try startCache()
        eventually("sync") { cache.isSynced }
        // History compacted past the watch's resourceVersion, and the watches cut: the
        // next WATCH gets an ERROR event with a 410 Status, and the cache lists again.
        try apiserver.delete(kind: "AtlasStreamConnection", namespace: "team", name: "old")
        try apiserver.send(["op": "compact"])
        try apiserver.put(ClusterObjects.connection("team", "new", specName: "y"))
        try apiserver.send(["op": "compact"])
        try apiserver.send(["op": "drop_watches"])
        eventually("the relist") {
            let s = cache.snapshot()
            return metricsText(cache).contains(#"atlas_stream_webhook_watch_restarts_total{resource="atlasstreamconnections",reason="expired"} 1"#)
                && ((try? self.apiserver.requests()["list atlasstreamconnections"]) ?? 0) >= 2
                && s.connections["team"]?["new"] != nil && s.connections["team"]?["old"] == nil
        }
        XCTAssertTrue(logs.all.contains { $0.contains("resourceVersion expired") }, "\(logs.all)")
    }

    func testRetriesAfterServerErrorsAndKeepsWhatItHas() throws {
        try apiserver.put(ClusterObjects.project("team", "p"))
        try apiserver.send(["op": "fail", "count": 3, "code": 500])
        let cache = try startCache()
        eventually("sync despite three 500s", seconds: 30) { cache.isSynced }
        XCTAssertNotNil(cache.snapshot().projects["team"]?["p"])
        XCTAssertTrue(logs.all.contains { $0.contains("failed; retrying") && $0.contains("500") }, "\(logs.all)")
    }

    func testPermissionErrorsAreLoggedNamingThePermission() throws {
        try apiserver.send(["op": "forbid", "resources": ["secrets"]])
        let cache = try startCache(namespaces: ["team"])
        eventually("the others sync") { metricsText(cache).contains("cache_synced{resource=\"atlasprojects\"} 1") }
        eventually("the log") { self.logs.all.contains { $0.contains("missing permission: list secrets (/api/v1) in namespace team") } }
        XCTAssertFalse(cache.isSynced, "not ready while Secrets cannot be listed")
        usleep(1_500_000)  // two more retries (1 s, 2 s backoff) log nothing new within the minute
        XCTAssertEqual(logs.all.filter { $0.contains("missing permission") }.count, 2, "once per reflector (metadata and labelled)")
        try apiserver.send(["op": "forbid", "resources": [String]()])
        eventually("sync once allowed", seconds: 20) { cache.isSynced }
    }

    func testATokenRotatedOnDiskIsReadAgain() throws {
        let tokenCopy = apiserver.directory + "/client-token"
        try "token-one".write(toFile: tokenCopy, atomically: true, encoding: .utf8)
        let cache = try startCache(token: .file(tokenCopy))
        eventually("sync") { cache.isSynced }
        // The server now takes only the new token; the client's file is rotated too.
        try "token-two".write(toFile: apiserver.tokenFile, atomically: true, encoding: .utf8)
        try "token-two".write(toFile: tokenCopy, atomically: true, encoding: .utf8)
        try apiserver.send(["op": "drop_watches"])
        try apiserver.put(ClusterObjects.project("team", "after-rotation"))
        eventually("the watch with the new token") { cache.snapshot().projects["team"]?["after-rotation"] != nil }
    }

    func testAWrongTokenIsRefusedAndLogged() throws {
        let cache = try startCache(token: .fixed("not-the-token"))
        eventually("the log") { self.logs.all.contains { $0.contains("not authenticated") } }
        XCTAssertFalse(cache.isSynced)
    }

    func testWatchNamespacesLimitWhatIsCached() throws {
        try apiserver.put(ClusterObjects.project("team", "in"))
        try apiserver.put(ClusterObjects.project("other", "out"))
        let cache = try startCache(namespaces: ["team"])
        eventually("sync") { cache.isSynced }
        let snapshot = cache.snapshot()
        XCTAssertNotNil(snapshot.projects["team"]?["in"])
        XCTAssertNil(snapshot.projects["other"])
        XCTAssertEqual(snapshot.watchedNamespaces, ["team"])
        XCTAssertEqual(try apiserver.requests()["list atlasprojects"], 1)
    }

    func testTheCacheHoldsKeyNamesNeverValues() throws {
        try apiserver.put(ClusterObjects.secret("team", "creds", data: ["username": "alice", "password": "s3cr3t-value-42"]))
        let cache = try startCache()
        eventually("sync") { cache.isSynced }
        let snapshot = cache.snapshot()
        XCTAssertEqual(snapshot.credentialKeys["team"]?["creds"].map { Set($0) }, ["username", "password"])
        var dump = ""
        Swift.dump(snapshot, to: &dump)
        XCTAssertFalse(dump.contains("s3cr3t"), "no value in the snapshot")
        XCTAssertFalse(dump.contains(Data("s3cr3t-value-42".utf8).base64EncodedString()))
        XCTAssertFalse(logs.all.joined().contains("s3cr3t"))
        XCTAssertFalse(metricsText(cache).contains("s3cr3t"))
    }
}

extension ClusterCacheTests {
    /// The cache and `check --resolve-references` make the same records of the same
    /// objects: what the server judges against and what CI judges against agree.
    func testTheCacheAndManifestsMapObjectsToTheSameRecords() throws {
        var deleting = ClusterObjects.instance("team", "going", registry: ["c1"], deleting: true)
        deleting["spec"] = ["name": "going", "connectionRegistry": [["name": "c1"], ["name": "c2", "namespace": "shared"], ["name": ""]]]
        let objects: [[String: Any]] = [
            ClusterObjects.secret("team", "creds", data: ["username": "u", "password": "p"]),
            ClusterObjects.secret("team", "cert", data: ["certificate": "c"]),
            ClusterObjects.secret("team", "plain", labelled: false, data: ["password": "p"]),
            ClusterObjects.secret("shared", "other", data: [:]),
            ClusterObjects.project("team", "proj"),
            ClusterObjects.connection("team", "c1", specName: "kafka"),
            ClusterObjects.connection("shared", "c2", specName: "sample"),
            ClusterObjects.instance("team", "i1", registry: ["c1", "c1"]),
            deleting,
        ]
        for object in objects { try apiserver.put(object) }
        let cache = try startCache()
        eventually("sync") { cache.isSynced }
        let served = cache.snapshot()

        var builder = ManifestSnapshotBuilder(defaultNamespace: "default")
        for object in objects {
            let json = try JSONSerialization.data(withJSONObject: object)
            builder.add(try JSONReader.parse(Array(json)).root)
        }
        let checked = builder.snapshot
        XCTAssertEqual(served.secrets, checked.secrets)
        XCTAssertEqual(served.credentialKeys.mapValues { $0.mapValues(Set.init) }, checked.credentialKeys.mapValues { $0.mapValues(Set.init) })
        XCTAssertEqual(served.projects, checked.projects)
        XCTAssertEqual(served.connections, checked.connections)
        XCTAssertEqual(served.instances, checked.instances)
        XCTAssertEqual(served.instancesListing(ObjectReference(namespace: "shared", name: "c2")).0,
                       checked.instancesListing(ObjectReference(namespace: "shared", name: "c2")).0)
        // The mapping read what it should: not trivially equal.
        XCTAssertEqual(checked.secrets["team"]?["plain"], SecretRecord(hasCredentialsLabel: false))
        XCTAssertEqual(checked.credentialKeys["team"]?["creds"].map(Set.init), ["username", "password"])
        XCTAssertNil(checked.credentialKeys["team"]?["plain"])
        XCTAssertEqual(checked.connections["shared"]?["c2"], ConnectionRecord(specName: "sample"))
        XCTAssertEqual(checked.instances["team"]?["going"]?.isBeingDeleted, true)
        XCTAssertEqual(checked.instances["team"]?["going"]?.registry,
                       [ObjectReference(namespace: "team", name: "c1"), ObjectReference(namespace: "shared", name: "c2")])
    }
}

private func TLSClientConfigurationFromFile(_ path: String) -> TLSClientConfiguration {
    TLSClientConfiguration(trustedCertificatesPEM: Array((FileManager.default.contents(atPath: path) ?? Data())))
}

/// The cache's families alone, rendered as `/metrics` renders them.
func metricsText(_ cache: ClusterCache) -> String {
    let registry = MetricsRegistry()
    cache.registerMetrics(in: registry)
    return registry.render()
}

/// Log lines kept in memory for assertions.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

struct CollectingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.append("\(event.level) \(event.message) \(fields)")
    }
}
