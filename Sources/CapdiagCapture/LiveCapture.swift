import CPcap
import CapdiagWire
import Logging

/// Settings of a live capture (tcpdump's flags).
public struct LiveOptions: Sendable {
    public var snapshotLength = 262_144
    /// Kernel buffer in bytes (`-B`, given in KiB on the command line as tcpdump does).
    public var bufferSize: Int?
    public var promiscuous = true
    /// Deliver packets as they arrive rather than in kernel batches. Off by default: measured
    /// on a loopback burst of 20,000 connections (Benchmarks/burst.sh), immediate mode lost
    /// 23–63 % of the packets at any buffer size and the analysis then reported causes that
    /// did not happen; batched delivery lost none, and hands packets over at most a read
    /// timeout (100 ms) late.
    public var immediate = false
    /// How long `pcap_next_ex` may wait, so a stop request is seen within this time.
    public var timeoutMilliseconds: Int32 = 100

    public init() {}
}

/// Kernel counters of a live capture (`pcap_stats`).
public struct CaptureStatistics: Sendable, Equatable {
    public var received: UInt64
    /// Dropped by the kernel because the buffer was full.
    public var dropped: UInt64
    /// Dropped by the interface or its driver, where the platform reports it.
    public var interfaceDropped: UInt64
}

/// One network interface as `pcap_findalldevs` lists it.
public struct InterfaceDescription: Sendable {
    public var name: String
    public var description: String?
    public var addresses: [String]
    public var isUp: Bool
    public var isLoopback: Bool
}

extension PcapHandle {
    /// Opens a device for live capture. The corresponding C functions are `pcap_create`,
    /// `pcap_set_snaplen`, `pcap_set_promisc`, `pcap_set_timeout`, `pcap_set_immediate_mode`,
    /// `pcap_set_buffer_size` and `pcap_activate`.
    /// - Throws: `CaptureError` saying what is missing: the interface, or the privileges.
    public static func openLive(device: String, options: LiveOptions) throws(CaptureError) -> PcapHandle {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let raw = pcap_create(device, &errorBuffer) else {
            throw CaptureError(function: "pcap_create", subject: device, message: string(fromCBuffer: errorBuffer))
        }
        pcap_set_snaplen(raw, Int32(clamping: options.snapshotLength))
        pcap_set_promisc(raw, options.promiscuous ? 1 : 0)
        pcap_set_timeout(raw, options.timeoutMilliseconds)
        pcap_set_immediate_mode(raw, options.immediate ? 1 : 0)
        if let size = options.bufferSize { pcap_set_buffer_size(raw, Int32(clamping: size)) }
        // Nanoseconds where the platform offers them (Linux does); when it refuses, the handle
        // stays at microseconds and `nanosecondsPerTimestampUnit` says so.
        _ = pcap_set_tstamp_precision(raw, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(raw)
        if status < 0 {
            let detail = String(cString: pcap_geterr(raw))
            pcap_close(raw)
            let message: String
            switch status {
            case PCAP_ERROR_NO_SUCH_DEVICE:
                message = "no such interface (capdiag -D lists them)" + (detail.isEmpty ? "" : ": \(detail)")
            case PCAP_ERROR_PERM_DENIED:
                message = "permission denied: live capture needs root or the CAP_NET_RAW and CAP_NET_ADMIN"
                    + " capabilities (sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v capdiag)\")"
                    + (detail.isEmpty ? "" : "; libpcap: \(detail)")
            default:
                message = detail.isEmpty ? String(cString: pcap_statustostr(status)) : detail
            }
            throw CaptureError(function: "pcap_activate", subject: device, message: message)
        }
        captureLog.debug(
            "activated \(device) (\(String(cString: pcap_lib_version()))): snaplen \(pcap_snapshot(raw)), buffer \(options.bufferSize.map { "\($0 / 1024) KiB" } ?? "default"), immediate \(options.immediate), read timeout \(options.timeoutMilliseconds) ms, timestamps in \(pcap_get_tstamp_precision(raw) == Int32(PCAP_TSTAMP_PRECISION_NANO) ? "nanoseconds" : "microseconds")\(status > 0 ? ", warning: \(String(cString: pcap_statustostr(status)))" : "")")
        return PcapHandle(raw: raw, name: device)
    }

    /// How many nanoseconds one unit of `pcap_pkthdr.ts.tv_usec` is on this handle: 1 when it
    /// delivers nanoseconds, 1000 for microseconds (`pcap_get_tstamp_precision`).
    public var nanosecondsPerTimestampUnit: Int64 {
        pcap_get_tstamp_precision(raw) == Int32(PCAP_TSTAMP_PRECISION_NANO) ? 1 : 1000
    }

    /// Kernel counters (`pcap_stats`); nil where the platform has none (offline files).
    public var statistics: CaptureStatistics? {
        var stats = pcap_stat()
        guard pcap_stats(raw, &stats) == 0 else { return nil }
        return CaptureStatistics(
            received: UInt64(stats.ps_recv), dropped: UInt64(stats.ps_drop), interfaceDropped: UInt64(stats.ps_ifdrop))
    }

    /// The interfaces libpcap can capture on (`pcap_findalldevs`).
    public static func interfaces() throws(CaptureError) -> [InterfaceDescription] {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        var list: UnsafeMutablePointer<pcap_if_t>?
        guard pcap_findalldevs(&list, &errorBuffer) == 0 else {
            throw CaptureError(function: "pcap_findalldevs", subject: "interfaces", message: string(fromCBuffer: errorBuffer))
        }
        defer { pcap_freealldevs(list) }
        var result: [InterfaceDescription] = []
        var current = list
        while let device = current {
            var addresses: [String] = []
            var address = device.pointee.addresses
            while let entry = address {
                if let socketAddress = entry.pointee.addr, let text = describeSocketAddress(socketAddress) { addresses.append(text) }
                address = entry.pointee.next
            }
            let flags = device.pointee.flags
            result.append(
                InterfaceDescription(
                    name: String(cString: device.pointee.name),
                    description: device.pointee.description.map { String(cString: $0) }, addresses: addresses,
                    isUp: flags & UInt32(PCAP_IF_UP) != 0, isLoopback: flags & UInt32(PCAP_IF_LOOPBACK) != 0))
            current = device.pointee.next
        }
        return result
    }
}

/// IPv4 and IPv6 socket addresses as text; others are left out.
private func describeSocketAddress(_ address: UnsafeMutablePointer<sockaddr>) -> String? {
    switch Int32(address.pointee.sa_family) {
    case AF_INET:
        return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
            IPAddress(ipv4: UInt32(bigEndian: v4.pointee.sin_addr.s_addr)).description
        }
    case AF_INET6:
        return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
            withUnsafeBytes(of: v6.pointee.sin6_addr) { bytes in
                var high: UInt64 = 0
                var low: UInt64 = 0
                for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
                for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
                return IPAddress(high: high, low: low).description
            }
        }
    default:
        return nil
    }
}
