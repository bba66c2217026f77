import Admission
import ArgumentParser
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
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve /mutate, /validate, /healthz, /readyz and /metrics over TLS.")

    @Option(help: "Address to listen on, HOST:PORT (default 0.0.0.0:9443; 127.0.0.1:8443 with --dev).")
    var listen: String?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain file.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key file.")
    var tlsKey: String?

    @Option(name: .customLong("tls-min-version"), help: "Lowest TLS version accepted: 1.2 or 1.3.")
    var tlsMinVersion: String = "1.2"

    @Option(name: .customLong("client-ca"), help: "PEM CA bundle: require client certificates it verifies (mTLS).")
    var clientCA: String?

    @Option(name: .customLong("client-name"), help: "With --client-ca: accept only this CN or DNS SAN (repeatable).")
    var clientNames: [String] = []

    @Option(name: .customLong("cert-poll-interval"), help: "How often certificate files are checked besides inotify (default 10s).")
    var certPollInterval: String = "10s"

    @Option(name: .customLong("shutdown-delay"), help: "After SIGTERM, serve on with /readyz 503 for this long (default 5s).")
    var shutdownDelay: String?

    @Option(name: .customLong("drain-timeout"), help: "Then, how long requests in flight may take (default 30s).")
    var drainTimeout: String?

    @Flag(help: "Development mode: generate (or reuse) a CA and a localhost certificate under certs/dev/.")
    var dev = false

    @Option(name: .customLong("dev-cert-dir"), help: "Where --dev keeps its certificates.")
    var devCertDirectory: String = "certs/dev"

    @Option(help: "Event loop threads (default: one per core).")
    var loops: Int?

    @Option(name: .customLong("max-connections"), help: "Open connections above which new ones are closed at once (default 10000).")
    var maxConnections: Int?

    @Option(name: .customLong("max-request-body"), help: "Largest request body, bytes or with Ki/Mi/Gi (default 7Mi).")
    var maxRequestBody: String?

    @Option(name: .customLong("max-header-bytes"), help: "Largest request header section (default 64Ki).")
    var maxHeaderBytes: String?

    @Option(name: .customLong("max-header-fields"), help: "Most header fields in a request (default 100).")
    var maxHeaderFields: Int?

    @Option(name: .customLong("handshake-timeout"), help: "TLS handshake deadline, Go duration (default 10s).")
    var handshakeTimeout: String?

    @Option(name: .customLong("header-timeout"), help: "Deadline for a request's header section (default 10s).")
    var headerTimeout: String?

    @Option(name: .customLong("body-timeout"), help: "Deadline for a request's body after its headers (default 30s).")
    var bodyTimeout: String?

    @Option(name: .customLong("idle-timeout"), help: "Keep-alive idle deadline (default 120s).")
    var idleTimeout: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @OptionGroup var config: ConfigOption

    func run() throws {
        // Large request bodies come and go: they get mappings of their own, returned to
        // the system when freed, instead of growing the heap for good.
        clinux_tune_malloc(256 * 1024, 2)
        let file = try config.load()
        let writer = LogWriter()
        defer { writer.close() }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        let logger = Logger(label: "atlas-stream-webhook") { _ in JSONLogHandler(writer: writer, level: level) }

        let listenText = listen ?? (dev ? "127.0.0.1:8443" : "0.0.0.0:9443")
        guard let address = ListenAddress(listenText) else {
            throw ValidationError("--listen must be HOST:PORT, got \(listenText)")
        }
        guard let minimumVersion = TLSMinimumVersion(rawValue: tlsMinVersion) else {
            throw ValidationError("--tls-min-version must be 1.2 or 1.3")
        }
        let defaults = HTTPLimits()
        let limits = HTTPLimits(
            maxHeaderBytes: try maxHeaderBytes.map { try size($0, "--max-header-bytes") } ?? file.limits.maxHeaderBytes ?? defaults.maxHeaderBytes,
            maxHeaderFields: maxHeaderFields ?? file.limits.maxHeaderFields ?? defaults.maxHeaderFields,
            maxBodyBytes: try maxRequestBody.map { try size($0, "--max-request-body") } ?? file.limits.maxRequestBody ?? defaults.maxBodyBytes)
        let t = HTTPTimeouts()
        let timeouts = HTTPTimeouts(
            handshake: try handshakeTimeout.map { try duration($0, "--handshake-timeout") } ?? file.timeouts.tlsHandshake ?? t.handshake,
            requestHeaders: try headerTimeout.map { try duration($0, "--header-timeout") } ?? file.timeouts.requestHeaders ?? t.requestHeaders,
            requestBody: try bodyTimeout.map { try duration($0, "--body-timeout") } ?? file.timeouts.requestBody ?? t.requestBody,
            idle: try idleTimeout.map { try duration($0, "--idle-timeout") } ?? file.timeouts.idle ?? t.idle)

        var certificate = tlsCert
        var key = tlsKey
        var caPath: String?
        if dev && certificate == nil && key == nil {
            let (paths, created) = try DevelopmentCertificates.ensure(in: devCertDirectory)
            logger.info(created ? "wrote development certificates" : "reusing development certificates",
                        metadata: ["dir": .string(devCertDirectory)])
            certificate = paths.certificate
            key = paths.privateKey
            caPath = paths.caCertificate
        }
        guard let certificate, let key else {
            throw ValidationError("--tls-cert and --tls-key are required (or use --dev)")
        }
        if !clientNames.isEmpty && clientCA == nil {
            throw ValidationError("--client-name needs --client-ca")
        }

        let configuration = WebhookConfiguration(
            http: HTTPServerConfiguration(address: address, loopCount: loops, limits: limits, timeouts: timeouts,
                                          maxConnections: maxConnections ?? file.limits.maxConnections ?? 10_000),
            tls: TLSConfiguration(certificateChainPath: certificate, privateKeyPath: key, minimumVersion: minimumVersion,
                                  clientCAPath: clientCA, clientNames: clientNames),
            shutdownDelayMilliseconds: try shutdownDelay.map { try duration($0, "--shutdown-delay", allowZero: true) }
                ?? file.timeouts.shutdownDelay ?? 5_000,
            drainTimeoutMilliseconds: try drainTimeout.map { try duration($0, "--drain-timeout") } ?? file.timeouts.drainTimeout ?? 30_000,
            certificatePollMilliseconds: try duration(certPollInterval, "--cert-poll-interval"))
        let reviewer = AdmissionReviewer(rules: StreamRules(configuration: file.rules),
                                         maxNestingDepth: file.limits.maxNestingDepth ?? 512)
        let server: WebhookServer
        do {
            server = try WebhookServer(configuration: configuration, reviewer: reviewer, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": .string(error.description)])
            throw ExitCode.failure
        }
        WebhookServer.blockTerminationSignals()
        let port: UInt16
        do {
            port = try server.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": .string(error.description)])
            throw ExitCode.failure
        }
        if let caPath {
            let host = address.host == "0.0.0.0" || address.host == "127.0.0.1" ? "localhost" : address.host
            StandardStream.output.write("""
            Development server on https://\(host):\(port). Try:
              curl --cacert \(caPath) -H 'Content-Type: application/json' \
            --data-binary @Tests/Fixtures/review-kafka.json https://\(host):\(port)/validate

            """)
        }
        server.waitForTerminationSignal()
    }

    private func size(_ text: String, _ flag: String) throws -> Int {
        guard let value = ByteSize.parse(text), value > 0 else {
            throw ValidationError("\(flag) must be a byte count such as 65536, 64Ki or 7Mi, got \(text)")
        }
        return value
    }

    private func duration(_ text: String, _ flag: String, allowZero: Bool = false) throws -> Int {
        guard let value = GoDuration.milliseconds(text), value > 0 || (allowZero && value == 0) else {
            throw ValidationError("\(flag) must be a positive Go duration such as 500ms, 10s or 1m30s, got \(text)")
        }
        return value
    }
}
