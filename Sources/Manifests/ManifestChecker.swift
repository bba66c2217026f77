import JSON
import StreamRules
import SystemSupport
import YAML

/// One problem found in a manifest.
public struct Finding: Sendable, Equatable {
    public enum Severity: String, Sendable { case error, warning }

    /// What was found.
    public enum Detail: Sendable, Equatable {
        /// A field error, as `/validate` would deny it.
        case fieldError(FieldError)
        /// A warning, as `/validate` would give it.
        case warning(RuleWarning)
        /// The object has this many more errors than an answer lists (the last finding
        /// of an object with more than 100).
        case moreErrors(Int)
        /// A kind of the operator's API group that this server does not know: not
        /// checked, so not passed either.
        case unknownKind(String)
    }

    public var file: String
    public var line: Int
    public var kind: String
    public var name: String
    public var namespace: String
    public var detail: Detail

    public var severity: Severity {
        if case .warning = detail { return .warning }
        return .error
    }

    /// `FILE:LINE: Kind/name: field: body`, `FILE:LINE: Kind/name: warning: text`, or
    /// `FILE:LINE: Kind/name: <message>`.
    public var text: String {
        let subject = "\(file):\(line): \(kind)/\(name): "
        switch detail {
        case .fieldError(let error): return subject + error.description
        case .warning(let warning): return subject + "warning: " + warning.message
        case .moreErrors, .unknownKind: return subject + message
        }
    }

    /// The error body, the warning, or what else was found.
    public var message: String {
        switch detail {
        case .fieldError(let error): return error.body
        case .warning(let warning): return warning.message
        case .moreErrors(let count): return "and \(count) more errors"
        case .unknownKind(let message): return message
        }
    }

    /// The rule that found it (nil for what no rule says).
    public var rule: RuleID? {
        switch detail {
        case .fieldError(let error): return error.rule
        case .warning(let warning): return warning.rule
        case .moreErrors, .unknownKind: return nil
        }
    }
}

/// A file that could not be read or parsed.
public struct LoadFailure: Error, Sendable, Equatable {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public var text: String { line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)" }
}

/// What `check` found in one file.
public struct FileResult: Sendable {
    public var file: String
    public var findings: [Finding] = []
    public var failure: LoadFailure?
    /// Every document, with the owned kinds defaulted (for `--print-defaulted`).
    public var defaulted: [JSONValue] = []
    /// Objects of the two kinds checked, and how many of them had errors.
    public var objects = 0
    public var invalidObjects = 0
    /// Objects of the operator's group of a kind this server does not know.
    public var unknownKinds = 0
}

/// Runs the webhook's rules on manifests: each AtlasStreamInstance and
/// AtlasStreamConnection is defaulted, then validated, as a CREATE in its namespace.
public struct ManifestChecker: Sendable {
    public let rules: StreamRules
    /// The namespace of objects whose metadata names none.
    public let defaultNamespace: String
    public let limits: YAMLLimits
    /// The objects references are judged against (`--resolve-references`); nil to judge
    /// each object alone.
    public var cluster: ClusterSnapshot?

    public init(rules: StreamRules, defaultNamespace: String = "default", limits: YAMLLimits = YAMLLimits(),
                cluster: ClusterSnapshot? = nil) {
        self.rules = rules
        self.defaultNamespace = defaultNamespace
        self.limits = limits
        self.cluster = cluster
    }

    /// `check --resolve-references`: every input is read first, the Secrets,
    /// AtlasProjects, AtlasStreamConnections and AtlasStreamInstances found in them make
    /// the snapshot, then each object is checked against it, as the server checks it
    /// against its cluster cache.
    public func checkResolvingReferences(paths: [String]) -> [FileResult] {
        var loaded: [(file: String, documents: Result<[YAMLDocument], LoadFailure>)] = []
        for path in paths {
            let name = path == "-" ? "<stdin>" : path
            let bytes: [UInt8]
            do {
                bytes = try FileContents.read(path: path)
            } catch {
                loaded.append((name, .failure(LoadFailure(file: name, line: 0, column: 0, message: error.description))))
                continue
            }
            do {
                loaded.append((name, .success(try YAMLLoader.load(bytes, limits: limits))))
            } catch {
                loaded.append((name, .failure(LoadFailure(file: name, line: error.mark.line, column: error.mark.column,
                                                          message: error.reasonText))))
            }
        }
        var builder = ManifestSnapshotBuilder(defaultNamespace: defaultNamespace)
        for case (_, .success(let documents)) in loaded {
            for document in documents {
                for object in Self.listItems(document.value) ?? [document.value] { builder.add(object) }
            }
        }
        var checker = self
        checker.cluster = builder.snapshot
        return loaded.map { file, documents in
            var result = FileResult(file: file)
            switch documents {
            case .failure(let failure): result.failure = failure
            case .success(let documents):
                for document in documents where !document.value.isNull {
                    result.defaulted.append(checker.check(document, file: file, into: &result))
                }
            }
            return result
        }
    }

    /// Reads and checks one file (`-` for standard input).
    public func check(path: String) -> FileResult {
        let name = path == "-" ? "<stdin>" : path
        do {
            return check(file: name, bytes: try FileContents.read(path: path))
        } catch {
            var result = FileResult(file: name)
            result.failure = LoadFailure(file: name, line: 0, column: 0, message: error.description)
            return result
        }
    }

