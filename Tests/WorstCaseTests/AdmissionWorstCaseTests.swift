import Admission
import JSON
import StreamRules
import XCTest

/// An AdmissionReview of `kind` with `object` and, for UPDATE, `oldObject` (JSON text).
private func review(_ kind: String, operation: String = "CREATE", object: String, old: String? = nil,
                    extra: String = "") -> [UInt8] {
    let oldPart = old.map { #","oldObject":\#($0)"# } ?? ""
    return Array(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"atlas.mongodb.com","version":"v1","kind":"\#(kind)"},"operation":"\#(operation)","namespace":"team-a","userInfo":{"username":"u"}\#(extra),"object":\#(object)\#(oldPart)}}"#.utf8)
}

private func connection(_ spec: String) -> String {
    #"{"apiVersion":"atlas.mongodb.com/v1","kind":"AtlasStreamConnection","metadata":{"name":"c","namespace":"team-a"},"spec":\#(spec)}"#
}

private func instance(_ spec: String) -> String {
    #"{"apiVersion":"atlas.mongodb.com/v1","kind":"AtlasStreamInstance","metadata":{"name":"i","namespace":"team-a"},"spec":\#(spec)}"#
}

private func kafka(servers: String = "b:9092", config: String = "{}") -> String {
    #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"\#(servers)","authentication":{"mechanism":"SCRAM-256","credentials":{"name":"c"}},"security":{"protocol":"SSL","certificate":{"name":"t"}},"config":\#(config)}}"#
}

private func registry(_ entries: String) -> String {
    #"{"name":"i","clusterConfig":{"region":"VIRGINIA_USA"},"projectRef":{"name":"p"},"connectionRegistry":[\#(entries)]}"#
}

/// Every shape of the linear-cost issue, through the whole review (JSON, rules, answer)
/// on both endpoints, at n and 8n: the cost stays linear and the answer bounded.
final class AdmissionWorstCaseTests: XCTestCase {
    let reviewer = AdmissionReviewer()

    /// The shapes, each a body builder for a size. Sizes give bodies of a few KB to a
    /// few hundred KB at n (debug builds are slow), 8 times that at 8n.
    static let shapes: [(name: String, n: Int, make: @Sendable (Int) -> [UInt8])] = [
        ("UPDATE nested objects differing at the leaf", 60, { depth in
            let nested = { (leaf: String) in String(repeating: #"{"a":"#, count: depth) + leaf + String(repeating: "}", count: depth) }
            return review("AtlasStreamConnection", operation: "UPDATE", object: connection(nested("1")), old: connection(nested("2")))
        }),
        ("UPDATE nested objects, members reordered at every level", 60, { depth in
            let a = String(repeating: #"{"z":0,"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
            let b = String(repeating: #"{"a":"#, count: depth) + "2" + String(repeating: #","z":0}"#, count: depth)
            return review("AtlasStreamConnection", operation: "UPDATE", object: connection(a), old: connection(b))
        }),
        ("UPDATE wide spec, members reversed, one value changed", 2_000, { n in
            let keys = (0..<n).map { #""k\#($0)":\#($0)"# }
            return review("AtlasStreamConnection", operation: "UPDATE", object: connection("{" + keys.joined(separator: ",") + #","x":1}"#),
                          old: connection("{" + keys.reversed().joined(separator: ",") + #","x":2}"#))
        }),
        ("UPDATE nested arrays differing at the end", 60, { depth in
            let nested = { (leaf: String) in String(repeating: "[0,", count: depth) + leaf + String(repeating: "]", count: depth) }
            return review("AtlasStreamConnection", operation: "UPDATE", object: connection(nested("1")), old: connection(nested("2")))
        }),
        ("bootstrapServers a,a,a,...", 20_000, { n in
            review("AtlasStreamConnection", object: connection(kafka(servers: String(repeating: "a,", count: n / 2) + "a")))
        }),
        ("bootstrapServers of distinct valid servers", 2_000, { n in
            review("AtlasStreamConnection", object: connection(kafka(servers: (0..<n).map { "h\($0):9092" }.joined(separator: ","))))
        }),
        ("one huge invalid bootstrap server", 50_000, { n in
            review("AtlasStreamConnection", object: connection(kafka(servers: String(repeating: "x", count: n) + ":1:2")))
        }),
        ("config with one key repeated", 2_000, { n in
            review("AtlasStreamConnection", object: connection(kafka(config: "{" + Array(repeating: #""sasl.password":"x""#, count: n).joined(separator: ",") + "}")))
        }),
        ("config keys with escapes", 2_000, { n in
            review("AtlasStreamConnection", object: connection(kafka(config: "{" + (0..<n).map { #""sasl\u002e\#($0)":"x""# }.joined(separator: ",") + "}")))
        }),
        ("registry entries with invalid names", 100, { n in
            review("AtlasStreamInstance", object: instance(registry((0..<n).map { #"{"name":"Bad_\#($0)","namespace":"NS_\#($0)"}"# }.joined(separator: ","))))
        }),
        ("registry over the entry limit", 2_000, { n in
            review("AtlasStreamInstance", object: instance(registry((0..<n).map { #"{"name":"c\#($0)"}"# }.joined(separator: ","))))
        }),
        ("spec with one member repeated", 2_000, { n in
            review("AtlasStreamConnection", object: connection("{" + Array(repeating: #""name":"x""#, count: n).joined(separator: ",") + #","type":"Sample"}"#))
        }),
        ("array of zeros beside the request", 20_000, { n in
            review("AtlasStreamConnection", object: connection(kafka()), extra: #","options":["# + Array(repeating: "0", count: n).joined(separator: ",") + "]")
        }),
        ("long string of escapes", 5_000, { n in
            review("AtlasStreamConnection", object: connection(#"{"name":""# + String(repeating: #"\u00e9\n"#, count: n) + #"","type":"Sample"}"#))
        }),
        ("many annotations", 2_000, { n in
            let annotations = (0..<n).map { #""a\#($0)":"v""# }.joined(separator: ",")
            return review("AtlasStreamConnection", object: #"{"metadata":{"name":"c","annotations":{\#(annotations)}},"spec":\#(kafka())}"#)
        }),
        ("deep arrays at the nesting limit", 60, { depth in
            review("AtlasStreamConnection", object: connection(kafka()), extra: #","options":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        }),
    ]

    func testEveryShapeCostsLinearTimeOnBothEndpoints() {
        for shape in Self.shapes {
            for endpoint in AdmissionEndpoint.allCases {
                LinearCost.assertLinear("\(shape.name) on \(endpoint.path)", n: shape.n, make: shape.make) { body in
                    _ = reviewer.review(body, at: endpoint)
                }
            }
        }
    }

    /// At 8n every answer without a patch is at most 256 KiB, lists at most 100 causes,
    /// and a patch grows at most linearly with the body (a registry entry of 14 bytes
    /// gets an `add` of its namespace, about 100 bytes in base64).
    func testEveryShapeGetsABoundedAnswer() throws {
        for shape in Self.shapes {
            let body = shape.make(shape.n * LinearCost.growth)
            for endpoint in AdmissionEndpoint.allCases {
                guard case .answered(let answer, _) = reviewer.review(body, at: endpoint) else {
                    XCTAssertEqual(shape.name, "deep arrays at the nesting limit", "only the over-deep body is a 400")
                    continue
                }
                let text = String(decoding: answer, as: UTF8.self)
                if text.contains(#""patch":"#) {
                    XCTAssertLessThanOrEqual(answer.count, 10 * body.count, "\(shape.name): patch of \(answer.count) bytes")
                } else {
                    XCTAssertLessThanOrEqual(answer.count, 256 * 1024, "\(shape.name) on \(endpoint.path)")
                }
                XCTAssertLessThanOrEqual(text.components(separatedBy: #""reason":"FieldValue"#).count - 1, 100, shape.name)
            }
        }
    }

    /// The reference rules  against a cache: a registry whose entries are
    /// all missing (a warning each, 20 kept), all present with one shared spec.name (an
    /// error each, 100 kept), and Secret names of a megabyte, all in linear time.
    func testReferenceRulesAreLinear() {
        var snapshot = ClusterSnapshot()
        for i in 0..<1_000 { snapshot.connections["team-a", default: [:]]["same\(i)"] = ConnectionRecord(specName: "one") }
        let withCache = AdmissionReviewer(cluster: { [snapshot] in .ready(snapshot) })
        LinearCost.assertLinear("registry entries not found", n: 120, make: { n in
            review("AtlasStreamInstance", object: instance(registry((0..<n).map { #"{"name":"ghost\#($0)"}"# }.joined(separator: ","))))
        }, run: { body in _ = withCache.review(body, at: .validate) })
        LinearCost.assertLinear("registry entries with one spec.name", n: 120, make: { n in
            review("AtlasStreamInstance", object: instance(registry((0..<n).map { #"{"name":"same\#($0)"}"# }.joined(separator: ","))))
        }, run: { body in _ = withCache.review(body, at: .validate) })
        LinearCost.assertLinear("Secret name length", n: 64 * 1024, make: { n in
            let name = String(repeating: "s", count: n)
            return review("AtlasStreamConnection", object: connection(
                #"{"name":"k","type":"Kafka","kafkaConfig":{"bootstrapServers":"b:9092","authentication":{"mechanism":"SCRAM-256","credentials":{"name":"\#(name)"}},"security":{"protocol":"SSL","certificate":{"name":"\#(name)"}}}}"#))
        }, run: { body in _ = withCache.review(body, at: .validate) })
        // DELETE scans the cache's instances once, whatever the request.
        guard case .answered(let answer, _) = withCache.review(
            review("AtlasStreamConnection", operation: "DELETE", object: "null"), at: .validate) else { return XCTFail("no answer") }
        XCTAssertLessThan(answer.count, 1024)
    }

    /// The defaults of a large registry: one patch operation per entry, built in linear time.
    func testMutatingALargeRegistryIsLinear() {
        LinearCost.assertLinear("registry defaults", n: 500, make: { n in
            review("AtlasStreamInstance", object: instance(registry((0..<n).map { #"{"name":"c\#($0)"}"# }.joined(separator: ","))))
        }, run: { body in _ = reviewer.review(body, at: .mutate) })
    }
}
