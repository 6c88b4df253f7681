import CapdiagWire

/// Follows HTTP/2 on one TCP connection (RFC 9113): a frame parser and an HPACK decoder per
/// direction, the streams with what a diagnosis needs, SETTINGS, GOAWAY, PING and flow control.
///
/// Feeding it: after a TCP reassembler, call `received` with each direction's in-order bytes
/// and the packet that delivered them (frame number and time), `gap` for bytes the capture
/// lost, `closed` when a side sends FIN or RST (or the capture ends), and `finish` once at the
/// flow's end. Directions may interleave in any way; each is parsed on its own, so the result
/// does not depend on how the bytes were cut into packets. The client's bytes start with the
/// connection preface; the server's with its SETTINGS. After HTTP/1.1 `Upgrade: h2c`, start
/// with `init(upgradedFrom:)` and feed the bytes that follow the 101 response (server) and
/// the upgrade request (client).
///
/// Memory is bounded by `HTTP2Limits`: streams followed at once, finished streams kept, header
/// block size, CONTINUATION chains, anomalies, GOAWAYs and window stalls kept. Everything past a
/// limit is counted. Nothing traps on any input.
public struct HTTP2Connection: Sendable {
    /// One direction: its parser, the HPACK decoder for its header blocks, and what it advertised.
    struct Side: Sendable {
        var parser: HTTP2FrameParser
        /// Decodes the header blocks this side sends.
        var decoder = HPACKDecoder()
        var settings = HTTP2Settings()
        /// What this side may still send on the connection (RFC 9113 §6.9.1).
        var connectionWindow: Int64 = 65_535
        var block: HeaderBlock?
        var sawFirstFrame = false
        /// Frames by type code (0...9), and unknown types at index 10.
        var frames = [Int](repeating: 0, count: 11)
        var dataBytes: Int64 = 0
        var pings = 0
        var pingAcks = 0
        var lostSync = false
        var close: HTTP2Close?
        /// A frame was cut short by the close or the end of the capture.
        var cutFrame = false
        /// The highest stream this side opened (client: odd, server: even via PUSH_PROMISE).
        var highestStreamOpened: UInt32 = 0
        /// The latest GOAWAY this side sent: its last stream and its place in `goAways` (if kept).
        var goAwayLastStream: UInt32?
        var goAwayIndex: Int?
        var resets: [HTTP2ErrorCode: Int] = [:]

        init(expectPreface: Bool, limits: HTTP2Limits) {
            parser = HTTP2FrameParser(expectPreface: expectPreface, maximumHeaderFragment: limits.maximumHeaderBlock)
        }
    }

    /// A header block being collected from HEADERS or PUSH_PROMISE and its CONTINUATIONs.
    struct HeaderBlock: Sendable {
        var streamID: UInt32
        var promisedStreamID: UInt32?
        var endStream: Bool
        var bytes: [UInt8]
        var continuations = 0
        /// Given up (too large, too many CONTINUATIONs): collected no further, never decoded.
        var abandoned = false
    }

    public let limits: HTTP2Limits
    /// Mask credentials in the paths kept.
    public let redact: Bool

    var client: Side
    var server: Side
    var open: [UInt32: HTTP2Stream] = [:]
    var keptIndex: [UInt32: Int] = [:]
    var keptUnremarkable = 0
    var keptOther = 0

    /// Finished streams kept (see `HTTP2Limits`), in the order they finished; after `finish`,
    /// the streams still open follow, by identifier.
    public private(set) var streams: [HTTP2Stream] = []
    /// Streams opened (by HEADERS or PUSH_PROMISE), all of them.
    public private(set) var streamCount = 0
    /// Streams not followed because `maximumOpenStreams` were open.
    public private(set) var untrackedStreams = 0
    /// Finished streams counted but not kept.
    public private(set) var droppedStreams = 0
    /// Client header blocks with `:method` (requests), and every `:status` and `grpc-status` of
    /// the server's header blocks by value (1xx included; an unparsable grpc-status under -1).
    public private(set) var requestCount = 0
    public private(set) var statusCounts: [Int: Int] = [:]
    public private(set) var grpcStatusCounts: [Int: Int] = [:]
    public private(set) var goAways: [HTTP2GoAway] = []
    public private(set) var goAwayCount = 0
    public private(set) var stalls: [HTTP2WindowStall] = []
    public private(set) var stallCount = 0
    public private(set) var anomalies: [HTTP2Anomaly] = []
    public private(set) var anomalyCount = 0
    /// Anomalies by code, all of them.
    public private(set) var anomalyCounts: [String: Int] = [:]
    /// Limits hit, by name (`max_open_streams`, `header_block_too_large`, …), each once.
    public private(set) var limitsReached: [String] = []
    /// The packet that completed the client's connection preface.
    public private(set) var preface: PacketRef?
    /// Frames on streams already closed (late WINDOW_UPDATE, DATA after a reset, …): legal
    /// races mostly, counted.
    public private(set) var framesOnClosedStreams = 0
    /// DATA beyond the receiver's window as this observer tracks it (RFC 9113 §6.9.1).
    public private(set) var windowOverruns = 0
    /// The connection was started by an h2c upgrade (stream 1 is the upgrade request).
    public let upgraded: Bool

