import Glibc
import JSON

/// AtlasStreamConnection.
struct ConnectionRules {
    let configuration: RuleConfiguration

    static let types = ["Kafka", "Cluster", "Sample"]
    static let mechanisms = ["PLAIN", "SCRAM-256", "SCRAM-512"]
    static let protocols = ["PLAINTEXT", "SSL"]
    static let roleTypes = ["BUILT_IN", "CUSTOM"]
    static let certificateAlwaysRequired =
        #"the operator reads key "certificate" from this Secret for every Kafka connection"#
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

    func defaults(spec: JSONValue, namespace: String, into patch: inout [PatchOperation]) {
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

    func validate(object: JSONValue, old: JSONValue?, namespace: String, checks: inout FieldChecks,
                  warnings: inout [String]) {
        guard let spec = object[.spec], !spec.isNull else { return checks.required(Paths.spec) }
        guard let spec = checks.object(spec, Paths.spec) else { return }

        // Each member looked up once (a lookup scans the object's keys).
        let (name, typeValue, kafka, cluster) = spec[.name, .type, .kafkaConfig, .clusterConfig]
        let namePath = Paths.name
        // Decoded only where the text is needed (a Sample source, an UPDATE).
        let nameValue = checks.nonEmptyString(name, namePath)
        if nameValue == nil && isDefaultable(name) { checks.required(namePath) }
        let typePath = Paths.type
        let type = checks.oneOf(typeValue, typePath, Self.types)

        let kafkaPath = Paths.kafka
        let clusterPath = Paths.cluster
        let hasKafka = !isEmptyValue(kafka)
        let hasCluster = !isEmptyValue(cluster)
        switch type {
        case "Kafka":
            if hasKafka {
                validateKafka(kafka, kafkaPath, namespace: namespace, &checks, &warnings)
            } else {
                checks.required(kafkaPath)
            }
            if hasCluster { checks.forbidden(clusterPath, "may not be set when spec.type is Kafka") }
        case "Cluster":
            if hasCluster {
                validateCluster(cluster, clusterPath, &checks)
            } else {
                checks.required(clusterPath)
            }
            if hasKafka { checks.forbidden(kafkaPath, "may not be set when spec.type is Cluster") }
        case "Sample":
            if let name = nameValue?.string, !configuration.sampleSources.contains(name) {
                checks.notSupported(namePath, name, configuration.sampleSources)
            }
            if hasKafka { checks.forbidden(kafkaPath, "may not be set when spec.type is Sample") }
            if hasCluster { checks.forbidden(clusterPath, "may not be set when spec.type is Sample") }
        default:
            break
        }

        if let oldSpec = old?[.spec], oldSpec.isObject {
            if let name = nameValue?.string, let oldName = oldSpec[.name]?.string, !oldName.isEmpty, name != oldName {
                checks.invalid(namePath, name, "field is immutable")
            }
            if let newType = typeValue?.string, let oldType = oldSpec[.type]?.string, !oldType.isEmpty, newType != oldType {
                checks.invalid(typePath, newType, "field is immutable")
            }
        }
    }

    // MARK: - Cluster

    private func validateCluster(_ value: JSONValue?, _ path: FieldPath, _ checks: inout FieldChecks) {
        guard let config = checks.object(value, path) else { return }
        let (nameValue, roleValue) = config[.name, .role]
        let namePath = Paths.clusterName
        if let name = checks.string(nameValue, namePath) {
            if !isAtlasName(name) { checks.invalid(namePath, name, "must contain only ASCII letters, digits and '-'") }
            if name.utf8.count > 64 { checks.tooLong(namePath, max: 64) }
        } else if isDefaultable(nameValue) {
            checks.required(namePath)
        }
        let rolePath = Paths.role
        guard !isEmptyValue(roleValue) else { return checks.required(rolePath) }
        guard let role = checks.object(roleValue, rolePath) else { return }
        let roleNamePath = Paths.roleName
        let (roleNameValue, roleTypeValue) = role[.name, .type]
        let roleName = checks.string(roleNameValue, roleNamePath)
        if roleName == nil && isDefaultable(roleNameValue) { checks.required(roleNamePath) }
        let roleType = checks.oneOf(roleTypeValue, Paths.roleType, Self.roleTypes)
        if roleType == "BUILT_IN", let roleName, !configuration.builtInRoles.contains(roleName) {
            checks.notSupported(roleNamePath, roleName, configuration.builtInRoles)
        }
    }

    // MARK: - Kafka

    private func validateKafka(_ value: JSONValue?, _ path: FieldPath, namespace: String, _ checks: inout FieldChecks,
                               _ warnings: inout [String]) {
        guard let kafka = checks.object(value, path) else { return }

        // Each member looked up once (a lookup scans the object's keys).
        let (bootstrapServers, authentication, security, config) = kafka[.bootstrapServers, .authentication, .security, .config]
        let serversPath = Paths.servers
        if let servers = checks.nonEmptyString(bootstrapServers, serversPath) {
            servers.withUTF8 { Self.validateBootstrapServers($0, serversPath, &checks) }
        } else if isDefaultable(bootstrapServers) {
            checks.required(serversPath)
        }

        let authPath = Paths.authentication
        var mechanism: String?
        // An object is judged member by member below; only other values are looked into.
        if authentication?.isObject != true && isEmptyValue(authentication) {
            checks.required(authPath)
        } else if let auth = checks.object(authentication, authPath) {
            let (mechanismValue, credentials) = auth[.mechanism, .credentials]
            mechanism = checks.oneOf(mechanismValue, Paths.mechanism, Self.mechanisms)
            validateSecretReference(credentials, Paths.credentials, namespace: namespace,
                                    required: nil, &checks)
        }

        let securityPath = Paths.security
        var protocolName: String?
        if security?.isObject != true && isEmptyValue(security) {
            checks.required(securityPath)
        } else if let security = checks.object(security, securityPath) {
            let (protocolValue, certificate) = security[.`protocol`, .certificate]
            protocolName = checks.oneOf(protocolValue, Paths.securityProtocol, Self.protocols)
            let certificatePath = Paths.certificate
            switch configuration.kafkaCertificate {
            case .always:
                validateSecretReference(certificate, certificatePath, namespace: namespace,
                                        required: Self.certificateAlwaysRequired, &checks)
            case .ssl where protocolName == "SSL":
                validateSecretReference(certificate, certificatePath, namespace: namespace,
                                        required: "required when spec.kafkaConfig.security.protocol is SSL", &checks)
            case .ssl where !isEmptyValue(certificate):
                validateSecretReference(certificate, certificatePath, namespace: namespace, required: nil, &checks)
            case .ssl:
                break
            }
        }

        validateConfig(config, Paths.config, &checks)

        if protocolName == "PLAINTEXT" {
            warnings.append(Self.plaintextWarning)
            if mechanism == "PLAIN" { warnings.append(Self.plainOverPlaintextWarning) }
        }
    }

    /// A `{name, namespace}` Secret reference: name required (with `required` as the
    /// detail, if given), DNS-1123 names, and the secret reference policy.
    private func validateSecretReference(_ value: JSONValue?, _ paths: SecretReferencePaths, namespace: String,
                                         required detail: String?, _ checks: inout FieldChecks) {
        let namePath = paths.name
        guard value?.isObject == true || !isEmptyValue(value) else {
            return checks.required(namePath, detail)
        }
        guard let reference = checks.object(value, paths.reference) else { return }
        let nsPath = paths.namespace
        let (namespaceValue, nameValue) = reference[.namespace, .name]
        let refNamespace = checks.string(namespaceValue, nsPath)
        if let refNamespace { checks.label(refNamespace, nsPath) }
        guard let name = checks.nonEmptyString(nameValue, namePath) else {
            if isDefaultable(nameValue) { checks.required(namePath, detail) }
            return
        }
        name.withUTF8 { checks.subdomain(bytes: $0, namePath) }
        let resolved = refNamespace ?? namespace
        if resolved != namespace && !configuration.secretReferences.permits(resolved) {
            checks.forbidden(nsPath, "may not reference a Secret in namespace \(goQuote(resolved)); allowed: "
                             + configuration.secretReferences.describeAllowed(own: "the connection's own namespace"))
        }
    }

    /// At most this many `config` keys, checked before the keys.
    static let maxConfigKeys = 256

    private func validateConfig(_ value: JSONValue?, _ path: FieldPath, _ checks: inout FieldChecks) {
        guard let config = checks.object(value, path) else { return }
        guard config.count <= Self.maxConfigKeys else {
            return checks.tooMany(path, config.count, max: Self.maxConfigKeys)
        }
        for (key, entry) in config.members {
            if checks.timeIsUp() { return }
            guard key.stringByteCount > 0 else {
                checks.invalid(path, "", "keys must not be empty")
                continue
            }
            // Judged on the decoded key: `sasl\u002epassword` is `sasl.password`.
            if let name = key.string, Self.forbiddenConfigKeyLengths.contains(name.utf8.count),
               let field = Self.forbiddenConfigKeys[name.lowercased()] {
                checks.forbidden(path.key(name), "overrides a typed field; set \(field) instead")
            }
            if entry.kind != .string { checks.invalid(path.key(key.string ?? ""), entry, "must be a string") }
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
        if tooLong { checks.tooLong(path, max: Self.maxBootstrapServersBytes) }
        if tooMany { checks.tooMany(path, entryCount, max: Self.maxBootstrapServers) }
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
                    checks.invalid(path, bytes: entry, problem)
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
                if duplicate { checks.duplicate(path, bytes: entry) }
            }
        }
    }

