import CLinux
import Glibc
@testable import HTTPServer
import SystemSupport
import XCTest

/// Loops from the CPUs the process may use, descriptors, the body budget.
final class ResourceTests: XCTestCase {
    func testCgroupQuotaFiles() {
        XCTAssertNil(ProcessResources.cpuQuota(cgroupV2Max: "max 100000\n"))
        XCTAssertEqual(ProcessResources.cpuQuota(cgroupV2Max: "150000 100000\n"), 1.5)
        XCTAssertEqual(ProcessResources.cpuQuota(cgroupV2Max: "50000 100000"), 0.5)
        XCTAssertNil(ProcessResources.cpuQuota(cgroupV2Max: "garbage"))
        XCTAssertNil(ProcessResources.cpuQuota(cfsQuota: "-1\n", period: "100000\n"))
        XCTAssertEqual(ProcessResources.cpuQuota(cfsQuota: "200000\n", period: "100000\n"), 2)
    }

    func testCgroupDirectoriesFromMembershipAndMounts() {
        let v2Mount = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
        // cgroup v2 in its own namespace ("/"), and a path with its parents.
        XCTAssertEqual(ProcessResources.cgroupDirectories(membership: "0::/\n", mountInfo: v2Mount), ["/sys/fs/cgroup"])
        XCTAssertEqual(ProcessResources.cgroupDirectories(membership: "0::/kubepods/pod1/c1\n", mountInfo: v2Mount),
                       ["/sys/fs/cgroup/kubepods/pod1/c1", "/sys/fs/cgroup/kubepods/pod1", "/sys/fs/cgroup/kubepods", "/sys/fs/cgroup"])
        // cgroup v1: the hierarchy with the cpu controller, wherever it is mounted.
        let v1Mounts = """
        35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct

        """
        XCTAssertEqual(ProcessResources.cgroupDirectories(membership: "4:memory:/a\n1:cpu:/a/b\n2:cpuacct:/a\n", mountInfo: v1Mounts),
                       ["/sys/fs/cgroup/cpu/a/b", "/sys/fs/cgroup/cpu/a", "/sys/fs/cgroup/cpu"])
        // A mount that shows only part of the hierarchy (a container's view).
        let partial = "50 40 0:29 /kubepods/pod1 /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n"
        XCTAssertEqual(ProcessResources.cgroupDirectories(membership: "3:cpu,cpuacct:/kubepods/pod1/c1\n", mountInfo: partial),
                       ["/sys/fs/cgroup/cpu,cpuacct/c1", "/sys/fs/cgroup/cpu,cpuacct"])
    }

