import Foundation
import XCTest
@testable import JSON

final class JSONReaderTests: XCTestCase {
    /// A document kept for long gives back the tape the reader reserved for the worst case.
    func testCompactedDocumentHoldsOnlyItsNodes() throws {
        let text = #"{"type": "ADDED", "object": {"metadata": {"name": "a"}, "spec": {"list": [1, 2, 3]}}}"#
        let document = try JSONReader.parse(Array(text.utf8))
        XCTAssertGreaterThan(document.nodes.capacity, document.nodes.count + 10)
        let object = try XCTUnwrap(document.root["object"])
        let kept = object.compacted()
        XCTAssertLessThanOrEqual(kept.document.nodes.capacity, kept.document.nodes.count + 4)
        XCTAssertTrue(kept == object)
        XCTAssertEqual(kept["spec"]?["list"]?.count, 3)
        XCTAssertTrue(kept.document.compacted() === kept.document, "a compact document is not copied again")
    }

    /// Tests/Fixtures/json-test-suite/test_parsing, found from this file's location.
    static let suiteDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures/json-test-suite/test_parsing")

    func testSuiteAcceptsEveryYAndRejectsEveryN() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.suiteDirectory.path).sorted()
        XCTAssertGreaterThan(names.count, 300, "the RFC 8259 suite is missing")
        var accepted = 0, rejected = 0
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: Self.suiteDirectory.appendingPathComponent(name)))
            let result = Result { () throws(JSONError) in try JSONReader.parse(bytes) }
            if name.hasPrefix("y_") {
                if case .failure(let error) = result { XCTFail("\(name) rejected: \(error)") } else { accepted += 1 }
            } else if name.hasPrefix("n_") {
                if case .success = result { XCTFail("\(name) accepted") } else { rejected += 1 }
            }
            // i_ files: implementation-defined; reaching here without a crash is the check.
        }
        XCTAssertGreaterThan(accepted, 90)
        XCTAssertGreaterThan(rejected, 180)
    }

    func testEveryAcceptedSuiteFileRoundTripsThroughTheWriter() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.suiteDirectory.path).filter { $0.hasPrefix("y_") }
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: Self.suiteDirectory.appendingPathComponent(name)))
            let first = try JSONReader.parse(bytes)
            var writer = JSONWriter()
            writer.value(first.root)
            let second = try JSONReader.parse(writer.bytes)
            XCTAssertEqual(first.root, second.root, name)
        }
    }

    func testDepthLimitIs512() throws {
        let ok = [UInt8](repeating: UInt8(ascii: "["), count: 512) + [UInt8](repeating: UInt8(ascii: "]"), count: 512)
        XCTAssertNoThrow(try JSONReader.parse(ok))
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 513) + [UInt8](repeating: UInt8(ascii: "]"), count: 513)
        XCTAssertThrowsError(try JSONReader.parse(deep)) { error in
            XCTAssertEqual((error as? JSONError)?.reason, .tooDeep(limit: 512))
        }
        // Far deeper than any stack would survive with a recursive parser.
        let hostile = [UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)
        XCTAssertThrowsError(try JSONReader.parse(hostile))
        let objects = Array(String(repeating: "{\"a\":", count: 600).utf8)
        XCTAssertThrowsError(try JSONReader.parse(objects)) { error in
            XCTAssertEqual((error as? JSONError)?.reason, .tooDeep(limit: 512))
        }
    }

    func testInvalidUTF8IsRejected() {
        let cases: [[UInt8]] = [
            [0x22, 0xFF, 0x22],                   // not UTF-8 at all
            [0x22, 0xC0, 0xAF, 0x22],             // overlong '/'
            [0x22, 0xE0, 0x80, 0xAF, 0x22],       // overlong 3-byte
            [0x22, 0xED, 0xA0, 0x80, 0x22],       // UTF-16 surrogate encoded
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], // beyond U+10FFFF
            [0x22, 0xE2, 0x82, 0x22],             // truncated sequence
            [0x22, 0x80, 0x22],                   // lone continuation byte
        ]
        for bytes in cases {
            XCTAssertThrowsError(try JSONReader.parse(bytes), "\(bytes)") { error in
                XCTAssertEqual((error as? JSONError)?.reason, .invalidUTF8)
            }
        }
        XCTAssertEqual(try JSONReader.parse(Array("\"h\u{e9}llo \u{1F600}\"".utf8)).root.string, "h\u{e9}llo \u{1F600}")
    }

    /// Strings are scanned sixteen bytes a step, then eight, then one: every kind of byte
    /// that stops the scan (closing quote, escape, control character, non-ASCII, bad
    /// UTF-8, the end of the input) is found at every offset of those steps, with every
    /// length of text after it, so no step skips a byte or reads past the end.
    func testStringScanStopsAtEveryKindOfByteAtEveryOffset() throws {
        for before in 0..<40 {
            let prefix = [UInt8](repeating: UInt8(ascii: "a"), count: before)
            for after in 0..<20 {
                let suffix = [UInt8](repeating: UInt8(ascii: "b"), count: after)
                let plain = String(decoding: prefix + suffix, as: UTF8.self)
                let accepted: [([UInt8], String)] = [
                    (Array(#"\n"#.utf8), "\n"), (Array(#"\""#.utf8), "\""), (Array(#"\u00e9"#.utf8), "\u{e9}"),
                    ([0xC3, 0xA9], "\u{e9}"), ([0xF0, 0x9F, 0x98, 0x80], "\u{1F600}"), ([0x7F], "\u{7F}"), ([], ""),
                ]
                for (middle, decoded) in accepted {
                    let text = [0x22] + prefix + middle + suffix + [0x22]
                    let document = try JSONReader.parse(text)
                    XCTAssertEqual(document.root.string, String(decoding: prefix, as: UTF8.self) + decoded
                                   + String(decoding: suffix, as: UTF8.self), "\(before) \(middle) \(after)")
                }
                let rejected: [(UInt8, JSONError.Reason)] = [(0x01, .controlCharacterInString), (0x1F, .controlCharacterInString),
                                                             (0xFF, .invalidUTF8), (0x80, .invalidUTF8)]
                for (byte, reason) in rejected {
                    let text = [0x22] + prefix + [byte] + suffix + [0x22]
                    XCTAssertThrowsError(try JSONReader.parse(text), "\(before) \(byte) \(after)") { error in
                        XCTAssertEqual(error as? JSONError, JSONError(reason: reason, offset: 1 + before))
                    }
                }
                XCTAssertThrowsError(try JSONReader.parse([0x22] + prefix + suffix), "unterminated \(before) \(after)") { error in
                    XCTAssertEqual(error as? JSONError, JSONError(reason: .unexpectedEnd, offset: 1 + before + after))
                }
                // Inside an array, so bytes follow the string's end.
                let array = try JSONReader.parse(Array("[\"\(plain)\",1]".utf8)).root
                XCTAssertEqual(array.elements.map(\.string), [plain, nil])
            }
        }
    }

    func testAccessorsAndExactNumbers() throws {
        let text = #"{"spec":{"name":"a\"b","n":1.50e+3,"big":123456789012345678901234567890,"ok":true,"l":[1,"x",null]},"dup":1,"dup":2}"#
        let doc = try JSONReader.parse(Array(text.utf8))
        let spec = try XCTUnwrap(doc.root["spec"])
        XCTAssertEqual(spec["name"]?.string, "a\"b")
        XCTAssertEqual(spec["n"]?.numberText, "1.50e+3")
        XCTAssertEqual(spec["big"]?.numberText, "123456789012345678901234567890")
        XCTAssertNil(spec["big"]?.int)
        XCTAssertEqual(spec["ok"]?.bool, true)
        XCTAssertEqual(spec["l"]?.elements.map(\.kind), [.number, .string, .null])
        XCTAssertNil(spec["missing"])
        XCTAssertNil(spec["name"]?["x"])
        XCTAssertEqual(doc.root["dup"]?.int, 2, "last duplicate key wins, as in encoding/json")
        XCTAssertEqual(doc.root.members.map { $0.key.string ?? "" }, ["spec", "dup", "dup"])
        var writer = JSONWriter()
        writer.value(spec)
        XCTAssertEqual(String(decoding: writer.bytes, as: UTF8.self),
                       #"{"name":"a\"b","n":1.50e+3,"big":123456789012345678901234567890,"ok":true,"l":[1,"x",null]}"#)
    }

    func testEscapesDecode() throws {
        let doc = try JSONReader.parse(Array(#"["\u00e9\n\/\\\ud83d\ude00","\ud800"]"#.utf8))
        let items = Array(doc.root.elements)
        XCTAssertEqual(items[0].string, "\u{e9}\n/\\\u{1F600}")
        XCTAssertEqual(items[1].string, "\u{FFFD}", "a lone surrogate decodes to U+FFFD")
    }

    /// Keys are read at the same place as string values; a fault around a key is
    /// reported with the byte and offset where it is.
    func testErrorsAroundKeysNameTheByteAndOffset() {
        let cases: [(String, String)] = [
            ("{1:2}", "invalid character '1' at offset 1"),
            (#"{"a" 1}"#, "invalid character '1' at offset 5"),
            (#"{"a""#, "unexpected end of JSON input"),
            (#"{"a":1,}"#, "invalid character '}' at offset 7"),
            (#"{"a":1, "#, "unexpected end of JSON input"),
            (#"["a":1]"#, "invalid character ':' at offset 4"),
            ("{\"a\u{1}\":1}", "invalid control character in string at offset 3"),
            (#"{"a\x":1}"#, "invalid escape in string at offset 3"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try JSONReader.parse(Array(text.utf8)), text) { error in
                XCTAssertEqual((error as? JSONError)?.description, message, text)
            }
        }
    }

    /// A prepared key (words compared, not bytes) finds what the run-time lookup finds:
    /// names of every length around the 8- and 16-byte words, near names that differ
    /// only in their first or last byte, escaped keys, the last of duplicates, a key at
    /// the very end of the stored bytes (no room for a word), and one-character literals.
    func testPreparedKeysAgreeWithRunTimeLookup() throws {
        let names = ["ab", "name", "seven77", "eight888", "nine99999", "kafkaConfig", "bootstrapServers",
                     "seventeen17171717", "a-key-of-thirty-two-bytes-long!!"]
        for name in names {
            let firstChanged = "Z" + name.dropFirst()
            let lastChanged = name.dropLast() + "Z"
            let longer = name + "x"
            let text = #"{"\#(firstChanged)":1,"\#(lastChanged)":2,"\#(longer)":3,"\#(name)":4}"#
            let doc = try JSONReader.parse(Array(text.utf8))
            XCTAssertEqual(doc.root[member: name]?.int, 4, name)
            XCTAssertEqual(doc.root[member: String(firstChanged)]?.int, 1, name)
            XCTAssertEqual(doc.root[member: String(lastChanged)]?.int, 2, name)
        }
        let doc = try JSONReader.parse(Array(#"{"a":0,"ab":1,"name":2,"nam\u0065":3,"eight888":4,"kafkaConfig":5,"kafkaConfiG":6,"bootstrapServers":7,"seventeen17171717":8,"x":{"a-key-of-thirty-two-bytes-long!!":9}}"#.utf8))
        XCTAssertEqual(doc.root["a"]?.int, 0, "a one-character literal")
        XCTAssertEqual(doc.root["ab"]?.int, 1)
        XCTAssertEqual(doc.root["name"]?.int, 3, "the escaped duplicate comes last and wins")
        XCTAssertEqual(doc.root["eight888"]?.int, 4)
        XCTAssertEqual(doc.root["kafkaConfig"]?.int, 5)
        XCTAssertEqual(doc.root["bootstrapServers"]?.int, 7)
        XCTAssertEqual(doc.root["seventeen17171717"]?.int, 8)
        XCTAssertEqual(doc.root["x"]?["a-key-of-thirty-two-bytes-long!!"]?.int, 9)
        XCTAssertNil(doc.root["nam"])
        XCTAssertNil(doc.root["names"])
        XCTAssertNil(doc.root["eight88"])
        XCTAssertNil(doc.root["x"]?["a-key-of-thirty-two-bytes-long!?"], "differs in the middle, beyond both words")
        XCTAssertNil(doc.root["x"]?["a-key-of-thirty-two-bytez-long!!"])

        // Built documents store decoded strings back to back: the last key ends the bytes.
        var builder = JSONBuilder()
        _ = builder.beginObject()
        _ = builder.string(Array("q".utf8))
        _ = builder.null()
        _ = builder.string(Array("ab".utf8))
        _ = builder.null()
        builder.end()
        let built = builder.finish()
        XCTAssertEqual(built.root["ab"]?.isNull, true)
        XCTAssertEqual(built.root["q"]?.isNull, true)
        XCTAssertNil(built.root["a"])
    }

    /// Two or four members found in one scan are the ones single lookups find: the last
    /// of duplicates, escaped keys decoded, nil for absent members and for non-objects.
    func testSeveralMembersInOneScanAgreeWithSingleLookups() throws {
        let doc = try JSONReader.parse(Array(#"{"name":1,"type":2,"n\u0061me":3,"kafkaConfig":{"a":1},"x":4,"type":5}"#.utf8))
        let (name, type) = doc.root["name", "type"]
        XCTAssertEqual(name?.int, 3)
        XCTAssertEqual(type?.int, 5)
        XCTAssertEqual(name?.int, doc.root["name"]?.int)
        XCTAssertEqual(type?.int, doc.root["type"]?.int)
        let (a, b, c, d) = doc.root["kafkaConfig", "missing", "x", "name"]
        XCTAssertEqual(a?.isObject, true)
        XCTAssertNil(b)
        XCTAssertEqual(c?.int, 4)
        XCTAssertEqual(d?.int, 3)
        let (e, f) = try XCTUnwrap(doc.root["x"])["name", "type"]
        XCTAssertNil(e, "not an object")
        XCTAssertNil(f)
    }

    /// `withUTF8` reads an unescaped string in place and decodes an escaped one; it is
    /// nil for anything but a string.
    func testWithUTF8GivesTheDecodedBytes() throws {
        let doc = try JSONReader.parse(Array(#"["plain","a\u002db\n\u00e9",7,null]"#.utf8))
        let items = Array(doc.root.elements)
        XCTAssertEqual(items[0].withUTF8 { Array($0) }, Array("plain".utf8))
        XCTAssertEqual(items[1].withUTF8 { Array($0) }, Array("a-b\n\u{e9}".utf8))
        XCTAssertNil(items[2].withUTF8 { $0.count })
        XCTAssertNil(items[3].withUTF8 { $0.count })
    }

    func testSemanticEqualityIgnoresMemberOrder() throws {
        let a = try JSONReader.parse(Array(#"{"a":1,"b":{"c":[1,2]}}"#.utf8))
        let b = try JSONReader.parse(Array(#"{ "b" : {"c":[1,2]}, "a":1 }"#.utf8))
        let c = try JSONReader.parse(Array(#"{"a":1,"b":{"c":[2,1]}}"#.utf8))
        XCTAssertEqual(a.root, b.root)
        XCTAssertNotEqual(a.root, c.root)
    }

    func testWriterEscapesAndPlacesSeparators() {
        var w = JSONWriter()
        w.beginObject()
        w.key("a\"\n\u{1}")
        w.beginArray(); w.int(-3); w.bool(false); w.null(); w.string("x"); w.endArray()
        w.key("b"); w.beginObject(); w.endObject()
        w.endObject()
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), #"{"a\"\n\u0001":[-3,false,null,"x"],"b":{}}"#)
    }

    func testJSONPointerEscaping() {
        XCTAssertEqual(JSONPointer.path(["spec", "a/b", "m~n"]), "/spec/a~1b/m~0n")
    }

    func testEqualityFastPathsAgreeWithTheSemanticComparison() throws {
        let text = #"{"a":{"k":[1,{"x":"y"}],"l":"v"},"b":{"k":[1,{"x":"y"}],"l":"v"},"c":{"l":"v","k":[1,{"x":"y"}]},"d":{ "k" : [1, {"x":"y"}] , "l":"v" },"e":{"k":[1,{"x":"z"}],"l":"v"},"f":{"k":[1,{"x":"y"}],"l":"v","l":"w"},"g":{"k":[1,{"x":"y"}],"l":"w"}}"#
        let root = try JSONReader.parse(Array(text.utf8)).root
        func v(_ k: String) throws -> JSONValue { try XCTUnwrap(root[member: k]) }
        XCTAssertEqual(try v("a"), try v("b"), "identical text")
        XCTAssertEqual(try v("a"), try v("c"), "member order")
        XCTAssertEqual(try v("a"), try v("d"), "whitespace")
        XCTAssertNotEqual(try v("a"), try v("e"), "a nested value differs")
        XCTAssertNotEqual(try v("a"), try v("f"), "a duplicate key overrides")
        XCTAssertEqual(try v("f"), try v("g"), "the last duplicate wins")
        XCTAssertEqual(try v("a").sourceRange.map { String(decoding: Array(text.utf8)[$0], as: UTF8.self) },
                       #"{"k":[1,{"x":"y"}],"l":"v"}"#)
        XCTAssertEqual(try v("d").sourceRange.map { String(decoding: Array(text.utf8)[$0], as: UTF8.self) },
                       #"{ "k" : [1, {"x":"y"}] , "l":"v" }"#)
        // Many members, equal and not, through both comparison paths.
        let many = (0..<2000).map { #""key\#($0)":"value\#($0)""# }
        let left = try JSONReader.parse(Array(("{" + many.joined(separator: ",") + "}").utf8)).root
        let reversed = try JSONReader.parse(Array(("{" + many.reversed().joined(separator: ",") + "}").utf8)).root
        var changed = many
        changed[1999] = #""key1999":"other""#
        let different = try JSONReader.parse(Array(("{" + changed.joined(separator: ",") + "}").utf8)).root
        XCTAssertEqual(left, reversed)
        XCTAssertNotEqual(left, different)
    }
}
