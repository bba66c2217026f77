import JSON

/// The member names read from an AdmissionReview, and the values it is compared with,
/// prepared once (those of every object, `metadata`, `name` and `namespace`, are the
/// rules'): `request[.uid]`, `root[.kind]?.isString(.admissionReview)`.
extension JSONKey {
    static let apiVersion: JSONKey = "apiVersion"
    static let group: JSONKey = "group"
    static let kind: JSONKey = "kind"
    static let request: JSONKey = "request"
    static let username: JSONKey = "username"
    static let uid: JSONKey = "uid"
    static let operation: JSONKey = "operation"
    static let subResource: JSONKey = "subResource"
    static let object: JSONKey = "object"
    static let oldObject: JSONKey = "oldObject"
    static let userInfo: JSONKey = "userInfo"
    static let dryRun: JSONKey = "dryRun"

    // String values compared with `isString(_:)`.
    static let admissionReview: JSONKey = "AdmissionReview"
    static let admissionV1: JSONKey = "admission.k8s.io/v1"
    static let admissionV1beta1: JSONKey = "admission.k8s.io/v1beta1"
    static let streamGroup: JSONKey = "atlas.mongodb.com"
    static let streamConnection: JSONKey = "AtlasStreamConnection"
    static let streamInstance: JSONKey = "AtlasStreamInstance"
}
