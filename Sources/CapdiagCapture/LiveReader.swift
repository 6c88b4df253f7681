import CPcap
import CapdiagWire
import Glibc

/// Where `-w` writes the raw packets, with tcpdump-style rotation.
public struct WriteOptions: Sendable {
    public var path: String
    /// Start a new file once the current one holds this many bytes (`-C`, in MB).
    public var rotateBytes: Int64?
    /// Start a new file once the current one spans this many seconds of capture (`-G`).
    public var rotateSeconds: Int?
    /// With rotation, keep at most this many files (`-W`): names reused in a ring, or with a
    /// time pattern in the path, the oldest files deleted.
    public var fileCount: Int?

    public init(path: String, rotateBytes: Int64? = nil, rotateSeconds: Int? = nil, fileCount: Int? = nil) {
        self.path = path
        self.rotateBytes = rotateBytes
        self.rotateSeconds = rotateSeconds
        self.fileCount = fileCount
    }

    /// The path holds strftime(3) conversions (`%Y%m%d-%H%M%S`): each file is named by the
    /// UTC time it starts.
    public var isTimePattern: Bool { path.contains("%") }
}

/// Writes packets to pcap files (`pcap_dump_open`, `pcap_dump`), rotating like tcpdump:
/// without `-C`/`-G` one file `PATH`; with them `PATH0`, `PATH1`, … (with `-W N`, names repeat
/// after N, zero-padded), or with a time pattern in the path, `PATH` formatted at each file's
/// start (with `-W N` the newest N files are kept, older ones deleted: a ring on disk for a
/// capture that runs for weeks).
final class PacketWriter {
    private let handle: PcapHandle
    private let options: WriteOptions
    private var dumper: OpaquePointer?
    private var index = 0
    /// The capture second the current file started at (`-G`).
    private var fileStart: Int = 0
    private var currentName = ""
    private(set) var files: [String] = []

    init(handle: PcapHandle, options: WriteOptions) throws(CaptureError) {
        self.handle = handle
        self.options = options
        try open(at: time(nil))
    }

    deinit { try? close() }

    private func name(at second: Int) -> String {
        if options.isTimePattern {
            var seconds = time_t(second)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            var buffer = [CChar](repeating: 0, count: 4096)
            let length = strftime(&buffer, buffer.count, options.path, &parts)
            let formatted = length > 0 ? string(fromCBuffer: buffer) : options.path
            // Two files started in the same second: keep both.
            var candidate = formatted
            var extra = 1
            while files.contains(candidate) {
                candidate = formatted + ".\(extra)"
                extra += 1
            }
            return candidate
        }
        guard options.rotateBytes != nil || options.rotateSeconds != nil else { return options.path }
        if let count = options.fileCount, count > 0 {
            let width = String(count - 1).count
            let digits = String(index % count)
            return options.path + String(repeating: "0", count: width - digits.count) + digits
        }
        return options.path + String(index)
    }

    private func open(at second: Int) throws(CaptureError) {
        let name = name(at: second)
        guard let opened = pcap_dump_open(handle.raw, name) else {
            throw CaptureError(function: "pcap_dump_open", subject: name, message: handle.lastError)
        }
        dumper = opened
        currentName = name
        fileStart = second
        if !files.contains(name) { files.append(name) }
        // A time-named ring: the oldest files beyond -W go.
        if options.isTimePattern, let count = options.fileCount, count > 0 {
            while files.count > count {
                unlink(files.removeFirst())
            }
        }
    }

    func write(_ header: UnsafePointer<pcap_pkthdr>, _ data: UnsafePointer<UInt8>) throws(CaptureError) {
        // -G: a packet past the current file's span starts the next file.
        let second = Int(header.pointee.ts.tv_sec)
        if let span = options.rotateSeconds, second >= fileStart + span, dumper != nil {
            try close()
            index += 1
            try open(at: second)
        }
        guard let dumper else { return }
        pcap_dump(UnsafeMutablePointer<UInt8>(dumper), header, data)
        // stdio keeps a write error (a full disk) until asked: ask every packet, it is a flag.
        if let stream = pcap_dump_file(dumper), ferror(stream) != 0 {
            throw CaptureError(function: "pcap_dump", subject: currentName, message: String(cString: strerror(errno)))
        }
        if let limit = options.rotateBytes, pcap_dump_ftell64(dumper) >= limit {
            try close()
            index += 1
            try open(at: second)
        }
    }

    /// Flushes and closes the current file.
    /// - Throws: when the data could not all be written.
    func close() throws(CaptureError) {
        guard let dumper else { return }
        self.dumper = nil
        let flushed = pcap_dump_flush(dumper) == 0
        let failed = pcap_dump_file(dumper).map { ferror($0) != 0 } ?? false
        let reason = String(cString: strerror(errno))
        pcap_dump_close(dumper)
        if !flushed || failed { throw CaptureError(function: "pcap_dump", subject: currentName, message: reason) }
    }
}

