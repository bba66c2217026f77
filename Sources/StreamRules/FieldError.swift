/// A path to a field, rendered as apimachinery renders `field.Path`:
/// `spec.connectionRegistry[2].namespace`, `spec.kafkaConfig.config[sasl.password]`.
public struct FieldPath: Sendable, Equatable, CustomStringConvertible {
    public private(set) var description: String

    public init(_ root: String) {
        description = root
    }

    public func child(_ name: String) -> FieldPath {
        var p = self
        p.description += "." + name
        return p
    }

    public func index(_ i: Int) -> FieldPath {
        var p = self
        p.description += "[\(i)]"
        return p
    }

    public func key(_ k: String) -> FieldPath {
        var p = self
        p.description += "[\(k)]"
        return p
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
