import CapdiagWire

/// Which side of a connection spoke: the client (originator) sends requests, the server
/// (responder) sends responses.
public enum StreamSide: Sendable, Equatable {
    case client, server
}

/// Something wrong with an exchange, with a stable code.
public struct HTTPProblem: Sendable, Equatable, Codable {
    public var code: String
    public var detail: String
    /// For a malformed response that only some gateways refuse: which ones (`nginx`,
    /// `haproxy`). Absent when both refuse it, or for other problems.
    public var rejectedBy: [String]?

    public init(code: String, detail: String, rejectedBy: [String]? = nil) {
        self.code = code
        self.detail = detail
        self.rejectedBy = rejectedBy
    }
}

/// One request and its response on a connection.
///
/// The twelve optional numbers (frames, times, sizes, status) are stored as plain 64-bit
/// values with one presence bit each: as `Int?` and `Timestamp?` they took 16 bytes apiece, and
/// a connection keeps up to 96 exchanges, through its close linger too (360 bytes an exchange
/// became 264).
public struct HTTPExchange: Sendable, Equatable {
    /// 0 for the first exchange on the connection, 1 for the next (keep-alive reuse), …
    public var index: Int
    public var requestFrame: Int? {
        get { number(.requestFrame).map(Int.init) }
        set { setNumber(.requestFrame, newValue.map(Int64.init)) }
    }
    public var requestStart: Timestamp? {
        get { time(.requestStart) }
        set { setNumber(.requestStart, newValue?.nanoseconds) }
    }
    public var requestComplete: Timestamp? {
        get { time(.requestComplete) }
        set { setNumber(.requestComplete, newValue?.nanoseconds) }
    }
    public var method: String?
    public var target: String?
    public var host: String?
    public var requestHeaderBytes: Int? {
        get { number(.requestHeaderBytes).map(Int.init) }
        set { setNumber(.requestHeaderBytes, newValue.map(Int64.init)) }
    }
    public var requestBodyBytes: Int64 = 0
    public var requestIDs: [HeaderValue] = []
    /// For a reused connection: time from the previous exchange's end to this request.
    public var idleBefore: Int64? {
        get { number(.idleBefore) }
        set { setNumber(.idleBefore, newValue) }
    }
    public var responseFrame: Int? {
        get { number(.responseFrame).map(Int.init) }
        set { setNumber(.responseFrame, newValue.map(Int64.init)) }
    }
    public var firstResponseByte: Timestamp? {
        get { time(.firstResponseByte) }
        set { setNumber(.firstResponseByte, newValue?.nanoseconds) }
    }
    public var responseHeadComplete: Timestamp? {
        get { time(.responseHeadComplete) }
        set { setNumber(.responseHeadComplete, newValue?.nanoseconds) }
    }
    public var responseComplete: Timestamp? {
        get { time(.responseComplete) }
        set { setNumber(.responseComplete, newValue?.nanoseconds) }
    }
    public var status: Int? {
        get { number(.status).map(Int.init) }
        set { setNumber(.status, newValue.map(Int64.init)) }
    }
    public var reason: String?
    /// 1xx responses before the final one.
    public var interimStatuses: [Int] = []
    public var responseHeaderBytes: Int? {
        get { number(.responseHeaderBytes).map(Int.init) }
        set { setNumber(.responseHeaderBytes, newValue.map(Int64.init)) }
    }
    public var declaredBodyBytes: Int64? {
        get { number(.declaredBodyBytes) }
        set { setNumber(.declaredBodyBytes, newValue) }
    }
    public var chunked = false
    public var deliveredBodyBytes: Int64 = 0
    public var problem: HTTPProblem?
    /// The request began but its head was lost to the capture (a short snapshot length, or a
    /// gap): a request all the same, its method and target unknown.
    public var requestCut = false
    /// The request or the response said the connection ends after this exchange
    /// (`Connection: close`, HTTP/1.0 without keep-alive): its close is no idle timeout.
    public var closesConnection = false
    /// The response says it came from a proxy or load balancer (`HTTPMessageHead.gatewaySign`).
    public var gatewaySign: String?

    public init(index: Int) { self.index = index }

