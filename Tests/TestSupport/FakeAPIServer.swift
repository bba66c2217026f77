import Foundation
import Glibc
import TLS
import XCTest

/// The stand-in API server of Tests/Scripts/fake_apiserver.py (a test double for
/// kube-apiserver, which cannot run here) as a child process on an ephemeral port, with
/// a fresh certificate, a token file, and commands over its stdin.
public final class FakeAPIServer {
    public let port: UInt16
    public let directory: String
    public let certificates: DevelopmentCertificates.Paths
    public let tokenFile: String
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var pending: [UInt8] = []

    /// The certificate names `localhost` and the addresses in `ipAddresses`.
    public init(name: String, token: String = "token-one", clientCA: String? = nil,
                ipAddresses: [String] = ["127.0.0.1"]) throws {
        directory = try temporaryDirectory("apiserver-\(name)")
        certificates = try DevelopmentCertificates.generate(in: directory + "/pki", ipAddresses: ipAddresses)
        tokenFile = directory + "/accepted-token"
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: try testPython())
        process.arguments = [repositoryRoot.appendingPathComponent("Tests/Scripts/fake_apiserver.py").path,
                             "--cert", certificates.certificate, "--key", certificates.privateKey,
                             "--token-file", tokenFile] + (clientCA.map { ["--client-ca", $0] } ?? [])
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var port: UInt16 = 0
        pending = []
        if let line = FakeAPIServer.readLine(output.fileHandleForReading.fileDescriptor, &pending, seconds: 20),
           line.hasPrefix("listening ") {
            port = UInt16(line.dropFirst("listening ".count)) ?? 0
        }
        guard port != 0 else {
            process.terminate()
            throw POSIXError(.ECONNREFUSED, "the stand-in API server did not start")
        }
        self.port = port
    }

    deinit { stop() }

    public func stop() {
        guard process.isRunning else { return }
        try? input.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
    }

    /// Sends one command and returns its answer line.
    @discardableResult
    public func send(_ command: [String: Any]) throws -> String {
        var data = try JSONSerialization.data(withJSONObject: command)
        data.append(0x0A)
        try input.fileHandleForWriting.write(contentsOf: data)
        guard let line = FakeAPIServer.readLine(output.fileHandleForReading.fileDescriptor, &pending, seconds: 20) else {
            throw POSIXError(.ETIMEDOUT, "the stand-in API server did not answer \(command)")
        }
        guard !line.hasPrefix("error") && !line.hasPrefix("unknown") else {
            throw POSIXError(.EINVAL, "stand-in API server: \(line)")
        }
        return line
    }

    public func put(_ object: [String: Any]) throws { try send(["op": "put", "object": object]) }

    public func delete(kind: String, namespace: String, name: String) throws {
        try send(["op": "delete", "kind": kind, "namespace": namespace, "name": name])
    }

    /// Puts several objects in one command, each at its own resourceVersion.
    public func bulkPut(_ objects: [[String: Any]]) throws { try send(["op": "bulk_put", "objects": objects]) }

    /// Puts Secrets `prefix-0`... in `namespace`: ~`dataBytes` of data, a ~`annotationBytes` last-applied annotation if > 0.
    public func bulkSecrets(namespace: String, count: Int, prefix: String, labelled: Bool = true,
                            dataBytes: Int = 64, annotationBytes: Int = 0) throws {
        try send(["op": "bulk_secrets", "namespace": namespace, "count": count, "prefix": prefix, "labelled": labelled,
                  "data_bytes": dataBytes, "annotation_bytes": annotationBytes])
    }

    // MARK: - Faults

    /// Fails the next `count` requests with HTTP `code`, a `Retry-After` if given, a Status body saying `bodyCode` if given.
    public func fail(code: Int, count: Int = 1, retryAfter: Int? = nil, bodyCode: Int? = nil) throws {
        var command: [String: Any] = ["op": "fail", "code": code, "count": count]
        if let retryAfter { command["retry_after"] = retryAfter }
        if let bodyCode { command["body_code"] = bodyCode }
        try send(command)
    }

    /// Resets the TCP connections of the next `count` requests once each request is read (no answer).
    public func reset(count: Int) throws { try send(["op": "reset", "count": count]) }

    /// Answers the next `count` requests 302 to `location` (a path starting with /redirected is counted as `redirected`).
    public func redirect(count: Int, location: String) throws {
        try send(["op": "redirect", "count": count, "location": location])
    }

    /// Answers 403 to every request for these plurals (an empty list ends it).
    public func forbid(_ resources: [String]) throws { try send(["op": "forbid", "resources": resources]) }

    /// Delays every LIST answer by `seconds` (0: off).
    public func slowList(seconds: Double) throws { try send(["op": "slow_list", "seconds": seconds]) }

    /// While on, LIST requests are read and not answered at all; turned off, they are answered.
    public func holdLists(_ on: Bool) throws { try send(["op": "hold_lists", "on": on]) }

    /// Sends LIST bodies (with their Content-Length) one byte every `interval` seconds (0: off).
    public func trickleLists(interval: Double) throws { try send(["op": "trickle_lists", "interval": interval]) }

    /// Once: the next LIST's body is not JSON (`list_json`), its resourceVersion a number (`rv_type`), or the next watch sends a non-JSON line (`event_json`).
    public func malformed(_ what: String) throws { try send(["op": "malformed", "what": what]) }

    /// Once: `bytes` of annotation in the next LIST's item (`list`) or watch event (`event`), or an endless chunk (`endless_chunk`); nil: off.
    public func oversize(what: String?, bytes: Int = 0) throws {
        var command: [String: Any] = ["op": "oversize", "bytes": bytes]
        if let what { command["what"] = what }
        try send(command)
    }

    /// While on, watch streams send nothing (not even a new one's headers) and do not end; turned off, they go on.
    public func stallWatches(_ on: Bool) throws { try send(["op": "stall_watches", "on": on]) }

    /// While on, every watch answers one ERROR event with a 410 Status ("too old resource version") and ends.
    public func gone(_ on: Bool) throws { try send(["op": "gone", "on": on]) }

    /// Each watch sends at most `count` events (a BOOKMARK at once if nothing is pending), then ends; nil: off.
    public func watchEventsThenClose(_ count: Int?) throws {
        var command: [String: Any] = ["op": "watch_events_then_close"]
        if let count { command["count"] = count }
        try send(command)
    }

    /// Seconds between BOOKMARK events of a watch that asked for them.
    public func bookmarkInterval(_ seconds: Double) throws { try send(["op": "bookmark_interval", "seconds": seconds]) }

    /// No watch lasts longer than `seconds` (nil: as long as the client asks).
    public func maxWatch(seconds: Double?) throws {
        var command: [String: Any] = ["op": "max_watch", "seconds": NSNull()]
        if let seconds { command["seconds"] = seconds }
        try send(command)
    }

    /// Shuts down every open watch connection without the end of its stream.
    public func dropWatches() throws { try send(["op": "drop_watches"]) }

    /// Forgets the history: a watch from an earlier resourceVersion gets a 410 ERROR event.
    public func compact() throws { try send(["op": "compact"]) }

    /// Serves new TLS connections with this certificate and private key (PEM files); open ones keep theirs.
    public func rotateCertificate(certificate: String, privateKey: String) throws {
        try send(["op": "rotate_certificate", "cert": certificate, "key": privateKey])
    }

    /// These plurals are not installed (a missing CRD): 404 for every request (an empty list ends it).
    public func missing(_ resources: [String]) throws { try send(["op": "missing", "resources": resources]) }

    /// The next `count` updates of `resource` lose to a concurrent writer: 409 Conflict.
    public func conflict(resource: String, count: Int = 1) throws {
        try send(["op": "conflict", "resource": resource, "count": count])
    }

    // MARK: - What the stand-in saw

    /// The stored object, or nil.
    public func object(_ resource: String, namespace: String, name: String) throws -> [String: Any]? {
        let answer = try send(["op": "get", "resource": resource, "namespace": namespace, "name": name])
        return try JSONSerialization.jsonObject(with: Data(answer.utf8), options: .fragmentsAllowed) as? [String: Any]
    }

    /// Every stored object of `resource`.
    public func objects(_ resource: String) throws -> [[String: Any]] {
        let answer = try send(["op": "objects", "resource": resource])
        return try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [[String: Any]] ?? []
    }

    /// The stand-in's `stats` answer: requests, request_log, redirected_authorized, open_watches, rv.
    public func stats() throws -> [String: Any] {
        let answer = try send(["op": "stats"])
        return try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any] ?? [:]
    }

    /// Requests counted by what they were (`list secrets`, `watch atlasprojects`, `redirected`).
    public func requests() throws -> [String: Int] {
        try stats()["requests"] as? [String: Int] ?? [:]
    }

    /// The last 2,000 requests, oldest first: monotonic seconds, what (`list secrets`), raw query string.
    public func requestLog() throws -> [(time: Double, what: String, query: String)] {
        let entries = try stats()["request_log"] as? [[String: Any]] ?? []
        return entries.map { entry -> (time: Double, what: String, query: String) in
            let seconds = entry["t"] as? Double ?? Double(entry["t"] as? Int ?? 0)
            return (time: seconds, what: entry["what"] as? String ?? "", query: entry["query"] as? String ?? "")
        }
    }

    /// Empties the request log (the counts stay).
    public func clearLog() throws { try send(["op": "clear_log"]) }

    /// Watch streams open now.
    public func openWatches() throws -> Int { try stats()["open_watches"] as? Int ?? 0 }

    /// Requests to a /redirected path that carried an Authorization header (a followed redirect leaking the token).
    public func redirectedWithAuthorization() throws -> Int { try stats()["redirected_authorized"] as? Int ?? 0 }

    /// A kubeconfig for this server; `user` is the YAML of the user entry.
    public func kubeconfig(user: String, cluster: String? = nil, name: String = "kubeconfig") throws -> String {
        let clusterYAML = cluster ?? "server: https://localhost:\(port)\n    certificate-authority: \(certificates.caCertificate)"
        let text = """
        apiVersion: v1
        kind: Config
        current-context: test
        contexts:
        - name: test
          context: {cluster: stand-in, user: tester}
        clusters:
        - name: stand-in
          cluster:
            \(clusterYAML)
        users:
        - name: tester
          user:
            \(user)

        """
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private static func readLine(_ fd: Int32, _ pending: inout [UInt8], seconds: Double) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeFirst(newline + 1)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(left * 1000) + 1) > 0 else { continue }
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { return nil }
            pending.append(contentsOf: buffer[0..<n])
        }
    }
}

