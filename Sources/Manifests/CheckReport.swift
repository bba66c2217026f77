import JSON
import YAML

/// The outcome of `check` over all its inputs, and its renderings.
public struct CheckReport: Sendable {
    public var results: [FileResult]
    /// Warnings fail the check too.
    public var strict: Bool
    /// Finding no AtlasStreamInstance or AtlasStreamConnection fails the check: a CI job
    /// fed the wrong input does not pass.
    public var requireObjects: Bool

    public init(results: [FileResult], strict: Bool, requireObjects: Bool = false) {
        self.results = results
        self.strict = strict
        self.requireObjects = requireObjects
    }

    private var objectCount: Int { results.map(\.objects).reduce(0, +) }
    private var missingObjects: Bool { requireObjects && objectCount == 0 }

    private var findings: [Finding] { results.flatMap(\.findings) }
    private var failures: [LoadFailure] { results.compactMap(\.failure) }

    /// 2: an input could not be read or parsed; 1: an object is invalid (or, with
    /// `strict`, has warnings); 0: all valid.
    public var exitCode: Int32 {
        if !failures.isEmpty { return 2 }
        if findings.contains(where: { $0.severity == .error || strict }) || missingObjects { return 1 }
        return 0
    }

    /// One line per problem, then a summary line.
    public func text() -> String {
        var lines = failures.map(\.text) + findings.map(\.text)
        let objects = objectCount
        let invalid = results.map(\.invalidObjects).reduce(0, +)
        let unknown = results.map(\.unknownKinds).reduce(0, +)
        let warnings = findings.filter { $0.severity == .warning }.count
        if missingObjects { lines.append("error: no AtlasStreamInstance or AtlasStreamConnection found (--require-objects)") }
        lines.append("checked \(objects) AtlasStream object\(objects == 1 ? "" : "s") in \(results.count) file\(results.count == 1 ? "" : "s"): "
                     + "\(invalid) invalid, \(warnings) warning\(warnings == 1 ? "" : "s")"
                     + (unknown == 0 ? "" : ", \(unknown) of an unknown kind")
                     + (failures.isEmpty ? "" : ", \(failures.count) unreadable"))
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON document: counts, findings and unreadable inputs.
    public func json() -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        w.beginObject()
        w.key("files"); w.int(results.count)
        w.key("objects"); w.int(results.map(\.objects).reduce(0, +))
        w.key("invalid"); w.int(results.map(\.invalidObjects).reduce(0, +))
        w.key("unknownKinds"); w.int(results.map(\.unknownKinds).reduce(0, +))
        w.key("findings")
        w.beginArray()
        for finding in findings {
            w.beginObject()
            w.key("file"); w.string(finding.file)
            w.key("line"); w.int(finding.line)
            w.key("kind"); w.string(finding.kind)
            w.key("name"); w.string(finding.name)
            w.key("namespace"); w.string(finding.namespace)
            w.key("severity"); w.string(finding.severity.rawValue)
            if let rule = finding.rule { w.key("rule"); w.string(rule.rawValue) }
            if case .fieldError(let error) = finding.detail {
                w.key("field"); w.string(error.field.description)
                w.key("reason"); w.string(error.reason.rawValue)
            }
            w.key("message"); w.string(finding.message)
            w.endObject()
        }
        w.endArray()
        w.key("errors")
        w.beginArray()
        for failure in failures {
            w.beginObject()
            w.key("file"); w.string(failure.file)
            w.key("line"); w.int(failure.line)
            w.key("column"); w.int(failure.column)
            w.key("message"); w.string(failure.message)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.bytes.append(0x0A)
        return w.bytes
    }

    /// Every document of every readable input, owned kinds defaulted, as one YAML stream.
    public func defaultedYAML() -> [UInt8] {
        YAMLEmitter.emit(results.flatMap(\.defaulted))
    }
}
