import CapdiagTestSupport
import CapdiagWire
import Foundation
import Testing

@testable import CapdiagProtocols

/// Reads a classic pcap file (micro- or nanosecond, either byte order) record by record.
struct PcapRecords: Sequence {
    let bytes: [UInt8]
    let linkType: LinkType
    let bigEndian: Bool
    let nanoseconds: Bool

    init(path: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        self.bytes = bytes
        guard bytes.count >= 24 else { throw CocoaError(.fileReadCorruptFile) }
        let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        switch magic {
        case 0xa1b2_c3d4: (bigEndian, nanoseconds) = (false, false)
        case 0xa1b2_3c4d: (bigEndian, nanoseconds) = (false, true)
        case 0xd4c3_b2a1: (bigEndian, nanoseconds) = (true, false)
        case 0x4d3c_b2a1: (bigEndian, nanoseconds) = (true, true)
        default: throw CocoaError(.fileReadCorruptFile)
        }
        let bigEndian = self.bigEndian
        func u32(_ at: Int) -> UInt32 {
            let b = bytes[at..<at + 4].map(UInt32.init)
            return bigEndian ? b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3] : b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0]
        }
        linkType = LinkType(dlt: Int32(u32(20) & 0x0FFF_FFFF))
    }

    func makeIterator() -> AnyIterator<(time: Timestamp, data: ArraySlice<UInt8>)> {
        var offset = 24
        return AnyIterator {
            guard offset + 16 <= bytes.count else { return nil }
            let b = bytes[offset..<offset + 16].map(UInt32.init)
            func u32(_ i: Int) -> UInt32 {
                bigEndian ? b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3] : b[i + 3] << 24 | b[i + 2] << 16 | b[i + 1] << 8 | b[i]
            }
            let length = Int(u32(8))
            guard offset + 16 + length <= bytes.count else { return nil }
            let time = Timestamp(seconds: Int64(u32(0)), nanoseconds: Int64(u32(4)) * (nanoseconds ? 1 : 1000))
            let data = bytes[offset + 16..<offset + 16 + length]
            offset += 16 + length
            return (time, data)
        }
    }
}

/// One TCP connection of a lab capture, followed with `HTTP2Connection` after a minimal
/// in-order reassembly (loopback captures have no loss; retransmitted bytes are skipped, bytes
/// past a hole wait for it). A connection that starts in HTTP/1.1 and upgrades to h2c runs
/// through `HTTPConnection` until the 101, then switches as ProtocolSession would.
struct LabConnection {
    var tuple: String
    var http1: HTTPConnection?
    var http2: HTTP2Connection?
    var next: [StreamSide: UInt32] = [:]
    var pending: [StreamSide: [UInt32: [UInt8]]] = [.client: [:], .server: [:]]
    var buffered: [StreamSide: [UInt8]] = [.client: [], .server: []]

    init(tuple: String, startsInHTTP1: Bool) {
        self.tuple = tuple
        if startsInHTTP1 { http1 = HTTPConnection(redact: false) } else { http2 = HTTP2Connection(redact: false) }
    }

    mutating func segment(_ header: TCPHeader, payload: [UInt8], from side: StreamSide, packet: PacketRef) {
        if header.flags.contains(.syn) { next[side] = header.sequenceNumber &+ 1 }
        if !payload.isEmpty, let expected = next[side] {
            let delta = Int32(bitPattern: header.sequenceNumber &- expected)
            if delta > 0 {
                pending[side]?[header.sequenceNumber] = payload
            } else if Int(-delta) < payload.count {
                deliver(Array(payload[Int(-delta)...]), from: side, packet: packet)
                while let expected = next[side], let waiting = pending[side]?.removeValue(forKey: expected) {
                    deliver(waiting, from: side, packet: packet)
                }
            }
        }
        if header.flags.contains(.rst) {
            http2?.closed(side, by: .rst, packet: packet)
        } else if header.flags.contains(.fin) {
            http2?.closed(side, by: .fin, packet: packet)
        }
    }

    private mutating func deliver(_ bytes: [UInt8], from side: StreamSide, packet: PacketRef) {
        next[side] = next[side]! &+ UInt32(bytes.count)
        if http2 != nil {
            http2!.received(bytes.span.bytes, from: side, packet: packet)
            return
        }
        // HTTP/1.1 until the server's 101 (RFC 9110 §15.2.2): both directions are kept until
        // then, and the bytes after the heads start HTTP/2.
        http1!.received(bytes.span.bytes, from: side, packet: packet)
        buffered[side]! += bytes
        guard http1!.tunnelled, let request = http1!.exchanges.first, request.status == 101,
            let clientEnd = headEnd(buffered[.client]!), let serverEnd = headEnd(buffered[.server]!)
        else { return }
        let settings = headerValue("http2-settings", in: Array(buffered[.client]![..<clientEnd]))
        var connection = HTTP2Connection(upgradedFrom: request, http2Settings: settings, redact: false)
        connection.received(Array(buffered[.client]![clientEnd...]).span.bytes, from: .client, packet: packet)
        connection.received(Array(buffered[.server]![serverEnd...]).span.bytes, from: .server, packet: packet)
        http2 = connection
        http1 = nil
    }

