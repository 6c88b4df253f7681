import CapdiagTestSupport
import CapdiagWire
import Testing

@testable import CapdiagProtocols

/// HTTP/2 frames and HPACK blocks, built byte by byte for tests (RFC 9113 §4.1, RFC 7541 §6).
enum H2 {
    static let preface = HTTP2FrameParser.clientPreface

    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags] + be32(stream) + payload
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func settings(_ pairs: [(UInt16, UInt32)] = []) -> [UInt8] {
        frame(4, payload: pairs.flatMap { [UInt8($0.0 >> 8), UInt8($0.0 & 0xFF)] + be32($0.1) })
    }
    static let settingsAck = frame(4, flags: 1)

    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        frame(type, flags: flags, stream: stream, payload)
    }

    /// A literal field without indexing, new name (RFC 7541 §6.2.2); names and values under 127 bytes.
    static func literal(_ name: String, _ value: String) -> [UInt8] {
        [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
    }
    /// A literal field with incremental indexing, new name (RFC 7541 §6.2.1).
    static func indexedLiteral(_ name: String, _ value: String) -> [UInt8] {
        [0x40, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
    }

    static func request(_ method: String = "POST", path: String, authority: String = "up:50051", extra: [(String, String)] = []) -> [UInt8] {
        literal(":method", method) + literal(":scheme", "http") + literal(":path", path) + literal(":authority", authority)
            + extra.flatMap { literal($0.0, $0.1) }
    }

    static func headers(_ stream: UInt32, _ block: [UInt8], endStream: Bool = false, endHeaders: Bool = true) -> [UInt8] {
        frame(1, flags: (endStream ? 1 : 0) | (endHeaders ? 4 : 0), stream: stream, block)
    }
    static func continuation(_ stream: UInt32, _ block: [UInt8], endHeaders: Bool) -> [UInt8] {
        frame(9, flags: endHeaders ? 4 : 0, stream: stream, block)
    }
    static func data(_ stream: UInt32, _ count: Int, endStream: Bool = false) -> [UInt8] {
        frame(0, flags: endStream ? 1 : 0, stream: stream, [UInt8](repeating: 0x61, count: count))
    }
    static func rst(_ stream: UInt32, _ code: UInt32) -> [UInt8] { frame(3, stream: stream, be32(code)) }
    static func ping(ack: Bool = false) -> [UInt8] { frame(6, flags: ack ? 1 : 0, [1, 2, 3, 4, 5, 6, 7, 8]) }
    static func goAway(last: UInt32, code: UInt32, debug: String = "") -> [UInt8] {
        frame(7, be32(last) + be32(code) + Array(debug.utf8))
    }
    static func windowUpdate(_ stream: UInt32, _ increment: UInt32) -> [UInt8] { frame(8, stream: stream, be32(increment)) }

    /// A gRPC unary call's response: head, one message, trailers.
    static func grpcResponse(_ stream: UInt32, grpcStatus: Int, message: String = "") -> [UInt8] {
        headers(stream, literal(":status", "200") + literal("content-type", "application/grpc"))
            + data(stream, 7)
            + headers(stream, literal("grpc-status", String(grpcStatus)) + (message.isEmpty ? [] : literal("grpc-message", message)), endStream: true)
    }
}

/// What an `HTTP2Connection` concluded, as one comparable value.
struct H2Summary: Equatable {
    var streams: [HTTP2Stream]
    var streamCount, untracked, dropped, requests: Int
    var statuses, grpcStatuses: [Int: Int]
    var anomalies: [HTTP2Anomaly]
    var goAways: [HTTP2GoAway]
    var stalls: [HTTP2WindowStall]
    var settings: [HTTP2Settings]
    var limits: [String]
    var windows: [Int64]
    var frames: [Int]

    init(_ c: HTTP2Connection) {
        streams = c.streams
        streamCount = c.streamCount
        untracked = c.untrackedStreams
        dropped = c.droppedStreams
        requests = c.requestCount
        statuses = c.statusCounts
        grpcStatuses = c.grpcStatusCounts
        anomalies = c.anomalies
        goAways = c.goAways
        stalls = c.stalls
        settings = [c.clientSettings, c.serverSettings]
        limits = c.limitsReached
        windows = [c.connectionWindow(of: .client), c.connectionWindow(of: .server)]
        frames = [StreamSide.client, .server].flatMap { side in
            (HTTP2FrameType.allCases.map { Optional($0) } + [nil]).map { c.frames($0, from: side) }
        }
    }
}

/// One side's bytes per turn; each turn arrives in one packet (frame = turn number).
struct H2Conversation: CustomStringConvertible {
    var name: String
    var turns: [(StreamSide, [UInt8])]
    var limits = HTTP2Limits()
    var upgrade: HTTPExchange?
    var close: (StreamSide, CloseKind)?
    var description: String { name }

    func run(_ split: ([UInt8]) -> [[UInt8]]) -> HTTP2Connection {
        var connection = upgrade.map { HTTP2Connection(upgradedFrom: $0, http2Settings: "AAMAAABkAAQAAP__", limits: limits) }
            ?? HTTP2Connection(limits: limits)
        for (index, (side, bytes)) in turns.enumerated() {
            let packet = PacketRef(frame: index + 1, time: Timestamp(nanoseconds: Int64(index + 1) * 1_000_000))
            for piece in split(bytes) { connection.received(piece.span.bytes, from: side, packet: packet) }
        }
        if let (side, kind) = close {
            connection.closed(side, by: kind, packet: PacketRef(frame: turns.count + 1, time: Timestamp(nanoseconds: Int64(turns.count + 1) * 1_000_000)))
        }
        connection.finish()
        return connection
    }
}

/// NIO's drip-feed verifier: whole, byte by byte, and each turn split at every position must
/// conclude the same.
func expectSameWhateverTheSplit(_ conversation: H2Conversation, sourceLocation: SourceLocation = #_sourceLocation) -> HTTP2Connection {
    let whole = conversation.run { [$0] }
    let expected = H2Summary(whole)
    #expect(H2Summary(conversation.run { $0.map { [$0] } }) == expected, "byte by byte", sourceLocation: sourceLocation)
    let longest = conversation.turns.map { $0.1.count }.max() ?? 0
    for cut in 1..<max(longest, 1) {
        let split = conversation.run { bytes in cut < bytes.count ? [Array(bytes[..<cut]), Array(bytes[cut...])] : [bytes] }
        if H2Summary(split) != expected {
            Issue.record("split at \(cut) differs", sourceLocation: sourceLocation)
            break
        }
    }
    return whole
}

@Suite struct HTTP2Streams {
    @Test func grpcUnaryCallsWithTrailers() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "grpc", turns: [
            (.server, H2.settings([(3, 100), (4, 1_048_576), (5, 16_384)])),
            (.client, H2.preface + H2.settings([(2, 0), (4, 4_194_304)]) + H2.settingsAck
                + H2.headers(1, H2.request(path: "/lab.Echo/Unary", extra: [("content-type", "application/grpc"), ("x-request-id", "req-1"), ("traceparent", "00-abc-def-01")]))
                + H2.data(1, 12, endStream: true)),
            (.server, H2.settingsAck + H2.grpcResponse(1, grpcStatus: 14, message: "backend draining")),
            (.client, H2.headers(3, H2.request(path: "/lab.Echo/Unary")) + H2.data(3, 5, endStream: true) + H2.ping()),
            (.server, H2.grpcResponse(3, grpcStatus: 0) + H2.ping(ack: true)),
        ]))
        #expect(c.streams.count == 2 && c.streamCount == 2 && c.requestCount == 2)
        #expect(c.statusCounts == [200: 2] && c.grpcStatusCounts == [14: 1, 0: 1])
        let first = try #require(c.stream(1))
        #expect(first.openedBy == .client && first.method == "POST" && first.path == "/lab.Echo/Unary" && first.authority == "up:50051")
        #expect(first.requestContentType == "application/grpc" && first.status == 200 && first.responseContentType == "application/grpc")
        #expect(first.requestIDs == [HeaderValue(name: "x-request-id", value: "req-1"), HeaderValue(name: "traceparent", value: "00-abc-def-01")])
        #expect(first.grpcStatus == 14 && first.grpcMessage == "backend draining")
        #expect(first.clientDataBytes == 12 && first.serverDataBytes == 7 && first.clientDataFrames == 1)
        #expect(first.requestHeaders?.frame == 2 && first.responseHeaders?.frame == 3 && first.trailers?.frame == 3)
        #expect(first.clientEnded?.frame == 2 && first.serverEnded?.frame == 3 && first.first.frame == 2 && first.last.frame == 3)
        #expect(!first.isUnremarkable && c.stream(3)?.isUnremarkable == true)
        // Windows: the server allowed 1 MiB per stream, the client 4 MiB (SETTINGS_INITIAL_WINDOW_SIZE).
        #expect(first.clientWindow == 1_048_576 - 12 && first.serverWindow == 4_194_304 - 7)
        #expect(c.connectionWindow(of: .client) == 65_535 - 17 && c.connectionWindow(of: .server) == 65_535 - 14)
        #expect(c.serverSettings.maxConcurrentStreams == 100 && c.serverSettings.initialWindowSize == 1_048_576)
        #expect(c.clientSettings.enablePush == 0 && c.clientSettings.acks == 1 && c.serverSettings.acks == 1)
        #expect(c.pings(from: .client) == (1, 0) && c.pings(from: .server) == (0, 1))
        #expect(c.frames(.headers, from: .server) == 4 && c.frames(.data, from: .client) == 2)
        #expect(c.anomalies.isEmpty && c.preface?.frame == 2)
    }

    @Test func resetsByEitherSide() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "resets", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, H2.request("GET", path: "/a"), endStream: true)
                + H2.headers(3, H2.request("GET", path: "/b"), endStream: true) + H2.headers(5, H2.request(path: "/c"))),
            (.server, H2.settings() + H2.rst(1, 7) + H2.headers(3, H2.literal(":status", "200")) + H2.data(3, 4, endStream: true) + H2.rst(3, 0)),
            (.client, H2.rst(5, 8) + H2.windowUpdate(5, 100)),
        ]))
        let refused = try #require(c.stream(1))
        #expect(refused.reset == HTTP2Reset(code: .refusedStream, by: .server, packet: PacketRef(frame: 2, time: Timestamp(nanoseconds: 2_000_000))))
        #expect(refused.status == nil && refused.isClosed)
        // A NO_ERROR reset after the response ended (RFC 9113 §8.1) is kept on the finished stream.
        let done = try #require(c.stream(3))
        #expect(done.status == 200 && done.serverEnded != nil && done.reset?.code == .noError && done.resetCount == 1)
        #expect(c.stream(5)?.reset?.by == .client && c.stream(5)?.reset?.code == .cancel)
        #expect(c.resets(from: .server) == [.refusedStream: 1, .noError: 1] && c.resets(from: .client) == [.cancel: 1])
        #expect(c.framesOnClosedStreams == 1 && c.anomalies.isEmpty)
        #expect(HTTP2ErrorCode(7).name == "REFUSED_STREAM" && HTTP2ErrorCode(0x42).name == "0x42")
    }

    @Test func goAwayRace() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "goaway", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, H2.request(path: "/a"), endStream: true)
                + H2.headers(3, H2.request(path: "/b"), endStream: true)),
            (.server, H2.settings() + H2.goAway(last: 1, code: 0, debug: "max_age\u{1}") + H2.grpcResponse(1, grpcStatus: 0)),
            (.client, H2.headers(5, H2.request(path: "/c"), endStream: true)),
        ], close: (.server, .fin)))
        #expect(c.goAways.count == 1)
        let goAway = try #require(c.goAways.first)
        #expect(goAway.from == .server && goAway.lastStreamID == 1 && goAway.errorCode == .noError && goAway.debugData == "max_age?")
        #expect(goAway.streamsInFlight == 1 && goAway.streamsOpenedAfter == 1 && goAway.packet.frame == 2)
        #expect(c.stream(1)?.aboveGoAwayLastStream == false && c.stream(1)?.isUnremarkable == true)
        let inFlight = try #require(c.stream(3))
        #expect(inFlight.aboveGoAwayLastStream && !inFlight.openedAfterGoAway && inFlight.status == nil)
        #expect(inFlight.connectionClosed == HTTP2Close(side: .server, kind: .fin, packet: PacketRef(frame: 4, time: Timestamp(nanoseconds: 4_000_000))))
        let after = try #require(c.stream(5))
        #expect(after.aboveGoAwayLastStream && after.openedAfterGoAway)
        #expect(c.close(of: .server)?.kind == .fin && c.close(of: .client) == nil)
    }

    @Test func continuationPaddingPriorityAndTheDynamicTable() throws {
        let block = H2.indexedLiteral(":method", "GET") + H2.literal(":scheme", "http") + H2.indexedLiteral(":path", "/big")
            + H2.literal(":authority", "h") + H2.literal("x-request-id", "r-7")
        // HEADERS padded (3 bytes) with priority, then two CONTINUATIONs.
        let first = [UInt8(3)] + H2.be32(0x8000_0000) + [15] + Array(block[..<10]) + [0, 0, 0]
        let c = expectSameWhateverTheSplit(H2Conversation(name: "continuation", turns: [
            (.client, H2.preface + H2.settings()
                + H2.frame(1, flags: 0x08 | 0x20 | 0x01, stream: 1, first)
                + H2.continuation(1, Array(block[10..<20]), endHeaders: false) + H2.continuation(1, Array(block[20...]), endHeaders: true)
                // The second request refers to the first's dynamic entries: indexes 62 (:path /big) and 63 (:method GET).
                + H2.headers(3, [0xbf, 0x86, 0xbe, 0x41, 0x01, 0x68], endStream: true)),
            (.server, H2.settings() + H2.headers(1, H2.literal(":status", "103")) + H2.headers(1, [0x88])
                // DATA padded: pad length 4, 6 data bytes.
                + H2.frame(0, flags: 0x08 | 0x01, stream: 1, [4, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0])
                + H2.headers(3, [0x8d], endStream: true)),
        ]))
        let one = try #require(c.stream(1))
        #expect(one.method == "GET" && one.path == "/big" && one.requestIDs.first?.value == "r-7" && one.clientEnded != nil)
        #expect(one.interimStatuses == [103] && one.status == 200 && one.serverDataBytes == 6)
        #expect(c.stream(3)?.method == "GET" && c.stream(3)?.path == "/big" && c.stream(3)?.status == 404)
        #expect(c.statusCounts == [103: 1, 200: 1, 404: 1] && c.requestCount == 2 && c.anomalies.isEmpty)
        // Flow control counts the padding (RFC 9113 §6.9.1).
        #expect(c.connectionWindow(of: .server) == 65_535 - 11)
    }

    @Test func hUpgradeStartsWithStreamOne() throws {
        var request = HTTPExchange(index: 0)
        request.method = "GET"
        request.target = "/a.txt"
        request.host = "127.0.0.1:19030"
        request.requestFrame = 4
        request.requestStart = Timestamp(nanoseconds: 500)
        request.requestComplete = Timestamp(nanoseconds: 600)
        let c = expectSameWhateverTheSplit(H2Conversation(name: "h2c upgrade", turns: [
            (.server, H2.settings([(3, 100)]) + H2.headers(1, H2.literal(":status", "200")) + H2.data(1, 3, endStream: true)),
            (.client, H2.preface + H2.settings() + H2.settingsAck + H2.headers(3, H2.request("GET", path: "/b.txt"), endStream: true)),
            (.server, H2.settingsAck + H2.headers(3, H2.literal(":status", "200")) + H2.data(3, 2, endStream: true)),
        ], upgrade: request))
        #expect(c.upgraded && c.requestCount == 2 && c.statusCounts == [200: 2])
        let one = try #require(c.stream(1))
        #expect(one.method == "GET" && one.path == "/a.txt" && one.authority == "127.0.0.1:19030" && one.first.frame == 4)
        #expect(one.clientEnded?.time == Timestamp(nanoseconds: 600) && one.status == 200 && one.serverDataBytes == 3 && one.isUnremarkable)
        // HTTP2-Settings: AAMAAABkAAQAAP__ is MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65535.
        #expect(c.clientSettings.maxConcurrentStreams == 100 && c.clientSettings.initialWindowSize == 65_535)
        #expect(c.stream(3)?.path == "/b.txt" && c.anomalies.isEmpty)
    }

    @Test func streamsOpenWhenTheUpstreamCloses() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "closed with streams open", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, H2.request(path: "/s"), endStream: true) + H2.headers(3, H2.request(path: "/t"), endStream: true)),
            (.server, H2.settings() + H2.headers(1, H2.literal(":status", "200")) + H2.data(1, 100) + Array(H2.data(3, 50).prefix(6))),
        ], close: (.server, .rst)))
        #expect(c.streams.map(\.id) == [1, 3] && c.streams.allSatisfy { $0.connectionClosed?.kind == .rst && $0.connectionClosed?.side == .server })
        #expect(c.stream(1)?.serverDataBytes == 100 && c.stream(1)?.serverEnded == nil && c.frameCutShort(.server) && !c.frameCutShort(.client))
    }

    @Test func flowControlStallsAndReopens() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "stall", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, H2.request(path: "/up")) + H2.data(1, 16_384) + H2.data(1, 16_384)
                + H2.data(1, 16_384) + H2.data(1, 16_383)),
            (.server, H2.settings([(4, 100)]) + H2.windowUpdate(0, 1000)),
            (.server, H2.windowUpdate(1, 70_000)),
            (.client, H2.data(1, 10, endStream: true)),
        ]))
        let stream = try #require(c.stream(1))
        // The window hit 0 at the fourth DATA (frame 1); SETTINGS then cut it to 100 - 65535.
        #expect(stream.clientWindowExhausted?.frame == 1)
        #expect(stream.clientWindow == 100 - 65_535 + 70_000 - 10)
        #expect(c.stalls == [
            HTTP2WindowStall(side: .client, streamID: 0, at: PacketRef(frame: 1, time: Timestamp(nanoseconds: 1_000_000)), reopened: PacketRef(frame: 2, time: Timestamp(nanoseconds: 2_000_000))),
            HTTP2WindowStall(side: .client, streamID: 1, at: PacketRef(frame: 1, time: Timestamp(nanoseconds: 1_000_000)), reopened: PacketRef(frame: 3, time: Timestamp(nanoseconds: 3_000_000))),
        ])
        #expect(c.connectionWindow(of: .client) == 1000 - 10 && c.windowOverruns == 0)
    }
}

