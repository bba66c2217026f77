import CFuzzerDriver
import FuzzSupport
import Glibc

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzAdmissionCost_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

let reviewer = AdmissionReviewer()

/// Most bytes an input expands to: large enough for every shape to show its cost.
let maxExpanded = 256 * 1024

/// Cost, not crashes: the input is two spec texts with repetition macros, expanded into
/// an UPDATE of each kind (new spec, NUL, old spec). A byte 0x01 followed by a count
/// byte `k`, a length byte `l` and `l` bytes stands for those bytes repeated 16 * (k + 1)
/// times, so a few input bytes reach deep nesting, long lists and many duplicates.
/// Run with `-report_slow_units` and `-timeout` (run.sh does): a review that is not
/// linear in its expanded size shows as a slow unit; the budget below is checked too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let split = input.firstIndex(of: 0) ?? input.count
    let newSpec = expand(input[..<split])
    let oldSpec = expand(input[min(split + 1, input.count)...])
    for kind in ["AtlasStreamConnection", "AtlasStreamInstance"] {
        let body = review(kind: kind, spec: newSpec, old: oldSpec)
        for endpoint in AdmissionEndpoint.allCases {
            let start = seconds()
            _ = reviewer.review(body, at: endpoint)
            let elapsed = seconds() - start
            // Under ASan, unoptimized, a linear review runs at well over 1 MB/s; 0.2 s
            // plus 5 µs a byte is far above that, far below a quadratic blow-up.
            require(elapsed < 0.2 + 5e-6 * Double(body.count),
                    "\(kind) on \(endpoint.path): \(body.count) bytes took \(elapsed) s")
        }
    }
    return 0
}

func expand(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    var i = bytes.startIndex
    while i < bytes.endIndex && out.count < maxExpanded {
        if bytes[i] == 0x01, i + 2 < bytes.endIndex {
            let times = 16 * (Int(bytes[i + 1]) + 1)
            let length = Int(bytes[i + 2])
            let body = bytes[(i + 3)..<min(bytes.endIndex, i + 3 + length)]
            for _ in 0..<times where out.count < maxExpanded { out.append(contentsOf: body) }
            i += 3 + length
        } else {
            out.append(bytes[i])
            i += 1
        }
    }
    return out
}

func review(kind: String, spec: [UInt8], old: [UInt8]) -> [UInt8] {
    var body = Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"atlas.mongodb.com","version":"v1","kind":""#.utf8)
    body += Array(kind.utf8)
    body += Array(#""},"operation":"UPDATE","namespace":"team-a","object":{"metadata":{"name":"x"},"spec":"#.utf8)
    body += spec
    body += Array(#"},"oldObject":{"metadata":{"name":"x"},"spec":"#.utf8)
    body += old
    body += Array("}}}".utf8)
    return body
}

func seconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
