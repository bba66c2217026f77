import Glibc

/// A joinable pthread running one closure: the event loops, the log writer and the
/// certificate watcher each own one (no thread pool, no libdispatch).
///
/// `@unchecked Sendable`: holds only the thread id, written once before it is shared.
public final class WorkerThread: @unchecked Sendable {
    private var thread = pthread_t()

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    public init?(_ run: @escaping @Sendable () -> Void) {
        let body = Unmanaged.passRetained(Body(run)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Body>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, body)
        if rc != 0 {
            Unmanaged<Body>.fromOpaque(body).release()
            return nil
        }
    }

    public func join() {
        pthread_join(thread, nil)
    }
}
