/// Which parts of a JSON value a `JSONStreamFilter` keeps.
///
/// Member names are matched on their raw bytes between the quotes: a name the source
/// writes with escapes (`"n\u0061me"`) does not match the entry `name`.
public indirect enum JSONKeep: Sendable {
    /// The value whole.
    case all
    /// An object: only these members, each kept as its entry says; every other member
    /// is skipped, never copied. A scalar in this place is kept as it is; an array
    /// becomes `null`.
    case members([String: JSONKeep])
    /// An object: every member's name, each value replaced by `null` (its bytes
    /// skipped, never copied). Anything else in this place becomes `null`.
    case memberNames
    /// An array: each element kept as the inner entry says. Anything else in this
    /// place: a scalar is kept as it is, an object becomes `null`.
    case elements(JSONKeep)
    /// An array whose elements are handed out one by one as records, each filtered by
    /// the inner entry, instead of being kept in the value around them: the array stays
    /// `[]` there. Anything else in this place is treated as by `elements`.
    case records(JSONKeep)
}

/// What a `JSONStreamFilter` hands out: compact JSON text of the kept parts.
public enum JSONFilterOutput: Sendable, Equatable {
    /// One element of an array kept as `.records`, as soon as it ends.
    case record([UInt8])
    /// One top-level document, as soon as it ends (after the records it held).
    case document([UInt8])
}

/// Why a `JSONStreamFilter` stopped. Offsets count bytes from the start of the stream
/// (over all feeds). Messages never quote input bytes.
public enum JSONStreamFilterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What the filter expected where it found something else.
    public enum Expected: String, Sendable {
        case value = "a value"
        case memberName = "a member name"
        case colon = "':' after a member name"
        case commaOrObjectEnd = "',' or '}'"
        case commaOrArrayEnd = "',' or ']'"
        case escape = "a valid escape after '\\'"
        case hexDigit = "a hex digit of a \\u escape"
        case stringByte = "a string byte that is not a control character"
        case utf8 = "valid UTF-8 in a string"
        case digit = "a digit"
        case numberEnd = "the end of a number after a leading zero"
        case literal = "'true', 'false' or 'null'"
    }

    /// The text is not JSON at `offset`.
    case malformed(offset: Int, expected: Expected)
    /// A container opens at `offset` deeper than `limit` (kept or skipped alike).
    case tooDeep(limit: Int, offset: Int)
    /// The kept bytes of one record or one document would pass `limit` at input byte `offset`.
    case outputTooLarge(limit: Int, offset: Int)
    /// The input ended, after `offset` bytes, inside a document.
    case truncated(offset: Int)

    public var description: String {
        switch self {
        case .malformed(let offset, let expected):
            return "malformed JSON at byte \(offset): expected \(expected.rawValue)"
        case .tooDeep(let limit, let offset):
            return "JSON nested deeper than \(limit) at byte \(offset)"
        case .outputTooLarge(let limit, let offset):
            return "kept part of a JSON value larger than \(limit) bytes at byte \(offset)"
        case .truncated(let offset):
            return "JSON ends inside a document after \(offset) bytes"
        }
    }
}

/// Reads a JSON text as it arrives, in pieces of any size, and keeps only the parts a
/// `JSONKeep` tree names: the cluster cache's LIST pages (each item handed out as a
/// record of its own) and watch events (one document per line), where a Secret may
/// carry a megabyte of data and the same again in an annotation. Skipped values are
/// scanned past, never copied or held, so memory stays O(`maxDepth` + `maxOutputBytes`)
/// whatever the input, and time linear in the bytes fed, however they are split.
///
/// A state machine without recursion: every token (string, escape, number, literal,
/// a member name before its colon) may be cut between two feeds. Kept text is copied
/// byte for byte, without whitespace; it is validated as `JSONReader` would (escapes,
/// UTF-8, numbers, literals), so every output is valid JSON. Skipped text is checked
/// only enough to find where it ends: brackets, colons, commas, literals and numbers,
/// strings for their closing quote and control bytes.
///
/// After an error the filter stays failed: every later call throws the same error.
public struct JSONStreamFilter: Sendable {
    /// The keep tree flattened (see `Plan`): per plan index, its kind, the plan of its
    /// elements or records, and for `.members` its names.
    private let kinds: [Plan.Kind]
    private let children: [Int32]
    private let names: [Plan.Names]
    /// The plan of a top-level document.
    private let root: Int32
    private let maxOutputBytes: Int
    private let maxDepth: Int

