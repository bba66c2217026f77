import JSON
import KubernetesClient

/// Why reports could not be written.
enum ReportWriteError: Error {
    /// The PolicyReport resource is not installed (404 for its collection).
    case unavailable
    /// Anything else: retried later.
    case failed(KubernetesAPIError)
}

/// Writes each namespace's PolicyReport when its content changed, and deletes it when the
/// namespace holds no audited object. It remembers each report's resourceVersion and
/// content digest, so an unchanged report costs no request; a 409 Conflict (someone else
/// wrote it) reads the report again and retries.
struct ReportWriter {
    let client: KubernetesAPIClient
    /// Per namespace: the report there, as last written or read.
    private var known: [String: (resourceVersion: String, contentHash: String)] = [:]
    static let maxAttempts = 5

    init(client: KubernetesAPIClient) {
        self.client = client
    }

    /// The reports that exist (labelled as this server's), read afresh: in `namespaces`, or
    /// everywhere. Returns their namespaces.
    mutating func readExisting(namespaces: [String]?) throws(ReportWriteError) -> Set<String> {
        let type = ResourceType(apiPrefix: PolicyReport.apiPrefix, plural: PolicyReport.plural,
                                labelSelector: "\(PolicyReport.managedByLabel)=\(PolicyReport.managedBy)",
                                kept: ["metadata": .members(["name": .all, "namespace": .all, "resourceVersion": .all,
                                                             "annotations": .members([PolicyReport.contentAnnotation: .all])])])
        known = [:]
        for scope in namespaces.map({ $0.map(Optional.some) }) ?? [nil] {
            var token: String?
            repeat {
                let end: ListPageEnd
                do {
                    end = try client.listPage(type, namespace: scope, continueToken: token, limit: 500) { item in
                        guard let metadata = item["metadata"], metadata["name"]?.string == PolicyReport.name,
                              let namespace = metadata["namespace"]?.string else { return }
                        known[namespace] = Self.written(metadata)
                    }
                } catch {
                    if error.statusCode == 404 { throw .unavailable }
                    throw .failed(error)
                }
                token = end.continueToken
            } while !(token ?? "").isEmpty
        }
        return Set(known.keys)
    }

    /// Makes `namespace`'s report say `report`, or removes it for nil. Returns whether a
    /// request changed anything.
    mutating func sync(namespace: String, report: PolicyReport?) throws(ReportWriteError) -> Bool {
        let location = ObjectLocation(apiPrefix: PolicyReport.apiPrefix, plural: PolicyReport.plural, namespace: namespace)
        let path = location.object(PolicyReport.name)
        guard let report else {
            guard known[namespace] != nil else { return false }
            do {
                _ = try client.send(.delete, path)
            } catch where error.statusCode == 404 {
                // Already gone.
            } catch {
                throw .failed(error)
            }
            known[namespace] = nil
            return true
        }
        for _ in 0..<Self.maxAttempts {
            do {
                if let current = known[namespace] {
                    if current.contentHash == report.contentHash { return false }
                    remember(namespace, try client.send(.put, path, body: report.body(resourceVersion: current.resourceVersion)),
                             report)
                } else {
                    remember(namespace, try client.send(.post, location.collection, body: report.body(resourceVersion: nil)), report)
                }
                return true
            } catch {
                switch error.statusCode {
                case 409:
                    // Changed or created by someone else since: read it, then try again.
                    try reread(namespace, path)
                case 404 where known[namespace] != nil:
                    known[namespace] = nil
                case 404:
                    throw .unavailable
                default:
                    throw .failed(error)
                }
            }
        }
        throw .failed(.status(code: 409, reason: "Conflict", message: "still conflicting after \(Self.maxAttempts) attempts",
                              retryAfterSeconds: nil))
    }

    private mutating func remember(_ namespace: String, _ answer: JSONValue?, _ report: PolicyReport) {
        known[namespace] = (answer?["metadata"]?["resourceVersion"]?.string ?? "", report.contentHash)
    }

    /// A report's resourceVersion and content digest, from its metadata.
    private static func written(_ metadata: JSONValue?) -> (resourceVersion: String, contentHash: String) {
        (metadata?["resourceVersion"]?.string ?? "", metadata?["annotations"]?[member: PolicyReport.contentAnnotation]?.string ?? "")
    }

    private mutating func reread(_ namespace: String, _ path: String) throws(ReportWriteError) {
        do {
            known[namespace] = Self.written(try client.send(.get, path)?["metadata"])
        } catch where error.statusCode == 404 {
            known[namespace] = nil
        } catch {
            throw .failed(error)
        }
    }
}
