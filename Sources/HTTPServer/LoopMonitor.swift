import Synchronization
import SystemSupport

/// What each event loop is doing, readable from any thread: when it last left
/// `epoll_wait` (0 while it waits there), its heartbeat (the last time it was seen at
/// `epoll_wait`, going in or coming out), and the request it is handling. A loop that
/// does not come back to `epoll_wait` in time is stalled, wherever it is stuck: busy in a
/// request, or frozen anywhere, `epoll_wait` included (stopped from outside, descheduled).
/// It serves none of its connections. Read by `/healthz` (on another loop: a stalled
/// loop answers nothing) and a watchdog thread that logs and counts each stall.
public final class LoopMonitor: Sendable {
    /// One loop's record.
    final class Slot: Sendable {
        /// Monotonic milliseconds when the loop left `epoll_wait`; 0 while it waits.
        let busySince = Atomic<Int>(0)
        /// Monotonic milliseconds when the loop last entered or left `epoll_wait`; 0 while
        /// it does not run (not started yet, or returned). A waiting loop comes back at
        /// least every `maximumWaitMilliseconds`, so an old heartbeat with the loop not
        /// busy means it is frozen where no request can see it.
        let heartbeat = Atomic<Int>(0)
        /// The request being handled, for the stall report.
        let activity = Mutex(Activity())
    }

    /// The longest a loop may stay in `epoll_wait` (its timeout): its heartbeat is at
    /// most this old while it is healthy and waiting.
    public static let maximumWaitMilliseconds = 1_000

    /// What a loop found frozen outside a request reports as its activity.
    public static let frozenOutsideRequest = "no request: frozen in or around epoll_wait"

    /// A request in hand: kept as the strings the request already has (no formatting on
    /// the request path), rendered only for a report.
    struct Activity: Sendable {
        var method = ""
        var path = ""
        var bodyBytes = 0
        var notes: [Note] = []

        /// A named struct, not a tuple: clearing the list then needs no runtime type lookup.
        struct Note: Sendable {
            var name: String
            var value: String
        }

        var description: String {
            guard !method.isEmpty else { return "" }
            return (["\(method) \(path), \(bodyBytes) body bytes"] + notes.map { "\($0.name) \($0.value)" }).joined(separator: ", ")
        }
    }

    let slots: [Slot]

    public init(loopCount: Int) {
        slots = (0..<max(1, loopCount)).map { _ in Slot() }
    }

    /// A loop that has not come back to `epoll_wait` for `milliseconds` or more.
    public struct Stall: Sendable, Equatable {
        public var loop: Int
        /// When it was last seen at `epoll_wait` (monotonic milliseconds): one stall, one
        /// value, however often it is asked about (the watchdog reports each value once).
        public var since: Int
        public var milliseconds: Int
        /// The request it was handling, if any: method, path, body size, and what the
        /// handler noted (an admission review's uid and kind). Empty for a loop stalled
        /// outside a request, `frozenOutsideRequest` for one frozen while waiting.
        public var activity: String
    }

    /// The loops stalled for at least `threshold` milliseconds now: busy (away from
    /// `epoll_wait`) that long, or, while not busy, with a heartbeat that old: frozen in
    /// or around `epoll_wait`. A waiting loop's heartbeat is judged against at least twice
    /// `maximumWaitMilliseconds` (one full wait, and as long again for the thread to be
    /// scheduled), so a threshold shorter than a wait does not flag healthy loops.
    ///
    /// The loop stamps `busySince` before its heartbeat on waking and its heartbeat before
    /// clearing `busySince` on going to wait, and `busySince` is read first here: wherever
    /// the loop freezes, the two values it leaves give the same judgement, and the same
    /// `since`, at every later call.
    public func stalls(threshold: Int, now: Int = monotonicMilliseconds()) -> [Stall] {
        slots.enumerated().compactMap { index, slot in
            let busy = slot.busySince.load(ordering: .acquiring)
            if busy > 0 {
                guard now - busy >= threshold else { return nil }
                return Stall(loop: index, since: busy, milliseconds: now - busy,
                             activity: slot.activity.withLock { $0.description })
            }
            let beat = slot.heartbeat.load(ordering: .relaxed)
            guard beat > 0, now - beat >= max(threshold, 2 * LoopMonitor.maximumWaitMilliseconds) else { return nil }
            return Stall(loop: index, since: beat, milliseconds: now - beat, activity: LoopMonitor.frozenOutsideRequest)
        }
    }

    /// Adds to what loop `loop` is doing, for a stall report (a handler names the
    /// request it works on: `note(loop:, "uid", uid)`). The loop index comes with the
    /// request.
    public func note(loop: Int, _ name: String, _ value: String) {
        guard slots.indices.contains(loop) else { return }
        slots[loop].activity.withLock { $0.notes.append(Activity.Note(name: name, value: value)) }
    }

    /// The loop goes into `epoll_wait`; `now` is a clock reading it already has.
    @inline(__always)
    func waiting(loop: Int, now: Int) {
        let slot = slots[loop]
        slot.heartbeat.store(max(1, now), ordering: .relaxed)
        slot.busySince.store(0, ordering: .releasing)
    }

    /// The loop is back from `epoll_wait` at `now`.
    @inline(__always)
    func woke(loop: Int, now: Int) {
        let slot = slots[loop]
        let stamp = max(1, now)
        slot.busySince.store(stamp, ordering: .releasing)
        slot.heartbeat.store(stamp, ordering: .relaxed)
    }

    /// The loop has returned from `run()`: not judged any more (a stopped loop is not a
    /// stalled one).
    func stopped(loop: Int) {
        let slot = slots[loop]
        slot.busySince.store(0, ordering: .releasing)
        slot.heartbeat.store(0, ordering: .releasing)
    }

    /// The loop takes a request in hand.
    func begin(loop: Int, _ request: HTTPRequest) {
        slots[loop].activity.withLock {
            $0.method = request.method
            $0.path = request.path
            $0.bodyBytes = request.body.count
            $0.notes.removeAll(keepingCapacity: true)
        }
    }

    /// The loop is done with its request.
    func end(loop: Int) {
        slots[loop].activity.withLock { $0.method = "" }
    }
}
