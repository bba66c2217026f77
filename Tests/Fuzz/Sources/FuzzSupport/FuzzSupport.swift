@_exported import Admission
@_exported import Configuration
@_exported import HTTPServer
@_exported import JSON
@_exported import StreamRules
@_exported import YAML

/// A property that must hold. Failing one is a finding: the fuzzer records the input.
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("property violated: \(message())") }
}

/// Standard base64 (with padding) back to bytes; nil when malformed.
public func base64Decode(_ text: String) -> [UInt8]? {
    var table = [Int](repeating: -1, count: 256)
    for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = i }
    let bytes = Array(text.utf8)
    guard bytes.count % 4 == 0 else { return nil }
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        var quad = [Int](repeating: 0, count: 4)
        var padding = 0
        for k in 0..<4 {
            let c = bytes[i + k]
            if c == UInt8(ascii: "=") { padding += 1; continue }
            guard padding == 0, table[Int(c)] >= 0 else { return nil }
            quad[k] = table[Int(c)]
        }
        let n = quad[0] << 18 | quad[1] << 12 | quad[2] << 6 | quad[3]
        out.append(UInt8(n >> 16 & 0xFF))
        if padding < 2 { out.append(UInt8(n >> 8 & 0xFF)) }
        if padding < 1 { out.append(UInt8(n & 0xFF)) }
        i += 4
    }
    return out
}

/// A JSON value as a plain tree, for applying patches independently of the server.
public indirect enum Tree: Equatable {
    case scalar(String)  // the compact JSON text of a scalar
    case array([Tree])
    case object([(String, Tree)])

    public static func == (a: Tree, b: Tree) -> Bool {
        switch (a, b) {
        case (.scalar(let x), .scalar(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            // Last duplicate wins, order ignored.
            func effective(_ m: [(String, Tree)]) -> [String: Tree] {
                var d: [String: Tree] = [:]
                for (k, v) in m { d[k] = v }
                return d
            }
            return effective(x) == effective(y)
        default: return false
        }
    }

    public init(_ value: JSONValue) {
        switch value.kind {
        case .array: self = .array(value.elements.map(Tree.init))
        case .object: self = .object(value.members.map { ($0.key.string ?? "", Tree($0.value)) })
        default:
            var w = JSONWriter()
            w.value(value)
            self = .scalar(String(decoding: w.bytes, as: UTF8.self))
        }
    }

    /// RFC 6902 `add` as evanphx/json-patch v4 applies it: the parent must exist; an
    /// object member is set or replaced; an array index inserts. False when it fails.
    public mutating func add(_ pointer: [String], _ value: Tree) -> Bool {
        guard let first = pointer.first else {
            self = value
            return true
        }
        let rest = Array(pointer.dropFirst())
        switch self {
        case .object(var members):
            if rest.isEmpty {
                if let i = members.lastIndex(where: { $0.0 == first }) { members[i].1 = value } else { members.append((first, value)) }
                self = .object(members)
                return true
            }
            guard let i = members.lastIndex(where: { $0.0 == first }) else { return false }
            let ok = members[i].1.add(rest, value)
            self = .object(members)
            return ok
        case .array(var elements):
            guard let i = Int(first), i >= 0 else { return false }
            if rest.isEmpty {
                guard i <= elements.count else { return false }
                elements.insert(value, at: i)
                self = .array(elements)
                return true
            }
            guard i < elements.count else { return false }
            let ok = elements[i].add(rest, value)
            self = .array(elements)
            return ok
        case .scalar:
            return false
        }
    }
}

/// A JSON Pointer split into unescaped tokens.
public func pointerTokens(_ pointer: String) -> [String]? {
    guard pointer.hasPrefix("/") else { return pointer.isEmpty ? [] : nil }
    return pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
        $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
    }
}

extension Substring {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        self[...].replacingOccurrences(of: target, with: replacement)
    }
}
