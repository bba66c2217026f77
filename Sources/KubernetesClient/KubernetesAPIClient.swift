import JSON
import SystemSupport
import TLS

/// The methods the client sends.
public enum HTTPMethod: String, Sendable {
    case get = "GET"
    case post = "POST"
    case put = "PUT"
    case patch = "PATCH"
    case delete = "DELETE"
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

    /// A request (a GET unless told) whose 2xx body goes to `onBody` chunk by chunk as
    /// it arrives.
    func perform(_ method: HTTPMethod, _ pathAndQuery: String, accept: String, body: [UInt8]? = nil,
                 contentType: String = "application/json", timing: RequestTiming,
                 onConnection: (TLSClientConnection) -> Void,
                 onBody: ([UInt8]) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        let token: String?
        do {
            token = try access.token.current()
        } catch {
            throw .credentials(error)
        }
        let started = monotonicMilliseconds()
        let connection: TLSClientConnection
        do {
            connection = try TLSClientConnection(context: contexts.current(), host: access.host, port: access.port,
                                                 verifyName: access.serverName, timeoutSeconds: Self.connectTimeoutSeconds)
        } catch {
            throw .transport(.connect(error))
        }
        let deadline: Int?
        // What a read that waited too long means.
        let timedOut: TransportFailure
        switch timing {
        case .deadline(let milliseconds):
            deadline = started + milliseconds
            timedOut = .deadlineExceeded(milliseconds: milliseconds)
            connection.setTimeout(seconds: (milliseconds + 999) / 1000)
        case .idle(let seconds):
            deadline = nil
            timedOut = .idleTimeout(seconds: seconds)
            connection.setTimeout(seconds: seconds)
        }
        onConnection(connection)
        let hostHeader = access.host.contains(":") ? "[\(access.host)]:\(access.port)" : "\(access.host):\(access.port)"
        var request = "\(method.rawValue) \(access.pathPrefix)\(pathAndQuery) HTTP/1.1\r\nHost: \(hostHeader)\r\n"
            + "User-Agent: atlas-stream-webhook\r\nAccept: \(accept)\r\nAccept-Encoding: identity\r\nConnection: close\r\n"
        if let token, !token.isEmpty { request += "Authorization: Bearer \(token)\r\n" }
        if let body { request += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        request += "\r\n"
        do {
            try connection.write(Array(request.utf8) + (body ?? []))
        } catch {
            throw .transport(.write(error))
        }

        var decoder = HTTPResponseDecoder()
        // The head of a non-2xx answer, whose body is kept (capped) for its Status.
        var refusal: HTTPResponseHead?
        var refusalBody: [UInt8] = []
        // Hands the events on; true at the end of the answer.
        func handle(_ events: [HTTPResponseDecoder.Event]) throws(KubernetesAPIError) -> Bool {
            for event in events {
                switch event {
                case .head(let head):
                    if !(200..<300).contains(head.status) { refusal = head }
                case .body(let bytes):
                    if refusal == nil {
                        try onBody(bytes)
                    } else if refusalBody.count < Self.maxErrorBodyBytes {
                        refusalBody.append(contentsOf: bytes.prefix(Self.maxErrorBodyBytes - refusalBody.count))
                    }
                case .end:
                    return true
                }
            }
            return false
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer { buffer.deallocate() }
        while true {
            if let deadline {
                let left = deadline - monotonicMilliseconds()
                guard left > 0 else { throw .transport(timedOut) }
                connection.setTimeout(seconds: (left + 999) / 1000)
            }
            let count: Int
            do {
                count = try connection.read(into: buffer)
            } catch .timedOut {
                throw .transport(timedOut)
            } catch {
                throw .transport(.read(error))
            }
            let events: [HTTPResponseDecoder.Event]
            do {
                // A read of 0: the connection closed, which ends a body that runs to the close.
                events = count == 0 ? try decoder.finish() : try decoder.feed(buffer[0..<count])
            } catch {
                throw .transport(.response(error))
            }
            let ended = try handle(events)
            if ended || count == 0 { break }
        }
        if let refusal {
            throw Self.statusError(head: refusal, body: refusalBody)
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
