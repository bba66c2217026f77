import Foundation
import JSON
import Manifests
import StreamRules
import XCTest
import YAML

/// `check` without a process: findings with their lines, the defaulted documents, the
/// error cap, and the report's renderings.
final class ManifestCheckerTests: XCTestCase {
    let checker = ManifestChecker(rules: StreamRules())

    func testFindingsCarryTheLineOfTheDeepestFieldThere() {
        let yaml = """
        apiVersion: atlas.mongodb.com/v1
        kind: AtlasStreamConnection
        metadata:
          name: k
          annotations:
            mongodb.com/atlas-resource-policy: Keep
        spec:
          name: k
          type: Kafka
          kafkaConfig:
            bootstrapServers: "b:1,b:1"
            authentication: {mechanism: SCRAM-256, credentials: {name: c}}
            security: {protocol: SSL, certificate: {name: t}}
        ---
        kind: ConfigMap
        apiVersion: v1
        metadata: {name: ignored}
        """
        let result = checker.check(file: "m.yaml", bytes: Array(yaml.utf8))
        XCTAssertNil(result.failure)
        XCTAssertEqual(result.objects, 1, "kinds it does not own are ignored")
        XCTAssertEqual(result.invalidObjects, 1)
        XCTAssertEqual(result.findings.map(\.text), [
            #"m.yaml:6: AtlasStreamConnection/k: metadata.annotations[mongodb.com/atlas-resource-policy]: Unsupported value: "Keep": supported values: "keep", "delete""#,
            #"m.yaml:11: AtlasStreamConnection/k: spec.kafkaConfig.bootstrapServers: Duplicate value: "b:1""#,
        ])
        XCTAssertEqual(result.defaulted.count, 2, "every document is passed on, defaulted where owned")
    }

    func testResolvingReferencesJudgesThemAgainstTheInputs() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/manifests/references/team.yaml").path
        let results = checker.checkResolvingReferences(paths: [fixtures])
        let texts = results.flatMap(\.findings).map { $0.text.replacingOccurrences(of: fixtures, with: "team.yaml") }
        XCTAssertEqual(texts, [
            #"team.yaml:32: AtlasStreamConnection/kafka-a: warning: spec.kafkaConfig.authentication.credentials: Secret team/kafka-creds has no key "password""#,
            #"team.yaml:35: AtlasStreamConnection/kafka-a: warning: spec.kafkaConfig.security.certificate: Secret team/kafka-ca lacks label atlas.mongodb.com/type=credentials"#,
            #"team.yaml:41: AtlasStreamConnection/kafka-b: spec.name: Unsupported value: "kafka": supported values: "sample_stream_solar""#,
            #"team.yaml:53: AtlasStreamInstance/instance: spec.connectionRegistry[1].name: Invalid value: "kafka-b": its spec.name "kafka" is already used by spec.connectionRegistry[0]"#,
            #"team.yaml:54: AtlasStreamInstance/instance: warning: spec.connectionRegistry[2]: AtlasStreamConnection team/ghost not found"#,
        ])
        // Without the flag each object is judged alone: no reference findings.
        XCTAssertEqual(checker.check(path: fixtures).findings.count, 1)
    }

    func testAnObjectWithMoreThanOneHundredErrorsEndsWithACount() {
        let entries = (0..<150).map { "    - {name: Bad_\($0)}" }.joined(separator: "\n")
        let yaml = """
        apiVersion: atlas.mongodb.com/v1
        kind: AtlasStreamInstance
        metadata: {name: i, namespace: team-a}
        spec:
          name: i
          clusterConfig: {region: VIRGINIA_USA}
          projectRef: {name: p}
          connectionRegistry:
        \(entries)
        """
        let result = checker.check(file: "i.yaml", bytes: Array(yaml.utf8))
        XCTAssertEqual(result.findings.count, 101, "100 errors, then the count on the object's first line")
        XCTAssertEqual(result.findings.last?.text, "i.yaml:1: AtlasStreamInstance/i: and 50 more errors")
        let report = CheckReport(results: [result], strict: false)
        XCTAssertEqual(report.exitCode, 1)
        let json = try? JSONReader.parse(report.json())
        let findings = json?.root["findings"]
        XCTAssertEqual(findings?.count, 101)
        XCTAssertEqual(findings.map { Array($0.elements) }?.last?["message"]?.string, "and 50 more errors")
    }

    func testSyntaxErrorsAreLoadFailuresWithLineAndColumn() {
        let result = checker.check(file: "bad.yaml", bytes: Array("a: [1, 2\nb: c\n".utf8))
        XCTAssertEqual(result.failure?.line, 2)
        XCTAssertEqual(CheckReport(results: [result], strict: false).exitCode, 2)
    }
}
