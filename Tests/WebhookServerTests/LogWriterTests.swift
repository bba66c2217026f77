import Glibc
import SystemSupport
@testable import WebhookServer
import XCTest

/// The log writer's thread writes what is queued and stops on `close`; a writer that
/// cannot have its eventfd is refused at once, with the reason, instead of a thread
/// that spins on a descriptor it cannot wait on.
final class LogWriterTests: XCTestCase {
    func testQueuedLinesAreWrittenAndCloseFlushesThem() throws {
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]) }
        let writer = try LogWriter(fd: ends[1])
        writer.enqueue(Array("one\n".utf8))
        writer.enqueue(Array("two\n".utf8))
        writer.close()
        close(ends[1])
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let n = read(ends[0], &chunk, chunk.count), n > 0 { bytes += chunk[0..<n] }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines, ["one", "two"])
    }

    /// The descriptor limit lowered to the lowest free descriptor: the eventfd is refused
    /// with EMFILE, and so is the writer.
    func testWriterWithoutAnEventfdIsRefusedWithTheReason() throws {
        var saved = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        XCTAssertEqual(getrlimit(resource, &saved), 0)
        let lowestFree = dup(0)
        XCTAssertGreaterThanOrEqual(lowestFree, 0)
        close(lowestFree)
        var lowered = saved
        lowered.rlim_cur = rlim_t(lowestFree)
        XCTAssertEqual(setrlimit(resource, &lowered), 0)
        let result = Result { () throws(SystemCallError) in try LogWriter(fd: 2) }
        XCTAssertEqual(setrlimit(resource, &saved), 0)
        switch result {
        case .success(let writer):
            writer.close()
            XCTFail("a writer without an eventfd")
        case .failure(let error):
            XCTAssertEqual(error, SystemCallError("eventfd", errno: EMFILE))
        }
    }
}
