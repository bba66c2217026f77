import HTTPServer
import JSON
import StreamRules
import SystemSupport
import Units
import YAML

/// Why a configuration file was refused: where, which key, and what is wrong with it.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    /// The dotted key, e.g. `limits.maxRequestBody` (empty for the file as a whole).
    public var key: String
    public var reason: String

    public var description: String {
        key.isEmpty ? "\(file):\(line): \(reason)" : "\(file):\(line): \(key): \(reason)"
    }
}

/// Size limits from the file; nil where the file says nothing.
public struct ConfiguredLimits: Sendable, Equatable {
    public var maxRequestBody: Int?
    public var maxHeaderBytes: Int?
    public var maxHeaderFields: Int?
    public var maxConnections: Int?
    public var maxNestingDepth: Int?
    /// Request bodies held in memory at once, across connections.
    public var maxBufferedBodies: Int?
}

/// Timeouts from the file; nil where the file says nothing.
public struct ConfiguredTimeouts: Sendable, Equatable {
    public var tlsHandshake: Duration?
    public var requestHeaders: Duration?
    public var requestBody: Duration?
    public var idle: Duration?
    public var shutdownDelay: Duration?
    public var drainTimeout: Duration?
    /// An event loop busy this long is stalled.
    public var loopStall: Duration?
}

/// Cluster access from the file; nil where the file says nothing. The
/// reference policies themselves are rule settings (`RuleConfiguration`).
public struct ConfiguredCluster: Sendable, Equatable {
    /// `cluster.lookups`: whether to watch the cluster at all.
    public var lookups: Bool?
    /// `cluster.watchNamespaces`: the namespaces to follow (the operator's).
    public var watchNamespaces: [String]?
    /// `cluster.staleAfter`: a part of the cache with no event, bookmark or list for this
    /// long is stale.
    public var staleAfter: Duration?
    /// `cluster.notReadyWhenStale`: `/readyz` answers 503 while the cache is stale.
    public var notReadyWhenStale: Bool?
    /// `cluster.watchIdleTimeout`: a watch silent this long is reconnected.
    public var watchIdleTimeout: Duration?
    /// `cluster.listPageTimeout`: a LIST page must arrive whole within this.
    public var listPageTimeout: Duration?
}

/// The audit from the file; nil where the file says nothing.
public struct ConfiguredAudit: Sendable, Equatable {
    /// `audit.interval`: every object judged again this often.
    public var interval: Duration?
    /// `audit.reports`: write PolicyReports (the leader only).
    public var reports: Bool?
    /// `audit.leaseName`, `audit.leaseNamespace`: the Lease the replicas elect the report
    /// writer with.
    public var leaseName: String?
    public var leaseNamespace: String?
    /// `audit.leaseDuration`, `audit.renewDeadline`, `audit.retryPeriod`: the election's timing.
    public var leaseDuration: Duration?
    public var renewDeadline: Duration?
    public var retryPeriod: Duration?
}

/// A health or metrics listener: at an address, or off.
public enum ConfiguredListener: Sendable, Equatable {
    case off
    case address(ListenAddress)

    /// `off`, or `HOST:PORT` as `ListenAddress` reads it; nil for anything else.
    public init?(_ text: String) {
        if text == "off" {
            self = .off
        } else if let address = ListenAddress(text) {
            self = .address(address)
        } else {
            return nil
        }
    }
}

/// The health and metrics listeners from the file; nil where the file says nothing.
public struct ConfiguredListeners: Sendable, Equatable {
    /// `listeners.health`: `/healthz` and `/readyz` over plain HTTP.
    public var health: ConfiguredListener?
    /// `listeners.metrics`: `/metrics` over TLS with the serving certificate.
    public var metrics: ConfiguredListener?
    /// `listeners.metricsInsecure`: `/metrics` over plain HTTP instead.
    public var metricsInsecure: Bool?
}

/// The YAML configuration file (`--config`): rule data, reference policies, limits,
/// timeouts and listeners. Anything it does not know, or cannot read, stops the program with the key
/// and its line: the server never starts half-configured.
public struct ConfigurationFile: Sendable, Equatable {
    public var rules = RuleConfiguration()
    public var limits = ConfiguredLimits()
    public var timeouts = ConfiguredTimeouts()
    public var cluster = ConfiguredCluster()
    public var listeners = ConfiguredListeners()
    public var audit = ConfiguredAudit()

