#!/usr/bin/python3
"""Writes small PNG seeds for fuzz_png into fuzz/corpus/fuzz_png/.

Run once by hand (Python's zlib and struct only); the outputs are committed. They are the kinds
write_png never makes, so the fuzzer starts inside each of read_png's conversions: palette with and
without tRNS, grey+alpha, 1-bit grey, RGB with a tRNS colour key, Adam7 interlacing, 16-bit (refused).
make_fuzz_seeds adds write_png's own grey, RGB and RGBA files at each run.
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_png")


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, height, depth, colour, scanlines, before_idat=b"", interlace=0):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + before_idat + chunk(b"IDAT", zlib.compress(scanlines, 9)) +
            chunk(b"IEND", b""))


def rows(*lines):
    return b"".join(b"\0" + bytes(line) for line in lines)


PLTE = chunk(b"PLTE", bytes([255, 0, 0, 0, 128, 0, 1, 2, 3, 200, 200, 200]))
SEEDS = {
    "palette.png": png(4, 2, 2, 3, rows([0b00011011], [0b11100100]), PLTE),
    "palette_trns.png": png(4, 2, 2, 3, rows([0b00011011], [0b11100100]), PLTE + chunk(b"tRNS", bytes([0, 100]))),
    "grey_alpha.png": png(3, 2, 8, 4, rows([10, 200, 77, 0, 5, 255], [1, 2, 3, 4, 5, 6])),
    "grey1.png": png(10, 2, 1, 0, rows([0b10100000, 0b01000000], [0xFF, 0xC0])),
    "rgb_trns.png": png(2, 2, 8, 2, rows([5, 6, 7, 5, 6, 8], [0, 0, 0, 5, 6, 7]), chunk(b"tRNS", bytes([0, 5, 0, 6, 0, 7]))),
    # Adam7 on 2x2 grey: pass 1 holds (0,0), pass 6 (1,0), pass 7 the second row.
    "interlaced.png": png(2, 2, 8, 0, rows([11], [22], [33, 44]), interlace=1),
    "rgba16.png": png(1, 1, 16, 6, rows([1, 2, 3, 4, 5, 6, 7, 8])),
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")
