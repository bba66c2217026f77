import CLinux
import Glibc
import HTTPServer
import Synchronization
import SystemSupport
import TLS

/// Watches the serving certificate, key and client CA files (inotify on their
/// directories plus a poll, since Kubernetes Secret volumes swap a `..data` symlink) and
/// swaps in a new TLS context when they change. A new set that does not load (unreadable,
/// mismatched, expired) is refused and reported, and the current context keeps serving.
final class CertificateWatcher: Sendable {
    private let configuration: TLSConfiguration
    private let store: TLSContextStore
    /// A store for a listener that asks for no client certificate (metrics, under mTLS),
    /// kept in step with `store`: its context is built from the same certificate and key.
    private let serverOnlyStore: TLSContextStore?
    private let pollInterval: Int32
    private let onReload: @Sendable (Result<TLSContext, TLSError>) -> Void
    private let stopped = Atomic<Bool>(false)
    /// The running thread and its descriptors, from `start()` to `stop()`.
    private let running = Mutex<Running?>(nil)

    /// What a started watcher holds: its thread, the eventfd that wakes it to stop, and
    /// its inotify instance (-1 when the system gave none: the poll alone finds changes).
    private struct Running: Sendable {
        let thread: WorkerThread
        let wake: Int32
        let inotify: Int32
    }
    /// The files' fingerprint when the serving context was loaded from them.
    private let baseline: [String]

    /// Directories are watched, not files: an atomic rename or symlink swap replaces the file.
    private static let events = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB
                                       | IN_DELETE_SELF | IN_MOVE_SELF)

    /// `baseline` is `fingerprint(of:)` taken before the serving context was loaded, so
    /// that a rotation between that load and `start()` is still seen.
    init(configuration: TLSConfiguration, store: TLSContextStore, serverOnlyStore: TLSContextStore? = nil, baseline: [String],
         pollIntervalMilliseconds: Int, onReload: @escaping @Sendable (Result<TLSContext, TLSError>) -> Void) {
        self.configuration = configuration
        self.baseline = baseline
        self.store = store
        self.serverOnlyStore = serverOnlyStore
        self.pollInterval = Int32(clamping: pollIntervalMilliseconds)
        self.onReload = onReload
    }

    /// Starts watching on a thread of its own. Without the eventfd that wakes it the
    /// thread could not be stopped, so that failure is the start's; without inotify (or a
    /// directory it cannot watch) the poll alone finds changes.
    func start() throws(SystemCallError) {
        let wake = try systemCall("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
        let inotify = (try? systemCall("inotify_init1") { inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }) ?? -1
        if inotify >= 0 {
            for directory in Set(configuration.files.map(CertificateWatcher.directory(of:))) {
                _ = try? systemCall("inotify_add_watch") { inotify_add_watch(inotify, directory, CertificateWatcher.events) }
            }
        }
        do throws(SystemCallError) {
            let thread = try WorkerThread.start { [self] in run(inotify: inotify, wake: wake) }
            running.withLock { $0 = Running(thread: thread, wake: wake, inotify: inotify) }
        } catch {
            if inotify >= 0 { closeDescriptor(inotify) }
            closeDescriptor(wake)
            throw error
        }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing),
              let running = running.withLock({ current in defer { current = nil }; return current }) else { return }
        var one: UInt64 = 1
        _ = write(running.wake, &one, 8)
        running.thread.join()
        if running.inotify >= 0 { closeDescriptor(running.inotify) }
        closeDescriptor(running.wake)
    }

    private func run(inotify: Int32, wake: Int32) {
        var last = baseline
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopped.load(ordering: .acquiring) {
            var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, nfds_t(fds.count), pollInterval)
            if stopped.load(ordering: .acquiring) { return }
            if ready > 0 && fds[0].revents != 0 {
                // A Secret update is several renames: let it settle, then read all events.
                usleep(100_000)
                while read(inotify, &buffer, buffer.count) > 0 {}
            }
            let current = CertificateWatcher.fingerprint(of: configuration.files)
            guard current != last else { continue }
            do {
                // Both contexts load before either is swapped in: the two listeners never
                // serve different certificates because one of them failed.
                let context = try TLSContext(configuration: configuration)
                if let serverOnlyStore {
                    serverOnlyStore.replace(with: try TLSContext(configuration: configuration.withoutClientCertificates))
                }
                store.replace(with: context)
                last = current
                onReload(.success(context))
            } catch {
                // A certificate that is not valid yet becomes valid by itself (an issuer's
                // clock a little ahead): tried again at the next poll. Any other bad set
                // waits for the files to change.
                if error != .certificateNotYetValid(path: configuration.certificateChainPath) { last = current }
                onReload(.failure(error))
            }
        }
    }

    /// What identifies the files' current content: the resolved file's inode, size and
    /// modification time, for each file.
    static func fingerprint(of files: [String]) -> [String] {
        files.map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return "\(path): missing" }
            return "\(path): \(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
