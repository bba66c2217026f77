import Admission
import ArgumentParser
import StreamRules

/// `review`: one AdmissionReview from stdin through the same code path as the server.
struct Review: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer one AdmissionReview read from stdin, as the server would.",
        discussion: "Exit status: 0 when a response was printed, 2 when stdin is not a usable AdmissionReview.")

    @Flag(name: .customLong("mutate"), help: "Answer as /mutate.")
    var asMutate = false

    @Flag(name: .customLong("validate"), help: "Answer as /validate.")
    var asValidate = false

    @OptionGroup var config: ConfigOption

    func validate() throws {
        guard asMutate != asValidate else { throw ValidationError("give exactly one of --mutate and --validate") }
    }

    func run() throws {
        let file = try config.load()
        let reviewer = AdmissionReviewer(rules: StreamRules(configuration: file.rules),
                                         maxNestingDepth: file.limits.maxNestingDepth ?? 512)
        switch reviewer.review(readStandardInput(), at: asMutate ? .mutate : .validate) {
        case .answered(let body, _):
            StandardStream.output.write(body + [0x0A])
        case .badRequest(let error):
            StandardStream.error.write("error: \(error)\n")
            throw ExitCode(2)
        }
    }
}
