/// One header field; `name` is lowercased, `value` has its surrounding whitespace removed.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A complete HTTP/1.1 request as the parser hands it over.
public struct HTTPRequest: Sendable, Equatable {
    /// The method exactly as sent (methods are case-sensitive).
    public var method: String
    /// The request target up to `?`, undecoded.
    public var path: String
    /// What follows `?` in the request target, if anything.
    public var query: String?
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// Whether the connection stays open after the response (HTTP/1.1 default,
    /// `Connection: close`, HTTP/1.0 `keep-alive`).
    public var keepAlive: Bool
    /// The event loop handling it (for `LoopMonitor.note`).
    public var loop = 0

    public init(method: String, path: String, query: String? = nil, minorVersion: Int = 1,
                headers: [HTTPHeader] = [], body: [UInt8] = [], keepAlive: Bool = true) {
        self.method = method
        self.path = path
        self.query = query
        self.minorVersion = minorVersion
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The first value of header `name` (give it lowercased).
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// The value of query parameter `name`, undecoded, if present.
    public func queryParameter(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(String.init) == name { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }
}

/// Size limits the parser enforces (SPEC section 8).
public struct HTTPLimits: Sendable, Equatable {
    /// Bytes of request line plus header fields (and, separately, of trailers).
    public var maxHeaderBytes: Int
    public var maxHeaderFields: Int
    public var maxBodyBytes: Int

    public init(maxHeaderBytes: Int = 64 * 1024, maxHeaderFields: Int = 100, maxBodyBytes: Int = 7 * 1024 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderFields = maxHeaderFields
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Why a request cannot be served; each maps to a status code and closes the connection.
public enum HTTPParseError: Error, Sendable, Equatable {
    /// Malformed request line, header, chunked framing or Content-Length (400).
    case badRequest(String)
    /// Header section over the byte or field limit (431).
    case headersTooLarge
    /// Declared or accumulated body over the limit (413).
    case bodyTooLarge

    public var status: HTTPStatus {
        switch self {
        case .badRequest: return .badRequest
        case .headersTooLarge: return .requestHeaderFieldsTooLarge
        case .bodyTooLarge: return .payloadTooLarge
        }
    }

    public var message: String {
        switch self {
        case .badRequest(let why): return why
        case .headersTooLarge: return "request header section too large"
        case .bodyTooLarge: return "request body too large"
        }
    }
}
