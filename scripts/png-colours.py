#!/usr/bin/env python3
"""Where exact colours appear in a PNG screenshot (stdlib only: zlib and the PNG filters).

    python3 scripts/png-colours.py shot.png b00020 b9c7d6

prints one JSON object per colour: {"colour", "pixels", "top", "bottom", "left", "right"} (rows
and columns of the bounding box, absent when the colour does not appear). The report test uses it
to check that headless Chromium drew the timeline's bars and the ladders' arrows, not only that
the page loaded.
"""
import json
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    offset, idat, header = 8, bytearray(), None
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        raise SystemExit(f"{path}: only 8-bit RGB/RGBA, non-interlaced PNGs are read")
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        previous = line
    return width, height, channels, rows


def main():
    width, height, channels, rows = decode(sys.argv[1])
    wanted = {bytes.fromhex(colour): colour for colour in sys.argv[2:]}
    found = {colour: {"colour": colour, "pixels": 0} for colour in sys.argv[2:]}
    for y, line in enumerate(rows):
        for x in range(width):
            pixel = bytes(line[x * channels:x * channels + 3])
            colour = wanted.get(pixel)
            if colour is None:
                continue
            entry = found[colour]
            entry["pixels"] += 1
            entry["top"] = min(entry.get("top", y), y)
            entry["bottom"] = max(entry.get("bottom", y), y)
            entry["left"] = min(entry.get("left", x), x)
            entry["right"] = max(entry.get("right", x), x)
    for colour in sys.argv[2:]:
        print(json.dumps(found[colour]))


if __name__ == "__main__":
    main()
