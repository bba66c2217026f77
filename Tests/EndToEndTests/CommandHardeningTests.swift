import Foundation
import Glibc
import TestSupport
import TLS
import XCTest

/// The findings of the hardening review that concern the process and its command line.
final class CommandHardeningTests: XCTestCase {
    /// Finding 2: the log writer thread started before SIGTERM and SIGINT were blocked,
    /// so a second signal during the drain could take the default action on it.
    func testSecondTerminationSignalDuringDrainDoesNotKillTheProcess() throws {
        let directory = try temporaryDirectory("signals")
        let certificates = try DevelopmentCertificates.generate(in: directory)
        let server = try ServeProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.privateKey,
                                       "--shutdown-delay", "1s", "--drain-timeout", "5s"])
        kill(server.process.processIdentifier, SIGTERM)
        usleep(300_000)
        kill(server.process.processIdentifier, SIGTERM)
        kill(server.process.processIdentifier, SIGINT)
        server.process.waitUntilExit()
        XCTAssertEqual(server.process.terminationReason, .exit, "killed by a signal")
        XCTAssertEqual(server.process.terminationStatus, 0)
    }

    /// Finding 6: `--client-name=` pinned nothing, and a wildcard client certificate
    /// stood for a required name.
    func testEmptyAndWildcardClientNamesAreRefused() throws {
        for name in ["", "*.example.com"] {
            let result = try runProcess(try executablePath(), ["serve", "--dev", "--client-ca", "ca.crt", "--client-name=\(name)"])
            XCTAssertEqual(result.status, 2, name)
            XCTAssertTrue(result.stderr.contains("--client-name must be a client's exact name (no wildcards)"), result.stderr)
        }
    }
}
