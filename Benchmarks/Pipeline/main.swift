// Micro benchmarks of the request path without I/O: JSON reading, rules, the whole
// AdmissionReview pipeline, the HTTP parser. Release builds only; figures, not tests.
//
//   swift run -c release --package-path Benchmarks atlas-stream-webhook-benchmarks [--smoke] [--seconds S] [--filter TEXT]
//                                                        [--check-allocations]
//
// --check-allocations fails (exit 1) when a case allocates more per operation than its
// budget below: the allocation regression test, run by CI on a release build.
//
// Inputs: Tests/Fixtures/review-kafka.json (2.5 KB), and a 250 KB and a 2.2 MB review made
// here with the config map of the reviews Benchmarks/reviews.py writes for the load tests.
import Admission
import CAllocationCounter
import Glibc
import HTTPServer
import JSON
import StreamRules

let arguments = CommandLine.arguments
let smoke = arguments.contains("--smoke")
let secondsPerCase = arguments.firstIndex(of: "--seconds").flatMap { i in
    i + 1 < arguments.count ? Double(arguments[i + 1]) : nil
} ?? 1.0

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
    }
}

/// Allocations per operation each case may make (release build).
let allocationBudgets: [String: Int] = [
    "json read 2.5KB": 3, "pipeline /validate 2.5KB": 6, "pipeline /mutate 2.5KB": 6, "http parse 2.5KB": 4,
    "pipeline /validate 2.5KB lookups": 8, "pipeline /validate 2.5KB no lookups": 6,
    "json read 250KB": 3, "pipeline /validate 250KB": 6, "pipeline /mutate 250KB": 6,
    "json read 2.2MB": 3, "pipeline /validate 2.2MB": 6, "pipeline /mutate 2.2MB": 6,
]
let checkAllocations = arguments.contains("--check-allocations")
var overBudget: [String] = []

let filter = arguments.firstIndex(of: "--filter").flatMap { i in i + 1 < arguments.count ? arguments[i + 1] : nil }

/// The same for an operation on a prepared input (prepared only when the case runs).
@MainActor
func measure<Input>(_ name: String, bytes: Int, prepare: () -> Input?, _ body: (Input) -> Void) {
    if let filter, !name.contains(filter) { return }
    guard let input = prepare() else { return }
    measure(name, bytes: bytes) { body(input) }
}

/// Runs `body` repeatedly for about `secondsPerCase` (3 times with --smoke) and prints
/// time per operation, throughput and allocations per operation.
@MainActor
func measure(_ name: String, bytes: Int, _ body: () -> Void) {
    if let filter, !name.contains(filter) { return }
    body()  // warm up
    var iterations = 0
    let allocationsBefore = allocation_counter_value()
    let start = now()
    repeat {
        body()
        iterations += 1
    } while smoke ? iterations < 3 : now() - start < secondsPerCase
    let elapsed = now() - start
    let allocations = Double(allocation_counter_value() - allocationsBefore) / Double(iterations)
    if let budget = allocationBudgets[name], allocations > Double(budget) {
        overBudget.append("\(name): \(allocations) allocations per operation, budget \(budget)")
    }
    let perOp = elapsed / Double(iterations)
    let throughput = Double(bytes) / perOp / 1e6
    let time = perOp < 1e-3 ? "\(Int((perOp * 1e9).rounded())) ns" : "\((perOp * 1e6).rounded()) µs"
    print("\(pad(name, 34)) \(pad(time, 12)) "
          + "\(Int(throughput.rounded())) MB/s   \(Int(allocations.rounded())) allocations/op   (\(iterations) runs)")
}

func pad(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(0, width - text.count))
}

/// An UPDATE of a Kafka connection whose `config` map of `entries` 100-byte values is
/// unchanged, in object and oldObject: the config map of Benchmarks/reviews.py's reviews,
/// with less metadata around it (2.9 KB less).
func configMapReview(entries: Int) -> [UInt8] {
    var config = ""
    let value = String(repeating: "v", count: 100)
    for i in 0..<entries {
        let number = String(i)
        config += (i == 0 ? "" : ",") + "\"custom.property." + String(repeating: "0", count: max(0, 5 - number.count))
            + number + "\":\"" + value + "\""
    }
    let kind = #"{"group":"atlas.mongodb.com","version":"v1","kind":"AtlasStreamConnection"}"#
    let resource = #"{"group":"atlas.mongodb.com","version":"v1","resource":"atlasstreamconnections"}"#
    let object = #"{"apiVersion":"atlas.mongodb.com/v1","kind":"AtlasStreamConnection","#
        + #""metadata":{"name":"my-stream-connection","namespace":"default"},"#
        + #""spec":{"name":"my-stream-connection","type":"Kafka","kafkaConfig":{"bootstrapServers":"broker-1:9092,broker-2:9092","#
        + #""authentication":{"mechanism":"SCRAM-512","credentials":{"name":"ref-to-creds-secret","namespace":"default"}},"#
        + #""security":{"protocol":"SSL","certificate":{"name":"ref-to-certificate-secret","namespace":"default"}},"#
        + #""config":{"# + config + "}}}}"
    let review = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"#
        + #""uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":"# + kind + #","resource":"# + resource
        + #","name":"my-stream-connection","namespace":"default","operation":"UPDATE","#
        + #""userInfo":{"username":"kubernetes-admin"},"object":"# + object + #","oldObject":"# + object
        + #","dryRun":false}}"#
    return Array(review.utf8)
}

