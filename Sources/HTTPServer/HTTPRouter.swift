/// Routes requests by exact path and method. Unknown paths get 404, a known path
/// with another method gets 405 with `Allow`. Error bodies come from `errorResponse`,
/// so the layer above chooses their format.
public struct HTTPRouter: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse
    public typealias ErrorResponder = @Sendable (HTTPStatus, String) -> HTTPResponse

    private var routes: [String: [(method: String, handler: Handler)]] = [:]
    public let errorResponse: ErrorResponder
    /// Milliseconds a request's own head asks the server to wait for its body at most
    /// (kube-apiserver sends `?timeout=`); nil: the configured body timeout.
    public var requestTimeout: (@Sendable (HTTPRequest) -> Int?)?

    public init(errorResponse: @escaping ErrorResponder) {
        self.errorResponse = errorResponse
    }

    public mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        routes[path, default: []].append((method, handler))
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        guard let candidates = routes[request.path] else {
            return errorResponse(.notFound, "no handler for path \(request.path)")
        }
        for candidate in candidates where candidate.method == request.method {
            return candidate.handler(request)
        }
        let allowed = candidates.map(\.method).joined(separator: ", ")
        var response = errorResponse(.methodNotAllowed, "method \(request.method) not allowed on \(request.path); allowed: \(allowed)")
        response.headers.append(HTTPHeader(name: "Allow", value: allowed))
        return response
    }

    /// The response for bytes the parser refused; the connection closes after it.
    public func respond(to error: HTTPParseError) -> HTTPResponse {
        var response = errorResponse(error.status, error.message)
        response.close = true
        return response
    }
}
