/// Command-line flags the way Kubernetes components take them (pflag): `--name value`,
/// `--name=value`, a switch as `--name` or `--name=true|false`, the last of a repeated
/// flag wins unless it is a list, `--` ends the flags, `-` is an argument (stdin).
/// Pure: arguments in, values or a `CommandExit.usage` out.

/// One flag a command accepts.
struct Flag: Sendable {
    /// The long name, without the dashes.
    let name: String
    /// How the value is shown in help (`FILE`, `HOST:PORT`); nil for a switch.
    let value: String?
    let help: String
    /// Every occurrence is kept (`--client-name a --client-name b`).
    var isList = false

    static func option(_ name: String, _ value: String, _ help: String) -> Flag {
        Flag(name: name, value: value, help: help)
    }

    static func list(_ name: String, _ value: String, _ help: String) -> Flag {
        Flag(name: name, value: value, help: help, isList: true)
    }

    static func `switch`(_ name: String, _ help: String) -> Flag {
        Flag(name: name, value: nil, help: help)
    }
}

/// How a command ends other than with status 0.
enum CommandExit: Error {
    /// The command line is wrong: the message and a pointer to `--help`, status 2.
    case usage(String)
    /// The command has already said what went wrong; exit with this status.
    case status(Int32)
}

/// What a command line said, by flag name.
struct ParsedFlags {
    private var values: [String: [String]] = [:]
    private var switches: Set<String> = []
    /// Arguments that are not flags, in order.
    private(set) var arguments: [String] = []
    /// `-h`, `--help` or `help` was given.
    private(set) var helpRequested = false

    /// Parses `arguments` against `flags`. A switch given `=false` counts as not given.
    init(_ commandLine: some Sequence<String>, flags: [Flag]) throws(CommandExit) {
        var byName: [String: Flag] = [:]
        for flag in flags { byName[flag.name] = flag }
        var iterator = commandLine.makeIterator()
        var flagsEnded = false
        while let argument = iterator.next() {
            if flagsEnded || argument == "-" || !argument.hasPrefix("-") {
                arguments.append(argument)
                continue
            }
            if argument == "--" {
                flagsEnded = true
                continue
            }
            if argument == "-h" || argument == "--help" {
                helpRequested = true
                continue
            }
            guard argument.hasPrefix("--") else {
                throw .usage("unknown shorthand flag \(argument): flags are spelled --name")
            }
            let body = argument.dropFirst(2)
            let name: String
            var inlineValue: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                inlineValue = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
            }
            guard let flag = byName[name] else { throw .usage("unknown flag --\(name)") }
            guard flag.value != nil else {
                switch inlineValue {
                case nil, "true": switches.insert(name)
                case "false": switches.remove(name)
                case let other?: throw .usage("--\(name) is a switch: --\(name), --\(name)=true or --\(name)=false, got \(other)")
                }
                continue
            }
            guard let value = inlineValue ?? iterator.next() else {
                throw .usage("flag needs a value: --\(name)")
            }
            if flag.isList {
                values[name, default: []].append(value)
            } else {
                values[name] = [value]
            }
        }
    }

    /// The value of an option, nil when not given.
    func string(_ name: String) -> String? { values[name]?.last }

    /// Every value of a list flag, in order.
    func strings(_ name: String) -> [String] { values[name] ?? [] }

    /// Whether a switch is on.
    func isOn(_ name: String) -> Bool { switches.contains(name) }

    /// The value of an option as a positive integer, nil when not given.
    func count(_ name: String) throws(CommandExit) -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text), value > 0 else {
            throw .usage("--\(name) must be a positive whole number, got \(text)")
        }
        return value
    }
}

/// Help text for a command: what it does, how it is called, its flags.
func helpText(usage: String, abstract: String, discussion: String? = nil, flags: [Flag]) -> String {
    var text = "\(abstract)\n\nUsage: \(usage)\n"
    if let discussion { text += "\n\(discussion)\n" }
    guard !flags.isEmpty else { return text }
    text += "\nFlags:\n"
    let entries = flags.map { flag in
        ("--\(flag.name)" + (flag.value.map { " \($0)" } ?? ""), flag.help)
    }
    let width = min(entries.map(\.0.count).max() ?? 0, 30)
    for (left, help) in entries {
        let padding = left.count < width ? String(repeating: " ", count: width - left.count) : ""
        text += left.count > width ? "  \(left)\n  \(String(repeating: " ", count: width))  \(help)\n"
                                   : "  \(left)\(padding)  \(help)\n"
    }
    text += "  -h, --help" + String(repeating: " ", count: max(width - 10, 0)) + "  Show this help.\n"
    return text
}
