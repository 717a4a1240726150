"""Benchmark: duplicate detection across a generated province of 1,000,000 households.

    python benchmarks/duplicates_province.py --households 1000000 --runs 3

Data go straight into PostgreSQL with COPY (not through Parquet): the de-identified
Parquet layout carries no names, ID or phone hashes, and detection must run where the
keyed hashes live, in the database, with the indexes the migration creates.  Gansu's
official counties get 12 townships of 18 villages each; households are drawn by
``ecpa.synth.draw`` (sizes, relations, sexes, birth dates), with names from the synthetic
county's name lists, valid and unique ID numbers (keyed-hashed and AES-GCM encrypted as
the registry stores them) and a household phone for 60 % (drawn at random, so a few
unrelated households share one by chance, as recycled numbers do).

Planted: ``--planted`` duplicates of each kind, each a new household paired with a known
original — (1) the same person (ID number) in a household of another village; (2) a
person of the same name and birth date, another ID number, in the same village; (3) a
household with the same phone.  Each run empties the queue and runs
``ecpa duplicates find --region 620000`` in a child process; recall over the planted
pairs must be 1.0; every other queued pair is counted as a false candidate.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date, datetime

import numpy as np

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PROVINCE = "620000"
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
CHECK = "10X98765432"


def fresh_database(name: str) -> str:
    from sqlalchemy import create_engine, text
    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def id_numbers(county: np.ndarray, birth: np.ndarray, seq: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Valid GB 11643 numbers, vectorised: region + birth date + sequence + check digit."""
    ymd = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "")
    seq3 = np.char.zfill((seq * 2 + male).astype("U3"), 3)
    body = np.char.add(np.char.add(county.astype("U6"), ymd), seq3).astype("U17")
    digits = body.view("U1").reshape(len(body), 17).astype(np.int64)
    check = np.array(list(CHECK))[(digits * WEIGHTS).sum(axis=1) % 11]
    return np.char.add(body, check)


def generate(n: int, planted: int, seed: int):
    """Households and members as numpy columns, and the planted pairs."""
    from ecpa.regions.codes import level_of_code
    from ecpa.regions.models import Level
    from ecpa.regions.service import official_divisions
    from ecpa.synth.county import GIVEN, SURNAMES
    from ecpa.synth.draw import draw

    rng = np.random.default_rng(seed)
    counties = np.array(sorted(r["code"] for r in official_divisions()
                               if r["code"].startswith("62") and level_of_code(r["code"]) is Level.COUNTY))
    villages = np.array([f"{c}{100 + t:03d}{v:03d}" for c in counties for t in range(12)
                         for v in range(1, 19)])
    base = n - 3 * planted
    parts = []
    for start in range(0, base, 200_000):
        k = min(200_000, base - start)
        d = draw(rng, k, 2024)
        parts.append((d.size, d.m_household + start, d.m_relation, d.m_male, d.m_birth))
    m_hh = np.concatenate([p[1] for p in parts])
    relation = np.concatenate([p[2] for p in parts]).astype(str)
    male = np.concatenate([p[3] for p in parts]).astype(bool)
    birth = np.concatenate([p[4] for p in parts])
    hh_village = villages[rng.integers(0, len(villages), base)]
    surname = np.array(list(SURNAMES))[rng.integers(0, len(SURNAMES), base)]
    given = np.array(list(GIVEN))
    g1, g2 = given[rng.integers(0, len(given), len(m_hh))], given[rng.integers(0, len(given), len(m_hh))]
    two = rng.random(len(m_hh)) < 0.7
    own = np.isin(relation, ["head", "child", "grandchild"])
    fam = np.where(own, surname[m_hh], np.array(list(SURNAMES))[rng.integers(0, len(SURNAMES), len(m_hh))])
    name = np.char.add(np.char.add(fam, g1), np.where(two, g2, ""))
    phone_has = rng.random(base) < 0.6
    phone = np.char.add(np.array(["138", "139", "150", "151", "158", "159", "183", "186", "187", "189"])[
        rng.integers(0, 10, base)], np.char.zfill(rng.integers(0, 10**8, base).astype(str), 8))

    # Planted households: ids base+1 ...; each one member (the head).
    p_src_member = rng.choice(np.flatnonzero(relation == "head"), planted, replace=False)
    p_name_member = rng.choice(len(m_hh), planted, replace=False)
    p_phone_hh = rng.choice(np.flatnonzero(phone_has), planted, replace=False)
    other_village = villages[rng.integers(0, len(villages), planted)]
    same = other_village == hh_village[m_hh[p_src_member]]
    other_village[same] = villages[(np.searchsorted(villages, other_village[same]) + 1) % len(villages)]
    new_hh_village = np.concatenate([other_village, hh_village[m_hh[p_name_member]],
                                     villages[rng.integers(0, len(villages), planted)]])
    p_birth_new = birth[p_name_member]
    p3_birth = np.datetime64("1970-01-01") + rng.integers(0, 15000, planted)
    all_birth = np.concatenate([birth, birth[p_src_member], p_birth_new, p3_birth])
    all_male = np.concatenate([male, male[p_src_member], male[p_name_member],
                               rng.random(planted) < 0.5])
    all_hh = np.concatenate([m_hh, np.arange(base, base + 3 * planted)])
    all_hh_village = np.concatenate([hh_village, new_hh_village])
    all_name = np.concatenate([name, name[p_src_member], name[p_name_member],
                               np.char.add(surname[:planted], "新")])
    all_relation = np.concatenate([relation, np.full(3 * planted, "head")])
    # Unique ID numbers: the sequence is the rank within (county, birth date, sex).
    county = all_hh_village[all_hh].astype("U6")
    order = np.lexsort((all_male, all_birth, county))
    key_change = np.ones(len(order), bool)
    key_change[1:] = ((county[order][1:] != county[order][:-1]) | (all_birth[order][1:] != all_birth[order][:-1])
                      | (all_male[order][1:] != all_male[order][:-1]))
    group_start = np.maximum.accumulate(np.where(key_change, np.arange(len(order)), 0))
    seq = np.empty(len(order), np.int64)
    seq[order] = np.arange(len(order)) - group_start
    assert seq.max() < 500
    ids = id_numbers(county, all_birth, seq, all_male.astype(int))
    m_base = len(m_hh)
    ids[m_base:m_base + planted] = ids[p_src_member]  # kind 1: the same person
    hh_phone = np.concatenate([np.where(phone_has, phone, ""), np.full(2 * planted, ""),
                               phone[p_phone_hh]])
    pairs = ([(int(m_hh[p_src_member[i]]) + 1, base + i + 1, 1) for i in range(planted)]
             + [(int(m_hh[p_name_member[i]]) + 1, base + planted + i + 1, 2) for i in range(planted)]
             + [(int(p_phone_hh[i]) + 1, base + 2 * planted + i + 1, 4) for i in range(planted)])
    return dict(village=all_hh_village, phone=hh_phone, m_hh=all_hh, name=all_name,
                relation=all_relation, male=all_male, birth=all_birth, ids=ids,
                villages=villages, counties=counties), pairs


