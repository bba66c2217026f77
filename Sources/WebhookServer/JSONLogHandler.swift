import CLinux
import Glibc
import HTTPServer
import JSON
import Logging
import Synchronization
import SystemSupport

/// Writes log lines to a file descriptor from its own thread, so an event loop never
/// waits on a slow stderr. If the reader falls more than `limit` bytes behind, lines
/// are dropped and counted rather than buffered without bound.
public final class LogWriter: Sendable {
    private struct Pending {
        var bytes: [UInt8] = []
        var dropped = 0
        var closed = false
    }

    private let fd: Int32
    private let limit: Int
    private let pending = Mutex(Pending())
    /// A blocking eventfd the writer thread sleeps on between batches.
    private let wakeup: FileDescriptor
    private let thread = Mutex<WorkerThread?>(nil)

    /// Fails when the process cannot have the eventfd or the thread.
    public init(fd: Int32 = 2, limit: Int = 4 << 20) throws(SystemCallError) {
        self.fd = fd
        self.limit = limit
        wakeup = FileDescriptor(try systemCall("eventfd") { eventfd(0, Int32(EFD_CLOEXEC)) })
        let started = try WorkerThread.start { [self] in drainLoop() }
        thread.withLock { $0 = started }
    }

    private func signal() {
        var one: UInt64 = 1
        // Blocks only when the counter is about to overflow, 2^64 - 2 wakeups unread.
        _ = try? systemCall("write") { write(wakeup.rawValue, &one, 8) }
    }

    func enqueue(_ line: [UInt8]) {
        let accepted = pending.withLock { p -> Bool in
            guard !p.closed, p.bytes.count + line.count <= limit else {
                p.dropped += 1
                return false
            }
            p.bytes.append(contentsOf: line)
            return true
        }
        if accepted { signal() }
    }

    /// Writes what is queued and stops the writer thread.
    public func close() {
        let wasOpen = pending.withLock { p -> Bool in
            defer { p.closed = true }
            return !p.closed
        }
        guard wasOpen else { return }
        signal()
        thread.withLock { $0 }?.join()
    }

    private func drainLoop() {
        while true {
            let woken = waitForWork()
            let (batch, closed) = pending.withLock { p -> ([UInt8], Bool) in
                var out: [UInt8] = []
                swap(&out, &p.bytes)
                if p.dropped > 0 {
                    out.append(contentsOf: Array("{\"level\":\"warning\",\"msg\":\"log lines dropped\",\"count\":\(p.dropped)}\n".utf8))
                    p.dropped = 0
                }
                return (out, p.closed)
            }
            writeAll(batch)
            // Without a way to wait, later lines are kept up to `limit`, then dropped.
            if closed || !woken { return }
        }
    }

    /// Sleeps until lines are queued or the writer is closed; false when the eventfd
    /// cannot be read, so the loop ends instead of spinning on a failing read.
    private func waitForWork() -> Bool {
        var count: UInt64 = 0
        return (try? systemCall("read") { read(wakeup.rawValue, &count, 8) }) != nil
    }

    /// Writes `batch` whole; what the descriptor refuses is lost (there is nowhere else
    /// to report it).
    private func writeAll(_ batch: [UInt8]) {
        var offset = 0
        while offset < batch.count {
            let written = try? systemCall("write") {
                batch.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset) }
            }
            guard let written, written > 0 else { return }
            offset += written
        }
    }
}

/// A swift-log handler printing one JSON object per line: `time`, `level`, `msg`, then
/// the metadata (numbers and booleans unquoted).
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let writer: LogWriter

    public init(writer: LogWriter, level: Logger.Level = .info) {
        self.writer = writer
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key("time"); w.string(Self.timestamp())
        w.key("level"); w.string(event.level.rawValue)
        w.key("msg"); w.string(event.message.description)
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for key in merged.keys.sorted() {
            if let value = merged[key] {
                w.key(key)
                Self.write(value, to: &w)
            }
        }
        w.endObject()
        w.bytes.append(0x0A)
        writer.enqueue(w.bytes)
    }

    private static func write(_ value: Logger.Metadata.Value, to w: inout JSONWriter) {
        switch value {
        case .string(let text):
            w.string(text)
        case .stringConvertible(let item):
            switch item {
            case let n as Int: w.int(n)
            case let b as Bool: w.bool(b)
            case let d as Double where d.isFinite: w.raw(String(d).utf8)
            default: w.string(item.description)
            }
        case .array(let items):
            w.beginArray()
            for item in items { write(item, to: &w) }
            w.endArray()
        case .dictionary(let items):
            w.beginObject()
            for key in items.keys.sorted() {
                if let item = items[key] {
                    w.key(key)
                    write(item, to: &w)
                }
            }
            w.endObject()
        }
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var t = tm()
        gmtime_r(&seconds, &t)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T" +
            "\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}
