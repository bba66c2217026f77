import CYAML
import JSON

/// A line and column in the source, both counted from 1.
public struct YAMLMark: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    init(_ mark: yaml_mark_t) {
        line = mark.line + 1
        column = mark.column + 1
    }

    public var description: String { "\(line):\(column)" }
}

/// Why a YAML stream cannot be loaded, with where.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case syntax(String)
        case duplicateKey(String)
        case tooDeep(limit: Int)
        case aliasBudgetExceeded(limit: Int)
        case unknownAlias(String)
        case unsupportedKey
        case unsupportedValue(String)
    }

    public var reason: Reason
    public var mark: YAMLMark

    public init(_ reason: Reason, at mark: YAMLMark) {
        self.reason = reason
        self.mark = mark
    }

    public var description: String {
        let what: String
        switch reason {
        case .syntax(let problem): what = problem
        case .duplicateKey(let key): what = "duplicate key \"\(key)\""
        case .tooDeep(let limit): what = "nesting deeper than \(limit) levels"
        case .aliasBudgetExceeded(let limit): what = "aliases expand to more than \(limit) nodes"
        case .unknownAlias(let name): what = "alias *\(name) refers to no complete anchored node"
        case .unsupportedKey: what = "mapping keys must be scalars"
        case .unsupportedValue(let text): what = "value \(text) cannot be represented in JSON"
        }
        return "\(mark): \(what)"
    }
}

/// One document of a YAML stream as a JSON value, with the source position of every node.
public struct YAMLDocument: Sendable {
    public let value: JSONValue
    /// The position where each node starts, indexed by `JSONValue.nodeIndex`.
    public let marks: [YAMLMark]

    /// Where `value` (a node of this document) starts.
    public func mark(of value: JSONValue) -> YAMLMark? {
        let i = value.nodeIndex
        return i >= 0 && i < marks.count ? marks[i] : nil
    }

    public var start: YAMLMark { marks.first ?? YAMLMark(line: 1, column: 1) }
}

/// Bounds on what a stream may make the loader do.
public struct YAMLLimits: Sendable, Equatable {
    public var maxDepth: Int
    /// Nodes all aliases of one document may add when expanded ("billion laughs").
    public var maxAliasNodes: Int

    public init(maxDepth: Int = 512, maxAliasNodes: Int = 100_000) {
        self.maxDepth = maxDepth
        self.maxAliasNodes = maxAliasNodes
    }
}

/// Loads YAML (and JSON, a subset) through the system libyaml's event parser into
/// `JSONDocument`s, resolving plain scalars as YAML 1.1 does in kubectl's YAML library.
public enum YAMLLoader {
    public static func load(_ bytes: [UInt8], limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> [YAMLDocument] {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError(.syntax("cannot initialise the YAML parser"), at: YAMLMark(line: 1, column: 1))
        }
        defer { yaml_parser_delete(&parser) }
        var state = LoadState(limits: limits)
        let result: YAMLError? = bytes.withUnsafeBufferPointer { buffer in
            // libyaml keeps the pointer; the buffer outlives every parse call below.
            yaml_parser_set_input_string(&parser, buffer.baseAddress ?? UnsafePointer(bitPattern: 1), buffer.count)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
                    let context = parser.context.map { String(cString: $0) + " started at \(YAMLMark(parser.context_mark)): " } ?? ""
                    return YAMLError(.syntax(context + problem), at: YAMLMark(parser.problem_mark))
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return nil }
                if let error = state.handle(&event) { return error }
            }
        }
        if let result { throw result }
        return state.documents
    }
}

/// The loader's state between events.
private struct LoadState {
    let limits: YAMLLimits
    var documents: [YAMLDocument] = []
    var builder = JSONBuilder()
    var marks: [YAMLMark] = []
    var anchors: [String: Int] = [:]
    /// The source text of anchored scalars, for aliases used as keys.
    var scalarAnchors: [String: String] = [:]
    /// Anchors of containers still open: registered when they close.
    var pendingAnchors: [(name: String, index: Int)?] = []
    /// Per open mapping: the keys seen so far.
    var keys: [Set<String>] = []
    /// Per open mapping: whether the next node is a key.
    var expectingKey: [Bool] = []
    var aliasNodes = 0

