import CFuzzerDriver
import FuzzSupport
import HTTPCore

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzChunkedBody_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

/// Arbitrary bytes as a chunked body, split into pieces of a size the first byte sets:
/// the decoder never traps, consumes only bytes it was given, hands out no more than the
/// body limit, and gives the same body, end, leftover and verdict whole or split.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let stride = Int(first) % 32 + 1
    let input = Array(bytes.dropFirst())
    let limits = ChunkedBodyDecoder.Limits(maxBodyBytes: 4096, maxTrailerBytes: 256)
    let whole = decode([input], limits: limits)
    var pieces: [[UInt8]] = []
    var i = 0
    while i < input.count {
        pieces.append(Array(input[i..<min(i + stride, input.count)]))
        i += stride
    }
    let split = decode(pieces, limits: limits)
    require(whole == split, "stride \(stride) decodes differently: \(whole) / \(split)")
    require(whole.body.count <= limits.maxBodyBytes, "body over the limit")
    return 0
}

struct Outcome: Equatable {
    var body: [UInt8] = []
    var ended = false
    /// Bytes after the end, left unconsumed.
    var rest: [UInt8] = []
    var error: ChunkedBodyError?
}

/// Feeds the pieces as a caller does, keeping what was not consumed for the next.
func decode(_ pieces: [[UInt8]], limits: ChunkedBodyDecoder.Limits) -> Outcome {
    var decoder = ChunkedBodyDecoder(limits: limits)
    var buffered: [UInt8] = []
    var outcome = Outcome()
    for piece in pieces {
        buffered += piece
        if outcome.ended { continue }
        drain: while true {
            let (event, consumed) = buffered.withUnsafeBufferPointer { decoder.decode($0) }
            require(consumed >= 0 && consumed <= buffered.count, "consumed \(consumed) of \(buffered.count)")
            switch event {
            case .data(let range):
                require(!range.isEmpty && range.lowerBound >= 0 && range.upperBound == consumed, "data \(range), consumed \(consumed)")
                outcome.body += buffered[range]
                buffered.removeFirst(consumed)
            case .needMoreBytes:
                require(consumed == buffered.count, "framing left unconsumed")
                buffered.removeFirst(consumed)
                break drain
            case .end:
                buffered.removeFirst(consumed)
                outcome.ended = true
                break drain
            case .failed(let error):
                outcome.error = error
                return outcome
            }
        }
    }
    if outcome.ended { outcome.rest = buffered }
    return outcome
}
