import CLinux
import Glibc
import Synchronization
import SystemSupport
import TLS

/// One epoll loop on its own thread: accepts from its own listener, drives TLS (or
/// plain TCP) and HTTP for its connections, enforces their deadlines. It only moves
/// bytes and timers; requests are answered by the router synchronously on this thread.
///
/// `@unchecked Sendable`: created on the starting thread, then touched only by its own
/// loop thread, except `wake()` (an eventfd write) and the atomic `stopRequested`.
final class EventLoop: @unchecked Sendable {
    private let epoll: Epoll
    /// An eventfd that wakes the loop from `epoll_wait` (`stop`, `drain`).
    private let wakeup: FileDescriptor
    /// Until the loop stops listening (drain, stop).
    private var listener: FileDescriptor?
    private let transport: HTTPTransport
    private let router: HTTPRouter
    private let configuration: HTTPServerConfiguration
    private let timeouts: ConnectionMachine.Timeouts
    private let statistics: HTTPServerStatistics
    private let bodyBudget: BodyMemoryBudget
    private let monitor: LoopMonitor
    /// This loop's index in `monitor`.
    private let index: Int
    private var connections: [Connection?] = []
    /// Connections waiting for the body memory budget, oldest first.
    private var awaitingBudget: [Connection] = []
    private var connectionCount = 0
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// A spare descriptor given up to accept-and-close when the process runs out of them.
    private var spare: FileDescriptor?
    /// Out of descriptors: the listener is out of epoll until this time (monotonic ms),
    /// so a level-triggered listener cannot spin while nothing can be accepted.
    private var listenerPausedUntil: Int?
    private let stopRequested = Atomic<Bool>(false)
    private let drainRequested = Atomic<Bool>(false)
    private let keepAliveDisabled = Atomic<Bool>(false)
    /// Set when `run()` has returned.
    let finished = Atomic<Bool>(false)
    private var nextSweep = 0
    /// Connections accepted since memory was last handed back to the system.
    private var acceptedSinceTrim = 0

    private static let readBufferSize = 64 * 1024
    private static let sweepInterval = 100
    /// The `epoll_wait` timeout: the sweep interval, never more than the monitor's
    /// `maximumWaitMilliseconds`, so an idle loop's heartbeat stays fresh.
    private static let waitTimeout = Int32(min(sweepInterval, LoopMonitor.maximumWaitMilliseconds))