    private func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count where bytes[index - 3...index].elementsEqual([13, 10, 13, 10]) { return index + 1 }
        return nil
    }

    private func headerValue(_ name: String, in head: [UInt8]) -> String? {
        for line in String(decoding: head, as: UTF8.self).split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 && parts[0].lowercased() == name { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }
}

/// Every TCP connection of a capture to `port`, in the order they started, after the capture ended.
func labConnections(_ path: String, port: UInt16, startsInHTTP1: Bool = false) throws -> [LabConnection] {
    let records = try PcapRecords(path: path)
    var connections: [LabConnection] = []
    var index: [String: Int] = [:]
    for (number, record) in records.enumerated() {
        let packet = PacketRef(frame: number + 1, time: record.time)
        let data = Array(record.data)
        guard let decoded = try? data.withUnsafeBytes({ raw throws(DecodeError) in try PacketDecoder.decode(raw.bytes, linkType: records.linkType) }),
            case .tcp(let tcp) = decoded.transport, tcp.sourcePort == port || tcp.destinationPort == port
        else { continue }
        let side: StreamSide = tcp.destinationPort == port ? .client : .server
        let client = side == .client ? "\(decoded.ip.source):\(tcp.sourcePort)" : "\(decoded.ip.destination):\(tcp.destinationPort)"
        let server = side == .client ? "\(decoded.ip.destination):\(tcp.destinationPort)" : "\(decoded.ip.source):\(tcp.sourcePort)"
        let tuple = "\(client) -> \(server)"
        if index[tuple] == nil {
            index[tuple] = connections.count
            connections.append(LabConnection(tuple: tuple, startsInHTTP1: startsInHTTP1))
        }
        let payload = Array(data[decoded.payloadOffset..<decoded.payloadOffset + decoded.capturedPayloadLength])
        connections[index[tuple]!].segment(tcp, payload: payload, from: side, packet: packet)
    }
    for i in connections.indices { connections[i].http2?.finish() }
    return connections
}

/// The lab's scenarios (Captures/lab/http2): each label holds tshark's reading of each leg.
let http2LabScenarios = [
    "h2c-healthy", "h2c-upgrade", "grpc-healthy", "grpc-unavailable", "grpc-killed-midstream", "grpc-goaway", "grpc-reset",
    "haproxy-h2-healthy", "haproxy-h2-upstream-killed",
]

@Suite struct HTTP2LabCaptures {
    static let folder = Locations.captures.appending(path: "lab/http2")