    // MARK: - Storage of the optional numbers

    private enum Number: Int {
        case requestFrame, requestStart, requestComplete, requestHeaderBytes, idleBefore, responseFrame
        case firstResponseByte, responseHeadComplete, responseComplete, status, responseHeaderBytes, declaredBodyBytes
    }

    /// Which numbers are set, one bit per `Number`; an unset one stores 0, so that the
    /// synthesized `==` compares exactly what the optionals would.
    private var present: UInt16 = 0
    private var numbers = NumberStorage()

    private func number(_ which: Number) -> Int64? {
        present & (1 << which.rawValue) != 0 ? numbers[which.rawValue] : nil
    }

    private func time(_ which: Number) -> Timestamp? { number(which).map(Timestamp.init(nanoseconds:)) }

    private mutating func setNumber(_ which: Number, _ value: Int64?) {
        numbers[which.rawValue] = value ?? 0
        if value != nil { present |= 1 << which.rawValue } else { present &= ~(1 << which.rawValue) }
    }
}

/// Twelve 64-bit values inline (`InlineArray` is not `Equatable`).
private struct NumberStorage: Sendable, Equatable {
    private var values: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    subscript(index: Int) -> Int64 {
        get { withUnsafeBytes(of: values) { $0.load(fromByteOffset: index * 8, as: Int64.self) } }
        set { withUnsafeMutableBytes(of: &values) { $0.storeBytes(of: newValue, toByteOffset: index * 8, as: Int64.self) } }
    }

    static func == (lhs: NumberStorage, rhs: NumberStorage) -> Bool {
        withUnsafeBytes(of: lhs.values) { left in withUnsafeBytes(of: rhs.values) { right in left.elementsEqual(right) } }
    }
}

/// Follows HTTP/1.x on one TCP connection: a request parser on the client's bytes, a
/// response parser on the server's, and the pairing of responses to requests in order
/// (keep-alive and pipelining, RFC 9112 §9.3).
///
/// Memory is bounded: the first `keepHealthy` exchanges and up to `keepProblems` exchanges with
/// a problem are kept; the rest are counted.
public struct HTTPConnection: Sendable {
    public static let keepHealthy = 32
    public static let keepProblems = 64

    public private(set) var exchanges: [HTTPExchange] = []
    public private(set) var exchangeCount = 0
    /// Final statuses of every exchange, kept in detail or not (at most 64 distinct).
    public private(set) var statusCounts: [Int: Int] = [:]
    public private(set) var problemCount = 0
    /// The violation that stopped parsing a direction, if any.
    public private(set) var clientViolation: HTTPViolation?
    public private(set) var serverViolation: HTTPViolation?
    /// The stream stopped being HTTP (CONNECT or Upgrade).
    public private(set) var tunnelled = false

    /// Bytes each side sent through the tunnel.
    public var tunnelledBytes: (client: Int64, server: Int64) { (requestParser.tunnelledBytes, responseParser.tunnelledBytes) }

    /// What the tunnel carries, told by its first client bytes: `tls` (a TLS handshake record),
    /// `http2` (the HTTP/2 connection preface, as after `Upgrade: h2c`), else nil.
    public var tunnelCarries: String? {
        let prefix = requestParser.tunnelPrefix
        if prefix.count >= 2 && prefix[0] == 0x16 && prefix[1] == 0x03 { return "tls" }
        if prefix.starts(with: Array("PRI * HTTP/2".utf8.prefix(prefix.count))) && prefix.count >= 6 { return "http2" }
        return nil
    }

    var requestParser = HTTPMessageParser(role: .request)
    var responseParser = HTTPMessageParser(role: .response)
    /// Requests waiting for their response, oldest first.
    var pending = FIFOQueue<HTTPExchange>()
    /// The response being parsed before any request was seen.
    var orphan: HTTPExchange? {
        get { orphanStorage.first }
        set { orphanStorage = newValue.map { [$0] } ?? [] }
    }
    /// Where `orphan` lives: an array, empty but for the rare response before any request, so a
    /// connection does not carry an inline 280-byte exchange it almost never uses.
    private var orphanStorage: [HTTPExchange] = []
    var lastCompletion: Timestamp?
    /// The last packet that brought the server's bytes (or a gap in them): where a response
    /// cut by the capture ended, as far as the capture can tell.
    var lastServerActivity: Timestamp?
    /// The last response ended in a capture gap, so `lastCompletion` does not say when it ended.
    var lastResponseCut = false
    var nextIndex = 0
    /// Of `exchanges`, those with a problem (counted as they are kept, not by scanning).
    var keptProblems = 0
    /// How the client side closed, if it did (a gateway giving up closes or resets).
    var clientClose: CloseKind?

