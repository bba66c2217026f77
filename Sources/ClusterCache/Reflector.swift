import Glibc
import HashTreeCollections
import JSON
import KubernetesClient
import Logging
import StreamRules
import Synchronization
import SystemSupport
import TLS

/// What a reflector reports for `/readyz`, reviews and the metrics; written by its
/// thread, read by any.
final class ReflectorStatus: Sendable {
    let resource: CachedResource
    let namespace: String?
    /// Listed once at least: its part of the snapshot holds the cluster as it was then.
    let listed = Atomic<Bool>(false)
    let objects = Atomic<Int>(0)
    /// The last event, bookmark or completed LIST page: monotonic and wall-clock
    /// milliseconds (0 before the first).
    let lastProgressMonotonic = Atomic<Int>(0)
    let lastProgressWallClock = Atomic<Int>(0)
    /// Watch restarts by reason: the watch ended (timeout or dropped), the
    /// resourceVersion expired (410), or an error.
    let restartsEnded = Atomic<Int>(0)
    let restartsExpired = Atomic<Int>(0)
    let restartsError = Atomic<Int>(0)

    init(resource: CachedResource, namespace: String?) {
        self.resource = resource
        self.namespace = namespace
    }

    func progressed() {
        lastProgressMonotonic.store(monotonicMilliseconds(), ordering: .relaxed)
        lastProgressWallClock.store(wallClockMilliseconds(), ordering: .relaxed)
    }

    /// Why this part of the cache cannot back a verdict now, or nil when it can.
    func notReadyReason(now: Int, staleAfterMilliseconds: Int) -> String? {
        let scope = namespace.map { " in namespace \($0)" } ?? ""
        guard listed.load(ordering: .relaxed) else { return "\(resource.rawValue)\(scope) not listed yet" }
        let quiet = now - lastProgressMonotonic.load(ordering: .relaxed)
        guard quiet <= staleAfterMilliseconds else {
            return "\(resource.rawValue)\(scope) stale: nothing from the API server for \(quiet / 1000) s"
        }
        return nil
    }
}

/// How a reflector's records are written into the shared snapshot.
struct SnapshotWriter<Record: Sendable>: Sendable {
    /// Stores one object's record, or removes it for nil; says whether it was there before.
    let set: @Sendable (inout ClusterSnapshot, ObjectReference, Record?) -> Bool
    /// What a LIST found replaces a namespace's records, or all of them for nil.
    let replace: @Sendable (inout ClusterSnapshot, String?, NamespacedRecords<Record>) -> Void
    /// A record as a LIST's store takes it in, with the bytes that store holds so far.
    let listed: @Sendable (Record, inout Int) -> Record

    init(set: @escaping @Sendable (inout ClusterSnapshot, ObjectReference, Record?) -> Bool,
         replace: @escaping @Sendable (inout ClusterSnapshot, String?, NamespacedRecords<Record>) -> Void,
         listed: @escaping @Sendable (Record, inout Int) -> Record = { record, _ in record }) {
        self.set = set
        self.replace = replace
        self.listed = listed
    }

    /// The writer of a plain field of the snapshot.
    static func field(_ keyPath: WritableKeyPath<ClusterSnapshot, NamespacedRecords<Record>> & Sendable) -> SnapshotWriter {
        SnapshotWriter(set: { snapshot, reference, record in
            let existed = snapshot[keyPath: keyPath][reference.namespace]?[reference.name] != nil
            if let record {
                snapshot[keyPath: keyPath][reference.namespace, default: [:]][reference.name] = record
            } else if existed {
                snapshot[keyPath: keyPath][reference.namespace]?[reference.name] = nil
                if snapshot[keyPath: keyPath][reference.namespace]?.isEmpty == true {
                    snapshot[keyPath: keyPath][reference.namespace] = nil
                }
            }
            return existed
        }, replace: { snapshot, namespace, records in
            if let namespace {
                snapshot[keyPath: keyPath][namespace] = records[namespace]
            } else {
                snapshot[keyPath: keyPath] = records
            }
        })
    }
}

/// How long the cache's calls may take and how large their parts may be.
public struct ReflectorTiming: Sendable, Equatable {
    /// Watches end after a random time in this range (seconds), as client-go's do, so
    /// that the replicas' watches do not all restart together.
    public var watchTimeoutSeconds: ClosedRange<Int>
    public var limits: StreamLimits
    /// Items asked for per LIST page (halved, down to 10, after a page over its cap).
    public var pageSize: Int
    /// A watch that ran at least this long ends normally: the next starts at once and
    /// the backoff starts again from its first step.
    public var healthyWatchMilliseconds: Int

    public init(watchTimeoutSeconds: ClosedRange<Int> = 300...600, limits: StreamLimits = StreamLimits(),
                pageSize: Int = 100, healthyWatchMilliseconds: Int = 30_000) {
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.limits = limits
        self.pageSize = pageSize
        self.healthyWatchMilliseconds = healthyWatchMilliseconds
    }

