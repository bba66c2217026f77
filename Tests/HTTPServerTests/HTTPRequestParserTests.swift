import XCTest
@testable import HTTPServer

/// What a parser produced for some bytes: the requests in order, then how it ended.
private struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    var rejection: HTTPParseError?
    var continues = 0
}

/// Feeds `chunks` one after another, draining actions after each.
private func parse(_ chunks: [[UInt8]], limits: HTTPLimits = HTTPLimits()) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    for chunk in chunks {
        parser.append(chunk)
        drain: while true {
            switch parser.next() {
            case .needMoreBytes: break drain
            case .sendContinue: outcome.continues += 1
            case .request(let r): outcome.requests.append(r)
            case .reject(let e):
                outcome.rejection = e
                return outcome
            }
        }
    }
    return outcome
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

final class HTTPRequestParserTests: XCTestCase {
    static let review = #"{"kind":"AdmissionReview"}"#

    /// Requests the server must accept, with what they must parse to.
    static let accepted: [(name: String, input: String, expected: [HTTPRequest])] = [
        ("post with content-length",
         "POST /validate?timeout=10s HTTP/1.1\r\nHost: svc.ns.svc:443\r\nContent-Type: application/json\r\nContent-Length: \(review.utf8.count)\r\n\r\n\(review)",
         [HTTPRequest(method: "POST", path: "/validate", query: "timeout=10s",
                      headers: [HTTPHeader(name: "host", value: "svc.ns.svc:443"),
                                HTTPHeader(name: "content-type", value: "application/json"),
                                HTTPHeader(name: "content-length", value: "\(review.utf8.count)")],
                      body: bytes(review))]),
        ("chunked with extension and trailer",
         "POST /mutate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
         [HTTPRequest(method: "POST", path: "/mutate",
                      headers: [HTTPHeader(name: "host", value: "x"), HTTPHeader(name: "transfer-encoding", value: "chunked")],
                      body: bytes("hello world"))]),
        ("pipelined keep-alive then close",
         "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
         [HTTPRequest(method: "GET", path: "/healthz", headers: [HTTPHeader(name: "host", value: "a")]),
          HTTPRequest(method: "GET", path: "/readyz",
                      headers: [HTTPHeader(name: "host", value: "a"), HTTPHeader(name: "connection", value: "close")],
                      keepAlive: false)]),
        ("HTTP/1.0 closes by default, header whitespace trimmed",
         "GET /healthz HTTP/1.0\r\nX-A: \t spaced \t\r\n\r\n",
         [HTTPRequest(method: "GET", path: "/healthz", minorVersion: 0,
                      headers: [HTTPHeader(name: "x-a", value: "spaced")], keepAlive: false)]),
        ("leading empty line tolerated, mixed-case names",
         "\r\nGET /metrics HTTP/1.1\r\nHOST: h\r\nConnection: Keep-Alive, Upgrade\r\n\r\n",
         [HTTPRequest(method: "GET", path: "/metrics",
                      headers: [HTTPHeader(name: "host", value: "h"), HTTPHeader(name: "connection", value: "Keep-Alive, Upgrade")])]),
        ("content-length zero",
         "POST /validate HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
         [HTTPRequest(method: "POST", path: "/validate",
                      headers: [HTTPHeader(name: "host", value: "h"), HTTPHeader(name: "content-length", value: "0")])]),
    ]

