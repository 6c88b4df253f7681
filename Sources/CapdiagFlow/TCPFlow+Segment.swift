import CapdiagWire

/// One TCP segment as the flow layer sees it.
public struct TCPSegment: Sendable {
    public var packet: PacketRef
    public var header: TCPHeader
    /// Payload length on the wire.
    public var payloadLength: Int
    /// Payload bytes captured (less when snaplen cut the packet).
    public var capturedPayloadLength: Int
    /// IP packet length (headers included).
    public var ipLength: Int
    /// IPv4 identification (0 for IPv6).
    public var ipIdentification: UInt16

    public init(
        packet: PacketRef, header: TCPHeader, payloadLength: Int, capturedPayloadLength: Int, ipLength: Int,
        ipIdentification: UInt16 = 0
    ) {
        self.packet = packet
        self.header = header
        self.payloadLength = payloadLength
        self.capturedPayloadLength = capturedPayloadLength
        self.ipLength = ipLength
        self.ipIdentification = ipIdentification
    }
}

/// What identifies one transmitted segment: a frame captured twice (`tcpdump -i any` seeing it
/// on a bridge port and the bridge, or on both sides of a router; mirror ports) repeats all of
/// it within microseconds, while a retransmission comes a retransmission timeout later and, in
/// IPv4, with a new identification.
struct SegmentSignature: Sendable, Equatable {
    var sequence: UInt32
    var acknowledgment: UInt32
    var flags: UInt8
    var window: UInt16
    var payload: Int
    var identification: UInt16
    var timestampValue: UInt32

    init(_ segment: TCPSegment) {
        sequence = segment.header.sequenceNumber
        acknowledgment = segment.header.acknowledgmentNumber
        flags = segment.header.flags.rawValue
        window = segment.header.window
        payload = segment.payloadLength
        identification = segment.ipIdentification
        timestampValue = segment.header.options.timestamp?.value ?? 0
    }
}

/// The longest time between two copies of one captured frame: copies are microseconds apart;
/// the shortest retransmission timer (a tail-loss probe) is 10 ms.
let duplicateFrameWindow: Int64 = 2_000_000

extension TCPFlow {
    /// Whether this segment is a second copy of the last one its sender sent (the same frame
    /// captured twice). Copies are counted and must not be analysed again: they are neither
    /// retransmissions nor new data.
    public mutating func isDuplicateFrame(_ segment: TCPSegment, from direction: Direction) -> Bool {
        let signature = SegmentSignature(segment)
        let time = segment.packet.time
        let isOrig = direction == .originator
        let previous = isOrig ? orig.lastSignature : resp.lastSignature
        let previousTime = isOrig ? orig.lastSignatureTime : resp.lastSignatureTime
        if previous == signature, time - previousTime >= 0, time - previousTime <= duplicateFrameWindow {
            // The raw counters (packets, bytes, flags seen) count every captured frame, as
            // tshark's conversation table does; nothing else sees the copy.
            let flags = segment.header.flags
            func count(_ stats: inout DirectionStats) {
                stats.duplicateFrames += 1
                stats.packets += 1
                stats.bytes += segment.ipLength
                if flags.contains(.syn) { stats.synCount += 1 }
                if flags.contains(.fin) { stats.finCount += 1 }
                if flags.contains(.rst) { stats.rstCount += 1 }
            }
            if isOrig { count(&orig) } else { count(&resp) }
            last = segment.packet
            return true
        }
        if isOrig {
            orig.lastSignature = signature
            orig.lastSignatureTime = time
        } else {
            resp.lastSignature = signature
            resp.lastSignatureTime = time
        }
        return false
    }
}

/// Zeek's `TOO_LARGE_SEQ_DELTA`: SYN or RST sequence jumps beyond this are not trusted.
private let tooLargeSequenceDelta: Int64 = 1_048_576
/// Wireshark's out-of-order window when the handshake RTT is unknown.
private let defaultReorderWindow: Int64 = 3_000_000

// History masks, as in Zeek's `TCP_Endpoint.h` (the responder's are shifted by 16).
private let historySYN: UInt32 = 0x1
private let historyFIN: UInt32 = 0x2
private let historyRST: UInt32 = 0x4
private let historyFINRST: UInt32 = 0x8
private let historyData: UInt32 = 0x10
private let historyACK: UInt32 = 0x20
private let historyMultiFlag: UInt32 = 0x40