    static let minimumPageSize = 10
}

/// A list-then-watch loop on its own thread for one resource (in one namespace, or
/// all), as client-go's reflector: paginated LIST parsed as it streams in and published
/// once complete, WATCH from the list's resourceVersion with bookmarks and a random
/// timeout, and each change written into the shared snapshot in O(log n). Every restart
/// (410, a watch that ends early, any error) waits out an exponential backoff with
/// jitter, at least the server's Retry-After.
final class Reflector<Record: Sendable>: Sendable {
    let status: ReflectorStatus
    private let client: KubernetesAPIClient
    private let extract: @Sendable (JSONValue, String) -> Record
    private let writer: SnapshotWriter<Record>
    private let snapshot: SnapshotBox
    private let logger: Logger
    private let timing: ReflectorTiming
    private let stopping = Atomic<Bool>(false)
    /// The connection a watch or list is waiting on, so `stop` can cut it.
    private let current = Mutex<InterruptHandle?>(nil)
    private let limiter = Mutex(LogLimiter())
    private let changes: CacheChangeFeed?

    init(resource: CachedResource, namespace: String?, client: KubernetesAPIClient, logger: Logger, timing: ReflectorTiming,
         snapshot: SnapshotBox, writer: SnapshotWriter<Record>, changes: CacheChangeFeed?,
         extract: @escaping @Sendable (JSONValue, String) -> Record) {
        self.changes = changes
        status = ReflectorStatus(resource: resource, namespace: namespace)
        self.client = client
        self.extract = extract
        self.writer = writer
        self.snapshot = snapshot
        self.logger = logger
        self.timing = timing
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
        var resourceVersion: String?
        var pageSize = timing.pageSize
        var count = 0
        while !isStopping {
            do {
                if resourceVersion == nil {
                    let started = monotonicMilliseconds()
                    guard let listed = try list(pageSize: pageSize) else { break }
                    resourceVersion = listed.resourceVersion
                    count = listed.count
                    status.objects.store(count, ordering: .relaxed)
                    status.progressed()
                    if !status.listed.exchange(true, ordering: .relaxed) {
                        logger.info("cache synced", metadata: metadata(["objects": "\(count)",
                                                                        "ms": "\(monotonicMilliseconds() - started)"]))
                    }
                }
                let started = monotonicMilliseconds()
                try watch(from: &resourceVersion, count: &count)
                status.restartsEnded.add(1, ordering: .relaxed)
                if monotonicMilliseconds() - started >= timing.healthyWatchMilliseconds {
                    backoff.reset()
                } else {
                    // A watch that ends early is a fault, not a timeout: wait before the next.
                    let delay = backoff.delay(random: Double.random(in: 0..<1))
                    note("watch ended early; waiting", key: "watch ended early", ["retry_ms": "\(delay)"], level: .info)
                    pause(milliseconds: delay, unless: { self.isStopping })
                }
            } catch {
                if isStopping { break }
                let listing = resourceVersion == nil
                if error.isGone {
                    status.restartsExpired.add(1, ordering: .relaxed)
                    resourceVersion = nil
                } else {
                    status.restartsError.add(1, ordering: .relaxed)
                }
                if case .tooLarge = error, listing {
                    pageSize = max(ReflectorTiming.minimumPageSize, pageSize / 2)
                }
                let delay = backoff.delay(random: Double.random(in: 0..<1), retryAfterSeconds: error.retryAfterSeconds)
                report(error, listing: listing, retryMilliseconds: delay, pageSize: pageSize)
                pause(milliseconds: delay, unless: { self.isStopping })
            }
        }
    }

    /// One LIST of the resource into the snapshot, with no watch after it (the `audit`
    /// command's reading of the cluster).
    func listOnce() throws(KubernetesAPIError) {
        _ = try list(pageSize: timing.pageSize)
    }

    /// Every page of a LIST into a fresh store, published whole once complete (the
    /// snapshot keeps the previous state until then). Linear in the objects listed. Nil
    /// when the reflector is stopping.
    private func list(pageSize: Int) throws(KubernetesAPIError) -> (resourceVersion: String, count: Int)? {
        let writer = self.writer
        var store: NamespacedRecords<Record> = [:]
        var storedBytes = 0
        var count = 0
        var token: String?
        var resourceVersion = ""
        repeat {
            if isStopping { return nil }
            let end = try client.listPage(resource.type, namespace: namespace, continueToken: token, limit: pageSize,
                                          limits: timing.limits, onConnection: remember) { item throws(KubernetesAPIError) in
                guard let identity = ObjectIdentity(item) else { return }
                let record = writer.listed(extract(item, identity.namespace), &storedBytes)
                if store[identity.namespace, default: [:]].updateValue(record, forKey: identity.name) == nil {
                    count += 1
                }
            }
            forget()
            status.progressed()
            resourceVersion = end.resourceVersion
            token = end.continueToken
        } while !(token ?? "").isEmpty
        let scope = namespace
        snapshot.current.withLock { writer.replace(&$0, scope, store) }
        changes?.recordEverything()
        return (resourceVersion, count)
    }

