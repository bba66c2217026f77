import JSON
import StreamRules
import XCTest

private let kafka = #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"b:9092","authentication":{"mechanism":"SCRAM-256","credentials":{"name":"creds"}},"security":{"protocol":"PLAINTEXT"}}}"#
private let sample = #"{"name":"sample_stream_solar","type":"Sample"}"#
private func instance(_ tier: String?) -> String {
    let tierPart = tier.map { #","tier":"\#($0)""# } ?? ""
    return #"{"name":"i","clusterConfig":{"provider":"AWS","region":"VIRGINIA_USA"\#(tierPart)},"projectRef":{"name":"p","namespace":"team-a"}}"#
}

/// `"name":"obj","namespace":"team-a"` plus the given annotations and labels (JSON members).
private func metadata(annotations: String? = nil, labels: String? = nil, extra: String = "") -> String {
    var parts = [#""name":"obj","namespace":"team-a""#]
    if let annotations { parts.append(#""annotations":{\#(annotations)}"#) }
    if let labels { parts.append(#""labels":{\#(labels)}"#) }
    if !extra.isEmpty { parts.append(extra) }
    return parts.joined(separator: ",")
}

/// An UPDATE with both sides' metadata given.
private func update(_ kind: StreamKind, _ spec: String, old oldSpec: String, metadata new: String, oldMetadata: String) -> RuleInput {
    RuleInput(kind: kind, operation: .update, object: object(kind, spec: spec, metadata: new),
              oldObject: object(kind, spec: oldSpec, metadata: oldMetadata), requestNamespace: "team-a")
}

/// The operator rules, as AKO's reconciler reads these objects.
final class OperatorRulesTests: XCTestCase {
    let rules = StreamRules()

    // MARK: - Certificate for every Kafka connection

    func testKafkaCertificateRule() {
        let always = #"FieldValueRequired spec.kafkaConfig.security.certificate.name: Required value: the operator reads key "certificate" from this Secret for every Kafka connection"#
        let plaintextNoCertificate = rules.validate(input(.connection, kafka))
        XCTAssertEqual(rendered(plaintextNoCertificate.errors), [always])
        XCTAssertEqual(plaintextNoCertificate.warningTexts, ["spec.kafkaConfig.security.protocol: PLAINTEXT sends stream data unencrypted; use SSL"])

        let sslOnly = StreamRules(configuration: RuleConfiguration(kafkaCertificate: .ssl))
        let relaxed = sslOnly.validate(input(.connection, kafka))
        XCTAssertEqual(rendered(relaxed.errors), [], "with rules.kafkaCertificate: ssl a PLAINTEXT connection needs none")
        XCTAssertEqual(relaxed.warningTexts, plaintextNoCertificate.warningTexts)
        let ssl = kafka.replacingOccurrences(of: "PLAINTEXT", with: "SSL")
        XCTAssertEqual(rendered(sslOnly.validate(input(.connection, ssl)).errors),
                       ["FieldValueRequired spec.kafkaConfig.security.certificate.name: Required value: required when spec.kafkaConfig.security.protocol is SSL"])
        let withCertificate = kafka.replacingOccurrences(of: #""protocol":"PLAINTEXT""#, with: #""protocol":"PLAINTEXT","certificate":{"name":"Bad_Cert"}"#)
        XCTAssertEqual(rendered(sslOnly.validate(input(.connection, withCertificate)).errors).count, 1, "a given certificate is still checked")
    }

    // MARK: - Annotations and label

    func testOperatorAnnotationsAndLabelOnCreate() {
        let versionFormat = #"must be a semantic version such as 2.15.1 (an optional "v" prefix, -prerelease and +build)"#
        let table: [(String, String, [String])] = [
            ("known values", metadata(annotations: #""mongodb.com/atlas-resource-policy":"keep","mongodb.com/atlas-reconciliation-policy":"skip","mongodb.com/atlas-resource-version-policy":"allow""#,
                                      labels: #""mongodb.com/atlas-resource-version":"2.15.1""#), []),
            ("delete", metadata(annotations: #""mongodb.com/atlas-resource-policy":"delete""#), []),
            ("unrelated keys pass", metadata(annotations: #""example.com/x":"Keep""#, labels: #""app":"anything""#), []),
            ("resource policy typo", metadata(annotations: #""mongodb.com/atlas-resource-policy":"Keep""#),
             [#"FieldValueNotSupported metadata.annotations[mongodb.com/atlas-resource-policy]: Unsupported value: "Keep": supported values: "keep", "delete""#]),
            ("reconciliation policy typo", metadata(annotations: #""mongodb.com/atlas-reconciliation-policy":"skipp""#),
             [#"FieldValueNotSupported metadata.annotations[mongodb.com/atlas-reconciliation-policy]: Unsupported value: "skipp": supported values: "skip""#]),
            ("version policy typo", metadata(annotations: #""mongodb.com/atlas-resource-version-policy":"true""#),
             [#"FieldValueNotSupported metadata.annotations[mongodb.com/atlas-resource-version-policy]: Unsupported value: "true": supported values: "allow""#]),
            ("version label not a version", metadata(labels: #""mongodb.com/atlas-resource-version":"latest""#),
             [#"FieldValueInvalid metadata.labels[mongodb.com/atlas-resource-version]: Invalid value: "latest": \#(versionFormat)"#]),
            ("four parts", metadata(labels: #""mongodb.com/atlas-resource-version":"2.15.1.4""#),
             [#"FieldValueInvalid metadata.labels[mongodb.com/atlas-resource-version]: Invalid value: "2.15.1.4": \#(versionFormat)"#]),
            ("leading zero", metadata(labels: #""mongodb.com/atlas-resource-version":"02.1""#),
             [#"FieldValueInvalid metadata.labels[mongodb.com/atlas-resource-version]: Invalid value: "02.1": \#(versionFormat)"#]),
            ("v prefix, short and prerelease forms", metadata(labels: #""mongodb.com/atlas-resource-version":"v2.15""#), []),
            ("prerelease and build", metadata(labels: #""mongodb.com/atlas-resource-version":"2.15.1-rc.1+build.5""#), []),
            ("wrong JSON type", metadata(annotations: #""mongodb.com/atlas-resource-policy":true"#),
             ["FieldValueInvalid metadata.annotations[mongodb.com/atlas-resource-policy]: Invalid value: true: must be a string"]),
        ]
        for kind in StreamKind.allCases {
            let spec = kind == .connection ? sample : instance(nil)
            for (name, meta, expected) in table {
                XCTAssertEqual(rendered(rules.validate(input(kind, spec, metadata: meta)).errors), expected, "\(kind) \(name)")
            }
        }
    }

    func testVersionLabelNewerThanTheOperator() throws {
        let operatorRules = StreamRules(configuration: RuleConfiguration(operatorVersion: try XCTUnwrap(OperatorVersion("2.15.1"))))
        func errors(_ label: String, allow: Bool = false) -> [String] {
            let meta = metadata(annotations: allow ? #""mongodb.com/atlas-resource-version-policy":"allow""# : nil,
                                labels: #""mongodb.com/atlas-resource-version":"\#(label)""#)
            return rendered(operatorRules.validate(input(.connection, sample, metadata: meta)).errors)
        }
        XCTAssertEqual(errors("2.16.0"), [#"FieldValueInvalid metadata.labels[mongodb.com/atlas-resource-version]: Invalid value: "2.16.0": newer than the operator version "2.15.1"; AKO will not reconcile it"#])
        XCTAssertEqual(errors("2.16.0", allow: true), [], "the version policy annotation allows it")
        XCTAssertEqual(errors("2.15.1"), [])
        XCTAssertEqual(errors("v2.15.1+build.7"), [], "build metadata does not count")
        XCTAssertEqual(errors("2.15.1-rc.1"), [], "a prerelease comes before its release")
        XCTAssertEqual(errors("2.15.2-rc.1").count, 1)
        XCTAssertEqual(errors("3").count, 1)
        XCTAssertEqual(errors("2.9.9"), [])
        // Without a configured operator version, any version passes.
        XCTAssertEqual(rendered(rules.validate(input(.connection, sample, metadata: metadata(labels: #""mongodb.com/atlas-resource-version":"99.0.0""#))).errors), [])
    }

    func testSemanticVersionPrecedence() throws {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1", "v2"]
        let versions = try ordered.map { try XCTUnwrap(OperatorVersion($0), $0) }
        for (a, b) in zip(versions, versions.dropFirst()) { XCTAssertLessThan(a, b, "\(a) < \(b)") }
        XCTAssertEqual(OperatorVersion("v1.2"), OperatorVersion("1.2.0"))
        for bad in ["", "v", "1.", ".1", "1..2", "1.2.3.4", "1.2.3-", "1.2.3+", "1.2.3-a..b", "01.2", "x.y.z", "1.2.3-ü"] {
            XCTAssertNil(OperatorVersion(bad), bad)
        }
    }

    func testMetadataOnlyUpdateIsJudgedAndOldValuesRatchet() {
        let bad = metadata(annotations: #""mongodb.com/atlas-resource-policy":"Keep""#)
        let good = metadata(annotations: #""mongodb.com/atlas-resource-policy":"keep""#)
        // Metadata-only UPDATE (spec unchanged) introducing a typo: judged.
        XCTAssertEqual(rendered(rules.validate(update(.connection, sample, old: sample, metadata: bad, oldMetadata: good)).errors),
                       [#"FieldValueNotSupported metadata.annotations[mongodb.com/atlas-resource-policy]: Unsupported value: "Keep": supported values: "keep", "delete""#])
        // The same bad value, already stored: it ratchets, with or without a spec change.
        XCTAssertEqual(rendered(rules.validate(update(.connection, sample, old: sample, metadata: bad, oldMetadata: bad)).errors), [])
        let renamed = #"{"name":"sample_stream_solar","type":"Sample","x":1}"#
        XCTAssertEqual(rendered(rules.validate(update(.connection, renamed, old: sample, metadata: bad, oldMetadata: bad)).errors), [])
        // Fixing it or removing it passes.
        XCTAssertTrue(rules.validate(update(.connection, sample, old: sample, metadata: good, oldMetadata: bad)).allowed)
        XCTAssertTrue(rules.validate(update(.connection, sample, old: sample, metadata: metadata(), oldMetadata: bad)).allowed)
        // A label changed on a metadata-only update.
        let label = metadata(labels: #""mongodb.com/atlas-resource-version":"two""#)
        XCTAssertEqual(rendered(rules.validate(update(.instance, instance(nil), old: instance(nil), metadata: label, oldMetadata: metadata())).errors).count, 1)
    }

    func testTerminatingObjectsFinalizerRemovalPasses() {
        // Invalid spec and a bad annotation written before the webhook; the operator
        // removes its finalizer while the object is being deleted: nothing changed that
        // is judged, so it passes.
        let invalidSpec = #"{"name":"bad name!","type":"Sample"}"#
        let before = metadata(annotations: #""mongodb.com/atlas-resource-policy":"Keep""#,
                              extra: #""deletionTimestamp":"2026-12-01T00:00:00Z","finalizers":["mongodbatlas/finalizer"]"#)
        let after = metadata(annotations: #""mongodb.com/atlas-resource-policy":"Keep""#,
                             extra: #""deletionTimestamp":"2026-12-01T00:00:00Z","finalizers":[]"#)
        XCTAssertTrue(rules.validate(update(.connection, invalidSpec, old: invalidSpec, metadata: after, oldMetadata: before)).allowed)
        // A spec change in the same state is judged.
        XCTAssertFalse(rules.validate(update(.connection, #"{"name":"worse name!","type":"Sample"}"#, old: invalidSpec,
                                             metadata: after, oldMetadata: before)).allowed)
    }

    // MARK: - Tier

    func testTierWarning() {
        let warning = "spec.clusterConfig.tier: not applied: AKO does not send the tier to Atlas"
        XCTAssertEqual(rules.validate(input(.instance, instance("SP30"))).warningTexts, [warning])
        XCTAssertEqual(rules.validate(input(.instance, instance("SP10"))).warningTexts, [])
        XCTAssertEqual(rules.validate(input(.instance, instance(nil))).warningTexts, [], "absent: the default")
        XCTAssertEqual(rules.validate(input(.instance, instance("SP20"))).warningTexts, [], "an unsupported tier is an error, not a warning")
        XCTAssertEqual(rules.validate(input(.instance, instance("SP50"), operation: .update, old: instance("SP10"))).warningTexts, [warning])
        XCTAssertEqual(rules.validate(input(.instance, instance("SP10"), operation: .update, old: instance("SP30"))).warningTexts, [warning])
        let moved = instance("SP30").replacingOccurrences(of: "VIRGINIA_USA", with: "OHIO_USA")
        XCTAssertEqual(rules.validate(input(.instance, moved, operation: .update, old: instance("SP30"))).warningTexts, [],
                       "unchanged tier, other spec change")
        XCTAssertEqual(rules.validate(input(.instance, instance("SP30"), operation: .update, old: instance(nil))).warningTexts, [warning])
        // With a denial too.
        let denied = rules.validate(input(.instance, instance("SP30").replacingOccurrences(of: "VIRGINIA_USA", with: "MARS")))
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.warningTexts, [warning])
    }
}
