#!/usr/bin/env python3
"""make-seeds.py - writes the seed corpora of the fuzz harnesses into
tests/fuzz/corpus/<harness>/ (committed; this script documents where each
seed comes from and regenerates them). Small on purpose: tiny images in every
mode the decoders handle, short streams, handmade TFLite models.

Needs numpy, Pillow, msgpack, msgpack-numpy (Debian: python3-numpy
python3-pil python3-msgpack python3-msgpack-numpy), zstd, and a built tree
for the stream seeds (GLAD_BUILD, default build/: glad-encode). Images from
../shared/datasets/mtd-mini are downscaled when it is present.
Run from the project root:  python3 tests/fuzz/make-seeds.py
"""
import glob
import io
import json
import os
import struct
import subprocess
import sys

import msgpack
import msgpack_numpy
import numpy as np
from PIL import Image

ROOT = "tests/fuzz/corpus"
BUILD = os.environ.get("GLAD_BUILD", "build")


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ images
def sample_pixels():
    """a 12x10 RGB picture: a downscaled MTD image when available, else a gradient"""
    files = sorted(glob.glob("../shared/datasets/mtd-mini/*/Imgs/*.png"))
    if files:
        im = Image.open(files[0]).convert("RGB").resize((12, 10), Image.BILINEAR)
        return np.asarray(im)
    y, x = np.mgrid[0:10, 0:12]
    return np.stack([x * 20, y * 25, (x + y) * 10], -1).astype(np.uint8)


def images():
    rgb = sample_pixels()
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    rgba = np.dstack([rgb, np.full(grey.shape, 200, np.uint8)])
    g16 = grey.astype(np.uint16) * 257

    def png(im, name, **kw):
        b = io.BytesIO()
        im.save(b, "PNG", **kw)
        put("image_png", name, b.getvalue())

    png(Image.fromarray(grey), "grey8.png")
    png(Image.fromarray(rgb), "rgb8.png")
    png(Image.fromarray(rgba), "rgba8.png")
    png(Image.fromarray(grey).convert("LA"), "grey-alpha.png")
    png(Image.fromarray(rgb).quantize(16), "palette.png")
    png(Image.fromarray(rgb).quantize(16), "palette-trns.png", transparency=3)
    png(Image.fromarray(grey).convert("1"), "bilevel.png")
    png(Image.fromarray(g16, "I;16"), "grey16.png")
    # by hand (Pillow writes neither): 16-bit RGB, and Adam7-interlaced 8-bit RGB
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

    def png_raw(ihdr, rows):
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(b"\0" + r for r in rows)))
                + chunk(b"IEND", b""))

    h, w = rgb.shape[:2]
    rgb16 = rgb.astype(">u2") * 257
    put("image_png", "rgb16.png", png_raw(struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0), [r.tobytes() for r in rgb16]))
    rows = []
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            rows += [r.tobytes() for r in sub]
    put("image_png", "rgb8-adam7.png", png_raw(struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1), rows))

    def jpeg(im, name, **kw):
        b = io.BytesIO()
        im.save(b, "JPEG", **kw)
        put("image_jpeg", name, b.getvalue())

    jpeg(Image.fromarray(rgb), "rgb.jpg", quality=80)
    jpeg(Image.fromarray(grey), "grey.jpg", quality=80)
    jpeg(Image.fromarray(rgb), "progressive.jpg", quality=60, progressive=True)
    jpeg(Image.fromarray(rgb), "subsample444.jpg", quality=90, subsampling=0)
    jpeg(Image.fromarray(rgb).convert("CMYK"), "cmyk.jpg", quality=70)

    def tiff(im, name, **kw):
        b = io.BytesIO()
        im.save(b, "TIFF", **kw)
        put("image_tiff", name, b.getvalue())

    tiff(Image.fromarray(grey), "grey8.tif")
    tiff(Image.fromarray(rgb), "rgb8.tif")
    tiff(Image.fromarray(rgba), "rgba8.tif")
    tiff(Image.fromarray(rgb), "rgb8-lzw.tif", compression="tiff_lzw")
    tiff(Image.fromarray(rgb), "rgb8-deflate.tif", compression="tiff_adobe_deflate")
    tiff(Image.fromarray(rgb), "rgb8-packbits.tif", compression="packbits")
    tiff(Image.fromarray(g16, "I;16"), "grey16.tif")
    tiff(Image.fromarray(grey.astype(np.float32) / 255.0, "F"), "float32.tif")
    tiff(Image.fromarray(grey).convert("1"), "bilevel.tif")
    # big-endian float: by hand, one strip
    h, w = grey.shape
    data = (grey.astype(">f4") / 255).tobytes()
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 32), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, len(data)), (339, 3, 1, 3)]
    ifd_off = 8 + len(data)
    ifd = struct.pack(">H", len(tags))
    for tag, typ, cnt, val in tags:
        ifd += struct.pack(">HHI", tag, typ, cnt) + (struct.pack(">HH", val, 0) if typ == 3 else struct.pack(">I", val))
    ifd += struct.pack(">I", 0)
    put("image_tiff", "float32-be.tif", b"MM\0*" + struct.pack(">I", ifd_off) + data + ifd)

    def bmp(im, name):
        b = io.BytesIO()
        im.save(b, "BMP")
        put("image_bmp", name, b.getvalue())

    bmp(Image.fromarray(rgb), "rgb24.bmp")
    bmp(Image.fromarray(rgb).quantize(16), "palette8.bmp")
    bmp(Image.fromarray(grey), "grey8.bmp")
    bmp(Image.fromarray(rgba), "rgba32.bmp")
    # top-down 24-bit: negate the height of the bottom-up file and flip its rows
    b = bytearray(open(os.path.join(ROOT, "image_bmp", "rgb24.bmp"), "rb").read())
    w, hgt = struct.unpack_from("<ii", b, 18)
    off = struct.unpack_from("<I", b, 10)[0]
    stride = (w * 24 + 31) // 32 * 4
    rows = [bytes(b[off + y * stride: off + (y + 1) * stride]) for y in range(hgt)]
    b[off:off + stride * hgt] = b"".join(reversed(rows))
    struct.pack_into("<i", b, 22, -hgt)
    put("image_bmp", "rgb24-topdown.bmp", bytes(b))


