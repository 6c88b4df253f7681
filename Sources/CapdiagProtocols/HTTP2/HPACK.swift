/// Why a header block could not be decoded (RFC 7541). After any of these the decoder's dynamic
/// table no longer matches the encoder's, so the decoder refuses every later block
/// (`unusable`): the direction's header fields are unknown from then on, never guessed.
public enum HPACKError: Error, Sendable, Equatable {
    /// The block ended inside a representation: `needed` more bytes at `offset`.
    case truncated(offset: Int, needed: Int)
    /// An integer longer than the decoder accepts (above 2^31 - 1, or more than 5 bytes after
    /// the prefix; RFC 7541 §5.1 leaves the limit to the implementation).
    case integerOverflow(offset: Int)
    /// A Huffman string with the EOS symbol, or padding longer than 7 bits or not all ones
    /// (RFC 7541 §5.2).
    case invalidHuffman(offset: Int)
    /// Index 0, which no representation may use (RFC 7541 §6.1).
    case indexZero(offset: Int)
    /// An index past the static and dynamic tables (RFC 7541 §2.3.3).
    case indexOutOfRange(index: Int, tableEntries: Int, offset: Int)
    /// A dynamic table size update above the size the decoder's side advertised in
    /// SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §6.3), or above capdiag's hard cap.
    case tableSizeAboveLimit(size: Int, limit: Int, offset: Int)
    /// A dynamic table size update after a header field (RFC 7541 §4.2: only at the start of a block).
    case tableSizeUpdateNotAtStart(offset: Int)
    /// An earlier block failed; the table is out of step with the encoder.
    case unusable

    /// A stable snake_case name, for anomalies and reports.
    public var code: String {
        switch self {
        case .truncated: "hpack_truncated"
        case .integerOverflow: "hpack_integer_overflow"
        case .invalidHuffman: "hpack_invalid_huffman"
        case .indexZero: "hpack_index_zero"
        case .indexOutOfRange: "hpack_index_out_of_range"
        case .tableSizeAboveLimit: "hpack_table_size_above_limit"
        case .tableSizeUpdateNotAtStart: "hpack_table_size_update_not_at_start"
        case .unusable: "hpack_unusable"
        }
    }
}

/// One decoded header field. Names are as sent (HTTP/2 requires lower case, RFC 9113 §8.2.1);
/// nothing is validated beyond HPACK.
public struct HPACKField: Sendable, Equatable {
    public var name: [UInt8]
    public var value: [UInt8]
    /// Sent as "never indexed" (RFC 7541 §6.2.3): a value the sender marked sensitive.
    public var neverIndexed: Bool

    public init(name: [UInt8], value: [UInt8], neverIndexed: Bool = false) {
        self.name = name
        self.value = value
        self.neverIndexed = neverIndexed
    }

    public init(_ name: String, _ value: String, neverIndexed: Bool = false) {
        self.init(name: Array(name.utf8), value: Array(value.utf8), neverIndexed: neverIndexed)
    }

    public var nameString: String { String(decoding: name, as: UTF8.self) }
    public var valueString: String { String(decoding: value, as: UTF8.self) }
}

/// An HPACK decoder for one direction of an HTTP/2 connection (RFC 7541): the static table,
/// the dynamic table the encoder drives, integers, and Huffman or raw strings.
///
/// Memory is bounded: the dynamic table never holds more than `tableSizeLimit` bytes (RFC 7541
/// §4.1 sizes, 32 bytes of overhead per entry), and that limit never exceeds `hardTableSizeCap`
/// whatever the peer advertises. Every length is checked before it is read; bad input is an
/// `HPACKError`, never a trap, and leaves the decoder `unusable`.
public struct HPACKDecoder: Sendable {
    /// The largest dynamic table capdiag keeps, whatever SETTINGS_HEADER_TABLE_SIZE says.
    public static let hardTableSizeCap = 65_536
    /// The initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
    public static let defaultTableSize = 4096

    /// The size the encoder may set with a dynamic table size update: the largest
    /// SETTINGS_HEADER_TABLE_SIZE the decoding side advertised (4096 by default), capped.
    public private(set) var tableSizeLimit: Int
    /// The dynamic table's current maximum size (RFC 7541 §4.2), as last set by the encoder.
    public private(set) var maximumTableSize: Int
    /// The dynamic table's current size (RFC 7541 §4.1).
    public private(set) var tableSize = 0
    /// The error that made the decoder unusable, if one did.
    public private(set) var failure: HPACKError?

    /// Dynamic table entries, oldest first from `head`: index 1 of the dynamic table is the last.
    var entries: [(name: [UInt8], value: [UInt8])] = []
    var head = 0

    /// - Parameter tableSizeLimit: the SETTINGS_HEADER_TABLE_SIZE of the side that decodes
    ///   (capped at `hardTableSizeCap`).
    public init(tableSizeLimit: Int = HPACKDecoder.defaultTableSize) {
        let limit = min(max(tableSizeLimit, 0), Self.hardTableSizeCap)
        self.tableSizeLimit = limit
        self.maximumTableSize = min(Self.defaultTableSize, limit)
    }

