import Units
import XCTest

final class UnitsTests: XCTestCase {
    func testGoDurationSyntax() {
        XCTAssertEqual(GoDuration.milliseconds("10s"), 10_000)
        XCTAssertEqual(GoDuration.milliseconds("1m30s"), 90_000)
        XCTAssertEqual(GoDuration.milliseconds("500ms"), 500)
        XCTAssertEqual(GoDuration.milliseconds("1.5h"), 5_400_000)
        XCTAssertEqual(GoDuration.milliseconds("1ns"), 1)
        XCTAssertEqual(GoDuration.milliseconds("2us"), 1)
        XCTAssertEqual(GoDuration.milliseconds("0"), 0)
        for bad in ["", "10", "s", "1x", "-1s", "1.s5", "1e3s", "9999999999999h"] {
            XCTAssertNil(GoDuration.milliseconds(bad), bad)
        }
    }

    func testByteSizeSyntax() {
        XCTAssertEqual(ByteSize.parse("65536"), 65_536)
        XCTAssertEqual(ByteSize.parse("64Ki"), 65_536)
        XCTAssertEqual(ByteSize.parse("7Mi"), 7 << 20)
        XCTAssertEqual(ByteSize.parse("1Gi"), 1 << 30)
        for bad in ["", "Mi", "7MB", "-1", "7 Mi", "1.5Mi", "99999999999999999999"] {
            XCTAssertNil(ByteSize.parse(bad), bad)
        }
    }
}
