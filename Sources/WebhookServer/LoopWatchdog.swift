import Glibc
import HTTPServer
import Logging
import Synchronization
import SystemSupport

/// Watches the event loops from a thread of its own (a stalled loop cannot report
/// itself): each loop that has not come back to `epoll_wait` within the stall timeout,
/// busy in a request or frozen anywhere (`epoll_wait` included: its heartbeat goes
/// stale), is logged once, with the request it was handling, and counted. It looks a
/// quarter of the timeout apart (a second at most), so a stall is reported well within
/// the timeout plus two seconds. `/healthz` reads the same monitor.
final class LoopWatchdog: Sendable {
    private let monitor: LoopMonitor
    private let stallTimeout: Int
    private let logger: Logger
    private let onStall: @Sendable () -> Void
    private let stopped = Atomic<Bool>(false)
    private let thread = Mutex<WorkerThread?>(nil)

    init(monitor: LoopMonitor, stallTimeoutMilliseconds: Int, logger: Logger, onStall: @escaping @Sendable () -> Void) {
        self.monitor = monitor
        self.stallTimeout = stallTimeoutMilliseconds
        self.logger = logger
        self.onStall = onStall
    }

    func start() throws(SystemCallError) {
        let started = try WorkerThread.start { [self] in run() }
        thread.withLock { $0 = started }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        thread.withLock { $0 }?.join()
    }

    private func run() {
        // A stall is one loop last seen at epoll_wait at one moment (its `since`):
        // reported once, however many polls find it.
        var reported: [Int: Int] = [:]
        let interval = UInt32(clamping: max(10, min(1_000, stallTimeout / 4)) * 1_000)
        while !stopped.load(ordering: .acquiring) {
            for stall in monitor.stalls(threshold: stallTimeout) where reported[stall.loop] != stall.since {
                reported[stall.loop] = stall.since
                onStall()
                logger.error("event loop stalled", metadata: [
                    "loop": .stringConvertible(stall.loop),
                    "stalled_ms": .stringConvertible(stall.milliseconds),
                    "handling": .string(stall.activity.isEmpty ? "no request" : stall.activity),
                ])
            }
            usleep(interval)
        }
    }
}
