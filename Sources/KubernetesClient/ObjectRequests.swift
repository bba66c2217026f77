import JSON

extension KubernetesAPIClient {
    /// Most bytes of an answer about one object (etcd keeps objects of at most 1.5 MiB).
    public static let maxObjectAnswerBytes = 3 * 1024 * 1024
    /// A request for one object must be answered whole within this.
    public static let objectRequestMilliseconds = 10_000

    /// One request about one object (GET, POST to its collection, PUT, PATCH, DELETE),
    /// `body` sent as `contentType`. Returns the answer's object, or nil for a 2xx answer
    /// without a body. A non-2xx answer throws its status: 404 NotFound, 409 Conflict or
    /// AlreadyExists, and so on.
    public func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil,
                     contentType: String = "application/json") throws(KubernetesAPIError) -> JSONValue? {
        let call = APICall.object(method: method, path: path)
        var answer: [UInt8] = []
        try perform(method, path, accept: "application/json", body: body, contentType: contentType,
                    timing: .deadline(milliseconds: Self.objectRequestMilliseconds),
                    onConnection: { _ in }) { chunk throws(KubernetesAPIError) in
            guard answer.count + chunk.count <= Self.maxObjectAnswerBytes else {
                throw .tooLarge(call, .answer(limit: Self.maxObjectAnswerBytes))
            }
            answer += chunk
        }
        guard !answer.isEmpty else { return nil }
        let root: JSONValue
        do {
            root = try JSONReader.parse(answer).root
        } catch {
            throw .malformed(call, .invalidJSON(error))
        }
        guard root.isObject else { throw .malformed(call, .notAnObject) }
        return root
    }
}

/// Where a namespaced object of a resource lives in the API.
public struct ObjectLocation: Sendable, Equatable {
    /// `/api/v1` or `/apis/<group>/<version>`.
    public var apiPrefix: String
    public var plural: String
    public var namespace: String

    public init(apiPrefix: String, plural: String, namespace: String) {
        self.apiPrefix = apiPrefix
        self.plural = plural
        self.namespace = namespace
    }

    /// The collection, to POST new objects to.
    public var collection: String { "\(apiPrefix)/namespaces/\(percentEncoded(namespace))/\(plural)" }

    /// One object of the collection.
    public func object(_ name: String) -> String { collection + "/" + percentEncoded(name) }
}
