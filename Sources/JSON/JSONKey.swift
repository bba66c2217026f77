/// An object member's name written in the source, prepared once for lookups: its length
/// and its first and last eight bytes as words, so a member of another length is passed
/// over with one comparison and one of the same length is matched with two (names of up
/// to 16 bytes, most of them) instead of a byte loop.
///
/// `value["spec"]` builds one from the literal at each lookup; readers on a hot path keep
/// theirs as static constants (`extension JSONKey { static let spec: JSONKey = "spec" }`,
/// then `value[.spec]`). A name known only at run time is looked up with `value[member:]`.
public struct JSONKey: Sendable, ExpressibleByStringLiteral {
    let text: StaticString
    let count: Int
    /// Bytes 0..<min(8, count), little-endian, zero above.
    let head: UInt64
    /// For names longer than 8 bytes, bytes count-8..<count.
    let tail: UInt64

    public init(stringLiteral text: StaticString) {
        self.text = text
        var head: UInt64 = 0
        var tail: UInt64 = 0
        var count = 0
        // A one-character literal may come as a scalar, without a pointer.
        if text.hasPointerRepresentation {
            let utf8 = text.utf8Start
            count = text.utf8CodeUnitCount
            for i in 0..<min(8, count) { head |= UInt64(utf8[i]) << (8 * UInt64(i)) }
            if count > 8 {
                for i in 0..<8 { tail |= UInt64(utf8[count - 8 + i]) << (8 * UInt64(i)) }
            }
        } else {
            for (i, byte) in text.unicodeScalar.utf8.enumerated() {
                head |= UInt64(byte) << (8 * UInt64(i))
                count += 1
            }
        }
        self.count = count
        self.head = head
        self.tail = tail
    }

    /// The name as a String, for messages and paths.
    public var string: String { text.description }

    /// Whether the `count` bytes at `start` in `storage` are this name (the caller has
    /// checked the length).
    @inline(__always)
    func matches(_ storage: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        guard let base = storage.baseAddress, start + 8 <= storage.count else {
            return text.withUTF8Buffer { utf8 in
                for i in 0..<count where storage[start + i] != utf8[i] { return false }
                return true
            }
        }
        let first = UInt64(littleEndian: UnsafeRawPointer(base + start).loadUnaligned(as: UInt64.self))
        guard count > 8 else {
            let mask: UInt64 = count == 8 ? ~0 : (1 << (8 * UInt64(count))) &- 1
            return first & mask == head
        }
        guard first == head,
              UInt64(littleEndian: UnsafeRawPointer(base + start + count - 8).loadUnaligned(as: UInt64.self)) == tail
        else { return false }
        guard count > 16 else { return true }
        return text.withUTF8Buffer { utf8 in
            for i in 8..<count - 8 where storage[start + i] != utf8[i] { return false }
            return true
        }
    }
}