    private var state: State = .between
    /// The open containers, skipped ones included: `depth` of them, the innermost in
    /// `top` (read and written on every token, so kept out of the array) and the ones
    /// around it in `outer`.
    private var depth = 0
    private var top = Frame(isObject: false, mode: .skip, hasOutput: false, plan: Plan.drop)
    private var outer: [Frame] = []
    /// The plan of the value after the current member name.
    private var pending: Int32 = Plan.drop
    /// Kept text of the current document, with the open records after it.
    private var out: [UInt8] = []
    /// Where each open record starts in `out`; `sinkStart` is the last (0: the document).
    private var sinks: [Int] = []
    private var sinkStart = 0
    /// Bytes fed before the current feed.
    private var consumed = 0
    private var failure: JSONStreamFilterError?

    // The token in progress.
    private var stringMode: StringMode = .skip
    private var stringIsName = false
    /// 0: none; 1: after a backslash; 2...5: hex digits of a \u escape to come, plus one.
    private var escape: UInt8 = 0
    /// Continuation bytes still due in a UTF-8 sequence, and the range the next must be in.
    private var utf8Needed: UInt8 = 0
    private var utf8Low: UInt8 = 0x80
    private var utf8High: UInt8 = 0xBF
    /// A member name being matched, up to `nameCap` bytes; longer names match nothing.
    private var nameBuffer: [UInt8] = []
    private var nameCap = 0
    private var nameOverflow = false
    private var number: NumberState = .start
    private var literalWord: Literal = .true
    private var literalPosition = 0
    /// Whether the scalar in progress is copied to the output.
    private var scalarKept = false

    /// `maxOutputBytes` bounds the kept text of each record and each document (without
    /// the records it handed out); `maxDepth` the nesting of containers, kept or not.
    public init(keep: JSONKeep, maxOutputBytes: Int, maxDepth: Int = 512) {
        var plans = [Plan(kind: .drop), Plan(kind: .null), Plan(kind: .all), Plan(kind: .memberNames)]
        let root = Plan.compile(keep, into: &plans)
        kinds = plans.map(\.kind)
        children = plans.map(\.child)
        names = plans.map(\.names)
        self.root = root
        self.maxOutputBytes = max(0, maxOutputBytes)
        self.maxDepth = max(0, maxDepth)
        outer.reserveCapacity(min(self.maxDepth, 64))
        nameBuffer.reserveCapacity(plans.map(\.names.longest).max() ?? 0)
    }

