@testable import Configuration
import Foundation
import JSON
import StreamRules
import XCTest

private func parse(_ text: String) throws -> ConfigurationFile {
    try ConfigurationFile.parse(Array(text.utf8), file: "test.yaml")
}

private func error(_ text: String) -> ConfigurationError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error as? ConfigurationError
    }
}

final class ConfigurationFileTests: XCTestCase {
    let shippedDefaults = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/base/config.yaml").path

    func testShippedFileIsExactlyTheBuiltInDefaults() throws {
        let file = try ConfigurationFile.load(path: shippedDefaults)
        XCTAssertEqual(file.rules, RuleConfiguration())
        XCTAssertEqual(file.limits, ConfiguredLimits(maxRequestBody: 7 << 20, maxHeaderBytes: 64 << 10, maxHeaderFields: 100,
                                                     maxConnections: 10_000, maxNestingDepth: 512,
                                                     maxBufferedBodies: 64 << 20))
        XCTAssertEqual(file.timeouts, ConfiguredTimeouts(tlsHandshake: .seconds(10), requestHeaders: .seconds(10),
                                                         requestBody: .seconds(30), idle: .seconds(120), shutdownDelay: .seconds(5),
                                                         drainTimeout: .seconds(30)))
        XCTAssertEqual(file.listeners, ConfiguredListeners(health: ConfiguredListener("0.0.0.0:8081"),
                                                           metrics: ConfiguredListener("0.0.0.0:8080"), metricsInsecure: false))
    }

