import JSON
import StreamRules
import SystemSupport
import YAML

/// One problem found in a manifest.
public struct Finding: Sendable, Equatable {
    public enum Severity: String, Sendable { case error, warning }

    public var file: String
    public var line: Int
    public var kind: String
    public var name: String
    public var namespace: String
    public var severity: Severity
    /// The field error (nil for a warning).
    public var error: FieldError?
    /// The warning (nil for an error).
    public var warning: RuleWarning?
    /// For the last finding of an object with more errors than an answer lists (100):
    /// how many more there are.
    public var moreErrors = 0

    /// `FILE:LINE: Kind/name: field: body`, `FILE:LINE: Kind/name: warning: text`, or
    /// `FILE:LINE: Kind/name: and N more errors`.
    public var text: String {
        let subject = "\(file):\(line): \(kind)/\(name): "
        if let error { return subject + error.description }
        if moreErrors > 0 { return subject + message }
        return subject + "warning: " + (warning?.message ?? "")
    }

    /// The rule that found it (nil for the `and N more errors` line).
    public var rule: RuleID? { error?.rule ?? warning?.rule }

    /// The error body, the warning, or `and N more errors`.
    public var message: String {
        if let error { return error.body }
        if moreErrors > 0 { return "and \(moreErrors) more errors" }
        return warning?.message ?? ""
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
            for document in documents { builder.add(document.value) }
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

    /// Checks one document if it is of an owned kind; returns it defaulted.
    private func check(_ document: YAMLDocument, file: String, into result: inout FileResult) -> JSONValue {
        let object = document.value
        guard object.isObject, let apiVersion = object["apiVersion"]?.string, let kindName = object["kind"]?.string,
              apiVersion.split(separator: "/").first.map(String.init) == StreamKind.group,
              let kind = StreamKind(group: StreamKind.group, kind: kindName) else { return object }
        let metadata = object["metadata"]
        let name = metadata?["name"]?.string ?? ""
        let namespace = metadata?["namespace"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? defaultNamespace
        let mutation = rules.mutate(RuleInput(kind: kind, operation: .create, object: object, oldObject: nil,
                                              requestNamespace: namespace))
        let defaulted = PatchApplication.apply(mutation.patch, to: object)
        let decision = rules.validate(RuleInput(kind: kind, operation: .create, object: defaulted, oldObject: nil,
                                                requestNamespace: namespace, cluster: cluster.map { .ready($0) }))
        result.objects += 1
        if !decision.allowed { result.invalidObjects += 1 }
        let base = Finding(file: file, line: document.start.line, kind: kind.rawValue, name: name, namespace: namespace,
                           severity: .error, error: nil, warning: nil)
        for error in decision.errors {
            var finding = base
            finding.line = line(of: error.field, in: document)
            finding.error = error
            result.findings.append(finding)
        }
        if decision.omittedErrorCount > 0 {
            var finding = base
            finding.moreErrors = decision.omittedErrorCount
            result.findings.append(finding)
        }
        for warning in decision.warnings {
            var finding = base
            finding.severity = .warning
            finding.warning = warning
            if let field = warning.message.split(separator: ":").first {
                finding.line = line(of: String(field), in: document)
            }
            result.findings.append(finding)
        }
        return defaulted
    }

    /// The line of the deepest node along `path` that the source has.
    func line(of path: FieldPath, in document: YAMLDocument) -> Int {
        var node = document.value
        var line = document.start.line
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

    /// A warning names its field first (`spec.kafkaConfig.security.protocol: ...`,
    /// `spec.connectionRegistry[2]: ...`).
    private func line(of dottedField: String, in document: YAMLDocument) -> Int {
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
        return path.map { line(of: $0, in: document) } ?? document.start.line
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
