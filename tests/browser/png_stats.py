#!/usr/bin/env python3
"""Prints "WIDTH HEIGHT COLOURS INKED" for an 8-bit RGB or RGBA PNG: its size,
the number of distinct colours and the fraction of pixels that are not
white. Standard library only (zlib), so the browser test needs no imaging
package. Used by check_page.sh to tell a rendered page from a blank one."""
import struct
import sys
import zlib


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def rows(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            if depth != 8 or colour not in (2, 6):
                sys.exit(f"{path}: only 8-bit RGB/RGBA PNGs are read (depth {depth}, colour type {colour})")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, prev = zlib.decompress(idat), width * bpp, bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            line[i] = (line[i] + (0, a, b, (a + b) // 2, paeth(a, b, c))[f]) & 0xFF
        yield width, height, bpp, line
        prev = line


def main():
    colours, inked, total, size = set(), 0, 0, (0, 0)
    for y, (w, h, bpp, line) in enumerate(rows(sys.argv[1])):
        size = (w, h)
        if y % 4:  # every fourth row is plenty and keeps this quick
            continue
        for x in range(0, w * bpp, bpp):
            px = bytes(line[x:x + 3])
            colours.add(px)
            inked += px != b"\xff\xff\xff"
            total += 1
    print(size[0], size[1], len(colours), f"{inked / max(total, 1):.3f}")


main()
