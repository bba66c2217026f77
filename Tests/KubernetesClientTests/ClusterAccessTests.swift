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
        XCTAssertEqual(access.token, .fixed("abc"))
        XCTAssertTrue(access.origin.contains("context dev"))
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
                                    ("server: http://h:80", "no https server URL"),
                                    ("server: https://h:99999", "no https server URL")] {
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
        XCTAssertEqual(try access.token.current(), "sa-token")
        // No token mounted: no in-cluster configuration. A token without ca.crt: an error.
        XCTAssertNil(try ClusterAccess.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "h"],
                                                 serviceAccountDirectory: directory + "/missing"))
        try FileManager.default.createDirectory(atPath: directory + "/noca", withIntermediateDirectories: true)
        _ = try write("noca/token", "t")
        XCTAssertThrowsError(try ClusterAccess.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "h"],
                                                         serviceAccountDirectory: directory + "/noca"))
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
        let page = try KubernetesAPIClient(access: viaCertificate).listPage(
            ResourceType(apiPrefix: "/apis/atlas.mongodb.com/v1", plural: "atlasprojects"), namespace: nil, continueToken: nil)
        XCTAssertEqual(page.items.count, 1)
        XCTAssertFalse(page.resourceVersion.isEmpty)

        // A token the server does not take: 401, with the Status's reason.
        let wrongToken = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(user: "token: wrong", name: "wrong"))
        XCTAssertThrowsError(try KubernetesAPIClient(access: wrongToken).listPage(
            ResourceType(apiPrefix: "/api/v1", plural: "secrets"), namespace: nil, continueToken: nil)) { error in
            XCTAssertEqual((error as? KubernetesAPIError)?.statusCode, 401)
        }

        // The server's certificate is verified: another CA, or a name it was not issued for, fails the handshake.
        let stranger = try DevelopmentCertificates.generate(in: directory + "/stranger")
        let wrongCA = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(
            user: "token: token-one",
            cluster: "server: https://localhost:\(apiserver.port)\n    certificate-authority: \(stranger.caCertificate)", name: "ca"))
        XCTAssertThrowsError(try KubernetesAPIClient(access: wrongCA).listPage(
            ResourceType(apiPrefix: "/api/v1", plural: "secrets"), namespace: nil, continueToken: nil)) { error in
            XCTAssertTrue("\(error)".contains("certificate verify failed") || "\(error)".contains("unable to get local issuer"), "\(error)")
        }
        var wrongName = try ClusterAccess.kubeconfig(path: try apiserver.kubeconfig(user: "token: token-one", name: "name"))
        wrongName.host = "127.0.0.1"  // the same server; its certificate names localhost only
        XCTAssertThrowsError(try KubernetesAPIClient(access: wrongName).listPage(
            ResourceType(apiPrefix: "/api/v1", plural: "secrets"), namespace: nil, continueToken: nil)) { error in
            XCTAssertTrue("\(error)".contains("IP address mismatch"), "\(error)")
        }
    }

    // MARK: - Pieces

    func testBackoffDoublesToThirtySecondsWithJitter() {
        var backoff = Backoff()
        let low = (0..<8).map { _ in backoff.delay(random: 0) }
        XCTAssertEqual(low, [800, 1_600, 3_200, 6_400, 12_800, 24_000, 24_000, 24_000])
        backoff.reset()
        XCTAssertEqual(backoff.delay(random: 0.999_999), 1_199)
    }

    func testResourcePathsAndQueries() {
        let secrets = ResourceType(apiPrefix: "/api/v1", plural: "secrets", labelSelector: "atlas.mongodb.com/type=credentials")
        XCTAssertEqual(secrets.path(namespace: "team"), "/api/v1/namespaces/team/secrets")
        XCTAssertEqual(secrets.listQuery(limit: 500, continueToken: "a+b"),
                       "limit=500&labelSelector=atlas.mongodb.com%2Ftype%3Dcredentials&continue=a%2Bb")
        XCTAssertEqual(secrets.watchQuery(resourceVersion: "42", timeoutSeconds: 301),
                       "watch=1&allowWatchBookmarks=true&resourceVersion=42&timeoutSeconds=301&labelSelector=atlas.mongodb.com%2Ftype%3Dcredentials")
        let metadata = ResourceType(apiPrefix: "/api/v1", plural: "secrets", metadataOnly: true)
        XCTAssertTrue(metadata.listAccept.hasPrefix("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"))
    }
}
