/// Defaulting and validation of AtlasStreamInstance and AtlasStreamConnection as
/// pure functions of a `RuleInput`.
public struct StreamRules: Sendable {
    public init() {}

    /// Defaults for `/mutate`. Never denies.
    public func mutate(_ input: RuleInput) -> Decision {
        .allow
    }

    /// Validation for `/validate`.
    public func validate(_ input: RuleInput) -> Decision {
        .allow
    }
}