    func label(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.folder.appending(path: "\(name).json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Per leg, the requests, statuses, grpc-status values, RST_STREAM and GOAWAY frames counted
    /// over every connection equal tshark's (stored in the label when it was recorded), and the
    /// upstream streams that failed are the ones tshark's reading says failed.
    @Test(arguments: http2LabScenarios)
    func countsEqualTshark(_ name: String) throws {
        let label = try label(name)
        let legs = try #require(label["tshark"] as? [String: [String: Any]])
        let pcap = Self.folder.appending(path: "\(name).pcap").path
        for (legName, leg) in legs.sorted(by: { $0.key < $1.key }) {
            let port = UInt16(try #require(leg["port"] as? Int))
            // The h2c upgrade's client leg starts as HTTP/1.1 (tshark decodes it as http there).
            let upgrade = name == "h2c-upgrade" && legName == "client"
            let connections = try labConnections(pcap, port: port, startsInHTTP1: upgrade)
            let http2 = connections.compactMap(\.http2)
            let expectedConnections = try #require(leg["connections"] as? [[String: Any]]).map { $0["tuple"] as? String }
            #expect(connections.map(\.tuple) == expectedConnections, "\(name) \(legName): connections")
            // HTTP/1.1-only connections (HAProxy's client leg) carry no HTTP/2.
            if (leg["requests"] as? Int) == 0 && (leg["statuses"] as? [String: Int])?.isEmpty == true && legName == "client" {
                #expect(http2.allSatisfy { $0.stoppedParsing(.client) }, "\(name) \(legName): not HTTP/2")
                continue
            }
            // tshark counts HEADERS with :method; the upgrade request is HTTP/1.1.
            let requests = http2.reduce(0) { $0 + $1.requestCount - ($1.upgraded ? 1 : 0) }
            var statuses: [String: Int] = [:]
            var grpcStatuses: [String: Int] = [:]
            for c in http2 {
                for (status, count) in c.statusCounts { statuses[String(status), default: 0] += count }
                for (status, count) in c.grpcStatusCounts { grpcStatuses[String(status), default: 0] += count }
            }
            let resets = http2.reduce(0) { $0 + $1.resets(from: .client).values.reduce(0, +) + $1.resets(from: .server).values.reduce(0, +) }
            let goAways = http2.reduce(0) { $0 + $1.frames(.goAway, from: .client) + $1.frames(.goAway, from: .server) }
            #expect(requests == leg["requests"] as? Int, "\(name) \(legName): requests")
            #expect(statuses == leg["statuses"] as? [String: Int], "\(name) \(legName): statuses")
            #expect(grpcStatuses == leg["grpc_statuses"] as? [String: Int], "\(name) \(legName): grpc-status")
            #expect(resets == leg["rst_streams"] as? Int, "\(name) \(legName): RST_STREAM")
            #expect(goAways == leg["goaways"] as? Int, "\(name) \(legName): GOAWAY")
            // Real implementations break no rule, and nothing reaches a limit.
            for c in http2 {
                #expect(c.anomalies.isEmpty && c.limitsReached.isEmpty, "\(name) \(legName): \(c.anomalies)")
                #expect(!c.stoppedParsing(.client) && !c.stoppedParsing(.server) && c.hpackFailure(.client) == nil && c.hpackFailure(.server) == nil)
            }
            if legName == "upstream" {
                let failed = zip(connections, http2).flatMap { connection, c in
                    c.streams.filter(Self.failed).map { "\(connection.tuple) #\($0.id)" }
                }
                let expected = try #require(label["failed_upstream_streams"] as? [[String: Any]]).map {
                    "\($0["tuple"] as? String ?? "?") #\($0["stream_id"] as? Int ?? -1)"
                }
                #expect(failed.sorted() == expected.sorted(), "\(name): failed upstream streams")
            }
        }
    }

    /// As label.py reads a stream as failed: a reset (other than NO_ERROR after the response
    /// ended), a 5xx, a gRPC status other than OK, or no end of the response.
    static func failed(_ stream: HTTP2Stream) -> Bool {
        guard stream.method != nil else { return false }
        if let reset = stream.reset, !(reset.code == .noError && stream.serverEnded != nil) { return true }
        if let status = stream.status, status >= 500 { return true }
        if let grpc = stream.grpcStatus, grpc != 0 { return true }
        return stream.serverEnded == nil && stream.reset == nil
    }

    /// What each scenario's cause looks like on the upstream leg.
    @Test func causesAreVisibleOnTheUpstreamLeg() throws {
        func upstream(_ name: String, port: UInt16) throws -> [(String, HTTP2Connection)] {
            try labConnections(Self.folder.appending(path: "\(name).pcap").path, port: port).compactMap { c in c.http2.map { (c.tuple, $0) } }
        }
        // UNAVAILABLE as a trailers-only response: HTTP 200, grpc-status 14, its message.
        let unavailable = try upstream("grpc-unavailable", port: 19011).flatMap { $0.1.streams }.filter { $0.grpcStatus == 14 }
        #expect(unavailable.count == 10 && unavailable.allSatisfy { $0.status == 200 && $0.grpcMessage == "lab: backend draining" && $0.trailers == nil })
        // Killed mid-stream: the upstream's FIN (or RST) with the streams open, DATA already flowing.
        let killed = try upstream("grpc-killed-midstream", port: 19011).flatMap { $0.1.streams }
        #expect(killed.count == 3 && killed.allSatisfy { $0.connectionClosed?.side == .server && $0.serverEnded == nil && $0.serverDataBytes > 0 && $0.status == 200 })
        // Reset: RST_STREAM(INTERNAL_ERROR) from the upstream, before any response head.
        let resets = try upstream("grpc-reset", port: 19011).flatMap { $0.1.streams }.compactMap(\.reset)
        #expect(resets.count == 4 && resets.allSatisfy { $0.code == .internalError && $0.by == .server })
        // Max connection age: graceful GOAWAY (last stream 2^31-1), then the real last stream.
        let goAways = try upstream("grpc-goaway", port: 19011).flatMap { $0.1.goAways }
        #expect(goAways.contains { $0.lastStreamID == 2_147_483_647 && $0.from == .server && $0.errorCode == .noError })
        #expect(goAways.contains { $0.lastStreamID < 2_147_483_647 && $0.from == .server })
        // The h2c upgrade: stream 1 is the HTTP/1.1 request, answered in HTTP/2; nghttp opens 13 next
        // (3 to 11 are its PRIORITY placeholders, never opened).
        let upgraded = try #require(try labConnections(Self.folder.appending(path: "h2c-upgrade.pcap").path, port: 19030, startsInHTTP1: true).first?.http2)
        #expect(upgraded.upgraded && upgraded.stream(1)?.path == "/a.txt" && upgraded.stream(1)?.status == 200 && upgraded.stream(13)?.path == "/b.txt")
        #expect(upgraded.clientSettings.maxConcurrentStreams == 100)
    }
}
