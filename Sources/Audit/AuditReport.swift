import JSON
import StreamRules

/// What a one-shot audit of the cluster found (the `audit` command), and its renderings.
public struct AuditReport: Sendable {
    /// Every object judged, sorted by namespace, kind and name.
    public var objects: [(object: AuditedObject, verdict: ObjectVerdict)]
    /// Warnings fail the audit too.
    public var strict: Bool

    /// Judges every object `snapshot` holds (those of `namespace` only, when given).
    public init(snapshot: ClusterSnapshot, judge: AuditJudge, namespace: String?, strict: Bool) {
        var objects: [(object: AuditedObject, verdict: ObjectVerdict)] = []
        for kind in StreamKind.allCases {
            for (objectNamespace, byName) in snapshot.objects(of: kind) where namespace == nil || namespace == objectNamespace {
                for (name, object) in byName {
                    guard let judged = judge.judge(kind, object, namespace: objectNamespace, snapshot: snapshot) else { continue }
                    objects.append((AuditedObject(kind: kind, namespace: objectNamespace, name: name), judged.verdict))
                }
            }
        }
        objects.sort { $0.object < $1.object }
        self.objects = objects
        self.strict = strict
    }

    private var failing: Int { objects.filter { $0.verdict.fails }.count }
    private var warned: Int { objects.filter { $0.verdict.findings.contains { $0.result == .warn } }.count }
    private var skipped: Int { objects.filter { $0.verdict.notJudged != nil }.count }

    /// 1: an object would be denied (or, with `strict`, has warnings or could not be
    /// judged); 0: none.
    public var exitCode: Int32 {
        failing > 0 || (strict && (warned > 0 || skipped > 0)) ? 1 : 0
    }

    /// One line per finding, `namespace/Kind/name: field: message` (warnings as
    /// `namespace/Kind/name: warning: message`), then a summary line.
    public func text() -> String {
        var lines: [String] = []
        for (object, verdict) in objects {
            for finding in verdict.findings {
                lines.append("\(object.shown): " + (finding.result == .warn ? "warning: " : "") + finding.message)
            }
            if verdict.omittedErrors > 0 { lines.append("\(object.shown): and \(verdict.omittedErrors) more errors") }
            if let reason = verdict.notJudged { lines.append("\(object.shown): \(reason)") }
        }
        lines.append("audited \(objects.count) AtlasStream object\(objects.count == 1 ? "" : "s"): "
                     + "\(failing) would be denied, \(warned) with warnings"
                     + (skipped == 0 ? "" : ", \(skipped) not judged"))
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON document: counts and findings, with the same fields as the text.
    public func json() -> [UInt8] {
        var w = JSONWriter(capacity: 1024)
        w.beginObject()
        w.key("objects"); w.int(objects.count)
        w.key("denied"); w.int(failing)
        w.key("warned"); w.int(warned)
        w.key("notJudged"); w.int(skipped)
        w.key("findings")
        w.beginArray()
        func subject(_ object: AuditedObject) {
            w.key("namespace"); w.string(object.namespace)
            w.key("kind"); w.string(object.kind.rawValue)
            w.key("name"); w.string(object.name)
        }
        for (object, verdict) in objects {
            for finding in verdict.findings {
                w.beginObject()
                subject(object)
                w.key("rule"); w.string(finding.rule.rawValue)
                w.key("result"); w.string(finding.result.rawValue)
                if !finding.field.isEmpty { w.key("field"); w.string(finding.field) }
                w.key("message"); w.string(finding.message)
                w.endObject()
            }
            if let reason = verdict.notJudged {
                w.beginObject()
                subject(object)
                w.key("result"); w.string(AuditResult.skip.rawValue)
                w.key("message"); w.string(reason.description)
                w.endObject()
            }
        }
        w.endArray()
        w.endObject()
        w.bytes.append(0x0A)
        return w.bytes
    }
}
