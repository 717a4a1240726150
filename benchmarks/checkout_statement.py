"""What the checkout fast lane's one statement (market/fastlane.py ``RESERVE``) costs
PostgreSQL, without HTTP: on a database kept by ``checkout_http.py --keep``, C
connections run it in a loop for some seconds, each checkout 1–3 random SKUs of ample
stock shipped to the county town.

    python benchmarks/checkout_http.py --runs 1 --duration 5 --phases checkout --pgbench-duration 0 --keep
    python benchmarks/checkout_statement.py --connections 1 --plan-mode auto
    python benchmarks/checkout_statement.py --connections 1 --plan-mode force_custom_plan
    python benchmarks/checkout_statement.py --connections 8 --sample-waits

Prints statements a second and CPU a statement: with one connection the backend's own
CPU (from /proc), with several the machine's busy CPU less this process's (run it on an
otherwise idle machine).  ``--sample-waits`` counts what the active backends wait on
(``pg_stat_activity``) while it runs.  The rows it writes stay in the kept database."""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg

from ecpa.db import utcnow
from ecpa.market.fastlane import RESERVE

SKUS = """
SELECT k.id, k.price_fen, k.weight_g, k.product_id, p.seller_id, p.origin_code, s.poverty_linked
FROM market_sku k JOIN market_product p ON p.id = k.product_id
JOIN market_seller s ON s.id = p.seller_id
WHERE k.stock > 100000 ORDER BY k.id
"""


def params(rnd: random.Random, skus: list, buyer: str, n: int) -> dict:
    now = utcnow()
    lines = [{"sku_id": k[0], "qty": 1, "price": k[1], "off": 0, "product_id": k[3],
              "seller_id": k[4], "weight_g": k[2], "origin_code": k[5], "linked": k[6]}
             for k in sorted(rnd.sample(skus, rnd.randint(1, 3)))]
    return {"buyer": buyer, "checkout_key": f"stmt-{time.time_ns()}-{n}",
            "state": "pending_payment", "items_fen": 1, "discount_fen": 0,
            "delivery_fee_fen": 0, "total_fen": 1, "ship_to_code": "621221",
            "ship_to_address": "", "contact_name": "", "delivery_days": 3,
            "pickup_station_id": None, "campaign_id": None,
            "reserved_until": now + timedelta(minutes=15), "created_at": now,
            "lines": json.dumps(lines), "skus": [line["sku_id"] for line in lines]}


def busy_seconds() -> float:
    """The machine's busy CPU seconds less this process's own."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK") - (own.user + own.system)


def backend_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=ecpa_bench_checkout_0")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--plan-mode", default="auto",
                    choices=("auto", "force_generic_plan", "force_custom_plan"))
    ap.add_argument("--sample-waits", action="store_true")
    args = ap.parse_args()
    options = f"-c plan_cache_mode={args.plan_mode}"
    with psycopg.connect(args.dsn, autocommit=True) as c:
        skus = c.execute(SKUS).fetchall()
    counts = [0] * args.connections
    measuring, stop = threading.Event(), threading.Event()
    pids: list[int] = []

    def work(i: int) -> None:
        rnd = random.Random(i)
        with psycopg.connect(args.dsn, autocommit=True, options=options) as conn:
            pids.append(conn.info.backend_pid)
            n = 0
            while not stop.is_set():
                conn.execute(RESERVE, params(rnd, skus, f"stmt{i}", n), prepare=True).fetchall()
                n += 1
                if measuring.is_set():
                    counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(args.connections)]
    for t in threads:
        t.start()
    time.sleep(2)  # connected, statement prepared, plan settled
    single = args.connections == 1
    cpu0 = backend_seconds(pids[0]) if single else busy_seconds()
    measuring.set()
    t0 = time.perf_counter()
    waits: Counter = Counter()
    with psycopg.connect(args.dsn, autocommit=True) as watcher:
        while time.perf_counter() - t0 < args.seconds:
            if args.sample_waits:
                for state, kind, event in watcher.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE pid = ANY(%s)", (pids,)):
                    if state == "active":
                        waits[f"{kind}/{event}" if kind else "on CPU"] += 1
            time.sleep(0.03)
    elapsed = time.perf_counter() - t0
    cpu1 = backend_seconds(pids[0]) if single else busy_seconds()
    measuring.clear()
    stop.set()
    for t in threads:
        t.join()
    n = sum(counts)
    what = "backend CPU" if single else "CPU of the machine less this client"
    print(f"{args.connections} connection(s), plan_cache_mode={args.plan_mode}: "
          f"{n / elapsed:.0f} statements/s, {what} {1000 * (cpu1 - cpu0) / n:.3f} ms a statement")
    if waits:
        print("active backends sampled:", dict(waits.most_common()))


if __name__ == "__main__":
    main()
