import CFuzzerDriver
import FuzzSupport
import KubernetesClient

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzKubernetesClient_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

/// What a cluster's API server answers, as arbitrary bytes: the response decoder never
/// traps and gives the same head, body and end whether the bytes come whole or split
/// at the first byte's value; every body line decodes to a watch event or an error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = decode([bytes[...]])
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    let pieces = decode([bytes[..<split], bytes[split...]])
    require(whole == pieces, "split at \(split) decodes differently: \(whole) / \(pieces)")
    if case .decoded(_, let body, _) = whole {
        for line in body.split(separator: 0x0A) { _ = try? WatchEvent.decode(Array(line)) }
    }
    return 0
}

enum Outcome: Equatable {
    case decoded(head: HTTPResponseHead?, body: [UInt8], ended: Bool)
    case failed
}

func decode(_ pieces: [ArraySlice<UInt8>]) -> Outcome {
    var decoder = HTTPResponseDecoder()
    var head: HTTPResponseHead?
    var body: [UInt8] = []
    var ended = false
    do {
        var events: [HTTPResponseDecoder.Event] = []
        for piece in pieces { events += try decoder.feed(piece) }
        events += try decoder.finish()
        for event in events {
            switch event {
            case .head(let h): head = h
            case .body(let b): body += b
            case .end: ended = true
            }
        }
    } catch {
        return .failed
    }
    return .decoded(head: head, body: body, ended: ended)
}
