import Foundation
import Glibc
import HTTPServer
import TLS
import TestSupport
import WebhookServer
import XCTest

/// The health and metrics listeners beside the webhook's port, and one server per
/// address: against the real server, with certificates made for each test.
final class ListenerTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        signal(SIGPIPE, SIG_IGN)
        directory = try temporaryDirectory("listeners")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Under mTLS a kubelet probe or a Prometheus scrape has no client certificate: the
    /// health listener answers plain HTTP, the metrics listener TLS with the serving
    /// certificate without asking for one, and the webhook's port still refuses a client
    /// without a certificate.
    func testProbesAndScrapesNeedNoClientCertificateWhileAdmissionDoes() throws {
        let serving = try DevelopmentCertificates.generate(in: directory + "/server")
        let client = try clientCertificate(in: directory + "/client", name: "kube-apiserver", signedBy: serving)
        let server = try ServeProcess(["--tls-cert", serving.certificate, "--tls-key", serving.privateKey,
                                       "--client-ca", serving.caCertificate, "--shutdown-delay", "0s"], release: true)
        defer { server.stop() }
        let health = try XCTUnwrap(server.healthPort, server.log)
        let metrics = try XCTUnwrap(server.metricsPort, server.log)
        func get(_ url: String, _ options: [String] = []) throws -> String {
            let result = try runProcess("/usr/bin/curl", ["-sS", "--max-time", "5", "-w", " %{http_code}"] + options + [url])
            return result.status == 0 ? result.stdout : "refused"
        }
        XCTAssertEqual(try get("http://127.0.0.1:\(health)/healthz"), "ok 200")
        XCTAssertEqual(try get("http://127.0.0.1:\(health)/readyz"), "ok 200")
        XCTAssertTrue(try get("http://127.0.0.1:\(health)/metrics").hasSuffix(" 404"), "no metrics in clear on the health port")

        let scrape = try get("https://localhost:\(metrics)/metrics", ["--cacert", serving.caCertificate])
        XCTAssertTrue(scrape.hasSuffix(" 200") && scrape.contains("\natlas_stream_webhook_open_connections "), scrape)
        XCTAssertTrue(try get("https://localhost:\(metrics)/healthz", ["--cacert", serving.caCertificate]).hasSuffix(" 404"))
        XCTAssertEqual(try get("http://127.0.0.1:\(metrics)/metrics"), "refused", "the metrics listener speaks TLS")

        let admission = ["--cacert", serving.caCertificate, "-o", "/dev/null", "-H", "Content-Type: application/json",
                         "--data-binary", "@" + fixtures.appendingPathComponent("review-kafka.json").path]
        XCTAssertEqual(try get("https://localhost:\(server.port)/validate", admission), "refused", "no client certificate")
        XCTAssertEqual(try get("https://localhost:\(server.port)/healthz", ["--cacert", serving.caCertificate]), "refused")
        XCTAssertEqual(try get("https://localhost:\(server.port)/validate", admission + ["--cert", client.certificate, "--key", client.privateKey]),
                       " 200")
        XCTAssertEqual(try get("https://localhost:\(server.port)/healthz",
                               ["--cacert", serving.caCertificate, "--cert", client.certificate, "--key", client.privateKey]),
                       "ok 200", "the webhook's port keeps its probes for clients that have a certificate")
    }

    /// `off` leaves a listener out (the process listens on no port for it), and
    /// `--metrics-insecure` serves the metrics over plain HTTP.
    func testListenersTurnOffAndMetricsCanBePlainHTTP() throws {
        let serving = try DevelopmentCertificates.generate(in: directory + "/server")
        let pair = ["--tls-cert", serving.certificate, "--tls-key", serving.privateKey, "--loops", "1", "--shutdown-delay", "0s"]

        let plainMetrics = try ServeProcess(pair + ["--health-listen", "off", "--metrics-insecure"], release: true)
        defer { plainMetrics.stop() }
        XCTAssertNil(plainMetrics.healthPort, plainMetrics.log)
        let metrics = try XCTUnwrap(plainMetrics.metricsPort, plainMetrics.log)
        XCTAssertEqual(listeningPorts(of: plainMetrics.process.processIdentifier), [plainMetrics.port, metrics])
        let scrape = try runProcess("/usr/bin/curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(metrics)/metrics"])
        XCTAssertTrue(scrape.stdout.contains("\natlas_stream_webhook_open_connections "), scrape.stdout + scrape.stderr)
        let overTLS = try runProcess("/usr/bin/curl", ["-sS", "--max-time", "5", "--cacert", serving.caCertificate,
                                                       "https://localhost:\(metrics)/metrics"])
        XCTAssertNotEqual(overTLS.status, 0, "plain HTTP only")

        let noMetrics = try ServeProcess(pair + ["--metrics-listen", "off"], release: true)
        defer { noMetrics.stop() }
        XCTAssertNil(noMetrics.metricsPort, noMetrics.log)
        let health = try XCTUnwrap(noMetrics.healthPort, noMetrics.log)
        XCTAssertEqual(listeningPorts(of: noMetrics.process.processIdentifier), [noMetrics.port, health])
    }

    /// A rotated certificate reaches the metrics listener too, though under mTLS it serves
    /// from a TLS context of its own; the webhook's port keeps demanding a client
    /// certificate after the reload.
    func testTheMetricsListenerServesTheRotatedCertificateUnderMutualTLS() throws {
        let volume = try OperationsTests.SecretVolume()
        let first = try volume.publish { try DevelopmentCertificates.generate(in: $0) }
        let server = try RunningServer(certificates: volume.paths) {
            $0.tls.clientCAPath = volume.paths.caCertificate
            $0.metricsAddress = ListenAddress(host: "127.0.0.1", port: 0)
        }
        let metricsPort = try XCTUnwrap(server.server.metricsPort)
        let firstScrape = try XCTUnwrap(requestOnNewConnection(port: metricsPort, caFile: first + "/ca.crt", path: "/metrics"))
        XCTAssertEqual(firstScrape.0, 200)
        XCTAssertEqual(requestOnNewConnection(port: server.port, caFile: first + "/ca.crt")?.0, nil, "no client certificate")

        let second = try temporaryDirectory("second")
        defer { try? FileManager.default.removeItem(atPath: second) }
        let secondPaths = try DevelopmentCertificates.generate(in: second)
        try volume.publish { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in ["tls.crt", "tls.key", "ca.crt"] {
                try FileManager.default.copyItem(atPath: second + "/" + file, toPath: directory + "/" + file)
            }
        }
        var rotated: (Int, UInt64?)?
        let deadline = Date().addingTimeInterval(3)
        while rotated == nil && Date() < deadline {
            rotated = requestOnNewConnection(port: metricsPort, caFile: secondPaths.caCertificate, path: "/metrics")
            usleep(50_000)
        }
        XCTAssertEqual(rotated?.0, 200, "the metrics listener presents the new certificate")
        XCTAssertNotEqual(rotated?.1, firstScrape.1)
        XCTAssertEqual(requestOnNewConnection(port: server.port, caFile: secondPaths.caCertificate)?.0, nil,
                       "the webhook's port still asks for a client certificate")
    }

    /// The health listener runs on the same machinery as the webhook: a connection cap of
    /// its own (a flood of probes cannot take the webhook's connections, nor the webhook
    /// the probes'), and the header deadline.
    func testTheHealthListenerHasItsOwnCapAndTheDeadlines() throws {
        let server = try RunningServer(http: { $0.timeouts.requestHeaders = .milliseconds(500) }) {
            $0.healthAddress = ListenAddress(host: "127.0.0.1", port: 0)
        }
        let health = try XCTUnwrap(server.server.healthPort)
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<WebhookConfiguration.operationsMaxConnections { held.append(try connectTCP(port: health)) }
        usleep(100_000)
        let extra = try connectTCP(port: health)
        defer { close(extra) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        var byte: UInt8 = 0
        XCTAssertLessThanOrEqual(read(extra, &byte, 1), 0)
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.3, "past the cap, closed at accept")
        try server.assertHealthy()

        // The held connections sent nothing: closed at the header deadline, after which
        // the listener serves again.
        for fd in held {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            XCTAssertLessThanOrEqual(read(fd, &byte, 1), 0)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.5)
        let probe = try runProcess("/usr/bin/curl", ["-sS", "--max-time", "5", "-w", " %{http_code}", "http://127.0.0.1:\(health)/healthz"])
        XCTAssertEqual(probe.stdout, "ok 200", probe.stderr)
    }

    /// A second server on an address a server already listens on exits at once, non-zero,
    /// naming the address, for each of its three listeners; so does one on a port a plain
    /// socket (without SO_REUSEPORT) holds. The running server keeps every connection.
    func testASecondServerOnABusyAddressExitsAtOnceNamingIt() throws {
        let serving = try DevelopmentCertificates.generate(in: directory + "/server")
        let running = try ServeProcess(["--tls-cert", serving.certificate, "--tls-key", serving.privateKey, "--shutdown-delay", "0s"], release: true)
        defer { running.stop() }
        let holder = try plainListener()
        defer { close(holder.fd) }
        func start(_ arguments: [String]) throws -> (result: ProcessResult, seconds: Double) {
            let began = Date()
            let result = try runProcess(try releaseExecutablePath(), [
                "serve", "--tls-cert", serving.certificate, "--tls-key", serving.privateKey, "--cluster-lookups=false",
                "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
            ] + arguments)
            return (result, Date().timeIntervalSince(began))
        }
        let busy: [(flag: String, port: UInt16?)] = [
            ("listen", running.port), ("health-listen", running.healthPort), ("metrics-listen", running.metricsPort),
            ("listen", holder.port), ("health-listen", holder.port),
        ]
        for (flag, port) in busy {
            let port = try XCTUnwrap(port, running.log)
            let (result, seconds) = try start(["--\(flag)", "127.0.0.1:\(port)"])
            XCTAssertEqual(result.status, 1, "--\(flag) \(port): \(result.stderr)")
            XCTAssertLessThan(seconds, 1, "--\(flag) \(port)")
            XCTAssertTrue(result.stderr.contains("cannot listen on 127.0.0.1:\(port): address already in use"), result.stderr)
        }
        for _ in 0..<20 {
            XCTAssertEqual(requestOnNewConnection(port: running.port, caFile: serving.caCertificate)?.0, 200)
        }
    }
}

/// The TCP ports `pid` listens on (its sockets in LISTEN in /proc/PID/net/tcp and tcp6).
private func listeningPorts(of pid: pid_t) -> Set<UInt16> {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
    let inodes = Set(fds.compactMap { fd -> Substring? in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
              target.hasPrefix("socket:[") else { return nil }
        return Substring(target.dropFirst("socket:[".count).dropLast())
    })
    var ports: Set<UInt16> = []
    for table in ["tcp", "tcp6"] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/net/\(table)", encoding: .utf8)) ?? ""
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 9, fields[3] == "0A", inodes.contains(fields[9]),
                  let port = fields[1].split(separator: ":").last.flatMap({ UInt16($0, radix: 16) }) else { continue }
            ports.insert(port)
        }
    }
    return ports
}

/// A loopback listener without SO_REUSEPORT on an ephemeral port, as another program
/// would hold it.
private func plainListener() throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ready = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard ready else {
        close(fd)
        throw POSIXError(.EADDRINUSE)
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}
