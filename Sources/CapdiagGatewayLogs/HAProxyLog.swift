/// HAProxy's HTTP log (`option httplog`, configuration.txt §8.2.3) and log-formats that keep its
/// fields in the same order, with or without a syslog header:
///
///     [<134>Nov 25 14:24:05 host haproxy[1234]: ]10.77.1.2:45982 [25/Nov/2026:14:24:05.123] fe be/srv
///         TR/Tw/Tc/Tr/Ta ST B [CC CS] tsc ac/fc/bc/sc/rc [sq/bq] [bi:bp [si:sp]] [{captures}…] "request"
///
/// The lab's format (`Captures/lab/lab.sh`) is `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B
/// %tsc %ac/%fc/%bc/%sc/%rc %bi:%bp %{+Q}r`: the first `ip:port` after the counters is read as
/// `%bi:%bp` (the gateway side of the upstream connection), a second as `%si:%sp` (the server).
/// `option tcplog` lines (`Tw/Tc/Tt B ts`) are read too. `%tr` is local time without a zone.
enum HAProxyLog {
    /// Where `[dd/Mon/yyyy:HH:MM:SS.mmm]` starts (the `[`), if the line has one after a token.
    static func dateStart(_ bytes: [UInt8]) -> Int? {
        var position = 0
        while let open = LineText.firstIndex(of: Array(" [".utf8), in: bytes, position..<bytes.count) {
            let start = open + 1
            if start + 25 < bytes.count, bytes[start + 25] == 0x5D,
                LogTimeParser.haproxy(bytes, at: start + 1) != nil
            {
                return start
            }
            position = open + 1
        }
        return nil
    }

    /// HAProxy's own messages (`[NOTICE]   (1) : New worker …`, `[WARNING]`, `[ALERT]`), after an
    /// optional syslog header: not requests, not bad lines.
    static func isOwnMessage(_ bytes: [UInt8]) -> Bool {
        for word in ["[NOTICE]", "[WARNING]", "[ALERT]"] {
            let needle = Array(word.utf8)
            if let index = LineText.firstIndex(of: needle, in: bytes, 0..<min(bytes.count, 200)),
                index == 0 || LineText.contains(bytes, 0..<index, Array("]: ".utf8))
            {
                return true
            }
        }
        return false
    }

