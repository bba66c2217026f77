import Admission
import Glibc
import StreamRules
import Units
import HTTPServer
import Logging
import Metrics
import Synchronization
import SystemSupport
import TLS

/// Why the server did not start.
public enum WebhookStartError: Error, Sendable, CustomStringConvertible {
    /// A listener could not be set up (its address in use, say).
    case listener(HTTPServerError)
    /// A thread the server needs (the certificate watcher, the loop watchdog) could not
    /// be started.
    case thread(name: String, SystemCallError)

    public var description: String {
        switch self {
        case .listener(let error): "\(error)"
        case .thread(let name, let error): "cannot start the \(name) thread: \(error)"
        }
    }
}

/// What a binary is: its release and the git revision it was built from.
public struct BuildIdentity: Sendable, Equatable {
    public var release: String
    public var revision: String

    public init(release: String, revision: String) {
        self.release = release
        self.revision = revision
    }

    public static let unknown = BuildIdentity(release: "unknown", revision: "unknown")
}

/// Everything `serve` needs to run.
public struct WebhookConfiguration: Sendable {
    public var http: HTTPServerConfiguration
    public var tls: TLSConfiguration
    /// In the start log line and `atlas_stream_webhook_build_info`.
    public var build: BuildIdentity = .unknown
    /// After SIGTERM: how long `/readyz` reports 503 while serving goes on, so endpoints
    /// controllers and load balancers stop sending new connections.
    public var shutdownDelay: Duration
    /// Then: how long requests in flight may take before the rest are closed.
    public var drainTimeout: Duration
    /// How often the certificate files are checked besides inotify.
    public var certificatePollInterval: Duration
    /// An event loop that does not come back to epoll_wait within this long (busy in a
    /// request, or frozen anywhere) is stalled: `/healthz` turns 503.
    public var loopStallTimeout: Duration
    /// Where `/healthz` and `/readyz` are served over plain HTTP as well, for probes that
    /// have no client certificate; nil: only on the webhook's port.
    public var healthAddress: ListenAddress?
    /// Where `/metrics` is served as well: over TLS with the serving certificate, asking
    /// for no client certificate, or over plain HTTP with `metricsInsecure`; nil: only on
    /// the webhook's port.
    public var metricsAddress: ListenAddress?
    public var metricsInsecure: Bool

    public static let defaultShutdownDelay = Duration.seconds(5)
    public static let defaultDrainTimeout = Duration.seconds(30)
    public static let defaultCertificatePollInterval = Duration.seconds(10)
    public static let defaultLoopStallTimeout = Duration.seconds(10)

    public init(http: HTTPServerConfiguration, tls: TLSConfiguration,
                shutdownDelay: Duration = WebhookConfiguration.defaultShutdownDelay,
                drainTimeout: Duration = WebhookConfiguration.defaultDrainTimeout,
                certificatePollInterval: Duration = WebhookConfiguration.defaultCertificatePollInterval,
                loopStallTimeout: Duration = WebhookConfiguration.defaultLoopStallTimeout,
                healthAddress: ListenAddress? = nil, metricsAddress: ListenAddress? = nil, metricsInsecure: Bool = false) {
        self.http = http
        self.tls = tls
        self.shutdownDelay = shutdownDelay
        self.drainTimeout = drainTimeout
        self.certificatePollInterval = certificatePollInterval
        self.loopStallTimeout = loopStallTimeout
        self.healthAddress = healthAddress
        self.metricsAddress = metricsAddress
        self.metricsInsecure = metricsInsecure
    }

    /// A health or metrics listener's server: one loop, the webhook's header limits and
    /// deadlines, and caps small enough that probes and scrapes never take what admission
    /// needs (bodies: these routes take none).
    func operationsHTTP(_ address: ListenAddress, loopName: String) -> HTTPServerConfiguration {
        HTTPServerConfiguration(address: address, loopCount: 1, loopName: loopName,
                                limits: HTTPLimits(maxHeaderBytes: http.limits.maxHeaderBytes,
                                                   maxHeaderFields: http.limits.maxHeaderFields,
                                                   maxBodyBytes: WebhookConfiguration.operationsMaxBodyBytes),
                                timeouts: http.timeouts, maxConnections: WebhookConfiguration.operationsMaxConnections,
                                maxBufferedBodyBytes: WebhookConfiguration.operationsMaxBodyBytes * WebhookConfiguration.operationsMaxConnections)
    }

