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

/// An object's references judged against a `ClusterSnapshot`. Pure: the snapshot is a
/// value, read, never waited for. A reference the namespace policies forbid is never
/// looked up.
struct ReferenceRules {
    let configuration: RuleConfiguration
    let snapshot: ClusterSnapshot

    // MARK: - AtlasStreamConnection

    /// The Kafka credentials and certificate Secrets: found, labelled for the operator,
    /// holding the keys it reads.
    func validateConnection(spec: JSONValue, namespace: String, checks: inout FieldChecks, warnings: inout [RuleWarning]) {
        guard let kafka = spec[.kafkaConfig], kafka.isObject else { return }
        secret(kafka[.authentication]?[.credentials], ConnectionRules.Paths.credentials.reference, found: .credentialsSecretFound,
               keys: ["username", "password"], namespace: namespace, checks: &checks, warnings: &warnings)
        secret(kafka[.security]?[.certificate], ConnectionRules.Paths.certificate.reference, found: .certificateSecretFound,
               keys: ["certificate"], namespace: namespace, checks: &checks, warnings: &warnings)
    }

    /// `found` is the rule that the Secret exists.
    private func secret(_ reference: JSONValue?, _ path: FieldPath, found: RuleID, keys: [String], namespace: String,
                        checks: inout FieldChecks, warnings: inout [RuleWarning]) {
        guard let target = Self.target(reference, namespace: namespace) else { return }
        // A Secret the connection may not name is refused by the namespace policy and
        // never looked up: the answer must not say whether it exists.
        guard target.namespace == namespace || configuration.secretReferences.permits(target.namespace) else { return }
        guard watched(target, path, &warnings) else { return }
        guard let record = snapshot.secrets[target.namespace]?[target.name] else {
            return missing(found, path, target, "Secret \(target.shown) not found", &checks, &warnings)
        }
        guard record.hasCredentialsLabel else {
            return missing(.secretLabelledForOperator, path, target, "Secret \(target.shown) lacks label "
                           + "\(ClusterSnapshot.credentialsLabelKey)=\(ClusterSnapshot.credentialsLabelValue)",
                           &checks, &warnings)
        }
        // Labelled but not yet seen by the credentials watch: its keys are unknown.
        guard let present = snapshot.credentialKeys[target.namespace]?[target.name] else { return }
        for key in keys where !present.contains(key) {
            missing(.secretKeysPresent, path.key(key), target, "Secret \(target.shown) has no key \"\(key)\"",
                    &checks, &warnings, warningPath: path)
        }
    }

    // MARK: - AtlasStreamInstance

    /// The project, and every registry entry: found, and no two with the same `spec.name`.
    func validateInstance(spec: JSONValue, namespace: String, checks: inout FieldChecks, warnings: inout [RuleWarning]) {
        if let project = Self.target(spec[.projectRef], namespace: namespace),
           watched(project, InstanceRules.Paths.projectRef, &warnings),
           snapshot.projects[project.namespace]?[project.name] == nil {
            missing(.projectFound, InstanceRules.Paths.projectRef, project, "AtlasProject \(project.shown) not found",
                    &checks, &warnings)
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
                  watched(target, path, &warnings) else { continue }
            guard let connection = snapshot.connections[target.namespace]?[target.name] else {
                missing(.registryConnectionFound, path, target, "AtlasStreamConnection \(target.shown) not found",
                        &checks, &warnings)
                continue
            }
            guard !connection.specName.isEmpty else { continue }
            if let first = firstBySpecName[connection.specName] {
                checks.invalid(.registrySpecNameUnique, path.child("name"), target.name, "its spec.name \(goQuote(connection.specName)) "
                               + "is already used by spec.connectionRegistry[\(first)]")
            } else {
                firstBySpecName[connection.specName] = i
            }
        }
    }

    // MARK: - Helpers

    /// A reference's target: its name (a non-empty string) and its namespace, defaulted.
    static func target(_ reference: JSONValue?, namespace: String) -> ObjectReference? {
        guard let reference, reference.isObject, let name = reference[.name]?.string, !name.isEmpty else { return nil }
        return ObjectReference(namespace: effectiveNamespace(reference, default: namespace), name: name)
    }

    /// False, with a warning, when the target's namespace is outside the watched ones:
    /// nothing can be said of it.
    private func watched(_ target: ObjectReference, _ path: FieldPath, _ warnings: inout [RuleWarning]) -> Bool {
        guard !snapshot.isWatched(target.namespace) else { return true }
        warnings.append(RuleWarning(.referenceNamespaceWatched,
                                    "\(path): namespace \(echoed(target.namespace)) is not watched by the operator"))
        return false
    }

    /// A missing reference: a warning, or with `missingReferences: deny` a NotFound error.
    private func missing(_ rule: RuleID, _ errorPath: FieldPath, _ target: ObjectReference, _ warning: String,
                         _ checks: inout FieldChecks, _ warnings: inout [RuleWarning], warningPath: FieldPath? = nil) {
        switch configuration.missingReferences {
        case .warn: warnings.append(RuleWarning(rule, "\(warningPath ?? errorPath): \(warning)"))
        case .deny: checks.notFound(rule, errorPath, target.description)
        }
    }
}

extension ObjectReference {
    /// `<namespace>/<name>` as an answer may echo it (cut at 256 bytes).
    var shown: String { echoed(description) }
}

/// An object that another object's spec names, as the reference rules look it up.
public enum ReferencedObject: Sendable, Hashable {
    case secret(ObjectReference)
    case project(ObjectReference)
    case connection(ObjectReference)
}

extension StreamKind {
    /// Everything `spec` names that the reference rules look up, namespaces defaulted to
    /// `namespace` (whether or not a namespace policy lets the rules look there): what a
    /// change of which may change the object's verdict.
    public func referencedObjects(spec: JSONValue?, namespace: String) -> [ReferencedObject] {
        guard let spec, spec.isObject else { return [] }
        switch self {
        case .connection:
            guard let kafka = spec[.kafkaConfig], kafka.isObject else { return [] }
            return [kafka[.authentication]?[.credentials], kafka[.security]?[.certificate]].compactMap {
                ReferenceRules.target($0, namespace: namespace).map(ReferencedObject.secret)
            }
        case .instance:
            var out = InstanceRecord.registry(of: spec, namespace: namespace).map(ReferencedObject.connection)
            if let project = ReferenceRules.target(spec[.projectRef], namespace: namespace) { out.append(.project(project)) }
            return out
        }
    }
}
