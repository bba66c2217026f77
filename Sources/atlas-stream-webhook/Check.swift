import ArgumentParser
import Manifests
import StreamRules
import YAML

/// `check`: the webhook's rules on YAML or JSON manifests, for CI and pre-commit.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Default and validate AtlasStreamInstance and AtlasStreamConnection manifests.",
        discussion: """
        Reads files, directories (recursively: *.yaml, *.yml, *.json) and - for stdin; multi-document
        YAML; other kinds are ignored. Each finding is printed as FILE:LINE: Kind/name: field: message.
        Exit status: 0 all valid, 1 an object is invalid (or has warnings, with --strict),
        2 an input is unreadable or not YAML.
        """)

    @Option(help: "text or json.")
    var output: String = "text"

    @Flag(name: .customLong("print-defaulted"), help: "Write the defaulted manifests as YAML on stdout (findings go to stderr).")
    var printDefaulted = false

    @Option(help: "Namespace of objects whose metadata names none.")
    var namespace: String = "default"

    @Flag(help: "Warnings fail the check too.")
    var strict = false

    @OptionGroup var config: ConfigOption

    @Argument(help: "Files, directories, or - for stdin.")
    var paths: [String]

    func validate() throws {
        guard output == "text" || output == "json" else { throw ValidationError("--output must be text or json") }
        guard !paths.isEmpty else { throw ValidationError("give at least one file, directory or -") }
    }

    func run() throws {
        let file = try config.load()
        let depth = file.limits.maxNestingDepth ?? 512
        let checker = ManifestChecker(rules: StreamRules(configuration: file.rules), defaultNamespace: namespace,
                                      limits: YAMLLimits(maxDepth: depth))
        let report = CheckReport(results: ManifestInputs.expand(paths).map(checker.check(path:)), strict: strict)
        let findingsStream = printDefaulted ? StandardStream.error : StandardStream.output
        if output == "json" {
            findingsStream.write(report.json())
        } else {
            findingsStream.write(report.text())
        }
        if printDefaulted { StandardStream.output.write(report.defaultedYAML()) }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
