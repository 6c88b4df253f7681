import CapdiagDiagnosis
import CapdiagFlow
import CapdiagProtocols

extension ProtocolSession {
    /// The facts the diagnosis rules read about this session's finished flow.
    public func facts(_ flow: TCPFlow) -> FlowFacts {
        var facts = FlowFacts(flow, http: state?.http, tls: state?.tls)
        if let h2 = state?.http2 {
            facts.http2 = true
            facts.h2 = h2
        }
        return facts
    }
}

extension FlowFacts {
    /// Facts of a flow that carried no analysed payload.
    public init(_ flow: TCPFlow) {
        self.init(flow, http: nil, tls: nil)
    }
}

extension ProtocolSession {
    /// The facts of a flow that something decided while it is still in the table (it just
    /// terminated, or an ICMP error came), as they will read when it leaves: the analysis is
    /// finished on a copy, so the session itself goes on untouched.
    public func decisionFacts(_ flow: TCPFlow) -> FlowFacts {
        var copy = self
        copy.state = state.map { ApplicationState($0.application) }
        var scratch = ReassemblyMemory(limit: Int.max)
        copy.end(flow, memory: &scratch)
        var facts = copy.facts(flow)
        if facts.end == nil { facts.end = .closed }
        return facts
    }
}
