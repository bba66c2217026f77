import StreamRules

/// One CEL check of a rule: when `violation` holds, the object breaks the rule and
/// `message` (a CEL string expression) is what the webhook would say, `<field>: <body>`,
/// naming the entry or key at fault (a policy's own `fieldPath` is static and v1's
/// Validation has none).
public struct PolicyCheck: Sendable, Equatable {
    public let violation: String
    public let message: String
}

/// Whether a generated policy can hold a rule, and how.
public enum PolicyCoverage: Sendable, Equatable {
    /// Its checks; none where the configuration makes the rule say nothing.
    case covered([PolicyCheck])
    /// Why no policy can hold it.
    case notCovered(String)

    public var isCovered: Bool {
        if case .covered = self { return true }
        return false
    }
}

private let needsCluster = "needs the cluster: it reads other objects (the cluster cache), which a policy evaluated on "
    + "the object alone cannot see"
private let schemaRefuses = "the CRD's structural schema refuses it before any validating admission runs, "
    + "so a policy never sees such an object"
private let quadratic = "finding a repeated entry needs a set; CEL in Kubernetes 1.30 can build none from a list "
    + "(no map construction, no sort), and comparing every entry with every other is quadratic"

private func ref(_ path: String) -> String { "variables.\(path)" }

/// `field: Required value`.
private func required(_ field: String) -> String { CEL.literal("\(field): Required value") }

/// `field: Invalid value: "<value>": detail` with the value echoed as the webhook echoes it.
private func invalid(_ field: String, _ value: String, _ detail: String) -> String {
    "\(CEL.literal("\(field): Invalid value: ")) + \(CEL.quoted(value)) + \(CEL.literal(": " + detail))"
}

/// `field: Unsupported value: "<value>": supported values: ...`.
private func unsupported(_ field: String, _ value: String, _ supported: [String]) -> String {
    "\(CEL.literal("\(field): Unsupported value: ")) + \(CEL.quoted(value)) + "
        + CEL.literal(": supported values: " + CEL.supported(supported))
}

/// A namespace's first fault as the webhook reports it (too long, then not a label).
private func labelFault(_ value: String) -> String {
    "(size(bytes(\(value))) > 63 ? \(CEL.literal("must be no more than 63 characters")) : \(CEL.literal(RuleVocabulary.labelMessage)))"
}

private func labelBad(_ value: String) -> String {
    "(\(value) != '' && (size(bytes(\(value))) > 63 || !\(value).matches(\(CEL.literal(CEL.dnsLabel)))))"
}

/// A name's first fault as the webhook reports it (too long, then not a subdomain).
private func subdomainFault(_ value: String) -> String {
    "(size(bytes(\(value))) > 253 ? \(CEL.literal("must be no more than 253 characters")) : "
        + "\(CEL.literal(RuleVocabulary.subdomainMessage)))"
}

private func subdomainBad(_ value: String) -> String {
    "(\(value) != '' && (size(bytes(\(value))) > 253 || !\(value).matches(\(CEL.literal(CEL.dnsSubdomain)))))"
}

/// The index of the first element of `list` for which `condition` (over `e`) holds, in
/// one pass (a list's index is not at hand in a CEL macro).
private func firstIndex(_ list: String, where condition: String) -> String {
    "\(list).map(e, (\(condition)) ? 'x' : '.').join('').indexOf('x')"
}

/// `body` of the first element of `list` satisfying `condition` (over `e`), with `i` its index.
private func withFirst(_ list: String, where condition: String, _ body: (_ entry: String) -> String) -> String {
    "[\(firstIndex(list, where: condition))].map(i, \(body("\(list)[i]")))[0]"
}

/// Annotation or label `key`, judged on CREATE and on UPDATE when its value changed.
private func changedMetadata(_ map: String, _ key: String) -> String {
    let value = "\(ref(map))[?\(CEL.literal(key))].orValue('')"
    let old = "\(ref("old" + map.prefix(1).uppercased() + map.dropFirst()))[?\(CEL.literal(key))].orValue('')"
    return "\(value) != '' && (!variables.isUpdate || \(value) != \(old))"
}

