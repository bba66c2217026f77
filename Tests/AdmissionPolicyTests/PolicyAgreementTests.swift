import AdmissionPolicy
import Configuration
import Foundation
import JSON
import StreamRules
import TestSupport
import XCTest

/// The generated policies decide every per-object case of the rule tests, the AKO
/// documentation fixtures and the worst-case shapes as the webhook's rules do, under
/// several configurations, evaluated by Google's CEL C++ runtime
/// (Tests/Scripts/check_policy.py, cel-expr-python).
final class PolicyAgreementTests: XCTestCase {
    /// Configurations whose rule data, policies, operator version and enforcement each
    /// change what the policy says.
    private let configurations: [(String, String)] = [
        ("default", ""),
        ("policies", """
            rules:
              secretReferences: {policy: deny, allowedNamespaces: [kafka-credentials]}
              registryReferences: {policy: deny, allowedNamespaces: [shared]}
              kafkaCertificate: ssl
              operatorVersion: 2.5.0-rc.1
              sampleSources: [sample_stream_solar, sample_stream_lunar]
              builtInRoles: [atlasAdmin]
              regions: {GCP: [US_CENTRAL1], AZURE: [eastus]}
            """),
        ("rollout", """
            rules:
              operatorVersion: 2.15.1
            enforcement:
              default: warn
              rules: {instance-name-format: deny, kafka-protocol-encrypted: off, bootstrap-servers-format: off}
            """),
    ]

    func testThePolicyAgreesWithTheWebhookOnEveryCase() throws {
        let python = try testPython()
        let script = repositoryRoot.appendingPathComponent("Tests/Scripts/check_policy.py").path
        let directory = try temporaryDirectory("policy-agreement")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let casesPath = directory + "/cases.jsonl"
        let made = try runProcess(python, [script, "cases", casesPath])
        XCTAssertEqual(made.status, 0, made.stdout + made.stderr)
        print(made.stdout, terminator: "")

        var cases: [(line: Substring, input: RuleInput)] = []
        for line in try String(contentsOfFile: casesPath, encoding: .utf8).split(separator: "\n") {
            let root = try JSONReader.parse(Array(line.utf8)).root
            guard let kind = root[member: "kind"]?.string.flatMap(StreamKind.init(rawValue:)),
                  let operation = root[member: "operation"]?.string.flatMap({ AdmissionOperation($0) }) else {
                return XCTFail("bad case \(line.prefix(200))")
            }
            let old = root[member: "oldObject"]
            cases.append((line, RuleInput(kind: kind, operation: operation, object: root[member: "object"],
                                          oldObject: old?.isNull == false ? old : nil,
                                          requestNamespace: root[member: "namespace"]?.string ?? "")))
        }
        // A value of a type the CRD schema refuses never reaches a policy.
        let schemaChecked = StreamRules()
        let judged = cases.filter { item in
            !schemaChecked.validate(item.input).findings.contains { $0.rule == .fieldType || $0.rule == .objectRequired }
        }
        print("cases: \(judged.count) compared, \(cases.count - judged.count) left out (a value of a type the CRD schema refuses)")

        var w = JSONWriter(capacity: 1 << 20)
        w.beginObject()
        w.key("cases"); w.beginArray()
        for item in judged { w.raw(Array(item.line.utf8)) }
        w.endArray()
        w.key("configurations"); w.beginArray()
        for (name, text) in configurations {
            let file = directory + "/\(name).yaml"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let rules = try ConfigurationFile.parse(Array(text.utf8), file: file).rules
            let policy = try runProcess(try executablePath(), ["policy", "--config", file, "--output", "json"])
            XCTAssertEqual(policy.status, 0, policy.stderr)
            w.beginObject()
            w.key("name"); w.string(name)
            w.key("policy"); w.raw(Array(policy.stdout.utf8))
            w.key("notCovered"); w.beginArray()
            for rule in RuleID.allCases where !rule.policyCoverage(rules).isCovered { w.string(rule.rawValue) }
            w.endArray()
            w.key("verdicts"); w.beginArray()
            let webhook = StreamRules(configuration: rules)
            for (index, item) in judged.enumerated() {
                let decision = webhook.validate(item.input)
                var findings: [RuleID: [String]] = [:]
                for error in decision.errors { findings[error.rule, default: []].append(error.description) }
                for warning in decision.warnings { findings[warning.rule, default: []].append(warning.message) }
                w.beginObject()
                w.key("index"); w.int(index)
                w.key("findings"); w.beginObject()
                for (rule, messages) in findings.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                    w.key(rule.rawValue); w.beginArray(); for message in messages { w.string(message) }; w.endArray()
                }
                w.endObject()
                // Past 100 errors the answer keeps the first 100: a rule may have lost its own.
                w.key("incomplete"); w.beginArray()
                if decision.omittedErrorCount > 0 || decision.warnings.contains(where: { $0.message.hasPrefix("would be denied: and ") }) {
                    for rule in RuleID.allCases { w.string(rule.rawValue) }
                }
                w.endArray()
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()
        w.endObject()
        let verdicts = directory + "/verdicts.json"
        XCTAssertTrue(FileManager.default.createFile(atPath: verdicts, contents: Data(w.bytes)))
        let compared = try runProcess(python, [script, "compare", verdicts])
        print(compared.stdout, terminator: "")
        XCTAssertEqual(compared.status, 0, compared.stdout + compared.stderr)
        XCTAssertTrue(compared.stdout.contains("policy agreement: 0 disagreements, 0 problems"), compared.stdout + compared.stderr)
    }
}

/// deploy/components/admission-policy ships what `policy` prints with the built-in configuration.
final class PolicyComponentTests: XCTestCase {
    func testTheComponentShipsTheGeneratedPolicy() throws {
        let generated = try runProcess(try executablePath(), ["policy"])
        XCTAssertEqual(generated.status, 0, generated.stderr)
        let shipped = try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/components/admission-policy/policy.yaml"),
                                 encoding: .utf8)
        XCTAssertTrue(shipped == generated.stdout,
                      "deploy/components/admission-policy/policy.yaml is stale: atlas-stream-webhook policy > deploy/components/admission-policy/policy.yaml")
    }
}
