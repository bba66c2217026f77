import Glibc
import JSON

/// AtlasStreamConnection.
struct ConnectionRules: KindRules {
    let configuration: RuleConfiguration

    /// A connection type, and the block of `spec` that configures it: required for the
    /// type, forbidden for every other type.
    struct ConnectionType: Sendable {
        enum Validation: Sendable {
            case kafka, cluster, sample
        }

        let name: String
        let block: (key: JSONKey, path: FieldPath)?
        let validation: Validation
    }

    /// Every type, one entry each (errors for other types' blocks come in this order).
    static let connectionTypes = [
        ConnectionType(name: "Kafka", block: (.kafkaConfig, Paths.kafka), validation: .kafka),
        ConnectionType(name: "Cluster", block: (.clusterConfig, Paths.cluster), validation: .cluster),
        ConnectionType(name: "Sample", block: nil, validation: .sample),
    ]
    static let types = connectionTypes.map(\.name)

    static func connectionType(named name: String) -> ConnectionType? {
        for type in connectionTypes where type.name == name { return type }
        return nil
    }
    static let mechanisms = ["PLAIN", "SCRAM-256", "SCRAM-512"]
    static let protocols = ["PLAINTEXT", "SSL"]
    static let roleTypes = ["BUILT_IN", "CUSTOM"]
    static let certificateAlwaysRequired =
        #"the operator reads key "certificate" from this Secret for every Kafka connection"#
    static let certificateRequiredForSSL = "required when spec.kafkaConfig.security.protocol is SSL"
    static let plaintextWarning = "spec.kafkaConfig.security.protocol: PLAINTEXT sends stream data unencrypted; use SSL"
    static let plainOverPlaintextWarning =
        "spec.kafkaConfig.authentication.mechanism: PLAIN over PLAINTEXT sends the password in clear text"

    /// `config` keys that would override a typed field, and the field to use instead.
    static let forbiddenConfigKeys: [String: String] = [
        "bootstrap.servers": "spec.kafkaConfig.bootstrapServers",
        "security.protocol": "spec.kafkaConfig.security.protocol",
        "sasl.mechanism": "spec.kafkaConfig.authentication.mechanism",
        "sasl.mechanisms": "spec.kafkaConfig.authentication.mechanism",
        "sasl.username": "spec.kafkaConfig.authentication.credentials (a Secret)",
        "sasl.password": "spec.kafkaConfig.authentication.credentials (a Secret)",
        "sasl.jaas.config": "spec.kafkaConfig.authentication.credentials (a Secret)",
    ]

    /// The paths of the fields the rules visit, built once: a path made for every visit
    /// would cost an allocation each, error or not.
    enum Paths {
        static let spec = FieldPath("spec")
        static let name = spec.child("name")
        static let type = spec.child("type")
        static let kafka = spec.child("kafkaConfig")
        static let cluster = spec.child("clusterConfig")
        static let clusterName = cluster.child("name")
        static let role = cluster.child("role")
        static let roleName = role.child("name")
        static let roleType = role.child("type")
        static let servers = kafka.child("bootstrapServers")
        static let authentication = kafka.child("authentication")
        static let mechanism = authentication.child("mechanism")
        static let credentials = SecretReferencePaths(authentication.child("credentials"))
        static let security = kafka.child("security")
        static let securityProtocol = security.child("protocol")
        static let certificate = SecretReferencePaths(security.child("certificate"))
        static let config = kafka.child("config")
    }

    /// A `{name, namespace}` reference's paths.
    struct SecretReferencePaths: Sendable {
        let reference: FieldPath
        let name: FieldPath
        let namespace: FieldPath

        init(_ reference: FieldPath) {
            self.reference = reference
            name = reference.child("name")
            namespace = reference.child("namespace")
        }
    }

    static let forbiddenConfigKeyLengths = Set(forbiddenConfigKeys.keys.map(\.utf8.count))

    static func defaults(spec: JSONValue, namespace: String, configuration: RuleConfiguration,
                         into patch: inout [PatchOperation]) {
        guard !namespace.isEmpty, let kafka = spec[.kafkaConfig], kafka.isObject else { return }
        if needsNamespace(kafka[.authentication]?[.credentials]) {
            patch.append(PatchOperation(path: ["spec", "kafkaConfig", "authentication", "credentials", "namespace"],
                                        value: .string(namespace)))
        }
        if needsNamespace(kafka[.security]?[.certificate]) {
            patch.append(PatchOperation(path: ["spec", "kafkaConfig", "security", "certificate", "namespace"],
                                        value: .string(namespace)))
        }
    }

