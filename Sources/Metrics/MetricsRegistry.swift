import Synchronization

/// What a family's samples measure, as the `# TYPE` line names it.
public enum MetricType: String, Sendable {
    case counter
    case gauge
    case histogram
}

/// When a series of a family is rendered.
public enum SeriesVisibility: Sendable {
    /// From its creation, zero included.
    case always
    /// Once it is not zero (a histogram: once it has an observation). A hot path makes
    /// every series it may touch up front, so it never allocates; this keeps the series
    /// whose label values never occurred out of the output.
    case onceNonZero
}

/// A sample value: an integer, or a real number.
public enum MetricValue: Sendable, Equatable {
    case integer(Int)
    case real(Double)
}

/// A sample of a collected family: one label value per label name, in their order.
public struct MetricSample: Sendable, Equatable {
    public var labelValues: [String]
    public var value: MetricValue

    public init(labelValues: [String] = [], _ value: MetricValue) {
        self.labelValues = labelValues
        self.value = value
    }
}

/// The metrics of one process: each family declared once, with its name, help, type and
/// label names, and rendered in the Prometheus text exposition format (0.0.4) in the
/// order families were declared.
///
/// Counters, gauges and histograms are series of atomics: a hot path keeps the handles
/// it needs and updates them without a lock or an allocation. Values that live elsewhere
/// (a connection count, a cache's state) are collected by a closure at each render.
///
/// Declaring a family whose name is taken, or with a name or label name the format does
/// not allow, and asking for a series with other than one value per label name, are
/// programming errors that stop the process: names and label counts are the code's,
/// never a request's.
public final class MetricsRegistry: Sendable {
    private let families = Mutex<[any MetricFamily]>([])

    public init() {}

    /// A counter family; its series are made by `counter(labels:)`.
    public func counterFamily(_ name: String, help: String, labels: [String],
                              visibility: SeriesVisibility = .always) -> CounterFamily {
        register(CounterFamily(MetricDeclaration(name: name, help: help, type: .counter, labelNames: labels),
                               visibility: visibility))
    }

    /// A counter without labels.
    public func counter(_ name: String, help: String) -> Counter {
        counterFamily(name, help: help, labels: []).counter(labels: [])
    }

    /// A gauge family; its series are made by `gauge(labels:)`.
    public func gaugeFamily(_ name: String, help: String, labels: [String]) -> GaugeFamily {
        register(GaugeFamily(MetricDeclaration(name: name, help: help, type: .gauge, labelNames: labels)))
    }

    /// A histogram family with these bucket upper bounds (ascending; `+Inf` is implied).
    public func histogramFamily(_ name: String, help: String, labels: [String], buckets: [Double],
                                visibility: SeriesVisibility = .always) -> HistogramFamily {
        precondition(!labels.contains("le"), "metric \(name): the label le is the histogram's own")
        precondition(zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 } && buckets.allSatisfy(\.isFinite),
                     "metric \(name): bucket bounds must be finite and ascending")
        return register(HistogramFamily(MetricDeclaration(name: name, help: help, type: .histogram, labelNames: labels),
                                        buckets: buckets, visibility: visibility))
    }

    /// A family whose samples `collect` reads at each render, from wherever the values
    /// live. Each sample must have one label value per label name.
    public func collectedFamily(_ name: String, help: String, type: MetricType, labels: [String] = [],
                                collect: @escaping @Sendable () -> [MetricSample]) {
        precondition(type != .histogram, "metric \(name): a collected family holds counters or gauges")
        _ = register(CollectedFamily(MetricDeclaration(name: name, help: help, type: type, labelNames: labels),
                                     collect: collect))
    }

    /// Every family and its series, in the text exposition format.
    public func render() -> String {
        let all = families.withLock { $0 }
        var writer = PrometheusTextWriter()
        for family in all {
            writer.header(family.declaration)
            family.write(to: &writer)
        }
        return writer.text
    }

    private func register<Family: MetricFamily>(_ family: Family) -> Family {
        let declaration = family.declaration
        precondition(MetricDeclaration.isMetricName(declaration.name), "metric name \(declaration.name) is not valid")
        precondition(declaration.labelNames.allSatisfy(MetricDeclaration.isLabelName),
                     "metric \(declaration.name): a label name is not valid: \(declaration.labelNames)")
        precondition(Set(declaration.labelNames).count == declaration.labelNames.count,
                     "metric \(declaration.name): a label name is repeated")
        families.withLock { families in
            precondition(!families.contains { $0.declaration.name == declaration.name },
                         "metric family \(declaration.name) declared twice")
            families.append(family)
        }
        return family
    }
}

/// What a family is: its name, help, type and label names.
struct MetricDeclaration: Sendable, Equatable {
    var name: String
    var help: String
    var type: MetricType
    var labelNames: [String]

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    static func isMetricName(_ name: String) -> Bool {
        isName(name, allowingColon: true)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
    static func isLabelName(_ name: String) -> Bool {
        isName(name, allowingColon: false) && !name.hasPrefix("__")
    }

    private static func isName(_ name: String, allowingColon: Bool) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { b in
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                return true
            case UInt8(ascii: ":"):
                return allowingColon
            default:
                return false
            }
        }
    }
}

/// A declared family as the registry holds it.
protocol MetricFamily: AnyObject, Sendable {
    var declaration: MetricDeclaration { get }
    /// Writes the family's samples (its header is the registry's).
    func write(to writer: inout PrometheusTextWriter)
}