    public init() {}

    public static func load(path: String) throws(ConfigurationError) -> ConfigurationFile {
        let bytes: [UInt8]
        do {
            bytes = try FileContents.read(path: path)
        } catch {
            throw ConfigurationError(file: path, line: 0, key: "", reason: error.description)
        }
        return try parse(bytes, file: path)
    }

    public static func parse(_ bytes: [UInt8], file: String) throws(ConfigurationError) -> ConfigurationFile {
        let documents: [YAMLDocument]
        do {
            documents = try YAMLLoader.load(bytes)
        } catch {
            throw ConfigurationError(file: file, line: error.mark.line, key: "", reason: "YAML: \(error)")
        }
        let content = documents.filter { !$0.value.isNull }
        guard content.count <= 1 else {
            throw ConfigurationError(file: file, line: content[1].start.line, key: "", reason: "expected one YAML document")
        }
        var configuration = ConfigurationFile()
        guard let document = content.first else { return configuration }
        var reader = Reader(file: file, document: document)
        try reader.read(into: &configuration)
        return configuration
    }
}

/// The keys of one mapping of the file, in the order the error message lists them: a
/// switch over them is exhaustive, so a key added here must be read.
private enum TopKey: String, CaseIterable { case rules, enforcement, limits, timeouts, cluster, listeners, audit }
private enum AuditKey: String, CaseIterable {
    case interval, reports, leaseName, leaseNamespace, leaseDuration, renewDeadline, retryPeriod
}
private enum EnforcementKey: String, CaseIterable { case `default`, rules }
private enum ClusterKey: String, CaseIterable {
    case lookups, watchNamespaces, missingReferences, deleteReferencedConnection, notReady, staleAfter, notReadyWhenStale
    case watchIdleTimeout, listPageTimeout
}
private enum RuleKey: String, CaseIterable {
    case regions, sampleSources, builtInRoles, secretReferences, registryReferences, kafkaCertificate, operatorVersion
}
private enum PolicyKey: String, CaseIterable { case policy, allowedNamespaces }
private enum LimitKey: String, CaseIterable {
    case maxRequestBody, maxHeaderBytes, maxHeaderFields, maxConnections, maxNestingDepth, maxBufferedBodies
}
private enum ListenerKey: String, CaseIterable { case health, metrics, metricsInsecure }
private enum TimeoutKey: String, CaseIterable {
    case tlsHandshake, requestHeaders, requestBody, idle, shutdownDelay, drainTimeout, loopStall
}

/// Walks the document with the key path and line of every value at hand.
private struct Reader {
    let file: String
    let document: YAMLDocument

    func fail(_ value: JSONValue, _ key: String, _ reason: String) -> ConfigurationError {
        ConfigurationError(file: file, line: document.mark(of: value)?.line ?? 0, key: key, reason: reason)
    }

    /// Members of a mapping whose keys are `Key`'s cases, refusing any other key.
    func members<Key: CaseIterable & RawRepresentable<String>>(_ value: JSONValue, _ key: String,
                                                               as: Key.Type) throws(ConfigurationError) -> [(Key, JSONValue)] {
        var out: [(Key, JSONValue)] = []
        for (name, v, _) in try members(value, key, known: Key.allCases.map(\.rawValue)) {
            guard let known = Key(rawValue: name) else { continue }  // members() refused it already
            out.append((known, v))
        }
        return out
    }

    /// Members of a mapping, refusing keys outside `known`.
    func members(_ value: JSONValue, _ key: String, known: [String]) throws(ConfigurationError) -> [(String, JSONValue, JSONValue)] {
        guard value.isObject else { throw fail(value, key, "must be a mapping") }
        var out: [(String, JSONValue, JSONValue)] = []
        for (k, v) in value.members {
            let name = k.string ?? ""
            let path = key.isEmpty ? name : key + "." + name
            guard known.contains(name) else {
                throw fail(k, path, "unknown key; known keys here: " + known.joined(separator: ", "))
            }
            out.append((name, v, k))
        }
        return out
    }