/// Objects as the stand-in stores them.
public enum ClusterObjects {
    public static func secret(_ namespace: String, _ name: String, labelled: Bool = true,
                              data: [String: String] = [:]) -> [String: Any] {
        var metadata: [String: Any] = ["name": name, "namespace": namespace]
        if labelled { metadata["labels"] = ["atlas.mongodb.com/type": "credentials"] }
        return ["apiVersion": "v1", "kind": "Secret", "metadata": metadata,
                "data": data.mapValues { Data($0.utf8).base64EncodedString() }]
    }

    public static func project(_ namespace: String, _ name: String) -> [String: Any] {
        ["apiVersion": "atlas.mongodb.com/v1", "kind": "AtlasProject", "metadata": ["name": name, "namespace": namespace],
         "spec": ["name": name]]
    }

    public static func connection(_ namespace: String, _ name: String, specName: String) -> [String: Any] {
        ["apiVersion": "atlas.mongodb.com/v1", "kind": "AtlasStreamConnection",
         "metadata": ["name": name, "namespace": namespace],
         "spec": ["name": specName, "type": "Sample", "sampleSpec": [:] as [String: Any]]]
    }

    public static func instance(_ namespace: String, _ name: String, registry: [String], deleting: Bool = false) -> [String: Any] {
        var metadata: [String: Any] = ["name": name, "namespace": namespace]
        if deleting { metadata["deletionTimestamp"] = "2026-12-01T00:00:00Z" }
        return ["apiVersion": "atlas.mongodb.com/v1", "kind": "AtlasStreamInstance", "metadata": metadata,
                "spec": ["name": name, "connectionRegistry": registry.map { ["name": $0] }]]
    }
}