    /// Reads the next bytes of the stream. `emit` gets each record and each top-level
    /// document (a stream may hold several, separated by whitespace, such as a watch's
    /// newline-ended events) as soon as it ends, in order: a document after the records
    /// it held. A caller with a reason of its own to stop collects what `emit` gets and
    /// stops after this call, feeding no more: one call hands out at most a few times the
    /// bytes it was given, plus `maxOutputBytes` carried over from earlier calls.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) {
        if let failure { throw failure }
        do throws(JSONStreamFilterError) {
            try run(bytes, emit)
        } catch {
            failure = error
            throw error
        }
        consumed &+= bytes.count
    }

    /// `feed` for bytes in an array (`Array.withUnsafeBytes` does not keep the error's type).
    public mutating func feed(_ bytes: [UInt8], emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONStreamFilterError) in try feed(raw, emit: emit) }
        }
        try result.get()
    }

    /// The end of the stream: an error if it ends inside a document. A last top-level
    /// document that only the end of input closes (a bare number) goes to `emit`.
    public mutating func finish(emit: (JSONFilterOutput) -> Void = { _ in }) throws(JSONStreamFilterError) {
        if let failure { throw failure }
        switch state {
        case .between:
            return
        case .number where depth == 0 && number.canEnd:
            // A top-level number writes nothing more; the document only needs handing out.
            do throws(JSONStreamFilterError) { try valueDone(at: 0, emit) } catch { failure = error; throw error }
        default:
            let error = JSONStreamFilterError.truncated(offset: consumed)
            failure = error
            throw error
        }
    }

    // MARK: - The machine

    private mutating func run(_ input: UnsafeRawBufferPointer, _ emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) {
        guard let base = input.baseAddress else { return }
        let n = input.count
        var i = 0
        while i < n {
            switch state {
            case .string:
                i = try string(base, i, n, emit)
                continue
            case .number:
                i = try number(base, i, n, emit)
                continue
            case .literal:
                i = try literal(base, i, n, emit)
                continue
            default:
                break
            }
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if b <= 0x20 && (b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09) {
                i &+= 1
                continue
            }
            switch state {
            case .between, .value:
                i = try beginValue(b, i)
            case .valueOrClose:
                if b == Byte.closeBracket {
                    try close(b, i, emit)
                    i &+= 1
                } else {
                    i = try beginValue(b, i)
                }
            case .nameOrClose, .name:
                if b == Byte.closeBrace && state == .nameOrClose {
                    try close(b, i, emit)
                } else if b == Byte.quote {
                    try beginName(i)
                } else {
                    throw malformed(i, .memberName)
                }
                i &+= 1
            case .colon:
                guard b == Byte.colon else { throw malformed(i, .colon) }
                state = .value
                i &+= 1
            case .afterValue:
                guard depth > 0 else {
                    // Only a container's value leads here; without one, a new document may start.
                    state = .between
                    continue
                }
                if b == Byte.comma {
                    state = top.isObject ? .name : .value
                } else if b == (top.isObject ? Byte.closeBrace : Byte.closeBracket) {
                    try close(b, i, emit)
                } else {
                    throw malformed(i, top.isObject ? .commaOrObjectEnd : .commaOrArrayEnd)
                }
                i &+= 1
            case .string, .number, .literal:
                break  // handled above
            }
        }
    }

    /// A value starts with `b` at `i`: decides from its plan what is kept of it, writes
    /// what it begins with, and returns where reading goes on.
    private mutating func beginValue(_ b: UInt8, _ i: Int) throws(JSONStreamFilterError) -> Int {
        let plan: Int32
        var parentMode = Mode.skip
        var parentIsArray = false
        if depth > 0 {
            parentMode = top.mode
            parentIsArray = !top.isObject
            switch top.mode {
            case .skip: plan = Plan.drop
            case .copy: plan = top.isObject ? pending : Plan.all
            case .members, .names: plan = pending
            case .elements, .records: plan = top.plan
            }
        } else {
            plan = root
        }
        let kind = kinds[Int(plan)]
        let opens = b == Byte.openBrace || b == Byte.openBracket
        let isObject = b == Byte.openBrace
        guard opens || b == Byte.quote || b == Byte.minus || (b &- Byte.zero) < 10
                || b == Byte.t || b == Byte.f || b == Byte.n else {
            throw malformed(i, .value)
        }
        if opens && depth >= maxDepth {
            throw JSONStreamFilterError.tooDeep(limit: maxDepth, offset: consumed &+ i)
        }
        // What this value becomes: `mode` for a container (`.skip` when not kept),
        // `nulled` when `null` stands in its place.
        var mode = Mode.skip
        var child: Int32 = Plan.drop
        var nulled = false
        var kept = false
        switch kind {
        case .drop:
            break
        case .null:
            nulled = true
        case .all:
            mode = .copy
            kept = true
        case .memberNames:
            if isObject { mode = .names } else { nulled = true }
        case .members:
            if isObject {
                mode = .members
                child = plan
            } else if opens {
                nulled = true
            } else {
                kept = true
            }
        case .elements, .records:
            if opens && !isObject {
                mode = kind == .records ? .records : .elements
                child = children[Int(plan)]
            } else if opens {
                nulled = true
            } else {
                kept = true
            }
        }
        if parentMode == .records {
            // Each element is a record of its own, handed out and cut from `out` when it ends.
            sinks.append(out.count)
            sinkStart = out.count
        } else if kind != .drop && parentIsArray && (parentMode == .copy || parentMode == .elements) {
            if top.hasOutput { try write(Byte.comma, i) }
            top.hasOutput = true
        }
        if nulled { try write("null", i) }
        if opens {
            if depth > 0 { outer.append(top) }
            top = Frame(isObject: isObject, mode: mode, hasOutput: false, plan: child)
            depth &+= 1
            if mode != .skip { try write(b, i) }
            state = isObject ? .nameOrClose : .valueOrClose
            return i &+ 1
        }
        scalarKept = kept && !nulled
        switch b {
        case Byte.quote:
            if scalarKept { try write(Byte.quote, i) }
            stringMode = scalarKept ? .output : .skip
            stringIsName = false
            escape = 0
            utf8Needed = 0
            state = .string
            return i &+ 1
        case Byte.t, Byte.f, Byte.n:
            literalWord = b == Byte.t ? .true : b == Byte.f ? .false : .null
            literalPosition = 0
            state = .literal
            return i
        default:
            number = .start
            state = .number
            return i
        }
    }

    /// A member name's opening quote at `i`.
    private mutating func beginName(_ i: Int) throws(JSONStreamFilterError) {
        guard depth > 0 else { throw malformed(i, .value) }
        switch top.mode {
        case .members:
            stringMode = .name
            nameBuffer.removeAll(keepingCapacity: true)
            nameOverflow = false
            nameCap = names[Int(top.plan)].longest
        case .names, .copy:
            if top.hasOutput { try write(Byte.comma, i) }
            top.hasOutput = true
            try write(Byte.quote, i)
            stringMode = .output
        case .skip, .elements, .records:
            stringMode = .skip
        }
        stringIsName = true
        escape = 0
        utf8Needed = 0
        state = .string
    }

    /// The string in progress, from `i`: returns where reading goes on.
    private mutating func string(_ base: UnsafeRawPointer, _ i: Int, _ n: Int,
                                 _ emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) -> Int {
        switch stringMode {
        case .skip:
            var j = i
            if escape != 0 {
                // The byte after a backslash, whatever it is.
                escape = 0
                j &+= 1
            }
            while true {
                j = skipPlainStringBytes(base, j, n)
                guard j < n else { return n }
                let c = base.load(fromByteOffset: j, as: UInt8.self)
                if c == Byte.quote {
                    try endString(j, emit)
                    return j &+ 1
                }
                guard c == Byte.backslash else { throw malformed(j, .stringByte) }
                guard j &+ 1 < n else {
                    escape = 1
                    return n
                }
                j &+= 2
            }
        case .output:
            // Content bytes up to the room left: a byte past it is an error at that byte,
            // wherever the feeds were cut.
            let room = maxOutputBytes &- (out.count &- sinkStart)
            let end = room < n &- i ? i &+ room : n
            let j = try validateString(base, i, end)
            append(base + i, j &- i)
            if j < end {
                try endString(j, emit)
                return j &+ 1
            }
            if end < n { throw JSONStreamFilterError.outputTooLarge(limit: maxOutputBytes, offset: consumed &+ end) }
            return n
        case .name:
            let j = try validateString(base, i, n)
            if !nameOverflow {
                if j &- i <= nameCap &- nameBuffer.count {
                    Self.append(base + i, j &- i, to: &nameBuffer)
                } else {
                    nameOverflow = true
                }
            }
            if j < n {
                try endString(j, emit)
                return j &+ 1
            }
            return n
        }
    }

    /// Checks string content from `start` as JSONReader would (escapes, control bytes,
    /// UTF-8), carrying a cut escape or UTF-8 sequence over in `escape`/`utf8Needed`.
    /// Returns the index of the closing quote, or `end`.
    private mutating func validateString(_ base: UnsafeRawPointer, _ start: Int, _ end: Int) throws(JSONStreamFilterError) -> Int {
        var j = start
        while j < end {
            if escape != 0 {
                let c = base.load(fromByteOffset: j, as: UInt8.self)
                if escape == 1 {
                    switch c {
                    case Byte.quote, Byte.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        escape = 0
                    case UInt8(ascii: "u"):
                        escape = 5
                    default:
                        throw malformed(j, .escape)
                    }
                } else {
                    guard (c &- Byte.zero) < 10 || ((c | 0x20) &- UInt8(ascii: "a")) < 6 else { throw malformed(j, .hexDigit) }
                    escape = escape == 2 ? 0 : escape &- 1
                }
                j &+= 1
                continue
            }
            if utf8Needed != 0 {
                let c = base.load(fromByteOffset: j, as: UInt8.self)
                guard c >= utf8Low && c <= utf8High else { throw malformed(j, .utf8) }
                utf8Needed &-= 1
                utf8Low = 0x80
                utf8High = 0xBF
                j &+= 1
                continue
            }
            j = plainASCIIBytes(base, j, end)
            guard j < end else { return end }
            let c = base.load(fromByteOffset: j, as: UInt8.self)
            if c == Byte.quote { return j }
            if c == Byte.backslash {
                escape = 1
                j &+= 1
                continue
            }
            utf8Low = 0x80
            utf8High = 0xBF
            switch c {
            case 0xC2...0xDF: utf8Needed = 1
            case 0xE0: utf8Needed = 2; utf8Low = 0xA0  // no overlong forms
            case 0xE1...0xEC, 0xEE, 0xEF: utf8Needed = 2
            case 0xED: utf8Needed = 2; utf8High = 0x9F  // no surrogates
            case 0xF0: utf8Needed = 3; utf8Low = 0x90  // no overlong forms
            case 0xF1...0xF3: utf8Needed = 3
            case 0xF4: utf8Needed = 3; utf8High = 0x8F  // nothing past U+10FFFF
            default: throw malformed(j, c < 0x20 ? .stringByte : .utf8)
            }
            j &+= 1
        }
        return end
    }

    /// A string's closing quote at `q`.
    private mutating func endString(_ q: Int, _ emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) {
        guard stringIsName else {
            if stringMode == .output { try write(Byte.quote, q) }
            try valueDone(at: q, emit)
            return
        }
        state = .colon
        pending = Plan.drop
        guard depth > 0 else { return }
        switch top.mode {
        case .members:
            guard !nameOverflow, let child = names[Int(top.plan)].plan(of: nameBuffer) else { return }
            let comma = top.hasOutput ? 1 : 0
            try reserve(comma &+ nameBuffer.count &+ 3, q)
            if comma != 0 { out.append(Byte.comma) }
            out.append(Byte.quote)
            nameBuffer.withUnsafeBytes { name in
                if let start = name.baseAddress { append(start, name.count) }
            }
            out.append(Byte.quote)
            out.append(Byte.colon)
            top.hasOutput = true
            pending = child
        case .names:
            try write("\":", q)
            pending = Plan.null
        case .copy:
            try write("\":", q)
            pending = Plan.all
        case .skip, .elements, .records:
            break
        }
    }

    /// The number in progress, from `i`; it ends before the first byte that cannot continue it.
    private mutating func number(_ base: UnsafeRawPointer, _ i: Int, _ n: Int,
                                 _ emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) -> Int {
        var j = i
        var s = number
        let room = scalarKept ? maxOutputBytes &- (out.count &- sinkStart) : Int.max
        var ended = false
        scan: while j < n {
            let c = base.load(fromByteOffset: j, as: UInt8.self)
            let digit = (c &- Byte.zero) < 10
            let e = c | 0x20 == UInt8(ascii: "e")
            switch s {
            case .start:
                if c == Byte.minus { s = .minus } else if c == Byte.zero { s = .zero } else if digit { s = .integer } else { throw malformed(j, .digit) }
            case .minus:
                if c == Byte.zero { s = .zero } else if digit { s = .integer } else { throw malformed(j, .digit) }
            case .zero:
                if c == UInt8(ascii: ".") { s = .dot } else if e { s = .exponent } else if digit { throw malformed(j, .numberEnd) } else { ended = true }
            case .integer:
                if digit {} else if c == UInt8(ascii: ".") { s = .dot } else if e { s = .exponent } else { ended = true }
            case .dot:
                if digit { s = .fraction } else { throw malformed(j, .digit) }
            case .fraction:
                if digit {} else if e { s = .exponent } else { ended = true }
            case .exponent:
                if c == Byte.minus || c == UInt8(ascii: "+") { s = .exponentSign } else if digit { s = .exponentDigits } else { throw malformed(j, .digit) }
            case .exponentSign:
                if digit { s = .exponentDigits } else { throw malformed(j, .digit) }
            case .exponentDigits:
                if !digit { ended = true }
            }
            if ended { break scan }
            if j &- i >= room { throw JSONStreamFilterError.outputTooLarge(limit: maxOutputBytes, offset: consumed &+ j) }
            j &+= 1
        }
        number = s
        if scalarKept { append(base + i, j &- i) }
        if ended { try valueDone(at: j, emit) }
        return j
    }

    /// The literal in progress, from `i`.
    private mutating func literal(_ base: UnsafeRawPointer, _ i: Int, _ n: Int,
                                  _ emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) -> Int {
        let word = literalWord.text
        let count = word.utf8CodeUnitCount
        var j = i
        while j < n && literalPosition < count {
            guard base.load(fromByteOffset: j, as: UInt8.self) == word.utf8Start[literalPosition] else {
                throw malformed(j, .literal)
            }
            literalPosition &+= 1
            j &+= 1
        }
        if literalPosition == count {
            if scalarKept { try write(word, j &- 1) }
            try valueDone(at: j &- 1, emit)
        }
        return j
    }

    /// A container's closing bracket `b` at `i` (the caller checked it matches).
    private mutating func close(_ b: UInt8, _ i: Int, _ emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) {
        guard depth > 0 else { throw malformed(i, .value) }
        if top.mode != .skip { try write(b, i) }
        depth &-= 1
        if depth > 0, let next = outer.popLast() { top = next }
        try valueDone(at: i, emit)
    }

    /// A value ended at `i`: a record or a document is handed out if it was one.
    private mutating func valueDone(at i: Int, _ emit: (JSONFilterOutput) -> Void) throws(JSONStreamFilterError) {
        guard depth > 0 else {
            let document = out
            out = []
            state = .between
            emit(.document(document))
            return
        }
        if top.mode == .records {
            let start = sinkStart
            emit(.record(Array(out[start...])))
            out.removeSubrange(start...)
            _ = sinks.popLast()
            sinkStart = sinks.last ?? 0
        }
        state = .afterValue
    }

    // MARK: - Output

    /// Checks that `count` more kept bytes fit in the current record or document.
    @inline(__always)
    private func reserve(_ count: Int, _ i: Int) throws(JSONStreamFilterError) {
        guard count <= maxOutputBytes &- (out.count &- sinkStart) else {
            throw JSONStreamFilterError.outputTooLarge(limit: maxOutputBytes, offset: consumed &+ i)
        }
    }

    @inline(__always)
    private mutating func write(_ byte: UInt8, _ i: Int) throws(JSONStreamFilterError) {
        try reserve(1, i)
        out.append(byte)
    }

    /// A few fixed bytes (`null`, `":`, a literal): appended one by one, cheaper than a copy.
    private mutating func write(_ text: StaticString, _ i: Int) throws(JSONStreamFilterError) {
        let count = text.utf8CodeUnitCount
        try reserve(count, i)
        let bytes = text.utf8Start
        for k in 0..<count { out.append(bytes[k]) }
    }

    /// Copies `count` input bytes to the output (the caller checked the room).
    @inline(__always)
    private mutating func append(_ source: UnsafeRawPointer, _ count: Int) {
        Self.append(source, count, to: &out)
    }

    /// One copy into the array's free room: `append(contentsOf:)` of raw bytes goes
    /// byte by byte.
    @inline(__always)
    private static func append(_ source: UnsafeRawPointer, _ count: Int, to array: inout [UInt8]) {
        guard count > 0 else { return }
        array.append(addingCapacity: count) { room in
            room.withUnsafeMutableBufferPointer { free, initialized in
                guard let target = free.baseAddress, free.count >= count else { return }
                UnsafeMutableRawPointer(target).copyMemory(from: source, byteCount: count)
                initialized = count
            }
        }
    }

    private func malformed(_ i: Int, _ expected: JSONStreamFilterError.Expected) -> JSONStreamFilterError {
        .malformed(offset: consumed &+ i, expected: expected)
    }
}

