import CapdiagFlow
import CapdiagProtocols

/// A small JSON object writer for the per-flow output, which Foundation's `JSONEncoder` makes
/// about 40 times slower than the analysis itself. Keys are sorted when the text is built, as
/// `JSONEncoder`'s `.sortedKeys` does, and absent optionals are left out, so both give the same
/// bytes (a test checks this on real captures).
struct JSONObject {
    private var fields: [(key: String, value: String)] = []

    init() { fields.reserveCapacity(24) }

    mutating func add(_ key: String, _ value: some BinaryInteger) { fields.append((key, String(value))) }

    mutating func add(_ key: String, _ value: (some BinaryInteger)?) {
        if let value { add(key, value) }
    }

    mutating func add(_ key: String, _ value: Bool) { fields.append((key, value ? "true" : "false")) }

    mutating func add(_ key: String, _ value: String) { fields.append((key, Self.quoted(value))) }

    mutating func add(_ key: String, _ value: String?) {
        if let value { add(key, value) }
    }

    /// Replaces the value of the field added last with already-encoded JSON.
    mutating func replaceLast(raw: String) {
        guard !fields.isEmpty else { return }
        fields[fields.count - 1].value = raw
    }

    mutating func add(_ key: String, _ object: JSONObject?) {
        if let object { fields.append((key, object.text)) }
    }

    mutating func add(_ key: String, strings: [String]) {
        fields.append((key, "[" + strings.map(Self.quoted).joined(separator: ",") + "]"))
    }

    mutating func add(_ key: String, objects: [JSONObject]) {
        fields.append((key, "[" + objects.map(\.text).joined(separator: ",") + "]"))
    }

    var text: String {
        // Callers add most fields in key order already: sorting a sorted list copied it.
        var inOrder = true
        for index in fields.indices.dropFirst() where !(fields[index - 1].key < fields[index].key) {
            inOrder = false
            break
        }
        let sorted = inOrder ? fields : fields.sorted(by: { $0.key < $1.key })
        var length = 2
        for field in sorted { length += field.key.utf8.count + field.value.utf8.count + 4 }
        var out = "{"
        out.reserveCapacity(length)
        for (index, field) in sorted.enumerated() {
            if index > 0 { out += "," }
            out += "\""
            out += field.key
            out += "\":"
            out += field.value
        }
        out += "}"
        return out
    }

    /// A JSON string literal (RFC 8259 §7), escaping as `JSONEncoder` does, slashes left alone.
    static func quoted(_ string: String) -> String {
        // Most strings need no escape: copied whole instead of scalar by scalar.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            var out = "\""
            out.reserveCapacity(string.utf8.count + 2)
            out += string
            out += "\""
            return out
        }
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension FlowRecord {
    /// The record as one line of JSON, byte for byte what `JSONOutput.line` gives, faster.
    public var jsonLine: String { jsonObject.text }

    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("anomalies", strings: anomalies)
        o.add("application", application)
        o.add("community_id", communityId)
        o.add("conn_state", connState)
        o.add("diagnosis", diagnosis?.jsonObject)
        o.add("dns", dns?.jsonObject)
        o.add("duration_ns", durationNs)
        o.add("end", end)
        o.add("ended_by", endedBy)
        o.add("first_frame", firstFrame)
        o.add("handshake", handshake.jsonObject)
        o.add("history", history)
        o.add("http", http?.jsonObject)
        o.add("http2", http2?.jsonObject)
        o.add("icmp_error", icmpError?.jsonObject)
        o.add("id", id)
        o.add("last_frame", lastFrame)
        o.add("orig", orig.jsonObject)
        o.add("originator", originator.jsonObject)
        o.add("resp", resp.jsonObject)
        o.add("responder", responder.jsonObject)
        o.add("roles_inferred", rolesInferred)
        if let sources {
            o.add("sources", objects: sources.map { source in
                var s = JSONObject()
                s.add("first_frame", source.firstFrame)
                s.add("input", source.input)
                s.add("last_frame", source.lastFrame)
                s.add("path", source.path)
                return s
            })
        }
        o.add("start", start)
        o.add("stream", stream?.jsonObject)
        o.add("tls", tls?.jsonObject)
        o.add("type", type)
        return o
    }
}

extension PacketRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("frame", frame)
        o.add("offset_ns", offsetNs)
        o.add("time", time)
        return o
    }
}