    func testListenerKeys() throws {
        let file = try parse("listeners:\n  health: 127.0.0.1:9081\n  metrics: \"[::1]:9080\"\n  metricsInsecure: true\n")
        XCTAssertEqual(file.listeners, ConfiguredListeners(health: ConfiguredListener("127.0.0.1:9081"),
                                                           metrics: ConfiguredListener("[::1]:9080"), metricsInsecure: true))
        // A bare `off` is YAML 1.1's false; both spellings turn the listener off.
        XCTAssertEqual(try parse("listeners:\n  health: off\n  metrics: \"off\"\n").listeners,
                       ConfiguredListeners(health: .off, metrics: .off))
        XCTAssertEqual(error("listeners:\n  health: 8081\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "listeners.health",
                                          reason: "must be HOST:PORT (such as 0.0.0.0:8081 or [::]:8081) or off"))
        XCTAssertEqual(error("listeners:\n  metrics: localhost:99999\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "listeners.metrics",
                                          reason: "must be HOST:PORT (such as 0.0.0.0:8081 or [::]:8081) or off"))
        XCTAssertEqual(error("listeners:\n  metricsInsecure: sometimes\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "listeners.metricsInsecure", reason: "must be true or false"))
        XCTAssertEqual(error("listeners:\n  webhook: 0.0.0.0:9443\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "listeners.webhook",
                                          reason: "unknown key; known keys here: health, metrics, metricsInsecure"))
    }

    func testOperatorKeys() throws {
        let file = try parse("rules:\n  kafkaCertificate: ssl\n  operatorVersion: v2.15.1\ntimeouts:\n  loopStall: 3s\n")
        XCTAssertEqual(file.rules.kafkaCertificate, .ssl)
        XCTAssertEqual(file.rules.operatorVersion, OperatorVersion("2.15.1"))
        XCTAssertEqual(file.timeouts.loopStall, .seconds(3))
        XCTAssertEqual(try parse("rules:\n  kafkaCertificate: always\n").rules.kafkaCertificate, .always)
    }

    func testClusterKeys() throws {
        let file = try parse("cluster:\n  lookups: false\n  watchNamespaces: [a, b]\n  missingReferences: deny\n  deleteReferencedConnection: warn\n")
        XCTAssertEqual(file.cluster, ConfiguredCluster(lookups: false, watchNamespaces: ["a", "b"]))
        XCTAssertEqual(file.rules.missingReferences, .deny)
        XCTAssertEqual(file.rules.deleteReferencedConnection, .warn)
        XCTAssertEqual(error("cluster:\n  missingReferences: maybe\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "cluster.missingReferences", reason: "must be warn or deny"))
        XCTAssertEqual(error("cluster:\n  deleteReferencedConnection: no\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "cluster.deleteReferencedConnection",
                                          reason: "must be deny, warn or allow"))
        XCTAssertEqual(error("cluster:\n  lookups: sometimes\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "cluster.lookups", reason: "must be true or false"))
    }

    func testEmptyFileMeansDefaults() throws {
        XCTAssertEqual(try parse(""), ConfigurationFile())
        XCTAssertEqual(try parse("# nothing\n"), ConfigurationFile())
    }

    func testRuleKeysChangeDecisions() throws {
        let file = try parse("""
        rules:
          regions:
            AZURE: [northeurope]
          sampleSources: [sample_stream_solar, sample_stream_weather]
          builtInRoles: [readAnyDatabase]
          secretReferences: {policy: deny, allowedNamespaces: [kafka-credentials]}
          registryReferences: {policy: deny, allowedNamespaces: [shared]}
        """)
        let rules = StreamRules(configuration: file.rules)
        func errors(_ kind: StreamKind, _ spec: String) throws -> [String] {
            let text = #"{"metadata":{"name":"o","namespace":"team-a"},"spec":\#(spec)}"#
            let object = try JSONReader.parse(Array(text.utf8)).root
            return rules.validate(RuleInput(kind: kind, operation: .create, object: object, oldObject: nil,
                                            requestNamespace: "team-a")).errors.map(\.description)
        }
        // regions: AWS is no longer served, AZURE has only northeurope.
        XCTAssertEqual(try errors(.instance, #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{"name":"p"}}"#),
                       [#"spec.clusterConfig.provider: Unsupported value: "AWS": supported values: "AZURE""#])
        XCTAssertEqual(try errors(.instance, #"{"name":"i","clusterConfig":{"provider":"AZURE","region":"northeurope"},"projectRef":{"name":"p"}}"#), [])
        // sampleSources
        XCTAssertEqual(try errors(.connection, #"{"name":"sample_stream_weather","type":"Sample"}"#), [])
        // builtInRoles
        XCTAssertEqual(try errors(.connection, #"{"name":"c","type":"Cluster","clusterConfig":{"name":"C","role":{"name":"atlasAdmin","type":"BUILT_IN"}}}"#),
                       [#"spec.clusterConfig.role.name: Unsupported value: "atlasAdmin": supported values: "readAnyDatabase""#])
        // secretReferences
        let kafka = #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"b:1","authentication":{"mechanism":"PLAIN","credentials":{"name":"c","namespace":"kafka-credentials"}},"security":{"protocol":"SSL","certificate":{"name":"ca","namespace":"kafka-credentials"}}}}"#
        XCTAssertEqual(try errors(.connection, kafka), [])
        // registryReferences
        XCTAssertEqual(try errors(.instance, #"{"name":"i","clusterConfig":{"provider":"AZURE","region":"northeurope"},"projectRef":{"name":"p"},"connectionRegistry":[{"name":"a","namespace":"shared"},{"name":"b","namespace":"x"}]}"#),
                       [#"spec.connectionRegistry[1].namespace: Forbidden: may not reference an AtlasStreamConnection in namespace "x"; allowed: the instance's own namespace, "shared""#])
        XCTAssertEqual(try parse("rules:\n  secretReferences:\n    policy: allow\n").rules.secretReferences, .allowAll)
    }

    func testLimitAndTimeoutKeysAreRead() throws {
        let file = try parse("""
        limits: {maxRequestBody: 1Ki, maxHeaderBytes: 2048, maxHeaderFields: 10, maxConnections: 5, maxNestingDepth: 8}
        timeouts: {tlsHandshake: 300ms, requestHeaders: 1s, requestBody: 1m30s, idle: 2m, shutdownDelay: 0s, drainTimeout: 45s}
        """)
        XCTAssertEqual(file.limits, ConfiguredLimits(maxRequestBody: 1024, maxHeaderBytes: 2048, maxHeaderFields: 10,
                                                     maxConnections: 5, maxNestingDepth: 8))
        XCTAssertEqual(file.timeouts, ConfiguredTimeouts(tlsHandshake: .milliseconds(300), requestHeaders: .seconds(1),
                                                         requestBody: .seconds(90), idle: .seconds(120), shutdownDelay: .zero,
                                                         drainTimeout: .seconds(45)))
    }

    func testEveryKindOfMistakeNamesKeyAndLine() {
        let cases: [(String, ConfigurationError)] = [
            ("rule:\n  x: 1\n", ConfigurationError(file: "test.yaml", line: 1, key: "rule",
                                                  reason: "unknown key; known keys here: rules, enforcement, limits, timeouts, cluster, listeners, audit")),
            ("limits:\n  maxConnections: 10\n  maxBody: 5\n", ConfigurationError(file: "test.yaml", line: 3, key: "limits.maxBody",
                reason: "unknown key; known keys here: maxRequestBody, maxHeaderBytes, maxHeaderFields, maxConnections, maxNestingDepth, maxBufferedBodies")),
            ("limits:\n  maxConnections: many\n", ConfigurationError(file: "test.yaml", line: 2, key: "limits.maxConnections",
                                                                    reason: "must be a positive integer")),
            ("rules:\n  kafkaCertificate: sometimes\n", ConfigurationError(file: "test.yaml", line: 2, key: "rules.kafkaCertificate",
                                                                         reason: "must be always or ssl")),
            ("rules:\n  operatorVersion: banana\n", ConfigurationError(file: "test.yaml", line: 2, key: "rules.operatorVersion",
                reason: "must be the operator's semantic version, such as 2.15.1")),
            ("rules:\n  operatorVersion: [2]\n", ConfigurationError(file: "test.yaml", line: 2, key: "rules.operatorVersion",
                reason: "must be the operator's semantic version, such as 2.15.1")),
            ("timeouts:\n  loopStall: soon\n", ConfigurationError(file: "test.yaml", line: 2, key: "timeouts.loopStall",
                reason: "must be a Go duration such as 500ms, 10s or 1m30s")),
            ("limits:\n  maxRequestBody: 7MB\n", ConfigurationError(file: "test.yaml", line: 2, key: "limits.maxRequestBody",
                reason: "must be a size in bytes, or with Ki, Mi or Gi (e.g. 7Mi)")),
            ("timeouts:\n  idle: 120\n", ConfigurationError(file: "test.yaml", line: 2, key: "timeouts.idle",
                                                           reason: "must be a Go duration such as 500ms, 10s or 1m30s")),
            ("rules:\n  regions:\n    AWS: us-east-1\n", ConfigurationError(file: "test.yaml", line: 3, key: "rules.regions.AWS",
                                                                         reason: "must be a list of strings")),
            ("rules:\n  regions:\n    AWS: []\n", ConfigurationError(file: "test.yaml", line: 3, key: "rules.regions.AWS",
                                                                  reason: "must not be empty")),
            ("rules:\n  regions:\n    ALIBABA: [x]\n", ConfigurationError(file: "test.yaml", line: 3, key: "rules.regions.ALIBABA",
                reason: "unknown key; known keys here: AWS, AZURE, GCP, TENANT, SERVERLESS")),
            ("rules:\n  sampleSources: [a, 5]\n", ConfigurationError(file: "test.yaml", line: 2, key: "rules.sampleSources[1]",
                                                                    reason: "must be a non-empty string")),
            ("rules:\n  secretReferences:\n    policy: maybe\n", ConfigurationError(file: "test.yaml", line: 3,
                key: "rules.secretReferences.policy", reason: "must be allow or deny")),
            ("rules:\n  secretReferences:\n    allowedNamespaces: [a]\n", ConfigurationError(file: "test.yaml", line: 3,
                key: "rules.secretReferences.policy", reason: "required: allow or deny")),
            ("rules:\n  registryReferences: {policy: allow, allowedNamespaces: [a]}\n", ConfigurationError(file: "test.yaml",
                line: 2, key: "rules.registryReferences.allowedNamespaces", reason: "only meaningful with policy: deny")),
            ("- a\n- b\n", ConfigurationError(file: "test.yaml", line: 1, key: "", reason: "must be a mapping")),
            ("limits: {}\n---\nlimits: {}\n", ConfigurationError(file: "test.yaml", line: 3, key: "", reason: "expected one YAML document")),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(error(text), expected, text)
        }
        let syntax = error("limits:\n  maxConnections: [1\n")
        XCTAssertEqual(syntax?.line, 3)
        XCTAssertTrue(syntax?.reason.hasPrefix("YAML: ") ?? false)
        let missing = try? ConfigurationFile.load(path: "/nonexistent/config.yaml")
        XCTAssertNil(missing)
    }
}

extension ConfigurationFileTests {
    func testEnforcementSection() throws {
        let file = try parse("""
        enforcement:
          default: warn
          rules:
            kafka-certificate-required: deny
            bootstrap-servers-port-range: off
        """)
        XCTAssertEqual(file.rules.enforcement, Enforcement(default: .warn, rules: [.kafkaCertificateRequired: .deny,
                                                                                   .bootstrapServersPortRange: .off]))
        XCTAssertEqual(error("""
        enforcement:
          rules:
            kafka-certificate-required: deny
            kafka-certificate-requried: off
        """), ConfigurationError(file: "test.yaml", line: 4, key: "enforcement.rules.kafka-certificate-requried",
                                 reason: "unknown rule id; `atlas-stream-webhook rules` lists them"))
        XCTAssertEqual(error("enforcement:\n  default: \"off\"\n"),
                       ConfigurationError(file: "test.yaml", line: 2, key: "enforcement.default", reason: "must be deny or warn, got off"))
        XCTAssertEqual(error("enforcement:\n  rules:\n    spec-required: maybe\n"),
                       ConfigurationError(file: "test.yaml", line: 3, key: "enforcement.rules.spec-required",
                                          reason: "must be deny, warn or off, got maybe"))
    }
}

extension ConfigurationFileTests {
    /// Every key the loader accepts is documented, and every documented key loads.
    func testEveryKeyIsInTheConfigurationDocs() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/configuration.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        XCTAssertGreaterThan(ConfigurationFile.keys.count, 30)
        for key in ConfigurationFile.keys {
            XCTAssertTrue(text.contains("`\(key)`"), "\(key) is not in docs/configuration.md")
        }
        XCTAssertTrue(ConfigurationFile.keys.contains("enforcement.rules.<rule-id>"))
        XCTAssertTrue(ConfigurationFile.keys.contains("rules.secretReferences.allowedNamespaces"))
    }
}
