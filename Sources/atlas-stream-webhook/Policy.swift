import AdmissionPolicy

/// `policy`: the per-object rules as ValidatingAdmissionPolicies and their bindings, for
/// a cluster that judges in the API server (with or without the webhook).
struct Policy: Subcommand {
    static let name = "policy"
    static let abstract = "Print the rules as ValidatingAdmissionPolicies (CEL) and their bindings."
    static let usage = "policy [--config FILE] [--output yaml|json]"
    static let discussion: String? = """
        The policies follow the configuration file as the server would: rule data, reference
        policies, operator version and per-rule enforcement (warn binds with validationActions
        Warn, off leaves the rule out). Rules that need the cluster are the webhook's alone;
        the YAML's opening comment lists every rule the policies do not hold, and why.
        """
    static let flags: [Flag] = [
        .option("output", "FORMAT", "yaml or json (a v1 List; default yaml)."),
        configFlag,
    ]

    let flags: ParsedFlags
    let json: Bool

    init(_ flags: ParsedFlags) throws(CommandExit) {
        self.flags = flags
        switch flags.string("output") ?? "yaml" {
        case "yaml": json = false
        case "json": json = true
        case let other: throw .usage("--output must be yaml or json, got \(other)")
        }
        if let extra = flags.arguments.first { throw .usage("unexpected argument \(extra)") }
    }

    func run() throws(CommandExit) {
        let policy = AdmissionPolicy(configuration: try loadConfiguration(flags).rules)
        StandardStream.output.write(json ? policy.json() + [0x0A] : policy.yaml())
    }
}
