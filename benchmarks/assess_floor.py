"""What only reading a register costs, against which ``ecpa assess`` is measured.

    python benchmarks/assess_national.py --households 1000000 --runs 1   # makes the register
    python benchmarks/assess_floor.py --register /tmp/ecpa-bench/reg_1000000 --runs 3

For each input table (households, members, incomes, conditions) DuckDB reads every
column and hashes every value (``bit_xor(hash(col))``: min/max could be answered from the
Parquet statistics without reading, a hash cannot), and pyarrow decodes the whole table
into memory (``pyarrow.parquet.read_table``).  Prints the least CPU seconds of the runs
per table and in all, and what that would be for 30M households on two cores if it
grew with the households: the floor under any engine that reads this layout."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

TABLES = ("households", "members", "incomes", "conditions")


def cpu_and_wall(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), os.times()
    fn()
    c2 = os.times()
    return c2.user + c2.system - c.user - c.system, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--register", type=Path, required=True, help="a folder of ecpa synth --parquet")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    households = pq.ParquetFile(args.register / "households.parquet").metadata.num_rows
    con = duckdb.connect()
    out: dict = {"households": households, "tables": {}}
    for name in TABLES:
        path = args.register / f"{name}.parquet"
        meta = pq.ParquetFile(path)
        cols = meta.schema_arrow.names
        sql = ("SELECT " + ", ".join(f'bit_xor(hash("{c}"))' for c in cols)
               + f" FROM read_parquet('{path}')")
        duck = min(cpu_and_wall(lambda: con.execute(sql).fetchall()) for _ in range(args.runs))
        arrow = min(cpu_and_wall(lambda: pq.read_table(path)) for _ in range(args.runs))
        out["tables"][name] = {"rows": meta.metadata.num_rows, "columns": len(cols),
                               "duckdb_cpu_s": round(duck[0], 2), "duckdb_wall_s": round(duck[1], 2),
                               "pyarrow_cpu_s": round(arrow[0], 2), "pyarrow_wall_s": round(arrow[1], 2)}
    for engine in ("duckdb", "pyarrow"):
        cpu = sum(t[f"{engine}_cpu_s"] for t in out["tables"].values())
        at_30m = cpu * 30_000_000 / households
        out[engine] = {"cpu_s": round(cpu, 2), "cpu_s_at_30M": round(at_30m),
                       "wall_s_at_30M_on_2_cores": round(at_30m / 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
