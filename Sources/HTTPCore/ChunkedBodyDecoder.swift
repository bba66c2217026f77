import SystemSupport
/// Why a chunked body cannot be read.
public enum ChunkedBodyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A chunk-size line that is not `hex [whitespace] [; extension]`, whose size has more
    /// than `ChunkedBodyDecoder.maxSizeDigits` digits, or with a CR not followed by LF.
    case malformedChunkSize
    /// A chunk-size line longer than `ChunkedBodyDecoder.maxSizeLineBytes` (without its CRLF).
    case chunkSizeLineTooLong
    /// Chunk data not followed by CRLF.
    case dataNotFollowedByCRLF
    /// A trailer line that is not `name: value` ended by CRLF.
    case malformedTrailerField
    /// The trailer section is larger than its limit.
    case trailersTooLarge
    /// The chunks add up to more than the body limit.
    case bodyTooLarge

    public var description: String {
        switch self {
        case .malformedChunkSize: return "malformed chunk size"
        case .chunkSizeLineTooLong: return "chunk size line too long"
        case .dataNotFollowedByCRLF: return "chunk data not followed by CRLF"
        case .malformedTrailerField: return "malformed trailer field"
        case .trailersTooLarge: return "chunked trailer section too large"
        case .bodyTooLarge: return "chunked body too large"
        }
    }
}

