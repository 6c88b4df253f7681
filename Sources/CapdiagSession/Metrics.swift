import CapdiagDiagnosis
import CapdiagEngine
import CapdiagFlow
import CapdiagReport
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Prometheus text exposition (format 0.0.4) of an analysis: what Prometheus or node_exporter's
/// textfile collector scrapes from a fleet of gateways. Prometheus aggregates across hosts;
/// capdiag only counts. Label cardinality is bounded: the `topUpstreams` upstreams with the most
/// failures (then requests) keep their own label, the rest are summed as `upstream="other"`.
public enum MetricsExposition {
    public static let topUpstreams = 20

    /// One upstream's counters since the start.
    public struct UpstreamCounts: Sendable, Equatable {
        public var upstream: String
        public var flows: Int
        public var requests: Int
        public var failures: [String: Int]
    }

    /// One gateway listener's client counters since the start.
    public struct ListenerCounts: Sendable, Equatable {
        public var listener: String
        public var requests: Int
        public var failed: Int
    }

    public struct Snapshot: Sendable {
        public var packets: Int
        public var capturedBytes: Int
        public var openFlows: Int
        public var endedFlows: Int
        public var kernelDropped: UInt64?
        /// Verdicts (medium and above) decided so far by code; live, as they happen.
        public var verdicts: [String: Int] = [:]
        public var upstreams: [UpstreamCounts] = []
        public var listeners: [ListenerCounts] = []
    }

    public static func render(_ snapshot: Snapshot) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels.isEmpty ? "" : "{\(sample.labels)}") \(sample.value)\n" }
        }
        family("capdiag_packets_total", "counter", "Packets read.", [("", "\(snapshot.packets)")])
        family("capdiag_captured_bytes_total", "counter", "Bytes of packets read (as captured).", [("", "\(snapshot.capturedBytes)")])
        family("capdiag_open_flows", "gauge", "TCP flows held in the flow table now.", [("", "\(snapshot.openFlows)")])
        family("capdiag_flows_total", "counter", "TCP flows that ended (left the table).", [("", "\(snapshot.endedFlows)")])
        if let dropped = snapshot.kernelDropped {
            family("capdiag_kernel_dropped_packets_total", "counter", "Packets the kernel dropped (pcap_stats).", [("", "\(dropped)")])
        }

        family(
            "capdiag_verdicts_total", "counter", "Verdicts (medium and above) decided so far, per code; live, as they happen.",
            snapshot.verdicts.sorted { $0.key < $1.key }.map { (label("code", $0.key), "\($0.value)") })
        // Upstreams: the most failing (then busiest) by name, the rest summed as "other".
        let failed = { (upstream: UpstreamCounts) in upstream.failures.values.reduce(0, +) }
        // An entry already called "other" (servers past the tracking cap) joins the rest.
        let upstreams = snapshot.upstreams.filter { $0.upstream != "other" }.sorted {
            (failed($0), $0.requests, $1.upstream) > (failed($1), $1.requests, $0.upstream)
        }
        let named = upstreams.prefix(topUpstreams)
        let rest = Array(upstreams.dropFirst(topUpstreams)) + snapshot.upstreams.filter { $0.upstream == "other" }
        var requests = named.map { (label("upstream", $0.upstream), "\($0.requests)") }
        var flows = named.map { (label("upstream", $0.upstream), "\($0.flows)") }
        var failures: [(String, String)] = []
        for upstream in named {
            for (code, count) in upstream.failures.sorted(by: { $0.key < $1.key }) {
                failures.append((label("upstream", upstream.upstream) + "," + label("code", code), "\(count)"))
            }
        }
        if !rest.isEmpty {
            requests.append((label("upstream", "other"), "\(rest.reduce(0) { $0 + $1.requests })"))
            flows.append((label("upstream", "other"), "\(rest.reduce(0) { $0 + $1.flows })"))
            var byCode: [String: Int] = [:]
            for upstream in rest { byCode.merge(upstream.failures, uniquingKeysWith: +) }
            for (code, count) in byCode.sorted(by: { $0.key < $1.key }) {
                failures.append((label("upstream", "other") + "," + label("code", code), "\(count)"))
            }
        }
        family("capdiag_upstream_requests_total", "counter", "Requests seen per upstream.", requests)
        family("capdiag_upstream_flows_total", "counter", "Connections per upstream.", flows)
        family(
            "capdiag_upstream_failures_total", "counter",
            "Verdicts (medium and above) per upstream and code (see docs/json-schema.md).", failures)
        let listeners = snapshot.listeners.sorted { ($0.failed, $1.listener) > ($1.failed, $0.listener) }.prefix(topUpstreams)
        family(
            "capdiag_client_requests_total", "counter", "Client requests per gateway listener.",
            listeners.map { (label("listener", $0.listener), "\($0.requests)") })
        family(
            "capdiag_client_failures_total", "counter",
            "Client requests answered 502/503/504, not answered, cut short or invalid, per gateway listener.",
            listeners.map { (label("listener", $0.listener), "\($0.failed)") })
        return out
    }

    /// `name="value"` with the value escaped as the format requires (backslash, quote, newline).
    static func label(_ name: String, _ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return "\(name)=\"\(escaped)\""
    }
}