    /// Open connections on each of the health and metrics listeners (kubelet probes and a
    /// few scrapers need a handful).
    public static let operationsMaxConnections = 32
    static let operationsMaxBodyBytes = 4 * 1024
}

/// What the server asks of the cluster cache, when lookups are on: why `/readyz` should
/// say not ready (nil when ready), and to declare its metric families in the server's
/// registry.
public struct ClusterCacheHooks: Sendable {
    public var notReadyReason: @Sendable () -> String?
    public var registerMetrics: @Sendable (MetricsRegistry) -> Void

    public init(notReadyReason: @escaping @Sendable () -> String?, registerMetrics: @escaping @Sendable (MetricsRegistry) -> Void) {
        self.notReadyReason = notReadyReason
        self.registerMetrics = registerMetrics
    }
}

/// The admission webhook: the TLS HTTP server with `/mutate`, `/validate`,
/// `/healthz`, `/readyz` and `/metrics`, and the health and metrics listeners.
public final class WebhookServer: Sendable {
    public let configuration: WebhookConfiguration
    private let endpoints: WebhookEndpoints
    private let http: HTTPServer
    /// `/healthz` and `/readyz` over plain HTTP (`healthAddress`).
    private let health: HTTPServer?
    /// `/metrics` on a port of its own (`metricsAddress`).
    private let metrics: HTTPServer?
    private let watcher: CertificateWatcher
    private let watchdog: LoopWatchdog

    /// Loads the certificate pair (a clear error if it is unreadable or mismatched).
    public init(configuration: WebhookConfiguration, reviewer: AdmissionReviewer, logger: Logger,
                cluster: ClusterCacheHooks? = nil) throws(TLSError) {
        self.configuration = configuration
        let baseline = CertificateWatcher.fingerprint(of: configuration.tls.files)
        let context = try TLSContext(configuration: configuration.tls)
        let monitor = LoopMonitor(loopCount: configuration.http.loopCount)
        let endpoints = WebhookEndpoints(reviewer: reviewer, logger: logger, tlsContexts: TLSContextStore(context), cluster: cluster,
                                         build: configuration.build, monitor: monitor, stallTimeoutMilliseconds: configuration.loopStallTimeout.wholeMilliseconds,
                                         defaultReviewBudgetMilliseconds: configuration.http.timeouts.requestBody.wholeMilliseconds)
        self.endpoints = endpoints
        self.http = HTTPServer(configuration: configuration.http, transport: .tls(endpoints.tlsContexts),
                               router: endpoints.router(), statistics: endpoints.statistics, monitor: monitor)
        health = configuration.healthAddress.map {
            HTTPServer(configuration: configuration.operationsHTTP($0, loopName: "health-loop"), transport: .plain,
                       router: endpoints.healthRouter())
        }
        // Under mTLS the webhook's context demands a client certificate, which a scraper
        // does not have: the metrics listener gets a context of its own from the same
        // files, reloaded with the webhook's. Its own, not the webhook's with verification
        // turned off per connection: a context's ticket keys are its own, so a session
        // made here without a certificate can never be resumed on the webhook's port.
        var serverOnlyStore: TLSContextStore?
        if let address = configuration.metricsAddress {
            let transport: HTTPTransport
            if configuration.metricsInsecure {
                transport = .plain
            } else if configuration.tls.clientCAPath == nil {
                transport = .tls(endpoints.tlsContexts)
            } else {
                let store = TLSContextStore(try TLSContext(configuration: configuration.tls.withoutClientCertificates))
                serverOnlyStore = store
                transport = .tls(store)
            }
            metrics = HTTPServer(configuration: configuration.operationsHTTP(address, loopName: "metrics-loop"),
                                 transport: transport, router: endpoints.metricsRouter())
        } else {
            metrics = nil
        }
        self.watchdog = LoopWatchdog(monitor: monitor, stallTimeoutMilliseconds: configuration.loopStallTimeout.wholeMilliseconds,
                                     logger: logger) { endpoints.metrics.loopStalled() }
        self.watcher = CertificateWatcher(configuration: configuration.tls, store: endpoints.tlsContexts,
                                          serverOnlyStore: serverOnlyStore, baseline: baseline,
                                          pollIntervalMilliseconds: configuration.certificatePollInterval.wholeMilliseconds) { result in
            endpoints.certificateReloaded(result)
        }
    }

