import SystemSupport
/// Why a text is not acceptable JSON.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidUTF8
        case controlCharacterInString
        case invalidEscape
        case invalidNumber
        case trailingContent
        case tooDeep(limit: Int)
        case tooLarge
    }

    public let reason: Reason
    /// Byte offset in the input where the problem was found.
    public let offset: Int

    public init(reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String {
        switch reason {
        case .unexpectedEnd: return "unexpected end of JSON input"
        case .unexpectedByte(let b):
            if b >= 0x21 && b < 0x7F {
                return "invalid character '\(Character(Unicode.Scalar(b)))' at offset \(offset)"
            }
            return "invalid byte 0x\(String(b, radix: 16)) at offset \(offset)"
        case .invalidUTF8: return "invalid UTF-8 in string at offset \(offset)"
        case .controlCharacterInString: return "invalid control character in string at offset \(offset)"
        case .invalidEscape: return "invalid escape in string at offset \(offset)"
        case .invalidNumber: return "invalid number at offset \(offset)"
        case .trailingContent: return "invalid character after top-level value at offset \(offset)"
        case .tooDeep(let limit): return "exceeded max depth of \(limit) at offset \(offset)"
        case .tooLarge: return "JSON text too large"
        }
    }
}

/// An RFC 8259 reader: bytes to a `JSONDocument`. It validates everything (grammar,
/// UTF-8, escapes, number syntax), never recurses, and stops at `maxDepth` nesting.
public enum JSONReader {
    public static let defaultMaxDepth = 512

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONDocument {
        guard bytes.count < JSONNode.countLimit else { throw JSONError(reason: .tooLarge, offset: 0) }
        // Room for the most nodes a text can hold (one per two bytes, `[0,0,...]`, plus
        // a top-level scalar), reserved once and written in place: the tape is never
        // grown or copied, and only the pages written become resident.
        var failure: JSONError?
        let nodes = [JSONNode](unsafeUninitializedCapacity: bytes.count / 2 + 2) { tape, initialized in
            guard let base = tape.baseAddress else {
                failure = JSONError(reason: .tooLarge, offset: 0)
                return
            }
            var parser = Parser(maxDepth: maxDepth, tape: base, capacity: tape.count)
            failure = bytes.withUnsafeBufferPointer { parser.run($0) }
            initialized = parser.count
        }
        if let failure { throw failure }
        return JSONDocument(storage: bytes, nodes: nodes)
    }
}

private struct Parser {
    let maxDepth: Int
    /// The tape, written in place: room for `capacity` nodes, `count` so far.
    let tape: UnsafeMutablePointer<JSONNode>
    let capacity: Int
    var count = 0

    init(maxDepth: Int, tape: UnsafeMutablePointer<JSONNode>, capacity: Int) {
        self.maxDepth = maxDepth
        self.tape = tape
        self.capacity = capacity
    }

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    /// Marks the outermost container's parent while it is open.
    private static let noParent = UInt32.max

    /// Appends a node to `tape`, which holds `count`; false when it is full (a text has at
    /// most one node per two bytes, so this is only a guard).
    @inline(__always)
    private static func append(_ node: JSONNode, _ tape: UnsafeMutablePointer<JSONNode>, _ count: inout Int,
                               _ capacity: Int) -> Bool {
        guard count < capacity else { return false }
        (tape + count).initialize(to: node)
        count &+= 1
        return true
    }

