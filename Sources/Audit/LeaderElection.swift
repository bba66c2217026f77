import Glibc
import JSON
import KubernetesClient
import Logging
import Synchronization
import SystemSupport

/// How the replicas choose the one that writes reports: client-go's leaderelection
/// settings.
public struct LeaderElectionSettings: Sendable, Equatable {
    /// The Lease, in `namespace` (the server's own).
    public var leaseName: String
    public var namespace: String
    /// This replica's name in the Lease (its pod's name).
    public var identity: String
    /// A Lease not renewed for this long may be taken by another replica.
    public var leaseDuration: Duration
    /// A leader that could not renew for this long stops leading.
    public var renewDeadline: Duration
    /// How often a replica tries to take or renew the Lease.
    public var retryPeriod: Duration

    public static let defaultLeaseName = "atlas-stream-webhook-audit"
    public static let defaultLeaseDuration = Duration.seconds(15)
    public static let defaultRenewDeadline = Duration.seconds(10)
    public static let defaultRetryPeriod = Duration.seconds(2)

    public init(leaseName: String = defaultLeaseName, namespace: String, identity: String,
                leaseDuration: Duration = defaultLeaseDuration, renewDeadline: Duration = defaultRenewDeadline,
                retryPeriod: Duration = defaultRetryPeriod) {
        self.leaseName = leaseName
        self.namespace = namespace
        self.identity = identity
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
        self.retryPeriod = retryPeriod
    }
}

/// Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
/// does it: a replica takes the Lease when it is free or its holder has not renewed it
/// for `leaseDuration` (timed by this replica's own clock from when it last saw the
/// Lease change, so clock skew between nodes does not matter), renews it every
/// `retryPeriod`, stops leading when it could not renew for `renewDeadline`, and
/// releases it when stopped. Every write carries the resourceVersion it read: of two
/// replicas racing for it, one gets 409 Conflict and stays a follower.
public final class LeaderElector: Sendable {
    public let settings: LeaderElectionSettings
    private let client: KubernetesAPIClient
    private let logger: Logger
    private let leading = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<WorkerThread?>(nil)
    /// When a failure was last logged (monotonic milliseconds): at most one line a minute
    /// while the API server cannot be reached, however often the election retries.
    private let lastFailureLogged = Atomic<Int>(Int.min / 2)

    public init(settings: LeaderElectionSettings, client: KubernetesAPIClient, logger: Logger) {
        self.settings = settings
        self.client = client
        self.logger = logger
    }

    /// Whether this replica holds the Lease now.
    public var isLeader: Bool { leading.load(ordering: .relaxed) }

    public func start() throws(SystemCallError) {
        let started = try WorkerThread.start { self.run() }
        thread.withLock { $0 = started }
    }

