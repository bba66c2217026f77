import ArgumentParser

@main
struct AtlasStreamWebhook: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atlas-stream-webhook",
        abstract: "Admission webhook for the Atlas Kubernetes Operator's AtlasStreamInstance and AtlasStreamConnection.",
        subcommands: [Serve.self, Check.self, Review.self]
    )
}
