import CFuzzerDriver
import FuzzSupport

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzHTTPParser_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

/// Arbitrary bytes, split at arbitrary points (chosen by the first two input bytes):
/// the parser never traps, and any split yields the same requests and the same end.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard bytes.count >= 2 else { return 0 }
    let stride = Int(bytes[0]) % 64 + 1
    let input = Array(bytes.dropFirst(2))
    let limits = HTTPLimits(maxHeaderBytes: 4096, maxHeaderFields: 20, maxBodyBytes: 8192)

    func run(_ chunks: [[UInt8]]) -> (requests: [HTTPRequest], rejection: HTTPParseError?) {
        var parser = HTTPRequestParser(limits: limits)
        var requests: [HTTPRequest] = []
        for chunk in chunks {
            parser.append(chunk)
            while true {
                switch parser.next() {
                case .needMoreBytes: break
                case .sendContinue: continue
                case .request(let r): requests.append(r); continue
                case .reject(let e): return (requests, e)
                }
                break
            }
        }
        return (requests, nil)
    }
    let whole = run([input])
    var chunks: [[UInt8]] = []
    var i = 0
    while i < input.count {
        chunks.append(Array(input[i..<min(i + stride, input.count)]))
        i += stride
    }
    let split = run(chunks)
    require(whole.requests == split.requests, "requests differ with stride \(stride)")
    require(whole.rejection == split.rejection, "rejection differs with stride \(stride)")
    for request in whole.requests {
        require(request.body.count <= limits.maxBodyBytes, "body over the limit")
        require(request.path.hasPrefix("/"), "path without /")
    }
    return 0
}
