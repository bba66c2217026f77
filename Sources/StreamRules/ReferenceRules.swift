import JSON

/// What a missing reference costs (`cluster.missingReferences`).
public enum MissingReferencePolicy: String, Sendable, Equatable, CaseIterable {
    /// A warning: `kubectl apply -f dir/` and GitOps tools may create the referenced
    /// object after the one that references it.
    case warn
    /// A `FieldValueNotFound` error.
    case deny
}

/// What DELETE of a connection an instance still lists gets (`cluster.deleteReferencedConnection`).
public enum ReferencedDeletePolicy: String, Sendable, Equatable, CaseIterable {
    case deny, warn, allow
}

/// The kinds of finding the reference rules make, for the metric
/// `atlas_stream_webhook_reference_findings_total{rule}`.
public enum ReferenceFinding: String, Sendable, CaseIterable {
    case secretNotFound = "secret_not_found"
    case secretWithoutLabel = "secret_without_label"
    case secretKeyMissing = "secret_key_missing"
    case projectNotFound = "project_not_found"
    case connectionNotFound = "connection_not_found"
    case namespaceNotWatched = "namespace_not_watched"
    case duplicateSpecName = "duplicate_spec_name"
    case referencedConnectionDeleted = "referenced_connection_deleted"
}

/// SPEC section 11: an object's references judged against a `ClusterSnapshot`. Pure:
/// the snapshot is a value, read, never waited for.
struct ReferenceRules {
    let configuration: RuleConfiguration
    let snapshot: ClusterSnapshot

    /// The results beside the field errors: warnings (after those of sections 3 to 5)
    /// and the findings for the metric.
    struct Findings {
        var warnings: [String] = []
        var found: [ReferenceFinding] = []
    }

    // MARK: - AtlasStreamConnection

    /// The Kafka credentials and certificate Secrets: found, labelled for the operator,
    /// holding the keys it reads.
    func validateConnection(spec: JSONValue, namespace: String, checks: inout FieldChecks, findings: inout Findings) {
        guard let kafka = spec[.kafkaConfig], kafka.isObject else { return }
        secret(kafka[.authentication]?[.credentials], ConnectionRules.Paths.credentials.reference,
               keys: ["username", "password"], namespace: namespace, checks: &checks, findings: &findings)
        secret(kafka[.security]?[.certificate], ConnectionRules.Paths.certificate.reference,
               keys: ["certificate"], namespace: namespace, checks: &checks, findings: &findings)
    }

    private func secret(_ reference: JSONValue?, _ path: FieldPath, keys: [String], namespace: String,
                        checks: inout FieldChecks, findings: inout Findings) {
        guard let target = Self.target(reference, namespace: namespace) else { return }
        guard watched(target, path, &findings) else { return }
        guard let record = snapshot.secrets[target.namespace]?[target.name] else {
            return missing(.secretNotFound, path, target, "Secret \(target.shown) not found", &checks, &findings)
        }
        guard record.hasCredentialsLabel else {
            return missing(.secretWithoutLabel, path, target, "Secret \(target.shown) lacks label "
                           + "\(ClusterSnapshot.credentialsLabelKey)=\(ClusterSnapshot.credentialsLabelValue)",
                           &checks, &findings)
        }
        // Labelled but not yet seen by the credentials watch: its keys are unknown.
        guard let present = snapshot.credentialKeys[target.namespace]?[target.name] else { return }
        for key in keys where !present.contains(key) {
            missing(.secretKeyMissing, path.key(key), target, "Secret \(target.shown) has no key \"\(key)\"",
                    &checks, &findings, warningPath: path)
        }
    }

    // MARK: - AtlasStreamInstance

    /// The project, and every registry entry: found, and no two with the same `spec.name`.
    func validateInstance(spec: JSONValue, namespace: String, checks: inout FieldChecks, findings: inout Findings) {
        if let project = Self.target(spec[.projectRef], namespace: namespace),
           watched(project, InstanceRules.Paths.projectRef, &findings),
           snapshot.projects[project.namespace]?[project.name] == nil {
            missing(.projectNotFound, InstanceRules.Paths.projectRef, project, "AtlasProject \(project.shown) not found",
                    &checks, &findings)
        }
        guard let registry = spec[.connectionRegistry], registry.isArray,
              registry.count <= InstanceRules.maxRegistryEntries else { return }
        var seen = Set<ObjectReference>()
        /// `spec.name` to the first entry that uses it.
        var firstBySpecName: [String: Int] = [:]
        for (i, entry) in registry.elements.enumerated() {
            if checks.timeIsUp() { return }
            let path = InstanceRules.Paths.registry.index(i)
            guard let target = Self.target(entry, namespace: namespace), seen.insert(target).inserted,
                  watched(target, path, &findings) else { continue }
            guard let connection = snapshot.connections[target.namespace]?[target.name] else {
                missing(.connectionNotFound, path, target, "AtlasStreamConnection \(target.shown) not found", &checks, &findings)
                continue
            }
            guard !connection.specName.isEmpty else { continue }
            if let first = firstBySpecName[connection.specName] {
                findings.found.append(.duplicateSpecName)
                checks.invalid(path.child("name"), target.name, "its spec.name \(goQuote(connection.specName)) "
                               + "is already used by spec.connectionRegistry[\(first)]")
            } else {
                firstBySpecName[connection.specName] = i
            }
        }
    }

    // MARK: - DELETE of an AtlasStreamConnection

    /// The instances (not themselves being deleted) whose registry lists `connection`,
    /// sorted; at most `maxListed` of them, and how many more there are.
    func instancesListing(_ connection: ObjectReference, maxListed: Int = 10) -> (listed: [ObjectReference], more: Int) {
        var holders: [ObjectReference] = []
        for (namespace, instances) in snapshot.instances {
            for (name, instance) in instances where !instance.isBeingDeleted && instance.registry.contains(connection) {
                holders.append(ObjectReference(namespace: namespace, name: name))
            }
        }
        holders.sort { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        return (Array(holders.prefix(maxListed)), max(0, holders.count - maxListed))
    }

    // MARK: - Helpers

    /// A reference's target: its name (a non-empty string) and its namespace, defaulted.
    static func target(_ reference: JSONValue?, namespace: String) -> ObjectReference? {
        guard let reference, reference.isObject, let name = reference[.name]?.string, !name.isEmpty else { return nil }
        return ObjectReference(namespace: effectiveNamespace(reference, default: namespace), name: name)
    }

    /// False, with a warning, when the target's namespace is outside the watched ones:
    /// nothing can be said of it.
    private func watched(_ target: ObjectReference, _ path: FieldPath, _ findings: inout Findings) -> Bool {
        guard !snapshot.isWatched(target.namespace) else { return true }
        findings.found.append(.namespaceNotWatched)
        findings.warnings.append("\(path): namespace \(echoed(target.namespace)) is not watched by the operator")
        return false
    }

    /// A missing reference: a warning, or with `missingReferences: deny` a NotFound error.
    private func missing(_ finding: ReferenceFinding, _ errorPath: FieldPath, _ target: ObjectReference, _ warning: String,
                         _ checks: inout FieldChecks, _ findings: inout Findings, warningPath: FieldPath? = nil) {
        findings.found.append(finding)
        switch configuration.missingReferences {
        case .warn: findings.warnings.append("\(warningPath ?? errorPath): \(warning)")
        case .deny: checks.notFound(errorPath, target.description)
        }
    }
}

extension ObjectReference {
    /// `<namespace>/<name>` as an answer may echo it (cut at 256 bytes).
    var shown: String { echoed(description) }
}
