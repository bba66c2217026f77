@testable import HTTPServer
import XCTest

/// the contract: how `LoopMonitor` judges a loop stalled, wherever the loop stopped:
/// busy in a request (with that request), or frozen in or around `epoll_wait` (its
/// heartbeat goes stale); one stall keeps one `since`, so the watchdog reports it once.
final class LoopMonitorTests: XCTestCase {
    private let threshold = 2_000
    private let start = 1_000_000

    func testWaitingLoopWithAFreshHeartbeatIsHealthy() {
        let monitor = LoopMonitor(loopCount: 2)
        monitor.waiting(loop: 0, now: start)
        monitor.waiting(loop: 1, now: start)
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + threshold - 1), [])
        // A loop that keeps coming back is never stalled, however long it runs.
        for tick in 1...100 {
            monitor.woke(loop: 0, now: start + tick * 100)
            monitor.waiting(loop: 0, now: start + tick * 100 + 1)
        }
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 100 * 100 + 500).map(\.loop), [1])
    }

    func testLoopFrozenInEpollWaitIsStalledOnceWithAStableSince() {
        let monitor = LoopMonitor(loopCount: 2)
        monitor.waiting(loop: 0, now: start)
        monitor.waiting(loop: 1, now: start)
        monitor.woke(loop: 1, now: start + 50)
        monitor.waiting(loop: 1, now: start + 60)
        // Loop 1 keeps waking; loop 0 never comes back from epoll_wait.
        var reported: [LoopMonitor.Stall] = []
        for elapsed in stride(from: 0, through: 10_000, by: 250) {
            monitor.woke(loop: 1, now: start + 60 + elapsed)
            monitor.waiting(loop: 1, now: start + 60 + elapsed)
            reported += monitor.stalls(threshold: threshold, now: start + elapsed)
        }
        XCTAssertEqual(Set(reported.map(\.loop)), [0], "only the frozen loop")
        XCTAssertEqual(Set(reported.map(\.since)), [start], "one stall, one since")
        XCTAssertEqual(reported.first?.milliseconds, threshold)
        XCTAssertEqual(reported.first?.activity, LoopMonitor.frozenOutsideRequest)
    }

    func testBusyLoopIsStalledWithItsRequest() throws {
        let monitor = LoopMonitor(loopCount: 1)
        monitor.waiting(loop: 0, now: start)
        monitor.woke(loop: 0, now: start + 10)
        monitor.begin(loop: 0, HTTPRequest(method: "POST", path: "/validate", body: Array(repeating: 0, count: 7)))
        monitor.note(loop: 0, "uid", "u-1")
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 10 + threshold - 1), [])
        let stall = try XCTUnwrap(monitor.stalls(threshold: threshold, now: start + 10 + threshold).first)
        XCTAssertEqual(stall.since, start + 10)
        XCTAssertEqual(stall.activity, "POST /validate, 7 body bytes, uid u-1")
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 60_000).map(\.since), [start + 10])
        // The request ends but the loop stays away (frozen outside a request): the same stall.
        monitor.end(loop: 0)
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 70_000).map(\.since), [start + 10])
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 70_000).first?.activity, "")
        // Back to epoll_wait: healthy; frozen there later: a new stall, with a new since.
        monitor.waiting(loop: 0, now: start + 70_001)
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 70_002), [])
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 80_000).map(\.since), [start + 70_001])
    }

    func testFrozenBetweenStampsKeepsOneJudgement() {
        let monitor = LoopMonitor(loopCount: 1)
        // Frozen after stamping its heartbeat on the way to epoll_wait, before clearing
        // busySince: still judged busy since it woke, at every later look.
        monitor.woke(loop: 0, now: start)
        monitor.slots[0].heartbeat.store(start + 500, ordering: .relaxed)
        let first = monitor.stalls(threshold: threshold, now: start + threshold)
        let later = monitor.stalls(threshold: threshold, now: start + 30_000)
        XCTAssertEqual(first.map(\.since), [start])
        XCTAssertEqual(later.map(\.since), [start])
    }

    func testAThresholdBelowOneWaitDoesNotFlagWaitingLoops() {
        let monitor = LoopMonitor(loopCount: 1)
        monitor.waiting(loop: 0, now: start)
        let wait = LoopMonitor.maximumWaitMilliseconds
        XCTAssertEqual(monitor.stalls(threshold: 100, now: start + wait), [], "one full wait is not a stall")
        XCTAssertEqual(monitor.stalls(threshold: 100, now: start + 2 * wait).map(\.since), [start])
        // A busy loop is judged by the threshold itself.
        monitor.woke(loop: 0, now: start + 2 * wait)
        XCTAssertEqual(monitor.stalls(threshold: 100, now: start + 2 * wait + 100).map(\.since), [start + 2 * wait])
    }

    func testLoopsNotRunningAreNotJudged() {
        let monitor = LoopMonitor(loopCount: 2)
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 60_000), [], "not started")
        monitor.waiting(loop: 0, now: start)
        monitor.woke(loop: 1, now: start)
        monitor.stopped(loop: 0)
        monitor.stopped(loop: 1)
        XCTAssertEqual(monitor.stalls(threshold: threshold, now: start + 60_000), [], "returned from run()")
    }
}
