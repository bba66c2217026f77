import JSON

/// The member names the rules read, prepared once (a literal key builds its words at each
/// lookup): `spec[.kafkaConfig]`. Those of every Kubernetes object (`metadata`, `name`,
/// `namespace`) are public: the admission decoder reads them too.
extension JSONKey {
    static let annotations: JSONKey = "annotations"
    static let authentication: JSONKey = "authentication"
    static let bootstrapServers: JSONKey = "bootstrapServers"
    static let certificate: JSONKey = "certificate"
    static let clusterConfig: JSONKey = "clusterConfig"
    static let config: JSONKey = "config"
    static let data: JSONKey = "data"
    static let deletionTimestamp: JSONKey = "deletionTimestamp"
    static let connectionRegistry: JSONKey = "connectionRegistry"
    static let credentials: JSONKey = "credentials"
    static let kafkaConfig: JSONKey = "kafkaConfig"
    static let labels: JSONKey = "labels"
    static let mechanism: JSONKey = "mechanism"
    public static let metadata: JSONKey = "metadata"
    public static let name: JSONKey = "name"
    public static let namespace: JSONKey = "namespace"
    static let projectRef: JSONKey = "projectRef"
    static let `protocol`: JSONKey = "protocol"
    static let provider: JSONKey = "provider"
    static let region: JSONKey = "region"
    static let role: JSONKey = "role"
    static let security: JSONKey = "security"
    static let spec: JSONKey = "spec"
    static let stringData: JSONKey = "stringData"
    static let tier: JSONKey = "tier"
    static let type: JSONKey = "type"
}