@Suite struct HTTP2Violations {
    func anomalyCodes(_ c: HTTP2Connection) -> [String] { c.anomalies.map(\.violation.code) }

    @Test func structuralErrorsAreReportedAndParsingGoesOn() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "structural", turns: [
            (.client, H2.preface + H2.settings()
                + H2.frame(4, [0, 3, 0, 0, 0])  // SETTINGS of 5 bytes
                + H2.frame(6, stream: 1, [0, 0, 0, 0, 0, 0, 0, 0])  // PING on a stream
                + H2.frame(0, [1, 2])  // DATA on stream 0
                + H2.frame(3, stream: 1, [0, 0, 0])  // RST_STREAM of 3 bytes
                + H2.windowUpdate(0, 0)
                + H2.frame(0xfa, flags: 0xff, stream: 9, [1, 2, 3])  // unknown type: skipped
                + H2.frame(1, flags: 0x0c, stream: 1, [200] + H2.request(path: "/x"))  // padding longer than the payload
                + H2.settings([(2, 2), (5, 100), (4, 0x8000_0000), (0x99, 1)])
                + H2.frame(4, flags: 1, [0, 0, 0, 0, 0, 0])  // SETTINGS ACK with a payload
                + H2.headers(3, H2.request(path: "/still-parsed"), endStream: true)),
            (.server, H2.settings() + H2.headers(7, H2.literal(":status", "200")) + H2.data(9, 1) + H2.rst(11, 1)),
        ]))
        #expect(anomalyCodes(c) == [
            "bad_frame_length", "stream_id_not_zero", "stream_id_zero", "bad_frame_length", "window_update_zero", "bad_padding",
            "bad_setting", "bad_setting", "bad_setting", "bad_frame_length", "headers_on_idle_stream", "data_on_idle_stream",
            "rst_stream_on_idle_stream",
        ])
        #expect(c.anomalies.map(\.violation.errorCode)[0..<3] == [.frameSizeError, .protocolError, .protocolError])
        #expect(c.anomalies.first { $0.violation.code == "bad_setting" && $0.violation.errorCode == .flowControlError } != nil)
        #expect(c.stream(3)?.path == "/still-parsed" && c.frames(nil, from: .client) == 1)
        #expect(c.clientSettings.enablePush == nil && c.clientSettings.maxFrameSize == nil && c.clientSettings.initialWindowSize == nil)
        #expect(c.anomalyCounts["bad_setting"] == 3)
    }

    @Test func frameSizeLimitFollowsTheReceiversSetting() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "frame size", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, H2.request(path: "/u")) + H2.data(1, 16_385)),
            (.server, H2.settings([(5, 32_768)])),
            (.client, H2.data(1, 20_000, endStream: true)),
            (.server, H2.headers(1, H2.literal(":status", "200")) + H2.data(1, 16_384, endStream: true)),
        ]))
        #expect(anomalyCodes(c) == ["frame_too_large"])
        #expect(c.anomalies.first?.violation.errorCode == .frameSizeError && c.anomalies.first?.side == .client)
        // Reported and still counted: the frame's length says where the next one starts.
        #expect(c.stream(1)?.clientDataBytes == 36_385 && c.stream(1)?.status == 200)
    }

    @Test func badPrefaceStopsTheClientDirection() {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "bad preface", turns: [
            (.client, Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            (.server, H2.settings()),
        ]))
        #expect(anomalyCodes(c) == ["bad_preface"] && c.stoppedParsing(.client) && !c.stoppedParsing(.server))
        #expect(c.frames(.headers, from: .client) == 0)
    }

    @Test func firstFrameMustBeSettings() {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "no settings", turns: [
            (.client, H2.preface + H2.headers(1, H2.request(path: "/"), endStream: true)),
            (.server, H2.settingsAck + H2.settings()),
        ]))
        #expect(anomalyCodes(c) == ["first_frame_not_settings", "first_frame_not_settings"])
    }

    @Test func interruptedHeaderBlockMakesLaterHeadersUnknown() throws {
        let block = H2.request(path: "/first")
        let c = expectSameWhateverTheSplit(H2Conversation(name: "interrupted", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, Array(block[..<8]), endHeaders: false) + H2.ping()
                + H2.continuation(1, Array(block[8...]), endHeaders: true) + H2.headers(3, H2.request(path: "/second"), endStream: true)),
            (.server, H2.settings() + H2.headers(3, H2.literal(":status", "200"), endStream: true)),
        ]))
        #expect(anomalyCodes(c) == ["continuation_expected", "unexpected_continuation"])
        #expect(c.hpackFailure(.client) == .unusable && c.hpackFailure(.server) == nil)
        let second = try #require(c.stream(3))
        #expect(second.headersUnknown && second.path == nil && second.status == 200 && second.clientEnded != nil)
        #expect(c.requestCount == 0 && c.statusCounts == [200: 1])
    }

    @Test func hpackErrorIsACompressionError() {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "hpack", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, [0x82, 0xff, 0x7f], endStream: true) + H2.headers(3, H2.request(path: "/b"), endStream: true)),
        ]))
        #expect(anomalyCodes(c) == ["compression_error"] && c.anomalies.first?.violation.errorCode == .compressionError)
        if case .indexOutOfRange = c.hpackFailure(.client) {} else { Issue.record("expected indexOutOfRange, got \(String(describing: c.hpackFailure(.client)))") }
        #expect(c.stream(1)?.headersUnknown == true && c.stream(1)?.method == "GET" && c.stream(3)?.headersUnknown == true)
    }

    @Test func pushPromiseIsAccounted() throws {
        let c = expectSameWhateverTheSplit(H2Conversation(name: "push", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, H2.request("GET", path: "/page"), endStream: true)),
            (.server, H2.settings() + H2.frame(5, flags: 4, stream: 1, H2.be32(2) + H2.request("GET", path: "/style.css"))
                + H2.headers(1, H2.literal(":status", "200"), endStream: true) + H2.headers(2, H2.literal(":status", "200")) + H2.data(2, 9, endStream: true)),
        ]))
        let pushed = try #require(c.stream(2))
        #expect(pushed.openedBy == .server && pushed.path == "/style.css" && pushed.status == 200 && pushed.serverDataBytes == 9 && pushed.isClosed)
        #expect(c.streamCount == 2 && c.requestCount == 1 && c.frames(.pushPromise, from: .server) == 1 && c.anomalies.isEmpty)
    }
}

