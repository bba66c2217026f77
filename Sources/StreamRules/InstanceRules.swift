import JSON

/// AtlasStreamInstance.
struct InstanceRules: KindRules {
    let configuration: RuleConfiguration

    static let tiers = ["SP10", "SP30", "SP50"]

    /// The paths of the fields the rules visit, built once (registry entries, which are
    /// numbered, get theirs as they are visited).
    enum Paths {
        static let spec = FieldPath("spec")
        static let name = spec.child("name")
        static let clusterConfig = spec.child("clusterConfig")
        static let provider = clusterConfig.child("provider")
        static let region = clusterConfig.child("region")
        static let tier = clusterConfig.child("tier")
        static let projectRef = spec.child("projectRef")
        static let projectName = projectRef.child("name")
        static let projectNamespace = projectRef.child("namespace")
        static let registry = spec.child("connectionRegistry")
    }
    static let defaultProvider = "AWS"
    static let defaultTier = "SP10"

    static func defaults(spec: JSONValue, namespace: String, configuration: RuleConfiguration,
                         into patch: inout [PatchOperation]) {
        let clusterConfig = spec[.clusterConfig]
        if clusterConfig == nil || clusterConfig?.isNull == true {
            patch.append(PatchOperation(path: ["spec", "clusterConfig"],
                                        value: .object([("provider", .string(Self.defaultProvider)),
                                                        ("tier", .string(Self.defaultTier))])))
        } else if let clusterConfig, clusterConfig.isObject {
            if isDefaultable(clusterConfig[.provider]) {
                patch.append(PatchOperation(path: ["spec", "clusterConfig", "provider"], value: .string(Self.defaultProvider)))
            }
            if isDefaultable(clusterConfig[.tier]) {
                patch.append(PatchOperation(path: ["spec", "clusterConfig", "tier"], value: .string(Self.defaultTier)))
            }
        }
        guard !namespace.isEmpty else { return }
        if needsNamespace(spec[.projectRef]) {
            patch.append(PatchOperation(path: ["spec", "projectRef", "namespace"], value: .string(namespace)))
        }
        if let registry = spec[.connectionRegistry], registry.isArray {
            for (i, entry) in registry.elements.enumerated() where needsNamespace(entry) {
                patch.append(PatchOperation(path: ["spec", "connectionRegistry", String(i), "namespace"], value: .string(namespace)))
            }
        }
    }

    static let tierWarning = "spec.clusterConfig.tier: not applied: AKO does not send the tier to Atlas"

    static func validate(object: JSONValue, old: JSONValue?, namespace: String, configuration: RuleConfiguration,
                         checks: inout FieldChecks, warnings: inout [RuleWarning]) {
        InstanceRules(configuration: configuration).validate(object: object, old: old, namespace: namespace,
                                                             checks: &checks, warnings: &warnings)
    }

    static func validateReferences(spec: JSONValue, namespace: String, references: ReferenceRules,
                                   checks: inout FieldChecks, warnings: inout [RuleWarning]) {
        references.validateInstance(spec: spec, namespace: namespace, checks: &checks, warnings: &warnings)
    }

    /// The project, or any registry entry.
    static func hasReferences(_ spec: JSONValue) -> Bool {
        if ReferenceRules.target(spec[.projectRef], namespace: "") != nil { return true }
        guard let registry = spec[.connectionRegistry], registry.isArray else { return false }
        return registry.elements.contains { ReferenceRules.target($0, namespace: "") != nil }
    }

    private func validate(object: JSONValue, old: JSONValue?, namespace: String, checks: inout FieldChecks,
                          warnings: inout [RuleWarning]) {
        let specPath = Paths.spec
        guard let spec = object[.spec], !spec.isNull else { return checks.required(.specRequired, specPath) }
        guard let spec = checks.object(spec, specPath) else { return }

        let namePath = Paths.name
        let name = checks.string(spec[.name], namePath)
        if let name {
            if !isAtlasName(name) { checks.invalid(.instanceNameFormat, namePath, name, atlasNameDetail) }
        } else if isDefaultable(spec[.name]) {
            checks.required(.instanceNameRequired, namePath)
        }

        let tier = validateClusterConfig(spec[.clusterConfig], Paths.clusterConfig, &checks)
        // AKO (v2.x) sends provider and region to Atlas, never the tier: on CREATE a tier
        // other than the default, on UPDATE any change, will not happen.
        if let tier {
            if let oldSpec = old?[.spec] {
                let oldTier = oldSpec[.clusterConfig]?[.tier]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultTier
                if tier != oldTier { warnings.append(RuleWarning(.instanceTierNotApplied, Self.tierWarning)) }
            } else if tier != Self.defaultTier {
                warnings.append(RuleWarning(.instanceTierNotApplied, Self.tierWarning))
            }
        }
        let project = validateProjectRef(spec[.projectRef], Paths.projectRef, &checks)
        validateRegistry(spec[.connectionRegistry], Paths.registry, namespace: namespace, &checks)

        if let oldSpec = old?[.spec], oldSpec.isObject {
            let oldName = oldSpec[.name]?.string ?? ""
            if let name, !oldName.isEmpty, name != oldName { checks.invalid(.instanceNameImmutable, namePath, name, immutableDetail) }
            let oldProject = oldSpec[.projectRef]
            if let project, let oldProjectName = oldProject?[.name]?.string, !oldProjectName.isEmpty {
                if project.name != oldProjectName {
                    checks.invalid(.projectRefImmutable, Paths.projectName, project.name, immutableDetail)
                }
                let newNamespace = project.namespace ?? namespace
                let oldNamespace = effectiveNamespace(oldProject, default: namespace)
                if newNamespace != oldNamespace {
                    checks.invalid(.projectRefImmutable, Paths.projectNamespace, newNamespace, immutableDetail)
                }
            }
        }
    }

