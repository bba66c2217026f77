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
    /// snapshot made of manifests. Changed through `setStoredObject` and
    /// `replaceStoredObjects`, which hold them to `storedObjectBudget`.
    public private(set) var connectionObjects: NamespacedRecords<StoredObject> = [:]
    public private(set) var instanceObjects: NamespacedRecords<StoredObject> = [:]
    /// What the kept objects take, counted against `storedObjectBudget.total`.
    public private(set) var storedObjectBytes = 0
    public var storedObjectBudget = StoredObjectBudget()

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
    public func objects(of kind: StreamKind) -> NamespacedRecords<StoredObject> {
        switch kind {
        case .connection: connectionObjects
        case .instance: instanceObjects
        }
    }

    private subscript(objectsOf kind: StreamKind) -> NamespacedRecords<StoredObject> {
        get { objects(of: kind) }
        set {
            switch kind {
            case .connection: connectionObjects = newValue
            case .instance: instanceObjects = newValue
            }
        }
    }

    /// Stores (or with nil removes) one object of `kind`, kept as `budget` allows (an
    /// object `StoredObjectBudget.admit` already refused stays refused). O(log n).
    public mutating func setStoredObject(_ object: StoredObject?, kind: StreamKind, at reference: ObjectReference) {
        if let old = self[objectsOf: kind][reference.namespace]?[reference.name] {
            storedObjectBytes -= old.keptBytes
            self[objectsOf: kind][reference.namespace]?[reference.name] = nil
            if self[objectsOf: kind][reference.namespace]?.isEmpty == true { self[objectsOf: kind][reference.namespace] = nil }
        }
        guard let object else { return }
        let stored = storedObjectBudget.within(total: storedObjectBytes, object)
        storedObjectBytes += stored.keptBytes
        self[objectsOf: kind][reference.namespace, default: [:]][reference.name] = stored
    }

    /// Replaces every object of `kind` in `namespace` (all of them for nil) with what a
    /// LIST found, kept as the budget allows. Linear in the objects replaced and added.
    public mutating func replaceStoredObjects(kind: StreamKind, in namespace: String?, with objects: NamespacedRecords<StoredObject>) {
        let scope = namespace.map { ns in self[objectsOf: kind][ns].map { [$0] } ?? [] } ?? Array(self[objectsOf: kind].values)
        for byName in scope {
            for (_, old) in byName { storedObjectBytes -= old.keptBytes }
        }
        var replacement: NamespacedRecords<StoredObject> = namespace == nil ? [:] : self[objectsOf: kind]
        if let namespace { replacement[namespace] = nil }
        for (ns, byName) in objects where namespace == nil || ns == namespace {
            for (name, object) in byName {
                let stored = storedObjectBudget.within(total: storedObjectBytes, object)
                storedObjectBytes += stored.keptBytes
                replacement[ns, default: [:]][name] = stored
            }
        }
        self[objectsOf: kind] = replacement
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

/// An AtlasStreamConnection or AtlasStreamInstance as the cache holds it for the audit.
public enum StoredObject: Sendable {
    /// Its spec and the metadata the rules read.
    case kept(JSONValue)
    /// Not kept: only its record is (the reference rules still read that).
    case notKept(NotKeptReason)

    /// The memory it takes, as the budget counts it.
    public var keptBytes: Int {
        if case .kept(let object) = self { return object.document.retainedBytes }
        return 0
    }
}

/// Why an object is not kept for the audit.
public enum NotKeptReason: Sendable, Equatable, CustomStringConvertible {
    /// Larger than the audit keeps of one object.
    case tooLarge(bytes: Int, limit: Int)
    /// The objects kept already take all the audit keeps.
    case budgetSpent(limit: Int)

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit):
            return "not audited: it takes \(bytes) bytes, more than the \(limit) the audit keeps of one object"
        case .budgetSpent(let limit):
            return "not audited: the objects kept for the audit already take the \(limit) bytes it keeps in all"
        }
    }
}

/// How much of the cluster's AtlasStream objects the audit keeps: memory bounded by what
/// the process decides, whatever a tenant writes. A real connection takes about 1 KiB.
public struct StoredObjectBudget: Sendable, Equatable {
    /// One object at most (etcd allows objects of 1.5 MiB).
    public var perObject: Int
    /// All objects together.
    public var total: Int

    public init(perObject: Int = 256 * 1024, total: Int = 32 * 1024 * 1024) {
        self.perObject = perObject
        self.total = total
    }

    /// An object as it arrives, its tape cut to size: kept when it is within `perObject`,
    /// else not.
    public func admit(_ object: JSONValue) -> StoredObject {
        let compact = object.compacted()
        let bytes = compact.document.retainedBytes
        return bytes <= perObject ? .kept(compact) : .notKept(.tooLarge(bytes: bytes, limit: perObject))
    }

    /// `object`, or not kept when keeping it would take the total past `total` with
    /// `used` bytes already kept.
    public func within(total used: Int, _ object: StoredObject) -> StoredObject {
        guard object.keptBytes > 0, used + object.keptBytes > total else { return object }
        return .notKept(.budgetSpent(limit: total))
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
