import CFuzzerDriver
import FuzzSupport

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzJSON_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

/// Arbitrary bytes as JSON: never a trap; whatever parses is written back and parses
/// again to an equal value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let document = try? JSONReader.parse(bytes, maxDepth: 64) else { return 0 }
    var writer = JSONWriter()
    writer.value(document.root)
    guard let again = try? JSONReader.parse(writer.bytes, maxDepth: 64) else {
        require(false, "written JSON does not parse: \(String(decoding: writer.bytes, as: UTF8.self))")
        return 0
    }
    require(document.root == again.root, "round trip changed the value")
    require(Tree(document.root) == Tree(again.root), "round trip changed the tree")
    return 0
}
