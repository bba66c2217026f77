import COpenSSL

/// Why a TLS context or certificate could not be set up. Each case says which file
/// and carries OpenSSL's own explanation.
public enum TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    case contextCreationFailed(String)
    case certificateUnreadable(path: String, reason: String)
    case privateKeyUnreadable(path: String, reason: String)
    case privateKeyDoesNotMatchCertificate(certificate: String, key: String)
    case clientCAUnreadable(path: String, reason: String)
    case certificateExpired(path: String)
    /// The certificate's notBefore is still ahead (a reload retries it later).
    case certificateNotYetValid(path: String)
    case certificateGenerationFailed(String)
    case fileNotWritable(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .contextCreationFailed(let why):
            return "cannot create TLS context: \(why)"
        case .certificateUnreadable(let path, let why):
            return "cannot load certificate chain from \(path): \(why)"
        case .privateKeyUnreadable(let path, let why):
            return "cannot load private key from \(path): \(why)"
        case .privateKeyDoesNotMatchCertificate(let cert, let key):
            return "private key \(key) does not match certificate \(cert)"
        case .clientCAUnreadable(let path, let why):
            return "cannot load client CA bundle from \(path): \(why)"
        case .certificateExpired(let path):
            return "certificate \(path) has expired"
        case .certificateNotYetValid(let path):
            return "certificate \(path) is not valid yet (notBefore is in the future)"
        case .certificateGenerationFailed(let why):
            return "cannot generate certificate: \(why)"
        case .fileNotWritable(let path, let code):
            return "cannot write \(path): errno \(code)"
        }
    }
}

/// Drains this thread's OpenSSL error queue into one readable line.
func openSSLErrors() -> String {
    var messages: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return messages.isEmpty ? "unknown OpenSSL error" : messages.joined(separator: "; ")
}
