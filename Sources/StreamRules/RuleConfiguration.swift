/// Which namespaces a reference may point into, beyond the referring object's own.
public enum ReferencePolicy: Sendable, Equatable {
    /// Any namespace.
    case allowAll
    /// Only the object's own namespace and these.
    case allowList([String])

    public static let ownNamespaceOnly = ReferencePolicy.allowList([])

    public func permits(_ namespace: String) -> Bool {
        switch self {
        case .allowAll: return true
        case .allowList(let list): return list.contains(namespace)
        }
    }

    /// `the connection's own namespace, "a", "b"`.
    public func describeAllowed(own: String) -> String {
        switch self {
        case .allowAll: return "any namespace"
        case .allowList(let list): return ([own] + list.map { goQuote($0) }).joined(separator: ", ")
        }
    }
}

/// Which Kafka connections need `security.certificate`.
public enum KafkaCertificateRule: String, Sendable, Equatable, CaseIterable {
    /// Every Kafka connection: AKO (v2.x) reads key `certificate` whatever the protocol.
    case always
    /// SSL connections only, for operator builds that read it only then.
    case ssl
}

/// The rule data and policies, with the built-in defaults.
public struct RuleConfiguration: Sendable, Equatable {
    /// Regions per provider served by Atlas Stream Processing; a provider not listed
    /// here is not supported.
    public var regions: [(provider: String, regions: [String])]
    public var sampleSources: [String]
    /// The built-in database roles a Cluster connection may name.
    public var builtInRoles: [String]
    /// Secret references (`credentials`, `certificate`) outside the connection's namespace.
    public var secretReferences: ReferencePolicy
    /// `connectionRegistry` entries outside the instance's namespace.
    public var registryReferences: ReferencePolicy
    public var kafkaCertificate: KafkaCertificateRule
    /// The operator's version, when known: a `mongodb.com/atlas-resource-version` label
    /// newer than it is refused (AKO would not reconcile the object).
    public var operatorVersion: OperatorVersion?
    /// A reference to an object the cluster does not hold: warned of, or denied.
    public var missingReferences: MissingReferencePolicy
    /// DELETE of a connection an instance still lists.
    public var deleteReferencedConnection: ReferencedDeletePolicy
    /// What a review that needs the cluster gets while the cache cannot back a verdict.
    public var cacheNotReady: CacheNotReadyPolicy
    /// What each rule's findings cost (deny, warn, off).
    public var enforcement: Enforcement

    public init(regions: [(provider: String, regions: [String])] = RuleConfiguration.builtInRegions,
                sampleSources: [String] = ["sample_stream_solar"],
                builtInRoles: [String] = ["atlasAdmin", "readWriteAnyDatabase", "readAnyDatabase"],
                secretReferences: ReferencePolicy = .ownNamespaceOnly,
                registryReferences: ReferencePolicy = .allowAll,
                kafkaCertificate: KafkaCertificateRule = .always,
                operatorVersion: OperatorVersion? = nil,
                missingReferences: MissingReferencePolicy = .warn,
                deleteReferencedConnection: ReferencedDeletePolicy = .deny,
                cacheNotReady: CacheNotReadyPolicy = .allow,
                enforcement: Enforcement = Enforcement()) {
        self.regions = regions
        self.sampleSources = sampleSources
        self.builtInRoles = builtInRoles
        self.secretReferences = secretReferences
        self.registryReferences = registryReferences
        self.kafkaCertificate = kafkaCertificate
        self.operatorVersion = operatorVersion
        self.missingReferences = missingReferences
        self.deleteReferencedConnection = deleteReferencedConnection
        self.cacheNotReady = cacheNotReady
        self.enforcement = enforcement
    }

    public static let builtInRegions: [(provider: String, regions: [String])] = [
        ("AWS", ["SYDNEY_AUS", "MUMBAI_IND", "FRANKFURT_DEU", "DUBLIN_IRL", "LONDON_GBR", "VIRGINIA_USA", "OHIO_USA",
                 "OREGON_USA", "SAOPAULO_BRA", "MONTREAL_CAN", "TOKYO_JPN", "SINGAPORE_SGP"]),
        ("AZURE", ["eastus", "westus", "eastus2", "westeurope"]),
        ("GCP", ["US_CENTRAL1", "EUROPE_WEST1", "US_EAST4"]),
    ]

    func regions(of provider: String) -> [String]? {
        regions.first { $0.provider == provider }?.regions
    }

    public static func == (a: RuleConfiguration, b: RuleConfiguration) -> Bool {
        a.regions.map(\.provider) == b.regions.map(\.provider) && a.regions.map(\.regions) == b.regions.map(\.regions)
            && a.sampleSources == b.sampleSources && a.builtInRoles == b.builtInRoles
            && a.secretReferences == b.secretReferences && a.registryReferences == b.registryReferences
            && a.kafkaCertificate == b.kafkaCertificate && a.operatorVersion == b.operatorVersion
            && a.missingReferences == b.missingReferences && a.deleteReferencedConnection == b.deleteReferencedConnection
            && a.cacheNotReady == b.cacheNotReady && a.enforcement == b.enforcement
    }
}
