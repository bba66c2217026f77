import HTTPCore
import XCTest

/// What the decoder made of some bytes: the body, whether it ended (and what followed
/// it), or why it failed.
private struct Outcome: Equatable {
    var body: [UInt8] = []
    var ended = false
    /// Bytes given after the end, left unconsumed.
    var rest: [UInt8] = []
    var error: ChunkedBodyError?
}

/// Feeds `pieces` one after another as a caller does: the bytes it did not consume stay
/// buffered and are given again with the next piece.
private func decode(_ pieces: [[UInt8]], limits: ChunkedBodyDecoder.Limits,
                    file: StaticString = #filePath, line: UInt = #line) -> Outcome {
    var decoder = ChunkedBodyDecoder(limits: limits)
    var buffered: [UInt8] = []
    var outcome = Outcome()
    for piece in pieces {
        buffered += piece
        if outcome.ended { continue }
        drain: while true {
            let (event, consumed) = buffered.withUnsafeBufferPointer { decoder.decode($0) }
            XCTAssertLessThanOrEqual(consumed, buffered.count, file: file, line: line)
            switch event {
            case .data(let range):
                XCTAssertFalse(range.isEmpty, "no empty data", file: file, line: line)
                XCTAssertEqual(consumed, range.upperBound, "data is consumed through its end", file: file, line: line)
                outcome.body += buffered[range]
                buffered.removeFirst(consumed)
            case .needMoreBytes:
                XCTAssertEqual(consumed, buffered.count, "framing is consumed as it comes", file: file, line: line)
                buffered.removeFirst(consumed)
                break drain
            case .end:
                buffered.removeFirst(consumed)
                outcome.ended = true
                break drain
            case .failed(let error):
                outcome.error = error
                let again = buffered.withUnsafeBufferPointer { decoder.decode($0) }
                XCTAssertEqual(again.event, .failed(error), "a failure is final", file: file, line: line)
                return outcome
            }
        }
    }
    if outcome.ended { outcome.rest = buffered }
    return outcome
}

private let defaultLimits = ChunkedBodyDecoder.Limits(maxTrailerBytes: 1024)

final class ChunkedBodyDecoderTests: XCTestCase {
    /// Decodes `text` whole, split in two at every byte and byte by byte; every way must
    /// give `expected`.
    private func assertEverySplit(_ text: String, _ expected: Outcome, limits: ChunkedBodyDecoder.Limits = defaultLimits,
                                  file: StaticString = #filePath, line: UInt = #line) {
        let input = Array(text.utf8)
        XCTAssertEqual(decode([input], limits: limits, file: file, line: line), expected, "whole", file: file, line: line)
        for split in 0...input.count {
            XCTAssertEqual(decode([Array(input[..<split]), Array(input[split...])], limits: limits, file: file, line: line),
                           expected, "split at \(split)", file: file, line: line)
        }
        XCTAssertEqual(decode(input.map { [$0] }, limits: limits, file: file, line: line), expected, "byte by byte",
                       file: file, line: line)
    }

    private func body(_ text: String, rest: String = "") -> Outcome {
        Outcome(body: Array(text.utf8), ended: true, rest: Array(rest.utf8))
    }

    private func failure(_ error: ChunkedBodyError, after text: String = "") -> Outcome {
        Outcome(body: Array(text.utf8), error: error)
    }

    func testChunksOfEitherCaseOfHexAndLeadingZeros() {
        assertEverySplit("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", body("0123456789abcdefghij"))
        assertEverySplit("0005\r\nhello\r\n000\r\n\r\n", body("hello"))
        // Fifteen digits, leading zeros counted: the most a size may have.
        assertEverySplit("00000000000000B\r\nhello world\r\n0\r\n\r\n", body("hello world"))
        assertEverySplit("0\r\n\r\n", body(""))
    }

    func testTooManyDigitsAreRefusedBeforeAnyOverflow() {
        assertEverySplit("0000000000000001\r\nx\r\n0\r\n\r\n", failure(.malformedChunkSize))
        assertEverySplit("FFFFFFFFFFFFFFFF\r\n", failure(.malformedChunkSize))
        assertEverySplit("10000000000000000000000000000000\r\n", failure(.malformedChunkSize))
        // The largest size there is: announced, then waited for.
        assertEverySplit("FFFFFFFFFFFFFFF\r\nabc", Outcome(body: Array("abc".utf8)))
    }

    func testExtensionsAndWhitespaceAfterTheSizeAreIgnored() {
        assertEverySplit("5;name=value;quoted=\"a b\"\r\nhello\r\n6 \t;x\r\n world\r\n0;last\r\n\r\n", body("hello world"))
        assertEverySplit("5  \r\nhello\r\n0\r\n\r\n", body("hello"))
        assertEverySplit("5;\u{80}obs\tok\r\nhello\r\n0\r\n\r\n", body("hello"))
    }

    func testMalformedChunkSizeLines() {
        for line in ["zz", "", ";ext", " 5", "\t5", "5 x", "5 6", "-5", "0x5", "5;a\u{1}b", "5;a\u{7}"] {
            assertEverySplit(line + "\r\nhello\r\n0\r\n\r\n", failure(.malformedChunkSize))
        }
    }