    /// Entries in the dynamic table.
    public var dynamicEntryCount: Int { entries.count - head }

    /// Whether an earlier block failed.
    public var isUnusable: Bool { failure != nil }

    /// The decoding side advertised SETTINGS_HEADER_TABLE_SIZE = `size`. The encoder may use
    /// any size up to the largest value advertised (a lower one applies only once acknowledged,
    /// which a passive observer cannot place exactly), capped at `hardTableSizeCap`.
    public mutating func advertisedTableSize(_ size: UInt32) {
        let value = Int(min(size, UInt32(Self.hardTableSizeCap)))
        if value > tableSizeLimit { tableSizeLimit = value }
    }

    /// The dynamic table entry at `index` (1 is the newest), for tests and diagnostics.
    public func dynamicEntry(_ index: Int) -> HPACKField? {
        guard index >= 1 && index <= dynamicEntryCount else { return nil }
        let entry = entries[entries.count - index]
        return HPACKField(name: entry.name, value: entry.value)
    }

    /// Decodes one complete header block (the fragments of a HEADERS or PUSH_PROMISE frame and
    /// its CONTINUATIONs, padding and priority removed), calling `field` for each header field
    /// in order. The dynamic table is updated as the encoder's was.
    /// - Returns: nil when the whole block decoded; otherwise the error, after which the
    ///   decoder is unusable (fields before the error were delivered).
    @discardableResult
    public mutating func decode(_ block: [UInt8], _ field: (HPACKField) -> Void) -> HPACKError? {
        if failure != nil { return .unusable }
        var reader = Reader(bytes: block)
        var sawField = false
        while reader.index < block.count {
            let start = reader.index
            let first = block[start]
            do throws(HPACKError) {
                if first & 0x80 != 0 {
                    // Indexed header field (RFC 7541 §6.1).
                    let index = try reader.integer(prefixBits: 7)
                    var entry = try lookup(index, offset: start)
                    entry.neverIndexed = false
                    field(entry)
                    sawField = true
                } else if first & 0xC0 == 0x40 {
                    // Literal with incremental indexing (RFC 7541 §6.2.1).
                    let decoded = try literal(&reader, prefixBits: 6, start: start)
                    insert(name: decoded.name, value: decoded.value)
                    field(decoded)
                    sawField = true
                } else if first & 0xE0 == 0x20 {
                    // Dynamic table size update (RFC 7541 §6.3), only before the first field (§4.2).
                    guard !sawField else { throw .tableSizeUpdateNotAtStart(offset: start) }
                    let size = try reader.integer(prefixBits: 5)
                    guard size <= tableSizeLimit else {
                        throw .tableSizeAboveLimit(size: size, limit: tableSizeLimit, offset: start)
                    }
                    maximumTableSize = size
                    evict(toFit: 0)
                } else {
                    // Literal without indexing (0000) or never indexed (0001) (RFC 7541 §6.2.2, §6.2.3).
                    var decoded = try literal(&reader, prefixBits: 4, start: start)
                    decoded.neverIndexed = first & 0x10 != 0
                    field(decoded)
                    sawField = true
                }
            } catch {
                failure = error
                return error
            }
        }
        return nil
    }

    // MARK: - Tables

    private func lookup(_ index: Int, offset: Int) throws(HPACKError) -> HPACKField {
        guard index != 0 else { throw .indexZero(offset: offset) }
        if index <= hpackStaticTable.count {
            let entry = hpackStaticTable[index - 1]
            return HPACKField(name: Array(entry.name.utf8), value: Array(entry.value.utf8))
        }
        let dynamicIndex = index - hpackStaticTable.count
        guard dynamicIndex <= dynamicEntryCount else {
            throw .indexOutOfRange(index: index, tableEntries: hpackStaticTable.count + dynamicEntryCount, offset: offset)
        }
        let entry = entries[entries.count - dynamicIndex]
        return HPACKField(name: entry.name, value: entry.value)
    }

    private mutating func literal(_ reader: inout Reader, prefixBits: Int, start: Int) throws(HPACKError) -> HPACKField {
        let index = try reader.integer(prefixBits: prefixBits)
        let name: [UInt8]
        if index == 0 {
            name = try reader.string()
        } else {
            name = try lookup(index, offset: start).name
        }
        let value = try reader.string()
        return HPACKField(name: name, value: value)
    }

    /// Adds an entry (RFC 7541 §4.4): evicts from the oldest end until it fits; an entry larger
    /// than the whole table empties it and is not added.
    private mutating func insert(name: [UInt8], value: [UInt8]) {
        let size = name.count + value.count + 32
        guard size <= maximumTableSize else {
            entries.removeAll(keepingCapacity: true)
            head = 0
            tableSize = 0
            return
        }
        evict(toFit: size)
        entries.append((name, value))
        tableSize += size
    }

