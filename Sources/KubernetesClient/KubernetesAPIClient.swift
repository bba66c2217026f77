import JSON
import TLS

/// Why a call to the API server failed.
public enum KubernetesAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Connect, TLS, I/O or HTTP framing: worth a retry.
    case transport(String)
    /// A non-2xx answer: its code, and the Status's reason and message when it sent one.
    case status(code: Int, reason: String, message: String)
    /// A 2xx answer that is not what the call expects.
    case malformed(String)
    /// The credentials could not be read.
    case credentials(String)

    /// 410 Gone: the resourceVersion is too old; list again.
    public var isGone: Bool {
        if case .status(410, _, _) = self { return true }
        return false
    }

    public var statusCode: Int? {
        if case .status(let code, _, _) = self { return code }
        return nil
    }

    public var description: String {
        switch self {
        case .transport(let why): return why
        case .status(let code, let reason, let message):
            return message.isEmpty ? "HTTP \(code)\(reason.isEmpty ? "" : " " + reason)" : "HTTP \(code) \(reason): \(message)"
        case .malformed(let why): return "unexpected answer: \(why)"
        case .credentials(let why): return why
        }
    }
}

/// Requests to one API server, each on its own TLS connection (`Connection: close`),
/// from the threads that call it (no event loop: the cache's reflectors block here,
/// never a request path).
public final class KubernetesAPIClient: Sendable {
    public let access: ClusterAccess
    private let context: TLSClientContext

    /// Largest body a non-streaming answer may have (a page of 500 objects).
    public static let maxBodyBytes = 256 * 1024 * 1024
    /// Longest line of a watch stream (one event: one object).
    public static let maxEventBytes = 64 * 1024 * 1024
    public static let connectTimeoutSeconds = 10

    public init(access: ClusterAccess) throws(ClusterAccessError) {
        self.access = access
        do {
            context = try TLSClientContext(configuration: access.tls)
        } catch {
            throw ClusterAccessError("\(access.origin): \(error.description)")
        }
    }

    /// A GET whose 2xx body is returned whole.
    public func get(_ pathAndQuery: String, accept: String, timeoutSeconds: Int) throws(KubernetesAPIError) -> [UInt8] {
        var body: [UInt8] = []
        try perform(pathAndQuery, accept: accept, timeoutSeconds: timeoutSeconds, onConnection: { _ in }) { chunk throws(KubernetesAPIError) in
            guard body.count + chunk.count <= Self.maxBodyBytes else {
                throw .transport("answer larger than \(Self.maxBodyBytes) bytes")
            }
            body.append(contentsOf: chunk)
        }
        return body
    }

    /// A GET whose 2xx body is a stream of newline-ended JSON documents (a watch): each
    /// goes to `onLine` as it completes. Returns when the server ends the stream.
    /// `onConnection` gets the connection, so another thread can interrupt the wait.
    public func stream(_ pathAndQuery: String, accept: String, readTimeoutSeconds: Int,
                       onConnection: (TLSClientConnection) -> Void,
                       onLine: ([UInt8]) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        var line: [UInt8] = []
        try perform(pathAndQuery, accept: accept, timeoutSeconds: readTimeoutSeconds, onConnection: onConnection) { chunk throws(KubernetesAPIError) in
            var start = chunk.startIndex
            while let newline = chunk[start...].firstIndex(of: 0x0A) {
                line.append(contentsOf: chunk[start..<newline])
                start = newline + 1
                if !line.isEmpty { try onLine(line) }
                line.removeAll(keepingCapacity: true)
            }
            line.append(contentsOf: chunk[start...])
            guard line.count <= Self.maxEventBytes else {
                throw .transport("watch event longer than \(Self.maxEventBytes) bytes")
            }
        }
        if !line.isEmpty { try onLine(line) }
    }

    private func perform(_ pathAndQuery: String, accept: String, timeoutSeconds: Int,
                         onConnection: (TLSClientConnection) -> Void,
                         onBody: ([UInt8]) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        let token: String?
        do {
            token = try access.token.current()
        } catch {
            throw .credentials(error.description)
        }
        let connection: TLSClientConnection
        do {
            connection = try TLSClientConnection(context: context, host: access.host, port: access.port,
                                                 timeoutSeconds: Self.connectTimeoutSeconds)
        } catch {
            throw .transport(error.description)
        }
        connection.setTimeout(seconds: timeoutSeconds)
        onConnection(connection)
        let hostHeader = access.host.contains(":") ? "[\(access.host)]:\(access.port)" : "\(access.host):\(access.port)"
        var request = "GET \(pathAndQuery) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: atlas-stream-webhook\r\n"
            + "Accept: \(accept)\r\nAccept-Encoding: identity\r\nConnection: close\r\n"
        if let token, !token.isEmpty { request += "Authorization: Bearer \(token)\r\n" }
        request += "\r\n"
        do {
            try connection.write(Array(request.utf8))
        } catch {
            throw .transport("request: \(error.description)")
        }

        var decoder = HTTPResponseDecoder()
        var head: HTTPResponseHead?
        var errorBody: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        func handle(_ events: [HTTPResponseDecoder.Event]) throws(KubernetesAPIError) -> Bool {
            for event in events {
                switch event {
                case .head(let h): head = h
                case .body(let bytes):
                    if let h = head, (200..<300).contains(h.status) {
                        try onBody(bytes)
                    } else if errorBody.count < 64 * 1024 {
                        errorBody.append(contentsOf: bytes.prefix(64 * 1024 - errorBody.count))
                    }
                case .end: return true
                }
            }
            return false
        }
        var done = false
        while !done {
            let count: Int
            do {
                count = try buffer.withUnsafeMutableBytes { raw in try connection.read(into: raw) }
            } catch {
                throw .transport("reading the answer: \(error)")
            }
            do {
                if count == 0 {
                    done = try handle(decoder.finish())
                    if !done { throw KubernetesAPIError.transport("connection closed before the answer ended") }
                } else {
                    done = try handle(decoder.feed(buffer[0..<count]))
                }
            } catch let error as HTTPResponseError {
                throw .transport(error.description)
            } catch let error as KubernetesAPIError {
                throw error
            } catch {
                throw .transport("\(error)")
            }
        }
        guard let head else { throw .transport("no answer") }
        guard (200..<300).contains(head.status) else {
            throw Self.statusError(code: head.status, body: errorBody)
        }
    }

    /// A non-2xx answer as an error carrying its Status's reason and message.
    static func statusError(code: Int, body: [UInt8]) -> KubernetesAPIError {
        guard let document = try? JSONReader.parse(body), document.root.isObject else {
            return .status(code: code, reason: "", message: String(decoding: body.prefix(512), as: UTF8.self))
        }
        let root = document.root
        return .status(code: root["code"]?.int ?? code, reason: root["reason"]?.string ?? "",
                       message: root["message"]?.string ?? "")
    }
}
