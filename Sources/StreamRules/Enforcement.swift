/// What a rule's findings cost: the rollout setting (`--enforcement`, the
/// configuration's `enforcement:` section). A team starts in `warn`, watches what would
/// be denied, then turns rules to `deny` one by one.
public enum EnforcementAction: String, Sendable, Equatable, CaseIterable {
    /// As the rule says: its denials deny, its warnings warn.
    case deny
    /// Its denials become warnings prefixed `would be denied: `; the request is admitted.
    case warn
    /// The rule says nothing.
    case off
}

/// The action for each rule: a default, and overrides by rule id.
public struct Enforcement: Sendable, Equatable {
    /// The action of every rule not in `rules`: `deny` or `warn`.
    public var `default`: EnforcementAction {
        didSet { isEnforcingAll = Self.enforcesAll(`default`, rules) }
    }
    public var rules: [RuleID: EnforcementAction] {
        didSet { isEnforcingAll = Self.enforcesAll(`default`, rules) }
    }
    /// Every rule as it says: decisions pass untouched (kept, not computed per review).
    public private(set) var isEnforcingAll: Bool

    public init(default: EnforcementAction = .deny, rules: [RuleID: EnforcementAction] = [:]) {
        self.default = `default`
        self.rules = rules
        isEnforcingAll = Self.enforcesAll(`default`, rules)
    }

    private static func enforcesAll(_ action: EnforcementAction, _ rules: [RuleID: EnforcementAction]) -> Bool {
        action == .deny && rules.values.allSatisfy { $0 == .deny }
    }

    public func action(for rule: RuleID) -> EnforcementAction { rules[rule] ?? `default` }

    public static let wouldDenyPrefix = "would be denied: "

    /// `decision` with each finding costing what its rule's action says: `off` drops it,
    /// `warn` turns a denial (a field error, a refusal) into a warning, after the rules'
    /// own warnings, in the order of the answer.
    public func apply(to decision: Decision) -> Decision {
        guard !isEnforcingAll else { return decision }
        var result = decision
        result.errors = []
        result.refusal = nil
        var wouldDeny: [RuleWarning] = []
        for error in decision.errors {
            switch action(for: error.rule) {
            case .deny: result.errors.append(error)
            case .warn: wouldDeny.append(RuleWarning(error.rule, Self.wouldDenyPrefix + error.description, wouldDeny: true,
                                                     field: error.field))
            case .off: break
            }
        }
        if let refusal = decision.refusal {
            switch action(for: refusal.rule) {
            case .deny: result.refusal = refusal
            case .warn: wouldDeny.append(RuleWarning(refusal.rule, Self.wouldDenyPrefix + refusal.message, wouldDeny: true))
            case .off: break
            }
        }
        // Errors past those listed belong to no rule that can be named: they follow the default.
        if decision.omittedErrorCount > 0 && `default` != .deny {
            result.omittedErrorCount = 0
            if `default` == .warn, let last = wouldDeny.last {
                wouldDeny.append(RuleWarning(last.rule, Self.wouldDenyPrefix + "and \(decision.omittedErrorCount) more errors",
                                             wouldDeny: true))
            }
        } else if result.errors.isEmpty {
            result.omittedErrorCount = 0
        }
        result.warnings = decision.warnings.filter { action(for: $0.rule) != .off } + wouldDeny
        return result
    }
}