    static func validate(object: JSONValue, old: JSONValue?, namespace: String, configuration: RuleConfiguration,
                         checks: inout FieldChecks, warnings: inout [RuleWarning]) {
        ConnectionRules(configuration: configuration).validate(object: object, old: old, namespace: namespace,
                                                               checks: &checks, warnings: &warnings)
    }

    static func validateReferences(spec: JSONValue, namespace: String, references: ReferenceRules,
                                   checks: inout FieldChecks, warnings: inout [RuleWarning]) {
        references.validateConnection(spec: spec, namespace: namespace, checks: &checks, warnings: &warnings)
    }

    /// A Kafka connection's credentials or certificate Secret.
    static func hasReferences(_ spec: JSONValue) -> Bool {
        guard let kafka = spec[.kafkaConfig], kafka.isObject else { return false }
        return ReferenceRules.target(kafka[.authentication]?[.credentials], namespace: "") != nil
            || ReferenceRules.target(kafka[.security]?[.certificate], namespace: "") != nil
    }

    private func validate(object: JSONValue, old: JSONValue?, namespace: String, checks: inout FieldChecks,
                          warnings: inout [RuleWarning]) {
        guard let spec = object[.spec], !spec.isNull else { return checks.required(.specRequired, Paths.spec) }
        guard let spec = checks.object(spec, Paths.spec) else { return }

        let (name, typeValue) = spec[.name, .type]
        let namePath = Paths.name
        // Decoded only where the text is needed (a Sample source, an UPDATE).
        let nameValue = checks.nonEmptyString(name, namePath)
        if nameValue == nil && isDefaultable(name) { checks.required(.connectionNameRequired, namePath) }
        let typePath = Paths.type
        if let type = checks.oneOf(.connectionTypeSupported, typeValue, typePath, Self.types),
           let connectionType = Self.connectionType(named: type) {
            if let block = connectionType.block {
                let value = spec[block.key]
                if isEmptyValue(value) {
                    checks.required(.connectionConfigRequired, block.path)
                } else {
                    validateBlock(connectionType.validation, value, block.path, namespace: namespace, &checks, &warnings)
                }
            } else {
                validateBlock(connectionType.validation, nil, Paths.spec, namespace: namespace, &checks, &warnings)
            }
            for other in Self.connectionTypes where other.name != type {
                if let block = other.block, !isEmptyValue(spec[block.key]) {
                    checks.forbidden(.connectionConfigMatchesType, block.path, "may not be set when spec.type is \(type)")
                }
            }
        }

        if let oldSpec = old?[.spec], oldSpec.isObject {
            if let name = nameValue?.string, let oldName = oldSpec[.name]?.string, !oldName.isEmpty, name != oldName {
                checks.invalid(.connectionNameImmutable, namePath, name, immutableDetail)
            }
            if let newType = typeValue?.string, let oldType = oldSpec[.type]?.string, !oldType.isEmpty, newType != oldType {
                checks.invalid(.connectionTypeImmutable, typePath, newType, immutableDetail)
            }
        }

        /// A type's own checks: of its block, or (Sample) of the spec's name.
        func validateBlock(_ validation: ConnectionType.Validation, _ value: JSONValue?, _ path: FieldPath, namespace: String,
                           _ checks: inout FieldChecks, _ warnings: inout [RuleWarning]) {
            switch validation {
            case .kafka:
                validateKafka(value, path, namespace: namespace, &checks, &warnings)
            case .cluster:
                validateCluster(value, path, &checks)
            case .sample:
                if let name = nameValue?.string, !configuration.sampleSources.contains(name) {
                    checks.notSupported(.sampleSourceSupported, namePath, name, configuration.sampleSources)
                }
            }
        }
    }

    // MARK: - Cluster

