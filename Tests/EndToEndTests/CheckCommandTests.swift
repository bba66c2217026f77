import Foundation
import TestSupport
import XCTest

/// `check` as a process, on the manifests under Tests/Fixtures/manifests.
final class CheckCommandTests: XCTestCase {
    let manifests = fixtures.appendingPathComponent("manifests").path

    private func check(_ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
        try runProcess(try releaseExecutablePath(), ["check"] + arguments, stdin: stdin)
    }

    func testValidFolderExitsZero() throws {
        let result = try check([manifests + "/valid"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        // AKO's own instance example asks for tier SP30, which AKO never sends to Atlas.
        XCTAssertEqual(result.stdout, manifests + "/valid/ako-examples.yaml:12: AtlasStreamInstance/my-stream-instance: warning: "
                       + "spec.clusterConfig.tier: not applied: AKO does not send the tier to Atlas\n"
                       + "checked 4 AtlasStream objects in 2 files: 0 invalid, 1 warning\n")
    }

    func testInvalidManifestsReportFileLineKindNameAndField() throws {
        let result = try check([manifests + "/invalid"])
        XCTAssertEqual(result.status, 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let file = manifests + "/invalid/connections.yml"
        XCTAssertEqual(Array(lines.prefix(10)), [
            "\(file):10: AtlasStreamConnection/bad-kafka: spec.kafkaConfig.bootstrapServers: Invalid value: \"SASL_SSL://broker-1:9092\": must be host:port without a scheme",
            "\(file):15: AtlasStreamConnection/bad-kafka: spec.kafkaConfig.authentication.credentials.namespace: Forbidden: may not reference a Secret in namespace \"team-b\"; allowed: the connection's own namespace",
            "\(file):17: AtlasStreamConnection/bad-kafka: spec.kafkaConfig.security.certificate.name: Required value: the operator reads key \"certificate\" from this Secret for every Kafka connection",
            "\(file):19: AtlasStreamConnection/bad-kafka: spec.kafkaConfig.config[sasl.password]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.credentials (a Secret) instead",
            "\(file):17: AtlasStreamConnection/bad-kafka: warning: spec.kafkaConfig.security.protocol: PLAINTEXT sends stream data unencrypted; use SSL",
            "\(file):12: AtlasStreamConnection/bad-kafka: warning: spec.kafkaConfig.authentication.mechanism: PLAIN over PLAINTEXT sends the password in clear text",
            "\(file):26: AtlasStreamInstance/bad-instance: metadata.annotations[mongodb.com/atlas-resource-policy]: Unsupported value: \"Keep\": supported values: \"keep\", \"delete\"",
            "\(file):28: AtlasStreamInstance/bad-instance: spec.name: Invalid value: \"bad instance\": must contain only ASCII letters, digits and '-'",
            "\(file):30: AtlasStreamInstance/bad-instance: spec.clusterConfig.provider: Unsupported value: \"TENANT\": supported values: \"AWS\", \"AZURE\", \"GCP\"",
            "\(file):36: AtlasStreamInstance/bad-instance: spec.connectionRegistry[1]: Duplicate value: \"default/a\"",
        ])
        XCTAssertEqual(lines.last, "checked 3 AtlasStream objects in 2 files: 2 invalid, 3 warnings")
    }

    /// kubectl's `get -o yaml` output is a `List`: its items are checked one by one, with
    /// the same findings the per-document files give, each on the line of its field.
    func testKubectlListOutputIsCheckedItemByItem() throws {
        let directory = try temporaryDirectory("check-list")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var sources: [String: [String]] = [:]
        var list = ["apiVersion: v1", "kind: List", "items:"]
        var listFiles: [(name: String, firstLine: Int)] = []
        for name in ["connections.yml", "plaintext-only.yaml"] {
            let text = try String(contentsOfFile: manifests + "/invalid/" + name, encoding: .utf8)
            sources[name] = text.components(separatedBy: "\n")
            listFiles.append((name, list.count + 1))
            for document in text.components(separatedBy: "\n---\n") {
                let lines = document.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
                list += lines.enumerated().map { ($0.offset == 0 ? "- " : "  ") + $0.element }
            }
        }
        let listFile = directory + "/list.yaml"
        try (list.joined(separator: "\n") + "\n").write(toFile: listFile, atomically: true, encoding: .utf8)

        let perFile = try check([manifests + "/invalid/connections.yml", manifests + "/invalid/plaintext-only.yaml"])
        let listed = try check([listFile])
        XCTAssertEqual(listed.status, perFile.status)
        func findings(_ output: String) -> [(file: String, line: Int, rest: String)] {
            output.split(separator: "\n").dropLast().compactMap { line in
                let parts = line.split(separator: ":", maxSplits: 2).map(String.init)
                guard parts.count == 3, let number = Int(parts[1]) else { return nil }
                return (parts[0], number, parts[2])
            }
        }
        let expected = findings(perFile.stdout)
        let got = findings(listed.stdout)
        XCTAssertEqual(got.map(\.rest), expected.map(\.rest), listed.stdout)
        XCTAssertEqual(listed.stdout.split(separator: "\n").last, "checked 3 AtlasStream objects in 1 file: 2 invalid, 3 warnings")
        // Each finding's line in the List holds the same text as its line in the file it came from.
        for (finding, original) in zip(got, expected) {
            let name = URL(fileURLWithPath: original.file).lastPathComponent
            let source = sources[name]?[original.line - 1].trimmingCharacters(in: .whitespaces) ?? "?"
            let inList = list[finding.line - 1].trimmingCharacters(in: .whitespaces)
            XCTAssertTrue(inList == source || inList == "- " + source, "\(finding.rest): list line \(finding.line) '\(inList)' vs '\(source)'")
        }
    }

    /// What `check` did not read is not passed: a kind of the operator's group it does not
    /// know is an error, and --require-objects fails an input without AtlasStream objects.
    func testUnknownOperatorKindsAndMissingObjectsFail() throws {
        let workspace = """
        apiVersion: atlas.mongodb.com/v1
        kind: AtlasStreamWorkspace
        metadata:
          name: ws
        ---
        apiVersion: atlas.mongodb.com/v1
        kind: AtlasProject
        metadata:
          name: proj
        """
        let result = try check(["-"], stdin: Data(workspace.utf8))
        XCTAssertEqual(result.status, 1, result.stdout)
        XCTAssertTrue(result.stdout.contains("<stdin>:1: AtlasStreamWorkspace/ws: kind AtlasStreamWorkspace is not served by AKO"), result.stdout)
        XCTAssertTrue(result.stdout.contains("AKO serves stream processing workspaces as AtlasStreamInstance"), result.stdout)
        XCTAssertFalse(result.stdout.contains("AtlasProject/proj"), "a kind AKO serves is left alone")
        XCTAssertTrue(result.stdout.hasSuffix("checked 0 AtlasStream objects in 1 file: 0 invalid, 0 warnings, 1 of an unknown kind\n"),
                      result.stdout)

        let secretsOnly = Data("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n".utf8)
        XCTAssertEqual(try check(["-"], stdin: secretsOnly).status, 0)
        let required = try check(["--require-objects", "-"], stdin: secretsOnly)
        XCTAssertEqual(required.status, 1)
        XCTAssertTrue(required.stdout.contains("error: no AtlasStreamInstance or AtlasStreamConnection found"), required.stdout)
        XCTAssertEqual(try check(["--require-objects", manifests + "/valid"]).status, 0)
    }

    /// The server's rollout settings (warn) do not make `check` pass what the server
    /// will refuse once it denies; a rule turned off stays off.
    func testCheckDeniesWhatARolloutOnlyWarnsOf() throws {
        let directory = try temporaryDirectory("check-rollout")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/config.yaml"
        try "enforcement:\n  default: warn\n".write(toFile: config, atomically: true, encoding: .utf8)
        let result = try check(["--config", config, manifests + "/invalid"])
        XCTAssertEqual(result.status, 1, result.stdout)
        XCTAssertTrue(result.stdout.contains("must be host:port without a scheme"), result.stdout)
        try "enforcement:\n  rules:\n    bootstrap-servers-format: off\n".write(toFile: config, atomically: true, encoding: .utf8)
        XCTAssertFalse(try check(["--config", config, manifests + "/invalid"]).stdout.contains("without a scheme"))
    }

    func testWarningsFailOnlyWithStrict() throws {
        let file = manifests + "/invalid/plaintext-only.yaml"
        XCTAssertEqual(try check([file]).status, 0)
        XCTAssertEqual(try check(["--strict", file]).status, 1)
    }

    func testSyntaxErrorsAndUnreadableInputsExitTwo() throws {
        let broken = try check([manifests + "/broken", manifests + "/valid"])
        XCTAssertEqual(broken.status, 2)
        XCTAssertTrue(broken.stdout.hasPrefix(manifests + "/broken/syntax.yaml:7:7: while parsing a flow sequence started at 6:9:"),
                      broken.stdout)
        let missing = try check(["/nonexistent/file.yaml"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stdout.contains("/nonexistent/file.yaml: cannot read /nonexistent/file.yaml: No such file or directory"),
                      missing.stdout)
    }

    func testStandardInputAndNamespaceFlag() throws {
        let text = """
        apiVersion: atlas.mongodb.com/v1
        kind: AtlasStreamConnection
        metadata: {name: k}
        spec:
          name: k
          type: Kafka
          kafkaConfig:
            bootstrapServers: b:9092
            authentication: {mechanism: SCRAM-256, credentials: {name: c, namespace: team-x}}
            security: {protocol: SSL, certificate: {name: ca}}
        """
        XCTAssertEqual(try check(["-"], stdin: Data(text.utf8)).status, 1, "team-x is not the default namespace")
        let inTeamX = try check(["--namespace", "team-x", "-"], stdin: Data(text.utf8))
        XCTAssertEqual(inTeamX.status, 0, inTeamX.stdout)
    }

    func testJSONOutput() throws {
        let result = try check(["--output", "json", manifests + "/invalid", manifests + "/broken"])
        XCTAssertEqual(result.status, 2)
        let report = try jsonObject(result.stdout)
        XCTAssertEqual(report["files"] as? Int, 3)
        XCTAssertEqual(report["objects"] as? Int, 3)
        XCTAssertEqual(report["invalid"] as? Int, 2)
        let findings = try XCTUnwrap(report["findings"] as? [[String: Any]])
        XCTAssertEqual(findings.count, 11)
        XCTAssertEqual(findings[0]["line"] as? Int, 10)
        XCTAssertEqual(findings[0]["field"] as? String, "spec.kafkaConfig.bootstrapServers")
        XCTAssertEqual(findings[0]["reason"] as? String, "FieldValueInvalid")
        XCTAssertEqual(findings[0]["severity"] as? String, "error")
        XCTAssertEqual(findings[4]["severity"] as? String, "warning")
        let errors = try XCTUnwrap(report["errors"] as? [[String: Any]])
        XCTAssertEqual(errors.first?["line"] as? Int, 7)
        XCTAssertEqual(errors.first?["column"] as? Int, 7)
    }

    func testPrintDefaultedRechecksWithNoChanges() throws {
        let first = try check(["--print-defaulted", manifests + "/valid"])
        XCTAssertEqual(first.status, 0)
        XCTAssertTrue(first.stderr.contains("checked 4 AtlasStream objects"), "findings go to stderr with --print-defaulted")
        XCTAssertTrue(first.stdout.contains("      namespace: team-a\n"), first.stdout)
        XCTAssertTrue(first.stdout.contains("kind: Secret"), "other kinds are passed through")
        XCTAssertTrue(first.stdout.contains("    provider: AWS\n    region: VIRGINIA_USA\n    tier: SP30\n"), "key order kept")
        let second = try check(["--print-defaulted", "-"], stdin: Data(first.stdout.utf8))
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(second.stdout, first.stdout, "defaulting the defaulted output changes nothing")
    }

    func testConfigFileChangesTheRules() throws {
        let directory = try temporaryDirectory("config")
        let config = directory + "/config.yaml"
        try "rules:\n  sampleSources: [sample_stream_weather]\n".write(toFile: config, atomically: true, encoding: .utf8)
        let result = try check(["--config", config, manifests + "/valid"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.contains(#"spec.name: Unsupported value: "sample_stream_solar": supported values: "sample_stream_weather""#),
                      result.stdout)
        try "rules:\n  sampleSource: []\n".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try check(["--config", config, manifests + "/valid"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("\(config):2: rules.sampleSource: unknown key"), bad.stderr)
    }
}
