import JSON
import KubernetesClient
import StreamRules

/// The five lists the cache follows, each a label value of the cache
/// metrics and a field of the snapshot.
public enum CachedResource: String, Sendable, CaseIterable {
    /// Every Secret, as metadata only: existence and the credentials label.
    case secrets
    /// Secrets labelled `atlas.mongodb.com/type=credentials`, in full: only the names of
    /// their data keys are kept.
    case credentialSecrets = "credential_secrets"
    case connections = "atlasstreamconnections"
    case instances = "atlasstreaminstances"
    case projects = "atlasprojects"

    static let atlasAPI = "/apis/atlas.mongodb.com/v1"

    var type: ResourceType {
        switch self {
        case .secrets: return ResourceType(apiPrefix: "/api/v1", plural: "secrets", metadataOnly: true, kept: Self.metadataOnly)
        case .credentialSecrets:
            return ResourceType(apiPrefix: "/api/v1", plural: "secrets",
                                labelSelector: "\(ClusterSnapshot.credentialsLabelKey)=\(ClusterSnapshot.credentialsLabelValue)",
                                kept: ["metadata": Self.metadata, "data": .memberNames])
        case .connections:
            return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasstreamconnections", kept: Self.judged)
        case .instances:
            return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasstreaminstances", kept: Self.judged)
        case .projects: return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasprojects", kept: Self.metadataOnly)
        }
    }

    /// What a 401 or 403 answer to a `verb` (list, watch) of this resource means, for
    /// the person who has to fix it; nil for any other code.
    func refusal(_ code: Int, verb: String, namespace: String?) -> String? {
        switch code {
        case 401: return "not authenticated (token missing, expired or not accepted)"
        case 403:
            let scope = namespace.map { "in namespace \($0)" } ?? "cluster-wide"
            return "missing permission: \(verb) \(type.plural) (\(type.apiPrefix)) \(scope)"
        default: return nil
        }
    }

    /// What the records read of `metadata`: identity, deletion, and the credentials
    /// label. Annotations (which may hold a copy of a Secret's data in kubectl's
    /// last-applied-configuration) and managedFields are skipped as they stream by.
    static let metadata = JSONKeep.members([
        "name": .all, "namespace": .all, "uid": .all, "resourceVersion": .all, "deletionTimestamp": .all,
        "labels": .members([ClusterSnapshot.credentialsLabelKey: .all]),
    ])
    static let metadataOnly: [String: JSONKeep] = ["metadata": metadata]

    /// What the audit judges of an AtlasStreamConnection or AtlasStreamInstance: its
    /// spec, and of its metadata the identity and the operator's annotations and label
    /// (not kubectl's last-applied copy, not managedFields, not status).
    static let judged: [String: JSONKeep] = [
        "metadata": .members([
            "name": .all, "namespace": .all, "uid": .all, "resourceVersion": .all, "deletionTimestamp": .all,
            "annotations": .members(Dictionary(uniqueKeysWithValues: OperatorMetadataRules.annotationKeys.map { ($0, JSONKeep.all) })),
            "labels": .members(Dictionary(uniqueKeysWithValues: OperatorMetadataRules.labelKeys.map { ($0, JSONKeep.all) })),
        ]),
        "spec": .all,
    ]
}

/// A record the reference rules read, and the object it was made of, kept for the audit
/// as the budget allows.
struct StoredRecord<Record: Sendable>: Sendable {
    var record: Record
    var object: StoredObject
}

/// Where an object is, and what version of it this is.
struct ObjectIdentity {
    var namespace: String
    var name: String
    var resourceVersion: String

    init?(_ object: JSONValue) {
        guard let metadata = object["metadata"], let name = metadata["name"]?.string, !name.isEmpty else { return nil }
        self.name = name
        namespace = metadata["namespace"]?.string ?? ""
        resourceVersion = metadata["resourceVersion"]?.string ?? ""
    }

    var reference: ObjectReference { ObjectReference(namespace: namespace, name: name) }
}

extension SnapshotWriter {
    /// Records with their objects: each object through the snapshot's budget, the
    /// records through `records`; a LIST's objects are held to the budget as they stream
    /// in, so the list being read never holds more than the budget either.
    static func stored<Slim>(_ kind: StreamKind, records: SnapshotWriter<Slim>) -> SnapshotWriter<StoredRecord<Slim>>
    where Record == StoredRecord<Slim> {
        SnapshotWriter<StoredRecord<Slim>>(set: { snapshot, reference, stored in
            snapshot.setStoredObject(stored?.object, kind: kind, at: reference)
            return records.set(&snapshot, reference, stored?.record)
        }, replace: { snapshot, namespace, stored in
            snapshot.replaceStoredObjects(kind: kind, in: namespace, with: stored.mapValues { $0.mapValues(\.object) })
            records.replace(&snapshot, namespace, stored.mapValues { $0.mapValues(\.record) })
        }, listed: { stored, listedBytes in
            var held = stored
            held.object = StoredObjectBudget().within(total: listedBytes, stored.object)
            listedBytes += held.object.keptBytes
            return held
        })
    }
}

/// Instances go in through the snapshot's own methods, which keep the index of which
/// instances list each connection.
extension SnapshotWriter<InstanceRecord> {
    static let instances = SnapshotWriter<InstanceRecord>(set: { snapshot, reference, record in
        let existed = snapshot.instances[reference.namespace]?[reference.name] != nil
        snapshot.setInstance(record, at: reference)
        return existed
    }, replace: { snapshot, namespace, records in
        snapshot.replaceInstances(in: namespace, with: records)
    })
}
