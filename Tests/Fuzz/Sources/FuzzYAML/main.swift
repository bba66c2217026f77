import CFuzzerDriver
import FuzzSupport

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzYAML_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

/// Arbitrary bytes as YAML: never a trap, bounded work; every loaded document emitted
/// as YAML loads back to an equal value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let documents = try? YAMLLoader.load(bytes, limits: YAMLLimits(maxDepth: 64, maxAliasNodes: 10_000)) else { return 0 }
    for document in documents {
        require(document.marks.count >= 1, "a document without marks")
        let emitted = YAMLEmitter.emit([document.value])
        guard let again = try? YAMLLoader.load(emitted, limits: YAMLLimits(maxDepth: 64, maxAliasNodes: 10_000)),
              again.count == 1 else {
            require(false, "emitted YAML does not load: \(String(decoding: emitted, as: UTF8.self))")
            continue
        }
        require(Tree(document.value) == Tree(again[0].value), "YAML round trip changed the value")
    }
    return 0
}
