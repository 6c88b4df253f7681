import CPcap
import CapdiagWire
import Logging

/// Debug messages of the capture layer (`-vv`): what libpcap was asked and what it gave.
let captureLog = Logger(label: "capdiag.capture")

/// Facts about one captured packet. The bytes themselves are lent separately, and only for
/// the duration of a callback.
public struct PacketMetadata: Sendable {
    public var timestamp: Timestamp
    /// Bytes captured (after snaplen).
    public var capturedLength: Int
    /// Bytes on the wire.
    public var wireLength: Int
    /// Which input file (index into the reader's files), 0 for a single source.
    public var sourceIndex: Int
}

/// One open libpcap handle (`pcap_t`). Closed with `pcap_close` when released.
///
/// A class rather than a `~Copyable` struct because the merged reader keeps one handle per
/// input file in an array, and arrays need copyable elements; there is one per file, never
/// one per packet.
public final class PcapHandle {
    let raw: OpaquePointer
    /// The path or device it was opened on, for messages.
    public let name: String

    /// The decompressor feeding a compressed file, until it is reaped.
    var decompressor: (program: String, pid: pid_t)?

    init(raw: OpaquePointer, name: String) {
        self.raw = raw
        self.name = name
    }

    deinit {
        // Closing the pipe ends a decompressor still writing (SIGPIPE); then it is reaped.
        pcap_close(raw)
        if let decompressor { _ = Self.reap(decompressor.pid) }
    }

    /// Opens a pcap or pcapng file with nanosecond timestamps.
    /// The corresponding C function is `pcap_open_offline_with_tstamp_precision`.
    public static func openOffline(path: String) throws(CaptureError) -> PcapHandle {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let handle = pcap_open_offline_with_tstamp_precision(
            path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        guard let handle else {
            throw CaptureError(
                function: "pcap_open_offline_with_tstamp_precision", subject: path,
                message: string(fromCBuffer: errorBuffer))
        }
        captureLog.debug(
            "opened \(path) with \(String(cString: pcap_lib_version())): link type \(pcap_datalink(handle)), snaplen \(pcap_snapshot(handle)), file version \(pcap_major_version(handle)).\(pcap_minor_version(handle))")
        return PcapHandle(raw: handle, name: path)
    }

    /// The link-layer header type (`pcap_datalink`).
    public var dataLinkType: Int32 { pcap_datalink(raw) }

    /// The link type's name and description, e.g. `EN10MB (Ethernet)` (`pcap_datalink_val_to_name`).
    public var dataLinkName: String { Self.linkTypeName(dataLinkType) }

    public static func linkTypeName(_ dlt: Int32) -> String {
        let name = pcap_datalink_val_to_name(dlt).map { String(cString: $0) } ?? "DLT_\(dlt)"
        if let description = pcap_datalink_val_to_description(dlt) {
            return "\(name) (\(String(cString: description)))"
        }
        return name
    }

    /// The snapshot length (`pcap_snapshot`).
    public var snapshotLength: Int { Int(pcap_snapshot(raw)) }

    /// Compiles a BPF expression for this handle's link type and installs it.
    /// The corresponding C functions are `pcap_compile` and `pcap_setfilter`.
    public func setFilter(_ expression: String) throws(CaptureError) {
        var program = bpf_program()
        guard pcap_compile(raw, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw CaptureError(
                function: "pcap_compile", subject: "filter '\(expression)'", message: lastError)
        }
        defer { pcap_freecode(&program) }
        captureLog.debug("filter '\(expression)' compiled to \(program.bf_len) BPF instructions for \(name)")
        guard pcap_setfilter(raw, &program) == 0 else {
            throw CaptureError(function: "pcap_setfilter", subject: name, message: lastError)
        }
    }

    /// libpcap's text for the last error on this handle (`pcap_geterr`).
    var lastError: String { String(cString: pcap_geterr(raw)) }

    /// The outcome of one `pcap_next_ex` call.
    enum Next {
        case packet(UnsafePointer<pcap_pkthdr>, UnsafePointer<UInt8>)
        case timeout
        case endOfFile
        case error(String)
    }

    /// Reads the next packet. The returned pointers stay valid until the next call on this
    /// handle (libpcap reuses its buffer). The corresponding C function is `pcap_next_ex`.
    func next() -> Next {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(raw, &header, &data) {
        case 1:
            guard let header, let data else { return .error("pcap_next_ex returned no packet") }
            return .packet(UnsafePointer(header), data)
        case 0: return .timeout
        case PCAP_ERROR_BREAK: return .endOfFile
        default: return .error(lastError)
        }
    }
}

func string(fromCBuffer buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { pointer in
        guard let base = pointer.baseAddress else { return "" }
        return String(cString: base)
    }
}
