/// A path to a field, rendered as apimachinery renders `field.Path`:
/// `spec.connectionRegistry[2].namespace`, `spec.kafkaConfig.config[sasl.password]`.
public struct FieldPath: Sendable, Equatable, CustomStringConvertible {
    public enum Component: Sendable, Equatable {
        case field(String)
        case index(Int)
        case key(String)
    }

    /// A path is its last component and its parent's node: the rules build a path for
    /// every field they visit, and a child then costs one small node, not a copy of its
    /// parent's components.
    private final class Node: Sendable {
        let parent: Node?
        let component: Component
        let depth: Int

        init(parent: Node?, component: Component) {
            self.parent = parent
            self.component = component
            self.depth = (parent?.depth ?? 0) + 1
        }
    }

    private let last: Node

    public init(_ root: String) {
        last = Node(parent: nil, component: .field(root))
    }

    private init(_ last: Node) {
        self.last = last
    }

    /// From the root field on, e.g. `[.field("spec"), .field("connectionRegistry"), .index(2)]`.
    public var components: [Component] {
        var reversed: [Component] = []
        reversed.reserveCapacity(last.depth)
        var node: Node? = last
        while let n = node {
            reversed.append(n.component)
            node = n.parent
        }
        return reversed.reversed()
    }

    public func child(_ name: String) -> FieldPath { FieldPath(Node(parent: last, component: .field(name))) }
    public func index(_ i: Int) -> FieldPath { FieldPath(Node(parent: last, component: .index(i))) }
    public func key(_ k: String) -> FieldPath { FieldPath(Node(parent: last, component: .key(k))) }

    public static func == (a: FieldPath, b: FieldPath) -> Bool {
        a.last === b.last || (a.last.depth == b.last.depth && a.components == b.components)
    }

    public var description: String {
        var out = ""
        for component in components {
            switch component {
            case .field(let name): out += out.isEmpty ? name : "." + name
            case .index(let i): out += "[\(i)]"
            case .key(let k): out += "[\(echoed(k))]"
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
        case tooMany = "FieldValueTooMany"
        case notFound = "FieldValueNotFound"
    }

    /// The rule that found it (for logs, metrics and reports; the answer shows `description`).
    public var rule: RuleID
    public var reason: Reason
    public var field: FieldPath
    /// The message after `<field>: `, e.g. `Required value` or `Invalid value: "x": ...`.
    public var body: String

    public init(rule: RuleID, reason: Reason, field: FieldPath, body: String) {
        self.rule = rule
        self.reason = reason
        self.field = field
        self.body = body
    }

    /// `<field>: <body>`, as kubectl shows it.
    public var description: String { "\(field): \(body)" }
}
