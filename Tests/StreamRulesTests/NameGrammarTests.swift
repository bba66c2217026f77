@testable import StreamRules
import XCTest

/// The DNS-1123 subdomain check is one pass over the bytes; it must say what the grammar
/// says, `[a-z0-9]([-a-z0-9]*[a-z0-9])?` labels joined by dots, at most 63 bytes a label
/// and 253 in all, for every string over a small alphabet and the length edges.
final class NameGrammarTests: XCTestCase {
    /// The grammar, written the plain way.
    private func reference(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        return bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy { label in
            guard let first = label.first, let last = label.last, label.count <= 63 else { return false }
            return alnum(first) && alnum(last) && label.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
        }
    }

    func testEveryShortStringOverTheAlphabet() {
        let alphabet: [Character] = ["a", "0", "-", ".", "A"]
        var strings = [""]
        for _ in 0..<6 {
            strings = strings.flatMap { prefix in alphabet.map { prefix + String($0) } }
            for text in strings {
                XCTAssertEqual(isDNS1123Subdomain(text), reference(text), text)
            }
        }
    }

    func testLengthEdges() {
        let label63 = String(repeating: "a", count: 63)
        for text in [label63, label63 + "a", label63 + "." + label63, String(repeating: "a.", count: 126) + "a",
                     String(repeating: "a.", count: 127) + "a", "a_b", "ä"] {
            XCTAssertEqual(isDNS1123Subdomain(text), reference(text), "\(text.count) bytes: \(text.prefix(20))")
        }
    }
}