private func annotationRule(_ key: String, _ values: [String]) -> PolicyCoverage {
    let value = "variables.annotations[?\(CEL.literal(key))].orValue('')"
    let field = "metadata.annotations[\(key)]"
    return .covered([PolicyCheck(violation: "\(changedMetadata("annotations", key)) && !(\(value) in \(CEL.list(values)))",
                                 message: unsupported(field, value, values))])
}

extension RuleID {
    /// What a generated admission policy holds of the rule under `configuration`: one case
    /// per rule, so a new rule does not compile without a decision.
    public func policyCoverage(_ configuration: RuleConfiguration) -> PolicyCoverage {
        let spec = "variables.judgeSpec"
        switch self {
        case .objectRequired:
            return .notCovered("the API server hands every policy a decoded object on CREATE and UPDATE")
        case .fieldType:
            return .notCovered(schemaRefuses)
        case .specRequired:
            return .covered([PolicyCheck(violation: "variables.specJudged && !has(object.spec)",
                                         message: required("spec"))])

        case .resourcePolicySupported:
            return annotationRule(RuleVocabulary.resourcePolicyAnnotation, RuleVocabulary.resourcePolicyValues)
        case .reconciliationPolicySupported:
            return annotationRule(RuleVocabulary.reconciliationPolicyAnnotation, RuleVocabulary.reconciliationPolicyValues)
        case .resourceVersionPolicySupported:
            return annotationRule(RuleVocabulary.versionPolicyAnnotation, RuleVocabulary.versionPolicyValues)
        case .resourceVersionFormat:
            let key = RuleVocabulary.resourceVersionLabel
            return .covered([PolicyCheck(violation: "\(changedMetadata("labels", key)) && !variables.resourceVersion.matches(\(CEL.literal(CEL.semanticVersion)))",
                                         message: invalid("metadata.labels[\(key)]", "variables.resourceVersion", RuleVocabulary.versionFormatMessage))])
        case .resourceVersionNotNewer:
            guard let operatorVersion = configuration.operatorVersion else { return .covered([]) }
            let key = RuleVocabulary.resourceVersionLabel
            let allowed = "variables.annotations[?\(CEL.literal(RuleVocabulary.versionPolicyAnnotation))].orValue('') == 'allow'"
            return .covered([PolicyCheck(violation: "\(changedMetadata("labels", key)) && variables.resourceVersion.matches(\(CEL.literal(CEL.semanticVersion))) "
                                            + "&& !(\(allowed)) && \(newer(than: operatorVersion))",
                                         message: invalid("metadata.labels[\(key)]", "variables.resourceVersion",
                                                          "newer than the operator version \"\(operatorVersion.text)\"; AKO will not reconcile it"))])

        case .instanceNameRequired:
            return .covered([PolicyCheck(violation: "\(spec) && variables.name == ''", message: required("spec.name"))])
        case .instanceNameFormat:
            return .covered([PolicyCheck(violation: "\(spec) && variables.name != '' && !variables.name.matches(\(CEL.literal(CEL.atlasName)))",
                                         message: invalid("spec.name", "variables.name", RuleVocabulary.atlasNameMessage))])
        case .instanceNameImmutable, .connectionNameImmutable:
            return .covered([PolicyCheck(violation: "variables.isUpdate && \(spec) && variables.name != '' && variables.oldSpec.?name.orValue('') != '' "
                                            + "&& variables.name != variables.oldSpec.name",
                                         message: invalid("spec.name", "variables.name", RuleVocabulary.immutableMessage))])
        case .instanceClusterConfigRequired:
            return .covered([PolicyCheck(violation: "\(spec) && !variables.hasClusterConfig",
                                         message: required("spec.clusterConfig"))])
        case .instanceProviderSupported:
            let providers = configuration.regions.map(\.provider)
            return .covered([PolicyCheck(violation: "\(spec) && variables.hasClusterConfig && !(variables.provider in \(CEL.list(providers)))",
                                         message: unsupported("spec.clusterConfig.provider", "variables.provider", providers))])
        case .instanceRegionSupported:
            let regions = "{" + configuration.regions.map { CEL.literal($0.provider) + ": " + CEL.list($0.regions) }.joined(separator: ", ") + "}"
            let listed = CEL.map(configuration.regions.map { ($0.provider, CEL.supported($0.regions)) })
            let region = "variables.clusterConfig.?region.orValue('')"
            return .covered([
                PolicyCheck(violation: "\(spec) && variables.hasClusterConfig && \(region) == ''",
                            message: required("spec.clusterConfig.region")),
                PolicyCheck(violation: "\(spec) && variables.hasClusterConfig && \(region) != '' && variables.provider in \(regions) "
                                + "&& !(\(region) in \(regions)[variables.provider])",
                            message: "\(CEL.literal("spec.clusterConfig.region: Unsupported value: ")) + \(CEL.quoted(region)) + "
                                + "': supported values: ' + \(listed)[variables.provider]"),
            ])
        case .instanceTierSupported:
            let tier = "variables.clusterConfig.?tier.orValue('')"
            return .covered([PolicyCheck(violation: "\(spec) && variables.hasClusterConfig && \(tier) != '' && !(\(tier) in \(CEL.list(RuleVocabulary.instanceTiers)))",
                                         message: unsupported("spec.clusterConfig.tier", tier, RuleVocabulary.instanceTiers))])
        case .instanceTierNotApplied:
            let defaultTier = CEL.literal(RuleVocabulary.defaultTier)
            let oldTier = "(variables.oldSpec.?clusterConfig.?tier.orValue('') == '' ? \(defaultTier) : variables.oldSpec.clusterConfig.tier)"
            return .covered([PolicyCheck(violation: "\(spec) && variables.hasClusterConfig && variables.tier in \(CEL.list(RuleVocabulary.instanceTiers)) && "
                                            + "((variables.isUpdate && has(oldObject.spec)) ? variables.tier != \(oldTier) : variables.tier != \(defaultTier))",
                                         message: CEL.literal(RuleVocabulary.tierWarning))])
        case .projectRefRequired:
            return .covered([
                PolicyCheck(violation: "\(spec) && !has(variables.spec.projectRef)", message: required("spec.projectRef")),
                PolicyCheck(violation: "\(spec) && has(variables.spec.projectRef) && variables.projectName == ''",
                            message: required("spec.projectRef.name")),
            ])
        case .projectRefFormat:
            let namespace = "variables.projectRef.?namespace.orValue('')"
            return .covered([
                PolicyCheck(violation: "\(spec) && \(labelBad(namespace))",
                            message: "\(CEL.literal("spec.projectRef.namespace: Invalid value: ")) + \(CEL.quoted(namespace)) + ': ' + \(labelFault(namespace))"),
                PolicyCheck(violation: "\(spec) && \(subdomainBad("variables.projectName"))",
                            message: "\(CEL.literal("spec.projectRef.name: Invalid value: ")) + \(CEL.quoted("variables.projectName")) + ': ' "
                                + "+ \(subdomainFault("variables.projectName"))"),
            ])
        case .projectRefImmutable:
            let oldName = "variables.oldSpec.?projectRef.?name.orValue('')"
            let newNamespace = "(variables.projectRef.?namespace.orValue('') != '' ? variables.projectRef.namespace : variables.namespace)"
            let oldNamespace = "(variables.oldSpec.?projectRef.?namespace.orValue('') != '' ? variables.oldSpec.projectRef.namespace : variables.namespace)"
            let moved = "variables.isUpdate && \(spec) && variables.projectName != '' && \(oldName) != ''"
            return .covered([
                PolicyCheck(violation: "\(moved) && variables.projectName != \(oldName)",
                            message: invalid("spec.projectRef.name", "variables.projectName", RuleVocabulary.immutableMessage)),
                PolicyCheck(violation: "\(moved) && \(newNamespace) != \(oldNamespace)",
                            message: invalid("spec.projectRef.namespace", newNamespace, RuleVocabulary.immutableMessage)),
            ])
        case .registrySize:
            let limit = RuleVocabulary.maxRegistryEntries
            return .covered([PolicyCheck(violation: "\(spec) && size(variables.registry) > \(limit)",
                                         message: "'spec.connectionRegistry: Too many: ' + string(size(variables.registry)) + ': must have at most \(limit) items'")])
        case .registryEntryRequired:
            let missing = "e.?name.orValue('') == ''"
            return .covered([PolicyCheck(violation: "\(spec) && variables.registryChecked && variables.registry.exists(e, \(missing))",
                                         message: "'spec.connectionRegistry[' + string(\(firstIndex("variables.registry", where: missing))) + '].name: Required value'")])
        case .registryEntryFormat:
            let judged = "\(spec) && variables.registryChecked"
            let namespaceBad = labelBad("e.?namespace.orValue('')"), nameBad = subdomainBad("e.?name.orValue('')")
            return .covered([
                PolicyCheck(violation: "\(judged) && variables.registry.exists(e, \(namespaceBad))",
                            message: withFirst("variables.registry", where: namespaceBad) { entry in
                                "('spec.connectionRegistry[' + string(i) + '].namespace: Invalid value: ') + \(CEL.quoted("\(entry).namespace")) "
                                    + "+ (': ' + \(labelFault("\(entry).namespace")))"
                            }),
                PolicyCheck(violation: "\(judged) && variables.registry.exists(e, \(nameBad))",
                            message: withFirst("variables.registry", where: nameBad) { entry in
                                "('spec.connectionRegistry[' + string(i) + '].name: Invalid value: ') + \(CEL.quoted("\(entry).name")) "
                                    + "+ (': ' + \(subdomainFault("\(entry).name")))"
                            }),
            ])
        case .registryNamespaceAllowed:
            guard case .allowList(let allowed) = configuration.registryReferences else { return .covered([]) }
            let resolved = { (e: String) in "(\(e).?namespace.orValue('') != '' ? \(e).namespace : variables.namespace)" }
            let refused = "e.?name.orValue('') != '' && \(resolved("e")) != variables.namespace && !(\(resolved("e")) in \(CEL.list(allowed)))"
            let allowedText = "; allowed: " + configuration.registryReferences.describeAllowed(own: "the instance's own namespace")
            return .covered([PolicyCheck(violation: "\(spec) && variables.registryChecked && variables.registry.exists(e, \(refused))",
                                         message: withFirst("variables.registry", where: refused) { entry in
                                             "('spec.connectionRegistry[' + string(i) + '].namespace: Forbidden: may not reference an AtlasStreamConnection in namespace ') "
                                                + "+ \(CEL.quoted(resolved(entry))) + \(CEL.literal(allowedText))"
                                         })])
        case .registryEntryUnique, .bootstrapServersUnique:
            return .notCovered(quadratic)

        case .connectionNameRequired:
            return .covered([PolicyCheck(violation: "\(spec) && variables.name == ''", message: required("spec.name"))])
        case .connectionTypeSupported:
            let types = RuleVocabulary.connectionTypes
            return .covered([
                PolicyCheck(violation: "\(spec) && variables.type == ''", message: required("spec.type")),
                PolicyCheck(violation: "\(spec) && variables.type != '' && !(variables.type in \(CEL.list(types)))",
                            message: unsupported("spec.type", "variables.type", types)),
            ])
        case .connectionTypeImmutable:
            return .covered([PolicyCheck(violation: "variables.isUpdate && \(spec) && has(variables.spec.type) && variables.oldSpec.?type.orValue('') != '' "
                                            + "&& variables.spec.type != variables.oldSpec.type",
                                         message: invalid("spec.type", "variables.spec.type", RuleVocabulary.immutableMessage))])
        case .connectionConfigRequired:
            return .covered([
                PolicyCheck(violation: "\(spec) && variables.type == 'Kafka' && variables.kafkaEmpty",
                            message: required("spec.kafkaConfig")),
                PolicyCheck(violation: "\(spec) && variables.type == 'Cluster' && variables.clusterEmpty",
                            message: required("spec.clusterConfig")),
            ])
        case .connectionConfigMatchesType:
            let known = "variables.type in \(CEL.list(RuleVocabulary.connectionTypes))"
            return .covered([
                PolicyCheck(violation: "\(spec) && \(known) && variables.type != 'Kafka' && !variables.kafkaEmpty",
                            message: "'spec.kafkaConfig: Forbidden: may not be set when spec.type is ' + variables.type"),
                PolicyCheck(violation: "\(spec) && \(known) && variables.type != 'Cluster' && !variables.clusterEmpty",
                            message: "'spec.clusterConfig: Forbidden: may not be set when spec.type is ' + variables.type"),
            ])
        case .sampleSourceSupported:
            let sources = configuration.sampleSources
            return .covered([PolicyCheck(violation: "\(spec) && variables.type == 'Sample' && variables.name != '' && !(variables.name in \(CEL.list(sources)))",
                                         message: unsupported("spec.name", "variables.name", sources))])
        case .clusterNameRequired:
            return .covered([PolicyCheck(violation: "variables.clusterJudged && variables.clusterName == ''",
                                         message: required("spec.clusterConfig.name"))])
        case .clusterNameFormat:
            let name = "variables.clusterName"
            let limit = RuleVocabulary.maxClusterNameBytes
            let notAtlas = "!\(name).matches(\(CEL.literal(CEL.atlasName)))"
            return .covered([PolicyCheck(violation: "variables.clusterJudged && \(name) != '' && (\(notAtlas) || size(bytes(\(name))) > \(limit))",
                                         message: "\(notAtlas) ? \(invalid("spec.clusterConfig.name", name, RuleVocabulary.atlasNameMessage)) : "
                                            + CEL.literal("spec.clusterConfig.name: Too long: may not be more than \(limit) bytes"))])
        case .clusterRoleRequired:
            return .covered([
                PolicyCheck(violation: "variables.clusterJudged && variables.roleEmpty",
                            message: required("spec.clusterConfig.role")),
                PolicyCheck(violation: "variables.clusterJudged && !variables.roleEmpty && variables.roleName == ''",
                            message: required("spec.clusterConfig.role.name")),
            ])
        case .clusterRoleTypeSupported:
            let types = RuleVocabulary.roleTypes
            return .covered([
                PolicyCheck(violation: "variables.clusterJudged && !variables.roleEmpty && variables.roleType == ''",
                            message: required("spec.clusterConfig.role.type")),
                PolicyCheck(violation: "variables.clusterJudged && !variables.roleEmpty && variables.roleType != '' && !(variables.roleType in \(CEL.list(types)))",
                            message: unsupported("spec.clusterConfig.role.type", "variables.roleType", types)),
            ])
        case .clusterBuiltInRoleSupported:
            let roles = configuration.builtInRoles
            return .covered([PolicyCheck(violation: "variables.clusterJudged && !variables.roleEmpty && variables.roleType == 'BUILT_IN' && variables.roleName != '' "
                                            + "&& !(variables.roleName in \(CEL.list(roles)))",
                                         message: unsupported("spec.clusterConfig.role.name", "variables.roleName", roles))])
        case .bootstrapServersRequired:
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && variables.servers == ''",
                                         message: required("spec.kafkaConfig.bootstrapServers"))])
        case .bootstrapServersSize:
            let bytes = RuleVocabulary.maxBootstrapServersBytes, count = RuleVocabulary.maxBootstrapServers
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && variables.servers != '' && !variables.serversBounded",
                                         message: "size(bytes(variables.servers)) > \(bytes) ? 'spec.kafkaConfig.bootstrapServers: Too long: may not be more than \(bytes) bytes' : "
                                            + "'spec.kafkaConfig.bootstrapServers: Too many: ' + string(variables.serverCount) + ': must have at most \(count) items'")])
        case .bootstrapServersFormat:
            return serverProblem { "\($0) != '' && \($0) != \(CEL.literal(RuleVocabulary.serverPort))" }
        case .bootstrapServersPortRange:
            return serverProblem { "\($0) == \(CEL.literal(RuleVocabulary.serverPort))" }
        case .kafkaAuthenticationRequired:
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && !variables.hasAuthentication",
                                         message: required("spec.kafkaConfig.authentication"))])
        case .kafkaMechanismSupported:
            let mechanisms = RuleVocabulary.mechanisms
            let judged = "variables.kafkaJudged && variables.hasAuthentication"
            return .covered([
                PolicyCheck(violation: "\(judged) && variables.mechanism == ''",
                            message: required("spec.kafkaConfig.authentication.mechanism")),
                PolicyCheck(violation: "\(judged) && variables.mechanism != '' && !(variables.mechanism in \(CEL.list(mechanisms)))",
                            message: unsupported("spec.kafkaConfig.authentication.mechanism", "variables.mechanism", mechanisms)),
            ])
        case .kafkaCredentialsRequired:
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && variables.hasAuthentication && variables.credentials.?name.orValue('') == ''",
                                         message: required("spec.kafkaConfig.authentication.credentials.name"))])
        case .kafkaSecurityRequired:
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && !variables.hasSecurity",
                                         message: required("spec.kafkaConfig.security"))])
        case .kafkaProtocolSupported:
            let protocols = RuleVocabulary.protocols
            let judged = "variables.kafkaJudged && variables.hasSecurity"
            return .covered([
                PolicyCheck(violation: "\(judged) && variables.protocol == ''",
                            message: required("spec.kafkaConfig.security.protocol")),
                PolicyCheck(violation: "\(judged) && variables.protocol != '' && !(variables.protocol in \(CEL.list(protocols)))",
                            message: unsupported("spec.kafkaConfig.security.protocol", "variables.protocol", protocols)),
            ])
        case .kafkaCertificateRequired:
            let field = "spec.kafkaConfig.security.certificate.name: Required value"
            let message: String
            switch configuration.kafkaCertificate {
            case .always: message = CEL.literal(field + ": " + RuleVocabulary.certificateAlwaysRequired)
            case .ssl: message = "variables.protocol == 'SSL' ? \(CEL.literal(field + ": " + RuleVocabulary.certificateRequiredForSSL)) : \(CEL.literal(field))"
            }
            return .covered([PolicyCheck(violation: "variables.certificateJudged && variables.certificate.?name.orValue('') == ''", message: message)])
        case .secretReferenceFormat:
            return .covered(secretReferenceChecks(configuration) { reference, judged, path in
                let namespace = "\(reference).?namespace.orValue('')", name = "\(reference).?name.orValue('')"
                return [
                    PolicyCheck(violation: "\(judged) && \(labelBad(namespace))",
                                message: "\(CEL.literal("\(path).namespace: Invalid value: ")) + \(CEL.quoted(namespace)) + ': ' + \(labelFault(namespace))"),
                    PolicyCheck(violation: "\(judged) && \(subdomainBad(name))",
                                message: "\(CEL.literal("\(path).name: Invalid value: ")) + \(CEL.quoted(name)) + ': ' + \(subdomainFault(name))"),
                ]
            })
        case .secretNamespaceAllowed:
            guard case .allowList(let allowed) = configuration.secretReferences else { return .covered([]) }
            return .covered(secretReferenceChecks(configuration) { reference, judged, path in
                let resolved = "(\(reference).?namespace.orValue('') != '' ? \(reference).namespace : variables.namespace)"
                return [PolicyCheck(violation: "\(judged) && \(reference).?name.orValue('') != '' && \(resolved) != variables.namespace "
                                        + "&& !(\(resolved) in \(CEL.list(allowed)))",
                                    message: "\(CEL.literal("\(path).namespace: Forbidden: may not reference a Secret in namespace ")) + \(CEL.quoted(resolved)) + "
                                        + CEL.literal("; allowed: " + configuration.secretReferences.describeAllowed(own: "the connection's own namespace")))]
            })
        case .kafkaConfigSize:
            let limit = RuleVocabulary.maxConfigKeys
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && size(variables.config) > \(limit)",
                                         message: "'spec.kafkaConfig.config: Too many: ' + string(size(variables.config)) + ': must have at most \(limit) items'")])
        case .kafkaConfigKeyNotEmpty:
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && variables.configChecked && variables.config.exists(k, k == '')",
                                         message: CEL.literal(#"spec.kafkaConfig.config: Invalid value: "": keys must not be empty"#))])
        case .kafkaConfigNoTypedFields:
            let keys = RuleVocabulary.forbiddenConfigKeys.sorted { $0.key < $1.key }
            let forbidden = CEL.map(keys.map { ($0.key, $0.value) })
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && variables.configChecked && variables.config.exists(k, k.lowerAscii() in \(forbidden))",
                                         message: "[variables.config.filter(k, k.lowerAscii() in \(forbidden))[0]].map(k, 'spec.kafkaConfig.config[' + k + "
                                            + "']: Forbidden: overrides a typed field; set ' + \(forbidden)[k.lowerAscii()] + ' instead')[0]")])
        case .kafkaProtocolEncrypted:
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && variables.hasSecurity && variables.protocol == 'PLAINTEXT'",
                                         message: CEL.literal(RuleVocabulary.plaintextWarning))])
        case .kafkaPasswordEncrypted:
            return .covered([PolicyCheck(violation: "variables.kafkaJudged && variables.hasSecurity && variables.protocol == 'PLAINTEXT' "
                                            + "&& variables.hasAuthentication && variables.mechanism == 'PLAIN'",
                                         message: CEL.literal(RuleVocabulary.plainOverPlaintextWarning))])

        case .credentialsSecretFound, .certificateSecretFound, .secretLabelledForOperator, .secretKeysPresent, .projectFound,
             .registryConnectionFound, .registrySpecNameUnique, .referenceNamespaceWatched, .connectionNotInRegistry, .clusterCacheReady:
            return .notCovered(needsCluster)
        }
    }

    /// Checks of both Secret references, each judged where the webhook judges it.
    private func secretReferenceChecks(_ configuration: RuleConfiguration,
                                       _ checks: (_ reference: String, _ judged: String, _ path: String) -> [PolicyCheck]) -> [PolicyCheck] {
        checks("variables.credentials", "variables.kafkaJudged && variables.hasAuthentication", "spec.kafkaConfig.authentication.credentials")
            + checks("variables.certificate", "variables.certificateJudged", "spec.kafkaConfig.security.certificate")
    }

    /// The first bootstrap server whose problem `condition` (of a variable's name) selects.
    private func serverProblem(_ condition: (String) -> String) -> PolicyCoverage {
        let message = "[\(firstIndex("variables.serverProblems", where: condition("e")))].map(i, "
            + "'spec.kafkaConfig.bootstrapServers: Invalid value: ' + \(CEL.quoted("variables.servers.split(',')[i]")) + ': ' + variables.serverProblems[i])[0]"
        return .covered([PolicyCheck(violation: "variables.serverProblems.exists(p, \(condition("p")))", message: message)])
    }

    /// The label `variables.resourceVersion` (a valid semantic version) is newer than
    /// `version`, by semantic version precedence as the webhook compares them.
    private func newer(than version: OperatorVersion) -> String {
        let major = "int(variables.versionNumbers[0])"
        let minor = "(size(variables.versionNumbers) > 1 ? int(variables.versionNumbers[1]) : 0)"
        let patch = "(size(variables.versionNumbers) > 2 ? int(variables.versionNumbers[2]) : 0)"
        let pre = "variables.versionPrerelease"
        let own = version.prerelease
        var prereleaseNewer = "false"
        if !own.isEmpty {
            var terms: [String] = []
            for i in 0...own.count {
                let prefix = (0..<i).map { "\(pre)[\($0)] == \(CEL.literal(own[$0]))" }
                if i == own.count {
                    terms.append((["size(\(pre)) > \(i)"] + prefix).joined(separator: " && "))
                } else {
                    let theirs = "\(pre)[\(i)]"
                    let numeric = "\(theirs).matches('^-?[0-9]{1,18}$')"
                    let less = Int(own[i]).map { "(\(numeric) ? \($0) < int(\(theirs)) : true)" }
                        ?? "(\(numeric) ? false : \(CEL.literal(own[i])) < \(theirs))"
                    terms.append((["size(\(pre)) > \(i)"] + prefix + ["\(theirs) != \(CEL.literal(own[i]))", less]).joined(separator: " && "))
                }
            }
            prereleaseNewer = "(size(\(pre)) == 0 || " + terms.map { "(\($0))" }.joined(separator: " || ") + ")"
        }
        return "(\(major) > \(version.major) || (\(major) == \(version.major) && (\(minor) > \(version.minor) || (\(minor) == \(version.minor) "
            + "&& (\(patch) > \(version.patch) || (\(patch) == \(version.patch) && \(prereleaseNewer)))))))"
    }
}