@Suite struct HTTP2Limits_ {
    @Test func tooManyOpenStreamsAreCounted() {
        var limits = HTTP2Limits()
        limits.maximumOpenStreams = 3
        limits.keepUnremarkableStreams = 1
        var client = H2.preface + H2.settings()
        for id in stride(from: UInt32(1), through: 11, by: 2) { client += H2.headers(id, H2.request("GET", path: "/\(id)"), endStream: true) }
        var server = H2.settings()
        for id in stride(from: UInt32(1), through: 11, by: 2) { server += H2.headers(id, H2.literal(":status", "200"), endStream: true) }
        let c = expectSameWhateverTheSplit(H2Conversation(name: "open streams", turns: [(.client, client), (.server, server)], limits: limits))
        #expect(c.streamCount == 6 && c.untrackedStreams == 3 && c.limitsReached == ["max_open_streams"])
        // Three finished unremarkable streams, one kept; every status counted all the same.
        #expect(c.streams.map(\.id) == [1] && c.droppedStreams == 2 && c.statusCounts == [200: 6] && c.requestCount == 6)
    }

    @Test func headerBlockAndContinuationLimits() {
        var limits = HTTP2Limits()
        limits.maximumHeaderBlock = 64
        limits.maximumContinuations = 3
        let big = H2.request(path: String(repeating: "p", count: 80))
        let c = expectSameWhateverTheSplit(H2Conversation(name: "block limits", turns: [
            (.client, H2.preface + H2.settings() + H2.headers(1, big, endStream: true)),
            (.server, H2.settings() + H2.headers(1, [], endHeaders: false) + H2.continuation(1, [], endHeaders: false)
                + H2.continuation(1, [], endHeaders: false) + H2.continuation(1, [], endHeaders: false)
                + H2.continuation(1, [0x88], endHeaders: false) + H2.continuation(1, [], endHeaders: true)),
        ], limits: limits))
        #expect(c.limitsReached == ["header_block_too_large", "too_many_continuations"])
        #expect(c.anomalies.map(\.violation.errorCode) == [.enhanceYourCalm, .enhanceYourCalm])
        #expect(c.hpackFailure(.client) == .unusable && c.hpackFailure(.server) == .unusable && c.stream(1)?.headersUnknown == true)
    }

