/// A path to a field, rendered as apimachinery renders `field.Path`:
/// `spec.connectionRegistry[2].namespace`, `spec.kafkaConfig.config[sasl.password]`.
public struct FieldPath: Sendable, Equatable, CustomStringConvertible {
    public enum Component: Sendable, Equatable {
        case field(String)
        case index(Int)
        case key(String)
    }

    /// From the root field on, e.g. `[.field("spec"), .field("connectionRegistry"), .index(2)]`.
    public private(set) var components: [Component]

    public init(_ root: String) {
        components = [.field(root)]
    }

    public func child(_ name: String) -> FieldPath { appending(.field(name)) }
    public func index(_ i: Int) -> FieldPath { appending(.index(i)) }
    public func key(_ k: String) -> FieldPath { appending(.key(k)) }

    private func appending(_ component: Component) -> FieldPath {
        var p = self
        p.components.append(component)
        return p
    }

    public var description: String {
        var out = ""
        for component in components {
            switch component {
            case .field(let name): out += out.isEmpty ? name : "." + name
            case .index(let i): out += "[\(i)]"
            case .key(let k): out += "[\(k)]"
            }
        }
        return out
    }
}

/// One validation failure in the apimachinery `field.Error` format.
public struct FieldError: Sendable, Equatable, CustomStringConvertible {
    /// The `reason` of a status cause (`metav1.CauseType`).
    public enum Reason: String, Sendable {
        case required = "FieldValueRequired"
        case invalid = "FieldValueInvalid"
        case notSupported = "FieldValueNotSupported"
        case forbidden = "FieldValueForbidden"
        case duplicate = "FieldValueDuplicate"
        case tooLong = "FieldValueTooLong"
    }

    public var reason: Reason
    public var field: FieldPath
    /// The message after `<field>: `, e.g. `Required value` or `Invalid value: "x": ...`.
    public var body: String

    public init(reason: Reason, field: FieldPath, body: String) {
        self.reason = reason
        self.field = field
        self.body = body
    }

    /// `<field>: <body>`, as kubectl shows it.
    public var description: String { "\(field): \(body)" }
}
