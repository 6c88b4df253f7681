import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// HTTP/2 verdicts, one per stream the gateway opened (a stream's verdict is its "exchange":
/// the first rule that speaks about it wins, as for HTTP/1 exchanges). What the packets prove:
/// who reset the stream and with which code, whether the upstream had announced with GOAWAY
/// that it would not process the stream, whether the upstream closed the connection under
/// streams it had not finished, and what gRPC status the trailers carried.
extension FlowFacts {
    /// The streams the originator (the gateway, on an upstream leg) opened.
    var h2Streams: [HTTP2Stream] { (h2?.streams ?? []).filter { $0.openedBy == .client } }
}

extension Finding {
    /// The same finding, about one HTTP/2 stream.
    func about(_ stream: HTTP2Stream) -> Finding {
        var copy = self
        copy.exchange = Int(stream.id)
        copy.method = stream.method
        copy.target = stream.path
        return copy
    }
}

/// The upstream sent GOAWAY with a last stream ID below a stream the gateway had opened, and
/// that stream got no response: the HTTP/2 form of the keep-alive race. RFC 9113 §6.8: such a
/// stream was not processed and may be retried.
struct HTTP2GoAwayRaceRule: DiagnosisRule {
    static let id = "goaway_race"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let h2 = facts.h2, let goAway = h2.goAways.first(where: { $0.from == .server }) else { return [] }
        return facts.h2Streams.filter { $0.aboveGoAwayLastStream && $0.status == nil }.map { stream in
            finding(
                "goaway_race", proxyStatus: "connection_terminated", .high, .reset, score: 80, at: goAway.packet.time,
                "stream \(stream.id) (\(stream.method ?? "?") \(stream.path ?? "?")) was opened but \(facts.responder) had sent GOAWAY (last stream \(goAway.lastStreamID), \(goAway.errorCode.name)): it was never processed",
                evidence: [
                    Evidence(stream.first, .originator, "stream \(stream.id) opened", flowStart: facts.first.time),
                    Evidence(goAway.packet, .responder, "GOAWAY last_stream_id=\(goAway.lastStreamID) \(goAway.errorCode.name)", flowStart: facts.first.time),
                ]
            ).about(stream)
        }
    }
}

/// The upstream reset a stream (RST_STREAM) before finishing its response.
struct HTTP2StreamResetRule: DiagnosisRule {
    static let id = "stream_reset_by_upstream"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        facts.h2Streams.compactMap { stream in
            guard let reset = stream.reset, reset.by == .server else { return nil }
            // NO_ERROR after a complete response only tells the client to stop sending.
            if reset.code == .noError && stream.serverEnded != nil { return nil }
            // REFUSED_STREAM: not processed, safe to retry (RFC 9113 §8.7); gateways do.
            let refused = reset.code == .refusedStream
            let answered = stream.status.map { " after answering \($0)" } ?? " before answering"
            return finding(
                "stream_reset_by_upstream", proxyStatus: "http_response_incomplete", refused ? .medium : .high, .reset,
                score: refused ? 50 : 80, at: reset.packet.time,
                "\(facts.responder) reset stream \(stream.id) (\(stream.method ?? "?") \(stream.path ?? "?")) with RST_STREAM \(reset.code.name)\(answered)\(refused ? ": refused, not processed (safe to retry)" : "")",
                evidence: [
                    Evidence(stream.first, .originator, "stream \(stream.id) opened", flowStart: facts.first.time),
                    Evidence(reset.packet, .responder, "RST_STREAM \(reset.code.name)", flowStart: facts.first.time, request: stream.first.time),
                ]
            ).about(stream)
        }
    }
}

/// The upstream closed (FIN or RST) the connection while streams the gateway had opened were
/// still waiting for their response to end.
struct HTTP2ClosedWithStreamsOpenRule: DiagnosisRule {
    static let id = "upstream_closed_with_streams_open"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        facts.h2Streams.compactMap { stream in
            guard let close = stream.connectionClosed, close.side == .server, close.kind != .endOfCapture,
                stream.serverEnded == nil, stream.reset == nil
            else { return nil }
            let how = close.kind == .rst ? "reset" : "closed"
            return finding(
                "upstream_closed_with_streams_open", proxyStatus: stream.status == nil ? "connection_terminated" : "http_response_incomplete",
                .high, .reset, score: 80, at: close.packet.time,
                "\(facts.responder) \(how) the connection while stream \(stream.id) (\(stream.method ?? "?") \(stream.path ?? "?")) was \(stream.status == nil ? "waiting for its response" : "still receiving its response")",
                evidence: [
                    Evidence(stream.first, .originator, "stream \(stream.id) opened", flowStart: facts.first.time),
                    Evidence(close.packet, .responder, close.kind == .rst ? "RST" : "FIN", flowStart: facts.first.time, request: stream.first.time),
                ]
            ).about(stream)
        }
    }
}

