import Foundation
import Glibc
import TLS
import TestSupport
import XCTest

/// The worst cases of the denial-of-service review against the running process, with
/// the default limits (7 MiB bodies, 64 MiB of bodies held at once): every shape answered
/// at once with a bounded answer, bodies past the budget wait instead of growing the
/// process, and the process's peak RSS over all of it stays under 160 MiB.
final class ServerWorstCaseTests: XCTestCase {
    private var directory = ""
    private var certificates = DevelopmentCertificates.paths(in: "/nonexistent")
    private var server: ServeProcess?

    override func setUpWithError() throws {
        signal(SIGPIPE, SIG_IGN)
        directory = try temporaryDirectory("worst-case")
        certificates = try DevelopmentCertificates.generate(in: directory)
        server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                   "--shutdown-delay", "0s", "--body-timeout", "20s"])
    }

    override func tearDown() {
        server?.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private var port: UInt16 { server?.port ?? 0 }

    private func memoryKiB(_ field: String) -> Int {
        guard let pid = server?.process.processIdentifier,
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    private static func request(_ body: [UInt8]) -> [UInt8] {
        Array("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
    }

    private static func review(_ kind: String, object: String, old: String? = nil, extra: String = "") -> [UInt8] {
        let oldPart = old.map { #","oldObject":\#($0)"# } ?? ""
        let operation = old == nil ? "CREATE" : "UPDATE"
        return Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"\#(kind)"},"operation":"\#(operation)","namespace":"a","userInfo":{"username":"u"}\#(extra),"object":\#(object)\#(oldPart)}}"#.utf8)
    }

    private static func kafka(servers: String = "b:9092", config: String = "{}") -> String {
        #"{"metadata":{"name":"c"},"spec":{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"\#(servers)","authentication":{"mechanism":"PLAIN","credentials":{"name":"c"}},"security":{"protocol":"SSL","certificate":{"name":"t"}},"config":\#(config)}}}"#
    }

    /// The rows of the review's table (sizes as there, the 3 MiB UPDATE halved for the
    /// debug build), each answered 200 in well under a second with a bounded answer.
    func testEveryShapeOfTheReviewIsAnsweredAtOnceAndTheProcessStaysSmall() throws {
        let nested = { (depth: Int, leaf: String) in
            #"{"metadata":{"name":"c"},"spec":"# + String(repeating: #"{"a":"#, count: depth) + leaf + String(repeating: "}", count: depth) + "}"
        }
        let wide = (0..<50_000).map { #""k\#($0)":[\#($0)]"# }
        let rows: [(String, [UInt8])] = [
            ("UPDATE nested 40 deep, differing at the leaf", Self.review("AtlasStreamConnection", object: nested(40, "1"), old: nested(40, "2"))),
            ("UPDATE wide spec reversed", Self.review("AtlasStreamConnection",
                                                      object: #"{"spec":{"# + wide.joined(separator: ",") + #","x":1}}"#,
                                                      old: #"{"spec":{"x":2,"# + wide.reversed().joined(separator: ",") + "}}")),
            ("bootstrapServers a,a,a of 1.4 MB", Self.review("AtlasStreamConnection", object: Self.kafka(servers: String(repeating: "a,", count: 700_000) + "a"))),
            ("100,000 distinct servers", Self.review("AtlasStreamConnection", object: Self.kafka(servers: (0..<100_000).map { "h\($0):9092" }.joined(separator: ",")))),
            ("50,000 registry entries with invalid names", Self.review("AtlasStreamInstance", object: #"{"metadata":{"name":"i"},"spec":{"name":"i","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":["# + (0..<50_000).map { #"{"name":"Bad_\#($0)"}"# }.joined(separator: ",") + "]}}")),
            ("150,000 duplicate config keys", Self.review("AtlasStreamConnection", object: Self.kafka(config: "{" + Array(repeating: #""sasl.password":"x""#, count: 150_000).joined(separator: ",") + "}"))),
            ("one 5 MB invalid server", Self.review("AtlasStreamConnection", object: Self.kafka(servers: String(repeating: "x", count: 5_000_000) + ":1:2"))),
        ]
        let client = try TestTLSClient(port: port, caFile: certificates.caCertificate, timeoutSeconds: 20)
        for (name, body) in rows {
            let start = Date()
            XCTAssertTrue(client.write(bytes: Self.request(body)), name)
            let answer = client.readResponse()
            let seconds = Date().timeIntervalSince(start)
            XCTAssertEqual(answer?.status, 200, name)
            XCTAssertLessThanOrEqual(answer?.body.utf8.count ?? .max, 256 * 1024, name)
            // Debug build, the body sent through TLS on loopback included.
            XCTAssertLessThan(seconds, 3, "\(name) took \(seconds) s")
        }

        // A burst of [0,0,0,...] reviews of 3 MiB on 12 connections at once.
        let zeros = Self.review("AtlasStreamConnection", object: Self.kafka(),
                                extra: #","options":["# + Array(repeating: "0", count: 1_500_000).joined(separator: ",") + "]")
        let tally = Tally()
        let port = self.port, caFile = certificates.caCertificate
        onThreads(12) {
            guard let c = try? TestTLSClient(port: port, caFile: caFile, timeoutSeconds: 30),
                  c.write(bytes: Self.request(zeros)), let answer = c.readResponse() else { return tally.add("failed") }
            tally.add("\(answer.status)")
        }
        XCTAssertEqual(tally["200"], 12, "burst: \(tally["failed"]) failed")

        // 40 connections each sending a body of 7 MiB minus one byte, then stalling: the
        // budget admits 9 of them (63 MiB); the others are not read.
        let before = memoryKiB("VmRSS")
        let big = 7 * 1024 * 1024
        let head = Array("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(big)\r\n\r\n".utf8)
        let chunk = [UInt8](repeating: 0x20, count: 1 << 20)
        let stalled = Held()
        onThreads(40) {
            guard let c = try? TestTLSClient(port: port, caFile: caFile, timeoutSeconds: 3) else { return }
            stalled.keep(c)
            guard c.write(bytes: head) else { return }
            var sent = 0
            while sent < big - 1 {
                let n = min(chunk.count, big - 1 - sent)
                guard c.write(bytes: Array(chunk[0..<n])) else { return }  // the server stopped reading
                sent += n
            }
        }
        let whileStalled = memoryKiB("VmRSS")
        XCTAssertEqual(stalled.count, 40)
        XCTAssertLessThan(whileStalled - before, 64 * 1024 + 24 * 1024,
                          "40 stalled 7 MiB bodies grew the process by \(whileStalled - before) KiB")
        stalled.release()
        usleep(500_000)
        let health = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-w", "%{http_code}",
                                                      "https://localhost:\(port)/healthz"])
        XCTAssertEqual(health.stdout, "ok200")
        let peak = memoryKiB("VmHWM")
        XCTAssertLessThan(peak, 160 * 1024, "peak RSS \(peak) KiB")
        print("worst-case suite against the server: peak RSS \(peak / 1024) MiB, \(whileStalled / 1024) MiB with 40 stalled bodies")
    }
}

/// Clients kept open by several threads until released.
private final class Held: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var clients: [TestTLSClient] = []

    func keep(_ client: TestTLSClient) {
        lock.lock()
        clients.append(client)
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return clients.count
    }

    func release() {
        lock.lock()
        clients.removeAll()
        lock.unlock()
    }
}

/// Runs `body` on `count` threads at once (concurrentPerform runs only as many at a time
/// as there are cores) and waits for all of them.
private func onThreads(_ count: Int, _ body: @escaping @Sendable () -> Void) {
    let group = DispatchGroup()
    for _ in 0..<count {
        group.enter()
        Thread.detachNewThread {
            body()
            group.leave()
        }
    }
    group.wait()
}
