import JSON
import StreamRules

/// Applies defaulting's `add` operations to a value and returns the result as a new
/// document (RFC 6902 `add`: a member is set or replaced, a missing parent is skipped,
/// as the webhook never produces one).
enum PatchApplication {
    static func apply(_ patch: [PatchOperation], to value: JSONValue) -> JSONValue {
        guard !patch.isEmpty else { return value }
        var tree = Tree.value(value)
        for operation in patch {
            tree.add(operation.path[...], operation.value)
        }
        var writer = JSONWriter()
        tree.write(to: &writer)
        return (try? JSONReader.parse(writer.bytes).root) ?? value
    }

    /// A value opened up only along the paths being patched.
    enum Tree {
        case value(JSONValue)
        case object([(String, Tree)])
        case array([Tree])
        case patch(PatchValue)
        /// Only while `add` changes a container's children: `self` lets go of the
        /// container's array first, so the array is uniquely held and changed in place, not
        /// copied once per operation.
        case moved

        /// Opens one level of an unchanged container.
        private mutating func open() {
            guard case .value(let v) = self else { return }
            if v.isObject {
                self = .object(v.members.map { ($0.key.string ?? "", .value($0.value)) })
            } else if v.isArray {
                self = .array(v.elements.map { .value($0) })
            }
        }

        mutating func add(_ tokens: ArraySlice<String>, _ newValue: PatchValue) {
            guard let token = tokens.first else { return }
            open()
            let rest = tokens.dropFirst()
            switch self {
            case .object(var members):
                self = .moved
                if let i = members.lastIndex(where: { $0.0 == token }) {
                    if rest.isEmpty { members[i].1 = .patch(newValue) } else { members[i].1.add(rest, newValue) }
                } else if rest.isEmpty {
                    members.append((token, .patch(newValue)))
                }
                self = .object(members)
            case .array(var elements):
                guard let i = Int(token), i >= 0, i < elements.count, !rest.isEmpty else { return }
                self = .moved
                elements[i].add(rest, newValue)
                self = .array(elements)
            case .value, .patch, .moved:
                return
            }
        }

        func write(to writer: inout JSONWriter) {
            switch self {
            case .value(let v):
                writer.value(v)
            case .object(let members):
                writer.object(members) { member, writer in member.write(to: &writer) }
            case .array(let elements):
                writer.beginArray()
                for element in elements { element.write(to: &writer) }
                writer.endArray()
            case .patch(let p):
                p.write(to: &writer)
            case .moved:
                writer.null()
            }
        }
    }
}