// MARK: - Parts

extension JSONStreamFilter {
    private enum State: UInt8 {
        /// Top level, before a document.
        case between
        /// A value is due (after a colon, or a comma in an array).
        case value
        /// Just after `[`.
        case valueOrClose
        /// Just after `{`.
        case nameOrClose
        /// After a comma in an object.
        case name
        /// After a member name.
        case colon
        /// After a value in a container.
        case afterValue
        case string, number, literal
    }

    /// What a container's contents become.
    private enum Mode: UInt8 {
        /// Not kept: scanned past.
        case skip
        /// Kept whole (`.all`).
        case copy
        /// An object of `.members`: its plan holds the names.
        case members
        /// An object of `.memberNames`.
        case names
        /// An array of `.elements`: its plan is the elements'.
        case elements
        /// An array of `.records`: its plan is the records'.
        case records
    }

    private struct Frame: Sendable {
        var isObject: Bool
        var mode: Mode
        /// Whether the kept container already holds a member or element (a comma is due).
        var hasOutput: Bool
        var plan: Int32
    }

    private enum StringMode: UInt8 {
        /// Scanned for its end only.
        case skip
        /// Validated and copied to the output.
        case output
        /// A member name to match: validated and held (up to the longest name asked for).
        case name
    }

    private enum NumberState: UInt8 {
        case start, minus, zero, integer, dot, fraction, exponent, exponentSign, exponentDigits