    /// Stops trying, and releases the Lease when held, so another replica takes over at
    /// once instead of after `leaseDuration`.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        let running = thread.withLock { thread in
            defer { thread = nil }
            return thread
        }
        running?.join()
    }

    /// What this replica last saw of the Lease, and when (its monotonic clock).
    private struct Observation {
        var record: LeaseRecord
        var resourceVersion: String
        var at: Int
    }

    private func run() {
        var observed: Observation?
        var lastRenewal = 0
        let retry = settings.retryPeriod.wholeMilliseconds
        while !stopping.load(ordering: .relaxed) {
            let now = monotonicMilliseconds()
            let held = attempt(&observed, now: now)
            if held {
                lastRenewal = now
                if !leading.exchange(true, ordering: .relaxed) {
                    logger.info("became the audit leader", metadata: ["lease": .string(leaseDescription), "identity": .string(settings.identity)])
                }
            } else if leading.load(ordering: .relaxed), now - lastRenewal > settings.renewDeadline.wholeMilliseconds {
                leading.store(false, ordering: .relaxed)
                logger.warning("stopped leading the audit: the Lease was not renewed within the renew deadline",
                               metadata: ["lease": .string(leaseDescription)])
            }
            pause(milliseconds: retry, unless: { self.stopping.load(ordering: .relaxed) })
        }
        if leading.exchange(false, ordering: .relaxed) { release(observed) }
    }

    private var leaseDescription: String { "\(settings.namespace)/\(settings.leaseName)" }
    private var location: ObjectLocation {
        ObjectLocation(apiPrefix: "/apis/coordination.k8s.io/v1", plural: "leases", namespace: settings.namespace)
    }

    /// One try to take or renew the Lease; true when this replica holds it afterwards.
    private func attempt(_ observed: inout Observation?, now: Int) -> Bool {
        let path = location.object(settings.leaseName)
        let current: JSONValue?
        do {
            current = try client.send(.get, path)
        } catch where error.statusCode == 404 {
            current = nil
        } catch {
            note(error, "reading")
            return false
        }
        guard let current else {
            let time = microTime(wallClockMilliseconds())
            let record = LeaseRecord(holder: settings.identity, durationSeconds: leaseSeconds, acquired: time, renewed: time,
                                     transitions: 0)
            do {
                let answer = try client.send(.post, location.collection, body: body(record, resourceVersion: nil))
                observed = Observation(record: record, resourceVersion: answer?["metadata"]?["resourceVersion"]?.string ?? "", at: now)
                return true
            } catch {
                if error.statusCode != 409 { note(error, "creating") }
                return false
            }
        }
        let record = LeaseRecord(current["spec"])
        let version = current["metadata"]?["resourceVersion"]?.string ?? ""
        if observed?.record != record || observed?.resourceVersion != version {
            observed = Observation(record: record, resourceVersion: version, at: now)
        }
        let mine = record.holder == settings.identity
        let expired = (observed?.at ?? now) + record.durationSeconds * 1000 <= now
        if !record.holder.isEmpty && !mine && !expired { return false }
        let wall = microTime(wallClockMilliseconds())
        let next = LeaseRecord(holder: settings.identity, durationSeconds: leaseSeconds,
                               acquired: mine ? record.acquired : wall, renewed: wall,
                               transitions: mine ? record.transitions : record.transitions + 1)
        do {
            let answer = try client.send(.put, path, body: body(next, resourceVersion: version))
            observed = Observation(record: next, resourceVersion: answer?["metadata"]?["resourceVersion"]?.string ?? "", at: now)
            return true
        } catch {
            if error.statusCode != 409 { note(error, "updating") }
            return false
        }
    }

    /// Gives the Lease up: no holder, and a duration of one second, as client-go releases it.
    private func release(_ observed: Observation?) {
        guard let observed, observed.record.holder == settings.identity else { return }
        var released = observed.record
        released.holder = ""
        released.durationSeconds = 1
        released.renewed = microTime(wallClockMilliseconds())
        do {
            _ = try client.send(.put, location.object(settings.leaseName), body: body(released, resourceVersion: observed.resourceVersion))
            logger.info("released the audit Lease", metadata: ["lease": .string(leaseDescription)])
        } catch {
            note(error, "releasing")
        }
    }

    private var leaseSeconds: Int { max(1, settings.leaseDuration.wholeMilliseconds / 1000) }

    private func body(_ record: LeaseRecord, resourceVersion: String?) -> [UInt8] {
        var w = JSONWriter(capacity: 512)
        w.beginObject()
        w.key("apiVersion"); w.string("coordination.k8s.io/v1")
        w.key("kind"); w.string("Lease")
        w.key("metadata")
        w.beginObject()
        w.key("name"); w.string(settings.leaseName)
        w.key("namespace"); w.string(settings.namespace)
        if let resourceVersion { w.key("resourceVersion"); w.string(resourceVersion) }
        w.endObject()
        w.key("spec")
        w.beginObject()
        w.key("holderIdentity"); w.string(record.holder)
        w.key("leaseDurationSeconds"); w.int(record.durationSeconds)
        w.key("acquireTime"); w.string(record.acquired)
        w.key("renewTime"); w.string(record.renewed)
        w.key("leaseTransitions"); w.int(record.transitions)
        w.endObject()
        w.endObject()
        return w.bytes
    }

    private func note(_ error: KubernetesAPIError, _ doing: String) {
        let now = monotonicMilliseconds()
        guard now - lastFailureLogged.load(ordering: .relaxed) >= 60_000 else { return }
        lastFailureLogged.store(now, ordering: .relaxed)
        logger.warning("leader election: \(doing) the Lease failed",
                       metadata: ["lease": .string(leaseDescription), "error": .string(error.description)])
    }

}

/// A Lease's spec, as far as the election reads it. The times are kept as written: the
/// election compares records, never reads another node's clock.
struct LeaseRecord: Equatable {
    var holder: String
    var durationSeconds: Int
    var acquired: String
    var renewed: String
    var transitions: Int

    init(holder: String, durationSeconds: Int, acquired: String, renewed: String, transitions: Int) {
        self.holder = holder
        self.durationSeconds = durationSeconds
        self.acquired = acquired
        self.renewed = renewed
        self.transitions = transitions
    }

    init(_ spec: JSONValue?) {
        holder = spec?["holderIdentity"]?.string ?? ""
        durationSeconds = spec?["leaseDurationSeconds"]?.int ?? 0
        acquired = spec?["acquireTime"]?.string ?? ""
        renewed = spec?["renewTime"]?.string ?? ""
        transitions = spec?["leaseTransitions"]?.int ?? 0
    }
}

/// `metav1.MicroTime` as the API writes it: RFC 3339 in UTC with microseconds.
func microTime(_ milliseconds: Int) -> String {
    var seconds = time_t(milliseconds / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    let micro = String((milliseconds % 1000) * 1000)
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):"
        + "\(two(parts.tm_sec)).\(String(repeating: "0", count: 6 - micro.count))\(micro)Z"
}
