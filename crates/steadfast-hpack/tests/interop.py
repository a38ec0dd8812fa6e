#!/usr/bin/env python3
"""Interop peer for tests/python_interop.rs, using the `hpack` package (pip install hpack).

Reads one JSON document on stdin:
  {
    "decode": [            # sequences of blocks produced by our Rust Encoder, one hpack.Decoder per sequence
      {"blocks": [{"settings": [int], "hex": str,
                   "expected": [[name_hex, value_hex, never_indexed]],
                   "table": [[name_hex, value_hex]]}]}       # our encoder's dynamic table after the block
    ],
    "encode": [            # header sets for hpack.Encoder, one encoder per sequence
      {"blocks": [{"settings": [int], "huffman": bool, "headers": [[name_hex, value_hex, sensitive]]}]}
    ]
  }
and writes one JSON document on stdout:
  {"huffman": {"codes": [int], "lengths": [int]},
   "decoded_blocks": int, "decoded_fields": int, "errors": [str],
   "encoded": [[{"hex": str, "table": [[name_hex, value_hex]]}]]}
"""
import json
import sys

try:
    import hpack
    from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
except ImportError as exc:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(f"the Python 'hpack' package is missing ({exc}): pip install hpack\n")
    sys.exit(3)


def table_entries(table):
    """Dynamic table entries, newest first, hex-encoded (hpack keeps them in a deque, newest at the left)."""
    return [[n.hex(), v.hex()] for (n, v) in table.dynamic_entries]


def main():
    request = json.load(sys.stdin)
    errors = []
    decoded_blocks = 0
    decoded_fields = 0

    for seq_no, seq in enumerate(request["decode"]):
        decoder = hpack.Decoder(max_header_list_size=1 << 30)
        for block_no, block in enumerate(seq["blocks"]):
            where = f"decode seq {seq_no} block {block_no}"
            for size in block["settings"]:
                decoder.max_allowed_table_size = size
            try:
                headers = decoder.decode(bytes.fromhex(block["hex"]), raw=True)
            except Exception as exc:  # noqa: BLE001 - report any failure
                errors.append(f"{where}: hpack failed to decode: {exc!r}")
                break
            got = [[bytes(h[0]).hex(), bytes(h[1]).hex(), not h.indexable] for h in headers]
            if got != block["expected"]:
                errors.append(f"{where}: fields differ: got {got!r}, expected {block['expected']!r}")
            table = table_entries(decoder.header_table)
            if table != block["table"]:
                errors.append(f"{where}: dynamic table differs: got {table!r}, expected {block['table']!r}")
            decoded_blocks += 1
            decoded_fields += len(got)

    encoded = []
    for seq in request["encode"]:
        encoder = hpack.Encoder()
        out = []
        for block in seq["blocks"]:
            for size in block["settings"]:
                encoder.header_table_size = size
            headers = [(bytes.fromhex(n), bytes.fromhex(v), s) for (n, v, s) in block["headers"]]
            data = encoder.encode(headers, huffman=block["huffman"])
            out.append({"hex": data.hex(), "table": table_entries(encoder.header_table)})
        encoded.append(out)

    json.dump(
        {
            "huffman": {"codes": list(REQUEST_CODES), "lengths": list(REQUEST_CODES_LENGTH)},
            "decoded_blocks": decoded_blocks,
            "decoded_fields": decoded_fields,
            "errors": errors,
            "encoded": encoded,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