    func testUsableCPUsNeverExceedTheAffinityMask() {
        let count = ProcessResources.usableCPUCount()
        XCTAssertGreaterThanOrEqual(count, 1)
        XCTAssertLessThanOrEqual(count, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        XCTAssertEqual(HTTPServerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0)).loopCount, count)
    }

    func testDescriptorSoftLimitIsRaisedAndConnectionsClampedBelowIt() {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        XCTAssertEqual(getrlimit(resource, &limit), 0)
        let saved = limit
        defer {
            var restore = saved
            setrlimit(resource, &restore)
        }
        var lowered = limit
        lowered.rlim_cur = min(256, limit.rlim_max)
        XCTAssertEqual(setrlimit(resource, &lowered), 0)
        let raised = ProcessResources.raiseDescriptorLimit()
        XCTAssertEqual(rlim_t(raised), limit.rlim_max)
        XCTAssertEqual(ProcessResources.connectionCap(configured: 10_000, descriptorLimit: 1024), 896)
        XCTAssertEqual(ProcessResources.connectionCap(configured: 100, descriptorLimit: 1024), 100)
        XCTAssertEqual(ProcessResources.connectionCap(configured: 100, descriptorLimit: 10), 1)
    }

    func testBodyBudgetIsAllOrNothingAndAlwaysAdmitsOneBody() {
        let budget = BodyMemoryBudget(limit: 100)
        XCTAssertTrue(budget.tryReserve(60))
        XCTAssertFalse(budget.tryReserve(41), "past the limit")
        XCTAssertEqual(budget.reserved, 60, "a refused reservation takes nothing")
        XCTAssertTrue(budget.tryReserve(40))
        budget.release(60)
        budget.release(40)
        XCTAssertTrue(budget.tryReserve(500), "one body larger than the budget is admitted when nothing is held")
        XCTAssertFalse(budget.tryReserve(1))
    }

    /// HTTP/1.0 with Transfer-Encoding closes after the answer (RFC 9112, 6.1): an
    /// HTTP/1.0 hop may have framed the message differently, so no request that follows
    /// on the connection is trusted.
    func testHTTP10WithTransferEncodingIsNotKeptAlive() {
        var parser = HTTPRequestParser()
        parser.append(Array("POST /validate HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n".utf8))
        guard case .request(let request) = parser.next() else { return XCTFail("no request") }
        XCTAssertFalse(request.keepAlive)
        var plain = HTTPRequestParser()
        plain.append(Array("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".utf8))
        guard case .request(let kept) = plain.next() else { return XCTFail("no request") }
        XCTAssertTrue(kept.keepAlive)
        var out: [UInt8] = []
        HTTPResponseWriter.write(HTTPResponse(status: .ok, body: []), keepAlive: true, announceKeepAlive: true, into: &out)
        XCTAssertTrue(String(decoding: out, as: UTF8.self).contains("\r\nConnection: keep-alive\r\n\r\n"))
    }

    func testBodyToReserveIsTheContentLengthOrTheLimitWhenChunked() {
        var parser = HTTPRequestParser(limits: HTTPLimits(maxBodyBytes: 1000))
        parser.append(Array("POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nab".utf8))
        XCTAssertEqual(parser.next(), .needMoreBytes)
        XCTAssertEqual(parser.bodyBytesToReserve, 500)
        var chunked = HTTPRequestParser(limits: HTTPLimits(maxBodyBytes: 1000))
        chunked.append(Array("POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab".utf8))
        XCTAssertEqual(chunked.next(), .needMoreBytes)
        XCTAssertEqual(chunked.bodyBytesToReserve, 1000)
        XCTAssertNil(HTTPRequestParser().bodyBytesToReserve)
    }
}

/// Epoll's calls report what failed instead of dropping it.
final class EpollTests: XCTestCase {
    func testFailuresAreReportedAndWaitTimesOut() throws {
        let epoll = try Epoll()
        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        XCTAssertEqual(failure { try epoll.modify(pipeEnds[0], events: clinux_epollin()) },
                       SystemCallError("epoll_ctl", errno: ENOENT), "not watched yet")
        XCTAssertNil(failure { try epoll.add(pipeEnds[0], events: clinux_epollin()) })
        XCTAssertEqual(failure { try epoll.add(pipeEnds[0], events: clinux_epollin()) }, SystemCallError("epoll_ctl", errno: EEXIST))
        XCTAssertEqual(failure { try epoll.add(-1, events: clinux_epollin()) }, SystemCallError("epoll_ctl", errno: EBADF))
        var events = [epoll_event](repeating: epoll_event(), count: 4)
        XCTAssertEqual(try epoll.wait(into: &events, timeoutMilliseconds: 10), 0)
        XCTAssertEqual(write(pipeEnds[1], "x", 1), 1)
        XCTAssertEqual(try epoll.wait(into: &events, timeoutMilliseconds: 1000), 1)
        XCTAssertEqual(Int32(truncatingIfNeeded: events[0].data.u64), pipeEnds[0])
        epoll.remove(pipeEnds[0])
        XCTAssertEqual(try epoll.wait(into: &events, timeoutMilliseconds: 10), 0, "removed")
        XCTAssertEqual(failure { try setSocketOption(-1, SOL_SOCKET, SO_REUSEADDR, 1) }, SystemCallError("setsockopt", errno: EBADF))
    }

    /// What `body` threw; nil when it succeeded.
    private func failure(_ body: () throws -> Void) -> SystemCallError? {
        do {
            try body()
            return nil
        } catch {
            return error as? SystemCallError
        }
    }
}