    /// Ready: a certificate is loaded, the cluster cache (if any) has synced, and the
    /// server is not draining.
    public var isReady: Bool { endpoints.isReady }

    /// The health listener's bound port while it runs.
    public var healthPort: UInt16? { health?.port }

    /// The metrics listener's bound port while it runs.
    public var metricsPort: UInt16? { metrics?.port }

    /// Starts serving; returns the webhook's bound port. A listener or thread that cannot
    /// start (an address in use, no thread to be had) stops what was already started.
    @discardableResult
    public func start() throws(WebhookStartError) -> UInt16 {
        let port: UInt16
        do throws(HTTPServerError) {
            port = try http.start()
        } catch {
            throw .listener(error)
        }
        let healthPort: UInt16?, metricsPort: UInt16?
        do throws(HTTPServerError) {
            healthPort = try health?.start()
            metricsPort = try metrics?.start()
        } catch {
            health?.stop()
            http.stop()
            throw .listener(error)
        }
        do throws(WebhookStartError) {
            try start(thread: "certificate watcher") { () throws(SystemCallError) in try watcher.start() }
            try start(thread: "loop watchdog") { () throws(SystemCallError) in try watchdog.start() }
        } catch {
            watcher.stop()
            metrics?.stop()
            health?.stop()
            http.stop()
            throw error
        }
        let cap = http.effectiveMaxConnections ?? configuration.http.maxConnections
        if cap < configuration.http.maxConnections {
            endpoints.logger.warning("max connections lowered to fit the file descriptor limit", metadata: [
                "configured": .stringConvertible(configuration.http.maxConnections), "effective": .stringConvertible(cap),
            ])
        }
        endpoints.logger.info("serving", metadata: [
            "version": .string(configuration.build.release), "revision": .string(configuration.build.revision),
            "address": "\(configuration.http.address.host):\(port)",
            "loops": "\(configuration.http.loopCount)",
            "max_connections": "\(cap)",
            "health": .string(WebhookServer.url(configuration.healthAddress, port: healthPort, tls: false)),
            "metrics": .string(WebhookServer.url(configuration.metricsAddress, port: metricsPort, tls: !configuration.metricsInsecure)),
        ])
        return port
    }

    /// `http://HOST:PORT` (`https` with `tls`) for the log, or `off`.
    private static func url(_ address: ListenAddress?, port: UInt16?, tls: Bool) -> String {
        guard var address, let port else { return "off" }
        address.port = port
        return (tls ? "https://" : "http://") + address.description
    }

    private func start(thread name: String, _ start: () throws(SystemCallError) -> Void) throws(WebhookStartError) {
        do throws(SystemCallError) {
            try start()
        } catch {
            throw .thread(name: name, error)
        }
    }

    /// Stops at once: listeners and connections closed.
    public func stop() {
        endpoints.draining.store(true, ordering: .relaxed)
        watcher.stop()
        watchdog.stop()
        http.stop()
        health?.stop()
        metrics?.stop()
    }

