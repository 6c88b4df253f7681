import CZlib

#if canImport(Glibc)
    import Glibc
#endif

/// A line that gave no entry.
public struct GatewayBadLine: Hashable, Sendable {
    public var lineNumber: Int
    public var reason: GatewayBadLineReason
    /// The format the line started like, when it did.
    public var format: GatewayLogFormat?
    /// The line's first bytes (at most 120, invalid UTF-8 repaired).
    public var excerpt: String
}

/// What reading one file found, besides its entries.
public struct GatewayLogFileStats: Hashable, Sendable {
    public var path: String
    /// The file began with gzip's magic bytes (1f 8b) and was inflated.
    public var compressed = false
    /// Bytes of text read (after inflating).
    public var bytes: Int64 = 0
    public var lines = 0
    public var entries = 0
    public var blank = 0
    /// Known lines that are no request or event (HAProxy's own messages).
    public var ignored = 0
    /// Lines that gave no entry; `tooLong` of them were over the line limit.
    public var bad = 0
    public var tooLong = 0
    /// The first few bad lines (``GatewayLogReader/Limits/badExamples``).
    public var badExamples: [GatewayBadLine] = []
    /// Entries per format.
    public var formats: [GatewayLogFormat: Int] = [:]
    /// Why reading stopped before the end, or what was wrong at the end: a truncated or corrupt
    /// gzip stream, trailing bytes after it, a read error. Lines before it were still read.
    public var problem: String?

    public init(path: String) { self.path = path }
}

/// One file's entries and what reading it found.
public struct GatewayLogFile: Hashable, Sendable {
    public var entries: [GatewayLogEntry]
    public var stats: GatewayLogFileStats
}

/// Could not read the file at all.
public struct GatewayLogError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    /// The C function that failed (`open`) and `strerror`'s text.
    public var function: String
    public var reason: String

    public var description: String { "\(path): \(function): \(reason)" }
}

/// Reads a gateway log file, plain or gzip-compressed (detected from the magic bytes 1f 8b, not
/// the name), line by line in bounded memory, and gives one ``GatewayLogEntry`` per readable line.
/// Bad lines are counted (with a few examples) and never stop the reading; a damaged gzip stream
/// ends the reading with ``GatewayLogFileStats/problem`` set, keeping what came before.
public struct GatewayLogReader: Sendable {
    public struct Limits: Hashable, Sendable {
        /// A longer line is a bad line (`too_long`); its bytes are skipped, not buffered.
        public var maxLineBytes = 65_536
        /// How much of each line an entry keeps as ``GatewayLogEntry/rawLine``.
        public var rawLineBytes = GatewayLogParser.defaultRawLineBytes
        /// How many bad lines are kept as examples.
        public var badExamples = 5

        public init() {}
    }

    public var path: String
    public var limits: Limits

    public init(path: String, limits: Limits = Limits()) {
        self.path = path
        self.limits = limits
    }

    /// Reads the whole file.
    /// - Throws: ``GatewayLogError`` when the file cannot be opened.
    public func read() throws(GatewayLogError) -> GatewayLogFile {
        var entries: [GatewayLogEntry] = []
        let stats = try forEachEntry {
            entries.append($0)
            return true
        }
        return GatewayLogFile(entries: entries, stats: stats)
    }

    /// Calls `body` with each entry in file order; `body` returns false to stop early.
    /// - Returns: the file's counts (up to where reading stopped).
    /// - Throws: ``GatewayLogError`` when the file cannot be opened.
    public func forEachEntry(_ body: (GatewayLogEntry) -> Bool) throws(GatewayLogError) -> GatewayLogFileStats {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw GatewayLogError(path: path, function: "open", reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var splitter = LineSplitter(path: path, limits: limits)
        var source = FileSource(descriptor: descriptor)
        var inflater: Inflater?
        var first = true
        while splitter.wantsMore {
            let chunk: [UInt8]
            switch source.next() {
            case .bytes(let bytes): chunk = bytes
            case .end: chunk = []
            case .failure(let reason):
                splitter.stats.problem = "read: \(reason)"
                chunk = []
            }
            if first {
                first = false
                if chunk.count >= 2 && chunk[0] == 0x1F && chunk[1] == 0x8B {
                    splitter.stats.compressed = true
                    inflater = Inflater()
                    if inflater?.isReady != true {
                        splitter.stats.problem = "gzip: inflateInit failed"
                        break
                    }
                }
            }
            if chunk.isEmpty {
                if let inflater, !inflater.ended, splitter.stats.problem == nil {
                    splitter.stats.problem = "gzip: the stream ends early (truncated file)"
                }
                break
            }
            if let inflater {
                var problem: String?
                inflater.inflate(chunk, problem: &problem) { splitter.feed($0, body) }
                if let problem {
                    splitter.stats.problem = problem
                    break
                }
            } else {
                chunk.withUnsafeBufferPointer { splitter.feed($0, body) }
            }
        }
        splitter.finish(body)
        return splitter.stats
    }
}

/// Cuts bytes into lines, bounding each line's buffer, and hands each line to the parser.
private struct LineSplitter {
    let path: String
    let limits: Limits
    var stats: GatewayLogFileStats
    var line: [UInt8] = []
    var skippingLongLine = false
    var wantsMore = true

    typealias Limits = GatewayLogReader.Limits

    init(path: String, limits: Limits) {
        self.path = path
        self.limits = limits
        self.stats = GatewayLogFileStats(path: path)
        line.reserveCapacity(min(limits.maxLineBytes, 65_536) + 1)
    }

