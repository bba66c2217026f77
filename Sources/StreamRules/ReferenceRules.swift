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

/// An object's references judged against a `ClusterSnapshot`. Pure: the snapshot is a
/// value, read, never waited for. A reference the namespace policies forbid is never
/// looked up.
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
        // A Secret the connection may not name is refused by the namespace policy and
        // never looked up: the answer must not say whether it exists.
        guard target.namespace == namespace || configuration.secretReferences.permits(target.namespace) else { return }
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
                  target.namespace == namespace || configuration.registryReferences.permits(target.namespace),
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

    // MARK: - Helpers

    /// Whether `spec` names anything the cluster would have to hold: a Secret of a Kafka
    /// connection, an instance's project or a registry entry.
    static func hasReferences(_ spec: JSONValue, kind: StreamKind) -> Bool {
        switch kind {
        case .connection:
            guard let kafka = spec[.kafkaConfig], kafka.isObject else { return false }
            return target(kafka[.authentication]?[.credentials], namespace: "") != nil
                || target(kafka[.security]?[.certificate], namespace: "") != nil
        case .instance:
            if target(spec[.projectRef], namespace: "") != nil { return true }
            guard let registry = spec[.connectionRegistry], registry.isArray else { return false }
            return registry.elements.contains { target($0, namespace: "") != nil }
        }
    }

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
