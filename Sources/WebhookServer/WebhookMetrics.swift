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
    private let endpoints: [AdmissionEndpoint: EndpointSeries]
    private let admissions: [AdmissionKey: Counter]
    private let reloadSuccesses: Counter
    private let reloadFailures: Counter
    private let loopStalls: Counter
    private let reviewsOutOfTime: Counter
    /// Per rule and outcome.
    private let ruleFindings: [RuleFindingKey: Counter]

    private struct RuleFindingKey: Hashable, Sendable {
        var rule: RuleID
        var outcome: RuleFinding.Outcome
    }

    /// One endpoint's series.
    private struct EndpointSeries: Sendable {
        let requestsByCode: [Int: Counter]
        let latency: Histogram
        let inFlight: Gauge
    }

    private struct AdmissionKey: Hashable, Sendable {
        var kind: String
        var operation: String
        var allowed: Bool
    }

    /// Declares the server's families in `registry`, in the order `/metrics` lists them;
    /// `http` and `certificateNotAfter` are read at each scrape.
    init(registry: MetricsRegistry, http: HTTPServerStatistics, certificateNotAfter: @escaping @Sendable () -> Int?,
         cluster: ClusterCacheHooks?) {
        self.registry = registry
        requests = registry.counterFamily("controller_runtime_webhook_requests_total",
                                          help: "Total number of admission requests by HTTP status code.",
                                          labels: ["code", "webhook"], visibility: .onceNonZero)
        let latency = registry.histogramFamily("controller_runtime_webhook_latency_seconds",
                                               help: "Histogram of the latency of processing admission requests",
                                               labels: ["webhook"], buckets: Self.latencyBuckets, visibility: .onceNonZero)
        let inFlight = registry.gaugeFamily("controller_runtime_webhook_requests_in_flight",
                                            help: "Current number of admission requests being served.", labels: ["webhook"])
        var endpoints: [AdmissionEndpoint: EndpointSeries] = [:]
        for endpoint in AdmissionEndpoint.allCases {
            var requestsByCode: [Int: Counter] = [:]
            for code in Self.knownCodes {
                requestsByCode[code] = requests.counter(labels: [String(code), endpoint.path])
            }
            endpoints[endpoint] = EndpointSeries(requestsByCode: requestsByCode,
                                                 latency: latency.histogram(labels: [endpoint.path]),
                                                 inFlight: inFlight.gauge(labels: [endpoint.path]))
        }
        self.endpoints = endpoints
        let admissionFamily = registry.counterFamily("atlas_stream_webhook_admission_total",
                                                     help: "Admission decisions by kind, operation and outcome.",
                                                     labels: ["kind", "operation", "allowed"], visibility: .onceNonZero)
        var admissions: [AdmissionKey: Counter] = [:]
        for kind in Self.admissionKinds + [Self.other] {
            for operation in Self.admissionOperations + [Self.other] {
                for allowed in [false, true] {
                    admissions[AdmissionKey(kind: kind, operation: operation, allowed: allowed)] =
                        admissionFamily.counter(labels: [kind, operation, String(allowed)])
                }
            }
        }
        self.admissions = admissions
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
        var ruleFindings: [RuleFindingKey: Counter] = [:]
        for rule in RuleID.allCases {
            for outcome in RuleFinding.Outcome.allCases {
                ruleFindings[RuleFindingKey(rule: rule, outcome: outcome)] = findings.counter(labels: [rule.rawValue, outcome.rawValue])
            }
        }
        self.ruleFindings = ruleFindings
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

    func begin(_ endpoint: AdmissionEndpoint) {
        endpoints[endpoint]?.inFlight.increment()
    }

    func end(_ endpoint: AdmissionEndpoint, code: Int, seconds: Double, summary: AdmissionSummary?) {
        if let series = endpoints[endpoint] {
            series.inFlight.decrement()
            if let counter = series.requestsByCode[code] {
                counter.increment()
            } else {
                requests.counter(labels: [String(code), endpoint.path]).increment()
            }
            series.latency.observe(seconds)
        }
        if let summary {
            let kind = Self.admissionKinds.contains(summary.kind) ? summary.kind : Self.other
            let operation = Self.admissionOperations.contains(summary.operation) ? summary.operation : Self.other
            admissions[AdmissionKey(kind: kind, operation: operation, allowed: summary.allowed)]?.increment()
            for finding in summary.findings {
                ruleFindings[RuleFindingKey(rule: finding.rule, outcome: finding.outcome)]?.increment()
            }
        }
    }
}
