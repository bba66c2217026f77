/// Builds a `JSONDocument` value by value, for loaders of other formats (YAML).
/// Strings are stored decoded; the caller supplies valid JSON number text.
/// Every append returns the new node's index.
public struct JSONBuilder: Sendable {
    private var storage: [UInt8] = []
    private var nodes: [JSONNode] = []
    private var open: [Int] = []

    public init() {}

    /// Nodes appended so far.
    public var nodeCount: Int { nodes.count }

    /// Open containers.
    public var depth: Int { open.count }

    /// Whether the innermost open container is an object (the next value is a key or a member).
    public var inObject: Bool { open.last.map { nodes[$0].kind == .object } ?? false }

    public mutating func beginObject() -> Int { begin(.object) }
    public mutating func beginArray() -> Int { begin(.array) }

    private mutating func begin(_ kind: JSONKind) -> Int {
        open.append(nodes.count)
        nodes.append(JSONNode(kind: kind, hasEscapes: false, start: 0, count: 0, end: 0))
        return nodes.count - 1
    }

    /// Closes the innermost open container.
    public mutating func end() {
        guard let index = open.popLast() else { return }
        close(&nodes, containerAt: index)
    }

    @discardableResult
    public mutating func string(_ bytes: some Collection<UInt8>) -> Int {
        let start = storage.count
        storage.append(contentsOf: bytes)
        return scalar(.string, start: start, length: storage.count - start)
    }

    /// `text` must be a valid JSON number.
    @discardableResult
    public mutating func number(_ text: String) -> Int {
        let start = storage.count
        storage.append(contentsOf: text.utf8)
        return scalar(.number, start: start, length: storage.count - start)
    }

    @discardableResult
    public mutating func bool(_ value: Bool) -> Int { scalar(value ? .true : .false, start: 0, length: 0) }

    @discardableResult
    public mutating func null() -> Int { scalar(.null, start: 0, length: 0) }

    private mutating func scalar(_ kind: JSONKind, start: Int, length: Int) -> Int {
        nodes.append(JSONNode(kind: kind, hasEscapes: false, start: UInt32(truncatingIfNeeded: start),
                              count: UInt32(truncatingIfNeeded: length), end: UInt32(nodes.count + 1)))
        return nodes.count - 1
    }

    /// Nodes in the subtree at `index` (1 for a scalar); the subtree must be complete.
    public func subtreeSize(_ index: Int) -> Int {
        guard index >= 0 && index < nodes.count else { return 0 }
        let end = Int(nodes[index].end)
        return end > index ? end - index : 0
    }

    /// Appends a copy of the complete subtree at `index` (an alias in YAML). Returns the
    /// copy's index. String bytes are shared, not copied.
    @discardableResult
    public mutating func copySubtree(_ index: Int) -> Int {
        let size = subtreeSize(index)
        let offset = nodes.count - index
        let copyStart = nodes.count
        guard size > 0 else { return null() }
        for i in index..<index + size {
            var node = nodes[i]
            node.end = UInt32(Int(node.end) + offset)
            nodes.append(node)
        }
        return copyStart
    }

    /// The finished document; closes anything still open.
    public mutating func finish() -> JSONDocument {
        while !open.isEmpty { end() }
        if nodes.isEmpty { null() }
        return JSONDocument(storage: storage, nodes: nodes, isJSONSource: false)
    }

    /// The number of bytes string and number content takes so far.
    public var storageSize: Int { storage.count }
}

/// Closes the container at `index`, whose children are the nodes after it: records
/// where its subtree ends and counts its elements (members for an object).
func close(_ nodes: inout [JSONNode], containerAt index: Int) {
    let end = nodes.count
    var count: UInt32 = 0
    var child = index + 1
    while child < end {
        count += 1
        child = Int(nodes[child].end)
    }
    if nodes[index].kind == .object { count /= 2 }
    nodes[index].count = count
    nodes[index].end = UInt32(end)
}