    /// The loop owns `listener` from here on, also when this throws.
    init(listener: consuming FileDescriptor, transport: HTTPTransport, router: HTTPRouter, configuration: HTTPServerConfiguration,
         statistics: HTTPServerStatistics, bodyBudget: BodyMemoryBudget, monitor: LoopMonitor,
         index: Int) throws(SystemCallError) {
        let epoll = try Epoll()
        let wakeup = FileDescriptor(try systemCall("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) })
        try epoll.add(wakeup.rawValue, events: clinux_epollin())
        try epoll.add(listener.rawValue, events: clinux_epollin())
        self.epoll = epoll
        self.wakeup = wakeup
        self.listener = consume listener
        self.transport = transport
        self.router = router
        self.configuration = configuration
        self.timeouts = ConnectionMachine.Timeouts(configuration.timeouts)
        self.statistics = statistics
        self.bodyBudget = bodyBudget
        self.monitor = monitor
        self.index = index
        self.readBuffer = .allocate(byteCount: EventLoop.readBufferSize, alignment: 16)
        self.spare = EventLoop.openSpare()
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Asks the loop to close everything and return from `run()`. Any thread.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    /// Asks the loop to close its listener and idle connections, answer what is in
    /// flight with `Connection: close`, and return once no connection is left. Any thread.
    func drain() {
        drainRequested.store(true, ordering: .releasing)
        wake()
    }

    /// From now on every response carries `Connection: close`, so clients move their
    /// next request to a new connection (to another replica) before the listener closes.
    func disableKeepAlive() {
        keepAliveDisabled.store(true, ordering: .releasing)
    }

    private func wake() {
        var one: UInt64 = 1
        // A full counter (would block) means the loop has a wakeup pending already.
        _ = try? nonBlockingSystemCall("write") { write(wakeup.rawValue, &one, 8) }
    }

    private var draining: Bool { drainRequested.load(ordering: .relaxed) }

    /// Once draining: no listener, no kept-alive idle connection; done when none is left.
    private func continueDraining() -> Bool {
        if listener != nil {
            acceptConnections()  // what already waits in the backlog is served, not reset
            closeListener()
            for case let c? in connections where isIdle(c) {
                // Bytes of a request may already wait in the socket: answer them first.
                drive(c)
                if isIdle(c) { closeConnection(c) }
            }
        }
        return connectionCount > 0
    }

    /// Served at least one request and waits for the next: nothing is lost by closing.
    private func isIdle(_ c: Connection) -> Bool {
        c.machine.isIdle(hasPendingOutput: c.hasPendingOutput)
    }

    func run() {
        nameThread()
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while !stopRequested.load(ordering: .acquiring) {
            if draining && !continueDraining() { break }
            let now = monotonicMilliseconds()
            if now >= nextSweep {
                sweepDeadlines(now: now)
                resumeListenerIfDue(now: now)
                // Budget freed by another loop is seen here, at the latest a sweep later.
                resumeAwaitingBudget()
                nextSweep = now + EventLoop.sweepInterval
            }
            // The heartbeat is stamped going in and coming out, from clock readings the
            // loop makes anyway; the wait is short enough to keep it fresh while idle.
            monitor.waiting(loop: index, now: now)
            let waited = try? epoll.wait(into: &events, timeoutMilliseconds: EventLoop.waitTimeout)
            monitor.woke(loop: index, now: monotonicMilliseconds())
            guard let ready = waited else { break }
            for i in 0..<ready {
                let event = events[i]
                let fd = Int32(truncatingIfNeeded: event.data.u64)
                if fd == wakeup.rawValue {
                    var value: UInt64 = 0
                    _ = try? nonBlockingSystemCall("read") { read(wakeup.rawValue, &value, 8) }
                } else if fd == listener?.rawValue {
                    acceptConnections()
                } else if let connection = connection(fd) {
                    drive(connection)
                }
            }
        }
        shutdownAll()
        monitor.stopped(loop: index)
        finished.store(true, ordering: .releasing)
    }

    /// Names the thread `NAME-N`, NAME the configuration's `loopName` (`event-loop-3`, seen
    /// in `/proc/PID/task/TID/comm`, `top -H`, a debugger), so an operator, or a test
    /// freezing one loop, can tell the loops from the other threads. A name past 15 bytes
    /// (loop 10000 on) is refused: the thread keeps the process's name.
    private func nameThread() {
        _ = clinux_name_thread("\(configuration.loopName)-\(index)")
    }

    // MARK: - Accepting

    private func acceptConnections() {
        guard let listener = listener?.rawValue else { return }
        for _ in 0..<64 {
            let accepted: Int32?
            do throws(SystemCallError) {
                accepted = try nonBlockingSystemCall("accept4") { accept4(listener, nil, nil, clinux_sock_nonblock_cloexec()) }
            } catch {
                switch error.errno {
                case ECONNABORTED: continue
                case EMFILE, ENFILE:
                    // Out of descriptors: accept with the spare one and close, so the
                    // waiting client sees a close. Another loop may take the freed
                    // descriptor first and leave this one without a spare, so the
                    // listener also leaves epoll for a sweep interval: a level-triggered
                    // listener that cannot be accepted from would spin.
                    if spare != nil {
                        spare = nil
                        if let victim = try? systemCall("accept", { accept(listener, nil, nil) }) { closeDescriptor(victim) }
                        spare = EventLoop.openSpare()
                    }
                    pauseListener()
                    return
                default:
                    return
                }
            }
            guard let fd = accepted else { return }
            guard statistics.tryOpen(limit: configuration.maxConnections) else {
                closeDescriptor(fd)
                continue
            }
            // Answers go out at once, not after a delayed ACK. A socket that refuses the
            // option is broken: closed, like one that cannot be watched below.
            guard (try? setSocketOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)) != nil else {
                closeAccepted(fd)
                continue
            }
            let session: TLSSession?
            switch transport {
            case .tls(let store):
                // No context loaded, or OpenSSL out of memory: nothing to serve it with.
                guard let made = store.current?.makeSession(socket: fd) else {
                    closeAccepted(fd)
                    continue
                }
                session = made
            case .plain:
                session = nil
            }
            let machine = ConnectionMachine(limits: configuration.limits, timeouts: timeouts,
                                            requestTimeout: router.requestTimeout, now: monotonicMilliseconds())
            let connection = Connection(fd: fd, session: session, machine: machine)
            store(connection)
            acceptedSinceTrim += 1
            connection.interest = clinux_epollin()
            guard (try? epoll.add(fd, events: connection.interest)) != nil else {
                closeConnection(connection)
                continue
            }
            drive(connection)
        }
    }

    /// Closes a socket just accepted, before it became a connection.
    private func closeAccepted(_ fd: Int32) {
        closeDescriptor(fd)
        statistics.closed()
    }

    // MARK: - Driving a connection

    /// Advances a connection as far as its socket allows, carrying out what its machine
    /// decides: handshake, then in turn answer what is parsed, flush, read. Returns once
    /// TLS wants to wait, or the connection is closed or waits for memory.
    private func drive(_ c: Connection) {
        // One clock read per wakeup, and one after each answer (a review may take a while).
        var now = monotonicMilliseconds()
        var action = c.machine.resume()
        while true {
            switch action {
            case .handshake:
                action = c.machine.handshake(.init(c.handshake()), now: now)
            case .answer:
                if answerParsedRequests(c) { now = monotonicMilliseconds() }
                action = c.machine.answered(hasPendingOutput: c.hasPendingOutput, now: now)
            case .flush:
                action = c.machine.flushed(.init(flush(c)))
            case .read:
                guard reserveBody(c) else { return awaitBudget(c) }
                var result = TLSIOResult.done(0)
                var more = false
                if let expected = c.machine.parser.largeBodyBytesExpected {
                    // A large body: decrypted straight into its own storage.
                    let maximum = min(expected, readBuffer.count)
                    let count = c.machine.parser.receive(upTo: maximum) { room in
                        result = c.read(into: room)
                        if case .done(let count) = result { return count }
                        return 0
                    }
                    more = count > 0 && (count == maximum || c.hasBufferedInput)
                } else {
                    result = c.read(into: readBuffer)
                    if case .done(let count) = result {
                        c.machine.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
                        more = count == readBuffer.count || c.hasBufferedInput
                    }
                }
                action = c.machine.read(.init(result), more: more, now: now)
            case .discard:
                return discardLingering(c)
            case .waitReadable:
                c.machine.parser.releaseIdleBuffer()
                return setInterest(c, clinux_epollin())
            case .waitWritable:
                return setInterest(c, clinux_epollout())
            case .close(let handshakeFailed):
                if handshakeFailed { statistics.handshakeFailed() }
                return closeConnection(c)
            case .finish(let linger):
                return finish(c, linger: linger)
            }
        }
    }

    /// Answers the parsed requests in turn, queueing each response, until the machine
    /// stops (more bytes needed, the connection closes, or output backs up). Returns
    /// whether it answered any.
    private func answerParsedRequests(_ c: Connection) -> Bool {
        var answered = false
        while true {
            switch c.machine.nextRequest(backlog: c.output.count - c.outputOffset) {
            case .needInput, .stop:
                return answered
            case .sendContinue:
                c.output.append(contentsOf: HTTPResponseWriter.continueLine)
            case .request(var request):
                releaseBody(c)
                request.loop = index
                monitor.begin(loop: index, request)
                let response = router.respond(to: request)
                monitor.end(loop: index)
                let keepAlive = request.keepAlive && !response.close && !draining
                    && !keepAliveDisabled.load(ordering: .relaxed)
                HTTPResponseWriter.write(response, keepAlive: keepAlive, announceKeepAlive: request.minorVersion == 0,
                                         into: &c.output)
                c.machine.responded(keepAlive: keepAlive, now: monotonicMilliseconds())
                answered = true
            case .refuse(let error):
                releaseBody(c)
                HTTPResponseWriter.write(router.respond(to: error), keepAlive: false, into: &c.output)
                answered = true
            }
        }
    }

    private func flush(_ c: Connection) -> TLSIOResult {
        while c.hasPendingOutput {
            let result = c.output.withUnsafeBytes { bytes in
                c.write(UnsafeRawBufferPointer(rebasing: bytes[c.outputOffset...]))
            }
            guard case .done(let written) = result else { return result }
            c.outputOffset += written
        }
        if c.output.capacity > 64 * 1024 {
            c.output = []
        } else {
            c.output.removeAll(keepingCapacity: true)
        }
        c.outputOffset = 0
        return .done(0)
    }

    /// After the last response: close_notify (TLS), then either close or linger.
    private func finish(_ c: Connection, linger: Bool) {
        c.shutdownTransport()
        guard linger else { return closeConnection(c) }
        // A socket already reset refuses this; the lingering read then sees the reset and closes.
        _ = try? systemCall("shutdown") { Glibc.shutdown(c.fd, Int32(SHUT_WR)) }
        c.machine.startLingering(now: monotonicMilliseconds())
        setInterest(c, clinux_epollin())
    }

    private func discardLingering(_ c: Connection) {
        while true {
            do {
                guard let count = try nonBlockingSystemCall("recv", { recv(c.fd, readBuffer.baseAddress, readBuffer.count, 0) })
                else { return }
                if count > 0 { continue }
            } catch {}
            // The client closed or reset: nothing left to wait for.
            return closeConnection(c)
        }
    }

    // MARK: - Body memory budget

    /// Before reading a body: reserves it (all of it, once). False when the budget is
    /// spent; the connection must then wait.
    private func reserveBody(_ c: Connection) -> Bool {
        guard c.reservedBodyBytes == 0, let bytes = c.machine.parser.bodyBytesToReserve, bytes > 0 else { return true }
        guard bodyBudget.tryReserve(bytes) else { return false }
        c.reservedBodyBytes = bytes
        return true
    }

    private func releaseBody(_ c: Connection) {
        guard c.reservedBodyBytes > 0 else { return }
        bodyBudget.release(c.reservedBodyBytes)
        c.reservedBodyBytes = 0
        if !awaitingBudget.isEmpty { resumeAwaitingBudget() }
    }

    /// Stops reading from a connection until the budget has room: out of epoll (a
    /// waiting socket must not wake the loop), bytes left in the kernel's buffers.
    private func awaitBudget(_ c: Connection) {
        guard !c.awaitingBudget else { return }
        c.awaitingBudget = true
        epoll.remove(c.fd)
        c.interest = 0
        awaitingBudget.append(c)
    }

    /// Drives waiting connections, oldest first, while the budget admits them.
    private func resumeAwaitingBudget() {
        guard !awaitingBudget.isEmpty else { return }
        let waiting = awaitingBudget
        awaitingBudget.removeAll()
        for (i, c) in waiting.enumerated() where c.awaitingBudget {
            guard reserveBody(c) else {
                awaitingBudget.append(contentsOf: waiting[i...].filter(\.awaitingBudget))
                return
            }
            c.awaitingBudget = false
            c.interest = clinux_epollin()
            guard (try? epoll.add(c.fd, events: c.interest)) != nil else {
                closeConnection(c)
                continue
            }
            drive(c)
        }
    }

    // MARK: - Deadlines

    private func sweepDeadlines(now: Int) {
        if connectionCount == 0 && acceptedSinceTrim > 0 {
            // The load is over: give back what its connections' buffers left free, so
            // resident memory follows the load rather than its peak.
            acceptedSinceTrim = 0
            clinux_malloc_trim()
        }
        guard connectionCount > 0 else { return }
        for case let c? in connections where c.machine.deadline <= now {
            let kind = c.machine.deadlineKind
            if kind == .handshake { statistics.handshakeFailed() }
            if kind != .idle && kind != .linger { statistics.timedOutConnection() }
            closeConnection(c)
        }
    }

    // MARK: - Bookkeeping

    private func connection(_ fd: Int32) -> Connection? {
        let i = Int(fd)
        return i >= 0 && i < connections.count ? connections[i] : nil
    }

    private func store(_ c: Connection) {
        let i = Int(c.fd)
        if i >= connections.count {
            connections.append(contentsOf: repeatElement(nil, count: i - connections.count + 1 + connections.count / 2))
        }
        connections[i] = c
        connectionCount += 1
    }

    /// What the connection waits for next. If epoll refuses the change, the connection
    /// would wait for the wrong event until its deadline: it is closed now instead.
    private func setInterest(_ c: Connection, _ events: UInt32) {
        guard c.interest != events else { return }
        c.interest = events
        if (try? epoll.modify(c.fd, events: events)) == nil { closeConnection(c) }
    }

    private func closeConnection(_ c: Connection) {
        let i = Int(c.fd)
        guard i < connections.count, connections[i] === c else { return }
        connections[i] = nil
        connectionCount -= 1
        if c.awaitingBudget {
            c.awaitingBudget = false
            awaitingBudget.removeAll { $0 === c }
        }
        releaseBody(c)
        epoll.remove(c.fd)
        closeDescriptor(c.fd)
        statistics.closed()
    }

    /// The hard stop (`stop()`, or the end of a drain): every connection is closed, and
    /// closing the listener resets what still waits in its backlog. A graceful stop has
    /// served that backlog already (`continueDraining`).
    private func shutdownAll() {
        closeListener()
        for case let c? in connections {
            closeConnection(c)
        }
    }

    private func closeListener() {
        guard let fd = listener?.rawValue else { return }
        if listenerPausedUntil == nil { epoll.remove(fd) }
        listenerPausedUntil = nil
        listener = nil
    }

    /// Out of descriptors: take the listener out of epoll for a sweep interval.
    private func pauseListener() {
        guard let fd = listener?.rawValue, listenerPausedUntil == nil else { return }
        epoll.remove(fd)
        listenerPausedUntil = monotonicMilliseconds() + EventLoop.sweepInterval
    }

    private func resumeListenerIfDue(now: Int) {
        guard let until = listenerPausedUntil, now >= until, let fd = listener?.rawValue else { return }
        listenerPausedUntil = nil
        if spare == nil { spare = EventLoop.openSpare() }
        // Not watched again: retried at the next sweep.
        if (try? epoll.add(fd, events: clinux_epollin())) == nil { listenerPausedUntil = now + EventLoop.sweepInterval }
    }

    /// The spare descriptor; nil while the process is out of them.
    private static func openSpare() -> FileDescriptor? {
        guard let fd = try? systemCall("open", { open("/dev/null", O_RDONLY | O_CLOEXEC) }) else { return nil }
        return FileDescriptor(fd)
    }
}