extension JSONObject {
    /// The `EndpointField` shape for endpoints held as text: `{address, port}`.
    static func endpoint(_ text: String) -> JSONObject {
        if let (address, port) = EndpointText.split(text) { return EndpointRecord(address: address, port: port).jsonObject }
        var o = JSONObject()
        o.add("name", text)
        return o
    }
}

extension EndpointRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("address", address)
        o.add("port", port)
        return o
    }
}

extension ControlRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("frame", frame)
        o.add("offset_ns", offsetNs)
        o.add("relative_seq", relativeSeq)
        o.add("time", time)
        return o
    }
}

extension HandshakeRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("ack", ack?.jsonObject)
        o.add("rtt_ns", rttNs)
        o.add("syn", syn?.jsonObject)
        o.add("syn_ack", synAck?.jsonObject)
        o.add("syn_retransmit_count", synRetransmitCount)
        o.add("syn_retransmits", objects: synRetransmits.map(\.jsonObject))
        return o
    }
}

extension DirectionRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("acked_unseen_bytes", ackedUnseenBytes)
        o.add("bytes", bytes)
        o.add("duplicate_frames", duplicateFrames)
        o.add("fin", fin)
        o.add("first_fin", firstFin?.jsonObject)
        o.add("first_rst", firstRst?.jsonObject)
        o.add("gaps", gaps)
        o.add("keep_alives", keepAlives)
        o.add("missing_bytes", missingBytes)
        o.add("mss", mss)
        o.add("out_of_order", outOfOrder)
        o.add("packets", packets)
        o.add("payload_bytes", payloadBytes)
        o.add("retransmissions", retransmissions)
        o.add("retransmitted_bytes", retransmittedBytes)
        o.add("rst", rst)
        o.add("sack_permitted", sackPermitted)
        o.add("syn", syn)
        o.add("timestamps", timestamps)
        o.add("window_scale", windowScale)
        o.add("zero_windows", zeroWindows)
        return o
    }
}

extension ICMPRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("about", about)
        o.add("code", code)
        o.add("count", count)
        o.add("frame", frame)
        o.add("mtu", mtu)
        o.add("offset_ns", offsetNs)
        o.add("reporter", reporter)
        o.add("time", time)
        o.add("type", type)
        o.add("version", version)
        return o
    }
}

extension HTTPRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("exchange_count", exchangeCount)
        o.add("exchanges", objects: exchanges.map(\.jsonObject))
        o.add("problem_count", problemCount)
        o.add("tunnel_carries", tunnelCarries)
        o.add("tunnel_client_bytes", tunnelClientBytes)
        o.add("tunnel_server_bytes", tunnelServerBytes)
        o.add("tunnelled", tunnelled)
        return o
    }
}

extension HTTPExchangeRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("chunked", chunked)
        o.add("declared_body_bytes", declaredBodyBytes)
        o.add("delivered_body_bytes", deliveredBodyBytes)
        o.add("host", host)
        o.add("idle_before_ns", idleBeforeNs)
        o.add("index", index)
        o.add("interim_statuses", objects: [])
        o.replaceLast(raw: "[" + interimStatuses.map(String.init).joined(separator: ",") + "]")
        o.add("method", method)
        o.add("problem", problem?.jsonObject)
        o.add("reason", reason)
        o.add("request_body_bytes", requestBodyBytes)
        o.add("request_frame", requestFrame)
        o.add("request_header_bytes", requestHeaderBytes)
        o.add("request_ids", objects: requestIds.map(\.jsonObject))
        o.add("request_time", requestTime)
        o.add("response_complete_ns", responseCompleteNs)
        o.add("response_frame", responseFrame)
        o.add("response_header_bytes", responseHeaderBytes)
        o.add("status", status)
        o.add("target", target)
        o.add("time_to_first_byte_ns", timeToFirstByteNs)
        return o
    }
}

extension HTTPProblem {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("code", code)
        o.add("detail", detail)
        if let rejectedBy { o.add("rejected_by", strings: rejectedBy) }
        return o
    }
}

extension HeaderValue {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("name", name)
        o.add("value", value)
        return o
    }
}

extension StreamsRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("orig", orig.jsonObject)
        o.add("resp", resp.jsonObject)
        return o
    }
}

extension StreamRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("buffer_overflows", bufferOverflows)
        o.add("delivered_bytes", deliveredBytes)
        o.add("gap_bytes", gapBytes)
        o.add("overlap_conflicts", overlapConflicts)
        return o
    }
}

