import Admission
import StreamRules
import Glibc
import HTTPServer
import Synchronization

/// Prometheus metrics with controller-runtime's names, so existing webhook
/// dashboards work, plus this server's own.
///
/// Every event loop records each request here: the counters are atomics, so loops never
/// wait on each other, and every label value comes from a fixed set (a request's kind
/// and operation are free text: as labels they would let any client grow the series).
final class WebhookMetrics: Sendable {
    /// Latency histogram upper bounds in seconds, 100 µs to 30 s.
    static let latencyBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25, 0.5, 1, 2.5, 5, 10, 30]
    /// The status codes the admission endpoints answer with; any other is counted apart.
    private static let knownCodes = [200, 400, 415]
    /// Label values of `atlas_stream_webhook_admission_total`, sorted; the last is "other".
    static let admissionKinds = ["AtlasStreamConnection", "AtlasStreamInstance", "other"]
    static let admissionOperations = ["CONNECT", "CREATE", "DELETE", "UPDATE", "other"]

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
        func add(_ n: Int) { value.add(n, ordering: .relaxed) }
        var current: Int { value.load(ordering: .relaxed) }
    }

    private struct Histogram: Sendable {
        let buckets = (0..<WebhookMetrics.latencyBuckets.count).map { _ in Counter() }
        let count = Counter()
        let sumNanoseconds = Counter()
    }

    private static func counters(_ n: Int) -> [Counter] { (0..<n).map { _ in Counter() } }

    private let endpoints = AdmissionEndpoint.allCases
    /// [endpoint][known code]
    private let requests = counters(AdmissionEndpoint.allCases.count * WebhookMetrics.knownCodes.count)
    private let otherRequests = Mutex<[RequestKey: Int]>([:])
    private let latency = AdmissionEndpoint.allCases.map { _ in Histogram() }
    /// [kind][operation][allowed]
    private let admissions = counters(WebhookMetrics.admissionKinds.count * WebhookMetrics.admissionOperations.count * 2)
    private let inFlightMutate = Atomic<Int>(0)
    private let inFlightValidate = Atomic<Int>(0)
    private let reloadSuccesses = Atomic<Int>(0)
    private let reloadFailures = Atomic<Int>(0)
    private let loopStalls = Atomic<Int>(0)
    private let reviewsOutOfTime = Atomic<Int>(0)
    /// [RuleID.ordinal]
    private let ruleFindings = counters(RuleID.allCases.count)

    /// An event loop stayed away from epoll_wait past the stall timeout (once per stall).
    func loopStalled() { loopStalls.add(1, ordering: .relaxed) }

    /// A review ran past its request's time budget and was abandoned.
    func reviewOutOfTime() { reviewsOutOfTime.add(1, ordering: .relaxed) }

    private struct RequestKey: Hashable { var endpoint: Int; var code: Int }

    func certificateReloaded(success: Bool) {
        if success {
            reloadSuccesses.add(1, ordering: .relaxed)
        } else {
            reloadFailures.add(1, ordering: .relaxed)
        }
    }

    private func inFlight(_ endpoint: AdmissionEndpoint) -> Int {
        switch endpoint {
        case .mutate: return inFlightMutate.load(ordering: .relaxed)
        case .validate: return inFlightValidate.load(ordering: .relaxed)
        }
    }

    private static func index(_ endpoint: AdmissionEndpoint) -> Int {
        AdmissionEndpoint.allCases.firstIndex(of: endpoint) ?? 0
    }

    /// The index of `value` in `labels`, or of the last label ("other").
    private static func label(_ value: String, in labels: [String]) -> Int {
        labels.firstIndex(of: value) ?? labels.count - 1
    }

    func begin(_ endpoint: AdmissionEndpoint) {
        switch endpoint {
        case .mutate: inFlightMutate.add(1, ordering: .relaxed)
        case .validate: inFlightValidate.add(1, ordering: .relaxed)
        }
    }

    func end(_ endpoint: AdmissionEndpoint, code: Int, seconds: Double, summary: AdmissionSummary?) {
        switch endpoint {
        case .mutate: inFlightMutate.subtract(1, ordering: .relaxed)
        case .validate: inFlightValidate.subtract(1, ordering: .relaxed)
        }
        let e = WebhookMetrics.index(endpoint)
        if let c = WebhookMetrics.knownCodes.firstIndex(of: code) {
            requests[e * WebhookMetrics.knownCodes.count + c].add(1)
        } else {
            otherRequests.withLock { $0[RequestKey(endpoint: e, code: code), default: 0] += 1 }
        }
        let histogram = latency[e]
        if let bucket = WebhookMetrics.latencyBuckets.firstIndex(where: { seconds <= $0 }) {
            histogram.buckets[bucket].add(1)
        }
        histogram.count.add(1)
        histogram.sumNanoseconds.add(Int((max(seconds, 0) * 1e9).rounded()))
        if let summary {
            let kind = WebhookMetrics.label(summary.kind, in: WebhookMetrics.admissionKinds)
            let operation = WebhookMetrics.label(summary.operation, in: WebhookMetrics.admissionOperations)
            admissions[(kind * WebhookMetrics.admissionOperations.count + operation) * 2 + (summary.allowed ? 1 : 0)].add(1)
            for rule in summary.findings { ruleFindings[rule.ordinal].add(1) }
        }
    }

    /// The text exposition format 0.0.4.
    /// `cluster`: the cluster cache's own families, when lookups are on.
    func render(http: HTTPServerStatistics, certificateNotAfter: Int?, cluster: String? = nil) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("controller_runtime_webhook_requests_total", "counter",
               "Total number of admission requests by HTTP status code.")
        var requestCounts: [RequestKey: Int] = otherRequests.withLock { $0 }
        for e in endpoints.indices {
            for (c, code) in WebhookMetrics.knownCodes.enumerated() {
                let n = requests[e * WebhookMetrics.knownCodes.count + c].current
                if n > 0 { requestCounts[RequestKey(endpoint: e, code: code)] = n }
            }
        }
        for (key, value) in requestCounts.sorted(by: { ($0.key.endpoint, $0.key.code) < ($1.key.endpoint, $1.key.code) }) {
            out += "controller_runtime_webhook_requests_total{code=\"\(key.code)\",webhook=\"\(endpoints[key.endpoint].path)\"} \(value)\n"
        }
        family("controller_runtime_webhook_latency_seconds", "histogram", "Histogram of the latency of processing admission requests")
        for (e, h) in latency.enumerated() {
            // Read the count first: the buckets and sum read after it are at least as new.
            let count = h.count.current
            guard count > 0 else { continue }
            let webhook = endpoints[e].path
            var cumulative = 0
            for (i, bound) in WebhookMetrics.latencyBuckets.enumerated() {
                cumulative += h.buckets[i].current
                out += "controller_runtime_webhook_latency_seconds_bucket{webhook=\"\(webhook)\",le=\"\(bound)\"} \(cumulative)\n"
            }
            out += "controller_runtime_webhook_latency_seconds_bucket{webhook=\"\(webhook)\",le=\"+Inf\"} \(max(count, cumulative))\n"
            out += "controller_runtime_webhook_latency_seconds_sum{webhook=\"\(webhook)\"} \(Double(h.sumNanoseconds.current) / 1e9)\n"
            out += "controller_runtime_webhook_latency_seconds_count{webhook=\"\(webhook)\"} \(max(count, cumulative))\n"
        }
        family("controller_runtime_webhook_requests_in_flight", "gauge", "Current number of admission requests being served.")
        for endpoint in AdmissionEndpoint.allCases {
            out += "controller_runtime_webhook_requests_in_flight{webhook=\"\(endpoint.path)\"} \(inFlight(endpoint))\n"
        }
        family("atlas_stream_webhook_admission_total", "counter", "Admission decisions by kind, operation and outcome.")
        for (k, kind) in WebhookMetrics.admissionKinds.enumerated() {
            for (o, operation) in WebhookMetrics.admissionOperations.enumerated() {
                for allowed in [false, true] {
                    let n = admissions[(k * WebhookMetrics.admissionOperations.count + o) * 2 + (allowed ? 1 : 0)].current
                    if n > 0 {
                        out += "atlas_stream_webhook_admission_total{kind=\"\(kind)\",operation=\"\(operation)\",allowed=\"\(allowed)\"} \(n)\n"
                    }
                }
            }
        }
        family("atlas_stream_webhook_tls_handshake_errors_total", "counter", "TLS handshakes that failed or timed out.")
        out += "atlas_stream_webhook_tls_handshake_errors_total \(http.tlsHandshakeErrors)\n"
        family("atlas_stream_webhook_open_connections", "gauge", "Open client connections.")
        out += "atlas_stream_webhook_open_connections \(http.openConnections)\n"
        family("atlas_stream_webhook_refused_connections_total", "counter", "Connections closed at accept because the connection cap was reached.")
        out += "atlas_stream_webhook_refused_connections_total \(http.refusedConnections)\n"
        family("atlas_stream_webhook_certificate_reloads_total", "counter", "Certificate reloads by result; a failure keeps the previous certificate.")
        out += "atlas_stream_webhook_certificate_reloads_total{result=\"success\"} \(reloadSuccesses.load(ordering: .relaxed))\n"
        out += "atlas_stream_webhook_certificate_reloads_total{result=\"failure\"} \(reloadFailures.load(ordering: .relaxed))\n"
        family("atlas_stream_webhook_loop_stalls_total", "counter", "Event loops that stayed away from epoll_wait past the stall timeout.")
        out += "atlas_stream_webhook_loop_stalls_total \(loopStalls.load(ordering: .relaxed))\n"
        family("atlas_stream_webhook_reviews_out_of_time_total", "counter", "Reviews abandoned because they ran past their request's timeout.")
        out += "atlas_stream_webhook_reviews_out_of_time_total \(reviewsOutOfTime.load(ordering: .relaxed))\n"
        family("atlas_stream_webhook_timed_out_connections_total", "counter", "Connections closed because a deadline passed.")
        out += "atlas_stream_webhook_timed_out_connections_total \(http.timedOutConnections)\n"
        if let cluster { out += cluster }
        family("atlas_stream_webhook_rule_findings_total", "counter", "Findings (denied or warned of), by rule.")
        for rule in RuleID.allCases {
            out += "atlas_stream_webhook_rule_findings_total{rule=\"\(rule.rawValue)\"} \(ruleFindings[rule.ordinal].current)\n"
        }
        if let notAfter = certificateNotAfter {
            family("atlas_stream_webhook_certificate_expiry_timestamp_seconds", "gauge", "When the serving certificate expires, in seconds since the epoch.")
            out += "atlas_stream_webhook_certificate_expiry_timestamp_seconds \(notAfter)\n"
        }
        return out
    }
}

