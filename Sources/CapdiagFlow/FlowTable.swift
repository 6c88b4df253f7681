import CapdiagWire

/// Limits of the flow table.
public struct FlowTableOptions: Sendable {
    /// A flow with no packet for this long (capture time) leaves the table. Zeek's
    /// `tcp_inactivity_timeout` is 5 minutes.
    public var idleTimeout: Int64 = 300 * 1_000_000_000
    /// How long a terminated flow (one RST, or FIN both ways) stays to collect its last ACKs
    /// and retransmitted FINs and RSTs, measured from its last packet. 60 s is Linux's
    /// TIME_WAIT; shorter values split flows whose peer keeps retransmitting a FIN.
    public var closeLinger: Int64 = 60 * 1_000_000_000
    /// Most flows held at once; beyond it the least recently active are evicted.
    public var maximumFlows = 1_000_000
    /// Most bytes all flows together may hold in out-of-order buffers (`ReassemblyMemory`).
    public var reassemblyMemcap = ReassemblyMemory.defaultLimit
    /// Note flows the moment something decides them (they terminate, or an ICMP error
    /// arrives), for verdicts as they happen in a live capture (`drainDecided`).
    public var noteDecisions = false

    public init() {}
}

/// The slab index of a flow.
public struct FlowID: Hashable, Sendable {
    public var rawValue: Int32
}

/// What a session may read of its flow for one segment, taken after the flow's TCP state took
/// the segment in. Lent instead of the `TCPFlow` itself: that struct is large (about 1.4 KB,
/// with arrays in it) and a session called in another module got a copy of it, retains
/// included, for every packet.
public struct SegmentContext: Sendable {
    public var originator: Endpoint
    public var responder: Endpoint
    /// How far the sender of the segment has acknowledged its peer's bytes
    /// (`DirectionStats.acknowledgedOffset` of the other direction).
    public var peerBytesAcknowledged: Int64?

    public init(originator: Endpoint, responder: Endpoint, peerBytesAcknowledged: Int64?) {
        self.originator = originator
        self.responder = responder
        self.peerBytesAcknowledged = peerBytesAcknowledged
    }
}

/// Per-flow state that rides along with a `TCPFlow` (stream reassembly and protocol
/// analysis live in the engine and plug in here), created when the flow starts and handed
/// out with it when it ends.
public protocol FlowSession {
    /// What every new session is created with (the analysis's options for its protocols).
    associatedtype Configuration: Sendable
    /// An empty session: a released slot's placeholder.
    init()
    init(configuration: Configuration)
    /// Called for every segment after the flow's TCP state took it in.
    /// - Parameters:
    ///   - payload: the captured payload bytes, valid during the call.
    ///   - dataOffset: the stream offset of the payload's first byte in the sender's direction,
    ///     or nil when the sequence number cannot be trusted (after a reset).
    ///   - memory: what all flows' out-of-order buffers hold, against the global cap.
    ///   - flow: what the session may read of its flow.
    mutating func segment(
        _ segment: TCPSegment, payload: RawSpan, from direction: Direction, dataOffset: Int64?, flow: SegmentContext,
        memory: inout ReassemblyMemory)
    /// Called once when the flow leaves the table; whatever the session still buffers must be
    /// released from `memory`.
    mutating func end(_ flow: TCPFlow, memory: inout ReassemblyMemory)
    /// Called once when the flow terminates (one side reset, or both sent FIN), before its close
    /// linger: a session gives back the spare capacity it only needed while data flowed, since
    /// most flows held at any time are lingering ones.
    mutating func terminated()
}

extension FlowSession {
    public mutating func terminated() {}
}

/// No per-flow state: flow tracking only.
public struct NoSession: FlowSession {
    public init() {}
    public init(configuration: Void) {}
    public mutating func segment(
        _ segment: TCPSegment, payload: RawSpan, from direction: Direction, dataOffset: Int64?, flow: SegmentContext,
        memory: inout ReassemblyMemory
    ) {}
    public mutating func end(_ flow: TCPFlow, memory: inout ReassemblyMemory) {}
}

