import JSON
import KubernetesClient
import Logging
import StreamRules
import Synchronization
import SystemSupport

/// The watch cache behind the reference rules: one reflector thread per resource (and
/// watched namespace) writes its changes into one `ClusterSnapshot`, a persistent map,
/// under a lock held for an O(log n) change or an O(1) copy. A review takes a copy and
/// never waits on the network; it gets a verdict only while every reflector has listed
/// and is keeping up.
public final class ClusterCache: Sendable {
    /// The namespaces followed; nil for all.
    public let namespaces: [String]?
    /// A part with no event, bookmark or LIST page for this long is stale.
    public let staleAfterMilliseconds: Int
    private let state: SnapshotBox
    private let reflectors: [any ReflectorHandle]
    private let threads = Mutex<[WorkerThread]>([])

    public init(client: KubernetesAPIClient, namespaces: [String]?, logger: Logger,
                timing: ReflectorTiming = ReflectorTiming(), staleAfterMilliseconds: Int = 180_000) {
        self.namespaces = namespaces
        self.staleAfterMilliseconds = staleAfterMilliseconds
        let state = SnapshotBox(ClusterSnapshot(watchedNamespaces: namespaces.map(Set.init)))
        self.state = state
        var reflectors: [any ReflectorHandle] = []
        let scopes: [String?] = namespaces ?? [nil]
        for namespace in scopes {
            func reflector<Record: Sendable>(_ resource: CachedResource, _ writer: SnapshotWriter<Record>,
                                             _ extract: @escaping @Sendable (JSONValue, String) -> Record) -> Reflector<Record> {
                Reflector(resource: resource, namespace: namespace, client: client, logger: logger, timing: timing,
                          snapshot: state, writer: writer, extract: extract)
            }
            // The records are those `check --resolve-references` makes of manifests.
            reflectors.append(reflector(.secrets, .field(\.secrets)) { object, _ in SecretRecord(object: object) })
            reflectors.append(reflector(.credentialSecrets, .field(\.credentialKeys)) { object, _ in SecretRecord.keyNames(of: object) })
            reflectors.append(reflector(.connections, .field(\.connections)) { object, _ in ConnectionRecord(object: object) })
            reflectors.append(reflector(.instances, .instances) { object, namespace in InstanceRecord(object: object, namespace: namespace) })
            reflectors.append(reflector(.projects, .field(\.projects)) { _, _ in ProjectRecord() })
        }
        self.reflectors = reflectors
    }

    /// Starts every reflector's thread.
    public func start() {
        threads.withLock { threads in
            for reflector in reflectors {
                if let thread = WorkerThread({ reflector.run() }) { threads.append(thread) }
            }
        }
    }

    /// Stops the reflectors and waits for their threads.
    public func stop() {
        for reflector in reflectors { reflector.stop() }
        let running = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        for thread in running { thread.join() }
    }

    /// The cluster as last seen: a value that does not change under the caller, whether
    /// or not the cache can back a verdict.
    public func snapshot() -> ClusterSnapshot {
        state.current.withLock { $0 }
    }

    /// What a review may judge by: the snapshot while every reflector has listed and
    /// none is stale; otherwise why not.
    public func view() -> ClusterView {
        if let reason = notReadyReason() { return .notReady(reason: reason) }
        return .ready(snapshot())
    }

    /// The first reflector that cannot back a verdict, and why; nil when all can.
    public func notReadyReason() -> String? {
        let now = monotonicMilliseconds()
        for reflector in reflectors {
            if let reason = reflector.status.notReadyReason(now: now, staleAfterMilliseconds: staleAfterMilliseconds) {
                return reason
            }
        }
        return nil
    }

    /// Every reflector has listed once (`/readyz`).
    public var isSynced: Bool {
        reflectors.allSatisfy { $0.status.listed.load(ordering: .relaxed) }
    }

    /// The cache's metrics in the Prometheus text format.
    public func renderMetrics() -> String {
        let now = monotonicMilliseconds()
        var objects: [CachedResource: Int] = [:]
        var ready: [CachedResource: Bool] = [:]
        var progress: [CachedResource: Int] = [:]
        var restarts: [CachedResource: (ended: Int, expired: Int, error: Int)] = [:]
        for reflector in reflectors {
            let status = reflector.status
            objects[status.resource, default: 0] += status.objects.load(ordering: .relaxed)
            let fresh = status.notReadyReason(now: now, staleAfterMilliseconds: staleAfterMilliseconds) == nil
            ready[status.resource] = (ready[status.resource] ?? true) && fresh
            // The oldest of the resource's parts: the one that decides whether it is stale.
            let last = status.lastProgressWallClock.load(ordering: .relaxed)
            progress[status.resource] = min(progress[status.resource] ?? last, last)
            let sum = restarts[status.resource] ?? (0, 0, 0)
            restarts[status.resource] = (sum.ended + status.restartsEnded.load(ordering: .relaxed),
                                         sum.expired + status.restartsExpired.load(ordering: .relaxed),
                                         sum.error + status.restartsError.load(ordering: .relaxed))
        }
        var text = "# HELP atlas_stream_webhook_cache_objects Objects held by the cluster cache.\n"
            + "# TYPE atlas_stream_webhook_cache_objects gauge\n"
        for resource in CachedResource.allCases {
            text += "atlas_stream_webhook_cache_objects{resource=\"\(resource.rawValue)\"} \(objects[resource] ?? 0)\n"
        }
        text += "# HELP atlas_stream_webhook_cache_synced Whether the resource is listed and fresh (1), so references to it are judged, or not (0).\n"
            + "# TYPE atlas_stream_webhook_cache_synced gauge\n"
        for resource in CachedResource.allCases {
            text += "atlas_stream_webhook_cache_synced{resource=\"\(resource.rawValue)\"} \(ready[resource] == true ? 1 : 0)\n"
        }
        text += "# HELP atlas_stream_webhook_cache_last_progress_timestamp_seconds When the resource last had an event, bookmark or LIST page (Unix time; 0 before the first).\n"
            + "# TYPE atlas_stream_webhook_cache_last_progress_timestamp_seconds gauge\n"
        for resource in CachedResource.allCases {
            let milliseconds = progress[resource] ?? 0
            text += "atlas_stream_webhook_cache_last_progress_timestamp_seconds{resource=\"\(resource.rawValue)\"} "
                + "\(milliseconds / 1000).\(String(milliseconds % 1000 + 1000).dropFirst())\n"
        }
        text += "# HELP atlas_stream_webhook_watch_restarts_total Watches started again, by why the previous one ended.\n"
            + "# TYPE atlas_stream_webhook_watch_restarts_total counter\n"
        for resource in CachedResource.allCases {
            let counts = restarts[resource] ?? (0, 0, 0)
            for (reason, count) in [("ended", counts.ended), ("expired", counts.expired), ("error", counts.error)] {
                text += "atlas_stream_webhook_watch_restarts_total{resource=\"\(resource.rawValue)\",reason=\"\(reason)\"} \(count)\n"
            }
        }
        return text
    }
}

/// The snapshot behind its lock, shared by the cache and its reflectors.
final class SnapshotBox: Sendable {
    let current: Mutex<ClusterSnapshot>

    init(_ snapshot: ClusterSnapshot) {
        current = Mutex(snapshot)
    }
}

/// A reflector of any record type, as the cache holds them.
protocol ReflectorHandle: Sendable {
    var status: ReflectorStatus { get }
    func run()
    func stop()
}

extension Reflector: ReflectorHandle {}
