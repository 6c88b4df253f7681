import CapdiagDiagnosis
import CapdiagEngine
import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// `-T zeek`: capdiag's flows as Zeek logs in Zeek's JSON form (`LogAscii::use_json=T`), all on
/// one stream, each record tagged with `_path` (`conn`, `http`, `notice`) first, as Zeek's
/// JSON streaming logs write it. `jq -c 'select(._path=="conn") | del(._path)'` gives what
/// Zeek's own JSON `conn.log` holds.
///
/// Field names and order are Zeek's (`Conn::Info`, `HTTP::Info`, `Notice::Info`); unset
/// optional fields are left out, as Zeek's JSON writer leaves them out. Times (`ts`) are epoch
/// seconds and durations seconds, both as doubles (Zeek's default `JSON::TS_EPOCH`): Zeek's
/// format, not capdiag's integers-only rule. Built once per flow from the flow's state; the
/// number of lines per flow is bounded (one conn, the kept HTTP exchanges, one notice per
/// verdict).
public enum ZeekRecord {
    /// The lines of one finished flow: its `conn` record, one `http` record per kept exchange,
    /// and one `notice` per verdict of medium or high severity not already announced.
    public static func lines(flow: TCPFlow, session: ProtocolSession, diagnosis: FlowDiagnosis, announced: Set<String> = []) -> [String] {
        let id = identity(flow)
        var lines = [conn(flow, session: session, id: id)]
        if case .http(let connection) = session.application {
            for exchange in connection.exchanges { lines.append(http(exchange, flow: flow, id: id)) }
        }
        for finding in diagnosis.findings where finding.severity >= .medium && !announced.contains(finding.code) {
            lines.append(notice(finding, flow: flow, id: id))
        }
        return lines
    }

    /// The `uid` and `id.*` fields every record of a flow starts with.
    struct Identity {
        var uid: String
        var communityID: String
        var fields: ZeekLine
    }

    static func identity(_ flow: TCPFlow) -> Identity {
        var fields = ZeekLine()
        fields.add("id.orig_h", flow.originator.address.description)
        fields.add("id.orig_p", Int(flow.originator.port))
        fields.add("id.resp_h", flow.responder.address.description)
        fields.add("id.resp_p", Int(flow.responder.port))
        let communityID = CommunityID.tcp(flow.originator, flow.responder)
        return Identity(uid: uid(flow, communityID: communityID), communityID: communityID, fields: fields)
    }

    // MARK: - conn.log

    /// A `conn.log` record (Zeek `Conn::Info`, `base/protocols/conn/main.zeek`).
    static func conn(_ flow: TCPFlow, session: ProtocolSession, id: Identity) -> String {
        var line = ZeekLine(path: "conn")
        line.add("ts", time: flow.first.time)
        line.add("uid", id.uid)
        line.append(id.fields)
        line.add("proto", "tcp")
        if let service = service(session) { line.add("service", service) }
        // Zeek sets duration and the byte counts only when the duration is above zero.
        let duration = seconds(flow.last.time) - seconds(flow.first.time)
        if duration > 0 {
            line.add("duration", double: duration)
            line.add("orig_bytes", Int(zeekSize(flow.orig)))
            line.add("resp_bytes", Int(zeekSize(flow.resp)))
        }
        line.add("conn_state", flow.connState.rawValue)
        line.add("missed_bytes", Int(flow.orig.ackedUnseenBytes + flow.resp.ackedUnseenBytes))
        let history = flow.history
        if !history.isEmpty { line.add("history", history) }
        line.add("orig_pkts", flow.orig.packets)
        line.add("orig_ip_bytes", flow.orig.bytes)
        line.add("resp_pkts", flow.resp.packets)
        line.add("resp_ip_bytes", flow.resp.bytes)
        line.add("ip_proto", 6)
        // policy/protocols/conn/community-id-logging.zeek appends it.
        line.add("community_id", id.communityID)
        return line.text
    }

