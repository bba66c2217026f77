import Synchronization
import SystemSupport

/// What each event loop is doing, readable from any thread: when it last left
/// `epoll_wait` (0 while it waits there) and the request it is handling. A loop that
/// stays away from `epoll_wait` too long is stalled: it serves none of its connections.
/// Read by `/healthz` (on another loop: a stalled loop answers nothing) and a watchdog
/// thread that logs and counts each stall (SPEC section 9).
public final class LoopMonitor: Sendable {
    /// One loop's record.
    final class Slot: Sendable {
        /// Monotonic milliseconds when the loop left `epoll_wait`; 0 while it waits.
        let busySince = Atomic<Int>(0)
        /// The request being handled, for the stall report.
        let activity = Mutex(Activity())
    }

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

    /// A loop that has been away from `epoll_wait` for `milliseconds` or more.
    public struct Stall: Sendable, Equatable {
        public var loop: Int
        /// When it left `epoll_wait` (monotonic milliseconds): one stall, one value.
        public var since: Int
        public var milliseconds: Int
        /// The request it was handling, if any: method, path, body size, and what the
        /// handler noted (an admission review's uid and kind).
        public var activity: String
    }

    /// The loops stalled for at least `threshold` milliseconds now.
    public func stalls(threshold: Int, now: Int = monotonicMilliseconds()) -> [Stall] {
        slots.enumerated().compactMap { index, slot in
            let since = slot.busySince.load(ordering: .acquiring)
            guard since > 0, now - since >= threshold else { return nil }
            return Stall(loop: index, since: since, milliseconds: now - since,
                         activity: slot.activity.withLock { $0.description })
        }
    }

    /// Adds to what loop `loop` is doing, for a stall report (a handler names the
    /// request it works on: `note(loop:, "uid", uid)`). The loop index comes with the
    /// request.
    public func note(loop: Int, _ name: String, _ value: String) {
        guard slots.indices.contains(loop) else { return }
        slots[loop].activity.withLock { $0.notes.append(Activity.Note(name: name, value: value)) }
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
