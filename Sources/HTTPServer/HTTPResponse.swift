/// The status codes this server sends.
public struct HTTPStatus: Sendable, Equatable, Hashable {
    public let code: Int
    public let reason: String

    public init(code: Int, reason: String) {
        self.code = code
        self.reason = reason
    }

    public static let ok = HTTPStatus(code: 200, reason: "OK")
    public static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    public static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    public static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    public static let requestTimeout = HTTPStatus(code: 408, reason: "Request Timeout")
    public static let payloadTooLarge = HTTPStatus(code: 413, reason: "Payload Too Large")
    public static let unsupportedMediaType = HTTPStatus(code: 415, reason: "Unsupported Media Type")
    public static let requestHeaderFieldsTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    public static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    public static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    public static let gatewayTimeout = HTTPStatus(code: 504, reason: "Gateway Timeout")
}

/// A response to serialise. `Content-Length`, `Date`-free framing and `Connection`
/// are added by the writer.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var contentType: String
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// Close the connection after this response regardless of the request.
    public var close: Bool

    public init(status: HTTPStatus, contentType: String = "application/json", headers: [HTTPHeader] = [],
                body: [UInt8], close: Bool = false) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
        self.close = close
    }
}

/// Serialises responses into a connection's output buffer.
public enum HTTPResponseWriter {
    public static let continueLine: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// `keepAlive` false adds `Connection: close`; with `announceKeepAlive` (an HTTP/1.0
    /// client, whose default is to close) a kept-alive answer says `Connection: keep-alive`.
    public static func write(_ response: HTTPResponse, keepAlive: Bool, announceKeepAlive: Bool = false,
                             into out: inout [UInt8]) {
        out.reserveCapacity(out.count + response.body.count + 128)
        if response.status == .ok && response.contentType == "application/json" {
            // Nearly every answer: one copy of a fixed head.
            out.append(contentsOf: okJSONHead)
        } else {
            appendASCII("HTTP/1.1 ", &out)
            appendDecimal(response.status.code, &out)
            out.append(0x20)
            appendASCII(response.status.reason, &out)
            appendASCII("\r\nContent-Type: ", &out)
            appendASCII(response.contentType, &out)
            appendASCII("\r\nContent-Length: ", &out)
        }
        appendDecimal(response.body.count, &out)
        for header in response.headers {
            appendASCII("\r\n", &out)
            appendASCII(header.name, &out)
            appendASCII(": ", &out)
            appendASCII(header.value, &out)
        }
        if !keepAlive {
            appendASCII("\r\nConnection: close\r\n\r\n", &out)
        } else if announceKeepAlive {
            appendASCII("\r\nConnection: keep-alive\r\n\r\n", &out)
        } else {
            appendASCII("\r\n\r\n", &out)
        }
        out.append(contentsOf: response.body)
    }

    private static let okJSONHead: [UInt8] = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ".utf8)

    /// A non-negative integer in decimal, without making a String.
    private static func appendDecimal(_ value: Int, _ out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var v = UInt64(max(0, value))
            var k = buffer.count
            repeat {
                k -= 1
                buffer[k] = UInt8(truncatingIfNeeded: v % 10) + 0x30
                v /= 10
            } while v > 0 && k > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[k...]))
        }
    }

    @inline(__always)
    private static func appendASCII(_ s: String, _ out: inout [UInt8]) {
        out.append(contentsOf: s.utf8)
    }
}
