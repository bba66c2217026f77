import Admission
import HTTPServer
import Metrics
import StreamRules

/// Prometheus metrics with controller-runtime's names, so existing webhook
/// dashboards work, plus this server's own, declared in `registry` (with the cluster
/// cache's families, when lookups are on).
///
/// Every event loop records each request here through series made up front: atomics, so
/// loops never wait on each other and a request allocates nothing. Every label value
/// comes from a fixed set (a request's kind and operation are free text: as labels they
/// would let any client grow the series).
final class WebhookMetrics: Sendable {
    /// Latency histogram upper bounds in seconds, 100 µs to 30 s.
    private static let latencyBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25, 0.5, 1, 2.5, 5, 10, 30]
    /// The status codes the admission endpoints answer with; another gets its series when
    /// it first occurs.
    private static let knownCodes = [200, 400, 415]
    /// Label values of `atlas_stream_webhook_admission_total`; any other kind or operation
    /// is counted as `other`.
    private static let admissionKinds = ["AtlasStreamConnection", "AtlasStreamInstance"]
    private static let admissionOperations = ["CONNECT", "CREATE", "DELETE", "UPDATE"]
    private static let other = "other"

    let registry: MetricsRegistry
    private let requests: CounterFamily
    private let mutateSeries: EndpointSeries
    private let validateSeries: EndpointSeries
    private let admissions: AdmissionCounters
    private let reloadSuccesses: Counter
    private let reloadFailures: Counter
    private let loopStalls: Counter
    private let reviewsOutOfTime: Counter
    /// Per rule (`RuleID.ordinal`), then outcome (`RuleFinding.Outcome.allCases` order).
    private let ruleFindings: [Counter]
    private static let outcomeCount = RuleFinding.Outcome.allCases.count

    /// An outcome's place in `allCases`, without building the list per request.
    private static func position(of outcome: RuleFinding.Outcome) -> Int {
        switch outcome {
        case .denied: 0
        case .warned: 1
        case .wouldDeny: 2
        }
    }

    /// One endpoint's series. Found per request without hashing (a hash costs more than
    /// the rest of the bookkeeping): the known codes are few and compared in turn.
    private struct EndpointSeries: Sendable {
        let requestsByCode: [(code: Int, counter: Counter)]
        let latency: Histogram
        let inFlight: Gauge

        func requests(code: Int) -> Counter? {
            requestsByCode.first { $0.code == code }?.counter
        }
    }

    /// `atlas_stream_webhook_admission_total` by kind, operation and outcome: one counter
    /// per combination, found by the positions of the kind and operation among the label
    /// values (`other` last), so a request hashes nothing.
    private struct AdmissionCounters: Sendable {
        let counters: [Counter]

        init(_ family: CounterFamily) {
            var counters: [Counter] = []
            for kind in WebhookMetrics.admissionKinds + [WebhookMetrics.other] {
                for operation in WebhookMetrics.admissionOperations + [WebhookMetrics.other] {
                    for allowed in [false, true] {
                        counters.append(family.counter(labels: [kind, operation, String(allowed)]))
                    }
                }
            }
            self.counters = counters
        }

        func counter(kind: String, operation: String, allowed: Bool) -> Counter? {
            let kinds = WebhookMetrics.admissionKinds, operations = WebhookMetrics.admissionOperations
            let k = kinds.firstIndex(of: kind) ?? kinds.count
            let o = operations.firstIndex(of: operation) ?? operations.count
            let index = (k * (operations.count + 1) + o) * 2 + (allowed ? 1 : 0)
            return counters.indices.contains(index) ? counters[index] : nil
        }
    }

    /// Declares the server's families in `registry`, in the order `/metrics` lists them;
    /// `http` and `certificateNotAfter` are read at each scrape.
    init(registry: MetricsRegistry, build: BuildIdentity, http: HTTPServerStatistics,
         certificateNotAfter: @escaping @Sendable () -> Int?, cluster: ClusterCacheHooks?) {
        self.registry = registry
        registry.gaugeFamily("atlas_stream_webhook_build_info", help: "The release and git revision the binary was built from (always 1).",
                             labels: ["version", "revision"]).gauge(labels: [build.release, build.revision]).increment()
        requests = registry.counterFamily("controller_runtime_webhook_requests_total",
                                          help: "Total number of admission requests by HTTP status code.",
                                          labels: ["code", "webhook"], visibility: .onceNonZero)
        let latency = registry.histogramFamily("controller_runtime_webhook_latency_seconds",
                                               help: "Histogram of the latency of processing admission requests",
                                               labels: ["webhook"], buckets: Self.latencyBuckets, visibility: .onceNonZero)
        let inFlight = registry.gaugeFamily("controller_runtime_webhook_requests_in_flight",
                                            help: "Current number of admission requests being served.", labels: ["webhook"])
        let requestFamily = requests
        let makeSeries = { (endpoint: AdmissionEndpoint) in
            EndpointSeries(requestsByCode: Self.knownCodes.map { ($0, requestFamily.counter(labels: [String($0), endpoint.path])) },
                           latency: latency.histogram(labels: [endpoint.path]),
                           inFlight: inFlight.gauge(labels: [endpoint.path]))
        }
        mutateSeries = makeSeries(.mutate)
        validateSeries = makeSeries(.validate)
        let admissionFamily = registry.counterFamily("atlas_stream_webhook_admission_total",
                                                     help: "Admission decisions by kind, operation and outcome.",
                                                     labels: ["kind", "operation", "allowed"], visibility: .onceNonZero)
        admissions = AdmissionCounters(admissionFamily)
        registry.collectedFamily("atlas_stream_webhook_tls_handshake_errors_total",
                                 help: "TLS handshakes that failed or timed out.", type: .counter) {
            [MetricSample(.integer(http.tlsHandshakeErrors))]
        }
        registry.collectedFamily("atlas_stream_webhook_open_connections", help: "Open client connections.", type: .gauge) {
            [MetricSample(.integer(http.openConnections))]
        }
        registry.collectedFamily("atlas_stream_webhook_refused_connections_total",
                                 help: "Connections closed at accept because the connection cap was reached.", type: .counter) {
            [MetricSample(.integer(http.refusedConnections))]
        }
        let reloads = registry.counterFamily("atlas_stream_webhook_certificate_reloads_total",
                                             help: "Certificate reloads by result; a failure keeps the previous certificate.",
                                             labels: ["result"])
        reloadSuccesses = reloads.counter(labels: ["success"])
        reloadFailures = reloads.counter(labels: ["failure"])
        loopStalls = registry.counter("atlas_stream_webhook_loop_stalls_total",
                                      help: "Event loops that stayed away from epoll_wait past the stall timeout.")
        reviewsOutOfTime = registry.counter("atlas_stream_webhook_reviews_out_of_time_total",
                                            help: "Reviews abandoned because they ran past their request's timeout.")
        registry.collectedFamily("atlas_stream_webhook_timed_out_connections_total",
                                 help: "Connections closed because a deadline passed.", type: .counter) {
            [MetricSample(.integer(http.timedOutConnections))]
        }
        cluster?.registerMetrics(registry)
        // Series made up front (no allocation when counted), listed once they count something:
        // 64 rules by 3 outcomes would otherwise be ~200 lines of zeros in every scrape.
        let findings = registry.counterFamily("atlas_stream_webhook_rule_findings_total",
                                              help: "Findings by rule and outcome: deny, warn, or would_deny (a denial that enforcement warn admitted).",
                                              labels: ["rule", "action"], visibility: .onceNonZero)
        ruleFindings = RuleID.allCases.flatMap { rule in
            RuleFinding.Outcome.allCases.map { findings.counter(labels: [rule.rawValue, $0.rawValue]) }
        }
        registry.collectedFamily("atlas_stream_webhook_certificate_expiry_timestamp_seconds",
                                 help: "When the serving certificate expires, in seconds since the epoch.", type: .gauge) {
            certificateNotAfter().map { [MetricSample(.integer($0))] } ?? []
        }
    }

    /// An event loop stayed away from epoll_wait past the stall timeout (once per stall).
    func loopStalled() { loopStalls.increment() }

    /// A review ran past its request's time budget and was abandoned.
    func reviewOutOfTime() { reviewsOutOfTime.increment() }

    func certificateReloaded(success: Bool) {
        (success ? reloadSuccesses : reloadFailures).increment()
    }

    private func series(_ endpoint: AdmissionEndpoint) -> EndpointSeries {
        switch endpoint {
        case .mutate: mutateSeries
        case .validate: validateSeries
        }
    }

    func begin(_ endpoint: AdmissionEndpoint) {
        series(endpoint).inFlight.increment()
    }

    func end(_ endpoint: AdmissionEndpoint, code: Int, seconds: Double, summary: AdmissionSummary?) {
        let series = series(endpoint)
        series.inFlight.decrement()
        if let counter = series.requests(code: code) {
            counter.increment()
        } else {
            requests.counter(labels: [String(code), endpoint.path]).increment()
        }
        series.latency.observe(seconds)
        if let summary {
            admissions.counter(kind: summary.kind, operation: summary.operation, allowed: summary.allowed)?.increment()
            for finding in summary.findings {
                let index = finding.rule.ordinal * Self.outcomeCount + Self.position(of: finding.outcome)
                if ruleFindings.indices.contains(index) { ruleFindings[index].increment() }
            }
        }
    }
}
