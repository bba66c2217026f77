import JSON
import SystemSupport
import TLS
import YAML

/// Why the cluster cannot be reached as configured: a startup error, said whole.
public struct ClusterAccessError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Where the bearer token comes from.
public enum BearerToken: Sendable, Equatable {
    case none
    case fixed(String)
    /// Read again for every request: bound service-account tokens rotate on disk.
    case file(String)

    /// The token now; nil without one. A file that cannot be read is an error.
    public func current() throws(ClusterAccessError) -> String? {
        switch self {
        case .none: return nil
        case .fixed(let token): return token
        case .file(let path):
            do {
                let bytes = try FileContents.read(path: path)
                return String(decoding: bytes, as: UTF8.self).trimmingSpacesAndNewlines
            } catch {
                throw ClusterAccessError("cannot read token file \(path): \(error.description)")
            }
        }
    }
}

/// How this process reaches its cluster's API server: the server, the
/// trust and the credentials, from the in-cluster environment or a kubeconfig.
public struct ClusterAccess: Sendable, Equatable {
    /// A DNS name or an IP address (IPv6 without brackets): where to connect.
    public var host: String
    public var port: Int
    /// The name the server's certificate must carry, also sent as SNI (a kubeconfig's
    /// `tls-server-name`); nil: `host`.
    public var serverName: String?
    /// The path every request goes under, from a `server` URL with a path (Rancher's
    /// `https://rancher.example.com/k8s/clusters/c-abc` gives `/k8s/clusters/c-abc`):
    /// starts with `/`, no trailing slash; empty for none.
    public var pathPrefix: String
    /// Where the CA bundle, client certificate and key come from: files are followed
    /// (reloaded when they change, see `makeTLSContextSource`), inline bytes are fixed.
    public var tlsSources: TLSClientSources
    public var token: BearerToken
    /// Where this came from, for logs: `in-cluster` or `kubeconfig FILE, context NAME`.
    public var origin: String

    public init(host: String, port: Int, serverName: String? = nil, pathPrefix: String = "", tlsSources: TLSClientSources,
                token: BearerToken, origin: String) {
        self.host = host
        self.port = port
        self.serverName = serverName
        self.pathPrefix = pathPrefix
        self.tlsSources = tlsSources
        self.token = token
        self.origin = origin
    }

    /// Fixed PEM bytes (tests, and callers that read the files themselves).
    public init(host: String, port: Int, tls: TLSClientConfiguration, token: BearerToken, origin: String) {
        self.init(host: host, port: port, tlsSources: TLSClientSources(tls), token: token, origin: origin)
    }

    /// The name the server's certificate is verified for: `serverName`, else `host`.
    public var verifyName: String { serverName ?? host }

    /// The PEM bytes as the sources hold them now (files read at each access). A file
    /// that cannot be read gives an empty CA bundle, which no context accepts: this fails
    /// closed, never falling back to the system's CAs. Kept for callers that build one
    /// fixed context; `makeTLSContextSource` follows the files. Setting it makes every
    /// source inline.
    public var tls: TLSClientConfiguration {
        get {
            do {
                return try tlsSources.read()
            } catch {
                return TLSClientConfiguration(trustedCertificatesPEM: [])
            }
        }
        set { tlsSources = TLSClientSources(newValue) }
    }

    /// The TLS client context for each new connection, rebuilt when the CA or client
    /// certificate files change (checked at most once per `checkIntervalMilliseconds`);
    /// `onReload` hears of each reload, and of each change that could not be loaded (the
    /// previous context then stays). Fails, naming `origin`, when the files do not make a
    /// context now.
    public func makeTLSContextSource(checkIntervalMilliseconds: Int = 1000,
                                     onReload: @escaping @Sendable (TLSClientContextSource.Reload) -> Void = { _ in })
        throws(ClusterAccessError) -> TLSClientContextSource {
        do {
            return try TLSClientContextSource(sources: tlsSources, checkIntervalMilliseconds: checkIntervalMilliseconds,
                                              onReload: onReload)
        } catch {
            throw ClusterAccessError("\(origin): \(error.description)")
        }
    }

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The in-cluster configuration, or nil outside a pod (no `KUBERNETES_SERVICE_HOST`)
    /// or in a pod without a service-account token (`automountServiceAccountToken: false`).
    /// The CA is the service account's `ca.crt`, followed as a file (the kubelet rewrites
    /// it when the cluster's CA rotates).
    public static func inCluster(environment: [String: String],
                                 serviceAccountDirectory: String = ClusterAccess.serviceAccountDirectory) throws(ClusterAccessError) -> ClusterAccess? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              FileContents.exists(path: serviceAccountDirectory + "/token") else { return nil }
        guard ServerURL.isHost(host) else {
            throw ClusterAccessError("KUBERNETES_SERVICE_HOST is not a host name or IP address: \(host.debugDescription)")
        }
        let portText = environment["KUBERNETES_SERVICE_PORT"] ?? "443"
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ClusterAccessError("KUBERNETES_SERVICE_PORT is not a port: \(portText)")
        }
        let caPath = serviceAccountDirectory + "/ca.crt"
        do {
            _ = try FileContents.read(path: caPath)
        } catch {
            throw ClusterAccessError("in-cluster: cannot read \(caPath): \(error.description)")
        }
        let token = BearerToken.file(serviceAccountDirectory + "/token")
        _ = try token.current()
        return ClusterAccess(host: host, port: port, tlsSources: TLSClientSources(trustedCertificates: .file(caPath)),
                             token: token, origin: "in-cluster")
    }

    /// The current context of a kubeconfig file. Exec plugins, auth providers, basic
    /// auth, `insecure-skip-tls-verify`, `proxy-url` and server URLs with a query,
    /// fragment or user information are refused, naming the user or cluster.
    public static func kubeconfig(path: String) throws(ClusterAccessError) -> ClusterAccess {
        let bytes: [UInt8]
        do {
            bytes = try FileContents.read(path: path)
        } catch {
            throw ClusterAccessError("cannot read kubeconfig \(path): \(error.description)")
        }
        return try KubeconfigReader(path: path).read(bytes)
    }
}

