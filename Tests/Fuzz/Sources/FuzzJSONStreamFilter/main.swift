import CFuzzerDriver
import FuzzSupport

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzJSONStreamFilter_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

/// The keep trees tried: what the cluster cache keeps of a LIST page of Secrets and of a
/// watch event, and other shapes. Built for each input rather than held in a global: the
/// boxes of an indirect enum in a global look leaked to LeakSanitizer.
let keepCount = 7
func keepTree(_ index: Int) -> JSONKeep {
    let secret: [String: JSONKeep] = [
        "metadata": .members([
            "name": .all, "namespace": .all, "uid": .all, "resourceVersion": .all, "deletionTimestamp": .all,
            "labels": .members(["atlas.mongodb.com/type": .all]),
        ]),
        "data": .memberNames,
    ]
    switch index {
    case 0: return .members(["metadata": .members(["resourceVersion": .all, "continue": .all]), "items": .records(.members(secret))])
    case 1: return .members(["type": .all, "object": .members(secret.merging(["code": .all, "reason": .all, "message": .all]) { a, _ in a })])
    case 2: return .all
    case 3: return .memberNames
    case 4: return .records(.records(.members(["a": .all, "b": .memberNames])))
    case 5: return .elements(.members(["a": .elements(.all), "b": .records(.all), "": .all]))
    default: return .members([:])
    }
}
let limits = [8, 64, 4096, 1 << 20]
let maxDepth = 64

struct Outcome: Equatable {
    var outputs: [JSONFilterOutput] = []
    var error: JSONStreamFilterError?
}

/// Filters `body` fed in pieces that end at `cuts` (ascending), then finishes.
func filter(_ body: UnsafeRawBufferPointer, _ keep: JSONKeep, _ limit: Int, cuts: [Int]) -> Outcome {
    var filter = JSONStreamFilter(keep: keep, maxOutputBytes: limit, maxDepth: maxDepth)
    var outcome = Outcome()
    var start = 0
    for end in cuts + [body.count] where end >= start {
        do throws(JSONStreamFilterError) {
            try filter.feed(UnsafeRawBufferPointer(rebasing: body[start..<end])) { outcome.outputs.append($0) }
        } catch {
            outcome.error = error
            return outcome
        }
        start = end
    }
    do throws(JSONStreamFilterError) {
        try filter.finish { outcome.outputs.append($0) }
    } catch {
        outcome.error = error
    }
    return outcome
}

/// What the filter should hand out, computed from the parsed document.
func reference(_ value: JSONValue, _ keep: JSONKeep, _ writer: inout JSONWriter, _ records: inout [[UInt8]]) {
    switch keep {
    case .all:
        writer.value(value)
    case .members(let members):
        switch value.kind {
        case .object:
            writer.beginObject()
            for (key, member) in value.members {
                // Names match on raw bytes: a key written with escapes is longer than its text.
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

/// Arbitrary bytes through the stream filter: three header bytes choose the keep tree,
/// the output limit and a cut; the rest is the stream. Never a trap; the same outputs and
/// the same error whole, cut in two, and (when short) byte by byte; every output is JSON;
/// and when the stream is one JSON document, the outputs are what a filter over the
/// parsed document gives.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 3 else { return 0 }
    let keep = keepTree(Int(data[0]) % keepCount)
    let limit = limits[Int(data[1]) & 3]
    let body = UnsafeRawBufferPointer(start: data + 3, count: size - 3)
    let cut = (Int(data[1] >> 2) << 8 | Int(data[2])) % (body.count + 1)

    let whole = filter(body, keep, limit, cuts: [])
    require(filter(body, keep, limit, cuts: [cut]) == whole, "cut at \(cut) changed the outcome")
    if body.count <= 512 {
        require(filter(body, keep, limit, cuts: Array(0..<body.count)) == whole, "byte by byte changed the outcome")
    }
    for output in whole.outputs {
        let bytes: [UInt8]
        switch output {
        case .record(let b), .document(let b): bytes = b
        }
        require(bytes.count <= limit, "an output of \(bytes.count) bytes passes the limit of \(limit)")
        require((try? JSONReader.parse(bytes)) != nil, "output is not JSON: \(String(decoding: bytes, as: UTF8.self))")
    }

    guard let document = try? JSONReader.parse(Array(body), maxDepth: maxDepth) else { return 0 }
    var writer = JSONWriter()
    var records: [[UInt8]] = []
    reference(document.root, keep, &writer, &records)
    if case .outputTooLarge = whole.error { return 0 }
    require(whole.error == nil, "valid JSON rejected: \(String(describing: whole.error))")
    let expected = records.map(JSONFilterOutput.record) + [.document(writer.bytes)]
    require(whole.outputs.count == expected.count, "\(whole.outputs.count) outputs, \(expected.count) expected")
    for (got, want) in zip(whole.outputs, expected) {
        switch (got, want) {
        case (.record(let a), .record(let b)), (.document(let a), .document(let b)):
            let same = (try? JSONReader.parse(a).root == JSONReader.parse(b).root) ?? false
            require(same, "\(String(decoding: a, as: UTF8.self)) instead of \(String(decoding: b, as: UTF8.self))")
        default:
            require(false, "a record where a document was expected, or the reverse")
        }
    }
    return 0
}
