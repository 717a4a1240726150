"""Benchmark of ``ecpa assess`` end to end (Parquet in -> results out), and of the same
Alkire-Foster figures computed by OPHI's toolbox ported to Python (``mpitb``).

    python benchmarks/assess_national.py --households 1000000 10000000 30000000 --runs 3
    python benchmarks/assess_national.py --mpitb-people 1000000 10000000 --runs 3

Synthetic registers are generated once into --data (``ecpa synth --parquet``).  Each
ECPA run is a fresh process (``ecpa assess``), timed from start to exit, its peak RSS
read from the kernel.  For mpitb the person-level table of deprivations is built
first (not timed) and only ``est()`` is timed; ECPA is timed end to end on the same
households, so the comparison favours mpitb.  Needs ``pip install -e '.[bench]'``."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PERSONS_PER_HOUSEHOLD = 3.3  # the synthetic calibration's mean household size


def ensure_register(data: Path, households: int) -> Path:
    folder = data / f"reg_{households}"
    if not (folder / "counties.parquet").exists():
        from ecpa.synth import stream_parquet
        t = time.perf_counter()
        stream_parquet(folder, households, seed=7, counties=2284 if households >= 1_000_000 else 200)
        print(f"generated {households:,} households in {time.perf_counter() - t:.0f} s", flush=True)
    return folder


def run_assess(folder: Path, out: Path, profile: str, extra: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``ecpa assess`` process (its CPU seconds
    and the load average of the machine are printed: on a shared machine the wall time
    depends on the others' load, the CPU time much less)."""
    cmd = [sys.executable, "-m", "ecpa.cli", "assess", str(folder), str(out), "--year", "2024",
           "--profile", profile, *extra]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage.ru_maxrss
    print(f"    CPU {usage.ru_utime + usage.ru_stime - cpu:.1f} s, load average after "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    # ru_maxrss of children is the largest child so far: runs go from small to large.
    return wall, max(peak, before) / 1024


def bench_ecpa(args) -> list[dict]:
    rows = []
    for n in args.households:
        folder = ensure_register(args.data, n)
        times, peaks = [], []
        for _ in range(args.runs):
            extra = ["--memory-limit", args.memory_limit] if args.memory_limit else []
            wall, peak = run_assess(folder, args.data / f"out_{n}", args.profile, extra)
            times.append(wall)
            peaks.append(peak)
            print(f"  {n:,} households: {wall:.1f} s, peak RSS {peak:,.0f} MiB", flush=True)
        rows.append({"households": n, "runs": times, "median_s": statistics.median(times),
                     "peak_rss_mib": max(peaks)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_mpitb(args) -> list[dict]:
    import pandas as pd
    from mpitb.core import MPIToolbox  # noqa: F401  (fails early without the bench extra)

    rows = []
    for people in args.mpitb_people:
        households = int(people / PERSONS_PER_HOUSEHOLD)
        folder = ensure_register(args.data, households)
        out = args.data / f"out_mpitb_{households}"
        ecpa_times = []
        for _ in range(args.runs):
            wall, _peak = run_assess(folder, out, "global_mpi", ["--k", "1/3"])
            ecpa_times.append(wall)
        hh = pd.read_parquet(out / "households.parquet")
        ind = [c for c in hh.columns if c.startswith("d_")]
        person = hh.loc[hh.index.repeat(hh["persons"].astype(int)),
                        ["household_id", "province_code"] + ind].reset_index(drop=True)
        person["weight"] = 1.0
        mpi_times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            res = run_mpitb(person, ind)
            mpi_times.append(time.perf_counter() - t)
        ours = pd.read_parquet(out / "mpi.parquet")
        ours = ours[(ours["level"] == "total") & ours["subgroup"].isna()].iloc[0]
        theirs = {m: float(res[(res["measure"] == m) & (res["loa"] == "nat")]["b"].iloc[0])
                  for m in ("H", "A", "M0")}
        core_times, core = ecpa_af_core(out, args.runs)
        row = {"people": len(person), "households": households,
               "ecpa_median_s": statistics.median(ecpa_times),
               "ecpa_af_core_median_s": statistics.median(core_times),
               "af_core_speedup": statistics.median(mpi_times) / statistics.median(core_times),
               "af_core_max_abs_diff_by_province": compare_provinces(core, res),
               "mpitb_est_median_s": statistics.median(mpi_times),
               "speedup": statistics.median(mpi_times) / statistics.median(ecpa_times),
               "ecpa": {m: float(ours[m]) for m in ("H", "A", "M0")}, "mpitb": theirs,
               "max_abs_diff": max(abs(float(ours[m]) - theirs[m]) for m in theirs)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        del person, hh
    return rows


def ecpa_af_core(out: Path, runs: int):
    """ECPA's Alkire-Foster step alone, from the same deprivations mpitb gets (the
    household results of the run above), for the same figures: national and by
    province, k = 1/3.  Households carry their persons as weights, which is exact since
    members share their household's deprivations."""
    from ecpa.measure.assess import af_table, rollup
    from ecpa.measure.config import load_config
    from ecpa.measure.engine import DuckDBBackend, aggregate_sql, make_plan
    cfg = load_config(None, year=2024, profile="global_mpi", k=["1/3"], levels=["province"],
                      subgroups={})
    plan = make_plan(cfg)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        backend = DuckDBBackend()
        backend.register_parquet("hh", out / "households.parquet")
        mpi = af_table(rollup(backend.arrow(aggregate_sql(plan, ["province"])), plan), plan)
        backend.close()
        times.append(time.perf_counter() - t)
    return times, mpi


def compare_provinces(ours, theirs) -> float:
    """Largest difference of H, A, M0 between ECPA and mpitb over all provinces."""
    worst = 0.0
    prov = ours[ours["level"] == "province"].set_index("code")
    for m in ("H", "A", "M0"):
        t = theirs[(theirs["measure"] == m) & (theirs["loa"] == "province_code")].set_index("subg")["b"]
        diff = (prov[m].astype(float) - t.reindex(prov.index).astype(float)).abs()
        worst = max(worst, float(diff.max(skipna=True)))
    return worst


def run_mpitb(person, indicators: list[str]):
    """The Global MPI with mpitb: 3 dimensions, equal weights, k = 33.3333 %.
    mpitb compares a float sum of weights with k and loses people whose score is exactly
    k (docs/measurement.md); k is passed a hair lower, as its users must."""
    import pandas as pd
    from mpitb.core import MPIToolbox
    dims = [
        ([c for c in indicators if c in ("d_nutrition", "d_child_mortality")], "hl"),
        ([c for c in indicators if c in ("d_years_of_schooling", "d_school_attendance")], "ed"),
        ([c for c in indicators if c in ("d_cooking_fuel", "d_sanitation", "d_drinking_water",
                                         "d_electricity", "d_housing", "d_assets")], "ls"),
    ]
    tb = MPIToolbox()
    tb.svyset(weight="weight")
    tb.set(name="gmpi", description="Global MPI", replace=True, dimensions=dims)
    tb.setwgts("gmpi", "gmpi_w", dimw=[1 / 3, 1 / 3, 1 / 3])
    res = tb.est(df=person.copy(), name="gmpi", klist=[100 / 3 - 1e-6], weights="gmpi_w",
                 svy=True, over=["province_code"], lframe="res", replace=True)
    return pd.DataFrame(res)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--households", type=int, nargs="*", default=[])
    p.add_argument("--mpitb-people", type=int, nargs="*", default=[])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--profile", default="china")
    p.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 6GB")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("ECPA_BENCH_DATA", "/tmp/ecpa-bench")))
    args = p.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    result = {"machine": f"{os.cpu_count()} cores", "ecpa": bench_ecpa(args)}
    if args.mpitb_people:
        result["mpitb"] = bench_mpitb(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