    mutating func feed(_ buffer: UnsafeBufferPointer<UInt8>, _ body: (GatewayLogEntry) -> Bool) {
        guard wantsMore, let base = buffer.baseAddress else { return }
        stats.bytes += Int64(buffer.count)
        var start = 0
        while start < buffer.count && wantsMore {
            let remaining = buffer.count - start
            let found = memchr(base + start, 0x0A, remaining)
            let end = found.map { UnsafeRawPointer(base).distance(to: UnsafeRawPointer($0)) } ?? buffer.count
            append(UnsafeBufferPointer(rebasing: buffer[start..<end]))
            if found == nil { break }
            endLine(body)
            start = end + 1
        }
    }

    private mutating func append(_ part: UnsafeBufferPointer<UInt8>) {
        guard !skippingLongLine else { return }
        if line.count + part.count > limits.maxLineBytes {
            skippingLongLine = true
            line.removeAll(keepingCapacity: true)
            return
        }
        line.append(contentsOf: part)
    }

    private mutating func endLine(_ body: (GatewayLogEntry) -> Bool) {
        stats.lines += 1
        let number = stats.lines
        if skippingLongLine {
            skippingLongLine = false
            record(.bad(.tooLong, format: nil), number: number, excerpt: "", body)
            return
        }
        let result = GatewayLogParser.parse(
            line: line, file: path, lineNumber: number, rawLineBytes: limits.rawLineBytes)
        record(result, number: number, excerpt: LineText.string(line, 0..<min(line.count, 120)), body)
        line.removeAll(keepingCapacity: true)
    }

    private mutating func record(
        _ result: GatewayLineResult, number: Int, excerpt: String, _ body: (GatewayLogEntry) -> Bool
    ) {
        switch result {
        case .entry(let entry):
            stats.entries += 1
            stats.formats[entry.format, default: 0] += 1
            if !body(entry) { wantsMore = false }
        case .blank: stats.blank += 1
        case .ignored: stats.ignored += 1
        case .bad(let reason, let format):
            stats.bad += 1
            if reason == .tooLong { stats.tooLong += 1 }
            if stats.badExamples.count < limits.badExamples {
                stats.badExamples.append(
                    GatewayBadLine(lineNumber: number, reason: reason, format: format, excerpt: excerpt))
            }
        }
    }

    /// The last line, when the file does not end with a newline.
    mutating func finish(_ body: (GatewayLogEntry) -> Bool) {
        guard wantsMore, !line.isEmpty || skippingLongLine else { return }
        endLine(body)
    }
}

/// `read(2)` in 256 KiB chunks, retrying on EINTR.
private struct FileSource {
    enum Chunk {
        case bytes([UInt8])
        case end
        case failure(String)
    }

    let descriptor: Int32
    static let chunkSize = 262_144

    mutating func next() -> Chunk {
        var buffer = [UInt8](repeating: 0, count: Self.chunkSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, Self.chunkSize) }
            if count > 0 {
                buffer.removeSubrange(count...)
                return .bytes(buffer)
            }
            if count == 0 { return .end }
            if errno == EINTR { continue }
            return .failure(String(cString: strerror(errno)))
        }
    }
}

/// zlib's `inflate` over a gzip stream (RFC 1952), members one after another as `gzip` allows
/// (`cat a.gz b.gz`). The `z_stream` lives at a fixed address (zlib keeps pointers into it).
private final class Inflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutablePointer<UInt8>
    private static let outputSize = 262_144
    let isReady: Bool
    /// The last member ended and nothing followed yet.
    private(set) var ended = false

    init() {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = .allocate(capacity: Self.outputSize)
        isReady = capdiag_inflate_init_gzip(stream) == Z_OK
    }

    deinit {
        if isReady { inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
        output.deallocate()
    }

    /// Inflates `input`, calling `sink` with each piece of output; sets `problem` on a corrupt
    /// stream or non-gzip bytes after a member.
    func inflate(_ input: [UInt8], problem: inout String?, sink: (UnsafeBufferPointer<UInt8>) -> Void) {
        input.withUnsafeBufferPointer { inputBuffer in
            guard let base = inputBuffer.baseAddress else { return }
            var offset = 0
            while true {
                if ended {
                    guard offset < inputBuffer.count else { return }
                    // Another member must start with the magic bytes; anything else is trailing junk.
                    let magic =
                        inputBuffer.count - offset >= 2
                        ? base[offset] == 0x1F && base[offset + 1] == 0x8B : base[offset] == 0x1F
                    guard magic else {
                        problem = "gzip: \(inputBuffer.count - offset) bytes after the end of the stream are not gzip"
                        return
                    }
                    inflateReset(stream)
                    ended = false
                }
                stream.pointee.next_in = UnsafeMutablePointer(mutating: base + offset)
                stream.pointee.avail_in = UInt32(inputBuffer.count - offset)
                stream.pointee.next_out = output
                stream.pointee.avail_out = UInt32(Self.outputSize)
                let result = CZlib.inflate(stream, Z_NO_FLUSH)
                let produced = Self.outputSize - Int(stream.pointee.avail_out)
                let before = offset
                offset = inputBuffer.count - Int(stream.pointee.avail_in)
                stream.pointee.next_in = nil
                stream.pointee.avail_in = 0
                if produced > 0 { sink(UnsafeBufferPointer(start: output, count: produced)) }
                switch result {
                case Z_STREAM_END:
                    ended = true
                case Z_OK:
                    // Output may be pending when the buffer filled up; otherwise wait for input.
                    if produced < Self.outputSize && offset >= inputBuffer.count { return }
                    if produced == 0 && offset == before { return }  // no progress: never spin
                case Z_BUF_ERROR:
                    return  // no progress possible without more input
                default:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "error \(result)"
                    problem = "gzip: corrupt stream (\(message))"
                    return
                }
            }
        }
    }
}
