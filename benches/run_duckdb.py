"""Run a DuckDB SQL script over a gtmos snapshot and print the seconds it took.

Usage: python3 benches/run_duckdb.py SCRIPT SNAPSHOT_DIR OUT_DIR
`${SNAPSHOT}` and `${OUT}` in the script are replaced by the two directories. Used by
`cargo bench --bench contracts` for the side-by-side comparison (pip install duckdb).
"""
import os
import sys
import time

import duckdb

script, snapshot, out = sys.argv[1:4]
os.makedirs(out, exist_ok=True)
sql = open(script).read().replace("${SNAPSHOT}", snapshot).replace("${OUT}", out)
statements = [s.strip() for s in sql.split(";\n") if s.strip() and not all(l.startswith("--") for l in s.strip().splitlines())]
con = duckdb.connect()
con.execute(f"SET temp_directory = '{out}/.tmp'")
start = time.perf_counter()
for s in statements:
    cur = con.execute(s)
    if s.lstrip().upper().startswith("SELECT"):
        cur.fetchall()
print(f"{time.perf_counter() - start:.3f}")
