import Foundation
import TestSupport
import XCTest

/// Every patch applied by an independent RFC 6902 implementation, idempotence, and
/// the CRD schemas (Tests/Scripts/check_defaulting.py, Python's jsonpatch and jsonschema).
final class DefaultingConformanceTests: XCTestCase {
    func testPatchesApplyIndependentlyAndDefaultedObjectsFitTheCRDs() throws {
        let script = repositoryRoot.appendingPathComponent("Tests/Scripts/check_defaulting.py").path
        let result = try runProcess(try testPython(), [script, try executablePath()])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains(", 0 problems"), result.stdout + result.stderr)
    }
}

/// deploy/ and certs/ rendered, schema-checked and cross-checked against the real server
/// (Tests/Scripts/check_deploy.py: kubectl kustomize, kubernetes-validate, openssl, curl).
final class DeploymentTests: XCTestCase {
    func testManifestsRenderValidateAndAgreeWithTheServer() throws {
        let script = repositoryRoot.appendingPathComponent("Tests/Scripts/check_deploy.py").path
        let result = try runProcess(try testPython(), [script, try executablePath()])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("deploy checks: 0 problems"), result.stdout + result.stderr)
    }
}
