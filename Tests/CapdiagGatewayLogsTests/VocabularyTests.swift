import CapdiagGatewayLogs
import CapdiagTestSupport
import Foundation
import Testing

@Suite struct Vocabulary {
    /// A second cause a scenario's lines may show. listen-queue-full: the one connection the
    /// kernel completed into the never-drained queue carries its request and times out reading.
    static let otherCauses = ["listen-queue-full": "response_timeout"]

    /// Every scenario of the lab (Captures/lab/*.json, timestamps stripped): each error-level line
    /// nginx logged and each HAProxy termination state maps back to the scenario's expected cause.
    @Test func labLabelsMapBackToTheirCause() throws {
        var checkedLines = 0
        for label in try LabLabel.all() where !label.gateway.hasPrefix("tinyproxy") {
            let cause = verdictCode(forLabCause: label.expectedCause)
            var lines: [GatewayLogEntry] = []
            if label.gateway.hasPrefix("HAProxy") {
                // "fe be/srv TR/Tw/Tc/Tr/Ta ST B tsc …": the label dropped "client [date] ".
                for line in label.gatewayAccessLog {
                    let full = "10.77.1.2:40000 [25/Nov/2026:14:24:05.123] " + line
                    guard case .entry(let entry) = GatewayLogParser.parse(line: full) else {
                        Issue.record("\(label.scenario): not read: \(line)")
                        continue
                    }
                    lines.append(entry)
                }
            } else {
                // "[error] message": the label dropped the date, the PID and the context.
                for line in label.gatewayErrorLog {
                    var full = "2026/11/25 14:24:05 " + line
                    if let bracket = full.range(of: "] ") { full.replaceSubrange(bracket, with: "] 1#1: *1 ") }
                    guard case .entry(let entry) = GatewayLogParser.parse(line: full) else {
                        Issue.record("\(label.scenario): not read: \(line)")
                        continue
                    }
                    lines.append(entry)
                }
            }
            let failing = lines.filter { entry in
                if let level = entry.nginx?.level { return level == "error" || level == "crit" }
                return entry.haproxy?.terminationState != "----" || (entry.status ?? 0) >= 500
            }
            if cause == "healthy" {
                #expect(failing.isEmpty, "\(label.scenario): \(failing.map(\.gatewayWords))")
                continue
            }
            for entry in failing {
                checkedLines += 1
                let candidates = GatewayVocabulary.candidates(for: entry)
                #expect(!candidates.isEmpty, "\(label.scenario): \(entry.gatewayWords ?? "")")
                if let other = Self.otherCauses[label.scenario], candidates.contains(other) { continue }
                if cause == "upstream_application_error" {
                    #expect(candidates == ["upstream_application_error"], "\(label.scenario)")
                } else {
                    #expect(
                        candidates.contains(cause),
                        "\(label.scenario): \(entry.gatewayWords ?? "") → \(candidates), want \(cause)")
                }
            }
        }
        #expect(checkedLines >= 60)
    }

    /// The raw recordings: each failure's words map back to the expected cause.
    @Test(arguments: GatewayLogsLabel.names)
    func recordedFailuresMapBackToTheirCause(name: String) throws {
        let label = try GatewayLogsLabel.load(name)
        let cause = verdictCode(forLabCause: label.expectedCause)
        guard cause != "healthy", cause != "upstream_application_error" else { return }
        let gateway: GatewayKind = label.gateway.hasPrefix("HAProxy") ? .haproxy : .nginx
        #expect(!label.failures.isEmpty)
        var mapped = 0
        for failure in label.failures {
            let matches = failure.gatewayWords.flatMap { GatewayVocabulary.matches(gateway: gateway, words: $0) }
            #expect(!matches.isEmpty, "\(name) \(failure.target): \(failure.gatewayWords) unknown")
            // "no live upstreams": no packet for this request, nothing to map (earlier ones were refused).
            if matches.allSatisfy({ $0.verdictCodes.isEmpty }) { continue }
            #expect(
                matches.contains { $0.verdictCodes.contains(cause) },
                "\(name) \(failure.target): \(failure.gatewayWords)")
            mapped += 1
        }
        #expect(mapped > 0)
    }

    /// What the table claims was seen in the lab was seen: each named scenario's log has a line
    /// the phrase matches.
    @Test func labEvidenceIsInTheLab() throws {
        let labLabels = Dictionary(uniqueKeysWithValues: try LabLabel.all().map { ($0.scenario, $0) })
        for phrase in GatewayVocabulary.phrases {
            if phrase.evidence == .lab {
                #expect(!phrase.scenarios.isEmpty, "\(phrase.words)")
            } else {
                #expect(phrase.scenarios.isEmpty, "\(phrase.words) is not from the lab but names scenarios")
            }
            for scenario in phrase.scenarios {
                var words: [String] = []
                if let label = labLabels[scenario] {
                    if label.gateway.hasPrefix("HAProxy") {
                        words += label.gatewayAccessLog.compactMap {
                            $0.split(separator: " ").dropFirst(5).first.map(String.init)
                        }
                    } else {
                        words += label.gatewayErrorLog.map { String($0.drop { $0 != "]" }.dropFirst(2)) }
                    }
                }
                if GatewayLogsLabel.names.contains(scenario) {
                    let recorded = try GatewayLogsLabel.load(scenario)
                    words += recorded.failures.flatMap(\.gatewayWords)
                }
                // The HTTP/2 lab (Captures/lab/http2): the raw nginx lines, read by the parser.
                let http2Label = Locations.captures.appending(path: "lab/http2/\(scenario).json")
                if let data = try? Data(contentsOf: http2Label),
                    let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                {
                    for (number, line) in (object["gateway_log"] as? [String] ?? []).enumerated() {
                        if case .entry(let entry) = GatewayLogParser.parse(line: line, file: http2Label.path, lineNumber: number + 1),
                            let said = entry.gatewayWords
                        {
                            words.append(said)
                        }
                    }
                }
                #expect(!words.isEmpty, "no lab scenario \(scenario)")
                #expect(
                    words.contains { GatewayVocabulary.matches(gateway: phrase.gateway, words: $0).contains(phrase) },
                    "\(phrase.words): not logged in \(scenario)")
            }
        }
    }

    /// The codes are capdiag's: the verdict table of docs/json-schema.md or a cause code.
    @Test func codesAreCapdiagVerdictCodes() throws {
        let schema = try String(
            contentsOf: Locations.repositoryRoot.appending(path: "docs/json-schema.md"), encoding: .utf8)
        let causes = try String(
            contentsOf: Locations.repositoryRoot.appending(path: "Sources/CapdiagDiagnosis/Causes.swift"),
            encoding: .utf8)
        #expect(GatewayVocabulary.verdictCodes.count >= 15)
        for code in GatewayVocabulary.verdictCodes {
            #expect(schema.contains("`\(code)`") || causes.contains("\"\(code)\""), "\(code) is no capdiag code")
        }
        for required in [
            "connection_refused", "connection_timeout", "keepalive_race", "upstream_reset_after_request",
            "upstream_closed_before_response", "response_timeout", "invalid_response", "response_header_too_large",
            "tls_certificate_error", "destination_unavailable",
        ] {
            #expect(!GatewayVocabulary.phrases(for: required, gateway: .nginx).isEmpty, "nginx: \(required)")
            #expect(!GatewayVocabulary.phrases(for: required, gateway: .envoy).isEmpty, "envoy: \(required)")
        }
    }

    /// Each phrase's own words are recognised as that phrase (the table agrees with itself).
    @Test func phrasesMatchTheirOwnWords() {
        for phrase in GatewayVocabulary.phrases {
            #expect(
                GatewayVocabulary.matches(gateway: phrase.gateway, words: phrase.words).contains(phrase),
                "\(phrase.words)")
        }
    }

    @Test func reverseLookups() {
        #expect(
            GatewayVocabulary.matches(
                gateway: .nginx, words: "upstream sent too big header while reading response header from upstream"
            )
            .first?.verdictCodes == ["response_header_too_large"])
        // The specific TLS phrase comes before the generic one.
        let tls = GatewayVocabulary.matches(
            gateway: .nginx,
            words:
                "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream"
        )
        #expect(tls.first?.verdictCodes == ["protocol_mismatch"])
        #expect(tls.count == 2)
        #expect(
            GatewayVocabulary.matches(gateway: .nginx, words: "client 10.0.0.1 closed keepalive connection").isEmpty)
        #expect(GatewayVocabulary.matches(gateway: .haproxy, words: "sH--").first?.verdictCodes == ["response_timeout"])
        #expect(GatewayVocabulary.matches(gateway: .envoy, words: "UF,URX").map(\.words) == ["UF", "URX"])
        #expect(GatewayVocabulary.matches(gateway: .envoy, words: "UFURX").map(\.words) == ["UF", "URX"])
        #expect(GatewayVocabulary.phrases(for: "keepalive_race", gateway: .haproxy).map(\.words) == ["SH--"])
    }
}
