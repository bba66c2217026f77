import Foundation
import JSON
import StreamRules
import XCTest

/// An object of `kind` in namespace `team-a` with the given spec (JSON text, or nil for none).
func object(_ kind: StreamKind, spec: String?, metadata: String = #""name":"obj","namespace":"team-a""#) -> JSONValue? {
    let specPart = spec.map { #","spec":\#($0)"# } ?? ""
    let text = #"{"apiVersion":"atlas.mongodb.com/v1","kind":"\#(kind.rawValue)","metadata":{\#(metadata)}\#(specPart)}"#
    do {
        return try JSONReader.parse(Array(text.utf8)).root
    } catch {
        XCTFail("bad test JSON \(error): \(text)")
        return nil
    }
}

func input(_ kind: StreamKind, _ spec: String?, operation: AdmissionOperation = .create, old: String? = nil,
           metadata: String = #""name":"obj","namespace":"team-a""#) -> RuleInput {
    let made = RuleInput(kind: kind, operation: operation, object: object(kind, spec: spec, metadata: metadata),
                         oldObject: old.flatMap { object(kind, spec: $0) }, requestNamespace: "team-a")
    PolicyCases.shared.note(made)
    return made
}

/// Every input the rule tests build is a case of Tests/Fixtures/policy-cases.jsonl, on
/// which the generated admission policy must agree with the rules
/// (AdmissionPolicyTests): a case a test adds fails here until the file has it
/// (`ASW_UPDATE_POLICY_CASES=1 swift test --filter StreamRulesTests` writes it anew).
final class PolicyCases: @unchecked Sendable {  // guarded by `lock`
    static let shared = PolicyCases()
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/policy-cases.jsonl").path

    private let lock = NSLock()
    private let updating = ProcessInfo.processInfo.environment["ASW_UPDATE_POLICY_CASES"] == "1"
    private var known: Set<String>
    private var written = false

    private init() {
        let text = updating ? "" : ((try? String(contentsOfFile: PolicyCases.path, encoding: .utf8)) ?? "")
        known = Set(text.split(separator: "\n").map(String.init))
    }

    func note(_ input: RuleInput, file: StaticString = #filePath, line: UInt = #line) {
        guard let object = input.object else { return }
        var w = JSONWriter()
        w.beginObject()
        w.key("kind"); w.string(input.kind.rawValue)
        w.key("operation"); w.string(input.operation.rawValue)
        w.key("namespace"); w.string(input.requestNamespace)
        w.key("object"); w.value(object)
        w.key("oldObject")
        if let old = input.oldObject { w.value(old) } else { w.null() }
        w.endObject()
        let entry = String(decoding: w.bytes, as: UTF8.self)
        lock.lock()
        defer { lock.unlock() }
        guard !known.contains(entry) else { return }
        guard updating else {
            return XCTFail("a rule test's case is not in Tests/Fixtures/policy-cases.jsonl; write it anew with "
                           + "ASW_UPDATE_POLICY_CASES=1 swift test --filter StreamRulesTests", file: file, line: line)
        }
        known.insert(entry)
        let mode = written ? "a" : "w"
        written = true
        guard let handle = fopen(PolicyCases.path, mode) else { return XCTFail("cannot write \(PolicyCases.path)") }
        fputs(entry + "\n", handle)
        fclose(handle)
    }
}

/// One expected error as `reason field: body`, the way tables read best.
func rendered(_ errors: [FieldError]) -> [String] {
    errors.map { "\($0.reason.rawValue) \($0.field): \($0.body)" }
}

/// The patch as `pointer=value` lines.
func rendered(_ patch: [PatchOperation]) -> [String] {
    patch.map { op in
        let pointer = JSONPointer.path(op.path)
        switch op.value {
        case .string(let s): return "\(pointer)=\(s)"
        case .object(let members):
            return "\(pointer)={" + members.map { key, value in
                if case .string(let s) = value { return "\(key):\(s)" }
                return "\(key):{...}"
            }.joined(separator: ",") + "}"
        }
    }
}

extension Decision {
    /// The warnings' texts, as the answer shows them.
    var warningTexts: [String] { warnings.map(\.message) }

    /// The findings of the rules that judge against the cluster.
    var clusterFindings: [RuleID] { findings.map(\.rule).filter { $0.rule.needsCluster } }
}
