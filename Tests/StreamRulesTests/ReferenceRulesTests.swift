import JSON
import StreamRules
import XCTest

private let kafkaSpec = #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"broker:9092","authentication":{"mechanism":"SCRAM-256","credentials":{"name":"creds"}},"security":{"protocol":"SSL","certificate":{"name":"cert","namespace":"team-a"}}}}"#

private func instanceSpec(registry: String = #"[{"name":"c1"},{"name":"c2","namespace":"shared"}]"#,
                          project: String = #"{"name":"proj"}"#) -> String {
    #"{"name":"i","clusterConfig":{"provider":"AWS","region":"VIRGINIA_USA","tier":"SP10"},"projectRef":\#(project),"connectionRegistry":\#(registry)}"#
}

/// A cluster where every reference of `kafkaSpec` and `instanceSpec()` resolves.
private func fullCluster() -> ClusterSnapshot {
    ClusterSnapshot(
        secrets: ["team-a": ["creds": SecretRecord(hasCredentialsLabel: true), "cert": SecretRecord(hasCredentialsLabel: true)]],
        credentialKeys: ["team-a": ["creds": ["password", "username"], "cert": ["certificate"]]],
        projects: ["team-a": ["proj": ProjectRecord()]],
        connections: ["team-a": ["c1": ConnectionRecord(specName: "kafka")], "shared": ["c2": ConnectionRecord(specName: "sample")]],
        instances: [:])
}

private func validate(_ kind: StreamKind, _ spec: String, _ cluster: ClusterSnapshot?,
                      _ configuration: RuleConfiguration = RuleConfiguration()) -> Decision {
    validate(kind, spec, view: cluster.map { .ready($0) }, configuration)
}

private func validate(_ kind: StreamKind, _ spec: String, view: ClusterView?,
                      _ configuration: RuleConfiguration = RuleConfiguration()) -> Decision {
    var ruleInput = input(kind, spec)
    ruleInput.cluster = view
    var configured = configuration
    configured.registryReferences = .allowAll
    return StreamRules(configuration: configured).validate(ruleInput)
}

/// As tables: each reference rule on its own against a snapshot.
final class ReferenceRulesTests: XCTestCase {
    func testEverythingFoundSaysNothing() {
        for (kind, spec) in [(StreamKind.connection, kafkaSpec), (.instance, instanceSpec())] {
            let decision = validate(kind, spec, fullCluster())
            XCTAssertEqual(rendered(decision.errors), [], "\(kind)")
            XCTAssertEqual(decision.warningTexts, [], "\(kind)")
            XCTAssertEqual(decision.clusterFindings, [], "\(kind)")
        }
    }

    func testWithoutASnapshotNothingIsLookedUp() {
        XCTAssertEqual(validate(.connection, kafkaSpec, nil).warningTexts, [])
        XCTAssertEqual(validate(.instance, instanceSpec(), nil).warningTexts, [])
    }

