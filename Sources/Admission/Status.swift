import JSON

/// `metav1.Status` bodies for answers that are not admission decisions. The
/// apiserver decodes such a body into the error it shows the user.
public enum Status {
    /// The `metav1.StatusReason` for an HTTP status code.
    static func reason(forCode code: Int) -> String {
        switch code {
        case 400: return "BadRequest"
        case 404: return "NotFound"
        case 405: return "MethodNotAllowed"
        case 408: return "Timeout"
        case 413, 431: return "RequestEntityTooLarge"
        case 415: return "UnsupportedMediaType"
        case 503: return "ServiceUnavailable"
        case 504: return "Timeout"
        default: return "InternalError"
        }
    }

    /// `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":...,"reason":...,"code":...}`
    public static func failureBody(code: Int, message: String) -> [UInt8] {
        var w = JSONWriter(capacity: 160 + message.utf8.count)
        w.beginObject()
        w.key("kind"); w.string("Status")
        w.key("apiVersion"); w.string("v1")
        w.key("metadata"); w.beginObject(); w.endObject()
        w.key("status"); w.string("Failure")
        w.key("message"); w.string(message)
        w.key("reason"); w.string(reason(forCode: code))
        w.key("code"); w.int(code)
        w.endObject()
        return w.bytes
    }
}
