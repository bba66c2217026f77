import StreamRules

/// The subexpressions the checks share, as a policy's `variables` (evaluated at most once
/// per request, when first used). None fails on an object the CRD schema admitted: an
/// absent member reads as empty, as the webhook reads it.
enum PolicyVariables {
    /// The shape of a block the webhook calls empty when every member is (an absent,
    /// null or empty string; an object of empty members), spelled out member by member
    /// as the CRD schema has them (the API server prunes any other member).
    indirect enum Shape {
        case string
        case stringMap
        case object([(String, Shape)])
    }

    static let kafkaShape = Shape.object([
        ("bootstrapServers", .string),
        ("authentication", .object([("mechanism", .string), ("credentials", reference)])),
        ("security", .object([("protocol", .string), ("certificate", reference)])),
        ("config", .stringMap),
    ])
    static let clusterShape = Shape.object([("name", .string), ("role", roleShape)])
    static let roleShape = Shape.object([("name", .string), ("type", .string)])
    static let reference = Shape.object([("name", .string), ("namespace", .string)])

    /// CEL that is true when `expression` (present, of the shape) is empty.
    static func isEmpty(_ expression: String, _ shape: Shape) -> String {
        switch shape {
        case .string:
            return "\(expression) == ''"
        case .stringMap:
            return "\(expression).all(k, \(expression)[k] == '')"
        case .object(let members):
            return "(" + members.map { name, member in
                let value = "\(expression).?\(name)"
                switch member {
                case .string: return "\(value).orValue('') == ''"
                case .stringMap, .object: return "(!has(\(expression).\(name)) || \(isEmpty("\(expression).\(name)", member)))"
                }
            }.joined(separator: " && ") + ")"
        }
    }

    static func variables(_ kind: StreamKind, _ configuration: RuleConfiguration) -> [(String, String)] {
        var out: [(String, String)] = [
            ("isUpdate", "request.operation == 'UPDATE' && oldObject != null"),
            ("namespace", "object.metadata.?namespace.orValue('') != '' ? object.metadata.namespace : request.namespace"),
            ("specJudged", "!variables.isUpdate || has(object.spec) != has(oldObject.spec) || (has(object.spec) && object.spec != oldObject.spec)"),
            ("judgeSpec", "variables.specJudged && has(object.spec)"),
            ("spec", "object.?spec.orValue({})"),
            ("oldSpec", "variables.isUpdate ? oldObject.?spec.orValue({}) : {}"),
            ("name", "variables.spec.?name.orValue('')"),
            ("annotations", "object.metadata.?annotations.orValue({})"),
            ("oldAnnotations", "variables.isUpdate ? oldObject.metadata.?annotations.orValue({}) : {}"),
            ("labels", "object.metadata.?labels.orValue({})"),
            ("oldLabels", "variables.isUpdate ? oldObject.metadata.?labels.orValue({}) : {}"),
            ("resourceVersion", "variables.labels[?\(CEL.literal(RuleVocabulary.resourceVersionLabel))].orValue('')"),
            // The label's version without its `v` and build, its numbers, its prerelease
            // identifiers (read only once the label is known to be a version).
            ("versionCore", "(variables.resourceVersion.startsWith('v') ? variables.resourceVersion.substring(1) : variables.resourceVersion).split('+')[0]"),
            ("versionNumbers", "variables.versionCore.split('-')[0].split('.')"),
            ("versionPrerelease", "variables.versionCore.contains('-') ? variables.versionCore.split('-', 2)[1].split('.') : []"),
        ]
        switch kind {
        case .instance:
            let defaultProvider = CEL.literal(RuleVocabulary.defaultProvider)
            out += [
                ("hasClusterConfig", "has(variables.spec.clusterConfig)"),
                ("clusterConfig", "variables.spec.?clusterConfig.orValue({})"),
                ("provider", "variables.clusterConfig.?provider.orValue('') == '' ? \(defaultProvider) : variables.clusterConfig.provider"),
                ("tier", "variables.clusterConfig.?tier.orValue('') == '' ? \(CEL.literal(RuleVocabulary.defaultTier)) : variables.clusterConfig.tier"),
                ("projectRef", "variables.spec.?projectRef.orValue({})"),
                ("projectName", "variables.projectRef.?name.orValue('')"),
                ("registry", "variables.spec.?connectionRegistry.orValue([])"),
                // Entries are judged one by one only within the limit (the webhook's order).
                ("registryChecked", "size(variables.registry) <= \(RuleVocabulary.maxRegistryEntries)"),
            ]
        case .connection:
            let certificateJudged: String
            switch configuration.kafkaCertificate {
            case .always: certificateJudged = "variables.kafkaJudged && variables.hasSecurity"
            case .ssl:
                certificateJudged = "variables.kafkaJudged && variables.hasSecurity && (variables.protocol == 'SSL' "
                    + "|| (has(variables.security.certificate) && !\(isEmpty("variables.security.certificate", reference))))"
            }
            out += [
                ("type", "variables.spec.?type.orValue('')"),
                ("kafka", "variables.spec.?kafkaConfig.orValue({})"),
                ("kafkaEmpty", "!has(variables.spec.kafkaConfig) || \(isEmpty("variables.spec.kafkaConfig", kafkaShape))"),
                ("kafkaJudged", "variables.judgeSpec && variables.type == 'Kafka' && !variables.kafkaEmpty"),
                ("cluster", "variables.spec.?clusterConfig.orValue({})"),
                ("clusterEmpty", "!has(variables.spec.clusterConfig) || \(isEmpty("variables.spec.clusterConfig", clusterShape))"),
                ("clusterJudged", "variables.judgeSpec && variables.type == 'Cluster' && !variables.clusterEmpty"),
                ("clusterName", "variables.cluster.?name.orValue('')"),
                ("roleEmpty", "!has(variables.cluster.role) || \(isEmpty("variables.cluster.role", roleShape))"),
                ("roleName", "variables.cluster.?role.?name.orValue('')"),
                ("roleType", "variables.cluster.?role.?type.orValue('')"),
                ("hasAuthentication", "has(variables.kafka.authentication)"),
                ("mechanism", "variables.kafka.?authentication.?mechanism.orValue('')"),
                ("credentials", "variables.kafka.?authentication.?credentials.orValue({})"),
                ("hasSecurity", "has(variables.kafka.security)"),
                ("security", "variables.kafka.?security.orValue({})"),
                ("protocol", "variables.security.?protocol.orValue('')"),
                ("certificate", "variables.security.?certificate.orValue({})"),
                ("certificateJudged", certificateJudged),
                ("servers", "variables.kafka.?bootstrapServers.orValue('')"),
                // Commas counted without splitting: the split waits for the size checks.
                ("serverCount", "size(variables.servers) - size(variables.servers.replace(',', '')) + 1"),
                ("serversBounded", "size(bytes(variables.servers)) <= \(RuleVocabulary.maxBootstrapServersBytes) "
                    + "&& variables.serverCount <= \(RuleVocabulary.maxBootstrapServers)"),
                // Each entry's problem as the webhook words it, '' for none.
                ("serverProblems", "variables.kafkaJudged && variables.servers != '' && variables.serversBounded ? "
                    + "variables.servers.split(',').map(s, \(serverProblem("s"))) : []"),
                ("config", "variables.kafka.?config.orValue({})"),
                ("configChecked", "size(variables.config) <= \(RuleVocabulary.maxConfigKeys)"),
            ]
        }
        return out
    }