    /// Evicts the oldest entries until `extra` more bytes fit under the maximum size (RFC 7541 §4.3).
    private mutating func evict(toFit extra: Int) {
        while tableSize + extra > maximumTableSize && head < entries.count {
            tableSize -= entries[head].name.count + entries[head].value.count + 32
            entries[head] = ([], [])
            head += 1
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    // MARK: - Primitives

    /// Reads integers and strings from a block, every length checked first.
    struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        /// An integer with an N-bit prefix (RFC 7541 §5.1), at most 2^31 - 1.
        mutating func integer(prefixBits: Int) throws(HPACKError) -> Int {
            let start = index
            guard index < bytes.count else { throw .truncated(offset: index, needed: 1) }
            let mask = (1 << prefixBits) - 1
            var value = Int(bytes[index]) & mask
            index += 1
            guard value == mask else { return value }
            var shift = 0
            while true {
                guard index < bytes.count else { throw .truncated(offset: index, needed: 1) }
                let byte = bytes[index]
                index += 1
                // Five continuation bytes carry 35 bits: more than any length or index needs.
                guard shift <= 28 else { throw .integerOverflow(offset: start) }
                value += Int(byte & 0x7F) << shift
                guard value <= Int(Int32.max) else { throw .integerOverflow(offset: start) }
                shift += 7
                if byte & 0x80 == 0 { return value }
            }
        }

        /// A string literal (RFC 7541 §5.2): a Huffman flag, a 7-bit-prefix length, the octets.
        mutating func string() throws(HPACKError) -> [UInt8] {
            guard index < bytes.count else { throw .truncated(offset: index, needed: 1) }
            let huffman = bytes[index] & 0x80 != 0
            let length = try integer(prefixBits: 7)
            let available = bytes.count - index
            guard length <= available else { throw .truncated(offset: index, needed: length - available) }
            let start = index
            index += length
            if !huffman { return Array(bytes[start..<start + length]) }
            guard let decoded = HPACKHuffman.decode(bytes[start..<start + length]) else {
                throw .invalidHuffman(offset: start)
            }
            return decoded
        }
    }
}

/// Huffman decoding (RFC 7541 §5.2, code in Appendix B) by walking a binary tree built once.
enum HPACKHuffman {
    /// Tree nodes: for node `n`, children at `2n` (bit 0) and `2n + 1` (bit 1). A child is
    /// another node (value >= 0) or a symbol (-1 - symbol); -32768 marks no child.
    static let tree: [Int16] = {
        var children = [Int16](repeating: Int16.min, count: 2)
        var nodeCount = 1
        for (symbol, entry) in hpackHuffmanCodes.enumerated() {
            var node = 0
            for bit in stride(from: Int(entry.length) - 1, through: 0, by: -1) {
                let slot = 2 * node + Int((entry.code >> UInt32(bit)) & 1)
                if bit == 0 {
                    children[slot] = Int16(-1 - symbol)
                } else {
                    if children[slot] == Int16.min {
                        children[slot] = Int16(nodeCount)
                        nodeCount += 1
                        children.append(contentsOf: [Int16.min, Int16.min])
                    }
                    node = Int(children[slot])
                }
            }
        }
        return children
    }()

    /// Decodes Huffman-coded octets; nil for EOS in the string, a code not in the table, or
    /// padding longer than 7 bits or not a prefix of EOS (all ones).
    static func decode(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 2)
        let tree = Self.tree
        var node = 0
        // Bits walked since the last symbol, and whether they were all ones (EOS prefix).
        var pendingBits = 0
        var pendingAllOnes = true
        for byte in bytes {
            for bit in stride(from: 7, through: 0, by: -1) {
                let one = (byte >> UInt8(bit)) & 1
                let child = tree[2 * node + Int(one)]
                if child == Int16.min { return nil }
                pendingBits += 1
                if one == 0 { pendingAllOnes = false }
                if child < 0 {
                    let symbol = -1 - Int(child)
                    if symbol == 256 { return nil }
                    out.append(UInt8(symbol))
                    node = 0
                    pendingBits = 0
                    pendingAllOnes = true
                } else {
                    node = Int(child)
                }
            }
        }
        guard pendingBits <= 7 && pendingAllOnes else { return nil }
        return out
    }

    /// Encodes octets (for tests and fixtures), padding with the EOS prefix.
    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var accumulator: UInt64 = 0
        var bits = 0
        for byte in bytes {
            let entry = hpackHuffmanCodes[Int(byte)]
            accumulator = (accumulator << UInt64(entry.length)) | UInt64(entry.code)
            bits += Int(entry.length)
            while bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt64(bits)) & 0xFF))
            }
            accumulator &= (1 << UInt64(bits)) - 1
        }
        if bits > 0 { out.append(UInt8(((accumulator << UInt64(8 - bits)) | ((1 << UInt64(8 - bits)) - 1)) & 0xFF)) }
        return out
    }
}

/// The static table (RFC 7541 Appendix A), index 1 first.
let hpackStaticTable: [(name: String, value: String)] = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
    (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
    ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
    ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
    ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
    ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
    ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
    ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
    ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]

extension HPACKDecoder {
    /// The header block could not be followed (lost, or given up at a limit): the encoder's
    /// table changed in ways this decoder did not see, so nothing later can be decoded.
    public mutating func markUnusable() {
        if failure == nil { failure = .unusable }
    }
}