        /// Whether the number may end here (after a digit of its integer, fraction or exponent).
        var canEnd: Bool {
            switch self {
            case .zero, .integer, .fraction, .exponentDigits: return true
            default: return false
            }
        }
    }

    private enum Literal: UInt8 {
        case `true`, `false`, null

        var text: StaticString {
            switch self {
            case .true: return "true"
            case .false: return "false"
            case .null: return "null"
            }
        }
    }

    /// A `JSONKeep` node, flattened into an array so the machine refers to it by index.
    private struct Plan: Sendable {
        enum Kind: UInt8 {
            /// Skipped, nothing written (not in `JSONKeep`: a member it does not name).
            case drop
            /// Skipped, `null` written (a `.memberNames` value).
            case null
            case all, members, memberNames, elements, records
        }

        static let drop: Int32 = 0
        static let null: Int32 = 1
        static let all: Int32 = 2
        static let memberNames: Int32 = 3

        var kind: Kind
        /// The plan of elements or records.
        var child: Int32 = 0
        /// For `.members`: the names and their plans.
        var names = Names()

        /// A `.members` node's names as raw bytes, each with its plan.
        struct Names: Sendable {
            /// Few, as in every tree the cache uses: compared one by one, length first
            /// (cheaper than hashing the name).
            var list: [(name: [UInt8], plan: Int32)] = []
            /// Many: looked up by hash.
            var table: [[UInt8]: Int32] = [:]
            var longest = 0

