import JSON

/// What the reference rules know of the cluster (SPEC section 11): the slim records of
/// the Secrets, AtlasProjects, AtlasStreamConnections and AtlasStreamInstances the
/// cache holds, by namespace and name. A value: the cache builds a new one and swaps
/// it in whole; a review reads the one it was given and never sees it change.
/// `check --resolve-references` builds one from manifests.
public struct ClusterSnapshot: Sendable {
    /// Every Secret (from metadata only): whether it carries the credentials label.
    public var secrets: [String: [String: SecretRecord]]
    /// The data key names of the Secrets labelled `atlas.mongodb.com/type=credentials`
    /// (never their values).
    public var credentialKeys: [String: [String: [String]]]
    public var projects: [String: [String: ProjectRecord]]
    public var connections: [String: [String: ConnectionRecord]]
    public var instances: [String: [String: InstanceRecord]]
    /// The namespaces the cache (and the operator) watches; nil for all.
    public var watchedNamespaces: Set<String>?

    public init(secrets: [String: [String: SecretRecord]] = [:], credentialKeys: [String: [String: [String]]] = [:],
                projects: [String: [String: ProjectRecord]] = [:], connections: [String: [String: ConnectionRecord]] = [:],
                instances: [String: [String: InstanceRecord]] = [:], watchedNamespaces: Set<String>? = nil) {
        self.secrets = secrets
        self.credentialKeys = credentialKeys
        self.projects = projects
        self.connections = connections
        self.instances = instances
        self.watchedNamespaces = watchedNamespaces
    }

    /// The label AKO's cluster-wide Secret cache selects on: a Secret without it does not
    /// exist to the operator.
    public static let credentialsLabelKey = "atlas.mongodb.com/type"
    public static let credentialsLabelValue = "credentials"

    func isWatched(_ namespace: String) -> Bool {
        watchedNamespaces?.contains(namespace) ?? true
    }
}

/// A Secret as the metadata watch sees it.
public struct SecretRecord: Sendable, Equatable {
    public var hasCredentialsLabel: Bool

    public init(hasCredentialsLabel: Bool) {
        self.hasCredentialsLabel = hasCredentialsLabel
    }
}

/// An AtlasProject: that it exists is all the rules ask.
public struct ProjectRecord: Sendable, Equatable {
    public init() {}
}

/// An AtlasStreamConnection: the name Atlas knows it by.
public struct ConnectionRecord: Sendable, Equatable {
    /// `spec.name`; empty when absent.
    public var specName: String

    public init(specName: String) {
        self.specName = specName
    }
}

/// An AtlasStreamInstance: the connections its registry lists, namespaces resolved.
public struct InstanceRecord: Sendable, Equatable {
    public var registry: [ObjectReference]
    /// `metadata.deletionTimestamp` is set: it no longer holds its connections.
    public var isBeingDeleted: Bool

    public init(registry: [ObjectReference], isBeingDeleted: Bool) {
        self.registry = registry
        self.isBeingDeleted = isBeingDeleted
    }
}

/// `<namespace>/<name>` of a namespaced object.
public struct ObjectReference: Sendable, Hashable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(namespace)/\(name)" }
}

extension InstanceRecord {
    /// The registry of an AtlasStreamInstance object, each entry's namespace defaulted to
    /// the instance's; entries without a string name are left out. At most
    /// `InstanceRules.maxRegistryEntries` are read (the rules refuse longer registries anyway).
    public static func registry(of spec: JSONValue?, namespace: String) -> [ObjectReference] {
        guard let registry = spec?[.connectionRegistry], registry.isArray else { return [] }
        var out: [ObjectReference] = []
        for entry in registry.elements.prefix(InstanceRules.maxRegistryEntries) {
            guard let name = entry[.name]?.string, !name.isEmpty else { continue }
            out.append(ObjectReference(namespace: effectiveNamespace(entry, default: namespace), name: name))
        }
        return out
    }
}
