import HashTreeCollections
import JSON

/// Records by namespace, then name: a persistent map (a hash trie), so a copy is O(1)
/// and a change copies only the path it touches, whatever the size of the rest.
public typealias NamespacedRecords<Record> = TreeDictionary<String, TreeDictionary<String, Record>>

/// What the reference rules know of the cluster: the slim records of the Secrets,
/// AtlasProjects, AtlasStreamConnections and AtlasStreamInstances the cache holds, by
/// namespace and name. A value: the cache changes its own copy and hands out copies
/// that share everything unchanged; a review reads the one it was given and never sees
/// it change. `check --resolve-references` builds one from manifests.
public struct ClusterSnapshot: Sendable {
    /// Every Secret (from metadata only): whether it carries the credentials label.
    public var secrets: NamespacedRecords<SecretRecord>
    /// The data key names of the Secrets labelled `atlas.mongodb.com/type=credentials`
    /// (never their values).
    public var credentialKeys: NamespacedRecords<[String]>
    public var projects: NamespacedRecords<ProjectRecord>
    public var connections: NamespacedRecords<ConnectionRecord>
    /// Changed through `setInstance` and `replaceInstances`, which keep `listings` with it.
    public private(set) var instances: NamespacedRecords<InstanceRecord>
    /// Each connection to the instances whose registry lists it: the DELETE guard reads
    /// the instances that hold one connection without walking every registry.
    public private(set) var listings: TreeDictionary<ObjectReference, TreeSet<ObjectReference>>
    /// The namespaces the cache (and the operator) watches; nil for all.
    public var watchedNamespaces: Set<String>?
    /// The AtlasStreamConnections and AtlasStreamInstances themselves, as the cache keeps
    /// them (the metadata the rules read, and spec), for the audit to judge; empty in a
    /// snapshot made of manifests.
    public var connectionObjects: NamespacedRecords<JSONValue> = [:]
    public var instanceObjects: NamespacedRecords<JSONValue> = [:]

    public init(secrets: NamespacedRecords<SecretRecord> = [:], credentialKeys: NamespacedRecords<[String]> = [:],
                projects: NamespacedRecords<ProjectRecord> = [:], connections: NamespacedRecords<ConnectionRecord> = [:],
                instances: NamespacedRecords<InstanceRecord> = [:], watchedNamespaces: Set<String>? = nil) {
        self.secrets = secrets
        self.credentialKeys = credentialKeys
        self.projects = projects
        self.connections = connections
        self.instances = [:]
        self.listings = [:]
        self.watchedNamespaces = watchedNamespaces
        replaceInstances(in: nil, with: instances)
    }

    /// The label AKO's cluster-wide Secret cache selects on: a Secret without it does not
    /// exist to the operator.
    public static let credentialsLabelKey = "atlas.mongodb.com/type"
    public static let credentialsLabelValue = "credentials"

    /// The stored objects of one kind.
    public func objects(of kind: StreamKind) -> NamespacedRecords<JSONValue> {
        switch kind {
        case .connection: connectionObjects
        case .instance: instanceObjects
        }
    }

    func isWatched(_ namespace: String) -> Bool {
        watchedNamespaces?.contains(namespace) ?? true
    }

    /// Stores (or with nil removes) one instance; O(log n + registry length).
    public mutating func setInstance(_ record: InstanceRecord?, at reference: ObjectReference) {
        let old = instances[reference.namespace]?[reference.name]
        if let old { unlist(reference, old.registry) }
        if let record {
            instances[reference.namespace, default: [:]][reference.name] = record
            list(reference, record.registry)
        } else if old != nil {
            instances[reference.namespace]?[reference.name] = nil
            if instances[reference.namespace]?.isEmpty == true { instances[reference.namespace] = nil }
        }
    }

    /// Replaces every instance of `namespace` (all of them for nil) with `records`: what
    /// a LIST found. Linear in the instances replaced and added.
    public mutating func replaceInstances(in namespace: String?, with records: NamespacedRecords<InstanceRecord>) {
        let old: [(String, TreeDictionary<String, InstanceRecord>)]
        if let namespace {
            old = instances[namespace].map { [(namespace, $0)] } ?? []
        } else {
            old = instances.map { ($0.key, $0.value) }
        }
        for (ns, byName) in old {
            for (name, record) in byName { unlist(ObjectReference(namespace: ns, name: name), record.registry) }
        }
        if let namespace {
            instances[namespace] = records[namespace]
        } else {
            instances = records
        }
        let added: [(String, TreeDictionary<String, InstanceRecord>)] =
            namespace.map { ns in records[ns].map { [(ns, $0)] } ?? [] } ?? records.map { ($0.key, $0.value) }
        for (ns, byName) in added {
            for (name, record) in byName { list(ObjectReference(namespace: ns, name: name), record.registry) }
        }
    }

    /// The instances (not themselves being deleted) whose registry lists `connection`,
    /// sorted; at most `maxListed` of them, and how many more there are. Costs what the
    /// connection's holders are, not the cluster's instances.
    public func instancesListing(_ connection: ObjectReference, maxListed: Int = 10) -> (listed: [ObjectReference], more: Int) {
        guard let holders = listings[connection] else { return ([], 0) }
        var live: [ObjectReference] = []
        for holder in holders where instances[holder.namespace]?[holder.name]?.isBeingDeleted == false {
            live.append(holder)
        }
        live.sort { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        return (Array(live.prefix(maxListed)), max(0, live.count - maxListed))
    }

    private mutating func list(_ instance: ObjectReference, _ registry: [ObjectReference]) {
        for connection in registry { listings[connection, default: []].insert(instance) }
    }

    private mutating func unlist(_ instance: ObjectReference, _ registry: [ObjectReference]) {
        for connection in registry {
            listings[connection]?.remove(instance)
            if listings[connection]?.isEmpty == true { listings[connection] = nil }
        }
    }
}

/// The cluster as a review may use it: a snapshot the cache can back, or why there is
/// none to judge by.
public enum ClusterView: Sendable {
    /// Every part of the cache has listed and is keeping up.
    case ready(ClusterSnapshot)
    /// Not listed yet, or stale: why, for logs (the answer says only that lookups are not ready).
    case notReady(reason: String)
}

/// What a review whose references need the cluster gets while the cache cannot back a
/// verdict (`cluster.notReady`).
public enum CacheNotReadyPolicy: String, Sendable, Equatable, CaseIterable {
    /// Allowed, with one warning that references were not checked.
    case allow
    /// Refused with 503 Service Unavailable, for teams that prefer to fail closed.
    case deny

    /// The warning or the refusal's message.
    public static let message = "cluster lookups are not ready; references were not checked"
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
