import CapdiagEngine
import CapdiagProtocols
import CapdiagWire

/// HTTP/2 on a cleartext connection, in the flow record (`http2`): counts, GOAWAYs, resets, and
/// the first streams one by one.
public struct HTTP2Record: Codable, Sendable, Equatable {
    public struct Stream: Codable, Sendable, Equatable {
        public var id: Int
        public var method: String?
        public var path: String?
        public var status: Int?
        public var grpcStatus: Int?
        public var grpcMessage: String?
        /// RST_STREAM: its error code and who sent it (`client`, `server`).
        public var resetCode: String?
        public var resetBy: String?
        public var resetFrame: Int?
        public var clientEnded: Bool
        public var serverEnded: Bool
        public var firstFrame: Int
        public var lastFrame: Int
    }

    public struct GoAway: Codable, Sendable, Equatable {
        public var from: String
        public var lastStreamId: Int
        public var error: String
        public var frame: Int
        public var time: String
        /// Streams the gateway opened after it, or above its last stream ID.
        public var streamsOpenedAfter: Int
    }

    public static let streamsListed = 20

    public var requests: Int
    /// HTTP/1.1 upgraded to h2c: stream 1 is the upgrade request (counted in `requests`).
    public var upgraded: Bool
    public var statuses: [String: Int]
    public var grpcStatuses: [String: Int]
    public var goAways: [GoAway]
    public var streams: [Stream]
    public var streamsNotListed: Int
    public var anomalies: [String: Int]

    init?(_ session: ProtocolSession?) {
        guard case .http2(let h2) = session?.application else { return nil }
        requests = h2.requestCount
        upgraded = h2.upgraded
        statuses = Dictionary(uniqueKeysWithValues: h2.statusCounts.map { (String($0.key), $0.value) })
        grpcStatuses = Dictionary(uniqueKeysWithValues: h2.grpcStatusCounts.map { (String($0.key), $0.value) })
        goAways = h2.goAways.map {
            GoAway(
                from: $0.from == .client ? "client" : "server", lastStreamId: Int($0.lastStreamID), error: $0.errorCode.name,
                frame: $0.packet.frame, time: $0.packet.time.iso8601, streamsOpenedAfter: $0.streamsOpenedAfter)
        }
        let all = h2.streams.sorted { $0.id < $1.id }
        streams = all.prefix(Self.streamsListed).map { stream in
            Stream(
                id: Int(stream.id), method: stream.method, path: stream.path, status: stream.status, grpcStatus: stream.grpcStatus,
                grpcMessage: stream.grpcMessage, resetCode: stream.reset?.code.name,
                resetBy: stream.reset.map { $0.by == .client ? "client" : "server" }, resetFrame: stream.reset?.packet.frame,
                clientEnded: stream.clientEnded != nil, serverEnded: stream.serverEnded != nil, firstFrame: stream.first.frame,
                lastFrame: stream.last.frame)
        }
        streamsNotListed = max(0, h2.streamCount - streams.count)
        anomalies = h2.anomalyCounts
    }

    /// One line for the text output: "HTTP/2: 12 requests, 200 ×8, 502 ×4; grpc-status 0 ×8; …".
    public var summary: String {
        var parts = ["HTTP/2\(upgraded ? " (upgraded from HTTP/1.1, h2c)" : ""): \(counted(requests, "request"))"]
        if !statuses.isEmpty { parts.append(statuses.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")) }
        if !grpcStatuses.isEmpty {
            parts.append("grpc-status " + grpcStatuses.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
        }
        for goAway in goAways.prefix(2) { parts.append("GOAWAY from the \(goAway.from) (last stream \(goAway.lastStreamId), \(goAway.error))") }
        let resets = streams.filter { $0.resetCode != nil }.count
        if resets > 0 { parts.append("\(counted(resets, "stream")) reset") }
        return parts.joined(separator: "; ")
    }
}

extension HTTP2Record {
    static func counts(_ values: [String: Int]) -> JSONObject {
        var o = JSONObject()
        for (key, value) in values.sorted(by: { $0.key < $1.key }) { o.add(key, value) }
        return o
    }

    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("anomalies", Self.counts(anomalies))
        o.add("go_aways", objects: goAways.map { goAway in
            var g = JSONObject()
            g.add("error", goAway.error)
            g.add("frame", goAway.frame)
            g.add("from", goAway.from)
            g.add("last_stream_id", goAway.lastStreamId)
            g.add("streams_opened_after", goAway.streamsOpenedAfter)
            g.add("time", goAway.time)
            return g
        })
        o.add("grpc_statuses", Self.counts(grpcStatuses))
        o.add("requests", requests)
        o.add("statuses", Self.counts(statuses))
        o.add("streams", objects: streams.map { stream in
            var s = JSONObject()
            s.add("client_ended", stream.clientEnded)
            s.add("first_frame", stream.firstFrame)
            s.add("grpc_message", stream.grpcMessage)
            s.add("grpc_status", stream.grpcStatus)
            s.add("id", stream.id)
            s.add("last_frame", stream.lastFrame)
            s.add("method", stream.method)
            s.add("path", stream.path)
            s.add("reset_by", stream.resetBy)
            s.add("reset_code", stream.resetCode)
            s.add("reset_frame", stream.resetFrame)
            s.add("server_ended", stream.serverEnded)
            s.add("status", stream.status)
            return s
        })
        o.add("streams_not_listed", streamsNotListed)
        o.add("upgraded", upgraded)
        return o
    }
}