            init() {}

            init(_ members: [[UInt8]: Int32]) {
                if members.count <= 8 { list = members.map { ($0.key, $0.value) } } else { table = members }
                longest = members.keys.map(\.count).max() ?? 0
            }

            @inline(__always)
            func plan(of name: [UInt8]) -> Int32? {
                guard table.isEmpty else { return table[name] }
                for entry in list where entry.name.count == name.count && entry.name == name { return entry.plan }
                return nil
            }
        }

        /// Appends `keep`'s plans to `plans` and returns the index of its own. Recursive
        /// over the keep tree, which code builds; the input never recurses.
        static func compile(_ keep: JSONKeep, into plans: inout [Plan]) -> Int32 {
            switch keep {
            case .all:
                return all
            case .memberNames:
                return memberNames
            case .members(let members):
                let index = Int32(plans.count)
                plans.append(Plan(kind: .members))
                var names: [[UInt8]: Int32] = [:]
                for (name, entry) in members { names[Array(name.utf8)] = compile(entry, into: &plans) }
                plans[Int(index)].names = Names(names)
                return index
            case .elements(let entry), .records(let entry):
                let index = Int32(plans.count)
                var isRecords = false
                if case .records = keep { isRecords = true }
                plans.append(Plan(kind: isRecords ? .records : .elements))
                plans[Int(index)].child = compile(entry, into: &plans)
                return index
            }
        }
    }