    func testLineEndsMustBeCRLF() {
        // A bare LF ends no line: not the size line's, the data's, a trailer's, nor the last.
        assertEverySplit("5\nhello\r\n0\r\n\r\n", failure(.malformedChunkSize))
        assertEverySplit("5;ext\nhello\r\n0\r\n\r\n", failure(.malformedChunkSize))
        assertEverySplit("5\r\nhello\n0\r\n\r\n", failure(.dataNotFollowedByCRLF, after: "hello"))
        assertEverySplit("0\r\nX: y\n\r\n", failure(.malformedTrailerField))
        assertEverySplit("0\r\n\n", failure(.malformedTrailerField))
        // A CR that is not followed by LF.
        assertEverySplit("5\rhello\r\n", failure(.malformedChunkSize))
        assertEverySplit("14e\rtr\r\n", failure(.malformedChunkSize))
        assertEverySplit("2\r\nab\rX", failure(.dataNotFollowedByCRLF, after: "ab"))
        assertEverySplit("2\r\nabX\r\n0\r\n\r\n", failure(.dataNotFollowedByCRLF, after: "ab"))
        assertEverySplit("0\r\n\rX", failure(.malformedTrailerField))
    }

    func testChunkSizeLineLengthLimit() {
        let longest = "5;" + String(repeating: "x", count: ChunkedBodyDecoder.maxSizeLineBytes - 2)
        assertEverySplit(longest + "\r\nhello\r\n0\r\n\r\n", body("hello"))
        assertEverySplit(longest + "x\r\nhello\r\n0\r\n\r\n", failure(.chunkSizeLineTooLong))
        assertEverySplit("5" + String(repeating: " ", count: 2000), failure(.chunkSizeLineTooLong))
    }

    func testTrailersAreCheckedAndDropped() {
        assertEverySplit("5\r\nhello\r\n0\r\nX-Trailer: t\r\nEmpty:\r\nSpaced: \t a b \t\r\nObs: \u{E9}\r\n\r\n", body("hello"))
        for trailer in ["No colon", ": v", " Folded: v", "Bad name: v", "X: a\u{7F}", "X: a\u{1}"] {
            assertEverySplit("0\r\n" + trailer + "\r\n\r\n", failure(.malformedTrailerField))
        }
    }

    func testTrailerSectionLimitCountsEachLineWithItsCRLF() {
        let limits = ChunkedBodyDecoder.Limits(maxTrailerBytes: 20)
        let eighteen = "X: " + String(repeating: "v", count: 15)
        assertEverySplit("0\r\n" + eighteen + "\r\n\r\n", body(""), limits: limits)
        assertEverySplit("0\r\n" + eighteen + "v\r\n\r\n", failure(.trailersTooLarge), limits: limits)
        assertEverySplit("0\r\nA: 12\r\nB: 34\r\nC: 56\r\n\r\n", failure(.trailersTooLarge), limits: limits)
        // Never ended: refused at the limit, not buffered.
        assertEverySplit("0\r\nX: " + String(repeating: "v", count: 100), failure(.trailersTooLarge), limits: limits)
    }

    func testBodyLimitCountsEveryChunk() {
        let limits = ChunkedBodyDecoder.Limits(maxBodyBytes: 10, maxTrailerBytes: 1024)
        assertEverySplit("6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", body("abcdefghij"), limits: limits)
        assertEverySplit("6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", failure(.bodyTooLarge, after: "abcdef"), limits: limits)
        assertEverySplit("B\r\n", failure(.bodyTooLarge), limits: limits)
        assertEverySplit("FFFFFFFFFFFFFFF\r\n", failure(.bodyTooLarge), limits: limits)
    }

    func testBytesAfterTheBodyAreLeftForWhatFollows() {
        assertEverySplit("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", body("hello", rest: "GET / HTTP/1.1\r\n"))
        assertEverySplit("0\r\nX: y\r\n\r\n0\r\n\r\n", body("", rest: "0\r\n\r\n"))
    }

    func testACutShortBodyWaitsForMore() {
        assertEverySplit("5\r\nhel", Outcome(body: Array("hel".utf8)))
        assertEverySplit("5\r\nhello\r", Outcome(body: Array("hello".utf8)))
        assertEverySplit("0\r\nX: y\r\n", Outcome())
    }

    /// Data is handed out as ranges of the bytes given, as soon as any is there: a chunk
    /// longer than what is buffered comes in pieces.
    func testDataIsHandedOutInPlaceAsItArrives() {
        var decoder = ChunkedBodyDecoder(limits: defaultLimits)
        let first = Array("A\r\nhel".utf8)
        let (event, consumed) = first.withUnsafeBufferPointer { decoder.decode($0) }
        XCTAssertEqual(event, .data(3..<6))
        XCTAssertEqual(consumed, 6)
        let second = Array("lo worl".utf8)
        XCTAssertEqual(second.withUnsafeBufferPointer { decoder.decode($0) }.event, .data(0..<7))
        let third = Array("\r\n0\r\n\r\nnext".utf8)
        let end = third.withUnsafeBufferPointer { decoder.decode($0) }
        XCTAssertEqual(end.event, .end)
        XCTAssertEqual(end.consumed, 7, "what follows the body is not consumed")
    }
}
