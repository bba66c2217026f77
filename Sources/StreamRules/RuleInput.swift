import JSON

/// The operation an admission request is for.
public enum AdmissionOperation: String, Sendable, CaseIterable {
    case create = "CREATE"
    case update = "UPDATE"
    case delete = "DELETE"
    case connect = "CONNECT"

    /// By comparison, not the synthesized `init(rawValue:)`, which builds a table of the
    /// cases on every call (an allocation per review).
    public init?(_ text: String) {
        if text == "CREATE" { self = .create } else if text == "UPDATE" { self = .update }
        else if text == "DELETE" { self = .delete } else if text == "CONNECT" { self = .connect } else { return nil }
    }
}

/// The two custom resources of group `atlas.mongodb.com` this project owns.
public enum StreamKind: String, Sendable, CaseIterable {
    case instance = "AtlasStreamInstance"
    case connection = "AtlasStreamConnection"

    public static let group = "atlas.mongodb.com"

    public init?(group: String, kind: String) {
        // By comparison, not `init(rawValue:)`, which builds a table of the cases per call.
        guard group == StreamKind.group else { return nil }
        if kind == "AtlasStreamConnection" {
            self = .connection
        } else if kind == "AtlasStreamInstance" {
            self = .instance
        } else {
            return nil
        }
    }
}

/// How long a review may compute: past the deadline the caller can no longer use the
/// answer (the apiserver has given up), so the rules stop where stopping is cheap.
/// The clock is the caller's (a C function pointer: nothing captured, nothing
/// allocated), so the rules themselves read no clock.
public struct ReviewBudget: Sendable {
    public var deadline: Int
    public var clock: @convention(c) () -> Int

    public init(deadline: Int, clock: @convention(c) () -> Int) {
        self.deadline = deadline
        self.clock = clock
    }

    public static let unlimited = ReviewBudget(deadline: .max, clock: { 0 })

    public var isExhausted: Bool { deadline != .max && clock() > deadline }
}

/// Everything a rule may look at: no I/O, no HTTP, no clock of its own.
public struct RuleInput: Sendable {
    public var kind: StreamKind
    public var operation: AdmissionOperation
    /// The object as it would be stored (`request.object`).
    public var object: JSONValue?
    /// The stored object before an UPDATE (`request.oldObject`).
    public var oldObject: JSONValue?
    /// `request.namespace`, used when the object carries none.
    public var requestNamespace: String
    /// `request.name` (DELETE names its object here).
    public var requestName: String
    public var budget: ReviewBudget
    /// The cluster as the cache sees it; nil without cluster lookups (the reference
    /// rules then say nothing).
    public var cluster: ClusterView?

    public init(kind: StreamKind, operation: AdmissionOperation, object: JSONValue?, oldObject: JSONValue?,
                requestNamespace: String, requestName: String = "", budget: ReviewBudget = .unlimited,
                cluster: ClusterView? = nil) {
        self.kind = kind
        self.operation = operation
        self.object = object
        self.oldObject = oldObject
        self.requestNamespace = requestNamespace
        self.requestName = requestName
        self.budget = budget
        self.cluster = cluster
    }
}
