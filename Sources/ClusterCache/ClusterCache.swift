import JSON
import KubernetesClient
import Logging
import Metrics
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
    /// A part with no event, bookmark or LIST page for this long is stale (kept in
    /// milliseconds, the unit of the clock it is compared with).
    private let staleAfterMilliseconds: Int
    private let state: SnapshotBox
    private let reflectors: [any ReflectorHandle]
    private let threads = Mutex<[WorkerThread]>([])

    /// `changes`, when given, hears of every change once it is in the snapshot (the audit).
    public init(client: KubernetesAPIClient, namespaces: [String]?, logger: Logger,
                timing: ReflectorTiming = ReflectorTiming(), staleAfter: Duration = .seconds(180),
                changes: CacheChangeFeed? = nil) {
        self.namespaces = namespaces
        self.staleAfterMilliseconds = staleAfter.wholeMilliseconds
        let state = SnapshotBox(ClusterSnapshot(watchedNamespaces: namespaces.map(Set.init)))
        self.state = state
        var reflectors: [any ReflectorHandle] = []
        let scopes: [String?] = namespaces ?? [nil]
        for namespace in scopes {
            func reflector<Record: Sendable>(_ resource: CachedResource, _ writer: SnapshotWriter<Record>,
                                             _ extract: @escaping @Sendable (JSONValue, String) -> Record) -> Reflector<Record> {
                Reflector(resource: resource, namespace: namespace, client: client, logger: logger, timing: timing,
                          snapshot: state, writer: writer, changes: changes, extract: extract)
            }
            // The records are those `check --resolve-references` makes of manifests.
            reflectors.append(reflector(.secrets, .field(\.secrets)) { object, _ in SecretRecord(object: object) })
            reflectors.append(reflector(.credentialSecrets, .field(\.credentialKeys)) { object, _ in SecretRecord.keyNames(of: object) })
            // Connections and instances are kept whole (as far as `judged` keeps them) for
            // the audit, as its budget allows.
            let budget = StoredObjectBudget()
            reflectors.append(reflector(.connections, .stored(.connection, records: .field(\.connections))) { object, _ in
                StoredRecord(record: ConnectionRecord(object: object), object: budget.admit(object))
            })
            reflectors.append(reflector(.instances, .stored(.instance, records: .instances)) { object, namespace in
                StoredRecord(record: InstanceRecord(object: object, namespace: namespace), object: budget.admit(object))
            })
            reflectors.append(reflector(.projects, .field(\.projects)) { _, _ in ProjectRecord() })
        }
        self.reflectors = reflectors
    }

    /// Lists every resource once, page by page, with no watch: the cluster as the cache
    /// would hold it, for a one-shot reading (the `audit` command).
    public func listOnce() throws(CacheListError) -> ClusterSnapshot {
        for reflector in reflectors {
            do {
                try reflector.listOnce()
            } catch {
                throw CacheListError(resource: reflector.status.resource, namespace: reflector.status.namespace, error: error)
            }
        }
        return snapshot()
    }

    /// Starts every reflector's thread; when the system refuses one, stops those started
    /// and throws: a cache missing a reflector would never be synced.
    public func start() throws(SystemCallError) {
        do throws(SystemCallError) {
            try threads.withLock { (threads) throws(SystemCallError) in
                for reflector in reflectors {
                    threads.append(try WorkerThread.start { reflector.run() })
                }
            }
        } catch {
            stop()
            throw error
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

    /// Declares the cache's metric families in `registry`; their values are read from the
    /// reflectors at each render, summed over a resource's namespaces.
    public func registerMetrics(in registry: MetricsRegistry) {
        registry.collectedFamily("atlas_stream_webhook_cache_objects", help: "Objects held by the cluster cache.",
                                 type: .gauge, labels: ["resource"]) {
            self.resourceStates().map { MetricSample(labelValues: [$0.resource.rawValue], .integer($0.objects)) }
        }
        registry.collectedFamily("atlas_stream_webhook_cache_synced",
                                 help: "Whether the resource is listed and fresh (1), so references to it are judged, or not (0).",
                                 type: .gauge, labels: ["resource"]) {
            self.resourceStates().map { MetricSample(labelValues: [$0.resource.rawValue], .integer($0.synced == true ? 1 : 0)) }
        }
        registry.collectedFamily("atlas_stream_webhook_cache_last_progress_timestamp_seconds",
                                 help: "When the resource last had an event, bookmark or LIST page (Unix time; 0 before the first).",
                                 type: .gauge, labels: ["resource"]) {
            self.resourceStates().map {
                MetricSample(labelValues: [$0.resource.rawValue], .real(Double($0.lastProgressMilliseconds ?? 0) / 1000))
            }
        }
        registry.collectedFamily("atlas_stream_webhook_watch_restarts_total",
                                 help: "Watches started again, by why the previous one ended.",
                                 type: .counter, labels: ["resource", "reason"]) {
            self.resourceStates().flatMap { state in
                [("ended", state.restartsEnded), ("expired", state.restartsExpired), ("error", state.restartsError)].map {
                    MetricSample(labelValues: [state.resource.rawValue, $0.0], .integer($0.1))
                }
            }
        }
    }

    /// What the metrics say of one resource, over all its reflectors.
    private struct ResourceState {
        let resource: CachedResource
        var objects = 0
        /// Whether every part is listed and fresh; nil without a part.
        var synced: Bool?
        /// The oldest of the parts' last progress (wall clock): the one that decides staleness.
        var lastProgressMilliseconds: Int?
        var restartsEnded = 0
        var restartsExpired = 0
        var restartsError = 0
    }

    /// Every resource's state, in `CachedResource` order.
    private func resourceStates() -> [ResourceState] {
        let now = monotonicMilliseconds()
        var states = CachedResource.allCases.map { ResourceState(resource: $0) }
        for reflector in reflectors {
            let status = reflector.status
            guard let index = states.firstIndex(where: { $0.resource == status.resource }) else { continue }
            states[index].objects += status.objects.load(ordering: .relaxed)
            let fresh = status.notReadyReason(now: now, staleAfterMilliseconds: staleAfterMilliseconds) == nil
            states[index].synced = (states[index].synced ?? true) && fresh
            let last = status.lastProgressWallClock.load(ordering: .relaxed)
            states[index].lastProgressMilliseconds = min(states[index].lastProgressMilliseconds ?? last, last)
            states[index].restartsEnded += status.restartsEnded.load(ordering: .relaxed)
            states[index].restartsExpired += status.restartsExpired.load(ordering: .relaxed)
            states[index].restartsError += status.restartsError.load(ordering: .relaxed)
        }
        return states
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
    func listOnce() throws(KubernetesAPIError)
}

/// A LIST of the cache's that failed: which, and why, in the words a person fixing it needs.
public struct CacheListError: Error, Sendable, CustomStringConvertible {
    public var resource: CachedResource
    public var namespace: String?
    public var error: KubernetesAPIError

    public var description: String {
        let scope = namespace.map { " in namespace \($0)" } ?? ""
        if let code = error.statusCode, let refusal = resource.refusal(code, verb: "list", namespace: namespace) {
            return "cluster access refused (HTTP \(code)): \(refusal)"
        }
        if case .transport(let failure) = error {
            return "cluster unreachable: listing \(resource.type.plural)\(scope): \(failure)"
        }
        return "cannot list \(resource.type.plural)\(scope): \(error)"
    }
}

extension Reflector: ReflectorHandle {}
