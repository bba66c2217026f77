import Audit
import ClusterCache
import KubernetesClient
import Logging
import StreamRules

/// `audit`: the cluster's AtlasStream objects judged once, as the server's audit judges
/// them, for a person or a CI job. Read-only.
struct AuditCommand: Subcommand {
    static let name = "audit"
    static let abstract = "Judge the AtlasStream objects the cluster holds, once; print what would be denied or warned of."
    static let usage = "audit [--kubeconfig FILE] [--namespace NS | --all-namespaces] [--output text|json] [--strict] [--config FILE]"
    static let discussion: String? = """
        Lists the cluster (page by page) as the server's cache does: Secrets as metadata only, the
        key names of credentials Secrets, AtlasProjects, AtlasStreamConnections and AtlasStreamInstances,
        in the namespaces the configuration's cluster.watchNamespaces names (all by default); then judges
        every AtlasStreamConnection and AtlasStreamInstance (of --namespace only, when given) as a CREATE
        of it, references included. It never writes. Each finding is printed as
        namespace/Kind/name: field: message.
        Exit status: 0 nothing would be denied, 1 an object would be denied (or has warnings, with
        --strict), 2 the cluster cannot be read (unreachable, 401, 403 naming the permission) or the
        command line is wrong.
        """
    static let flags: [Flag] = [
        .option("kubeconfig", "FILE", "Reach the cluster with this kubeconfig's current context (default: in-cluster when in a pod)."),
        .option("namespace", "NS", "Judge the objects of this namespace only (references are still looked up where they point)."),
        .switch("all-namespaces", "Judge the objects of every namespace (the default)."),
        .option("output", "FORMAT", "text or json (default text)."),
        .switch("strict", "Warnings fail the audit too."),
        configFlag,
    ]

    let flags: ParsedFlags
    let outputJSON: Bool
    let namespace: String?

    init(_ flags: ParsedFlags) throws(CommandExit) {
        if let extra = flags.arguments.first { throw .usage("unexpected argument \(extra)") }
        self.flags = flags
        switch flags.string("output") ?? "text" {
        case "text": outputJSON = false
        case "json": outputJSON = true
        case let other: throw .usage("--output must be text or json, got \(other)")
        }
        namespace = flags.string("namespace")
        if namespace != nil && flags.isOn("all-namespaces") { throw .usage("--namespace and --all-namespaces exclude each other") }
        if namespace?.isEmpty == true { throw .usage("--namespace needs a namespace") }
    }

    func run() throws(CommandExit) {
        let file = try loadConfiguration(flags)
        // As `check`: what a rollout only warns of is reported as what it will deny.
        var rules = file.rules
        rules.enforcement = rules.enforcement.denyingWarned
        let found: ClusterAccess?
        do {
            if let path = flags.string("kubeconfig") {
                found = try ClusterAccess.kubeconfig(path: path)
            } else {
                found = try ClusterAccess.inCluster(environment: Serve.clusterEnvironment())
            }
        } catch {
            throw unreadable("cannot use the cluster configuration: \(error.description)")
        }
        guard let access = found else { throw unreadable("no cluster configuration: give --kubeconfig, or run in a pod") }
        let client: KubernetesAPIClient
        do {
            client = try KubernetesAPIClient(access: access)
        } catch {
            throw unreadable("cannot use the cluster configuration: \(error.description)")
        }
        let cache = ClusterCache(client: client, namespaces: file.cluster.watchNamespaces,
                                 logger: Logger(label: "audit") { _ in SwiftLogNoOpLogHandler() })
        let snapshot: ClusterSnapshot
        do {
            snapshot = try cache.listOnce()
        } catch {
            throw unreadable(error.description)
        }
        let report = AuditReport(snapshot: snapshot, judge: AuditJudge(rules: StreamRules(configuration: rules)),
                                 namespace: namespace, strict: flags.isOn("strict"))
        if outputJSON {
            StandardStream.output.write(report.json())
        } else {
            StandardStream.output.write(report.text())
        }
        if report.exitCode != 0 { throw .status(report.exitCode) }
    }

    /// The cluster cannot be read: the reason, printed, and exit status 2.
    private func unreadable(_ reason: String) -> CommandExit {
        StandardStream.error.write("error: \(reason)\n")
        return .status(2)
    }
}
