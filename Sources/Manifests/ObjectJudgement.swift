import JSON
import StreamRules

extension StreamRules {
    /// An object judged as the webhook judges a CREATE of it: defaulted as `/mutate`
    /// would, then validated as `/validate` would, in `namespace`, references against
    /// `cluster` when given. `check` judges manifests this way, and the audit the objects
    /// the cluster holds.
    public func judgeAsCreate(_ kind: StreamKind, _ object: JSONValue, namespace: String,
                              cluster: ClusterView?) -> (patch: [PatchOperation], decision: Decision) {
        let mutation = mutate(RuleInput(kind: kind, operation: .create, object: object, oldObject: nil, requestNamespace: namespace))
        let defaulted = PatchApplication.apply(mutation.patch, to: object)
        let decision = validate(RuleInput(kind: kind, operation: .create, object: defaulted, oldObject: nil,
                                          requestNamespace: namespace, cluster: cluster))
        return (mutation.patch, decision)
    }
}
