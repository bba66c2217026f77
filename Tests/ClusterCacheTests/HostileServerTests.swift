import ClusterCache
import Foundation
import KubernetesClient
import Logging
import Metrics
import StreamRules
import TLS
import TestSupport
import XCTest

/// The cache against an API server that misbehaves (the stand-in of
/// Tests/Scripts/fake_apiserver.py, driven into each fault): it never crashes, never
/// holds more than it keeps, backs off on every restart path, never judges from a cache
/// that has not listed or has gone quiet, and recovers once the server behaves.
final class HostileServerTests: XCTestCase {
    private var apiserver: FakeAPIServer!
    private var cache: ClusterCache?
    private let logs = LogLines()

    override func setUpWithError() throws {
        apiserver = try FakeAPIServer(name: "hostile-" + name.filter { $0.isLetter })
    }

    override func tearDown() {
        cache?.stop()
        apiserver.stop()
    }

    private func startCache(namespaces: [String]? = ["team"], timing: ReflectorTiming = ReflectorTiming(),
                            staleAfter: Duration = .seconds(180)) throws -> ClusterCache {
        let access = ClusterAccess(host: "localhost", port: Int(apiserver.port),
                                   tls: TLSClientConfiguration(trustedCertificatesPEM: Array(
                                       FileManager.default.contents(atPath: apiserver.certificates.caCertificate) ?? Data())),
                                   token: .file(apiserver.tokenFile), origin: "test")
        let logs = self.logs
        let logger = Logger(label: "test") { _ in CollectingLogHandler(lines: logs) }
        let cache = ClusterCache(client: try KubernetesAPIClient(access: access), namespaces: namespaces, logger: logger,
                                 timing: timing, staleAfter: staleAfter)
        self.cache = cache
        try cache.start()
        return cache
    }

