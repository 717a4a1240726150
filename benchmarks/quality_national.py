"""Benchmark of ``ecpa quality`` over a national-scale register with planted errors.

    python benchmarks/quality_national.py --households 1000000 --runs 3

The synthetic register (``ecpa synth --parquet``, seed 7, all 2,284 sampled counties, as
benchmarks/assess_national.py) is generated once into --data.  Errors are planted: for
every rule of the library, --plant households that break it (its ``bad`` patch) and as
many near misses (its ``good`` patch), with ids above the synthetic ones and spread over
synthetic villages; they are added to the layout as a second file per table (the
synthetic files are linked, not copied).  Each timed run is a fresh
``ecpa quality IN OUT --year 2024 --no-worklists`` process (every rule, findings.parquet
and the summary), timed from start to exit, its peak RSS read from the kernel; then the
planted errors are checked: each breaking household found by its rule, no near miss.
The per-village worklists (CSV) are written once more and timed on their own."""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

PLANT_BASE = 2_000_000_000


def ensure_register(data: Path, households: int) -> Path:
    folder = data / f"reg_{households}"
    if not (folder / "counties.parquet").exists():
        from ecpa.synth import stream_parquet
        t = time.perf_counter()
        stream_parquet(folder, households, seed=7, counties=2284 if households >= 1_000_000 else 200)
        print(f"generated {households:,} households in {time.perf_counter() - t:.0f} s", flush=True)
    return folder


def plant(register: Path, folder: Path, per_rule: int) -> dict[str, tuple[list[int], list[int]]]:
    """The planted layout in ``folder``; returns rule -> (breaking ids, near-miss ids)."""
    from ecpa.quality.engine import load_rules
    from ecpa.quality.examples import household_rows, write_layout

    rng = random.Random(7)
    villages = pq.read_table(register / "households.parquet", columns=["village_code"])
    villages = villages["village_code"].unique().to_pylist()
    rows, truth = [], {}
    hid = PLANT_BASE
    for rule in load_rules():
        bad, good = [], []
        for _ in range(per_rule):
            rows.append(household_rows(hid, rule.bad, village=rng.choice(villages)))
            bad.append(hid)
            rows.append(household_rows(hid + 1, rule.good, village=rng.choice(villages)))
            good.append(hid + 1)
            hid += 2
        truth[rule.code] = (bad, good)
    planted = folder / "_planted"
    write_layout(planted, rows)
    for name in ("households", "members", "incomes", "conditions"):
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        link = d / "part-0-synth.parquet"
        if not link.exists():
            link.symlink_to((register / f"{name}.parquet").resolve())
        os.replace(planted / f"{name}.parquet", d / "part-1-planted.parquet")
    planted.rmdir()
    return truth


def run_quality(folder: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "ecpa.cli", "quality", str(folder), str(out), "--year", "2024",
           *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def check_planted(findings: Path, truth: dict) -> dict:
    t = pq.read_table(findings, columns=["code", "household_id"],
                      filters=[("household_id", ">=", PLANT_BASE)])
    found = set(zip(t["code"].to_pylist(), t["household_id"].to_pylist()))
    missed = [(c, h) for c, (bad, _) in truth.items() for h in bad if (c, h) not in found]
    false = [(c, h) for c, (_, good) in truth.items() for h in good if (c, h) in found]
    return {"planted": sum(len(b) for b, _ in truth.values()), "missed": len(missed),
            "near_misses_flagged": len(false), "examples": (missed + false)[:5]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--households", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--plant", type=int, default=20, help="planted households per rule")
    p.add_argument("--memory-limit", default=None)
    p.add_argument("--worklists", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--data", type=Path, default=Path(os.environ.get("ECPA_BENCH_DATA", "/tmp/ecpa-bench")))
    args = p.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    register = ensure_register(args.data, args.households)
    folder = args.data / f"quality_{args.households}"
    truth = plant(register, folder, args.plant)
    out = args.data / f"quality_out_{args.households}"
    extra = ["--no-worklists"] + (["--memory-limit", args.memory_limit] if args.memory_limit else [])
    times, peaks = [], []
    for _ in range(args.runs):
        wall, peak = run_quality(folder, out, extra)
        times.append(wall)
        peaks.append(peak)
        print(f"  run: {wall:.1f} s, peak RSS {peak:,.0f} MiB", flush=True)
    check = check_planted(out / "findings.parquet", truth)
    summary = pq.read_table(out / "findings.parquet", columns=["code"])
    result = {
        "machine": f"{os.cpu_count()} cores", "households": args.households + 2 * sum(
            len(b) for b, _ in truth.values()),
        "rules": len(truth), "findings": summary.num_rows,
        "households_with_findings": len(pq.read_table(out / "findings.parquet", columns=["household_id"])
        ["household_id"].unique()),
        "runs_s": [round(t, 1) for t in times], "median_s": round(statistics.median(times), 1),
        "peak_rss_mib": round(max(peaks)), "planted_check": check,
    }
    if args.worklists:
        from ecpa.quality.engine import write_worklists
        t = time.perf_counter()
        lists = write_worklists(out / "findings.parquet", out, xlsx=False)
        result["worklists"] = {**lists, "seconds": round(time.perf_counter() - t, 1)}
    print(json.dumps(result, indent=2))
    if check["missed"] or check["near_misses_flagged"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
