import Synchronization

/// The bytes of request bodies the event loops may hold at once.
///
/// A connection reserves its whole body (Content-Length, or the body limit when chunked)
/// before reading it, all or nothing: every connection that holds a reservation can
/// finish, so waiting connections are never deadlocked by half-read bodies. One body may
/// always be held, even one larger than the budget.
public final class BodyMemoryBudget: Sendable {
    public let limit: Int
    private let held = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes reserved now.
    public var reserved: Int { held.load(ordering: .relaxed) }

    /// Reserves `bytes`; false (nothing reserved) when that would pass the limit.
    func tryReserve(_ bytes: Int) -> Bool {
        var current = held.load(ordering: .relaxed)
        while true {
            guard current == 0 || current + bytes <= limit else { return false }
            let (exchanged, original) = held.compareExchange(expected: current, desired: current + bytes,
                                                             ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
    }

    func release(_ bytes: Int) {
        held.subtract(bytes, ordering: .acquiringAndReleasing)
    }
}
