import Foundation
import XCTest
import JSON

final class JSONStreamFilterTests: XCTestCase {
    // MARK: - Fixtures

    /// What the cache keeps of a credentials Secret.
    static let secretKeep = JSONKeep.members([
        "metadata": .members([
            "name": .all, "namespace": .all, "uid": .all, "resourceVersion": .all, "deletionTimestamp": .all,
            "labels": .members(["atlas.mongodb.com/type": .all]),
        ]),
        "data": .memberNames,
    ])

    /// A LIST answer: the list's metadata, each item a record.
    static let listKeep = JSONKeep.members([
        "metadata": .members(["resourceVersion": .all, "continue": .all]),
        "items": .records(secretKeep),
    ])

    /// A watch event: its type, and the object's kept members or an ERROR's Status fields.
    static let eventKeep = JSONKeep.members([
        "type": .all,
        "object": .members([
            "metadata": .members([
                "name": .all, "namespace": .all, "uid": .all, "resourceVersion": .all, "deletionTimestamp": .all,
                "labels": .members(["atlas.mongodb.com/type": .all]),
            ]),
            "data": .memberNames, "code": .all, "reason": .all, "message": .all,
        ]),
    ])

    /// Values that must never reach an output.
    static let password = "cGFzc3dvcmQtb25lLXNlY3JldA=="
    static let username = "dXNlci1vbmUtc2VjcmV0"
    static let bigValue = String(repeating: "QUJDREVGR0hJSktMTU5PUA==", count: 800)  // 19.2 KB
    static let certificate = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJ"

    /// kubectl's last-applied-configuration: the object again, as an escaped JSON string.
    static func lastApplied(_ data: [(String, String)]) -> String {
        let members = data.map { "\\\"\($0.0)\\\":\\\"\($0.1)\\\"" }.joined(separator: ",")
        return "{\\\"apiVersion\\\":\\\"v1\\\",\\\"data\\\":{\(members)},\\\"kind\\\":\\\"Secret\\\",\\\"metadata\\\":{\\\"annotations\\\":{},\\\"name\\\":\\\"x\\\"}}\\n"
    }

