import JSON
import SystemSupport
import TLS

/// Why a call to the API server failed.
public enum KubernetesAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Connect, TLS, I/O or HTTP framing: worth a retry.
    case transport(String)
    /// A non-2xx answer: its HTTP code, the Status's reason and message when it sent one,
    /// and how long the server asked the client to wait (`Retry-After`, on 429 and 503).
    case status(code: Int, reason: String, message: String, retryAfterSeconds: Int?)
    /// A 2xx answer that is not what the call expects.
    case malformed(String)
    /// An answer, a watch event or a kept object over its cap.
    case tooLarge(String)
    /// The credentials could not be read.
    case credentials(String)

    /// 410 Gone: the resourceVersion is too old; list again.
    public var isGone: Bool {
        if case .status(410, _, _, _) = self { return true }
        return false
    }

    public var statusCode: Int? {
        if case .status(let code, _, _, _) = self { return code }
        return nil
    }

    /// The server's `Retry-After`, in seconds.
    public var retryAfterSeconds: Int? {
        if case .status(_, _, _, let seconds) = self { return seconds }
        return nil
    }

    public var description: String {
        switch self {
        case .transport(let why): return why
        case .status(let code, let reason, let message, _):
            return message.isEmpty ? "HTTP \(code)\(reason.isEmpty ? "" : " " + reason)" : "HTTP \(code) \(reason): \(message)"
        case .malformed(let why): return "unexpected answer: \(why)"
        case .tooLarge(let why): return why
        case .credentials(let why): return why
        }
    }
}

/// How long a request may wait for the server.
enum RequestTiming {
    /// The whole answer within this (a LIST page: a server that trickles is cut off).
    case deadline(milliseconds: Int)
    /// Each read within this, however long the answer runs (a WATCH: quiet is dead).
    case idle(seconds: Int)
}

/// Requests to one API server, each on its own TLS connection (`Connection: close`),
/// from the threads that call it (no event loop: the cache's reflectors block here,
/// never a request path). Answers are handed on as they arrive, never held whole;
/// redirects are errors (never followed, so the token goes nowhere else).
public final class KubernetesAPIClient: Sendable {
    public let access: ClusterAccess
    /// The TLS context, built again when the CA or client certificate files change.
    private let contexts: TLSClientContextSource

    public static let connectTimeoutSeconds = 10
    /// Most bytes of a non-2xx answer read for its Status message.
    static let maxErrorBodyBytes = 64 * 1024

    /// `onTLSReload` hears of each change of the CA or client certificate files: reloaded,
    /// or kept because the new files do not work.
    public init(access: ClusterAccess,
                onTLSReload: @escaping @Sendable (TLSClientContextSource.Reload) -> Void = { _ in }) throws(ClusterAccessError) {
        self.access = access
        contexts = try access.makeTLSContextSource(onReload: onTLSReload)
    }

    /// A GET whose 2xx body goes to `onBody` chunk by chunk as it arrives.
    func perform(_ pathAndQuery: String, accept: String, timing: RequestTiming,
                 onConnection: (TLSClientConnection) -> Void,
                 onBody: ([UInt8]) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        let token: String?
        do {
            token = try access.token.current()
        } catch {
            throw .credentials(error.description)
        }
        let started = monotonicMilliseconds()
        let connection: TLSClientConnection
        do {
            connection = try TLSClientConnection(context: contexts.current(), host: access.host, port: access.port,
                                                 verifyName: access.serverName, timeoutSeconds: Self.connectTimeoutSeconds)
        } catch {
            throw .transport(error.description)
        }
        let deadline: Int?
        switch timing {
        case .deadline(let milliseconds):
            deadline = started + milliseconds
            connection.setTimeout(seconds: (milliseconds + 999) / 1000)
        case .idle(let seconds):
            deadline = nil
            connection.setTimeout(seconds: seconds)
        }
        onConnection(connection)
        let hostHeader = access.host.contains(":") ? "[\(access.host)]:\(access.port)" : "\(access.host):\(access.port)"
        var request = "GET \(access.pathPrefix)\(pathAndQuery) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: atlas-stream-webhook\r\n"
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
                    } else if errorBody.count < Self.maxErrorBodyBytes {
                        errorBody.append(contentsOf: bytes.prefix(Self.maxErrorBodyBytes - errorBody.count))
                    }
                case .end: return true
                }
            }
            return false
        }
        var done = false
        while !done {
            if let deadline {
                let left = deadline - monotonicMilliseconds()
                guard left > 0 else { throw .transport("the answer did not arrive within its deadline") }
                connection.setTimeout(seconds: (left + 999) / 1000)
            }
            let count: Int
            do {
                count = try buffer.withUnsafeMutableBytes { raw in try connection.read(into: raw) }
            } catch {
                if let error = error as? TLSClientError, error == .timedOut {
                    throw .transport(deadline == nil ? "no byte from the server within the idle timeout"
                                                     : "the answer did not arrive within its deadline")
                }
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
            throw Self.statusError(head: head, body: errorBody)
        }
    }

    /// A non-2xx answer as an error: the HTTP status decides what it is; a Status body
    /// adds only its reason and message.
    static func statusError(head: HTTPResponseHead, body: [UInt8]) -> KubernetesAPIError {
        guard let document = try? JSONReader.parse(body), document.root.isObject else {
            return .status(code: head.status, reason: "", message: capped(String(decoding: body.prefix(512), as: UTF8.self)),
                           retryAfterSeconds: head.retryAfterSeconds)
        }
        let root = document.root
        return .status(code: head.status, reason: capped(root["reason"]?.string ?? ""),
                       message: capped(root["message"]?.string ?? ""), retryAfterSeconds: head.retryAfterSeconds)
    }
}

/// A server's text as a log line may carry it: at most 512 bytes.
func capped(_ text: String) -> String {
    text.utf8.count <= 512 ? text : String(decoding: text.utf8.prefix(512), as: UTF8.self)
}
