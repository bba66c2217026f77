import Admission
import CLinux
import Configuration
import Glibc
import HTTPServer
import Logging
import StreamRules
import TLS
import Units
import WebhookServer

/// `serve`: the TLS admission server. A flag given on the command line wins over the
/// configuration file, which wins over the built-in default.
struct Serve: Subcommand {
    static let name = "serve"
    static let abstract = "Serve /mutate, /validate, /healthz, /readyz and /metrics over TLS."
    static let usage = "serve [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--client-ca FILE] [--config FILE] [--dev] ..."
    static let flags: [Flag] = [
        .option("listen", "HOST:PORT", "Address to listen on (default 0.0.0.0:9443; 127.0.0.1:8443 with --dev)."),
        .option("tls-cert", "FILE", "PEM certificate chain file."),
        .option("tls-key", "FILE", "PEM private key file."),
        .option("tls-min-version", "VERSION", "Lowest TLS version accepted: 1.2 or 1.3 (default 1.2)."),
        .option("client-ca", "FILE", "PEM CA bundle: require client certificates it verifies (mTLS)."),
        .list("client-name", "NAME", "With --client-ca: accept only this CN or DNS SAN; repeatable."),
        .option("cert-poll-interval", "DURATION", "How often certificate files are checked besides inotify (default 10s)."),
        .option("shutdown-delay", "DURATION", "After SIGTERM, serve on with /readyz 503 for this long (default 5s; 0s with --dev)."),
        .option("drain-timeout", "DURATION", "Then, how long requests in flight may take (default 30s); a hard deadline."),
        .option("loop-stall-timeout", "DURATION", "An event loop busy this long without returning to epoll is stalled: /healthz turns 503 (default 10s)."),
        .switch("dev", "Development mode: generate (or reuse) a CA and a localhost certificate under certs/dev/."),
        .option("dev-cert-dir", "DIR", "Where --dev keeps its certificates (default certs/dev)."),
        .option("loops", "N", "Event loop threads (default: one per CPU the process may use: affinity and cgroup quota)."),
        .option("max-connections", "N", "Open connections above which new ones are closed at once (default 10000)."),
        .option("max-request-body", "SIZE", "Largest request body, bytes or with Ki/Mi/Gi (default 7Mi)."),
        .option("max-buffered-bodies", "SIZE", "Request bodies held in memory at once; past it reading waits (default 64Mi)."),
        .option("max-header-bytes", "SIZE", "Largest request header section (default 64Ki)."),
        .option("max-header-fields", "N", "Most header fields in a request (default 100)."),
        .option("handshake-timeout", "DURATION", "TLS handshake deadline, Go duration (default 10s)."),
        .option("header-timeout", "DURATION", "Deadline for a request's header section (default 10s)."),
        .option("body-timeout", "DURATION", "Deadline for a request's body after its headers (default 30s)."),
        .option("idle-timeout", "DURATION", "Keep-alive idle deadline (default 120s)."),
        .option("log-level", "LEVEL", "trace, debug, info, notice, warning, error or critical (default info)."),
        configFlag,
    ]

    let flags: ParsedFlags

    init(_ flags: ParsedFlags) throws(CommandExit) {
        if let extra = flags.arguments.first { throw .usage("unexpected argument \(extra)") }
        self.flags = flags
    }

    func run() throws(CommandExit) {
        // Before any thread starts, so every thread inherits the mask (SPEC section 9).
        WebhookServer.blockTerminationSignals()
        // Large request bodies come and go: they get mappings of their own, returned to
        // the system when freed, instead of growing the heap for good.
        clinux_tune_malloc(256 * 1024, 2)
        let file = try loadConfiguration(flags)
        let logLevel = flags.string("log-level") ?? "info"
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw .usage("--log-level must be one of trace, debug, info, notice, warning, error, critical, got \(logLevel)")
        }
        let dev = flags.isOn("dev")
        let listenText = flags.string("listen") ?? (dev ? "127.0.0.1:8443" : "0.0.0.0:9443")
        guard let address = ListenAddress(listenText) else {
            throw .usage("--listen must be HOST:PORT, got \(listenText)")
        }
        let versionText = flags.string("tls-min-version") ?? "1.2"
        guard let minimumVersion = TLSMinimumVersion(rawValue: versionText) else {
            throw .usage("--tls-min-version must be 1.2 or 1.3, got \(versionText)")
        }
        let defaults = HTTPLimits()
        let limits = HTTPLimits(
            maxHeaderBytes: try size("max-header-bytes") ?? file.limits.maxHeaderBytes ?? defaults.maxHeaderBytes,
            maxHeaderFields: try flags.count("max-header-fields") ?? file.limits.maxHeaderFields ?? defaults.maxHeaderFields,
            maxBodyBytes: try size("max-request-body") ?? file.limits.maxRequestBody ?? defaults.maxBodyBytes)
        let t = HTTPTimeouts()
        let timeouts = HTTPTimeouts(
            handshake: try duration("handshake-timeout") ?? file.timeouts.tlsHandshake ?? t.handshake,
            requestHeaders: try duration("header-timeout") ?? file.timeouts.requestHeaders ?? t.requestHeaders,
            requestBody: try duration("body-timeout") ?? file.timeouts.requestBody ?? t.requestBody,
            idle: try duration("idle-timeout") ?? file.timeouts.idle ?? t.idle)
        let clientCA = flags.string("client-ca")
        let clientNames = flags.strings("client-name")
        if !clientNames.isEmpty && clientCA == nil {
            throw .usage("--client-name needs --client-ca")
        }
        // An empty name would pin nothing; a pattern is not a name.
        if let bad = clientNames.first(where: { $0.isEmpty || $0.contains("*") }) {
            throw .usage("--client-name must be a client's exact name (no wildcards), got \"\(bad)\"")
        }
        let http = HTTPServerConfiguration(address: address, loopCount: try flags.count("loops"), limits: limits, timeouts: timeouts,
                                           maxConnections: try flags.count("max-connections") ?? file.limits.maxConnections ?? 10_000,
                                           maxBufferedBodyBytes: try size("max-buffered-bodies") ?? file.limits.maxBufferedBodies
                                               ?? HTTPServerConfiguration.defaultMaxBufferedBodyBytes)
        // With --dev nothing routes by readiness: Ctrl-C stops at once.
        let shutdownDelay = try duration("shutdown-delay", allowZero: true) ?? file.timeouts.shutdownDelay ?? (dev ? 0 : 5_000)
        let drainTimeout = try duration("drain-timeout") ?? file.timeouts.drainTimeout ?? 30_000
        let certificatePoll = try duration("cert-poll-interval") ?? 10_000
        let loopStall = try duration("loop-stall-timeout") ?? file.timeouts.loopStall
            ?? WebhookConfiguration.defaultLoopStallTimeoutMilliseconds

