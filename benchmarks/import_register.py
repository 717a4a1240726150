"""Benchmark: import of a large household register file (default 1,000,000 member rows).

    python benchmarks/import_register.py --rows 1000000 --runs 3 [--backend postgresql]

Each run imports the same synthetic file (made once by ``ecpa synth``, cached under
``bench-data/``) into a fresh database with ``ecpa registry import`` in a child process,
and records its wall time and peak resident memory.  The comparison is a bare load of the
same CSV into one SQLite table with Python's csv module and executemany (no checks, no
encryption, no model): the ratio says what ECPA's validation, protection and model cost
over just moving the bytes.  Prints a Markdown table row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def make_file(rows: int, seed: int) -> tuple[Path, Path]:
    """A register with about ``rows`` member rows, and its regions CSV."""
    DATA.mkdir(exist_ok=True)
    register = DATA / f"register-{rows}-{seed}.csv"
    regions = DATA / f"regions-{rows}-{seed}.csv"
    if register.exists() and regions.exists():
        return register, regions
    households = int(rows / 3.3) + 1  # mean household size of the synthetic county
    subprocess.run([sys.executable, "-m", "ecpa.cli", "synth", "--out", str(register),
                    "--regions-out", str(regions), "--households", str(households),
                    "--seed", str(seed)], check=True)
    return register, regions


def fresh_database(backend: str, workdir: Path, run: int) -> str:
    if backend == "sqlite":
        db = workdir / f"bench-{run}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        return f"sqlite:///{db}"
    from sqlalchemy import create_engine, text
    name = f"ecpa_bench_{run}"
    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def timed_child(cmd: list[str], env: dict) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in MiB, and exit code of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.stderr.write(proc.stderr.read().decode()[-3000:])
    return elapsed, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def bare_load(register: Path, workdir: Path) -> float:
    db = workdir / "bare.db"
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    con = sqlite3.connect(db)
    with register.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        cols = ", ".join(f"c{i}" for i in range(len(header)))
        con.execute(f"CREATE TABLE raw ({cols})")
        marks = ", ".join("?" for _ in header)
        con.executemany(f"INSERT INTO raw VALUES ({marks})", reader)
    con.commit()
    con.close()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()

    register, regions = make_file(args.rows, args.seed)
    with register.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        numbers = set()
        n_rows = 0
        for row in reader:
            numbers.add(row[0])
            n_rows += 1
    workdir = DATA / "work"
    workdir.mkdir(exist_ok=True)
    times, peaks = [], []
    for run in range(args.runs):
        url = fresh_database(args.backend, workdir, run)
        env = dict(os.environ, ECPA_DATABASE_URL=url, ECPA_SECRET_KEY="benchmark-secret-key",
                   ECPA_CONFIG=str(workdir / "none.toml"))
        subprocess.run([sys.executable, "-m", "ecpa.cli", "db", "upgrade"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "ecpa.cli", "regions", "load-official",
                        "--provinces", "62"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "ecpa.cli", "regions", "import", str(regions)],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        secs, peak, code = timed_child(
            [sys.executable, "-m", "ecpa.cli", "registry", "import", str(register)], env)
        if code != 0:
            raise SystemExit(f"import failed with exit code {code}")
        times.append(secs)
        peaks.append(peak)
        print(f"run {run + 1}: {secs:.1f} s, peak RSS {peak} MiB", flush=True)
    bare = [bare_load(register, workdir) for _ in range(args.runs)]
    med, bare_med = statistics.median(times), statistics.median(bare)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print()
    print("| backend | rows | households | runs | median import s | rows/s | peak RSS MiB (max) "
          "| bare CSV load s (median) | ratio | machine |")
    print(f"| {args.backend} | {n_rows:,} | {len(numbers):,} | {args.runs} "
          f"| {med:.1f} | {n_rows / med:,.0f} | {max(peaks)} | {bare_med:.1f} "
          f"| {med / bare_med:.1f}x | {machine} |")


if __name__ == "__main__":
    main()
