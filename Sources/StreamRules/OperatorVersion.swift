/// A semantic version as AKO parses the `mongodb.com/atlas-resource-version` label: an
/// optional `v`, one to three dot-separated numbers (missing ones are 0), then an
/// optional `-prerelease` and `+build` (dot-separated alphanumerics and hyphens).
public struct OperatorVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    /// Prerelease identifiers (`rc.1` is `["rc", "1"]`); empty for a release.
    public var prerelease: [String]
    public let text: String

    public init?(_ text: String) {
        var rest = Substring(text)
        if rest.first == "v" { rest = rest.dropFirst() }
        var build: Substring?
        if let plus = rest.firstIndex(of: "+") {
            build = rest[rest.index(after: plus)...]
            rest = rest[..<plus]
        }
        var pre: Substring?
        if let dash = rest.firstIndex(of: "-") {
            pre = rest[rest.index(after: dash)...]
            rest = rest[..<dash]
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count) else { return nil }
        var numbers: [Int] = []
        for part in parts {
            // Digits only, at most 9 of them (no overflow), no leading zero but "0".
            guard !part.isEmpty, part.count <= 9, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  part == "0" || part.first != "0", let number = Int(part) else { return nil }
            numbers.append(number)
        }
        func identifiers(_ text: Substring?) -> [String]? {
            guard let text else { return [] }
            let ids = text.split(separator: ".", omittingEmptySubsequences: false)
            guard ids.allSatisfy({ id in
                !id.isEmpty && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D }
            }) else { return nil }
            return ids.map(String.init)
        }
        guard let prerelease = identifiers(pre), identifiers(build) != nil else { return nil }
        major = numbers[0]
        minor = numbers.count > 1 ? numbers[1] : 0
        patch = numbers.count > 2 ? numbers[2] : 0
        self.prerelease = prerelease
        self.text = text
    }

    public var description: String { text }

    public static func == (a: OperatorVersion, b: OperatorVersion) -> Bool {
        (a.major, a.minor, a.patch) == (b.major, b.minor, b.patch) && a.prerelease == b.prerelease
    }

    /// Semantic version precedence: numbers, then a prerelease before its release, then
    /// prerelease identifiers one by one (numeric ones numerically, and before others).
    public static func < (a: OperatorVersion, b: OperatorVersion) -> Bool {
        if (a.major, a.minor, a.patch) != (b.major, b.minor, b.patch) {
            return (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
        }
        if a.prerelease.isEmpty || b.prerelease.isEmpty { return !a.prerelease.isEmpty && b.prerelease.isEmpty }
        for (x, y) in zip(a.prerelease, b.prerelease) where x != y {
            switch (Int(x), Int(y)) {
            case let (i?, j?): return i < j
            case (_?, nil): return true
            case (nil, _?): return false
            default: return x < y
            }
        }
        return a.prerelease.count < b.prerelease.count
    }
}
