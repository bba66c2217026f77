import Admission
import StreamRules

/// `review`: one AdmissionReview from stdin through the same code path as the server.
struct Review: Subcommand {
    static let name = "review"
    static let abstract = "Answer one AdmissionReview read from stdin, as the server would."
    static let usage = "review (--mutate | --validate) [--config FILE] < admissionreview.json"
    static let discussion: String? = "Exit status: 0 when a response was printed, 2 when stdin is not a usable AdmissionReview."
    static let flags: [Flag] = [
        .switch("mutate", "Answer as /mutate."),
        .switch("validate", "Answer as /validate."),
        configFlag,
    ]

    let flags: ParsedFlags
    let endpoint: AdmissionEndpoint

    init(_ flags: ParsedFlags) throws(CommandExit) {
        self.flags = flags
        switch (flags.isOn("mutate"), flags.isOn("validate")) {
        case (true, false): endpoint = .mutate
        case (false, true): endpoint = .validate
        default: throw .usage("give exactly one of --mutate and --validate")
        }
        if let extra = flags.arguments.first { throw .usage("unexpected argument \(extra): the review is read from stdin") }
    }

    func run() throws(CommandExit) {
        let file = try loadConfiguration(flags)
        let reviewer = AdmissionReviewer(rules: StreamRules(configuration: file.rules),
                                         maxNestingDepth: file.limits.maxNestingDepth ?? AdmissionReviewer.defaultMaxNestingDepth)
        switch reviewer.review(readStandardInput(), at: endpoint) {
        case .answered(let body, _):
            StandardStream.output.write(body + [0x0A])
        case .badRequest(let error):
            StandardStream.error.write("error: \(error)\n")
            throw .status(2)
        case .outOfTime:  // no budget is given here
            throw .status(1)
        }
    }
}
