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

    /// Whether every byte of `bytes[range]` may stand in a field value. Eight bytes at a
    /// time: each byte's low seven bits plus one, within the byte, is below 0x21 exactly
    /// for a control byte, DEL, and some bytes of 0x80 and above; a word with none such
    /// passes whole, and only a word that has one (a tab, most often) is looked at byte by
    /// byte.
    @inlinable
    public static func isFieldValue(_ range: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress, range.lowerBound >= 0, range.upperBound <= bytes.count else { return range.isEmpty }
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            let shifted = ((word & ~highs) &+ ones) & ~highs
            if (shifted &- ones &* 0x21) & ~shifted & highs != 0 {
                for k in i..<i + 8 where !isFieldValueByte(bytes[k]) { return false }
            }
            i += 8
        }
        while i < range.upperBound {
            if !isFieldValueByte(bytes[i]) { return false }
            i += 1
        }
        return true
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
