import Admission
import Audit
import CLinux
import Glibc
import ClusterCache
import HTTPServer
import KubernetesClient
import Logging
import StreamRules
import SystemSupport
import TLS
import WebhookServer

/// `serve`: the TLS admission server. A flag given on the command line wins over the
/// configuration file, which wins over the built-in default.
struct Serve: Subcommand {
    static let name = "serve"
    static let abstract = "Serve /mutate, /validate, /healthz, /readyz and /metrics over TLS; /healthz and /readyz also over plain HTTP on --health-listen, /metrics also on --metrics-listen."
    static let usage = "serve [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--client-ca FILE] [--config FILE] [--dev] ..."
    static let flags: [Flag] = [
        .option("listen", "HOST:PORT", "Address to listen on (default 0.0.0.0:9443; 127.0.0.1:8443 with --dev)."),
        .option("health-listen", "HOST:PORT", "Also serve /healthz and /readyz here, over plain HTTP, for probes without a client certificate; off: not at all (default 0.0.0.0:8081; 127.0.0.1:8081 with --dev)."),
        .option("metrics-listen", "HOST:PORT", "Also serve /metrics here, over TLS with the serving certificate and no client certificate asked; off: not at all (default 0.0.0.0:8080; 127.0.0.1:8080 with --dev)."),
        .switch("metrics-insecure", "Serve --metrics-listen over plain HTTP instead of TLS."),
        .option("tls-cert", "FILE", "PEM certificate chain file."),
        .option("tls-key", "FILE", "PEM private key file."),
        .option("tls-min-version", "VERSION", "Lowest TLS version accepted: 1.2 or 1.3 (default 1.2)."),
        .option("client-ca", "FILE", "PEM CA bundle: require client certificates it verifies (mTLS)."),
        .list("client-name", "NAME", "With --client-ca: accept only this CN or DNS SAN; repeatable."),
        .option("cert-poll-interval", "DURATION", "How often certificate files are checked besides inotify (default 10s)."),
        .option("shutdown-delay", "DURATION", "After SIGTERM, serve on with /readyz 503 for this long (default 5s; 0s with --dev)."),
        .option("drain-timeout", "DURATION", "Then, how long requests in flight may take (default 30s); a hard deadline."),
        .option("loop-stall-timeout", "DURATION", "An event loop that does not come back to epoll_wait within this long (busy, or frozen anywhere) is stalled: /healthz turns 503 (default 10s)."),
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
        .option("kubeconfig", "FILE", "Reach the cluster with this kubeconfig's current context (default: in-cluster when in a pod)."),
        .option("cluster-lookups", "BOOL", "Check references against a watch cache of the cluster: true or false (default true when a cluster configuration is found)."),
        .option("watch-namespaces", "NS,...", "Namespaces the cache follows, the operator's watched ones (default all)."),
        .option("enforcement", "MODE", "What denials cost by default: deny, or warn (admitted with warnings prefixed \"would be denied: \"; per rule in the configuration file) (default deny)."),
        .option("cache-not-ready", "POLICY", "Reviews that need the cluster while the cache is not synced or stale: allow (with a warning) or deny (503) (default allow)."),
        .option("cache-stale-after", "DURATION", "A cache part with no event, bookmark or list for this long is stale (default 3m)."),
        .option("not-ready-when-stale", "BOOL", "/readyz answers 503 while the cache is stale: true or false (default false)."),
        .option("watch-idle-timeout", "DURATION", "A watch that sends no byte for this long is reconnected (default 2m: twice the bookmark interval)."),
        .option("list-page-timeout", "DURATION", "A LIST page must arrive whole within this (default 1m)."),
        .option("audit-reports", "BOOL", "Write the audit's results as one PolicyReport per namespace (the leader among the replicas only): true or false (default true)."),
        .option("audit-interval", "DURATION", "Judge every object again this often, besides on every change (default 10m)."),
        .option("log-level", "LEVEL", "trace, debug, info, notice, warning, error or critical (default info)."),
        configFlag,
    ]

    let flags: ParsedFlags