    func string(_ value: JSONValue, _ key: String) throws(ConfigurationError) -> String {
        guard let text = value.string, !text.isEmpty else { throw fail(value, key, "must be a non-empty string") }
        return text
    }

    func strings(_ value: JSONValue, _ key: String, allowEmpty: Bool = true) throws(ConfigurationError) -> [String] {
        guard value.isArray else { throw fail(value, key, "must be a list of strings") }
        var out: [String] = []
        for (i, element) in value.elements.enumerated() {
            out.append(try string(element, "\(key)[\(i)]"))
        }
        if !allowEmpty && out.isEmpty { throw fail(value, key, "must not be empty") }
        return out
    }

    func positiveInt(_ value: JSONValue, _ key: String) throws(ConfigurationError) -> Int {
        guard let n = value.int, n > 0 else { throw fail(value, key, "must be a positive integer") }
        return n
    }

    func size(_ value: JSONValue, _ key: String) throws(ConfigurationError) -> Int {
        if let n = value.int, n > 0 { return n }
        guard let text = value.string, let n = ByteSize.parse(text), n > 0 else {
            throw fail(value, key, "must be a size in bytes, or with Ki, Mi or Gi (e.g. 7Mi)")
        }
        return n
    }

    func duration(_ value: JSONValue, _ key: String) throws(ConfigurationError) -> Duration {
        guard let text = value.string, let ms = GoDuration.milliseconds(text) else {
            throw fail(value, key, "must be a Go duration such as 500ms, 10s or 1m30s")
        }
        return .milliseconds(ms)
    }

    mutating func read(into configuration: inout ConfigurationFile) throws(ConfigurationError) {
        for (name, value) in try members(document.value, "", as: TopKey.self) {
            switch name {
            case .rules: try readRules(value, into: &configuration.rules)
            case .enforcement: try readEnforcement(value, into: &configuration.rules.enforcement)
            case .limits: try readLimits(value, into: &configuration.limits)
            case .timeouts: try readTimeouts(value, into: &configuration.timeouts)
            case .cluster: try readCluster(value, into: &configuration)
            case .listeners: try readListeners(value, into: &configuration.listeners)
            case .audit: try readAudit(value, into: &configuration.audit)
            }
        }
    }

    /// `enforcement.default` (deny or warn) and `enforcement.rules` (rule id: deny, warn
    /// or off); an id that is not a rule's is refused with its line.
    private func readEnforcement(_ value: JSONValue, into enforcement: inout Enforcement) throws(ConfigurationError) {
        for (name, v) in try members(value, "enforcement", as: EnforcementKey.self) {
            switch name {
            case .default:
                let text = try string(v, "enforcement.default")
                guard let action = EnforcementAction(rawValue: text), action != .off else {
                    throw fail(v, "enforcement.default", "must be deny or warn, got \(text)")
                }
                enforcement.default = action
            case .rules:
                guard v.isObject else { throw fail(v, "enforcement.rules", "must be a mapping of rule ids to deny, warn or off") }
                for (k, setting) in v.members {
                    let id = k.string ?? ""
                    guard let rule = RuleID(rawValue: id) else {
                        throw fail(k, "enforcement.rules." + id, "unknown rule id; `atlas-stream-webhook rules` lists them")
                    }
                    // YAML 1.1 reads a bare `off` as false.
                    if setting.kind == .false {
                        enforcement.rules[rule] = .off
                        continue
                    }
                    let text = try string(setting, "enforcement.rules." + id)
                    guard let action = EnforcementAction(rawValue: text) else {
                        throw fail(setting, "enforcement.rules." + id, "must be deny, warn or off, got \(text)")
                    }
                    enforcement.rules[rule] = action
                }
            }
        }
    }