    private func validateCluster(_ value: JSONValue?, _ path: FieldPath, _ checks: inout FieldChecks) {
        guard let config = checks.object(value, path) else { return }
        let (nameValue, roleValue) = config[.name, .role]
        let namePath = Paths.clusterName
        if let name = checks.string(nameValue, namePath) {
            if !isAtlasName(name) { checks.invalid(.clusterNameFormat, namePath, name, atlasNameDetail) }
            if name.utf8.count > Self.maxClusterNameBytes { checks.tooLong(.clusterNameFormat, namePath, max: Self.maxClusterNameBytes) }
        } else if isDefaultable(nameValue) {
            checks.required(.clusterNameRequired, namePath)
        }
        let rolePath = Paths.role
        guard !isEmptyValue(roleValue) else { return checks.required(.clusterRoleRequired, rolePath) }
        guard let role = checks.object(roleValue, rolePath) else { return }
        let roleNamePath = Paths.roleName
        let (roleNameValue, roleTypeValue) = role[.name, .type]
        let roleName = checks.string(roleNameValue, roleNamePath)
        if roleName == nil && isDefaultable(roleNameValue) { checks.required(.clusterRoleRequired, roleNamePath) }
        let roleType = checks.oneOf(.clusterRoleTypeSupported, roleTypeValue, Paths.roleType, Self.roleTypes)
        if roleType == "BUILT_IN", let roleName, !configuration.builtInRoles.contains(roleName) {
            checks.notSupported(.clusterBuiltInRoleSupported, roleNamePath, roleName, configuration.builtInRoles)
        }
    }

    /// Atlas cluster names are at most this many bytes.
    static let maxClusterNameBytes = 64

    // MARK: - Kafka

    private func validateKafka(_ value: JSONValue?, _ path: FieldPath, namespace: String, _ checks: inout FieldChecks,
                               _ warnings: inout [RuleWarning]) {
        guard let kafka = checks.object(value, path) else { return }

        // Each member looked up once (a lookup scans the object's keys).
        let (bootstrapServers, authentication, security, config) = kafka[.bootstrapServers, .authentication, .security, .config]
        let serversPath = Paths.servers
        if let servers = checks.nonEmptyString(bootstrapServers, serversPath) {
            servers.withUTF8 { Self.validateBootstrapServers($0, serversPath, &checks) }
        } else if isDefaultable(bootstrapServers) {
            checks.required(.bootstrapServersRequired, serversPath)
        }

        let authPath = Paths.authentication
        var mechanism: String?
        // An object is judged member by member below; only other values are looked into.
        if authentication?.isObject != true && isEmptyValue(authentication) {
            checks.required(.kafkaAuthenticationRequired, authPath)
        } else if let auth = checks.object(authentication, authPath) {
            let (mechanismValue, credentials) = auth[.mechanism, .credentials]
            mechanism = checks.oneOf(.kafkaMechanismSupported, mechanismValue, Paths.mechanism, Self.mechanisms)
            validateSecretReference(credentials, Paths.credentials, namespace: namespace,
                                    required: .kafkaCredentialsRequired, detail: nil, &checks)
        }

        let securityPath = Paths.security
        var protocolName: String?
        if security?.isObject != true && isEmptyValue(security) {
            checks.required(.kafkaSecurityRequired, securityPath)
        } else if let security = checks.object(security, securityPath) {
            let (protocolValue, certificate) = security[.`protocol`, .certificate]
            protocolName = checks.oneOf(.kafkaProtocolSupported, protocolValue, Paths.securityProtocol, Self.protocols)
            let certificatePath = Paths.certificate
            switch configuration.kafkaCertificate {
            case .always:
                validateSecretReference(certificate, certificatePath, namespace: namespace,
                                        required: .kafkaCertificateRequired, detail: Self.certificateAlwaysRequired, &checks)
            case .ssl where protocolName == "SSL":
                validateSecretReference(certificate, certificatePath, namespace: namespace, required: .kafkaCertificateRequired,
                                        detail: Self.certificateRequiredForSSL, &checks)
            case .ssl where !isEmptyValue(certificate):
                validateSecretReference(certificate, certificatePath, namespace: namespace,
                                        required: .kafkaCertificateRequired, detail: nil, &checks)
            case .ssl:
                break
            }
        }

        validateConfig(config, Paths.config, &checks)

        if protocolName == "PLAINTEXT" {
            warnings.append(RuleWarning(.kafkaProtocolEncrypted, Self.plaintextWarning))
            if mechanism == "PLAIN" { warnings.append(RuleWarning(.kafkaPasswordEncrypted, Self.plainOverPlaintextWarning)) }
        }
    }