    /// One WATCH, each event written into the snapshot as it comes.
    private func watch(from resourceVersion: inout String?, count: inout Int) throws(KubernetesAPIError) {
        var version = resourceVersion ?? ""
        var objects = count
        defer {
            resourceVersion = version
            count = objects
            forget()
        }
        let writer = self.writer
        try client.watch(resource.type, namespace: namespace, resourceVersion: version,
                         timeoutSeconds: Int.random(in: timing.watchTimeoutSeconds), limits: timing.limits,
                         onConnection: remember) { event throws(KubernetesAPIError) in
            let change: (ObjectReference, Record?, String)
            switch event {
            case .added(let object), .modified(let object):
                guard let identity = ObjectIdentity(object) else { return }
                change = (identity.reference, extract(object, identity.namespace), identity.resourceVersion)
            case .deleted(let object):
                guard let identity = ObjectIdentity(object) else { return }
                change = (identity.reference, nil, identity.resourceVersion)
            case .bookmark(let bookmarked):
                if !bookmarked.isEmpty { version = bookmarked }
                status.progressed()
                return
            case .error(let error):
                throw error
            }
            let (reference, record, eventVersion) = change
            let existed = snapshot.current.withLock { writer.set(&$0, reference, record) }
            changes?.record(CacheChange(resource: resource, reference: reference))
            objects += (record == nil ? 0 : 1) - (existed ? 1 : 0)
            status.objects.store(objects, ordering: .relaxed)
            if !eventVersion.isEmpty { version = eventVersion }
            status.progressed()
        }
    }

    private func remember(_ connection: TLSClientConnection) {
        let handle = InterruptHandle(connection)
        current.withLock { $0 = handle }
        if isStopping { handle.interrupt() }
    }

    private func forget() {
        current.withLock { $0 = nil }
    }

    /// Logs a failure: a permission error (401/403) naming the permission, anything else
    /// with the retry delay; each kind of line at most once a minute, with how many like
    /// it were left out.
    private func report(_ error: KubernetesAPIError, listing: Bool, retryMilliseconds: Int, pageSize: Int) {
        let verb = listing ? "list" : "watch"
        if let code = error.statusCode, let what = resource.refusal(code, verb: verb, namespace: namespace) {
            note("cluster access refused", key: "\(verb) \(code)",
                 ["code": "\(code)", "problem": .string(what), "error": .string(error.description)], level: .error)
            return
        }
        if error.isGone {
            note("resourceVersion expired; listing again", key: "\(verb) expired", ["retry_ms": "\(retryMilliseconds)"], level: .info)
            return
        }
        var details: Logger.Metadata = ["error": .string(error.description), "retry_ms": "\(retryMilliseconds)"]
        if case .tooLarge = error, listing { details["page_size"] = "\(pageSize)" }
        note("\(verb) failed; retrying", key: "\(verb) \(error.kind)", details, level: .warning)
    }

    /// A log line, unless one of the same `key` went out less than a minute ago.
    private func note(_ message: Logger.Message, key: String, _ details: Logger.Metadata, level: Logger.Level) {
        guard let repeats = limiter.withLock({ $0.admit(key, now: monotonicMilliseconds()) }) else { return }
        var all = metadata(details)
        if repeats > 0 { all["repeated"] = "\(repeats)" }
        logger.log(level: level, message, metadata: all)
    }

    private func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var out = extra
        out["resource"] = .string(resource.rawValue)
        if let namespace { out["namespace"] = .string(namespace) }
        return out
    }

}

/// At most one log line a minute per kind of line, counting the ones left out. The
/// kinds are the reflector's own (verb and error category), never a server's text, so
/// the table stays small.
struct LogLimiter {
    static let intervalMilliseconds = 60_000
    private var kinds: [String: (lastLogged: Int, suppressed: Int)] = [:]

    /// nil to stay quiet; otherwise how many lines of this kind were left out since the last.
    mutating func admit(_ key: String, now: Int) -> Int? {
        if let entry = kinds[key], now - entry.lastLogged < Self.intervalMilliseconds {
            kinds[key] = (entry.lastLogged, entry.suppressed + 1)
            return nil
        }
        let suppressed = kinds[key]?.suppressed ?? 0
        kinds[key] = (now, 0)
        return suppressed
    }
}

extension KubernetesAPIError {
    /// The category of a failure, for log limiting: never the server's text.
    var kind: String {
        switch self {
        case .transport: return "transport"
        case .status(let code, _, _, _): return "status \(code)"
        case .malformed: return "malformed"
        case .tooLarge: return "too large"
        case .credentials: return "credentials"
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