extension AnalysisSession {
    /// The counters as of now. Roles come from the conclusions: the gateway listeners found
    /// so far (in the window) keep the label "listener" for good; the other confirmed servers
    /// (those `--upstream` names, when given) are upstreams.
    public func metricsSnapshot(kernelDropped: UInt64?, openFlows: Int? = nil) -> MetricsExposition.Snapshot {
        var snapshot = MetricsExposition.Snapshot(
            packets: analyzer.stats.packets, capturedBytes: analyzer.stats.capturedBytes,
            openFlows: openFlows ?? analyzer.flows.activeFlows, endedFlows: builder.total, kernelDropped: kernelDropped,
            verdicts: options.liveVerdicts ? liveVerdictCounts : collector.flaggedByCode)
        for (endpoint, server) in totals.servers {
            let name = endpoint.description
            if knownListeners.contains(name) {
                snapshot.listeners.append(.init(listener: name, requests: server.requests, failed: server.clientFailures))
            } else if server.confirmed && (options.upstreams.isEmpty || options.upstreams.contains { $0.matches(endpoint) }) {
                snapshot.upstreams.append(.init(upstream: name, flows: server.flows, requests: server.requests, failures: server.failures))
            }
        }
        if totals.other.flows > 0 {
            let other = totals.other
            snapshot.upstreams.append(.init(upstream: "other", flows: other.flows, requests: other.requests, failures: other.failures))
        }
        return snapshot
    }

    /// Looks for gateway listeners among the newest flows (for the metrics' roles; once found,
    /// a listener keeps its label).
    public func refreshListeners() {
        knownListeners.formUnion(collector.recentListeners.map(\.description))
    }
}

/// `--metrics-file PATH`: the exposition written atomically (a temporary file renamed over the
/// old one, as node_exporter's textfile collector expects) every interval and at the end.
public final class MetricsFileSink: SessionSink {
    public let path: String

    public init(path: String) { self.path = path }

    public func write(_ text: String) throws {
        do { try AtomicFile.write(text, to: path) } catch { throw SinkError("metrics: \(error)") }
    }

    public func concluded(_ conclusion: SessionConclusion) throws {
        try write(MetricsExposition.render(conclusion.metrics))
    }
}

/// `--metrics-listen HOST:PORT`: serves the latest exposition at `/metrics` over HTTP/1.1 for a
/// Prometheus server to scrape, from a thread of its own (one request per connection, bounded
/// reads, closed when the capture ends).
public final class MetricsServer: @unchecked Sendable {
    private let latest = Mutex("")
    private let listener: Int32
    private let stopped = Atomic<Bool>(false)
    public let port: UInt16

    /// Listens on an IPv4 `host:port` (port 0: any free port).
    public init(host: String, port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SinkError("metrics: socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw SinkError("metrics: '\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw SinkError("metrics: cannot listen on \(host):\(port): \(message)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        listener = fd
        // A thread of its own (it blocks in accept), not the capture's.
        DispatchQueue.global().async { [self] in serve() }
    }

    public func update(_ text: String) { latest.withLock { $0 = text } }

    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve() {
        while !stopped.load(ordering: .relaxed) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            // Read the request head (bounded), answer, close.
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var request: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 2048)
            while request.count < 16_384 {
                let count = read(client, &chunk, chunk.count)
                if count <= 0 { break }
                request += chunk[0..<count]
                if request.count >= 4 && request.suffix(4).elementsEqual([13, 10, 13, 10]) { break }
            }
            let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let body: String
            let status: String
            if line.hasPrefix("GET /metrics ") || line.hasPrefix("GET /metrics?") {
                status = "200 OK"
                body = latest.withLock { $0 }
            } else {
                status = "404 Not Found"
                body = "capdiag serves /metrics\n"
            }
            let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = response.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
    }
}