    /// One pass, no recursion and no side stack: while a container is open its node's
    /// `end` holds the index of the container around it, and its `count` grows by one
    /// per element (per member for an object: keys are not counted). Closing it writes
    /// the real `end` and moves back to the saved parent.
    mutating func run(_ p: UnsafeBufferPointer<UInt8>) -> JSONError? {
        // Indices stay below `n` (under 2^28 bytes, checked by `parse`), so the arithmetic
        // on them below cannot overflow and is written with wrapping operators.
        guard let base = p.baseAddress else { return JSONError(reason: .unexpectedEnd, offset: 0) }
        var i = 0
        let n = p.count
        /// The innermost open container, or -1 at the top level.
        var top = -1
        var topIsObject = false
        var depth = 0
        let tape = self.tape, capacity = self.capacity
        var count = self.count
        defer { self.count = count }

        @inline(__always) func skipWhitespace(_ i: inout Int) {
            while i < n {
                let b = p[i]
                // One comparison for the common case, a byte above the space.
                guard b <= 0x20, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
                i &+= 1
            }
        }

        /// The next token is an object member's key (then a colon, then its value).
        var keyNext = false
        parsing: while true {
            // A value (or a key) is expected at `i`.
            skipWhitespace(&i)
            guard i < n else { return JSONError(reason: .unexpectedEnd, offset: i) }
            let b = p[i]
            if keyNext && b != Parser.quote { return JSONError(reason: .unexpectedByte(b), offset: i) }
            switch b {
            case Parser.quote:
                // The one place strings are read, keys and values alike: escapes and
                // UTF-8 validated, eight bytes at a time while none is a quote, a
                // backslash, a control character or non-ASCII (the common case).
                let start = i &+ 1
                var j = start
                var escapes = false
                scanning: while true {
                    // Sixteen bytes a step while there are that many (j < n - 15), then
                    // eight (j < n - 7), then one by one.
                    words: do {
                        while j < n &- 15 {
                            let flagged = specialBytes(UnsafeRawPointer(base + j))
                            if flagged.low | flagged.high != 0 {
                                j &+= flagged.low != 0 ? flagged.low.trailingZeroBitCount >> 3
                                    : 8 &+ flagged.high.trailingZeroBitCount >> 3
                                break words
                            }
                            j &+= 16
                        }
                        while j < n &- 7 {
                            let x = UInt64(littleEndian: UnsafeRawPointer(base + j).loadUnaligned(as: UInt64.self))
                            let special = (hasZeroByte(x ^ 0x2222_2222_2222_2222) | hasZeroByte(x ^ 0x5C5C_5C5C_5C5C_5C5C)
                                | ((x &- 0x2020_2020_2020_2020) & ~x) | x) & 0x8080_8080_8080_8080
                            if special != 0 {
                                // The lowest flagged byte is a real one: borrows only run upwards.
                                j &+= special.trailingZeroBitCount >> 3
                                break words
                            }
                            j &+= 8
                        }
                    }
                    guard j < n else { return JSONError(reason: .unexpectedEnd, offset: j) }
                    let c = p[j]
                    if c == Parser.quote { break scanning }
                    if c < 0x20 { return JSONError(reason: .controlCharacterInString, offset: j) }
                    if c == Parser.backslash {
                        escapes = true
                        guard j + 1 < n else { return JSONError(reason: .unexpectedEnd, offset: j + 1) }
                        switch p[j + 1] {
                        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                            j &+= 2
                        case UInt8(ascii: "u"):
                            guard j + 6 <= n else { return JSONError(reason: .unexpectedEnd, offset: n) }
                            for k in j + 2..<j + 6 where ASCII.hexDigitValue(p[k]) == nil {
                                return JSONError(reason: .invalidEscape, offset: k)
                            }
                            j &+= 6
                        default:
                            return JSONError(reason: .invalidEscape, offset: j)
                        }
                        continue scanning
                    }
                    if c < 0x80 { j &+= 1; continue scanning }
                    guard let width = utf8Width(p, j) else { return JSONError(reason: .invalidUTF8, offset: j) }
                    j &+= width
                }
                guard Parser.append(JSONNode(kind: .string, hasEscapes: escapes, start: UInt32(truncatingIfNeeded: start),
                                             count: UInt32(truncatingIfNeeded: j &- start),
                                             end: UInt32(truncatingIfNeeded: count &+ 1)), tape, &count, capacity) else {
                    return JSONError(reason: .tooLarge, offset: start)
                }
                i = j &+ 1
                if keyNext {
                    keyNext = false
                    skipWhitespace(&i)
                    guard i < n else { return JSONError(reason: .unexpectedEnd, offset: i) }
                    guard p[i] == UInt8(ascii: ":") else { return JSONError(reason: .unexpectedByte(p[i]), offset: i) }
                    i &+= 1
                    continue parsing
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < maxDepth else { return JSONError(reason: .tooDeep(limit: maxDepth), offset: i) }
                let isObject = b == UInt8(ascii: "{")
                let parent = top < 0 ? Parser.noParent : UInt32(truncatingIfNeeded: top)
                top = count
                topIsObject = isObject
                depth &+= 1
                guard Parser.append(JSONNode(kind: isObject ? .object : .array, hasEscapes: false,
                                             start: UInt32(truncatingIfNeeded: i), count: 0, end: parent),
                                    tape, &count, capacity) else {
                    return JSONError(reason: .tooLarge, offset: i)
                }
                i &+= 1
                skipWhitespace(&i)
                guard i < n else { return JSONError(reason: .unexpectedEnd, offset: i) }
                if p[i] != (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    keyNext = isObject
                    continue parsing
                }
                // Empty: closed below like any other container.
            case UInt8(ascii: "t"):
                guard literal(p, i, "true") else { return JSONError(reason: .unexpectedByte(b), offset: i) }
                guard Parser.append(Parser.scalar(.true, i, 4, count), tape, &count, capacity) else { return JSONError(reason: .tooLarge, offset: i) }
                i &+= 4
            case UInt8(ascii: "f"):
                guard literal(p, i, "false") else { return JSONError(reason: .unexpectedByte(b), offset: i) }
                guard Parser.append(Parser.scalar(.false, i, 5, count), tape, &count, capacity) else { return JSONError(reason: .tooLarge, offset: i) }
                i &+= 5
            case UInt8(ascii: "n"):
                guard literal(p, i, "null") else { return JSONError(reason: .unexpectedByte(b), offset: i) }
                guard Parser.append(Parser.scalar(.null, i, 4, count), tape, &count, capacity) else { return JSONError(reason: .tooLarge, offset: i) }
                i &+= 4
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let numberEnd: Int
                do { numberEnd = try Parser.numberEnd(p, from: i) } catch { return error }
                guard Parser.append(Parser.scalar(.number, i, numberEnd &- i, count), tape, &count, capacity) else {
                    return JSONError(reason: .tooLarge, offset: i)
                }
                i = numberEnd
            default:
                return JSONError(reason: .unexpectedByte(b), offset: i)
            }

            // After a value (or at the closing bracket of an empty container).
            while true {
                guard top >= 0 else { break parsing }
                let container = tape + top
                skipWhitespace(&i)
                guard i < n else { return JSONError(reason: .unexpectedEnd, offset: i) }
                let c = p[i]
                if c == UInt8(ascii: ",") {
                    container.pointee.countOneMore()
                    i &+= 1
                    keyNext = topIsObject
                    continue parsing
                }
                guard c == (topIsObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else {
                    return JSONError(reason: .unexpectedByte(c), offset: i)
                }
                i &+= 1
                // The element before the bracket, if any, was not counted yet.
                if count > top + 1 { container.pointee.countOneMore() }
                let parent = container.pointee.end
                container.pointee.end = UInt32(truncatingIfNeeded: count)
                depth &-= 1
                if parent == Parser.noParent {
                    top = -1
                } else {
                    top = Int(parent)
                    topIsObject = tape[top].kind == .object
                }
            }
        }
        skipWhitespace(&i)
        if i < n { return JSONError(reason: .trailingContent, offset: i) }
        return nil
    }

    /// A scalar's node, the `count`th of the tape.
    @inline(__always)
    private static func scalar(_ kind: JSONKind, _ start: Int, _ length: Int, _ count: Int) -> JSONNode {
        JSONNode(kind: kind, hasEscapes: false, start: UInt32(truncatingIfNeeded: start),
                 count: UInt32(truncatingIfNeeded: length), end: UInt32(truncatingIfNeeded: count &+ 1))
    }

    private func literal(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard i + count <= p.count else { return false }
        let w = word.utf8Start
        for k in 0..<count where p[i + k] != w[k] { return false }
        return true
    }

    /// Where the number that starts at `i` ends.
    private static func numberEnd(_ p: UnsafeBufferPointer<UInt8>, from i: Int) throws(JSONError) -> Int {
        let n = p.count
        var j = i
        @inline(__always) func isDigit(_ k: Int) -> Bool { k < n && p[k] >= 0x30 && p[k] <= 0x39 }
        if p[j] == UInt8(ascii: "-") { j += 1 }
        guard isDigit(j) else { throw JSONError(reason: .invalidNumber, offset: j) }
        if p[j] == UInt8(ascii: "0") {
            j += 1
        } else {
            while isDigit(j) { j += 1 }
        }
        if j < n && p[j] == UInt8(ascii: ".") {
            j += 1
            guard isDigit(j) else { throw JSONError(reason: .invalidNumber, offset: j) }
            while isDigit(j) { j += 1 }
        }
        if j < n && (p[j] == UInt8(ascii: "e") || p[j] == UInt8(ascii: "E")) {
            j += 1
            if j < n && (p[j] == UInt8(ascii: "+") || p[j] == UInt8(ascii: "-")) { j += 1 }
            guard isDigit(j) else { throw JSONError(reason: .invalidNumber, offset: j) }
            while isDigit(j) { j += 1 }
        }
        return j
    }
}

/// Length of the well-formed UTF-8 sequence that starts at `i` (a byte >= 0x80),
/// or nil when it is malformed, overlong, a surrogate or beyond U+10FFFF.
@inline(__always)
func utf8Width(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int? {
    let n = p.count
    let b0 = p[i]
    @inline(__always) func cont(_ k: Int) -> Bool { k < n && p[k] & 0xC0 == 0x80 }
    switch b0 {
    case 0xC2...0xDF:
        return cont(i + 1) ? 2 : nil
    case 0xE0...0xEF:
        guard cont(i + 1), cont(i + 2) else { return nil }
        let b1 = p[i + 1]
        if b0 == 0xE0 && b1 < 0xA0 { return nil }  // overlong
        if b0 == 0xED && b1 >= 0xA0 { return nil }  // surrogates
        return 3
    case 0xF0...0xF4:
        guard cont(i + 1), cont(i + 2), cont(i + 3) else { return nil }
        let b1 = p[i + 1]
        if b0 == 0xF0 && b1 < 0x90 { return nil }  // overlong
        if b0 == 0xF4 && b1 >= 0x90 { return nil }  // beyond U+10FFFF
        return 4
    default:
        return nil
    }
}

/// The sixteen bytes at `p` as two little-endian words, each byte 0xFF where the input
/// byte is a quote, a backslash, a control character or non-ASCII (negative as `Int8`,
/// so one signed comparison finds both) and 0 elsewhere. Whole-vector operands, so the
/// compiler emits SSE2 compares: sixteen bytes judged at once.
@inline(__always)
private func specialBytes(_ p: UnsafeRawPointer) -> (low: UInt64, high: UInt64) {
    let quote = SIMD16<Int8>(repeating: 0x22), backslash = SIMD16<Int8>(repeating: 0x5C)
    let space = SIMD16<Int8>(repeating: 0x20)
    let v = p.loadUnaligned(as: SIMD16<Int8>.self)
    let flagged = (v .== quote) .| (v .== backslash) .| (v .< space)
    let words = unsafeBitCast(SIMD16<Int8>(repeating: 0).replacing(with: -1, where: flagged), to: SIMD2<UInt64>.self)
    return (UInt64(littleEndian: words[0]), UInt64(littleEndian: words[1]))
}

/// High bit set in each byte of the result where `v` has a zero byte (and possibly above
/// it); zero when `v` has no zero byte.
@inline(__always)
private func hasZeroByte(_ v: UInt64) -> UInt64 {
    (v &- 0x0101_0101_0101_0101) & ~v & 0x8080_8080_8080_8080
}
