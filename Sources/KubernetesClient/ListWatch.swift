import JSON
import TLS

/// A resource the cache lists and watches: where it lives in the API, and how it is asked for.
public struct ResourceType: Sendable, Equatable {
    /// `/api/v1` or `/apis/<group>/<version>`.
    public var apiPrefix: String
    /// The plural resource name, e.g. `secrets`.
    public var plural: String
    /// A label selector (`key=value`), or nil.
    public var labelSelector: String?
    /// Objects as metadata only (`PartialObjectMetadata`): no spec, no data.
    public var metadataOnly: Bool

    public init(apiPrefix: String, plural: String, labelSelector: String? = nil, metadataOnly: Bool = false) {
        self.apiPrefix = apiPrefix
        self.plural = plural
        self.labelSelector = labelSelector
        self.metadataOnly = metadataOnly
    }

    /// `application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1` for metadata
    /// only (the server then strips every Secret's data before it leaves the apiserver).
    public var listAccept: String {
        metadataOnly ? "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json" : "application/json"
    }

    public var watchAccept: String {
        metadataOnly ? "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json" : "application/json"
    }

    /// The collection's path, cluster-wide or in one namespace.
    public func path(namespace: String?) -> String {
        guard let namespace else { return "\(apiPrefix)/\(plural)" }
        return "\(apiPrefix)/namespaces/\(percentEncoded(namespace))/\(plural)"
    }

    /// The query of a LIST page.
    public func listQuery(limit: Int, continueToken: String?) -> String {
        var items = ["limit=\(limit)"]
        if let labelSelector { items.append("labelSelector=" + percentEncoded(labelSelector)) }
        if let continueToken, !continueToken.isEmpty { items.append("continue=" + percentEncoded(continueToken)) }
        return items.joined(separator: "&")
    }

    /// The query of a WATCH from `resourceVersion`.
    public func watchQuery(resourceVersion: String, timeoutSeconds: Int) -> String {
        var items = ["watch=1", "allowWatchBookmarks=true", "resourceVersion=" + percentEncoded(resourceVersion),
                     "timeoutSeconds=\(timeoutSeconds)"]
        if let labelSelector { items.append("labelSelector=" + percentEncoded(labelSelector)) }
        return items.joined(separator: "&")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
        }
    }
    return out
}

/// One page of a LIST.
public struct ListPage: Sendable {
    public var items: [JSONValue]
    public var resourceVersion: String
    /// The token for the next page; empty on the last.
    public var continueToken: String
}

/// One event of a WATCH stream.
public enum WatchEvent: Sendable {
    case added(JSONValue)
    case modified(JSONValue)
    case deleted(JSONValue)
    /// Only the resourceVersion the stream has reached.
    case bookmark(resourceVersion: String)
    /// The server ended the watch with a Status (code 410 for a resourceVersion too old).
    case error(KubernetesAPIError)
}

extension KubernetesAPIClient {
    /// Items per LIST page.
    public static let pageSize = 500

    /// One LIST page of `resource`.
    public func listPage(_ resource: ResourceType, namespace: String?, continueToken: String?,
                         timeoutSeconds: Int = 60) throws(KubernetesAPIError) -> ListPage {
        let body = try get(resource.path(namespace: namespace) + "?" + resource.listQuery(limit: Self.pageSize, continueToken: continueToken),
                           accept: resource.listAccept, timeoutSeconds: timeoutSeconds)
        let document: JSONDocument
        do {
            document = try JSONReader.parse(body)
        } catch {
            throw .malformed("list of \(resource.plural) is not JSON: \(error)")
        }
        let root = document.root
        guard root.isObject, let items = root["items"], items.isArray || items.isNull else {
            throw .malformed("list of \(resource.plural) has no items")
        }
        let metadata = root["metadata"]
        return ListPage(items: items.isArray ? Array(items.elements) : [],
                        resourceVersion: metadata?["resourceVersion"]?.string ?? "",
                        continueToken: metadata?["continue"]?.string ?? "")
    }

    /// A WATCH of `resource` from `resourceVersion`, each event to `onEvent` as it comes,
    /// until the server ends it (after `timeoutSeconds`), it fails, or `onEvent` throws.
    public func watch(_ resource: ResourceType, namespace: String?, resourceVersion: String, timeoutSeconds: Int,
                      onConnection: (TLSClientConnection) -> Void,
                      onEvent: (WatchEvent) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        let path = resource.path(namespace: namespace) + "?" + resource.watchQuery(resourceVersion: resourceVersion,
                                                                                     timeoutSeconds: timeoutSeconds)
        // A quiet watch still ends when the server's timeout passes; past it with a margin, it is dead.
        try stream(path, accept: resource.watchAccept, readTimeoutSeconds: timeoutSeconds + 60,
                   onConnection: onConnection) { line throws(KubernetesAPIError) in
            try onEvent(WatchEvent.decode(line))
        }
    }
}

extension WatchEvent {
    /// One line of a watch stream.
    public static func decode(_ line: [UInt8]) throws(KubernetesAPIError) -> WatchEvent {
        let document: JSONDocument
        do {
            document = try JSONReader.parse(line)
        } catch {
            throw .malformed("watch event is not JSON: \(error)")
        }
        let root = document.root
        guard root.isObject, let type = root["type"]?.string, let object = root["object"], object.isObject else {
            throw .malformed("watch event without type and object")
        }
        switch type {
        case "ADDED": return .added(object)
        case "MODIFIED": return .modified(object)
        case "DELETED": return .deleted(object)
        case "BOOKMARK": return .bookmark(resourceVersion: object["metadata"]?["resourceVersion"]?.string ?? "")
        case "ERROR":
            return .error(.status(code: object["code"]?.int ?? 500, reason: object["reason"]?.string ?? "",
                                  message: object["message"]?.string ?? ""))
        default: throw .malformed("watch event of unknown type \(type)")
        }
    }
}

/// Retry delays: 1 s doubling to 30 s, each with up to 20 % jitter either side, back to
/// 1 s after a success (as client-go's reflector backs off).
public struct Backoff: Sendable {
    public static let initialMilliseconds = 1_000
    public static let maxMilliseconds = 30_000
    private var next = Backoff.initialMilliseconds

    public init() {}

    /// The delay before the next retry, with jitter from `random` (0..<1).
    public mutating func delay(random: Double) -> Int {
        let base = next
        next = min(next * 2, Self.maxMilliseconds)
        let jitter = (random * 0.4 - 0.2) * Double(base)
        return max(1, base + Int(jitter))
    }

    public mutating func reset() { next = Self.initialMilliseconds }
}
