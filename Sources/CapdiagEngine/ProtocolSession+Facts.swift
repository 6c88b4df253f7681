import CapdiagDiagnosis
import CapdiagFlow
import CapdiagProtocols

extension ProtocolSession {
    /// The facts the diagnosis rules read about this session's finished flow.
    public func facts(_ flow: TCPFlow) -> FlowFacts {
        var facts = FlowFacts(flow, http: state?.http, tls: state?.tls)
        if state?.http2 == true { facts.http2 = true }
        return facts
    }
}

extension FlowFacts {
    /// Facts of a flow that carried no analysed payload.
    public init(_ flow: TCPFlow) {
        self.init(flow, http: nil, tls: nil)
    }
}
