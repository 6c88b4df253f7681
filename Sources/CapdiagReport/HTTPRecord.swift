import CapdiagEngine
import CapdiagFlow
import CapdiagProtocols
import CapdiagWire

/// One HTTP request/response exchange in the JSON output.
public struct HTTPExchangeRecord: Codable, Sendable, Equatable {
    public var index: Int
    public var method: String?
    public var target: String?
    public var host: String?
    public var requestFrame: Int?
    public var requestTime: String?
    public var requestHeaderBytes: Int?
    public var requestBodyBytes: Int64
    public var requestIds: [HeaderValue]
    /// For a reused connection: from the previous exchange's end to this request.
    public var idleBeforeNs: Int64?
    public var responseFrame: Int?
    public var status: Int?
    public var reason: String?
    public var interimStatuses: [Int]
    public var responseHeaderBytes: Int?
    public var declaredBodyBytes: Int64?
    public var chunked: Bool
    public var deliveredBodyBytes: Int64
    /// From the end of the request (or its start if it never ended) to the first response byte.
    public var timeToFirstByteNs: Int64?
    /// From the end of the request to the end of the response.
    public var responseCompleteNs: Int64?
    public var problem: HTTPProblem?

    init(_ exchange: HTTPExchange) {
        index = exchange.index
        method = exchange.method
        target = exchange.target
        host = exchange.host
        requestFrame = exchange.requestFrame
        requestTime = exchange.requestStart?.iso8601
        requestHeaderBytes = exchange.requestHeaderBytes
        requestBodyBytes = exchange.requestBodyBytes
        requestIds = exchange.requestIDs
        idleBeforeNs = exchange.idleBefore
        responseFrame = exchange.responseFrame
        status = exchange.status
        reason = exchange.reason
        interimStatuses = exchange.interimStatuses
        responseHeaderBytes = exchange.responseHeaderBytes
        declaredBodyBytes = exchange.declaredBodyBytes
        chunked = exchange.chunked
        deliveredBodyBytes = exchange.deliveredBodyBytes
        let sent = exchange.requestComplete ?? exchange.requestStart
        if let sent, let first = exchange.firstResponseByte { timeToFirstByteNs = first - sent }
        if let sent, let complete = exchange.responseComplete { responseCompleteNs = complete - sent }
        problem = exchange.problem
    }
}

/// HTTP on one connection.
public struct HTTPRecord: Codable, Sendable, Equatable {
    public var exchangeCount: Int
    public var problemCount: Int
    /// The first 32 healthy exchanges and up to 64 with a problem.
    public var exchanges: [HTTPExchangeRecord]
    /// The connection switched to another protocol (CONNECT, Upgrade).
    public var tunnelled: Bool
    /// Bytes each side sent through the tunnel, and what it carries (`tls`, `http2`), when
    /// tunnelled.
    public var tunnelClientBytes: Int64?
    public var tunnelServerBytes: Int64?
    public var tunnelCarries: String?
}

/// What stream reassembly did in one direction.
public struct StreamRecord: Codable, Sendable, Equatable {
    public var deliveredBytes: Int64
    public var gapBytes: Int64
    public var overlapConflicts: Int
    public var bufferOverflows: Int

    init(_ stream: StreamReassembler) {
        deliveredBytes = stream.deliveredBytes
        gapBytes = stream.gapBytes
        overlapConflicts = stream.overlapConflicts
        bufferOverflows = stream.bufferOverflows
    }
}

extension HTTPRecord {
    init?(_ session: ProtocolSession?) {
        guard let session, case .http(let connection) = session.application else { return nil }
        exchangeCount = connection.exchangeCount
        problemCount = connection.problemCount
        exchanges = connection.exchanges.map(HTTPExchangeRecord.init)
        tunnelled = connection.tunnelled
        if connection.tunnelled {
            tunnelClientBytes = connection.tunnelledBytes.client
            tunnelServerBytes = connection.tunnelledBytes.server
            tunnelCarries = connection.tunnelCarries
        }
    }
}
