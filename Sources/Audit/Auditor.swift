import ClusterCache
import KubernetesClient
import Logging
import Metrics
import StreamRules
import Synchronization
import SystemSupport

/// What the audit does besides judging.
public struct AuditSettings: Sendable, Equatable {
    /// Every object judged again this often, whatever changed: the safety net under the
    /// change-driven judging.
    public var interval: Duration
    /// Who writes the PolicyReports; nil: none are written (results go to the metrics only).
    public var reports: LeaderElectionSettings?

    public static let defaultInterval = Duration.seconds(600)

    public init(interval: Duration = defaultInterval, reports: LeaderElectionSettings?) {
        self.interval = interval
        self.reports = reports
    }
}

/// The background audit: every AtlasStreamConnection and AtlasStreamInstance the cache
/// holds, judged with `/validate`'s rules when it changes and when something it references
/// changes (a Secret, a connection, a project), and all of them every `interval`; results
/// in the metrics on every replica, and, on the replica that leads, in one PolicyReport
/// per namespace. Judges only while the cache can back a verdict.
public final class Auditor: Sendable {
    private let cache: ClusterCache
    private let changes: CacheChangeFeed
    private let judge: AuditJudge
    private let settings: AuditSettings
    private let client: KubernetesAPIClient
    private let elector: LeaderElector?
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<WorkerThread?>(nil)
    /// What the metrics read: the counts after the last batch, and when the last full pass ended.
    private let published = Mutex<Published>(Published())

    struct Published {
        var findingCounts: [RuleID: (fail: Int, warn: Int)] = [:]
        var passing = 0
        var skipped = 0
        var lastFullPassMilliseconds = 0
    }

    /// How often the loop looks for changes: the most a change waits before it is judged.
    static let pollMilliseconds = 100
    /// Reports are brought up to date at most this often, so a stream of changes in a
    /// namespace costs two reports a second, not one per change.
    static let reportIntervalMilliseconds = 500

    public init(cache: ClusterCache, changes: CacheChangeFeed, rules: StreamRules, settings: AuditSettings,
                client: KubernetesAPIClient, logger: Logger) {
        self.cache = cache
        self.changes = changes
        judge = AuditJudge(rules: rules)
        self.settings = settings
        self.client = client
        self.logger = logger
        elector = settings.reports.map { LeaderElector(settings: $0, client: client, logger: logger) }
    }

    public var isLeader: Bool { elector?.isLeader ?? false }

    public func start() throws(SystemCallError) {
        try elector?.start()
        do throws(SystemCallError) {
            let started = try WorkerThread.start { self.run() }
            thread.withLock { $0 = started }
        } catch {
            elector?.stop()
            throw error
        }
    }

