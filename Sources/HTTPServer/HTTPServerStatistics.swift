import Synchronization

/// Counters the event loops update and `/metrics` reads, from any thread.
public final class HTTPServerStatistics: Sendable {
    private let open = Atomic<Int>(0)
    private let handshakeFailures = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)
    private let timedOut = Atomic<Int>(0)

    public init() {}

    public var openConnections: Int { open.load(ordering: .relaxed) }
    public var tlsHandshakeErrors: Int { handshakeFailures.load(ordering: .relaxed) }
    /// Connections closed at accept because the connection cap was reached.
    public var refusedConnections: Int { refused.load(ordering: .relaxed) }
    /// Connections closed because a deadline passed (handshake, headers, body, idle).
    public var timedOutConnections: Int { timedOut.load(ordering: .relaxed) }

    /// Claims a connection slot; false when `limit` are already open.
    func tryOpen(limit: Int) -> Bool {
        let now = open.add(1, ordering: .relaxed).newValue
        if now > limit {
            open.subtract(1, ordering: .relaxed)
            refused.add(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func closed() { open.subtract(1, ordering: .relaxed) }
    func handshakeFailed() { handshakeFailures.add(1, ordering: .relaxed) }
    func timedOutConnection() { timedOut.add(1, ordering: .relaxed) }
}
