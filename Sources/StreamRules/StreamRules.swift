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
        input.kind.rules.defaults(spec: spec, namespace: namespace, configuration: configuration, into: &patch)
        return Decision(patch: patch)
    }

    /// Validation for `/validate`. The operator's annotations and label are judged on
    /// CREATE and, on UPDATE, where their value changed; `spec` on CREATE and on UPDATE
    /// when it changed, so the operator's finalizer and status updates always go through.
    /// An object being deleted gets no free pass for a spec change. Each finding then
    /// costs what its rule's enforcement says.
    public func validate(_ input: RuleInput) -> Decision {
        var checks = FieldChecks(budget: input.budget, enforcement: configuration.enforcement)
        guard let object = input.object else {
            checks.required(.objectRequired, FieldPath("object"))
            return decision(checks)
        }
        guard object.isObject else {
            checks.invalid(.objectRequired, FieldPath("object"), object, "must be a JSON object")
            return decision(checks)
        }
        var old: JSONValue?
        if input.operation == .update, let oldObject = input.oldObject, oldObject.isObject {
            old = oldObject
        }
        OperatorMetadataRules(configuration: configuration).validate(object: object, old: old, checks: &checks)
        var warnings: [RuleWarning] = []
        var refusal: Refusal?
        if specNeedsJudging(object, old: old) {
            if input.budget.isExhausted { return Decision(outOfTime: true) }
            let namespace = objectNamespace(input)
            let rules = input.kind.rules
            rules.validate(object: object, old: old, namespace: namespace, configuration: configuration,
                           checks: &checks, warnings: &warnings)
            // References last: their warnings come after those of the other rules.
            if let cluster = input.cluster, let spec = object[.spec], spec.isObject {
                switch cluster {
                case .ready(let snapshot):
                    let references = ReferenceRules(configuration: configuration, snapshot: snapshot)
                    rules.validateReferences(spec: spec, namespace: namespace, references: references,
                                             checks: &checks, warnings: &warnings)
                case .notReady:
                    if rules.hasReferences(spec) {
                        switch configuration.cacheNotReady {
                        case .allow: warnings.append(RuleWarning(.clusterCacheReady, CacheNotReadyPolicy.message))
                        case .deny: refusal = .unavailable(CacheNotReadyPolicy.message)
                        }
                    }
                }
            }
        }
        return decision(checks, warnings: warnings, refusal: refusal)
    }

    /// What the checks found, each finding costing what its rule's enforcement says.
    private func decision(_ checks: FieldChecks, warnings: [RuleWarning] = [], refusal: Refusal? = nil) -> Decision {
        configuration.enforcement.decide(errors: checks.errors, omitted: checks.omitted, wouldDeny: checks.wouldDeny,
                                         omittedWouldDeny: checks.omittedWouldDeny, warnings: warnings,
                                         outOfTime: checks.outOfTime, refusal: refusal)
    }

    /// DELETE at `/validate`: an AtlasStreamConnection that an AtlasStreamInstance (not
    /// itself being deleted) lists in its registry would hang in Terminating on the
    /// operator's finalizer, so it is refused (403) or warned of, per
    /// `deleteReferencedConnection`. Anything else is allowed. While the cache cannot
    /// back a verdict, `cacheNotReady` decides.
    public func validateDelete(_ input: RuleInput) -> Decision {
        let judged = judgeDelete(input)
        return configuration.enforcement.decide(errors: [], omitted: 0, wouldDeny: [], omittedWouldDeny: 0,
                                                warnings: judged.warnings, outOfTime: false, refusal: judged.refusal)
    }

    private func judgeDelete(_ input: RuleInput) -> Decision {
        guard input.kind == .connection, let view = input.cluster,
              configuration.deleteReferencedConnection != .allow else { return .allow }
        guard case .ready(let cluster) = view else {
            switch configuration.cacheNotReady {
            case .allow: return Decision(warnings: [RuleWarning(.clusterCacheReady, CacheNotReadyPolicy.message)])
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
            return Decision(refusal: .forbidden("listed in spec.connectionRegistry of AtlasStreamInstance \(listed); remove it there first"))
        case .warn:
            return Decision(warnings: [RuleWarning(.connectionNotInRegistry,
                                                   "AtlasStreamConnection \(connection.shown) is listed in spec.connectionRegistry of "
                                                   + "AtlasStreamInstance \(listed); it stays in Terminating until removed there")])
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

/// What the rules of one kind provide. `StreamKind.rules` picks them: the one place the
/// kind is dispatched on. Static, so picking them allocates nothing.
protocol KindRules {
    /// Defaulting as `add` operations inside `spec`.
    static func defaults(spec: JSONValue, namespace: String, configuration: RuleConfiguration,
                         into patch: inout [PatchOperation])
    /// The object alone: its spec, and on UPDATE what may not change.
    static func validate(object: JSONValue, old: JSONValue?, namespace: String, configuration: RuleConfiguration,
                         checks: inout FieldChecks, warnings: inout [RuleWarning])
    /// What `spec` references, against the cluster.
    static func validateReferences(spec: JSONValue, namespace: String, references: ReferenceRules,
                                   checks: inout FieldChecks, warnings: inout [RuleWarning])
    /// Whether `spec` names anything the cluster would have to hold.
    static func hasReferences(_ spec: JSONValue) -> Bool
}

extension StreamKind {
    var rules: any KindRules.Type {
        switch self {
        case .instance: InstanceRules.self
        case .connection: ConnectionRules.self
        }
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
