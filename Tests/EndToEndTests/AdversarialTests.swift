import Foundation
import Glibc
import TLS
import TestSupport
import XCTest

/// Black-box attacks on the running process. After each one the server must still
/// answer /healthz and its resident memory must be back within 10 % of the baseline.
final class AdversarialTests: XCTestCase {
    private var directory = ""
    private var certificates = DevelopmentCertificates.paths(in: "/nonexistent")
    private var server: ServeProcess?
    private var baselineKiB = 0

    private static let bodyLimit = 64 * 1024

    override func setUpWithError() throws {
        // This process writes to connections the server has closed: EPIPE, not a signal.
        signal(SIGPIPE, SIG_IGN)
        directory = try temporaryDirectory("adversarial")
        certificates = try DevelopmentCertificates.generate(in: directory)
        server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                   "--max-request-body", "\(Self.bodyLimit)", "--handshake-timeout", "2s",
                                   "--header-timeout", "2s", "--body-timeout", "2s", "--shutdown-delay", "0s"])
        // Warm up: the first requests allocate what every later one reuses.
        for _ in 0..<20 { _ = try post(Self.review) }
        settle()
        baselineKiB = residentKiB()
    }

    override func tearDown() {
        server?.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private var port: UInt16 { server?.port ?? 0 }

    static let review = (try? String(contentsOf: fixtures.appendingPathComponent("review-kafka.json"), encoding: .utf8)) ?? ""

    private func residentKiB() -> Int {
        guard let pid = server?.process.processIdentifier,
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    /// Lets the loops see closed connections and hand memory back.
    private func settle() {
        usleep(400_000)
    }

    /// Under a sanitizer (ASan holds freed memory in quarantine, TSan shadows it) RSS says
    /// nothing about leaks; the sanitizer itself reports those.
    private static let sanitized = dlsym(nil, "__asan_init") != nil
        || dlsym(nil, "__tsan_init") != nil

    /// The server answers /healthz, and its RSS is within 10 % of the baseline.
    private func assertRecovered(_ attack: String, file: StaticString = #filePath, line: UInt = #line) {
        settle()
        let health = try? runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-w", "%{http_code}",
                                                       "https://localhost:\(port)/healthz"])
        XCTAssertEqual(health?.stdout, "ok200", "\(attack): /healthz", file: file, line: line)
        guard !Self.sanitized else { return }
        let rss = residentKiB()
        XCTAssertLessThanOrEqual(rss, baselineKiB + baselineKiB / 10,
                                 "\(attack): RSS \(rss) KiB against a baseline of \(baselineKiB) KiB", file: file, line: line)
    }

    /// One POST /validate on a new TLS connection: the status code, or nil on failure.
    private func post(_ body: String) throws -> Int? {
        let client = try TestTLSClient(port: port, caFile: certificates.caCertificate)
        client.write("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        return client.readResponse()?.status
    }

    func testRandomBytesBeforeAndAfterTheHandshake() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let fd = try connectTCP(port: port)
            let noise = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = noise.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            var buffer = [UInt8](repeating: 0, count: 1024)
            var timeout = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            while read(fd, &buffer, buffer.count) > 0 {}
            close(fd)
        }
        for _ in 0..<50 {
            let client = try TestTLSClient(port: port, caFile: certificates.caCertificate)
            client.write(String(decoding: (0..<2048).map { _ in UInt8.random(in: 1...255, using: &generator) }, as: UTF8.self))
            let response = client.readResponse()
            XCTAssertTrue(response == nil || response?.status == 400, "garbage after the handshake: \(String(describing: response?.status))")
        }
        assertRecovered("random bytes")
    }

    func testTruncatedRecordsAndHalfOpenConnections() throws {
        for _ in 0..<50 {
            // A TLS record header announcing 16 KiB, ten bytes of it, then silence or close.
            let fd = try connectTCP(port: port)
            let header: [UInt8] = [0x16, 0x03, 0x01, 0x40, 0x00] + [UInt8](repeating: 0x01, count: 10)
            _ = header.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        var clients: [TestTLSClient] = []
        for _ in 0..<50 {
            // Half a request, then the write side shut.
            let client = try TestTLSClient(port: port, caFile: certificates.caCertificate)
            client.write("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"kind\"")
            shutdown(client.fd, Int32(SHUT_WR))
            clients.append(client)
        }
        for client in clients { XCTAssertTrue(client.isClosedByPeer()) }
        clients.removeAll()
        assertRecovered("truncated records and half-open connections")
    }

    func testHundredPipelinedRequests() throws {
        let client = try TestTLSClient(port: port, caFile: certificates.caCertificate)
        let one = "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(Self.review.utf8.count)\r\n\r\n\(Self.review)"
        XCTAssertTrue(client.write(String(repeating: one, count: 100)))
        var answered = 0
        while answered < 100, let response = client.readResponse() {
            XCTAssertEqual(response.status, 200)
            XCTAssertTrue(response.body.contains("705ab4f5-6393-11e8-b7cc-42010a800002"))
            answered += 1
        }
        XCTAssertEqual(answered, 100)
        assertRecovered("100 pipelined requests")
    }

    func testAClientThatNeverReadsDoesNotGrowTheServer() throws {
        let client = try TestTLSClient(port: port, caFile: certificates.caCertificate, timeoutSeconds: 2)
        let one = "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(Self.review.utf8.count)\r\n\r\n\(Self.review)"
        let batch = String(repeating: one, count: 100)
        var sentBytes = 0
        let start = Date()
        // Write until the server stops taking bytes (its output backs up, it stops reading).
        while sentBytes < 64 << 20 && Date().timeIntervalSince(start) < 10 && client.write(batch) {
            sentBytes += batch.utf8.count
        }
        let whileBlocked = residentKiB()
        XCTAssertLessThan(sentBytes, 64 << 20, "the server kept reading from a client that never reads")
        if !Self.sanitized {
            XCTAssertLessThan(whileBlocked - baselineKiB, 16 * 1024, "the server buffered without bound")
        }
        _ = client  // closed at the end of the scope
        assertRecovered("a client that never reads")
    }

    func testFiveThousandConcurrentConnections() throws {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for _ in 0..<5000 { sockets.append(try connectTCP(port: port)) }
        // Some of them complete a handshake and a request while all are open.
        for _ in 0..<20 { XCTAssertEqual(try post(Self.review), 200) }
        sockets.forEach { close($0) }
        sockets.removeAll()
        usleep(500_000)
        assertRecovered("5,000 concurrent connections")
    }

    func testBodiesAtTheLimitAndOneByteOver() throws {
        let padding = Self.bodyLimit - Self.review.utf8.count
        let atLimit = Self.review + String(repeating: " ", count: padding)
        XCTAssertEqual(atLimit.utf8.count, Self.bodyLimit)
        XCTAssertEqual(try post(atLimit), 200)
        XCTAssertEqual(try post(atLimit + " "), 413)
        assertRecovered("bodies at the limit")
    }

    func testDeepJSONAndHugeStringsAndNumbers() throws {
        func embed(_ value: String) -> String {
            Self.review.replacingOccurrences(of: #""dryRun":false"#, with: #""dryRun":false,"extra":\#(value)"#)
        }
        XCTAssertEqual(try post(embed(String(repeating: "[", count: 600) + String(repeating: "]", count: 600))), 400)
        XCTAssertEqual(try post(embed(String(repeating: "[", count: 60_000))), 400)
        XCTAssertEqual(try post(embed(String(repeating: "{\"a\":", count: 600) + "1" + String(repeating: "}", count: 600))), 400)
        XCTAssertEqual(try post(embed("\"" + String(repeating: "x", count: 60_000) + "\"")), 200)
        XCTAssertEqual(try post(embed(String(repeating: "9", count: 60_000))), 200)
        XCTAssertEqual(try post(embed("-0." + String(repeating: "1", count: 30_000) + "e99999999")), 200)
        let hugeName = Self.review.replacingOccurrences(of: #""name":"my-stream-connection","type""#,
                                                         with: #""name":"\#(String(repeating: "n", count: 50_000))","type""#)
        XCTAssertEqual(try post(hugeName), 200, "a decision (a denial), not an HTTP error")
        assertRecovered("deep JSON, huge strings and numbers")
    }

    func testEveryJSONSuiteCaseEmbeddedInAReview() throws {
        let suite = repositoryRoot.appendingPathComponent("Tests/Fixtures/json-test-suite/test_parsing")
        let names = try FileManager.default.contentsOfDirectory(atPath: suite.path).filter { $0.hasPrefix("n_") || $0.hasPrefix("y_") }
        XCTAssertGreaterThan(names.count, 270)
        let prefix = Data(Self.review.replacingOccurrences(of: #""dryRun":false"#, with: #""dryRun":false,"extra":"#).utf8)
        guard let split = prefix.range(of: Data(#""extra":"#.utf8)) else { return XCTFail("fixture changed") }
        let head = prefix[..<split.upperBound], tail = prefix[split.upperBound...]
        // One kept-alive connection; a 400 closes it, so reconnect after one.
        var client = try TestTLSClient(port: port, caFile: certificates.caCertificate)
        for name in names.sorted() {
            let body = head + (try Data(contentsOf: suite.appendingPathComponent(name))) + tail
            var request = Data("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
            request.append(body)
            XCTAssertTrue(client.write(bytes: [UInt8](request)), name)
            let status = client.readResponse()?.status
            if body.count > Self.bodyLimit {
                XCTAssertEqual(status, 413, name)
            } else if name.hasPrefix("n_") {
                XCTAssertEqual(status, 400, name)
            } else {
                XCTAssertEqual(status, 200, name)
            }
            if status != 200 { client = try TestTLSClient(port: port, caFile: certificates.caCertificate) }
        }
        assertRecovered("the JSON test suite")
    }
}
