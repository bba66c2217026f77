import Glibc
import XCTest

/// Cost tests: an input shape built at size n and at 8n must take at most about 8 times
/// as long. Timings are medians
/// of several runs, each run repeated until it is long enough to measure; the bound
/// allows three times linear for noise, which a quadratic cost (64 times) or an
/// exponential one cannot meet.
enum LinearCost {
    static let growth = 8
    static let allowedRatio = 3.0 * Double(growth)

    static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Median seconds of `repeats` calls of `work`, over five runs.
    static func median(repeats: Int, _ work: () -> Void) -> Double {
        var samples: [Double] = []
        for _ in 0..<5 {
            let start = seconds()
            for _ in 0..<repeats { work() }
            samples.append(seconds() - start)
        }
        return samples.sorted()[2]
    }

    /// How many calls of `work` take at least 20 ms (so the small size is measurable).
    static func repeatsFor(_ work: () -> Void) -> Int {
        var repeats = 1
        while repeats < 1 << 16 {
            let start = seconds()
            for _ in 0..<repeats { work() }
            if seconds() - start >= 0.02 { return repeats }
            repeats *= 2
        }
        return repeats
    }

    /// Asserts that `run` on `make(n * 8)` costs at most `allowedRatio` times `run` on
    /// `make(n)`. Returns the seconds one run of the large input took.
    @discardableResult
    static func assertLinear<Input>(_ shape: String, n: Int, make: (Int) -> Input, run: (Input) -> Void,
                                    file: StaticString = #filePath, line: UInt = #line) -> Double {
        let small = make(n), large = make(n * growth)
        let repeats = repeatsFor { run(small) }
        let t1 = median(repeats: repeats) { run(small) }
        let t8 = median(repeats: repeats) { run(large) }
        let ratio = t8 / max(t1, 1e-9)
        XCTAssertLessThan(ratio, allowedRatio,
                          "\(shape): \(n) took \(t1 / Double(repeats) * 1e3) ms, \(n * growth) took \(t8 / Double(repeats) * 1e3) ms",
                          file: file, line: line)
        return t8 / Double(repeats)
    }
}