    /// A connection with prior knowledge (RFC 9113 §3.3): the client's first bytes are the preface.
    public init(limits: HTTP2Limits = HTTP2Limits(), redact: Bool = true) {
        self.limits = limits
        self.redact = redact
        self.upgraded = false
        client = Side(expectPreface: true, limits: limits)
        server = Side(expectPreface: false, limits: limits)
    }

    /// A connection that an HTTP/1.1 request upgraded with `Upgrade: h2c` and a 101 response
    /// (RFC 7540 §3.2; RFC 9113 §3.1 deprecates it, but it is still met). The upgrade request
    /// is stream 1, half-closed by the client; the server answers it on stream 1 with HEADERS.
    ///
    /// Feed the client's bytes from the end of the upgrade request (they start with the
    /// connection preface) and the server's from the end of the 101 response's header section
    /// (they start with SETTINGS).
    /// - Parameters:
    ///   - request: the upgrade request, as the HTTP/1 analysis kept it (method, target, host,
    ///     request IDs, when it started and completed).
    ///   - http2Settings: the request's `HTTP2-Settings` header (base64url SETTINGS payload),
    ///     which are the client's initial settings; nil when unknown.
    public init(upgradedFrom request: HTTPExchange, http2Settings: String? = nil, limits: HTTP2Limits = HTTP2Limits(), redact: Bool = true) {
        self.limits = limits
        self.redact = redact
        self.upgraded = true
        client = Side(expectPreface: true, limits: limits)
        server = Side(expectPreface: false, limits: limits)
        let packet = PacketRef(frame: request.requestFrame ?? 0, time: request.requestStart ?? .zero)
        if let http2Settings, let payload = base64URLDecoded(http2Settings, limit: 1536) {
            var settings: [HTTP2Setting] = []
            var offset = 0
            while offset + 6 <= payload.count {
                let value = payload[offset + 2..<offset + 6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                settings.append(HTTP2Setting(id: UInt16(payload[offset]) << 8 | UInt16(payload[offset + 1]), value: value))
                offset += 6
            }
            applySettings(settings, from: .client, packet: packet)
        }
        if var stream = openStream(1, by: .client, packet: packet) {
            stream.method = request.method
            stream.path = request.target.map { String($0.prefix(limits.maximumPathLength)) }
            stream.authority = request.host.map { String($0.prefix(limits.maximumValueLength)) }
            stream.requestIDs = request.requestIDs
            stream.requestHeaders = packet
            stream.clientHeaderBlocks = 1
            stream.clientEnded = request.requestComplete.map { PacketRef(frame: request.requestFrame ?? 0, time: $0) } ?? packet
            open[1] = stream
        }
        if request.method != nil { requestCount += 1 }
    }

    // MARK: - Reading

    /// What each side advertised in SETTINGS.
    public var clientSettings: HTTP2Settings { client.settings }
    public var serverSettings: HTTP2Settings { server.settings }
    /// What each side may still send on the connection (can be negative after a SETTINGS change).
    public func connectionWindow(of side: StreamSide) -> Int64 { side == .client ? client.connectionWindow : server.connectionWindow }
    /// Frames a side sent of a type (nil: of types RFC 9113 does not define).
    public func frames(_ type: HTTP2FrameType?, from side: StreamSide) -> Int {
        (side == .client ? client : server).frames[type.map { Int($0.rawValue) } ?? 10]
    }
    /// DATA payload bytes (padding excluded) a side sent, on all streams.
    public func dataBytes(from side: StreamSide) -> Int64 { side == .client ? client.dataBytes : server.dataBytes }
    /// PINGs a side sent, and PING ACKs.
    public func pings(from side: StreamSide) -> (pings: Int, acks: Int) {
        let s = side == .client ? client : server
        return (s.pings, s.pingAcks)
    }
    /// RST_STREAMs a side sent, by error code.
    public func resets(from side: StreamSide) -> [HTTP2ErrorCode: Int] { side == .client ? client.resets : server.resets }
    /// How a side closed, if it did.
    public func close(of side: StreamSide) -> HTTP2Close? { side == .client ? client.close : server.close }
    /// A side's frames could not be followed any more: a capture gap outside DATA, or a bad preface.
    public func stoppedParsing(_ side: StreamSide) -> Bool { (side == .client ? client : server).parser.hasFailed }
    /// A side's header blocks can no longer be decoded, and why.
    public func hpackFailure(_ side: StreamSide) -> HPACKError? { (side == .client ? client : server).decoder.failure }
    /// A side closed (or the capture ended) in the middle of a frame.
    public func frameCutShort(_ side: StreamSide) -> Bool { (side == .client ? client : server).cutFrame }
    /// Streams open now (followed ones).
    public var openStreams: [HTTP2Stream] { open.values.sorted { $0.id < $1.id } }

    /// The kept stream with this identifier, open or finished.
    public func stream(_ id: UInt32) -> HTTP2Stream? {
        if let stream = open[id] { return stream }
        return keptIndex[id].map { streams[$0] }
    }

    // MARK: - Feeding

    /// Feeds in-order bytes from one side; `bytes` is read only during the call.
    public mutating func received(_ bytes: RawSpan, from side: StreamSide, packet: PacketRef) {
        var parser = Self.placeholder
        if side == .client { swap(&parser, &client.parser) } else { swap(&parser, &server.parser) }
        parser.feed(bytes) { event in handle(event, from: side, packet: packet) }
        if side == .client { swap(&parser, &client.parser) } else { swap(&parser, &server.parser) }
    }

    /// Bytes missing from the capture on one side. Inside a DATA payload they are counted as
    /// DATA; elsewhere that side is followed no further.
    public mutating func gap(_ length: Int64, from side: StreamSide, packet: PacketRef) {
        var parser = Self.placeholder
        if side == .client { swap(&parser, &client.parser) } else { swap(&parser, &server.parser) }
        parser.gap(length) { event in handle(event, from: side, packet: packet) }
        if side == .client { swap(&parser, &client.parser) } else { swap(&parser, &server.parser) }
    }

    /// One side closed (FIN or RST) or the capture ended. Streams still open are marked with
    /// the first close.
    public mutating func closed(_ side: StreamSide, by kind: CloseKind, packet: PacketRef) {
        let close = HTTP2Close(side: side, kind: kind, packet: packet)
        self[side].cutFrame = self[side].cutFrame || self[side].parser.isInsideFrame
        if self[side].close == nil { self[side].close = close }
        self[side].block = nil
        for id in open.keys where open[id]?.connectionClosed == nil { open[id]?.connectionClosed = close }
    }

    /// The flow ended: streams still open are kept after the finished ones, by identifier.
    public mutating func finish() {
        for id in open.keys.sorted() {
            if let stream = open.removeValue(forKey: id) { keep(stream) }
        }
    }

    static let placeholder = HTTP2FrameParser(expectPreface: false, maximumHeaderFragment: 0)

    private subscript(_ side: StreamSide) -> Side {
        get { side == .client ? client : server }
        _modify {
            if side == .client { yield &client } else { yield &server }
        }
    }

    // MARK: - Events

    private mutating func handle(_ event: HTTP2FrameParser.Event, from side: StreamSide, packet: PacketRef) {
        switch event {
        case .preface:
            preface = packet
        case .violation(let violation):
            record(violation, side, packet)
        case .lostSync:
            self[side].lostSync = true
            self[side].block = nil
        case .frame(let frame):
            handle(frame, from: side, packet: packet)
        }
    }

    private mutating func handle(_ frame: HTTP2Frame, from side: StreamSide, packet: PacketRef) {
        let header = frame.header
        let other: StreamSide = side == .client ? .server : .client
        self[side].frames[header.type.map { Int($0.rawValue) } ?? 10] += 1
        if !self[side].sawFirstFrame {
            self[side].sawFirstFrame = true
            // RFC 9113 §3.4: each side's preface ends with (client) or is (server) a SETTINGS frame.
            if header.type != .settings || header.has(HTTP2Flag.ack) {
                record(HTTP2Violation("first_frame_not_settings", .protocolError, stream: header.streamID,
                    "the first frame is \(header.type?.name ?? "of unknown type"), not SETTINGS (RFC 9113 §3.4)"), side, packet)
            }
        }
        // RFC 9113 §6.10: nothing may come between a header block's frames.
        if let block = self[side].block {
            if case .continuation = frame.payload, header.streamID == block.streamID {
            } else {
                self[side].block = nil
                markHeadersUnknown(block.promisedStreamID ?? block.streamID)
                self[side].decoder.markUnusable()
                record(HTTP2Violation("continuation_expected", .protocolError, stream: block.streamID,
                    "\(header.type?.name ?? "an unknown frame") on stream \(header.streamID) inside the header block of stream \(block.streamID) (RFC 9113 §6.10)"), side, packet)
            }
        }
        if header.streamID != 0 {
            if open[header.streamID] != nil { open[header.streamID]?.last = packet }
        }
        switch frame.payload {
        case .data(let dataLength, _):
            data(header, dataLength: dataLength, from: side, packet: packet)
        case .headers(let fragment, let complete, _):
            startBlock(HeaderBlock(streamID: header.streamID, promisedStreamID: nil, endStream: header.has(HTTP2Flag.endStream), bytes: fragment),
                complete: complete, endHeaders: header.has(HTTP2Flag.endHeaders), from: side, packet: packet)
        case .pushPromise(let promised, let fragment, let complete):
            if side == .client {
                record(HTTP2Violation("push_promise_from_client", .protocolError, stream: header.streamID, "a client may not send PUSH_PROMISE (RFC 9113 §8.4)"), side, packet)
            }
            startBlock(HeaderBlock(streamID: header.streamID, promisedStreamID: promised, endStream: false, bytes: fragment),
                complete: complete, endHeaders: header.has(HTTP2Flag.endHeaders), from: side, packet: packet)
        case .continuation(let fragment, let complete):
            continuation(header, fragment: fragment, complete: complete, from: side, packet: packet)
        case .priority:
            break
        case .rstStream(let code):
            self[side].resets[code, default: 0] += 1
            rstStream(header.streamID, code: code, from: side, packet: packet)
        case .settings(let settings, let complete):
            if header.has(HTTP2Flag.ack) {
                self[side].settings.acks += 1
            } else {
                if !complete { limitReached("settings_too_long") }
                self[side].settings.frames += 1
                if self[side].settings.first == nil { self[side].settings.first = packet }
                applySettings(settings, from: side, packet: packet)
            }
        case .ping:
            if header.has(HTTP2Flag.ack) { self[side].pingAcks += 1 } else { self[side].pings += 1 }
        case .goAway(let lastStreamID, let errorCode, let debugData, _):
            goAway(lastStreamID: lastStreamID, errorCode: errorCode, debugData: debugData, from: side, other: other, packet: packet)
        case .windowUpdate(let increment):
            windowUpdate(header.streamID, increment: increment, from: side, packet: packet)
        case .unknown:
            break
        }
    }

    // MARK: - DATA and flow control

    private mutating func data(_ header: HTTP2FrameHeader, dataLength: Int, from side: StreamSide, packet: PacketRef) {
        let id = header.streamID
        let flowLength = Int64(header.length)
        self[side].dataBytes += Int64(dataLength)
        // The connection window counts every DATA frame, whatever its stream's state (RFC 9113 §6.9).
        let before = self[side].connectionWindow
        self[side].connectionWindow -= flowLength
        if self[side].connectionWindow < 0 { windowOverruns += 1 }
        if before > 0 && self[side].connectionWindow <= 0 { stall(side, stream: 0, packet: packet) }
        guard var stream = open[id] else {
            if isIdle(id) {
                record(HTTP2Violation("data_on_idle_stream", .protocolError, stream: id, "DATA on stream \(id), which was never opened (RFC 9113 §5.1)"), side, packet)
            } else {
                framesOnClosedStreams += 1
            }
            return
        }
        if side == .client {
            stream.clientDataBytes += Int64(dataLength)
            stream.clientDataFrames += 1
            let before = stream.clientWindow
            stream.clientWindow -= flowLength
            if stream.clientWindow < 0 { windowOverruns += 1 }
            if before > 0 && stream.clientWindow <= 0 {
                if stream.clientWindowExhausted == nil { stream.clientWindowExhausted = packet }
                stall(side, stream: id, packet: packet)
            }
            if header.has(HTTP2Flag.endStream) && stream.clientEnded == nil { stream.clientEnded = packet }
        } else {
            stream.serverDataBytes += Int64(dataLength)
            stream.serverDataFrames += 1
            let before = stream.serverWindow
            stream.serverWindow -= flowLength
            if stream.serverWindow < 0 { windowOverruns += 1 }
            if before > 0 && stream.serverWindow <= 0 {
                if stream.serverWindowExhausted == nil { stream.serverWindowExhausted = packet }
                stall(side, stream: id, packet: packet)
            }
            if header.has(HTTP2Flag.endStream) && stream.serverEnded == nil { stream.serverEnded = packet }
        }
        update(stream)
    }

    private mutating func windowUpdate(_ id: UInt32, increment: UInt32, from side: StreamSide, packet: PacketRef) {
        let other: StreamSide = side == .client ? .server : .client
        guard increment > 0 else {
            // RFC 9113 §6.9: an increment of 0 is a PROTOCOL_ERROR (of the stream, or the connection).
            record(HTTP2Violation("window_update_zero", .protocolError, stream: id, "WINDOW_UPDATE with an increment of 0 (RFC 9113 §6.9)"), side, packet)
            return
        }
        let maximum = Int64(Int32.max)
        if id == 0 {
            let before = self[other].connectionWindow
            self[other].connectionWindow += Int64(increment)
            if self[other].connectionWindow > maximum {
                record(HTTP2Violation("window_overflow", .flowControlError, "the connection window would exceed 2^31-1 (RFC 9113 §6.9.1)"), side, packet)
            }
            if before <= 0 && self[other].connectionWindow > 0 { reopen(other, stream: 0, packet: packet) }
            return
        }
        guard var stream = open[id] else {
            if isIdle(id) {
                record(HTTP2Violation("window_update_on_idle_stream", .protocolError, stream: id, "WINDOW_UPDATE on stream \(id), which was never opened (RFC 9113 §5.1)"), side, packet)
            } else {
                framesOnClosedStreams += 1
            }
            return
        }
        let before: Int64
        let after: Int64
        if other == .client {
            before = stream.clientWindow
            stream.clientWindow += Int64(increment)
            after = stream.clientWindow
        } else {
            before = stream.serverWindow
            stream.serverWindow += Int64(increment)
            after = stream.serverWindow
        }
        if after > maximum {
            record(HTTP2Violation("window_overflow", .flowControlError, stream: id, "stream \(id)'s window would exceed 2^31-1 (RFC 9113 §6.9.1)"), side, packet)
        }
        if before <= 0 && after > 0 { reopen(other, stream: id, packet: packet) }
        open[id] = stream
    }

    private mutating func stall(_ side: StreamSide, stream: UInt32, packet: PacketRef) {
        stallCount += 1
        if stalls.count < limits.maximumStalls {
            stalls.append(HTTP2WindowStall(side: side, streamID: stream, at: packet))
        } else {
            limitReached("max_stalls")
        }
    }

    private mutating func reopen(_ side: StreamSide, stream: UInt32, packet: PacketRef) {
        if let index = stalls.lastIndex(where: { $0.side == side && $0.streamID == stream && $0.reopened == nil }) {
            stalls[index].reopened = packet
        }
    }

    // MARK: - SETTINGS and GOAWAY

    private mutating func applySettings(_ settings: [HTTP2Setting], from side: StreamSide, packet: PacketRef) {
        let other: StreamSide = side == .client ? .server : .client
        for setting in settings {
            switch setting.id {
            case HTTP2SettingID.headerTableSize:
                self[side].settings.headerTableSize = setting.value
                // The table this side decodes with: the other side's encoder may use up to it.
                self[other].decoder.advertisedTableSize(setting.value)
            case HTTP2SettingID.enablePush:
                guard setting.value <= 1 else {
                    record(HTTP2Violation("bad_setting", .protocolError, "SETTINGS_ENABLE_PUSH = \(setting.value) (RFC 9113 §6.5.2)"), side, packet)
                    continue
                }
                self[side].settings.enablePush = setting.value
            case HTTP2SettingID.maxConcurrentStreams:
                self[side].settings.maxConcurrentStreams = setting.value
            case HTTP2SettingID.initialWindowSize:
                guard setting.value <= UInt32(Int32.max) else {
                    record(HTTP2Violation("bad_setting", .flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE = \(setting.value), above 2^31-1 (RFC 9113 §6.5.2)"), side, packet)
                    continue
                }
                // RFC 9113 §6.9.2: the change applies to every open stream's window for what the
                // other side sends. Applied when seen (the observer cannot see it acknowledged
                // before the sender acts on it).
                let delta = Int64(setting.value) - Int64(self[side].settings.initialWindowSize ?? 65_535)
                self[side].settings.initialWindowSize = setting.value
                guard delta != 0 else { continue }
                for id in open.keys {
                    guard var stream = open[id] else { continue }
                    let before = other == .client ? stream.clientWindow : stream.serverWindow
                    if other == .client { stream.clientWindow += delta } else { stream.serverWindow += delta }
                    let after = other == .client ? stream.clientWindow : stream.serverWindow
                    open[id] = stream
                    if before <= 0 && after > 0 { reopen(other, stream: id, packet: packet) }
                }
            case HTTP2SettingID.maxFrameSize:
                guard setting.value >= 16_384 && setting.value <= 16_777_215 else {
                    record(HTTP2Violation("bad_setting", .protocolError, "SETTINGS_MAX_FRAME_SIZE = \(setting.value), outside 16384...16777215 (RFC 9113 §6.5.2)"), side, packet)
                    continue
                }
                self[side].settings.maxFrameSize = setting.value
                // The largest frame the other side may send to this one.
                self[other].parser.receiverMaximumFrameSize(setting.value)
            case HTTP2SettingID.maxHeaderListSize:
                self[side].settings.maxHeaderListSize = setting.value
            default:
                // Unknown settings are ignored (RFC 9113 §6.5.2).
                break
            }
        }
    }

    private mutating func goAway(lastStreamID: UInt32, errorCode: HTTP2ErrorCode, debugData: [UInt8], from side: StreamSide, other: StreamSide, packet: PacketRef) {
        goAwayCount += 1
        var record = HTTP2GoAway(
            from: side, lastStreamID: lastStreamID, errorCode: errorCode,
            debugData: String(decoding: debugData.map { (0x20..<0x7F).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self),
            packet: packet)
        // Streams of the other side above the last one were not processed (RFC 9113 §6.8).
        for id in open.keys where id > lastStreamID {
            guard var stream = open[id], stream.openedBy == other else { continue }
            if !stream.aboveGoAwayLastStream {
                stream.aboveGoAwayLastStream = true
                record.streamsInFlight += 1
                open[id] = stream
            }
        }
        self[side].goAwayLastStream = lastStreamID
        if goAways.count < limits.maximumGoAways {
            goAways.append(record)
            self[side].goAwayIndex = goAways.count - 1
        } else {
            self[side].goAwayIndex = nil
            limitReached("max_goaways")
        }
    }

    // MARK: - Header blocks

    private mutating func startBlock(_ block: HeaderBlock, complete: Bool, endHeaders: Bool, from side: StreamSide, packet: PacketRef) {
        var block = block
        if !complete || block.bytes.count > limits.maximumHeaderBlock {
            abandon(&block, "header_block_too_large", side: side, packet: packet)
        }
        if endHeaders {
            finishBlock(block, from: side, packet: packet)
        } else {
            self[side].block = block
        }
    }

    private mutating func continuation(_ header: HTTP2FrameHeader, fragment: [UInt8], complete: Bool, from side: StreamSide, packet: PacketRef) {
        guard var block = self[side].block else {
            record(HTTP2Violation("unexpected_continuation", .protocolError, stream: header.streamID,
                "CONTINUATION on stream \(header.streamID) without a header block to continue (RFC 9113 §6.10)"), side, packet)
            return
        }
        self[side].block = nil
        block.continuations += 1
        if !block.abandoned {
            if !complete || block.bytes.count + fragment.count > limits.maximumHeaderBlock {
                abandon(&block, "header_block_too_large", side: side, packet: packet)
            } else if block.continuations > limits.maximumContinuations {
                abandon(&block, "too_many_continuations", side: side, packet: packet)
            } else {
                block.bytes.append(contentsOf: fragment)
            }
        }
        if header.has(HTTP2Flag.endHeaders) {
            finishBlock(block, from: side, packet: packet)
        } else {
            self[side].block = block
        }
    }

    /// Gives up on a block: its fields are unknown, and so is the encoder's table from now on.
    private mutating func abandon(_ block: inout HeaderBlock, _ limit: String, side: StreamSide, packet: PacketRef) {
        guard !block.abandoned else { return }
        block.abandoned = true
        block.bytes = []
        limitReached(limit)
        self[side].decoder.markUnusable()
        record(HTTP2Violation(limit, .enhanceYourCalm, stream: block.streamID,
            limit == "header_block_too_large" ? "a header block above \(limits.maximumHeaderBlock) bytes: not decoded"
                : "more than \(limits.maximumContinuations) CONTINUATION frames in one header block"), side, packet)
    }

    /// The fields of a block that a diagnosis reads.
    struct BlockFields {
        var method: String?
        var path: String?
        var authority: String?
        var scheme: String?
        var status: Int?
        var contentType: String?
        var contentLength: Int64?
        var grpcStatus: Int?
        var grpcMessage: String?
        var requestIDs: [HeaderValue] = []
    }

    private mutating func finishBlock(_ block: HeaderBlock, from side: StreamSide, packet: PacketRef) {
        var fields = BlockFields()
        var decoded = false
        if !block.abandoned {
            let limits = self.limits
            let redact = self.redact
            var statusSeen = false
            var grpcSeen = false
            let error = self[side].decoder.decode(block.bytes) { field in
                Self.collect(field, into: &fields, statusSeen: &statusSeen, grpcSeen: &grpcSeen, limits: limits, redact: redact)
            }
            if let error {
                if error != .unusable {
                    record(HTTP2Violation("compression_error", .compressionError, stream: block.streamID, "\(error.code): \(error)"), side, packet)
                }
            } else {
                decoded = true
            }
            // Counted per block as a dissector counts header fields: whatever decoded before an error.
            if side == .client && fields.method != nil && block.promisedStreamID == nil { requestCount += 1 }
            if side == .server, let status = fields.status { statusCounts[status, default: 0] += 1 }
            if side == .server && grpcSeen { grpcStatusCounts[fields.grpcStatus ?? -1, default: 0] += 1 }
        }
        if let promised = block.promisedStreamID {
            // A pushed stream (RFC 9113 §8.4): reserved by the server, its request from the promise.
            guard promised != 0, promised % 2 == 0, promised > server.highestStreamOpened else {
                record(HTTP2Violation("bad_stream_id", .protocolError, stream: promised, "PUSH_PROMISE promises stream \(promised) (RFC 9113 §5.1.1)"), side, packet)
                return
            }
            guard var stream = openStream(promised, by: .server, packet: packet) else { return }
            applyRequest(fields, decoded: decoded, to: &stream, packet: packet)
            stream.clientEnded = packet
            open[promised] = stream
            return
        }
        let id = block.streamID
        if var stream = open[id] {
            if side == .client {
                stream.clientHeaderBlocks += 1
                if !decoded { stream.headersUnknown = true }
                if block.endStream && stream.clientEnded == nil { stream.clientEnded = packet }
            } else {
                applyResponse(fields, decoded: decoded, to: &stream, packet: packet)
                if block.endStream && stream.serverEnded == nil { stream.serverEnded = packet }
            }
            update(stream)
            return
        }
        guard side == .client, isIdle(id) else {
            if isIdle(id) {
                record(HTTP2Violation("headers_on_idle_stream", .protocolError, stream: id, "the server sent HEADERS on stream \(id), which the client never opened (RFC 9113 §5.1)"), side, packet)
            } else {
                framesOnClosedStreams += 1
            }
            return
        }
        guard id % 2 == 1 else {
            record(HTTP2Violation("bad_stream_id", .protocolError, stream: id, "the client opened even stream \(id) (RFC 9113 §5.1.1)"), side, packet)
            return
        }
        guard var stream = openStream(id, by: .client, packet: packet) else { return }
        applyRequest(fields, decoded: decoded, to: &stream, packet: packet)
        if block.endStream { stream.clientEnded = packet }
        open[id] = stream
    }

    private static func collect(_ field: HPACKField, into fields: inout BlockFields, statusSeen: inout Bool, grpcSeen: inout Bool, limits: HTTP2Limits, redact: Bool) {
        // Names longer than any of interest are not even looked at.
        guard field.name.count <= 32 else { return }
        let name = String(decoding: field.name, as: UTF8.self)
        func text(_ limit: Int) -> String { String(decoding: field.value.prefix(limit), as: UTF8.self) }
        switch name {
        case ":method": fields.method = text(limits.maximumValueLength)
        case ":path": fields.path = Redaction.target(text(limits.maximumPathLength), enabled: redact)
        case ":authority": fields.authority = text(limits.maximumValueLength)
        case ":scheme": fields.scheme = text(limits.maximumValueLength)
        case ":status":
            guard !statusSeen else { return }
            statusSeen = true
            if field.value.count == 3, field.value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                fields.status = field.value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            }
        case "content-type": fields.contentType = text(limits.maximumValueLength)
        case "content-length":
            if (1...18).contains(field.value.count), field.value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                fields.contentLength = field.value.reduce(Int64(0)) { $0 * 10 + Int64($1 - 0x30) }
            }
        case "grpc-status":
            guard !grpcSeen else { return }
            grpcSeen = true
            if (1...4).contains(field.value.count), field.value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                fields.grpcStatus = field.value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            }
        case "grpc-message": fields.grpcMessage = text(limits.maximumValueLength)
        default:
            if requestIDHeaderNames.contains(name) && fields.requestIDs.count < 8 {
                fields.requestIDs.append(HeaderValue(name: name, value: text(limits.maximumValueLength)))
            }
        }
    }

    private func applyRequest(_ fields: BlockFields, decoded: Bool, to stream: inout HTTP2Stream, packet: PacketRef) {
        stream.clientHeaderBlocks += 1
        stream.headersUnknown = stream.headersUnknown || !decoded
        stream.method = fields.method
        stream.path = fields.path
        stream.authority = fields.authority
        stream.scheme = fields.scheme
        stream.requestContentType = fields.contentType
        stream.requestContentLength = fields.contentLength
        stream.requestIDs = fields.requestIDs
        stream.requestHeaders = packet
    }

    private func applyResponse(_ fields: BlockFields, decoded: Bool, to stream: inout HTTP2Stream, packet: PacketRef) {
        stream.serverHeaderBlocks += 1
        if !decoded { stream.headersUnknown = true }
        if let status = fields.status, stream.status == nil {
            if (100..<200).contains(status) {
                if stream.interimStatuses.count < 8 { stream.interimStatuses.append(status) }
            } else {
                stream.status = status
                stream.responseHeaders = packet
                stream.responseContentType = fields.contentType
                stream.responseContentLength = fields.contentLength
            }
        } else if stream.status != nil || (decoded && fields.status == nil) {
            // A block after the response head, or one without :status: trailers (RFC 9113 §8.1).
            if stream.trailers == nil { stream.trailers = packet }
        }
        if stream.requestIDs.isEmpty && !fields.requestIDs.isEmpty { stream.requestIDs = fields.requestIDs }
        if let grpcStatus = fields.grpcStatus, stream.grpcStatus == nil { stream.grpcStatus = grpcStatus }
        if let message = fields.grpcMessage, stream.grpcMessage == nil { stream.grpcMessage = message }
    }

    // MARK: - Streams

    /// Whether no stream with this identifier was opened yet (RFC 9113 §5.1 "idle"), by the
    /// parity of who opens it.
    private func isIdle(_ id: UInt32) -> Bool {
        id % 2 == 1 ? id > client.highestStreamOpened : id > server.highestStreamOpened
    }

    /// Opens a stream, or counts it when too many are open.
    private mutating func openStream(_ id: UInt32, by side: StreamSide, packet: PacketRef) -> HTTP2Stream? {
        let other: StreamSide = side == .client ? .server : .client
        streamCount += 1
        self[side].highestStreamOpened = max(self[side].highestStreamOpened, id)
        var afterGoAway = false
        var above = false
        if let last = self[other].goAwayLastStream {
            afterGoAway = true
            above = id > last
            if above, let index = self[other].goAwayIndex { goAways[index].streamsOpenedAfter += 1 }
        }
        guard open.count < limits.maximumOpenStreams else {
            untrackedStreams += 1
            limitReached("max_open_streams")
            return nil
        }
        var stream = HTTP2Stream(
            id: id, openedBy: side, packet: packet,
            clientWindow: Int64(server.settings.initialWindowSize ?? 65_535),
            serverWindow: Int64(client.settings.initialWindowSize ?? 65_535))
        stream.openedAfterGoAway = afterGoAway
        stream.aboveGoAwayLastStream = above
        return stream
    }

    private mutating func rstStream(_ id: UInt32, code: HTTP2ErrorCode, from side: StreamSide, packet: PacketRef) {
        if var stream = open[id] {
            stream.resetCount += 1
            if stream.reset == nil { stream.reset = HTTP2Reset(code: code, by: side, packet: packet) }
            update(stream)
        } else if let index = keptIndex[id] {
            // After END_STREAM both ways (a server's NO_ERROR reset of an unread request body, RFC 9113 §8.1).
            streams[index].resetCount += 1
            if streams[index].reset == nil { streams[index].reset = HTTP2Reset(code: code, by: side, packet: packet) }
            streams[index].last = packet
        } else if isIdle(id) {
            record(HTTP2Violation("rst_stream_on_idle_stream", .protocolError, stream: id, "RST_STREAM on stream \(id), which was never opened (RFC 9113 §6.4)"), side, packet)
        } else {
            framesOnClosedStreams += 1
        }
    }

    private mutating func markHeadersUnknown(_ id: UInt32) {
        open[id]?.headersUnknown = true
    }

    /// Stores a changed stream; a closed one leaves the open set and is kept or counted.
    private mutating func update(_ stream: HTTP2Stream) {
        if stream.isClosed {
            open[stream.id] = nil
            keep(stream)
        } else {
            open[stream.id] = stream
        }
    }

    private mutating func keep(_ stream: HTTP2Stream) {
        if stream.isUnremarkable {
            guard keptUnremarkable < limits.keepUnremarkableStreams else {
                droppedStreams += 1
                return
            }
            keptUnremarkable += 1
        } else {
            guard keptOther < limits.keepOtherStreams else {
                droppedStreams += 1
                limitReached("max_kept_streams")
                return
            }
            keptOther += 1
        }
        keptIndex[stream.id] = streams.count
        streams.append(stream)
    }

    // MARK: - Anomalies

    private mutating func record(_ violation: HTTP2Violation, _ side: StreamSide, _ packet: PacketRef) {
        anomalyCount += 1
        anomalyCounts[violation.code, default: 0] += 1
        if anomalies.count < limits.maximumAnomalies {
            anomalies.append(HTTP2Anomaly(violation: violation, side: side, packet: packet))
        } else {
            limitReached("max_anomalies")
        }
    }

    private mutating func limitReached(_ name: String) {
        if !limitsReached.contains(name) { limitsReached.append(name) }
    }
}


/// Decodes base64url without padding (RFC 4648 §5), as in `HTTP2-Settings`; nil for other characters.
func base64URLDecoded(_ text: String, limit: Int) -> [UInt8]? {
    var out: [UInt8] = []
    var accumulator: UInt32 = 0
    var bits = 0
    for byte in text.utf8 {
        let value: UInt8
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"), UInt8(ascii: "+"): value = 62
        case UInt8(ascii: "_"), UInt8(ascii: "/"): value = 63
        case UInt8(ascii: "="): continue
        default: return nil
        }
        accumulator = accumulator << 6 | UInt32(value)
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            guard out.count <= limit else { return nil }
        }
    }
    return out
}
