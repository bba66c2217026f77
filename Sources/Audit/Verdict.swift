import JSON
import Manifests
import StreamRules

/// An AtlasStreamConnection or AtlasStreamInstance the audit judges.
public struct AuditedObject: Sendable, Hashable, Comparable {
    public var kind: StreamKind
    public var namespace: String
    public var name: String

    public init(kind: StreamKind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    /// `namespace/Kind/name`.
    public var shown: String { "\(namespace)/\(kind.rawValue)/\(name)" }

    public static func < (a: AuditedObject, b: AuditedObject) -> Bool {
        (a.namespace, a.kind.rawValue, a.name) < (b.namespace, b.kind.rawValue, b.name)
    }
}

/// A result in PolicyReport terms.
public enum AuditResult: String, Sendable, CaseIterable {
    /// The object has no finding.
    case pass
    /// `/validate` would deny it.
    case fail
    /// `/validate` would admit it with this warning (a would-be denial under `warn`
    /// enforcement included).
    case warn
    /// The object could not be judged: the cache does not keep it (too large).
    case skip
}

/// One finding of one object: its rule, result, field and message as `/validate` words it.
public struct AuditFinding: Sendable, Equatable {
    public var rule: RuleID
    public var result: AuditResult
    /// The field a denial names (empty for a warning, whose message names it).
    public var field: String
    /// A denial: `field: body`, as kubectl shows each cause; a warning: its text.
    public var message: String
    /// A denial that the rule's enforcement (`warn`) turned into a warning.
    public var wouldDeny: Bool
}

/// What the audit found of one object.
public struct ObjectVerdict: Sendable, Equatable {
    public var uid: String
    /// In the order of `/validate`'s answer: denials, then warnings. Empty: it passes.
    public var findings: [AuditFinding]
    /// Denials past the answer's cap of 100 (`and N more`).
    public var omittedErrors: Int
    /// Why the object was not judged; nil when it was.
    public var notJudged: NotKeptReason?

    /// An object not judged, and why.
    public init(notJudged reason: NotKeptReason) {
        uid = ""
        findings = []
        omittedErrors = 0
        notJudged = reason
    }

    public init(uid: String, decision: Decision) {
        self.uid = uid
        notJudged = nil
        var findings = decision.errors.map {
            AuditFinding(rule: $0.rule, result: .fail, field: $0.field.description, message: $0.description, wouldDeny: false)
        }
        if let refusal = decision.refusal {
            findings.append(AuditFinding(rule: refusal.rule, result: .fail, field: "", message: refusal.message, wouldDeny: false))
        }
        for warning in decision.warnings {
            findings.append(AuditFinding(rule: warning.rule, result: .warn, field: warning.field?.description ?? "",
                                         message: warning.message, wouldDeny: warning.wouldDeny))
        }
        self.findings = findings
        omittedErrors = decision.omittedErrorCount
    }

    public var fails: Bool { findings.contains { $0.result == .fail } }

    /// The object's result when it has no finding: `pass`, or `skip` when not judged.
    public var resultWithoutFindings: AuditResult { notJudged == nil ? .pass : .skip }
}

/// The audit's judge: the webhook's rules, applied to an object the cluster holds as to
/// a CREATE of it, references against a snapshot of the cluster.
public struct AuditJudge: Sendable {
    public let rules: StreamRules

    public init(rules: StreamRules) {
        self.rules = rules
    }

    /// The verdict on `stored` (as the cache holds it) and what it references; nil for an
    /// object being deleted, which is leaving and no longer judged. An object the cache
    /// does not keep gets a verdict that says so.
    public func judge(_ kind: StreamKind, _ stored: StoredObject, namespace: String,
                      snapshot: ClusterSnapshot) -> (verdict: ObjectVerdict, references: [ReferencedObject])? {
        let object: JSONValue
        switch stored {
        case .kept(let kept): object = kept
        case .notKept(let reason): return (ObjectVerdict(notJudged: reason), [])
        }
        let metadata = object["metadata"]
        if let deletion = metadata?["deletionTimestamp"], !deletion.isNull { return nil }
        let (_, decision) = rules.judgeAsCreate(kind, object, namespace: namespace, cluster: .ready(snapshot))
        let references = kind.referencedObjects(spec: object["spec"], namespace: namespace)
        return (ObjectVerdict(uid: metadata?["uid"]?.string ?? "", decision: decision), references)
    }
}
