import Admission
import Audit
import Configuration
import HTTPServer
import Logging
import StreamRules
import TLS
import Units
import WebhookServer

/// Everything `serve` runs with, merged once: each value from its flag, else from the
/// configuration file, else the default of the type that owns it (HTTPLimits,
/// HTTPTimeouts, HTTPServerConfiguration, WebhookConfiguration, TLSConfiguration,
/// AdmissionReviewer). A bad value is a usage error naming the flag.
struct ServeSettings {
    /// With `--dev` and no pair given, the certificate paths are filled in from
    /// `developmentCertificateDirectory` once the pair is made there.
    var webhook: WebhookConfiguration
    var developmentCertificateDirectory: String?
    var logLevel: Logger.Level
    var reviewer: AdmissionReviewer
    var cluster: ClusterSettings

    /// Where `serve` listens unless told: every interface in a pod, loopback with `--dev`.
    static let defaultListen = "0.0.0.0:9443"
    static let developmentListen = "127.0.0.1:8443"
    static let developmentCertificateDirectory = "certs/dev"
    /// The health and metrics listeners' ports are kubebuilder's; loopback with `--dev`.
    static let defaultHealthListen = ListenAddress(host: "0.0.0.0", port: 8081)
    static let developmentHealthListen = ListenAddress(host: "127.0.0.1", port: 8081)
    static let defaultMetricsListen = ListenAddress(host: "0.0.0.0", port: 8080)
    static let developmentMetricsListen = ListenAddress(host: "127.0.0.1", port: 8080)

    init(flags: ParsedFlags, file: ConfigurationFile) throws(CommandExit) {
        let read = FlagReader(flags: flags)
        let logLevel = flags.string("log-level") ?? "info"
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw .usage("--log-level must be one of trace, debug, info, notice, warning, error, critical, got \(logLevel)")
        }
        self.logLevel = level
        let dev = flags.isOn("dev")
        let listenText = flags.string("listen") ?? (dev ? Self.developmentListen : Self.defaultListen)
        guard let address = ListenAddress(listenText) else {
            throw .usage("--listen must be HOST:PORT, got \(listenText)")
        }

        let limitDefaults = HTTPLimits()
        let limits = HTTPLimits(
            maxHeaderBytes: try read.size("max-header-bytes") ?? file.limits.maxHeaderBytes ?? limitDefaults.maxHeaderBytes,
            maxHeaderFields: try flags.count("max-header-fields") ?? file.limits.maxHeaderFields ?? limitDefaults.maxHeaderFields,
            maxBodyBytes: try read.size("max-request-body") ?? file.limits.maxRequestBody ?? limitDefaults.maxBodyBytes)
        let timeoutDefaults = HTTPTimeouts()
        let timeouts = HTTPTimeouts(
            handshake: try read.duration("handshake-timeout", file: file.timeouts.tlsHandshake, default: timeoutDefaults.handshake),
            requestHeaders: try read.duration("header-timeout", file: file.timeouts.requestHeaders, default: timeoutDefaults.requestHeaders),
            requestBody: try read.duration("body-timeout", file: file.timeouts.requestBody, default: timeoutDefaults.requestBody),
            idle: try read.duration("idle-timeout", file: file.timeouts.idle, default: timeoutDefaults.idle))
        let http = HTTPServerConfiguration(
            address: address, loopCount: try flags.count("loops"), limits: limits, timeouts: timeouts,
            maxConnections: try flags.count("max-connections") ?? file.limits.maxConnections
                ?? HTTPServerConfiguration.defaultMaxConnections,
            maxBufferedBodyBytes: try read.size("max-buffered-bodies") ?? file.limits.maxBufferedBodies
                ?? HTTPServerConfiguration.defaultMaxBufferedBodyBytes)

