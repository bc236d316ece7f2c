"""Time writing every table of a gtmos snapshot with pyarrow, using gtmos' Parquet settings.

Reads each table fully into memory first (not timed), then times pq.write_table; prints the
total seconds. Used by `cargo bench --bench synth` as the "merely write the same tables" baseline.
"""
import json
import pathlib
import sys
import tempfile
import time

import pyarrow.parquet as pq

snapshot = pathlib.Path(sys.argv[1])
manifest = json.loads((snapshot / "manifest.json").read_text())
total = 0.0
with tempfile.TemporaryDirectory() as scratch:
    for name, entry in sorted(manifest["tables"].items()):
        source = pq.ParquetFile(snapshot / entry["path"])
        # Same settings as gtmos: a dictionary only where gtmos used one.
        meta = source.metadata
        dictionary = [
            meta.schema.column(i).path
            for i in range(meta.num_columns)
            if meta.num_row_groups == 0
            or any("DICTIONARY" in e for e in meta.row_group(0).column(i).encodings)
        ]
        table = source.read()
        start = time.perf_counter()
        pq.write_table(
            table,
            pathlib.Path(scratch) / entry["path"],
            compression="zstd",
            compression_level=1,
            use_dictionary=dictionary,
            write_statistics=True,
            row_group_size=1 << 20,
            data_page_size=1 << 20,
            data_page_version="1.0",
        )
        total += time.perf_counter() - start
        del table
print(f"{total:.3f}")