    /// Zeek's analyzer names: `ssl` for TLS.
    static func service(_ session: ProtocolSession) -> String? {
        switch session.application {
        case .http: "http"
        case .tls: "ssl"
        case .dns: "dns"
        default: nil
        }
    }

    /// Zeek's `TCP_Endpoint::Size()`: the sequence space the endpoint used, up to the highest
    /// byte sent or acknowledged by the peer, without the SYN and the FIN octets.
    static func zeekSize(_ direction: DirectionStats) -> Int64 {
        // Relative to the ISN: one past the highest sequence number seen (SYN, FIN included).
        var extent = direction.size + 1
        if let acknowledged = direction.acknowledgedOffset { extent = max(extent, acknowledged + 1) }
        var size = max(0, extent)
        if size != 0 { size -= 1 }  // the SYN octet
        if direction.finCount > 0 && size != 0 { size -= 1 }  // the FIN octet
        return size
    }

    // MARK: - http.log

    /// An `http.log` record (Zeek `HTTP::Info`, `base/protocols/http/main.zeek`) for one
    /// exchange. capdiag keeps neither the HTTP version nor User-Agent, so those are left out.
    static func http(_ exchange: HTTPExchange, flow: TCPFlow, id: Identity) -> String {
        var line = ZeekLine(path: "http")
        line.add("ts", time: exchange.requestStart ?? exchange.firstResponseByte ?? flow.first.time)
        line.add("uid", id.uid)
        line.append(id.fields)
        line.add("trans_depth", exchange.index + 1)
        if let method = exchange.method { line.add("method", method) }
        if let host = exchange.host { line.add("host", host) }
        if let target = exchange.target { line.add("uri", target) }
        line.add("request_body_len", Int(exchange.requestBodyBytes))
        line.add("response_body_len", Int(exchange.deliveredBodyBytes))
        if let status = exchange.status { line.add("status_code", status) }
        if let reason = exchange.reason { line.add("status_msg", reason) }
        if let interim = exchange.interimStatuses.last { line.add("info_code", interim) }
        line.add("tags", strings: [])
        return line.text
    }

    // MARK: - notice.log

    /// A `notice.log` record (Zeek `Notice::Info`) for one verdict: `note` is
    /// `Capdiag::<code>`, `msg` the verdict's sentence, `sub` its severity.
    public static func notice(_ finding: Finding, flow: TCPFlow) -> String { notice(finding, flow: flow, id: identity(flow)) }

    static func notice(_ finding: Finding, flow: TCPFlow, id: Identity) -> String {
        var line = ZeekLine(path: "notice")
        line.add("ts", time: finding.time)
        line.add("uid", id.uid)
        line.append(id.fields)
        line.add("proto", "tcp")
        line.add("note", "Capdiag::\(finding.code)")
        line.add("msg", finding.summary)
        line.add("sub", finding.severity.name)
        line.add("src", flow.originator.address.description)
        line.add("dst", flow.responder.address.description)
        line.add("p", Int(flow.responder.port))
        line.add("actions", strings: ["Notice::ACTION_LOG"])
        line.add("email_dest", strings: [])
        line.add("suppress_for", double: 3600)
        return line.text
    }

    // MARK: - Values

    /// A packet time as Zeek holds it: libpcap's microsecond timeval (nanoseconds cut, as
    /// libpcap does reading a nanosecond file at microsecond precision) as a double,
    /// `tv_sec + tv_usec / 1e6`.
    public static func seconds(_ time: Timestamp) -> Double {
        var seconds = time.nanoseconds / 1_000_000_000
        var fraction = time.nanoseconds % 1_000_000_000
        if fraction < 0 {
            fraction += 1_000_000_000
            seconds -= 1
        }
        return Double(seconds) + Double(fraction / 1000) / 1e6
    }

