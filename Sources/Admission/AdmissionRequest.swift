import Glibc
import JSON
import StreamRules

/// The AdmissionReview versions the apiserver may send; the answer uses the same.
public enum AdmissionAPIVersion: String, Sendable {
    case v1 = "admission.k8s.io/v1"
    case v1beta1 = "admission.k8s.io/v1beta1"
}

/// Which webhook a review arrived at.
public enum AdmissionEndpoint: String, Sendable, CaseIterable {
    case mutate
    case validate

    public var path: String { "/" + rawValue }
}

/// Why a body is not a usable AdmissionReview (answered with HTTP 400).
public enum AdmissionDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    case notJSON(JSONError)
    case notAnAdmissionReview
    case unknownAPIVersion(String)
    case missingRequest
    case missingUID
    case badRequestField(String)

    public var description: String {
        switch self {
        case .notJSON(let error): return "request body is not valid JSON: \(error)"
        case .notAnAdmissionReview: return "request body is not an AdmissionReview"
        case .unknownAPIVersion(let version):
            return "unsupported AdmissionReview apiVersion \"\(version)\"; supported: admission.k8s.io/v1, admission.k8s.io/v1beta1"
        case .missingRequest: return "AdmissionReview has no request"
        case .missingUID: return "AdmissionReview request has no uid"
        case .badRequestField(let why): return why
        }
    }
}

/// The longest `request.uid` answered (it is echoed; kube-apiserver sends UUIDs).
let maxUIDBytes = 256

/// The parts of `AdmissionReview.request` this server uses.
public struct AdmissionRequest: Sendable {
    public var apiVersion: AdmissionAPIVersion
    public var uid: String
    public var group: String
    public var kind: String
    public var subResource: String?
    public var operation: String
    public var namespace: String
    public var name: String
    public var object: JSONValue?
    public var oldObject: JSONValue?
    public var dryRun: Bool
    /// `request.userInfo`; the user name is read from it only when asked (it goes into
    /// log lines, which most reviews do not write).
    public var userInfo: JSONValue?

    /// `request.userInfo.username`, or "" (made on each call).
    public var username: String { userInfo?[.username]?.string ?? "" }

    /// Decodes a review body. Only the fields above are read; the rest (managedFields,
    /// annotations, options) is validated as JSON and otherwise ignored.
    public static func decode(_ body: [UInt8], maxDepth: Int = JSONReader.defaultMaxDepth) throws(AdmissionDecodingError) -> AdmissionRequest {
        let document: JSONDocument
        do {
            document = try JSONReader.parse(body, maxDepth: maxDepth)
        } catch {
            throw .notJSON(error)
        }
        let root = document.root
        guard root.isObject, root[.kind]?.isString(.admissionReview) == true else { throw .notAnAdmissionReview }
        guard let versionValue = root[.apiVersion], versionValue.kind == .string else { throw .notAnAdmissionReview }
        let version: AdmissionAPIVersion
        if versionValue.isString(.admissionV1) {
            version = .v1
        } else if versionValue.isString(.admissionV1beta1) {
            version = .v1beta1
        } else {
            throw .unknownAPIVersion(versionValue.string ?? "")
        }
        guard let request = root[.request], request.isObject else { throw .missingRequest }
        let members = RequestMembers(request)
        guard let uid = members.uid?.string, !uid.isEmpty else { throw .missingUID }
        // The uid is echoed in the answer; the apiserver's are UUIDs (36 bytes).
        guard uid.utf8.count <= maxUIDBytes else { throw .badRequestField("AdmissionReview request.uid is longer than \(maxUIDBytes) bytes") }
        guard let kind = members.kind, kind.isObject,
              let kindName = interned(kind[.kind], (.streamConnection, StreamKind.connection.rawValue), (.streamInstance, StreamKind.instance.rawValue)) else {
            throw .badRequestField("AdmissionReview request.kind must be an object with a string kind")
        }
        guard let operation = members.operation?.string else {
            throw .badRequestField("AdmissionReview request.operation must be a string")
        }
        func optionalString(_ value: JSONValue?, _ key: String) throws(AdmissionDecodingError) -> String? {
            guard let value, !value.isNull else { return nil }
            guard let text = value.string else {
                throw .badRequestField("AdmissionReview request.\(key) must be a string")
            }
            return text
        }
        let subResource = try optionalString(members.subResource, "subResource")
        let namespace = try optionalString(members.namespace, "namespace") ?? ""
        let name = try optionalString(members.name, "name") ?? ""
        let object = members.object.flatMap { $0.isNull ? nil : $0 }
        let oldObject = members.oldObject.flatMap { $0.isNull ? nil : $0 }
        let dryRun = members.dryRun?.bool ?? false
        return AdmissionRequest(apiVersion: version, uid: uid, group: interned(kind[.group], (.streamGroup, StreamKind.group)) ?? "", kind: kindName,
                                subResource: subResource.flatMap { $0.isEmpty ? nil : $0 }, operation: operation,
                                namespace: namespace, name: name, object: object, oldObject: oldObject,
                                dryRun: dryRun, userInfo: members.userInfo)
    }
}

/// A string member's text; when it is one of `known`, that String itself, so the group
/// and kind of the reviews this server judges are not copied out (an allocation each:
/// they are longer than a String holds inline).
private func interned(_ value: JSONValue?, _ known: (JSONKey, String), _ alsoKnown: (JSONKey, String)? = nil) -> String? {
    guard let value else { return nil }
    if value.isString(known.0) { return known.1 }
    if let alsoKnown, value.isString(alsoKnown.0) { return alsoKnown.1 }
    return value.string
}

/// The members of `AdmissionReview.request` that are read, found in one pass over its
/// members (the last of duplicate keys winning, as with a lookup by key).
private struct RequestMembers {
    var uid, kind, operation, subResource, namespace, name, object, oldObject, userInfo, dryRun: JSONValue?

    init(_ request: JSONValue) {
        request.forEachMember { key, value in
            @inline(__always) func matches(_ word: StaticString) -> Bool {
                guard key.count == word.utf8CodeUnitCount, let bytes = key.baseAddress else { return false }
                return memcmp(bytes, word.utf8Start, key.count) == 0
            }
            switch key.count {
            case 3: if matches("uid") { uid = value }
            case 4: if matches("kind") { kind = value } else if matches("name") { name = value }
            case 6: if matches("object") { object = value } else if matches("dryRun") { dryRun = value }
            case 8: if matches("userInfo") { userInfo = value }
            case 9: if matches("operation") { operation = value } else if matches("namespace") { namespace = value } else if matches("oldObject") { oldObject = value }
            case 11: if matches("subResource") { subResource = value }
            default: break
            }
        }
    }
}
