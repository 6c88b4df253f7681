/// An incremental HTTP/2 frame parser for one direction of a connection (RFC 9113 §3.4, §4, §6).
///
/// Push in-order bytes with `feed`; events come back through the callback, in order. A frame is
/// reported once all its bytes arrived. Only what the observer reads is buffered: header block
/// fragments up to `maximumHeaderFragment` bytes, the first bytes of the small control frames,
/// the pad length of DATA; DATA payloads and unknown frame types are counted and skipped.
///
/// Structural errors of one frame (a wrong fixed length, a stream identifier where none may be,
/// bad padding) are `violation` events and that frame is not delivered; framing continues, since
/// the length field still says where the next frame starts. A frame longer than the receiver's
/// SETTINGS_MAX_FRAME_SIZE is reported and still delivered (its header block keeps HPACK in step).
/// Only a bad client connection preface or a capture gap outside a DATA payload stops the direction.
public struct HTTP2FrameParser: Sendable {
    /// The client connection preface (RFC 9113 §3.4).
    public static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// SETTINGS_MAX_FRAME_SIZE's initial value and its largest allowed value (RFC 9113 §6.5.2).
    public static let defaultMaximumFrameSize = 16_384
    public static let largestMaximumFrameSize = 16_777_215
    /// Bytes of GOAWAY debug data kept.
    public static let maximumDebugData = 256
    /// SETTINGS parameters buffered from one frame (more are counted as cut).
    public static let maximumSettingsBytes = 6 * 256

    public enum Event: Sendable, Equatable {
        /// The client connection preface was complete.
        case preface
        /// A whole frame.
        case frame(HTTP2Frame)
        /// A frame or the preface broke RFC 9113; see `HTTP2Violation`.
        case violation(HTTP2Violation)
        /// Bytes lost from the capture outside a DATA payload: frame boundaries are lost, and the
        /// direction is not parsed any more.
        case lostSync
    }

    enum State: Sendable, Equatable {
        case preface(matched: Int)
        case frameHeader
        case payload
        case failed
    }

    var state: State
    /// SETTINGS_MAX_FRAME_SIZE of the receiving side: frames longer than it are violations.
    public private(set) var maximumFrameSize: Int
    /// Largest header block fragment buffered from one frame.
    public let maximumHeaderFragment: Int
    var headerBytes: [UInt8] = []
    var current = HTTP2FrameHeader(length: 0, typeCode: 0, flags: 0, streamID: 0)
    var remaining = 0
    var payload: [UInt8] = []
    var bufferLimit = 0
    /// The current frame is structurally invalid: its bytes are skipped and it is not delivered.
    var skipCurrent = false
    /// Bytes of the current frame lost to a capture gap (only inside DATA).
    var currentLost = 0

    /// Frames completed, and bytes consumed (preface included).
    public private(set) var frameCount = 0
    public private(set) var byteCount: Int64 = 0

    /// - Parameters:
    ///   - expectPreface: true for the client's direction, which starts with the connection
    ///     preface (prior knowledge, and after an h2c upgrade); false for the server's.
    ///   - maximumHeaderFragment: header block bytes buffered from one frame (256 KiB).
    public init(expectPreface: Bool, maximumHeaderFragment: Int = 262_144) {
        state = expectPreface ? .preface(matched: 0) : .frameHeader
        maximumFrameSize = Self.defaultMaximumFrameSize
        self.maximumHeaderFragment = maximumHeaderFragment
        headerBytes.reserveCapacity(9)
    }

    /// The receiving side advertised SETTINGS_MAX_FRAME_SIZE. Values outside
    /// 16384...16777215 are invalid (the connection reports them) and ignored here.
    public mutating func receiverMaximumFrameSize(_ size: UInt32) {
        guard size >= UInt32(Self.defaultMaximumFrameSize) && size <= UInt32(Self.largestMaximumFrameSize) else { return }
        maximumFrameSize = Int(size)
    }

