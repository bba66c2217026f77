import Glibc
import HTTPCore

/// What the parser wants the connection to do next.
public enum HTTPParserAction: Sendable, Equatable {
    /// Read more bytes and call `next()` again.
    case needMoreBytes
    /// The client sent `Expect: 100-continue` and waits: send `100 Continue`, then read on.
    case sendContinue
    /// A complete request; call `next()` again for a pipelined one.
    case request(HTTPRequest)
    /// The bytes cannot be served; answer with the error's status and close.
    case reject(HTTPParseError)
}

/// An incremental HTTP/1.1 request parser over bytes. It holds no I/O: bytes go in
/// through `append`, actions come out of `next()`. Any split of the same bytes yields
/// the same sequence of requests.
public struct HTTPRequestParser: Sendable {
    public let limits: HTTPLimits

    private var buffer: [UInt8] = []
    /// Bytes before this index are consumed.
    private var start = 0
    private var state: State = .head(scanned: 0)
    /// The request whose head is parsed and whose body is being read.
    private var pending: HTTPRequest?
    private var continueSent = false

    private enum State: Sendable {
        /// Looking for the end of the head; `scanned` bytes after `start` hold no terminator.
        case head(scanned: Int)
        case fixedBody(length: Int)
        case chunkedBody(ChunkedBodyDecoder)
        case failed(HTTPParseError)
    }

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    /// Bytes received but not yet consumed by a request.
    public var bufferedByteCount: Int { buffer.count - start }

    /// The request whose header section is complete and whose body is still arriving.
    public var requestAwaitingBody: HTTPRequest? { pending }

    /// Whether a request's header section is complete and its body still arriving: the
    /// state says so without copying the request.
    public var isReadingBody: Bool {
        switch state {
        case .fixedBody, .chunkedBody: return true
        case .head, .failed: return false
        }
    }

    /// While a body is being read: the bytes it may take, for the memory budget (its
    /// Content-Length, or the body limit when chunked). Nil between bodies.
    public var bodyBytesToReserve: Int? {
        switch state {
        case .fixedBody(let length): return length
        case .chunkedBody: return limits.maxBodyBytes
        case .head, .failed: return nil
        }
    }

    /// Drops a large idle buffer so an idle connection holds little memory.
    public mutating func releaseIdleBuffer() {
        if start == buffer.count && buffer.capacity > 16 * 1024 {
            buffer = []
            start = 0
        }
    }