    static func secret(name: String, uid: String, version: String, labels: String, data: [(String, String)]?,
                       deletion: String? = nil) -> String {
        let dataText = data.map { pairs in
            ",\"data\":{" + pairs.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",") + "}"
        } ?? ""
        let deletionText = deletion.map { ",\"deletionTimestamp\":\"\($0)\"" } ?? ""
        return """
        {"metadata":{"name":"\(name)","namespace":"team-a","uid":"\(uid)","resourceVersion":"\(version)",\
        "creationTimestamp":"2024-05-01T10:00:00Z"\(deletionText),"labels":\(labels),\
        "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"\(lastApplied(data ?? []))","note":"\(certificate)"},\
        "managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"v1",\
        "time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:password":{}},\
        "f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/last-applied-configuration":{}}}}}]}\
        \(dataText),"type":"Opaque","immutable":false}
        """
    }

    static let secrets: [String] = [
        secret(name: "kafka-creds", uid: "11111111-aaaa", version: "101",
               labels: #"{"app":"kafka","atlas.mongodb.com/type":"credentials"}"#,
               data: [("password", password), ("username", username)]),
        secret(name: "big", uid: "22222222-bbbb", version: "102", labels: #"{"app":"other"}"#,
               data: [("ca.crt", certificate), ("blob", bigValue), ("empty", "")], deletion: "2024-05-02T00:00:00Z"),
        secret(name: "no-data", uid: "33333333-cccc", version: "103", labels: "{}", data: nil),
    ]

    /// A SecretList as the API server sends it (here with the envelope indented).
    static let secretList: [UInt8] = Array("""
        {
          "kind": "SecretList",
          "apiVersion": "v1",
          "metadata": {"resourceVersion": "12345", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzNDV9"},
          "items": [
            \(secrets.joined(separator: ",\n    "))
          ]
        }

        """.utf8)

    static let expectedRecords: [String] = [
        #"{"metadata":{"name":"kafka-creds","namespace":"team-a","uid":"11111111-aaaa","resourceVersion":"101","labels":{"atlas.mongodb.com/type":"credentials"}},"data":{"password":null,"username":null}}"#,
        #"{"metadata":{"name":"big","namespace":"team-a","uid":"22222222-bbbb","resourceVersion":"102","deletionTimestamp":"2024-05-02T00:00:00Z","labels":{}},"data":{"ca.crt":null,"blob":null,"empty":null}}"#,
        #"{"metadata":{"name":"no-data","namespace":"team-a","uid":"33333333-cccc","resourceVersion":"103","labels":{}}}"#,
    ]
    static let expectedEnvelope =
        #"{"metadata":{"resourceVersion":"12345","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzNDV9"},"items":[]}"#

    static let watchStream: [UInt8] = Array("""
        {"type":"ADDED","object":\(secrets[0].dropLast()),"kind":"Secret","apiVersion":"v1"}}
        {"type":"MODIFIED","object":\(secrets[1])}
        {"type":"BOOKMARK","object":{"kind":"Secret","apiVersion":"v1","metadata":{"resourceVersion":"12350","annotations":{"k8s.io/initial-events-end":"true"}}}}
        {"type":"DELETED","object":\(secrets[2])}
        {"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (12345)","reason":"Expired","code":410}}

        """.utf8)

    static let expectedEvents: [String] = [
        #"{"type":"ADDED","object":{"metadata":{"name":"kafka-creds","namespace":"team-a","uid":"11111111-aaaa","resourceVersion":"101","labels":{"atlas.mongodb.com/type":"credentials"}},"data":{"password":null,"username":null}}}"#,
        #"{"type":"MODIFIED","object":{"metadata":{"name":"big","namespace":"team-a","uid":"22222222-bbbb","resourceVersion":"102","deletionTimestamp":"2024-05-02T00:00:00Z","labels":{}},"data":{"ca.crt":null,"blob":null,"empty":null}}}"#,
        #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12350"}}}"#,
        #"{"type":"DELETED","object":{"metadata":{"name":"no-data","namespace":"team-a","uid":"33333333-cccc","resourceVersion":"103","labels":{}}}}"#,
        #"{"type":"ERROR","object":{"metadata":{},"message":"too old resource version: 1 (12345)","reason":"Expired","code":410}}"#,
    ]

    // MARK: - Helpers

    struct Outcome: Equatable {
        var outputs: [JSONFilterOutput] = []
        var error: JSONStreamFilterError?
    }

    /// Filters `input` fed in pieces cut at `cuts` (ascending offsets), then finishes.
    static func filter(_ input: [UInt8], _ keep: JSONKeep, cuts: [Int] = [], maxOutputBytes: Int = 1 << 20,
                       maxDepth: Int = 512) -> Outcome {
        var filter = JSONStreamFilter(keep: keep, maxOutputBytes: maxOutputBytes, maxDepth: maxDepth)
        var outcome = Outcome()
        input.withUnsafeBytes { raw in
            var start = 0
            for end in cuts + [input.count] where end >= start {
                do throws(JSONStreamFilterError) {
                    try filter.feed(UnsafeRawBufferPointer(rebasing: raw[start..<end])) { outcome.outputs.append($0) }
                } catch {
                    outcome.error = error
                    return
                }
                start = end
            }
            do throws(JSONStreamFilterError) {
                try filter.finish { outcome.outputs.append($0) }
            } catch {
                outcome.error = error
            }
        }
        return outcome
    }

    static func byteByByte(_ input: [UInt8], _ keep: JSONKeep, maxOutputBytes: Int = 1 << 20) -> Outcome {
        filter(input, keep, cuts: Array(0..<input.count), maxOutputBytes: maxOutputBytes)
    }

    static func texts(_ outputs: [JSONFilterOutput]) -> [String] {
        outputs.map {
            switch $0 {
            case .record(let bytes): return "record " + String(decoding: bytes, as: UTF8.self)
            case .document(let bytes): return "document " + String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    static func bytes(_ output: JSONFilterOutput) -> [UInt8] {
        switch output {
        case .record(let bytes), .document(let bytes): return bytes
        }
    }

    static func offset(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<start + needle.count].elementsEqual(needle) { return start }
        }
        return nil
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        offset(of: needle, in: haystack) != nil
    }

    // MARK: - Kubernetes shapes

    func testSecretListKeepsOnlyTheNamedPartsAsRecordsAndTheEnvelope() throws {
        let outcome = Self.filter(Self.secretList, Self.listKeep)
        XCTAssertNil(outcome.error)
        XCTAssertEqual(Self.texts(outcome.outputs),
                       Self.expectedRecords.map { "record " + $0 } + ["document " + Self.expectedEnvelope])
        for output in outcome.outputs {
            XCTAssertNoThrow(try JSONReader.parse(Self.bytes(output)))
        }
    }

    func testNoDataOrAnnotationValueReachesAnyOutput() {
        let secrets = Self.filter(Self.secretList, Self.listKeep).outputs + Self.filter(Self.watchStream, Self.eventKeep).outputs
        XCTAssertEqual(secrets.count, 4 + 5)
        let annotation = Self.lastApplied([("password", Self.password), ("username", Self.username)])
        let forbidden = [Self.password, Self.username, Self.certificate, String(Self.bigValue.prefix(24)), annotation,
                         "apiVersion\\\"", "kubectl-client-side-apply", "f:password", "Opaque", "last-applied", "note"]
        for output in secrets {
            let bytes = Self.bytes(output)
            for value in forbidden {
                XCTAssertFalse(Self.contains(bytes, Array(value.utf8)), "\(value.prefix(40)) in \(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    func testWatchStreamGivesOneDocumentPerEvent() {
        let outcome = Self.filter(Self.watchStream, Self.eventKeep)
        XCTAssertNil(outcome.error)
        XCTAssertEqual(Self.texts(outcome.outputs), Self.expectedEvents.map { "document " + $0 })
    }

    func testEverySplitOfTheListAndTheStreamGivesTheSameOutputs() throws {
        // Smaller inputs than the fixtures, so that every cut stays quick in a debug build:
        // one Secret with escapes, managedFields and data, one without data; an ADDED event,
        // a BOOKMARK and an ERROR.
        let list = Array("""
            {"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"12345","continue":"x"},\
            "items":[\(Self.secrets[0]), \(Self.secrets[2])]}
            """.utf8)
        let stream = Array(String(decoding: Self.watchStream, as: UTF8.self).split(separator: "\n")
            .enumerated().filter { $0.offset != 1 && $0.offset != 3 }.map { $0.element + "\n" }.joined().utf8)
        for (input, keep, count) in [(list, Self.listKeep, 3), (stream, Self.eventKeep, 3)] {
            let whole = Self.filter(input, keep)
            XCTAssertNil(whole.error)
            XCTAssertEqual(whole.outputs.count, count)
            for cut in 0...input.count {
                let split = Self.filter(input, keep, cuts: [cut])
                if split != whole { XCTFail("cut at \(cut) differs"); break }
            }
            XCTAssertEqual(Self.byteByByte(input, keep), whole)
        }
        // The big one: byte by byte, and cut inside the big value.
        let whole = Self.filter(Self.secretList, Self.listKeep)
        XCTAssertEqual(Self.byteByByte(Self.secretList, Self.listKeep), whole)
        let offset = try XCTUnwrap(Self.offset(of: Array(Self.bigValue.utf8), in: Self.secretList))
        XCTAssertEqual(Self.filter(Self.secretList, Self.listKeep, cuts: [offset + 1, offset + 7, offset + 4000]), whole)
    }

    func testSeveralDocumentsInOneFeedAndBareScalars() {
        let outcome = Self.filter(Array(" 1 \"a\"\t[true,null]{\"x\":false}\n-2.5e3".utf8), .all)
        XCTAssertNil(outcome.error)
        XCTAssertEqual(Self.texts(outcome.outputs),
                       ["document 1", "document \"a\"", "document [true,null]", "document {\"x\":false}", "document -2.5e3"])
        // A number that only the end of input closes is handed out by `finish`.
        var filter = JSONStreamFilter(keep: .all, maxOutputBytes: 100)
        var outputs: [JSONFilterOutput] = []
        XCTAssertNoThrow(try filter.feed(Array("42".utf8)) { outputs.append($0) })
        XCTAssertTrue(outputs.isEmpty)
        XCTAssertNoThrow(try filter.finish { outputs.append($0) })
        XCTAssertEqual(outputs, [.document(Array("42".utf8))])
    }

    func testKeepKinds() {
        func check(_ input: String, _ keep: JSONKeep, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
            let outcome = Self.filter(Array(input.utf8), keep)
            XCTAssertNil(outcome.error, file: file, line: line)
            XCTAssertEqual(Self.texts(outcome.outputs), expected, file: file, line: line)
            XCTAssertEqual(Self.byteByByte(Array(input.utf8), keep), outcome, file: file, line: line)
        }
        // Dropped members leave no stray commas, first, middle or last.
        check(#"{"a":1,"b":[2,{"c":3}],"c":"x","d":{}}"#, .members(["b": .all, "d": .all]), [#"document {"b":[2,{"c":3}],"d":{}}"#])
        check(#"{"a":1,"b":2,"c":3}"#, .members(["c": .all]), [#"document {"c":3}"#])
        check(#"{"a":1,"b":2,"c":3}"#, .members(["a": .all]), [#"document {"a":1}"#])
        check(#"{"a":1,"b":2,"c":3}"#, .members([:]), [#"document {}"#])
        // Scalars in a members place stay; arrays become null.
        check(#"{"a":"s","b":[1],"c":{"d":1}}"#, .members(["a": .members([:]), "b": .members([:]), "c": .members([:])]),
              [#"document {"a":"s","b":null,"c":{}}"#])
        // Member names: values null, whatever they are.
        check(#"{"k":{"x":[1,{"y":"z"}],"w":"v","e":""}}"#, .members(["k": .memberNames]),
              [#"document {"k":{"x":null,"w":null,"e":null}}"#])
        check(#"[{"a":1},[1],"s",2]"#, .elements(.memberNames), [#"document [{"a":null},null,null,null]"#])
        // Elements: objects in that place become null, scalars stay.
        check(#"{"a":[{"n":1,"m":2},{"m":3}],"b":{"x":1},"c":7}"#,
              .members(["a": .elements(.members(["m": .all])), "b": .elements(.all), "c": .elements(.all)]),
              [#"document {"a":[{"m":2},{"m":3}],"b":null,"c":7}"#])
        // Records, nested: inner records first, each as it ends.
        check(#"[[{"b":1,"c":2},{"b":3}],[],[{"c":4}]]"#, .records(.records(.members(["b": .all]))),
              [#"record {"b":1}"#, #"record {"b":3}"#, "record []", "record []", "record {}", "record []", "document []"])
        check(#"{"items":[1,"x",null,{"a":1}],"after":true}"#, .members(["items": .records(.all), "after": .all]),
              ["record 1", #"record "x""#, "record null", #"record {"a":1}"#, #"document {"items":[],"after":true}"#])
        // Kept text is copied as written, whitespace aside; escapes stay escapes.
        check(" { \"s\" : \"a\\\"b\\u00e9\\n\u{e9}\" , \"n\" : -0.5E+10 , \"t\" : [ true , false , null ] } ", .all,
              ["document {\"s\":\"a\\\"b\\u00e9\\n\u{e9}\",\"n\":-0.5E+10,\"t\":[true,false,null]}"])
    }

    func testNamesAreMatchedOnTheirRawBytes() {
        let outcome = Self.filter(Array(#"{"n\u0061me":"escaped","name":"plain","nam":"short","names":"long"}"#.utf8),
                                  .members(["name": .all]))
        XCTAssertEqual(Self.texts(outcome.outputs), [#"document {"name":"plain"}"#])
        // A name far longer than any asked for is not held.
        let long = String(repeating: "n", count: 100_000)
        let big = Self.filter(Array("{\"\(long)\":1,\"name\":2}".utf8), .members(["name": .all]), maxOutputBytes: 64)
        XCTAssertEqual(Self.texts(big.outputs), [#"document {"name":2}"#])
    }

    // MARK: - Errors

    func testMalformedInputsAreReportedWhereTheyGoWrong() {
        let keepNothing = JSONKeep.members([:])
        let cases: [(String, JSONKeep, JSONStreamFilterError)] = [
            (#"{"a":1"#, .all, .truncated(offset: 6)),
            (#"{"a":"unterminated"#, keepNothing, .truncated(offset: 18)),
            (#"["abc\"#, keepNothing, .truncated(offset: 6)),
            ("[1, tr", .all, .truncated(offset: 6)),
            ("-", .all, .truncated(offset: 1)),
            (#"{"a" 1}"#, .all, .malformed(offset: 5, expected: .colon)),
            (#"{"a" 1}"#, keepNothing, .malformed(offset: 5, expected: .colon)),
            ("[1}", .all, .malformed(offset: 2, expected: .commaOrArrayEnd)),
            ("[[1]}", keepNothing, .malformed(offset: 4, expected: .commaOrArrayEnd)),
            (#"{"a":1]"#, keepNothing, .malformed(offset: 6, expected: .commaOrObjectEnd)),
            (#"{"a":1 x}"#, .all, .malformed(offset: 7, expected: .commaOrObjectEnd)),
            (#"{"a":"s" "b":1}"#, keepNothing, .malformed(offset: 9, expected: .commaOrObjectEnd)),
            ("[1,]", .all, .malformed(offset: 3, expected: .value)),
            ("{,}", .all, .malformed(offset: 1, expected: .memberName)),
            (#"{"a":1,}"#, keepNothing, .malformed(offset: 7, expected: .memberName)),
            ("{1:2}", .all, .malformed(offset: 1, expected: .memberName)),
            (#"{"a":}"#, .all, .malformed(offset: 5, expected: .value)),
            ("[\u{01}]", .all, .malformed(offset: 1, expected: .value)),
            ("\u{00}", .all, .malformed(offset: 0, expected: .value)),
            ("[\"a\u{01}\"]", .all, .malformed(offset: 3, expected: .stringByte)),
            ("{\"a\":\"x\u{1F}\"}", keepNothing, .malformed(offset: 7, expected: .stringByte)),
            (#"["\x"]"#, .all, .malformed(offset: 3, expected: .escape)),
            (#"["\u12G4"]"#, .all, .malformed(offset: 6, expected: .hexDigit)),
            ("[tru]", .all, .malformed(offset: 4, expected: .literal)),
            ("[nul]", keepNothing, .malformed(offset: 4, expected: .literal)),
            ("[-]", .all, .malformed(offset: 2, expected: .digit)),
            ("[01]", keepNothing, .malformed(offset: 2, expected: .numberEnd)),
            ("[1.]", .all, .malformed(offset: 3, expected: .digit)),
            ("[1e+]", .all, .malformed(offset: 4, expected: .digit)),
            ("}", .all, .malformed(offset: 0, expected: .value)),
            (#"{"a":1}}"#, .all, .malformed(offset: 7, expected: .value)),
            ("{} ,{}", .all, .malformed(offset: 3, expected: .value)),
            ("[1]x", .all, .malformed(offset: 3, expected: .value)),
        ]
        for (input, keep, expected) in cases {
            let bytes = Array(input.utf8)
            XCTAssertEqual(Self.filter(bytes, keep).error, expected, input)
            XCTAssertEqual(Self.byteByByte(bytes, keep).error, expected, "\(input), byte by byte")
        }
        // Invalid UTF-8 in a kept string (dropped strings are only scanned for their end).
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22]] {
            XCTAssertEqual(Self.filter(bytes, .all).error?.expected, .utf8)
            XCTAssertEqual(Self.filter([UInt8(ascii: "[")] + bytes + [UInt8(ascii: "]")], .elements(.memberNames)).error, nil)
        }
    }

    func testAFailedFilterStaysFailedAndSaysNothingOfTheInput() {
        var filter = JSONStreamFilter(keep: Self.listKeep, maxOutputBytes: 1 << 20)
        let input = Array(#"{"items":[{"data":{"k":"c2VjcmV0"}} "c2VjcmV0"]}"#.utf8)
        var outputs: [JSONFilterOutput] = []
        var first: JSONStreamFilterError?
        do {
            try filter.feed(input) { outputs.append($0) }
        } catch {
            first = error
        }
        XCTAssertEqual(first, .malformed(offset: 36, expected: .commaOrArrayEnd))
        XCTAssertEqual(outputs.map(Self.bytes), [Array(#"{"data":{"k":null}}"#.utf8)])
        // Later calls give the same error, even for good input.
        XCTAssertThrowsError(try filter.feed(Array("{}".utf8)) { _ in }) { XCTAssertEqual($0 as? JSONStreamFilterError, first) }
        XCTAssertThrowsError(try filter.finish()) { XCTAssertEqual($0 as? JSONStreamFilterError, first) }
        let messages = [first?.description ?? "", JSONStreamFilterError.truncated(offset: 3).description,
                        JSONStreamFilterError.tooDeep(limit: 5, offset: 9).description,
                        JSONStreamFilterError.outputTooLarge(limit: 10, offset: 12).description]
        XCTAssertEqual(messages[0], "malformed JSON at byte 36: expected ',' or ']'")
        for message in messages { XCTAssertFalse(message.contains("c2VjcmV0"), message) }
    }

    func testDepthLimitCountsKeptAndDroppedContainers() {
        func nested(_ depth: Int) -> [UInt8] {
            Array(#"{"keep":1,"drop":"#.utf8) + [UInt8](repeating: UInt8(ascii: "["), count: depth - 1)
                + [UInt8](repeating: UInt8(ascii: "]"), count: depth - 1) + [UInt8(ascii: "}")]
        }
        let keep = JSONKeep.members(["keep": .all])
        XCTAssertEqual(Self.texts(Self.filter(nested(512), keep).outputs), [#"document {"keep":1}"#])
        XCTAssertEqual(Self.filter(nested(513), keep).error, .tooDeep(limit: 512, offset: 17 + 511))
        XCTAssertEqual(Self.filter(nested(513), .all).error, .tooDeep(limit: 512, offset: 17 + 511))
        XCTAssertEqual(Self.filter(nested(11), keep, maxDepth: 10).error, .tooDeep(limit: 10, offset: 17 + 9))
        XCTAssertNil(Self.filter(nested(10), keep, maxDepth: 10).error)
        // Far deeper than any stack would take, kept or not.
        let hostile = [UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)
        XCTAssertEqual(Self.filter(hostile, .all).error, .tooDeep(limit: 512, offset: 512))
        let objects = Array(String(repeating: "{\"a\":", count: 100_000).utf8)
        XCTAssertEqual(Self.filter(objects, .memberNames).error, .tooDeep(limit: 512, offset: 512 * 5))
    }

    func testOutputLimitCountsKeptBytesOnly() {
        let limit = 64 * 1024
        let huge = String(repeating: "QUJDREVGR0g=", count: 5 * 1024 * 1024 / 12)  // 5 MB
        // A 5 MB value that is dropped (data, an annotation) is never counted.
        let list = Array("""
            {"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"a","annotations":{"x":"\(huge)"}},\
            "data":{"big":"\(huge)"}}]}
            """.utf8)
        let outcome = Self.filter(list, Self.listKeep, maxOutputBytes: limit)
        XCTAssertNil(outcome.error)
        XCTAssertEqual(Self.texts(outcome.outputs), [#"record {"metadata":{"name":"a"},"data":{"big":null}}"#,
                                                     #"document {"metadata":{"resourceVersion":"1"},"items":[]}"#])
        // A kept value over the limit is an error at the first byte past it, however the input is cut.
        let kept = Array("{\"metadata\":{\"name\":\"\(String(repeating: "n", count: 100_000))\"}}".utf8)
        let expected = JSONStreamFilterError.outputTooLarge(limit: limit, offset: limit)  // prefix and output are both 21 bytes
        XCTAssertEqual(Self.filter(kept, Self.secretKeep, maxOutputBytes: limit).error, expected)
        XCTAssertEqual(Self.filter(kept, Self.secretKeep, cuts: [30, limit - 1, limit, limit + 1], maxOutputBytes: limit).error, expected)
        // Numbers, names and the closing quote count too.
        XCTAssertEqual(Self.filter(Array("[12345]".utf8), .all, maxOutputBytes: 4).error, .outputTooLarge(limit: 4, offset: 4))
        XCTAssertEqual(Self.filter(Array(#"["abc"]"#.utf8), .all, maxOutputBytes: 5).error, .outputTooLarge(limit: 5, offset: 5))
        XCTAssertNil(Self.filter(Array(#"["abc"]"#.utf8), .all, maxOutputBytes: 7).error)
        XCTAssertEqual(Self.filter(Array(#"{"abcdef":1}"#.utf8), .memberNames, maxOutputBytes: 8).error?.isOutputTooLarge, true)
        // Each record has the limit to itself; the envelope does not hold them.
        let record = "{\"metadata\":{\"name\":\"\(String(repeating: "r", count: 900))\"}}"
        let many = Array("{\"items\":[\(Array(repeating: record, count: 200).joined(separator: ","))]}".utf8)
        let records = Self.filter(many, Self.listKeep, maxOutputBytes: 1024)
        XCTAssertNil(records.error)
        XCTAssertEqual(records.outputs.count, 201)
    }

    // MARK: - Against a reference

    /// What the filter should hand out, computed from the parsed document.
    static func reference(_ value: JSONValue, _ keep: JSONKeep, _ writer: inout JSONWriter, _ records: inout [[UInt8]]) {
        switch keep {
        case .all:
            writer.value(value)
        case .members(let members):
            switch value.kind {
            case .object:
                writer.beginObject()
                for (key, member) in value.members {
                    // Matched on raw bytes: a key written with escapes is longer than its text.
                    guard let name = key.string, key.stringByteCount == name.utf8.count, let entry = members[name] else { continue }
                    writer.key(name)
                    reference(member, entry, &writer, &records)
                }
                writer.endObject()
            case .array: writer.null()
            default: writer.value(value)
            }
        case .memberNames:
            guard value.isObject else { writer.null(); return }
            writer.beginObject()
            for (key, _) in value.members {
                writer.key(key.string ?? "")
                writer.null()
            }
            writer.endObject()
        case .elements(let entry), .records(let entry):
            var isRecords = false
            if case .records = keep { isRecords = true }
            switch value.kind {
            case .array:
                writer.beginArray()
                for element in value.elements {
                    if isRecords {
                        var record = JSONWriter()
                        reference(element, entry, &record, &records)
                        records.append(record.bytes)
                    } else {
                        reference(element, entry, &writer, &records)
                    }
                }
                writer.endArray()
            case .object: writer.null()
            default: writer.value(value)
            }
        }
    }

    /// SplitMix64: the same cases on every run.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }
    }

    static let names = ["a", "b", "c", "name", "data", "items", "metadata", "x y", "", "n\\u0061me", "\u{e9}", "a-much-longer-member-name"]
    static let plainNames = names.filter { !$0.contains("\\") }
    static let stringPieces = ["plain", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\u00e9", "\\ud83d\\ude00", "\\u0000",
                               "\u{e9}", "\u{65e5}\u{672c}", "\u{1F600}", "{\\\"json\\\":[1,2]}", "]}", ",:"]
    static let scalars = ["0", "-1", "12.5e3", "1E-7", "-0.0", "123456789012345678901234567890", "true", "false", "null"]

    static func generate(_ random: inout Random, depth: Int, into text: inout String) {
        func space() { if random.int(4) == 0 { text += random.pick([" ", "\n", "\t ", "\r\n  "]) } }
        space()
        let choice = depth > 5 ? 2 + random.int(2) : random.int(5)
        switch choice {
        case 0:
            text += "{"
            for k in 0..<random.int(5) {
                if k > 0 { text += "," }
                space()
                text += "\"" + random.pick(names) + "\""
                space()
                text += ":"
                generate(&random, depth: depth + 1, into: &text)
            }
            space()
            text += "}"
        case 1:
            text += "["
            for k in 0..<random.int(5) {
                if k > 0 { text += "," }
                generate(&random, depth: depth + 1, into: &text)
            }
            space()
            text += "]"
        case 2:
            text += "\"" + (0..<random.int(4)).map { _ in random.pick(stringPieces) }.joined() + "\""
        default:
            text += random.pick(scalars)
        }
        space()
    }

    static func randomKeep(_ random: inout Random, depth: Int) -> JSONKeep {
        switch depth > 3 ? random.int(2) : random.int(6) {
        case 0: return .all
        case 1: return .memberNames
        case 2, 3:
            var members: [String: JSONKeep] = [:]
            // Names as written without escapes (a keep name is matched on raw bytes).
            for _ in 0..<random.int(4) { members[random.pick(plainNames)] = randomKeep(&random, depth: depth + 1) }
            return .members(members)
        case 4: return .elements(randomKeep(&random, depth: depth + 1))
        default: return .records(randomKeep(&random, depth: depth + 1))
        }
    }

    func testGeneratedDocumentsMatchAReferenceBuiltOnJSONReader() throws {
        var random = Random(state: 0x5EED)
        let fixed: [JSONKeep] = [
            .all, .memberNames, .members([:]),
            .members(["a": .all, "b": .members(["c": .all, "name": .memberNames]), "items": .records(.members(["a": .all, "data": .memberNames]))]),
            .elements(.members(["a": .elements(.all), "name": .all, "\u{e9}": .all, "": .all])),
            .records(.records(.members(["b": .all]))),
            .members(["metadata": .members(["name": .all]), "data": .memberNames, "items": .records(.all), "c": .elements(.memberNames)]),
        ]
        var compared = 0, records = 0
        for round in 0..<400 {
            var text = ""
            Self.generate(&random, depth: 0, into: &text)
            let input = Array(text.utf8)
            let document = try JSONReader.parse(input)
            let keeps = fixed + [Self.randomKeep(&random, depth: 0), Self.randomKeep(&random, depth: 0)]
            for keep in keeps {
                var writer = JSONWriter()
                var expectedRecords: [[UInt8]] = []
                Self.reference(document.root, keep, &writer, &expectedRecords)
                let outcome = Self.filter(input, keep)
                XCTAssertNil(outcome.error, text)
                guard outcome.error == nil else { return }
                XCTAssertEqual(outcome.outputs.count, expectedRecords.count + 1, text)
                let expected = expectedRecords.map(JSONFilterOutput.record) + [.document(writer.bytes)]
                for (got, want) in zip(outcome.outputs, expected) {
                    let same: Bool
                    switch (got, want) {
                    case (.record(let a), .record(let b)), (.document(let a), .document(let b)):
                        same = try JSONReader.parse(a).root == JSONReader.parse(b).root
                    default:
                        same = false
                    }
                    if !same {
                        XCTFail("\(text)\nkeep \(keep)\ngot \(Self.texts([got]))\nwant \(Self.texts([want]))")
                        return
                    }
                    compared += 1
                }
                records += expectedRecords.count
                // The same through random cuts, and byte by byte for some.
                let cuts = (0..<3).map { _ in random.int(input.count + 1) }.sorted()
                XCTAssertEqual(Self.filter(input, keep, cuts: cuts), outcome, "\(text) cut at \(cuts)")
                if round < 60 { XCTAssertEqual(Self.byteByByte(input, keep), outcome, text) }
            }
        }
        XCTAssertGreaterThan(compared, 3000)
        XCTAssertGreaterThan(records, 100)
    }

    // MARK: - Cost

    /// Seconds for the fastest of three runs of `body`.
    static func fastest(_ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    func testCostIsLinearInTheInput() {
        // A list of Secrets whose values are most of the bytes, and deep items near the limit.
        func list(_ count: Int) -> [UInt8] {
            let value = String(repeating: "QUJDREVGR0g=", count: 2000)
            let item = "{\"metadata\":{\"name\":\"s\",\"annotations\":{\"a\":\"\(value)\"}},\"data\":{\"k\":\"\(value)\",\"j\":\"\\\"\(value)\"}}"
            return Array("{\"items\":[\(Array(repeating: item, count: count).joined(separator: ","))]}".utf8)
        }
        func deep(_ count: Int) -> [UInt8] {
            let item = String(repeating: "{\"a\":[\"x\",", count: 250) + "1" + String(repeating: "]}", count: 250)
            return Array("{\"items\":[\(Array(repeating: item, count: count).joined(separator: ","))]}".utf8)
        }
        for (shape, keep) in [(list as (Int) -> [UInt8], Self.listKeep),
                              (deep, JSONKeep.members(["items": .records(.all)])),
                              (deep, JSONKeep.members(["items": .records(.members([:]))]))] {
            let small = shape(4), large = shape(32)
            var outputs = 0
            let t1 = Self.fastest { outputs = Self.filter(small, keep).outputs.count }
            XCTAssertEqual(outputs, 5)
            let t8 = Self.fastest { outputs = Self.filter(large, keep).outputs.count }
            XCTAssertEqual(outputs, 33)
            XCTAssertLessThan(t8, 16 * t1, "\(small.count) bytes: \(t1) s, \(large.count) bytes: \(t8) s")
        }
    }
}

extension JSONStreamFilterError {
    var expected: Expected? {
        if case .malformed(_, let expected) = self { return expected }
        return nil
    }

    var isOutputTooLarge: Bool {
        if case .outputTooLarge = self { return true }
        return false
    }
}