    /// Mask credentials in the targets and texts kept (the session's redaction policy).
    public let redact: Bool

    public init(redact: Bool = true) { self.redact = redact }

    /// Feeds in-order bytes from one side.
    public mutating func received(_ bytes: RawSpan, from side: StreamSide, packet: PacketRef) {
        if side == .server { lastServerActivity = packet.time }
        withParser(side, packet: packet) { parser, event in parser.feed(bytes, event) }
    }

    /// Bytes missing from the capture on one side.
    public mutating func gap(_ length: Int64, from side: StreamSide, packet: PacketRef) {
        if side == .server { lastServerActivity = packet.time }
        _ = withParser(side, packet: packet) { parser, event in parser.gap(length, event) }
    }

    /// Runs `operation` on one side's parser while it is swapped out of the connection (a
    /// swap moves, it does not copy), so the event handlers can update the rest of it.
    private mutating func withParser<Result>(
        _ side: StreamSide, packet: PacketRef,
        _ operation: (inout HTTPMessageParser, (HTTPMessageParser.Event) -> Void) -> Result
    ) -> Result {
        var parser = HTTPMessageParser.placeholder
        if side == .client { swap(&parser, &requestParser) } else { swap(&parser, &responseParser) }
        let result = operation(&parser) { event in
            if side == .client { handleRequest(event, packet: packet) } else { handleResponse(event, packet: packet) }
        }
        if side == .client { swap(&parser, &requestParser) } else { swap(&parser, &responseParser) }
        return result
    }

    /// One side closed (FIN or RST) or the capture ended.
    public mutating func closed(_ side: StreamSide, by kind: CloseKind, packet: PacketRef) {
        if side == .client {
            if clientClose == nil { clientClose = kind }
            let result = withParser(.client, packet: packet) { parser, event in parser.close(kind, event) }
            if result.cutShort, var exchange = pending.last, exchange.requestComplete == nil {
                exchange.problem = exchange.problem ?? HTTPProblem(code: "request_cut_short", detail: cutShortDetail(kind, result.missing))
                pending.last = exchange
            }
        } else {
            let (result, bodyBytes) = withParser(.server, packet: packet) { parser, event in
                (parser.close(kind, event), parser.currentBodyBytes)
            }
            if result.cutShort, var exchange = pending.first ?? orphan {
                exchange.deliveredBodyBytes = bodyBytes
                exchange.problem = HTTPProblem(code: "response_cut_short", detail: cutShortDetail(kind, result.missing))
                finishFirst(exchange)
            }
            // Requests still waiting will get no answer on this connection.
            let how: String
            switch (kind, clientClose) {
            case (.rst, _): how = "the server reset the connection"
            case (.fin, _): how = "the server closed the connection (FIN)"
            case (.endOfCapture, .rst?): how = "the client reset the connection"
            case (.endOfCapture, .fin?): how = "the client closed the connection (FIN)"
            case (.endOfCapture, _): how = "the capture ended"
            }
            for index in pending.indices where pending[index].problem == nil && pending[index].firstResponseByte == nil {
                pending[index].problem = HTTPProblem(code: "request_without_response", detail: "\(how) before any response byte")
            }
        }
    }

    /// The flow ended: requests still waiting are recorded as never answered.
    public mutating func finish() {
        if let orphan { keep(orphan) }
        orphan = nil
        for var exchange in pending {
            if exchange.problem == nil {
                let where_ = exchange.firstResponseByte == nil ? "no response byte" : "response incomplete"
                exchange.problem = HTTPProblem(code: "request_without_response", detail: "\(where_) before the connection ended")
            }
            keep(exchange)
        }
        pending.removeAll()
    }

