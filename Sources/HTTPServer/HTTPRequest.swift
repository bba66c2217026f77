/// One header field; `name` is lowercased, `value` has its surrounding whitespace removed.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A request's header fields in the order received, kept as bytes: each field's name
/// (lowercased by the parser) and value back to back in one array, behind their two
/// lengths. Strings are made only for the fields a handler asks for.
public struct HTTPHeaders: Sendable, Equatable, Sequence {
    /// Per field: the name's length and the value's (32 bits each, little-endian), the
    /// name, the value.
    private var storage: [UInt8] = []
    /// The number of fields.
    public private(set) var count = 0

    public init() {}

    public init(_ headers: [HTTPHeader]) {
        for header in headers { append(header) }
    }

    mutating func reserveCapacity(_ bytes: Int) {
        storage.reserveCapacity(bytes)
    }

    public mutating func append(_ header: HTTPHeader) {
        var name = header.name, value = header.value
        name.withUTF8 { name in value.withUTF8 { append(name: name, value: $0, lowercasing: false) } }
    }

    /// Appends a field, folding the name's ASCII letters to lower case when asked: one
    /// write into the storage's free room (the lengths, the name folded as it is copied,
    /// the value), not three appends and a second pass over the name.
    mutating func append(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, lowercasing: Bool) {
        let lengths = UInt64(UInt32(truncatingIfNeeded: name.count)) | UInt64(UInt32(truncatingIfNeeded: value.count)) << 32
        let total = 8 + name.count + value.count
        var written = false
        storage.append(addingCapacity: total) { room in
            room.withUnsafeMutableBufferPointer { free, initialized in
                guard let out = free.baseAddress, free.count >= total else { return }
                UnsafeMutableRawPointer(out).storeBytes(of: lengths.littleEndian, as: UInt64.self)
                let nameOut = out + 8
                for k in 0..<name.count {
                    let b = name[k]
                    nameOut[k] = lowercasing && b >= 0x41 && b <= 0x5A ? b | 0x20 : b
                }
                if let valueBase = value.baseAddress { (nameOut + name.count).initialize(from: valueBase, count: value.count) }
                initialized = total
                written = true
            }
        }
        if written { count += 1 }
    }

    /// Calls `body` with the value of the first field named `name` (give it lowercased),
    /// in place; nil when there is none.
    public func withValue<R>(of name: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        var name = name
        return name.withUTF8 { wanted in
            storage.withUnsafeBufferPointer { p -> R? in
                var i = 0
                while i + 8 <= p.count {
                    let nameLength = Self.length(p, at: i), valueLength = Self.length(p, at: i + 4)
                    let nameStart = i + 8, valueStart = nameStart + nameLength
                    i = valueStart + valueLength
                    guard i <= p.count else { return nil }
                    if nameLength == wanted.count
                        && UnsafeBufferPointer(rebasing: p[nameStart..<valueStart]).elementsEqual(wanted) {
                        return body(UnsafeBufferPointer(rebasing: p[valueStart..<i]))
                    }
                }
                return nil
            }
        }
    }

    /// The value of the first field named `name` (give it lowercased).
    public func value(of name: String) -> String? {
        withValue(of: name) { String(decoding: $0, as: UTF8.self) }
    }

    private static func length(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> Int {
        Int(p[i]) | Int(p[i + 1]) << 8 | Int(p[i + 2]) << 16 | Int(p[i + 3]) << 24
    }

    public struct Iterator: IteratorProtocol {
        let storage: [UInt8]
        var offset = 0

        public mutating func next() -> HTTPHeader? {
            guard offset + 8 <= storage.count else { return nil }
            let (name, value) = storage.withUnsafeBufferPointer { p -> (String, String) in
                let nameLength = HTTPHeaders.length(p, at: offset), valueLength = HTTPHeaders.length(p, at: offset + 4)
                let nameStart = offset + 8
                let valueStart = Swift.min(nameStart + nameLength, p.count)
                offset = Swift.min(valueStart + valueLength, p.count)
                return (String(decoding: UnsafeBufferPointer(rebasing: p[nameStart..<valueStart]), as: UTF8.self),
                        String(decoding: UnsafeBufferPointer(rebasing: p[valueStart..<offset]), as: UTF8.self))
            }
            return HTTPHeader(name: name, value: value)
        }
    }

    public func makeIterator() -> Iterator { Iterator(storage: storage) }
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
    public var headers: HTTPHeaders
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
        self.headers = HTTPHeaders(headers)
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The first value of header `name` (give it lowercased).
    public func header(_ name: String) -> String? {
        headers.value(of: name)
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

/// Size limits the parser enforces.
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