    func testSecretFindingsInOrderOneOf() {
        typealias Case = (String, (inout ClusterSnapshot) -> Void, [String], [RuleID])
        let cases: [Case] = [
            ("missing", { $0.secrets["team-a"]?["creds"] = nil },
             ["spec.kafkaConfig.authentication.credentials: Secret team-a/creds not found"], [.credentialsSecretFound]),
            // Unlabelled: to the operator it does not exist, so its keys are not judged.
            ("unlabelled", { $0.secrets["team-a"]?["creds"] = SecretRecord(hasCredentialsLabel: false); $0.credentialKeys["team-a"]?["creds"] = [] },
             ["spec.kafkaConfig.authentication.credentials: Secret team-a/creds lacks label atlas.mongodb.com/type=credentials"],
             [.secretLabelledForOperator]),
            ("keys", { $0.credentialKeys["team-a"]?["creds"] = ["user"] },
             [#"spec.kafkaConfig.authentication.credentials: Secret team-a/creds has no key "username""#,
              #"spec.kafkaConfig.authentication.credentials: Secret team-a/creds has no key "password""#],
             [.secretKeysPresent, .secretKeysPresent]),
            ("certificate key", { $0.credentialKeys["team-a"]?["cert"] = ["ca.crt"] },
             [#"spec.kafkaConfig.security.certificate: Secret team-a/cert has no key "certificate""#], [.secretKeysPresent]),
            // Labelled, but the labelled watch has not seen it yet: its keys are unknown.
            ("keys unknown", { $0.credentialKeys["team-a"]?["cert"] = nil }, [], []),
            ("not watched", { $0.watchedNamespaces = ["elsewhere"] },
             ["spec.kafkaConfig.authentication.credentials: namespace team-a is not watched by the operator",
              "spec.kafkaConfig.security.certificate: namespace team-a is not watched by the operator"],
             [.referenceNamespaceWatched, .referenceNamespaceWatched]),
        ]
        for (name, change, warnings, findings) in cases {
            var cluster = fullCluster()
            change(&cluster)
            let decision = validate(.connection, kafkaSpec, cluster)
            XCTAssertEqual(decision.warningTexts, warnings, name)
            XCTAssertEqual(decision.clusterFindings, findings, name)
            XCTAssertTrue(decision.allowed, name)
        }
    }

    func testMissingReferencesDeniedWhenConfigured() {
        var cluster = fullCluster()
        cluster.secrets["team-a"]?["creds"] = nil
        cluster.credentialKeys["team-a"]?["cert"] = []
        let decision = validate(.connection, kafkaSpec, cluster, RuleConfiguration(missingReferences: .deny))
        XCTAssertEqual(rendered(decision.errors), [
            #"FieldValueNotFound spec.kafkaConfig.authentication.credentials: Not found: "team-a/creds""#,
            #"FieldValueNotFound spec.kafkaConfig.security.certificate[certificate]: Not found: "team-a/cert""#,
        ])
        XCTAssertEqual(decision.warningTexts, [])
    }

    func testInstanceProjectAndRegistry() {
        var cluster = fullCluster()
        cluster.projects = [:]
        cluster.connections["shared"] = nil
        let decision = validate(.instance, instanceSpec(), cluster)
        XCTAssertEqual(decision.warningTexts, [
            "spec.projectRef: AtlasProject team-a/proj not found",
            "spec.connectionRegistry[1]: AtlasStreamConnection shared/c2 not found",
        ])
        XCTAssertEqual(decision.clusterFindings, [.projectFound, .registryConnectionFound])
        let denied = validate(.instance, instanceSpec(), cluster, RuleConfiguration(missingReferences: .deny))
        XCTAssertEqual(rendered(denied.errors), [
            #"FieldValueNotFound spec.projectRef: Not found: "team-a/proj""#,
            #"FieldValueNotFound spec.connectionRegistry[1]: Not found: "shared/c2""#,
        ])
    }

    func testTwoConnectionsWithOneSpecNameAreAlwaysDenied() {
        var cluster = fullCluster()
        cluster.connections["shared"]?["c2"] = ConnectionRecord(specName: "kafka")
        cluster.connections["team-a"]?["c3"] = ConnectionRecord(specName: "kafka")
        let spec = instanceSpec(registry: #"[{"name":"c1"},{"name":"c2","namespace":"shared"},{"name":"c3"}]"#)
        let decision = validate(.instance, spec, cluster)
        XCTAssertEqual(rendered(decision.errors), [
            #"FieldValueInvalid spec.connectionRegistry[1].name: Invalid value: "c2": its spec.name "kafka" is already used by spec.connectionRegistry[0]"#,
            #"FieldValueInvalid spec.connectionRegistry[2].name: Invalid value: "c3": its spec.name "kafka" is already used by spec.connectionRegistry[0]"#,
        ])
        XCTAssertEqual(decision.clusterFindings, [.registrySpecNameUnique, .registrySpecNameUnique])
    }

    func testReferenceWarningsComeAfterTheOthers() {
        var cluster = fullCluster()
        cluster.projects = [:]
        // Kafka over PLAINTEXT draws the protocol warning first.
        let spec = kafkaSpec.replacingOccurrences(of: #""protocol":"SSL""#, with: #""protocol":"PLAINTEXT""#)
        var connectionCluster = cluster
        connectionCluster.secrets["team-a"]?["creds"] = nil
        let decision = validate(.connection, spec, connectionCluster)
        XCTAssertEqual(decision.warningTexts.last, "spec.kafkaConfig.authentication.credentials: Secret team-a/creds not found")
        XCTAssertGreaterThan(decision.warningTexts.count, 1, "\(decision.warningTexts)")
    }

    func testDeleteOfAListedConnection() {
        var cluster = fullCluster()
        let c1 = [ObjectReference(namespace: "team-a", name: "c1")]
        cluster.setInstance(InstanceRecord(registry: c1, isBeingDeleted: false), at: ObjectReference(namespace: "team-a", name: "i1"))
        cluster.setInstance(InstanceRecord(registry: c1, isBeingDeleted: true), at: ObjectReference(namespace: "team-a", name: "gone"))
        cluster.setInstance(InstanceRecord(registry: c1, isBeingDeleted: false), at: ObjectReference(namespace: "team-b", name: "i2"))
        func delete(_ name: String, _ policy: ReferencedDeletePolicy) -> Decision {
            let deletion = RuleInput(kind: .connection, operation: .delete, object: nil, oldObject: nil,
                                     requestNamespace: "team-a", requestName: name, cluster: .ready(cluster))
            return StreamRules(configuration: RuleConfiguration(deleteReferencedConnection: policy)).validateDelete(deletion)
        }
        let denied = delete("c1", .deny)
        XCTAssertEqual(denied.refusal, .forbidden("listed in spec.connectionRegistry of AtlasStreamInstance team-a/i1, team-b/i2; remove it there first"))
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.clusterFindings, [.connectionNotInRegistry])
        let warned = delete("c1", .warn)
        XCTAssertTrue(warned.allowed)
        XCTAssertEqual(warned.warningTexts.count, 1)
        XCTAssertTrue(delete("c1", .allow).allowed)
        XCTAssertTrue(delete("unlisted", .deny).allowed)
        // Only an instance being deleted lists it: nothing holds it.
        cluster.setInstance(nil, at: ObjectReference(namespace: "team-b", name: "i2"))
        cluster.setInstance(nil, at: ObjectReference(namespace: "team-a", name: "i1"))
        XCTAssertTrue(delete("c1", .deny).allowed)
        // The index follows a registry that changes: i3 lists c1, then no longer does.
        cluster.setInstance(InstanceRecord(registry: c1, isBeingDeleted: false), at: ObjectReference(namespace: "team-a", name: "i3"))
        XCTAssertFalse(delete("c1", .deny).allowed)
        cluster.setInstance(InstanceRecord(registry: [], isBeingDeleted: false), at: ObjectReference(namespace: "team-a", name: "i3"))
        XCTAssertTrue(delete("c1", .deny).allowed)
        cluster.setInstance(nil, at: ObjectReference(namespace: "team-a", name: "gone"))
        XCTAssertTrue(cluster.listings.isEmpty, "\(cluster.listings)")
    }

    /// A LIST's result replaces one namespace's instances (a reflector per watched
    /// namespace) and the index with them, leaving the other namespaces' entries.
    func testReplacingInstancesKeepsTheIndex() {
        var cluster = ClusterSnapshot()
        let c1 = ObjectReference(namespace: "shared", name: "c1")
        cluster.setInstance(InstanceRecord(registry: [c1], isBeingDeleted: false), at: ObjectReference(namespace: "a", name: "i"))
        cluster.setInstance(InstanceRecord(registry: [c1], isBeingDeleted: false), at: ObjectReference(namespace: "b", name: "i"))
        cluster.replaceInstances(in: "a", with: ["a": ["j": InstanceRecord(registry: [], isBeingDeleted: false)]])
        XCTAssertEqual(cluster.instancesListing(c1).listed, [ObjectReference(namespace: "b", name: "i")])
        cluster.replaceInstances(in: nil, with: ["c": ["k": InstanceRecord(registry: [c1], isBeingDeleted: false)]])
        XCTAssertEqual(cluster.instancesListing(c1).listed, [ObjectReference(namespace: "c", name: "k")])
        XCTAssertNil(cluster.instances["a"])
    }

    /// A reference the namespace policy refuses is never looked up: whether the Secret
    /// exists, is labelled or has its keys, the answer is the same.
    func testNoExistenceOracleAcrossNamespaces() {
        let foreign = kafkaSpec.replacingOccurrences(of: #""credentials":{"name":"creds"}"#,
                                                     with: #""credentials":{"name":"creds","namespace":"team-b"}"#)
        var states: [String: ClusterSnapshot] = [:]
        var absent = fullCluster()
        absent.secrets["team-b"] = nil
        states["absent"] = absent
        var unlabelled = fullCluster()
        unlabelled.secrets["team-b"] = ["creds": SecretRecord(hasCredentialsLabel: false)]
        states["unlabelled"] = unlabelled
        var keyless = fullCluster()
        keyless.secrets["team-b"] = ["creds": SecretRecord(hasCredentialsLabel: true)]
        keyless.credentialKeys["team-b"] = ["creds": []]
        states["keyless"] = keyless
        var complete = fullCluster()
        complete.secrets["team-b"] = ["creds": SecretRecord(hasCredentialsLabel: true)]
        complete.credentialKeys["team-b"] = ["creds": ["username", "password"]]
        states["complete"] = complete
        for policy in MissingReferencePolicy.allCases {
            let answers = states.mapValues { cluster in
                let decision = validate(.connection, foreign, cluster, RuleConfiguration(missingReferences: policy))
                return "\(rendered(decision.errors)) \(decision.warningTexts) \(decision.clusterFindings)"
            }
            XCTAssertEqual(Set(answers.values).count, 1, "\(policy): \(answers)")
            XCTAssertTrue(answers["absent"]?.contains("may not reference a Secret in namespace") == true, "\(answers)")
        }
        // The same for registry entries the instance may not name.
        let registry = instanceSpec(registry: #"[{"name":"c9","namespace":"other"}]"#)
        var configuration = RuleConfiguration()
        configuration.registryReferences = .ownNamespaceOnly
        var withConnection = fullCluster()
        withConnection.connections["other"] = ["c9": ConnectionRecord(specName: "x")]
        var input = input(.instance, registry)
        input.cluster = .ready(withConnection)
        let found = StreamRules(configuration: configuration).validate(input)
        input.cluster = .ready(fullCluster())
        let missing = StreamRules(configuration: configuration).validate(input)
        XCTAssertEqual(rendered(found.errors), rendered(missing.errors))
        XCTAssertEqual(found.warningTexts, missing.warningTexts)
        XCTAssertFalse(found.allowed)
    }

    /// Until the cache can back a verdict, nothing is said of references: one warning
    /// (allow) or a 503 refusal (deny), never "not found".
    func testNotReadyCacheJudgesNoReference() {
        let notReady = ClusterView.notReady(reason: "secrets not listed yet")
        for (kind, spec) in [(StreamKind.connection, kafkaSpec), (.instance, instanceSpec())] {
            let allowed = validate(kind, spec, view: notReady)
            XCTAssertTrue(allowed.allowed, "\(kind)")
            XCTAssertEqual(allowed.warningTexts, ["cluster lookups are not ready; references were not checked"], "\(kind)")
            XCTAssertEqual(allowed.clusterFindings, [.clusterCacheReady], "no reference judged: only the cache is named")
            let denied = validate(kind, spec, view: notReady, RuleConfiguration(cacheNotReady: .deny))
            XCTAssertFalse(denied.allowed)
            XCTAssertEqual(denied.refusal, .unavailable("cluster lookups are not ready; references were not checked"))
        }
        // Nothing to look up: nothing said.
        let sample = #"{"name":"s","type":"Sample","sampleSpec":{}}"#
        XCTAssertEqual(validate(.connection, sample, view: notReady, RuleConfiguration(cacheNotReady: .deny)).refusal, nil)
        // The DELETE guard follows the same setting.
        let deletion = RuleInput(kind: .connection, operation: .delete, object: nil, oldObject: nil,
                                 requestNamespace: "team-a", requestName: "c1", cluster: notReady)
        let warned = StreamRules().validateDelete(deletion)
        XCTAssertTrue(warned.allowed)
        XCTAssertEqual(warned.warningTexts, ["cluster lookups are not ready; references were not checked"])
        let refused = StreamRules(configuration: RuleConfiguration(cacheNotReady: .deny)).validateDelete(deletion)
        XCTAssertEqual(refused.refusal, .unavailable("cluster lookups are not ready; references were not checked"))
    }

    func testEchoedNamesAreCut() {
        var cluster = fullCluster()
        cluster.projects = [:]
        let long = String(repeating: "p", count: 10_000)
        let decision = validate(.instance, instanceSpec(project: #"{"name":"\#(long)"}"#), cluster)
        XCTAssertEqual(decision.warningTexts.count, 1)
        XCTAssertLessThan(decision.warningTexts[0].utf8.count, 400)
    }
}