let root = String(#filePath.dropLast("Benchmarks/Pipeline/main.swift".count))
var inputs: [(String, [UInt8])] = []
if let kafka = readFile(root + "Tests/Fixtures/review-kafka.json") { inputs.append(("2.5KB", kafka)) }
inputs.append(("250KB", configMapReview(entries: 960)))
inputs.append(("2.2MB", configMapReview(entries: 9000)))
guard !inputs.isEmpty else {
    print("no input: Tests/Fixtures/review-kafka.json not found")
    exit(2)
}

let reviewer = AdmissionReviewer()
for (label, body) in inputs {
    measure("json read \(label)", bytes: body.count) { _ = try? JSONReader.parse(body) }
    let rulesInput: () -> RuleInput? = {
        guard let document = try? JSONReader.parse(body), let object = document.root["request"]?["object"] else { return nil }
        let old = document.root["request"]?["oldObject"]
        return RuleInput(kind: .connection, operation: old?.isObject == true ? .update : .create,
                         object: object, oldObject: old, requestNamespace: "default")
    }
    measure("rules validate \(label)", bytes: body.count, prepare: rulesInput) { _ = reviewer.rules.validate($0) }
    measure("rules mutate \(label)", bytes: body.count, prepare: rulesInput) { _ = reviewer.rules.mutate($0) }
    measure("pipeline /validate \(label)", bytes: body.count) { _ = reviewer.review(body, at: .validate) }
    measure("pipeline /mutate \(label)", bytes: body.count) { _ = reviewer.review(body, at: .mutate) }
    let request = Array("POST /validate?timeout=10s HTTP/1.1\r\nHost: atlas-stream-webhook.atlas-stream-webhook.svc:443\r\nContent-Type: application/json\r\nAccept: application/json, */*\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
    measure("http parse \(label)", bytes: request.count) {
        var parser = HTTPRequestParser()
        parser.append(request)
        _ = parser.next()
    }
}

/// The cluster 's memory figure (10,000 Secrets, 5,000 connections),
/// with the fixture's two Secrets labelled and complete: /validate with lookups on
/// (the snapshot read and every reference looked up) against the same without.
func clusterSnapshot() -> ClusterSnapshot {
    var snapshot = ClusterSnapshot()
    for i in 0..<10_000 {
        let namespace = "ns-\(i % 100)"
        snapshot.secrets[namespace, default: [:]]["secret-\(i)"] = SecretRecord(hasCredentialsLabel: i % 2 == 0)
        if i % 2 == 0 { snapshot.credentialKeys[namespace, default: [:]]["secret-\(i)"] = ["username", "password"] }
    }
    for i in 0..<5_000 {
        snapshot.connections["ns-\(i % 100)", default: [:]]["connection-\(i)"] = ConnectionRecord(specName: "connection-\(i)")
    }
    snapshot.secrets["default", default: [:]]["ref-to-creds-secret"] = SecretRecord(hasCredentialsLabel: true)
    snapshot.secrets["default", default: [:]]["ref-to-certificate-secret"] = SecretRecord(hasCredentialsLabel: true)
    snapshot.credentialKeys["default", default: [:]]["ref-to-creds-secret"] = ["username", "password"]
    snapshot.credentialKeys["default", default: [:]]["ref-to-certificate-secret"] = ["certificate"]
    return snapshot
}
if let kafka = inputs.first(where: { $0.0 == "2.5KB" })?.1 {
    // Both with the snapshot in memory (the heap it leaves behind slows malloc a little),
    // alternated so that neither gets the warmer machine.
    let snapshot = clusterSnapshot()
    let withLookups = AdmissionReviewer(cluster: { .ready(snapshot) })
    for _ in 0..<2 {
        measure("pipeline /validate 2.5KB no lookups", bytes: kafka.count) { _ = reviewer.review(kafka, at: .validate) }
        measure("pipeline /validate 2.5KB lookups", bytes: kafka.count) { _ = withLookups.review(kafka, at: .validate) }
    }
}

if checkAllocations {
    for line in overBudget { print("over budget: \(line)") }
    print("allocation budgets: \(overBudget.isEmpty ? "all met" : "\(overBudget.count) exceeded")")
    if !overBudget.isEmpty { exit(1) }
}
