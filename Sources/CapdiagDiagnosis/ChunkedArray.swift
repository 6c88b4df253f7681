/// A growable array stored in fixed-size chunks: appending never moves what is stored, and at
/// most one chunk is partly empty. The attempts kept for the cross-flow conclusions (up to
/// 150,000 of about 200 bytes) were one `Array` each, and its doubling held the old and the
/// new buffer at once: the peak of a long capture's memory.
struct ChunkedArray<Element>: RandomAccessCollection, MutableCollection {
    /// Elements per chunk; a chunk of attempts is about 800 KB.
    static var chunkSize: Int { 4096 }

    private var chunks: [[Element]] = []
    private(set) var count = 0

    init() {}

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(position: Int) -> Element {
        get { chunks[position / Self.chunkSize][position % Self.chunkSize] }
        set { chunks[position / Self.chunkSize][position % Self.chunkSize] = newValue }
    }

    mutating func append(_ element: Element) {
        if count % Self.chunkSize == 0 {
            var chunk: [Element] = []
            chunk.reserveCapacity(Self.chunkSize)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(element)
        count += 1
    }

    mutating func append(contentsOf elements: some Sequence<Element>) {
        for element in elements { append(element) }
    }
}

extension ChunkedArray: Sendable where Element: Sendable {}