    init(_ flags: ParsedFlags) throws(CommandExit) {
        if let extra = flags.arguments.first { throw .usage("unexpected argument \(extra)") }
        self.flags = flags
    }

    func run() throws(CommandExit) {
        // Before any thread starts, so every thread inherits the mask.
        WebhookServer.blockTerminationSignals()
        // Large request bodies come and go: they get mappings of their own, returned to
        // the system when freed, instead of growing the heap for good.
        clinux_tune_malloc(256 * 1024, 2)
        let settings = try ServeSettings(flags: flags, file: try loadConfiguration(flags))

        let writer: LogWriter
        do {
            writer = try LogWriter()
        } catch {
            StandardStream.error.write("error: cannot start the log writer: \(error)\n")
            throw .status(1)
        }
        defer { writer.close() }
        let logger = Logger(label: "atlas-stream-webhook") { _ in JSONLogHandler(writer: writer, level: settings.logLevel) }
        var configuration = settings.webhook
        var caPath: String?
        if let directory = settings.developmentCertificateDirectory {
            do {
                let (paths, created) = try DevelopmentCertificates.ensure(in: directory)
                logger.info(created ? "wrote development certificates" : "reusing development certificates",
                            metadata: ["dir": .string(directory)])
                configuration.tls.certificateChainPath = paths.certificate
                configuration.tls.privateKeyPath = paths.privateKey
                caPath = paths.caCertificate
            } catch {
                logger.critical("cannot create development certificates", metadata: ["dir": .string(directory), "error": .string(error.description)])
                throw .status(1)
            }
        }
        let cluster = try startClusterCache(settings.cluster, rules: settings.reviewer.rules, logger: logger)
        // Stopped after the server: the Lease is released on the way out.
        defer { cluster?.auditor.stop() }
        var reviewer = settings.reviewer
        var hooks: ClusterCacheHooks?
        if let (cache, auditor) = cluster {
            reviewer = AdmissionReviewer(rules: reviewer.rules, maxNestingDepth: reviewer.maxNestingDepth,
                                         cluster: { cache.view() })
            let notReadyWhenStale = settings.cluster.notReadyWhenStale
            hooks = ClusterCacheHooks(notReadyReason: {
                notReadyWhenStale ? cache.notReadyReason() : (cache.isSynced ? nil : "the cluster cache has not listed every resource yet")
            }, registerMetrics: {
                cache.registerMetrics(in: $0)
                auditor.registerMetrics(in: $0)
            })
        }
        let server: WebhookServer
        let port: UInt16
        do {
            server = try WebhookServer(configuration: configuration, reviewer: reviewer, logger: logger, cluster: hooks)
            port = try server.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": .string(String(describing: error))])
            throw .status(1)
        }
        if let caPath {
            func hostName(_ address: ListenAddress) -> String {
                address.host == "0.0.0.0" || address.host == "127.0.0.1" ? "localhost" : address.host
            }
            let host = hostName(configuration.http.address)
            var listeners = ""
            if let address = configuration.healthAddress, let healthPort = server.healthPort {
                listeners += "Probes: http://\(hostName(address)):\(healthPort)/healthz and /readyz\n"
            }
            if let address = configuration.metricsAddress, let metricsPort = server.metricsPort {
                listeners += "Metrics: \(configuration.metricsInsecure ? "http" : "https")://\(hostName(address)):\(metricsPort)/metrics\n"
            }
            StandardStream.output.write("""
            Development server on https://\(host):\(port). Try:
              curl --cacert \(caPath) -H 'Content-Type: application/json' \
            --data-binary @Tests/Fixtures/review-kafka.json https://\(host):\(port)/validate
            \(listeners)
            """)
        }
        // The drain deadline passed with requests in flight or a loop stuck: exit non-zero
        // (the stuck loop's thread ends with the process).
        guard server.waitForTerminationSignal() else { throw .status(1) }
    }
}