    /// The graceful stop: readiness off at once, normal service for the
    /// shutdown delay (each response now closes its connection, so clients reconnect
    /// elsewhere), then the listener and idle connections close and requests in flight
    /// finish with `Connection: close`, within the drain timeout. The timeout is a hard
    /// deadline: returns false when connections were cut or a loop never came back (its
    /// thread is left behind: the process must exit, with a non-zero status).
    @discardableResult
    public func shutDownGracefully() -> Bool {
        endpoints.draining.store(true, ordering: .relaxed)
        http.disableKeepAlive()
        endpoints.logger.info("draining", metadata: ["shutdown_delay_ms": .stringConvertible(configuration.shutdownDelay.wholeMilliseconds),
                                                     "drain_timeout_ms": .stringConvertible(configuration.drainTimeout.wholeMilliseconds)])
        if configuration.shutdownDelay > .zero {
            usleep(UInt32(clamping: configuration.shutdownDelay.wholeMilliseconds * 1000))
        }
        let result = http.drain(timeout: configuration.drainTimeout)
        // Probes and scrapes are answered until the webhook's port has drained.
        health?.stop()
        metrics?.stop()
        watcher.stop()
        watchdog.stop()
        guard result.drained && result.stuck.isEmpty else {
            endpoints.logger.error("drain deadline passed; exiting with requests in flight", metadata: [
                "open_connections": .stringConvertible(result.openConnections),
                "stuck_loops": .array(result.stuck.map {
                    .string("loop \($0.loop): \($0.activity.isEmpty ? "no request" : $0.activity)")
                }),
            ])
            return false
        }
        endpoints.logger.info("stopped", metadata: ["drained": "true"])
        return true
    }

    /// Blocks SIGTERM and SIGINT in this and every thread started after, so that
    /// `waitForTerminationSignal` receives them. Call first thing, before any thread
    /// starts (the log writer's too): a thread that leaves them unblocked would take a
    /// second signal during the drain with the default action and end the process.
    public static func blockTerminationSignals() {
        var set = terminationSignals()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits for SIGTERM or SIGINT, then stops the server; false when the drain
    /// deadline cut it short (see `shutDownGracefully`).
    public func waitForTerminationSignal() -> Bool {
        var set = WebhookServer.terminationSignals()
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        endpoints.logger.info("stopping", metadata: ["signal": "\(received == SIGTERM ? "SIGTERM" : "SIGINT")"])
        return shutDownGracefully()
    }

    private static func terminationSignals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }
}

/// The handlers behind the routes, and the state they share.
final class WebhookEndpoints: Sendable {
    let reviewer: AdmissionReviewer
    let logger: Logger
    let tlsContexts: TLSContextStore
    let cluster: ClusterCacheHooks?
    let statistics: HTTPServerStatistics
    let metrics: WebhookMetrics
    let draining = Atomic<Bool>(false)
    let monitor: LoopMonitor
    let stallTimeout: Int
    /// A review's time budget when its request names no `?timeout=`.
    let defaultReviewBudget: Int

    init(reviewer: AdmissionReviewer, logger: Logger, tlsContexts: TLSContextStore, cluster: ClusterCacheHooks?, build: BuildIdentity,
         monitor: LoopMonitor, stallTimeoutMilliseconds: Int, defaultReviewBudgetMilliseconds: Int) {
        self.reviewer = reviewer
        self.logger = logger
        self.tlsContexts = tlsContexts
        self.cluster = cluster
        let statistics = HTTPServerStatistics()
        self.statistics = statistics
        metrics = WebhookMetrics(registry: MetricsRegistry(), build: build, http: statistics,
                                 certificateNotAfter: { tlsContexts.current?.certificateNotAfter }, cluster: cluster)
        self.monitor = monitor
        self.stallTimeout = stallTimeoutMilliseconds
        self.defaultReviewBudget = defaultReviewBudgetMilliseconds
    }

    var isReady: Bool {
        tlsContexts.current != nil && !draining.load(ordering: .relaxed) && (cluster?.notReadyReason() == nil)
    }

    func certificateReloaded(_ result: Result<TLSContext, TLSError>) {
        switch result {
        case .success(let context):
            metrics.certificateReloaded(success: true)
            logger.info("certificate reloaded", metadata: [
                "certificate": .string(context.configuration.certificateChainPath),
                "not_after": .stringConvertible(context.certificateNotAfter ?? 0),
            ])
        case .failure(let error):
            metrics.certificateReloaded(success: false)
            logger.error("certificate reload refused; the previous certificate keeps serving",
                         metadata: ["error": .string(error.description)])
        }
    }