    static let pairwiseDuplicateLimit = 8

    private static func lowercased(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c + 0x20 : c }

    private static func equalIgnoringCase(_ a: Slice<UnsafeBufferPointer<UInt8>>, _ b: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { lowercased($0) == lowercased($1) }
    }

    static let hostProblem = "host must be an RFC 1123 hostname, an IPv4 address or a bracketed IPv6 address"

    /// Why `entry` is not `host:port`, or nil when it is. Works on the bytes: no
    /// Unicode processing on the admission path.
    static func bootstrapServerProblem(_ entry: Slice<UnsafeBufferPointer<UInt8>>) -> String? {
        guard let first = entry.first else { return "must not be an empty entry" }
        var colon: Int?
        var i = entry.startIndex
        while i < entry.endIndex {
            let b = entry[i]
            if b == 0x20 || (b >= 0x09 && b <= 0x0D) { return "must not contain spaces" }
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
                  entry[close + 1] == UInt8(ascii: ":") else { return "must be host:port" }
            guard isIPv6(String(decoding: entry[(entry.startIndex + 1)..<close], as: UTF8.self)) else { return hostProblem }
            port = entry[(close + 2)...]
        } else {
            guard let colon else { return "must be host:port" }
            let host = entry[..<colon]
            if host.contains(UInt8(ascii: ":")) { return "an IPv6 address must be in brackets, as [::1]:9092" }
            guard isHostname(host) else { return hostProblem }
            port = entry[(colon + 1)...]
        }
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return "port must be a number from 1 to 65535"
        }
        let number = port.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return number >= 1 && number <= 65535 ? nil : "port must be a number from 1 to 65535"
    }

    /// A `://` was found at `index`: a scheme, unless spaces come later (reported first,
    /// as the checks ran in that order).
    private static func schemeProblem(_ entry: Slice<UnsafeBufferPointer<UInt8>>, from index: Int) -> String {
        entry[index...].contains { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) } ? "must not contain spaces"
            : "must be host:port without a scheme"
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
