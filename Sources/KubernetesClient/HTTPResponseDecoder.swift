import HTTPCore

/// Why a response from the API server could not be read.
public enum HTTPResponseError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformedStatusLine
    case malformedHeader
    case headerTooLarge
    /// The chunked body's framing is broken.
    case chunked(ChunkedBodyError)
    /// The connection closed before the response was complete.
    case endedEarly

    public var description: String {
        switch self {
        case .malformedStatusLine: return "malformed HTTP status line"
        case .malformedHeader: return "malformed HTTP header"
        case .headerTooLarge: return "HTTP header section too large"
        case .chunked(let error): return error.description
        case .endedEarly: return "the connection closed before the response ended"
        }
    }
}

/// The status line and the headers this client reads.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var contentLength: Int?
    public var chunked: Bool
    public var contentType: String
    /// `Retry-After` in seconds (the delta form; a date is not honoured).
    public var retryAfterSeconds: Int?

    public init(status: Int, contentLength: Int? = nil, chunked: Bool = false, contentType: String = "",
                retryAfterSeconds: Int? = nil) {
        self.status = status
        self.contentLength = contentLength
        self.chunked = chunked
        self.contentType = contentType
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// An HTTP/1.1 response, decoded incrementally and purely: bytes in (split anywhere),
/// the head, then body bytes as they come, then the end. Content-Length, chunked, and
/// a body that runs to the connection's close are all understood.
public struct HTTPResponseDecoder: Sendable {
    public enum Event: Sendable, Equatable {
        case head(HTTPResponseHead)
        case body([UInt8])
        case end
    }

    private enum State: Sendable {
        case head
        case fixed(remaining: Int)
        case chunked(ChunkedBodyDecoder)
        case untilClose
        case done
    }

    public static let maxHeaderBytes = 64 * 1024
    private var state = State.head
    private var pending: [UInt8] = []

    public init() {}

    /// Decodes what `bytes` complete; the rest waits for the next call.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(HTTPResponseError) -> [Event] {
        pending.append(contentsOf: bytes)
        var events: [Event] = []
        var start = 0
        defer { pending.removeFirst(start) }
        loop: while true {
            switch state {
            case .head:
                guard let end = Self.find(Self.crlfcrlf, in: pending, from: start) else {
                    if pending.count - start > Self.maxHeaderBytes { throw .headerTooLarge }
                    break loop
                }
                let head = try Self.parseHead(pending[start..<end])
                start = end + 4
                events.append(.head(head))
                if head.status == 204 || head.status == 304 || (100..<200).contains(head.status) {
                    state = .done
                } else if head.chunked {
                    state = .chunked(ChunkedBodyDecoder(limits: ChunkedBodyDecoder.Limits(maxTrailerBytes: Self.maxHeaderBytes)))
                } else if let length = head.contentLength {
                    state = length == 0 ? .done : .fixed(remaining: length)
                } else {
                    state = .untilClose
                }
                if case .done = state { events.append(.end); break loop }
            case .fixed(let remaining):
                guard start < pending.count else { break loop }
                let take = min(remaining, pending.count - start)
                events.append(.body(Array(pending[start..<start + take])))
                start += take
                state = take == remaining ? .done : .fixed(remaining: remaining - take)
                if case .done = state { events.append(.end); break loop }
            case .chunked(var decoder):
                let from = start
                let (event, consumed) = pending.withUnsafeBufferPointer { decoder.decode(UnsafeBufferPointer(rebasing: $0[from...])) }
                state = .chunked(decoder)
                start += consumed
                switch event {
                case .data(let range):
                    events.append(.body(Array(pending[from + range.lowerBound..<from + range.upperBound])))
                case .needMoreBytes:
                    break loop
                case .end:
                    state = .done
                    events.append(.end)
                    break loop
                case .failed(let error):
                    throw .chunked(error)
                }
            case .untilClose:
                guard start < pending.count else { break loop }
                events.append(.body(Array(pending[start...])))
                start = pending.count
                break loop
            case .done:
                start = pending.count
                break loop
            }
        }
        return events
    }

    /// The connection closed: the end of a body that runs to the close, else an error
    /// when a response was cut short.
    public mutating func finish() throws(HTTPResponseError) -> [Event] {
        switch state {
        case .untilClose:
            state = .done
            return [.end]
        case .done:
            return []
        case .head, .fixed, .chunked:
            throw .endedEarly
        }
    }

    private static let crlfcrlf: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count - start >= needle.count else { return nil }
        var i = start
        let last = bytes.count - needle.count
        while i <= last {
            if bytes[i] == needle[0] {
                var j = 1
                while j < needle.count && bytes[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    private static func parseHead(_ bytes: ArraySlice<UInt8>) throws(HTTPResponseError) -> HTTPResponseHead {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }
        guard !lines.isEmpty else { throw .malformedStatusLine }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].starts(with: Array("HTTP/1.".utf8)), parts[1].count == 3,
              let status = Int(String(decoding: parts[1], as: UTF8.self)), (100...599).contains(status) else {
            throw .malformedStatusLine
        }
        var head = HTTPResponseHead(status: status, contentLength: nil, chunked: false, contentType: "")
        for line in lines {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .malformedHeader }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
            let value = String(HTTPSyntax.trimmingOptionalWhitespace(Substring(decoding: line[(colon + 1)...], as: UTF8.self)))
            switch name {
            case "content-length":
                guard let length = Int(value), length >= 0 else { throw .malformedHeader }
                head.contentLength = length
            case "transfer-encoding":
                head.chunked = value.lowercased().hasSuffix("chunked")
            case "content-type":
                head.contentType = value
            case "retry-after":
                if value.utf8.count <= 9, let seconds = Int(value), seconds >= 0 { head.retryAfterSeconds = seconds }
            default:
                break
            }
        }
        return head
    }
}
