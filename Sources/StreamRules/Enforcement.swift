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

    /// The warning a denial becomes under `warn`.
    static func wouldDenyWarning(_ error: FieldError) -> RuleWarning {
        RuleWarning(error.rule, wouldDenyPrefix + error.description, wouldDeny: true, field: error.field)
    }

    /// The rules' field errors are sorted as they are found (`FieldChecks`); here the rest:
    /// the refusal follows its rule, the rules' own warnings of rules set to `off` are
    /// dropped, and the would-be denials (`wouldDeny`, then how many more there were) come
    /// first among the warnings, so the answer's cap on warnings cuts the rules' own
    /// warnings before them.
    func decide(errors: [FieldError], omitted: Int, wouldDeny: [FieldError], omittedWouldDeny: Int,
                warnings: [RuleWarning], outOfTime: Bool, refusal: Refusal?) -> Decision {
        guard !isEnforcingAll else {
            return Decision(errors: errors, omittedErrorCount: omitted, warnings: warnings, outOfTime: outOfTime, refusal: refusal)
        }
        var first = wouldDeny.map(Self.wouldDenyWarning)
        if omittedWouldDeny > 0, let last = wouldDeny.last {
            first.append(RuleWarning(last.rule, Self.wouldDenyPrefix + "and \(omittedWouldDeny) more errors", wouldDeny: true))
        }
        var kept: Refusal?
        if let refusal {
            switch action(for: refusal.rule) {
            case .deny: kept = refusal
            case .warn: first.append(RuleWarning(refusal.rule, Self.wouldDenyPrefix + refusal.message, wouldDeny: true))
            case .off: break
            }
        }
        return Decision(errors: errors, omittedErrorCount: omitted, warnings: first + warnings.filter { action(for: $0.rule) != .off },
                        outOfTime: outOfTime, refusal: kept)
    }

    /// For `check`: what the server would only warn of under `warn` is denied, so a CI run
    /// with the server's rollout settings never passes what it would refuse later; rules
    /// set to `off` stay off.
    public var denyingWarned: Enforcement {
        Enforcement(default: .deny, rules: rules.filter { $0.value == .off })
    }
}
