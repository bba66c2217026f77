import Glibc

/// A subcommand: its flags and help, built from a parsed command line, then run.
protocol Subcommand {
    static var name: String { get }
    static var abstract: String { get }
    /// The call shape shown in help, after the program name.
    static var usage: String { get }
    static var discussion: String? { get }
    static var flags: [Flag] { get }
    init(_ flags: ParsedFlags) throws(CommandExit)
    func run() throws(CommandExit)
}

extension Subcommand {
    static var discussion: String? { nil }
    static var help: String {
        helpText(usage: "\(AtlasStreamWebhook.name) \(usage)", abstract: abstract, discussion: discussion, flags: flags)
    }
}

@main
enum AtlasStreamWebhook {
    static let name = "atlas-stream-webhook"
    static var subcommands: [any Subcommand.Type] {
        [Serve.self, Check.self, AuditCommand.self, Review.self, Rules.self, Policy.self]
    }

    static var help: String {
        var text = """
        Admission webhook for the Atlas Kubernetes Operator's AtlasStreamInstance and AtlasStreamConnection.

        Usage: \(name) COMMAND [flags]

        Commands:

        """
        for command in subcommands {
            text += "  " + command.name + String(repeating: " ", count: max(8 - command.name.count, 1)) + command.abstract + "\n"
        }
        text += "\nRun '\(name) COMMAND --help' for a command's flags, '\(name) --version' for the version.\n"
        return text
    }

    static func main() {
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    /// Runs the command line; returns the exit status.
    static func run(_ arguments: [String]) -> Int32 {
        guard let first = arguments.first else {
            StandardStream.error.write(help)
            return 2
        }
        if first == "-h" || first == "--help" {
            StandardStream.output.write(help)
            return 0
        }
        if first == "--version" || first == "version" {
            StandardStream.output.write(Version.text + "\n")
            return 0
        }
        if first == "help" {
            guard arguments.count > 1 else {
                StandardStream.output.write(help)
                return 0
            }
            guard let command = subcommands.first(where: { $0.name == arguments[1] }) else {
                return usageError("unknown command \(arguments[1])", helpCommand: name)
            }
            StandardStream.output.write(command.help)
            return 0
        }
        guard let command = subcommands.first(where: { $0.name == first }) else {
            return usageError("unknown command \(first)", helpCommand: name)
        }
        do throws(CommandExit) {
            let flags = try ParsedFlags(arguments.dropFirst(), flags: command.flags)
            if flags.helpRequested {
                StandardStream.output.write(command.help)
                return 0
            }
            try command.init(flags).run()
            return 0
        } catch {
            switch error {
            case .usage(let message): return usageError(message, helpCommand: "\(name) \(command.name)")
            case .status(let status): return status
            }
        }
    }

    private static func usageError(_ message: String, helpCommand: String) -> Int32 {
        StandardStream.error.write("error: \(message)\nRun '\(helpCommand) --help' for usage.\n")
        return 2
    }
}
