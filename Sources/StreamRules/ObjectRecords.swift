import JSON

// How an API object becomes the record the rules read of it. One mapping for the
// cluster cache (objects as the API server sends them, cut down to the members the
// cache keeps) and for `check --resolve-references` (objects as manifests write them),
// so the two judge the same objects the same way. A Secret's values are never read.

extension SecretRecord {
    /// Whether it carries the label AKO selects credentials Secrets by.
    public init(object: JSONValue) {
        let value = object[.metadata]?[.labels]?[member: ClusterSnapshot.credentialsLabelKey]
        self.init(hasCredentialsLabel: value?.isString(ClusterSnapshot.credentialsLabelValue) == true)
    }

    /// The names of a Secret's keys: those of `data`, then those of `stringData` (which
    /// a manifest may use and the API server folds into `data`).
    public static func keyNames(of object: JSONValue) -> [String] {
        var keys: [String] = []
        for field in [JSONKey.data, .stringData] {
            guard let data = object[field], data.isObject else { continue }
            keys += data.members.compactMap { $0.key.string }
        }
        return keys
    }
}

extension ConnectionRecord {
    public init(object: JSONValue) {
        self.init(specName: object[.spec]?[.name]?.string ?? "")
    }
}

extension InstanceRecord {
    /// An AtlasStreamInstance in `namespace` (its own, defaulted by the caller).
    public init(object: JSONValue, namespace: String) {
        let deleting = object[.metadata]?[.deletionTimestamp].map { !$0.isNull } ?? false
        self.init(registry: InstanceRecord.registry(of: object[.spec], namespace: namespace), isBeingDeleted: deleting)
    }

    /// The registry of an AtlasStreamInstance's spec, each entry's namespace defaulted to
    /// the instance's; entries without a string name are left out. At most
    /// `InstanceRules.maxRegistryEntries` are read (the rules refuse longer registries anyway).
    static func registry(of spec: JSONValue?, namespace: String) -> [ObjectReference] {
        guard let registry = spec?[.connectionRegistry], registry.isArray else { return [] }
        var out: [ObjectReference] = []
        for entry in registry.elements.prefix(InstanceRules.maxRegistryEntries) {
            guard let name = entry[.name]?.string, !name.isEmpty else { continue }
            out.append(ObjectReference(namespace: effectiveNamespace(entry, default: namespace), name: name))
        }
        return out
    }
}
