import Glibc
import SystemSupport

/// The kind of a JSON value.
public enum JSONKind: UInt8, Sendable {
    case null, `false`, `true`, number, string, array, object
}

/// A parsed JSON text, kept compact: a tape of nodes in document order that point
/// into one byte buffer. Strings stay as written (escapes decoded on demand) and
/// numbers keep their exact text, so values can be passed on unchanged.
///
/// Objects are laid out as key node, value subtree, key node, value subtree, ...;
/// every node records where its subtree ends so siblings are found without descending.
public final class JSONDocument: Sendable {
    /// The bytes string and number nodes point into (the source text for parsed JSON).
    public let storage: [UInt8]
    let nodes: [JSONNode]
    /// Whether string contents in `storage` are JSON source text (escaped as written),
    /// rather than raw decoded bytes placed there by another loader.
    let isJSONSource: Bool

    init(storage: [UInt8], nodes: [JSONNode], isJSONSource: Bool = true) {
        self.storage = storage
        self.nodes = nodes
        self.isJSONSource = isJSONSource
    }

    /// The top-level value.
    public var root: JSONValue { JSONValue(document: self, index: 0) }

    /// The bytes its text and its nodes take: what a compacted document holds (counted by
    /// the nodes it has, not the room the allocator rounded them up to, so that two copies
    /// of one document always weigh the same).
    public var retainedBytes: Int { storage.count + nodes.count * MemoryLayout<JSONNode>.stride }

    /// The same document with its tape cut to the nodes it holds: the reader reserves room
    /// for the most nodes a text could have (six bytes per byte of text), which a document
    /// kept for long should not go on holding.
    public func compacted() -> JSONDocument {
        // The allocator may round an exact array up by a node or two: that is compact.
        guard nodes.capacity - nodes.count > 8 else { return self }
        var exact: [JSONNode] = []
        exact.reserveCapacity(nodes.count)
        exact.append(contentsOf: nodes)
        return JSONDocument(storage: storage, nodes: exact, isJSONSource: isJSONSource)
    }
}

/// One entry of the tape: 12 bytes (a `[0,0,...]` document has a node per two bytes).
struct JSONNode: Sendable {
    /// For strings and numbers: the first byte of the content in `storage`
    /// (after the opening quote for strings). For containers: unused.
    var start: UInt32
    /// The index of the first node after this node's subtree.
    var end: UInt32
    /// Kind (bits 28-30), string escapes (bit 31) and the count (bits 0-27).
    private var packed: UInt32

    /// Counts and string lengths must stay below this (documents are smaller).
    static let countLimit = 1 << 28

    init(kind: JSONKind, hasEscapes: Bool, start: UInt32, count: UInt32, end: UInt32) {
        self.start = start
        self.end = end
        self.packed = UInt32(kind.rawValue) << 28 | (hasEscapes ? 1 << 31 : 0) | (count & 0x0FFF_FFFF)
    }

    var kind: JSONKind {
        @inline(__always) get { JSONKind(rawValue: UInt8(truncatingIfNeeded: packed >> 28) & 0x7) ?? .null }
    }

    /// For strings: the content holds backslash escapes that need decoding.
    var hasEscapes: Bool {
        @inline(__always) get { packed & (1 << 31) != 0 }
    }

    /// For strings and numbers: the content length in bytes. For containers: the
    /// number of elements, or of members for an object.
    var count: UInt32 {
        @inline(__always) get { packed & 0x0FFF_FFFF }
        @inline(__always) set { packed = (packed & 0xF000_0000) | (newValue & 0x0FFF_FFFF) }
    }

    /// Adds one to an open container's count: a plain add to the packed word, as the
    /// count stays below `countLimit` (a document has fewer elements than bytes) and
    /// never carries into the kind bits.
    @inline(__always)
    mutating func countOneMore() {
        packed &+= 1
    }
}

/// A read-only view of one value inside a `JSONDocument`.
public struct JSONValue: Sendable {
    public let document: JSONDocument
    let index: Int

    init(document: JSONDocument, index: Int) {
        self.document = document
        self.index = index
    }

    var node: JSONNode { document.nodes[index] }

    /// This value's position in its document's tape (stable for the document's life),
    /// for loaders that keep side tables such as source line numbers.
    public var nodeIndex: Int { index }

