import Glibc
import JSON
import KubernetesClient
import Logging
import Synchronization
import SystemSupport
import TLS

/// What a reflector reports for `/readyz` and the metrics; written by its thread, read by any.
final class ReflectorStatus: Sendable {
    let resource: CachedResource
    let namespace: String?
    /// Listed once at least: its part of the snapshot can be trusted.
    let synced = Atomic<Bool>(false)
    let objects = Atomic<Int>(0)
    /// Watch restarts by reason: the watch ended (timeout or dropped), the
    /// resourceVersion expired (410), or an error.
    let restartsEnded = Atomic<Int>(0)
    let restartsExpired = Atomic<Int>(0)
    let restartsError = Atomic<Int>(0)

    init(resource: CachedResource, namespace: String?) {
        self.resource = resource
        self.namespace = namespace
    }
}

/// A list-then-watch loop on its own thread for one resource (in one namespace, or all),
/// as client-go's reflector: paginated LIST, WATCH from the list's resourceVersion with
/// bookmarks and a random timeout, a new LIST on 410, backoff on anything else, and
/// each change published as a new snapshot part.
final class Reflector<Record: Sendable>: Sendable {
    typealias Store = [String: [String: Record]]

    let status: ReflectorStatus
    private let client: KubernetesAPIClient
    private let extract: @Sendable (JSONValue, String) -> Record
    private let publish: @Sendable (Store) -> Void
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    /// The connection a watch or list is waiting on, so `stop` can cut it.
    private let current = Mutex<InterruptHandle?>(nil)
    /// When a permission error was last logged (at most once a minute).
    private let lastPermissionLog = Atomic<Int>(Int.min / 2)
    private let watchTimeout: ClosedRange<Int>

    /// `publish` receives the reflector's whole store (by namespace, then name) after
    /// every change; values are immutable, so the receiver may keep it.
    init(resource: CachedResource, namespace: String?, client: KubernetesAPIClient, logger: Logger,
         watchTimeoutSeconds: ClosedRange<Int>,
         extract: @escaping @Sendable (JSONValue, String) -> Record, publish: @escaping @Sendable (Store) -> Void) {
        status = ReflectorStatus(resource: resource, namespace: namespace)
        self.client = client
        self.extract = extract
        self.publish = publish
        self.logger = logger
        self.watchTimeout = watchTimeoutSeconds
    }

