import Foundation
import XCTest

/// The built `atlas-stream-webhook` executable, beside the test bundle.
func executablePath() throws -> String {
    let candidates = [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments[0])].compactMap { $0 }
    for candidate in candidates {
        var directory = candidate.deletingLastPathComponent()
        // Inside an .xctest bundle directory on some layouts: walk up a few levels.
        for _ in 0..<4 {
            let path = directory.appendingPathComponent("atlas-stream-webhook").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
            directory = directory.deletingLastPathComponent()
        }
    }
    XCTFail("atlas-stream-webhook executable not found next to the tests")
    throw POSIXError(.ENOENT)
}

final class CommandLineTests: XCTestCase {
    /// `serve --dev` writes its certificates, prints a curl line, answers that curl line,
    /// and exits 0 on SIGTERM.
    func testServeDevPrintsAWorkingCurlLineAndStopsOnSIGTERM() throws {
        let binary = try executablePath()
        let certDirectory = try temporaryDirectory("devcerts") + "/certs/dev"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--dev", "--listen", "127.0.0.1:0", "--dev-cert-dir", certDirectory]
        process.currentDirectoryURL = repositoryRoot
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The banner: "Development server on https://localhost:PORT. Try:\n  curl ..."
        var banner = ""
        let deadline = Date().addingTimeInterval(10)
        while !banner.contains("/validate") && Date() < deadline {
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

        kill(process.processIdentifier, SIGTERM)
        let stopBy = Date().addingTimeInterval(10)
        while process.isRunning && Date() < stopBy { usleep(20_000) }
        XCTAssertFalse(process.isRunning, "serve must exit after SIGTERM")
        XCTAssertEqual(process.terminationStatus, 0)
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
}