    /// The webhook's port: admission, and the health and metrics routes as well (probes
    /// and scrapes that reach it keep working).
    func router() -> HTTPRouter {
        var router = makeRouter()
        for endpoint in AdmissionEndpoint.allCases {
            router.add("POST", endpoint.path) { request in self.admit(request, at: endpoint) }
        }
        router.requestTimeout = WebhookEndpoints.requestTimeout
        addHealthRoutes(to: &router)
        #if DEBUG
        // Test builds only (never compiled into a release build), and only when the
        // environment asks for it: a handler that keeps its loop busy, to prove the
        // watchdog and the drain deadline against the real process.
        if getenv("ATLAS_STREAM_WEBHOOK_TEST_HOOKS") != nil {
            router.add("POST", "/test/spin") { request in
                let seconds = request.queryParameter("seconds").flatMap(Int.init) ?? 3600
                let until = monotonicSeconds() + Double(seconds)
                while monotonicSeconds() < until {}
                return WebhookEndpoints.plain(.ok, "spun")
            }
        }
        #endif
        addMetricsRoute(to: &router)
        return router
    }

    /// The health listener: `/healthz` and `/readyz` only.
    func healthRouter() -> HTTPRouter {
        var router = makeRouter()
        addHealthRoutes(to: &router)
        return router
    }

    /// The metrics listener: `/metrics` only.
    func metricsRouter() -> HTTPRouter {
        var router = makeRouter()
        addMetricsRoute(to: &router)
        return router
    }

    private func makeRouter() -> HTTPRouter {
        HTTPRouter { status, message in
            HTTPResponse(status: status, body: Status.failureBody(code: status.code, message: message))
        }
    }

    private func addHealthRoutes(to router: inout HTTPRouter) {
        // About the webhook's loops, from any loop that answers. On the webhook's port a
        // stalled loop answers nothing, so a probe that lands on it times out; the health
        // listener's own loop always answers, with the stall named.
        router.add("GET", "/healthz") { _ in
            let stalls = self.monitor.stalls(threshold: self.stallTimeout)
            guard stalls.isEmpty else {
                return WebhookEndpoints.plain(.serviceUnavailable, stalls.map {
                    "event loop \($0.loop) stalled for \($0.milliseconds / 1000) s"
                }.joined(separator: "; "))
            }
            return WebhookEndpoints.plain(.ok, "ok")
        }
        router.add("GET", "/readyz") { _ in
            if self.isReady { return WebhookEndpoints.plain(.ok, "ok") }
            if let reason = self.cluster?.notReadyReason(), !self.draining.load(ordering: .relaxed) {
                return WebhookEndpoints.plain(.serviceUnavailable, "not ready: \(reason)")
            }
            return WebhookEndpoints.plain(.serviceUnavailable, "not ready")
        }
    }

