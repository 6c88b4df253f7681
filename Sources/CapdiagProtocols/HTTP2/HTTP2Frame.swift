/// HTTP/2 framing vocabulary (RFC 9113 §4, §6, §7, §11).
///
/// The module overview for `HTTP2/`: `HTTP2FrameParser` cuts one direction's bytes into frames
/// (push bytes, get events), `HPACKDecoder` decodes header blocks, and `HTTP2Connection` follows
/// both directions of one connection and keeps what a diagnosis needs per stream and for the
/// connection. Nothing here traps on any input: violations are values, and every buffer has a limit.

/// The frame types of RFC 9113 §6 (others are skipped, §4.1).
public enum HTTP2FrameType: UInt8, Sendable, CaseIterable {
    case data = 0x0, headers = 0x1, priority = 0x2, rstStream = 0x3, settings = 0x4, pushPromise = 0x5, ping = 0x6
    case goAway = 0x7, windowUpdate = 0x8, continuation = 0x9

    /// The RFC's name, e.g. `RST_STREAM`.
    public var name: String {
        switch self {
        case .data: "DATA"
        case .headers: "HEADERS"
        case .priority: "PRIORITY"
        case .rstStream: "RST_STREAM"
        case .settings: "SETTINGS"
        case .pushPromise: "PUSH_PROMISE"
        case .ping: "PING"
        case .goAway: "GOAWAY"
        case .windowUpdate: "WINDOW_UPDATE"
        case .continuation: "CONTINUATION"
        }
    }
}

/// Frame flags (RFC 9113 §6).
public enum HTTP2Flag {
    public static let endStream: UInt8 = 0x1
    /// SETTINGS and PING.
    public static let ack: UInt8 = 0x1
    public static let endHeaders: UInt8 = 0x4
    public static let padded: UInt8 = 0x8
    public static let priority: UInt8 = 0x20
}

/// An error code of RST_STREAM and GOAWAY (RFC 9113 §7). Unknown codes are kept as numbers.
public struct HTTP2ErrorCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = HTTP2ErrorCode(0x0)
    public static let protocolError = HTTP2ErrorCode(0x1)
    public static let internalError = HTTP2ErrorCode(0x2)
    public static let flowControlError = HTTP2ErrorCode(0x3)
    public static let settingsTimeout = HTTP2ErrorCode(0x4)
    public static let streamClosed = HTTP2ErrorCode(0x5)
    public static let frameSizeError = HTTP2ErrorCode(0x6)
    public static let refusedStream = HTTP2ErrorCode(0x7)
    public static let cancel = HTTP2ErrorCode(0x8)
    public static let compressionError = HTTP2ErrorCode(0x9)
    public static let connectError = HTTP2ErrorCode(0xa)
    public static let enhanceYourCalm = HTTP2ErrorCode(0xb)
    public static let inadequateSecurity = HTTP2ErrorCode(0xc)
    public static let http11Required = HTTP2ErrorCode(0xd)

    static let names = [
        "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
        "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
    ]

    /// The RFC's name (`REFUSED_STREAM`), or `0x…` for a code it does not define.
    public var name: String {
        rawValue < UInt32(Self.names.count) ? Self.names[Int(rawValue)] : "0x" + String(rawValue, radix: 16)
    }

    public var description: String { name }
}

/// SETTINGS parameters (RFC 9113 §6.5.2).
public enum HTTP2SettingID {
    public static let headerTableSize: UInt16 = 0x1
    public static let enablePush: UInt16 = 0x2
    public static let maxConcurrentStreams: UInt16 = 0x3
    public static let initialWindowSize: UInt16 = 0x4
    public static let maxFrameSize: UInt16 = 0x5
    public static let maxHeaderListSize: UInt16 = 0x6
}

/// One parameter of a SETTINGS frame.
public struct HTTP2Setting: Sendable, Equatable {
    public var id: UInt16
    public var value: UInt32
    public init(id: UInt16, value: UInt32) {
        self.id = id
        self.value = value
    }
}

/// The 9-byte frame header (RFC 9113 §4.1).
public struct HTTP2FrameHeader: Sendable, Equatable {
    /// Payload length (24 bits).
    public var length: Int
    public var typeCode: UInt8
    public var flags: UInt8
    /// The stream identifier, reserved bit cleared.
    public var streamID: UInt32

    public init(length: Int, typeCode: UInt8, flags: UInt8, streamID: UInt32) {
        self.length = length
        self.typeCode = typeCode
        self.flags = flags
        self.streamID = streamID
    }

    /// Nil for a type RFC 9113 does not define (skipped, §4.1).
    public var type: HTTP2FrameType? { HTTP2FrameType(rawValue: typeCode) }

    public func has(_ flag: UInt8) -> Bool { flags & flag != 0 }
}

/// PRIORITY fields (RFC 9113 §6.3; deprecated but still parsed).
public struct HTTP2Priority: Sendable, Equatable {
    public var exclusive: Bool
    public var dependency: UInt32
    public var weight: UInt8
}

/// What a frame carried, as far as the observer needs it. Header block fragments are copies;
/// DATA payloads are only counted, never kept.
public enum HTTP2FramePayload: Sendable, Equatable {
    /// DATA: the application bytes (padding excluded) and the padding (pad length byte included).
    case data(dataLength: Int, padding: Int)
    /// HEADERS: the header block fragment (padding and priority removed). `complete` is false when
    /// the fragment was longer than the parser buffers, and so is cut.
    case headers(fragment: [UInt8], complete: Bool, priority: HTTP2Priority?)
    case priority(HTTP2Priority)
    case rstStream(HTTP2ErrorCode)
    /// SETTINGS (empty for an ACK). `complete` is false when more parameters came than are buffered.
    case settings([HTTP2Setting], complete: Bool)
    case pushPromise(promisedStreamID: UInt32, fragment: [UInt8], complete: Bool)
    case ping(opaque: UInt64)
    /// GOAWAY: the debug data is cut at `HTTP2FrameParser.maximumDebugData` bytes; `debugLength` is its full length.
    case goAway(lastStreamID: UInt32, errorCode: HTTP2ErrorCode, debugData: [UInt8], debugLength: Int)
    case windowUpdate(increment: UInt32)
    case continuation(fragment: [UInt8], complete: Bool)
    /// A frame type RFC 9113 does not define: skipped (§4.1, §5.5).
    case unknown
}

/// One frame, header and parsed payload.
public struct HTTP2Frame: Sendable, Equatable {
    public var header: HTTP2FrameHeader
    public var payload: HTTP2FramePayload
}

/// Something in an HTTP/2 stream that breaks RFC 9113 (or a limit of capdiag's), with a stable
/// snake_case code, the error code a receiver would answer with, and the stream it concerns
/// (0 for the connection).
public struct HTTP2Violation: Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var errorCode: HTTP2ErrorCode
    public var streamID: UInt32
    public var detail: String

    public init(_ code: String, _ errorCode: HTTP2ErrorCode, stream streamID: UInt32 = 0, _ detail: String) {
        self.code = code
        self.errorCode = errorCode
        self.streamID = streamID
        self.detail = detail
    }

    public var description: String { "\(code) (\(errorCode.name), stream \(streamID)): \(detail)" }
}