def load(url: str, data: dict) -> None:
    """Regions, households and members by COPY, as the registry stores them."""
    from sqlalchemy import text

    from ecpa.db import session_scope, upgrade
    from ecpa.privacy import mask_id_number, mask_phone, protector
    from ecpa.regions.service import load_official

    upgrade(url)
    with session_scope(url) as s:
        load_official(s, {"62"})
    p = protector()
    now = datetime.now()
    with session_scope(url) as s:
        cur = s.connection().connection.driver_connection.cursor()
        with cur.copy("COPY region (code, name, level, parent_code, is_poor) FROM STDIN") as cp:
            for c in data["counties"]:
                for t in range(12):
                    cp.write_row([f"{c}{100 + t:03d}000", f"乡镇{t}", "township", c, False])
            for v in data["villages"]:
                cp.write_row([v, f"村{v[-3:]}", "village", v[:9] + "000", False])
        cols = ("id, number, village_code, address, phone_enc, phone_hash, phone_masked, "
                "created_at, updated_at")
        with cur.copy(f"COPY household ({cols}) FROM STDIN") as cp:
            for i, (v, ph) in enumerate(zip(data["village"], data["phone"], strict=True)):
                row = [i + 1, f"{v[:6]}{i + 1:010d}", v, "", None, None, None, now, now]
                if ph:
                    row[4:7] = [p.encrypt(ph, "phone"), p.lookup_hash(ph, "phone"), mask_phone(ph)]
                cp.write_row(row)
        cols = ("id, household_id, name, relation, sex, birth_date, id_number_enc, "
                "id_number_hash, id_number_masked, disability")
        with cur.copy(f"COPY member ({cols}) FROM STDIN") as cp:
            for i in range(len(data["m_hh"])):
                number = str(data["ids"][i])
                cp.write_row([i + 1, int(data["m_hh"][i]) + 1, str(data["name"][i]),
                              str(data["relation"][i]), "male" if data["male"][i] else "female",
                              data["birth"][i].item(), p.encrypt(number, "id_number"),
                              p.lookup_hash(number, "id_number"), mask_id_number(number), "none"])
        s.execute(text("SELECT setval('household_id_seq', (SELECT max(id) FROM household))"))
        s.execute(text("SELECT setval('member_id_seq', (SELECT max(id) FROM member))"))
    # A settled table (visibility map set), as autovacuum leaves it: index-only scans.
    from sqlalchemy import create_engine
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql("VACUUM ANALYZE")
    eng.dispose()


