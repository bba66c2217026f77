import Metrics
import Synchronization
import XCTest

final class MetricsRegistryTests: XCTestCase {
    /// Families render in the order declared, each with one HELP and TYPE line and all its
    /// series under them, a series made late included; label values in the declared order.
    func testEachFamilyRendersOnceWithAllItsSeries() {
        let registry = MetricsRegistry()
        let requests = registry.counterFamily("requests_total", help: "Requests by code.", labels: ["code", "path"])
        let ok = requests.counter(labels: ["200", "/a"])
        let inFlight = registry.gaugeFamily("in_flight", help: "Requests being served.", labels: ["path"])
        let stalls = registry.counter("stalls_total", help: "Stalls.")
        ok.increment()
        ok.increment()
        inFlight.gauge(labels: ["/a"]).increment()
        inFlight.gauge(labels: ["/b"]).increment()
        inFlight.gauge(labels: ["/b"]).decrement()
        requests.counter(labels: ["500", "/b"]).increment(by: 3)
        stalls.increment()
        XCTAssertEqual(registry.render(), """
            # HELP requests_total Requests by code.
            # TYPE requests_total counter
            requests_total{code="200",path="/a"} 2
            requests_total{code="500",path="/b"} 3
            # HELP in_flight Requests being served.
            # TYPE in_flight gauge
            in_flight{path="/a"} 1
            in_flight{path="/b"} 0
            # HELP stalls_total Stalls.
            # TYPE stalls_total counter
            stalls_total 1

            """)
    }

    func testTheSameLabelValuesGiveTheSameSeries() {
        let registry = MetricsRegistry()
        let family = registry.counterFamily("findings_total", help: "Findings by rule.", labels: ["rule"])
        let first = family.counter(labels: ["secret_not_found"])
        XCTAssertTrue(first === family.counter(labels: ["secret_not_found"]))
        XCTAssertFalse(first === family.counter(labels: ["project_not_found"]))
        first.increment()
        family.counter(labels: ["secret_not_found"]).increment()
        XCTAssertTrue(registry.render().contains("findings_total{rule=\"secret_not_found\"} 2\n"))
    }

    /// Help text escapes backslash and line feed; label values also the double quote.
    func testHelpAndLabelValuesAreEscaped() {
        let registry = MetricsRegistry()
        registry.counterFamily("odd_total", help: "A \\ and a\nline; \"quotes\" stay.", labels: ["value"])
            .counter(labels: ["a\"b\\c\nd"]).increment()
        XCTAssertEqual(registry.render(), """
            # HELP odd_total A \\\\ and a\\nline; "quotes" stay.
            # TYPE odd_total counter
            odd_total{value="a\\"b\\\\c\\nd"} 1

            """)
    }

    /// Buckets cumulative with `le` last, `+Inf`, the sum and the count.
    func testHistogramsRenderCumulativeBucketsSumAndCount() {
        let registry = MetricsRegistry()
        let latency = registry.histogramFamily("latency_seconds", help: "Latency.", labels: ["path"], buckets: [0.1, 1])
        let histogram = latency.histogram(labels: ["/a"])
        for seconds in [0.05, 0.1, 0.5, 5] { histogram.observe(seconds) }
        XCTAssertEqual(registry.render(), """
            # HELP latency_seconds Latency.
            # TYPE latency_seconds histogram
            latency_seconds_bucket{path="/a",le="0.1"} 2
            latency_seconds_bucket{path="/a",le="1.0"} 3
            latency_seconds_bucket{path="/a",le="+Inf"} 4
            latency_seconds_sum{path="/a"} 5.65
            latency_seconds_count{path="/a"} 4

            """)
    }

    /// Series a hot path makes up front show once they count something.
    func testSeriesShownOnceNonZeroStayHiddenUntilTheyCount() {
        let registry = MetricsRegistry()
        let admissions = registry.counterFamily("admission_total", help: "Decisions.", labels: ["kind"], visibility: .onceNonZero)
        let latency = registry.histogramFamily("latency_seconds", help: "Latency.", labels: [], buckets: [1],
                                               visibility: .onceNonZero)
        let known = admissions.counter(labels: ["Known"])
        _ = admissions.counter(labels: ["other"])
        let histogram = latency.histogram(labels: [])
        XCTAssertEqual(registry.render(), """
            # HELP admission_total Decisions.
            # TYPE admission_total counter
            # HELP latency_seconds Latency.
            # TYPE latency_seconds histogram

            """)
        known.increment()
        histogram.observe(2)
        let after = registry.render()
        XCTAssertTrue(after.contains("admission_total{kind=\"Known\"} 1\n"), after)
        XCTAssertFalse(after.contains("other"), after)
        XCTAssertTrue(after.contains("latency_seconds_bucket{le=\"1.0\"} 0\nlatency_seconds_bucket{le=\"+Inf\"} 1\n"), after)
    }

    /// A collected family reads its values at each render; reals are written as Go reads
    /// them, infinities and NaN by their exposition names.
    func testCollectedFamiliesAreReadAtEachRender() {
        let registry = MetricsRegistry()
        let connections = Atomic<Int>(1)
        registry.collectedFamily("open_connections", help: "Open connections.", type: .gauge) {
            [MetricSample(.integer(connections.load(ordering: .relaxed)))]
        }
        registry.collectedFamily("values", help: "Values.", type: .gauge, labels: ["which"]) {
            [MetricSample(labelValues: ["time"], .real(1_700_000_000.123)), MetricSample(labelValues: ["up"], .real(.infinity)),
             MetricSample(labelValues: ["down"], .real(-.infinity)), MetricSample(labelValues: ["none"], .real(.nan))]
        }
        XCTAssertTrue(registry.render().contains("open_connections 1\n"))
        connections.store(7, ordering: .relaxed)
        XCTAssertEqual(registry.render(), """
            # HELP open_connections Open connections.
            # TYPE open_connections gauge
            open_connections 7
            # HELP values Values.
            # TYPE values gauge
            values{which="time"} 1700000000.123
            values{which="up"} +Inf
            values{which="down"} -Inf
            values{which="none"} NaN

            """)
    }

    /// Counters are updated from many threads at once without losing a count.
    func testCountersAreSafeFromManyThreads() {
        let registry = MetricsRegistry()
        let counter = registry.counter("events_total", help: "Events.")
        let histogram = registry.histogramFamily("sizes", help: "Sizes.", labels: [], buckets: [10]).histogram(labels: [])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 {
                counter.increment()
                histogram.observe(1)
            }
        }
        let text = registry.render()
        XCTAssertTrue(text.contains("events_total 80000\n"), text)
        XCTAssertTrue(text.contains("sizes_count 80000\n") && text.contains("sizes_sum 80000.0\n"), text)
    }
}
