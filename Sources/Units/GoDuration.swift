/// Go's duration syntax (`time.ParseDuration`), as in every Kubernetes component's
/// flags and the apiserver's `?timeout=` parameter: `10s`, `1m30s`, `500ms`, `1.5h`.
public enum GoDuration {
    /// The duration in nanoseconds, or nil when `text` is not a Go duration.
    /// Negative durations are refused: nothing here can wait a negative time.
    public static func nanoseconds(_ text: String) -> Int64? {
        var s = Substring(text)
        if s.first == "+" { s = s.dropFirst() }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        var total: Double = 0
        while !s.isEmpty {
            var whole: Double = 0
            var digits = 0
            while let c = s.first, let d = c.wholeNumberValue, c.isASCII {
                whole = whole * 10 + Double(d)
                digits += 1
                s = s.dropFirst()
            }
            var fraction: Double = 0
            if s.first == "." {
                s = s.dropFirst()
                var scale = 0.1
                while let c = s.first, let d = c.wholeNumberValue, c.isASCII {
                    fraction += Double(d) * scale
                    scale /= 10
                    digits += 1
                    s = s.dropFirst()
                }
            }
            guard digits > 0 else { return nil }
            let unit: Double
            if s.hasPrefix("ns") { unit = 1; s = s.dropFirst(2) }
            else if s.hasPrefix("us") { unit = 1e3; s = s.dropFirst(2) }
            else if s.hasPrefix("µs") || s.hasPrefix("μs") { unit = 1e3; s = s.dropFirst(2) }
            else if s.hasPrefix("ms") { unit = 1e6; s = s.dropFirst(2) }
            else if s.hasPrefix("s") { unit = 1e9; s = s.dropFirst(1) }
            else if s.hasPrefix("m") { unit = 60e9; s = s.dropFirst(1) }
            else if s.hasPrefix("h") { unit = 3600e9; s = s.dropFirst(1) }
            else { return nil }
            total += (whole + fraction) * unit
            guard total < 9.2e18 else { return nil }
        }
        return Int64(total)
    }

    /// The duration in whole milliseconds, rounded up so that `1ns` still waits.
    public static func milliseconds(_ text: String) -> Int? {
        guard let ns = nanoseconds(text) else { return nil }
        return Int((ns + 999_999) / 1_000_000)
    }
}
