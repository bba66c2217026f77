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
    RuleInput(kind: kind, operation: operation, object: object(kind, spec: spec, metadata: metadata),
              oldObject: old.flatMap { object(kind, spec: $0) }, requestNamespace: "team-a")
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
