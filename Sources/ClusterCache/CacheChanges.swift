import StreamRules
import Synchronization

/// One object of a cached resource that was added, changed or deleted.
public struct CacheChange: Sendable, Hashable {
    public var resource: CachedResource
    public var reference: ObjectReference

    public init(resource: CachedResource, reference: ObjectReference) {
        self.resource = resource
        self.reference = reference
    }
}

/// What changed in the cache since the audit last asked, so it judges again only the
/// objects a change touches. Written by the reflectors after each change reaches the
/// snapshot (a snapshot taken after `take` holds every change it returned); bounded: past
/// `maxPending` distinct changes, or after a LIST replaced a part of the cache, it says
/// only that anything may have changed.
public final class CacheChangeFeed: Sendable {
    public enum Pending: Sendable, Equatable {
        case changes(Set<CacheChange>)
        /// Too many to list, or a relist: judge everything again.
        case everything
    }

    public static let maxPending = 100_000
    private let pending = Mutex<Pending>(.changes([]))

    public init() {}

    func record(_ change: CacheChange) {
        pending.withLock { pending in
            guard case .changes(var changes) = pending else { return }
            pending = .changes([])
            changes.insert(change)
            pending = changes.count > Self.maxPending ? .everything : .changes(changes)
        }
    }

    func recordEverything() {
        pending.withLock { $0 = .everything }
    }

    /// The changes since the last call, and a fresh start.
    public func take() -> Pending {
        pending.withLock { pending in
            defer { pending = .changes([]) }
            return pending
        }
    }
}
