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

    /// Requests counted by what they were (`list secrets`, `watch atlasprojects`).
    public func requests() throws -> [String: Int] {
        let answer = try send(["op": "stats"])
        let object = try JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any]
        return object?["requests"] as? [String: Int] ?? [:]
    }

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