    private enum Byte {
        static let quote = UInt8(ascii: "\"")
        static let backslash = UInt8(ascii: "\\")
        static let colon = UInt8(ascii: ":")
        static let comma = UInt8(ascii: ",")
        static let openBrace = UInt8(ascii: "{")
        static let closeBrace = UInt8(ascii: "}")
        static let openBracket = UInt8(ascii: "[")
        static let closeBracket = UInt8(ascii: "]")
        static let minus = UInt8(ascii: "-")
        static let zero = UInt8(ascii: "0")
        static let t = UInt8(ascii: "t")
        static let f = UInt8(ascii: "f")
        static let n = UInt8(ascii: "n")
    }
}

// MARK: - Scanning

/// The first index at or after `j` (below `n`) of a quote, a backslash or a control
/// byte, or `n`: the end of a run of a skipped string's bytes. Thirty-two bytes a step
/// with vector compares, then one by one: skipped strings are most of a Secret's bytes.
@inline(__always)
private func skipPlainStringBytes(_ base: UnsafeRawPointer, _ j: Int, _ n: Int) -> Int {
    var j = j
    let quote = SIMD16<UInt8>(repeating: 0x22), backslash = SIMD16<UInt8>(repeating: 0x5C)
    let controlBits = SIMD16<UInt8>(repeating: 0xE0)
    while j < n &- 31 {
        let a = (base + j).loadUnaligned(as: SIMD16<UInt8>.self)
        let b = (base + (j &+ 16)).loadUnaligned(as: SIMD16<UInt8>.self)
        let fa = (a .== quote) .| (a .== backslash) .| ((a & controlBits) .== .zero)
        let fb = (b .== quote) .| (b .== backslash) .| ((b & controlBits) .== .zero)
        if let k = firstFlagged(fa) { return j &+ k }
        if let k = firstFlagged(fb) { return j &+ 16 &+ k }
        j &+= 32
    }
    while j < n {
        let c = base.load(fromByteOffset: j, as: UInt8.self)
        if c == 0x22 || c == 0x5C || c < 0x20 { return j }
        j &+= 1
    }
    return n
}

