import CLinux
import Foundation
import Glibc
import TLS
import TestSupport
import XCTest

/// A stuck event loop is noticed (`/healthz` 503, logged once with its
/// request, counted) and cannot hold the process past the drain deadline; a review past
/// its request's timeout is abandoned. The debug binary's test hook `POST /test/spin`
/// (compiled only without optimization, and only with ATLAS_STREAM_WEBHOOK_TEST_HOOKS
/// set) keeps one loop busy; ptrace stops one loop's thread from outside, in epoll_wait.
final class WatchdogTests: XCTestCase {
    private var directory = ""
    private var certificates = DevelopmentCertificates.paths(in: "/nonexistent")

    override func setUpWithError() throws {
        signal(SIGPIPE, SIG_IGN)
        directory = try temporaryDirectory("watchdog")
        certificates = try DevelopmentCertificates.generate(in: directory)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func serve(_ arguments: [String]) throws -> ServeProcess {
        try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey, "--loops", "2",
                          "--log-level", "debug"] + arguments,
                         environment: ["ATLAS_STREAM_WEBHOOK_TEST_HOOKS": "1"])
    }

    /// Starts a spin on some loop; the connection is kept so the request stays in hand.
    private func spin(_ server: ServeProcess, seconds: Int) throws -> TestTLSClient {
        let client = try TestTLSClient(port: server.port, caFile: certificates.caCertificate)
        XCTAssertTrue(client.write("POST /test/spin?seconds=\(seconds) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
        return client
    }

    /// `/healthz` from a fresh connection: the status, or nil when nothing answered in time
    /// (the connection went to the stalled loop).
    private func health(_ server: ServeProcess) -> Int? {
        guard let client = try? TestTLSClient(port: server.port, caFile: certificates.caCertificate, timeoutSeconds: 0.2),
              client.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") else { return nil }
        return client.readResponse()?.status
    }

    /// `atlas_stream_webhook_loop_stalls_total` from a fresh connection, or nil when
    /// nothing answered in time (the connection went to a stalled loop).
    private func stallCount(_ server: ServeProcess) -> Int? {
        guard let client = try? TestTLSClient(port: server.port, caFile: certificates.caCertificate, timeoutSeconds: 0.5),
              client.write("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              let answer = client.readResponse(), answer.status == 200 else { return nil }
        let name = "atlas_stream_webhook_loop_stalls_total "
        return answer.body.split(separator: "\n").first { $0.hasPrefix(name) }.flatMap { Int($0.dropFirst(name.count)) }
    }

    /// `epoll_wait` and `epoll_pwait` in `/proc/PID/task/TID/syscall`.
    private static var epollWaitSyscalls: Set<String> {
        #if arch(x86_64)
        ["232", "281"]
        #elseif arch(arm64)
        ["22"]
        #else
        []
        #endif
    }

    /// An event loop thread (named `event-loop-N`) of `pid` blocked in epoll_wait, found
    /// within two seconds (an idle loop is there nearly all the time).
    private func loopThreadInEpollWait(_ pid: pid_t) -> pid_t? {
        let deadline = Date().addingTimeInterval(2)
        repeat {
            for (thread, name, call) in threads(pid) where name.hasPrefix("event-loop-")
                && WatchdogTests.epollWaitSyscalls.contains(String(call.prefix { $0 != " " })) {
                return thread
            }
            usleep(10_000)
        } while Date() < deadline
        return nil
    }

    /// Each thread of `pid`: its id, name and what `/proc/PID/task/TID/syscall` says.
    private func threads(_ pid: pid_t) -> [(pid_t, String, String)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { entry in
            guard let thread = pid_t(entry) else { return nil }
            let read = { (file: String) in
                ((try? String(contentsOfFile: "/proc/\(pid)/task/\(entry)/\(file)", encoding: .utf8)) ?? "")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return (thread, read("comm"), read("syscall"))
        }.sorted { $0.0 < $1.0 }
    }

    private func threadStates(_ pid: pid_t) -> String {
        threads(pid).map { "\($0.0) \($0.1): \($0.2.prefix { $0 != " " }) \(state($0.0, pid: pid) ?? "?")" }
            .joined(separator: "; ")
    }

    /// The scheduler state letter in `/proc/PID/task/TID/stat` ("t": stopped by a tracer).
    private func state(_ thread: pid_t, pid: pid_t) -> Character? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[close...].dropFirst().first { $0 != " " }
    }

    /// Collects the tracer's notice of the stop (waitpid, `__WALL`: the thread is not the
    /// process's leader) and checks the thread is in a tracing stop; false after two seconds.
    private func waitUntilStopped(_ thread: pid_t, pid: pid_t) -> Bool {
        let deadline = Date().addingTimeInterval(2)
        var noticed = false
        while Date() < deadline {
            var status: Int32 = 0
            if !noticed { noticed = waitpid(thread, &status, WNOHANG | __WALL) == thread }
            if noticed && state(thread, pid: pid) == "t" { return true }
            usleep(5_000)
        }
        return false
    }

    func testStalledLoopTurnsHealthz503IsLoggedOnceAndCounted() throws {
        let server = try serve(["--loop-stall-timeout", "1s"])
        defer { server.stop() }
        XCTAssertEqual(health(server), 200)
        let spinning = try spin(server, seconds: 4)
        let started = Date()
        var unhealthy: TimeInterval?
        while Date().timeIntervalSince(started) < 3.5 {
            if health(server) == 503 {
                unhealthy = Date().timeIntervalSince(started)
                break
            }
        }
        let after = try XCTUnwrap(unhealthy, "/healthz never answered 503 while a loop spun")
        XCTAssertLessThan(after, 1 + 1, "503 within the stall timeout plus a second")
        XCTAssertTrue(server.waitForLog(#""msg":"event loop stalled""#, seconds: 2), server.log)
        XCTAssertTrue(server.log.contains("POST /test/spin"), "the log names the request: \(server.log)")
        // The spin ends: the loop answers it and health comes back.
        XCTAssertEqual(spinning.readResponse()?.status, 200)
        XCTAssertEqual(health(server), 200)
        let metrics = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate,
                                                       "https://localhost:\(server.port)/metrics"]).stdout
        XCTAssertTrue(metrics.contains("\natlas_stream_webhook_loop_stalls_total 1\n"), metrics)
        XCTAssertEqual(server.log.components(separatedBy: "event loop stalled").count - 1, 1, "logged once")
    }

    func testLoopFrozenInEpollWaitTurnsHealthz503AndIsCountedOnce() throws {
        let server = try serve(["--loop-stall-timeout", "2s"])
        defer { server.stop() }
        XCTAssertEqual(health(server), 200)
        let before = try XCTUnwrap(stallCount(server), "no /metrics answer")
        let pid = server.process.processIdentifier
        let thread = try XCTUnwrap(loopThreadInEpollWait(pid), "no event-loop thread in epoll_wait: \(threadStates(pid))")

        // Stop that one thread where it waits; the other loop and threads run on.
        guard clinux_ptrace_seize(thread) == 0 else {
            let code = errno
            if code == EPERM || code == ENOSYS { throw XCTSkip("ptrace refused here: \(String(cString: strerror(code)))") }
            return XCTFail("PTRACE_SEIZE: \(String(cString: strerror(code)))")
        }
        var attached = true
        // A failed assertion must never leave the server with a stopped thread.
        defer { if attached { _ = clinux_ptrace_detach(thread) } }
        XCTAssertEqual(clinux_ptrace_interrupt(thread), 0, String(cString: strerror(errno)))
        XCTAssertTrue(waitUntilStopped(thread, pid: pid), "thread \(thread) never stopped: \(threadStates(pid))")
        let frozen = Date()

        var unhealthy: TimeInterval?
        while unhealthy == nil && Date().timeIntervalSince(frozen) < 2 + 2 {
            if health(server) == 503 { unhealthy = Date().timeIntervalSince(frozen) }
        }
        let after = try XCTUnwrap(unhealthy, "/healthz never answered 503 with a loop frozen in epoll_wait")
        XCTAssertLessThan(after, 2 + 2, "503 within the stall timeout plus two seconds")
        XCTAssertGreaterThanOrEqual(after, 1.5, "a loop idle in epoll_wait is not stalled before the timeout")
        print("loop frozen in epoll_wait: /healthz 503 after \(String(format: "%.2f", after)) s")
        // The watchdog counts within the timeout plus its poll; each look at /metrics that
        // lands on the frozen loop costs its half-second timeout, so allow a few of those.
        var counted: Int?
        while Date().timeIntervalSince(frozen) < 2 + 5 {
            if let count = stallCount(server), count > before {
                counted = count
                break
            }
        }
        XCTAssertEqual(counted, before + 1, "counted while the loop stays frozen")
        XCTAssertTrue(server.waitForLog(#""msg":"event loop stalled""#, seconds: 1), server.log)
        XCTAssertTrue(server.log.contains("frozen in or around epoll_wait"), "the log says where: \(server.log)")

        // Stays frozen a while longer: still one stall.
        usleep(1_500_000)
        XCTAssertEqual(clinux_ptrace_detach(thread), 0, String(cString: strerror(errno)))
        attached = false
        let thawed = Date()
        var healthy = false
        while !healthy && Date().timeIntervalSince(thawed) < 3 {
            healthy = health(server) == 200
        }
        XCTAssertTrue(healthy, "/healthz back to 200 once the loop runs again")
        XCTAssertEqual(stallCount(server), before + 1, "one freeze, counted once")
        XCTAssertEqual(server.log.components(separatedBy: "event loop stalled").count - 1, 1, "logged once: \(server.log)")
    }

    func testDrainDeadlineEndsTheProcessWithALoopStuck() throws {
        let server = try serve(["--shutdown-delay", "0s", "--drain-timeout", "2s"])
        let stuck = try spin(server, seconds: 3600)
        usleep(300_000)
        let signalled = Date()
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        let took = Date().timeIntervalSince(signalled)
        XCTAssertLessThan(took, 2 + 1, "exited \(took) s after SIGTERM with a drain timeout of 2 s")
        XCTAssertEqual(server.process.terminationReason, .exit)
        XCTAssertNotEqual(server.process.terminationStatus, 0, "a cut drain exits non-zero")
        XCTAssertTrue(server.waitForLog("drain deadline passed", seconds: 1), server.log)
        XCTAssertTrue(server.log.contains("POST /test/spin"), "the log names what was in flight: \(server.log)")
        _ = stuck
    }

    func testReviewPastItsTimeoutIsAbandonedWithA504() throws {
        let server = try serve([])
        defer { server.stop() }
        // An UPDATE whose spec comparison takes far longer than 20 ms in a debug build.
        let keys = (0..<60_000).map { #""k\#($0)":[\#($0)]"# }
        let body = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"AtlasStreamConnection"},"operation":"UPDATE","namespace":"a","object":{"spec":{"# + keys.joined(separator: ",") + #","x":1}},"oldObject":{"spec":{"x":2,"# + keys.reversed().joined(separator: ",") + "}}}}"
        let client = try TestTLSClient(port: server.port, caFile: certificates.caCertificate, timeoutSeconds: 20)
        XCTAssertTrue(client.write("POST /validate?timeout=20ms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        let answer = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(answer.status, 504, answer.body)
        XCTAssertTrue(answer.body.contains(#""reason":"Timeout""#), answer.body)
        // The same review with time to spare is decided.
        XCTAssertTrue(client.write("POST /validate?timeout=30s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        XCTAssertEqual(client.readResponse()?.status, 200)
    }
}
