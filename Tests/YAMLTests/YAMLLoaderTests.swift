import Foundation
import JSON
import XCTest
@testable import YAML

private func load(_ text: String, limits: YAMLLimits = YAMLLimits()) throws -> [YAMLDocument] {
    try YAMLLoader.load(Array(text.utf8), limits: limits)
}

/// Compact JSON of a value, for comparisons.
private func json(_ value: JSONValue) -> String {
    var w = JSONWriter()
    w.value(value)
    return String(decoding: w.bytes, as: UTF8.self)
}

private func loadError(_ text: String, limits: YAMLLimits = YAMLLimits()) -> YAMLError? {
    do {
        _ = try load(text, limits: limits)
        return nil
    } catch {
        return error as? YAMLError
    }
}

final class YAMLLoaderTests: XCTestCase {
    func testAKOExampleWithMarks() throws {
        let text = """
        apiVersion: atlas.mongodb.com/v1
        kind: AtlasStreamConnection
        metadata:
          name: my-stream-connection
        spec:
          name: my-stream-connection
          type: Kafka
          kafkaConfig:
            bootstrapServers: "broker-1:9092,broker-2:9092"
            authentication:
              mechanism: SCRAM-512
              credentials:
                name: ref-to-creds-secret
            security:
              protocol: SSL
              certificate:
                name: ref-to-certificate-secret
        """
        let docs = try load(text)
        XCTAssertEqual(docs.count, 1)
        let root = docs[0].value
        XCTAssertEqual(root["spec"]?["kafkaConfig"]?["authentication"]?["mechanism"]?.string, "SCRAM-512")
        let bootstrap = try XCTUnwrap(root["spec"]?["kafkaConfig"]?["bootstrapServers"])
        XCTAssertEqual(docs[0].mark(of: bootstrap), YAMLMark(line: 9, column: 23))
        XCTAssertEqual(docs[0].mark(of: try XCTUnwrap(root["spec"])), YAMLMark(line: 6, column: 3))
        XCTAssertEqual(docs[0].start, YAMLMark(line: 1, column: 1))
    }

