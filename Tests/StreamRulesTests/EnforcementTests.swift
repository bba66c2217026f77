import JSON
import StreamRules
import XCTest

private let badKafka = #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"broker:0","authentication":{"mechanism":"PLAIN","credentials":{"name":"creds"}},"security":{"protocol":"PLAINTEXT"}}}"#

private func validate(_ enforcement: Enforcement, _ spec: String = badKafka) -> Decision {
    StreamRules(configuration: RuleConfiguration(enforcement: enforcement)).validate(input(.connection, spec))
}

/// Enforcement turns what the rules say into what a finding costs, rule by rule.
final class EnforcementTests: XCTestCase {
    func testDenyIsWhatTheRulesSay() {
        let decision = validate(Enforcement())
        XCTAssertEqual(decision.errors.map(\.rule), [.bootstrapServersPortRange, .kafkaCertificateRequired])
        XCTAssertEqual(decision.warnings.map(\.rule), [.kafkaProtocolEncrypted, .kafkaPasswordEncrypted])
        XCTAssertFalse(decision.allowed)
    }

    func testWarnAdmitsWithTheDenialsAsWarnings() {
        let denied = validate(Enforcement())
        let warned = validate(Enforcement(default: .warn))
        XCTAssertTrue(warned.allowed)
        XCTAssertEqual(warned.errors, [])
        // Would-be denials first: the answer's cap on warnings cuts the rules' own warnings first.
        XCTAssertEqual(warned.warningTexts, denied.errors.map { "would be denied: \($0)" } + denied.warningTexts)
        XCTAssertEqual(warned.warnings.filter(\.wouldDeny).map(\.rule), denied.errors.map(\.rule))
        XCTAssertEqual(warned.findings.count, denied.findings.count, "nothing is lost, only its cost changes")
    }

    func testAPerRuleSettingTurnsExactlyThatRule() {
        let denied = validate(Enforcement())
        let one = validate(Enforcement(rules: [.kafkaCertificateRequired: .warn]))
        XCTAssertEqual(one.errors.map(\.rule), [.bootstrapServersPortRange])
        XCTAssertEqual(one.warnings.filter(\.wouldDeny).map(\.rule), [.kafkaCertificateRequired])
        let off = validate(Enforcement(rules: [.bootstrapServersPortRange: .off, .kafkaProtocolEncrypted: .off]))
        XCTAssertEqual(off.errors.map(\.rule), [.kafkaCertificateRequired])
        XCTAssertEqual(off.warnings.map(\.rule), [.kafkaPasswordEncrypted])
        // Warn by default, one rule kept at deny: only that one refuses.
        let strictOne = validate(Enforcement(default: .warn, rules: [.kafkaCertificateRequired: .deny]))
        XCTAssertEqual(strictOne.errors.map(\.rule), [.kafkaCertificateRequired])
        XCTAssertEqual(strictOne.warnings.filter(\.wouldDeny).map(\.rule), [.bootstrapServersPortRange])
        XCTAssertEqual(denied.errors.count, 2)
    }

    func testARefusalFollowsItsRule() {
        let notReady = ClusterView.notReady(reason: "secrets not listed yet")
        var request = input(.connection, #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"b:1","authentication":{"mechanism":"SCRAM-256","credentials":{"name":"creds"}},"security":{"protocol":"SSL","certificate":{"name":"cert"}}}}"#)
        request.cluster = notReady
        var configuration = RuleConfiguration(cacheNotReady: .deny)
        XCTAssertEqual(StreamRules(configuration: configuration).validate(request).refusal?.rule, .clusterCacheReady)
        configuration.enforcement = Enforcement(rules: [.clusterCacheReady: .warn])
        let warned = StreamRules(configuration: configuration).validate(request)
        XCTAssertNil(warned.refusal)
        XCTAssertEqual(warned.warningTexts, ["would be denied: cluster lookups are not ready; references were not checked"])
    }

    /// Errors of rules that do not deny never take the places of those that do: the cap
    /// applies to each kind separately.
    func testOnlyWarnedErrorsCannotCrowdOutDenials() {
        // 102 entries of c1: 101 duplicates, one more than an answer lists.
        let duplicates = (0..<102).map { _ in #"{"name":"c1"}"# }.joined(separator: ",")
        let spec = #"{"name":"i","clusterConfig":{"provider":"AWS","region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":[\#(duplicates),{"name":"c2","namespace":"elsewhere"}]}"#
        let decide = { (enforcement: Enforcement) in
            StreamRules(configuration: RuleConfiguration(registryReferences: .ownNamespaceOnly, enforcement: enforcement))
                .validate(input(.instance, spec))
        }
        let off = decide(Enforcement(rules: [.registryEntryUnique: .off]))
        XCTAssertFalse(off.allowed)
        XCTAssertEqual(off.errors.map(\.rule), [.registryNamespaceAllowed])
        let warned = decide(Enforcement(rules: [.registryEntryUnique: .warn]))
        XCTAssertEqual(warned.errors.map(\.rule), [.registryNamespaceAllowed])
        XCTAssertEqual(warned.warnings.filter(\.wouldDeny).count, 101, "100 kept and one saying how many more")
        XCTAssertEqual(warned.warningTexts.last, "would be denied: and 1 more errors")
    }

    func testCheckDeniesWhatTheServerWouldOnlyWarnOf() {
        let rollout = Enforcement(default: .warn, rules: [.kafkaCertificateRequired: .warn, .bootstrapServersPortRange: .off])
        XCTAssertEqual(rollout.denyingWarned, Enforcement(rules: [.bootstrapServersPortRange: .off]))
        let checked = validate(rollout.denyingWarned)
        XCTAssertEqual(checked.errors.map(\.rule), [.kafkaCertificateRequired])
    }

    func testErrorsPastTheListFollowTheDefault() {
        let registry = "[" + (0..<150).map { _ in "null" }.joined(separator: ",") + "]"
        let spec = #"{"name":"i","clusterConfig":{"provider":"AWS","region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":\#(registry)}"#
        let rules = { (enforcement: Enforcement) in
            StreamRules(configuration: RuleConfiguration(enforcement: enforcement)).validate(input(.instance, spec))
        }
        XCTAssertEqual(rules(Enforcement()).omittedErrorCount, 50)
        let warned = rules(Enforcement(default: .warn))
        XCTAssertTrue(warned.allowed)
        XCTAssertEqual(warned.omittedErrorCount, 0)
        XCTAssertEqual(warned.warningTexts.last, "would be denied: and 50 more errors")
    }
}