    /// Whether a request has begun (some bytes of it are buffered or parsed).
    public var isMidRequest: Bool {
        if isReadingBody { return true }
        return buffer.withUnsafeBufferPointer { p in
            var i = start
            while i < p.count {
                if p[i] != 0x0D && p[i] != 0x0A { return true }
                i += 1
            }
            return false
        }
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096 && start > buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        // As typed bytes, so the append is one memcpy.
        buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// A body longer than this gets its room reserved when the head is read, is read
    /// straight into it (`receive(upTo:_:)`) and becomes the request's body without a copy.
    static let largeBody = 64 * 1024

    /// While a large body is arriving: how many of its bytes are still to come (nil
    /// otherwise). Reading no more than that keeps the next request's bytes out of it.
    public var largeBodyBytesExpected: Int? {
        guard case .fixedBody(let length) = state, length > Self.largeBody, start == 0,
              buffer.count < length else { return nil }
        return length - buffer.count
    }

    /// Lets `read` write up to `maximum` bytes straight into the free room after the
    /// buffered bytes (for a large body: no copy through the connection's read buffer);
    /// `read` returns how many it wrote. Returns that count.
    @discardableResult
    public mutating func receive(upTo maximum: Int, _ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        guard maximum > 0 else { return 0 }
        var received = 0
        buffer.append(addingCapacity: maximum) { room in
            room.withUnsafeMutableBufferPointer { free, initialized in
                received = min(max(read(UnsafeMutableRawBufferPointer(free)), 0), free.count)
                initialized = received
            }
        }
        return received
    }

    public mutating func next() -> HTTPParserAction {
        while true {
            switch state {
            case .failed(let error):
                return .reject(error)
            case .head(let scanned):
                switch parseHead(scanned: scanned) {
                case .some(.failure(let error)):
                    return fail(error)
                case .some(.success):
                    continue
                case .none:
                    return .needMoreBytes
                }
            case .fixedBody(let length):
                if buffer.count - start >= length {
                    if start == 0 && buffer.count == length && length > Self.largeBody {
                        pending?.body = buffer
                        buffer = []
                    } else {
                        pending?.body = Array(buffer[start..<start + length])
                        start += length
                    }
                    return finishRequest()
                }
                return continueOrWait()
            case .chunkedBody(var decoder):
                let from = start
                let (event, consumed) = buffer.withUnsafeBufferPointer { decoder.decode(UnsafeBufferPointer(rebasing: $0[from...])) }
                state = .chunkedBody(decoder)
                start += consumed
                switch event {
                case .data(let range):
                    pending?.body.append(contentsOf: buffer[from + range.lowerBound..<from + range.upperBound])
                case .needMoreBytes:
                    return continueOrWait()
                case .end:
                    return finishRequest()
                case .failed(let error):
                    return fail(Self.parseError(error))
                }
            }
        }
    }

    /// A chunked body's failure as the status it is answered with.
    private static func parseError(_ error: ChunkedBodyError) -> HTTPParseError {
        switch error {
        case .bodyTooLarge: return .bodyTooLarge
        case .trailersTooLarge: return .headersTooLarge
        case .malformedChunkSize, .chunkSizeLineTooLong, .dataNotFollowedByCRLF, .malformedTrailerField:
            return .badRequest(error.description)
        }
    }

    private mutating func fail(_ error: HTTPParseError) -> HTTPParserAction {
        state = .failed(error)
        pending = nil
        return .reject(error)
    }

    private mutating func continueOrWait() -> HTTPParserAction {
        if !continueSent, pending?.minorVersion == 1, pending?.header("expect")?.lowercased() == "100-continue" {
            continueSent = true
            return .sendContinue
        }
        return .needMoreBytes
    }

    private mutating func finishRequest() -> HTTPParserAction {
        guard let request = pending else { return fail(.badRequest("internal parser state")) }
        pending = nil
        continueSent = false
        state = .head(scanned: 0)
        return .request(request)
    }

    // MARK: - Head

    /// Finds and parses a complete head. nil: need more bytes.
    private mutating func parseHead(scanned: Int) -> Result<Void, HTTPParseError>? {
        // Tolerate empty lines before a request line (RFC 9112 section 2.2).
        while buffer.count - start >= 2 && buffer[start] == 0x0D && buffer[start + 1] == 0x0A { start += 2 }
        if buffer.count - start == 1 && buffer[start] == 0x0D { return nil }
        let from = start + max(0, scanned - 3)
        // The same verdict whether the head arrives whole or in pieces: a bare LF within
        // the size limit is a 400, otherwise passing the limit is a 431.
        let limitEnd = start + limits.maxHeaderBytes
        guard let end = findHeadEnd(from: from) else {
            let unconsumed = buffer.count - start
            if hasBareLineFeed(in: start + scanned..<min(buffer.count, limitEnd)) {
                return .failure(.badRequest("line not terminated by CRLF"))
            }
            if unconsumed > limits.maxHeaderBytes { return .failure(.headersTooLarge) }
            state = .head(scanned: unconsumed)
            return nil
        }
        // `end` is the index of the CR of the final CRLFCRLF.
        if hasBareLineFeed(in: start..<min(end, limitEnd)) { return .failure(.badRequest("line not terminated by CRLF")) }
        if end + 4 - start > limits.maxHeaderBytes { return .failure(.headersTooLarge) }
        let head = start..<end
        start = end + 4
        switch buildRequest(head) {
        case .failure(let error): return .failure(error)
        case .success(let (request, framing)):
            pending = request
            switch framing {
            case .none:
                state = .fixedBody(length: 0)
            case .length(let n):
                if n > limits.maxBodyBytes { return .failure(.bodyTooLarge) }
                state = .fixedBody(length: n)
                if n > Self.largeBody {
                    // A large body: drop the head and make room once, so the buffer does
                    // not double its way up and can become the body without a copy.
                    buffer.removeSubrange(0..<start)
                    start = 0
                    buffer.reserveCapacity(n)
                }
            case .chunked:
                state = .chunkedBody(ChunkedBodyDecoder(limits: ChunkedBodyDecoder.Limits(
                    maxBodyBytes: limits.maxBodyBytes, maxTrailerBytes: limits.maxHeaderBytes)))
            }
            return .success(())
        }
    }

    private enum Framing { case none, length(Int), chunked }

    private func buildRequest(_ head: Range<Int>) -> Result<(HTTPRequest, Framing), HTTPParseError> {
        buffer.withUnsafeBufferPointer { buildRequest(head, in: $0) }
    }

    /// The header fields the parser itself acts on.
    private enum FramingField { case contentLength, transferEncoding, connection, host, other }

    private func buildRequest(_ head: Range<Int>, in p: UnsafeBufferPointer<UInt8>) -> Result<(HTTPRequest, Framing), HTTPParseError> {
        guard let firstLineEnd = findCRLF(from: head.lowerBound, limit: head.upperBound + 2, in: p) else {
            return .failure(.badRequest("malformed request line"))
        }
        let requestLine = head.lowerBound..<min(firstLineEnd, head.upperBound)
        guard var request = parseRequestLine(requestLine, in: p) else {
            return .failure(.badRequest("malformed request line"))
        }
        request.headers.reserveCapacity(head.count)
        var lineStart = requestLine.upperBound + 2
        var fields = 0
        var contentLength: Int?
        var contentLengthTooLarge = false
        var chunked = false
        var transferEncodingSeen = false
        var closeRequested = false
        var keepAliveRequested = false
        var hostSeen = false
        while lineStart < head.upperBound {
            let lineEnd = findCRLF(from: lineStart, limit: head.upperBound + 2, in: p) ?? head.upperBound
            let line = lineStart..<min(lineEnd, head.upperBound)
            lineStart = line.upperBound + 2
            fields += 1
            if fields > limits.maxHeaderFields { return .failure(.headersTooLarge) }
            if !line.isEmpty, p[line.lowerBound] == 0x20 || p[line.lowerBound] == 0x09 {
                return .failure(.badRequest("folded header line"))
            }
            guard let (name, value) = parseField(line, in: p) else { return .failure(.badRequest("malformed header field")) }
            switch Self.framingField(name, in: p) {
            case .contentLength:
                if contentLength != nil || contentLengthTooLarge { return .failure(.badRequest("repeated Content-Length")) }
                guard !value.isEmpty, value.allSatisfy({ p[$0] >= 0x30 && p[$0] <= 0x39 }) else {
                    return .failure(.badRequest("bad Content-Length"))
                }
                if value.count > 15 {
                    contentLengthTooLarge = true
                } else {
                    contentLength = value.reduce(0) { $0 * 10 + Int(p[$1] - 0x30) }
                }
            case .transferEncoding:
                if transferEncodingSeen { return .failure(.badRequest("repeated Transfer-Encoding")) }
                transferEncodingSeen = true
                guard Self.equalsIgnoringCase(value, "chunked", in: p) else {
                    return .failure(.badRequest("unsupported Transfer-Encoding"))
                }
                chunked = true
            case .connection:
                for token in string(value, in: p).lowercased().split(separator: ",") {
                    let t = HTTPSyntax.trimmingOptionalWhitespace(token)
                    if t == "close" { closeRequested = true }
                    if t == "keep-alive" { keepAliveRequested = true }
                }
            case .host:
                if hostSeen { return .failure(.badRequest("repeated Host")) }
                hostSeen = true
            case .other:
                break
            }
            request.headers.append(name: UnsafeBufferPointer(rebasing: p[name]), value: UnsafeBufferPointer(rebasing: p[value]),
                                   lowercasing: true)
        }
        if request.minorVersion == 1 && !hostSeen { return .failure(.badRequest("missing Host header")) }
        if transferEncodingSeen && (contentLength != nil || contentLengthTooLarge) {
            return .failure(.badRequest("both Content-Length and Transfer-Encoding"))
        }
        // HTTP/1.0 with Transfer-Encoding: the connection closes after the answer (RFC 9112
        // section 6.1: the framing of what follows cannot be trusted).
        request.keepAlive = request.minorVersion == 1
            ? !closeRequested
            : (keepAliveRequested && !closeRequested && !transferEncodingSeen)
        let framing: Framing
        if chunked {
            framing = .chunked
        } else if contentLengthTooLarge {
            framing = .length(Int.max)
        } else if let n = contentLength, n > 0 {
            framing = .length(n)
        } else {
            framing = .none
        }
        return .success((request, framing))
    }

    private func parseRequestLine(_ line: Range<Int>, in p: UnsafeBufferPointer<UInt8>) -> HTTPRequest? {
        guard let sp1 = index(of: 0x20, in: line, of: p) else { return nil }
        guard let sp2 = index(of: 0x20, in: sp1 + 1..<line.upperBound, of: p) else { return nil }
        let method = line.lowerBound..<sp1
        let target = sp1 + 1..<sp2
        let version = sp2 + 1..<line.upperBound
        guard !method.isEmpty, method.allSatisfy({ HTTPSyntax.isTokenByte(p[$0]) }) else { return nil }
        guard !target.isEmpty, p[target.lowerBound] == UInt8(ascii: "/"),
              target.allSatisfy({ p[$0] > 0x20 && p[$0] < 0x7F }) else { return nil }
        guard version.count == 8, Self.equals(version.lowerBound..<version.lowerBound + 7, "HTTP/1.", in: p) else {
            return nil
        }
        let minor: Int
        switch p[version.upperBound - 1] {
        case UInt8(ascii: "1"): minor = 1
        case UInt8(ascii: "0"): minor = 0
        default: return nil
        }
        let path: String
        var query: String?
        if let q = index(of: UInt8(ascii: "?"), in: target, of: p) {
            path = string(target.lowerBound..<q, in: p)
            query = string(q + 1..<target.upperBound, in: p)
        } else {
            path = string(target, in: p)
        }
        return HTTPRequest(method: string(method, in: p), path: path, query: query, minorVersion: minor,
                           headers: [], body: [], keepAlive: true)
    }

    /// `name: value` with a token name, no space before the colon, and a value of
    /// visible characters, spaces, tabs and obs-text only: the name's and the value's
    /// bytes (the value without surrounding whitespace).
    private func parseField(_ line: Range<Int>, in p: UnsafeBufferPointer<UInt8>) -> (name: Range<Int>, value: Range<Int>)? {
        guard let colon = index(of: UInt8(ascii: ":"), in: line, of: p), colon > line.lowerBound else { return nil }
        let name = line.lowerBound..<colon
        for i in name where !HTTPSyntax.isTokenByte(p[i]) { return nil }
        var valueStart = colon + 1
        var valueEnd = line.upperBound
        while valueStart < valueEnd && (p[valueStart] == 0x20 || p[valueStart] == 0x09) { valueStart += 1 }
        while valueEnd > valueStart && (p[valueEnd - 1] == 0x20 || p[valueEnd - 1] == 0x09) { valueEnd -= 1 }
        guard HTTPSyntax.isFieldValue(valueStart..<valueEnd, in: p) else { return nil }
        return (name, valueStart..<valueEnd)
    }

    /// A header name (token bytes) matched against the ones framing depends on, without
    /// a String: by length, then byte by byte with ASCII letters folded to lower case.
    private static func framingField(_ name: Range<Int>, in p: UnsafeBufferPointer<UInt8>) -> FramingField {
        switch name.count {
        case 4: return equalsIgnoringCase(name, "host", in: p) ? .host : .other
        case 10: return equalsIgnoringCase(name, "connection", in: p) ? .connection : .other
        case 14: return equalsIgnoringCase(name, "content-length", in: p) ? .contentLength : .other
        case 17: return equalsIgnoringCase(name, "transfer-encoding", in: p) ? .transferEncoding : .other
        default: return .other
        }
    }

    /// Whether the bytes equal `lowercase` (lower-case letters, digits and `-` only) with
    /// ASCII letters compared case-insensitively.
    private static func equalsIgnoringCase(_ range: Range<Int>, _ lowercase: StaticString, in p: UnsafeBufferPointer<UInt8>) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let w = lowercase.utf8Start
        for k in 0..<range.count {
            let b = p[range.lowerBound + k]
            let folded = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
            if folded != w[k] { return false }
        }
        return true
    }

