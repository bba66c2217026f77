/// The stable name of a rule: kebab-case, never changed once released (logs, metrics,
/// reports, per-rule settings and generated policies name rules by it).
public enum RuleID: String, Sendable, CaseIterable, Hashable {
    // Any object
    case objectRequired = "object-required"
    case fieldType = "field-type"
    case specRequired = "spec-required"
    // The operator's annotations and label
    case resourcePolicySupported = "resource-policy-supported"
    case reconciliationPolicySupported = "reconciliation-policy-supported"
    case resourceVersionPolicySupported = "resource-version-policy-supported"
    case resourceVersionFormat = "resource-version-format"
    case resourceVersionNotNewer = "resource-version-not-newer"
    // AtlasStreamInstance
    case instanceNameRequired = "instance-name-required"
    case instanceNameFormat = "instance-name-format"
    case instanceNameImmutable = "instance-name-immutable"
    case instanceClusterConfigRequired = "instance-cluster-config-required"
    case instanceProviderSupported = "instance-provider-supported"
    case instanceRegionSupported = "instance-region-supported"
    case instanceTierSupported = "instance-tier-supported"
    case instanceTierNotApplied = "instance-tier-not-applied"
    case projectRefRequired = "project-ref-required"
    case projectRefFormat = "project-ref-format"
    case projectRefImmutable = "project-ref-immutable"
    case registrySize = "registry-size"
    case registryEntryRequired = "registry-entry-required"
    case registryEntryFormat = "registry-entry-format"
    case registryNamespaceAllowed = "registry-namespace-allowed"
    case registryEntryUnique = "registry-entry-unique"
    // AtlasStreamConnection
    case connectionNameRequired = "connection-name-required"
    case connectionNameImmutable = "connection-name-immutable"
    case connectionTypeSupported = "connection-type-supported"
    case connectionTypeImmutable = "connection-type-immutable"
    case connectionConfigRequired = "connection-config-required"
    case connectionConfigMatchesType = "connection-config-matches-type"
    case sampleSourceSupported = "sample-source-supported"
    case clusterNameRequired = "cluster-name-required"
    case clusterNameFormat = "cluster-name-format"
    case clusterRoleRequired = "cluster-role-required"
    case clusterRoleTypeSupported = "cluster-role-type-supported"
    case clusterBuiltInRoleSupported = "cluster-built-in-role-supported"
    case bootstrapServersRequired = "bootstrap-servers-required"
    case bootstrapServersSize = "bootstrap-servers-size"
    case bootstrapServersFormat = "bootstrap-servers-format"
    case bootstrapServersPortRange = "bootstrap-servers-port-range"
    case bootstrapServersUnique = "bootstrap-servers-unique"
    case kafkaAuthenticationRequired = "kafka-authentication-required"
    case kafkaMechanismSupported = "kafka-mechanism-supported"
    case kafkaCredentialsRequired = "kafka-credentials-required"
    case kafkaSecurityRequired = "kafka-security-required"
    case kafkaProtocolSupported = "kafka-protocol-supported"
    case kafkaCertificateRequired = "kafka-certificate-required"
    case secretReferenceFormat = "secret-reference-format"
    case secretNamespaceAllowed = "secret-namespace-allowed"
    case kafkaConfigSize = "kafka-config-size"
    case kafkaConfigKeyNotEmpty = "kafka-config-key-not-empty"
    case kafkaConfigNoTypedFields = "kafka-config-no-typed-fields"
    case kafkaProtocolEncrypted = "kafka-protocol-encrypted"
    case kafkaPasswordEncrypted = "kafka-password-encrypted"
    // What the object references, judged against the cluster cache
    case credentialsSecretFound = "credentials-secret-found"
    case certificateSecretFound = "certificate-secret-found"
    case secretLabelledForOperator = "secret-labelled-for-operator"
    case secretKeysPresent = "secret-keys-present"
    case projectFound = "project-found"
    case registryConnectionFound = "registry-connection-found"
    case registrySpecNameUnique = "registry-spec-name-unique"
    case referenceNamespaceWatched = "reference-namespace-watched"
    case connectionNotInRegistry = "connection-not-in-registry"
    case clusterCacheReady = "cluster-cache-ready"