    func testMultiDocumentStreamsAndJSONInput() throws {
        let docs = try load("a: 1\n---\n# only a comment\n---\n[1, 2]\n---\n{\"k\": \"v\", \"n\": 1.5}\n")
        XCTAssertEqual(docs.map { json($0.value) }, [#"{"a":1}"#, "null", "[1,2]", #"{"k":"v","n":1.5}"#])
        XCTAssertEqual(docs[2].start.line, 5)
    }

    func testYAML11ScalarTable() throws {
        let cases: [(String, String)] = [
            ("yes", "true"), ("Yes", "true"), ("YES", "true"), ("y", "true"), ("on", "true"), ("ON", "true"),
            ("true", "true"), ("True", "true"), ("no", "false"), ("N", "false"), ("off", "false"), ("FALSE", "false"),
            ("~", "null"), ("null", "null"), ("Null", "null"), ("", "null"),
            ("42", "42"), ("-17", "-17"), ("+5", "5"), ("0x1F", "31"), ("0o17", "15"), ("017", "15"), ("0b101", "5"),
            ("1_000", "1000"), ("1.5", "1.5"), ("1.0", "1"), ("1e3", "1000"), ("-2.5e-3", "-0.0025"), (".5", "0.5"),
            ("\"yes\"", #""yes""#), ("'42'", #""42""#), ("!!str 42", #""42""#), ("\"\"", #""""#),
            ("hello", #""hello""#), ("1.2.3", #""1.2.3""#), ("0x", #""0x""#), ("12:30", #""12:30""#),
            ("2026-11-29", #""2026-11-29""#), ("Yess", #""Yess""#),
        ]
        for (scalar, expected) in cases {
            let docs = try load("k: \(scalar)\n")
            let value = try XCTUnwrap(docs.first?.value["k"], scalar)
            XCTAssertEqual(json(value), expected, scalar)
        }
        XCTAssertThrowsError(try load("k: .inf\n")) { error in
            XCTAssertEqual((error as? YAMLError)?.reason, .unsupportedValue(".inf"))
        }
    }

    func testKeysAreStringsAndDuplicatesAreRefused() throws {
        XCTAssertEqual(json(try load("1: a\ntrue: b\n")[0].value), #"{"1":"a","true":"b"}"#)
        let duplicate = loadError("spec:\n  name: a\n  type: Kafka\n  name: b\n")
        XCTAssertEqual(duplicate, YAMLError(.duplicateKey("name"), at: YAMLMark(line: 4, column: 3)))
        XCTAssertEqual(loadError("? [a]\n: b\n")?.reason, .unsupportedKey)
    }

    func testAnchorsAndAliases() throws {
        let docs = try load("base: &b {x: 1, y: [a, b]}\ncopy: *b\nname: &n hello\nother: *n\n*n : keyed\n")
        XCTAssertEqual(json(docs[0].value), #"{"base":{"x":1,"y":["a","b"]},"copy":{"x":1,"y":["a","b"]},"name":"hello","other":"hello","hello":"keyed"}"#)
        XCTAssertEqual(loadError("a: *missing\n")?.reason, .unknownAlias("missing"))
        XCTAssertEqual(loadError("a: &x [1, *x]\n")?.reason, .unknownAlias("x"), "a node cannot contain itself")
    }

    func testBillionLaughsIsRefusedQuickly() throws {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1...9 {
            text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let start = Date()
        let before = peakResidentKiB()
        XCTAssertEqual(loadError(text)?.reason, .aliasBudgetExceeded(limit: 100_000))
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
        XCTAssertLessThan(peakResidentKiB() - before, 64 * 1024, "expansion stops at the budget, not at a billion nodes")
    }

    func testDeepNestingStopsAtTheLimit() throws {
        XCTAssertNoThrow(try load(String(repeating: "[", count: 512) + String(repeating: "]", count: 512)))
        let start = Date()
        let deep = String(repeating: "[", count: 40_000)
        XCTAssertEqual(loadError(deep)?.reason, .tooDeep(limit: 512))
        let block = (0..<600).map { String(repeating: "  ", count: $0) + "k:" }.joined(separator: "\n")
        XCTAssertEqual(loadError(block)?.reason, .tooDeep(limit: 512))
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0, "refused early, not after parsing everything")
        XCTAssertEqual(loadError("[[[1]]]", limits: YAMLLimits(maxDepth: 2))?.reason, .tooDeep(limit: 2))
    }

    func testSyntaxErrorsCarryLineAndColumn() {
        let error = loadError("a: 1\nb: [1, 2\nc: 3\n")
        guard case .syntax(let message)? = error?.reason else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(message.contains("flow sequence"), message)
        XCTAssertEqual(error?.mark.line, 3)
        let tab = loadError("a:\n\tb: 1\n")
        XCTAssertEqual(tab?.mark, YAMLMark(line: 2, column: 1))
        XCTAssertEqual(loadError("key: \"unterminated\n")?.mark.line, 2)
    }

    func testEmitterRoundTripsAndQuotesAmbiguousStrings() throws {
        let source = try JSONReader.parse(Array(#"{"a":"yes","b":"5","c":"","d":"null","e":"plain text","f":5,"g":true,"h":null,"i":{},"j":[],"k":["x",{"y":"1.5"}],"l":"multi\nline","m":"a: b"}"#.utf8))
        let yaml = YAMLEmitter.emit([source.root, source.root])
        let text = String(decoding: yaml, as: UTF8.self)
        XCTAssertTrue(text.contains("a: \"yes\""), text)
        XCTAssertTrue(text.contains("e: plain text"), text)
        XCTAssertTrue(text.contains("\n---"), text)
        let back = try YAMLLoader.load(yaml)
        XCTAssertEqual(back.count, 2)
        XCTAssertEqual(json(back[0].value), json(source.root))
        XCTAssertEqual(json(back[1].value), json(source.root))
    }
}

/// The process's peak resident set so far, in KiB.
private func peakResidentKiB() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss
}
