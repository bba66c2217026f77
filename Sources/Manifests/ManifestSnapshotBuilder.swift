import JSON
import StreamRules

/// The `ClusterSnapshot` of a set of manifests: what `check --resolve-references` judges
/// references against. Objects are taken as they would be stored (namespaces defaulted);
/// a Secret's `data` and `stringData` keys are its keys (their values are not kept).
struct ManifestSnapshotBuilder {
    let defaultNamespace: String
    private(set) var snapshot = ClusterSnapshot()

    init(defaultNamespace: String) {
        self.defaultNamespace = defaultNamespace
    }

    mutating func add(_ object: JSONValue) {
        guard object.isObject, let kind = object["kind"]?.string, let apiVersion = object["apiVersion"]?.string,
              let metadata = object["metadata"], let name = metadata["name"]?.string, !name.isEmpty else { return }
        let namespace = metadata["namespace"]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? defaultNamespace
        let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
        switch (group, kind) {
        case ("", "Secret"):
            let labelled = metadata["labels"]?[member: ClusterSnapshot.credentialsLabelKey]?
                .isString(ClusterSnapshot.credentialsLabelValue) == true
            snapshot.secrets[namespace, default: [:]][name] = SecretRecord(hasCredentialsLabel: labelled)
            if labelled {
                var keys: [String] = []
                for field in ["data", "stringData"] {
                    guard let data = object[member: field], data.isObject else { continue }
                    keys += data.members.compactMap { $0.key.string }
                }
                snapshot.credentialKeys[namespace, default: [:]][name] = keys
            }
        case (StreamKind.group, "AtlasProject"):
            snapshot.projects[namespace, default: [:]][name] = ProjectRecord()
        case (StreamKind.group, StreamKind.connection.rawValue):
            snapshot.connections[namespace, default: [:]][name] = ConnectionRecord(specName: object["spec"]?["name"]?.string ?? "")
        case (StreamKind.group, StreamKind.instance.rawValue):
            snapshot.setInstance(InstanceRecord(registry: InstanceRecord.registry(of: object["spec"], namespace: namespace),
                                                isBeingDeleted: false),
                                 at: ObjectReference(namespace: namespace, name: name))
        default:
            break
        }
    }
}
