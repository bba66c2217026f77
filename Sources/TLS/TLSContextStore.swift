import Synchronization

/// The context new connections are accepted with. Swapping it (certificate reload)
/// affects only connections accepted afterwards: each session holds its own reference
/// to the context it started with.
public final class TLSContextStore: Sendable {
    private let context: Mutex<TLSContext?>

    public init(_ initial: TLSContext? = nil) {
        context = Mutex(initial)
    }

    public var current: TLSContext? {
        context.withLock { $0 }
    }

    public func replace(with new: TLSContext) {
        context.withLock { $0 = new }
    }
}
