import JSON
import StreamRules
import XCTest

private func kafka(servers: String = "broker:9092", config: String? = nil, credentials: String = #"{"name":"creds"}"#) -> String {
    let cfg = config.map { #","config":\#($0)"# } ?? ""
    return #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"\#(servers)","authentication":{"mechanism":"SCRAM-256","credentials":\#(credentials)},"security":{"protocol":"SSL","certificate":{"name":"cert"}}\#(cfg)}}"#
}

/// Sizes checked before entries, at most 100 errors, values cut at 256 bytes, and the
/// review findings that concern the rules.
final class BoundsTests: XCTestCase {
    let rules = StreamRules()

    func testBootstrapServersOverTheEntryLimitAreTooManyAndNotCheckedOneByOne() {
        let servers = Array(repeating: "a", count: 257).joined(separator: ",")
        let decision = rules.validate(input(.connection, kafka(servers: servers)))
        XCTAssertEqual(rendered(decision.errors),
                       ["FieldValueTooMany spec.kafkaConfig.bootstrapServers: Too many: 257: must have at most 256 items"])
        let atLimit = (0..<256).map { "b\($0):9092" }.joined(separator: ",")
        XCTAssertEqual(rendered(rules.validate(input(.connection, kafka(servers: atLimit))).errors), [])
    }

    func testBootstrapServersOverSixteenKiBAreTooLong() {
        let host = String(repeating: "h", count: 60)
        let servers = (0..<255).map { "\(host)\($0):9092" }.joined(separator: ",")
        XCTAssertGreaterThan(servers.utf8.count, 16 * 1024)
        XCTAssertEqual(rendered(rules.validate(input(.connection, kafka(servers: servers))).errors),
                       ["FieldValueTooLong spec.kafkaConfig.bootstrapServers: Too long: may not be more than 16384 bytes"])
    }

    func testDuplicateBootstrapServersAreFoundIgnoringCase() {
        let decision = rules.validate(input(.connection, kafka(servers: "a:1,B:2,A:1,b:2,c:3")))
        XCTAssertEqual(rendered(decision.errors), [
            #"FieldValueDuplicate spec.kafkaConfig.bootstrapServers: Duplicate value: "A:1""#,
            #"FieldValueDuplicate spec.kafkaConfig.bootstrapServers: Duplicate value: "b:2""#,
        ])
    }

    func testConfigOverTheKeyLimitIsTooMany() {
        let keys = (0..<257).map { #""k\#($0)":"v""# }.joined(separator: ",")
        XCTAssertEqual(rendered(rules.validate(input(.connection, kafka(config: "{\(keys)}"))).errors),
                       ["FieldValueTooMany spec.kafkaConfig.config: Too many: 257: must have at most 256 items"])
        // Duplicate keys count: 257 copies of one key are 257 entries.
        let duplicates = Array(repeating: #""sasl.password":"x""#, count: 257).joined(separator: ",")
        XCTAssertEqual(rendered(rules.validate(input(.connection, kafka(config: "{\(duplicates)}"))).errors),
                       ["FieldValueTooMany spec.kafkaConfig.config: Too many: 257: must have at most 256 items"])
    }

    func testRegistryOverTheEntryLimitIsTooMany() {
        let entries = (0..<1001).map { #"{"name":"c\#($0)"}"# }.joined(separator: ",")
        let spec = #"{"name":"i","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":[\#(entries)]}"#
        XCTAssertEqual(rendered(rules.validate(input(.instance, spec)).errors),
                       ["FieldValueTooMany spec.connectionRegistry: Too many: 1001: must have at most 1000 items"])
    }

    func testAtMostOneHundredErrorsAreKeptAndTheRestCounted() {
        let entries = (0..<1000).map { #"{"name":"Bad_\#($0)"}"# }.joined(separator: ",")
        let spec = #"{"name":"i","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":[\#(entries)]}"#
        let decision = rules.validate(input(.instance, spec))
        XCTAssertEqual(decision.errors.count, 100)
        XCTAssertEqual(decision.omittedErrorCount, 900)
        XCTAssertEqual(decision.errors.first?.field.description, "spec.connectionRegistry[0].name")
        XCTAssertEqual(decision.errors.last?.field.description, "spec.connectionRegistry[99].name", "the first 100, in order")
    }

    func testEchoedValuesAreCutAtTwoHundredFiftySixBytes() {
        let long = String(repeating: "x", count: 10_000) + ":9092:1"
        let decision = rules.validate(input(.connection, kafka(servers: long)))
        XCTAssertEqual(rendered(decision.errors), [
            "FieldValueInvalid spec.kafkaConfig.bootstrapServers: Invalid value: \"\(String(repeating: "x", count: 256))...\": "
                + "an IPv6 address must be in brackets, as [::1]:9092",
        ])
        // Never inside a UTF-8 sequence: 255 ASCII bytes, then a two-byte character.
        let name = String(repeating: "n", count: 255) + "é" + String(repeating: "n", count: 100)
        let sample = rules.validate(input(.connection, #"{"name":"\#(name)","type":"Sample"}"#))
        XCTAssertEqual(sample.errors.first?.body,
                       "Unsupported value: \"\(String(repeating: "n", count: 255))...\": supported values: \"sample_stream_solar\"")
        // A map key in a path too.
        let key = "sasl.password" + String(repeating: "k", count: 1000)
        let config = rules.validate(input(.connection, kafka(config: #"{"\#(key)":5}"#)))
        XCTAssertEqual(config.errors.first?.field.description,
                       "spec.kafkaConfig.config[\(String(key.prefix(256)))...]")
        // Long numbers as well.
        let number = rules.validate(input(.connection, #"{"name":\#(String(repeating: "9", count: 1000)),"type":"Sample"}"#))
        XCTAssertEqual(number.errors.first?.body, "Invalid value: \(String(repeating: "9", count: 256))...: must be a string")
    }

    /// Finding 7 of the hardening review: the forbidden-key check compared escaped lengths.
    func testForbiddenConfigKeyWrittenWithEscapesIsForbidden() {
        let decision = rules.validate(input(.connection, kafka(config: #"{"sasl\u002epassword":"x","SASL.JAAS\u002Econfig":"y"}"#)))
        XCTAssertEqual(rendered(decision.errors), [
            "FieldValueForbidden spec.kafkaConfig.config[sasl.password]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.credentials (a Secret) instead",
            "FieldValueForbidden spec.kafkaConfig.config[SASL.JAAS.config]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.credentials (a Secret) instead",
        ])
    }

    /// Finding 1 of the hardening review, for the rule it let through: a terminating
    /// connection could move its credentials to another namespace.
    func testTerminatingConnectionCannotBorrowAnotherNamespacesSecret() {
        let terminating = #""name":"obj","namespace":"team-a","deletionTimestamp":"2026-11-29T00:00:00Z","finalizers":["mongodbatlas/finalizer"]"#
        let borrowed = kafka(credentials: #"{"name":"creds","namespace":"team-b"}"#)
        let decision = rules.validate(input(.connection, borrowed, operation: .update, old: kafka(), metadata: terminating))
        XCTAssertEqual(rendered(decision.errors), [
            #"FieldValueForbidden spec.kafkaConfig.authentication.credentials.namespace: Forbidden: may not reference a Secret in namespace "team-b"; allowed: the connection's own namespace"#,
        ])
    }

    func testSpecEqualityIgnoresMemberOrderAndFindsLeafChanges() {
        let deep = { (leaf: String) in String(repeating: #"{"b":1,"a":"#, count: 40) + leaf + String(repeating: "}", count: 40) }
        let reordered = String(repeating: #"{"a":"#, count: 40) + "1" + String(repeating: #","b":1}"#, count: 40)
        let spec = { (extra: String) in #"{"name":"sample_stream_solar","type":"Sample","x":\#(extra)}"# }
        // Same content, other member order: unchanged, so not judged (an invalid old object passes).
        let invalidOld = #"{"name":"bad","type":"Sample","x":\#(deep("1"))}"#
        let invalidNew = #"{"type":"Sample","x":\#(reordered),"name":"bad"}"#
        XCTAssertTrue(rules.validate(input(.connection, invalidNew, operation: .update, old: invalidOld)).allowed)
        // A change at the deepest leaf is a change.
        XCTAssertFalse(rules.validate(input(.connection, #"{"name":"bad","type":"Sample","x":\#(deep("2"))}"#,
                                            operation: .update, old: invalidOld)).allowed)
        XCTAssertTrue(rules.validate(input(.connection, spec(deep("2")), operation: .update, old: spec(deep("1")))).allowed)
    }
}