    public var hasFailed: Bool { state == .failed }
    /// Whether a frame (or the preface) is partly received.
    public var isInsideFrame: Bool {
        switch state {
        case .payload: true
        case .frameHeader: !headerBytes.isEmpty
        case .preface(let matched): matched > 0
        case .failed: false
        }
    }

    /// Parses `bytes` (valid only during the call), calling `event` for everything that
    /// happens, in order.
    public mutating func feed(_ bytes: RawSpan, _ event: (Event) -> Void) {
        let count = bytes.byteCount
        var index = 0
        while index < count {
            switch state {
            case .failed:
                return
            case .preface(let matched):
                let byte = bytes.unsafeLoad(fromByteOffset: index, as: UInt8.self)
                guard byte == Self.clientPreface[matched] else {
                    state = .failed
                    event(.violation(HTTP2Violation("bad_preface", .protocolError, "the client's first bytes are not the HTTP/2 connection preface (RFC 9113 §3.4)")))
                    return
                }
                index += 1
                byteCount += 1
                if matched + 1 == Self.clientPreface.count {
                    state = .frameHeader
                    event(.preface)
                } else {
                    state = .preface(matched: matched + 1)
                }
            case .frameHeader:
                let take = min(9 - headerBytes.count, count - index)
                let start = index
                bytes.withUnsafeBytes { raw in headerBytes.append(contentsOf: raw[start..<start + take]) }
                index += take
                byteCount += Int64(take)
                if headerBytes.count == 9 {
                    startFrame(event)
                    if remaining == 0 { completeFrame(event) }
                }
            case .payload:
                let take = min(remaining, count - index)
                let keep = min(take, bufferLimit - payload.count)
                if keep > 0 {
                    let start = index
                    bytes.withUnsafeBytes { raw in payload.append(contentsOf: raw[start..<start + keep]) }
                }
                index += take
                byteCount += Int64(take)
                remaining -= take
                if remaining == 0 { completeFrame(event) }
            }
        }
    }

    /// Bytes were lost from the capture. Inside a DATA payload they are counted as part of it
    /// and parsing goes on; anywhere else frame boundaries are lost and the direction stops.
    /// - Returns: true when parsing continues.
    @discardableResult
    public mutating func gap(_ length: Int64, _ event: (Event) -> Void) -> Bool {
        if state == .failed { return false }
        if state == .payload && current.typeCode == HTTP2FrameType.data.rawValue && length <= Int64(remaining)
            && (payload.count >= bufferLimit)
        {
            remaining -= Int(length)
            currentLost += Int(length)
            byteCount += length
            if remaining == 0 { completeFrame(event) }
            return true
        }
        state = .failed
        event(.lostSync)
        return false
    }

    // MARK: - Internals

    private mutating func startFrame(_ event: (Event) -> Void) {
        let length = Int(headerBytes[0]) << 16 | Int(headerBytes[1]) << 8 | Int(headerBytes[2])
        let streamID = (UInt32(headerBytes[5]) << 24 | UInt32(headerBytes[6]) << 16 | UInt32(headerBytes[7]) << 8 | UInt32(headerBytes[8])) & 0x7FFF_FFFF
        current = HTTP2FrameHeader(length: length, typeCode: headerBytes[3], flags: headerBytes[4], streamID: streamID)
        headerBytes.removeAll(keepingCapacity: true)
        payload.removeAll(keepingCapacity: true)
        remaining = length
        skipCurrent = false
        currentLost = 0
        state = .payload
        // RFC 9113 §4.2: a frame longer than SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR.
        if length > maximumFrameSize {
            event(.violation(HTTP2Violation("frame_too_large", .frameSizeError, stream: streamID,
                "\(current.type?.name ?? "type 0x\(String(current.typeCode, radix: 16))") of \(length) bytes, above SETTINGS_MAX_FRAME_SIZE \(maximumFrameSize)")))
        }
        if let problem = structuralProblem() {
            skipCurrent = true
            event(.violation(problem))
        }
        bufferLimit = skipCurrent ? 0 : bufferLimit(for: current)
    }