    /// What is wrong with bootstrap server entry `s`, in the webhook's order of checks.
    static func serverProblem(_ s: String) -> String {
        let host = "\(s).split(':')[0]"
        let hostValid = "(\(host) != '' && size(bytes(\(host))) <= 253 && (\(host).matches(\(CEL.literal(CEL.numericHost))) ? "
            + "\(host).matches(\(CEL.literal(CEL.ipv4Host))) : \(host).matches(\(CEL.literal(CEL.hostname)))))"
        let port = { (text: String) in "!\(text).matches(\(CEL.literal(CEL.port))) ? \(CEL.literal(RuleVocabulary.serverPort)) : ''" }
        return "\(s) == '' ? \(CEL.literal(RuleVocabulary.serverEmpty)) "
            + ": \(s).matches('[\\\\t\\\\n\\\\x0B\\\\f\\\\r ]') ? \(CEL.literal(RuleVocabulary.serverSpaces)) "
            + ": \(s).contains('://') ? \(CEL.literal(RuleVocabulary.serverScheme)) "
            + ": \(s).startsWith('[') ? (!\(s).matches('^\\\\[[^\\\\]]*\\\\]:') ? \(CEL.literal(RuleVocabulary.serverNotHostPort)) "
            + ": !\(s).matches(\(CEL.literal(CEL.bracketedIPv6))) ? \(CEL.literal(RuleVocabulary.serverHost)) "
            + ": \(port("\(s).split(']:', 2)[1]"))) "
            + ": !\(s).contains(':') ? \(CEL.literal(RuleVocabulary.serverNotHostPort)) "
            + ": size(\(s).split(':')) > 2 ? \(CEL.literal(RuleVocabulary.serverUnbracketedIPv6)) "
            + ": !\(hostValid) ? \(CEL.literal(RuleVocabulary.serverHost)) "
            + ": \(port("\(s).split(':')[1]"))"
    }
}
