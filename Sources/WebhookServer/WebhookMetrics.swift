import Admission
import Glibc
import HTTPServer
import Synchronization

/// Prometheus metrics with controller-runtime's names, so existing webhook
/// dashboards work, plus this server's own.
final class WebhookMetrics: Sendable {
    /// Latency histogram upper bounds in seconds, 100 µs to 30 s.
    static let latencyBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25, 0.5, 1, 2.5, 5, 10, 30]

    private struct RequestKey: Hashable { var endpoint: Int; var code: Int }
    private struct AdmissionKey: Hashable { var kind: String; var operation: String; var allowed: Bool }
    private struct Histogram {
        var buckets = [Int](repeating: 0, count: WebhookMetrics.latencyBuckets.count)
        var sum = 0.0
        var count = 0
    }
    private struct State {
        var requests: [RequestKey: Int] = [:]
        /// One per `AdmissionEndpoint.allCases`, updated in place.
        var latency = [Histogram](repeating: Histogram(), count: AdmissionEndpoint.allCases.count)
        var admissions: [AdmissionKey: Int] = [:]
    }

    private let state = Mutex(State())
    private let inFlightMutate = Atomic<Int>(0)
    private let inFlightValidate = Atomic<Int>(0)
    private let reloadSuccesses = Atomic<Int>(0)
    private let reloadFailures = Atomic<Int>(0)

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
        let bucket = WebhookMetrics.latencyBuckets.firstIndex { seconds <= $0 }
        state.withLock { s in
            s.requests[RequestKey(endpoint: e, code: code), default: 0] += 1
            if let bucket { s.latency[e].buckets[bucket] += 1 }
            s.latency[e].sum += seconds
            s.latency[e].count += 1
            if let summary {
                s.admissions[AdmissionKey(kind: summary.kind, operation: summary.operation, allowed: summary.allowed),
                             default: 0] += 1
            }
        }
    }

    /// The text exposition format 0.0.4.
    func render(http: HTTPServerStatistics, certificateNotAfter: Int?) -> String {
        let s = state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("controller_runtime_webhook_requests_total", "counter",
               "Total number of admission requests by HTTP status code.")
        let endpoints = AdmissionEndpoint.allCases
        for (key, value) in s.requests.sorted(by: { ($0.key.endpoint, $0.key.code) < ($1.key.endpoint, $1.key.code) }) {
            out += "controller_runtime_webhook_requests_total{code=\"\(key.code)\",webhook=\"\(endpoints[key.endpoint].path)\"} \(value)\n"
        }
        family("controller_runtime_webhook_latency_seconds", "histogram", "Histogram of the latency of processing admission requests")
        for (e, h) in s.latency.enumerated() where h.count > 0 {
            let webhook = endpoints[e].path
            var cumulative = 0
            for (i, bound) in WebhookMetrics.latencyBuckets.enumerated() {
                cumulative += h.buckets[i]
                out += "controller_runtime_webhook_latency_seconds_bucket{webhook=\"\(webhook)\",le=\"\(bound)\"} \(cumulative)\n"
            }
            out += "controller_runtime_webhook_latency_seconds_bucket{webhook=\"\(webhook)\",le=\"+Inf\"} \(h.count)\n"
            out += "controller_runtime_webhook_latency_seconds_sum{webhook=\"\(webhook)\"} \(h.sum)\n"
            out += "controller_runtime_webhook_latency_seconds_count{webhook=\"\(webhook)\"} \(h.count)\n"
        }
        family("controller_runtime_webhook_requests_in_flight", "gauge", "Current number of admission requests being served.")
        for endpoint in AdmissionEndpoint.allCases {
            out += "controller_runtime_webhook_requests_in_flight{webhook=\"\(endpoint.path)\"} \(inFlight(endpoint))\n"
        }
        family("atlas_stream_webhook_admission_total", "counter", "Admission decisions by kind, operation and outcome.")
        for (key, value) in s.admissions.sorted(by: { ($0.key.kind, $0.key.operation) < ($1.key.kind, $1.key.operation) }) {
            out += "atlas_stream_webhook_admission_total{kind=\"\(escape(key.kind))\",operation=\"\(escape(key.operation))\",allowed=\"\(key.allowed)\"} \(value)\n"
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
        family("atlas_stream_webhook_timed_out_connections_total", "counter", "Connections closed because a deadline passed.")
        out += "atlas_stream_webhook_timed_out_connections_total \(http.timedOutConnections)\n"
        if let notAfter = certificateNotAfter {
            family("atlas_stream_webhook_certificate_expiry_timestamp_seconds", "gauge", "When the serving certificate expires, in seconds since the epoch.")
            out += "atlas_stream_webhook_certificate_expiry_timestamp_seconds \(notAfter)\n"
        }
        return out
    }

    /// Label values: backslash, quote and newline escaped.
    private func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

/// Seconds on the monotonic clock, for latencies.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
