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

    /// A kubectl too old for deploy/ (Debian 12's 1.20) is named as the cause, not met
    /// with kustomize's own obscure errors.
    func testAnOldKubectlIsNamedAsTheCause() throws {
        let directory = try temporaryDirectory("old-kubectl")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let stub = directory + "/kubectl"
        try """
        #!/bin/sh
        echo '{"clientVersion":{"major":"1","minor":"20","gitVersion":"v1.20.15"}}'
        """.write(toFile: stub, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(stub, 0o755), 0)
        let script = repositoryRoot.appendingPathComponent("Tests/Scripts/check_deploy.py").path
        let python = try testPython()
        let result = try runProcess("/usr/bin/env", ["PATH=\(directory):/usr/bin:/bin", python, script, try executablePath()])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("kubectl reports no kustomize version: deploy/ needs kubectl 1.27 or later (kustomize v5)"),
                      result.stdout + result.stderr)
    }
}
