/// Byte classes that several parsers share (JSON's `\u` escapes, HTTP's chunk sizes).
public enum ASCII {
    /// The value of a hexadecimal digit, either case; nil for any other byte.
    @inline(__always)
    public static func hexDigitValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