/// Tracks TCP connections: one `TCPFlow` per connection in a slab (`PagedSlab`, with a free
/// list), found through a dictionary from the direction-independent 4-tuple.
///
/// Flows leave the table when they terminate (after a linger), go idle, are evicted at the
/// cap, or the capture ends; each leaving flow is handed to `drainFinished`. Memory is
/// bounded by `maximumFlows`, not by capture length.
public struct FlowTable<Session: FlowSession> {
    public let options: FlowTableOptions
    private var slots = PagedSlab<TCPFlow>()
    private var sessions = PagedSlab<Session>()
    private var occupied: ContiguousArray<Bool> = []
    private var freeList: [Int32] = []
    private var index: [FlowKey: FlowID] = [:]
    private var finished: [(flow: TCPFlow, session: Session)] = []
    private var nextFlowID = 1
    /// The latest packet time the table has seen.
    var latestTime: Timestamp?
    /// Flows decided and not yet handed to `drainDecided` (slot, flow id).
    var decided: [(Int32, Int)] = []
    private var lastSweep: Timestamp?
    /// Flows removed because the table was full.
    public private(set) var evictedFlows = 0
    /// The most flows held at once.
    public private(set) var peakFlows = 0
    /// Out-of-order buffers of all sessions, against `options.reassemblyMemcap`.
    public private(set) var reassemblyMemory: ReassemblyMemory

    /// Passed to every session the table creates.
    public let configuration: Session.Configuration

    public init(options: FlowTableOptions = FlowTableOptions(), configuration: Session.Configuration) {
        self.options = options
        self.configuration = configuration
        reassemblyMemory = ReassemblyMemory(limit: options.reassemblyMemcap)
        finished.reserveCapacity(64)
    }

    /// Flows currently held.
    public var activeFlows: Int { index.count }

    /// Applies a TCP segment between `sender` and `receiver`, creating the flow if needed.
    /// A SYN on a 4-tuple whose connection has terminated starts a new flow.
    public mutating func apply(_ segment: TCPSegment, payload: RawSpan, sender: Endpoint, receiver: Endpoint) {
        let key = FlowKey(sender, receiver)
        let flags = segment.header.flags
        sweepIfDue(now: segment.packet.time)
        var slot: Int
        if let existing = index[key] {
            slot = Int(existing.rawValue)
            if flags.contains(.syn) && !flags.contains(.ack) && isReuse(slots[slot], sender: sender, segment: segment) {
                finish(slot: slot, key: key, reason: .portReuse)
                slot = insert(key: key, sender: sender, receiver: receiver, segment: segment)
            }
        } else {
            slot = insert(key: key, sender: sender, receiver: receiver, segment: segment)
        }
        let direction: Direction = slots[slot].originator == sender ? .originator : .responder
        if slots[slot].isDuplicateFrame(segment, from: direction) { return }
        let wasClosed = slots[slot].closedAt != nil
        let dataOffset = slots[slot].apply(segment, from: direction)
        let context = SegmentContext(
            originator: slots[slot].originator, responder: slots[slot].responder,
            // Read field by field: the `flow[direction]` getter would copy a `DirectionStats`.
            peerBytesAcknowledged: direction == .originator
                ? slots[slot].resp.acknowledgedOffset : slots[slot].orig.acknowledgedOffset)
        sessions[slot].segment(
            segment, payload: payload, from: direction, dataOffset: dataOffset, flow: context, memory: &reassemblyMemory)
        if !wasClosed && slots[slot].closedAt != nil {
            sessions[slot].terminated()
            if options.noteDecisions { decided.append((Int32(slot), slots[slot].id)) }
        }
    }

    /// Hands every flow decided since the last call (terminated, or told off by ICMP) to
    /// `body` as it is now, while it stays in the table: its verdicts can go out at once
    /// instead of after the close linger.
    public mutating func drainDecided(_ body: (TCPFlow, Session) -> Void) {
        guard !decided.isEmpty else { return }
        for (slot, id) in decided where occupied[Int(slot)] && slots[Int(slot)].id == id {
            body(slots[Int(slot)], sessions[Int(slot)])
        }
        decided.removeAll(keepingCapacity: true)
    }