    private func readRules(_ value: JSONValue, into rules: inout RuleConfiguration) throws(ConfigurationError) {
        for (name, v) in try members(value, "rules", as: RuleKey.self) {
            let key = "rules." + name.rawValue
            switch name {
            case .regions:
                var table: [(provider: String, regions: [String])] = []
                let providers = ["AWS", "AZURE", "GCP", "TENANT", "SERVERLESS"]
                for (provider, list, _) in try members(v, key, known: providers) {
                    table.append((provider, try strings(list, key + "." + provider, allowEmpty: false)))
                }
                if table.isEmpty { throw fail(v, key, "must name at least one provider") }
                rules.regions = table
            case .sampleSources:
                rules.sampleSources = try strings(v, key)
            case .builtInRoles:
                rules.builtInRoles = try strings(v, key)
            case .secretReferences:
                rules.secretReferences = try policy(v, key)
            case .registryReferences:
                rules.registryReferences = try policy(v, key)
            case .kafkaCertificate:
                guard let text = v.string, let rule = KafkaCertificateRule(rawValue: text) else {
                    throw fail(v, key, "must be always or ssl")
                }
                rules.kafkaCertificate = rule
            case .operatorVersion:
                guard let text = v.string, let version = OperatorVersion(text) else {
                    throw fail(v, key, "must be the operator's semantic version, such as 2.15.1")
                }
                rules.operatorVersion = version
            }
        }
    }

    /// `{policy: allow}` or `{policy: deny, allowedNamespaces: [...]}`.
    private func policy(_ value: JSONValue, _ key: String) throws(ConfigurationError) -> ReferencePolicy {
        var allow: Bool?
        var namespaces: [String] = []
        var namespacesValue: JSONValue?
        for (name, v) in try members(value, key, as: PolicyKey.self) {
            switch name {
            case .policy:
                switch try string(v, key + ".policy") {
                case "allow": allow = true
                case "deny": allow = false
                default: throw fail(v, key + ".policy", "must be allow or deny")
                }
            case .allowedNamespaces:
                namespaces = try strings(v, key + ".allowedNamespaces")
                namespacesValue = v
            }
        }
        guard let allow else { throw fail(value, key + ".policy", "required: allow or deny") }
        if allow, let namespacesValue, !namespaces.isEmpty {
            throw fail(namespacesValue, key + ".allowedNamespaces", "only meaningful with policy: deny")
        }
        return allow ? .allowAll : .allowList(namespaces)
    }

    private func readCluster(_ value: JSONValue, into configuration: inout ConfigurationFile) throws(ConfigurationError) {
        for (name, v) in try members(value, "cluster", as: ClusterKey.self) {
            let key = "cluster." + name.rawValue
            switch name {
            case .lookups:
                guard let on = v.bool else { throw fail(v, key, "must be true or false") }
                configuration.cluster.lookups = on
            case .watchNamespaces:
                configuration.cluster.watchNamespaces = try strings(v, key, allowEmpty: false)
            case .missingReferences:
                guard let text = v.string, let policy = MissingReferencePolicy(rawValue: text) else {
                    throw fail(v, key, "must be warn or deny")
                }
                configuration.rules.missingReferences = policy
            case .deleteReferencedConnection:
                guard let text = v.string, let policy = ReferencedDeletePolicy(rawValue: text) else {
                    throw fail(v, key, "must be deny, warn or allow")
                }
                configuration.rules.deleteReferencedConnection = policy
            case .notReady:
                guard let text = v.string, let policy = CacheNotReadyPolicy(rawValue: text) else {
                    throw fail(v, key, "must be allow or deny")
                }
                configuration.rules.cacheNotReady = policy
            case .staleAfter:
                configuration.cluster.staleAfter = try duration(v, key)
            case .notReadyWhenStale:
                guard let on = v.bool else { throw fail(v, key, "must be true or false") }
                configuration.cluster.notReadyWhenStale = on
            case .watchIdleTimeout:
                configuration.cluster.watchIdleTimeout = try duration(v, key)
            case .listPageTimeout:
                configuration.cluster.listPageTimeout = try duration(v, key)
            }
        }
    }

    private func readAudit(_ value: JSONValue, into audit: inout ConfiguredAudit) throws(ConfigurationError) {
        for (name, v) in try members(value, "audit", as: AuditKey.self) {
            let key = "audit." + name.rawValue
            switch name {
            case .interval: audit.interval = try duration(v, key)
            case .reports:
                guard let on = v.bool else { throw fail(v, key, "must be true or false") }
                audit.reports = on
            case .leaseName: audit.leaseName = try string(v, key)
            case .leaseNamespace: audit.leaseNamespace = try string(v, key)
            case .leaseDuration: audit.leaseDuration = try duration(v, key)
            case .renewDeadline: audit.renewDeadline = try duration(v, key)
            case .retryPeriod: audit.retryPeriod = try duration(v, key)
            }
        }
    }

