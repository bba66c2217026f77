import JSON
import StreamRules

/// The `ClusterSnapshot` of a set of manifests: what `check --resolve-references` judges
/// references against. Objects are taken as they would be stored (namespaces defaulted)
/// and made into records as the cluster cache makes them.
public struct ManifestSnapshotBuilder {
    let defaultNamespace: String
    public private(set) var snapshot = ClusterSnapshot()

    public init(defaultNamespace: String) {
        self.defaultNamespace = defaultNamespace
    }

    public mutating func add(_ object: JSONValue) {
        guard object.isObject, let kind = object["kind"]?.string, let apiVersion = object["apiVersion"]?.string,
              let metadata = object["metadata"], let name = metadata["name"]?.string, !name.isEmpty else { return }
        let namespace = metadata["namespace"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? defaultNamespace
        let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
        switch (group, kind) {
        case ("", "Secret"):
            let record = SecretRecord(object: object)
            snapshot.secrets[namespace, default: [:]][name] = record
            // As the cache's watch of labelled Secrets: keys only for those.
            if record.hasCredentialsLabel { snapshot.credentialKeys[namespace, default: [:]][name] = SecretRecord.keyNames(of: object) }
        case (StreamKind.group, "AtlasProject"):
            snapshot.projects[namespace, default: [:]][name] = ProjectRecord()
        case (StreamKind.group, StreamKind.connection.rawValue):
            snapshot.connections[namespace, default: [:]][name] = ConnectionRecord(object: object)
        case (StreamKind.group, StreamKind.instance.rawValue):
            snapshot.setInstance(InstanceRecord(object: object, namespace: namespace), at: ObjectReference(namespace: namespace, name: name))
        default:
            break
        }
    }
}
