import CPcap
import CapdiagWire
import Glibc

/// A pcap file written packet by packet with nanosecond timestamps, outside any live handle
/// (the corresponding C functions are `pcap_open_dead_with_tstamp_precision`, `pcap_dump_open`,
/// `pcap_dump`, `pcap_dump_flush` and `pcap_dump_close`). Write errors are not lost: `close()`
/// flushes and reports the first one (a full disk, a vanished directory), so a partial file is
/// never presented as complete.
public final class PcapDumpFile {
    public let path: String
    public let linkType: Int32
    private var dead: OpaquePointer?
    private var dumper: OpaquePointer?

    public init(path: String, linkType: Int32) throws(CaptureError) {
        self.path = path
        self.linkType = linkType
        guard let dead = pcap_open_dead_with_tstamp_precision(linkType, 262_144, UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
            throw CaptureError(function: "pcap_open_dead", subject: path, message: "link type \(linkType)")
        }
        guard let dumper = pcap_dump_open(dead, path) else {
            let message = String(cString: pcap_geterr(dead))
            pcap_close(dead)
            throw CaptureError(function: "pcap_dump_open", subject: path, message: message)
        }
        self.dead = dead
        self.dumper = dumper
    }

    deinit { try? close() }

    /// Writes one packet: `count` of `bytes` captured, `wireLength` on the wire.
    public func write(time: Timestamp, bytes: [UInt8], count: Int, wireLength: Int) {
        guard let dumper else { return }
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(time.nanoseconds / 1_000_000_000)
        header.ts.tv_usec = Int(time.nanoseconds % 1_000_000_000)
        header.caplen = UInt32(min(count, bytes.count))
        header.len = UInt32(max(wireLength, count))
        bytes.withUnsafeBufferPointer { pointer in
            pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header, pointer.baseAddress)
        }
    }

    /// Flushes and closes the file.
    /// - Throws: `CaptureError` when any write failed (stdio keeps the error until the close).
    public func close() throws(CaptureError) {
        guard let dumper, let dead else { return }
        self.dumper = nil
        self.dead = nil
        let flushed = pcap_dump_flush(dumper) == 0
        let stream = pcap_dump_file(dumper)
        let streamFailed = stream.map { ferror($0) != 0 } ?? false
        let savedErrno = errno
        pcap_dump_close(dumper)
        pcap_close(dead)
        if !flushed || streamFailed {
            throw CaptureError(function: "pcap_dump", subject: path, message: String(cString: strerror(savedErrno)))
        }
    }
}
