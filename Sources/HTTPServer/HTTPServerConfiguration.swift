import SystemSupport
import TLS

/// Where the server listens: `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all IPv4 interfaces).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return nil }
        }
        guard let port = UInt16(portPart) else { return nil }
        self.host = hostPart.isEmpty ? "0.0.0.0" : String(hostPart)
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Timeouts the event loop enforces.
public struct HTTPTimeouts: Sendable, Equatable {
    public var handshake: Duration
    /// From the connection (after the handshake) or the first byte of a request to its
    /// complete header section.
    public var requestHeaders: Duration
    /// From the complete header section to the complete body.
    public var requestBody: Duration
    /// Between requests on a kept-alive connection.
    public var idle: Duration

    public init(handshake: Duration = .seconds(10), requestHeaders: Duration = .seconds(10),
                requestBody: Duration = .seconds(30), idle: Duration = .seconds(120)) {
        self.handshake = handshake
        self.requestHeaders = requestHeaders
        self.requestBody = requestBody
        self.idle = idle
    }
}

public struct HTTPServerConfiguration: Sendable {
    public var address: ListenAddress
    /// Event loops, one thread each; defaults to the CPUs the process may use (affinity
    /// and cgroup quota).
    public var loopCount: Int
    /// The loops' threads are named `NAME-INDEX` (at most 15 bytes in all), so an operator
    /// or a test can tell one server's loops from another's.
    public var loopName: String
    public var limits: HTTPLimits
    public var timeouts: HTTPTimeouts
    /// Above this many open connections, new ones are closed at once (clamped at start
    /// below the descriptor limit).
    public var maxConnections: Int
    /// Request bodies held in memory at once, across all connections. Past it, bodies
    /// not yet started wait (their sockets are not read) until memory is freed.
    public var maxBufferedBodyBytes: Int

    public static let defaultMaxBufferedBodyBytes = 64 * 1024 * 1024
    public static let defaultMaxConnections = 10_000

    public init(address: ListenAddress, loopCount: Int? = nil, loopName: String = "event-loop", limits: HTTPLimits = HTTPLimits(),
                timeouts: HTTPTimeouts = HTTPTimeouts(), maxConnections: Int = HTTPServerConfiguration.defaultMaxConnections,
                maxBufferedBodyBytes: Int = HTTPServerConfiguration.defaultMaxBufferedBodyBytes) {
        self.address = address
        self.loopCount = max(1, loopCount ?? ProcessResources.usableCPUCount())
        self.loopName = loopName
        self.limits = limits
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.maxBufferedBodyBytes = maxBufferedBodyBytes
    }
}

/// How a server's connections carry HTTP.
public enum HTTPTransport: Sendable {
    /// TLS, each connection with the store's context at the time it is accepted.
    case tls(TLSContextStore)
    /// Plain HTTP over TCP.
    case plain
}

public enum HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidAddress(String)
    /// Another socket already listens on the address (or on one that overlaps it).
    case addressInUse(String)
    /// The listener for `address` could not be set up.
    case listenerFailed(address: String, SystemCallError)
    /// An event loop could not be set up, or its thread not started.
    case eventLoopFailed(SystemCallError)

    public var description: String {
        switch self {
        case .invalidAddress(let text):
            return "invalid listen address \(text)"
        case .addressInUse(let address):
            return "cannot listen on \(address): address already in use (another socket listens on it)"
        case .listenerFailed(let address, let error):
            return "cannot listen on \(address): \(error)"
        case .eventLoopFailed(let error):
            return "cannot start an event loop: \(error)"
        }
    }
}
