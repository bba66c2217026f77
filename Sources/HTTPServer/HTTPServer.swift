import Glibc
import Synchronization
import SystemSupport
import TLS

/// An HTTP/1.1 server over TLS (or plain TCP): one epoll event loop per thread, each
/// with its own SO_REUSEPORT listener on the same port, which no other socket may
/// listen on (`claimPort`).
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    public let statistics: HTTPServerStatistics
    private let transport: HTTPTransport
    private let router: HTTPRouter
    private let running = Mutex<Running?>(nil)
    /// Request bodies held at once, shared by the loops.
    public let bodyBudget: BodyMemoryBudget
    /// What each loop is doing (stall detection).
    public let monitor: LoopMonitor
    /// Starts a loop's thread: `WorkerThread.start`, or in tests one that fails.
    private let startThread: ThreadStarter

    typealias ThreadStarter = @Sendable (@escaping @Sendable () -> Void) throws(SystemCallError) -> WorkerThread

    private struct Running: Sendable {
        var loops: [EventLoop]
        var threads: [WorkerThread]
        var port: UInt16
        var maxConnections: Int
    }

    public convenience init(configuration: HTTPServerConfiguration, transport: HTTPTransport, router: HTTPRouter,
                            statistics: HTTPServerStatistics = HTTPServerStatistics(), monitor: LoopMonitor? = nil) {
        self.init(configuration: configuration, transport: transport, router: router, statistics: statistics, monitor: monitor,
                  startThread: WorkerThread.start)
    }

    init(configuration: HTTPServerConfiguration, transport: HTTPTransport, router: HTTPRouter,
         statistics: HTTPServerStatistics = HTTPServerStatistics(), monitor: LoopMonitor? = nil,
         startThread: @escaping ThreadStarter) {
        // A monitor with a slot for every loop (a smaller one given would not fit).
        self.monitor = monitor.flatMap { $0.slots.count >= configuration.loopCount ? $0 : nil }
            ?? LoopMonitor(loopCount: configuration.loopCount)
        self.configuration = configuration
        self.statistics = statistics
        self.transport = transport
        self.router = router
        self.bodyBudget = BodyMemoryBudget(limit: configuration.maxBufferedBodyBytes)
        self.startThread = startThread
    }

    /// Binds the listeners and starts the loops. Returns the bound port (useful with port 0).
    /// An address another socket listens on is refused (`HTTPServerError.addressInUse`).
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
        var address = configuration.address
        address.port = try claimPort(address)
        // Each loop owns its listener, and closes it once: when it stops listening, or
        // when it is released without having run.
        var loops: [EventLoop] = []
        for index in 0..<configuration.loopCount {
            let listener = try makeListener(address)
            do throws(SystemCallError) {
                loops.append(try EventLoop(listener: listener, transport: transport, router: router, configuration: configuration,
                                           statistics: statistics, bodyBudget: bodyBudget, monitor: monitor, index: index))
            } catch {
                throw .eventLoopFailed(error)
            }
        }
        var threads: [WorkerThread] = []
        for loop in loops {
            do throws(SystemCallError) {
                threads.append(try startThread { loop.run() })
            } catch {
                for started in loops.prefix(threads.count) { started.stop() }
                for thread in threads { thread.join() }
                throw .eventLoopFailed(error)
            }
        }
        running.withLock {
            $0 = Running(loops: loops, threads: threads, port: address.port, maxConnections: configuration.maxConnections)
        }
        return address.port
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

    /// What a graceful stop came to.
    public struct DrainResult: Sendable {
        /// Every connection finished within the timeout.
        public var drained: Bool
        /// Loops that never returned (stuck in a handler), with what they were doing;
        /// their threads are left behind, so the process must exit.
        public var stuck: [LoopMonitor.Stall]
        /// Connections still open at the deadline.
        public var openConnections: Int
    }

    /// Graceful stop: closes the listeners and idle connections, lets requests in flight
    /// finish (answered with `Connection: close`), then stops. Within `timeout` whatever
    /// happens: connections left then are closed, and a loop that does not come back is
    /// left behind and reported.
    @discardableResult
    public func drain(timeout: Duration) -> DrainResult {
        guard let loops = running.withLock({ $0?.loops }) else { return DrainResult(drained: true, stuck: [], openConnections: 0) }
        for loop in loops { loop.drain() }
        let deadline = monotonicMilliseconds() + timeout.wholeMilliseconds
        var drained = false
        while monotonicMilliseconds() < deadline {
            if loops.allSatisfy({ $0.finished.load(ordering: .acquiring) }) {
                drained = true
                break
            }
            usleep(10_000)
        }
        let open = statistics.openConnections
        let stuck = stop(waitMilliseconds: 200)
        return DrainResult(drained: drained, stuck: stuck, openConnections: drained ? 0 : open)
    }

    /// Closes the listeners and every connection, and waits for the loops to exit.
    public func stop() {
        _ = stop(waitMilliseconds: nil)
    }

    /// Asks every loop to stop and joins those that do within `waitMilliseconds` (all of
    /// them, however long, when nil). Returns the loops that did not come back.
    private func stop(waitMilliseconds: Int?) -> [LoopMonitor.Stall] {
        guard let state = running.withLock({ current -> Running? in
            defer { current = nil }
            return current
        }) else { return [] }
        for loop in state.loops { loop.stop() }
        let deadline = waitMilliseconds.map { monotonicMilliseconds() + $0 }
        var stuck: [LoopMonitor.Stall] = []
        for (index, (loop, thread)) in zip(state.loops, state.threads).enumerated() {
            if let deadline {
                while !loop.finished.load(ordering: .acquiring) && monotonicMilliseconds() < deadline { usleep(5_000) }
                guard loop.finished.load(ordering: .acquiring) else {
                    let report = monitor.stalls(threshold: 0).first { $0.loop == index }
                    stuck.append(report ?? LoopMonitor.Stall(loop: index, since: 0, milliseconds: 0, activity: ""))
                    continue
                }
            }
            thread.join()
        }
        return stuck
    }
}