    /// Checks that need only the header (RFC 9113 §6): which frames need a stream, which may not
    /// have one, and the fixed lengths.
    private func structuralProblem() -> HTTP2Violation? {
        guard let type = current.type else { return nil }
        let stream = current.streamID
        let length = current.length
        func noStream() -> HTTP2Violation {
            HTTP2Violation("stream_id_zero", .protocolError, "\(type.name) on stream 0 (RFC 9113 §6)")
        }
        func onStream() -> HTTP2Violation {
            HTTP2Violation("stream_id_not_zero", .protocolError, stream: stream, "\(type.name) on stream \(stream), which is for the connection only (RFC 9113 §6)")
        }
        func badLength(_ expected: String) -> HTTP2Violation {
            HTTP2Violation("bad_frame_length", .frameSizeError, stream: stream, "\(type.name) of \(length) bytes, \(expected) (RFC 9113 §6)")
        }
        switch type {
        case .data, .headers, .continuation, .pushPromise:
            if stream == 0 { return noStream() }
        case .priority:
            if stream == 0 { return noStream() }
            if length != 5 { return badLength("expected 5") }
        case .rstStream:
            if stream == 0 { return noStream() }
            if length != 4 { return badLength("expected 4") }
        case .settings:
            if stream != 0 { return onStream() }
            if current.has(HTTP2Flag.ack) && length != 0 { return badLength("an ACK must be empty") }
            if length % 6 != 0 { return badLength("not a multiple of 6") }
        case .ping:
            if stream != 0 { return onStream() }
            if length != 8 { return badLength("expected 8") }
        case .goAway:
            if stream != 0 { return onStream() }
            if length < 8 { return badLength("expected at least 8") }
        case .windowUpdate:
            if length != 4 { return badLength("expected 4") }
        }
        return nil
    }

    private func bufferLimit(for header: HTTP2FrameHeader) -> Int {
        guard let type = header.type else { return 0 }
        switch type {
        case .data: return header.has(HTTP2Flag.padded) ? 1 : 0
        // Pad length (1), priority (5) or promised stream (4), then the fragment.
        case .headers, .pushPromise, .continuation: return min(header.length, maximumHeaderFragment + 6)
        case .priority: return 5
        case .rstStream, .windowUpdate: return 4
        case .settings: return min(header.length, Self.maximumSettingsBytes)
        case .ping: return 8
        case .goAway: return min(header.length, 8 + Self.maximumDebugData)
        }
    }