    init(limits: YAMLLimits) {
        self.limits = limits
    }

    mutating func handle(_ event: inout yaml_event_t) -> YAMLError? {
        let mark = YAMLMark(event.start_mark)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            builder = JSONBuilder()
            marks = []
            anchors = [:]
            scalarAnchors = [:]
            pendingAnchors = []
            keys = []
            expectingKey = []
            aliasNodes = 0
        case YAML_DOCUMENT_END_EVENT:
            let document = builder.finish()
            if marks.isEmpty { marks.append(mark) }
            documents.append(YAMLDocument(value: document.root, marks: marks))
        case YAML_MAPPING_START_EVENT, YAML_SEQUENCE_START_EVENT:
            if let error = beforeValue(mark) { return error }
            guard builder.depth < limits.maxDepth else { return YAMLError(.tooDeep(limit: limits.maxDepth), at: mark) }
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            let anchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
            let index = isMapping ? builder.beginObject() : builder.beginArray()
            record(mark, for: index)
            pendingAnchors.append(anchor.map { (String(cString: $0), index) })
            keys.append([])
            expectingKey.append(isMapping)
        case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
            builder.end()
            _ = keys.popLast()
            _ = expectingKey.popLast()
            if let pending = pendingAnchors.popLast(), let pending { anchors[pending.name] = pending.index }
            afterValue()
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let bytes = UnsafeBufferPointer(start: scalar.value, count: scalar.length)
            let tag = scalar.tag.map { String(cString: $0) }
            if let anchor = scalar.anchor { scalarAnchors[String(cString: anchor)] = String(decoding: bytes, as: UTF8.self) }
            if expectingKey.last == true {
                // A mapping key: always a string in JSON.
                let key = String(decoding: bytes, as: UTF8.self)
                if !keys[keys.count - 1].insert(key).inserted { return YAMLError(.duplicateKey(key), at: mark) }
                record(mark, for: builder.string(bytes))
                expectingKey[expectingKey.count - 1] = false
                return nil
            }
            let index: Int
            let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE
            switch resolveScalar(bytes, plain: plain, tag: tag) {
            case .string: index = builder.string(bytes)
            case .null: index = builder.null()
            case .bool(let b): index = builder.bool(b)
            case .number(let text): index = builder.number(text)
            case .unrepresentable:
                return YAMLError(.unsupportedValue(String(decoding: bytes, as: UTF8.self)), at: mark)
            }
            record(mark, for: index)
            if let anchor = scalar.anchor { anchors[String(cString: anchor)] = index }
            afterValue()
        case YAML_ALIAS_EVENT:
            let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
            if expectingKey.last == true {
                // An aliased key: only scalars can be keys.
                guard let key = scalarAnchors[name] else { return YAMLError(.unsupportedKey, at: mark) }
                if !keys[keys.count - 1].insert(key).inserted { return YAMLError(.duplicateKey(key), at: mark) }
                record(mark, for: builder.string(Array(key.utf8)))
                expectingKey[expectingKey.count - 1] = false
                return nil
            }
            guard let target = anchors[name] else { return YAMLError(.unknownAlias(name), at: mark) }
            let size = builder.subtreeSize(target)
            aliasNodes += size
            guard aliasNodes <= limits.maxAliasNodes else {
                return YAMLError(.aliasBudgetExceeded(limit: limits.maxAliasNodes), at: mark)
            }
            builder.copySubtree(target)
            for i in target..<target + size { marks.append(i < marks.count ? marks[i] : mark) }
            afterValue()
        default:
            break
        }
        return nil
    }

    /// A mapping or sequence may not be a key.
    private func beforeValue(_ mark: YAMLMark) -> YAMLError? {
        expectingKey.last == true ? YAMLError(.unsupportedKey, at: mark) : nil
    }

    /// After a value inside a mapping, the next node is a key again.
    private mutating func afterValue() {
        if let last = expectingKey.indices.last, builder.inObject { expectingKey[last] = true }
    }

    private mutating func record(_ mark: YAMLMark, for index: Int) {
        while marks.count < index { marks.append(mark) }
        if marks.count == index { marks.append(mark) } else { marks[index] = mark }
    }
}
