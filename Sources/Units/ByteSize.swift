/// Byte sizes as Kubernetes quantities are written for memory: a plain count, or with
/// a binary suffix (`64Ki`, `7Mi`, `1Gi`).
public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let n = Int(text.dropLast(2)), n >= 0 else { return nil }
            let (value, overflow) = n.multipliedReportingOverflow(by: factor)
            return overflow ? nil : value
        }
        guard let n = Int(text), n >= 0 else { return nil }
        return n
    }
}
