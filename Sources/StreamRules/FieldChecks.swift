import JSON

/// Collects field errors while reading an object of unknown shape: every accessor
/// reports a value of the wrong JSON type as Invalid and then treats it as absent.
///
/// Each error costs what its rule's enforcement says as it is found: `off` drops it,
/// `warn` keeps it as a would-be denial, `deny` as an error. At most
/// `FieldChecks.maxReported` of each are kept, in the order found; past that one is only
/// counted, so an object with a million faults costs no more than one with a hundred to
/// report, every answer stays bounded, and the errors of rules that only warn can never
/// crowd out those of rules that deny.
struct FieldChecks {
    static let maxReported = 100

    private(set) var errors: [FieldError] = []
    /// Errors found past `maxReported`, counted but not built.
    private(set) var omitted = 0
    /// Errors of rules enforced as `warn`, kept as they would have been reported.
    private(set) var wouldDeny: [FieldError] = []
    /// Would-be denials found past `maxReported`, counted.
    private(set) var omittedWouldDeny = 0
    let budget: ReviewBudget
    let enforcement: Enforcement
    /// The budget ran out: the loops over entries stop, and the decision says so.
    private(set) var outOfTime = false
    private var entriesSinceClock = 0

    init(budget: ReviewBudget = .unlimited, enforcement: Enforcement = Enforcement()) {
        self.budget = budget
        self.enforcement = enforcement
    }

    /// For loops over list entries and map keys: true once the budget has run out. Reads
    /// the clock every 64 calls, so an entry costs a counter increment.
    mutating func timeIsUp() -> Bool {
        guard !outOfTime else { return true }
        entriesSinceClock += 1
        guard entriesSinceClock >= 64 else { return false }
        entriesSinceClock = 0
        outOfTime = budget.isExhausted
        return outOfTime
    }

    private mutating func add(_ rule: RuleID, _ reason: FieldError.Reason, _ path: FieldPath,
                              _ body: @autoclosure () -> String) {
        let action = enforcement.isEnforcingAll ? .deny : enforcement.action(for: rule)
        switch action {
        case .deny:
            guard errors.count < Self.maxReported else { return omitted += 1 }
            errors.append(FieldError(rule: rule, reason: reason, field: path, body: body()))
        case .warn:
            guard wouldDeny.count < Self.maxReported else { return omittedWouldDeny += 1 }
            wouldDeny.append(FieldError(rule: rule, reason: reason, field: path, body: body()))
        case .off:
            break
        }
    }

    mutating func required(_ rule: RuleID, _ path: FieldPath, _ detail: String? = nil) {
        add(rule, .required, path, detail.map { "Required value: \($0)" } ?? "Required value")
    }

    mutating func invalid(_ rule: RuleID, _ path: FieldPath, _ value: JSONValue, _ detail: String) {
        add(rule, .invalid, path, "Invalid value: \(render(value)): \(detail)")
    }

    mutating func invalid(_ rule: RuleID, _ path: FieldPath, _ value: String, _ detail: String) {
        add(rule, .invalid, path, "Invalid value: \(goQuote(value)): \(detail)")
    }

    /// Invalid, with the value given as bytes (converted only when the error is kept).
    mutating func invalid(_ rule: RuleID, _ path: FieldPath, bytes value: some Collection<UInt8>, _ detail: String) {
        add(rule, .invalid, path, "Invalid value: \(goQuote(prefixBytes(value))): \(detail)")
    }

    mutating func notSupported(_ rule: RuleID, _ path: FieldPath, _ value: String, _ supported: [String]) {
        add(rule, .notSupported, path, "Unsupported value: \(goQuote(value)): supported values: "
            + supported.map(goQuote).joined(separator: ", "))
    }

    mutating func forbidden(_ rule: RuleID, _ path: FieldPath, _ detail: @autoclosure () -> String) {
        add(rule, .forbidden, path, "Forbidden: \(detail())")
    }

    mutating func duplicate(_ rule: RuleID, _ path: FieldPath, _ value: String) {
        add(rule, .duplicate, path, "Duplicate value: \(goQuote(value))")
    }

    mutating func duplicate(_ rule: RuleID, _ path: FieldPath, bytes value: some Collection<UInt8>) {
        add(rule, .duplicate, path, "Duplicate value: \(goQuote(prefixBytes(value)))")
    }