extension TCPFlow {
    /// Applies one segment sent by `direction`.
    ///
    /// The order follows Zeek's `TCPSessionAdapter::Process`: initialise the sender's sequence
    /// space, update history and window, take the acknowledgment, advance the sequence space
    /// (spotting retransmissions), then run the endpoint state machine. On top of that it
    /// keeps Wireshark-style counters (retransmission vs out-of-order vs keep-alive, gaps).
    /// - Returns: the stream offset of the payload's first byte (0 is the byte after the SYN),
    ///   or nil when the sender's sequence numbers are not trusted (after it reset).
    @discardableResult
    mutating func apply(_ segment: TCPSegment, from direction: Direction) -> Int64? {
        let isOrig = direction == .originator
        let header = segment.header
        let flags = header.flags
        // The handshake ACK acknowledges the responder's byte 1 (an ACK before the responder
        // spoke seeds its space so that it does). Decided first: the reorder window below
        // uses the handshake RTT it completes.
        if isOrig && flags.contains(.ack) && !flags.contains(.syn) && handshakeAck == nil && synAck != nil
            && (resp.state == .inactive || resp.sequence.relative(header.acknowledgmentNumber) == 1)
        {
            handshakeAck = segment.packet
        }
        let reorderWindow = handshakeRTT
        // Both directions are updated in place (distinct stored properties of self): copying
        // them out and back per packet was the largest per-packet cost.
        let (relativeSequence, wasReset) =
            isOrig
            ? Self.process(
                segment, isOrig: true, sender: &orig, peer: &resp, history: &historyLog, anomalies: &anomalies,
                reorderWindow: reorderWindow)
            : Self.process(
                segment, isOrig: false, sender: &resp, peer: &orig, history: &historyLog, anomalies: &anomalies,
                reorderWindow: reorderWindow)

        recordHandshake(flags: flags, isOrig: isOrig, packet: segment.packet)
        if isOrig && flags.contains(.syn) && !flags.contains(.ack) && initialSequence == nil {
            initialSequence = header.sequenceNumber
        }
        last = segment.packet
        if closedAt == nil && Self.terminated(orig.state, resp.state) { closedAt = segment.packet.time }
        guard !wasReset && !flags.contains(.rst) else { return nil }
        return relativeSequence + (flags.contains(.syn) ? 1 : 0) - 1
    }

    /// The per-direction part of `apply`, in Zeek's order.
    /// - Returns: the segment's relative sequence number, and whether the sender had reset before it.
    private static func process(
        _ segment: TCPSegment, isOrig: Bool, sender: inout DirectionStats, peer: inout DirectionStats,
        history: inout FlowHistory, anomalies: inout FlowAnomalies, reorderWindow: Int64?
    ) -> (Int64, Bool) {
        let header = segment.header
        let flags = header.flags
        let payload = segment.payloadLength

        // RFC 9293 §3.4: SYN and FIN occupy one sequence number; a RST's data is not stream data.
        var segmentLength = payload + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
        if flags.contains(.rst) { segmentLength -= payload }

        initializeSequenceSpace(
            &sender, flags: flags, sequence: header.sequenceNumber, segmentLength: segmentLength, anomalies: &anomalies)
        let relativeSequence = sender.sequence.relative(header.sequenceNumber)
        updateHistory(
            &sender, flags: flags, relativeSequence: relativeSequence, payload: payload, isOrig: isOrig, history: &history,
            anomalies: &anomalies)

        if header.window == 0 && !flags.contains(.rst) && peer.state != .closed && sender.state != .reset {
            history.scaled(
                "W", originator: isOrig, count: &sender.zeroWindowHistoryCount,
                threshold: &sender.zeroWindowHistoryThreshold, &anomalies)
        }
        if header.window == 0 && flags.isDisjoint(with: [.syn, .fin, .rst]) { sender.zeroWindows += 1 }

        if flags.contains(.syn) {
            sender.synCount += 1
            let options = header.options
            sender.mss = options.mss
            sender.windowScale = options.windowScale
            sender.sackPermitted = options.sackPermitted
            sender.timestamps = options.timestamp != nil
        }
        if header.options.malformed { anomalies.insert(.tcpOptionsMalformed) }
        if flags.contains(.fin) {
            sender.finCount += 1
            if sender.firstFIN == nil {
                sender.firstFIN = ControlMark(packet: segment.packet, relativeSequence: relativeSequence + Int64(payload))
            }
        }
        if flags.contains(.rst) {
            sender.rstCount += 1
            if sender.firstRST == nil {
                sender.firstRST = ControlMark(
                    packet: segment.packet, relativeSequence: relativeSequence, withAck: flags.contains(.ack))
            }
            if payload > 0 { anomalies.insert(.rstWithData) }
        }
        if sender.state == .reset && payload > 0 && !flags.contains(.rst) { anomalies.insert(.dataAfterReset) }
        let wasReset = sender.state == .reset

        if flags.contains(.ack) { takeAcknowledgment(header.acknowledgmentNumber, flags: flags, into: &peer) }

        advanceSequence(
            &sender, flags: flags, relativeSequence: relativeSequence, segmentLength: segmentLength,
            payload: payload, rawEnd: header.sequenceNumber &+ UInt32(truncatingIfNeeded: segmentLength),
            time: segment.packet.time, frame: segment.packet.frame, isOrig: isOrig, history: &history, anomalies: &anomalies,
            reorderWindow: reorderWindow)

        updateStateMachine(&sender, &peer, flags: flags, payload: payload, isOrig: isOrig)

        sender.packets += 1
        sender.bytes += segment.ipLength
        sender.payloadBytes += payload
        if segment.capturedPayloadLength < payload { anomalies.insert(.snaplenTruncated) }
        return (relativeSequence, wasReset)
    }

