import CFuzzerDriver
import FuzzSupport

/// The entry point SwiftPM links as `main`: hands over to libFuzzer's driver.
@_cdecl("FuzzAdmission_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cfuzzer_run(argc, argv)
}

let reviewer = AdmissionReviewer()

/// Arbitrary bytes as an AdmissionReview, through both endpoints: never a trap; every
/// answer is a well-formed AdmissionReview with the request's uid; /validate never
/// patches; a /mutate patch applies (evanphx v4 semantics) and mutating the result
/// yields no patch.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for endpoint in AdmissionEndpoint.allCases {
        guard case .answered(let body, _) = reviewer.review(bytes, at: endpoint) else { continue }
        guard let request = try? AdmissionRequest.decode(bytes) else {
            require(false, "answered a review that does not decode")
            continue
        }
        guard let answer = try? JSONReader.parse(body) else {
            require(false, "answer is not JSON")
            continue
        }
        let response = answer.root["response"]
        require(answer.root["kind"]?.string == "AdmissionReview", "kind")
        require(answer.root["apiVersion"]?.string == request.apiVersion.rawValue, "apiVersion")
        require(response?["uid"]?.string == request.uid, "uid")
        require(response?["allowed"]?.bool != nil, "allowed")
        guard let patchText = response?["patch"]?.string else {
            require(response?["patchType"] == nil, "patchType without patch")
            continue
        }
        require(endpoint == .mutate, "/validate returned a patch")
        require(response?["allowed"]?.bool == true, "/mutate denied")
        guard let patchBytes = base64Decode(patchText), let patch = try? JSONReader.parse(patchBytes),
              let object = request.object else {
            require(false, "patch is not base64 JSON, or there is no object")
            continue
        }
        var tree = Tree(object)
        for operation in patch.root.elements {
            require(operation["op"]?.string == "add", "only add")
            guard let pointer = operation["path"]?.string, let tokens = pointerTokens(pointer),
                  let value = operation["value"] else {
                require(false, "malformed operation")
                continue
            }
            require(tokens.first == "spec", "patch outside spec: \(pointer)")
            require(tree.add(tokens, Tree(value)), "patch does not apply at \(pointer)")
        }
        // Mutate the patched object again: nothing more to add.
        var patched = JSONWriter()
        writeTree(tree, &patched)
        guard let patchedObject = try? JSONReader.parse(patched.bytes) else {
            require(false, "patched object is not JSON")
            continue
        }
        let input = RuleInput(kind: StreamKind(group: request.group, kind: request.kind) ?? .connection,
                              operation: .create, object: patchedObject.root, oldObject: nil,
                              requestNamespace: request.namespace)
        require(reviewer.rules.mutate(input).patch.isEmpty, "mutation is not idempotent")
    }
    return 0
}

func writeTree(_ tree: Tree, _ w: inout JSONWriter) {
    switch tree {
    case .scalar(let text): w.raw(text.utf8)
    case .array(let elements):
        w.beginArray()
        for e in elements { writeTree(e, &w) }
        w.endArray()
    case .object(let members):
        w.beginObject()
        for (k, v) in members {
            w.key(k)
            writeTree(v, &w)
        }
        w.endObject()
    }
}
