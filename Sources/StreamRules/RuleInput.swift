import JSON

/// The operation an admission request is for.
public enum AdmissionOperation: String, Sendable, CaseIterable {
    case create = "CREATE"
    case update = "UPDATE"
    case delete = "DELETE"
    case connect = "CONNECT"
}

/// The two custom resources of group `atlas.mongodb.com` this project owns.
public enum StreamKind: String, Sendable, CaseIterable {
    case instance = "AtlasStreamInstance"
    case connection = "AtlasStreamConnection"

    public static let group = "atlas.mongodb.com"

    public init?(group: String, kind: String) {
        guard group == StreamKind.group, let known = StreamKind(rawValue: kind) else { return nil }
        self = known
    }
}

/// Everything a rule may look at: no I/O, no HTTP, no clock.
public struct RuleInput: Sendable {
    public var kind: StreamKind
    public var operation: AdmissionOperation
    /// The object as it would be stored (`request.object`).
    public var object: JSONValue?
    /// The stored object before an UPDATE (`request.oldObject`).
    public var oldObject: JSONValue?
    /// `request.namespace`, used when the object carries none.
    public var requestNamespace: String

    public init(kind: StreamKind, operation: AdmissionOperation, object: JSONValue?, oldObject: JSONValue?,
                requestNamespace: String) {
        self.kind = kind
        self.operation = operation
        self.object = object
        self.oldObject = oldObject
        self.requestNamespace = requestNamespace
    }
}
