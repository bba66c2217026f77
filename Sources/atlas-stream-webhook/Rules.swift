import AdmissionPolicy
import JSON
import StreamRules

/// `rules`: the rule catalogue, for people (Markdown, the reference in docs/rules.md)
/// and for tools (JSON).
struct Rules: Subcommand {
    static let name = "rules"
    static let abstract = "List every rule: id, kinds, operations, default severity, field and why."
    static let usage = "rules [--output markdown|json]"
    static let flags: [Flag] = [
        .option("output", "FORMAT", "markdown or json (default markdown)."),
    ]

    enum Format: String {
        case markdown, json
    }

    let format: Format

    init(_ flags: ParsedFlags) throws(CommandExit) {
        let name = flags.string("output") ?? Format.markdown.rawValue
        guard let format = Format(rawValue: name) else { throw .usage("--output must be markdown or json, got \(name)") }
        self.format = format
        if let extra = flags.arguments.first { throw .usage("unexpected argument \(extra)") }
    }

    func run() throws(CommandExit) {
        switch format {
        case .markdown: StandardStream.output.write(Self.markdown(Rule.catalogue))
        case .json: StandardStream.output.write(Self.json(Rule.catalogue) + [0x0A])
        }
    }

    /// A section per rule: its id as the heading, what must hold, then where, what the
    /// answer says, an example, why, and whether the CEL policy holds it; then the rules
    /// it does not hold.
    static func markdown(_ rules: [Rule]) -> String {
        var out = ""
        for rule in rules {
            let operations = rule.operations.map(\.rawValue).joined(separator: ", ")
            out += """
                ### `\(rule.id.rawValue)`

                \(rule.summary)

                - applies to: \(rule.kinds.map(\.rawValue).joined(separator: ", ")) on \(operations)
                - default: \(rule.severity.rawValue)\(rule.needsCluster ? ", judged against the cluster cache" : "")
                - field: `\(rule.field)`
                - message: `\(rule.message)`
                - example: \(rule.example)
                - why: \(rule.motivation)
                - CEL policy (`policy`): \(policyMark(rule.id))


                """
        }
        out += "Rules the CEL policy (`atlas-stream-webhook policy`) does not hold, judged by the webhook alone:\n\n"
        for (rule, reason) in AdmissionPolicy.notCovered {
            out += "- `\(rule.rawValue)`: \(reason)\n"
        }
        return out + "\n"
    }

    /// Whether the generated policy holds the rule, and if not why.
    private static func policyMark(_ rule: RuleID) -> String {
        switch rule.policyCoverage(RuleConfiguration()) {
        case .covered: "covered"
        case .notCovered(let reason): "not covered: " + reason
        }
    }

    static func json(_ rules: [Rule]) -> [UInt8] {
        var w = JSONWriter(capacity: 32 * 1024)
        w.beginArray()
        for rule in rules {
            w.beginObject()
            w.key("id"); w.string(rule.id.rawValue)
            w.key("kinds"); w.beginArray(); for kind in rule.kinds { w.string(kind.rawValue) }; w.endArray()
            w.key("operations"); w.beginArray(); for operation in rule.operations { w.string(operation.rawValue) }; w.endArray()
            w.key("severity"); w.string(rule.severity.rawValue)
            w.key("field"); w.string(rule.field)
            w.key("message"); w.string(rule.message)
            w.key("summary"); w.string(rule.summary)
            w.key("motivation"); w.string(rule.motivation)
            w.key("example"); w.string(rule.example)
            w.key("needsCluster"); w.bool(rule.needsCluster)
            w.key("policy"); w.string(policyMark(rule.id))
            w.endObject()
        }
        w.endArray()
        return w.bytes
    }
}
