import HTTPCore
import XCTest

final class HTTPSyntaxTests: XCTestCase {
    /// The word-at-a-time check agrees with the byte rule for every byte value at every
    /// position of ranges of every length and offset (words and tails alike).
    func testFieldValueMatchesTheByteRule() {
        for bad in UInt8.min...UInt8.max {
            for length in 0...19 {
                for position in 0..<max(length, 1) {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length + 3)
                    if length > 0 { bytes[1 + position] = bad }
                    let range = 1..<(1 + length)
                    let expected = range.allSatisfy { HTTPSyntax.isFieldValueByte(bytes[$0]) }
                    bytes.withUnsafeBufferPointer { p in
                        XCTAssertEqual(HTTPSyntax.isFieldValue(range, in: p), expected, "byte \(bad) at \(position) of \(length)")
                    }
                }
            }
        }
    }

    func testFieldValueOutsideTheBufferIsRefused() {
        [UInt8]("abc".utf8).withUnsafeBufferPointer { p in
            XCTAssertFalse(HTTPSyntax.isFieldValue(0..<4, in: p))
            XCTAssertTrue(HTTPSyntax.isFieldValue(1..<1, in: p))
        }
    }

    func testOptionalWhitespaceIsTrimmedOnBothSides() {
        XCTAssertEqual(HTTPSyntax.trimmingOptionalWhitespace(" \t keep-alive \t"), "keep-alive")
        XCTAssertEqual(HTTPSyntax.trimmingOptionalWhitespace("\t \t"), "")
        XCTAssertEqual(HTTPSyntax.trimmingOptionalWhitespace("a b"), "a b")
    }
}
