/// Big-endian reads from borrowed packet bytes.
///
/// Callers check `byteCount` before reading; `unsafeLoadUnaligned` still bounds-checks each
/// load, so a missed check traps instead of reading foreign memory (a backstop, never the plan).
extension RawSpan {
    @inline(__always) func u8(_ offset: Int) -> UInt8 {
        unsafeLoadUnaligned(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always) func u16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) func u64(_ offset: Int) -> UInt64 {
        UInt64(bigEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always) func u32LittleEndian(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

/// Throws `truncated` unless `offset + needed` bytes are present.
@inline(__always)
func require(_ bytes: RawSpan, _ offset: Int, _ needed: Int, _ layer: Layer) throws(DecodeError) {
    let available = bytes.byteCount - offset
    guard available >= needed else {
        throw .truncated(layer: layer, needed: needed, available: max(available, 0))
    }
}
