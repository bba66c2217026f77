import JSON
import StreamRules
import XCTest

/// The AKO documentation's Kafka example: SCRAM-512 over SSL with a certificate secret.
private let kafka = #"{"name":"my-stream-connection","type":"Kafka","kafkaConfig":{"bootstrapServers":"broker-1:9092,broker-2:9092","authentication":{"mechanism":"SCRAM-512","credentials":{"name":"ref-to-creds-secret","namespace":"team-a"}},"security":{"protocol":"SSL","certificate":{"name":"ref-to-certificate-secret","namespace":"team-a"}}}}"#

/// A Kafka spec with `kafkaConfig` replaced.
private func kafkaSpec(_ kafkaConfig: String) -> String {
    #"{"name":"k","type":"Kafka","kafkaConfig":\#(kafkaConfig)}"#
}

private func kafkaConfig(servers: String = "broker:9092", mechanism: String = "SCRAM-256", protocolName: String = "SSL",
                         credentials: String = #"{"name":"creds"}"#, certificate: String? = #"{"name":"cert"}"#,
                         config: String? = nil) -> String {
    let cert = certificate.map { #","certificate":\#($0)"# } ?? ""
    let cfg = config.map { #","config":\#($0)"# } ?? ""
    return #"{"bootstrapServers":"\#(servers)","authentication":{"mechanism":"\#(mechanism)","credentials":\#(credentials)},"security":{"protocol":"\#(protocolName)"\#(cert)}\#(cfg)}"#
}

final class ConnectionRulesTests: XCTestCase {
    let rules = StreamRules()

    func testDocumentationExamplesAreValid() {
        let examples = [
            kafka,
            #"{"name":"sample_stream_solar","type":"Sample"}"#,
            #"{"name":"my-cluster-connection","type":"Cluster","clusterConfig":{"name":"Cluster0","role":{"name":"my-custom-role","type":"CUSTOM"}}}"#,
        ]
        for spec in examples {
            let decision = rules.validate(input(.connection, spec))
            XCTAssertEqual(rendered(decision.errors), [], spec)
            XCTAssertEqual(decision.warningTexts, [], spec)
        }
    }

    /// Names and servers are judged on their decoded text, read from the JSON bytes in
    /// place: an escape that spells a valid name is valid, one that spells an invalid
    /// name is reported with the decoded value.
    func testEscapedNamesAndServersAreJudgedDecoded() {
        let valid = kafkaSpec(kafkaConfig(servers: #"broker\u002d1:9092"#, credentials: #"{"name":"cr\u0065ds"}"#))
        XCTAssertEqual(rendered(rules.validate(input(.connection, valid)).errors), [])
        let invalid = kafkaSpec(kafkaConfig(servers: #"broker:9092,broker\u003a9092"#, credentials: #"{"name":"Cr\u0065ds"}"#))
        XCTAssertEqual(rendered(rules.validate(input(.connection, invalid)).errors), [
            #"FieldValueDuplicate spec.kafkaConfig.bootstrapServers: Duplicate value: "broker:9092""#,
            #"FieldValueInvalid spec.kafkaConfig.authentication.credentials.name: Invalid value: "Creds": "#
                + "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                + "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                + "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ])
    }

    func testValidationTable() {
        let table: [(String, String?, [String])] = [
            ("spec required", nil, ["FieldValueRequired spec: Required value"]),
            ("name and type required", "{}", ["FieldValueRequired spec.name: Required value", "FieldValueRequired spec.type: Required value"]),
            ("type enum", #"{"name":"n","type":"Kinesis"}"#,
             [#"FieldValueNotSupported spec.type: Unsupported value: "Kinesis": supported values: "Kafka", "Cluster", "Sample""#]),
            ("type wrong JSON type", #"{"name":"n","type":true}"#, ["FieldValueInvalid spec.type: Invalid value: true: must be a string"]),
            ("sample source", #"{"name":"sample_stream_weather","type":"Sample"}"#,
             [#"FieldValueNotSupported spec.name: Unsupported value: "sample_stream_weather": supported values: "sample_stream_solar""#]),
            ("sample forbids both configs", #"{"name":"sample_stream_solar","type":"Sample","kafkaConfig":{"bootstrapServers":"a:1"},"clusterConfig":{"name":"c"}}"#,
             ["FieldValueForbidden spec.kafkaConfig: Forbidden: may not be set when spec.type is Sample",
              "FieldValueForbidden spec.clusterConfig: Forbidden: may not be set when spec.type is Sample"]),
            ("Go zero values count as absent", #"{"name":"sample_stream_solar","type":"Sample","clusterConfig":{"name":"","role":{"name":"","type":""}}}"#, []),
            ("kafka requires kafkaConfig, forbids clusterConfig", #"{"name":"k","type":"Kafka","clusterConfig":{"name":"c"}}"#,
             ["FieldValueRequired spec.kafkaConfig: Required value",
              "FieldValueForbidden spec.clusterConfig: Forbidden: may not be set when spec.type is Kafka"]),
            ("cluster requires clusterConfig, forbids kafkaConfig", #"{"name":"c","type":"Cluster","kafkaConfig":{"bootstrapServers":"a:1"}}"#,
             ["FieldValueRequired spec.clusterConfig: Required value",
              "FieldValueForbidden spec.kafkaConfig: Forbidden: may not be set when spec.type is Cluster"]),
            ("cluster name and role", #"{"name":"c","type":"Cluster","clusterConfig":{"name":"bad_name"}}"#,
             [#"FieldValueInvalid spec.clusterConfig.name: Invalid value: "bad_name": must contain only ASCII letters, digits and '-'"#,
              "FieldValueRequired spec.clusterConfig.role: Required value"]),
            ("cluster name too long", #"{"name":"c","type":"Cluster","clusterConfig":{"name":"\#(String(repeating: "c", count: 65))","role":{"name":"atlasAdmin","type":"BUILT_IN"}}}"#,
             ["FieldValueTooLong spec.clusterConfig.name: Too long: may not be more than 64 bytes"]),
            ("role fields", #"{"name":"c","type":"Cluster","clusterConfig":{"name":"C0","role":{"type":"ADMIN"}}}"#,
             ["FieldValueRequired spec.clusterConfig.role.name: Required value",
              #"FieldValueNotSupported spec.clusterConfig.role.type: Unsupported value: "ADMIN": supported values: "BUILT_IN", "CUSTOM""#]),
            ("built-in role names", #"{"name":"c","type":"Cluster","clusterConfig":{"name":"C0","role":{"name":"root","type":"BUILT_IN"}}}"#,
             [#"FieldValueNotSupported spec.clusterConfig.role.name: Unsupported value: "root": supported values: "atlasAdmin", "readWriteAnyDatabase", "readAnyDatabase""#]),
            ("kafka required parts", kafkaSpec("{}"),
             ["FieldValueRequired spec.kafkaConfig: Required value"]),
            ("kafka parts each required", kafkaSpec(#"{"config":{"a":"b"}}"#),
             ["FieldValueRequired spec.kafkaConfig.bootstrapServers: Required value",
              "FieldValueRequired spec.kafkaConfig.authentication: Required value",
              "FieldValueRequired spec.kafkaConfig.security: Required value"]),
            ("mechanism, credentials and protocol", kafkaSpec(#"{"bootstrapServers":"a:1","authentication":{"mechanism":"OAUTH"},"security":{"protocol":"TLS"}}"#),
             [#"FieldValueNotSupported spec.kafkaConfig.authentication.mechanism: Unsupported value: "OAUTH": supported values: "PLAIN", "SCRAM-256", "SCRAM-512""#,
              "FieldValueRequired spec.kafkaConfig.authentication.credentials.name: Required value",
              #"FieldValueNotSupported spec.kafkaConfig.security.protocol: Unsupported value: "TLS": supported values: "PLAINTEXT", "SSL""#,
              #"FieldValueRequired spec.kafkaConfig.security.certificate.name: Required value: the operator reads key "certificate" from this Secret for every Kafka connection"#]),
            ("SSL needs a certificate", kafkaSpec(kafkaConfig(certificate: nil)),
             [#"FieldValueRequired spec.kafkaConfig.security.certificate.name: Required value: the operator reads key "certificate" from this Secret for every Kafka connection"#]),
            ("PLAINTEXT needs a certificate too", kafkaSpec(kafkaConfig(protocolName: "PLAINTEXT", certificate: nil)),
             [#"FieldValueRequired spec.kafkaConfig.security.certificate.name: Required value: the operator reads key "certificate" from this Secret for every Kafka connection"#]),
            ("SSL with Go zero-value certificate", kafkaSpec(kafkaConfig(certificate: #"{"name":"","namespace":""}"#)),
             [#"FieldValueRequired spec.kafkaConfig.security.certificate.name: Required value: the operator reads key "certificate" from this Secret for every Kafka connection"#]),
            ("secret names", kafkaSpec(kafkaConfig(credentials: #"{"name":"Creds","namespace":"team_a"}"#, certificate: #"{"name":"cert.pem"}"#)),
             ["FieldValueInvalid spec.kafkaConfig.authentication.credentials.namespace: Invalid value: \"team_a\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
              "FieldValueInvalid spec.kafkaConfig.authentication.credentials.name: Invalid value: \"Creds\": \(dns1123Subdomain)",
              #"FieldValueForbidden spec.kafkaConfig.authentication.credentials.namespace: Forbidden: may not reference a Secret in namespace "team_a"; allowed: the connection's own namespace"#]),
            ("forbidden and empty config keys", kafkaSpec(kafkaConfig(config: #"{"sasl.password":"hunter2","bootstrap.servers":"x:1","":"v","linger.ms":5,"compression.type":"lz4"}"#)),
             ["FieldValueForbidden spec.kafkaConfig.config[sasl.password]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.credentials (a Secret) instead",
              "FieldValueForbidden spec.kafkaConfig.config[bootstrap.servers]: Forbidden: overrides a typed field; set spec.kafkaConfig.bootstrapServers instead",
              #"FieldValueInvalid spec.kafkaConfig.config: Invalid value: "": keys must not be empty"#,
              "FieldValueInvalid spec.kafkaConfig.config[linger.ms]: Invalid value: 5: must be a string"]),
            ("every forbidden key", kafkaSpec(kafkaConfig(config: #"{"security.protocol":"SSL","sasl.mechanism":"PLAIN","sasl.mechanisms":"PLAIN","sasl.username":"u","sasl.jaas.config":"j"}"#)),
             ["FieldValueForbidden spec.kafkaConfig.config[security.protocol]: Forbidden: overrides a typed field; set spec.kafkaConfig.security.protocol instead",
              "FieldValueForbidden spec.kafkaConfig.config[sasl.mechanism]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.mechanism instead",
              "FieldValueForbidden spec.kafkaConfig.config[sasl.mechanisms]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.mechanism instead",
              "FieldValueForbidden spec.kafkaConfig.config[sasl.username]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.credentials (a Secret) instead",
              "FieldValueForbidden spec.kafkaConfig.config[sasl.jaas.config]: Forbidden: overrides a typed field; set spec.kafkaConfig.authentication.credentials (a Secret) instead"]),
        ]
        for (name, spec, expected) in table {
            XCTAssertEqual(rendered(rules.validate(input(.connection, spec)).errors), expected, name)
        }
    }

    func testBootstrapServersGrammar() {
        let good = ["broker:9092", "a:1", "b-1.kafka.svc.cluster.local:65535", "10.0.0.1:9092", "[::1]:9092",
                    "[2001:db8::1]:9093", "Broker-1:9092,broker-2:9092", "1a.2.3.4:1", "255.255.255.255:1",
                    String(repeating: "l", count: 63) + ".io:1"]
        for servers in good {
            XCTAssertEqual(rendered(rules.validate(input(.connection, kafkaSpec(kafkaConfig(servers: servers)))).errors), [], servers)
        }
        let bad: [(String, [String])] = [
            ("SASL_SSL://h:9092", [#""SASL_SSL://h:9092": must be host:port without a scheme"#]),
            ("h:9092, i:9092", [#"" i:9092": must not contain spaces"#]),
            ("h:9092,,i:9092", [#""": must not be an empty entry"#]),
            ("h:9092,", [#""": must not be an empty entry"#]),
            ("h", [#""h": must be host:port"#]),
            ("h:0", [#""h:0": port must be a number from 1 to 65535"#]),
            ("h:65536", [#""h:65536": port must be a number from 1 to 65535"#]),
            ("h:+1", [#""h:+1": port must be a number from 1 to 65535"#]),
            ("h:", [#""h:": port must be a number from 1 to 65535"#]),
            ("-h:1", [#""-h:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            ("h_1:1", [#""h_1:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            ("256.1.1.1:1", [#""256.1.1.1:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            ("::1:9092", [#""::1:9092": an IPv6 address must be in brackets, as [::1]:9092"#]),
            ("[zz::1]:9092", [#""[zz::1]:9092": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            (":9092", [#"":9092": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            // Spaces are reported before a scheme, wherever they are.
            ("h://x y:1", [#""h://x y:1": must not contain spaces"#]),
            ("1.2.3:1", [#""1.2.3:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            ("1.2.3.4.5:1", [#""1.2.3.4.5:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            ("a..b:1", [#""a..b:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            ("a.b-.c:1", [#""a.b-.c:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
            (String(repeating: "l", count: 64) + ".io:1",
             [#"""# + String(repeating: "l", count: 64) + #".io:1": host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"#]),
        ]
        for (servers, details) in bad {
            let errors = rules.validate(input(.connection, kafkaSpec(kafkaConfig(servers: servers)))).errors
            XCTAssertEqual(errors.map(\.body), details.map { "Invalid value: " + $0 }, servers)
            XCTAssertTrue(errors.allSatisfy { $0.field.description == "spec.kafkaConfig.bootstrapServers" && $0.reason == .invalid })
        }
        let duplicate = rules.validate(input(.connection, kafkaSpec(kafkaConfig(servers: "a:1,b:2,a:1")))).errors
        XCTAssertEqual(rendered(duplicate), [#"FieldValueDuplicate spec.kafkaConfig.bootstrapServers: Duplicate value: "a:1""#])
    }

    func testPlaintextWarnings() {
        let plaintext = rules.validate(input(.connection, kafkaSpec(kafkaConfig(mechanism: "PLAIN", protocolName: "PLAINTEXT"))))
        XCTAssertTrue(plaintext.allowed)
        XCTAssertEqual(plaintext.warningTexts, [
            "spec.kafkaConfig.security.protocol: PLAINTEXT sends stream data unencrypted; use SSL",
            "spec.kafkaConfig.authentication.mechanism: PLAIN over PLAINTEXT sends the password in clear text",
        ])
        let scram = rules.validate(input(.connection, kafkaSpec(kafkaConfig(mechanism: "SCRAM-512", protocolName: "PLAINTEXT"))))
        XCTAssertEqual(scram.warningTexts, ["spec.kafkaConfig.security.protocol: PLAINTEXT sends stream data unencrypted; use SSL"])
        // Warnings come with a denial too (here: no certificate, which AKO reads for PLAINTEXT too).
        let denied = rules.validate(input(.connection, kafkaSpec(kafkaConfig(mechanism: "PLAIN", protocolName: "PLAINTEXT", certificate: nil))))
        XCTAssertEqual(rendered(denied.errors), [#"FieldValueRequired spec.kafkaConfig.security.certificate.name: Required value: the operator reads key "certificate" from this Secret for every Kafka connection"#])
        XCTAssertEqual(denied.warningTexts, plaintext.warningTexts)
    }

    func testSecretReferencePolicy() {
        let foreign = kafkaSpec(kafkaConfig(credentials: #"{"name":"creds","namespace":"kafka-credentials"}"#,
                                            certificate: #"{"name":"cert","namespace":"other"}"#))
        XCTAssertEqual(rendered(rules.validate(input(.connection, foreign)).errors), [
            #"FieldValueForbidden spec.kafkaConfig.authentication.credentials.namespace: Forbidden: may not reference a Secret in namespace "kafka-credentials"; allowed: the connection's own namespace"#,
            #"FieldValueForbidden spec.kafkaConfig.security.certificate.namespace: Forbidden: may not reference a Secret in namespace "other"; allowed: the connection's own namespace"#,
        ])
        let listed = StreamRules(configuration: RuleConfiguration(secretReferences: .allowList(["kafka-credentials"])))
        XCTAssertEqual(rendered(listed.validate(input(.connection, foreign)).errors), [
            #"FieldValueForbidden spec.kafkaConfig.security.certificate.namespace: Forbidden: may not reference a Secret in namespace "other"; allowed: the connection's own namespace, "kafka-credentials""#,
        ])
        let open = StreamRules(configuration: RuleConfiguration(secretReferences: .allowAll))
        XCTAssertTrue(open.validate(input(.connection, foreign)).allowed)
        let own = kafkaSpec(kafkaConfig(credentials: #"{"name":"creds","namespace":"team-a"}"#))
        XCTAssertTrue(rules.validate(input(.connection, own)).allowed)
    }

    func testUpdateImmutability() {
        let old = #"{"name":"sample_stream_solar","type":"Sample"}"#
        let changed = #"{"name":"c","type":"Cluster","clusterConfig":{"name":"C0","role":{"name":"atlasAdmin","type":"BUILT_IN"}}}"#
        XCTAssertEqual(rendered(rules.validate(input(.connection, changed, operation: .update, old: old)).errors), [
            #"FieldValueInvalid spec.name: Invalid value: "c": field is immutable"#,
            #"FieldValueInvalid spec.type: Invalid value: "Cluster": field is immutable"#,
        ])
        let kafkaOld = kafka
        let rotated = kafka.replacingOccurrences(of: "broker-2:9092", with: "broker-3:9092")
        XCTAssertTrue(rules.validate(input(.connection, rotated, operation: .update, old: kafkaOld)).allowed)
    }

    func testDefaults() {
        let table: [(String, String?, [String])] = [
            ("documented example is complete", kafka, []),
            ("secret namespaces", kafkaSpec(kafkaConfig()),
             ["/spec/kafkaConfig/authentication/credentials/namespace=team-a",
              "/spec/kafkaConfig/security/certificate/namespace=team-a"]),
            ("empty namespace", kafkaSpec(kafkaConfig(credentials: #"{"name":"c","namespace":""}"#, certificate: #"{"name":"","namespace":""}"#)),
             ["/spec/kafkaConfig/authentication/credentials/namespace=team-a"]),
            ("no protocol or mechanism defaults", kafkaSpec(#"{"bootstrapServers":"a:1"}"#), []),
            ("odd shapes", kafkaSpec(#"{"authentication":"x","security":{"certificate":[]}}"#), []),
            ("sample", #"{"name":"sample_stream_solar","type":"Sample"}"#, []),
        ]
        for (name, spec, expected) in table {
            XCTAssertEqual(rendered(rules.mutate(input(.connection, spec)).patch), expected, name)
        }
    }

    func testObjectThatIsNotAnObject() {
        let text = RuleInput(kind: .connection, operation: .create, object: try? JSONReader.parse(Array("\"x\"".utf8)).root,
                             oldObject: nil, requestNamespace: "team-a")
        XCTAssertEqual(rendered(rules.validate(text).errors), [#"FieldValueInvalid object: Invalid value: "x": must be a JSON object"#])
        XCTAssertTrue(rules.mutate(text).patch.isEmpty)
    }
}