/// gRPC status in the trailers: UNAVAILABLE and INTERNAL are failures a client sees; other
/// non-zero statuses are the application's answers (information).
struct GRPCStatusRule: DiagnosisRule {
    static let id = "grpc_status"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        facts.h2Streams.compactMap { stream in
            guard let status = stream.grpcStatus, status != 0 else { return nil }
            let packet = stream.trailers ?? stream.responseHeaders ?? stream.last
            let message = stream.grpcMessage.map { ": \($0)" } ?? ""
            let evidence = [Evidence(packet, .responder, "grpc-status: \(status)", flowStart: facts.first.time, request: stream.first.time)]
            switch status {
            case 14:
                return finding(
                    "grpc_unavailable", proxyStatus: nil, .medium, .invalidResponse, score: 40, at: packet.time,
                    "\(facts.responder) answered \(stream.path ?? "the call") with gRPC status 14 UNAVAILABLE\(message)", evidence: evidence
                ).about(stream)
            case 13:
                return finding(
                    "grpc_internal", proxyStatus: nil, .medium, .invalidResponse, score: 40, at: packet.time,
                    "\(facts.responder) answered \(stream.path ?? "the call") with gRPC status 13 INTERNAL\(message)", evidence: evidence
                ).about(stream)
            default:
                return finding(
                    "grpc_error", proxyStatus: nil, .info, .invalidResponse, score: 0, at: packet.time,
                    "\(facts.responder) answered \(stream.path ?? "the call") with gRPC status \(status)\(message)", evidence: evidence
                ).about(stream)
            }
        }
    }
}

/// The upstream's side of the connection broke the HTTP/2 framing or HPACK: nothing after it
/// can be read, by the gateway either.
struct HTTP2ProtocolErrorRule: DiagnosisRule {
    static let id = "http2_protocol_error"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let h2 = facts.h2, h2.stoppedParsing(.server) || h2.hpackFailure(.server) != nil else { return [] }
        let reason = h2.hpackFailure(.server).map { "HPACK: \($0)" } ?? "HTTP/2 framing"
        var failure = finding(
            "invalid_response", proxyStatus: "http_protocol_error", .high, .invalidResponse, score: 90, at: facts.last.time,
            "\(facts.responder) broke the HTTP/2 protocol (\(reason)): its frames cannot be read", evidence: [])
        failure.reason = "http2_protocol_error"
        return [failure]
    }
}

/// A flow-control window reached zero and was never opened again while a stream still waited:
/// the side that may not send is stuck behind a receiver that stopped reading (RFC 9113 §5.2).
/// Which side matters: the upstream unable to send its response (the gateway stopped reading)
/// or the gateway unable to send its request body (the upstream stopped reading).
struct HTTP2FlowControlStallRule: DiagnosisRule {
    static let id = "http2_flow_control_stall"

    func evaluate(_ facts: FlowFacts, options: DiagnosisOptions) -> [Finding] {
        guard let h2 = facts.h2 else { return [] }
        var findings: [Finding] = []
        for stall in h2.stalls where stall.reopened == nil {
            // Only when something was left waiting: a stream of the gateway's without its end.
            let waiting = facts.h2Streams.filter { stream in
                (stall.streamID == 0 || stream.id == stall.streamID) && stream.serverEnded == nil && stream.reset == nil
            }
            guard let stream = waiting.first else { continue }
            let upstreamBlocked = stall.side == .server
            let window = stall.streamID == 0 ? "the connection's" : "stream \(stall.streamID)'s"
            var stalled = finding(
                "http2_flow_control_stall", proxyStatus: upstreamBlocked ? nil : "http_request_error", .medium, .timeout, score: 50,
                at: stall.at.time,
                upstreamBlocked
                    ? "\(window) flow-control window for \(facts.responder)'s data reached zero and the gateway never opened it again: the response to stream \(stream.id) could not be sent (the gateway stopped reading)"
                    : "\(window) flow-control window for the gateway's data reached zero and \(facts.responder) never opened it again: the request body of stream \(stream.id) could not be sent (the upstream stopped reading)",
                evidence: [Evidence(stall.at, upstreamBlocked ? .responder : .originator, "window at zero", flowStart: facts.first.time)])
            stalled = stalled.about(stream)
            findings.append(stalled)
        }
        return findings
    }
}