def run_once(url: str, env: dict) -> tuple[float, int, str]:
    from sqlalchemy import create_engine, text
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DELETE FROM duplicate_match"))
        c.execute(text("DELETE FROM duplicate_candidate"))
    eng.dispose()
    start = time.perf_counter()
    # The child reports its own peak (VmHWM, since exec): ru_maxrss would carry over the
    # size of this (large) process it was forked from.
    proc = subprocess.run([sys.executable, "-c", _CHILD, PROVINCE], env=env, capture_output=True,
                          check=False)
    elapsed = time.perf_counter() - start
    out = proc.stdout.decode() + proc.stderr.decode()
    if proc.returncode != 0:
        raise SystemExit(out[-3000:])
    hwm = int(out.rsplit("VmHWM", 1)[1].split()[0]) // 1024
    return elapsed, hwm, " ".join(out.rsplit("VmHWM", 1)[0].split())


_CHILD = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('VmHWM ' + next(line for line in open('/proc/self/status')"
    " if line.startswith('VmHWM')).split()[1] + '\\n'))\n"
    "from ecpa.cli import app\n"
    "sys.argv = ['ecpa', 'duplicates', 'find', '--region', sys.argv[1]]\n"
    "app()\n")


def check(url: str, pairs: list[tuple[int, int, int]]) -> dict:
    from sqlalchemy import create_engine, text
    eng = create_engine(url)
    with eng.connect() as c:
        queued = {(a, b): r for a, b, r in c.execute(text(
            "SELECT household_a_id, household_b_id, reasons FROM duplicate_candidate"))}
    eng.dispose()
    found = {}
    for a, b, kind in pairs:
        key = (min(a, b), max(a, b))
        found.setdefault(kind, 0)
        if key in queued and queued[key] & kind:
            found[kind] += 1
    planted = {(min(a, b), max(a, b)) for a, b, _ in pairs}
    false = [(k, r) for k, r in queued.items() if k not in planted]
    by_reason = {name: sum(1 for _, r in false if r & bit)
                 for bit, name in ((1, "id_number"), (2, "name_birth_village"), (4, "phone"))}
    return {"recall": sum(found.values()) / len(pairs), "found_by_kind": found,
            "queued": len(queued), "false_candidates": len(false), "false_by_reason": by_reason}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--planted", type=int, default=1000, help="duplicates of each kind")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--reuse", action="store_true", help="keep the loaded database")
    args = ap.parse_args()
    name = f"ecpa_bench_dup_{args.households}"
    env = dict(os.environ, ECPA_SECRET_KEY=os.environ.get("ECPA_SECRET_KEY", "bench-secret"),
               ECPA_CONFIG="/nonexistent.toml")
    os.environ.update(env)
    t0 = time.perf_counter()
    data, pairs = generate(args.households, args.planted, args.seed)
    t1 = time.perf_counter()
    if args.reuse:
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = fresh_database(name)
    env["ECPA_DATABASE_URL"] = os.environ["ECPA_DATABASE_URL"] = url
    from ecpa.config import reset_settings
    reset_settings()
    if not args.reuse:
        load(url, data)
    t2 = time.perf_counter()
    members = len(data["m_hh"])
    print(f"generated {args.households:,} households, {members:,} members in {t1 - t0:.1f} s; "
          f"loaded in {t2 - t1:.1f} s", flush=True)
    times, rss = [], []
    for i in range(args.runs):
        elapsed, mem, out = run_once(url, env)
        times.append(elapsed)
        rss.append(mem)
        print(f"run {i + 1}: {elapsed:.1f} s wall, client peak RSS {mem} MiB — {out}", flush=True)
    result = check(url, pairs)
    print(result)
    print(f"| PostgreSQL 15 | {args.households:,} | {members:,} | {3 * args.planted:,} | "
          f"{args.runs} ({', '.join(f'{t:.1f}' for t in times)} s) | {statistics.median(times):.1f} s | "
          f"{result['recall']:.3f} | {result['false_candidates']} | {max(rss)} MiB |")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {date.today()}")


if __name__ == "__main__":
    main()