/// The first index at or after `j` (below `end`) of a byte that is not plain ASCII
/// string content (a quote, a backslash, a control byte or a byte from 0x80), or `end`.
@inline(__always)
private func plainASCIIBytes(_ base: UnsafeRawPointer, _ j: Int, _ end: Int) -> Int {
    var j = j
    let quote = SIMD16<Int8>(repeating: 0x22), backslash = SIMD16<Int8>(repeating: 0x5C)
    let space = SIMD16<Int8>(repeating: 0x20)
    while j < end &- 15 {
        let v = (base + j).loadUnaligned(as: SIMD16<Int8>.self)
        // Signed: bytes from 0x80 are negative, below the space like control bytes.
        let flagged = (v .== quote) .| (v .== backslash) .| (v .< space)
        if let k = firstFlagged(flagged) { return j &+ k }
        j &+= 16
    }
    while j < end {
        let c = base.load(fromByteOffset: j, as: UInt8.self)
        if c == 0x22 || c == 0x5C || c < 0x20 || c >= 0x80 { return j }
        j &+= 1
    }
    return end
}

/// The lane of the first set lane of `mask`, or nil. (Byte compares of `UInt8` and
/// `Int8` vectors both give this mask.)
@inline(__always)
private func firstFlagged(_ mask: SIMDMask<SIMD16<Int8>>) -> Int? {
    let words = unsafeBitCast(SIMD16<Int8>(repeating: 0).replacing(with: -1, where: mask), to: SIMD2<UInt64>.self)
    let low = UInt64(littleEndian: words[0]), high = UInt64(littleEndian: words[1])
    if low != 0 { return low.trailingZeroBitCount >> 3 }
    if high != 0 { return 8 &+ high.trailingZeroBitCount >> 3 }
    return nil
}