    private func eventually(_ what: String, seconds: Double = 15, _ condition: () throws -> Bool,
                            file: StaticString = #filePath, line: UInt = #line) rethrows {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            usleep(20_000)
        }
        XCTFail("timed out waiting for \(what); log: \(logs.all.suffix(10))", file: file, line: line)
    }

    private func isReady(_ cache: ClusterCache) -> Bool {
        if case .ready = cache.view() { return true }
        return false
    }

    /// Requests of one kind (`list atlasprojects`) in the stand-in's log, as times.
    private func times(_ what: String) throws -> [Double] {
        try apiserver.requestLog().filter { $0.what == what }.map(\.time)
    }

    // MARK: - Memory: what is kept, not what is sent

    func testHugeSecretsAreSkippedAndOnlyKeyNamesKept() throws {
        // 12 labelled Secrets of ~900 KB data plus a ~900 KB last-applied annotation each.
        try apiserver.bulkSecrets(namespace: "team", count: 12, prefix: "big", labelled: true,
                                  dataBytes: 900_000, annotationBytes: 900_000)
        let cache = try startCache()
        eventually("sync", seconds: 30) { isReady(cache) }
        let snapshot = cache.snapshot()
        XCTAssertEqual(snapshot.secrets["team"]?.count, 12)
        XCTAssertEqual(snapshot.credentialKeys["team"]?["big-0"].map(Set.init), ["username", "password"])
        // Nothing of a value or an annotation is in the cache.
        var dump = ""
        Swift.dump(snapshot, to: &dump)
        XCTAssertLessThan(dump.utf8.count, 20_000, "the snapshot holds records, not objects")
    }

    func testAnObjectOverTheCapIsAnErrorNotABuffer() throws {
        try apiserver.put(ClusterObjects.project("team", "p"))
        let limits = StreamLimits(maxEventBytes: 1024 * 1024, maxKeptBytes: 64 * 1024)
        let cache = try startCache(timing: ReflectorTiming(limits: limits))
        eventually("sync") { isReady(cache) }
        // An event of 8 MiB (streamed by the stand-in): refused, the watch restarted.
        try apiserver.oversize(what: "event", bytes: 8 * 1024 * 1024)
        eventually("the oversized event refused") { self.logs.all.contains { $0.contains("larger than") } }
        try apiserver.put(ClusterObjects.project("team", "after"))
        eventually("recovered after the oversized event", seconds: 30) {
            cache.snapshot().projects["team"]?["after"] != nil
        }
    }

    func testAnOversizedListPageIsRefusedAndThePageShrinks() throws {
        try apiserver.put(ClusterObjects.project("team", "p"))
        // 100 items asked for at 64 KiB each: a 6.25 MiB page cap, and the stand-in sends 8 MiB.
        try apiserver.oversize(what: "list", bytes: 8 * 1024 * 1024)
        let cache = try startCache(timing: ReflectorTiming(limits: StreamLimits(pageBytesPerItem: 64 * 1024)))
        eventually("ready after the oversized page", seconds: 30) { isReady(cache) }
        XCTAssertTrue(logs.all.contains { $0.contains("larger than") && $0.contains("page_size=50") }, "\(logs.all)")
    }

    func testAnEndlessChunkIsCutAtTheEventCap() throws {
        let cache = try startCache(timing: ReflectorTiming(limits: StreamLimits(maxEventBytes: 1024 * 1024)))
        eventually("ready") { isReady(cache) }
        // The first watch stream to look claims the endless chunk.
        try eventually("five watches open") { try self.apiserver.openWatches() == 5 }
        try apiserver.oversize(what: "endless_chunk", bytes: 0)
        eventually("the endless event refused", seconds: 30) { self.logs.all.contains { $0.contains("larger than 1048576") } }
        try apiserver.put(ClusterObjects.project("team", "after"))
        eventually("recovered", seconds: 30) { cache.snapshot().projects["team"]?["after"] != nil }
    }

    // MARK: - No verdict the cache cannot back

    func testNotReadyUntilListedThenReadyWithinSeconds() throws {
        try apiserver.holdLists(true)
        let cache = try startCache()
        usleep(1_000_000)
        guard case .notReady(let reason) = cache.view() else { return XCTFail("ready before any list") }
        XCTAssertTrue(reason.contains("not listed yet"), reason)
        XCTAssertTrue(metricsText(cache).contains(#"atlas_stream_webhook_cache_synced{resource="secrets"} 0"#))
        try apiserver.holdLists(false)
        eventually("ready once the lists are answered", seconds: 10) { isReady(cache) }
        XCTAssertTrue(metricsText(cache).contains(#"atlas_stream_webhook_cache_synced{resource="secrets"} 1"#))
    }

    func testStaleWhenTheWatchGoesQuietThenFreshAgain() throws {
        try apiserver.bookmarkInterval(0.2)
        let cache = try startCache(staleAfter: .milliseconds(1_500))
        eventually("ready") { isReady(cache) }
        try apiserver.stallWatches(true)
        eventually("stale", seconds: 10) {
            if case .notReady(let reason) = cache.view() { return reason.contains("stale") }
            return false
        }
        let metrics = metricsText(cache)
        let stale = metrics.split(separator: "\n").filter { $0.hasPrefix("atlas_stream_webhook_cache_synced{") && $0.hasSuffix(" 0") }
        XCTAssertFalse(stale.isEmpty, metrics)
        XCTAssertTrue(metrics.contains("atlas_stream_webhook_cache_last_progress_timestamp_seconds{resource=\"atlasprojects\"} 1"),
                      metrics)
        try apiserver.stallWatches(false)
        eventually("fresh again", seconds: 10) { isReady(cache) }
    }

    func testAQuietWatchIsReconnectedAfterTheIdleTimeout() throws {
        let limits = StreamLimits(watchIdleSeconds: 1)
        let cache = try startCache(timing: ReflectorTiming(limits: limits))
        eventually("ready") { isReady(cache) }
        try apiserver.stallWatches(true)
        let watchesBefore = try times("watch atlasprojects").count
        // The stalled watch is given up after a second and a new one is opened.
        try eventually("a new watch", seconds: 10) { try self.times("watch atlasprojects").count > watchesBefore }
        try apiserver.stallWatches(false)
        try apiserver.put(ClusterObjects.project("team", "later"))
        eventually("events again") { cache.snapshot().projects["team"]?["later"] != nil }
    }

    // MARK: - Backoff on every restart path

    func testAPersistent410IsBackedOff() throws {
        let cache = try startCache()
        eventually("ready") { isReady(cache) }
        try apiserver.clearLog()
        try apiserver.gone(true)
        try apiserver.dropWatches()
        usleep(10_000_000)
        try apiserver.gone(false)
        let lists = try times("list atlasprojects").count
        XCTAssertLessThanOrEqual(lists, 10, "lists of one reflector in 10 s of 410s")
        XCTAssertGreaterThanOrEqual(lists, 2, "it did list again")
        XCTAssertLessThanOrEqual(logs.all.filter { $0.contains("resourceVersion expired") }.count, 5,
                                 "one line per reflector a minute")
        eventually("ready again", seconds: 40) { isReady(cache) }
    }

    func testAWatchThatEndsAtOnceIsSpacedByBackoff() throws {
        let cache = try startCache()
        eventually("ready") { isReady(cache) }
        try apiserver.clearLog()
        try apiserver.watchEventsThenClose(1)
        usleep(8_000_000)
        try apiserver.watchEventsThenClose(nil)
        let watches = try times("watch atlasprojects")
        XCTAssertGreaterThanOrEqual(watches.count, 3)
        XCTAssertLessThanOrEqual(watches.count, 6, "1 s, 2 s, 4 s apart: \(watches)")
        let gaps = zip(watches.dropFirst(), watches).map { $0 - $1 }
        XCTAssertGreaterThan(gaps.last ?? 0, gaps.first ?? 0, "growing gaps: \(gaps)")
        XCTAssertGreaterThan(gaps.first ?? 0, 0.7)
    }

    func testRetryAfterIsHonoured() throws {
        let cache = try startCache()
        eventually("ready") { isReady(cache) }
        try eventually("watches open") { try self.times("watch atlasprojects").count >= 1 }
        try apiserver.clearLog()
        // The five reconnects all get 429 with Retry-After: 5.
        try apiserver.fail(code: 429, count: 5, retryAfter: 5)
        try apiserver.dropWatches()
        usleep(8_000_000)
        let log = try apiserver.requestLog()
        guard let first = log.first?.time else { return XCTFail("no request after the drop") }
        let early = log.filter { $0.time - first > 0.5 && $0.time - first < 4.5 }
        XCTAssertEqual(early.map(\.what), [], "nothing between the 429s and their Retry-After: \(log)")
        XCTAssertTrue(log.contains { $0.time - first >= 4.5 }, "retried after 5 s: \(log)")
        eventually("ready") { isReady(cache) }
    }

    func testTheHTTPStatusDecidesNotTheBody() throws {
        // A 500 whose Status body says 410: an error to back off from, not a relist.
        try apiserver.fail(code: 500, count: 1, bodyCode: 410)
        let cache = try startCache()
        eventually("ready") { isReady(cache) }
        XCTAssertTrue(metricsText(cache).contains(#"reason="expired"} 0"#))
        XCTAssertTrue(logs.all.contains { $0.contains("HTTP 500") }, "\(logs.all)")
    }

    func testATricklingListHitsItsDeadline() throws {
        try apiserver.trickleLists(interval: 1)
        let limits = StreamLimits(pageDeadlineSeconds: 2)
        let cache = try startCache(timing: ReflectorTiming(limits: limits))
        eventually("the deadline", seconds: 10) { self.logs.all.contains { $0.contains("within its deadline") } }
        try apiserver.trickleLists(interval: 0)
        eventually("ready once the server behaves", seconds: 30) { isReady(cache) }
        XCTAssertLessThanOrEqual(logs.all.filter { $0.contains("within its deadline") && $0.contains("atlasprojects") }.count, 1,
                                 "logged once a minute")
    }

    func testMalformedAnswersAreErrorsAndRetried() throws {
        for what in ["list_json", "rv_type"] {
            try apiserver.malformed(what)
        }
        let cache = try startCache()
        eventually("ready despite two malformed lists", seconds: 30) { isReady(cache) }
        XCTAssertTrue(logs.all.contains { $0.contains("unexpected answer") }, "\(logs.all)")
        try apiserver.malformed("event_json")
        try apiserver.put(ClusterObjects.project("team", "after"))
        eventually("recovered after a malformed event", seconds: 30) { cache.snapshot().projects["team"]?["after"] != nil }
    }

    func testResetsInALoopAndRedirectsNeverFollowed() throws {
        try apiserver.reset(count: 6)
        try apiserver.redirect(count: 3, location: "https://localhost:\(apiserver.port)/redirected")
        let cache = try startCache()
        eventually("ready despite resets and redirects", seconds: 40) { isReady(cache) }
        XCTAssertEqual(try apiserver.requests()["redirected"] ?? 0, 0, "a redirect is never followed")
    }

    // MARK: - Certificate rotation

    /// The API server's certificate is replaced by one from a new CA, and the CA file the
    /// kubeconfig names is replaced too: the cache keeps working without a restart.
    func testTheAPIServersCARotatesWithoutARestart() throws {
        let access = try ClusterAccess.kubeconfig(path: apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)"))
        let logs = self.logs
        let logger = Logger(label: "test") { _ in CollectingLogHandler(lines: logs) }
        let cache = ClusterCache(client: try KubernetesAPIClient(access: access), namespaces: ["team"], logger: logger)
        self.cache = cache
        try cache.start()
        eventually("ready") { isReady(cache) }
        let rotated = try DevelopmentCertificates.generate(in: apiserver.directory + "/rotated", ipAddresses: ["127.0.0.1"])
        try apiserver.rotateCertificate(certificate: rotated.certificate, privateKey: rotated.privateKey)
        let caFile = apiserver.certificates.caCertificate
        try FileManager.default.removeItem(atPath: caFile)
        try FileManager.default.copyItem(atPath: rotated.caCertificate, toPath: caFile)
        try apiserver.dropWatches()
        try apiserver.put(ClusterObjects.project("team", "after-rotation"))
        eventually("the watch through the new CA", seconds: 30) {
            cache.snapshot().projects["team"]?["after-rotation"] != nil
        }
    }

    // MARK: - Cost per event

    /// Applying events costs O(log n): the same burst of changes takes about as long
    /// against 8n cached objects as against n (measured as the best of three, generous
    /// bound: wall clock in a debug build).
    func testEventCostDoesNotGrowWithTheCache() throws {
        func burst(objects: Int) -> Double {
            var snapshot = ClusterSnapshot()
            for i in 0..<objects {
                snapshot.secrets["team", default: [:]]["s\(i)"] = SecretRecord(hasCredentialsLabel: false)
            }
            var best = Double.infinity
            for _ in 0..<3 {
                var copy = snapshot
                let start = Date()
                for i in 0..<2_000 {
                    let reader = copy  // a review holding the previous snapshot: copy-on-write must not copy it all
                    copy.secrets["team", default: [:]]["s\(i % objects)"] = SecretRecord(hasCredentialsLabel: i % 2 == 0)
                    _ = reader
                }
                best = min(best, Date().timeIntervalSince(start))
            }
            return best
        }
        let small = burst(objects: 4_000)
        let large = burst(objects: 32_000)
        XCTAssertLessThan(large, small * 3, "2,000 events: \(small) s at 4,000 objects, \(large) s at 32,000")
    }
}