    /// Calls `body` for every flow still held that has terminated (closed or reset, waiting
    /// out its linger): an interim report counts them as ended. The table is not changed.
    public func forEachTerminated(_ body: (TCPFlow, Session) -> Void) {
        for slot in slots.indices where occupied[slot] && slots[slot].closedAt != nil {
            body(slots[slot], sessions[slot])
        }
    }

    /// Flow tracking without a payload (tests and callers without a session).
    public mutating func apply(_ segment: TCPSegment, sender: Endpoint, receiver: Endpoint) {
        let empty: [UInt8] = []
        apply(segment, payload: empty.span.bytes, sender: sender, receiver: receiver)
    }

    /// Attaches an ICMP error to the flow of the packet it quotes, if that flow is held.
    /// - Returns: whether a flow was found.
    @discardableResult
    public mutating func attachICMPError(quotedSender: Endpoint, quotedReceiver: Endpoint, mark: ICMPMark) -> Bool {
        guard let id = index[FlowKey(quotedSender, quotedReceiver)] else { return false }
        let slot = Int(id.rawValue)
        var mark = mark
        mark.aboutDirection = slots[slot].originator == quotedSender ? .originator : .responder
        let first = slots[slot].firstICMPError == nil
        slots[slot].recordICMPError(mark)
        if options.noteDecisions && first { decided.append((Int32(slot), slots[slot].id)) }
        return true
    }

    /// Hands every flow that has left the table since the last call to `body`, in the order
    /// they left.
    public mutating func drainFinished(_ body: (TCPFlow, Session) -> Void) {
        guard !finished.isEmpty else { return }
        for (flow, session) in finished { body(flow, session) }
        // A sweep can end thousands of lingering flows at once (1.3 KB each): that list's
        // storage goes back instead of staying at its largest size for the rest of the run.
        finished.removeAll(keepingCapacity: finished.count <= 64)
    }

    /// Ends every flow still held (the capture is over), oldest first.
    public mutating func finishAll() {
        let remaining = index.sorted { slots[Int($0.value.rawValue)].id < slots[Int($1.value.rawValue)].id }
        for (key, id) in remaining { finish(slot: Int(id.rawValue), key: key, reason: .endOfCapture) }
    }

    /// Ends every flow still held, oldest first, handing each to `body` as it ends (after
    /// those that left before): no list of every flow is built, which doubled the peak memory
    /// of a capture ending with a million open flows.
    public mutating func finishAll(draining body: (TCPFlow, Session) -> Void) {
        drainFinished(body)
        var remaining = index.map { (id: slots[Int($0.value.rawValue)].id, slot: $0.value.rawValue) }
        remaining.sort { $0.id < $1.id }
        for entry in remaining {
            let slot = Int(entry.slot)
            finish(slot: slot, key: FlowKey(slots[slot].originator, slots[slot].responder), reason: .endOfCapture)
            drainFinished(body)
        }
        releaseStorage()
    }

    /// Gives back the slab and the index once every flow has left: emptied, they still held
    /// their largest size (about 1.4 KB per flow of the busiest moment) through the
    /// end-of-capture conclusions, the peak of a run's memory.
    private mutating func releaseStorage() {
        guard index.isEmpty else { return }
        slots.removeAll()
        sessions.removeAll()
        occupied = []
        freeList = []
        index = [:]
    }

    // MARK: - Internals

    /// Whether a SYN starts a new connection on a tuple that already has a flow.
    ///
    /// A SYN repeating the sender's initial sequence number is a retransmission. One with
    /// another sequence number than the sender's known base is a new connection (a new
    /// `connect()` from the same port), as Wireshark splits `tcp.stream`. When the sender's
    /// side was never seen, any SYN after the connection closed or reset is a new one
    /// (Zeek's `IsReuse`).
    private func isReuse(_ flow: TCPFlow, sender: Endpoint, segment: TCPSegment) -> Bool {
        let sequence = segment.header.sequenceNumber
        if flow.originator == sender, let initial = flow.initialSequence { return initial != sequence }
        let stats = flow.originator == sender ? flow.orig : flow.resp
        if stats.sequenceKnown { return stats.sequence.base != sequence }
        return flow.isTerminated
    }

