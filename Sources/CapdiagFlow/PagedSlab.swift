/// The flow table's storage: fixed-size pages of elements, so that growing never moves what is
/// stored. One contiguous array doubled as the table grew, holding the old and the new buffer
/// at once: with 33,000 flows held (1.3 KB each) that moment added 40 MB to a run's peak.
struct PagedSlab<Element> {
    /// Elements per page: about 300 KB of flows.
    private static var pageSize: Int { 256 }

    private var pages: [ContiguousArray<Element>] = []
    private(set) var count = 0

    init() {}

    var indices: Range<Int> { 0..<count }

    /// Read and changed where it is stored, as an array element is.
    subscript(position: Int) -> Element {
        @inline(__always) _read { yield pages[position / Self.pageSize][position % Self.pageSize] }
        @inline(__always) _modify { yield &pages[position / Self.pageSize][position % Self.pageSize] }
    }

    mutating func append(_ element: Element) {
        if count % Self.pageSize == 0 {
            var page = ContiguousArray<Element>()
            page.reserveCapacity(Self.pageSize)
            pages.append(page)
        }
        pages[pages.count - 1].append(element)
        count += 1
    }

    mutating func removeAll() {
        pages = []
        count = 0
    }
}
