#!/usr/bin/env python3
"""Regenerates the malformed safetensors corpus in tests/data/bad/ (ckpt_*.safetensors)
and its manifest ckpt_expected.txt: file<TAB>substring of the expected FormatError message.
Plain standard library; run from anywhere: python3 tools/make_bad_checkpoints.py"""
import json
import os
import struct

BAD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "bad")


def checkpoint(header, data=b"", header_length=None):
    """u64 header length | JSON header | data; header_length overrides the true length."""
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    length = len(text) if header_length is None else header_length
    return struct.pack("<Q", length) + text + data


def f32_entry(shape, begin, end, dtype="F32"):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


FOUR_FLOATS = struct.pack("<4f", 1, 2, 3, 4)

# name -> (file bytes, expected message substring)
CASES = {
    "empty": (b"", "shorter than the 8-byte header length"),
    "four_bytes": (b"\x10\x00\x00\x00", "shorter than the 8-byte header length"),
    "header_length_lies": (checkpoint({"a": f32_entry([1], 0, 4)}, FOUR_FLOATS[:4], header_length=4096),
                           "is larger than the file"),
    "header_length_huge": (struct.pack("<Q", 2**63 + 5) + b"{}", "exceeds the 100 MB cap"),
    "header_not_json": (checkpoint(b"{this is not json}  "), "JSON: expected string key in object at offset 1"),
    "header_json_array": (checkpoint([1, 2, 3]), "header is not a JSON object"),
    "header_truncated_json": (checkpoint(b'{"a": {"dtype": "F32"'), "JSON: expected ',' or '}' in object"),
    "missing_offsets": (checkpoint({"a": {"dtype": "F32", "shape": [4]}}, FOUR_FLOATS), "has no data_offsets"),
    "missing_dtype": (checkpoint({"a": {"shape": [4], "data_offsets": [0, 16]}}, FOUR_FLOATS), "has no dtype"),
    "shape_not_array": (checkpoint({"a": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}}, FOUR_FLOATS),
                        "shape is not an array"),
    "offsets_not_integers": (checkpoint({"a": f32_entry([4], 0.0, 16.5)}, FOUR_FLOATS),
                             "data_offsets begin is not an integer"),
    "offsets_reversed": (checkpoint({"a": f32_entry([0], 16, 0)}, FOUR_FLOATS), "data_offsets begin > end"),
    "offsets_past_end": (checkpoint({"a": f32_entry([8], 0, 32)}, FOUR_FLOATS), "is past the data section"),
    "overlapping_tensors": (checkpoint({"a": f32_entry([4], 0, 16), "b": f32_entry([2], 8, 16)}, FOUR_FLOATS),
                            "overlaps another tensor"),
    "gap_between_tensors": (checkpoint({"a": f32_entry([1], 0, 4), "b": f32_entry([2], 8, 16)}, FOUR_FLOATS),
                            "gap of unused bytes"),
    "trailing_bytes": (checkpoint({"a": f32_entry([2], 0, 8)}, FOUR_FLOATS), "8 trailing bytes"),
    "unknown_dtype": (checkpoint({"a": f32_entry([8], 0, 16, dtype="BF16")}, FOUR_FLOATS),
                      'unsupported dtype "BF16"'),
    "length_shape_mismatch": (checkpoint({"a": f32_entry([3], 0, 16)}, FOUR_FLOATS),
                              "byte length 16 does not match shape and dtype (12 bytes)"),
    "negative_dim": (checkpoint({"a": f32_entry([-4], 0, 16)}, FOUR_FLOATS), "shape dimension is negative"),
    "huge_dims_overflow": (checkpoint({"a": f32_entry([2**31, 2**31, 2**31], 0, 16)}, FOUR_FLOATS),
                           "shape product overflows"),
    "dim_beyond_int64": (checkpoint({"a": f32_entry([2**64], 0, 16)}, FOUR_FLOATS),
                         "shape dimension is not an integer"),
    "metadata_non_string": (checkpoint({"__metadata__": {"epoch": 3}, "a": f32_entry([4], 0, 16)}, FOUR_FLOATS),
                            'value of "epoch" is not a string'),
    "metadata_not_object": (checkpoint({"__metadata__": ["x"], "a": f32_entry([4], 0, 16)}, FOUR_FLOATS),
                            "__metadata__ is not an object"),
    "duplicate_tensor_name": (checkpoint(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                         b'"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', FOUR_FLOATS),
                              'JSON: duplicate key "a"'),
    "deep_nesting": (checkpoint(b"[" * 1000 + b"]" * 1000), "JSON: nesting deeper than 64"),
}


def main():
    os.makedirs(BAD_DIR, exist_ok=True)
    manifest = []
    for name, (contents, expected) in sorted(CASES.items()):
        filename = f"ckpt_{name}.safetensors"
        with open(os.path.join(BAD_DIR, filename), "wb") as f:
            f.write(contents)
        manifest.append(f"{filename}\t{expected}\n")
    with open(os.path.join(BAD_DIR, "ckpt_expected.txt"), "w") as f:
        f.writelines(manifest)
    print(f"wrote {len(CASES)} files to {os.path.normpath(BAD_DIR)}")


if __name__ == "__main__":
    main()
