import Foundation
import HTTPServer
import Logging
import TLS
import WebhookServer
import XCTest
import Admission

/// The repository root, found from this file.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
public let fixtures = repositoryRoot.appendingPathComponent("Tests/Fixtures")

/// A fresh temporary directory.
public func temporaryDirectory(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("asw-\(name)-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The real server on an ephemeral loopback port, with a certificate made for this test.
public final class RunningServer {
    public let server: WebhookServer
    public private(set) var port: UInt16 = 0
    public let certificates: DevelopmentCertificates.Paths
    public let directory: String

    public init(http: (inout HTTPServerConfiguration) -> Void = { _ in }, minimumTLS: TLSMinimumVersion = .tls12,
         certificates given: DevelopmentCertificates.Paths? = nil, startNow: Bool = true,
         configure: (inout WebhookConfiguration) -> Void = { _ in }) throws {
        directory = try temporaryDirectory("server")
        certificates = try given ?? DevelopmentCertificates.generate(in: directory)
        var httpConfiguration = HTTPServerConfiguration(address: ListenAddress(host: "127.0.0.1", port: 0), loopCount: 2)
        http(&httpConfiguration)
        var configuration = WebhookConfiguration(
            http: httpConfiguration,
            tls: TLSConfiguration(certificateChainPath: certificates.certificate, privateKeyPath: certificates.privateKey,
                                  minimumVersion: minimumTLS))
        configure(&configuration)
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        server = try WebhookServer(configuration: configuration, reviewer: AdmissionReviewer(), logger: logger)
        if startNow { try start() }
    }

    /// Starts serving (for a server made with `startNow: false`).
    public func start() throws {
        port = try server.start()
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func url(_ path: String) -> String { "https://localhost:\(port)\(path)" }

    /// curl with certificate verification against this server's CA.
    public func curl(_ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
        try runProcess("/usr/bin/curl", ["-sS", "--cacert", certificates.caCertificate] + arguments, stdin: stdin)
    }

    /// `openssl s_client` against this server.
    public func sClient(_ arguments: [String], stdin: Data = Data()) throws -> ProcessResult {
        try runProcess("/usr/bin/openssl",
                       ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost",
                        "-CAfile", certificates.caCertificate] + arguments, stdin: stdin)
    }

    /// Asserts the server still answers `/healthz`.
    public func assertHealthy(file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try curl(["-w", "%{http_code}", url("/healthz")])
        XCTAssertEqual(result.stdout, "ok200", "server no longer healthy", file: file, line: line)
    }
}

public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public func runProcess(_ executable: String, _ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    // Output goes to files so a chatty child never blocks on a full pipe.
    let directory = try temporaryDirectory("process")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let outPath = directory + "/out", errPath = directory + "/err"
    guard FileManager.default.createFile(atPath: outPath, contents: nil),
          FileManager.default.createFile(atPath: errPath, contents: nil) else { throw POSIXError(.EIO) }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self),
                         stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self))
}

/// A JSON object from text, for assertions.
public func jsonObject(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
    return try XCTUnwrap(value as? [String: Any], "not a JSON object: \(text)", file: file, line: line)
}

/// A thread-safe tally for load generated from several threads.
public final class Tally: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var notes: [String] = []

    public init() {}

    public func add(_ key: String, note: String? = nil) {
        lock.lock()
        counts[key, default: 0] += 1
        if let note, notes.count < 20 { notes.append(note) }
        lock.unlock()
    }

    public subscript(key: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return counts[key] ?? 0
    }

    public var examples: [String] {
        lock.lock()
        defer { lock.unlock() }
        return notes
    }
}

/// A request to `path` on a fresh TLS connection; the status, or nil on any failure.
public func requestOnNewConnection(port: UInt16, caFile: String, path: String = "/healthz") -> (Int, UInt64?)? {
    guard let client = try? TestTLSClient(port: port, caFile: caFile),
          client.write("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
          let response = client.readResponse() else { return nil }
    return (response.status, client.peerSerial)
}

/// A client certificate for `name` (CN and DNS SAN) signed by the CA of `issuer`
/// (made by `DevelopmentCertificates.generate`), written into `directory`.
public func clientCertificate(in directory: String, name: String, signedBy issuer: DevelopmentCertificates.Paths,
                       file: StaticString = #filePath, line: UInt = #line) throws -> (certificate: String, privateKey: String) {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let caKey = URL(fileURLWithPath: issuer.caCertificate).deletingLastPathComponent().appendingPathComponent("ca.key").path
    let request = try runProcess("/usr/bin/openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                                      "-nodes", "-keyout", directory + "/tls.key", "-out", directory + "/tls.csr",
                                                      "-subj", "/CN=\(name)"])
    XCTAssertEqual(request.status, 0, request.stderr, file: file, line: line)
    try "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:\(name)\n".write(toFile: directory + "/ext", atomically: true, encoding: .utf8)
    let signed = try runProcess("/usr/bin/openssl", ["x509", "-req", "-in", directory + "/tls.csr", "-CA", issuer.caCertificate,
                                                     "-CAkey", caKey, "-CAcreateserial", "-days", "1",
                                                     "-extfile", directory + "/ext", "-out", directory + "/tls.crt"])
    XCTAssertEqual(signed.status, 0, signed.stderr, file: file, line: line)
    return (directory + "/tls.crt", directory + "/tls.key")
}

/// The Python the tests' scripts run with: a virtual environment under `.build/` with the
/// pinned packages of Tests/Scripts/requirements.txt, made on first use (and again when
/// that file changes), so the tests need only a bare `python3` with `venv`.
public func testPython() throws -> String {
    let requirements = repositoryRoot.appendingPathComponent("Tests/Scripts/requirements.txt").path
    let environment = repositoryRoot.appendingPathComponent(".build/test-python").path
    let python = environment + "/bin/python3"
    let stamp = environment + "/requirements.installed"
    let wanted = try String(contentsOfFile: requirements, encoding: .utf8)
    // One test process at a time makes or checks the environment.
    let lock = open(repositoryRoot.appendingPathComponent(".build/test-python.lock").path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    defer { if lock >= 0 { close(lock) } }
    if lock >= 0 { flock(lock, LOCK_EX) }
    if (try? String(contentsOfFile: stamp, encoding: .utf8)) == wanted { return python }
    try? FileManager.default.removeItem(atPath: environment)
    let made = try runProcess("/usr/bin/env", ["python3", "-m", "venv", environment])
    guard made.status == 0 else {
        throw POSIXError(.ENOENT, "python3 -m venv failed (Debian: apt-get install python3-venv): \(made.stderr)")
    }
    let installed = try runProcess(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements])
    guard installed.status == 0 else { throw POSIXError(.EIO, "pip install -r \(requirements) failed: \(installed.stderr)") }
    try wanted.write(toFile: stamp, atomically: true, encoding: .utf8)
    return python
}

extension POSIXError {
    /// A POSIX error with a message for the test log.
    public init(_ code: POSIXErrorCode, _ message: String) {
        print(message)
        self.init(code)
    }
}

/// Waits until `condition` holds, looking every 50 ms, for at most `seconds`; fails the
/// test, naming `what`, when it never does.
public func eventually(_ what: String, seconds: Double = 15, _ condition: () throws -> Bool,
                       file: StaticString = #filePath, line: UInt = #line) rethrows {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(50_000)
    }
    XCTFail("timed out waiting for \(what)", file: file, line: line)
}
