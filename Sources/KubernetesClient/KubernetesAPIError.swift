import JSON
import TLS

/// Why a call to the API server failed.
public enum KubernetesAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The exchange broke off before a whole answer came: worth a retry.
    case transport(TransportFailure)
    /// A non-2xx answer: its HTTP code, the Status's reason and message when it sent one,
    /// and how long the server asked the client to wait (`Retry-After`, on 429 and 503).
    case status(code: Int, reason: String, message: String, retryAfterSeconds: Int?)
    /// A 2xx answer that is not what the call expects.
    case malformed(APICall, MalformedAnswer)
    /// An answer, a watch event or a kept object over its cap.
    case tooLarge(APICall, Oversize)
    /// The bearer token could not be read.
    case credentials(ClusterAccessError)

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
        case .transport(let failure): return failure.description
        case .status(let code, let reason, let message, _):
            return message.isEmpty ? "HTTP \(code)\(reason.isEmpty ? "" : " " + reason)" : "HTTP \(code) \(reason): \(message)"
        case .malformed(let call, let problem): return "unexpected answer: \(call) \(problem)"
        case .tooLarge(let call, .answer(let limit)): return "\(call) is larger than \(limit) bytes"
        case .tooLarge(let call, .event(let limit)): return "an event of the \(call) is larger than \(limit) bytes"
        case .tooLarge(let call, .keptPart(let limit, let offset)):
            return "\(call): kept part of a JSON value larger than \(limit) bytes at byte \(offset)"
        case .credentials(let error): return error.description
        }
    }
}

/// Where an exchange with the API server broke off, with the TLS client's or the HTTP
/// decoder's own error.
public enum TransportFailure: Sendable, Equatable, CustomStringConvertible {
    /// No connection: the TCP connect, the TLS handshake (the server's certificate
    /// included) or the client's TLS setup failed.
    case connect(TLSClientError)
    /// The request could not be sent.
    case write(TLSClientError)
    /// Reading the answer failed (a reset, a TLS alert, a socket error).
    case read(TLSClientError)
    /// A watch sent no byte for this long.
    case idleTimeout(seconds: Int)
    /// A LIST page did not arrive whole within this.
    case deadlineExceeded(milliseconds: Int)
    /// The answer's HTTP framing is broken, or the connection closed inside it.
    case response(HTTPResponseError)

    public var description: String {
        switch self {
        case .connect(let error): return error.description
        case .write(let error): return "sending the request: \(error)"
        case .read(let error): return "reading the answer: \(error)"
        case .idleTimeout(let seconds): return "no byte from the server within the idle timeout of \(seconds) s"
        case .deadlineExceeded(let milliseconds): return "the answer did not arrive within its deadline of \(milliseconds) ms"
        case .response(let error): return "reading the answer: \(error)"
        }
    }
}

/// The call an answer belongs to, for errors and logs.
public enum APICall: Sendable, Equatable, CustomStringConvertible {
    /// A LIST page of the resource (its plural name).
    case list(resource: String)
    /// A WATCH of the resource (its plural name).
    case watch(resource: String)
    /// A request for one object: its method and path.
    case object(method: HTTPMethod, path: String)

    public var description: String {
        switch self {
        case .list(let resource): return "list of \(resource)"
        case .watch(let resource): return "watch of \(resource)"
        case .object(let method, let path): return "\(method.rawValue) \(capped(path))"
        }
    }
}

/// What is wrong with a 2xx answer; each reads after the call's name ("list of secrets …").
public enum MalformedAnswer: Error, Sendable, Equatable, CustomStringConvertible {
    /// The body, read as it streams, is not JSON.
    case invalidJSONStream(JSONStreamFilterError)
    /// A kept item or event is not JSON.
    case invalidJSON(JSONError)
    case listNotAnObject
    case listWithoutResourceVersion
    case continueTokenNotAString
    case eventWithoutTypeAndObject
    case bookmarkWithoutResourceVersion
    case unknownEventType(String)
    /// A 2xx answer for one object that is not a JSON object.
    case notAnObject

    public var description: String {
        switch self {
        case .invalidJSONStream(let error): return "is not JSON: \(error)"
        case .invalidJSON(let error): return "is not JSON: \(error)"
        case .listNotAnObject: return "is not a JSON object"
        case .listWithoutResourceVersion: return "has no string metadata.resourceVersion"
        case .continueTokenNotAString: return "has a metadata.continue that is not a string"
        case .eventWithoutTypeAndObject: return "has an event without type and object"
        case .bookmarkWithoutResourceVersion: return "has a bookmark without a string metadata.resourceVersion"
        case .unknownEventType(let type): return "has an event of unknown type \(capped(type))"
        case .notAnObject: return "is not a JSON object"
        }
    }
}

/// Which cap an answer passed.
public enum Oversize: Sendable, Equatable {
    /// The whole answer (a LIST page), in bytes on the wire.
    case answer(limit: Int)
    /// One watch event, in bytes on the wire.
    case event(limit: Int)
    /// The kept part of one item or event, passed at byte `offset` of the body.
    case keptPart(limit: Int, offset: Int)
}
