import Glibc

/// A joinable pthread running one closure: the event loops, the log writer and the
/// certificate watcher each own one (no thread pool, no libdispatch).
public final class WorkerThread: Sendable {
    private let thread: pthread_t

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private init(thread: pthread_t) {
        self.thread = thread
    }

    /// Starts a thread running `run`; the error `pthread_create` returned when the system
    /// refuses one (EAGAIN: out of threads or memory).
    public static func start(_ run: @escaping @Sendable () -> Void) throws(SystemCallError) -> WorkerThread {
        WorkerThread(thread: try spawn(run))
    }

    private static func spawn(_ run: @escaping @Sendable () -> Void) throws(SystemCallError) -> pthread_t {
        let body = Unmanaged.passRetained(Body(run)).toOpaque()
        var thread = pthread_t()
        do throws(SystemCallError) {
            try systemCallReturningErrorNumber("pthread_create") {
                pthread_create(&thread, nil, { raw in
                    guard let raw else { return nil }
                    Unmanaged<Body>.fromOpaque(raw).takeRetainedValue().run()
                    return nil
                }, body)
            }
        } catch {
            Unmanaged<Body>.fromOpaque(body).release()
            throw error
        }
        return thread
    }

    /// Waits for the thread to end. Fails only when misused (joined twice, or from
    /// itself): stopped by an assertion in debug builds.
    public func join() {
        do {
            try systemCallReturningErrorNumber("pthread_join") { pthread_join(thread, nil) }
        } catch {
            assertionFailure("\(error)")
        }
    }
}