    /// A referenced object that does not exist (`Not found: "<ns>/<name>"`).
    mutating func notFound(_ rule: RuleID, _ path: FieldPath, _ value: String) {
        add(rule, .notFound, path, "Not found: \(goQuote(value))")
    }

    mutating func tooLong(_ rule: RuleID, _ path: FieldPath, max: Int) {
        add(rule, .tooLong, path, "Too long: may not be more than \(max) bytes")
    }

    mutating func tooMany(_ rule: RuleID, _ path: FieldPath, _ count: Int, max: Int) {
        add(rule, .tooMany, path, "Too many: \(count): must have at most \(max) items")
    }

    /// A string field: nil when absent, null or empty (empty counts as absent), or of
    /// another type (reported).
    @inline(__always)
    mutating func string(_ value: JSONValue?, _ path: FieldPath) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.string else {
            invalid(.fieldType, path, value, "must be a string")
            return nil
        }
        return text.isEmpty ? nil : text
    }

    /// `string(_:_:)` for checks that read the bytes: the value when it is a non-empty
    /// string, without making a String (a value of another type is reported).
    @inline(__always)
    mutating func nonEmptyString(_ value: JSONValue?, _ path: FieldPath) -> JSONValue? {
        guard let value, !value.isNull else { return nil }
        guard value.kind == .string else {
            invalid(.fieldType, path, value, "must be a string")
            return nil
        }
        return value.stringByteCount > 0 ? value : nil  // no escape writes an empty string
    }

    /// An object field: nil when absent or null, or of another type (reported).
    @inline(__always)
    mutating func object(_ value: JSONValue?, _ path: FieldPath) -> JSONValue? {
        guard let value, !value.isNull else { return nil }
        guard value.isObject else {
            invalid(.fieldType, path, value, "must be an object")
            return nil
        }
        return value
    }

    /// An array field: nil when absent or null, or of another type (reported).
    @inline(__always)
    mutating func array(_ value: JSONValue?, _ path: FieldPath) -> JSONValue? {
        guard let value, !value.isNull else { return nil }
        guard value.isArray else {
            invalid(.fieldType, path, value, "must be an array")
            return nil
        }
        return value
    }

    /// A required string that must be one of `supported`; both faults are `rule`'s.
    mutating func oneOf(_ rule: RuleID, _ value: JSONValue?, _ path: FieldPath, _ supported: [String]) -> String? {
        guard let text = string(value, path) else {
            if !(value.map { !$0.isNull && $0.string == nil } ?? false) { required(rule, path) }
            return nil
        }
        guard supported.contains(text) else {
            notSupported(rule, path, text, supported)
            return nil
        }
        return text
    }

    /// A Kubernetes object name (DNS-1123 subdomain), e.g. a Secret or a project.
    mutating func subdomain(_ rule: RuleID, _ text: String, _ path: FieldPath) {
        var text = text
        text.withUTF8 { subdomain(rule, bytes: $0, path) }
    }

    /// The same on a name's UTF-8 (read in place from the JSON).
    @inline(__always)
    mutating func subdomain(_ rule: RuleID, bytes: UnsafeBufferPointer<UInt8>, _ path: FieldPath) {
        if bytes.count > 253 { invalid(rule, path, bytes: bytes, "must be no more than 253 characters") }
        if !isDNS1123Subdomain(bytes) { invalid(rule, path, bytes: bytes, dns1123SubdomainMessage) }
    }

    /// A namespace (DNS-1123 label).
    @inline(__always)
    mutating func label(_ rule: RuleID, _ text: String, _ path: FieldPath) {
        if text.utf8.count > 63 { invalid(rule, path, text, "must be no more than 63 characters") }
        if !isDNS1123Label(text) { invalid(rule, path, text, dns1123LabelMessage) }
    }
}

/// True when the value holds nothing: absent, null, "", or an object whose members
/// all hold nothing (Go clients write `certificate: {name: "", namespace: ""}`).
func isEmptyValue(_ value: JSONValue?) -> Bool {
    guard let value else { return true }
    switch value.kind {
    case .null: return true
    case .string: return value.stringByteCount == 0  // no escape writes an empty string
    case .object: return value.members.allSatisfy { isEmptyValue($0.value) }
    default: return false
    }
}