    /// Returns the tier in effect when it is a supported one (absent is the default).
    private func validateClusterConfig(_ value: JSONValue?, _ path: FieldPath, _ checks: inout FieldChecks) -> String? {
        guard let value, !value.isNull else {
            checks.required(.instanceClusterConfigRequired, path)
            return nil
        }
        guard let config = checks.object(value, path) else { return nil }
        let providers = configuration.regions.map(\.provider)
        let providerPath = Paths.provider
        var provider: String?
        if isDefaultable(config[.provider]) {
            provider = Self.defaultProvider
            if !providers.contains(Self.defaultProvider) {
                checks.notSupported(.instanceProviderSupported, providerPath, Self.defaultProvider, providers)
            }
        } else {
            provider = checks.oneOf(.instanceProviderSupported, config[.provider], providerPath, providers)
        }
        let regionPath = Paths.region
        if let region = checks.string(config[.region], regionPath) {
            if let provider, let regions = configuration.regions(of: provider), !regions.contains(region) {
                checks.notSupported(.instanceRegionSupported, regionPath, region, regions)
            }
        } else if isDefaultable(config[.region]) {
            checks.required(.instanceRegionSupported, regionPath)
        }
        guard !isDefaultable(config[.tier]) else { return Self.defaultTier }
        return checks.oneOf(.instanceTierSupported, config[.tier], Paths.tier, Self.tiers)
    }

    /// Returns the reference when its name is usable.
    private func validateProjectRef(_ value: JSONValue?, _ path: FieldPath,
                                    _ checks: inout FieldChecks) -> (name: String, namespace: String?)? {
        guard let value, !value.isNull else {
            checks.required(.projectRefRequired, path)
            return nil
        }
        guard let ref = checks.object(value, path) else { return nil }
        let namespace = checks.string(ref[.namespace], Paths.projectNamespace)
        if let namespace { checks.label(.projectRefFormat, namespace, Paths.projectNamespace) }
        guard let name = checks.string(ref[.name], Paths.projectName) else {
            if isDefaultable(ref[.name]) { checks.required(.projectRefRequired, Paths.projectName) }
            return nil
        }
        checks.subdomain(.projectRefFormat, name, Paths.projectName)
        return (name, namespace)
    }

    /// At most this many `connectionRegistry` entries, checked before them.
    static let maxRegistryEntries = 1000

    private func validateRegistry(_ value: JSONValue?, _ path: FieldPath, namespace: String, _ checks: inout FieldChecks) {
        guard let registry = checks.array(value, path) else { return }
        guard registry.count <= Self.maxRegistryEntries else {
            return checks.tooMany(.registrySize, path, registry.count, max: Self.maxRegistryEntries)
        }
        var seen = Set<String>()
        for (i, entry) in registry.elements.enumerated() {
            if checks.timeIsUp() { return }
            let entryPath = path.index(i)
            guard let entry = checks.object(entry, entryPath) else {
                if entry.isNull { checks.required(.registryEntryRequired, entryPath) }
                continue
            }
            let nsPath = entryPath.child("namespace")
            let entryNamespace = checks.string(entry[.namespace], nsPath)
            if let entryNamespace { checks.label(.registryEntryFormat, entryNamespace, nsPath) }
            let namePath = entryPath.child("name")
            guard let name = checks.string(entry[.name], namePath) else {
                if isDefaultable(entry[.name]) { checks.required(.registryEntryRequired, namePath) }
                continue
            }
            checks.subdomain(.registryEntryFormat, name, namePath)
            let resolved = entryNamespace ?? namespace
            if resolved != namespace && !configuration.registryReferences.permits(resolved) {
                checks.forbidden(.registryNamespaceAllowed, nsPath, "may not reference an AtlasStreamConnection in namespace \(goQuote(resolved)); allowed: "
                                 + configuration.registryReferences.describeAllowed(own: "the instance's own namespace"))
            }
            if !seen.insert(resolved + "/" + name).inserted {
                checks.duplicate(.registryEntryUnique, entryPath, resolved + "/" + name)
            }
        }
    }
}
