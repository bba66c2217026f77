import Admission
import ArgumentParser
import Glibc
import HTTPServer
import Logging
import TLS
import WebhookServer

@main
struct AtlasStreamWebhook: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atlas-stream-webhook",
        abstract: "Admission webhook for the Atlas Kubernetes Operator's AtlasStreamInstance and AtlasStreamConnection.",
        subcommands: [Serve.self, Review.self]
    )
}

/// `serve`: the TLS admission server.
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

    @Flag(help: "Development mode: generate (or reuse) a CA and a localhost certificate under certs/dev/.")
    var dev = false

    @Option(name: .customLong("dev-cert-dir"), help: "Where --dev keeps its certificates.")
    var devCertDirectory: String = "certs/dev"

    @Option(help: "Event loop threads (default: one per core).")
    var loops: Int?

    @Option(name: .customLong("max-connections"), help: "Open connections above which new ones are closed at once.")
    var maxConnections: Int = 10_000

    @Option(name: .customLong("max-request-body"), help: "Largest request body, bytes or with Ki/Mi/Gi.")
    var maxRequestBody: String = "7Mi"

    @Option(name: .customLong("max-header-bytes"), help: "Largest request header section, bytes or with Ki/Mi.")
    var maxHeaderBytes: String = "64Ki"

    @Option(name: .customLong("max-header-fields"), help: "Most header fields in a request.")
    var maxHeaderFields: Int = 100

    @Option(name: .customLong("handshake-timeout"), help: "TLS handshake deadline (Go duration).")
    var handshakeTimeout: String = "10s"

    @Option(name: .customLong("header-timeout"), help: "Deadline for a request's header section (Go duration).")
    var headerTimeout: String = "10s"

    @Option(name: .customLong("body-timeout"), help: "Deadline for a request's body after its headers (Go duration).")
    var bodyTimeout: String = "30s"

    @Option(name: .customLong("idle-timeout"), help: "Keep-alive idle deadline (Go duration).")
    var idleTimeout: String = "120s"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() throws {
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
        let limits = HTTPLimits(maxHeaderBytes: try size(maxHeaderBytes, "--max-header-bytes"),
                                maxHeaderFields: maxHeaderFields,
                                maxBodyBytes: try size(maxRequestBody, "--max-request-body"))
        let timeouts = HTTPTimeouts(handshake: try duration(handshakeTimeout, "--handshake-timeout"),
                                    requestHeaders: try duration(headerTimeout, "--header-timeout"),
                                    requestBody: try duration(bodyTimeout, "--body-timeout"),
                                    idle: try duration(idleTimeout, "--idle-timeout"))

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

        let configuration = WebhookConfiguration(
            http: HTTPServerConfiguration(address: address, loopCount: loops, limits: limits, timeouts: timeouts,
                                          maxConnections: maxConnections),
            tls: TLSConfiguration(certificateChainPath: certificate, privateKeyPath: key, minimumVersion: minimumVersion))
        let server: WebhookServer
        do {
            server = try WebhookServer(configuration: configuration, reviewer: AdmissionReviewer(), logger: logger)
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
            print("""
            Development server on https://\(host):\(port). Try:
              curl --cacert \(caPath) -H 'Content-Type: application/json' \
            --data-binary @Tests/Fixtures/review-kafka.json https://\(host):\(port)/validate
            """)
        }
        fflush(nil)
        server.waitForTerminationSignal()
    }

    private func size(_ text: String, _ flag: String) throws -> Int {
        guard let value = ByteSize.parse(text) else {
            throw ValidationError("\(flag) must be a byte count such as 65536, 64Ki or 7Mi, got \(text)")
        }
        return value
    }

    private func duration(_ text: String, _ flag: String) throws -> Int {
        guard let value = GoDuration.milliseconds(text), value > 0 else {
            throw ValidationError("\(flag) must be a positive Go duration such as 500ms, 10s or 1m30s, got \(text)")
        }
        return value
    }
}

/// `review`: one AdmissionReview from stdin through the same code path as the server.
struct Review: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer one AdmissionReview read from stdin, as the server would.",
        discussion: "Exit status: 0 when a response was printed, 2 when stdin is not a usable AdmissionReview.")

    @Flag(name: .customLong("mutate"), help: "Answer as /mutate.")
    var asMutate = false

    @Flag(name: .customLong("validate"), help: "Answer as /validate.")
    var asValidate = false

    func validate() throws {
        guard asMutate != asValidate else { throw ValidationError("give exactly one of --mutate and --validate") }
    }

    func run() throws {
        var input: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            input.append(contentsOf: chunk[0..<n])
        }
        switch AdmissionReviewer().review(input, at: asMutate ? .mutate : .validate) {
        case .answered(let body, _):
            print(String(decoding: body, as: UTF8.self))
        case .badRequest(let error):
            FileDescriptorOutput.standardError.write("error: \(error)\n")
            throw ExitCode(2)
        }
    }
}

/// Byte sizes: a plain count, or with a binary suffix (`64Ki`, `7Mi`, `1Gi`).
enum ByteSize {
    static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let n = Int(text.dropLast(2)), n >= 0 else { return nil }
            let (value, overflow) = n.multipliedReportingOverflow(by: factor)
            return overflow ? nil : value
        }
        guard let n = Int(text), n >= 0 else { return nil }
        return n
    }
}

/// Unbuffered writes to a standard stream.
struct FileDescriptorOutput {
    let fd: Int32
    static let standardError = FileDescriptorOutput(fd: 2)

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + offset, raw.count - offset)
            }
            guard n > 0 else { return }
            offset += n
        }
    }
}
