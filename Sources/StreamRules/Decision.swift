import JSON

/// What the rules decided about one object.
public struct Decision: Sendable {
    /// The problems found, the first 100 of them in the order found; empty means allowed.
    public var errors: [FieldError]
    /// How many more problems were found than `errors` holds (`and N more`).
    public var omittedErrorCount: Int
    /// Defaulting as JSON Patch operations (only from `mutate`).
    public var patch: [PatchOperation]
    public var warnings: [String]
    /// The review's budget ran out before the rules were done: nothing here is an answer.
    public var outOfTime: Bool
    /// A refusal that is not about fields.
    public var refusal: Refusal?
    /// What the reference rules found, warned of or denied.
    public var referenceFindings: [ReferenceFinding]

    public init(errors: [FieldError] = [], omittedErrorCount: Int = 0, patch: [PatchOperation] = [],
                warnings: [String] = [], outOfTime: Bool = false, refusal: Refusal? = nil,
                referenceFindings: [ReferenceFinding] = []) {
        self.errors = errors
        self.omittedErrorCount = omittedErrorCount
        self.patch = patch
        self.warnings = warnings
        self.outOfTime = outOfTime
        self.refusal = refusal
        self.referenceFindings = referenceFindings
    }

    public var allowed: Bool { errors.isEmpty && refusal == nil }

    public static let allow = Decision()
}

/// A refusal that is not about one field.
public enum Refusal: Sendable, Equatable {
    /// 403 Forbidden: the message after `<Kind>.<group> "<name>" is forbidden: `.
    case forbidden(String)
    /// 503 Service Unavailable: the server cannot judge now (the cluster cache is not
    /// ready) and is configured to fail closed.
    case unavailable(String)
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
            writer.beginObject()
            for (key, member) in members {
                writer.key(key)
                member.write(to: &writer)
            }
            writer.endObject()
        }
    }
}