    private mutating func completeFrame(_ event: (Event) -> Void) {
        state = .frameHeader
        frameCount += 1
        guard !skipCurrent else { return }
        let header = current
        let length = header.length
        let buffered = payload
        func be32(_ offset: Int) -> UInt32 {
            UInt32(buffered[offset]) << 24 | UInt32(buffered[offset + 1]) << 16 | UInt32(buffered[offset + 2]) << 8 | UInt32(buffered[offset + 3])
        }
        func padding(_ what: String, padLength: Int, fixed: Int) -> HTTP2Violation? {
            // RFC 9113 §6.1, §6.2, §6.6: padding as long as the payload or longer is a PROTOCOL_ERROR.
            guard padLength + fixed > length else { return nil }
            return HTTP2Violation("bad_padding", .protocolError, stream: header.streamID,
                "\(what) pads \(padLength) bytes in a \(length)-byte payload")
        }
        let payloadValue: HTTP2FramePayload
        switch header.type {
        case nil:
            payloadValue = .unknown
        case .data:
            var padLength = 0
            if header.has(HTTP2Flag.padded) {
                // A padded DATA frame needs its pad length byte; a frame cut by a gap before it counts as unpadded.
                if length == 0 {
                    event(.violation(HTTP2Violation("bad_padding", .protocolError, stream: header.streamID, "padded DATA without a pad length")))
                    return
                }
                padLength = buffered.isEmpty ? 0 : Int(buffered[0]) + 1
                if let problem = padding("DATA", padLength: padLength - 1, fixed: 1) {
                    event(.violation(problem))
                    return
                }
            }
            payloadValue = .data(dataLength: length - padLength, padding: padLength)
        case .headers:
            var start = 0
            var padLength = 0
            var priority: HTTP2Priority?
            if header.has(HTTP2Flag.padded) {
                guard length >= 1 else {
                    event(.violation(HTTP2Violation("bad_padding", .protocolError, stream: header.streamID, "padded HEADERS without a pad length")))
                    return
                }
                padLength = Int(buffered[0])
                start = 1
            }
            if header.has(HTTP2Flag.priority) {
                guard length >= start + 5 else {
                    event(.violation(HTTP2Violation("bad_frame_length", .frameSizeError, stream: header.streamID, "HEADERS with PRIORITY shorter than its priority fields")))
                    return
                }
                let word = be32(start)
                priority = HTTP2Priority(exclusive: word & 0x8000_0000 != 0, dependency: word & 0x7FFF_FFFF, weight: buffered[start + 4])
                start += 5
            }
            if let problem = padding("HEADERS", padLength: padLength, fixed: start) {
                event(.violation(problem))
                return
            }
            let end = length - padLength
            payloadValue = .headers(fragment: Array(buffered[start..<min(end, buffered.count)]), complete: buffered.count >= end, priority: priority)
        case .continuation:
            payloadValue = .continuation(fragment: buffered, complete: buffered.count == length)
        case .pushPromise:
            var start = 0
            var padLength = 0
            if header.has(HTTP2Flag.padded) {
                guard length >= 1 else {
                    event(.violation(HTTP2Violation("bad_padding", .protocolError, stream: header.streamID, "padded PUSH_PROMISE without a pad length")))
                    return
                }
                padLength = Int(buffered[0])
                start = 1
            }
            guard length >= start + 4 else {
                event(.violation(HTTP2Violation("bad_frame_length", .frameSizeError, stream: header.streamID, "PUSH_PROMISE shorter than its promised stream identifier")))
                return
            }
            let promised = be32(start) & 0x7FFF_FFFF
            start += 4
            if let problem = padding("PUSH_PROMISE", padLength: padLength, fixed: start) {
                event(.violation(problem))
                return
            }
            let end = length - padLength
            payloadValue = .pushPromise(promisedStreamID: promised, fragment: Array(buffered[start..<min(end, buffered.count)]), complete: buffered.count >= end)
        case .priority:
            let word = be32(0)
            payloadValue = .priority(HTTP2Priority(exclusive: word & 0x8000_0000 != 0, dependency: word & 0x7FFF_FFFF, weight: buffered[4]))
        case .rstStream:
            payloadValue = .rstStream(HTTP2ErrorCode(be32(0)))
        case .settings:
            var settings: [HTTP2Setting] = []
            var offset = 0
            while offset + 6 <= buffered.count {
                settings.append(HTTP2Setting(id: UInt16(buffered[offset]) << 8 | UInt16(buffered[offset + 1]), value: be32(offset + 2)))
                offset += 6
            }
            payloadValue = .settings(settings, complete: buffered.count == length)
        case .ping:
            var opaque: UInt64 = 0
            for byte in buffered.prefix(8) { opaque = opaque << 8 | UInt64(byte) }
            payloadValue = .ping(opaque: opaque)
        case .goAway:
            payloadValue = .goAway(
                lastStreamID: be32(0) & 0x7FFF_FFFF, errorCode: HTTP2ErrorCode(be32(4)), debugData: Array(buffered[8...]),
                debugLength: length - 8)
        case .windowUpdate:
            payloadValue = .windowUpdate(increment: be32(0) & 0x7FFF_FFFF)
        }
        event(.frame(HTTP2Frame(header: header, payload: payloadValue)))
    }
}
