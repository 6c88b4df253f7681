import CapdiagGatewayLogs
import CapdiagTestSupport
import CapdiagWire
import Foundation
import Testing

/// The real logs of Captures/lab/gateway-logs/ (nginx 1.22.1 and HAProxy 2.6.12 at TZ=Asia/Kolkata),
/// read by GatewayLogReader, against the labels label.py wrote with regular expressions and the
/// capture.
@Suite struct RecordedLogs {
    static let names = GatewayLogsLabel.names
    /// Scenarios whose nginx location sets its own proxy_set_header (so X-Request-Id is not sent).
    static let withoutRequestID: Set<String> = ["keepalive-race", "mixed"]

    @Test func theRecordingIsComplete() throws {
        #expect(Self.names.count >= 20)
        for required in [
            "refused", "keepalive-race", "reset-after-request", "slow-upstream", "garbage", "big-headers", "healthy",
            "haproxy-refused", "haproxy-keepalive-race", "haproxy-reset-after-request", "haproxy-slow-upstream",
        ] {
            #expect(Self.names.contains(required), "\(required) was not recorded")
        }
        var total = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: GatewayLogsLabel.folder.path) {
            let size = try FileManager.default.attributesOfItem(atPath: GatewayLogsLabel.path(file))[.size] as? Int ?? 0
            total += size
        }
        #expect(total < 3_000_000, "Captures/lab/gateway-logs is \(total) bytes")
    }

    /// Every raw log parses with no bad line, and every non-blank line is an entry.
    @Test(arguments: names)
    func everyLineReads(name: String) throws {
        let label = try GatewayLogsLabel.load(name)
        let logs = [label.files.nginxErrorLog, label.files.nginxAccessLog, label.files.haproxyLog].compactMap { $0 }
        #expect(!logs.isEmpty)
        for log in logs {
            let path = GatewayLogsLabel.path(log)
            let file = try GatewayLogReader(path: path).read()
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
            #expect(file.stats.bad == 0, "\(log): \(file.stats.badExamples)")
            #expect(file.stats.problem == nil)
            #expect(file.stats.compressed == false)
            #expect(file.entries.count == lines, "\(log)")
            #expect(file.stats.lines == lines)
            let expected: GatewayLogFormat =
                log.hasSuffix(".nginx-error.log")
                ? .nginxError : log.hasSuffix(".nginx-access.log") ? .nginxAccess : .haproxy
            #expect(file.entries.allSatisfy { $0.format == expected }, "\(log)")
        }
    }

    @Test(arguments: names)
    func nginxErrorLinesMatchTheLabel(name: String) throws {
        let label = try GatewayLogsLabel.load(name)
        guard let log = label.files.nginxErrorLog else { return }
        let entries = Dictionary(
            uniqueKeysWithValues: try GatewayLogReader(path: GatewayLogsLabel.path(log)).read().entries.map {
                ($0.lineNumber, $0)
            })
        var checked = 0
        for request in label.requests {
            for expected in request.nginxErrorLog ?? [] {
                let entry = try #require(entries[expected.line])
                checked += 1
                #expect(entry.nginx?.level == expected.level)
                #expect(entry.nginx?.pid == expected.pid)
                #expect(entry.nginx?.connection == expected.connection)
                #expect(entry.gatewayWords == expected.message)
                #expect(entry.client?.description == expected.client)
                #expect(entry.client?.port == nil)
                #expect(entry.request?.target == request.target)
                #expect(entry.request?.method == request.method)
                #expect(entry.host == expected.host)
                #expect(entry.nginx?.upstreamURL == expected.upstream)
                if let url = expected.upstream, let authority = url.split(separator: "/").dropFirst().first {
                    // http://10.77.2.2:9001/x → 10.77.2.2:9001; http://all_refused/x → no endpoint.
                    #expect(entry.upstreamAttempts.first?.address == String(authority))
                    #expect(entry.upstream?.description == (GatewayEndpoint(parsing: authority)?.description))
                }
                // Local time without a zone: naive, and right once the gateway's offset is applied.
                let time = try #require(entry.time)
                #expect(!time.isZoneKnown)
                #expect(time.resolution == 1_000_000_000)
                #expect(
                    time.instant(assumingUTCOffset: label.utcOffsetSeconds).nanoseconds
                        == utcNanoseconds(expected.timeUtc))
                #expect(entry.timeMeaning == .event)
                // Logged within the request's life (second resolution; read timeouts up to 2 s).
                let sent = try #require(utcNanoseconds(request.clientRequestTime))
                let logged = time.instant(assumingUTCOffset: label.utcOffsetSeconds).nanoseconds
                #expect(
                    logged >= sent - 1_000_000_000 && logged <= sent + 4_000_000_000, "\(name) line \(expected.line)")
            }
        }
        for expected in label.otherErrorLogLines {
            let entry = try #require(entries[expected.line])
            checked += 1
            #expect(entry.gatewayWords == expected.message)
            #expect(entry.request == nil)
        }
        #expect(checked == entries.count)
    }

    @Test(arguments: names)
    func nginxAccessLinesMatchTheLabel(name: String) throws {
        let label = try GatewayLogsLabel.load(name)
        guard let log = label.files.nginxAccessLog else { return }
        let entries = Dictionary(
            uniqueKeysWithValues: try GatewayLogReader(path: GatewayLogsLabel.path(log)).read().entries.map {
                ($0.lineNumber, $0)
            })
        var checked = 0
        var requestIDsFound = 0
        defer {
            let sentUpstream = label.requests.contains { $0.upstreamConnections.contains { $0.requestSent != nil } }
            if sentUpstream && !Self.withoutRequestID.contains(name) { #expect(requestIDsFound > 0, "\(name)") }
        }
        for request in label.requests {
            guard let expected = request.nginxAccessLog else { continue }
            let entry = try #require(entries[expected.line])
            checked += 1
            #expect(entry.request?.target == request.target)
            #expect(entry.status == expected.status)
            #expect(entry.client?.description == expected.client)
            #expect(entry.client?.description == request.client, "the client port is the capture's")
            #expect(entry.requestID == expected.requestId)
            #expect(entry.upstreamAttempts.map(\.address) == expected.upstreamAddr)
            #expect(entry.upstreamAttempts.map { $0.status.map(String.init) ?? "-" } == expected.upstreamStatus)
            #expect(
                entry.upstreamAttempts.map { $0.connectTime.map(Self.seconds) ?? "-" } == expected.upstreamConnectTime)
            #expect(
                entry.upstreamAttempts.map { $0.headerTime.map(Self.seconds) ?? "-" } == expected.upstreamHeaderTime)
            #expect(
                entry.upstreamAttempts.map { $0.responseTime.map(Self.seconds) ?? "-" } == expected.upstreamResponseTime
            )
            #expect(entry.requestDuration.map(Self.seconds) == expected.requestTime)
            // $msec is the instant; $time_iso8601 gave the zone.
            let time = try #require(entry.time)
            #expect(time.instant?.nanoseconds == msecNanoseconds(expected.msec))
            #expect(time.utcOffsetSeconds == label.utcOffsetSeconds)
            #expect(time.resolution == 1_000_000)
            #expect(entry.timeMeaning == .requestEnd)
            // The request id is what nginx sent upstream as X-Request-Id: the join key to the capture.
            // (Not in keepalive-race and mixed: their location sets proxy_set_header itself, and
            // nginx then inherits none of the http block's, X-Request-Id included.)
            for connection in request.upstreamConnections where connection.requestSent != nil {
                if Self.withoutRequestID.contains(name) {
                    #expect(connection.xRequestId == nil)
                } else {
                    #expect(connection.xRequestId == entry.requestID, "\(name) \(request.target)")
                    requestIDsFound += 1
                }
            }
        }
        #expect(checked == entries.count)
    }

    @Test(arguments: names)
    func haproxyLinesMatchTheLabel(name: String) throws {
        let label = try GatewayLogsLabel.load(name)
        guard let log = label.files.haproxyLog else { return }
        let entries = Dictionary(
            uniqueKeysWithValues: try GatewayLogReader(path: GatewayLogsLabel.path(log)).read().entries.map {
                ($0.lineNumber, $0)
            })
        var checked = 0
        for request in label.requests {
            guard let expected = request.haproxyLog else { continue }
            let entry = try #require(entries[expected.line])
            let details = try #require(entry.haproxy)
            checked += 1
            #expect(entry.request?.target == request.target)
            #expect(entry.client?.description == expected.client)
            #expect(entry.status == expected.status)
            #expect(entry.bytesSent == Int64(expected.bytes))
            #expect(details.terminationState == expected.terminationState)
            #expect(entry.gatewayWords == expected.terminationState)
            #expect(details.frontend == expected.frontend)
            #expect(details.backend == expected.backend)
            #expect(details.server == expected.server)
            let timers = [
                details.requestTime, details.queueTime, details.connectTime, details.responseTime, details.totalTime,
            ]
            #expect(timers.map { $0.map(Int.init) ?? -1 } == expected.timers)
            #expect(details.retries.map(String.init) == expected.retries)
            #expect(details.processID == expected.pid)
            #expect((details.processName != nil) == expected.syslogHeader)
            #expect(entry.backendSource?.description == expected.backendSource)
            if let source = entry.backendSource {
                // %bi:%bp is a real connection of the capture.
                #expect(
                    request.upstreamConnections.contains { $0.gateway == source.description },
                    "\(name) \(request.target)")
            }
            let time = try #require(entry.time)
            #expect(!time.isZoneKnown)
            #expect(time.resolution == 1_000_000)
            #expect(
                time.instant(assumingUTCOffset: label.utcOffsetSeconds).nanoseconds == utcNanoseconds(expected.timeUtc))
            #expect(entry.timeMeaning == .requestStart)
            // %tr is when the request arrived: within 2 ms of the client's request in the capture.
            let sent = try #require(utcNanoseconds(request.clientRequestTime))
            #expect(abs(time.instant(assumingUTCOffset: label.utcOffsetSeconds).nanoseconds - sent) < 2_000_000)
        }
        #expect(checked == entries.count)
    }

    /// Every failure the label lists is an entry whose gateway words and 4-tuple match.
    @Test(arguments: names)
    func failuresHaveTheirWordsAndTuples(name: String) throws {
        let label = try GatewayLogsLabel.load(name)
        var entriesByFileLine: [String: GatewayLogEntry] = [:]
        for log in [label.files.nginxErrorLog, label.files.nginxAccessLog, label.files.haproxyLog].compactMap({ $0 }) {
            for entry in try GatewayLogReader(path: GatewayLogsLabel.path(log)).read().entries {
                entriesByFileLine["\(log):\(entry.lineNumber)"] = entry
            }
        }
        for failure in label.failures {
            let entries = try failure.loggedIn.map { try #require(entriesByFileLine[$0], "\($0)") }
            #expect(entries.allSatisfy { $0.request?.target == failure.target })
            let words = entries.compactMap { $0.format == .nginxAccess ? nil : $0.gatewayWords }
            #expect(Set(words) == Set(failure.gatewayWords), "\(name) \(failure.target)")
            if let source = entries.compactMap(\.backendSource).first {
                #expect(failure.upstreamTuples.contains { $0.gateway == source.description })
            }
        }
    }

    private static func seconds(_ nanoseconds: Int64) -> String {
        let millis = nanoseconds / 1_000_000
        let fraction = String(millis % 1000)
        return "\(millis / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
