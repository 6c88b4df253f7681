// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "capdiag",
    products: [
        .executable(name: "capdiag", targets: ["capdiag"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // libpcap, Debian package libpcap-dev. Only CapdiagCapture imports it.
        .systemLibrary(name: "CPcap", providers: [.apt(["libpcap-dev"])]),
        // Link, network and transport headers decoded from borrowed bytes. No dependencies.
        .target(name: "CapdiagWire"),
        // libpcap wrapper: offline files, BPF filters, merged reading of several files.
        .target(
            name: "CapdiagCapture",
            dependencies: ["CPcap", "CapdiagWire", .product(name: "Logging", package: "swift-log")]),
        // TCP connection tracking (Zeek endpoint states, conn_state, history) and the flow table.
        .target(name: "CapdiagFlow", dependencies: ["CapdiagWire"]),
        // Stream parsers for HTTP/1.x and TLS: push bytes, get events. Only Wire (for small types).
        .target(name: "CapdiagProtocols", dependencies: ["CapdiagWire"]),
        // Verdicts: rules over one flow's facts, scores, and the inference across flows.
        .target(name: "CapdiagDiagnosis", dependencies: ["CapdiagWire", "CapdiagFlow", "CapdiagProtocols"]),
        // zlib, Debian package zlib1g-dev. Only CapdiagGatewayLogs imports it (gzip-compressed logs).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Gateway logs (nginx, HAProxy, Envoy) read into plain entries; what each gateway logs per verdict.
        .target(name: "CapdiagGatewayLogs", dependencies: ["CZlib", "CapdiagWire"]),
        // Wires decoded packets into flows and counts what could not be decoded.
        .target(name: "CapdiagEngine", dependencies: ["CapdiagWire", "CapdiagFlow", "CapdiagProtocols", "CapdiagDiagnosis"]),
        // Gateway log lines joined to the flows they describe: clock placement, matches,
        // agreement between the log's words and the wire's verdict.
        .target(name: "CapdiagLogJoin", dependencies: ["CapdiagDiagnosis", "CapdiagFlow", "CapdiagGatewayLogs", "CapdiagWire"]),
        // Report model and its text / JSON renderings.
        .target(
            name: "CapdiagReport",
            dependencies: [
                "CapdiagEngine", "CapdiagDiagnosis", "CapdiagFlow", "CapdiagWire", "CapdiagProtocols", "CapdiagLogJoin", "CapdiagGatewayLogs",
            ]),
        // One analysis: inputs, options, the analyzer, diagnosis and conclusions, and the
        // outputs as sinks (text, JSON, JSON Lines, reports, flow exports). Above Capture and
        // Engine, so the command line and tests drive the same pipeline.
        .target(
            name: "CapdiagSession",
            dependencies: [
                "CapdiagCapture", "CapdiagEngine", "CapdiagReport", "CapdiagDiagnosis", "CapdiagFlow", "CapdiagProtocols",
                "CapdiagWire", "CapdiagLogJoin", "CapdiagGatewayLogs", .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "capdiag",
            dependencies: [
                "CapdiagSession", "CapdiagCapture", "CapdiagEngine", "CapdiagReport", "CapdiagDiagnosis", "CapdiagFlow",
                "CapdiagProtocols", "CapdiagWire", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CapdiagTestSupport",
            dependencies: ["CapdiagWire"],
            path: "Tests/CapdiagTestSupport"
        ),
        .testTarget(name: "CapdiagWireTests", dependencies: ["CapdiagWire", "CapdiagTestSupport"]),
        .testTarget(name: "CapdiagFlowTests", dependencies: ["CapdiagFlow", "CapdiagWire", "CapdiagTestSupport"]),
        .testTarget(name: "CapdiagProtocolsTests", dependencies: ["CapdiagProtocols", "CapdiagTestSupport"]),
        .testTarget(name: "CapdiagGatewayLogsTests", dependencies: ["CapdiagGatewayLogs", "CapdiagTestSupport"]),
        .testTarget(
            name: "CapdiagDiagnosisTests",
            dependencies: ["CapdiagDiagnosis", "CapdiagFlow", "CapdiagProtocols", "CapdiagWire", "CapdiagTestSupport"]),
        .testTarget(
            name: "CapdiagEndToEndTests",
            dependencies: [
                "CapdiagSession", "CapdiagCapture", "CapdiagEngine", "CapdiagReport", "CapdiagDiagnosis", "CapdiagFlow", "CapdiagProtocols",
                "CapdiagTestSupport",
            ],
            // Expected reports, read from the source tree by the golden tests.
            exclude: ["Golden"]
        ),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    // The packet path crosses modules through generics (FlowTable<Session>, StreamSink):
    // without cross-module optimization they run unspecialized, through witness tables.
    settings.append(.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)))
    target.swiftSettings = settings
}