    /// Stops judging and writing, then releases the Lease when this replica holds it.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        let running = thread.withLock { thread in
            defer { thread = nil }
            return thread
        }
        running?.join()
        elector?.stop()
    }

    /// The loop's own state: only its thread touches it.
    private struct LoopState {
        var audit = AuditState()
        var writer: ReportWriter
        var nextFullPass = 0
        /// The leader must read what reports exist before it writes (it may have just taken over).
        var mustReadReports = true
        var wasLeader = false
        /// The PolicyReport resource answered 404: not installed. Looked for again at each full pass.
        var reportsMissing = false
        /// Not before this (the report interval, or a backoff after a failed write).
        var nextWrite = 0
        var writeBackoff = Backoff()
    }

    private func run() {
        var loop = LoopState(writer: ReportWriter(client: client))
        while !stopping.load(ordering: .relaxed) {
            pause(milliseconds: Self.pollMilliseconds, unless: { self.stopping.load(ordering: .relaxed) })
            guard case .ready(let snapshot) = cache.view() else { continue }
            let now = monotonicMilliseconds()
            let wall = wallClockMilliseconds() / 1000
            let pending = changes.take()
            if now >= loop.nextFullPass || pending == .everything {
                fullPass(&loop.audit, snapshot, now: wall)
                loop.nextFullPass = now + settings.interval.wholeMilliseconds
                if loop.reportsMissing { loop.mustReadReports = true }
                published.withLock { $0.lastFullPassMilliseconds = wallClockMilliseconds() }
            } else if case .changes(let set) = pending, !set.isEmpty {
                var touched = Set<AuditedObject>()
                for change in set { touched.formUnion(loop.audit.affected(by: change)) }
                for object in touched { judgeAgain(object, &loop.audit, snapshot, now: wall) }
            }
            let (counts, passing, skipped) = (loop.audit.findingCounts, loop.audit.passing, loop.audit.skipped)
            published.withLock {
                $0.findingCounts = counts
                $0.passing = passing
                $0.skipped = skipped
            }
            writeReports(&loop, now: now)
        }
    }

    /// Every object the snapshot holds judged; those judged before and gone, dropped.
    private func fullPass(_ audit: inout AuditState, _ snapshot: ClusterSnapshot, now: Int) {
        var seen = Set<AuditedObject>()
        for kind in StreamKind.allCases {
            for (namespace, byName) in snapshot.objects(of: kind) {
                for (name, object) in byName {
                    let key = AuditedObject(kind: kind, namespace: namespace, name: name)
                    seen.insert(key)
                    audit.record(key, judge.judge(kind, object, namespace: namespace, snapshot: snapshot), now: now)
                }
            }
        }
        for gone in audit.judgedObjects.filter({ !seen.contains($0) }) { audit.record(gone, nil, now: now) }
    }

    private func judgeAgain(_ object: AuditedObject, _ audit: inout AuditState, _ snapshot: ClusterSnapshot, now: Int) {
        let stored = snapshot.objects(of: object.kind)[object.namespace]?[object.name]
        audit.record(object, stored.flatMap { judge.judge(object.kind, $0, namespace: object.namespace, snapshot: snapshot) },
                     now: now)
    }

    /// The leader brings the reports of the namespaces that changed up to date; a
    /// follower leaves them to it.
    private func writeReports(_ loop: inout LoopState, now: Int) {
        guard let elector else { return }
        let leader = elector.isLeader
        defer { loop.wasLeader = leader }
        guard leader else {
            _ = loop.audit.takeChangedNamespaces()
            loop.mustReadReports = true
            return
        }
        guard now >= loop.nextWrite else { return }
        if loop.mustReadReports {
            do throws(ReportWriteError) {
                let existing = try loop.writer.readExisting(namespaces: cache.namespaces)
                loop.audit.markAllNamespacesChanged(plus: existing)
                loop.mustReadReports = false
                if loop.reportsMissing {
                    loop.reportsMissing = false
                    logger.info("PolicyReports can be written again")
                }
            } catch {
                return failedWrite(&loop, error, now: now)
            }
        }
        guard !loop.reportsMissing else { return }
        var namespaces = loop.audit.takeChangedNamespaces().sorted()[...]
        guard !namespaces.isEmpty else { return }
        while let namespace = namespaces.popFirst() {
            let objects = loop.audit.objects(in: namespace)
            let report = objects.isEmpty ? nil : PolicyReport(namespace: namespace, objects: objects, state: loop.audit)
            do throws(ReportWriteError) {
                _ = try loop.writer.sync(namespace: namespace, report: report)
            } catch {
                loop.audit.markChanged([namespace] + namespaces)
                return failedWrite(&loop, error, now: now)
            }
        }
        loop.writeBackoff.reset()
        loop.nextWrite = now + Self.reportIntervalMilliseconds
    }

    private func failedWrite(_ loop: inout LoopState, _ error: ReportWriteError, now: Int) {
        switch error {
        case .unavailable:
            if !loop.reportsMissing {
                logger.warning("PolicyReports cannot be written: the wgpolicyk8s.io/v1alpha2 PolicyReport resource is not installed; audit results go to the metrics only")
            }
            loop.reportsMissing = true
        case .failed(let cause):
            let delay = loop.writeBackoff.delay(random: Double.random(in: 0..<1), retryAfterSeconds: cause.retryAfterSeconds)
            loop.nextWrite = now + delay
            logger.warning("writing PolicyReports failed; retrying", metadata: ["error": .string(cause.description),
                                                                                 "retry_ms": "\(delay)"])
        }
    }


    /// Declares the audit's metric families in `registry`.
    public func registerMetrics(in registry: MetricsRegistry) {
        registry.collectedFamily("atlas_stream_webhook_audit_results",
                                 help: "Audit results over the cluster's AtlasStream objects: findings by rule and result (fail, warn), and objects passing every rule or not judged (rule \"all\", result pass or skip).",
                                 type: .gauge, labels: ["rule", "result"]) {
            let published = self.published.withLock { ($0.findingCounts, $0.passing, $0.skipped) }
            var samples = [MetricSample(labelValues: [PolicyReport.passRule, AuditResult.pass.rawValue], .integer(published.1)),
                           MetricSample(labelValues: [PolicyReport.passRule, AuditResult.skip.rawValue], .integer(published.2))]
            for rule in RuleID.allCases {
                guard let counts = published.0[rule] else { continue }
                if counts.fail > 0 { samples.append(MetricSample(labelValues: [rule.rawValue, AuditResult.fail.rawValue], .integer(counts.fail))) }
                if counts.warn > 0 { samples.append(MetricSample(labelValues: [rule.rawValue, AuditResult.warn.rawValue], .integer(counts.warn))) }
            }
            return samples
        }
        registry.collectedFamily("atlas_stream_webhook_audit_last_pass_timestamp_seconds",
                                 help: "When the audit last judged every object (Unix time; 0 before the first pass).", type: .gauge) {
            [MetricSample(labelValues: [], .real(Double(self.published.withLock { $0.lastFullPassMilliseconds }) / 1000))]
        }
        registry.collectedFamily("atlas_stream_webhook_leader",
                                 help: "Whether this replica leads, and so writes the PolicyReports (1), or not (0).", type: .gauge) {
            [MetricSample(labelValues: [], .integer(self.isLeader ? 1 : 0))]
        }
    }
}