    /// A `{name, namespace}` Secret reference: name required (rule `required`, with
    /// `detail`, if given), DNS-1123 names, and the secret reference policy.
    private func validateSecretReference(_ value: JSONValue?, _ paths: SecretReferencePaths, namespace: String,
                                         required: RuleID, detail: String?, _ checks: inout FieldChecks) {
        let namePath = paths.name
        guard value?.isObject == true || !isEmptyValue(value) else {
            return checks.required(required, namePath, detail)
        }
        guard let reference = checks.object(value, paths.reference) else { return }
        let nsPath = paths.namespace
        let (namespaceValue, nameValue) = reference[.namespace, .name]
        let refNamespace = checks.string(namespaceValue, nsPath)
        if let refNamespace { checks.label(.secretReferenceFormat, refNamespace, nsPath) }
        guard let name = checks.nonEmptyString(nameValue, namePath) else {
            if isDefaultable(nameValue) { checks.required(required, namePath, detail) }
            return
        }
        name.withUTF8 { checks.subdomain(.secretReferenceFormat, bytes: $0, namePath) }
        let resolved = refNamespace ?? namespace
        if resolved != namespace && !configuration.secretReferences.permits(resolved) {
            checks.forbidden(.secretNamespaceAllowed, nsPath, "may not reference a Secret in namespace \(goQuote(resolved)); allowed: "
                             + configuration.secretReferences.describeAllowed(own: "the connection's own namespace"))
        }
    }

    /// At most this many `config` keys, checked before the keys.
    static let maxConfigKeys = 256

    private func validateConfig(_ value: JSONValue?, _ path: FieldPath, _ checks: inout FieldChecks) {
        guard let config = checks.object(value, path) else { return }
        guard config.count <= Self.maxConfigKeys else {
            return checks.tooMany(.kafkaConfigSize, path, config.count, max: Self.maxConfigKeys)
        }
        for (key, entry) in config.members {
            if checks.timeIsUp() { return }
            guard key.stringByteCount > 0 else {
                checks.invalid(.kafkaConfigKeyNotEmpty, path, "", "keys must not be empty")
                continue
            }
            // Judged on the decoded key: `sasl\u002epassword` is `sasl.password`.
            if let name = key.string, Self.forbiddenConfigKeyLengths.contains(name.utf8.count),
               let field = Self.forbiddenConfigKeys[name.lowercased()] {
                checks.forbidden(.kafkaConfigNoTypedFields, path.key(name), "overrides a typed field; set \(field) instead")
            }
            if entry.kind != .string { checks.invalid(.fieldType, path.key(key.string ?? ""), entry, "must be a string") }
        }
    }

    // MARK: - Bootstrap servers

    /// At most this many entries and bytes in `bootstrapServers`,
    /// checked before the entries.
    static let maxBootstrapServers = 256
    static let maxBootstrapServersBytes = 16 * 1024

