import JSON
import YAML

/// The outcome of `check` over all its inputs, and its renderings.
public struct CheckReport: Sendable {
    public var results: [FileResult]
    /// Warnings fail the check too.
    public var strict: Bool

    public init(results: [FileResult], strict: Bool) {
        self.results = results
        self.strict = strict
    }

    private var findings: [Finding] { results.flatMap(\.findings) }
    private var failures: [LoadFailure] { results.compactMap(\.failure) }

    /// 2: an input could not be read or parsed; 1: an object is invalid (or, with
    /// `strict`, has warnings); 0: all valid.
    public var exitCode: Int32 {
        if !failures.isEmpty { return 2 }
        if findings.contains(where: { $0.severity == .error || strict }) { return 1 }
        return 0
    }

    /// One line per problem, then a summary line.
    public func text() -> String {
        var lines = failures.map(\.text) + findings.map(\.text)
        let objects = results.map(\.objects).reduce(0, +)
        let invalid = results.map(\.invalidObjects).reduce(0, +)
        let warnings = findings.filter { $0.severity == .warning }.count
        lines.append("checked \(objects) object\(objects == 1 ? "" : "s") in \(results.count) file\(results.count == 1 ? "" : "s"): "
                     + "\(invalid) invalid, \(warnings) warning\(warnings == 1 ? "" : "s")"
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
            if let error = finding.error {
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
