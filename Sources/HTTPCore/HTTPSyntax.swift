/// Byte classes of HTTP/1.1's grammar (RFC 9110 section 5.6), shared by the request
/// parser and the chunked body decoder.
public enum HTTPSyntax {
    /// RFC 9110 tchar: the bytes of a method, a field name or a chunk extension name.
    @inlinable
    public static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// A byte a field value may hold: visible characters, space, tab and obs-text; no
    /// other control byte and no DEL.
    @inlinable
    public static func isFieldValueByte(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }

    /// `text` without the optional whitespace (spaces and tabs, RFC 9110 OWS) around a
    /// field value or a list element.
    public static func trimmingOptionalWhitespace(_ text: Substring) -> Substring {
        var s = text
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
