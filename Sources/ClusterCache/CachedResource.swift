import JSON
import KubernetesClient
import StreamRules

/// The five lists the cache follows (SPEC section 11), each a label value of the cache
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
        case .secrets: return ResourceType(apiPrefix: "/api/v1", plural: "secrets", metadataOnly: true)
        case .credentialSecrets:
            return ResourceType(apiPrefix: "/api/v1", plural: "secrets",
                                labelSelector: "\(ClusterSnapshot.credentialsLabelKey)=\(ClusterSnapshot.credentialsLabelValue)")
        case .connections: return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasstreamconnections")
        case .instances: return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasstreaminstances")
        case .projects: return ResourceType(apiPrefix: Self.atlasAPI, plural: "atlasprojects")
        }
    }
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
}

/// The slim records: what the rules read of each object, nothing more. A Secret's
/// values are never copied out of the answer they arrived in.
enum Records {
    static func secret(_ object: JSONValue) -> SecretRecord {
        let value = object["metadata"]?["labels"]?[member: ClusterSnapshot.credentialsLabelKey]
        return SecretRecord(hasCredentialsLabel: value?.isString(ClusterSnapshot.credentialsLabelValue) == true)
    }

    /// The names of a Secret's `data` keys.
    static func keyNames(_ object: JSONValue) -> [String] {
        guard let data = object["data"], data.isObject else { return [] }
        return data.members.compactMap { $0.key.string }
    }

    static func connection(_ object: JSONValue) -> ConnectionRecord {
        ConnectionRecord(specName: object["spec"]?["name"]?.string ?? "")
    }

    static func instance(_ object: JSONValue, namespace: String) -> InstanceRecord {
        let deleting = object["metadata"]?["deletionTimestamp"].map { !$0.isNull } ?? false
        return InstanceRecord(registry: InstanceRecord.registry(of: object["spec"], namespace: namespace),
                              isBeingDeleted: deleting)
    }
}
