"""gladstream - read and write glad tensor streams from Python.

A stream is a concatenation of msgpack maps: a header {"glad": 1, "history":
[...]} then one map per record; tensors are msgpack-numpy ndarrays. This
module is the interop proof for formats/glad-stream.md: it needs only
msgpack and msgpack_numpy (Debian: python3-msgpack-numpy) and zstandard
only when reading or writing compressed streams.

    from gladstream import read, write
    header, records = read("test.msgpack")
    write("out.msgpack", header, records, tool="my-script", args=sys.argv[1:])
"""
import io
import sys

import msgpack
import msgpack_numpy

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _open(path):
    f = sys.stdin.buffer if path in (None, "-") else open(path, "rb")
    data = f.read()
    if data[:4] == ZSTD_MAGIC:
        import zstandard  # python3-zstandard
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def iter_stream(path):
    """Yield every map of the stream (header first), decoded."""
    unpacker = msgpack.Unpacker(io.BytesIO(_open(path)), object_hook=msgpack_numpy.decode,
                                raw=False, strict_map_key=False, max_buffer_size=0)
    yield from unpacker


def read(path):
    """Return (header, list of records). A stream without a header gets an empty one.
    When the header promises an end marker ("trailer": true), a stream that stops
    without {"glad_end": count} is truncated: ValueError."""
    header, records = {"glad": 1, "history": []}, []
    want, seen, since = False, False, 0
    for i, obj in enumerate(iter_stream(path)):
        if "glad" in obj:  # a header (the first, or a concatenated shard's)
            if want and not seen:
                raise ValueError("truncated shard: a header before the end marker")
            if i == 0:
                header = obj
            want, seen, since = bool(obj.get("trailer")), False, 0
            continue
        if "glad_end" in obj:
            if obj["glad_end"] != since:
                raise ValueError("end marker counts %d records, %d were read" % (obj["glad_end"], since))
            seen = True
            continue
        records.append(obj)
        since += 1
    if want and not seen:
        raise ValueError("truncated stream: no end marker")
    return header, records


def write(path, header, records, tool=None, version="py", args=()):
    """Write header (extended with this tool's invocation when tool is given) and records."""
    header = dict(header)
    if tool is not None:
        header["history"] = list(header.get("history", [])) + [
            {"tool": tool, "version": version, "args": list(args)}]
    f = sys.stdout.buffer if path in (None, "-") else open(path, "wb")
    f.write(msgpack.packb(header, use_bin_type=True))
    for r in records:
        f.write(msgpack.packb(r, default=msgpack_numpy.encode, use_bin_type=True))
    if header.get("trailer"):
        f.write(msgpack.packb({"glad_end": len(records)}, use_bin_type=True))
    if f is not sys.stdout.buffer:
        f.close()


if __name__ == "__main__":
    # gladstream.py IN OUT : round trip (used by tests/cli/interop.sh)
    h, recs = read(sys.argv[1])
    write(sys.argv[2], h, recs)
