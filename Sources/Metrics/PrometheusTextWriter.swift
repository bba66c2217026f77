/// The Prometheus text exposition format (0.0.4): the one place that knows how a family's
/// header and samples are written, values formatted and help and label values escaped.
struct PrometheusTextWriter {
    private(set) var text = ""

    /// `# HELP` and `# TYPE` lines.
    mutating func header(_ declaration: MetricDeclaration) {
        text += "# HELP \(declaration.name) \(Self.escapedHelp(declaration.help))\n"
        text += "# TYPE \(declaration.name) \(declaration.type.rawValue)\n"
    }

    /// `name{label="value",...} value`: `suffix` after the family's name (`_bucket`, `_sum`,
    /// `_count`), and a histogram bucket's bound as the last label, `le`.
    mutating func sample(_ name: String, suffix: String = "", labelNames: [String], labelValues: [String],
                         bucketBound: MetricValue? = nil, value: MetricValue) {
        text += name
        text += suffix
        if !labelNames.isEmpty || bucketBound != nil {
            text += "{"
            var first = true
            for (label, labelValue) in zip(labelNames, labelValues) {
                if !first { text += "," }
                first = false
                text += "\(label)=\"\(Self.escapedLabelValue(labelValue))\""
            }
            if let bucketBound {
                if !first { text += "," }
                text += "le=\"\(Self.formatted(bucketBound))\""
            }
            text += "}"
        }
        text += " \(Self.formatted(value))\n"
    }

    /// An integer in decimal; a real as Swift writes it (the shortest text that reads back
    /// as the same number, which Go's ParseFloat reads), or `+Inf`, `-Inf`, `NaN`.
    static func formatted(_ value: MetricValue) -> String {
        switch value {
        case .integer(let n):
            return String(n)
        case .real(let x):
            if x.isNaN { return "NaN" }
            if x.isInfinite { return x < 0 ? "-Inf" : "+Inf" }
            return x.description
        }
    }

    /// Help text: backslash and line feed escaped.
    static func escapedHelp(_ help: String) -> String {
        escaped(help, quote: false)
    }

    /// A label value: backslash, double quote and line feed escaped.
    static func escapedLabelValue(_ value: String) -> String {
        escaped(value, quote: true)
    }

    private static func escaped(_ text: String, quote: Bool) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == 0x0A || (quote && $0 == UInt8(ascii: "\"")) }) else {
            return text
        }
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quote: out += "\\\""
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
