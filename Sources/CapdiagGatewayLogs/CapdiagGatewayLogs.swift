// CapdiagGatewayLogs: what the gateway itself wrote about a request, to set beside the packets.
//
// Contract:
// - `GatewayLogReader` reads one file (plain or gzip, detected from its first bytes) in bounded
//   memory: lines over `Limits.maxLineBytes` are skipped to their end and counted as bad; every
//   other line is parsed from bytes with bounds checks, in time linear in its length. A line gives
//   an entry, or is blank, ignored (a gateway's own notice) or bad (counted, a few kept as examples).
//   Nothing in a file can stop the reading except a damaged gzip stream, which ends it with
//   `GatewayLogFileStats.problem` set and keeps the lines before the damage.
// - The format is detected per line (`GatewayLogParser`), so one file may mix nginx error and access
//   lines, HAProxy and Envoy lines.
// - `GatewayLogEntry` is plain values: times as logged (`GatewayLogTime`: naive wall clock plus the
//   offset when the line gave one; nginx's error log and HAProxy's %tr give none), endpoints as
//   `CapdiagWire.IPAddress` plus port, every upstream try, the gateway's words.
// - `GatewayVocabulary` maps those words to capdiag's verdict codes and back.
// The module does not log and does not join entries to flows.
