import JSON
import StreamRules
import XCTest

private let kafka = #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"broker:9092","authentication":{"mechanism":"SCRAM-256","credentials":{"name":"creds"}},"security":{"protocol":"SSL","certificate":{"name":"cert"}}}}"#
private let instance = #"{"name":"i","clusterConfig":{"provider":"AWS","region":"VIRGINIA_USA","tier":"SP10"},"projectRef":{"name":"proj"},"connectionRegistry":[{"name":"c1"}]}"#
private let cluster = #"{"name":"c","type":"Cluster","clusterConfig":{"name":"Cluster0","role":{"name":"atlasAdmin","type":"BUILT_IN"}}}"#

/// `base` with `replacement` for the first occurrence of `original`.
private func edit(_ base: String, _ original: String, _ replacement: String) -> String {
    guard let range = base.range(of: original) else {
        XCTFail("\(original) not in \(base)")
        return base
    }
    return base.replacingCharacters(in: range, with: replacement)
}

/// A cluster where every reference of `kafka` and `instance` resolves.
private func resolvingCluster() -> ClusterSnapshot {
    ClusterSnapshot(
        secrets: ["team-a": ["creds": SecretRecord(hasCredentialsLabel: true), "cert": SecretRecord(hasCredentialsLabel: true)]],
        credentialKeys: ["team-a": ["creds": ["password", "username"], "cert": ["certificate"]]],
        projects: ["team-a": ["proj": ProjectRecord()]],
        connections: ["team-a": ["c1": ConnectionRecord(specName: "one"), "c2": ConnectionRecord(specName: "one")]])
}

/// One request that makes a rule speak.
private struct Example {
    var kind: StreamKind
    var spec: String?
    var operation: AdmissionOperation = .create
    var old: String?
    var metadata = #""name":"obj","namespace":"team-a""#
    var configuration = RuleConfiguration()
    var cluster: ClusterView?
    /// The review carries no object at all.
    var withoutObject = false

    func decide() -> Decision {
        var request = input(kind, spec, operation: operation, old: old, metadata: metadata)
        request.cluster = cluster
        if withoutObject { request.object = nil }
        let rules = StreamRules(configuration: configuration)
        if operation == .delete {
            request.object = nil
            request.requestName = "c1"
            return rules.validateDelete(request)
        }
        return rules.validate(request)
    }
}

/// The catalogue is complete, its ids are stable, and every rule in it is one the checks
/// really emit.
final class RuleCatalogueTests: XCTestCase {
    /// Ids are names others keep (alerts, reports, settings): released ones never change.
    func testIdsNeverChange() {
        XCTAssertEqual(RuleID.allCases.map(\.rawValue), [
            "object-required", "field-type", "spec-required",
            "resource-policy-supported", "reconciliation-policy-supported", "resource-version-policy-supported",
            "resource-version-format", "resource-version-not-newer",
            "instance-name-required", "instance-name-format", "instance-name-immutable", "instance-cluster-config-required",
            "instance-provider-supported", "instance-region-supported", "instance-tier-supported", "instance-tier-not-applied",
            "project-ref-required", "project-ref-format", "project-ref-immutable",
            "registry-size", "registry-entry-required", "registry-entry-format", "registry-namespace-allowed",
            "registry-entry-unique",
            "connection-name-required", "connection-name-immutable", "connection-type-supported", "connection-type-immutable",
            "connection-config-required", "connection-config-matches-type", "sample-source-supported",
            "cluster-name-required", "cluster-name-format", "cluster-role-required", "cluster-role-type-supported",
            "cluster-built-in-role-supported",
            "bootstrap-servers-required", "bootstrap-servers-size", "bootstrap-servers-format", "bootstrap-servers-port-range",
            "bootstrap-servers-unique",
            "kafka-authentication-required", "kafka-mechanism-supported", "kafka-credentials-required",
            "kafka-security-required", "kafka-protocol-supported", "kafka-certificate-required",
            "secret-reference-format", "secret-namespace-allowed",
            "kafka-config-size", "kafka-config-key-not-empty", "kafka-config-no-typed-fields",
            "kafka-protocol-encrypted", "kafka-password-encrypted",
            "credentials-secret-found", "certificate-secret-found", "secret-labelled-for-operator", "secret-keys-present",
            "project-found", "registry-connection-found", "registry-spec-name-unique", "reference-namespace-watched",
            "connection-not-in-registry", "cluster-cache-ready",
        ])
    }

