import KubernetesClient
import XCTest

final class HTTPResponseDecoderTests: XCTestCase {
    /// Feeds `bytes` split at `split` (and whole), returning the head and the body.
    private func decode(_ text: String, split: Int? = nil, close: Bool = false) throws -> (HTTPResponseHead?, [UInt8], Bool) {
        let bytes = Array(text.utf8)
        var decoder = HTTPResponseDecoder()
        var events: [HTTPResponseDecoder.Event] = []
        if let split {
            events += try decoder.feed(bytes[..<split])
            events += try decoder.feed(bytes[split...])
        } else {
            events += try decoder.feed(bytes)
        }
        if close { events += try decoder.finish() }
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var ended = false
        for event in events {
            switch event {
            case .head(let h): head = h
            case .body(let b): body += b
            case .end: ended = true
            }
        }
        return (head, body, ended)
    }

    private func assertEveryBoundary(_ text: String, status: Int, body: String, close: Bool = false,
                                     file: StaticString = #filePath, line: UInt = #line) throws {
        for split in 0...text.utf8.count {
            let (head, decoded, ended) = try decode(text, split: split, close: close)
            XCTAssertEqual(head?.status, status, "split at \(split)", file: file, line: line)
            XCTAssertEqual(String(decoding: decoded, as: UTF8.self), body, "split at \(split)", file: file, line: line)
            XCTAssertTrue(ended, "split at \(split)", file: file, line: line)
        }
    }

    func testContentLengthAtEveryBoundary() throws {
        try assertEveryBoundary("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"items\":1}",
                                status: 200, body: "{\"items\":1}")
    }

    func testChunkedWithExtensionsAndTrailerAtEveryBoundary() throws {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\n{\"a\":\r\n" + "B\r\n1}\n{\"b\":2}\n\r\n" + "0\r\nX-Trailer: t\r\n\r\n"
        try assertEveryBoundary(response, status: 200, body: "{\"a\":1}\n{\"b\":2}\n")
    }

    func testBodyToTheCloseAtEveryBoundary() throws {
        try assertEveryBoundary("HTTP/1.1 401 Unauthorized\r\n\r\n{\"code\":401}", status: 401, body: "{\"code\":401}", close: true)
    }

    func testNoBodyStatuses() throws {
        let (head, body, ended) = try decode("HTTP/1.1 204 No Content\r\n\r\n")
        XCTAssertEqual(head?.status, 204)
        XCTAssertTrue(body.isEmpty)
        XCTAssertTrue(ended)
    }

    func testMalformedResponsesAreErrors() {
        XCTAssertThrowsError(try decode("HTTP/1.1 2000 OK\r\n\r\n"))
        XCTAssertThrowsError(try decode("SPDY 200\r\n\r\n"))
        XCTAssertThrowsError(try decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"))
        XCTAssertThrowsError(try decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"))
        XCTAssertThrowsError(try decode("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"))
        XCTAssertThrowsError(try decode("HTTP/1.1 200 OK\r\nBroken header\r\n\r\n"))
        // A chunk size of more digits than any real chunk: refused, never an overflow.
        XCTAssertThrowsError(try decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n"))
        // Cut short: the connection closed inside a chunked body.
        XCTAssertThrowsError(try decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", close: true))
    }

    /// The chunked framing is the shared decoder's, its verdicts carried as they are; a
    /// response the connection cut short says so, whatever part it was in.
    func testFramingErrorsSayWhatFailed() {
        func error(_ text: String, close: Bool = false) -> HTTPResponseError? {
            var decoder = HTTPResponseDecoder()
            do {
                _ = try decoder.feed(Array(text.utf8))
                if close { _ = try decoder.finish() }
                return nil
            } catch {
                return error
            }
        }
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        XCTAssertEqual(error(chunked + "5 garbage\r\n"), .chunked(.malformedChunkSize))
        XCTAssertEqual(error(chunked + "5\nhello"), .chunked(.malformedChunkSize))
        XCTAssertEqual(error(chunked + "2\r\nabX"), .chunked(.dataNotFollowedByCRLF))
        XCTAssertEqual(error(chunked + "0\r\nno colon\r\n\r\n"), .chunked(.malformedTrailerField))
        XCTAssertEqual(error(chunked + "5;" + String(repeating: "x", count: 2000)), .chunked(.chunkSizeLineTooLong))
        XCTAssertEqual(error(chunked + "5\r\nab", close: true), .endedEarly)
        XCTAssertEqual(error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", close: true), .endedEarly)
        XCTAssertEqual(error("HTTP/1.1 200", close: true), .endedEarly)
        XCTAssertNil(error(chunked + "0\r\n\r\n", close: true))
    }

    func testAHeaderSectionPastTheLimitIsRefused() {
        var decoder = HTTPResponseDecoder()
        let line = Array("X-Filler: \(String(repeating: "a", count: 1000))\r\n".utf8)
        XCTAssertThrowsError(try {
            _ = try decoder.feed(Array("HTTP/1.1 200 OK\r\n".utf8))
            for _ in 0..<100 { _ = try decoder.feed(line) }
        }())
    }
}
