import Glibc
import Synchronization
import TLS

/// A TLS HTTP/1.1 server: one epoll event loop per thread, each with its own
/// SO_REUSEPORT listener on the same port.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    public let statistics: HTTPServerStatistics
    private let tls: TLSContextStore
    private let router: HTTPRouter
    private let running = Mutex<Running?>(nil)
    /// Request bodies held at once, shared by the loops.
    public let bodyBudget: BodyMemoryBudget

    private struct Running: Sendable {
        var loops: [EventLoop]
        var threads: [WorkerThread]
        var port: UInt16
        var maxConnections: Int
    }

    public init(configuration: HTTPServerConfiguration, tls: TLSContextStore, router: HTTPRouter,
                statistics: HTTPServerStatistics = HTTPServerStatistics()) {
        self.configuration = configuration
        self.statistics = statistics
        self.tls = tls
        self.router = router
        self.bodyBudget = BodyMemoryBudget(limit: configuration.maxBufferedBodyBytes)
    }

    /// Binds the listeners and starts the loops. Returns the bound port (useful with port 0).
    ///
    /// Raises the process's descriptor soft limit to its hard limit, and serves at most
    /// as many connections as fit below it (`effectiveMaxConnections`).
    @discardableResult
    public func start() throws(HTTPServerError) -> UInt16 {
        // OpenSSL writes with write(2): a peer that has gone away must not kill the process.
        signal(SIGPIPE, SIG_IGN)
        var configuration = self.configuration
        configuration.maxConnections = ProcessResources.connectionCap(
            configured: configuration.maxConnections, descriptorLimit: ProcessResources.raiseDescriptorLimit())
        var listeners: [Int32] = []
        var address = configuration.address
        do throws(HTTPServerError) {
            for _ in 0..<configuration.loopCount {
                let fd = try makeListener(address)
                if address.port == 0 { address.port = boundPort(fd) }
                listeners.append(fd)
            }
            var loops: [EventLoop] = []
            for fd in listeners {
                loops.append(try EventLoop(listener: fd, tls: tls, router: router, configuration: configuration,
                                           statistics: statistics, bodyBudget: bodyBudget))
            }
            var threads: [WorkerThread] = []
            for loop in loops {
                guard let thread = WorkerThread({ loop.run() }) else {
                    let err = errno
                    for started in loops { started.stop() }
                    for thread in threads { thread.join() }
                    throw HTTPServerError.eventLoopFailed(operation: "pthread_create", errno: err)
                }
                threads.append(thread)
            }
            running.withLock {
                $0 = Running(loops: loops, threads: threads, port: address.port,
                             maxConnections: configuration.maxConnections)
            }
            return address.port
        } catch {
            for fd in listeners { close(fd) }
            throw error
        }
    }

    /// The connection cap in force while running: `maxConnections` clamped below the
    /// descriptor limit.
    public var effectiveMaxConnections: Int? {
        running.withLock { $0?.maxConnections }
    }

    /// The bound port while running.
    public var port: UInt16? {
        running.withLock { $0?.port }
    }

    /// Answers every further request with `Connection: close` (the first step of a
    /// graceful stop, while readiness is already off).
    public func disableKeepAlive() {
        running.withLock { $0?.loops }?.forEach { $0.disableKeepAlive() }
    }

    /// Graceful stop: closes the listeners and idle connections, lets requests in flight
    /// finish (answered with `Connection: close`), then stops. Returns true when every
    /// connection finished within `timeoutMilliseconds`; the rest are closed then.
    @discardableResult
    public func drain(timeoutMilliseconds: Int) -> Bool {
        guard let loops = running.withLock({ $0?.loops }) else { return true }
        for loop in loops { loop.drain() }
        let deadline = monotonicMilliseconds() + timeoutMilliseconds
        var drained = false
        while monotonicMilliseconds() < deadline {
            if loops.allSatisfy({ $0.finished.load(ordering: .acquiring) }) {
                drained = true
                break
            }
            usleep(10_000)
        }
        stop()
        return drained
    }

    /// Closes the listeners and every connection, and waits for the loops to exit.
    public func stop() {
        guard let state = running.withLock({ current -> Running? in
            defer { current = nil }
            return current
        }) else { return }
        for loop in state.loops { loop.stop() }
        for thread in state.threads { thread.join() }
    }
}