/// The parts of a kubeconfig the client uses.
private struct KubeconfigReader {
    let path: String

    /// Relative file names in a kubeconfig are relative to its directory.
    var directory: String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    func fail(_ why: String) -> ClusterAccessError { ClusterAccessError("kubeconfig \(path): \(why)") }

    func read(_ bytes: [UInt8]) throws(ClusterAccessError) -> ClusterAccess {
        let documents: [YAMLDocument]
        do {
            documents = try YAMLLoader.load(bytes)
        } catch {
            throw fail("YAML: \(error)")
        }
        guard let root = documents.first?.value, root.isObject else { throw fail("not a kubeconfig (no mapping)") }
        guard let contextName = root["current-context"]?.string, !contextName.isEmpty else {
            throw fail("no current-context")
        }
        guard let context = named(root["contexts"], contextName)?["context"], context.isObject else {
            throw fail("context \"\(contextName)\" not found")
        }
        guard let clusterName = context["cluster"]?.string,
              let cluster = named(root["clusters"], clusterName)?["cluster"], cluster.isObject else {
            throw fail("cluster of context \"\(contextName)\" not found")
        }
        let userName = context["user"]?.string ?? ""
        let user = userName.isEmpty ? nil : named(root["users"], userName)?["user"]
        if !userName.isEmpty && user == nil { throw fail("user \"\(userName)\" not found") }

        if cluster["insecure-skip-tls-verify"]?.bool == true {
            throw fail("cluster \"\(clusterName)\" sets insecure-skip-tls-verify; the API server's certificate is always verified: give certificate-authority or certificate-authority-data")
        }
        if let proxy = cluster[member: "proxy-url"], !proxy.isNull, proxy.string.map({ !$0.isEmpty }) ?? true {
            throw fail("cluster \"\(clusterName)\" sets proxy-url, which this server does not support; the API server must be reachable directly from the webhook's pods (remove proxy-url)")
        }
        guard let serverText = cluster["server"]?.string, !serverText.isEmpty else {
            throw fail("cluster \"\(clusterName)\" has no https server URL")
        }
        let server: ServerURL
        switch ServerURL.parse(serverText) {
        case .success(let parsed): server = parsed
        case .failure(let why): throw fail("cluster \"\(clusterName)\" server \(serverText.debugDescription): \(why.description)")
        }
        var serverName: String?
        if let name = cluster[member: "tls-server-name"], !name.isNull {
            guard let text = name.string, ServerURL.isHost(text) else {
                throw fail("cluster \"\(clusterName)\": tls-server-name is not a DNS name or IP address")
            }
            serverName = text
        }
        var sources = TLSClientSources()
        sources.trustedCertificates = try fileOrData(cluster, "certificate-authority")
        var token = BearerToken.none
        if let user, user.isObject {
            for unsupported in ["exec", "auth-provider"] where user[member: unsupported].map({ !$0.isNull }) == true {
                throw fail("user \"\(userName)\" authenticates with \(unsupported), which this server does not run; use a token, tokenFile or client certificate")
            }
            if user["username"]?.string != nil || user["password"]?.string != nil {
                throw fail("user \"\(userName)\" uses basic authentication, which the API server no longer accepts; use a token, tokenFile or client certificate")
            }
            sources.clientCertificate = try fileOrData(user, "client-certificate")
            sources.clientKey = try fileOrData(user, "client-key")
            if (sources.clientCertificate == nil) != (sources.clientKey == nil) {
                throw fail("user \"\(userName)\" needs both client-certificate and client-key")
            }
            if let text = user["token"]?.string, !text.isEmpty {
                token = .fixed(text)
            } else if let file = user["tokenFile"]?.string, !file.isEmpty {
                token = .file(resolve(file))
                _ = try token.current()
            }
        }
        return ClusterAccess(host: server.host, port: server.port, serverName: serverName, pathPrefix: server.pathPrefix,
                             tlsSources: sources, token: token, origin: "kubeconfig \(path), context \(contextName)")
    }