    private var resource: CachedResource { status.resource }
    private var namespace: String? { status.namespace }
    private var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        current.withLock { $0?.interrupt() }
    }

    /// The loop; returns after `stop`.
    func run() {
        var backoff = Backoff()
        var store: Store = [:]
        var resourceVersion: String?
        while !isStopping {
            do {
                if resourceVersion == nil {
                    let started = monotonicMilliseconds()
                    let listed = try list()
                    store = listed.store
                    resourceVersion = listed.resourceVersion
                    publish(store)
                    status.objects.store(listed.count, ordering: .relaxed)
                    if !status.synced.exchange(true, ordering: .relaxed) {
                        logger.info("cache synced", metadata: metadata(["objects": "\(listed.count)",
                                                                        "ms": "\(monotonicMilliseconds() - started)"]))
                    }
                }
                let started = monotonicMilliseconds()
                let events = try watch(from: &resourceVersion, store: &store)
                status.restartsEnded.add(1, ordering: .relaxed)
                logger.debug("watch ended", metadata: metadata(["events": "\(events)"]))
                // A watch that ends at once with nothing in it is a fault, not a timeout.
                if events == 0 && monotonicMilliseconds() - started < 1_000 {
                    pause(backoff.delay(random: Double.random(in: 0..<1)))
                } else {
                    backoff.reset()
                }
            } catch {
                if isStopping { break }
                if error.isGone {
                    status.restartsExpired.add(1, ordering: .relaxed)
                    logger.info("resourceVersion expired; listing again", metadata: metadata([:]))
                    resourceVersion = nil
                    continue
                }
                status.restartsError.add(1, ordering: .relaxed)
                let delay = backoff.delay(random: Double.random(in: 0..<1))
                report(error, listing: resourceVersion == nil, retryMilliseconds: delay)
                pause(delay)
            }
        }
    }

    /// Every page of a LIST, as a fresh store.
    private func list() throws(KubernetesAPIError) -> (store: Store, resourceVersion: String, count: Int) {
        var store: Store = [:]
        var count = 0
        var token: String?
        var resourceVersion = ""
        repeat {
            if isStopping { throw .transport("stopping") }
            let page = try client.listPage(resource.type, namespace: namespace, continueToken: token)
            for item in page.items {
                guard let identity = ObjectIdentity(item) else { continue }
                if store[identity.namespace, default: [:]].updateValue(extract(item, identity.namespace),
                                                                       forKey: identity.name) == nil {
                    count += 1
                }
            }
            resourceVersion = page.resourceVersion
            token = page.continueToken
        } while !(token ?? "").isEmpty
        return (store, resourceVersion, count)
    }

    /// One WATCH; returns how many object events it applied.
    private func watch(from resourceVersion: inout String?, store: inout Store) throws(KubernetesAPIError) -> Int {
        var events = 0
        var version = resourceVersion ?? ""
        defer {
            resourceVersion = version
            current.withLock { $0 = nil }
        }
        try client.watch(resource.type, namespace: namespace, resourceVersion: version,
                         timeoutSeconds: Int.random(in: watchTimeout),
                         onConnection: { connection in
                             let handle = InterruptHandle(connection)
                             current.withLock { $0 = handle }
                             if isStopping { handle.interrupt() }
                         }) { event throws(KubernetesAPIError) in
            switch event {
            case .added(let object), .modified(let object):
                guard let identity = ObjectIdentity(object) else { return }
                store[identity.namespace, default: [:]][identity.name] = extract(object, identity.namespace)
                version = identity.resourceVersion.isEmpty ? version : identity.resourceVersion
            case .deleted(let object):
                guard let identity = ObjectIdentity(object) else { return }
                store[identity.namespace]?[identity.name] = nil
                if store[identity.namespace]?.isEmpty == true { store[identity.namespace] = nil }
                version = identity.resourceVersion.isEmpty ? version : identity.resourceVersion
            case .bookmark(let bookmarked):
                if !bookmarked.isEmpty { version = bookmarked }
                return
            case .error(let error):
                throw error
            }
            events += 1
            publish(store)
            status.objects.store(store.values.reduce(0) { $0 + $1.count }, ordering: .relaxed)
        }
        return events
    }

    /// Logs a failure: a permission error (401/403) at most once a minute, naming the
    /// permission; anything else each time, with the retry delay.
    private func report(_ error: KubernetesAPIError, listing: Bool, retryMilliseconds: Int) {
        let verb = listing ? "list" : "watch"
        if let code = error.statusCode, code == 401 || code == 403 {
            let now = monotonicMilliseconds()
            guard now - lastPermissionLog.load(ordering: .relaxed) >= 60_000 else { return }
            lastPermissionLog.store(now, ordering: .relaxed)
            let scope = namespace.map { "in namespace \($0)" } ?? "cluster-wide"
            let what = code == 401 ? "not authenticated (token missing, expired or not accepted)"
                : "missing permission: \(verb) \(resource.type.plural) (\(resource.type.apiPrefix)) \(scope)"
            logger.error("cluster access refused", metadata: metadata(["code": "\(code)", "problem": .string(what),
                                                                        "error": .string(error.description)]))
            return
        }
        logger.warning("\(verb) failed; retrying", metadata: metadata(["error": .string(error.description),
                                                                        "retry_ms": "\(retryMilliseconds)"]))
    }

    private func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var out = extra
        out["resource"] = .string(resource.rawValue)
        if let namespace { out["namespace"] = .string(namespace) }
        return out
    }

    /// Sleeps up to `milliseconds`, waking early on `stop`.
    private func pause(_ milliseconds: Int) {
        let until = monotonicMilliseconds() + milliseconds
        while !isStopping, monotonicMilliseconds() < until {
            usleep(UInt32(min(50, max(1, until - monotonicMilliseconds()))) * 1000)
        }
    }
}

/// Lets another thread cut a connection a reflector is blocked on.
///
/// `@unchecked Sendable`: only `interrupt` (a `shutdown(2)` of the socket, safe from any
/// thread) is called from elsewhere; the connection is used by its reflector only.
final class InterruptHandle: @unchecked Sendable {
    private let connection: TLSClientConnection

    init(_ connection: TLSClientConnection) {
        self.connection = connection
    }

    func interrupt() { connection.interrupt() }
}
