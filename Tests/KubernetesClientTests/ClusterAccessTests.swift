import Foundation
import KubernetesClient
import TLS
import TestSupport
import XCTest

/// The two ways to find a cluster, and the client against the stand-in API server.
final class ClusterAccessTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try temporaryDirectory("cluster-access")
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func kubeconfig(cluster: String, user: String) throws -> String {
        try write("config", """
        apiVersion: v1
        kind: Config
        current-context: dev
        contexts:
        - name: other
          context: {cluster: nowhere, user: nobody}
        - name: dev
          context: {cluster: c1, user: u1, namespace: team}
        clusters:
        - name: c1
          cluster:
            \(cluster)
        users:
        - name: u1
          user:
            \(user)
        """)
    }

    private let caPEM = "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"

    func testTokenAndCertificateAuthorityFileRelativeToTheKubeconfig() throws {
        _ = try write("ca.crt", caPEM)
        let access = try ClusterAccess.kubeconfig(path: try kubeconfig(cluster: "server: https://api.example.com:6443\n    certificate-authority: ca.crt",
                                                                        user: "token: abc"))
        XCTAssertEqual(access.host, "api.example.com")
        XCTAssertEqual(access.port, 6443)
        XCTAssertEqual(access.tls.trustedCertificatesPEM, Array(caPEM.utf8))
        // The file is followed (a rotated CA is reloaded), not copied.
        XCTAssertEqual(access.tlsSources, TLSClientSources(trustedCertificates: .file(directory + "/ca.crt")))
        XCTAssertEqual(access.token, .fixed("abc"))
        XCTAssertTrue(access.origin.contains("context dev"))
        XCTAssertEqual(access.pathPrefix, "")
        XCTAssertNil(access.serverName)
        XCTAssertEqual(access.verifyName, "api.example.com")
        // Unreadable later: `tls` fails closed (an empty CA bundle, never the system's CAs).
        try FileManager.default.removeItem(atPath: directory + "/ca.crt")
        XCTAssertEqual(access.tls.trustedCertificatesPEM, [])
    }

    func testDataFieldsTokenFileAndIPv6() throws {
        let data = Data(caPEM.utf8).base64EncodedString()
        let tokenFile = try write("token", "from-file\n")
        let access = try ClusterAccess.kubeconfig(path: try kubeconfig(
            cluster: "server: https://[fd00::1]\n    certificate-authority-data: \(data)",
            user: "client-certificate-data: \(data)\n    client-key-data: \(data)\n    tokenFile: \(tokenFile)"))
        XCTAssertEqual(access.host, "fd00::1")
        XCTAssertEqual(access.port, 443)
        XCTAssertEqual(access.tls.clientCertificatePEM, Array(caPEM.utf8))
        XCTAssertEqual(access.tlsSources.clientKey, .inline(Array(caPEM.utf8)))
        XCTAssertEqual(try access.token.current(), "from-file")
    }

    func testUnsupportedAuthenticationNamesTheUser() throws {
        let cases = [
            ("exec:\n      command: aws\n      apiVersion: client.authentication.k8s.io/v1beta1", "user \"u1\" authenticates with exec"),
            ("auth-provider:\n      name: gcp", "user \"u1\" authenticates with auth-provider"),
            ("username: admin\n    password: secret", "user \"u1\" uses basic authentication"),
            ("client-certificate-data: YQ==", "user \"u1\" needs both client-certificate and client-key"),
        ]
        for (user, expected) in cases {
            let path = try kubeconfig(cluster: "server: https://h", user: user)
            XCTAssertThrowsError(try ClusterAccess.kubeconfig(path: path)) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }

    func testInsecureSkipVerifyAndBadServersAreRefused() throws {
        for (cluster, expected) in [("server: https://h\n    insecure-skip-tls-verify: true", "insecure-skip-tls-verify"),
                                    ("server: http://h:80", "not an https URL"),
                                    ("server: https://h:99999", "the port is not 1-65535"),
                                    ("certificate-authority: ca.crt", "no https server URL")] {
            XCTAssertThrowsError(try ClusterAccess.kubeconfig(path: try kubeconfig(cluster: cluster, user: "token: t"))) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
        let noContext = try write("bad", "apiVersion: v1\nkind: Config\ncurrent-context: gone\ncontexts: []\n")
        XCTAssertThrowsError(try ClusterAccess.kubeconfig(path: noContext)) { error in
            XCTAssertTrue("\(error)".contains("context \"gone\" not found"), "\(error)")
        }
    }

    func testInCluster() throws {
        XCTAssertNil(try ClusterAccess.inCluster(environment: [:], serviceAccountDirectory: directory))
        _ = try write("ca.crt", caPEM)
        _ = try write("token", "sa-token\n")
        let access = try XCTUnwrap(ClusterAccess.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"], serviceAccountDirectory: directory))
        XCTAssertEqual(access.host, "10.0.0.1")
        XCTAssertEqual(access.token, .file(directory + "/token"))
        XCTAssertEqual(access.tlsSources, TLSClientSources(trustedCertificates: .file(directory + "/ca.crt")))
        XCTAssertEqual(try access.token.current(), "sa-token")
        // No token mounted: no in-cluster configuration. A token without ca.crt: an error.
        XCTAssertNil(try ClusterAccess.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "h"],
                                                 serviceAccountDirectory: directory + "/missing"))
        try FileManager.default.createDirectory(atPath: directory + "/noca", withIntermediateDirectories: true)
        _ = try write("noca/token", "t")
        XCTAssertThrowsError(try ClusterAccess.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "h"],
                                                         serviceAccountDirectory: directory + "/noca"))
    }

    /// Rancher's proxied clusters: a path under the server; `tls-server-name`: the name
    /// the certificate is verified for when the server is reached by another.
    func testServerPathPrefixAndTLSServerName() throws {
        let cases: [(String, String, Int, String)] = [
            ("https://rancher.example.com/k8s/clusters/c-abc", "rancher.example.com", 443, "/k8s/clusters/c-abc"),
            ("https://rancher.example.com:8443/k8s/clusters/c-abc//", "rancher.example.com", 8443, "/k8s/clusters/c-abc"),
            ("https://[fd00::1]:6443/", "fd00::1", 6443, ""),
            ("HTTPS://10.0.0.1/a%2Fb/c:d@e", "10.0.0.1", 443, "/a%2Fb/c:d@e"),
        ]
        for (server, host, port, prefix) in cases {
            let access = try ClusterAccess.kubeconfig(path: try kubeconfig(cluster: "server: \(server)", user: "token: t"))
            XCTAssertEqual(access.host, host, server)
            XCTAssertEqual(access.port, port, server)
            XCTAssertEqual(access.pathPrefix, prefix, server)
        }
        let named = try ClusterAccess.kubeconfig(path: try kubeconfig(
            cluster: "server: https://10.0.0.1:6443\n    tls-server-name: api.internal", user: "token: t"))
        XCTAssertEqual(named.host, "10.0.0.1")
        XCTAssertEqual(named.serverName, "api.internal")
        XCTAssertEqual(named.verifyName, "api.internal")
    }

    func testUnsupportedServerSettingsAreRefusedClearly() throws {
        let cases = [
            ("server: https://h\n    proxy-url: http://proxy:3128",
             "cluster \"c1\" sets proxy-url, which this server does not support"),
            ("server: https://h?timeout=5s", "a query (?...) is not supported"),
            ("server: https://h/#frag", "a URL fragment (#...) is not supported"),
            ("server: https://admin:pw@h", "user information (user@host) is not supported"),
            ("server: https://h/k8s/../x", "a . or .. segment"),
            ("server: https://h/a b", "characters a URL path may not hold"),
            ("server: https://h/a%zz", "characters a URL path may not hold"),
            ("server: https://h%0d:443", "is not a DNS name or IP address"),
            ("server: https://[h]:443", "is not an IPv6 address"),
            ("server: \"https://h:\"", "the port is not 1-65535"),
            ("server: https://", "not an https URL"),
            ("server: https://h\n    tls-server-name: \"a b\"", "tls-server-name is not a DNS name or IP address"),
        ]
        for (cluster, expected) in cases {
            XCTAssertThrowsError(try ClusterAccess.kubeconfig(path: try kubeconfig(cluster: cluster, user: "token: t")), cluster) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(cluster): \(error)")
            }
        }
        // An empty proxy-url is unset (as kubectl reads it).
        XCTAssertNoThrow(try ClusterAccess.kubeconfig(path: try kubeconfig(cluster: "server: https://h\n    proxy-url: \"\"",
                                                                            user: "token: t")))
        XCTAssertThrowsError(try ClusterAccess.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "h\r\nX: y"],
                                                         serviceAccountDirectory: try serviceAccount()))
    }

    /// The context source names where the access came from when the files make no context,
    /// and follows the CA file once they do.
    func testContextSourceFromTheAccess() throws {
        _ = try write("ca.crt", caPEM)
        let broken = try ClusterAccess.kubeconfig(path: try kubeconfig(cluster: "server: https://h\n    certificate-authority: ca.crt",
                                                                        user: "token: t"))
        XCTAssertThrowsError(try broken.makeTLSContextSource()) { error in
            XCTAssertTrue("\(error)".contains("context dev") && "\(error)".contains("certificate authority"), "\(error)")
        }
        let real = try DevelopmentCertificates.generate(in: directory + "/real")
        let access = try ClusterAccess.kubeconfig(path: try kubeconfig(
            cluster: "server: https://h\n    certificate-authority: \(real.caCertificate)", user: "token: t"))
        let source = try access.makeTLSContextSource(checkIntervalMilliseconds: 0)
        XCTAssertEqual(source.sources, TLSClientSources(trustedCertificates: .file(real.caCertificate)))
        XCTAssertEqual(source.generation, 1)
        // Fixed bytes: setting `tls` makes every source inline.
        var fixed = access
        fixed.tls = TLSClientConfiguration(trustedCertificatesPEM: Array(caPEM.utf8))
        XCTAssertEqual(fixed.tlsSources, TLSClientSources(trustedCertificates: .inline(Array(caPEM.utf8))))
    }

    private func serviceAccount() throws -> String {
        let path = directory + "/sa"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        _ = try write("sa/token", "t")
        _ = try write("sa/ca.crt", caPEM)
        return path
    }

    // MARK: - Against the stand-in

    func testClientCertificateTokenAndVerification() throws {
        // Client certificates signed by a CA the stand-in trusts authenticate without a token.
        let clients = try DevelopmentCertificates.generate(in: directory + "/clients")
        let apiserver = try FakeAPIServer(name: "access", clientCA: clients.caCertificate, ipAddresses: [])
        defer { apiserver.stop() }
        try apiserver.put(ClusterObjects.project("team", "p"))
        let certificate = try clientCertificate(in: directory + "/client", name: "webhook", signedBy: clients)
        let viaCertificate = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(
            user: "client-certificate: \(certificate.certificate)\n    client-key: \(certificate.privateKey)"))
        var items = 0
        let page = try KubernetesAPIClient(access: viaCertificate).listPage(
            ResourceType(apiPrefix: "/apis/atlas.mongodb.com/v1", plural: "atlasprojects", kept: ["metadata": .all]),
            namespace: nil, continueToken: nil, limit: 500) { _ in items += 1 }
        XCTAssertEqual(page.count, 1)
        XCTAssertEqual(items, 1)
        XCTAssertFalse(page.resourceVersion.isEmpty)

        // A token the server does not take: 401, with the Status's reason.
        let wrongToken = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(user: "token: wrong", name: "wrong"))
        XCTAssertEqual(try listFailure(wrongToken)?.statusCode, 401)

        // The server's certificate is verified: another CA, or a name it was not issued for, fails the handshake.
        let stranger = try DevelopmentCertificates.generate(in: directory + "/stranger")
        let wrongCA = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(
            user: "token: token-one",
            cluster: "server: https://localhost:\(apiserver.port)\n    certificate-authority: \(stranger.caCertificate)", name: "ca"))
        guard case .transport(.connect(.handshake(_, let untrusted)))? = try listFailure(wrongCA) else {
            return XCTFail("an untrusted certificate is a handshake failure")
        }
        XCTAssertTrue(untrusted.contains("certificate verify failed") || untrusted.contains("unable to get local issuer"), untrusted)
        var wrongName = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(user: "token: token-one", name: "name"))
        wrongName.host = "127.0.0.1"  // the same server; its certificate names localhost only
        guard case .transport(.connect(.handshake(_, let mismatch)))? = try listFailure(wrongName) else {
            return XCTFail("a certificate for another name is a handshake failure")
        }
        XCTAssertTrue(mismatch.contains("IP address mismatch"), mismatch)
    }

    /// Each way an exchange breaks off is its own error, carrying what failed.
    func testFailuresSayWhereTheExchangeBrokeOff() throws {
        let apiserver = try FakeAPIServer(name: "failures")
        defer { apiserver.stop() }
        let access = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(user: "token: token-one"))

        try apiserver.reset(count: 1)
        switch try listFailure(access) {
        case .transport(.read)?, .transport(.response(.endedEarly))?: break
        case let other: XCTFail("a reset: \(String(describing: other))")
        }

        var missingToken = access
        missingToken.token = .file(directory + "/no-such-token")
        guard case .credentials(let why)? = try listFailure(missingToken) else { return XCTFail("an unreadable token file") }
        XCTAssertTrue(why.description.contains("no-such-token"), why.description)

        try apiserver.malformed("list_json")
        let malformed = try listFailure(access)
        guard case .malformed(.list(resource: "secrets"), .invalidJSONStream)? = malformed else {
            return XCTFail("a LIST that is not JSON: \(String(describing: malformed))")
        }

        // Last: the held LIST is answered only when the stand-in stops.
        try apiserver.holdLists(true)
        let held = try listFailure(access, limits: StreamLimits(pageDeadlineSeconds: 1))
        XCTAssertEqual(held, .transport(.deadlineExceeded(milliseconds: 1000)))
        XCTAssertTrue(held?.description.contains("within its deadline") == true, "\(String(describing: held))")
    }

    /// A LIST page of secrets with `access`: its error, or nil when it worked.
    private func listFailure(_ access: ClusterAccess, limits: StreamLimits = StreamLimits()) throws -> KubernetesAPIError? {
        let client = try KubernetesAPIClient(access: access)
        let secrets = ResourceType(apiPrefix: "/api/v1", plural: "secrets", metadataOnly: true, kept: ["metadata": .all])
        do {
            _ = try client.listPage(secrets, namespace: nil, continueToken: nil, limit: 500, limits: limits) { _ in }
            return nil
        } catch {
            return error
        }
    }

    // MARK: - Pieces

    func testWatchEventsDecodeOrSayWhatIsWrong() throws {
        func decode(_ text: String) -> Result<WatchEvent, MalformedAnswer> {
            Result { () throws(MalformedAnswer) in try WatchEvent.decode(Array(text.utf8)) }
        }
        guard case .success(.bookmark(resourceVersion: "42")) = decode(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"42"}}}"#) else {
            return XCTFail("a bookmark")
        }
        guard case .success(.error(let status)) = decode(#"{"type":"ERROR","object":{"code":410,"reason":"Expired"}}"#) else {
            return XCTFail("an ERROR event")
        }
        XCTAssertTrue(status.isGone)
        guard case .failure(.invalidJSON) = decode("{not json") else { return XCTFail("not JSON") }
        guard case .failure(.eventWithoutTypeAndObject) = decode(#"{"type":"ADDED"}"#) else { return XCTFail("no object") }
        guard case .failure(.bookmarkWithoutResourceVersion) = decode(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":42}}}"#) else {
            return XCTFail("a bookmark's number")
        }
        guard case .failure(.unknownEventType("RENAMED")) = decode(#"{"type":"RENAMED","object":{}}"#) else {
            return XCTFail("an unknown type")
        }
    }

    /// The messages the cache logs: what failed, and the underlying error's own words.
    func testErrorMessagesNameTheCallAndTheCause() {
        let secrets = APICall.list(resource: "secrets")
        XCTAssertEqual(KubernetesAPIError.transport(.connect(.connect(host: "h", port: 6443, reason: "Connection refused"))).description,
                       "cannot connect to h:6443: Connection refused")
        XCTAssertEqual(KubernetesAPIError.transport(.read(.io("read: Connection reset by peer"))).description,
                       "reading the answer: read: Connection reset by peer")
        XCTAssertEqual(KubernetesAPIError.transport(.idleTimeout(seconds: 120)).description,
                       "no byte from the server within the idle timeout of 120 s")
        XCTAssertEqual(KubernetesAPIError.transport(.response(.chunked(.malformedChunkSize))).description,
                       "reading the answer: malformed chunk size")
        XCTAssertEqual(KubernetesAPIError.tooLarge(secrets, .answer(limit: 100)).description, "list of secrets is larger than 100 bytes")
        XCTAssertEqual(KubernetesAPIError.tooLarge(.watch(resource: "secrets"), .event(limit: 9)).description,
                       "an event of the watch of secrets is larger than 9 bytes")
        XCTAssertEqual(KubernetesAPIError.malformed(secrets, .listWithoutResourceVersion).description,
                       "unexpected answer: list of secrets has no string metadata.resourceVersion")
        XCTAssertEqual(KubernetesAPIError.status(code: 403, reason: "Forbidden", message: "no", retryAfterSeconds: nil).description,
                       "HTTP 403 Forbidden: no")
    }

    func testBackoffDoublesToThirtySecondsWithJitter() {
        var backoff = Backoff()
        let low = (0..<8).map { _ in backoff.delay(random: 0) }
        XCTAssertEqual(low, [800, 1_600, 3_200, 6_400, 12_800, 24_000, 24_000, 24_000])
        backoff.reset()
        XCTAssertEqual(backoff.delay(random: 0.999_999), 1_199)
    }

    func testResourcePathsAndQueries() {
        let secrets = ResourceType(apiPrefix: "/api/v1", plural: "secrets", labelSelector: "atlas.mongodb.com/type=credentials",
                                   kept: [:])
        XCTAssertEqual(secrets.path(namespace: "team"), "/api/v1/namespaces/team/secrets")
        XCTAssertEqual(secrets.listQuery(limit: 500, continueToken: "a+b"),
                       "limit=500&labelSelector=atlas.mongodb.com%2Ftype%3Dcredentials&continue=a%2Bb")
        XCTAssertEqual(secrets.watchQuery(resourceVersion: "42", timeoutSeconds: 301),
                       "watch=1&allowWatchBookmarks=true&resourceVersion=42&timeoutSeconds=301&labelSelector=atlas.mongodb.com%2Ftype%3Dcredentials")
        let metadata = ResourceType(apiPrefix: "/api/v1", plural: "secrets", metadataOnly: true, kept: [:])
        XCTAssertTrue(metadata.listAccept.hasPrefix("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"))
    }
}