    private static func equals(_ range: Range<Int>, _ text: StaticString, in p: UnsafeBufferPointer<UInt8>) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        let w = text.utf8Start
        for k in 0..<range.count where p[range.lowerBound + k] != w[k] { return false }
        return true
    }

    // MARK: - Byte helpers

    private func string(_ range: Range<Int>, in p: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: p[range]), as: UTF8.self)
    }

    /// The first `byte` in `range` (memchr: a word or a vector at a time).
    private func index(of byte: UInt8, in range: Range<Int>, of p: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let base = p.baseAddress, range.lowerBound >= 0, range.upperBound <= p.count, !range.isEmpty,
              let hit = memchr(base + range.lowerBound, Int32(byte), range.count) else { return nil }
        return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
    }

    /// Index of the CR of the next CRLF at or after `from` (before `limit`).
    private func findCRLF(from: Int, limit: Int, in p: UnsafeBufferPointer<UInt8>) -> Int? {
        let end = min(limit, p.count)
        var i = from
        while i + 1 < end {
            guard let cr = index(of: 0x0D, in: i..<end - 1, of: p) else { return nil }
            if p[cr + 1] == 0x0A { return cr }
            i = cr + 1
        }
        return nil
    }

    /// Whether a LF not preceded by CR appears in `range`: such a head would never
    /// complete, so it is refused at once rather than at the size limit.
    private func hasBareLineFeed(in range: Range<Int>) -> Bool {
        buffer.withUnsafeBufferPointer { p in
            var i = max(range.lowerBound, start)
            let end = min(range.upperBound, p.count)
            while i < end {
                guard let lf = index(of: 0x0A, in: i..<end, of: p) else { return false }
                if lf == start || p[lf - 1] != 0x0D { return true }
                i = lf + 1
            }
            return false
        }
    }

    /// Index of the CR of the first CRLFCRLF at or after `from`.
    private func findHeadEnd(from: Int) -> Int? {
        buffer.withUnsafeBufferPointer { p in
            var i = from
            let n = p.count
            while i + 3 < n {
                if p[i + 3] != 0x0A {
                    // The terminator cannot end here; skip ahead as far as it is safe.
                    i += p[i + 3] == 0x0D ? 1 : 4
                    continue
                }
                if p[i] == 0x0D && p[i + 1] == 0x0A && p[i + 2] == 0x0D { return i }
                i += 1
            }
            return nil
        }
    }
}