extension Serve {
    /// The cluster cache and its audit, started, when lookups are on; a cluster
    /// configuration that cannot be used is a startup error.
    func startClusterCache(_ settings: ClusterSettings, rules: StreamRules,
                           logger: Logger) throws(CommandExit) -> (cache: ClusterCache, auditor: Auditor)? {
        guard settings.lookups != false else { return nil }
        let access: ClusterAccess?
        do {
            if let path = settings.kubeconfigPath {
                access = try ClusterAccess.kubeconfig(path: path)
            } else {
                access = try ClusterAccess.inCluster(environment: Self.clusterEnvironment())
            }
        } catch {
            logger.critical("cannot use the cluster configuration", metadata: ["error": .string(error.description)])
            throw .status(1)
        }
        guard let access else {
            if settings.lookups == true {
                logger.critical("cluster lookups are on but no cluster configuration was found: give --kubeconfig, or run in a pod")
                throw .status(1)
            }
            logger.info("cluster lookups off: no cluster configuration (in-cluster or --kubeconfig)")
            return nil
        }
        let client: KubernetesAPIClient
        do {
            client = try KubernetesAPIClient(access: access) { reload in
                switch reload {
                case .reloaded: logger.info("cluster TLS files reloaded", metadata: ["change": .string(reload.description)])
                case .kept: logger.warning("cluster TLS files changed but not used", metadata: ["change": .string(reload.description)])
                }
            }
        } catch {
            logger.critical("cannot use the cluster configuration", metadata: ["error": .string(error.description)])
            throw .status(1)
        }
        let limits = StreamLimits(pageDeadlineSeconds: max(1, settings.listPageTimeout.wholeMilliseconds / 1000),
                                  watchIdleSeconds: max(1, settings.watchIdleTimeout.wholeMilliseconds / 1000))
        let changes = CacheChangeFeed()
        let cache = ClusterCache(client: client, namespaces: settings.watchNamespaces, logger: logger,
                                 timing: ReflectorTiming(limits: limits), staleAfter: settings.staleAfter, changes: changes)
        let auditor = Auditor(cache: cache, changes: changes, rules: rules,
                              settings: AuditSettings(interval: settings.auditInterval,
                                                      reports: settings.auditReports ? Self.election(settings) : nil),
                              client: client, logger: logger)
        logger.info("cluster lookups on", metadata: [
            "cluster": .string(access.origin), "server": .string("\(access.host):\(access.port)"),
            "namespaces": .string(settings.watchNamespaces?.joined(separator: ",") ?? "all"),
        ])
        do {
            try cache.start()
        } catch {
            logger.critical("cannot start the cluster cache", metadata: ["error": .string(error.description)])
            throw .status(1)
        }
        do {
            try auditor.start()
        } catch {
            cache.stop()
            logger.critical("cannot start the audit", metadata: ["error": .string(error.description)])
            throw .status(1)
        }
        return (cache, auditor)
    }

    /// The Lease of the report writer's election: in the configured namespace, else the
    /// pod's (`POD_NAMESPACE`, else the service account's); held under the pod's name
    /// (`POD_NAME`, else the host name, which is the pod's name in a pod).
    static func election(_ settings: ClusterSettings) -> LeaderElectionSettings {
        let environment = ProcessEnvironment.self
        let namespace = settings.leaseNamespace ?? environment.value("POD_NAMESPACE")
            ?? (try? FileContents.read(path: ClusterAccess.serviceAccountDirectory + "/namespace"))
                .map { String(decoding: $0, as: UTF8.self).filter { !$0.isWhitespace } }
                .flatMap { $0.isEmpty ? nil : $0 }
            ?? "default"
        return LeaderElectionSettings(leaseName: settings.leaseName, namespace: namespace,
                                      identity: environment.value("POD_NAME") ?? environment.hostName,
                                      leaseDuration: settings.leaseDuration, renewDeadline: settings.renewDeadline,
                                      retryPeriod: settings.retryPeriod)
    }
}

extension Serve {
    /// The variables the in-cluster configuration reads.
    static func clusterEnvironment() -> [String: String] {
        var out: [String: String] = [:]
        for name in ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] {
            if let value = ProcessEnvironment.value(name) { out[name] = value }
        }
        return out
    }
}

/// The process's environment and host, as `serve` reads them.
enum ProcessEnvironment {
    /// A variable's value; nil when unset or empty.
    static func value(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "atlas-stream-webhook" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
