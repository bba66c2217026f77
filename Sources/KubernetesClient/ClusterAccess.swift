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

/// How this process reaches its cluster's API server (SPEC section 11): the server, the
/// trust and the credentials, from the in-cluster environment or a kubeconfig.
public struct ClusterAccess: Sendable, Equatable {
    /// A DNS name or an IP address (IPv6 without brackets).
    public var host: String
    public var port: Int
    public var tls: TLSClientConfiguration
    public var token: BearerToken
    /// Where this came from, for logs: `in-cluster` or `kubeconfig FILE, context NAME`.
    public var origin: String

    public init(host: String, port: Int, tls: TLSClientConfiguration, token: BearerToken, origin: String) {
        self.host = host
        self.port = port
        self.tls = tls
        self.token = token
        self.origin = origin
    }

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The in-cluster configuration, or nil outside a pod (no `KUBERNETES_SERVICE_HOST`)
    /// or in a pod without a service-account token (`automountServiceAccountToken: false`).
    public static func inCluster(environment: [String: String],
                                 serviceAccountDirectory: String = ClusterAccess.serviceAccountDirectory) throws(ClusterAccessError) -> ClusterAccess? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              FileContents.exists(path: serviceAccountDirectory + "/token") else { return nil }
        let portText = environment["KUBERNETES_SERVICE_PORT"] ?? "443"
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ClusterAccessError("KUBERNETES_SERVICE_PORT is not a port: \(portText)")
        }
        let caPath = serviceAccountDirectory + "/ca.crt"
        let ca: [UInt8]
        do {
            ca = try FileContents.read(path: caPath)
        } catch {
            throw ClusterAccessError("in-cluster: cannot read \(caPath): \(error.description)")
        }
        let token = BearerToken.file(serviceAccountDirectory + "/token")
        _ = try token.current()
        return ClusterAccess(host: host, port: port, tls: TLSClientConfiguration(trustedCertificatesPEM: ca),
                             token: token, origin: "in-cluster")
    }

    /// The current context of a kubeconfig file. Exec plugins, auth providers, basic
    /// auth and `insecure-skip-tls-verify` are refused, naming the user or cluster.
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
        guard let server = cluster["server"]?.string, let (host, port) = Self.hostAndPort(server) else {
            throw fail("cluster \"\(clusterName)\" has no https server URL")
        }
        var tls = TLSClientConfiguration()
        tls.trustedCertificatesPEM = try fileOrData(cluster, "certificate-authority")
        var token = BearerToken.none
        if let user, user.isObject {
            for unsupported in ["exec", "auth-provider"] where user[member: unsupported].map({ !$0.isNull }) == true {
                throw fail("user \"\(userName)\" authenticates with \(unsupported), which this server does not run; use a token, tokenFile or client certificate")
            }
            if user["username"]?.string != nil || user["password"]?.string != nil {
                throw fail("user \"\(userName)\" uses basic authentication, which the API server no longer accepts; use a token, tokenFile or client certificate")
            }
            tls.clientCertificatePEM = try fileOrData(user, "client-certificate")
            tls.clientKeyPEM = try fileOrData(user, "client-key")
            if (tls.clientCertificatePEM == nil) != (tls.clientKeyPEM == nil) {
                throw fail("user \"\(userName)\" needs both client-certificate and client-key")
            }
            if let text = user["token"]?.string, !text.isEmpty {
                token = .fixed(text)
            } else if let file = user["tokenFile"]?.string, !file.isEmpty {
                token = .file(resolve(file))
                _ = try token.current()
            }
        }
        return ClusterAccess(host: host, port: port, tls: tls, token: token,
                             origin: "kubeconfig \(path), context \(contextName)")
    }

    /// The entry of a `- name: x` list with that name.
    func named(_ list: JSONValue?, _ name: String) -> JSONValue? {
        guard let list, list.isArray else { return nil }
        return list.elements.first { $0["name"]?.string == name }
    }

    /// `<key>-data` (base64) or the file `<key>` names.
    func fileOrData(_ object: JSONValue, _ key: String) throws(ClusterAccessError) -> [UInt8]? {
        if let data = object[member: key + "-data"]?.string, !data.isEmpty {
            guard let decoded = Base64.decode(data) else { throw fail("\(key)-data is not base64") }
            return decoded
        }
        guard let file = object[member: key]?.string, !file.isEmpty else { return nil }
        do {
            return try FileContents.read(path: resolve(file))
        } catch {
            throw fail("cannot read \(key) \(resolve(file)): \(error.description)")
        }
    }

    func resolve(_ file: String) -> String {
        file.hasPrefix("/") ? file : directory + "/" + file
    }

    /// `https://host[:port][/]` into its host (IPv6 unbracketed) and port (default 443).
    static func hostAndPort(_ url: String) -> (String, Int)? {
        guard url.hasPrefix("https://") else { return nil }
        var rest = Substring(url.dropFirst("https://".count))
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.isEmpty { return (host, 443) }
            guard after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65535).contains(port) else { return nil }
            return (host, port)
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            let host = String(rest[..<colon])
            return host.isEmpty ? nil : (host, port)
        }
        return rest.isEmpty ? nil : (String(rest), 443)
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
