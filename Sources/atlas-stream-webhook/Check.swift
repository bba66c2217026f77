import Manifests
import StreamRules
import YAML

/// `check`: the webhook's rules on YAML or JSON manifests, for CI and pre-commit.
struct Check: Subcommand {
    static let name = "check"
    static let abstract = "Default and validate AtlasStreamInstance and AtlasStreamConnection manifests."
    static let usage = "check [flags] PATH... (- for stdin)"
    static let discussion: String? = """
        Reads files, directories (recursively: *.yaml, *.yml, *.json) and - for stdin; multi-document
        YAML; the items of a List (kubectl get -o yaml) one by one; other kinds are ignored, except
        kinds of atlas.mongodb.com that AKO does not serve, which are errors. Each finding is printed
        as FILE:LINE: Kind/name: field: message.
        Exit status: 0 all valid, 1 an object is invalid (or has warnings, with --strict, or none was
        found, with --require-objects), 2 an input is unreadable or not YAML, or the command line is wrong.
        """
    static let flags: [Flag] = [
        .option("output", "FORMAT", "text or json (default text)."),
        .switch("print-defaulted", "Write the defaulted manifests as YAML on stdout (findings go to stderr)."),
        .option("namespace", "NAME", "Namespace of objects whose metadata names none (default \"default\")."),
        .switch("strict", "Warnings fail the check too."),
        .switch("require-objects", "Finding no AtlasStreamInstance or AtlasStreamConnection fails the check."),
        .switch("resolve-references", "Check references (Secrets, AtlasProjects, connections) against the objects in all the inputs."),
        configFlag,
    ]

    let flags: ParsedFlags
    let outputJSON: Bool
    let paths: [String]

    init(_ flags: ParsedFlags) throws(CommandExit) {
        self.flags = flags
        switch flags.string("output") ?? "text" {
        case "text": outputJSON = false
        case "json": outputJSON = true
        case let other: throw .usage("--output must be text or json, got \(other)")
        }
        paths = flags.arguments
        guard !paths.isEmpty else { throw .usage("give at least one file, directory or -") }
    }

    func run() throws(CommandExit) {
        let file = try loadConfiguration(flags)
        let printDefaulted = flags.isOn("print-defaulted")
        // What the server's rollout settings would only warn of fails the check: CI judges
        // what the cluster will eventually refuse. Rules turned off stay off.
        var rules = file.rules
        rules.enforcement = rules.enforcement.denyingWarned
        let checker = ManifestChecker(rules: StreamRules(configuration: rules),
                                      defaultNamespace: flags.string("namespace") ?? "default",
                                      limits: YAMLLimits(maxDepth: file.limits.maxNestingDepth ?? YAMLLimits().maxDepth))
        let inputs = ManifestInputs.expand(paths)
        let results = flags.isOn("resolve-references") ? checker.checkResolvingReferences(paths: inputs)
                                                        : inputs.map(checker.check(path:))
        let report = CheckReport(results: results, strict: flags.isOn("strict"), requireObjects: flags.isOn("require-objects"))
        let findingsStream = printDefaulted ? StandardStream.error : StandardStream.output
        if outputJSON {
            findingsStream.write(report.json())
        } else {
            findingsStream.write(report.text())
        }
        if printDefaulted { StandardStream.output.write(report.defaultedYAML()) }
        if report.exitCode != 0 { throw .status(report.exitCode) }
    }
}
