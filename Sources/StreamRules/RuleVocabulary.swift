/// The constants the rules judge by, for code outside the rules that must say the same
/// (a generated admission policy): each forwards to the rule code's own value, so none is
/// written twice.
public enum RuleVocabulary {
    public static let instanceTiers = InstanceRules.tiers
    public static let defaultProvider = InstanceRules.defaultProvider
    public static let defaultTier = InstanceRules.defaultTier
    public static let maxRegistryEntries = InstanceRules.maxRegistryEntries
    /// The tier warning as the answer shows it (`<field>: <text>`).
    public static let tierWarning = InstanceRules.tierWarning

    public static let connectionTypes = ConnectionRules.types
    public static let mechanisms = ConnectionRules.mechanisms
    public static let protocols = ConnectionRules.protocols
    public static let roleTypes = ConnectionRules.roleTypes
    public static let certificateAlwaysRequired = ConnectionRules.certificateAlwaysRequired
    public static let certificateRequiredForSSL = ConnectionRules.certificateRequiredForSSL
    public static let plaintextWarning = ConnectionRules.plaintextWarning
    public static let plainOverPlaintextWarning = ConnectionRules.plainOverPlaintextWarning
    /// `config` keys that override a typed field, and the field to set instead.
    public static let forbiddenConfigKeys = ConnectionRules.forbiddenConfigKeys
    public static let maxConfigKeys = ConnectionRules.maxConfigKeys
    public static let maxBootstrapServers = ConnectionRules.maxBootstrapServers
    public static let maxBootstrapServersBytes = ConnectionRules.maxBootstrapServersBytes
    public static let maxClusterNameBytes = ConnectionRules.maxClusterNameBytes
    /// What `bootstrapServers` entries are told, by problem.
    public static let serverEmpty = ConnectionRules.BootstrapServerProblem.empty.message
    public static let serverSpaces = ConnectionRules.BootstrapServerProblem.spaces.message
    public static let serverScheme = ConnectionRules.BootstrapServerProblem.scheme.message
    public static let serverNotHostPort = ConnectionRules.BootstrapServerProblem.notHostPort.message
    public static let serverUnbracketedIPv6 = ConnectionRules.BootstrapServerProblem.unbracketedIPv6.message
    public static let serverHost = ConnectionRules.BootstrapServerProblem.host.message
    public static let serverPort = ConnectionRules.BootstrapServerProblem.port.message

    public static let atlasNameMessage = atlasNameDetail
    public static let subdomainMessage = dns1123SubdomainMessage
    public static let labelMessage = dns1123LabelMessage
    public static let immutableMessage = immutableDetail
    
    public static let resourcePolicyAnnotation = OperatorMetadataRules.resourcePolicy.string
    public static let reconciliationPolicyAnnotation = OperatorMetadataRules.reconciliationPolicy.string
    public static let versionPolicyAnnotation = OperatorMetadataRules.versionPolicy.string
    public static let resourceVersionLabel = OperatorMetadataRules.resourceVersion.string
    public static let resourcePolicyValues = OperatorMetadataRules.resourcePolicyValues
    public static let reconciliationPolicyValues = OperatorMetadataRules.reconciliationPolicyValues
    public static let versionPolicyValues = OperatorMetadataRules.versionPolicyValues
    public static let versionFormatMessage = OperatorMetadataRules.versionFormat

    /// Bytes of a value an answer echoes before it is cut and `...` follows.
    public static let echoedValueBytes = maxEchoedValueBytes
    /// The prefix of a denial that rule enforcement `warn` turned into a warning.
    public static let wouldDenyPrefix = Enforcement.wouldDenyPrefix
}
