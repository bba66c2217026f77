import JSON
import StreamRules

/// Writes the response AdmissionReview: same apiVersion, `response` only.
enum AdmissionResponseEncoder {
    static func encode(request: AdmissionRequest, kind: StreamKind?, decision: Decision) -> [UInt8] {
        if decision.allowed && decision.patch.isEmpty && decision.warnings.isEmpty {
            return plainAllowance(request)
        }
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key("apiVersion"); w.string(request.apiVersion.rawValue)
        w.key("kind"); w.string("AdmissionReview")
        w.key("response")
        w.beginObject()
        w.key("uid"); w.string(request.uid)
        w.key("allowed"); w.bool(decision.allowed)
        if !decision.patch.isEmpty {
            w.key("patchType"); w.string("JSONPatch")
            w.key("patch"); w.string(Base64.encode(patchBytes(decision.patch)))
        }
        switch decision.refusal {
        case .forbidden(let reason)?:
            w.key("status")
            writeForbidden(&w, request: request, kind: kind, reason: reason)
        case .unavailable(let message)?:
            w.key("status")
            writeUnavailable(&w, message: message)
        case nil:
            if !decision.allowed {
                w.key("status")
                writeDenial(&w, request: request, kind: kind, errors: decision.errors, omitted: decision.omittedErrorCount)
            }
        }
        let warnings = sanitizeWarnings(decision.warnings.map(\.message))
        if !warnings.isEmpty {
            w.key("warnings")
            w.beginArray()
            for warning in warnings { w.string(warning) }
            w.endArray()
        }
        w.endObject()
        w.endObject()
        return w.bytes
    }

    /// The most common answer, from a template: allowed, nothing else to say. The same
    /// bytes the general path writes.
    static func plainAllowance(_ request: AdmissionRequest) -> [UInt8] {
        var w = JSONWriter(capacity: 128 + request.uid.utf8.count)
        switch request.apiVersion {
        case .v1: w.fragment(#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#)
        case .v1beta1: w.fragment(#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","response":{"uid":"#)
        }
        w.string(request.uid)
        w.fragment(#","allowed":true}}"#)
        return w.bytes
    }

    /// The RFC 6902 array: `[{"op":"add","path":"/spec/x","value":...}]`.
    static func patchBytes(_ operations: [PatchOperation]) -> [UInt8] {
        var w = JSONWriter(capacity: 64 * operations.count)
        w.beginArray()
        for operation in operations {
            w.beginObject()
            w.key("op"); w.string("add")
            w.key("path"); w.string(JSONPointer.path(operation.path))
            w.key("value"); operation.value.write(to: &w)
            w.endObject()
        }
        w.endArray()
        return w.bytes
    }

    /// A 422 Invalid status with one cause per error, as the apiserver builds it.
    /// With `omitted` errors past those listed, the list ends with `and <N> more`.
    private static func writeDenial(_ w: inout JSONWriter, request: AdmissionRequest, kind: StreamKind?,
                                    errors: [FieldError], omitted: Int) {
        let kindName = kind?.rawValue ?? request.kind
        // Echoed like any value: at most 256 bytes (object names have at most 253).
        let name = echoed(request.object?[.metadata]?[.name]?.string ?? request.name)
        var items = errors.map(\.description)
        if omitted > 0 { items.append("and \(omitted) more") }
        let list = items.count == 1 ? items[0] : "[" + items.joined(separator: ", ") + "]"
        w.beginObject()
        w.key("metadata"); w.beginObject(); w.endObject()
        w.key("status"); w.string("Failure")
        w.key("message"); w.string("\(kindName).\(StreamKind.group) \"\(name)\" is invalid: \(list)")
        w.key("reason"); w.string("Invalid")
        w.key("details")
        w.beginObject()
        w.key("name"); w.string(name)
        w.key("group"); w.string(StreamKind.group)
        w.key("kind"); w.string(kindName)
        w.key("causes")
        w.beginArray()
        for error in errors {
            w.beginObject()
            w.key("reason"); w.string(error.reason.rawValue)
            w.key("message"); w.string(error.body)
            w.key("field"); w.string(error.field.description)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        w.key("code"); w.int(422)
        w.endObject()
    }

    /// A 403 Forbidden status, as the apiserver builds `NewForbidden`:
    /// `<Kind>.<group> "<name>" is forbidden: <reason>`.
    private static func writeForbidden(_ w: inout JSONWriter, request: AdmissionRequest, kind: StreamKind?, reason: String) {
        let kindName = kind?.rawValue ?? request.kind
        let name = echoed(request.oldObject?[.metadata]?[.name]?.string ?? request.name)
        w.beginObject()
        w.key("metadata"); w.beginObject(); w.endObject()
        w.key("status"); w.string("Failure")
        w.key("message"); w.string("\(kindName).\(StreamKind.group) \"\(name)\" is forbidden: \(reason)")
        w.key("reason"); w.string("Forbidden")
        w.key("details")
        w.beginObject()
        w.key("name"); w.string(name)
        w.key("group"); w.string(StreamKind.group)
        w.key("kind"); w.string(kindName)
        w.endObject()
        w.key("code"); w.int(403)
        w.endObject()
    }

    /// A 503 Service Unavailable status, as the apiserver builds `NewServiceUnavailable`.
    private static func writeUnavailable(_ w: inout JSONWriter, message: String) {
        w.beginObject()
        w.key("metadata"); w.beginObject(); w.endObject()
        w.key("status"); w.string("Failure")
        w.key("message"); w.string(message)
        w.key("reason"); w.string("ServiceUnavailable")
        w.key("code"); w.int(503)
        w.endObject()
    }

    /// At most this many warnings in one answer.
    static let maxWarnings = 20
    /// kube-apiserver truncates a warning past this many characters.
    static let maxWarningCharacters = 256

    /// Printable characters only, no empties, no duplicates, at most 20; a warning is cut
    /// only where it would pass 256 characters.
    static func sanitizeWarnings(_ warnings: [String]) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for warning in warnings {
            guard out.count < maxWarnings else { break }
            var clean = String.UnicodeScalarView()
            for scalar in warning.unicodeScalars where scalar.isPrintable {
                guard clean.count < maxWarningCharacters else { break }
                clean.append(scalar)
            }
            let text = String(clean)
            if !text.isEmpty && seen.insert(text).inserted { out.append(text) }
        }
        return out
    }
}