    /// Gives back capacity that only parsing needed (the header buffers, an empty request
    /// queue) and trims the kept exchanges to their count: for a connection that terminated
    /// and lingers. Nothing is lost; bytes arriving later allocate again.
    public mutating func releaseSpareCapacity() {
        requestParser.releaseIdleBuffers()
        responseParser.releaseIdleBuffers()
        if pending.isEmpty { pending = FIFOQueue() }
        if exchanges.capacity > exchanges.count { exchanges = exchanges.withUnsafeBufferPointer { Array($0) } }
    }

    // MARK: - Events

    private mutating func handleRequest(_ event: HTTPMessageParser.Event, packet: PacketRef) {
        switch event {
        case .messageStarted:
            var exchange = HTTPExchange(index: nextIndex)
            nextIndex += 1
            exchange.requestFrame = packet.frame
            exchange.requestStart = packet.time
            // After a response the capture cut, its end is the server's last packet before this.
            let since = lastResponseCut ? lastServerActivity : lastCompletion
            if exchange.index > 0, pending.isEmpty, let since, packet.time >= since { exchange.idleBefore = packet.time - since }
            else if exchange.index > 0, let lastCompletion { exchange.idleBefore = packet.time - lastCompletion }
            pending.append(exchange)
        case .head(let head):
            // In place: an exchange copied out and back costs a retain and a release of each of
            // its strings and arrays.
            guard !pending.isEmpty else { return }
            let redact = self.redact
            pending.updateLast { exchange in
                exchange.method = head.method
                exchange.target = head.target.map({ Redaction.target($0, enabled: redact) })
                exchange.host = head.host
                exchange.requestHeaderBytes = head.headerSectionSize
                exchange.requestIDs = head.requestIDs
                exchange.closesConnection = head.closesConnection
            }
            responseParser.expectResponse(toMethod: head.method ?? "")
        case .complete(let bodyBytes):
            pending.updateLast { exchange in
                exchange.requestComplete = packet.time
                exchange.requestBodyBytes = bodyBytes
            }
        case .violation(let violation):
            clientViolation = violation
            if var exchange = pending.last {
                exchange.problem = HTTPProblem(code: "request_" + violation.code, detail: Redaction.text(violation.detail, enabled: redact))
                pending.last = exchange
            }
        case .tunnel:
            tunnelled = true
        case .lostSync:
            if var exchange = pending.last, exchange.requestComplete == nil {
                exchange.problem = exchange.problem ?? gapProblem
                if exchange.method == nil { exchange.requestCut = true }
                pending.last = exchange
                // Its response cannot be framed without the method (HEAD): expect one anyway.
                if exchange.method == nil { responseParser.expectResponse(toMethod: "") }
            }
        }
    }

    private var gapProblem: HTTPProblem {
        HTTPProblem(code: "capture_gap", detail: "bytes missing from the capture inside the message")
    }

