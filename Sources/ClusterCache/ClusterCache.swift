import JSON
import KubernetesClient
import Logging
import StreamRules
import Synchronization
import SystemSupport

/// The watch cache of SPEC section 11: one reflector thread per resource (and watched
/// namespace) keeps its part of a `ClusterSnapshot`; each change swaps in a new
/// snapshot whole. `snapshot()` takes a lock held only for that swap or a copy of five
/// references: a review never waits on the network.
public final class ClusterCache: Sendable {
    /// The namespaces followed; nil for all.
    public let namespaces: [String]?
    private let state: SnapshotBox
    private let reflectors: [any ReflectorHandle]
    private let threads = Mutex<[WorkerThread]>([])

    /// Watches end after a random 5 to 10 minutes, as client-go's do, so that the
    /// replicas' watches do not all restart together.
    public static let watchTimeoutSeconds = 300...600

    public init(client: KubernetesAPIClient, namespaces: [String]?, logger: Logger,
                watchTimeoutSeconds: ClosedRange<Int> = ClusterCache.watchTimeoutSeconds) {
        self.namespaces = namespaces
        let state = SnapshotBox(ClusterSnapshot(watchedNamespaces: namespaces.map(Set.init)))
        self.state = state
        var reflectors: [any ReflectorHandle] = []
        let scopes: [String?] = namespaces ?? [nil]
        for namespace in scopes {
            /// Stores a reflector's part: all of a field, or its one namespace of it.
            func part<Record: Sendable>(_ keyPath: WritableKeyPath<ClusterSnapshot, [String: [String: Record]]> & Sendable)
                -> @Sendable ([String: [String: Record]]) -> Void {
                { store in
                    state.current.withLock { snapshot in
                        if let namespace {
                            snapshot[keyPath: keyPath][namespace] = store[namespace]
                        } else {
                            snapshot[keyPath: keyPath] = store
                        }
                    }
                }
            }
            func reflector<Record: Sendable>(_ resource: CachedResource,
                                             _ keyPath: WritableKeyPath<ClusterSnapshot, [String: [String: Record]]> & Sendable,
                                             _ extract: @escaping @Sendable (JSONValue, String) -> Record) -> Reflector<Record> {
                Reflector(resource: resource, namespace: namespace, client: client, logger: logger,
                          watchTimeoutSeconds: watchTimeoutSeconds, extract: extract, publish: part(keyPath))
            }
            reflectors.append(reflector(.secrets, \.secrets) { object, _ in Records.secret(object) })
            reflectors.append(reflector(.credentialSecrets, \.credentialKeys) { object, _ in Records.keyNames(object) })
            reflectors.append(reflector(.connections, \.connections) { object, _ in Records.connection(object) })
            reflectors.append(reflector(.instances, \.instances) { object, namespace in Records.instance(object, namespace: namespace) })
            reflectors.append(reflector(.projects, \.projects) { _, _ in ProjectRecord() })
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

    /// The cluster as last seen: a value that does not change under the caller.
    public func snapshot() -> ClusterSnapshot {
        state.current.withLock { $0 }
    }

    /// Every reflector has listed once (`/readyz`).
    public var isSynced: Bool {
        reflectors.allSatisfy { $0.status.synced.load(ordering: .relaxed) }
    }

    /// The cache's metrics in the Prometheus text format (SPEC section 11).
    public func renderMetrics() -> String {
        var objects: [CachedResource: Int] = [:]
        var synced: [CachedResource: Bool] = [:]
        var restarts: [CachedResource: (ended: Int, expired: Int, error: Int)] = [:]
        for reflector in reflectors {
            let status = reflector.status
            objects[status.resource, default: 0] += status.objects.load(ordering: .relaxed)
            synced[status.resource] = (synced[status.resource] ?? true) && status.synced.load(ordering: .relaxed)
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
        text += "# HELP atlas_stream_webhook_cache_synced Whether the cache has listed the resource once (1) or not yet (0).\n"
            + "# TYPE atlas_stream_webhook_cache_synced gauge\n"
        for resource in CachedResource.allCases {
            text += "atlas_stream_webhook_cache_synced{resource=\"\(resource.rawValue)\"} \(synced[resource] == true ? 1 : 0)\n"
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

/// The snapshot behind its lock, shared by the cache and its reflectors' publishers.
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

