import SystemSupport
import XCTest

/// Durations become the clocks' milliseconds: rounded toward zero, and bounded so that a
/// deadline made from any of them cannot overflow.
final class ClockTests: XCTestCase {
    func testDurationInWholeMilliseconds() {
        XCTAssertEqual(Duration.seconds(10).wholeMilliseconds, 10_000)
        XCTAssertEqual(Duration.milliseconds(1_500).wholeMilliseconds, 1_500)
        XCTAssertEqual(Duration.microseconds(1_999).wholeMilliseconds, 1)
        XCTAssertEqual(Duration.microseconds(-1_999).wholeMilliseconds, -1)
        XCTAssertEqual(Duration.zero.wholeMilliseconds, 0)
    }

    func testHugeDurationsAreBoundedSoADeadlineCannotOverflow() {
        let longest = Duration.seconds(Int64.max).wholeMilliseconds
        XCTAssertEqual(longest, 1 << 53)
        XCTAssertEqual(Duration.seconds(Int64.min).wholeMilliseconds, -(1 << 53))
        XCTAssertGreaterThan(monotonicMilliseconds() + longest, monotonicMilliseconds())
    }
}