extension EventRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("frame", frame)
        o.add("time", time)
        return o
    }
}

extension TLSAlertRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("description", description)
        o.add("description_code", descriptionCode)
        o.add("encrypted", encrypted)
        o.add("frame", frame)
        o.add("level", level)
        o.add("side", side)
        o.add("time", time)
        return o
    }
}

extension TLSRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("alert_after_handshake_without_data", alertAfterHandshakeWithoutData)
        o.add("alerts", objects: alerts.map(\.jsonObject))
        o.add("alpn", alpn)
        o.add("cipher_suite", cipherSuite)
        o.add("client_change_cipher_spec", clientChangeCipherSpec?.jsonObject)
        o.add("client_violation", clientViolation)
        o.add("first_client_application_data", firstClientApplicationData?.jsonObject)
        o.add("first_server_application_data", firstServerApplicationData?.jsonObject)
        o.add("handshake_completed", handshakeCompleted)
        o.add("has_problem", hasProblem)
        o.add("offered_alpn", strings: offeredAlpn)
        o.add("offered_versions", strings: offeredVersions)
        o.add("plaintext_http_reply", plaintextHttpReply?.jsonObject)
        o.add("server_change_cipher_spec", serverChangeCipherSpec?.jsonObject)
        o.add("server_name", serverName)
        o.add("server_violation", serverViolation)
        o.add("version", version)
        return o
    }
}

extension DNSRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("answer_changes", objects: answerChanges.map(\.jsonObject))
        o.add("malformed", malformed)
        o.add("problems", objects: problems.map(\.jsonObject))
        o.add("queries", queries)
        var codes = JSONObject()
        for (key, value) in rcodes { codes.add(key, value) }
        o.add("rcodes", codes)
        o.add("responses", responses)
        o.add("unanswered", unanswered)
        o.add("unmatched_responses", unmatchedResponses)
        return o
    }
}

extension DNSTransactionRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("answers", strings: answers)
        o.add("client", JSONObject.endpoint(client))
        o.add("id", id)
        o.add("latency_ns", latencyNs)
        o.add("name", name)
        o.add("query_frame", queryFrame)
        o.add("query_time", queryTime)
        o.add("query_type", queryType)
        o.add("rcode", rcode)
        o.add("response_frame", responseFrame)
        o.add("server", JSONObject.endpoint(server))
        o.add("truncated", truncated)
        return o
    }
}

extension DNSAnswerChangeRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("after", strings: after)
        o.add("before", strings: before)
        o.add("frame", frame)
        o.add("name", name)
        o.add("query_type", queryType)
        o.add("time", time)
        return o
    }
}

extension FlowDiagnosisRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("findings", objects: findings.map(\.jsonObject))
        o.add("healthy", healthy)
        var s = JSONObject()
        s.add("handshake", scores.handshake)
        s.add("invalid_response", scores.invalidResponse)
        s.add("network_quality", scores.networkQuality)
        s.add("reset", scores.reset)
        s.add("timeout", scores.timeout)
        o.add("scores", s)
        o.add("severity", severity)
        return o
    }
}

extension FindingRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("code", code)
        o.add("dimension", dimension)
        o.add("evidence", objects: evidence.map(\.jsonObject))
        o.add("exchange", exchange)
        o.add("measurements", measurements?.jsonObject)
        o.add("method", method)
        o.add("proxy_status", proxyStatus)
        o.add("reason", reason)
        o.add("rule", rule)
        o.add("score", score)
        o.add("severity", severity)
        o.add("summary", summary)
        o.add("target", target)
        o.add("time", time)
        return o
    }
}

extension EvidenceRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("frame", frame)
        o.add("from", from)
        o.add("offset_ns", offsetNs)
        o.add("since_request_ns", sinceRequestNs)
        o.add("time", time)
        o.add("what", what)
        return o
    }
}

extension MeasurementsRecord {
    var jsonObject: JSONObject {
        var o = JSONObject()
        o.add("close_after_request_ns", closeAfterRequestNs)
        o.add("header_bytes", headerBytes)
        o.add("idle_before_ns", idleBeforeNs)
        o.add("missing_bytes", missingBytes)
        o.add("status", status)
        if let synTimesNs { o.add("syn_times_ns", strings: []); o.replaceLast(raw: "[" + synTimesNs.map(String.init).joined(separator: ",") + "]") }
        o.add("waited_ns", waitedNs)
        return o
    }
}
