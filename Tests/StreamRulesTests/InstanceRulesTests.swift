import JSON
import StreamRules
import XCTest

private let valid = #"{"name":"my-instance","clusterConfig":{"provider":"AWS","region":"VIRGINIA_USA","tier":"SP30"},"projectRef":{"name":"my-project","namespace":"team-a"},"connectionRegistry":[{"name":"kafka-conn","namespace":"team-a"},{"name":"sample","namespace":"team-a"},{"name":"shared-conn","namespace":"shared"}]}"#

final class InstanceRulesTests: XCTestCase {
    let rules = StreamRules()

    func testDocumentationExampleIsValid() {
        let decision = rules.validate(input(.instance, valid))
        XCTAssertEqual(rendered(decision.errors), [])
        // The example asks for SP30, which AKO never sends to Atlas.
        XCTAssertEqual(decision.warningTexts, ["spec.clusterConfig.tier: not applied: AKO does not send the tier to Atlas"])
    }

    /// One row per rule: a spec and every error it must produce, exactly.
    func testValidationTable() {
        let table: [(String, String?, [String])] = [
            ("spec required", nil, ["FieldValueRequired spec: Required value"]),
            ("spec wrong type", #""text""#, [#"FieldValueInvalid spec: Invalid value: "text": must be an object"#]),
            ("everything missing", "{}", [
                "FieldValueRequired spec.name: Required value",
                "FieldValueRequired spec.clusterConfig: Required value",
                "FieldValueRequired spec.projectRef: Required value",
            ]),
            ("name charset", #"{"name":"my_instance!","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"}}"#,
             [#"FieldValueInvalid spec.name: Invalid value: "my_instance!": must contain only ASCII letters, digits and '-'"#]),
            ("name wrong type", #"{"name":5,"clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"}}"#,
             ["FieldValueInvalid spec.name: Invalid value: 5: must be a string"]),
            ("empty name counts as absent", #"{"name":"","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"}}"#,
             ["FieldValueRequired spec.name: Required value"]),
            ("provider not served", #"{"name":"i","clusterConfig":{"provider":"TENANT","region":"VIRGINIA_USA"},"projectRef":{"name":"p"}}"#,
             [#"FieldValueNotSupported spec.clusterConfig.provider: Unsupported value: "TENANT": supported values: "AWS", "AZURE", "GCP""#]),
            ("region of another provider", #"{"name":"i","clusterConfig":{"provider":"GCP","region":"VIRGINIA_USA"},"projectRef":{"name":"p"}}"#,
             [#"FieldValueNotSupported spec.clusterConfig.region: Unsupported value: "VIRGINIA_USA": supported values: "US_CENTRAL1", "EUROPE_WEST1", "US_EAST4""#]),
            ("region of defaulted provider AWS", #"{"name":"i","clusterConfig":{"region":"eastus"},"projectRef":{"name":"p"}}"#,
             [#"FieldValueNotSupported spec.clusterConfig.region: Unsupported value: "eastus": supported values: "SYDNEY_AUS", "MUMBAI_IND", "FRANKFURT_DEU", "DUBLIN_IRL", "LONDON_GBR", "VIRGINIA_USA", "OHIO_USA", "OREGON_USA", "SAOPAULO_BRA", "MONTREAL_CAN", "TOKYO_JPN", "SINGAPORE_SGP""#]),
            ("region required", #"{"name":"i","clusterConfig":{"provider":"AZURE"},"projectRef":{"name":"p"}}"#,
             ["FieldValueRequired spec.clusterConfig.region: Required value"]),
            ("tier", #"{"name":"i","clusterConfig":{"region":"eastus","provider":"AZURE","tier":"SP5"},"projectRef":{"name":"p"}}"#,
             [#"FieldValueNotSupported spec.clusterConfig.tier: Unsupported value: "SP5": supported values: "SP10", "SP30", "SP50""#]),
            ("clusterConfig wrong type", #"{"name":"i","clusterConfig":[],"projectRef":{"name":"p"}}"#,
             ["FieldValueInvalid spec.clusterConfig: Invalid value: []: must be an object"]),
            ("projectRef name", #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{"name":"My_Project","namespace":"Team A"}}"#,
             ["FieldValueInvalid spec.projectRef.namespace: Invalid value: \"Team A\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
              "FieldValueInvalid spec.projectRef.name: Invalid value: \"My_Project\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("projectRef name required", #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{}}"#,
             ["FieldValueRequired spec.projectRef.name: Required value"]),
            ("projectRef too long", #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{"name":"\#(String(repeating: "a", count: 254))"}}"#,
             ["FieldValueInvalid spec.projectRef.name: Invalid value: \"\(String(repeating: "a", count: 254))\": must be no more than 253 characters",
              "FieldValueInvalid spec.projectRef.name: Invalid value: \"\(String(repeating: "a", count: 254))\": \(dns1123Subdomain)"]),
            ("registry entries", #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{"name":"p"},"connectionRegistry":[{"name":"a"},{"namespace":"team-a"},{"name":"a","namespace":"team-a"},{"name":"B"},5,{"name":"a","namespace":"other"}]}"#,
             ["FieldValueRequired spec.connectionRegistry[1].name: Required value",
              #"FieldValueDuplicate spec.connectionRegistry[2]: Duplicate value: "team-a/a""#,
              "FieldValueInvalid spec.connectionRegistry[3].name: Invalid value: \"B\": \(dns1123Subdomain)",
              "FieldValueInvalid spec.connectionRegistry[4]: Invalid value: 5: must be an object"]),
            ("registry wrong type", #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{"name":"p"},"connectionRegistry":{"name":"a"}}"#,
             [#"FieldValueInvalid spec.connectionRegistry: Invalid value: {"name":"a"}: must be an array"#]),
        ]
        for (name, spec, expected) in table {
            XCTAssertEqual(rendered(rules.validate(input(.instance, spec)).errors), expected, name)
        }
    }

    func testRegistryReferencePolicy() {
        let spec = #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{"name":"p","namespace":"anywhere"},"connectionRegistry":[{"name":"a","namespace":"shared"},{"name":"b","namespace":"other"}]}"#
        XCTAssertEqual(rendered(rules.validate(input(.instance, spec)).errors), [], "cross-namespace registry allowed by default")
        let strict = StreamRules(configuration: RuleConfiguration(registryReferences: .allowList(["shared"])))
        XCTAssertEqual(rendered(strict.validate(input(.instance, spec)).errors), [
            #"FieldValueForbidden spec.connectionRegistry[1].namespace: Forbidden: may not reference an AtlasStreamConnection in namespace "other"; allowed: the instance's own namespace, "shared""#,
        ])
        let deny = StreamRules(configuration: RuleConfiguration(registryReferences: .ownNamespaceOnly))
        XCTAssertEqual(deny.validate(input(.instance, spec)).errors.count, 2)
    }

    func testUpdateImmutabilityAndRatcheting() {
        let old = #"{"name":"i","clusterConfig":{"region":"OHIO_USA"},"projectRef":{"name":"p"}}"#
        let moved = #"{"name":"j","clusterConfig":{"provider":"GCP","region":"US_EAST4"},"projectRef":{"name":"q","namespace":"elsewhere"}}"#
        XCTAssertEqual(rendered(rules.validate(input(.instance, moved, operation: .update, old: old)).errors), [
            #"FieldValueInvalid spec.name: Invalid value: "j": field is immutable"#,
            #"FieldValueInvalid spec.projectRef.name: Invalid value: "q": field is immutable"#,
            #"FieldValueInvalid spec.projectRef.namespace: Invalid value: "elsewhere": field is immutable"#,
        ])
        // Region and provider may change.
        let region = #"{"name":"i","clusterConfig":{"provider":"AZURE","region":"westus"},"projectRef":{"name":"p","namespace":"team-a"}}"#
        XCTAssertTrue(rules.validate(input(.instance, region, operation: .update, old: old)).allowed,
                      "the defaulted projectRef namespace equals the old effective one")
        // An invalid object written before the webhook: unchanged spec passes (finalizer updates).
        let legacy = #"{"name":"bad name!","clusterConfig":{"provider":"TENANT"}}"#
        XCTAssertTrue(rules.validate(input(.instance, legacy, operation: .update, old: legacy,
                                           metadata: #""name":"obj","namespace":"team-a","finalizers":["x"]"#)).allowed)
        XCTAssertFalse(rules.validate(input(.instance, legacy, operation: .create)).allowed)
    }

    /// Finding 1 of the hardening review: a terminating object's spec change escaped
    /// every rule (the secret reference policy among them).
    func testTerminatingObjectWithChangedSpecIsJudged() {
        let legacy = #"{"name":"bad name!","clusterConfig":{"provider":"TENANT"}}"#
        let terminating = #""name":"obj","namespace":"team-a","deletionTimestamp":"2026-11-29T00:00:00Z","finalizers":[]"#
        let changed = rules.validate(input(.instance, legacy, operation: .update, old: valid, metadata: terminating))
        XCTAssertFalse(changed.allowed)
        XCTAssertTrue(rendered(changed.errors).contains(#"FieldValueInvalid spec.name: Invalid value: "bad name!": must contain only ASCII letters, digits and '-'"#),
                      "\(rendered(changed.errors))")
        // The operator removing its finalizer does not change spec: it passes, even for an
        // object that was invalid before the webhook.
        XCTAssertTrue(rules.validate(input(.instance, legacy, operation: .update, old: legacy, metadata: terminating)).allowed)
    }

    func testDefaults() {
        let table: [(String, String?, [String])] = [
            ("nothing to do", valid, []),
            ("missing clusterConfig created with both defaults", #"{"name":"i","projectRef":{"name":"p"}}"#,
             ["/spec/clusterConfig={provider:AWS,tier:SP10}", "/spec/projectRef/namespace=team-a"]),
            ("empty strings are absent", #"{"clusterConfig":{"provider":"","tier":"","region":"OHIO_USA"},"projectRef":{"name":"p","namespace":""}}"#,
             ["/spec/clusterConfig/provider=AWS", "/spec/clusterConfig/tier=SP10", "/spec/projectRef/namespace=team-a"]),
            ("registry namespaces", #"{"clusterConfig":{"provider":"GCP","tier":"SP50"},"connectionRegistry":[{"name":"a"},{"name":"b","namespace":"x"},{"namespace":""},"junk",{"name":"c","namespace":null}]}"#,
             ["/spec/connectionRegistry/0/namespace=team-a", "/spec/connectionRegistry/4/namespace=team-a"]),
            ("odd shapes are left alone", #"{"clusterConfig":"x","projectRef":[1],"connectionRegistry":{"a":1}}"#, []),
            ("no spec", nil, []),
            ("spec not an object", "5", []),
            ("wrong-typed provider kept for validation", #"{"clusterConfig":{"provider":5,"tier":"SP30"}}"#, []),
        ]
        for (name, spec, expected) in table {
            let decision = rules.mutate(input(.instance, spec))
            XCTAssertEqual(rendered(decision.patch), expected, name)
            XCTAssertTrue(decision.allowed, "mutate never denies: \(name)")
        }
    }

    func testNamespaceFallsBackToTheRequest() {
        let decision = rules.mutate(input(.instance, #"{"projectRef":{"name":"p"},"clusterConfig":{"provider":"AWS","tier":"SP10"}}"#,
                                          metadata: #""name":"obj""#))
        XCTAssertEqual(rendered(decision.patch), ["/spec/projectRef/namespace=team-a"])
    }
}

let dns1123Subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