        var certificate = flags.string("tls-cert")
        var key = flags.string("tls-key")
        if !dev && (certificate == nil || key == nil) {
            throw .usage("--tls-cert and --tls-key are required (or use --dev)")
        }

        let writer = LogWriter()
        defer { writer.close() }
        let logger = Logger(label: "atlas-stream-webhook") { _ in JSONLogHandler(writer: writer, level: level) }
        var caPath: String?
        if dev && certificate == nil && key == nil {
            let directory = flags.string("dev-cert-dir") ?? "certs/dev"
            do {
                let (paths, created) = try DevelopmentCertificates.ensure(in: directory)
                logger.info(created ? "wrote development certificates" : "reusing development certificates",
                            metadata: ["dir": .string(directory)])
                certificate = paths.certificate
                key = paths.privateKey
                caPath = paths.caCertificate
            } catch {
                logger.critical("cannot create development certificates", metadata: ["dir": .string(directory), "error": .string(error.description)])
                throw .status(1)
            }
        }
        guard let certificate, let key else {
            throw .usage("--tls-cert and --tls-key are given together (or neither, with --dev)")
        }

        let configuration = WebhookConfiguration(
            http: http,
            tls: TLSConfiguration(certificateChainPath: certificate, privateKeyPath: key, minimumVersion: minimumVersion,
                                  clientCAPath: clientCA, clientNames: clientNames),
            shutdownDelayMilliseconds: shutdownDelay,
            drainTimeoutMilliseconds: drainTimeout,
            certificatePollMilliseconds: certificatePoll,
            loopStallTimeoutMilliseconds: loopStall)
        let reviewer = AdmissionReviewer(rules: StreamRules(configuration: file.rules),
                                         maxNestingDepth: file.limits.maxNestingDepth ?? 512)
        let server: WebhookServer
        let port: UInt16
        do {
            server = try WebhookServer(configuration: configuration, reviewer: reviewer, logger: logger)
            port = try server.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": .string(String(describing: error))])
            throw .status(1)
        }
        if let caPath {
            let host = address.host == "0.0.0.0" || address.host == "127.0.0.1" ? "localhost" : address.host
            StandardStream.output.write("""
            Development server on https://\(host):\(port). Try:
              curl --cacert \(caPath) -H 'Content-Type: application/json' \
            --data-binary @Tests/Fixtures/review-kafka.json https://\(host):\(port)/validate

            """)
        }
        // The drain deadline passed with requests in flight or a loop stuck: exit non-zero
        // (the stuck loop's thread ends with the process).
        guard server.waitForTerminationSignal() else { throw .status(1) }
    }

    /// A size flag (bytes, or with Ki/Mi/Gi), nil when not given.
    private func size(_ name: String) throws(CommandExit) -> Int? {
        guard let text = flags.string(name) else { return nil }
        guard let value = ByteSize.parse(text), value > 0 else {
            throw .usage("--\(name) must be a byte count such as 65536, 64Ki or 7Mi, got \(text)")
        }
        return value
    }

    /// A Go duration flag in milliseconds, nil when not given.
    private func duration(_ name: String, allowZero: Bool = false) throws(CommandExit) -> Int? {
        guard let text = flags.string(name) else { return nil }
        guard let value = GoDuration.milliseconds(text), value > 0 || (allowZero && value == 0) else {
            throw .usage("--\(name) must be a positive Go duration such as 500ms, 10s or 1m30s, got \(text)")
        }
        return value
    }
}
