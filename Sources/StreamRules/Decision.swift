import JSON

/// What the rules decided about one object.
public struct Decision: Sendable {
    /// The problems found, the first 100 of them in the order found; empty means allowed.
    public var errors: [FieldError]
    /// How many more problems were found than `errors` holds (`and N more`).
    public var omittedErrorCount: Int
    /// Defaulting as JSON Patch operations (only from `mutate`).
    public var patch: [PatchOperation]
    public var warnings: [RuleWarning]
    /// The review's budget ran out before the rules were done: nothing here is an answer.
    public var outOfTime: Bool
    /// A refusal that is not about fields.
    public var refusal: Refusal?

    public init(errors: [FieldError] = [], omittedErrorCount: Int = 0, patch: [PatchOperation] = [],
                warnings: [RuleWarning] = [], outOfTime: Bool = false, refusal: Refusal? = nil) {
        self.errors = errors
        self.omittedErrorCount = omittedErrorCount
        self.patch = patch
        self.warnings = warnings
        self.outOfTime = outOfTime
        self.refusal = refusal
    }

    public var allowed: Bool { errors.isEmpty && refusal == nil }

    /// Every finding kept, in the order of the answer (errors, the refusal, warnings):
    /// its rule, what it cost, and for a denial or would-be denial the field it names.
    public var findings: [RuleFinding] {
        guard !errors.isEmpty || refusal != nil || !warnings.isEmpty else { return [] }
        var out = errors.map { RuleFinding(rule: $0.rule, outcome: .denied, field: $0.field.description) }
        if let refusal { out.append(RuleFinding(rule: refusal.rule, outcome: .denied, field: refusal.rule.rule.field)) }
        for warning in warnings {
            out.append(warning.wouldDeny
                       ? RuleFinding(rule: warning.rule, outcome: .wouldDeny, field: warning.field?.description ?? warning.rule.rule.field)
                       : RuleFinding(rule: warning.rule, outcome: .warned, field: ""))
        }
        return out
    }

    public static let allow = Decision()
}

/// One finding of a decision: its rule, what it cost, and the field it names (for a
/// denial or a would-be denial; empty for a warning, whose text names its field).
public struct RuleFinding: Sendable, Equatable {
    public enum Outcome: String, Sendable, CaseIterable {
        case denied = "deny"
        case warned = "warn"
        /// A denial that enforcement `warn` turned into a warning.
        case wouldDeny = "would_deny"
    }

    public var rule: RuleID
    public var outcome: Outcome
    public var field: String

    public init(rule: RuleID, outcome: Outcome, field: String) {
        self.rule = rule
        self.outcome = outcome
        self.field = field
    }
}

/// A warning an admitted request carries, and the rule that gave it.
public struct RuleWarning: Sendable, Equatable {
    public var rule: RuleID
    /// The text kubectl shows after `Warning: `.
    public var message: String
    /// A denial that the rule's enforcement (`warn`) turned into a warning.
    public var wouldDeny: Bool
    /// The field of the error it stands for, when it is a would-be denial of a field.
    public var field: FieldPath?

    public init(_ rule: RuleID, _ message: String, wouldDeny: Bool = false, field: FieldPath? = nil) {
        self.rule = rule
        self.message = message
        self.wouldDeny = wouldDeny
        self.field = field
    }
}

/// A refusal that is not about one field.
public enum Refusal: Sendable, Equatable {
    /// 403 Forbidden: the message after `<Kind>.<group> "<name>" is forbidden: `. Given
    /// only to the DELETE of a connection an instance still lists.
    case forbidden(String)
    /// 503 Service Unavailable: the server cannot judge now (the cluster cache is not
    /// ready) and is configured to fail closed.
    case unavailable(String)

    public var rule: RuleID {
        switch self {
        case .forbidden: .connectionNotInRegistry
        case .unavailable: .clusterCacheReady
        }
    }

    public var message: String {
        switch self {
        case .forbidden(let message), .unavailable(let message): message
        }
    }
}

/// An RFC 6902 `add` of a value at a JSON Pointer. Defaulting only ever adds.
public struct PatchOperation: Sendable, Equatable {
    /// Reference tokens, unescaped: `["spec", "clusterConfig", "provider"]`.
    public var path: [String]
    public var value: PatchValue

    public init(path: [String], value: PatchValue) {
        self.path = path
        self.value = value
    }
}

/// The values defaulting adds: strings, and objects to create missing parents.
public indirect enum PatchValue: Sendable, Equatable {
    case string(String)
    case object([(String, PatchValue)])

    public static func == (a: PatchValue, b: PatchValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

extension PatchValue {
    /// Writes the value as JSON.
    public func write(to writer: inout JSONWriter) {
        switch self {
        case .string(let text):
            writer.string(text)
        case .object(let members):
            writer.object(members) { member, writer in member.write(to: &writer) }
        }
    }
}