    /// Zeek's `init_endpoint`: set the base of the sender's sequence space from its SYN, or
    /// one before its first byte when the SYN was not seen; re-base on a SYN that jumps.
    private static func initializeSequenceSpace(
        _ sender: inout DirectionStats, flags: TCPFlags, sequence: UInt32, segmentLength: Int, anomalies: inout FlowAnomalies
    ) {
        let isSYN = flags.contains(.syn)
        func rebase(_ base: UInt32, next: Int64) {
            sender.sequence = SequenceSpace(base: base)
            sender.sequenceKnown = true
            sender.nextSequence = next
            sender.holeCount = 0
        }
        switch sender.state {
        case .inactive:
            if isSYN {
                rebase(sequence, next: Int64(segmentLength))
            } else {
                rebase(sequence &- 1, next: 1)
            }
        case .synSent, .synAckSent:
            if isSYN && sequence != sender.sequence.base {
                anomalies.insert(.synSequenceJump)
                rebase(sequence, next: Int64(segmentLength))
            }
        case .established, .partial:
            if isSYN {
                if sender.size > 0 { anomalies.insert(.synInsideConnection) }
                if sequence != sender.sequence.base { anomalies.insert(.synSequenceJump) }
                rebase(sequence, next: Int64(segmentLength))
            }
        case .reset:
            if isSYN && sender.previousState == .inactive { rebase(sequence, next: Int64(segmentLength)) }
        case .closed:
            break
        }
    }

    /// Zeek's `update_history`.
    private static func updateHistory(
        _ sender: inout DirectionStats, flags: TCPFlags, relativeSequence: Int64, payload: Int, isOrig: Bool,
        history: inout FlowHistory, anomalies: inout FlowAnomalies
    ) {
        let controlBits = (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0) + (flags.contains(.rst) ? 1 : 0)
        if controlBits > 1 {
            if flags.contains(.fin) && flags.contains(.rst) {
                history.check(historyFINRST, "I", originator: isOrig, &anomalies)
            } else {
                history.check(historyMultiFlag, "Q", originator: isOrig, &anomalies)
            }
        } else if controlBits == 1 {
            if flags.contains(.syn) {
                let code: Character = flags.contains(.ack) ? "H" : "S"
                if history.check(historySYN, code, originator: isOrig, &anomalies) && relativeSequence != sender.lastSYNSequence {
                    history.add(FlowHistory.letter(code, originator: isOrig), &anomalies)
                }
                sender.lastSYNSequence = relativeSequence
            }
            if flags.contains(.fin) {
                // A FIN's sequence number is the one after its data.
                let finSequence = relativeSequence + Int64(payload)
                if history.check(historyFIN, "F", originator: isOrig, &anomalies) && finSequence != sender.lastFINSequence {
                    history.add(FlowHistory.letter("F", originator: isOrig), &anomalies)
                }
                sender.lastFINSequence = finSequence
            }
            if flags.contains(.rst) {
                if history.check(historyRST, "R", originator: isOrig, &anomalies) && relativeSequence != sender.lastRSTSequence {
                    history.add(FlowHistory.letter("R", originator: isOrig), &anomalies)
                }
                sender.lastRSTSequence = relativeSequence
            }
        } else if payload > 0 {
            history.check(historyData, "D", originator: isOrig, &anomalies)
        } else if flags.contains(.ack) {
            history.check(historyACK, "A", originator: isOrig, &anomalies)
        }
    }

