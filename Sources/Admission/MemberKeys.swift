import JSON

/// The member names read from an AdmissionReview, prepared once: `request[.uid]`.
extension JSONKey {
    static let apiVersion: JSONKey = "apiVersion"
    static let group: JSONKey = "group"
    static let kind: JSONKey = "kind"
    static let metadata: JSONKey = "metadata"
    static let name: JSONKey = "name"
    static let request: JSONKey = "request"
    static let username: JSONKey = "username"
}