    private static func validateBootstrapServers(_ bytes: UnsafeBufferPointer<UInt8>, _ path: FieldPath,
                                          _ checks: inout FieldChecks) {
        let entryCount = bytes.reduce(1) { $0 + ($1 == UInt8(ascii: ",") ? 1 : 0) }
        let tooLong = bytes.count > Self.maxBootstrapServersBytes
        let tooMany = entryCount > Self.maxBootstrapServers
        if tooLong { checks.tooLong(.bootstrapServersSize, path, max: Self.maxBootstrapServersBytes) }
        if tooMany { checks.tooMany(.bootstrapServersSize, path, entryCount, max: Self.maxBootstrapServers) }
        guard !tooLong && !tooMany else { return }
        // Servers compare case-insensitively (host names do). A few are compared pair
        // by pair (no hashing, no allocation); more go through a set, so 256 entries
        // cost 256 lookups rather than 32,640 comparisons.
        var seenSet = Set<String>()
        // The first few entries' ranges, for the pairwise comparison (on the stack).
        withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: Self.pairwiseDuplicateLimit) { seen in
            var seenCount = 0
            var entryStart = 0
            while entryStart <= bytes.count {
                if checks.timeIsUp() { return }
                var entryEnd = entryStart
                while entryEnd < bytes.count && bytes[entryEnd] != UInt8(ascii: ",") { entryEnd += 1 }
                let entry = bytes[entryStart..<entryEnd]
                entryStart = entryEnd + 1
                if let problem = Self.bootstrapServerProblem(entry) {
                    checks.invalid(problem.rule, path, bytes: entry, problem.message)
                    continue
                }
                let duplicate: Bool
                if entryCount <= Self.pairwiseDuplicateLimit {
                    duplicate = (0..<seenCount).contains { Self.equalIgnoringCase(bytes[seen[$0]], entry) }
                    seen[seenCount] = entry.startIndex..<entry.endIndex
                    seenCount += 1
                } else {
                    duplicate = !seenSet.insert(String(decoding: entry.map(Self.lowercased), as: UTF8.self)).inserted
                }
                if duplicate { checks.duplicate(.bootstrapServersUnique, path, bytes: entry) }
            }
        }
    }

    static let pairwiseDuplicateLimit = 8

    private static func lowercased(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c + 0x20 : c }

    private static func equalIgnoringCase(_ a: Slice<UnsafeBufferPointer<UInt8>>, _ b: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { lowercased($0) == lowercased($1) }
    }

    /// Why a bootstrap server entry is not `host:port`: the rule, and what to say.
    struct BootstrapServerProblem: Equatable {
        let rule: RuleID
        let message: String

        init(_ message: String, rule: RuleID = .bootstrapServersFormat) {
            self.rule = rule
            self.message = message
        }

        static let empty = BootstrapServerProblem("must not be an empty entry")
        static let spaces = BootstrapServerProblem("must not contain spaces")
        static let scheme = BootstrapServerProblem("must be host:port without a scheme")
        static let notHostPort = BootstrapServerProblem("must be host:port")
        static let unbracketedIPv6 = BootstrapServerProblem("an IPv6 address must be in brackets, as [::1]:9092")
        static let host = BootstrapServerProblem("host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address")
        static let port = BootstrapServerProblem("port must be a number from 1 to 65535", rule: .bootstrapServersPortRange)
    }

    /// Why `entry` is not `host:port`, or nil when it is. Works on the bytes: no
    /// Unicode processing on the admission path.
    static func bootstrapServerProblem(_ entry: Slice<UnsafeBufferPointer<UInt8>>) -> BootstrapServerProblem? {
        guard let first = entry.first else { return .empty }
        var colon: Int?
        var i = entry.startIndex
        while i < entry.endIndex {
            let b = entry[i]
            if b == 0x20 || (b >= 0x09 && b <= 0x0D) { return .spaces }
            if b == UInt8(ascii: ":") {
                if i + 2 < entry.endIndex && entry[i + 1] == UInt8(ascii: "/") && entry[i + 2] == UInt8(ascii: "/") {
                    return Self.schemeProblem(entry, from: i)
                }
                colon = i
            }
            i += 1
        }
        let port: Slice<UnsafeBufferPointer<UInt8>>
        if first == UInt8(ascii: "[") {
            guard let close = entry.firstIndex(of: UInt8(ascii: "]")), close + 1 < entry.endIndex,
                  entry[close + 1] == UInt8(ascii: ":") else { return .notHostPort }
            guard isIPv6(String(decoding: entry[(entry.startIndex + 1)..<close], as: UTF8.self)) else { return .host }
            port = entry[(close + 2)...]
        } else {
            guard let colon else { return .notHostPort }
            let host = entry[..<colon]
            if host.contains(UInt8(ascii: ":")) { return .unbracketedIPv6 }
            guard isHostname(host) else { return .host }
            port = entry[(colon + 1)...]
        }
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return .port
        }
        let number = port.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return number >= 1 && number <= 65535 ? nil : .port
    }

    /// A `://` was found at `index`: a scheme, unless spaces come later (reported first,
    /// as the checks ran in that order).
    private static func schemeProblem(_ entry: Slice<UnsafeBufferPointer<UInt8>>, from index: Int) -> BootstrapServerProblem {
        entry[index...].contains { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) } ? .spaces : .scheme
    }

    /// An RFC 1123 hostname; all-numeric dotted names must be valid IPv4 addresses.
    static func isHostname(_ host: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard !host.isEmpty, host.count <= 253 else { return false }
        @inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        @inline(__always) func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
        // One pass over the labels: whether every label is a valid hostname label, and
        // whether all are numeric (then it must be a dotted IPv4 address).
        var labels = 0
        var allNumeric = true
        var validHostname = true
        var validIPv4Octets = true
        var labelStart = host.startIndex
        while labelStart <= host.endIndex {
            var labelEnd = labelStart
            while labelEnd < host.endIndex && host[labelEnd] != UInt8(ascii: ".") { labelEnd += 1 }
            let label = host[labelStart..<labelEnd]
            labels += 1
            labelStart = labelEnd + 1
            guard let first = label.first, let last = label.last else {
                allNumeric = false
                validHostname = false
                continue
            }
            var numeric = true
            var value = 0
            for b in label {
                if isDigit(b) {
                    value = min(value * 10 + Int(b - 0x30), 1_000)
                } else {
                    numeric = false
                    if !isAlnum(b) && b != UInt8(ascii: "-") { validHostname = false }
                }
            }
            if label.count > 63 || !isAlnum(first) || !isAlnum(last) { validHostname = false }
            if numeric {
                if label.count > 3 || value > 255 { validIPv4Octets = false }
            } else {
                allNumeric = false
            }
        }
        if allNumeric { return labels == 4 && validIPv4Octets }
        return validHostname
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }
}