        let versionText = flags.string("tls-min-version") ?? TLSMinimumVersion.tls12.rawValue
        guard let minimumVersion = TLSMinimumVersion(rawValue: versionText) else {
            throw .usage("--tls-min-version must be 1.2 or 1.3, got \(versionText)")
        }
        let clientCA = flags.string("client-ca")
        let clientNames = flags.strings("client-name")
        if !clientNames.isEmpty && clientCA == nil {
            throw .usage("--client-name needs --client-ca")
        }
        // An empty name would pin nothing; a pattern is not a name.
        if let bad = clientNames.first(where: { $0.isEmpty || $0.contains("*") }) {
            throw .usage("--client-name must be a client's exact name (no wildcards), got \"\(bad)\"")
        }
        let certificate = flags.string("tls-cert"), key = flags.string("tls-key")
        switch (certificate, key) {
        case (_?, _?):
            developmentCertificateDirectory = nil
        case (nil, nil) where dev:
            developmentCertificateDirectory = flags.string("dev-cert-dir") ?? Self.developmentCertificateDirectory
        case (nil, nil):
            throw .usage("--tls-cert and --tls-key are required (or use --dev)")
        default:
            throw .usage(dev ? "--tls-cert and --tls-key are given together (or neither, with --dev)"
                             : "--tls-cert and --tls-key are required (or use --dev)")
        }
        let tls = TLSConfiguration(certificateChainPath: certificate ?? "", privateKeyPath: key ?? "",
                                   minimumVersion: minimumVersion, clientCAPath: clientCA, clientNames: clientNames)

        let health = try Self.listener("health-listen", flags: flags, file: file.listeners.health,
                                       default: dev ? Self.developmentHealthListen : Self.defaultHealthListen)
        let metrics = try Self.listener("metrics-listen", flags: flags, file: file.listeners.metrics,
                                        default: dev ? Self.developmentMetricsListen : Self.defaultMetricsListen)
        let metricsInsecure = flags.isOn("metrics-insecure") || file.listeners.metricsInsecure == true

        webhook = WebhookConfiguration(
            http: http, tls: tls,
            // With --dev nothing routes by readiness: Ctrl-C stops at once.
            shutdownDelay: try read.duration("shutdown-delay", file: file.timeouts.shutdownDelay, allowZero: true,
                                             default: dev ? .zero : WebhookConfiguration.defaultShutdownDelay),
            drainTimeout: try read.duration("drain-timeout", file: file.timeouts.drainTimeout,
                                            default: WebhookConfiguration.defaultDrainTimeout),
            certificatePollInterval: try read.duration("cert-poll-interval", file: nil,
                                                       default: WebhookConfiguration.defaultCertificatePollInterval),
            loopStallTimeout: try read.duration("loop-stall-timeout", file: file.timeouts.loopStall,
                                                default: WebhookConfiguration.defaultLoopStallTimeout),
            healthAddress: health, metricsAddress: metrics, metricsInsecure: metricsInsecure)
        webhook.build = BuildIdentity(release: Version.release, revision: Version.revision)
        cluster = try ClusterSettings(flags: flags, file: file)
        var rules = file.rules
        switch flags.string("cache-not-ready") {
        case nil: break
        case let text?:
            guard let policy = CacheNotReadyPolicy(rawValue: text) else {
                throw .usage("--cache-not-ready must be allow or deny, got \(text)")
            }
            rules.cacheNotReady = policy
        }
        switch flags.string("enforcement") {
        case nil: break
        case let text?:
            guard let action = EnforcementAction(rawValue: text), action != .off else {
                throw .usage("--enforcement must be deny or warn, got \(text)")
            }
            rules.enforcement.default = action
        }
        reviewer = AdmissionReviewer(rules: StreamRules(configuration: rules),
                                     maxNestingDepth: file.limits.maxNestingDepth ?? AdmissionReviewer.defaultMaxNestingDepth)
    }
}

extension ServeSettings {
    /// A listener's address from its flag, else the file, else `fallback`; nil when `off`.
    static func listener(_ flag: String, flags: ParsedFlags, file: ConfiguredListener?,
                         default fallback: ListenAddress) throws(CommandExit) -> ListenAddress? {
        var setting = file ?? .address(fallback)
        if let text = flags.string(flag) {
            guard let given = ConfiguredListener(text) else { throw .usage("--\(flag) must be HOST:PORT or off, got \(text)") }
            setting = given
        }
        switch setting {
        case .off: return nil
        case .address(let address): return address
        }
    }
}

/// Cluster access: on, off, or on when a configuration is found.
struct ClusterSettings {
    /// nil: on when an in-cluster configuration or `--kubeconfig` is there.
    var lookups: Bool?
    var kubeconfigPath: String?
    var watchNamespaces: [String]?
    /// No event, bookmark or list for this long: stale.
    var staleAfter: Duration
    /// `/readyz` 503 while stale.
    var notReadyWhenStale: Bool
    var watchIdleTimeout: Duration
    var listPageTimeout: Duration
    /// The audit runs with the cache: its full-pass interval, whether it writes
    /// PolicyReports, and the Lease that elects the writer (its namespace, when not
    /// configured, is the pod's).
    var auditInterval: Duration
    var auditReports: Bool
    var leaseName: String
    var leaseNamespace: String?
    var leaseDuration: Duration
    var renewDeadline: Duration
    var retryPeriod: Duration