    private mutating func insert(key: FlowKey, sender: Endpoint, receiver: Endpoint, segment: TCPSegment) -> Int {
        if index.count >= options.maximumFlows { evictLeastRecentlyActive() }
        let flow = TCPFlow(
            id: nextFlowID, sender: sender, receiver: receiver, flags: segment.header.flags, packet: segment.packet)
        nextFlowID += 1
        let slot: Int
        if let free = freeList.popLast() {
            slot = Int(free)
            slots[slot] = flow
            sessions[slot] = Session(configuration: configuration)
            occupied[slot] = true
        } else {
            slot = slots.count
            slots.append(flow)
            sessions.append(Session(configuration: configuration))
            occupied.append(true)
        }
        index[key] = FlowID(rawValue: Int32(slot))
        peakFlows = max(peakFlows, index.count)
        return slot
    }

    private mutating func finish(slot: Int, key: FlowKey, reason: FlowEnd) {
        var flow = slots[slot]
        flow.finish(reason)
        // When it left the table in capture time: for a flow still open at the end, the
        // capture's last packet, so a silence is measured to where the capture really ended.
        flow.endedAt = max(latestTime ?? flow.last.time, flow.last.time)
        var session = sessions[slot]
        sessions[slot] = Session()  // release the session's memory now
        session.end(flow, memory: &reassemblyMemory)
        finished.append((flow, session))
        index[key] = nil
        occupied[slot] = false
        freeList.append(Int32(slot))
    }

    /// Sweeps for idle and terminated flows about four times per linger period of capture
    /// time, so the cost is O(flows) per sweep rather than per packet.
    private mutating func sweepIfDue(now: Timestamp) {
        if latestTime.map({ now > $0 }) ?? true { latestTime = now }
        guard let lastSweep else {
            self.lastSweep = now
            return
        }
        let interval = max(min(options.closeLinger, options.idleTimeout) / 4, 1_000_000)
        guard now - lastSweep >= interval else { return }
        self.lastSweep = now
        sweep(now: now)
    }

    private mutating func sweep(now: Timestamp) {
        var expired: [(Int, FlowEnd)] = []
        for slot in slots.indices where occupied[slot] {
            let flow = slots[slot]
            if let closedAt = flow.closedAt, now - max(closedAt, flow.last.time) >= options.closeLinger {
                expired.append((slot, .closed))
            } else if now - flow.last.time >= options.idleTimeout {
                expired.append((slot, .idleTimeout))
            }
        }
        // Finish in first-packet order so output stays deterministic.
        expired.sort { slots[$0.0].id < slots[$1.0].id }
        for (slot, reason) in expired {
            finish(slot: slot, key: FlowKey(slots[slot].originator, slots[slot].responder), reason: reason)
        }
    }

    /// Evicts the least recently active eighth of the table (at least one flow), so that a
    /// full table pays for one scan per many insertions.
    private mutating func evictLeastRecentlyActive() {
        var candidates: [(time: Int64, slot: Int)] = []
        candidates.reserveCapacity(index.count)
        for slot in slots.indices where occupied[slot] { candidates.append((slots[slot].last.time.nanoseconds, slot)) }
        candidates.sort { $0.time != $1.time ? $0.time < $1.time : slots[$0.slot].id < slots[$1.slot].id }
        let count = max(1, candidates.count / 8)
        for candidate in candidates.prefix(count) {
            let flow = slots[candidate.slot]
            finish(slot: candidate.slot, key: FlowKey(flow.originator, flow.responder), reason: .evicted)
            evictedFlows += 1
        }
    }
}

extension FlowTable where Session.Configuration == Void {
    public init(options: FlowTableOptions = FlowTableOptions()) { self.init(options: options, configuration: ()) }
}