    static func parse(_ bytes: [UInt8], into entry: inout GatewayLogEntry) -> Bool {
        guard let open = dateStart(bytes), let time = LogTimeParser.haproxy(bytes, at: open + 1) else { return false }
        // The client token before " [".
        var clientStart = open - 1
        while clientStart > 0 && bytes[clientStart - 1] != 0x20 { clientStart -= 1 }
        guard let client = GatewayEndpoint(bytes: bytes, clientStart..<(open - 1), requirePort: true) else {
            return false
        }
        entry.client = client
        entry.time = time
        var processName: String?
        var processID: Int?
        // A syslog header's "name[pid]: " before the client.
        if clientStart > 3, let colon = LineText.lastIndex(of: Array("]: ".utf8), in: bytes, 0..<clientStart),
            let bracket = LineText.lastIndex(of: [0x5B], in: bytes, 0..<colon),
            let pid = LineText.integer(bytes, (bracket + 1)..<colon)
        {
            var nameStart = bracket
            while nameStart > 0 && bytes[nameStart - 1] != 0x20 && bytes[nameStart - 1] != 0x3E { nameStart -= 1 }
            processName = LineText.string(bytes, nameStart..<bracket)
            processID = Int(exactly: pid)
        }

        // Tokens after the date; "{…}" and "\"…\"" are single tokens (they may hold spaces).
        var cursor = ByteCursor(bytes, at: open + 26)
        var tokens: [Range<Int>] = []
        var request: Range<Int>?
        while true {
            cursor.skipSpaces()
            guard !cursor.isAtEnd else { break }
            guard tokens.count < 64 else { return false }
            if cursor.peek() == 0x22 {
                guard let range = cursor.quoted() else { return false }
                request = range
                cursor.skipSpaces()
                break  // the request is last; anything after it is ignored
            }
            if cursor.peek() == 0x7B {
                let start = cursor.index
                guard cursor.upTo(0x7D) != nil else { return false }
                tokens.append(start..<cursor.index)
                continue
            }
            tokens.append(cursor.token())
        }
        guard tokens.count >= 5 else { return false }
        let frontend = LineText.string(bytes, tokens[0])
        let backendServer = LineText.string(bytes, tokens[1])
        guard let slash = backendServer.utf8.firstIndex(of: 0x2F) else { return false }
        let backend = String(backendServer[..<slash])
        let server = String(backendServer[backendServer.index(after: slash)...])
        guard let timers = numbers(bytes, tokens[2], separator: 0x2F),
            timers.count == 5 || timers.count == 3 || timers.count == 4
        else { return false }
        // The counters ac/fc/bc/sc/rc; the termination state is the token before them.
        guard let countersIndex = (4..<tokens.count).first(where: { isCounters(bytes, tokens[$0]) }) else {
            return false
        }
        let counters = tokens[countersIndex]
        let stateRange = tokens[countersIndex - 1]
        let http = timers.count == 5
        guard isTerminationState(bytes, stateRange), countersIndex >= (http ? 6 : 5) else { return false }
        var details = HAProxyDetails(
            processName: processName, processID: processID, frontend: frontend, backend: backend, server: server,
            requestTime: nil,
            queueTime: nil, connectTime: nil, responseTime: nil, totalTime: nil,
            terminationState: LineText.string(bytes, stateRange), activeConnections: nil, frontendConnections: nil,
            backendConnections: nil, serverConnections: nil, retries: nil, redispatched: false, serverQueue: nil,
            backendQueue: nil, captures: [])
        func reached(_ value: Int64) -> Int64? { value < 0 ? nil : value }
        if http {
            details.requestTime = reached(timers[0])
            details.queueTime = reached(timers[1])
            details.connectTime = reached(timers[2])
            details.responseTime = reached(timers[3])
            details.totalTime = reached(timers[4])
            guard let status = LineText.integer(bytes, tokens[3]) else { return false }
            entry.status = status >= 0 ? Int(status) : nil
            entry.bytesSent = LineText.integer(bytes, tokens[4])
        } else {
            // tcplog: Tw/Tc/Tt (4 values: TR/Tw/Tc/Tt in some versions' tcp-request logs).
            details.queueTime = reached(timers[timers.count - 3])
            details.connectTime = reached(timers[timers.count - 2])
            details.totalTime = reached(timers[timers.count - 1])
            entry.bytesSent = LineText.integer(bytes, tokens[3])
        }
        if let values = numbers(bytes, counters, separator: 0x2F, allowPlus: true) {
            details.activeConnections = Int(values[0])
            details.frontendConnections = Int(values[1])
            details.backendConnections = Int(values[2])
            details.serverConnections = Int(values[3])
            details.retries = Int(values[4])
            if let lastSlash = LineText.lastIndex(of: [0x2F], in: bytes, counters), lastSlash + 1 < counters.upperBound
            {
                details.redispatched = bytes[lastSlash + 1] == 0x2B
            }
        }
        // After the counters: sq/bq, bi:bp, si:sp, {captures}.
        var endpoints: [GatewayEndpoint] = []
        for range in tokens[(countersIndex + 1)...] {
            if bytes[range.lowerBound] == 0x7B {
                details.captures.append(LineText.string(bytes, (range.lowerBound + 1)..<(range.upperBound - 1)))
            } else if let queues = numbers(bytes, range, separator: 0x2F), queues.count == 2, details.serverQueue == nil
            {
                details.serverQueue = Int(queues[0])
                details.backendQueue = Int(queues[1])
            } else if let endpoint = GatewayEndpoint(bytes: bytes, range, requirePort: true) {
                endpoints.append(endpoint)
            }
        }
        if let source = endpoints.first { entry.backendSource = source }
        if endpoints.count > 1 {
            entry.upstreamAttempts = [UpstreamAttempt(address: endpoints[1].description, endpoint: endpoints[1])]
        }
        if let request {
            entry.request = GatewayRequestLine(parsing: LineText.string(bytes, request))
        }
        entry.gatewayWords = details.terminationState
        entry.requestDuration = details.totalTime.flatMap(LineText.milliseconds)
        entry.haproxy = details
        return true
    }

    /// `a/b/c`: each a decimal integer (optionally `-1`, or `+N` when `allowPlus`); at most 5.
    private static func numbers(_ bytes: [UInt8], _ range: Range<Int>, separator: UInt8, allowPlus: Bool = false)
        -> [Int64]?
    {
        guard range.count <= 80 else { return nil }
        var values: [Int64] = []
        var start = range.lowerBound
        var position = range.lowerBound
        while position <= range.upperBound {
            if position == range.upperBound || bytes[position] == separator {
                var part = start..<position
                if allowPlus, !part.isEmpty, bytes[part.lowerBound] == 0x2B {
                    part = (part.lowerBound + 1)..<part.upperBound
                }
                guard !part.isEmpty, bytes[part.lowerBound] != 0x2B, let value = LineText.integer(bytes, part) else {
                    return nil
                }
                values.append(value)
                guard values.count <= 5 else { return nil }
                start = position + 1
            }
            position += 1
        }
        return values
    }

    /// `ac/fc/bc/sc/rc` (rc may be `+N`).
    private static func isCounters(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        guard let values = numbers(bytes, range, separator: 0x2F, allowPlus: true) else { return false }
        return values.count == 5 && values.allSatisfy { $0 >= 0 }
    }

    private static let causes = Set("-CSPLRIDUKcs".utf8)
    private static let phases = Set("-RQCHDLT".utf8)

    /// 2 or 4 characters; the first two a known cause and phase (configuration.txt §8.5).
    private static func isTerminationState(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        guard range.count == 2 || range.count == 4, causes.contains(bytes[range.lowerBound]),
            phases.contains(bytes[range.lowerBound + 1])
        else { return false }
        return range.dropFirst(2).allSatisfy { bytes[$0] == 0x2D || (bytes[$0] >= 0x41 && bytes[$0] <= 0x5A) }
    }
}