    private func readLimits(_ value: JSONValue, into limits: inout ConfiguredLimits) throws(ConfigurationError) {
        for (name, v) in try members(value, "limits", as: LimitKey.self) {
            let key = "limits." + name.rawValue
            switch name {
            case .maxRequestBody: limits.maxRequestBody = try size(v, key)
            case .maxHeaderBytes: limits.maxHeaderBytes = try size(v, key)
            case .maxHeaderFields: limits.maxHeaderFields = try positiveInt(v, key)
            case .maxConnections: limits.maxConnections = try positiveInt(v, key)
            case .maxNestingDepth: limits.maxNestingDepth = try positiveInt(v, key)
            case .maxBufferedBodies: limits.maxBufferedBodies = try size(v, key)
            }
        }
    }

    private func readListeners(_ value: JSONValue, into listeners: inout ConfiguredListeners) throws(ConfigurationError) {
        for (name, v) in try members(value, "listeners", as: ListenerKey.self) {
            let key = "listeners." + name.rawValue
            switch name {
            case .health: listeners.health = try listener(v, key)
            case .metrics: listeners.metrics = try listener(v, key)
            case .metricsInsecure:
                guard let on = v.bool else { throw fail(v, key, "must be true or false") }
                listeners.metricsInsecure = on
            }
        }
    }

    /// `HOST:PORT` or `off`.
    private func listener(_ value: JSONValue, _ key: String) throws(ConfigurationError) -> ConfiguredListener {
        // YAML 1.1 reads a bare `off` as false.
        if value.kind == .false { return .off }
        guard let text = value.string, let listener = ConfiguredListener(text) else {
            throw fail(value, key, "must be HOST:PORT (such as 0.0.0.0:8081 or [::]:8081) or off")
        }
        return listener
    }

    private func readTimeouts(_ value: JSONValue, into timeouts: inout ConfiguredTimeouts) throws(ConfigurationError) {
        for (name, v) in try members(value, "timeouts", as: TimeoutKey.self) {
            let time = try duration(v, "timeouts." + name.rawValue)
            switch name {
            case .tlsHandshake: timeouts.tlsHandshake = time
            case .requestHeaders: timeouts.requestHeaders = time
            case .requestBody: timeouts.requestBody = time
            case .idle: timeouts.idle = time
            case .shutdownDelay: timeouts.shutdownDelay = time
            case .drainTimeout: timeouts.drainTimeout = time
            case .loopStall: timeouts.loopStall = time
            }
        }
    }
}

extension ConfigurationFile {
    /// Every key the file accepts, dotted (`limits.maxRequestBody`); where the user names
    /// the keys of a mapping, a placeholder stands for them (`rules.regions.<PROVIDER>`).
    /// The switches are exhaustive: a key added to the reader is listed here.
    public static var keys: [String] {
        TopKey.allCases.flatMap { top -> [String] in
            let nested: [String]
            switch top {
            case .rules:
                nested = RuleKey.allCases.flatMap { key -> [String] in
                    switch key {
                    case .regions: return ["regions.<PROVIDER>"]
                    case .secretReferences, .registryReferences: return PolicyKey.allCases.map { key.rawValue + "." + $0.rawValue }
                    case .sampleSources, .builtInRoles, .kafkaCertificate, .operatorVersion: return [key.rawValue]
                    }
                }
            case .enforcement:
                nested = EnforcementKey.allCases.map { key in
                    switch key {
                    case .default: return key.rawValue
                    case .rules: return key.rawValue + ".<rule-id>"
                    }
                }
            case .limits: nested = LimitKey.allCases.map(\.rawValue)
            case .timeouts: nested = TimeoutKey.allCases.map(\.rawValue)
            case .cluster: nested = ClusterKey.allCases.map(\.rawValue)
            case .listeners: nested = ListenerKey.allCases.map(\.rawValue)
            case .audit: nested = AuditKey.allCases.map(\.rawValue)
            }
            return nested.map { top.rawValue + "." + $0 }
        }
    }
}
