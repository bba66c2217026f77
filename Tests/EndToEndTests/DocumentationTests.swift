import Foundation
import TLS
import TestSupport
import XCTest

/// The documentation cannot drift from the program: every flag, metric family and rule
/// is where a reader looks for it, and the README's commands run.
final class DocumentationTests: XCTestCase {
    private func document(_ path: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
    }

    func testEveryFlagOfEveryCommandIsInTheConfigurationDocs() throws {
        let docs = try document("docs/configuration.md")
        for command in ["serve", "check", "audit", "review", "rules", "policy"] {
            let help = try runProcess(try executablePath(), [command, "--help"])
            XCTAssertEqual(help.status, 0, command)
            let flags = Set(help.stdout.matches(of: /(?m)^\s+(?:-h, )?(--[a-z][a-z0-9-]*)/).map { String($0.1) })
            XCTAssertGreaterThan(flags.count, 1, "\(command) --help lists its flags")
            for flag in flags {
                XCTAssertTrue(docs.contains("`\(flag)"), "\(command) \(flag) is not in docs/configuration.md")
            }
        }
    }

    /// Every family a running server exports, with cluster lookups on, is in
    /// docs/operations.md.
    func testEveryMetricFamilyIsInTheOperationsDocs() throws {
        let directory = try temporaryDirectory("docs-metrics")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try DevelopmentCertificates.generate(in: directory)
        let apiserver = try FakeAPIServer(name: "docsmetrics")
        defer { apiserver.stop() }
        let kubeconfig = try apiserver.kubeconfig(user: "tokenFile: \(apiserver.tokenFile)")
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--kubeconfig", kubeconfig, "--shutdown-delay", "0s"])
        defer { server.stop() }
        // One denial, so the rule findings family has a series too.
        let body = try Data(contentsOf: fixtures.appendingPathComponent("review-kafka-denied.json"))
        _ = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate, "-H", "Content-Type: application/json",
                                             "--data-binary", "@-", "https://localhost:\(server.port)/validate"], stdin: body)
        var families: [String] = []
        let deadline = Date().addingTimeInterval(15)
        repeat {
            let metrics = try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate,
                                                           "https://localhost:\(server.port)/metrics"]).stdout
            families = metrics.split(separator: "\n").compactMap { line in
                line.hasPrefix("# TYPE ") ? line.dropFirst("# TYPE ".count).split(separator: " ").first.map(String.init) : nil
            }
            if families.contains("atlas_stream_webhook_cache_synced") { break }
            usleep(200_000)
        } while Date() < deadline
        XCTAssertTrue(families.contains("atlas_stream_webhook_cache_synced"), "\(families)")
        XCTAssertTrue(families.contains("atlas_stream_webhook_rule_findings_total"), "\(families)")
        let docs = try document("docs/operations.md")
        for family in families {
            XCTAssertTrue(docs.contains("`\(family)"), "\(family) is not in docs/operations.md")
        }
    }

    /// The README's commands that need no cluster and no second terminal run as shown:
    /// each `swift run atlas-stream-webhook ...` line, run with the built binary.
    func testTheReadmeCommandsRun() throws {
        let readme = try document("README.md")
        let lines = readme.split(separator: "\n").map(String.init)
        let commands = lines.filter { $0.hasPrefix("swift run atlas-stream-webhook ") && !$0.contains(" serve") }
        XCTAssertFalse(commands.isEmpty, "the README shows a command to run")
        for command in commands {
            let line = command.replacingOccurrences(of: "swift run atlas-stream-webhook", with: try executablePath())
            let result = try runProcess("/bin/sh", ["-c", "cd '\(repositoryRoot.path)' && \(line)"])
            XCTAssertEqual(result.status, 0, "\(command): \(result.stderr)")
            XCTAssertFalse(result.stdout.isEmpty, command)
        }
    }
}
