import Glibc

/// Milliseconds on the monotonic clock (deadlines, stall detection).
public func monotonicMilliseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Seconds on the monotonic clock, to the nanosecond (latencies).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Milliseconds since the Unix epoch on the real-time clock (timestamps in metrics).
public func wallClockMilliseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

extension Duration {
    /// Whole milliseconds, the unit of the clocks above, rounded toward zero. Bounded by
    /// ±2^53 (some 285,000 years), so a deadline made by adding it to a clock reading
    /// cannot overflow, whatever duration was configured.
    public var wholeMilliseconds: Int {
        let bound = 1 << 53
        let (seconds, attoseconds) = components
        guard seconds.magnitude < bound / 1_000 else { return seconds < 0 ? -bound : bound }
        return Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// Sleeps up to `milliseconds`, in steps of at most 50 ms, returning early once
/// `stopping` says so: a worker thread's wait that a stop cuts short.
public func pause(milliseconds: Int, unless stopping: () -> Bool) {
    let until = monotonicMilliseconds() + milliseconds
    while !stopping(), monotonicMilliseconds() < until {
        usleep(UInt32(min(50, max(1, until - monotonicMilliseconds()))) * 1000)
    }
}
