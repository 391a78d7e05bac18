"""mkpng.py - write small PNG files for the CLI tests without PIL.

usage: mkpng.py OUT.png W H CHANNELS PATTERN   (PATTERN: grad, zero, blob, ids, noiseN)
"""
import random
import struct
import sys
import zlib


def png(path, w, h, ch, pix):
    raw = b"".join(b"\x00" + bytes(pix[y * w * ch:(y + 1) * w * ch]) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ct = {1: 0, 3: 2, 4: 6}[ch]
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ct, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)


def main():
    out, w, h, ch, pat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    pix = []
    rnd = random.Random(hash(out) & 0xffff)
    for y in range(h):
        for x in range(w):
            for c in range(ch):
                if pat == "grad":
                    v = (x * 255 // max(w - 1, 1) + c * 40) % 256
                elif pat == "zero":
                    v = 0
                elif pat == "blob":   # a mask: 200 inside a square in the middle (not 255: binarise by max/2)
                    v = 200 if w // 4 <= x < w // 2 and h // 4 <= y < h // 2 else 3
                elif pat == "ids":    # a VisA-style mask: regions 1, 2, 3 (ids, not 255) on 0
                    v = 1 + x * 4 // w if y < h // 2 and x * 4 // w < 3 else 0
                else:
                    v = rnd.randrange(256)
                pix.append(v)
    png(out, w, h, ch, pix)


if __name__ == "__main__":
    main()