    public func check(file: String, bytes: [UInt8]) -> FileResult {
        var result = FileResult(file: file)
        let documents: [YAMLDocument]
        do {
            documents = try YAMLLoader.load(bytes, limits: limits)
        } catch {
            result.failure = LoadFailure(file: file, line: error.mark.line, column: error.mark.column, message: "\(error.reasonText)")
            return result
        }
        for document in documents where !document.value.isNull {
            result.defaulted.append(check(document, file: file, into: &result))
        }
        return result
    }

    /// Checks one document: the object it is, or each item of a `List` (kubectl's
    /// `get -o yaml`); returns it with the checked objects defaulted.
    private func check(_ document: YAMLDocument, file: String, into result: inout FileResult) -> JSONValue {
        let value = document.value
        guard let items = Self.listItems(value) else {
            return PatchApplication.apply(check(value, in: document, file: file, into: &result), to: value)
        }
        var patch: [PatchOperation] = []
        for (index, item) in items.enumerated() {
            for operation in check(item, in: document, file: file, into: &result) {
                patch.append(PatchOperation(path: ["items", String(index)] + operation.path, value: operation.value))
            }
        }
        return PatchApplication.apply(patch, to: value)
    }

    /// The items of a `List` or `<Kind>List` document; nil for any other document.
    static func listItems(_ value: JSONValue) -> [JSONValue]? {
        guard value.isObject, let kind = value["kind"]?.string, kind.hasSuffix("List"),
              let items = value["items"], items.isArray else { return nil }
        return Array(items.elements)
    }

    /// Checks `object` (a node of `document`) if it is of a kind this server checks;
    /// returns its defaulting. A kind of the operator's group that it does not know is
    /// an error: what is not read is not passed.
    private func check(_ object: JSONValue, in document: YAMLDocument, file: String,
                       into result: inout FileResult) -> [PatchOperation] {
        guard object.isObject, let apiVersion = object["apiVersion"]?.string, let kindName = object["kind"]?.string,
              apiVersion.split(separator: "/").first.map(String.init) == StreamKind.group else { return [] }
        let metadata = object["metadata"]
        let name = metadata?["name"]?.string ?? ""
        let namespace = metadata?["namespace"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? defaultNamespace
        let objectLine = document.mark(of: object)?.line ?? document.start.line
        guard let kind = StreamKind(group: StreamKind.group, kind: kindName) else {
            if let problem = OperatorKinds.problem(kindName) {
                result.unknownKinds += 1
                result.findings.append(Finding(file: file, line: objectLine, kind: kindName, name: name, namespace: namespace,
                                               detail: .unknownKind(problem)))
            }
            return []
        }
        let (patch, decision) = rules.judgeAsCreate(kind, object, namespace: namespace, cluster: cluster.map { .ready($0) })
        result.objects += 1
        if !decision.allowed { result.invalidObjects += 1 }
        func finding(_ line: Int, _ detail: Finding.Detail) -> Finding {
            Finding(file: file, line: line, kind: kind.rawValue, name: name, namespace: namespace, detail: detail)
        }
        for error in decision.errors {
            result.findings.append(finding(line(of: error.field, from: object, in: document), .fieldError(error)))
        }
        if decision.omittedErrorCount > 0 {
            result.findings.append(finding(objectLine, .moreErrors(decision.omittedErrorCount)))
        }
        for warning in decision.warnings {
            // A would-be denial knows its field; a rule's warning names it first
            // (`spec.kafkaConfig.security.protocol: ...`).
            let warningLine: Int
            if let field = warning.field {
                warningLine = line(of: field, from: object, in: document)
            } else if let named = warning.message.split(separator: ":").first {
                warningLine = line(of: String(named), from: object, in: document)
            } else {
                warningLine = objectLine
            }
            result.findings.append(finding(warningLine, .warning(warning)))
        }
        return patch
    }

    /// The line of the deepest node along `path` from `root` (a node of `document`) that
    /// the source has.
    func line(of path: FieldPath, from root: JSONValue, in document: YAMLDocument) -> Int {
        var node = root
        var line = document.mark(of: root)?.line ?? document.start.line
        for component in path.components {
            let next: JSONValue?
            switch component {
            case .field(let name), .key(let name): next = node[member: name]
            case .index(let i): next = node.isArray ? node.elements.dropFirst(i).first(where: { _ in true }) : nil
            }
            guard let next else { break }
            node = next
            line = document.mark(of: node)?.line ?? line
        }
        return line
    }

    /// The same for a field written as text (`spec.connectionRegistry[2]`).
    private func line(of dottedField: String, from root: JSONValue, in document: YAMLDocument) -> Int {
        var path: FieldPath?
        for part in dottedField.split(separator: ".") {
            var name = part
            var indices: [Int] = []
            while name.hasSuffix("]"), let open = name.lastIndex(of: "["),
                  let index = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) {
                indices.insert(index, at: 0)
                name = name[..<open]
            }
            path = path?.child(String(name)) ?? FieldPath(String(name))
            for index in indices { path = path?.index(index) }
        }
        return path.map { line(of: $0, from: root, in: document) } ?? document.mark(of: root)?.line ?? document.start.line
    }
}

extension YAMLError {
    /// The message without the position (reported separately).
    var reasonText: String {
        let full = description
        let prefix = "\(mark): "
        return full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : full
    }
}
