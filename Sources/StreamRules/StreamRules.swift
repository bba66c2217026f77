import JSON

/// Defaulting and validation of AtlasStreamInstance and AtlasStreamConnection as
/// pure functions of a `RuleInput` and the configuration.
public struct StreamRules: Sendable {
    public let configuration: RuleConfiguration

    public init(configuration: RuleConfiguration = RuleConfiguration()) {
        self.configuration = configuration
    }

    /// Defaults for `/mutate` as `add` operations inside `spec`. Never denies; copes
    /// with any shape by leaving what it does not understand to validation.
    public func mutate(_ input: RuleInput) -> Decision {
        guard let object = input.object, object.isObject, let spec = object[.spec], spec.isObject else { return .allow }
        let namespace = objectNamespace(input)
        var patch: [PatchOperation] = []
        switch input.kind {
        case .instance: InstanceRules(configuration: configuration).defaults(spec: spec, namespace: namespace, into: &patch)
        case .connection: ConnectionRules(configuration: configuration).defaults(spec: spec, namespace: namespace, into: &patch)
        }
        return Decision(patch: patch)
    }

    /// Validation for `/validate`. The operator's annotations and label are judged on
    /// CREATE and, on UPDATE, where their value changed; `spec` on CREATE and on UPDATE
    /// when it changed, so the operator's finalizer and status updates always go through.
    /// An object being deleted gets no free pass for a spec change.
    public func validate(_ input: RuleInput) -> Decision {
        var checks = FieldChecks(budget: input.budget)
        guard let object = input.object else {
            checks.required(FieldPath("object"))
            return Decision(errors: checks.errors)
        }
        guard object.isObject else {
            checks.invalid(FieldPath("object"), object, "must be a JSON object")
            return Decision(errors: checks.errors)
        }
        var old: JSONValue?
        if input.operation == .update, let oldObject = input.oldObject, oldObject.isObject {
            old = oldObject
        }
        OperatorMetadataRules(configuration: configuration).validate(object: object, old: old, checks: &checks)
        var warnings: [String] = []
        var findings = ReferenceRules.Findings()
        var refusal: Refusal?
        if specNeedsJudging(object, old: old) {
            if input.budget.isExhausted { return Decision(outOfTime: true) }
            let namespace = objectNamespace(input)
            switch input.kind {
            case .instance:
                InstanceRules(configuration: configuration).validate(object: object, old: old, namespace: namespace,
                                                                     checks: &checks, warnings: &warnings)
            case .connection:
                ConnectionRules(configuration: configuration).validate(object: object, old: old, namespace: namespace,
                                                                       checks: &checks, warnings: &warnings)
            }
            // References last: their warnings come after those of the other rules.
            if let cluster = input.cluster, let spec = object[.spec], spec.isObject {
                switch cluster {
                case .ready(let snapshot):
                    let references = ReferenceRules(configuration: configuration, snapshot: snapshot)
                    switch input.kind {
                    case .instance: references.validateInstance(spec: spec, namespace: namespace, checks: &checks, findings: &findings)
                    case .connection: references.validateConnection(spec: spec, namespace: namespace, checks: &checks, findings: &findings)
                    }
                    warnings += findings.warnings
                case .notReady:
                    if ReferenceRules.hasReferences(spec, kind: input.kind) {
                        switch configuration.cacheNotReady {
                        case .allow: warnings.append(CacheNotReadyPolicy.message)
                        case .deny: refusal = .unavailable(CacheNotReadyPolicy.message)
                        }
                    }
                }
            }
        }
        return Decision(errors: checks.errors, omittedErrorCount: checks.omitted, warnings: warnings,
                        outOfTime: checks.outOfTime, refusal: refusal, referenceFindings: findings.found)
    }

    /// DELETE at `/validate`: an AtlasStreamConnection that an AtlasStreamInstance (not
    /// itself being deleted) lists in its registry would hang in Terminating on the
    /// operator's finalizer, so it is refused (403) or warned of, per
    /// `deleteReferencedConnection`. Anything else is allowed. While the cache cannot
    /// back a verdict, `cacheNotReady` decides.
    public func validateDelete(_ input: RuleInput) -> Decision {
        guard input.kind == .connection, let view = input.cluster,
              configuration.deleteReferencedConnection != .allow else { return .allow }
        guard case .ready(let cluster) = view else {
            switch configuration.cacheNotReady {
            case .allow: return Decision(warnings: [CacheNotReadyPolicy.message])
            case .deny: return Decision(refusal: .unavailable(CacheNotReadyPolicy.message))
            }
        }
        let stored = input.oldObject?[.metadata]
        let name = stored?[.name]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? input.requestName
        let namespace = stored?[.namespace]?.string.flatMap { $0.isEmpty ? nil : $0 } ?? input.requestNamespace
        guard !name.isEmpty else { return .allow }
        let connection = ObjectReference(namespace: namespace, name: name)
        let (holders, more) = cluster.instancesListing(connection)
        guard !holders.isEmpty else { return .allow }
        let listed = holders.map(\.shown).joined(separator: ", ") + (more > 0 ? ", and \(more) more" : "")
        switch configuration.deleteReferencedConnection {
        case .deny:
            return Decision(refusal: .forbidden("listed in spec.connectionRegistry of AtlasStreamInstance \(listed); remove it there first"),
                            referenceFindings: [.referencedConnectionDeleted])
        case .warn:
            return Decision(warnings: ["AtlasStreamConnection \(connection.shown) is listed in spec.connectionRegistry of "
                                       + "AtlasStreamInstance \(listed); it stays in Terminating until removed there"],
                            referenceFindings: [.referencedConnectionDeleted])
        case .allow:
            return .allow
        }
    }

    /// On CREATE always; on UPDATE when `spec` changed (compared as JSON, in one pass).
    private func specNeedsJudging(_ object: JSONValue, old: JSONValue?) -> Bool {
        guard let old else { return true }
        switch (object[.spec], old[.spec]) {
        case (nil, nil): return false
        case let (new?, old?): return !(new == old)
        default: return true
        }
    }

    /// `metadata.namespace`, else the request's namespace.
    func objectNamespace(_ input: RuleInput) -> String {
        if let ns = input.object?[.metadata]?[.namespace]?.string, !ns.isEmpty { return ns }
        return input.requestNamespace
    }
}

/// The effective namespace of a `{name, namespace}` reference: its own, else the object's.
func effectiveNamespace(_ reference: JSONValue?, default namespace: String) -> String {
    if let ns = reference?[.namespace]?.string, !ns.isEmpty { return ns }
    return namespace
}

/// Whether a reference needs its namespace filled: it has a name and no namespace.
func needsNamespace(_ reference: JSONValue?) -> Bool {
    guard let reference, reference.isObject, let name = reference[.name], name.kind == .string,
          name.stringByteCount > 0 else { return false }
    guard let ns = reference[.namespace] else { return true }
    return ns.isNull || (ns.kind == .string && ns.stringByteCount == 0)
}

/// An absent, null or empty-string member may be defaulted; anything else is the user's.
func isDefaultable(_ value: JSONValue?) -> Bool {
    guard let value else { return true }
    return value.isNull || (value.kind == .string && value.stringByteCount == 0)
}
