/// What a YAML scalar means in JSON.
enum ResolvedScalar: Equatable {
    case string
    case null
    case bool(Bool)
    /// JSON number text.
    case number(String)
    /// `.inf` and `.nan`: YAML floats JSON cannot hold.
    case unrepresentable
}

private let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
private let trues: Set<String> = ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]
private let falses: Set<String> = ["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]
private let nonFinite: Set<String> = [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
                                      ".nan", ".NaN", ".NAN"]

private let stringTag = "tag:yaml.org,2002:str"

/// Resolves a scalar the way go-yaml v2 (behind kubectl's sigs.k8s.io/yaml) does for
/// an untyped target: quoted and `!!str` scalars are strings; plain ones may be null,
/// a YAML 1.1 boolean (`yes`, `off`, `y`...), an integer (decimal, `0x`, `0o`/leading
/// `0` octal, `0b`, with `_` separators) or a float.
func resolveScalar(_ bytes: UnsafeBufferPointer<UInt8>, plain: Bool, tag: String?) -> ResolvedScalar {
    if tag == stringTag { return .string }
    guard plain || (tag != nil && tag != "!") else { return .string }
    let text = String(decoding: bytes, as: UTF8.self)
    if nulls.contains(text) { return .null }
    if trues.contains(text) { return .bool(true) }
    if falses.contains(text) { return .bool(false) }
    if nonFinite.contains(text) { return .unrepresentable }
    if let integer = yamlInteger(text) { return .number(integer) }
    if let float = yamlFloat(text) { return .number(float) }
    return .string
}

/// A YAML 1.1 integer as decimal JSON text; nil when `text` is not one.
func yamlInteger(_ text: String) -> String? {
    var s = Substring(String(text.filter { $0 != "_" }))
    guard !s.isEmpty, text.first != "_" else { return nil }
    var negative = false
    if s.first == "-" || s.first == "+" {
        negative = s.first == "-"
        s = s.dropFirst()
    }
    guard !s.isEmpty else { return nil }
    let radix: Int
    if s.hasPrefix("0x") { radix = 16; s = s.dropFirst(2) }
    else if s.hasPrefix("0o") { radix = 8; s = s.dropFirst(2) }
    else if s.hasPrefix("0b") { radix = 2; s = s.dropFirst(2) }
    else if s.count > 1 && s.hasPrefix("0") { radix = 8; s = s.dropFirst() }
    else { radix = 10 }
    guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isHexDigit }), let magnitude = Int64(s, radix: radix) else {
        return nil
    }
    if magnitude == 0 { return "0" }
    return (negative ? "-" : "") + String(magnitude)
}

/// A YAML 1.1 float as JSON number text; nil when `text` is not one.
func yamlFloat(_ text: String) -> String? {
    let s = String(text.filter { $0 != "_" })
    // [-+]?([0-9]*\.?[0-9]+|[0-9]+\.)([eE][-+]?[0-9]+)?
    var digitsBefore = 0, digitsAfter = 0, i = s.startIndex
    if i < s.endIndex, s[i] == "-" || s[i] == "+" { i = s.index(after: i) }
    while i < s.endIndex, s[i].isASCII, s[i].isNumber { digitsBefore += 1; i = s.index(after: i) }
    if i < s.endIndex, s[i] == "." {
        i = s.index(after: i)
        while i < s.endIndex, s[i].isASCII, s[i].isNumber { digitsAfter += 1; i = s.index(after: i) }
    }
    guard digitsBefore + digitsAfter > 0 else { return nil }
    if i < s.endIndex, s[i] == "e" || s[i] == "E" {
        i = s.index(after: i)
        if i < s.endIndex, s[i] == "-" || s[i] == "+" { i = s.index(after: i) }
        var exponentDigits = 0
        while i < s.endIndex, s[i].isASCII, s[i].isNumber { exponentDigits += 1; i = s.index(after: i) }
        guard exponentDigits > 0 else { return nil }
    }
    guard i == s.endIndex, let value = Double(s), value.isFinite else { return nil }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return String(value)
}