    /// Zeek's `init_peer` / `update_ack_seq`: an ACK before the peer spoke seeds the peer's
    /// sequence space; later ones move its acknowledged edge (never from a RST).
    private static func takeAcknowledgment(_ ack: UInt32, flags: TCPFlags, into peer: inout DirectionStats) {
        if peer.state == .inactive {
            peer.sequence = SequenceSpace(base: ack &- 1)
            peer.sequenceKnown = true
            peer.nextSequence = 1
            peer.holeCount = 0
            return
        }
        guard !flags.contains(.rst) else { return }
        let relativeAck = peer.sequence.relative(ack)
        if !peer.sawAckFromPeer || relativeAck > peer.highestAckFromPeer {
            peer.highestAckFromPeer = relativeAck
            peer.sawAckFromPeer = true
        }
    }

    /// Zeek's `update_last_seq` plus hole tracking for gaps, out-of-order segments and
    /// retransmissions.
    private static func advanceSequence(
        _ sender: inout DirectionStats, flags: TCPFlags, relativeSequence: Int64, segmentLength: Int, payload: Int,
        rawEnd: UInt32, time: Timestamp, frame: Int, isOrig: Bool, history: inout FlowHistory,
        anomalies: inout FlowAnomalies, reorderWindow: Int64?
    ) {
        let end = relativeSequence + Int64(segmentLength)
        let delta = end - sender.nextSequence
        if (flags.contains(.syn) || flags.contains(.rst)) && abs(delta) > tooLargeSequenceDelta { return }
        if sender.state == .reset { return }
        if delta > 0 {
            if payload > 0 && !flags.contains(.rst) {
                // New payload (a FIN alone adds none): when this side last had something to say.
                let packet = PacketRef(frame: frame, time: time)
                if sender.firstPayload == nil { sender.firstPayload = packet }
                sender.lastNewPayload = packet
            }
            let dataStart = relativeSequence + (flags.contains(.syn) ? 1 : 0)
            if dataStart > sender.nextSequence && segmentLength > 0 {
                sender.gaps += 1
                openHole(&sender, Hole(start: sender.nextSequence, end: dataStart, openedAt: time), anomalies: &anomalies)
            }
            sender.nextSequence = end
            sender.sequence.advance(to: rawEnd)
            return
        }
        guard payload > 0 && !flags.contains(.rst) else { return }
        history.scaled(
            "T", originator: isOrig, count: &sender.retransmitHistoryCount,
            threshold: &sender.retransmitHistoryThreshold, &anomalies)
        if payload <= 1 && relativeSequence == sender.nextSequence - 1 && !flags.contains(.syn)
            && !flags.contains(.fin)
        {
            sender.keepAlives += 1
        } else if let openedAt = fillHoles(&sender, from: relativeSequence, to: relativeSequence + Int64(payload)) {
            let window = reorderWindow ?? defaultReorderWindow
            if time - openedAt <= max(window, defaultReorderWindow) {
                sender.outOfOrder += 1
            } else {
                sender.retransmissions += 1
                sender.retransmittedBytes += payload
            }
        } else {
            sender.retransmissions += 1
            sender.retransmittedBytes += payload
        }
    }

    private static func openHole(_ sender: inout DirectionStats, _ hole: Hole, anomalies: inout FlowAnomalies) {
        if sender.holeCount == 8 {
            // Fixed storage: the oldest hole is settled now as missing.
            anomalies.insert(.tooManyHoles)
            settle(sender.holes[0], in: &sender)
            for index in 1..<8 { sender.holes[index - 1] = sender.holes[index] }
            sender.holeCount = 7
        }
        sender.holes[sender.holeCount] = hole
        sender.holeCount += 1
    }