    /// The id's place in `allCases`, for tables indexed by rule (a lookup hashes the
    /// case, not its text, and allocates nothing).
    public var ordinal: Int { RuleID.ordinals[self] ?? 0 }

    private static let ordinals = Dictionary(uniqueKeysWithValues: allCases.enumerated().map { ($1, $0) })
}

/// One rule as data: what it concerns, what it reports, and why. The checks are code
/// that names their rule; this is what everything outside the code reads (the rules
/// documentation, metrics, reports, per-rule settings, a generated policy).
public struct Rule: Sendable {
    /// What a finding of the rule costs by default.
    public enum Severity: String, Sendable {
        /// The request is refused.
        case deny
        /// The request is admitted with a warning.
        case warn
    }

    public let id: RuleID
    public let kinds: [StreamKind]
    public let operations: [AdmissionOperation]
    public let severity: Severity
    /// The field it reports, as apimachinery renders a path (`[*]` for any entry,
    /// `[<key>]` for a map key).
    public let field: String
    /// The message after `<field>: `, with `<value>` and the like for what varies.
    public let message: String
    /// One line: what must hold.
    public let summary: String
    /// What AKO does that makes the rule worth having.
    public let motivation: String
    /// A manifest fragment or situation the rule speaks on.
    public let example: String
    /// Judged against the cluster cache (the object's references), not the object alone.
    public let needsCluster: Bool

    /// Every rule, in the order of `RuleID`.
    public static let catalogue: [Rule] = RuleID.allCases.map(\.rule)
}

private let bothKinds: [StreamKind] = [.instance, .connection]
private let instanceOnly: [StreamKind] = [.instance]
private let connectionOnly: [StreamKind] = [.connection]
private let writes: [AdmissionOperation] = [.create, .update]
private let creates: [AdmissionOperation] = [.create]
private let updates: [AdmissionOperation] = [.update]

private func deny(_ id: RuleID, _ kinds: [StreamKind], _ operations: [AdmissionOperation] = writes, field: String,
                  message: String, summary: String, motivation: String, example: String, needsCluster: Bool = false) -> Rule {
    Rule(id: id, kinds: kinds, operations: operations, severity: .deny, field: field, message: message,
         summary: summary, motivation: motivation, example: example, needsCluster: needsCluster)
}

private func warn(_ id: RuleID, _ kinds: [StreamKind], _ operations: [AdmissionOperation] = writes, field: String,
                  message: String, summary: String, motivation: String, example: String, needsCluster: Bool = false) -> Rule {
    Rule(id: id, kinds: kinds, operations: operations, severity: .warn, field: field, message: message,
         summary: summary, motivation: motivation, example: example, needsCluster: needsCluster)
}

private let notReconciled = "AKO cannot reconcile the resource; the failure shows only later, in its status."
private let immutable = "AKO does not rename or move the Atlas object; the change is never applied."