    /// A double as Zeek's JSON writer (RapidJSON `Writer::Double`) prints it: the shortest
    /// digits that read back as the same double, plain decimal from 1e-6 up to 1e21 (a
    /// whole number keeps `.0`), else `1.5e-7` form.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        // Swift's description is also the shortest round-trip form; only its layout differs.
        let text = "\(value)"
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        let negative = text.hasPrefix("-")
        let mantissa = text[text.index(text.startIndex, offsetBy: negative ? 1 : 0)..<e]
        guard let exponent = Int(String(text[text.index(after: e)...].filter { $0 != "+" })) else { return text }
        var digits = mantissa.filter { $0 != "." }
        let pointAt = (mantissa.firstIndex(of: ".").map { mantissa.distance(from: mantissa.startIndex, to: $0) } ?? mantissa.count)
        while digits.count > 1 && digits.last == "0" { digits.removeLast() }
        // value = 0.digits × 10^kk
        let kk = pointAt + exponent
        var out: String
        if kk > 0 && kk <= 21 {
            if digits.count <= kk {
                out = digits + String(repeating: "0", count: kk - digits.count) + ".0"
            } else {
                out = String(digits.prefix(kk)) + "." + String(digits.dropFirst(kk))
            }
        } else if kk > -6 && kk <= 0 {
            out = "0." + String(repeating: "0", count: -kk) + digits
        } else {
            out = String(digits.prefix(1)) + (digits.count > 1 ? "." + String(digits.dropFirst()) : "") + "e\(kk - 1)"
        }
        return (negative ? "-" : "") + out
    }

    /// A connection `uid` in Zeek's form (`C` and base62), derived from the flow so the same
    /// capture always gives the same uids (Zeek draws them at random).
    static func uid(_ flow: TCPFlow, communityID: String) -> String {
        let key = Array("\(communityID)|\(flow.first.time.nanoseconds)|\(flow.id)".utf8)
        func fnv1a(_ basis: UInt64) -> UInt64 {
            var hash = basis
            for byte in key {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            return hash
        }
        var high = fnv1a(0xCBF2_9CE4_8422_2325)
        var low = fnv1a(0x6C62_272E_07BB_0142) & 0xFFFF_FFFF
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var out: [Character] = []
        // 96 bits (high 64, low 32) in 17 base62 digits, least significant first.
        for _ in 0..<17 {
            let remainderHigh = high % 62
            high /= 62
            let combined = (remainderHigh << 32) | low
            low = combined / 62
            out.append(alphabet[Int(combined % 62)])
        }
        return "C" + String(out.reversed())
    }
}

/// One Zeek JSON record, fields in the order they are added (Zeek writes a log record's fields
/// in declaration order), strings escaped as capdiag's other JSON is.
struct ZeekLine {
    private var text_ = "{"
    private var empty = true

    init() {}

    init(path: String) { add("_path", path) }

    var text: String { text_ + "}" }

    private mutating func key(_ name: String) {
        text_ += (empty ? "\"" : ",\"") + name + "\":"
        empty = false
    }

    mutating func add(_ name: String, _ value: String) {
        key(name)
        text_ += JSONObject.quoted(value)
    }

    mutating func add(_ name: String, _ value: Int) {
        key(name)
        text_ += String(value)
    }

    mutating func add(_ name: String, double value: Double) {
        key(name)
        text_ += ZeekRecord.number(value)
    }

    mutating func add(_ name: String, time: Timestamp) { add(name, double: ZeekRecord.seconds(time)) }

    mutating func add(_ name: String, strings: [String]) {
        key(name)
        text_ += "[" + strings.map(JSONObject.quoted).joined(separator: ",") + "]"
    }

    /// Appends the fields of another line (no `_path`).
    mutating func append(_ other: ZeekLine) {
        guard !other.empty else { return }
        text_ += (empty ? "" : ",") + other.text_.dropFirst()
        empty = false
    }
}
