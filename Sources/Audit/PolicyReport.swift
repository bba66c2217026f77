import JSON
import StreamRules

/// One namespace's `wgpolicyk8s.io/v1alpha2` `PolicyReport`, as Kyverno, Kubewarden,
/// Trivy and Policy Reporter read them: a result per object and rule (`pass` for an
/// object with no finding and `skip` for one not judged, both under rule `all`), and the
/// summary counts. Kept below
/// `maxResultBytes`: past it, `pass` results are left out first, then the rest, and an
/// annotation says how many; the summary always counts them all.
public struct PolicyReport: Sendable {
    public static let apiPrefix = "/apis/wgpolicyk8s.io/v1alpha2"
    public static let plural = "policyreports"
    public static let name = "atlas-stream-webhook"
    public static let policy = "atlas-stream-webhook"
    /// The rule a `pass` result names: the object passed every rule.
    public static let passRule = "all"
    public static let managedByLabel = "app.kubernetes.io/managed-by"
    public static let managedBy = "atlas-stream-webhook"
    /// A digest of the results and summary: a report whose digest matches is not written again.
    public static let contentAnnotation = "atlas-stream-webhook/content-hash"
    public static let omittedAnnotation = "atlas-stream-webhook/omitted-results"
    /// etcd keeps objects up to 1.5 MiB; a report stays well below.
    public static let maxResultBytes = 900 * 1024

    public let namespace: String
    /// The `results` array and the `summary` object, as JSON text.
    let results: [UInt8]
    let summaryJSON: [UInt8]
    public let contentHash: String
    public let omittedResults: Int
    public private(set) var summary: [AuditResult: Int] = [:]

    /// The report of `objects` (sorted), each with its entry in `state`.
    public init(namespace: String, objects: [AuditedObject], state: AuditState) {
        self.namespace = namespace
        var passes: [(AuditedObject, AuditState.Entry)] = []
        var skips: [(AuditedObject, AuditState.Entry, NotKeptReason)] = []
        var findings: [(AuditedObject, AuditState.Entry)] = []
        for object in objects {
            guard let entry = state.entries[object] else { continue }
            if let reason = entry.verdict.notJudged {
                skips.append((object, entry, reason))
            } else if entry.verdict.findings.isEmpty {
                passes.append((object, entry))
            } else {
                findings.append((object, entry))
            }
        }
        var results = JSONWriter(capacity: 4096)
        results.beginArray()
        var omitted = 0
        var counts: [AuditResult: Int] = [:]
        func add(_ object: AuditedObject, _ entry: AuditState.Entry, _ rule: String, _ result: AuditResult,
                 _ message: String, _ properties: [(String, String)]) {
            counts[result, default: 0] += 1
            // Once full, the rest are only counted: a namespace of any size costs one
            // report's worth of encoding.
            guard omitted == 0 else { return omitted += 1 }
            var item = JSONWriter(capacity: 512)
            Self.writeResult(&item, object, entry, rule, result, message, properties)
            guard results.bytes.count + item.bytes.count < Self.maxResultBytes else { return omitted += 1 }
            results.raw(item.bytes)
        }
        for (object, entry) in findings {
            for finding in entry.verdict.findings {
                var properties: [(String, String)] = []
                if !finding.field.isEmpty { properties.append(("field", finding.field)) }
                if finding.wouldDeny { properties.append(("wouldDeny", "true")) }
                add(object, entry, finding.rule.rawValue, finding.result, finding.message, properties)
            }
            if entry.verdict.omittedErrors > 0 {
                add(object, entry, entry.verdict.findings.last?.rule.rawValue ?? Self.passRule, .fail,
                    "and \(entry.verdict.omittedErrors) more errors", [])
            }
        }
        for (object, entry, reason) in skips {
            add(object, entry, Self.passRule, .skip, reason.description, [])
        }
        for (object, entry) in passes {
            add(object, entry, Self.passRule, .pass, "passed every rule", [])
        }
        results.endArray()
        var summary = JSONWriter(capacity: 80)
        summary.beginObject()
        for result in ["pass", "fail", "warn", "error", "skip"] {
            summary.key(result)
            summary.int(AuditResult(rawValue: result).map { counts[$0] ?? 0 } ?? 0)
        }
        summary.endObject()
        self.results = results.bytes
        summaryJSON = summary.bytes
        omittedResults = omitted
        self.summary = counts
        contentHash = Self.digest(results.bytes + summary.bytes)
    }

    private static func writeResult(_ w: inout JSONWriter, _ object: AuditedObject, _ entry: AuditState.Entry, _ rule: String,
                                    _ result: AuditResult, _ message: String, _ properties: [(String, String)]) {
        w.beginObject()
        w.key("policy"); w.string(policy)
        w.key("rule"); w.string(rule)
        w.key("result"); w.string(result.rawValue)
        w.key("message"); w.string(message)
        w.key("source"); w.string(policy)
        w.key("scored"); w.bool(true)
        w.key("category"); w.string(object.kind.rawValue)
        w.key("resources")
        w.beginArray()
        w.beginObject()
        w.key("apiVersion"); w.string(StreamKind.group + "/v1")
        w.key("kind"); w.string(object.kind.rawValue)
        w.key("namespace"); w.string(object.namespace)
        w.key("name"); w.string(object.name)
        if !entry.verdict.uid.isEmpty { w.key("uid"); w.string(entry.verdict.uid) }
        w.endObject()
        w.endArray()
        if !properties.isEmpty {
            w.key("properties")
            w.beginObject()
            for (key, value) in properties { w.key(key); w.string(value) }
            w.endObject()
        }
        w.key("timestamp")
        w.beginObject()
        w.key("seconds"); w.int(entry.since)
        w.key("nanos"); w.int(0)
        w.endObject()
        w.endObject()
    }

    /// The whole object, to create it, or with `resourceVersion` to replace it.
    public func body(resourceVersion: String?) -> [UInt8] {
        var w = JSONWriter(capacity: results.count + 512)
        w.beginObject()
        w.key("apiVersion"); w.string("wgpolicyk8s.io/v1alpha2")
        w.key("kind"); w.string("PolicyReport")
        w.key("metadata")
        w.beginObject()
        w.key("name"); w.string(Self.name)
        w.key("namespace"); w.string(namespace)
        if let resourceVersion { w.key("resourceVersion"); w.string(resourceVersion) }
        w.key("labels")
        w.beginObject()
        w.key(Self.managedByLabel); w.string(Self.managedBy)
        w.endObject()
        w.key("annotations")
        w.beginObject()
        w.key(Self.contentAnnotation); w.string(contentHash)
        if omittedResults > 0 { w.key(Self.omittedAnnotation); w.string(String(omittedResults)) }
        w.endObject()
        w.endObject()
        w.key("results"); w.raw(results)
        w.key("summary"); w.raw(summaryJSON)
        w.endObject()
        return w.bytes
    }

    /// FNV-1a, 64 bits, in hex: enough to tell a changed report from an unchanged one.
    static func digest(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
