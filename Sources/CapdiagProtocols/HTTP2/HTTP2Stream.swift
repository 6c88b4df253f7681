import CapdiagWire

/// A RST_STREAM: its code, who sent it, and when.
public struct HTTP2Reset: Sendable, Equatable {
    public var code: HTTP2ErrorCode
    public var by: StreamSide
    public var packet: PacketRef
}

/// What one HTTP/2 stream carried, as far as a diagnosis needs it (RFC 9113 §5, §8). Values are
/// capped in length; bodies are only counted.
public struct HTTP2Stream: Sendable, Equatable {
    public var id: UInt32
    /// The client opens odd streams; the server reserves even ones with PUSH_PROMISE.
    public var openedBy: StreamSide
    /// The first and last frame that concerned the stream.
    public var first: PacketRef
    public var last: PacketRef

    // Request (the client's first header block, or the PUSH_PROMISE's).
    public var method: String?
    public var path: String?
    public var authority: String?
    public var scheme: String?
    public var requestContentType: String?
    public var requestContentLength: Int64?
    /// X-Request-Id, traceparent and the other request-ID headers (HTTP/1's list).
    public var requestIDs: [HeaderValue] = []
    /// When the request's header block was complete.
    public var requestHeaders: PacketRef?

    // Response.
    /// 1xx responses before the final one.
    public var interimStatuses: [Int] = []
    public var status: Int?
    public var responseHeaders: PacketRef?
    public var responseContentType: String?
    public var responseContentLength: Int64?
    /// The server's header block after the response head (RFC 9113 §8.1), when one came.
    public var trailers: PacketRef?
    /// gRPC's status and message (PROTOCOL-HTTP2.md), from trailers or a trailers-only response.
    public var grpcStatus: Int?
    public var grpcMessage: String?

    // Ends.
    /// END_STREAM from each side.
    public var clientEnded: PacketRef?
    public var serverEnded: PacketRef?
    /// The first RST_STREAM, and how many came.
    public var reset: HTTP2Reset?
    public var resetCount = 0
    /// The connection closed in some direction while the stream was open: which side, how, when.
    public var connectionClosed: HTTP2Close?

    // DATA.
    public var clientDataBytes: Int64 = 0
    public var serverDataBytes: Int64 = 0
    public var clientDataFrames = 0
    public var serverDataFrames = 0

    // GOAWAY.
    /// Above the last stream identifier of a GOAWAY from the side that did not open it: the peer
    /// says it did not process it (RFC 9113 §6.8), so it may be retried.
    public var aboveGoAwayLastStream = false
    /// Opened after that GOAWAY was sent (the opener had not seen it yet, or ignored it).
    public var openedAfterGoAway = false

    // Flow control (RFC 9113 §6.9): what each side may still send on the stream, and when that
    // first reached zero or less.
    public var clientWindow: Int64
    public var serverWindow: Int64
    public var clientWindowExhausted: PacketRef?
    public var serverWindowExhausted: PacketRef?

    /// A header block of the stream could not be decoded (HPACK failed, or a limit): its
    /// header fields are unknown.
    public var headersUnknown = false
    /// Header blocks of each side (request or response head, trailers).
    public var clientHeaderBlocks = 0
    public var serverHeaderBlocks = 0

    public init(id: UInt32, openedBy: StreamSide, packet: PacketRef, clientWindow: Int64 = 65_535, serverWindow: Int64 = 65_535) {
        self.id = id
        self.openedBy = openedBy
        self.first = packet
        self.last = packet
        self.clientWindow = clientWindow
        self.serverWindow = serverWindow
    }

    /// Both sides ended the stream, or it was reset (RFC 9113 §5.1 "closed").
    public var isClosed: Bool { reset != nil || (clientEnded != nil && serverEnded != nil) }

    /// Whether nothing about the stream calls for attention: both ends, a 1xx–3xx status (or a
    /// pushed stream), gRPC OK if gRPC, no reset, all headers known.
    public var isUnremarkable: Bool {
        reset == nil && clientEnded != nil && serverEnded != nil && !headersUnknown && !aboveGoAwayLastStream
            && (status.map { $0 < 400 } ?? false) && (grpcStatus ?? 0) == 0
    }
}

/// One side of the connection closed (FIN, RST, or the capture ended).
public struct HTTP2Close: Sendable, Equatable {
    public var side: StreamSide
    public var kind: CloseKind
    public var packet: PacketRef
}

/// The SETTINGS one side advertised (RFC 9113 §6.5.2): the latest value of each parameter seen.
public struct HTTP2Settings: Sendable, Equatable {
    public var headerTableSize: UInt32?
    public var enablePush: UInt32?
    public var maxConcurrentStreams: UInt32?
    public var initialWindowSize: UInt32?
    public var maxFrameSize: UInt32?
    public var maxHeaderListSize: UInt32?
    /// The first SETTINGS frame (the side's connection preface), and how many came.
    public var first: PacketRef?
    public var frames = 0
    /// SETTINGS ACKs this side sent.
    public var acks = 0

    public init() {}
}

/// A GOAWAY (RFC 9113 §6.8).
public struct HTTP2GoAway: Sendable, Equatable {
    public var from: StreamSide
    public var lastStreamID: UInt32
    public var errorCode: HTTP2ErrorCode
    /// Debug data, printable ASCII, at most `HTTP2FrameParser.maximumDebugData` bytes.
    public var debugData: String
    public var packet: PacketRef
    /// Streams of the other side above `lastStreamID` that were open when it came (in flight:
    /// the GOAWAY race), and those opened after it.
    public var streamsInFlight = 0
    public var streamsOpenedAfter = 0
}

/// A flow-control window that reached zero or less (RFC 9113 §6.9): the sender had to stop.
public struct HTTP2WindowStall: Sendable, Equatable {
    /// The side that may not send.
    public var side: StreamSide
    /// 0 for the connection window.
    public var streamID: UInt32
    public var at: PacketRef
    /// The WINDOW_UPDATE (or SETTINGS) that opened it again, if one came.
    public var reopened: PacketRef?
}

/// A violation with where it happened.
public struct HTTP2Anomaly: Sendable, Equatable {
    public var violation: HTTP2Violation
    public var side: StreamSide
    public var packet: PacketRef
}

/// Limits that bound an `HTTP2Connection`'s memory on hostile input; each one hit is counted
/// and named in `limitsReached`.
public struct HTTP2Limits: Sendable, Equatable {
    /// Streams followed at once; more are counted, not followed (`untrackedStreams`).
    public var maximumOpenStreams = 10_000
    /// Finished streams kept: unremarkable ones, and the others (errors, resets, open at close).
    public var keepUnremarkableStreams = 64
    public var keepOtherStreams = 1024
    /// A header block larger than this is given up (and the direction's HPACK with it).
    public var maximumHeaderBlock = 262_144
    /// CONTINUATION frames in one header block (a flood of empty ones is an attack, CVE-2024-27316).
    public var maximumContinuations = 1024
    public var maximumAnomalies = 32
    public var maximumGoAways = 8
    public var maximumStalls = 64
    /// Characters kept of `:path`, and of `:authority`, grpc-message and other values.
    public var maximumPathLength = 1024
    public var maximumValueLength = 256

    public init() {}
}