    private mutating func handleResponse(_ event: HTTPMessageParser.Event, packet: PacketRef) {
        switch event {
        case .messageStarted:
            if pending.isEmpty {
                if orphan == nil {
                    var exchange = HTTPExchange(index: nextIndex)
                    nextIndex += 1
                    exchange.problem = HTTPProblem(code: "response_without_request", detail: "no request was seen for this response")
                    orphan = exchange
                }
            }
            updateCurrentResponse { exchange in
                if exchange.firstResponseByte == nil {
                    exchange.firstResponseByte = packet.time
                    exchange.responseFrame = packet.frame
                }
            }
        case .head(let head):
            let redact = self.redact
            updateCurrentResponse { exchange in
                exchange.status = head.status
                exchange.reason = head.reason
                exchange.responseHeaderBytes = head.headerSectionSize
                exchange.responseHeadComplete = packet.time
                exchange.declaredBodyBytes = head.contentLength
                exchange.chunked = head.chunked
                if head.closesConnection { exchange.closesConnection = true }
                exchange.gatewaySign = head.gatewaySign.map { Redaction.text($0, enabled: redact) }
                if exchange.requestIDs.isEmpty { exchange.requestIDs = head.requestIDs }
            }
        case .complete(let bodyBytes):
            var final = false
            updateCurrentResponse { exchange in
                if let status = exchange.status, (100..<200).contains(status), status != 101 {
                    // Interim response: wait for the final one.
                    exchange.interimStatuses.append(status)
                    exchange.status = nil
                    exchange.reason = nil
                    exchange.responseHeaderBytes = nil
                    return
                }
                exchange.deliveredBodyBytes = bodyBytes
                exchange.responseComplete = packet.time
                final = true
            }
            if final { finishCurrentResponse() }
        case .violation(let violation):
            serverViolation = violation
            if pending.isEmpty && orphan == nil {
                var exchange = HTTPExchange(index: nextIndex)
                nextIndex += 1
                orphan = exchange
                exchange.problem = nil
            }
            let redact = self.redact
            updateCurrentResponse { exchange in
                if exchange.firstResponseByte == nil {
                    exchange.firstResponseByte = packet.time
                    exchange.responseFrame = packet.frame
                }
                let gateways = violation.rejectedBy
                exchange.problem = HTTPProblem(
                    code: violation.code, detail: Redaction.text(violation.detail, enabled: redact),
                    rejectedBy: gateways == .both ? nil : (gateways.contains(.nginx) ? ["nginx"] : []) + (gateways.contains(.haproxy) ? ["haproxy"] : []))
            }
            if let exchange = pending.first ?? orphan { finishFirst(exchange) }
        case .tunnel:
            tunnelled = true
            requestParser.enterTunnel()
            // Client bytes that arrived before the answer and were read as a request belong
            // to the tunnel: no exchange is invented from them.
            pending.removeAll { $0.method == nil && $0.firstResponseByte == nil }
            // A 101's head is the whole response: it is complete.
            if var exchange = pending.first, exchange.status == 101, exchange.responseComplete == nil {
                exchange.responseComplete = packet.time
                finishFirst(exchange)
            }
        case .lostSync:
            guard var exchange = pending.first ?? orphan else { return }
            exchange.problem = exchange.problem ?? gapProblem
            finishFirst(exchange)
        }
    }

    private mutating func updateCurrentResponse(_ change: (inout HTTPExchange) -> Void) {
        if !pending.isEmpty {
            change(&pending[pending.indices.lowerBound])
        } else if var exchange = orphan {
            change(&exchange)
            orphan = exchange
        }
    }

    /// The current response, as it stands, is done: it leaves the queue and is kept or counted.
    private mutating func finishCurrentResponse() {
        if let exchange = pending.popFirst() {
            concluded(exchange)
        } else if let exchange = orphan {
            orphan = nil
            concluded(exchange)
        }
    }

    /// The current response is done: it leaves the queue and is kept or counted.
    private mutating func finishFirst(_ exchange: HTTPExchange) {
        if !pending.isEmpty { pending.popFirst() } else { orphan = nil }
        concluded(exchange)
    }

    private mutating func concluded(_ exchange: HTTPExchange) {
        lastCompletion = exchange.responseComplete ?? lastCompletion
        lastResponseCut = exchange.responseComplete == nil && exchange.problem?.code == "capture_gap"
        keep(exchange)
    }

    private mutating func keep(_ exchange: HTTPExchange) {
        exchangeCount += 1
        if let status = exchange.status, statusCounts.count < 64 || statusCounts[status] != nil { statusCounts[status, default: 0] += 1 }
        if exchange.problem != nil { problemCount += 1 }
        let keptHealthy = exchanges.count - keptProblems
        if exchange.problem != nil ? keptProblems < Self.keepProblems : keptHealthy < Self.keepHealthy {
            exchanges.append(exchange)
            if exchange.problem != nil { keptProblems += 1 }
        }
    }

    private func cutShortDetail(_ kind: CloseKind, _ missing: Int64?) -> String {
        let by = kind == .rst ? "RST" : kind == .fin ? "FIN" : "the end of the capture"
        return missing.map { "cut short by \(by), \($0) declared body bytes missing" } ?? "cut short by \(by)"
    }
}