    /// The entry of a `- name: x` list with that name.
    func named(_ list: JSONValue?, _ name: String) -> JSONValue? {
        guard let list, list.isArray else { return nil }
        return list.elements.first { $0["name"]?.string == name }
    }

    /// `<key>-data` (base64, fixed) or the file `<key>` names (followed: read again when
    /// it changes; it must be readable now).
    func fileOrData(_ object: JSONValue, _ key: String) throws(ClusterAccessError) -> TLSPEMSource? {
        if let data = object[member: key + "-data"]?.string, !data.isEmpty {
            guard let decoded = Base64.decode(data) else { throw fail("\(key)-data is not base64") }
            return .inline(decoded)
        }
        guard let file = object[member: key]?.string, !file.isEmpty else { return nil }
        do {
            _ = try FileContents.read(path: resolve(file))
        } catch {
            throw fail("cannot read \(key) \(resolve(file)): \(error.description)")
        }
        return .file(resolve(file))
    }

    func resolve(_ file: String) -> String {
        file.hasPrefix("/") ? file : directory + "/" + file
    }
}

/// A kubeconfig's `server`: `https://host[:port][/path]`, the host a DNS name, an IPv4
/// address or a bracketed IPv6 address, the port 443 unless given. The path (Rancher's
/// `/k8s/clusters/c-abc`) prefixes every request. Anything this client would not honour
/// is refused rather than dropped: user information, a query, a fragment, dot segments.
struct ServerURL: Equatable {
    var host: String
    var port: Int
    var pathPrefix: String

    struct Refusal: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    static func parse(_ url: String) -> Result<ServerURL, Refusal> {
        func refuse(_ why: String) -> Result<ServerURL, Refusal> { .failure(Refusal(description: why)) }
        let scheme = "https://"
        guard url.utf8.count > scheme.utf8.count, url.prefix(scheme.count).lowercased() == scheme else {
            return refuse("not an https URL (the API server is always reached over TLS)")
        }
        let rest = url.dropFirst(scheme.count)
        if rest.contains("#") { return refuse("a URL fragment (#...) is not supported") }
        if rest.contains("?") { return refuse("a query (?...) is not supported") }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        if authority.contains("@") {
            return refuse("user information (user@host) is not supported; give credentials in the kubeconfig's user")
        }
        let host: String, port: Int
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return refuse("an IPv6 address without its closing ]") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            guard TLSClientConnection.isIPAddress(host), host.contains(":") else {
                return refuse("\(host.debugDescription) in brackets is not an IPv6 address")
            }
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = 443
            } else {
                guard after.hasPrefix(":"), let number = portNumber(after.dropFirst()) else { return refuse("the port is not 1-65535") }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let number = portNumber(authority[authority.index(after: colon)...]) else { return refuse("the port is not 1-65535") }
            host = String(authority[..<colon])
            port = number
        } else {
            host = String(authority)
            port = 443
        }
        guard !host.isEmpty else { return refuse("no host") }
        guard authority.hasPrefix("[") || isHost(host) else {
            return refuse("\(host.debugDescription) is not a DNS name or IP address")
        }
        var path = Substring(rest[authorityEnd...])
        while path.hasSuffix("/") { path = path.dropLast() }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if segment.isEmpty { return refuse("the path has an empty segment (//)") }
            if segment == "." || segment == ".." { return refuse("the path has a . or .. segment") }
            guard isPathSegment(segment) else {
                return refuse("the path segment \(String(segment).debugDescription) has characters a URL path may not hold unescaped")
            }
        }
        return .success(ServerURL(host: host, port: port, pathPrefix: String(path)))
    }

    /// A decimal port, 1-65535, digits only.
    private static func portNumber(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let number = Int(text), (1...65535).contains(number) else { return nil }
        return number
    }

    /// A DNS name (letters, digits, `-`, `_`, `.`) or an IP address, as a host to connect
    /// to or a name to verify: nothing that could end a request line or header.
    static func isHost(_ text: String) -> Bool {
        if TLSClientConnection.isIPAddress(text) { return true }
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                return true
            default:
                return false
            }
        }
    }

    private static let segmentPunctuation = Array("-._~!$&'()*+,;=:@".utf8)

    /// RFC 3986 `segment`: unreserved, sub-delims, `:`, `@` and `%XX` escapes.
    private static func isPathSegment(_ segment: Substring) -> Bool {
        let bytes = Array(segment.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                index += 1
            case _ where segmentPunctuation.contains(byte):
                index += 1
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, isHexDigit(bytes[index + 1]), isHexDigit(bytes[index + 2]) else { return false }
                index += 3
            default:
                return false
            }
        }
        return true
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"):
            return true
        default:
            return false
        }
    }
}

/// Standard base64 decoding (RFC 4648), as kubeconfig `-data` fields hold it; whitespace
/// is skipped, padding optional.
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = false
        for byte in text.utf8 {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="): padding = true; continue
            case 0x20, 0x0A, 0x0D, 0x09: continue
            default: return nil
            }
            guard !padding else { return nil }
            accumulator = accumulator << 6 | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        return out
    }
}

extension String {
    var trimmingSpacesAndNewlines: String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
