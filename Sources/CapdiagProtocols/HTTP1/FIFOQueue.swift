/// A first-in first-out queue on an array with a head index: `removeFirst` is O(1) (amortised;
/// the consumed prefix is dropped once it is at least half the storage), where
/// `Array.removeFirst` moves every element left. Pipelined HTTP keeps thousands of requests
/// waiting on one connection, and each response takes one off the front.
struct FIFOQueue<Element>: Sequence {
    private var storage: [Element] = []
    private var head = 0

    init() {}

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }

    /// The oldest element.
    var first: Element? {
        get { isEmpty ? nil : storage[head] }
        set {
            guard let newValue, !isEmpty else { return }
            storage[head] = newValue
        }
    }

    /// The newest element.
    var last: Element? {
        get { isEmpty ? nil : storage[storage.count - 1] }
        set {
            guard let newValue, !isEmpty else { return }
            storage[storage.count - 1] = newValue
        }
    }

    /// Changes the newest element in place (nothing when empty).
    mutating func updateLast(_ change: (inout Element) -> Void) {
        guard !isEmpty else { return }
        change(&storage[storage.count - 1])
    }

    /// Positions of the waiting elements, oldest first, for `self[position]`.
    var indices: Range<Int> { head..<storage.count }

    subscript(position: Int) -> Element {
        get { storage[position] }
        set { storage[position] = newValue }
    }

    mutating func append(_ element: Element) { storage.append(element) }

    /// Removes and returns the oldest element (nil when empty).
    @discardableResult
    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    /// Removes the elements that match, keeping the others in order.
    mutating func removeAll(where shouldRemove: (Element) -> Bool) {
        storage.removeFirst(head)
        head = 0
        storage.removeAll(where: shouldRemove)
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }

    func makeIterator() -> ArraySlice<Element>.Iterator { storage[head...].makeIterator() }
}

extension FIFOQueue: Sendable where Element: Sendable {}
