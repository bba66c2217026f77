import Foundation
import TLS
import TestSupport
import XCTest

final class CommandLineTests: XCTestCase {
    /// `serve --dev` writes its certificates, prints a curl line, answers that curl line and
    /// the probe address it prints, and exits 0 on SIGTERM.
    func testServeDevPrintsAWorkingCurlLineAndStopsAtOnceOnCtrlC() throws {
        let binary = try executablePath()
        let certDirectory = try temporaryDirectory("devcerts") + "/certs/dev"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--dev", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
                             "--metrics-listen", "127.0.0.1:0", "--dev-cert-dir", certDirectory]
        process.currentDirectoryURL = repositoryRoot
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The banner: "Development server on https://localhost:PORT. Try:\n  curl ..."
        var banner = ""
        let deadline = Date().addingTimeInterval(10)
        while !banner.contains("/metrics") && Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            banner += String(decoding: chunk, as: UTF8.self)
        }
        let curlLine = try XCTUnwrap(banner.split(separator: "\n").first { $0.contains("curl ") }, banner)
        XCTAssertTrue(FileManager.default.fileExists(atPath: certDirectory + "/tls.crt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: certDirectory + "/ca.crt"))

        // Run the printed line exactly as a user would paste it, from the repository root.
        let shell = try runProcess("/bin/sh", ["-c", "cd '\(repositoryRoot.path)' && " + curlLine + " -sS"])
        XCTAssertEqual(shell.status, 0, shell.stderr)
        let response = try jsonObject(shell.stdout)
        XCTAssertEqual(response["kind"] as? String, "AdmissionReview")
        XCTAssertEqual((response["response"] as? [String: Any])?["uid"] as? String, "705ab4f5-6393-11e8-b7cc-42010a800002")
        let probe = try XCTUnwrap(banner.firstMatch(of: /Probes: (http:\/\/localhost:\d+\/healthz)/)?.1, banner)
        XCTAssertEqual(try runProcess("/usr/bin/curl", ["-sS", String(probe)]).stdout, "ok")

        // Ctrl-C: with --dev there is no shutdown delay, so it stops at once.
        kill(process.processIdentifier, SIGINT)
        let stopBy = Date().addingTimeInterval(1)
        while process.isRunning && Date() < stopBy { usleep(20_000) }
        XCTAssertFalse(process.isRunning, "serve --dev must exit within a second of Ctrl-C")
        XCTAssertEqual(process.terminationStatus, 0)
    }

    /// A wrong command line is exit status 2, says what is wrong and where help is, on stderr.
    /// The rules documentation is the catalogue's own table, and the JSON lists every id.
    func testRulesPrintsTheCatalogueTheDocumentationShows() throws {
        let table = try runProcess(try executablePath(), ["rules"])
        XCTAssertEqual(table.status, 0)
        let documentation = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/rules.md"), encoding: .utf8)
        XCTAssertTrue(documentation.contains("<!-- rules:begin -->\n" + table.stdout + "<!-- rules:end -->"),
                      "docs/rules.md is not the output of `atlas-stream-webhook rules`; put it between the markers")
        let json = try runProcess(try executablePath(), ["rules", "--output", "json"])
        let rules = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let ids = rules.compactMap { $0["id"] as? String }
        XCTAssertEqual(ids.count, table.stdout.components(separatedBy: "\n### `").count, "one section per rule")
        XCTAssertTrue(ids.contains("kafka-certificate-required") && ids.contains("bootstrap-servers-port-range")
                      && ids.contains("credentials-secret-found"), "\(ids)")
        XCTAssertEqual(try runProcess(try executablePath(), ["rules", "--output", "yaml"]).status, 2)
    }

    /// `--version`: the release the changelog names last and the revision of this checkout.
    func testVersionNamesTheReleaseAndTheRevision() throws {
        let result = try runProcess(try executablePath(), ["--version"])
        XCTAssertEqual(result.status, 0)
        let match = try XCTUnwrap(result.stdout.firstMatch(of: /^atlas-stream-webhook (\d+\.\d+\.\d+) \(revision ([0-9a-f]{12}(-dirty)?|unknown)\)\n$/),
                                  result.stdout)
        let changelog = try String(contentsOf: repositoryRoot.appendingPathComponent("CHANGELOG.md"), encoding: .utf8)
        let released = try XCTUnwrap(changelog.firstMatch(of: /\n## \[(\d+\.\d+\.\d+)\]/), "a release in CHANGELOG.md")
        XCTAssertEqual(String(match.1), String(released.1), "the version is the newest release in CHANGELOG.md")
        let head = try runProcess("/usr/bin/git", ["-C", repositoryRoot.path, "rev-parse", "--short=12", "HEAD"])
        if head.status == 0 {
            XCTAssertTrue(String(match.2).hasPrefix(head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
                          "built from this checkout: \(result.stdout)")
        }
    }

    /// The running server says what it is: in its start line and as a metric.
    func testTheServerNamesItsBuild() throws {
        let version = try runProcess(try executablePath(), ["--version"]).stdout
        let match = try XCTUnwrap(version.firstMatch(of: /^atlas-stream-webhook (\S+) \(revision (\S+)\)/), version)
        let directory = try temporaryDirectory("build-info")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try DevelopmentCertificates.generate(in: directory)
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey])
        defer { server.stop() }
        XCTAssertTrue(server.log.contains(#""version":"\#(match.1)""#) && server.log.contains(#""revision":"\#(match.2)""#), server.log)
        let metrics = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate,
                                                       "https://localhost:\(server.port)/metrics"]).stdout
        XCTAssertTrue(metrics.contains(#"atlas_stream_webhook_build_info{version="\#(match.1)",revision="\#(match.2)"} 1"#), metrics)
    }

    func testUsageErrorsExitTwoAndPointAtHelp() throws {
        let cases: [([String], String, String)] = [
            ([], "Commands:", "atlas-stream-webhook"),
            (["deploy"], "unknown command deploy", "atlas-stream-webhook --help"),
            (["serve", "--bogus"], "unknown flag --bogus", "atlas-stream-webhook serve --help"),
            (["serve", "-p", "9443"], "unknown shorthand flag -p", "serve --help"),
            (["serve", "--loops"], "flag needs a value: --loops", "serve --help"),
            (["serve", "--loops=0", "--dev"], "--loops must be a positive whole number, got 0", "serve --help"),
            (["serve", "--idle-timeout", "2 minutes", "--dev"], "--idle-timeout must be a positive Go duration", "serve --help"),
            (["serve", "--dev=maybe"], "--dev is a switch", "serve --help"),
            (["serve", "--tls-cert", "a.crt"], "--tls-cert and --tls-key are required (or use --dev)", "serve --help"),
            (["serve", "--dev", "--client-name", "kube-apiserver"], "--client-name needs --client-ca", "serve --help"),
            (["serve", "--dev", "--health-listen", "8081"], "--health-listen must be HOST:PORT or off, got 8081", "serve --help"),
            (["serve", "--dev", "--metrics-listen", "on"], "--metrics-listen must be HOST:PORT or off, got on", "serve --help"),
            (["serve", "extra"], "unexpected argument extra", "serve --help"),
            (["check"], "give at least one file, directory or -", "check --help"),
            (["check", "--output", "yaml", "x.yaml"], "--output must be text or json, got yaml", "check --help"),
            (["review", "--mutate", "--validate"], "give exactly one of --mutate and --validate", "review --help"),
        ]
        for (arguments, message, help) in cases {
            let result = try runProcess(try executablePath(), arguments, stdin: Data())
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(help), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
        }
    }

    /// `--help`, `-h` and `help COMMAND` print a command's every flag on stdout, status 0.
    func testHelpListsEveryFlag() throws {
        let serve = try runProcess(try executablePath(), ["serve", "--help"])
        XCTAssertEqual(serve.status, 0)
        for flag in ["--listen HOST:PORT", "--tls-cert FILE", "--tls-key FILE", "--tls-min-version VERSION", "--client-ca FILE",
                     "--client-name NAME", "--cert-poll-interval DURATION", "--shutdown-delay DURATION", "--drain-timeout DURATION",
                     "--health-listen HOST:PORT", "--metrics-listen HOST:PORT", "--metrics-insecure ",
                     "--dev ", "--dev-cert-dir DIR", "--loops N", "--max-connections N", "--max-request-body SIZE",
                     "--max-header-bytes SIZE", "--max-header-fields N", "--handshake-timeout DURATION", "--header-timeout DURATION",
                     "--body-timeout DURATION", "--idle-timeout DURATION", "--log-level LEVEL", "--config FILE", "-h, --help"] {
            XCTAssertTrue(serve.stdout.contains("\n  " + flag), "serve --help lacks \(flag):\n\(serve.stdout)")
        }
        XCTAssertEqual(try runProcess(try executablePath(), ["help", "serve"]).stdout, serve.stdout)
        XCTAssertEqual(try runProcess(try executablePath(), ["serve", "-h"]).stdout, serve.stdout)
        let check = try runProcess(try executablePath(), ["help", "check"])
        XCTAssertEqual(check.status, 0)
        XCTAssertTrue(check.stdout.contains("Usage: atlas-stream-webhook check [flags] PATH..."), check.stdout)
        XCTAssertTrue(check.stdout.contains("  --print-defaulted "), check.stdout)
        let top = try runProcess(try executablePath(), ["--help"])
        XCTAssertEqual(top.status, 0)
        for command in ["serve", "check", "review"] {
            XCTAssertTrue(top.stdout.contains("\n  \(command) "), top.stdout)
        }
    }

    /// Flags as Kubernetes components take them: `--name=value`, a switch as `--name=false`,
    /// the last value of a repeated flag, `--` before arguments that look like flags.
    func testFlagSpellings() throws {
        let directory = try temporaryDirectory("flags")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = directory + "/--odd-name.yaml"
        try Data(contentsOf: fixtures.appendingPathComponent("manifests/invalid/plaintext-only.yaml")).write(to: URL(fileURLWithPath: manifest))

        let json = try runProcess(try executablePath(), ["check", "--output=text", "--output=json", "--strict=false", "--", manifest])
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertNoThrow(try jsonObject(json.stdout))
        let strict = try runProcess(try executablePath(), ["check", "--strict=false", "--strict", "--", manifest])
        XCTAssertEqual(strict.status, 1, "the last spelling of a switch wins: \(strict.stdout)")
    }

    func testServeRefusesAMissingCertificate() throws {
        let result = try runProcess(try executablePath(), ["serve", "--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key",
                                                           "--listen", "127.0.0.1:0"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("cannot load certificate chain from /nonexistent.crt"), result.stderr)
    }

    func testReviewAnswersLikeTheServer() throws {
        let input = try Data(contentsOf: fixtures.appendingPathComponent("review-kafka.json"))
        let result = try runProcess(try executablePath(), ["review", "--validate"], stdin: input)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#)
        let bad = try runProcess(try executablePath(), ["review", "--mutate"], stdin: Data("[]".utf8))
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("not an AdmissionReview"), bad.stderr)
    }

    /// `serve --config`: limits and timeouts from the file change what the server does.
    func testServeReadsLimitsAndTimeoutsFromTheConfigFile() throws {
        let directory = try temporaryDirectory("serve-config")
        let certificates = try DevelopmentCertificates.generate(in: directory)
        let config = directory + "/config.yaml"
        try """
        limits: {maxRequestBody: 1Ki, maxNestingDepth: 8}
        timeouts: {tlsHandshake: 300ms}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(["--config", config, "--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey])
        defer { server.stop() }
        func post(_ body: Data) throws -> String {
            try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-o", "/dev/null", "-w", "%{http_code}",
                                             "-H", "Content-Type: application/json", "--data-binary", "@-",
                                             "https://localhost:\(server.port)/validate"], stdin: body).stdout
        }
        XCTAssertEqual(try post(Data(repeating: 0x20, count: 2048)), "413")
        let deep = String(repeating: "[", count: 9) + String(repeating: "]", count: 9)
        XCTAssertEqual(try post(Data(#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":\#(deep)}"#.utf8)), "400")
        let small = #"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"group":"atlas.mongodb.com","kind":"AtlasStreamConnection"},"operation":"CREATE","namespace":"a","object":{"spec":{"name":"sample_stream_solar","type":"Sample"}}}}"#
        XCTAssertEqual(try post(Data(small.utf8)), "200")
        let fd = try connectTCP(port: server.port)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        var byte: UInt8 = 0
        XCTAssertEqual(read(fd, &byte, 1), 0)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.5, "the 300ms handshake deadline from the file applies")
    }

    /// The remaining limits and timeouts from the file, each observed on the wire.
    func testServeAppliesHeaderLimitsConnectionCapAndRequestTimeoutsFromTheFile() throws {
        let directory = try temporaryDirectory("serve-config-2")
        let certificates = try DevelopmentCertificates.generate(in: directory)
        let config = directory + "/config.yaml"
        try """
        limits: {maxHeaderBytes: 2Ki, maxHeaderFields: 5, maxConnections: 3}
        timeouts: {requestHeaders: 400ms, requestBody: 400ms, idle: 400ms}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(["--config", config, "--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--loops", "1"])
        defer { server.stop() }
        func get(_ headers: [String]) throws -> String {
            try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-o", "/dev/null", "-w", "%{http_code}"]
                           + headers.flatMap { ["-H", $0] } + ["https://localhost:\(server.port)/healthz"]).stdout
        }
        XCTAssertEqual(try get([]), "200")
        XCTAssertEqual(try get(["X-Big: " + String(repeating: "a", count: 3000)]), "431", "maxHeaderBytes")
        XCTAssertEqual(try get((1...5).map { "X-\($0): v" }), "431", "maxHeaderFields (curl adds Host, User-Agent, Accept)")

        // Timeouts: a client that sends part of a request and then nothing.
        func secondsUntilClosed(_ partial: String) throws -> Double {
            let client = Process()
            client.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            client.arguments = ["s_client", "-quiet", "-connect", "127.0.0.1:\(server.port)", "-CAfile", certificates.caCertificate]
            let input = Pipe()
            client.standardInput = input
            client.standardOutput = FileHandle.nullDevice
            client.standardError = FileHandle.nullDevice
            try client.run()
            input.fileHandleForWriting.write(Data(partial.utf8))
            let start = Date()
            while client.isRunning && Date().timeIntervalSince(start) < 5 { usleep(20_000) }
            if client.isRunning { client.terminate() }
            try? input.fileHandleForWriting.close()
            return Date().timeIntervalSince(start)
        }
        XCTAssertLessThan(try secondsUntilClosed("GET /healthz HTTP/1.1\r\nHost: x\r\n"), 2.5, "requestHeaders")
        XCTAssertLessThan(try secondsUntilClosed("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"), 2.5,
                          "requestBody")
        XCTAssertLessThan(try secondsUntilClosed("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 2.5, "idle after a response")

        // maxConnections: with 3 open, the 4th is closed at once (long before any deadline).
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<3 { held.append(try connectTCP(port: server.port)) }
        usleep(100_000)
        let extra = try connectTCP(port: server.port)
        defer { close(extra) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        var byte: UInt8 = 0
        XCTAssertLessThanOrEqual(read(extra, &byte, 1), 0)
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.3, "refused at accept, not at the handshake deadline")
    }

    func testServeRefusesABadConfigFile() throws {
        let directory = try temporaryDirectory("bad-config")
        let config = directory + "/config.yaml"
        try "timeouts:\n  idle: forever\n".write(toFile: config, atomically: true, encoding: .utf8)
        let result = try runProcess(try executablePath(), ["serve", "--dev", "--config", config, "--listen", "127.0.0.1:0",
                                                           "--dev-cert-dir", directory + "/certs"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("\(config):2: timeouts.idle: must be a Go duration"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/certs"), "nothing starts half-configured")
    }
}