/// An incremental decoder of an HTTP/1.1 chunked body (RFC 9112 section 7.1), from the
/// first chunk-size line to the empty line after the trailers. It holds no bytes and no
/// I/O: the caller hands it what it has buffered, and it says how many of those bytes it
/// consumed and what they were. Framing is judged byte by byte, so the first byte that
/// breaks a rule decides the verdict however the bytes are split, and nothing it is given
/// is ever buffered twice. It does not allocate.
///
/// A chunk-size line is 1 to `maxSizeDigits` hex digits (either case, leading zeros
/// counted), optional spaces or tabs, then optionally `;` and an extension of any bytes
/// but controls other than tab, which is ignored; lines end with CRLF, never a bare LF.
/// Trailer fields are checked (a token name, `:`, a field value) and dropped.
public struct ChunkedBodyDecoder: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Most bytes the chunks may add up to.
        public var maxBodyBytes: Int
        /// Most bytes of trailer lines, their CRLFs included (the final empty line is not counted).
        public var maxTrailerBytes: Int

        public init(maxBodyBytes: Int = .max, maxTrailerBytes: Int) {
            self.maxBodyBytes = maxBodyBytes
            self.maxTrailerBytes = maxTrailerBytes
        }
    }

    /// What a call to `decode` found.
    public enum Event: Sendable, Equatable {
        /// Every byte given was framing and is consumed: more bytes are needed.
        case needMoreBytes
        /// Body bytes: this range of the bytes given. They and the framing before them are
        /// consumed (`consumed` is the range's upper bound).
        case data(Range<Int>)
        /// The body and its trailer section are complete; bytes after `consumed` belong to
        /// what follows the body.
        case end
        /// The body cannot be read; every later call says so again.
        case failed(ChunkedBodyError)
    }

    /// Hex digits a chunk size may have: 15 (60 bits) always fit in an `Int`.
    public static let maxSizeDigits = 15
    public static let maxSizeLineBytes = 1024

    private enum State: Sendable {
        case sizeDigits
        case sizeWhitespace
        case sizeExtension
        /// The CR that ends a chunk-size line; LF must follow.
        case sizeLineEnd
        case data(remaining: Int)
        /// After chunk data: CR, then LF, must follow.
        case dataEndCR
        case dataEndLF
        case trailerLineStart
        case trailerName
        case trailerValue
        /// The CR that ends a trailer line; LF must follow.
        case trailerLineEnd
        /// The CR of the empty line that ends the trailer section; LF must follow.
        case finalLineEnd
        case done
        case failed(ChunkedBodyError)
    }

    public let limits: Limits
    private var state = State.sizeDigits
    /// The chunk-size line being read: its value, digits and bytes so far.
    private var size = 0
    private var digits = 0
    private var lineBytes = 0
    /// What the chunk-size lines have announced so far.
    private var bodyBytes = 0
    private var trailerBytes = 0

    public init(limits: Limits) {
        self.limits = limits
    }

    /// Decodes from the start of `bytes` up to the first body bytes, the end of the body,
    /// a failure or the end of `bytes`, and says how many bytes it consumed. Call again
    /// with the bytes after `consumed` (and any that arrive) until `.end` or `.failed`.
    public mutating func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> (event: Event, consumed: Int) {
        var index = 0
        while true {
            switch state {
            case .done:
                return (.end, index)
            case .failed(let error):
                return (.failed(error), index)
            case .data(let remaining):
                guard index < bytes.count else { return (.needMoreBytes, index) }
                let taken = min(remaining, bytes.count - index)
                state = taken == remaining ? .dataEndCR : .data(remaining: remaining - taken)
                return (.data(index..<index + taken), index + taken)
            default:
                guard index < bytes.count else { return (.needMoreBytes, index) }
                frame(bytes[index])
                index += 1
            }
        }
    }

    /// One byte of a chunk-size line, a CRLF or the trailer section.
    private mutating func frame(_ byte: UInt8) {
        switch state {
        case .sizeDigits, .sizeWhitespace, .sizeExtension:
            if byte == cr {
                state = digits > 0 ? .sizeLineEnd : .failed(.malformedChunkSize)
            } else {
                lineBytes += 1
                if lineBytes > Self.maxSizeLineBytes {
                    state = .failed(.chunkSizeLineTooLong)
                } else {
                    sizeLine(byte)
                }
            }
        case .sizeLineEnd:
            if byte == lf {
                sizeLineEnded()
            } else {
                state = .failed(.malformedChunkSize)
            }
        case .dataEndCR:
            state = byte == cr ? .dataEndLF : .failed(.dataNotFollowedByCRLF)
        case .dataEndLF:
            state = byte == lf ? .sizeDigits : .failed(.dataNotFollowedByCRLF)
        case .trailerLineStart:
            if byte == cr {
                state = .finalLineEnd
            } else if countTrailerByte() {
                state = HTTPSyntax.isTokenByte(byte) ? .trailerName : .failed(.malformedTrailerField)
            }
        case .trailerName:
            if countTrailerByte() {
                if byte == UInt8(ascii: ":") {
                    state = .trailerValue
                } else if !HTTPSyntax.isTokenByte(byte) {
                    state = .failed(.malformedTrailerField)
                }
            }
        case .trailerValue:
            if countTrailerByte() {
                if byte == cr {
                    state = .trailerLineEnd
                } else if !HTTPSyntax.isFieldValueByte(byte) {
                    state = .failed(.malformedTrailerField)
                }
            }
        case .trailerLineEnd:
            if countTrailerByte() {
                state = byte == lf ? .trailerLineStart : .failed(.malformedTrailerField)
            }
        case .finalLineEnd:
            state = byte == lf ? .done : .failed(.malformedTrailerField)
        case .data, .done, .failed:
            break
        }
    }

    /// A byte of a chunk-size line before its CR: the digits, then whitespace, then an extension.
    private mutating func sizeLine(_ byte: UInt8) {
        switch state {
        case .sizeDigits:
            if let value = ASCII.hexDigitValue(byte) {
                if digits < Self.maxSizeDigits {
                    size = size << 4 | Int(value)
                    digits += 1
                } else {
                    state = .failed(.malformedChunkSize)
                }
            } else if digits > 0 && (byte == space || byte == tab) {
                state = .sizeWhitespace
            } else if digits > 0 && byte == semicolon {
                state = .sizeExtension
            } else {
                state = .failed(.malformedChunkSize)
            }
        case .sizeWhitespace:
            if byte == semicolon {
                state = .sizeExtension
            } else if byte != space && byte != tab {
                state = .failed(.malformedChunkSize)
            }
        default:
            if byte < 0x20 && byte != tab { state = .failed(.malformedChunkSize) }
        }
    }

    /// The LF of a chunk-size line: the chunk's data next, or the trailers after the last.
    private mutating func sizeLineEnded() {
        defer {
            size = 0
            digits = 0
            lineBytes = 0
        }
        if size > limits.maxBodyBytes - bodyBytes {
            state = .failed(.bodyTooLarge)
        } else {
            bodyBytes += size
            state = size == 0 ? .trailerLineStart : .data(remaining: size)
        }
    }

    /// Counts a byte of the trailer section; false (and failed) past the limit.
    private mutating func countTrailerByte() -> Bool {
        trailerBytes += 1
        guard trailerBytes <= limits.maxTrailerBytes else {
            state = .failed(.trailersTooLarge)
            return false
        }
        return true
    }
}

private let cr: UInt8 = 0x0D
private let lf: UInt8 = 0x0A
private let space: UInt8 = 0x20
private let tab: UInt8 = 0x09
private let semicolon = UInt8(ascii: ";")