extension RuleID {
    /// The rule's declaration: one case each, so a new id does not compile without one.
    public var rule: Rule {
        switch self {
        case .objectRequired:
            deny(self, bothKinds, field: "object", message: "Required value | Invalid value: <value>: must be a JSON object",
                 summary: "The review carries the object, as a JSON object.",
                 motivation: "Without an object there is nothing for the operator to reconcile.",
                 example: "a review whose `request.object` is missing or `[]`")
        case .fieldType:
            deny(self, bothKinds, field: "<any field>", message: "Invalid value: <value>: must be a string | an object | an array",
                 summary: "Every field the rules read holds the JSON type of AKO's schema.",
                 motivation: "AKO decodes the resource into Go types; a value of another type fails decoding and is never reconciled.",
                 example: "`spec: {name: 7}` (a number where a string belongs)")
        case .specRequired:
            deny(self, bothKinds, field: "spec", message: "Required value",
                 summary: "The resource has a spec.", motivation: notReconciled,
                 example: "an AtlasStreamConnection with no `spec`")

        case .resourcePolicySupported:
            deny(self, bothKinds, field: "metadata.annotations[mongodb.com/atlas-resource-policy]",
                 message: #"Unsupported value: "<value>": supported values: "keep", "delete""#,
                 summary: "The resource policy annotation is keep or delete, as AKO spells them.",
                 motivation: "AKO silently ignores a value it does not know: with `Keep` the Atlas object is deleted with the resource.",
                 example: "`mongodb.com/atlas-resource-policy: Keep`")
        case .reconciliationPolicySupported:
            deny(self, bothKinds, field: "metadata.annotations[mongodb.com/atlas-reconciliation-policy]",
                 message: #"Unsupported value: "<value>": supported values: "skip""#,
                 summary: "The reconciliation policy annotation is skip.",
                 motivation: "AKO silently ignores another value and goes on reconciling the resource.",
                 example: "`mongodb.com/atlas-reconciliation-policy: Skip`")
        case .resourceVersionPolicySupported:
            deny(self, bothKinds, field: "metadata.annotations[mongodb.com/atlas-resource-version-policy]",
                 message: #"Unsupported value: "<value>": supported values: "allow""#,
                 summary: "The resource version policy annotation is allow.",
                 motivation: "AKO silently ignores another value and keeps refusing newer resource versions.",
                 example: "`mongodb.com/atlas-resource-version-policy: yes`")
        case .resourceVersionFormat:
            deny(self, bothKinds, field: "metadata.labels[mongodb.com/atlas-resource-version]",
                 message: "Invalid value: \"<value>\": must be a semantic version such as 2.15.1",
                 summary: "The resource version label is a semantic version.",
                 motivation: "AKO compares the label with its own version and stops reconciling a resource whose label it cannot parse.",
                 example: "`mongodb.com/atlas-resource-version: two`")
        case .resourceVersionNotNewer:
            deny(self, bothKinds, field: "metadata.labels[mongodb.com/atlas-resource-version]",
                 message: "Invalid value: \"<value>\": newer than the operator version \"<version>\"; AKO will not reconcile it",
                 summary: "The resource version label is not newer than the operator, unless the version policy allows it.",
                 motivation: "AKO does not reconcile a resource labelled for a newer operator.",
                 example: "label `9.0.0` with `rules.operatorVersion: 2.5.0`")

        case .instanceNameRequired:
            deny(self, instanceOnly, field: "spec.name", message: "Required value",
                 summary: "An instance names its Atlas stream processing instance.", motivation: notReconciled,
                 example: "an instance `spec` without `name`")
        case .instanceNameFormat:
            deny(self, instanceOnly, field: "spec.name",
                 message: "Invalid value: \"<value>\": must contain only ASCII letters, digits and '-'",
                 summary: "The instance name uses only ASCII letters, digits and '-'.",
                 motivation: "Atlas refuses other names; AKO reports the refusal only in the resource's status.",
                 example: "`spec.name: my_instance`")
        case .instanceNameImmutable:
            deny(self, instanceOnly, updates, field: "spec.name", message: "Invalid value: \"<value>\": field is immutable",
                 summary: "The instance name does not change.", motivation: immutable,
                 example: "an UPDATE changing `spec.name` from `i` to `j`")
        case .instanceClusterConfigRequired:
            deny(self, instanceOnly, field: "spec.clusterConfig", message: "Required value",
                 summary: "An instance has a clusterConfig (defaulting fills provider and tier).",
                 motivation: "AKO sends the provider and region to Atlas; without them the instance is never created.",
                 example: "`spec.clusterConfig: null`")
        case .instanceProviderSupported:
            deny(self, instanceOnly, field: "spec.clusterConfig.provider",
                 message: "Unsupported value: \"<value>\": supported values: <providers>",
                 summary: "The provider is one Atlas Stream Processing runs on.",
                 motivation: "Atlas refuses another provider; AKO reports it only in the resource's status.",
                 example: "`clusterConfig.provider: TENANT`")
        case .instanceRegionSupported:
            deny(self, instanceOnly, field: "spec.clusterConfig.region",
                 message: "Required value | Unsupported value: \"<value>\": supported values: <regions of the provider>",
                 summary: "The region is set and is one of the provider's stream processing regions.",
                 motivation: "Atlas refuses another region; AKO reports it only in the resource's status.",
                 example: "`provider: AWS, region: eastus` (an Azure region)")
        case .instanceTierSupported:
            deny(self, instanceOnly, field: "spec.clusterConfig.tier",
                 message: "Unsupported value: \"<value>\": supported values: \"SP10\", \"SP30\", \"SP50\"",
                 summary: "The tier is SP10, SP30 or SP50.", motivation: notReconciled,
                 example: "`clusterConfig.tier: SP20`")
        case .instanceTierNotApplied:
            warn(self, instanceOnly, field: "spec.clusterConfig.tier",
                 message: "not applied: AKO does not send the tier to Atlas",
                 summary: "A tier other than the default on create, or a changed tier on update, is warned of.",
                 motivation: "AKO (v2.x) sends the provider and region to Atlas, never the tier: the instance keeps SP10.",
                 example: "`clusterConfig.tier: SP30` on create")
        case .projectRefRequired:
            deny(self, instanceOnly, field: "spec.projectRef", message: "Required value",
                 summary: "An instance names the AtlasProject it belongs to.", motivation: notReconciled,
                 example: "an instance without `projectRef`")
        case .projectRefFormat:
            deny(self, instanceOnly, field: "spec.projectRef.name | spec.projectRef.namespace",
                 message: "Invalid value: \"<value>\": a lowercase RFC 1123 subdomain (name) or label (namespace) ...",
                 summary: "The project reference is a valid object name and namespace.",
                 motivation: "AKO cannot look up a project by a name Kubernetes would never accept.",
                 example: "`projectRef: {name: My_Project}`")
        case .projectRefImmutable:
            deny(self, instanceOnly, updates, field: "spec.projectRef.name | spec.projectRef.namespace",
                 message: "Invalid value: \"<value>\": field is immutable",
                 summary: "The instance does not move to another project.", motivation: immutable,
                 example: "an UPDATE moving `projectRef.name` from `proj` to `other`")
        case .registrySize:
            deny(self, instanceOnly, field: "spec.connectionRegistry",
                 message: "Too many: <count>: must have at most 1000 items",
                 summary: "The registry has at most 1000 entries.",
                 motivation: "Each entry is one Atlas call per reconciliation; the bound keeps answers and reconciliations finite.",
                 example: "1,001 entries in `connectionRegistry`")
        case .registryEntryRequired:
            deny(self, instanceOnly, field: "spec.connectionRegistry[*] | spec.connectionRegistry[*].name",
                 message: "Required value",
                 summary: "Every registry entry names a connection.", motivation: notReconciled,
                 example: "`connectionRegistry: [null]`")
        case .registryEntryFormat:
            deny(self, instanceOnly, field: "spec.connectionRegistry[*].name | spec.connectionRegistry[*].namespace",
                 message: "Invalid value: \"<value>\": a lowercase RFC 1123 subdomain (name) or label (namespace) ...",
                 summary: "Every registry entry is a valid object name and namespace.",
                 motivation: "AKO cannot look up a connection by a name Kubernetes would never accept.",
                 example: "`connectionRegistry: [{name: Kafka_1}]`")
        case .registryNamespaceAllowed:
            deny(self, instanceOnly, field: "spec.connectionRegistry[*].namespace",
                 message: "Forbidden: may not reference an AtlasStreamConnection in namespace \"<namespace>\"; allowed: <namespaces>",
                 summary: "Registry entries point only into namespaces the registry policy allows.",
                 motivation: "AKO reads any namespace it watches: without a policy one team's instance can use another team's connections.",
                 example: "`{name: c1, namespace: other-team}` with `registryReferences.policy: deny`")
        case .registryEntryUnique:
            deny(self, instanceOnly, field: "spec.connectionRegistry[*]", message: "Duplicate value: \"<namespace>/<name>\"",
                 summary: "No connection is listed twice.",
                 motivation: "AKO creates each entry in Atlas; the second of two equal entries fails the whole reconciliation.",
                 example: "`[{name: c1}, {name: c1}]`")

        case .connectionNameRequired:
            deny(self, connectionOnly, field: "spec.name", message: "Required value",
                 summary: "A connection names its Atlas connection.", motivation: notReconciled,
                 example: "a connection `spec` without `name`")
        case .connectionNameImmutable:
            deny(self, connectionOnly, updates, field: "spec.name", message: "Invalid value: \"<value>\": field is immutable",
                 summary: "The connection name does not change.", motivation: immutable,
                 example: "an UPDATE changing `spec.name`")
        case .connectionTypeSupported:
            deny(self, connectionOnly, field: "spec.type",
                 message: "Required value | Unsupported value: \"<value>\": supported values: \"Kafka\", \"Cluster\", \"Sample\"",
                 summary: "The type is set and is Kafka, Cluster or Sample.", motivation: notReconciled,
                 example: "`type: Kinesis`")
        case .connectionTypeImmutable:
            deny(self, connectionOnly, updates, field: "spec.type", message: "Invalid value: \"<value>\": field is immutable",
                 summary: "The connection type does not change.", motivation: immutable,
                 example: "an UPDATE from `type: Kafka` to `type: Sample`")
        case .connectionConfigRequired:
            deny(self, connectionOnly, field: "spec.kafkaConfig | spec.clusterConfig", message: "Required value",
                 summary: "The configuration block of the connection's type is set.",
                 motivation: "AKO builds the Atlas connection from that block; without it the connection is never created.",
                 example: "`type: Kafka` without `kafkaConfig`")
        case .connectionConfigMatchesType:
            deny(self, connectionOnly, field: "spec.kafkaConfig | spec.clusterConfig",
                 message: "Forbidden: may not be set when spec.type is <type>",
                 summary: "No configuration block of another type is set.",
                 motivation: "AKO silently ignores the other block: what it says is never applied.",
                 example: "`type: Cluster` with a `kafkaConfig` block")
        case .sampleSourceSupported:
            deny(self, connectionOnly, field: "spec.name",
                 message: "Unsupported value: \"<value>\": supported values: <sample sources>",
                 summary: "A Sample connection names a sample source Atlas offers.",
                 motivation: "Atlas refuses other names for a Sample connection.",
                 example: "`type: Sample, name: sample_stream_lunar`")
        case .clusterNameRequired:
            deny(self, connectionOnly, field: "spec.clusterConfig.name", message: "Required value",
                 summary: "A Cluster connection names its Atlas cluster.", motivation: notReconciled,
                 example: "`clusterConfig: {role: ...}` without `name`")
        case .clusterNameFormat:
            deny(self, connectionOnly, field: "spec.clusterConfig.name",
                 message: "Invalid value: \"<value>\": must contain only ASCII letters, digits and '-' | Too long: may not be more than 64 bytes",
                 summary: "The cluster name is an Atlas cluster name: ASCII letters, digits and '-', at most 64 bytes.",
                 motivation: "Atlas has no cluster by another name; the connection fails only in Atlas.",
                 example: "`clusterConfig.name: Cluster_0`")
        case .clusterRoleRequired:
            deny(self, connectionOnly, field: "spec.clusterConfig.role | spec.clusterConfig.role.name", message: "Required value",
                 summary: "A Cluster connection names the database role it runs as.", motivation: notReconciled,
                 example: "`clusterConfig: {name: Cluster0}` without `role`")
        case .clusterRoleTypeSupported:
            deny(self, connectionOnly, field: "spec.clusterConfig.role.type",
                 message: "Required value | Unsupported value: \"<value>\": supported values: \"BUILT_IN\", \"CUSTOM\"",
                 summary: "The role type is BUILT_IN or CUSTOM.", motivation: notReconciled,
                 example: "`role.type: SOMETIMES`")
        case .clusterBuiltInRoleSupported:
            deny(self, connectionOnly, field: "spec.clusterConfig.role.name",
                 message: "Unsupported value: \"<value>\": supported values: <built-in roles>",
                 summary: "A BUILT_IN role is one of the built-in roles a stream connection may use.",
                 motivation: "Atlas refuses other built-in role names.",
                 example: "`role: {name: root, type: BUILT_IN}`")
        case .bootstrapServersRequired:
            deny(self, connectionOnly, field: "spec.kafkaConfig.bootstrapServers", message: "Required value",
                 summary: "A Kafka connection lists its bootstrap servers.", motivation: notReconciled,
                 example: "`kafkaConfig` without `bootstrapServers`")
        case .bootstrapServersSize:
            deny(self, connectionOnly, field: "spec.kafkaConfig.bootstrapServers",
                 message: "Too long: may not be more than 16384 bytes | Too many: <count>: must have at most 256 items",
                 summary: "At most 256 servers in at most 16 KiB.",
                 motivation: "Bounds what one object costs to check and to send to Atlas.",
                 example: "257 comma-separated servers")
        case .bootstrapServersFormat:
            deny(self, connectionOnly, field: "spec.kafkaConfig.bootstrapServers",
                 message: "Invalid value: \"<entry>\": must be host:port | must be host:port without a scheme | must not contain spaces | ...",
                 summary: "Every comma-separated entry is host:port: an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address, no scheme, no spaces.",
                 motivation: "Kafka clients in Atlas cannot connect to another form; the connection fails only at processing time.",
                 example: "`bootstrapServers: SASL_SSL://broker:9092`")
        case .bootstrapServersPortRange:
            deny(self, connectionOnly, field: "spec.kafkaConfig.bootstrapServers",
                 message: "Invalid value: \"<entry>\": port must be a number from 1 to 65535",
                 summary: "Every bootstrap server's port is a number from 1 to 65535.",
                 motivation: "No Kafka broker listens on another port; the connection fails only at processing time.",
                 example: "`bootstrapServers: broker:65536`")
        case .bootstrapServersUnique:
            deny(self, connectionOnly, field: "spec.kafkaConfig.bootstrapServers", message: "Duplicate value: \"<entry>\"",
                 summary: "No server is listed twice (host names compare case-insensitively).",
                 motivation: "A repeated server is a copy-paste mistake that hides a missing one.",
                 example: "`bootstrapServers: broker:9092,BROKER:9092`")
        case .kafkaAuthenticationRequired:
            deny(self, connectionOnly, field: "spec.kafkaConfig.authentication", message: "Required value",
                 summary: "A Kafka connection says how it authenticates.", motivation: notReconciled,
                 example: "`kafkaConfig` without `authentication`")
        case .kafkaMechanismSupported:
            deny(self, connectionOnly, field: "spec.kafkaConfig.authentication.mechanism",
                 message: "Required value | Unsupported value: \"<value>\": supported values: \"PLAIN\", \"SCRAM-256\", \"SCRAM-512\"",
                 summary: "The SASL mechanism is PLAIN, SCRAM-256 or SCRAM-512.", motivation: notReconciled,
                 example: "`authentication.mechanism: GSSAPI`")
        case .kafkaCredentialsRequired:
            deny(self, connectionOnly, field: "spec.kafkaConfig.authentication.credentials.name", message: "Required value",
                 summary: "A Kafka connection names the Secret holding its username and password.",
                 motivation: "AKO reads the username and password from that Secret; without it the connection is never created.",
                 example: "`authentication: {mechanism: PLAIN}` without `credentials`")
        case .kafkaSecurityRequired:
            deny(self, connectionOnly, field: "spec.kafkaConfig.security", message: "Required value",
                 summary: "A Kafka connection says how it is secured.", motivation: notReconciled,
                 example: "`kafkaConfig` without `security`")
        case .kafkaProtocolSupported:
            deny(self, connectionOnly, field: "spec.kafkaConfig.security.protocol",
                 message: "Required value | Unsupported value: \"<value>\": supported values: \"PLAINTEXT\", \"SSL\"",
                 summary: "The security protocol is PLAINTEXT or SSL.", motivation: notReconciled,
                 example: "`security.protocol: TLS`")
        case .kafkaCertificateRequired:
            deny(self, connectionOnly, field: "spec.kafkaConfig.security.certificate.name",
                 message: "Required value: the operator reads key \"certificate\" from this Secret for every Kafka connection "
                     + "(with rules.kafkaCertificate ssl: required when spec.kafkaConfig.security.protocol is SSL)",
                 summary: "A Kafka connection names the Secret holding its certificate (every Kafka connection, or SSL ones only, as configured).",
                 motivation: "AKO (v2.x) reads key \"certificate\" from this Secret for every Kafka connection and fails without it.",
                 example: "`security: {protocol: SSL}` without `certificate`")
        case .secretReferenceFormat:
            deny(self, connectionOnly,
                 field: "spec.kafkaConfig.authentication.credentials | spec.kafkaConfig.security.certificate",
                 message: "Invalid value: \"<value>\": a lowercase RFC 1123 subdomain (name) or label (namespace) ...",
                 summary: "Secret references are valid object names and namespaces.",
                 motivation: "AKO cannot read a Secret by a name Kubernetes would never accept.",
                 example: "`credentials: {name: Kafka_Creds}`")
        case .secretNamespaceAllowed:
            deny(self, connectionOnly,
                 field: "spec.kafkaConfig.authentication.credentials.namespace | spec.kafkaConfig.security.certificate.namespace",
                 message: "Forbidden: may not reference a Secret in namespace \"<namespace>\"; allowed: <namespaces>",
                 summary: "Secret references stay in the connection's namespace, or those the secret policy allows.",
                 motivation: "AKO reads Secrets in any namespace it watches: without a policy one team's connection can use another team's credentials.",
                 example: "`credentials: {name: creds, namespace: team-b}` from namespace `team-a`")
        case .kafkaConfigSize:
            deny(self, connectionOnly, field: "spec.kafkaConfig.config", message: "Too many: <count>: must have at most 256 items",
                 summary: "At most 256 Kafka client settings.", motivation: "Bounds what one object costs to check and to send to Atlas.",
                 example: "257 keys in `kafkaConfig.config`")
        case .kafkaConfigKeyNotEmpty:
            deny(self, connectionOnly, field: "spec.kafkaConfig.config", message: "Invalid value: \"\": keys must not be empty",
                 summary: "No Kafka client setting has an empty name.", motivation: "Atlas refuses a setting without a name.",
                 example: "`config: {\"\": v}`")
        case .kafkaConfigNoTypedFields:
            deny(self, connectionOnly, field: "spec.kafkaConfig.config[<key>]",
                 message: "Forbidden: overrides a typed field; set <field> instead",
                 summary: "Settings with a typed field of their own (bootstrap.servers, security.protocol, sasl.*) are set there, not in config.",
                 motivation: "Two sources for one setting: which wins is up to Atlas, and a password in config is no Secret.",
                 example: "`config: {sasl.password: hunter2}`")
        case .kafkaProtocolEncrypted:
            warn(self, connectionOnly, field: "spec.kafkaConfig.security.protocol",
                 message: "PLAINTEXT sends stream data unencrypted; use SSL",
                 summary: "A PLAINTEXT Kafka connection is warned of.",
                 motivation: "Stream data crosses the network unencrypted.",
                 example: "`security.protocol: PLAINTEXT`")
        case .kafkaPasswordEncrypted:
            warn(self, connectionOnly, field: "spec.kafkaConfig.authentication.mechanism",
                 message: "PLAIN over PLAINTEXT sends the password in clear text",
                 summary: "SASL PLAIN over a PLAINTEXT connection is warned of.",
                 motivation: "The Kafka password crosses the network in clear text.",
                 example: "`mechanism: PLAIN` with `protocol: PLAINTEXT`")

        case .credentialsSecretFound:
            warn(self, connectionOnly, field: "spec.kafkaConfig.authentication.credentials",
                 message: "Secret <namespace>/<name> not found | Not found: \"<namespace>/<name>\"",
                 summary: "The credentials Secret a connection names exists in the cluster.",
                 motivation: "AKO fails the connection until the Secret appears; warned by default, since GitOps tools may create it later.",
                 example: "`credentials: {name: creds}` with no Secret `creds` in the namespace", needsCluster: true)
        case .certificateSecretFound:
            warn(self, connectionOnly, field: "spec.kafkaConfig.security.certificate",
                 message: "Secret <namespace>/<name> not found | Not found: \"<namespace>/<name>\"",
                 summary: "The certificate Secret a connection names exists in the cluster.",
                 motivation: "AKO fails the connection until the Secret appears; warned by default, since GitOps tools may create it later.",
                 example: "`certificate: {name: cert}` with no Secret `cert` in the namespace", needsCluster: true)
        case .secretLabelledForOperator:
            warn(self, connectionOnly,
                 field: "spec.kafkaConfig.authentication.credentials | spec.kafkaConfig.security.certificate",
                 message: "Secret <namespace>/<name> lacks label atlas.mongodb.com/type=credentials",
                 summary: "A referenced Secret carries the label AKO selects Secrets by.",
                 motivation: "AKO watches only Secrets labelled atlas.mongodb.com/type=credentials and never sees another.",
                 example: "a Secret `creds` without label `atlas.mongodb.com/type: credentials`", needsCluster: true)
        case .secretKeysPresent:
            warn(self, connectionOnly,
                 field: "spec.kafkaConfig.authentication.credentials[<key>] | spec.kafkaConfig.security.certificate[<key>]",
                 message: "Secret <namespace>/<name> has no key \"<key>\"",
                 summary: "The credentials Secret holds username and password, the certificate Secret holds certificate.",
                 motivation: "AKO reads those keys and fails the connection without them.", example: "a credentials Secret holding `username` but no `password`", needsCluster: true)
        case .projectFound:
            warn(self, instanceOnly, field: "spec.projectRef",
                 message: "AtlasProject <namespace>/<name> not found | Not found: \"<namespace>/<name>\"",
                 summary: "The AtlasProject an instance names exists in the cluster.",
                 motivation: "AKO cannot create the instance without its project.", example: "`projectRef: {name: proj}` with no AtlasProject `proj`", needsCluster: true)
        case .registryConnectionFound:
            warn(self, instanceOnly, field: "spec.connectionRegistry[*]",
                 message: "AtlasStreamConnection <namespace>/<name> not found | Not found: \"<namespace>/<name>\"",
                 summary: "Every connection an instance lists exists in the cluster.",
                 motivation: "AKO fails the instance's registry until the connection appears.", example: "`connectionRegistry: [{name: c9}]` with no connection `c9`", needsCluster: true)
        case .registrySpecNameUnique:
            deny(self, instanceOnly, field: "spec.connectionRegistry[*].name",
                 message: "Invalid value: \"<name>\": its spec.name \"<spec name>\" is already used by spec.connectionRegistry[<i>]",
                 summary: "No two listed connections share a spec.name.",
                 motivation: "Atlas names connections by spec.name within an instance; the second one fails the registry.",
                 example: "two listed connections whose `spec.name` is `events`", needsCluster: true)
        case .referenceNamespaceWatched:
            warn(self, bothKinds, field: "<the reference>", message: "namespace <namespace> is not watched by the operator",
                 summary: "A reference points into a namespace the operator watches.",
                 motivation: "AKO never sees objects outside its watched namespaces; the reference can never resolve.",
                 example: "a reference into a namespace outside `cluster.watchNamespaces`", needsCluster: true)
        case .connectionNotInRegistry:
            deny(self, connectionOnly, [.delete], field: "metadata.name",
                 message: "listed in spec.connectionRegistry of AtlasStreamInstance <instances>; remove it there first",
                 summary: "A connection an instance still lists is not deleted.",
                 motivation: "AKO's finalizer keeps the connection in Terminating until no instance lists it.", example: "`kubectl delete atlasstreamconnection c1` while an instance lists `c1`", needsCluster: true)
        case .clusterCacheReady:
            warn(self, bothKinds, [.create, .update, .delete], field: "<the references>",
                 message: "cluster lookups are not ready; references were not checked",
                 summary: "Rules that need the cluster judge only from a synced, fresh cache; otherwise they say so.",
                 motivation: "A verdict from an unsynced or stale cache would be a guess.", example: "a review with references while the cache has not listed Secrets yet", needsCluster: true)
        }
    }
}
