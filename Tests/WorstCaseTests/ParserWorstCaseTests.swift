import HTTPServer
import JSON
import Manifests
import StreamRules
import XCTest
import YAML

/// The parsers and `check` on adversarial shapes at n and 8n.
final class ParserWorstCaseTests: XCTestCase {
    // MARK: - HTTP

    private static let limits = HTTPLimits(maxHeaderBytes: 1 << 20, maxHeaderFields: 1 << 20, maxBodyBytes: 64 << 20)

    /// Feeds `bytes` to a parser in pieces of `piece` bytes, answering every action.
    private static func parse(_ bytes: [UInt8], piece: Int) -> Int {
        var parser = HTTPRequestParser(limits: limits)
        var requests = 0
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + piece)
            bytes[offset..<end].withUnsafeBytes { parser.append($0) }
            offset = end
            loop: while true {
                switch parser.next() {
                case .request: requests += 1
                case .sendContinue: continue
                case .needMoreBytes, .reject: break loop
                }
            }
        }
        return requests
    }

    func testHTTPParserIsLinearForEveryShape() {
        let shapes: [(String, Int, Int, (Int) -> [UInt8])] = [
            ("many header fields", 2_000, 4096, { n in
                Array(("POST /validate HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-A: b\r\n", count: n) + "Content-Length: 0\r\n\r\n").utf8)
            }),
            ("a header section arriving a byte at a time", 2_000, 1, { n in
                Array(("POST /validate HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "v", count: n) + "\r\n\r\n").utf8)
            }),
            ("a body arriving a byte at a time", 20_000, 1, { n in
                Array("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: \(n)\r\n\r\n\(String(repeating: "b", count: n))".utf8)
            }),
            ("a chunked body of one-byte chunks", 5_000, 4096, { n in
                Array(("POST /validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "1\r\nb\r\n", count: n) + "0\r\n\r\n").utf8)
            }),
            ("pipelined requests", 2_000, 65_536, { n in
                Array(String(repeating: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", count: n).utf8)
            }),
            ("empty lines before a request line", 20_000, 1, { n in
                Array((String(repeating: "\r\n", count: n) + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").utf8)
            }),
        ]
        for (name, n, piece, make) in shapes {
            LinearCost.assertLinear(name, n: n, make: make) { bytes in _ = Self.parse(bytes, piece: piece) }
        }
    }

    // MARK: - JSON

    func testJSONReaderIsLinearForEveryShape() {
        let shapes: [(String, Int, (Int) -> [UInt8])] = [
            ("array of zeros", 50_000, { n in Array(("[" + Array(repeating: "0", count: n).joined(separator: ",") + "]").utf8) }),
            ("object with one key repeated", 20_000, { n in
                Array(("{" + Array(repeating: #""k":1"#, count: n).joined(separator: ",") + "}").utf8)
            }),
            ("string of escapes", 20_000, { n in Array(("\"" + String(repeating: #"\ud83d\ude00\n"#, count: n) + "\"").utf8) }),
            ("long number", 100_000, { n in Array(("-0." + String(repeating: "1", count: n) + "e-99999").utf8) }),
            ("nested to the depth limit, many times", 200, { n in
                Array(("[" + Array(repeating: String(repeating: "[", count: 500) + String(repeating: "]", count: 500), count: n)
                    .joined(separator: ",") + "]").utf8)
            }),
            ("unclosed nesting past the limit", 50_000, { n in Array(String(repeating: "[", count: n).utf8) }),
        ]
        for (name, n, make) in shapes {
            LinearCost.assertLinear(name, n: n, make: make) { bytes in _ = try? JSONReader.parse(bytes) }
        }
    }

    func testJSONEqualityIsLinearForEveryShape() throws {
        func pair(_ a: String, _ b: String) throws -> (JSONValue, JSONValue) {
            (try JSONReader.parse(Array(a.utf8)).root, try JSONReader.parse(Array(b.utf8)).root)
        }
        let shapes: [(String, Int, (Int) -> (JSONValue, JSONValue)?)] = [
            ("nested, differing at the leaf", 60, { d in
                try? pair(String(repeating: #"{"a":"#, count: d) + "1" + String(repeating: "}", count: d),
                          String(repeating: #"{"a":"#, count: d) + "2" + String(repeating: "}", count: d))
            }),
            ("nested with duplicate keys", 60, { d in
                try? pair(String(repeating: #"{"a":0,"a":"#, count: d) + "1" + String(repeating: "}", count: d),
                          String(repeating: #"{"a":"#, count: d) + "1" + String(repeating: #","a":0}"#, count: d))
            }),
            ("wide, reversed", 5_000, { n in
                let keys = (0..<n).map { #""k\#($0)":[\#($0)]"# }
                return try? pair("{" + keys.joined(separator: ",") + "}", "{" + keys.reversed().joined(separator: ",") + "}")
            }),
        ]
        for (name, n, make) in shapes {
            XCTAssertNotNil(make(n), name)
            LinearCost.assertLinear(name, n: n, make: make) { values in
                guard let (a, b) = values else { return }
                _ = a == b
            }
        }
    }

    // MARK: - YAML and check

    func testYAMLLoaderAndCheckAreLinearForEveryShape() {
        let shapes: [(String, Int, (Int) -> [UInt8])] = [
            ("many documents", 200, { n in
                Array(String(repeating: "---\napiVersion: atlas.mongodb.com/v1\nkind: AtlasStreamConnection\nmetadata: {name: c}\nspec: {name: sample_stream_solar, type: Sample}\n", count: n).utf8)
            }),
            ("a long flow sequence", 5_000, { n in Array(("k: [" + Array(repeating: "0", count: n).joined(separator: ", ") + "]\n").utf8) }),
            ("a long plain scalar", 50_000, { n in Array(("k: " + String(repeating: "a", count: n) + "\n").utf8) }),
            ("many keys", 5_000, { n in Array((0..<n).map { "k\($0): v\n" }.joined().utf8) }),
            ("block nesting to the limit, many times", 5, { n in
                Array((0..<n).map { i in "r\(i):\n" + (1..<400).map { String(repeating: " ", count: $0) + "a:\n" }.joined() + String(repeating: " ", count: 400) + "b: 1\n" }.joined().utf8)
            }),
            ("aliases of one anchor", 2_000, { n in
                Array(("a: &x [1, 2, 3]\nb: [" + Array(repeating: "*x", count: n).joined(separator: ", ") + "]\n").utf8)
            }),
            ("a kubectl List of objects to default", 200, { n in
                Array(("apiVersion: v1\nkind: List\nitems:\n" + String(repeating: "- {apiVersion: atlas.mongodb.com/v1, kind: AtlasStreamConnection, metadata: {name: c, namespace: t}, spec: {name: k, type: Kafka, kafkaConfig: {bootstrapServers: 'b:9092', authentication: {mechanism: PLAIN, credentials: {name: c}}, security: {protocol: SSL, certificate: {name: c}}}}}\n", count: n)).utf8)
            }),
            ("a registry whose every entry is defaulted", 500, { n in
                Array(("apiVersion: atlas.mongodb.com/v1\nkind: AtlasStreamInstance\nmetadata: {name: i, namespace: t}\nspec:\n  connectionRegistry:\n" + String(repeating: "  - {name: c}\n", count: n)).utf8)
            }),
            ("an invalid connection with many errors", 20, { n in
                Array(String(repeating: "---\napiVersion: atlas.mongodb.com/v1\nkind: AtlasStreamInstance\nmetadata: {name: i, namespace: t}\nspec:\n  connectionRegistry:\n" + String(repeating: "  - {name: Bad_Name, namespace: NS_}\n", count: 200), count: n).utf8)
            }),
        ]
        let checker = ManifestChecker(rules: StreamRules())
        for (name, n, make) in shapes {
            LinearCost.assertLinear("YAML: " + name, n: n, make: make) { bytes in _ = try? YAMLLoader.load(bytes) }
            LinearCost.assertLinear("check: " + name, n: n, make: make) { bytes in _ = checker.check(file: "x.yaml", bytes: bytes) }
        }
    }
}
