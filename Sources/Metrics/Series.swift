import Synchronization

/// A value that only goes up. Lock-free.
public final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    public func increment() {
        value.add(1, ordering: .relaxed)
    }

    public func increment(by amount: Int) {
        value.add(amount, ordering: .relaxed)
    }

    var current: Int { value.load(ordering: .relaxed) }
}

/// A value that goes up and down. Lock-free.
public final class Gauge: Sendable {
    private let value = Atomic<Int>(0)

    public func increment() {
        value.add(1, ordering: .relaxed)
    }

    public func decrement() {
        value.subtract(1, ordering: .relaxed)
    }

    var current: Int { value.load(ordering: .relaxed) }
}

/// Observations counted into buckets by upper bound, with their count and sum. Lock-free.
/// Meant for non-negative values (durations, sizes): the sum is kept in billionths, exact
/// for nanoseconds; a value that is negative or not a number adds nothing to it.
public final class Histogram: Sendable {
    let upperBounds: [Double]
    /// Observations per bucket, each counted in the first bucket whose bound holds it
    /// (made cumulative when rendered); one past every bound is in `count` only.
    let bucketCounts: [Counter]
    let count = Counter()
    let sumBillionths = Counter()

    init(upperBounds: [Double]) {
        self.upperBounds = upperBounds
        bucketCounts = upperBounds.map { _ in Counter() }
    }

    public func observe(_ value: Double) {
        if let bucket = upperBounds.firstIndex(where: { value <= $0 }) {
            bucketCounts[bucket].increment()
        }
        count.increment()
        let billionths = value > 0 ? (value * 1e9).rounded() : 0
        sumBillionths.increment(by: billionths < 9e18 ? Int(billionths) : Int.max)
    }
}

/// A family of counters, one per set of label values.
public final class CounterFamily: MetricFamily {
    let declaration: MetricDeclaration
    private let visibility: SeriesVisibility
    private let series = SeriesTable<Counter>()

    init(_ declaration: MetricDeclaration, visibility: SeriesVisibility) {
        self.declaration = declaration
        self.visibility = visibility
    }

    /// The counter of these label values (one per label name, in order): made by the
    /// first call, the same one after. Hot paths keep it rather than call this per event.
    public func counter(labels: [String]) -> Counter {
        series.series(labels, declaration) { Counter() }
    }

    func write(to writer: inout PrometheusTextWriter) {
        for (labels, counter) in series.all {
            let value = counter.current
            if visibility == .onceNonZero && value == 0 { continue }
            writer.sample(declaration.name, labelNames: declaration.labelNames, labelValues: labels, value: .integer(value))
        }
    }
}

/// A family of gauges, one per set of label values.
public final class GaugeFamily: MetricFamily {
    let declaration: MetricDeclaration
    private let series = SeriesTable<Gauge>()

    init(_ declaration: MetricDeclaration) {
        self.declaration = declaration
    }

    /// The gauge of these label values (one per label name, in order): made by the first
    /// call, the same one after.
    public func gauge(labels: [String]) -> Gauge {
        series.series(labels, declaration) { Gauge() }
    }

    func write(to writer: inout PrometheusTextWriter) {
        for (labels, gauge) in series.all {
            writer.sample(declaration.name, labelNames: declaration.labelNames, labelValues: labels, value: .integer(gauge.current))
        }
    }
}

/// A family of histograms with the same buckets, one per set of label values.
public final class HistogramFamily: MetricFamily {
    let declaration: MetricDeclaration
    private let buckets: [Double]
    private let visibility: SeriesVisibility
    private let series = SeriesTable<Histogram>()

    init(_ declaration: MetricDeclaration, buckets: [Double], visibility: SeriesVisibility) {
        self.declaration = declaration
        self.buckets = buckets
        self.visibility = visibility
    }

    /// The histogram of these label values (one per label name, in order): made by the
    /// first call, the same one after.
    public func histogram(labels: [String]) -> Histogram {
        series.series(labels, declaration) { Histogram(upperBounds: buckets) }
    }

    func write(to writer: inout PrometheusTextWriter) {
        let names = declaration.labelNames
        for (labels, histogram) in series.all {
            // The count first: buckets and sum read after it are at least as new, so the
            // +Inf bucket and the count never fall below the buckets' sum.
            let count = histogram.count.current
            if visibility == .onceNonZero && count == 0 { continue }
            var cumulative = 0
            for (bound, bucket) in zip(histogram.upperBounds, histogram.bucketCounts) {
                cumulative += bucket.current
                writer.sample(declaration.name, suffix: "_bucket", labelNames: names, labelValues: labels,
                              bucketBound: .real(bound), value: .integer(cumulative))
            }
            let total = max(count, cumulative)
            writer.sample(declaration.name, suffix: "_bucket", labelNames: names, labelValues: labels,
                          bucketBound: .real(.infinity), value: .integer(total))
            writer.sample(declaration.name, suffix: "_sum", labelNames: names, labelValues: labels,
                          value: .real(Double(histogram.sumBillionths.current) / 1e9))
            writer.sample(declaration.name, suffix: "_count", labelNames: names, labelValues: labels, value: .integer(total))
        }
    }
}

/// A family whose samples are read at each render.
final class CollectedFamily: MetricFamily {
    let declaration: MetricDeclaration
    private let collect: @Sendable () -> [MetricSample]

    init(_ declaration: MetricDeclaration, collect: @escaping @Sendable () -> [MetricSample]) {
        self.declaration = declaration
        self.collect = collect
    }

    func write(to writer: inout PrometheusTextWriter) {
        for sample in collect() {
            assert(sample.labelValues.count == declaration.labelNames.count,
                   "metric \(declaration.name): \(sample.labelValues) for labels \(declaration.labelNames)")
            writer.sample(declaration.name, labelNames: declaration.labelNames, labelValues: sample.labelValues, value: sample.value)
        }
    }
}

/// A family's series by label values, in the order they were made.
final class SeriesTable<Series: Sendable>: Sendable {
    private struct Entries {
        var ordered: [(labels: [String], series: Series)] = []
        var positions: [[String]: Int] = [:]
    }

    private let entries = Mutex(Entries())

    func series(_ labels: [String], _ declaration: MetricDeclaration, make: () -> Series) -> Series {
        precondition(labels.count == declaration.labelNames.count,
                     "metric \(declaration.name): \(labels.count) label values for \(declaration.labelNames)")
        return entries.withLock { entries in
            if let position = entries.positions[labels] { return entries.ordered[position].series }
            let made = make()
            entries.positions[labels] = entries.ordered.count
            entries.ordered.append((labels, made))
            return made
        }
    }

    var all: [(labels: [String], series: Series)] {
        entries.withLock { $0.ordered }
    }
}