    static let defaultStaleAfter = Duration.seconds(180)
    static let defaultWatchIdleTimeout = Duration.seconds(120)
    static let defaultListPageTimeout = Duration.seconds(60)

    init(flags: ParsedFlags, file: ConfigurationFile) throws(CommandExit) {
        let read = FlagReader(flags: flags)
        staleAfter = try read.duration("cache-stale-after", file: file.cluster.staleAfter, default: Self.defaultStaleAfter)
        watchIdleTimeout = try read.duration("watch-idle-timeout", file: file.cluster.watchIdleTimeout,
                                             default: Self.defaultWatchIdleTimeout)
        listPageTimeout = try read.duration("list-page-timeout", file: file.cluster.listPageTimeout,
                                            default: Self.defaultListPageTimeout)
        switch flags.string("not-ready-when-stale") {
        case nil: notReadyWhenStale = file.cluster.notReadyWhenStale ?? false
        case "true": notReadyWhenStale = true
        case "false": notReadyWhenStale = false
        case let other?: throw .usage("--not-ready-when-stale must be true or false, got \(other)")
        }
        switch flags.string("cluster-lookups") {
        case nil: lookups = file.cluster.lookups
        case "true": lookups = true
        case "false": lookups = false
        case let other?: throw .usage("--cluster-lookups must be true or false, got \(other)")
        }
        auditInterval = try read.duration("audit-interval", file: file.audit.interval, default: AuditSettings.defaultInterval)
        switch flags.string("audit-reports") {
        case nil: auditReports = file.audit.reports ?? true
        case "true": auditReports = true
        case "false": auditReports = false
        case let other?: throw .usage("--audit-reports must be true or false, got \(other)")
        }
        leaseName = file.audit.leaseName ?? LeaderElectionSettings.defaultLeaseName
        leaseNamespace = file.audit.leaseNamespace
        leaseDuration = file.audit.leaseDuration ?? LeaderElectionSettings.defaultLeaseDuration
        renewDeadline = file.audit.renewDeadline ?? LeaderElectionSettings.defaultRenewDeadline
        retryPeriod = file.audit.retryPeriod ?? LeaderElectionSettings.defaultRetryPeriod
        // client-go's own checks: a leader gives up before its Lease can be taken, and
        // tries more than once before it gives up.
        guard auditInterval > .zero, retryPeriod > .zero, leaseDuration > renewDeadline,
              renewDeadline > retryPeriod * 1.2 else {
            throw .usage("the audit's timing must satisfy interval > 0 and leaseDuration > renewDeadline > 1.2 x retryPeriod > 0")
        }
        kubeconfigPath = flags.string("kubeconfig")
        if let text = flags.string("watch-namespaces") {
            let names = text.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw .usage("--watch-namespaces needs at least one namespace") }
            watchNamespaces = names
        } else {
            watchNamespaces = file.cluster.watchNamespaces
        }
    }
}

/// Typed reading of size and duration flags.
private struct FlagReader {
    let flags: ParsedFlags

    /// A size flag (bytes, or with Ki/Mi/Gi), nil when not given.
    func size(_ name: String) throws(CommandExit) -> Int? {
        guard let text = flags.string(name) else { return nil }
        guard let value = ByteSize.parse(text), value > 0 else {
            throw .usage("--\(name) must be a byte count such as 65536, 64Ki or 7Mi, got \(text)")
        }
        return value
    }

    /// A Go duration flag in milliseconds, nil when not given.
    func duration(_ name: String, allowZero: Bool = false) throws(CommandExit) -> Int? {
        guard let text = flags.string(name) else { return nil }
        guard let value = GoDuration.milliseconds(text), value > 0 || (allowZero && value == 0) else {
            throw .usage("--\(name) must be a positive Go duration such as 500ms, 10s or 1m30s, got \(text)")
        }
        return value
    }

    /// A Go duration flag, else the configuration file's value, else `fallback`.
    func duration(_ name: String, file: Duration?, allowZero: Bool = false,
                  default fallback: Duration) throws(CommandExit) -> Duration {
        if let milliseconds = try duration(name, allowZero: allowZero) { return .milliseconds(milliseconds) }
        return file ?? fallback
    }
}