# ------------------------------------------------------------------ safetensors / json / config
def safetensors(tensors, meta=None):
    hdr, data = {}, b""
    for name, (dt, arr) in tensors.items():
        raw = arr.tobytes()
        hdr[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta is not None:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + data


UNET = {"img_size": 32, "base_channels": 32, "channel_mults": [1, 2], "num_res_blocks": 1,
        "attention_resolutions": "16", "n_heads": 4, "in_channels": 3, "dropout": 0.1}
VIT = {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 1, "mlp_ratio": 4, "pos_grid": 4,
       "layernorm_eps": 1e-6, "qkv_bias": True}
RESNET = {"block": "bottleneck", "layers": [1, 1, 1], "width_per_group": 128}


def st_json_config():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    put("safetensors", "all-dtypes.safetensors", safetensors({
        "f32": ("F32", a), "f16": ("F16", a.astype(np.float16)), "f64": ("F64", a.astype(np.float64)),
        "i64": ("I64", a.astype(np.int64)), "i32": ("I32", a.astype(np.int32)), "i16": ("I16", a.astype(np.int16)),
        "i8": ("I8", a.astype(np.int8)), "u8": ("U8", a.astype(np.uint8)), "u16": ("U16", a.astype(np.uint16)),
        "u32": ("U32", a.astype(np.uint32)), "bool": ("BOOL", (a > 2).astype(np.uint8)),
        "scalar": ("F32", np.float32(7).reshape(())), "empty": ("F32", np.zeros((0, 4), np.float32))},
        {"format": "pt", "note": "a \"quoted\" \u00e9 value"}))
    put("safetensors", "unet-config.safetensors",
        safetensors({"time_embedding.1.weight": ("F32", np.ones((4, 2), np.float32))}, {"config": json.dumps(UNET)}))
    put("safetensors", "empty.safetensors", safetensors({}))
    # a glad-bank file with a whole-image Gaussian (score/bank.h): the harness loads it as a bank too
    put("safetensors", "bank-global.safetensors", safetensors({
        "bank.12": ("F32", np.array([[0.6, 0.8], [1, 0]], np.float32)),
        "gauss.16.mean": ("F64", np.array([0.5, -1.0])), "gauss.16.prec": ("F64", np.array([[2.0, 0.5], [0.5, 1.0]])),
        "gauss.16.scale": ("F64", np.array([1.5]))}, {"glad_bank": "1", "layers": "12", "global": "16"}))
    # ... and a pooled bank of standardised images (metadata pool, standardize)
    put("safetensors", "bank-std.safetensors", safetensors({
        "bank.12": ("F32", np.array([[0.6, 0.8], [1, 0]], np.float32))},
        {"glad_bank": "1", "layers": "12", "pool": "3", "standardize": "1.2"}))
    # ... and a bank with radii (glad-bank --radius: radius.<layer> [M], metadata radius)
    put("safetensors", "bank-radius.safetensors", safetensors({
        "bank.12": ("F32", np.array([[0.6, 0.8], [1, 0], [0, 1]], np.float32)),
        "radius.12": ("F32", np.array([0.2, 0.1, 0.3], np.float32))},
        {"glad_bank": "1", "layers": "12", "radius": "0.25"}))
    for fx in ("metrics.case.safetensors", "glad-ddim.case.safetensors"):   # real headers, data cut
        p = os.path.join("tests/fixtures", fx)
        if os.path.exists(p):
            b = open(p, "rb").read()
            hl = struct.unpack_from("<Q", b)[0]
            put("safetensors", "header-only-" + fx, b[:8 + hl])

    put("json", "unet.json", json.dumps(UNET).encode())
    put("json", "basic.json", b'{"a":[1,2.5,-3e2,true,false,null,"x\\u00e9\\ud83d\\ude00"]}')
    put("json", "nested.json", b'{"a":{"b":[[[],{}],[1,-2.5e-3,1E+2]]},"s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00"}')
    put("json", "scalars.json", b' [true , false,null, 0, -0, 0.5, "x"] ')
    put("json", "string.json", b'"just a string"')
    put("json", "number.json", b"-12.5e+3")

    put("config", "unet.json", json.dumps(UNET).encode())
    put("config", "unet-array-attn.json", json.dumps(dict(UNET, attention_resolutions=[16, 8], channel_mults=[1, 1, 2, 2],
                                                            img_size=64)).encode())
    put("config", "vit.json", json.dumps(VIT).encode())
    put("config", "resnet.json", json.dumps(RESNET).encode())
    put("config", "resnet4.json", json.dumps(dict(RESNET, layers=[3, 4, 6, 3], width_per_group=64, groups=1)).encode())
    for fx in ("dino-vit.weights.safetensors", "wide-resnet.weights.safetensors"):   # the fixtures' own configs
        p = os.path.join("tests/fixtures", fx)
        if os.path.exists(p):
            b = open(p, "rb").read()
            hl = struct.unpack_from("<Q", b)[0]
            cfg = json.loads(b[8:8 + hl]).get("__metadata__", {}).get("config")
            if cfg:
                put("config", fx.split(".")[0] + ".json", cfg.encode())


# ------------------------------------------------------------------ streams
def streams():
    enc = os.path.join(BUILD, "glad-encode")
    if not os.path.exists(enc) or not os.path.isdir("../shared/datasets/mtd-mini"):
        sys.exit("make-seeds: stream seeds need %s and ../shared/datasets/mtd-mini" % enc)
    base = [enc, "--format", "mtd", "--size", "8", "--limit", "2", "--seed", "3", "../shared/datasets/mtd-mini"]
    plain = subprocess.run(base, check=True, stdout=subprocess.PIPE).stdout
    flt = subprocess.run(base[:-1] + ["--float", "--channels", "3", "--limit", "1", base[-1]], check=True,
                         stdout=subprocess.PIPE).stdout
    zst = subprocess.run(base[:-1] + ["--zstd", base[-1]], check=True, stdout=subprocess.PIPE).stdout
    # a header promising an end marker, records of every value kind, and the marker;
    # keys as bin and str, ndarrays of several dtypes, an unknown nested value kept raw
    hdr = {"glad": 1, "history": [{"tool": "seed", "version": "0", "args": ["-x"]}], "trailer": True}
    recs = [{"id": "a/test/good/000", "label": 0, "score": 0.25,
             "t": np.arange(6, dtype=np.float32).reshape(2, 3), "u16": np.arange(4, dtype=np.uint16),
             "b": np.array([True, False]), "nil": None, "flag": True, "neg": -7, "big": 2 ** 64 - 1,
             "raw": [1, "x", {"k": b"v"}]},
            {b"id": b"a/test/bad/001", "i8": np.array([[-1, 2]], dtype=np.int8), "f64": np.zeros((1, 1, 1))}]
    body = msgpack.packb(hdr) + b"".join(msgpack.packb(r, default=msgpack_numpy.encode) for r in recs)
    body += msgpack.packb({"glad_end": len(recs)})
    put("stream", "encode-u8.glad", plain)
    put("stream", "encode-f32.glad", flt)
    put("stream", "encode-u8.glad.zst", zst)
    put("stream", "kinds-trailer.glad", body)
    put("stream", "kinds-trailer.glad.zst", subprocess.run(["zstd", "-q", "-c"], input=body, check=True,
                                                           stdout=subprocess.PIPE).stdout)
    put("stream", "shards.glad", plain + plain)
    put("stream", "no-header.glad", msgpack.packb(recs[0], default=msgpack_numpy.encode))
    # stream_zstd compresses its input itself: byte 0 picks where the second frame starts
    put("stream_zstd", "encode-u8", bytes([len(plain) // 2 % 256]) + plain)
    put("stream_zstd", "kinds-trailer", b"\x00" + body)
    put("stream_zstd", "shards", bytes([1]) + plain + plain)


# ------------------------------------------------------------------ TFLite
class FB:
    """A FlatBuffer written front to back (as tests/test_tflite.c does): a
    parent before its children, so every offset points forward; each table's
    vtable sits just before it; fields get 4-byte slots (8 for 64-bit ones)."""

    def __init__(self):
        self.b = bytearray(8)
        self.b[4:8] = b"TFL3"

    def align(self, a=4):
        while len(self.b) % a:
            self.b.append(0)

    def table(self, sizes):
        """sizes: per field id, slot bytes (0 = absent); returns (pos, {id: slot pos})"""
        self.align()
        vt = len(self.b)
        offs, o = [], 4
        for sz in sizes:
            offs.append(o if sz else 0)
            o += sz
        self.b += struct.pack("<HH", 4 + 2 * len(sizes), o) + b"".join(struct.pack("<H", x) for x in offs)
        self.align()
        t = len(self.b)
        self.b += struct.pack("<i", t - vt) + bytes(o - 4)
        return t, {i: t + offs[i] for i in range(len(sizes)) if sizes[i]}

    def set(self, at, fmt, v):
        struct.pack_into("<" + fmt, self.b, at, v)

    def ref(self, at, target):
        struct.pack_into("<I", self.b, at, target - at)

    def vec(self, fmt, items, raw=None):
        self.align()
        v = len(self.b)
        data = raw if raw is not None else b"".join(struct.pack("<" + fmt, x) for x in items)
        n = len(items) if raw is None else len(raw) // struct.calcsize("<" + fmt)
        self.b += struct.pack("<I", n) + data
        return v

    def string(self, s):
        v = self.vec("B", [], raw=s.encode())
        self.b.append(0)
        return v


OPS = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4, "DEQUANTIZE": 6,
       "FULLY_CONNECTED": 9, "MAX_POOL_2D": 17, "RESHAPE": 22, "SOFTMAX": 25, "PAD": 34, "MEAN": 40,
       "QUANTIZE": 114}
TYPES = {"f32": (0, "f"), "f16": (1, "e"), "i32": (2, "i"), "u8": (3, "B"), "i64": (4, "q"), "bool": (6, "?"),
         "i16": (7, "h"), "i8": (9, "b")}
# BuiltinOptions: (union type, [(field slot kind, value)])  kinds: b byte, i int32, f float, v int vector
OPTS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 2, "AVERAGE_POOL_2D": 5, "FULLY_CONNECTED": 8, "SOFTMAX": 9, "ADD": 11,
        "RESHAPE": 17, "PAD": 22, "MEAN": 27, "DEQUANTIZE": 38, "MAX_POOL_2D": 5}


def tflite(tensors, ops, inputs, outputs, far_buffer=None, deprecated_only=False):
    """tensors: (name, type, shape, data list or None, quant (scales, zps, qdim) or None)
    ops: (op, [inputs], [outputs], [option fields as (kind, value)])"""
    f = FB()
    model, ms = f.table([4, 4, 4, 0, 4])
    f.ref(0, model)
    f.set(ms[0], "I", 3)
    codes = sorted({o[0] for o in ops}, key=lambda c: OPS[c])
    ocv = f.vec("I", [0] * len(codes))
    f.ref(ms[1], ocv)
    for i, c in enumerate(codes):
        t, s = f.table([4, 0, 4] + ([] if deprecated_only else [4]))
        f.ref(ocv + 4 + 4 * i, t)
        f.set(s[0], "B", min(OPS[c], 127))
        f.set(s[2], "I", 1)
        if not deprecated_only:
            f.set(s[3], "i", OPS[c])
    sgv = f.vec("I", [0])
    f.ref(ms[2], sgv)
    sg, ss = f.table([4, 4, 4, 4])
    f.ref(sgv + 4, sg)
    tv = f.vec("I", [0] * len(tensors))
    f.ref(ss[0], tv)
    consts = []
    for i, (name, typ, shape, data, quant) in enumerate(tensors):
        t, s = f.table([4, 4, 4, 4, 4 if quant else 0])
        f.ref(tv + 4 + 4 * i, t)
        f.ref(s[0], f.vec("i", shape))
        f.set(s[1], "B", TYPES[typ][0])
        if data is not None:
            consts.append((i, typ, data))
            f.set(s[2], "I", len(consts))
        f.ref(s[3], f.string(name))
        if quant:
            q, qs = f.table([0, 0, 4, 4, 0, 0, 4])
            f.ref(s[4], q)
            f.ref(qs[2], f.vec("f", quant[0]))
            f.ref(qs[3], f.vec("q", quant[1]))
            f.set(qs[6], "i", quant[2])
    f.ref(ss[1], f.vec("i", inputs))
    f.ref(ss[2], f.vec("i", outputs))
    ov = f.vec("I", [0] * len(ops))
    f.ref(ss[3], ov)
    for i, (op, ins, outs, opts) in enumerate(ops):
        t, s = f.table([4, 4, 4, 4, 4])
        f.ref(ov + 4 + 4 * i, t)
        f.set(s[0], "i", codes.index(op))
        f.ref(s[1], f.vec("i", ins))
        f.ref(s[2], f.vec("i", outs))
        f.set(s[3], "B", OPTS.get(op, 0))
        o, os_ = f.table([4] * len(opts))
        f.ref(s[4], o)
        for k, (kind, v) in enumerate(opts):
            if kind == "v":
                f.ref(os_[k], f.vec("i", v))
            else:
                f.set(os_[k], {"b": "B", "i": "i", "f": "f"}[kind], v)
    bv = f.vec("I", [0] * (len(consts) + 1))
    f.ref(ms[4], bv)
    bts = []
    for k in range(len(consts) + 1):
        far = k == far_buffer
        t, s = f.table([0, 8, 8] if far else [4])
        f.ref(bv + 4 + 4 * k, t)
        bts.append((t, s, far))
    tail = []
    for k, (i, typ, data) in enumerate(consts):
        t, s, far = bts[k + 1]
        raw = b"".join(struct.pack("<" + TYPES[typ][1], x) for x in data)
        if far:
            tail.append((s, raw))
        else:
            f.ref(s[0], f.vec("B", [], raw=raw))
    for s, raw in tail:   # data appended after the flatbuffer, located by offset / size
        f.align(16)
        f.set(s[1], "Q", len(f.b))
        f.set(s[2], "Q", len(raw))
        f.b += raw
    return bytes(f.b)


def tflite_seeds():
    w = [((i * 7) % 11) - 5 for i in range(54)]
    conv = [("input", "f32", [1, 5, 4, 2], None, None),
            ("conv/weights", "i8", [3, 3, 3, 2], w, ([0.5, 0.25, 0.125], [0, 0, 0], 0)),
            ("conv/bias", "i32", [3], [100, -50, 7], ([0.01, 0.02, 0.03], [0, 0, 0], 0)),
            ("output", "u8", [1, 3, 2, 3], None, ([0.1], [3], 0))]
    conv_op = [("CONV_2D", [0, 1, 2], [3], [("b", 0), ("i", 2), ("i", 2), ("b", 3)])]
    put("tflite", "conv.tflite", tflite(conv, conv_op, [0], [3]))
    put("tflite", "conv-deprecated-code.tflite", tflite(conv, conv_op, [0], [3], deprecated_only=True))
    put("tflite", "maxpool-unsupported.tflite",
        tflite(conv[:1] + [("out", "f32", [1, 2, 2, 2], None, None)],
               [("MAX_POOL_2D", [0], [1], [("b", 1), ("i", 2), ("i", 2), ("i", 2), ("i", 2), ("b", 0)])], [0], [1]))
    T = [("input", "f32", [1, 4, 4, 2], None, None),                                              # 0
         ("conv/w", "i8", [4, 3, 3, 2], [(i % 5) - 2 for i in range(72)], ([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], 0)),
         ("conv/b", "i32", [4], [1, 2, 3, 4], ([0.01, 0.01, 0.01, 0.01], [0, 0, 0, 0], 0)),
         ("conv/out", "f32", [1, 4, 4, 4], None, None),                                           # 3
         ("dw/w", "f16", [1, 3, 3, 4], [0.5] * 36, None),
         ("dw/b", "f32", [4], [0.0, 1.0, -1.0, 2.0], None),                                       # 5 (far buffer)
         ("dw/out", "f32", [1, 2, 2, 4], None, None),
         ("pad/p", "i32", [4, 2], [0, 0, 1, 1, 1, 1, 0, 0], None),
         ("pad/out", "f32", [1, 4, 4, 4], None, None),                                            # 8
         ("pool/out", "f32", [1, 2, 2, 4], None, None),
         ("add/out", "f32", [1, 2, 2, 4], None, None),                                            # 10
         ("mean/axes", "i64", [2], [1, 2], None),
         ("mean/out", "f32", [1, 1, 1, 4], None, None),                                           # 12
         ("reshape/shape", "i32", [2], [1, 4], None),
         ("reshape/out", "f32", [1, 4], None, None),                                              # 14
         ("fc/w", "u8", [3, 4], list(range(120, 132)), ([0.05], [128], 0)),
         ("fc/out", "f32", [1, 3], None, None),                                                   # 16
         ("softmax/out", "f32", [1, 3], None, None),
         ("quant/out", "u8", [1, 3], None, ([1 / 256], [0], 0)),                                  # 18
         ("dequant/out", "f32", [1, 3], None, None),
         ("spare/i16", "i16", [2], [-3, 4], ([0.5], [1], 0)),                                     # 20
         ("spare/bool", "bool", [2], [True, False], None),
         ("spare/unknown", "f32", [-1, 4], None, None)]
    ops = [("CONV_2D", [0, 1, 2], [3], [("b", 0), ("i", 1), ("i", 1), ("b", 3), ("i", 1), ("i", 1)]),
           ("DEPTHWISE_CONV_2D", [3, 4, 5], [6], [("b", 0), ("i", 2), ("i", 2), ("i", 1), ("b", 1), ("i", 1), ("i", 1)]),
           ("PAD", [6, 7], [8], []),
           ("AVERAGE_POOL_2D", [8], [9], [("b", 1), ("i", 2), ("i", 2), ("i", 2), ("i", 2), ("b", 0)]),
           ("ADD", [9, 9], [10], [("b", 1)]),
           ("MEAN", [10, 11], [12], [("b", 1)]),
           ("RESHAPE", [12, 13], [14], [("v", [1, 4])]),
           ("FULLY_CONNECTED", [14, 15, -1], [16], [("b", 0), ("b", 0)]),
           ("SOFTMAX", [16], [17], [("f", 1.0)]),
           ("QUANTIZE", [17], [18], []),
           ("DEQUANTIZE", [18], [19], [])]
    put("tflite", "all-ops.tflite", tflite(T, ops, [0], [19], far_buffer=4))   # dw/b after the flatbuffer


if __name__ == "__main__":
    images()
    st_json_config()
    tflite_seeds()
    streams()
    total = sum(os.path.getsize(p) for p in glob.glob(ROOT + "/*/*"))
    print("seeds: %d files, %d bytes" % (len(glob.glob(ROOT + "/*/*")), total))