/// Reads a live interface until told to stop, hands each packet to the analysis, and writes
/// it to `-w` files if asked. `pcap_next_ex` returns at least every `timeoutMilliseconds`, so a
/// stop request (Ctrl-C) is seen quickly even when no traffic flows.
public final class LiveReader {
    public let handle: PcapHandle
    public let linkType: LinkType
    private var writer: PacketWriter?
    private var descriptor: Int32 = -1
    private var pollTimeout: Int32 = 100
    public private(set) var packets = 0
    public private(set) var stop: StopReason?
    /// At most this many already-captured packets are read after a stop request.
    static let drainLimit = 100_000

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    public init(device: String, options: LiveOptions, filter: String?, write: WriteOptions?) throws(CaptureError) {
        handle = try PcapHandle.openLive(device: device, options: options)
        if let filter, !filter.isEmpty { try handle.setFilter(filter) }
        // In immediate mode Linux ignores the read timeout, so reads are non-blocking and the
        // loop waits with poll(2) on the capture descriptor instead (pcap_get_selectable_fd).
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        if pcap_setnonblock(handle.raw, 1, &errorBuffer) != 0 {
            throw CaptureError(function: "pcap_setnonblock", subject: device, message: string(fromCBuffer: errorBuffer))
        }
        descriptor = pcap_get_selectable_fd(handle.raw)
        pollTimeout = options.timeoutMilliseconds
        linkType = LinkType(dlt: handle.dataLinkType)
        if let write { writer = try PacketWriter(handle: handle, options: write) }
    }

    /// Files written so far by `-w`.
    public var writtenFiles: [String] { writer?.files ?? [] }

    /// Why `-w` stopped writing (a full disk, a vanished directory), if it did.
    public private(set) var writeFailure: String?

    /// Closes the `-w` file, reporting a write error that only shows at the last flush.
    public func finishWriting() {
        guard let writer else { return }
        do { try writer.close() } catch { if writeFailure == nil { writeFailure = "\(error)" } }
    }

    /// Reads until `shouldStop` says so, `limit` packets were read, or the capture fails.
    /// - Parameters:
    ///   - shouldStop: checked before every read (also after timeouts with no packet).
    ///   - idle: called when a read timed out without a packet (for status lines and sweeps).
    ///   - body: called for each packet; the bytes are valid only during the call.
    public func read(
        limit: Int?, shouldStop: () -> Bool, idle: () -> Void, _ body: (PacketMetadata, LinkType, RawSpan) -> Void
    ) {
        let unit = handle.nanosecondsPerTimestampUnit
        var draining = false
        var drained = 0
        var drainDeadline: UInt64 = 0
        while stop == nil {
            // Packets the kernel already captured belong to the report (an RST that arrived just
            // before Ctrl-C is often the answer): after a stop request, read what is waiting
            // (bounded, so a flood cannot delay the stop), then stop at the first empty read.
            if !draining, shouldStop() {
                draining = true
                drainDeadline = Self.monotonicNanoseconds() + 1_000_000_000
            }
            if draining {
                drained += 1
                if drained > Self.drainLimit { stop = .endOfFile; break }
            }
            if let limit, packets >= limit {
                stop = .packetLimit
                break
            }
            switch handle.next() {
            case .packet(let header, let data):
                packets += 1
                if let writer, writeFailure == nil {
                    do { try writer.write(header, data) } catch {
                        // The analysis goes on; the file is incomplete and the run says so.
                        writeFailure = "\(error)"
                    }
                }
                let captured = Int(header.pointee.caplen)
                let metadata = PacketMetadata(
                    timestamp: OfflineReader.timestamp(header, nanosecondsPerUnit: unit), capturedLength: captured,
                    wireLength: Int(header.pointee.len), sourceIndex: 0)
                body(metadata, linkType, UnsafeRawBufferPointer(start: data, count: captured).bytes)
            case .timeout where draining:
                // The kernel may still hold packets it has not handed over (a ring block not
                // yet retired): wait for them one poll timeout at a time, for at most a second.
                var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let more = descriptor >= 0 && Self.monotonicNanoseconds() < drainDeadline && poll(&entry, 1, pollTimeout) > 0
                if !more { stop = .endOfFile }
            case .timeout:
                // No packet waiting: sleep in poll(2) until one arrives or the timeout passes.
                if descriptor >= 0 {
                    var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                    _ = poll(&entry, 1, pollTimeout)
                }
                idle()
            case .endOfFile:
                stop = .endOfFile
            case .error(let message):
                stop = .readError(message)
            }
        }
        finishWriting()
    }

    /// Drops root after the device is open (tcpdump's `-Z`): supplementary groups, group, user.
    /// The files opened so far (`-w`, and `handing`, e.g. a log that is reopened on SIGHUP or
    /// rotated) are given to the user first, so that it can go on writing, rotating and
    /// reopening them.
    public func dropPrivileges(to user: String, handing files: [String] = []) throws(CaptureError) {
        guard let entry = getpwnam(user) else {
            throw CaptureError(function: "getpwnam", subject: user, message: "no such user")
        }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        for path in writtenFiles + files where chown(path, uid, gid) != 0 {
            throw CaptureError(function: "chown", subject: path, message: String(cString: strerror(errno)))
        }
        guard initgroups(user, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw CaptureError(function: "setuid", subject: user, message: String(cString: strerror(errno)))
        }
    }
}