    /// Removes the covered range from every hole it overlaps.
    /// - Returns: when the first overlapped hole opened, or nil if none was overlapped.
    private static func fillHoles(_ sender: inout DirectionStats, from start: Int64, to end: Int64) -> Timestamp? {
        var openedAt: Timestamp?
        var index = 0
        while index < sender.holeCount {
            var hole = sender.holes[index]
            guard start < hole.end && end > hole.start else {
                index += 1
                continue
            }
            if openedAt == nil { openedAt = hole.openedAt }
            if start <= hole.start && end >= hole.end {
                for next in (index + 1)..<max(index + 1, sender.holeCount) { sender.holes[next - 1] = sender.holes[next] }
                sender.holeCount -= 1
                continue
            }
            if start > hole.start && end < hole.end {
                // The fill splits the hole in two; with no room, keep the larger part.
                let right = Hole(start: end, end: hole.end, openedAt: hole.openedAt)
                hole.end = start
                sender.holes[index] = hole
                if sender.holeCount < 8 {
                    sender.holes[sender.holeCount] = right
                    sender.holeCount += 1
                }
                index += 1
                continue
            }
            if start <= hole.start { hole.start = end } else { hole.end = start }
            sender.holes[index] = hole
            index += 1
        }
        return openedAt
    }

    /// Counts a hole as missing, and the part the peer acknowledged as lost by the capture.
    private static func settle(_ hole: Hole, in sender: inout DirectionStats) {
        sender.missingBytes += hole.end - hole.start
        if sender.sawAckFromPeer {
            sender.ackedUnseenBytes += max(0, min(hole.end, sender.highestAckFromPeer) - hole.start)
        }
    }

    /// Zeek's `UpdateStateMachine` for the endpoint states (events and weirds left out).
    private static func updateStateMachine(
        _ sender: inout DirectionStats, _ peer: inout DirectionStats, flags: TCPFlags, payload: Int, isOrig: Bool
    ) {
        let syn = flags.contains(.syn)
        let fin = flags.contains(.fin)
        let rst = flags.contains(.rst)
        let ack = flags.contains(.ack)
        switch sender.state {
        case .inactive:
            if syn {
                if isOrig {
                    sender.setState(ack ? .synAckSent : .synSent)
                } else {
                    if peer.state == .synSent { peer.setState(.established) }
                    sender.setState(.established)
                }
            }
            if fin { sender.setState(.closed) }
            if rst { sender.setState(.reset) }
            if sender.state == .inactive {
                if !isOrig && payload == 0 && peer.state == .synSent {
                    // An ACK to the SYN before the SYN-ACK: not a partial connection.
                } else if ack && peer.state == .established {
                    sender.setState(.established)
                } else {
                    sender.setState(.partial)
                }
            }
        case .synSent, .synAckSent:
            if fin { sender.setState(.closed) }
            if rst { sender.setState(.reset) }
        case .established, .partial:
            if syn && sender.state == .partial && peer.state == .inactive && !ack { sender.setState(.synSent) }
            if fin && !rst {
                sender.setState(.closed)
                // A FIN after the peer's FIN-then-RST: that was a normal termination.
                if peer.state == .reset && peer.previousState == .closed { peer.setState(.closed) }
            }
            if rst { sender.setState(.reset) }
        case .closed:
            if rst && peer.state != .closed { sender.setState(.reset) }
        case .reset:
            break
        }
    }

    private mutating func recordHandshake(flags: TCPFlags, isOrig: Bool, packet: PacketRef) {
        guard flags.contains(.syn) else { return }
        if isOrig && !flags.contains(.ack) {
            if syn == nil {
                syn = packet
            } else if synAck == nil {
                if synRetransmitCount < 8 { synRetransmits[synRetransmitCount] = packet }
                synRetransmitCount += 1
            }
        } else if !isOrig && flags.contains(.ack) && synAck == nil {
            synAck = packet
        }
    }

    /// Settles what is still unseen when the flow leaves the table: open holes, and bytes the
    /// peer acknowledged beyond the last one seen. Adds Zeek's content-gap letter `G`/`g`.
    mutating func finish(_ reason: FlowEnd) {
        end = reason
        for direction in [Direction.originator, .responder] {
            var stats = self[direction]
            for index in 0..<stats.holeCount { Self.settle(stats.holes[index], in: &stats) }
            stats.holeCount = 0
            if stats.sawAckFromPeer && stats.highestAckFromPeer > stats.nextSequence && stats.state != .inactive {
                let unseen = stats.highestAckFromPeer - stats.nextSequence
                stats.gaps += 1
                stats.missingBytes += unseen
                stats.ackedUnseenBytes += unseen
            }
            if stats.ackedUnseenBytes > 0 { addHistory(letter("G", originator: direction == .originator)) }
            self[direction] = stats
        }
    }

    /// Records an ICMP error that quoted a packet of this flow.
    mutating func recordICMPError(_ mark: ICMPMark) {
        icmpErrorCount += 1
        if firstICMPError == nil { firstICMPError = mark }
    }
}
