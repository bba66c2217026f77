import Foundation
import TestSupport
import TLS
import XCTest

/// Loading, checking and generating certificates (the TLS room).
final class TLSContextTests: XCTestCase {
    func testMismatchedKeyIsAClearStartupError() throws {
        let a = try temporaryDirectory("a"), b = try temporaryDirectory("b")
        let first = try DevelopmentCertificates.generate(in: a)
        let second = try DevelopmentCertificates.generate(in: b)
        XCTAssertThrowsError(try TLSContext(configuration: TLSConfiguration(certificateChainPath: first.certificate,
                                                                             privateKeyPath: second.privateKey))) { error in
            XCTAssertEqual(error as? TLSError,
                           .privateKeyDoesNotMatchCertificate(certificate: first.certificate, key: second.privateKey))
        }
        XCTAssertThrowsError(try TLSContext(configuration: TLSConfiguration(certificateChainPath: a + "/missing.crt",
                                                                             privateKeyPath: first.privateKey))) { error in
            guard case .certificateUnreadable(let path, _)? = error as? TLSError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, a + "/missing.crt")
        }
    }

    func testGeneratedCertificateVerifiesWithItsSANs() throws {
        let dir = try temporaryDirectory("dev")
        let paths = try DevelopmentCertificates.generate(in: dir)
        let verify = try runProcess("/usr/bin/openssl", ["verify", "-CAfile", paths.caCertificate, paths.certificate])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        let text = try runProcess("/usr/bin/openssl", ["x509", "-in", paths.certificate, "-noout", "-text"]).stdout
        XCTAssertTrue(text.contains("DNS:localhost"), text)
        XCTAssertTrue(text.contains("IP Address:127.0.0.1"), text)
        XCTAssertTrue(text.contains("ASN1 OID: prime256v1"), text)
        let mode = try FileManager.default.attributesOfItem(atPath: paths.privateKey)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        // Reused when present.
        let again = try DevelopmentCertificates.ensure(in: dir)
        XCTAssertFalse(again.created)
    }

    /// Finding 4: a certificate set that failed to load leaked its SSL_CTX.
    func testFailedCertificateLoadsDoNotLeak() throws {
        let directory = try temporaryDirectory("leak")
        let one = try DevelopmentCertificates.generate(in: directory + "/one")
        let other = try DevelopmentCertificates.generate(in: directory + "/other")
        let mismatched = TLSConfiguration(certificateChainPath: one.certificate, privateKeyPath: other.privateKey)
        func attempt(_ times: Int) {
            for _ in 0..<times { XCTAssertThrowsError(try TLSContext(configuration: mismatched)) }
        }
        attempt(200)  // warm up
        let before = residentKiB()
        attempt(3000)
        let grown = residentKiB() - before
        XCTAssertLessThan(grown, 4 * 1024, "3,000 refused loads kept \(grown) KiB")
    }

    /// A certificate not valid yet (finding 11 of the hardening review) and client names
    /// that are not exact names (finding 6) are refused when the context is built.
    func testNotYetValidCertificateAndInexactClientNamesAreRefused() throws {
        let directory = try temporaryDirectory("tls-refusals")
        let future = try DevelopmentCertificates.generate(in: directory + "/future", validFrom: 3600)
        XCTAssertThrowsError(try TLSContext(configuration: TLSConfiguration(certificateChainPath: future.certificate,
                                                                             privateKeyPath: future.privateKey))) { error in
            XCTAssertEqual(error as? TLSError, .certificateNotYetValid(path: future.certificate))
        }
        let valid = try DevelopmentCertificates.generate(in: directory + "/valid")
        for name in ["", "*.example.com"] {
            XCTAssertThrowsError(try TLSContext(configuration: TLSConfiguration(
                certificateChainPath: valid.certificate, privateKeyPath: valid.privateKey, clientCAPath: valid.caCertificate,
                clientNames: [name])), name)
        }
        XCTAssertNoThrow(try TLSContext(configuration: TLSConfiguration(
            certificateChainPath: valid.certificate, privateKeyPath: valid.privateKey, clientCAPath: valid.caCertificate,
            clientNames: ["webhook.example.com"])))
    }
}