// MARK: - Name rules (apimachinery's messages)

let dns1123SubdomainMessage = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    + "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    + "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

let dns1123LabelMessage = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    + "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    + "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

private func isLowerAlnum(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 bytes.
func isDNS1123Label(_ text: String) -> Bool {
    var text = text
    return text.withUTF8 { isDNS1123Label($0[...]) }
}

private func isDNS1123Label(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
    guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
    return isLowerAlnum(first) && isLowerAlnum(last) && bytes.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
}

/// Dot-separated DNS-1123 labels, at most 253 bytes.
func isDNS1123Subdomain(_ text: String) -> Bool {
    var text = text
    return text.withUTF8 { isDNS1123Subdomain($0) }
}

func isDNS1123Subdomain(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    guard !bytes.isEmpty, bytes.count <= 253 else { return false }
    var labelStart = 0
    for i in 0...bytes.count where i == bytes.count || bytes[i] == UInt8(ascii: ".") {
        guard isDNS1123Label(bytes[labelStart..<i]) else { return false }
        labelStart = i + 1
    }
    return true
}

/// What an Atlas name (an instance's, a cluster's) that is not one is told.
let atlasNameDetail = "must contain only ASCII letters, digits and '-'"
/// What a changed immutable field is told.
let immutableDetail = "field is immutable"

/// Only ASCII letters, digits and `-` (Atlas names).
func isAtlasName(_ text: String) -> Bool {
    !text.isEmpty && text.utf8.allSatisfy {
        ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-")
    }
}

// MARK: - Rendering values as apimachinery does

/// Bytes a value echoed in an error body keeps; the rest is cut and marked `...`.
let maxEchoedValueBytes = 256

/// The first bytes of a value, enough to echo it: a value is never copied whole only
/// to be cut.
private func prefixBytes(_ value: some Collection<UInt8>) -> String {
    String(decoding: value.prefix(maxEchoedValueBytes + 4), as: UTF8.self)
}

/// `text` cut to its first `maxBytes` UTF-8 bytes at a character boundary, with `...`
/// after a cut; nil when it fits.
func truncated(_ text: String, maxBytes: Int = maxEchoedValueBytes) -> String? {
    guard text.utf8.count > maxBytes else { return nil }
    var end = text.utf8.startIndex
    var used = 0
    for scalar in text.unicodeScalars {
        let width = UTF8.width(scalar)
        guard used + width <= maxBytes else { break }
        used += width
        end = text.utf8.index(end, offsetBy: width)
    }
    return String(text[..<end]) + "..."
}

/// `text` as an answer may echo it: cut to its first 256 bytes, then `...`.
public func echoed(_ text: String) -> String {
    truncated(text) ?? text
}

/// A string quoted like Go's `%q`, cut to its first 256 bytes (then `...`) so that a
/// megabyte value does not become a megabyte answer.
func goQuote(_ text: String) -> String {
    var out = "\""
    for scalar in echoed(text).unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\x" + hex(scalar.value, width: 2)
            } else if !scalar.isPrintable {
                out += scalar.value > 0xFFFF ? "\\U" + hex(scalar.value, width: 8) : "\\u" + hex(scalar.value, width: 4)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

private func hex(_ value: UInt32, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

extension Unicode.Scalar {
    /// Whether an answer may show the character as it is: not a control, format,
    /// surrogate, private-use, unassigned or line/paragraph separator character.
    public var isPrintable: Bool {
        switch properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: false
        default: true
        }
    }
}

/// A JSON value in an error body: strings quoted, numbers and literals bare,
/// containers as compact JSON (shortened past 64 bytes).
func render(_ value: JSONValue) -> String {
    switch value.kind {
    case .string: return goQuote(value.string ?? "")
    case .number:
        return echoed(value.numberText ?? "")
    case .true: return "true"
    case .false: return "false"
    case .null: return "null"
    case .array, .object:
        var w = JSONWriter()
        w.value(value, stopAfter: 64)
        let text = String(decoding: w.bytes.prefix(64), as: UTF8.self)
        return w.bytes.count > 64 ? text + "..." : text
    }
}
