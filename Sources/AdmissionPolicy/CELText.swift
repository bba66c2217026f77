import StreamRules

/// Pieces of CEL source text. Only what Kubernetes 1.30 offers every policy: the standard
/// library and macros, `matches` (RE2), the strings extension (version 2) and optional
/// types.
enum CEL {
    /// A CEL string literal (single-quoted) holding `text` exactly.
    static func literal(_ text: String) -> String {
        var out = "'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + String(scalar.value, radix: 16, uppercase: false).leftPadded(to: 2)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "'"
    }

    /// A list literal of strings.
    static func list(_ items: [String]) -> String {
        "[" + items.map(literal).joined(separator: ", ") + "]"
    }

    /// A map literal from strings to strings.
    static func map(_ entries: [(String, String)]) -> String {
        "{" + entries.map { literal($0.0) + ": " + literal($0.1) }.joined(separator: ", ") + "}"
    }

    /// The values as the webhook lists them: `"A", "B"`.
    static func supported(_ values: [String]) -> String {
        values.map { "\"" + $0 + "\"" }.joined(separator: ", ")
    }

    /// `expression` (a string) as the webhook echoes a value: cut to its first 256 bytes
    /// with `...` after a cut, then quoted like Go's `%q` (backslash, double quote, and
    /// the control characters written as escapes). A value of non-ASCII text longer than
    /// 256 bytes is cut at the last character that ends within them.
    static func quoted(_ expression: String) -> String {
        let limit = RuleVocabulary.echoedValueBytes
        // The longest prefix of whole characters within `limit` bytes: at least limit/4
        // characters fit, so the candidates are the prefixes of limit/4 to limit
        // characters, each measured once (a bounded cost, whatever the value's size).
        let cut = "(size(bytes(v)) <= \(limit) ? v : (size(v) == size(bytes(v)) ? v.substring(0, \(limit)) : "
            + "v.substring(0, [\((limit / 4...limit).reversed().map(String.init).joined(separator: ","))]"
            + ".filter(n, n < size(v) && size(bytes(v.substring(0, n))) <= \(limit))[0])) + '...')"
        // Escapes in stages of a few replacements each: a long chain of calls nests too
        // deep for a CEL parser's recursion limit.
        var replacements = [("\\\\", "\\\\\\\\"), ("\"", "\\\\\""), ("\\n", "\\\\n"), ("\\r", "\\\\r"), ("\\t", "\\\\t")]
        for code in Array(0..<0x20) + [0x7F] where ![0x09, 0x0A, 0x0D].contains(code) {
            let hex = String(code, radix: 16).leftPadded(to: 2)
            replacements.append(("\\x\(hex)", "\\\\x\(hex)"))
        }
        var value = "[\(expression)].map(v, \(cut))[0]"
        for start in stride(from: 0, to: replacements.count, by: 12) {
            let stage = replacements[start..<min(start + 12, replacements.count)]
            value = "[\(value)].map(c, c" + stage.map { ".replace('\($0.0)', '\($0.1)')" }.joined() + ")[0]"
        }
        return "('\"' + \(value) + '\"')"
    }

    // MARK: - Grammars, as RE2 patterns

    /// An Atlas name: ASCII letters, digits and `-`.
    static let atlasName = "^[A-Za-z0-9-]+$"
    /// A DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 bytes).
    static let dnsLabel = "^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$"
    /// A DNS-1123 subdomain: labels as above joined by dots (the length, at most 253
    /// bytes, is checked apart).
    static let dnsSubdomain = "^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*$"
    /// An RFC 1123 host name label by label, any case.
    static let hostname = "^[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$"
    /// Dot-separated numbers only: such a host must be an IPv4 address.
    static let numericHost = "^[0-9]+(?:\\.[0-9]+)*$"
    /// A dotted IPv4 address as the webhook reads one: four numbers of at most three
    /// digits, each at most 255 (leading zeros allowed).
    static let ipv4Host = "^(?:(?:[01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])\\.){3}(?:[01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])$"
    /// A port from 1 to 65535 in at most five digits (leading zeros allowed).
    static let port = "^(?:0{0,4}[1-9]|0{0,3}[1-9][0-9]|0{0,2}[1-9][0-9]{2}|0?[1-9][0-9]{3}|[1-5][0-9]{4}|6[0-4][0-9]{3}"
        + "|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
    /// A bracketed IPv6 address followed by `:` (the text inet_pton accepts: eight groups
    /// of one to four hex digits, one `::` for a run of zero groups, the last two groups
    /// possibly a dotted IPv4 address without leading zeros).
    static let bracketedIPv6: String = {
        let h = "[0-9A-Fa-f]{1,4}"
        let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
        let v4 = "(?:\(octet)\\.){3}\(octet)"
        var forms = ["(?:\(h):){7}\(h)", "(?:\(h):){6}\(v4)"]
        // `::` with `left` groups before it: up to 7 - left groups after it, or up to
        // 5 - left groups and an IPv4 address.
        for left in 0...7 {
            let before = left == 0 ? "" : "(?:\(h):){\(left - 1)}\(h)"
            var after = left == 7 ? "" : "(?:\(h)(?::\(h)){0,\(6 - left)})?"
            if left <= 5 { after = "(?:\(after.isEmpty ? "" : after + "|")(?:\(h):){0,\(5 - left)}\(v4))" }
            forms.append(before + "::" + after)
        }
        return "^\\[(?:" + forms.joined(separator: "|") + ")\\]:"
    }()
    /// The `mongodb.com/atlas-resource-version` label's grammar as AKO parses it.
    static let semanticVersion = "^v?(?:0|[1-9][0-9]{0,8})(?:\\.(?:0|[1-9][0-9]{0,8})){0,2}"
        + "(?:-[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?$"
}

extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: Swift.max(0, width - count)) + self
    }
}
