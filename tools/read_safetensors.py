#!/usr/bin/env python3
"""Pure-Python safetensors reader (struct + json + numpy), used to check that metro's
checkpoints load outside C++.  Usage (Debian's numpy/torch: use /usr/bin/python3):
  read_safetensors.py FILE                 print metadata, then name dtype shape sum first-values
  read_safetensors.py FILE --torch         the same through torch.frombuffer
  read_safetensors.py --write-sample FILE  write a small file the way a Python writer would
                                           (json.dumps spacing, metadata last, no padding)"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read(path):
    """Returns ({name: numpy array}, {metadata key: value})."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_length])
    data = memoryview(blob)[8 + header_length:]
    metadata = header.pop("__metadata__", {})
    arrays = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        flat = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        arrays[name] = flat.reshape(info["shape"])
    return arrays, metadata


def to_torch(arrays):
    """The same tensors built by torch.frombuffer from the raw little-endian bytes."""
    import torch
    kinds = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "int32": torch.int32,
             "uint8": torch.uint8}
    out = {}
    for name, a in arrays.items():
        dtype = kinds[a.dtype.name]
        raw = bytearray(a.tobytes())
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(list(a.shape))
    return out


def write_sample(path):
    """weight: F32 (2, 3) = 0.5 * i - 1; steps: I64 (3,) = [-1, 0, 2**40]; mask: U8 (5,) = [0, 1, 2, 3, 255];
    scalar: F64 () = pi; empty: F32 (0, 4); metadata {"epoch": "7", "note": "caf\u00e9"}."""
    tensors = [("weight", "F32", [2, 3], struct.pack("<6f", *[0.5 * i - 1 for i in range(6)])),
               ("steps", "I64", [3], struct.pack("<3q", -1, 0, 2**40)),
               ("mask", "U8", [5], bytes([0, 1, 2, 3, 255])),
               ("scalar", "F64", [], struct.pack("<d", 3.141592653589793)),
               ("empty", "F32", [0, 4], b"")]
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = {"epoch": "7", "note": "caf\u00e9"}
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main(argv):
    if len(argv) == 3 and argv[1] == "--write-sample":
        return write_sample(argv[2])
    arrays, metadata = read(argv[1])
    if "--torch" in argv:
        arrays = {name: t.numpy() for name, t in to_torch(arrays).items()}
    print("metadata", json.dumps(metadata, sort_keys=True))
    for name in sorted(arrays):
        a = arrays[name]
        print(name, a.dtype, list(a.shape), repr(a.sum().item()), a.reshape(-1)[:4].tolist())


if __name__ == "__main__":
    main(sys.argv)
