import JSON
import SystemSupport
import TLS

/// A resource the cache lists and watches: where it lives in the API, how it is asked
/// for, and which parts of each object are kept as the answer streams in.
public struct ResourceType: Sendable {
    /// `/api/v1` or `/apis/<group>/<version>`.
    public var apiPrefix: String
    /// The plural resource name, e.g. `secrets`.
    public var plural: String
    /// A label selector (`key=value`), or nil.
    public var labelSelector: String?
    /// Objects as metadata only (`PartialObjectMetadata`): no spec, no data.
    public var metadataOnly: Bool
    /// The members of each object that are kept; everything else (Secret values,
    /// annotations, managedFields, status) is skipped as it is read, never copied.
    public var kept: [String: JSONKeep]

    public init(apiPrefix: String, plural: String, labelSelector: String? = nil, metadataOnly: Bool = false,
                kept: [String: JSONKeep]) {
        self.apiPrefix = apiPrefix
        self.plural = plural
        self.labelSelector = labelSelector
        self.metadataOnly = metadataOnly
        self.kept = kept
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

    /// A LIST answer: the list's resourceVersion and continue token, each item's kept
    /// members handed out as a record of its own.
    var listKeep: JSONKeep {
        .members(["metadata": .members(["resourceVersion": .all, "continue": .all]), "items": .records(.members(kept))])
    }

    /// A WATCH event: its type, and the object's kept members, or the Status of an
    /// ERROR event (code, reason, message).
    var eventKeep: JSONKeep {
        var object = kept
        for member in ["code", "reason", "message"] where object[member] == nil { object[member] = .all }
        return .members(["type": .all, "object": .members(object)])
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

/// Where a LIST page ended: the list's resourceVersion and the next page's token.
public struct ListPageEnd: Sendable, Equatable {
    public var resourceVersion: String
    /// The token for the next page; empty on the last.
    public var continueToken: String
    /// Items the page held.
    public var count: Int
}

/// One event of a WATCH stream, its object reduced to the kept members.
public enum WatchEvent: Sendable {
    case added(JSONValue)
    case modified(JSONValue)
    case deleted(JSONValue)
    /// Only the resourceVersion the stream has reached.
    case bookmark(resourceVersion: String)
    /// The server ended the watch with a Status (code 410 for a resourceVersion too old).
    case error(KubernetesAPIError)
}

/// How long a LIST page or a WATCH may take, and how large its parts may be.
public struct StreamLimits: Sendable, Equatable {
    /// A whole LIST page must arrive within this (a server that trickles is cut off).
    public var pageDeadlineSeconds: Int
    /// A watch that sends no byte for this long (no event, no bookmark) is dead: the
    /// client reconnects from the last resourceVersion. Twice the bookmark interval.
    public var watchIdleSeconds: Int
    /// Most bytes a LIST page may have on the wire, per item asked for (a Secret is at
    /// most 1 MiB of data, and an object at most 1.5 MiB in etcd).
    public var pageBytesPerItem: Int
    /// Most bytes one watch event may have on the wire.
    public var maxEventBytes: Int
    /// Most bytes kept of one object (its kept members, as JSON text): more than any
    /// object etcd holds (1.5 MiB), so a real object never fails a list; what is kept for
    /// long is held to smaller budgets by whoever keeps it.
    public var maxKeptBytes: Int

    public init(pageDeadlineSeconds: Int = 60, watchIdleSeconds: Int = 120, pageBytesPerItem: Int = 2 * 1024 * 1024,
                maxEventBytes: Int = 4 * 1024 * 1024, maxKeptBytes: Int = 2 * 1024 * 1024) {
        self.pageDeadlineSeconds = pageDeadlineSeconds
        self.watchIdleSeconds = watchIdleSeconds
        self.pageBytesPerItem = pageBytesPerItem
        self.maxEventBytes = maxEventBytes
        self.maxKeptBytes = maxKeptBytes
    }
}

extension KubernetesAPIClient {
    /// One LIST page of `resource`, at most `limit` items: each item's kept members go
    /// to `onItem` as they arrive; the whole page is never held.
    public func listPage(_ resource: ResourceType, namespace: String?, continueToken: String?, limit: Int,
                         limits: StreamLimits = StreamLimits(),
                         onConnection: (TLSClientConnection) -> Void = { _ in },
                         onItem: (JSONValue) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) -> ListPageEnd {
        let path = resource.path(namespace: namespace) + "?" + resource.listQuery(limit: limit, continueToken: continueToken)
        let maxBytes = limits.pageBytesPerItem.multipliedReportingOverflow(by: max(1, limit))
        let call = APICall.list(resource: resource.plural)
        var reader = FilteredBody(keep: resource.listKeep, maxKeptBytes: limits.maxKeptBytes,
                                  maxBytes: maxBytes.overflow ? Int.max : maxBytes.partialValue, call: call)
        var count = 0
        var envelope: JSONValue?
        func take(_ output: FilteredBody.Output) throws(KubernetesAPIError) {
            switch output {
            case .record(let item):
                count += 1
                try onItem(item)
            case .document(let root):
                envelope = root
            }
        }
        try perform(.get, path, accept: resource.listAccept,
                    timing: .deadline(milliseconds: limits.pageDeadlineSeconds * 1000), onConnection: onConnection) { chunk throws(KubernetesAPIError) in
            try reader.feed(chunk, take)
        }
        try reader.finish(take)
        guard let root = envelope, root.isObject else { throw .malformed(call, .listNotAnObject) }
        let metadata = root["metadata"]
        guard let resourceVersion = metadata?["resourceVersion"], resourceVersion.kind == .string,
              let version = resourceVersion.string, !version.isEmpty else {
            throw .malformed(call, .listWithoutResourceVersion)
        }
        let token = metadata?["continue"]
        guard token == nil || token?.kind == .string || token?.isNull == true else {
            throw .malformed(call, .continueTokenNotAString)
        }
        return ListPageEnd(resourceVersion: version, continueToken: token?.string ?? "", count: count)
    }

    /// A WATCH of `resource` from `resourceVersion`, each event to `onEvent` as it comes,
    /// until the server ends it (after `timeoutSeconds`), it goes quiet for longer than
    /// `limits.watchIdleSeconds`, it fails, or `onEvent` throws.
    public func watch(_ resource: ResourceType, namespace: String?, resourceVersion: String, timeoutSeconds: Int,
                      limits: StreamLimits = StreamLimits(),
                      onConnection: (TLSClientConnection) -> Void,
                      onEvent: (WatchEvent) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        let path = resource.path(namespace: namespace) + "?" + resource.watchQuery(resourceVersion: resourceVersion,
                                                                                     timeoutSeconds: timeoutSeconds)
        let call = APICall.watch(resource: resource.plural)
        var reader = FilteredBody(keep: resource.eventKeep, maxKeptBytes: limits.maxKeptBytes, maxBytes: nil,
                                  call: call, maxDocumentBytes: limits.maxEventBytes)
        func take(_ output: FilteredBody.Output) throws(KubernetesAPIError) {
            guard case .document(let document) = output else { return }
            let event: WatchEvent
            do {
                event = try WatchEvent.decode(document)
            } catch {
                throw .malformed(call, error)
            }
            try onEvent(event)
        }
        try perform(.get, path, accept: resource.watchAccept, timing: .idle(seconds: limits.watchIdleSeconds),
                    onConnection: onConnection) { chunk throws(KubernetesAPIError) in
            try reader.feed(chunk, take)
        }
        try reader.finish(take)
    }
}

/// A body read through a `JSONStreamFilter`: what is kept of it parsed as it completes,
/// the rest skipped, the bytes on the wire counted against a cap.
struct FilteredBody {
    enum Output {
        case record(JSONValue)
        case document(JSONValue)
    }

    private var filter: JSONStreamFilter
    private let maxBytes: Int?
    private let maxDocumentBytes: Int?
    private let call: APICall
    private var received = 0
    /// Bytes of the current top-level document (a watch event) so far.
    private var documentBytes = 0

    init(keep: JSONKeep, maxKeptBytes: Int, maxBytes: Int?, call: APICall, maxDocumentBytes: Int? = nil) {
        filter = JSONStreamFilter(keep: keep, maxOutputBytes: maxKeptBytes)
        self.maxBytes = maxBytes
        self.maxDocumentBytes = maxDocumentBytes
        self.call = call
    }

    mutating func feed(_ chunk: [UInt8], _ body: (Output) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        received += chunk.count
        if let maxBytes, received > maxBytes {
            throw .tooLarge(call, .answer(limit: maxBytes))
        }
        var outputs: [JSONFilterOutput] = []
        do {
            try filter.feed(chunk) { outputs.append($0) }
        } catch {
            throw failure(error)
        }
        if let maxDocumentBytes {
            // Bytes since the last document ended, whitespace between documents included: a
            // chunk that ended one starts the count again.
            let ended = outputs.contains { if case .document = $0 { return true } else { return false } }
            documentBytes = ended ? 0 : documentBytes + chunk.count
            if documentBytes > maxDocumentBytes {
                throw .tooLarge(call, .event(limit: maxDocumentBytes))
            }
        }
        try hand(outputs, to: body)
    }

    /// The end of the body: an error if it ends inside a document.
    mutating func finish(_ body: (Output) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        var outputs: [JSONFilterOutput] = []
        do {
            try filter.finish { outputs.append($0) }
        } catch {
            throw failure(error)
        }
        try hand(outputs, to: body)
    }

    private func hand(_ outputs: [JSONFilterOutput], to body: (Output) throws(KubernetesAPIError) -> Void) throws(KubernetesAPIError) {
        for output in outputs {
            switch output {
            case .record(let bytes): try body(.record(parse(bytes)))
            case .document(let bytes): try body(.document(parse(bytes)))
            }
        }
    }

    private func parse(_ bytes: [UInt8]) throws(KubernetesAPIError) -> JSONValue {
        do {
            return try JSONReader.parse(bytes).root
        } catch {
            throw .malformed(call, .invalidJSON(error))
        }
    }

    private func failure(_ error: JSONStreamFilterError) -> KubernetesAPIError {
        if case .outputTooLarge(let limit, let offset) = error { return .tooLarge(call, .keptPart(limit: limit, offset: offset)) }
        return .malformed(call, .invalidJSONStream(error))
    }
}

extension WatchEvent {
    /// One line of a watch stream, parsed whole (tests and the fuzz target; the client
    /// decodes the filtered event).
    public static func decode(_ line: [UInt8]) throws(MalformedAnswer) -> WatchEvent {
        let root: JSONValue
        do {
            root = try JSONReader.parse(line).root
        } catch {
            throw .invalidJSON(error)
        }
        return try decode(root)
    }

    /// One event: `{"type": ..., "object": ...}`.
    public static func decode(_ root: JSONValue) throws(MalformedAnswer) -> WatchEvent {
        guard root.isObject, let type = root["type"]?.string, let object = root["object"], object.isObject else {
            throw .eventWithoutTypeAndObject
        }
        switch type {
        case "ADDED": return .added(object)
        case "MODIFIED": return .modified(object)
        case "DELETED": return .deleted(object)
        case "BOOKMARK":
            guard let version = object["metadata"]?["resourceVersion"], version.kind == .string, let text = version.string else {
                throw .bookmarkWithoutResourceVersion
            }
            return .bookmark(resourceVersion: text)
        case "ERROR":
            return .error(.status(code: object["code"]?.int ?? 500, reason: object["reason"]?.string ?? "",
                                  message: object["message"]?.string ?? "", retryAfterSeconds: nil))
        default: throw .unknownEventType(type)
        }
    }
}

/// Retry delays as client-go's reflector backs off: 1 s doubling to 30 s, each with up
/// to 20 % jitter either side; back to 1 s only after a watch has run for a while.
public struct Backoff: Sendable {
    public static let initialMilliseconds = 1_000
    public static let maxMilliseconds = 30_000
    /// A Retry-After longer than this is cut to it.
    public static let maxRetryAfterMilliseconds = 60_000
    private var next = Backoff.initialMilliseconds

    public init() {}

    /// The delay before the next retry, with jitter from `random` (0..<1); at least what
    /// the server asked for in Retry-After (capped).
    public mutating func delay(random: Double, retryAfterSeconds: Int? = nil) -> Int {
        let base = next
        next = min(next * 2, Self.maxMilliseconds)
        let jitter = (random * 0.4 - 0.2) * Double(base)
        let backoff = max(1, base + Int(jitter))
        guard let retryAfterSeconds, retryAfterSeconds > 0 else { return backoff }
        let asked = retryAfterSeconds.multipliedReportingOverflow(by: 1000)
        return max(backoff, asked.overflow ? Self.maxRetryAfterMilliseconds : min(asked.partialValue, Self.maxRetryAfterMilliseconds))
    }

    public mutating func reset() { next = Self.initialMilliseconds }
}