    /// Inputs the server must refuse, with the error each maps to.
    static let refused: [(name: String, input: String, error: HTTPParseError, status: Int)] = [
        ("no version", "GET /healthz\r\nHost: h\r\n\r\n", .badRequest("malformed request line"), 400),
        ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .badRequest("malformed request line"), 400),
        ("unknown version", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", .badRequest("malformed request line"), 400),
        ("absolute target", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", .badRequest("malformed request line"), 400),
        ("space in method", "G T / HTTP/1.1\r\nHost: h\r\n\r\n", .badRequest("malformed request line"), 400),
        ("folded header", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n  b\r\n\r\n", .badRequest("folded header line"), 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", .badRequest("malformed header field"), 400),
        ("no colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", .badRequest("malformed header field"), 400),
        ("control byte in value", "GET / HTTP/1.1\r\nHost: h\u{1}\r\n\r\n", .badRequest("malformed header field"), 400),
        ("bare LF", "GET / HTTP/1.1\nHost: h\n\n", .badRequest("line not terminated by CRLF"), 400),
        ("missing host", "GET / HTTP/1.1\r\n\r\n", .badRequest("missing Host header"), 400),
        ("CL and TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         .badRequest("both Content-Length and Transfer-Encoding"), 400),
        ("negative CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", .badRequest("bad Content-Length"), 400),
        ("CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\nx", .badRequest("bad Content-Length"), 400),
        ("repeated CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
         .badRequest("repeated Content-Length"), 400),
        ("gzip TE", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         .badRequest("unsupported Transfer-Encoding"), 400),
        ("bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .badRequest("malformed chunk size"), 400),
        ("chunk without CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n",
         .badRequest("chunk data not followed by CRLF"), 400),
        ("body over limit by CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7340033\r\n\r\n", .bodyTooLarge, 413),
        ("absurd CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", .bodyTooLarge, 413),
        ("chunk over limit", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n700001\r\n", .bodyTooLarge, 413),
    ]

    func testAcceptedCorpusWholeAndSplitAtEveryByte() {
        for fixture in Self.accepted {
            let input = bytes(fixture.input)
            let whole = parse([input])
            XCTAssertNil(whole.rejection, fixture.name)
            XCTAssertEqual(whole.requests, fixture.expected, fixture.name)
            for split in 0...input.count {
                let parts = parse([Array(input[..<split]), Array(input[split...])])
                XCTAssertEqual(parts.requests, fixture.expected, "\(fixture.name) split at \(split)")
                XCTAssertNil(parts.rejection, "\(fixture.name) split at \(split)")
            }
            let trickle = parse(input.map { [$0] })
            XCTAssertEqual(trickle.requests, fixture.expected, "\(fixture.name) byte by byte")
        }
    }

    func testRefusedCorpusWholeAndSplitAtEveryByte() {
        for fixture in Self.refused {
            let input = bytes(fixture.input)
            let whole = parse([input])
            XCTAssertEqual(whole.rejection, fixture.error, fixture.name)
            XCTAssertEqual(whole.rejection?.status.code, fixture.status, fixture.name)
            XCTAssertTrue(whole.requests.isEmpty, fixture.name)
            for split in 0...input.count {
                let parts = parse([Array(input[..<split]), Array(input[split...])])
                XCTAssertEqual(parts.rejection, fixture.error, "\(fixture.name) split at \(split)")
            }
        }
    }

    func testHeaderSectionLimits() {
        let limits = HTTPLimits(maxHeaderBytes: 1024, maxHeaderFields: 5, maxBodyBytes: 100)
        let big = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n"
        XCTAssertEqual(parse([bytes(big)], limits: limits).rejection, .headersTooLarge)
        // Never terminated: refused once the limit is passed, not buffered forever.
        let endless = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(String(repeating: "a", count: 2000))"
        XCTAssertEqual(parse([bytes(endless)], limits: limits).rejection, .headersTooLarge)
        let many = "GET / HTTP/1.1\r\nHost: h\r\n" + (1...5).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        XCTAssertEqual(parse([bytes(many)], limits: limits).rejection, .headersTooLarge)
        XCTAssertEqual(parse([bytes(many)], limits: limits).rejection?.status.code, 431)
        let five = "GET / HTTP/1.1\r\nHost: h\r\n" + (1...4).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        XCTAssertEqual(parse([bytes(five)], limits: limits).requests.count, 1)
        let body = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n"
        XCTAssertEqual(parse([bytes(body)], limits: limits).rejection, .bodyTooLarge)
        let chunks = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + String(repeating: "a", count: 64)
            + "\r\n40\r\n"
        XCTAssertEqual(parse([bytes(chunks)], limits: limits).rejection, .bodyTooLarge)
    }

    func testExpectContinueIsAnnouncedOnceWhileTheBodyIsMissing() {
        let head = "POST /validate HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
        let early = parse([bytes(head), bytes("abc")])
        XCTAssertEqual(early.continues, 1)
        XCTAssertEqual(early.requests.map(\.body), [bytes("abc")])
        let together = parse([bytes(head + "abc")])
        XCTAssertEqual(together.continues, 0, "no 100 Continue when the body is already here")
    }

    func testRequestAwaitingBodyExposesTheHeadForDeadlines() {
        var parser = HTTPRequestParser()
        parser.append(bytes("POST /validate?timeout=2s HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"))
        XCTAssertEqual(parser.next(), .needMoreBytes)
        XCTAssertEqual(parser.requestAwaitingBody?.queryParameter("timeout"), "2s")
        XCTAssertTrue(parser.isMidRequest)
    }

    /// Fuzzing finding (FuzzHTTPParser): a bare LF inside an otherwise complete head was
    /// refused as "malformed request line" when whole and as "line not terminated by CRLF"
    /// when split.
    func testFuzzFindingBareLineFeedInCompleteHeadGetsOneVerdict() {
        let input = bytes("GET /healthz HTTP/1.1\rt\nHost: a\r\n\r\n")
        let whole = parse([input])
        XCTAssertEqual(whole.rejection, .badRequest("line not terminated by CRLF"))
        for split in 0...input.count {
            XCTAssertEqual(parse([Array(input[..<split]), Array(input[split...])]).rejection, whole.rejection, "split at \(split)")
        }
    }

    /// Fuzzing finding (FuzzHTTPParser, stride 1): a chunk-size line with a stray CR was
    /// "malformed" when whole but "too long" when it arrived byte by byte.
    func testFuzzFindingChunkSizeLineGetsOneVerdictWholeOrTrickled() {
        let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        for line in ["14e\rtr" + String(repeating: "x", count: 1100), "14e;" + String(repeating: "x", count: 1100), "zz", "5 ;ok"] {
            let input = bytes(head + line + "\r\n")
            let whole = parse([input])
            XCTAssertEqual(parse(input.map { [$0] }).rejection, whole.rejection, line.prefix(8) + "... trickled")
            for split in stride(from: 0, through: input.count, by: 7) {
                XCTAssertEqual(parse([Array(input[..<split]), Array(input[split...])]).rejection, whole.rejection, "split at \(split)")
            }
        }
        XCTAssertEqual(parse([bytes(head + "14e\rtr\r\n")]).rejection, .badRequest("malformed chunk size"))
        XCTAssertEqual(parse([bytes(head + "14e;" + String(repeating: "x", count: 1100) + "\r\n")]).rejection,
                       .badRequest("chunk size line too long"))
    }

    /// Found while fixing the finding above: a bare LF past the header limit gave 431 whole
    /// and 400 in pieces; the limit now bounds where a bare LF counts.
    func testBareLineFeedBeyondTheHeaderLimitIs431WholeOrTrickled() {
        let limits = HTTPLimits(maxHeaderBytes: 64, maxHeaderFields: 10, maxBodyBytes: 100)
        let input = bytes("GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: 80) + "\nX: y\r\n\r\n")
        XCTAssertEqual(parse([input], limits: limits).rejection, .headersTooLarge)
        XCTAssertEqual(parse(input.map { [$0] }, limits: limits).rejection, .headersTooLarge)
    }

    /// Header fields are kept as bytes: names lowercased as they arrive, values read in
    /// place or as Strings, the first of repeated names found, all of them iterated in order.
    func testHeaderFieldsKeptAsBytes() throws {
        let outcome = parse([bytes("POST /v HTTP/1.1\r\nHost: h\r\nContent-TYPE:  Application/JSON \r\nX-Dup: one\r\nx-dup: two\r\nX-Empty:\r\n\r\n")])
        let request = try XCTUnwrap(outcome.requests.first)
        XCTAssertEqual(request.headers.count, 5)
        XCTAssertEqual(request.header("content-type"), "Application/JSON")
        XCTAssertEqual(request.headers.withValue(of: "content-type") { $0.count }, 16, "read in place, trimmed")
        XCTAssertEqual(request.header("x-dup"), "one", "the first of repeated fields")
        XCTAssertEqual(request.header("x-empty"), "")
        XCTAssertNil(request.header("Content-Type"), "names are looked up lowercased")
        XCTAssertNil(request.header("x-missing"))
        XCTAssertEqual(Array(request.headers), [HTTPHeader(name: "host", value: "h"),
                                                HTTPHeader(name: "content-type", value: "Application/JSON"),
                                                HTTPHeader(name: "x-dup", value: "one"), HTTPHeader(name: "x-dup", value: "two"),
                                                HTTPHeader(name: "x-empty", value: "")])
        XCTAssertEqual(request.headers, HTTPHeaders(Array(request.headers)), "built from the same fields, equal")
    }

    /// A large body is read straight into its storage: the parser says how many of its
    /// bytes are still to come (never more, so a pipelined request's bytes stay out), and
    /// whatever the reads' sizes, the request carries exactly the bytes written, followed
    /// by the next request read the ordinary way.
    func testLargeBodyReadStraightIntoItsStorage() {
        let length = 200_000
        let body = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let next = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
        for (firstPart, step) in [(0, 16_384), (1, 1), (5_000, 65_536), (length - 1, 3)] {
            var parser = HTTPRequestParser()
            XCTAssertNil(parser.largeBodyBytesExpected, "no body before a head")
            parser.append(bytes("POST /validate HTTP/1.1\r\nHost: h\r\nContent-Length: \(length)\r\n\r\n") + body[0..<firstPart])
            XCTAssertEqual(parser.next(), .needMoreBytes)
            var offset = firstPart
            var reads = 0
            while let expected = parser.largeBodyBytesExpected {
                XCTAssertEqual(expected, length - offset)
                let wanted = min(expected, step == 1 ? 1 + reads % 5 : step)
                let written = parser.receive(upTo: wanted) { room in
                    XCTAssertEqual(room.count, wanted)
                    // A read may write less than it was offered.
                    let count = reads % 3 == 2 ? max(1, wanted / 2) : wanted
                    room.copyBytes(from: body[offset..<offset + count])
                    return count
                }
                offset += written
                reads += 1
                if offset < length { XCTAssertEqual(parser.next(), .needMoreBytes) }
            }
            XCTAssertEqual(offset, length, "first part \(firstPart)")
            guard case .request(let request) = parser.next() else { return XCTFail("no request after \(reads) reads") }
            XCTAssertTrue(request.body == body, "the body as written, first part \(firstPart)")
            parser.append(bytes(next))
            var requests: [HTTPRequest] = []
            while case .request(let request) = parser.next() { requests.append(request) }
            XCTAssertEqual(requests.map(\.path), ["/healthz"])
        }
    }

    /// The same bytes through `receive` and through `append` give the same request.
    func testLargeBodyReceivedEqualsLargeBodyAppended() {
        let length = 70_000
        let body = (0..<length).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let head = bytes("POST /validate HTTP/1.1\r\nHost: h\r\nContent-Length: \(length)\r\n\r\n")
        var direct = HTTPRequestParser()
        direct.append(head)
        XCTAssertEqual(direct.next(), .needMoreBytes)
        var offset = 0
        while let expected = direct.largeBodyBytesExpected {
            offset += direct.receive(upTo: min(expected, 16_384)) { room in
                let count = min(room.count, length - offset)
                room.copyBytes(from: body[offset..<offset + count])
                return count
            }
        }
        guard case .request(let received) = direct.next() else { return XCTFail("no request") }
        XCTAssertTrue(received == parse([head, body]).requests.first)
        XCTAssertTrue(received.body == body)
        var small = HTTPRequestParser()
        small.append(bytes("POST /validate HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"))
        XCTAssertEqual(small.next(), .needMoreBytes)
        XCTAssertNil(small.largeBodyBytesExpected, "a small body comes through the read buffer")
    }

    func testManyPipelinedRequestsInOneBuffer() {
        let one = "POST /validate HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"
        let outcome = parse([bytes(String(repeating: one, count: 100))])
        XCTAssertEqual(outcome.requests.count, 100)
        XCTAssertTrue(outcome.requests.allSatisfy { $0.body == bytes("{}") })
    }
}

final class ListenAddressTests: XCTestCase {
    func testListenAddress() {
        XCTAssertEqual(ListenAddress("127.0.0.1:8443"), ListenAddress(host: "127.0.0.1", port: 8443))
        XCTAssertEqual(ListenAddress(":9443"), ListenAddress(host: "0.0.0.0", port: 9443))
        XCTAssertEqual(ListenAddress("[::1]:9443"), ListenAddress(host: "::1", port: 9443))
        XCTAssertNil(ListenAddress("::1:9443"))
        XCTAssertNil(ListenAddress("host"))
        XCTAssertNil(ListenAddress("host:99999"))
    }
}