    /// This value in its document with the tape cut to size (`JSONDocument.compacted`):
    /// what to hold on to for long.
    public func compacted() -> JSONValue {
        JSONValue(document: document.compacted(), index: index)
    }

    public var kind: JSONKind { node.kind }
    public var isNull: Bool { node.kind == .null }
    public var isObject: Bool { node.kind == .object }
    public var isArray: Bool { node.kind == .array }

    /// The boolean, or nil when this is not a boolean.
    public var bool: Bool? {
        switch node.kind {
        case .true: return true
        case .false: return false
        default: return nil
        }
    }

    /// The decoded string, or nil when this is not a string.
    public var string: String? {
        let n = node
        guard n.kind == .string else { return nil }
        return JSONValue.decodeString(document.storage, n)
    }

    /// Calls `body` with a string's decoded UTF-8, read in place when it has no escapes
    /// (no String made); nil when this is not a string.
    public func withUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        let n = node
        guard n.kind == .string else { return nil }
        if n.hasEscapes {
            var text = JSONValue.decodeString(document.storage, n)
            return text.withUTF8(body)
        }
        return document.storage.withUnsafeBufferPointer { storage in
            let start = Int(n.start)
            return body(UnsafeBufferPointer(rebasing: storage[start..<start + Int(n.count)]))
        }
    }

    /// The number exactly as written, or nil when this is not a number.
    public var numberText: String? {
        let n = node
        guard n.kind == .number else { return nil }
        let s = Int(n.start)
        return String(decoding: document.storage[s..<s + Int(n.count)], as: UTF8.self)
    }

    /// Bytes of a string as stored (escapes not yet decoded); 0 for anything else.
    public var stringByteCount: Int {
        let n = node
        return n.kind == .string ? Int(n.count) : 0
    }

    /// The number as an integer when it is written as one and fits.
    public var int: Int? {
        let n = node
        guard n.kind == .number else { return nil }
        var value = 0
        var negative = false
        let s = Int(n.start)
        for i in s..<s + Int(n.count) {
            let b = document.storage[i]
            if b == UInt8(ascii: "-") && i == s { negative = true; continue }
            guard b >= 0x30 && b <= 0x39 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(b - 0x30))
            guard !o1 && !o2 else { return nil }
            value = a
        }
        return negative ? -value : value
    }

    /// Number of array elements or object members; 0 for scalars.
    public var count: Int {
        let n = node
        return n.kind == .array || n.kind == .object ? Int(n.count) : 0
    }

    /// The elements of an array (empty for anything else).
    public var elements: JSONElements { JSONElements(value: self) }

    /// The members of an object in document order (empty for anything else).
    public var members: JSONMembers { JSONMembers(value: self) }

    /// The value of member `key` of an object; nil when absent or when this is not an
    /// object. With duplicate keys the last one wins, as in Go's encoding/json.
    public subscript(key: JSONKey) -> JSONValue? {
        var found = -1
        scanKeys { i, k in
            if JSONValue.key(k, at: i, is: key, in: self) { found = i + 1 }
        }
        return value(at: found)
    }

    /// The value of member `name`, a name known only at run time (see `subscript(key:)`).
    public subscript(member name: String) -> JSONValue? {
        var name = name
        let found = name.withUTF8 { memberIndex(of: $0) }
        return found.map { JSONValue(document: document, index: $0) }
    }

    /// Members `a` and `b` of an object, found in one scan of its keys rather than one
    /// each (the last of duplicates wins, as with one lookup).
    public subscript(_ a: JSONKey, _ b: JSONKey) -> (JSONValue?, JSONValue?) {
        var found = (-1, -1)
        scanKeys { i, k in
            if JSONValue.key(k, at: i, is: a, in: self) { found.0 = i + 1 }
            if JSONValue.key(k, at: i, is: b, in: self) { found.1 = i + 1 }
        }
        return (value(at: found.0), value(at: found.1))
    }

    /// Members `a` to `d` of an object in one scan (see `subscript(_:_:)`).
    public subscript(_ a: JSONKey, _ b: JSONKey, _ c: JSONKey, _ d: JSONKey) -> (JSONValue?, JSONValue?, JSONValue?, JSONValue?) {
        var found = (-1, -1, -1, -1)
        scanKeys { i, k in
            if JSONValue.key(k, at: i, is: a, in: self) { found.0 = i + 1 }
            if JSONValue.key(k, at: i, is: b, in: self) { found.1 = i + 1 }
            if JSONValue.key(k, at: i, is: c, in: self) { found.2 = i + 1 }
            if JSONValue.key(k, at: i, is: d, in: self) { found.3 = i + 1 }
        }
        return (value(at: found.0), value(at: found.1), value(at: found.2), value(at: found.3))
    }

    private func value(at index: Int) -> JSONValue? {
        index < 0 ? nil : JSONValue(document: document, index: index)
    }

    /// Calls `body` with the tape index and node of each key of this object.
    @inline(__always)
    private func scanKeys(_ body: (Int, JSONNode) -> Void) {
        document.nodes.withUnsafeBufferPointer { nodes in
            let object = nodes[index]
            guard object.kind == .object else { return }
            var i = index + 1
            let end = Int(object.end)
            while i + 1 < end {
                body(i, nodes[i])
                i = Int(nodes[i + 1].end)
            }
        }
    }

    /// Whether key node `k` (at tape index `i` of `value`'s document) is `key`: compared
    /// in place when written without escapes; decoded only when it has escapes and is
    /// longer as written (an escape is always longer than what it stands for).
    @inline(__always)
    private static func key(_ k: JSONNode, at i: Int, is key: JSONKey, in value: JSONValue) -> Bool {
        let written = Int(k.count)
        if written == key.count && !k.hasEscapes {
            return value.document.storage.withUnsafeBufferPointer { key.matches($0, at: Int(k.start)) }
        }
        guard written > key.count && k.hasEscapes else { return false }
        return key.text.withUTF8Buffer { JSONValue(document: value.document, index: i).equals($0) }
    }

    /// Calls `body` with each member's key (its decoded UTF-8) and value in document
    /// order; nothing for a non-object. One pass for a reader that wants several members,
    /// where each lookup by key would scan them all again. Later duplicates come later,
    /// so a reader that keeps the last one seen agrees with the subscript.
    public func forEachMember(_ body: (UnsafeBufferPointer<UInt8>, JSONValue) -> Void) {
        for (key, value) in members {
            let k = key.node
            if k.hasEscapes {
                var text = key.string ?? ""
                text.withUTF8 { body($0, value) }
            } else {
                document.storage.withUnsafeBufferPointer { storage in
                    let start = Int(k.start)
                    body(UnsafeBufferPointer(rebasing: storage[start..<start + Int(k.count)]), value)
                }
            }
        }
    }

    /// The tape index of the value of member `key`, scanning keys in place.
    private func memberIndex(of key: UnsafeBufferPointer<UInt8>) -> Int? {
        document.nodes.withUnsafeBufferPointer { nodes -> Int? in
            document.storage.withUnsafeBufferPointer { storage -> Int? in
                var found: Int?
                forEachKeyNode(nodes, count: key.count) { i, k in
                    let same = k.hasEscapes
                        ? JSONValue(document: document, index: i).equals(key)
                        : UnsafeBufferPointer(rebasing: storage[Int(k.start)..<Int(k.start) + key.count]).elementsEqual(key)
                    if same { found = i + 1 }
                }
                return found
            }
        }
    }

    /// Calls `body` with the tape index and node of each of this object's keys that may
    /// be `count` bytes long decoded: that long as written without escapes, or longer
    /// with escapes (an escape is always longer than what it stands for).
    @inline(__always)
    private func forEachKeyNode(_ nodes: UnsafeBufferPointer<JSONNode>, count: Int, _ body: (Int, JSONNode) -> Void) {
        let object = nodes[index]
        guard object.kind == .object else { return }
        var i = index + 1
        let end = Int(object.end)
        while i + 1 < end {
            let k = nodes[i]
            let written = Int(k.count)
            if written == count {
                if !k.hasEscapes { body(i, k) }
            } else if written > count && k.hasEscapes {
                body(i, k)
            }
            i = Int(nodes[i + 1].end)
        }
    }

    /// Whether two string nodes hold the same text, without decoding unescaped ones.
    func sameString(_ other: JSONValue) -> Bool {
        let x = node, y = other.node
        guard x.kind == .string, y.kind == .string else { return false }
        if !x.hasEscapes && !y.hasEscapes && document.isJSONSource == other.document.isJSONSource {
            return rawContent.elementsEqual(other.rawContent)
        }
        return string == other.string
    }

    /// The bytes of this value in the JSON source it was parsed from (nil for documents
    /// built by other loaders).
    var sourceRange: Range<Int>? {
        guard document.isJSONSource else { return nil }
        return document.storage.withUnsafeBufferPointer { storage in
            document.nodes.withUnsafeBufferPointer { nodes in
                let n = nodes[index]
                let start = n.kind == .string ? Int(n.start) - 1 : Int(n.start)
                return start..<JSONValue.sourceEnd(index, nodes, storage)
            }
        }
    }

    /// The index after the last byte of the value at `index`.
    private static func sourceEnd(_ index: Int, _ nodes: UnsafeBufferPointer<JSONNode>, _ storage: UnsafeBufferPointer<UInt8>) -> Int {
        let n = nodes[index]
        switch n.kind {
        case .string: return Int(n.start) + Int(n.count) + 1
        case .number, .true, .false, .null: return Int(n.start) + Int(n.count)
        case .array, .object:
            var position = Int(n.start) + 1
            if n.count > 0 {
                var child = index + 1
                var last = child
                while child < Int(n.end) {
                    last = child
                    child = Int(nodes[child].end)
                }
                position = sourceEnd(last, nodes, storage)
            }
            while position < storage.count && storage[position] != UInt8(ascii: "}") && storage[position] != UInt8(ascii: "]") {
                position += 1
            }
            return min(position + 1, storage.count)
        }
    }

    /// Members by key, the last of duplicate keys winning; built in one pass.
    var effectiveMembers: [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        out.reserveCapacity(count)
        for (key, value) in members { out[key.string ?? ""] = value }
        return out
    }

    /// Whether this is a string whose decoded content equals `text`.
    public func isString(_ text: String) -> Bool {
        guard node.kind == .string else { return false }
        var text = text
        return text.withUTF8 { self.equals($0) }
    }

    /// Whether this is a string whose decoded content is `text`: a prepared text, compared
    /// by words like a member name (for values a reader checks on every document).
    public func isString(_ text: JSONKey) -> Bool {
        let n = node
        return n.kind == .string && JSONValue.key(n, at: index, is: text, in: self)
    }

    /// Compares a string node's decoded content with UTF-8 bytes.
    func equals(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = node
        guard n.kind == .string else { return false }
        if n.hasEscapes {
            return Array(JSONValue.decodeString(document.storage, n).utf8).elementsEqual(bytes)
        }
        guard Int(n.count) == bytes.count else { return false }
        let s = Int(n.start)
        return document.storage.withUnsafeBufferPointer { storage in
            for i in 0..<bytes.count where storage[s + i] != bytes[i] { return false }
            return true
        }
    }

    /// The exact bytes of a string's content (still escaped) or of a number.
    var rawContent: ArraySlice<UInt8> {
        let n = node
        let s = Int(n.start)
        return document.storage[s..<s + Int(n.count)]
    }

    static func decodeString(_ storage: [UInt8], _ n: JSONNode) -> String {
        let s = Int(n.start)
        let e = s + Int(n.count)
        if !n.hasEscapes { return String(decoding: storage[s..<e], as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(Int(n.count))
        var i = s
        while i < e {
            let b = storage[i]
            guard b == UInt8(ascii: "\\"), i + 1 < e else { out.append(b); i += 1; continue }
            let c = storage[i + 1]
            i += 2
            switch c {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(storage, i, e) ?? 0xFFFD
                i += 4
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    // A high surrogate: combine with a following \uDC00-\uDFFF escape.
                    if i + 6 <= e, storage[i] == UInt8(ascii: "\\"), storage[i + 1] == UInt8(ascii: "u"),
                       let low = hex4(storage, i + 2, e), low >= 0xDC00 && low < 0xE000 {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    } else {
                        scalar = 0xFFFD
                    }
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    scalar = 0xFFFD
                }
                appendUTF8(scalar, to: &out)
            default: out.append(c)  // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex4(_ storage: [UInt8], _ at: Int, _ end: Int) -> UInt32? {
        guard at + 4 <= end else { return nil }
        var v: UInt32 = 0
        for i in at..<at + 4 {
            guard let d = ASCII.hexDigitValue(storage[i]) else { return nil }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    private static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        let s = Unicode.Scalar(scalar) ?? "\u{FFFD}"
        out.append(contentsOf: Array(String(Character(s)).utf8))
    }
}

/// The elements of an array value.
public struct JSONElements: Sequence, Sendable {
    let value: JSONValue

    public struct Iterator: IteratorProtocol {
        let document: JSONDocument
        var position: Int
        var remaining: Int

        public mutating func next() -> JSONValue? {
            guard remaining > 0 else { return nil }
            remaining -= 1
            let v = JSONValue(document: document, index: position)
            position = Int(document.nodes[position].end)
            return v
        }
    }

    public func makeIterator() -> Iterator {
        let isArray = value.kind == .array
        return Iterator(document: value.document, position: value.index + 1, remaining: isArray ? value.count : 0)
    }
}

/// The members of an object value, as (key, value) pairs in document order.
public struct JSONMembers: Sequence, Sendable {
    let value: JSONValue

    public struct Iterator: IteratorProtocol {
        let document: JSONDocument
        var position: Int
        var remaining: Int

        public mutating func next() -> (key: JSONValue, value: JSONValue)? {
            guard remaining > 0 else { return nil }
            remaining -= 1
            let k = JSONValue(document: document, index: position)
            let v = JSONValue(document: document, index: position + 1)
            position = Int(document.nodes[position + 1].end)
            return (k, v)
        }
    }

    public func makeIterator() -> Iterator {
        let isObject = value.kind == .object
        return Iterator(document: value.document, position: value.index + 1, remaining: isObject ? value.count : 0)
    }
}

extension JSONValue: Equatable {
    /// Semantic equality: objects compare as maps (member order ignored, the last of
    /// duplicate keys winning), strings by decoded content, numbers by their written text.
    ///
    /// Linear in the two values (n log n at worst for reordered members): every node of
    /// one side is compared with at most one node of the other, whatever the shape. A
    /// comparison that fell back to a second walk at every level would be exponential in
    /// the nesting depth.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        guard a.kind == b.kind else { return false }
        // Identical source text is equal: one memcmp instead of a walk (an UPDATE's
        // object and oldObject usually carry the same spec, byte for byte). Only here, at
        // the top: repeated at every level it would cost the size times the depth.
        if a.kind == .object || a.kind == .array, let x = a.sourceRange, let y = b.sourceRange, x.count == y.count {
            let same = a.document.storage.withUnsafeBytes { p in
                b.document.storage.withUnsafeBytes { q in
                    guard let pb = p.baseAddress, let qb = q.baseAddress else { return x.isEmpty }
                    return memcmp(pb + x.lowerBound, qb + y.lowerBound, x.count) == 0
                }
            }
            if same { return true }
        }
        return semanticallyEqual(a, b)
    }

    private static func semanticallyEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
        let na = a.node, nb = b.node
        guard na.kind == nb.kind else { return false }
        switch na.kind {
        case .null, .true, .false:
            return true
        case .number:
            return a.rawContent.elementsEqual(b.rawContent)
        case .string:
            return a.sameString(b)
        case .array:
            guard na.count == nb.count else { return false }
            return zip(a.elements, b.elements).allSatisfy { semanticallyEqual($0, $1) }
        case .object:
            // Usually both sides were written by the same encoder: same keys in the same
            // order, and then values pair up in order. Otherwise pair them by key. Either
            // way each value is compared once.
            if na.count == nb.count && zip(a.members, b.members).allSatisfy({ $0.key.sameString($1.key) }) {
                return zip(a.members, b.members).allSatisfy { semanticallyEqual($0.value, $1.value) }
            }
            let mine = a.effectiveMembers, theirs = b.effectiveMembers
            guard mine.count == theirs.count else { return false }
            for (key, value) in mine {
                guard let other = theirs[key], semanticallyEqual(value, other) else { return false }
            }
            return true
        }
    }
}
