/// Writes JSON straight into a byte buffer: no intermediate strings or trees.
/// Commas and colons are placed by the writer; callers only open, close, name and write.
public struct JSONWriter: Sendable {
    public var bytes: [UInt8]
    /// One entry per open container: whether it already holds an element.
    private var hasElement: [Bool] = []
    private var afterKey = false

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Starts over, keeping the buffer's capacity.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        hasElement.removeAll(keepingCapacity: true)
        afterKey = false
    }

    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = hasElement.indices.last else { return }
        if hasElement[last] { bytes.append(UInt8(ascii: ",")) }
        hasElement[last] = true
    }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        hasElement.append(false)
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        _ = hasElement.popLast()
    }

    /// An object of `members` in order, each value written by `write`.
    public mutating func object<Value>(_ members: [(String, Value)], _ write: (Value, inout JSONWriter) -> Void) {
        beginObject()
        for (key, value) in members {
            self.key(key)
            write(value, &self)
        }
        endObject()
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        hasElement.append(false)
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        _ = hasElement.popLast()
    }

    /// Appends a fixed fragment that is already JSON, as is: for templates of whole
    /// answers. The writer does not place separators around it.
    public mutating func fragment(_ json: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: json.utf8Start, count: json.utf8CodeUnitCount))
    }

    /// Writes an object key; the next value written is its value.
    public mutating func key(_ name: String) {
        separate()
        appendQuoted(name)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ text: String) {
        separate()
        appendQuoted(text)
    }

    public mutating func bool(_ value: Bool) {
        separate()
        appendASCII(value ? "true" : "false")
    }

    public mutating func null() {
        separate()
        appendASCII("null")
    }

    public mutating func int(_ value: Int) {
        separate()
        appendASCII(String(value))
    }

    /// Writes bytes that are already one complete JSON value.
    public mutating func raw(_ json: some Sequence<UInt8>) {
        separate()
        bytes.append(contentsOf: json)
    }

    /// Writes a parsed value. Strings and numbers are copied as written in their
    /// source, which is valid JSON by construction.
    /// Writes `v`, but stops adding members and elements once `bytes` holds at least
    /// `limit` bytes (the output is then cut JSON): for showing the start of a value
    /// without writing all of it.
    public mutating func value(_ v: JSONValue, stopAfter limit: Int) {
        guard bytes.count < limit else { return }
        switch v.kind {
        case .array:
            beginArray()
            for element in v.elements {
                guard bytes.count < limit else { return }
                value(element, stopAfter: limit)
            }
            endArray()
        case .object:
            beginObject()
            for (k, member) in v.members {
                guard bytes.count < limit else { return }
                key(k.string ?? "")
                value(member, stopAfter: limit)
            }
            endObject()
        default:
            value(v)
        }
    }

    public mutating func value(_ v: JSONValue) {
        switch v.kind {
        case .null: null()
        case .true: bool(true)
        case .false: bool(false)
        case .number:
            separate()
            bytes.append(contentsOf: v.rawContent)
        case .string:
            separate()
            if v.node.hasEscapes || !v.document.isJSONSource {
                appendQuoted(v.string ?? "")
            } else {
                bytes.append(UInt8(ascii: "\""))
                bytes.append(contentsOf: v.rawContent)
                bytes.append(UInt8(ascii: "\""))
            }
        case .array:
            beginArray()
            for element in v.elements { value(element) }
            endArray()
        case .object:
            beginObject()
            for (k, member) in v.members {
                key(k.string ?? "")
                value(member)
            }
            endObject()
        }
    }

    private mutating func appendASCII(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `text` as a JSON string, escaping what RFC 8259 requires.
    /// `text` as a JSON string: runs without anything to escape are copied whole.
    private mutating func appendQuoted(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let b = utf8[i]
                guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
                appendEscaped(b)
                runStart = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscaped(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(b)
        case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
        default:
            bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                      JSONWriter.hex[Int(b >> 4)], JSONWriter.hex[Int(b & 0xF)]])
        }
    }
}

/// RFC 6901 JSON Pointer reference tokens.
public enum JSONPointer {
    /// Escapes one reference token: `~` as `~0`, `/` as `~1`.
    public static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        var out = ""
        for c in token.unicodeScalars {
            switch c {
            case "~": out += "~0"
            case "/": out += "~1"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Joins tokens into a pointer: `["spec", "a/b"]` is `/spec/a~1b`.
    public static func path(_ tokens: [String]) -> String {
        tokens.map { "/" + escape($0) }.joined()
    }
}
