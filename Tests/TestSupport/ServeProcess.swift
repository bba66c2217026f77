import Foundation
import Glibc
import XCTest

/// The built `atlas-stream-webhook` executable, beside the test bundle.
public func executablePath() throws -> String {
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

/// The release build of the executable, which the README's test command builds before
/// `swift test`.
public func releaseExecutablePath() throws -> String {
    let path = repositoryRoot.appendingPathComponent(".build/release/atlas-stream-webhook").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        XCTFail("\(path) missing: build it first (swift build -c release --static-swift-stdlib --product atlas-stream-webhook)")
        throw POSIXError(.ENOENT)
    }
    return path
}

/// `atlas-stream-webhook serve` as a child process on ephemeral ports (the webhook's, and
/// the health and metrics listeners' unless the arguments say otherwise), found from its
/// `serving` log line.
public final class ServeProcess {
    public let process = Process()
    public let port: UInt16
    /// The health listener's port; nil when it is off.
    public let healthPort: UInt16?
    /// The metrics listener's port; nil when it is off.
    public let metricsPort: UInt16?
    private let errors = Pipe()
    /// What the process has logged so far (read by `waitForLog`).
    public private(set) var log = ""

    /// `release`: the release build in `.build/release` (the README's test command builds
    /// it first), for tests whose figures (peak RSS under load) are the shipped binary's.
    public init(_ arguments: [String], environment: [String: String] = [:], release: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: try release ? releaseExecutablePath() : executablePath())
        // No cluster unless the test gives one: a test machine that is itself a pod must
        // not turn lookups on for every server the tests start.
        let cluster = arguments.contains { $0.hasPrefix("--kubeconfig") || $0.hasPrefix("--cluster-lookups") }
            ? [] : ["--cluster-lookups=false"]
        // Ephemeral ports, given first so the test's own flags win: two servers, or another
        // program on the machine, must not meet on the default ports.
        process.arguments = ["serve", "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]
            + cluster + arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        var log = ""
        let deadline = Date().addingTimeInterval(10)
        var serving: Substring?
        while serving == nil && Date() < deadline {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            log += String(decoding: chunk, as: UTF8.self)
            // Whole lines only: the last piece may be a line still being written.
            serving = log.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                .first { $0.contains(#""msg":"serving""#) }
        }
        guard let serving, let found = serving.firstMatch(of: /"address":"127\.0\.0\.1:(\d+)"/).flatMap({ UInt16($0.1) }) else {
            process.terminate()
            XCTFail("serve did not start: \(log)")
            throw POSIXError(.ECONNREFUSED)
        }
        port = found
        healthPort = serving.firstMatch(of: /"health":"http:\/\/[^"]*:(\d+)"/).flatMap { UInt16($0.1) }
        metricsPort = serving.firstMatch(of: /"metrics":"https?:\/\/[^"]*:(\d+)"/).flatMap { UInt16($0.1) }
        self.log = log
    }

    /// Reads the log until it contains `text` or `seconds` pass; whether it appeared.
    public func waitForLog(_ text: String, seconds: Double) -> Bool {
        let fd = errors.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !log.contains(text) {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return false }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(left * 1000) + 1) > 0 else { continue }
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { return log.contains(text) }
            log += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        return true
    }

    /// The process's peak resident set so far (`VmHWM`), in KiB; 0 when it cannot be read.
    public var peakRSSKiB: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
    }
}