    @Test func anomaliesAreCapped() {
        var client = H2.preface + H2.settings()
        for _ in 0..<100 { client += H2.windowUpdate(0, 0) }
        let c = H2Conversation(name: "many", turns: [(.client, client)]).run { [$0] }
        #expect(c.anomalies.count == 32 && c.anomalyCount == 100 && c.limitsReached == ["max_anomalies"])
    }

    @Test func gapInsideDataContinuesElsewhereStops() {
        var c = HTTP2Connection()
        let packet = PacketRef(frame: 1, time: .zero)
        let start = H2.preface + H2.settings() + H2.headers(1, H2.request(path: "/g")) + Array(H2.data(1, 1000).prefix(109))
        c.received(start.span.bytes, from: .client, packet: packet)
        c.gap(500, from: .client, packet: packet)
        let rest = [UInt8](repeating: 0x61, count: 400) + H2.data(1, 5, endStream: true)
        c.received(rest.span.bytes, from: .client, packet: packet)
        #expect(c.stream(1)?.clientDataBytes == 1005 && c.stream(1)?.clientEnded != nil && !c.stoppedParsing(.client))
        let server = H2.settings() + Array(H2.headers(1, H2.literal(":status", "200")).prefix(5))
        c.received(server.span.bytes, from: .server, packet: packet)
        c.gap(10, from: .server, packet: packet)
        #expect(c.stoppedParsing(.server) && c.stream(1)?.status == nil)
    }

    /// Random bytes after a valid start never trap, and memory stays within the limits.
    @Test func randomInputNeverTraps() {
        var random = SplitMix(state: 11)
        for round in 0..<400 {
            var c = HTTP2Connection()
            let packet = PacketRef(frame: round, time: .zero)
            let prefix = round % 2 == 0 ? H2.preface + H2.settings() : []
            c.received(prefix.span.bytes, from: .client, packet: packet)
            for _ in 0..<8 {
                let side: StreamSide = random.next() % 2 == 0 ? .client : .server
                var bytes = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                // Mostly valid frame headers with random payloads, so that deeper states are reached.
                if random.next() % 3 != 0 {
                    let type = UInt8(random.next() % 11)
                    let stream = UInt32(random.next() % 8)
                    bytes = H2.frame(type, flags: UInt8(truncatingIfNeeded: random.next()), stream: stream, bytes)
                }
                c.received(bytes.span.bytes, from: side, packet: packet)
            }
            c.closed(.server, by: .rst, packet: packet)
            c.finish()
            #expect(c.anomalies.count <= 32 && c.streams.count <= 64 + 1024)
        }
    }
}
