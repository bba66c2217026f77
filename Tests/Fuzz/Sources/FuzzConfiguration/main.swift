import CFuzzerDriver
import FuzzSupport

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzConfiguration_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

/// Arbitrary bytes as the configuration file: never a trap; a refusal always names a
/// line inside the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        _ = try ConfigurationFile.parse(bytes, file: "fuzz.yaml")
    } catch {
        // Line breaks as YAML counts them: LF, CR, CRLF (once), NEL, LS, PS.
        var lines = 1
        for (i, b) in bytes.enumerated() {
            if b == 0x0A && (i == 0 || bytes[i - 1] != 0x0D) { lines += 1 }
            if b == 0x0D || b == 0x85 || ((b == 0xA8 || b == 0xA9) && i >= 2 && bytes[i - 2] == 0xE2 && bytes[i - 1] == 0x80) {
                lines += 1
            }
        }
        require(error.line >= 0 && error.line <= lines + 1, "error line \(error.line) outside the input (\(lines) lines)")
    }
    return 0
}
