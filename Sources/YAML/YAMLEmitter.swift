import CYAML
import JSON

/// Writes JSON values as a YAML stream through libyaml's emitter: block style, key
/// order kept, strings quoted exactly when a plain scalar would read back as
/// something else (`"yes"`, `"5"`, `"null"`, `""`).
public enum YAMLEmitter {
    public static func emit(_ documents: [JSONValue]) -> [UInt8] {
        let output = Output()
        var emitter = yaml_emitter_t()
        guard yaml_emitter_initialize(&emitter) == 1 else { return [] }
        defer { yaml_emitter_delete(&emitter) }
        let context = Unmanaged.passUnretained(output).toOpaque()
        yaml_emitter_set_output(&emitter, { data, buffer, size in
            guard let data, let buffer else { return 0 }
            Unmanaged<Output>.fromOpaque(data).takeUnretainedValue().bytes
                .append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
            return 1
        }, context)
        yaml_emitter_set_unicode(&emitter, 1)
        yaml_emitter_set_width(&emitter, -1)
        yaml_emitter_set_indent(&emitter, 2)

        var ok = true
        func send(_ make: (inout yaml_event_t) -> Int32) {
            guard ok else { return }
            var event = yaml_event_t()
            ok = make(&event) == 1 && yaml_emitter_emit(&emitter, &event) == 1
        }
        send { yaml_stream_start_event_initialize(&$0, YAML_UTF8_ENCODING) }
        for (i, document) in documents.enumerated() {
            send { yaml_document_start_event_initialize(&$0, nil, nil, nil, i == 0 ? 1 : 0) }
            emitValue(document, send)
            send { yaml_document_end_event_initialize(&$0, 1) }
        }
        send { yaml_stream_end_event_initialize(&$0) }
        _ = yaml_emitter_flush(&emitter)
        withExtendedLifetime(output) {}
        return output.bytes
    }

    private final class Output {
        var bytes: [UInt8] = []
    }

    private static func emitValue(_ value: JSONValue, _ send: ((inout yaml_event_t) -> Int32) -> Void) {
        switch value.kind {
        case .object:
            send { yaml_mapping_start_event_initialize(&$0, nil, nil, 1, YAML_BLOCK_MAPPING_STYLE) }
            for (key, member) in value.members {
                emitScalar(key.string ?? "", style: style(forString: key.string ?? ""), send)
                emitValue(member, send)
            }
            send { yaml_mapping_end_event_initialize(&$0) }
        case .array:
            send { yaml_sequence_start_event_initialize(&$0, nil, nil, 1, YAML_BLOCK_SEQUENCE_STYLE) }
            for element in value.elements { emitValue(element, send) }
            send { yaml_sequence_end_event_initialize(&$0) }
        case .string:
            let text = value.string ?? ""
            emitScalar(text, style: style(forString: text), send)
        case .number:
            emitScalar(value.numberText ?? "0", style: YAML_PLAIN_SCALAR_STYLE, send)
        case .true:
            emitScalar("true", style: YAML_PLAIN_SCALAR_STYLE, send)
        case .false:
            emitScalar("false", style: YAML_PLAIN_SCALAR_STYLE, send)
        case .null:
            emitScalar("null", style: YAML_PLAIN_SCALAR_STYLE, send)
        }
    }

    /// Double quotes when the text read as a plain scalar would not be this string.
    private static func style(forString text: String) -> yaml_scalar_style_t {
        let plainMeaning = Array(text.utf8).withUnsafeBufferPointer { resolveScalar($0, plain: true, tag: nil) }
        return plainMeaning == .string ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE
    }

    private static func emitScalar(_ text: String, style: yaml_scalar_style_t,
                                   _ send: ((inout yaml_event_t) -> Int32) -> Void) {
        // A trailing NUL keeps the pointer non-nil for empty text (libyaml asserts on NULL).
        var bytes = Array(text.utf8) + [0]
        let length = Int32(bytes.count - 1)
        let isPlain = style == YAML_PLAIN_SCALAR_STYLE || style == YAML_ANY_SCALAR_STYLE ? Int32(1) : Int32(0)
        bytes.withUnsafeMutableBufferPointer { buffer in
            send { yaml_scalar_event_initialize(&$0, nil, nil, buffer.baseAddress, length, isPlain, 1, style) }
        }
    }
}