    private func addMetricsRoute(to router: inout HTTPRouter) {
        router.add("GET", "/metrics") { _ in
            HTTPResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                         body: Array(self.metrics.registry.render().utf8))
        }
    }

    // MARK: - Admission

    func admit(_ request: HTTPRequest, at endpoint: AdmissionEndpoint) -> HTTPResponse {
        let started = monotonicSeconds()
        metrics.begin(endpoint)
        let response: HTTPResponse
        var summary: AdmissionSummary?
        if request.headers.withValue(of: "content-type", WebhookEndpoints.isJSONContentType) != true {
            let given = request.header("content-type") ?? "none"
            response = HTTPResponse(status: .unsupportedMediaType,
                                    body: Status.failureBody(code: 415, message: "Content-Type must be application/json, got \(given)"))
        } else {
            // Past the request's own timeout (else the body deadline) the apiserver has
            // given up: the review stops where stopping is cheap.
            let budgetMilliseconds = WebhookEndpoints.requestTimeout(request).map { min($0, defaultReviewBudget) }
                ?? defaultReviewBudget
            let budget = ReviewBudget(deadline: monotonicMilliseconds() + max(1, budgetMilliseconds),
                                      clock: { monotonicMilliseconds() })
            let outcome = reviewer.review(request.body, at: endpoint, budget: budget) { decoded in
                monitor.note(loop: request.loop, "uid", echoed(decoded.uid))
                monitor.note(loop: request.loop, "kind", echoed(decoded.kind))
            }
            switch outcome {
            case .answered(let body, let result):
                summary = result
                response = HTTPResponse(status: .ok, body: body)
            case .badRequest(let error):
                response = HTTPResponse(status: .badRequest, body: Status.failureBody(code: 400, message: error.description))
            case .outOfTime:
                metrics.reviewOutOfTime()
                response = HTTPResponse(status: .gatewayTimeout, body: Status.failureBody(
                    code: 504, message: "the review took longer than the request's timeout of \(budgetMilliseconds) ms"))
            }
        }
        let elapsed = monotonicSeconds() - started
        metrics.end(endpoint, code: response.status.code, seconds: elapsed, summary: summary)
        log(summary, endpoint: endpoint, status: response.status.code, seconds: elapsed)
        return response
    }

    /// Denials, would-be denials (enforcement `warn`) and refusals at info, with the rules
    /// and fields that decided them; other allowed reviews at debug (one line each).
    private func log(_ summary: AdmissionSummary?, endpoint: AdmissionEndpoint, status: Int, seconds: Double) {
        let level: Logger.Level = summary.map { $0.allowed && !$0.findings.contains { $0.outcome == .wouldDeny } } ?? false
            ? .debug : .info
        guard logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = [
            "webhook": .string(endpoint.path),
            "code": .stringConvertible(status),
            "latency_ms": .stringConvertible((seconds * 1e6).rounded() / 1e3),
        ]
        if let s = summary {
            metadata["uid"] = .string(s.uid)
            metadata["kind"] = .string(s.kind)
            metadata["namespace"] = .string(s.namespace)
            metadata["name"] = .string(s.name)
            metadata["operation"] = .string(s.operation)
            metadata["user"] = .string(s.user)
            metadata["allowed"] = .stringConvertible(s.allowed)
            metadata["patch_ops"] = .stringConvertible(s.patchOperations)
            metadata["dry_run"] = .stringConvertible(s.dryRun)
            if !s.findings.isEmpty { metadata["rules"] = .string(s.findings.map(\.rule.rawValue).joined(separator: ",")) }
            let denied = s.findings.filter { $0.outcome == .denied }, wouldDeny = s.findings.filter { $0.outcome == .wouldDeny }
            if !denied.isEmpty { metadata["denied_by"] = .string(denied.map { "\($0.rule.rawValue) \($0.field)" }.joined(separator: ", ")) }
            if !wouldDeny.isEmpty {
                metadata["would_deny"] = .string(wouldDeny.map { "\($0.rule.rawValue) \($0.field)" }.joined(separator: ", "))
            }
        }
        logger.log(level: level, summary == nil ? "request refused" : "admission", metadata: metadata)
    }

    /// The request's `?timeout=` (a Go duration, as kube-apiserver sends it) in milliseconds.
    @Sendable static func requestTimeout(_ request: HTTPRequest) -> Int? {
        request.queryParameter("timeout").flatMap(GoDuration.milliseconds)
    }

    /// `application/json`, optionally with parameters such as `; charset=utf-8`.
    static func isJSONContentType(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // Case-insensitive "application/json", then the end, or parameters after ';'.
        let expected = jsonMediaType
        var i = 0
        while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
        guard bytes.count - i >= expected.count else { return false }
        for b in expected {
            let c = bytes[i]
            guard (c >= 0x41 && c <= 0x5A ? c + 0x20 : c) == b else { return false }
            i += 1
        }
        while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
        return i == bytes.count || bytes[i] == UInt8(ascii: ";")
    }

    private static let jsonMediaType: [UInt8] = Array("application/json".utf8)

    private static func plain(_ status: HTTPStatus, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
    }
}
