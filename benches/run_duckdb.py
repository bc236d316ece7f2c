"""Run a DuckDB SQL script and print the seconds it took.

Usage: python3 benches/run_duckdb.py SCRIPT OUT_DIR [NAME=VALUE ...] [--compare DIR TABLE ...]
`${OUT}` and every `${NAME}` in the script are replaced. With --compare, each TABLE written to
OUT_DIR/TABLE.parquet is compared row for row (EXCEPT ALL both ways) with DIR/TABLE.parquet,
and a line `TABLE rows differing: N` is printed per table. A statement whose first line is
`-- phase NAME` counts towards that phase: a line `phase NAME SECONDS` is printed per phase, in
order of first appearance. Used by `cargo bench` for the side-by-side comparisons
(pip install duckdb).
"""
import os
import sys
import time

import duckdb

args = sys.argv[1:]
compare = []
if "--compare" in args:
    at = args.index("--compare")
    compare, args = args[at + 1 :], args[:at]
script, out, subs = args[0], args[1], args[2:]
os.makedirs(out, exist_ok=True)
sql = open(script).read().replace("${OUT}", out)
for s in subs:
    name, value = s.split("=", 1)
    sql = sql.replace("${" + name + "}", value)
statements = [s.strip() for s in sql.split(";\n") if s.strip() and not all(l.startswith("--") for l in s.strip().splitlines())]
con = duckdb.connect()
con.execute(f"SET temp_directory = '{out}/.tmp'")
if os.environ.get("GTMOS_MEMORY_MB"):
    con.execute(f"SET memory_limit = '{int(os.environ['GTMOS_MEMORY_MB'])}MB'")
phases = {}
start = time.perf_counter()
for s in statements:
    first = s.splitlines()[0]
    phase = first[len("-- phase "):].strip() if first.startswith("-- phase ") else None
    t = time.perf_counter()
    cur = con.execute(s)
    if cur.description is not None:
        cur.fetchall()
    if phase:
        phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - t
print(f"{time.perf_counter() - start:.3f}")
for name, seconds in phases.items():
    print(f"phase {name} {seconds:.3f}")
if compare:
    ref, tables = compare[0], compare[1:]
    for t in tables:
        mine, theirs = f"'{out}/{t}.parquet'", f"'{ref}/{t}.parquet'"
        cols = ", ".join(r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {mine}").fetchall())
        n = sum(
            con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})").fetchone()[0]
            for a, b in [(mine, theirs), (theirs, mine)]
        )
        print(f"{t} rows differing: {n}")