    func testEveryEntryIsWellFormed() {
        XCTAssertEqual(Rule.catalogue.map(\.id), RuleID.allCases)
        for rule in Rule.catalogue {
            let id = rule.id.rawValue
            XCTAssertTrue(id.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } && !id.hasPrefix("-") && !id.hasSuffix("-")
                          && !id.contains("--"), "\(id) is not kebab-case")
            XCTAssertFalse(rule.kinds.isEmpty, id)
            XCTAssertFalse(rule.operations.isEmpty, id)
            XCTAssertFalse(rule.operations.contains(.connect), id)
            for text in [rule.field, rule.message, rule.summary, rule.motivation, rule.example] {
                XCTAssertFalse(text.isEmpty, id)
            }
            XCTAssertEqual(rule.id.ordinal, RuleID.allCases.firstIndex(of: rule.id), id)
        }
        // The ids other work names, with their meanings.
        XCTAssertEqual(RuleID.kafkaCertificateRequired.rule.field, "spec.kafkaConfig.security.certificate.name")
        XCTAssertEqual(RuleID.bootstrapServersPortRange.rule.field, "spec.kafkaConfig.bootstrapServers")
        XCTAssertTrue(RuleID.credentialsSecretFound.rule.needsCluster)
    }

    /// For each rule, a request it speaks on: every catalogue entry is emitted by the
    /// checks, and said of the kind and operation the entry declares, with the
    /// severity it declares by default.
    func testEveryRuleIsEmitted() {
        let resolving = ClusterView.ready(resolvingCluster())
        var listing = resolvingCluster()
        listing.setInstance(InstanceRecord(registry: [ObjectReference(namespace: "team-a", name: "c1")], isBeingDeleted: false),
                            at: ObjectReference(namespace: "team-a", name: "i1"))
        let annotated = { (key: String, value: String) in #""name":"obj","namespace":"team-a","annotations":{"\#(key)":"\#(value)"}"# }
        let labelled = { (value: String) in #""name":"obj","namespace":"team-a","labels":{"mongodb.com/atlas-resource-version":"\#(value)"}"# }
        let examples: [RuleID: Example] = [
            .objectRequired: Example(kind: .connection, spec: kafka, withoutObject: true),
            .fieldType: Example(kind: .connection, spec: edit(kafka, #""name":"k""#, #""name":7"#)),
            .specRequired: Example(kind: .connection, spec: nil),
            .resourcePolicySupported: Example(kind: .instance, spec: instance, metadata: annotated("mongodb.com/atlas-resource-policy", "Keep")),
            .reconciliationPolicySupported: Example(kind: .instance, spec: instance,
                                                    metadata: annotated("mongodb.com/atlas-reconciliation-policy", "Skip")),
            .resourceVersionPolicySupported: Example(kind: .instance, spec: instance,
                                                     metadata: annotated("mongodb.com/atlas-resource-version-policy", "yes")),
            .resourceVersionFormat: Example(kind: .instance, spec: instance, metadata: labelled("two")),
            .resourceVersionNotNewer: Example(kind: .instance, spec: instance, metadata: labelled("9.0.0"),
                                              configuration: RuleConfiguration(operatorVersion: OperatorVersion("2.5.0"))),
            .instanceNameRequired: Example(kind: .instance, spec: edit(instance, #""name":"i","#, "")),
            .instanceNameFormat: Example(kind: .instance, spec: edit(instance, #""name":"i""#, #""name":"i_1""#)),
            .instanceNameImmutable: Example(kind: .instance, spec: edit(instance, #""name":"i""#, #""name":"j""#),
                                            operation: .update, old: instance),
            .instanceClusterConfigRequired: Example(kind: .instance,
                                                    spec: edit(instance, #""clusterConfig":{"provider":"AWS","region":"VIRGINIA_USA","tier":"SP10"},"#, "")),
            .instanceProviderSupported: Example(kind: .instance, spec: edit(instance, #""AWS""#, #""IBM""#)),
            .instanceRegionSupported: Example(kind: .instance, spec: edit(instance, "VIRGINIA_USA", "MARS")),
            .instanceTierSupported: Example(kind: .instance, spec: edit(instance, "SP10", "SP20")),
            .instanceTierNotApplied: Example(kind: .instance, spec: edit(instance, "SP10", "SP30")),
            .projectRefRequired: Example(kind: .instance, spec: edit(instance, #""projectRef":{"name":"proj"},"#, "")),
            .projectRefFormat: Example(kind: .instance, spec: edit(instance, #""name":"proj""#, #""name":"Proj""#)),
            .projectRefImmutable: Example(kind: .instance, spec: edit(instance, #""name":"proj""#, #""name":"other""#),
                                          operation: .update, old: instance),
            .registrySize: Example(kind: .instance, spec: edit(instance, #"[{"name":"c1"}]"#,
                                                               "[" + Array(repeating: #"{"name":"c1"}"#, count: 1001).joined(separator: ",") + "]")),
            .registryEntryRequired: Example(kind: .instance, spec: edit(instance, #"[{"name":"c1"}]"#, "[null]")),
            .registryEntryFormat: Example(kind: .instance, spec: edit(instance, #"[{"name":"c1"}]"#, #"[{"name":"C1"}]"#)),
            .registryNamespaceAllowed: Example(kind: .instance, spec: edit(instance, #"[{"name":"c1"}]"#, #"[{"name":"c1","namespace":"other"}]"#),
                                               configuration: RuleConfiguration(registryReferences: .ownNamespaceOnly)),
            .registryEntryUnique: Example(kind: .instance, spec: edit(instance, #"[{"name":"c1"}]"#, #"[{"name":"c1"},{"name":"c1"}]"#)),
            .connectionNameRequired: Example(kind: .connection, spec: edit(kafka, #""name":"k","#, "")),
            .connectionNameImmutable: Example(kind: .connection, spec: edit(kafka, #""name":"k""#, #""name":"l""#),
                                              operation: .update, old: kafka),
            .connectionTypeSupported: Example(kind: .connection, spec: edit(kafka, #""type":"Kafka""#, #""type":"Kinesis""#)),
            .connectionTypeImmutable: Example(kind: .connection, spec: #"{"name":"k","type":"Sample"}"#, operation: .update, old: kafka),
            .connectionConfigRequired: Example(kind: .connection, spec: #"{"name":"k","type":"Kafka"}"#),
            .connectionConfigMatchesType: Example(kind: .connection, spec: edit(cluster, #""type":"Cluster","#,
                                                                                #""type":"Cluster","kafkaConfig":{"bootstrapServers":"b:1"},"#)),
            .sampleSourceSupported: Example(kind: .connection, spec: #"{"name":"sample_stream_lunar","type":"Sample"}"#),
            .clusterNameRequired: Example(kind: .connection, spec: edit(cluster, #""name":"Cluster0","#, "")),
            .clusterNameFormat: Example(kind: .connection, spec: edit(cluster, "Cluster0", "Cluster_0")),
            .clusterRoleRequired: Example(kind: .connection, spec: edit(cluster, #","role":{"name":"atlasAdmin","type":"BUILT_IN"}"#, "")),
            .clusterRoleTypeSupported: Example(kind: .connection, spec: edit(cluster, "BUILT_IN", "SOMETIMES")),
            .clusterBuiltInRoleSupported: Example(kind: .connection, spec: edit(cluster, "atlasAdmin", "root")),
            .bootstrapServersRequired: Example(kind: .connection, spec: edit(kafka, #""bootstrapServers":"broker:9092","#, "")),
            .bootstrapServersSize: Example(kind: .connection, spec: edit(kafka, "broker:9092",
                                                                         Array(repeating: "b:1", count: 257).joined(separator: ","))),
            .bootstrapServersFormat: Example(kind: .connection, spec: edit(kafka, "broker:9092", "broker")),
            .bootstrapServersPortRange: Example(kind: .connection, spec: edit(kafka, "broker:9092", "broker:65536")),
            .bootstrapServersUnique: Example(kind: .connection, spec: edit(kafka, "broker:9092", "broker:9092,BROKER:9092")),
            .kafkaAuthenticationRequired: Example(kind: .connection,
                                                  spec: edit(kafka, #""authentication":{"mechanism":"SCRAM-256","credentials":{"name":"creds"}},"#, "")),
            .kafkaMechanismSupported: Example(kind: .connection, spec: edit(kafka, "SCRAM-256", "GSSAPI")),
            .kafkaCredentialsRequired: Example(kind: .connection, spec: edit(kafka, #","credentials":{"name":"creds"}"#, "")),
            .kafkaSecurityRequired: Example(kind: .connection,
                                            spec: edit(kafka, #","security":{"protocol":"SSL","certificate":{"name":"cert"}}"#, "")),
            .kafkaProtocolSupported: Example(kind: .connection, spec: edit(kafka, #""protocol":"SSL""#, #""protocol":"TLS""#)),
            .kafkaCertificateRequired: Example(kind: .connection, spec: edit(kafka, #","certificate":{"name":"cert"}"#, "")),
            .secretReferenceFormat: Example(kind: .connection, spec: edit(kafka, #""name":"creds""#, #""name":"Creds""#)),
            .secretNamespaceAllowed: Example(kind: .connection, spec: edit(kafka, #""name":"creds""#, #""name":"creds","namespace":"team-b""#)),
            .kafkaConfigSize: Example(kind: .connection, spec: edit(kafka, #""bootstrapServers""#, #""config":{\#((0..<257).map { #""k\#($0)":"v""# }.joined(separator: ","))},"bootstrapServers""#)),
            .kafkaConfigKeyNotEmpty: Example(kind: .connection, spec: edit(kafka, #""bootstrapServers""#, #""config":{"":"v"},"bootstrapServers""#)),
            .kafkaConfigNoTypedFields: Example(kind: .connection, spec: edit(kafka, #""bootstrapServers""#,
                                                                             #""config":{"sasl.password":"hunter2"},"bootstrapServers""#)),
            .kafkaProtocolEncrypted: Example(kind: .connection, spec: edit(kafka, #""protocol":"SSL""#, #""protocol":"PLAINTEXT""#)),
            .kafkaPasswordEncrypted: Example(kind: .connection, spec: edit(edit(kafka, #""protocol":"SSL""#, #""protocol":"PLAINTEXT""#),
                                                                           "SCRAM-256", "PLAIN")),
            .credentialsSecretFound: Example(kind: .connection, spec: edit(kafka, #""name":"creds""#, #""name":"absent""#), cluster: resolving),
            .certificateSecretFound: Example(kind: .connection, spec: edit(kafka, #""name":"cert""#, #""name":"absent""#), cluster: resolving),
            .secretLabelledForOperator: Example(kind: .connection, spec: kafka, cluster: .ready(ClusterSnapshot(
                secrets: ["team-a": ["creds": SecretRecord(hasCredentialsLabel: false), "cert": SecretRecord(hasCredentialsLabel: true)]],
                credentialKeys: ["team-a": ["cert": ["certificate"]]]))),
            .secretKeysPresent: Example(kind: .connection, spec: kafka, cluster: .ready(ClusterSnapshot(
                secrets: ["team-a": ["creds": SecretRecord(hasCredentialsLabel: true), "cert": SecretRecord(hasCredentialsLabel: true)]],
                credentialKeys: ["team-a": ["creds": ["username"], "cert": ["certificate"]]]))),
            .projectFound: Example(kind: .instance, spec: edit(instance, #""name":"proj""#, #""name":"absent""#), cluster: resolving),
            .registryConnectionFound: Example(kind: .instance, spec: edit(instance, #"[{"name":"c1"}]"#, #"[{"name":"c9"}]"#), cluster: resolving),
            .registrySpecNameUnique: Example(kind: .instance, spec: edit(instance, #"[{"name":"c1"}]"#, #"[{"name":"c1"},{"name":"c2"}]"#),
                                             cluster: resolving),
            .referenceNamespaceWatched: Example(kind: .instance, spec: instance, cluster: .ready(ClusterSnapshot(
                projects: ["team-a": ["proj": ProjectRecord()]], watchedNamespaces: ["elsewhere"]))),
            .connectionNotInRegistry: Example(kind: .connection, spec: nil, operation: .delete, cluster: .ready(listing)),
            .clusterCacheReady: Example(kind: .connection, spec: kafka, cluster: .notReady(reason: "secrets not listed yet")),
        ]
        XCTAssertEqual(Set(examples.keys), Set(RuleID.allCases), "every rule has an example")
        for rule in Rule.catalogue {
            guard let example = examples[rule.id] else { continue }
            let decision = example.decide()
            let id = rule.id.rawValue
            XCTAssertTrue(decision.findings.contains { $0.rule == rule.id }, "\(id) not emitted: \(decision.findings.map(\.rule.rawValue))")
            XCTAssertTrue(rule.kinds.contains(example.kind), id)
            XCTAssertTrue(rule.operations.contains(example.operation), id)
            XCTAssertEqual(rule.needsCluster, example.cluster != nil, id)
            let denied = decision.errors.contains { $0.rule == rule.id } || decision.refusal?.rule == rule.id
            let warned = decision.warnings.contains { $0.rule == rule.id }
            XCTAssertEqual(rule.severity == .deny, denied && !warned, "\(id): severity \(rule.severity)")
        }
    }

    /// Findings name their rule in the order of the answer: errors, then warnings.
    func testFindingsFollowTheAnswer() {
        let spec = edit(edit(kafka, #""protocol":"SSL""#, #""protocol":"PLAINTEXT""#), "broker:9092", "broker:0")
        let decision = StreamRules().validate(input(.connection, spec))
        XCTAssertEqual(decision.errors.map(\.rule), [.bootstrapServersPortRange])
        XCTAssertEqual(decision.warnings.map(\.rule), [.kafkaProtocolEncrypted])
        XCTAssertEqual(decision.findings, [
            RuleFinding(rule: .bootstrapServersPortRange, outcome: .denied, field: "spec.kafkaConfig.bootstrapServers"),
            RuleFinding(rule: .kafkaProtocolEncrypted, outcome: .warned, field: ""),
        ])
    }
}
