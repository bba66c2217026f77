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
            return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasstreamconnections",
                                kept: ["metadata": Self.metadata, "spec": .members(["name": .all])])
        case .instances:
            let entry = JSONKeep.members(["name": .all, "namespace": .all])
            return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasstreaminstances",
                                kept: ["metadata": Self.metadata, "spec": .members(["connectionRegistry": .elements(entry)])])
        case .projects: return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasprojects", kept: Self.metadataOnly)
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
