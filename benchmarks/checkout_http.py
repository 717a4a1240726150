"""Benchmark: marketplace checkouts through the HTTP API, many concurrent clients, PostgreSQL.

    python benchmarks/checkout_http.py --runs 3 [--clients 32] [--duration 30] [--workers 2]

Each run:

1. builds a fresh, migrated PostgreSQL database (not timed): the official regions of
   Gansu and a demo township with two villages in 成县; delivery zones for the county
   (``stations.service.set_zone``); 4 sellers (2 cooperatives with 3 linked poor
   households each, 2 poor households selling their own goods), 20 SKUs with ample
   stock and one "hot" SKU with little stock (``--hot-stock``); N buyer accounts, each
   with an API token issued before anything is timed (sign-in is Argon2: slow on
   purpose, and not what is measured here; one buyer signs in over HTTP as a check);
2. starts the API (``uvicorn --factory ecpa.api.app:create_app --workers W``) in a
   child process against that database.  ``ecpa.db`` gives each worker SQLAlchemy's
   default pool (5 + 10 overflow) and a request in flight may hold two connections (the
   sign-in check's session stays open while the route opens its own), so at 32 clients
   the default pool runs dry and requests fail after its 30 s timeout.  The benchmark
   therefore patches the pool to C + 4 connections a worker (``--pool-size``; 0 keeps
   the default) through ``bench_app`` below;
3. phase "checkout": C concurrent keep-alive connections loop ``POST
   /api/market/checkout`` with 1-3 random lines (a line of the hot SKU in
   ``--hot-share`` of them, until it is sold out: then those checkouts get 409) and a
   random buyer's token.  By default the load comes from wrk (``--client wrk``: a C
   client like pgbench, 2 threads, its Lua script in ``WRK_SCRIPT``), run once for
   ``--warmup`` seconds and again for ``--duration`` seconds, which is measured; with
   ``--client httpx`` from Python clients (httpx ``AsyncClient`` in ``--client-procs``
   processes), which cost the machine about 5 ms of CPU a checkout themselves;
4. phase "purchase": the same clients each loop a whole purchase: checkout, then
   ``POST /orders/{id}/payments`` and the test gateway's ``POST /test-gateway/{ref}/pay``
   (which applies the signed callback and posts the payment to the ledger);
5. checks that no SKU went negative, that every SKU's stock taken equals the quantity
   in orders, that the number of orders equals the 201s the clients saw, that the hot
   SKU sold exactly its stock, and that every captured payment's order is paid;
6. runs pgbench TPC-B on the same server (``pgbench -i -s 10`` into a database of its
   own, then ``pgbench -c C -j 2 -T 30``) as the yardstick, and prints checkout orders/s
   ÷ pgbench tps.

Before each measured phase, ours and pgbench's, the server is made to checkpoint and the
kernel to write its dirty pages (``settle``): otherwise the writes of the phase before
(pgbench's, the last run's) are flushed during the next one and its commits wait behind
them.  While each phase is measured, the CPU time of the client processes, the server
processes and PostgreSQL's processes is read from /proc, to show where the two cores go.
``--runs K`` repeats everything and reports medians; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_register import DATA, PG_ADMIN, fresh_database

COUNTY, TOWNSHIP = "621221", "621221100000"
VILLAGE_A, VILLAGE_B = "621221100001", "621221100002"
SHIP_TO = (VILLAGE_A, VILLAGE_B, TOWNSHIP, COUNTY)
PASSWORD = "bench-password-1"
PGBENCH_DB = "ecpa_bench_pgbench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the shop -------------------------------------------------------------------------

def build(url: str, buyers: int, skus: int, stock: int, hot_stock: int) -> dict:
    """Regions, zones, sellers, SKUs and buyers with tokens.  Returns what the clients need."""
    from datetime import date

    from sqlalchemy import create_engine, insert, select, text

    from ecpa.db import session_scope, upgrade
    from ecpa.market import catalog
    from ecpa.people.access import Actor, system_actor
    from ecpa.people.models import Role, User
    from ecpa.people.service import create_user, issue_token
    from ecpa.regions.service import import_regions_csv, load_official
    from ecpa.registry.models import (
        Household,
        Organisation,
        OrganisationKind,
        Status,
        StatusEvent,
    )
    from ecpa.stations.service import set_zone

    admin = system_actor("bench")
    officer = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
    upgrade(url)
    with session_scope(url) as s:
        load_official(s, {"62"})
        _, errors = import_regions_csv(s, admin, "\n".join([
            "code,name,parent_code,is_poor",
            f"{TOWNSHIP},城关镇,{COUNTY},no",
            f"{VILLAGE_A},东关村,{TOWNSHIP},yes",
            f"{VILLAGE_B},西关村,{TOWNSHIP},no"]))
        assert not errors, errors
        # Delivery: 8 yuan to the county town, 10 to a township, 12 to a village, plus 2
        # yuan a started kilogram above the first.
        for zone, fee in (("county_town", 800), ("township", 1_000), ("village", 1_200)):
            set_zone(s, officer, COUNTY, zone, fee_fen=fee, days=3, per_kg_fen=200)
        # Eight registered poor households: two sell their own goods, six are linked
        # to the two cooperatives (three each).
        s.execute(insert(Household), [{"number": f"6212211{i:05d}",
                                       "village_code": (VILLAGE_A, VILLAGE_B)[i % 2]}
                                      for i in range(8)])
        hh = s.scalars(select(Household.id).order_by(Household.id)).all()
        s.execute(insert(StatusEvent), [{"household_id": h, "status": Status.IDENTIFIED,
                                         "event_date": date(2016, 3, 1), "reason": "bench",
                                         "recorded_by": "bench"} for h in hh])
        sellers = []
        for i in range(2):
            org = Organisation(kind=OrganisationKind.COOPERATIVE, name=f"合作社{i}",
                               credit_code=f"93621221MA7K12345{i}", region_code=COUNTY)
            s.add(org)
            s.flush()
            seller = catalog.create_seller(s, officer, kind="cooperative", name=f"合作社{i}",
                                           region_code=COUNTY, organisation_id=org.id)
            for h in hh[2 + 3 * i: 5 + 3 * i]:
                catalog.link_household(s, officer, seller.id, h, "member")
            catalog.certify(s, officer, seller.id, "members from poor households")
            sellers.append(seller)
        for i in range(2):
            sellers.append(catalog.create_seller(s, officer, kind="household", name=f"农户{i}",
                                                 region_code=(VILLAGE_A, VILLAGE_B)[i],
                                                 household_id=hh[i]))
        sku_ids = []
        for i in range(skus + 1):
            seller = sellers[i % len(sellers)]
            product = catalog.add_product(s, officer, seller.id, name=f"土特产{i}",
                                          category="agricultural", origin_code=seller.region_code)
            sku = catalog.add_sku(s, officer, product.id, code=f"SKU-{i}", title=f"{i} 号",
                                  unit="bag", weight_g=500 + 250 * (i % 8),
                                  price_fen=1_000 + 137 * i, stock=hot_stock if i == skus else stock)
            sku_ids.append(sku.id)
        # Buyers: one Argon2 hash (create_user), the rest share it (a hash each would
        # only make the build slower); tokens issued directly.
        first = create_user(s, admin, "buyer0", PASSWORD, Role.CONSUMER)
        s.execute(insert(User), [{"username": f"buyer{i}", "display_name": f"buyer{i}",
                                  "password_hash": first.password_hash, "role": Role.CONSUMER}
                                 for i in range(1, buyers)])
        users = s.scalars(select(User).where(User.username.like("buyer%")).order_by(User.id)).all()
        tokens = [issue_token(s, u) for u in users]
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("VACUUM ANALYZE"))
    eng.dispose()
    return {"regular": sku_ids[:-1], "hot": sku_ids[-1], "hot_code": f"SKU-{skus}", "tokens": tokens}


def stock_of(url: str) -> dict[int, int]:
    from sqlalchemy import create_engine, text
    eng = create_engine(url)
    with eng.connect() as c:
        out = dict(c.execute(text("SELECT id, stock FROM market_sku")).all())
    eng.dispose()
    return out


def check(url: str, initial: dict[int, int], hot: int, hot_stock: int, created: int,
          captured: int, unanswered: int = 0) -> dict:
    """No oversell: the database's stock and orders agree with each other and with what
    the clients were told.  ``unanswered``: requests a client may have left in flight
    when it stopped (wrk closes its connections at the deadline), whose orders exist but
    whose 201 nobody read."""
    from sqlalchemy import create_engine, text
    eng = create_engine(url)
    with eng.connect() as c:
        stock = dict(c.execute(text("SELECT id, stock FROM market_sku")).all())
        taken = dict(c.execute(text(
            "SELECT l.sku_id, sum(l.quantity) FROM market_order_line l "
            "JOIN market_order o ON o.id = l.order_id "
            "WHERE o.state NOT IN ('cancelled', 'expired') GROUP BY l.sku_id")).all())
        orders = c.scalar(text("SELECT count(*) FROM market_order"))
        states = dict(c.execute(text("SELECT state, count(*) FROM market_order GROUP BY state")).all())
        payments = c.scalar(text("SELECT count(*) FROM market_payment WHERE state = 'captured'"))
        unpaid_captures = c.scalar(text(
            "SELECT count(*) FROM market_payment p JOIN market_order o ON o.id = p.order_id "
            "WHERE p.state = 'captured' AND o.state <> 'paid'"))
    eng.dispose()
    negative = {k: v for k, v in stock.items() if v < 0}
    mismatched = {k: (initial[k] - stock[k], int(taken.get(k, 0))) for k in stock
                  if initial[k] - stock[k] != int(taken.get(k, 0))}
    result = {"orders": orders, "orders_by_state": {str(k): v for k, v in states.items()},
              "created_seen_by_clients": created, "negative_skus": len(negative),
              "skus_where_taken_differs_from_ordered": len(mismatched),
              "hot_sku_stock": hot_stock, "hot_sku_sold": int(taken.get(hot, 0)),
              "hot_sku_left": stock[hot], "payments_captured": payments,
              "captures_seen_by_clients": captured, "captured_but_not_paid": unpaid_captures}
    result["hot_sku_sold_out"] = stock[hot] == 0
    # Consistent whether or not the hot SKU sold out; the run also reports whether it did
    # (it must, for "sold exactly its stock" to have been tested under contention).
    result["unanswered_allowed"] = unanswered
    result["ok"] = (not negative and not mismatched and created <= orders <= created + unanswered
                    and int(taken.get(hot, 0)) + stock[hot] == hot_stock
                    and payments == captured and unpaid_captures == 0)
    return result


# --- the server -----------------------------------------------------------------------

def bench_app():
    """The app with the benchmark's overrides (``--pool-size``, ``--threads``), used only
    when one is given: the SQLAlchemy pool of ``ecpa.db`` is not configurable."""
    import functools

    import sqlalchemy

    import ecpa.db
    pool = os.environ.get("BENCH_POOL_SIZE")
    if pool:
        ecpa.db.create_engine = functools.partial(sqlalchemy.create_engine, pool_size=int(pool),
                                                  max_overflow=int(os.environ.get("BENCH_MAX_OVERFLOW", "0")),
                                                  pool_timeout=60)
    if os.environ.get("BENCH_NO_PRE_PING"):
        real = ecpa.db.create_engine

        def create_engine(url, **kw):
            kw.pop("pool_pre_ping", None)
            return real(url, **kw)
        ecpa.db.create_engine = create_engine
    from ecpa.api.app import create_app
    app = create_app()
    threads = os.environ.get("BENCH_THREADS")
    if not threads:
        return app

    class Limited:
        def __init__(self, inner):
            self.inner, self.set = inner, False

        async def __call__(self, scope, receive, send):
            if not self.set:
                import anyio.to_thread
                anyio.to_thread.current_default_thread_limiter().total_tokens = int(threads)
                self.set = True
            await self.inner(scope, receive, send)
    return Limited(app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, workers: int, port: int, args) -> subprocess.Popen:
    env = dict(os.environ, ECPA_DATABASE_URL=url, ECPA_SECRET_KEY="bench-secret",
               ECPA_CONFIG=str(DATA / "absent.toml"))
    target = "ecpa.api.app:create_app"
    paths = [args.server_src] if args.server_src else []
    if args.pool_size or args.threads or args.no_pre_ping:
        target = "checkout_http:bench_app"
        paths.append(str(Path(__file__).resolve().parent))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env.update({k: str(v) for k, v in (("BENCH_POOL_SIZE", args.pool_size),
                                           ("BENCH_MAX_OVERFLOW", args.max_overflow),
                                           ("BENCH_THREADS", args.threads),
                                           ("BENCH_NO_PRE_PING", args.no_pre_ping or "")) if v})
    cmd = [sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--no-access-log",
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    import httpx
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        time.sleep(0.3)
    else:
        raise SystemExit("the server did not answer within 90 s")
    time.sleep(1.0 if workers > 1 else 0.2)  # every worker up
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- CPU accounting from /proc ----------------------------------------------------------

def _procs() -> dict[int, tuple[str, int, float]]:
    """pid → (comm, ppid, CPU seconds) of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        f = raw[raw.rindex(")") + 2:].split()
        out[int(d)] = (comm, int(f[1]), (int(f[11]) + int(f[12])) / CLK_TCK)
    return out


def _tree(procs: dict, root: int) -> set[int]:
    found, todo = {root}, [root]
    while todo:
        p = todo.pop()
        kids = [q for q, (_, pp, _) in procs.items() if pp == p and q not in found]
        found.update(kids)
        todo.extend(kids)
    return found


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return (sum(f) - idle) / CLK_TCK, sum(f) / CLK_TCK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_snapshot(groups: dict[str, list[int]], database: str) -> dict:
    """CPU seconds so far, by process, of each group's process trees, of PostgreSQL's
    backends serving ``database`` ("postgres"), of its other processes (other databases'
    backends, WAL writer, checkpointer: "postgres, other"), and of the whole machine."""
    procs = _procs()
    out: dict = {}
    for name, roots in groups.items():
        pids = set()
        for r in roots:
            pids |= _tree(procs, r) if r in procs else set()
        out[name] = {p: procs[p][2] for p in pids}
    server = groups.get("server")
    if server and server[0] in procs:  # each uvicorn worker on its own (balance)
        for w in sorted(q for q, (_, pp, _) in procs.items() if pp == server[0]):
            if "spawn_main" in _cmdline(w):
                out[f"worker {w}"] = {w: procs[w][2]}
    mine = f" {database} "
    pg = {p: c for p, (comm, _, c) in procs.items() if comm == "postgres"}
    out["postgres"] = {p: c for p, c in pg.items() if mine in _cmdline(p)}
    out["postgres, other"] = {p: c for p, c in pg.items() if p not in out["postgres"]}
    out["machine_busy"], out["machine_total"] = _machine_busy()
    return out


def cpu_share(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Cores used by each group over the window (2.0 = both cores).  A process that
    ended inside the window is not counted in its group; its time shows in "other"."""
    d = {k: sum(c - before[k].get(p, 0.0) for p, c in after[k].items()) / seconds
         for k in before if isinstance(before[k], dict) and k in after}
    cores = (after["machine_total"] - before["machine_total"]) / seconds
    busy = (after["machine_busy"] - before["machine_busy"]) / seconds
    d["other"] = busy - sum(v for k, v in d.items() if not k.startswith("worker "))
    d["idle"] = cores - busy
    return {k: round(v, 2) for k, v in d.items()}


# --- the clients ----------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * len(v) + 0.5) - 1))]


def summary_ms(values: list[float]) -> dict:
    return {"n": len(values), "p50": round(pct(values, 50) * 1e3, 1),
            "p95": round(pct(values, 95) * 1e3, 1), "p99": round(pct(values, 99) * 1e3, 1),
            "max": round(max(values) * 1e3, 1) if values else float("nan")}


async def _clients(cfg: dict) -> dict:
    import httpx

    n = len(cfg["tokens"])
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    lat: dict[str, list[float]] = {}
    status: dict[str, int] = {}
    totals = {"created": 0, "captured": 0, "errors": 0}
    t_measure, t_stop = cfg["t_measure"], cfg["t_stop"]
    hot_gone = False

    def record(kind: str, code: int, t0: float, t1: float) -> None:
        if t_measure <= t1 <= t_stop:
            status[f"{kind} {code}"] = status.get(f"{kind} {code}", 0) + 1
            if code < 300:
                lat.setdefault(kind, []).append(t1 - t0)
            else:
                lat.setdefault(f"{kind} ({code})", []).append(t1 - t0)

    async def one(http: httpx.AsyncClient, i: int) -> None:
        nonlocal hot_gone
        rng = random.Random(cfg["seed"] * 100_003 + i)
        auth = {"Authorization": f"Bearer {cfg['tokens'][i]}"}
        n_req = 0
        while time.monotonic() < t_stop:
            n_req += 1
            k = rng.choice((1, 1, 2, 2, 3))
            items = [{"sku_id": s, "quantity": rng.randint(1, 3)}
                     for s in rng.sample(cfg["regular"], k)]
            if cfg["phase"] == "checkout" and not hot_gone and rng.random() < cfg["hot_share"]:
                items.append({"sku_id": cfg["hot"], "quantity": 1})
            body = {"key": f"{cfg['phase']}-{cfg['proc']}-{i}-{n_req}", "items": items,
                    "ship_to_code": rng.choice(SHIP_TO)}
            headers = auth
            if cfg["idempotency_header"]:
                headers = {**auth, "Idempotency-Key": body["key"]}
            t0 = time.monotonic()
            try:
                r = await http.post("/api/market/checkout", json=body, headers=headers)
            except httpx.HTTPError:
                totals["errors"] += 1
                continue
            t1 = time.monotonic()
            record("checkout", r.status_code, t0, t1)
            if r.status_code == 201:
                totals["created"] += 1
            elif r.status_code == 409 and len(items) > k:
                hot_gone = True  # sold out: this process stops asking for it
                continue
            else:
                totals["errors"] += 1
                if totals["errors"] <= 3:
                    print(f"checkout {r.status_code}: {r.text[:300]}", file=sys.stderr)
                continue
            if cfg["phase"] != "purchase":
                continue
            order = r.json()
            t0 = time.monotonic()
            r = await http.post(f"/api/market/orders/{order['id']}/payments", headers=auth)
            t1 = time.monotonic()
            record("payment start", r.status_code, t0, t1)
            if r.status_code != 201:
                totals["errors"] += 1
                continue
            ref = r.json()["reference"]
            t0 = time.monotonic()
            r = await http.post(f"/api/market/test-gateway/{ref}/pay", headers=auth)
            t1 = time.monotonic()
            record("gateway pay", r.status_code, t0, t1)
            if r.status_code == 200 and r.json()["outcome"] == "captured":
                totals["captured"] += 1
                if t_measure <= t1 <= t_stop:
                    status["purchases"] = status.get("purchases", 0) + 1
            else:
                totals["errors"] += 1

    async with httpx.AsyncClient(base_url=cfg["base"], limits=limits, timeout=120) as http:
        await asyncio.sleep(max(0.0, cfg["t_start"] - time.monotonic()))
        cpu0 = time.process_time()
        await asyncio.gather(*(one(http, i) for i in range(n)))
        cpu = time.process_time() - cpu0
    return {"lat": lat, "status": status, "totals": totals, "cpu_s": cpu}


def _client_proc(cfg: dict, out) -> None:
    try:
        out.put(asyncio.run(_clients(cfg)))
    except BaseException as e:  # the parent must not wait for ever
        out.put({"crash": f"{type(e).__name__}: {e}"})
        raise


def drive(phase: str, base: str, build_info: dict, args, run: int) -> dict:
    """Run one phase with ``args.clients`` clients in ``args.client_procs`` processes."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    tokens = build_info["tokens"][:args.clients]
    t_start = time.monotonic() + 1.0
    t_measure, t_stop = t_start + args.warmup, t_start + args.warmup + args.duration
    procs = []
    for p in range(args.client_procs):
        cfg = {"phase": phase, "base": base, "tokens": tokens[p::args.client_procs],
               "regular": build_info["regular"], "hot": build_info["hot"],
               "hot_share": args.hot_share, "seed": run * 1000 + p, "proc": p,
               "t_start": t_start, "t_measure": t_measure, "t_stop": t_stop,
               "idempotency_header": args.idempotency_header}
        proc = ctx.Process(target=_client_proc, args=(cfg, q))
        proc.start()
        procs.append(proc)
    groups = {"client": [p.pid for p in procs], "server": [build_info["server_pid"]]}
    time.sleep(max(0.0, t_measure - time.monotonic()))
    db = build_info["database"]
    before = cpu_snapshot(groups, db)
    time.sleep(max(0.0, t_stop - time.monotonic()))
    after = cpu_snapshot(groups, db)
    parts = [q.get(timeout=300) for _ in procs]
    crashed = [p["crash"] for p in parts if "crash" in p]
    if crashed:
        raise SystemExit(f"a client process failed: {crashed[0]}")
    for proc in procs:
        proc.join()
    lat: dict[str, list[float]] = {}
    status: dict[str, int] = {}
    totals = {"created": 0, "captured": 0, "errors": 0}
    for part in parts:
        for k, v in part["lat"].items():
            lat.setdefault(k, []).extend(v)
        for k, v in part["status"].items():
            status[k] = status.get(k, 0) + v
        for k in totals:
            totals[k] += part["totals"][k]
    ok = status.get("checkout 201", 0)
    cores = cpu_share(before, after, args.duration)
    done = status.get("purchases", 0) if phase == "purchase" else ok
    return {"phase": phase, "orders_per_s": round(ok / args.duration, 1),
            # CPU per order (per whole purchase in the purchase phase): steadier than the
            # rate on a machine that other work shares.
            "server_cpu_ms_per_order": round(cores["server"] * args.duration / max(done, 1) * 1e3, 2),
            "postgres_cpu_ms_per_order": round(cores["postgres"] * args.duration / max(done, 1) * 1e3, 2),
            "purchases_per_s": round(status.get("purchases", 0) / args.duration, 1),
            "latency_ms": {k: summary_ms(v) for k, v in sorted(lat.items())},
            "responses": dict(sorted(status.items())), "totals": totals,
            "cpu_cores": cores}


# --- wrk: the checkout phase from a client written in C -------------------------------

WRK_SCRIPT = r"""
-- One ECPA checkout a request: a random buyer's token, 1-3 random lines, a random
-- ship-to region; a fifth also ask for the hot SKU until this thread sees it sold out.
local cfg = %(cfg)s
-- tid is set by setup() in each thread's state, seen is read back by done(): globals.
local n, hot_gone = 0, false
seen = {}
local thread_list = {}

function setup(thread)
  thread:set("tid", #thread_list)
  table.insert(thread_list, thread)
end

function init(args)
  math.randomseed(cfg.seed * 1000 + tid)
end

function request()
  n = n + 1
  local k = ({1, 1, 2, 2, 3})[math.random(5)]
  local pool, lines = {}, {}
  for i, s in ipairs(cfg.regular) do pool[i] = s end
  for i = 1, k do
    local j = math.random(i, #pool)
    pool[i], pool[j] = pool[j], pool[i]
    lines[#lines + 1] = string.format('{"sku_id":%%d,"quantity":%%d}', pool[i], math.random(3))
  end
  if not hot_gone and math.random() < cfg.hot_share then
    lines[#lines + 1] = string.format('{"sku_id":%%d,"quantity":1}', cfg.hot)
  end
  local key = string.format("%%s-%%d-%%d", cfg.prefix, tid, n)
  local body = string.format('{"key":"%%s","items":[%%s],"ship_to_code":"%%s"}',
                             key, table.concat(lines, ","), cfg.ship_to[math.random(#cfg.ship_to)])
  local headers = {["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. cfg.tokens[math.random(#cfg.tokens)]}
  if cfg.idempotency_header then headers["Idempotency-Key"] = key end
  return wrk.format("POST", "/api/market/checkout", headers, body)
end

function response(status, headers, body)
  seen[status] = (seen[status] or 0) + 1
  if status == 409 and string.find(body, cfg.hot_code, 1, true) then hot_gone = true end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(thread_list) do
    local t = thread:get("seen")
    for code, c in pairs(t) do counts[code] = (counts[code] or 0) + c end
  end
  local parts = {}
  for code, c in pairs(counts) do parts[#parts + 1] = string.format('"%%d":%%d', code, c) end
  io.write(string.format('WRK-RESULT {"statuses":{%%s},"requests":%%d,"duration_us":%%d,' ..
    '"socket_errors":%%d,"p50":%%d,"p95":%%d,"p99":%%d,"max":%%d}\n',
    table.concat(parts, ","), summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _lua(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _wrk(base: str, script: Path, clients: int, seconds: float, groups: dict | None,
         database: str) -> tuple[dict, dict | None, int]:
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk not found: apt-get install wrk (Debian's package), or --client httpx")
    proc = subprocess.Popen([exe, "-t", "2", "-c", str(clients), "-d", f"{seconds:g}s",
                             "--timeout", "60s", "-s", str(script), base],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cores = None
    if groups is not None:
        # CPU shares over the middle of the window (wrk has no warm-up of its own).
        g = {**groups, "client": [proc.pid]}
        time.sleep(1.0)
        before = cpu_snapshot(g, database)
        time.sleep(max(1.0, seconds - 2.0))
        after = cpu_snapshot(g, database)
        cores = (cpu_share(before, after, seconds - 2.0 if seconds > 3 else 1.0), seconds - 2.0)
    out, err = proc.communicate(timeout=seconds + 120)
    line = next((x for x in out.splitlines() if x.startswith("WRK-RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}): {out[-1500:]} {err[-1500:]}")
    return json.loads(line.split(" ", 1)[1]), cores, proc.pid


def drive_wrk(phase: str, base: str, build_info: dict, args, run: int) -> dict:
    """The checkout phase driven by wrk (C, 2 threads, C keep-alive connections): a
    warm-up run, then the measured run.  Latency percentiles are wrk's, over every
    response of the measured run (the few 409s for the sold-out hot SKU included)."""
    work = DATA / "work"
    work.mkdir(parents=True, exist_ok=True)
    created = errors = 0
    result = cores = None
    for part, seconds in (("warm", args.warmup), ("measure", args.duration)):
        cfg = {"seed": run * 10 + (part == "measure"), "prefix": f"{phase}-{run}-{part}",
               "tokens": build_info["tokens"][:max(args.clients, args.buyers or 0)],
               "regular": build_info["regular"], "hot": build_info["hot"],
               "hot_code": build_info["hot_code"], "hot_share": args.hot_share,
               "ship_to": list(SHIP_TO), "idempotency_header": args.idempotency_header}
        script = work / f"wrk_{part}.lua"
        script.write_text(WRK_SCRIPT % {"cfg": _lua(cfg)})
        groups = {"server": [build_info["server_pid"]]} if part == "measure" else None
        res, got_cores, _ = _wrk(base, script, args.clients, seconds, groups, build_info["database"])
        statuses = {int(k): v for k, v in res["statuses"].items()}
        created += statuses.get(201, 0)
        errors += res["socket_errors"] + sum(v for k, v in statuses.items() if k not in (201, 409))
        if part == "measure":
            result, cores = (res, statuses), got_cores
    res, statuses = result
    share, window = cores
    seconds = res["duration_us"] / 1e6
    ok = statuses.get(201, 0)
    # Orders a second from the measured run's whole duration; CPU per order from the
    # window the shares were read over.
    rate = ok / seconds
    return {"phase": phase, "client": "wrk", "orders_per_s": round(rate, 1),
            "server_cpu_ms_per_order": round(share["server"] / rate * 1e3, 2),
            "postgres_cpu_ms_per_order": round(share["postgres"] / rate * 1e3, 2),
            "client_cpu_ms_per_order": round(share["client"] / rate * 1e3, 2),
            "purchases_per_s": 0.0,
            "latency_ms": {"checkout (all responses)": {
                "n": res["requests"], "p50": res["p50"] / 1e3, "p95": res["p95"] / 1e3,
                "p99": res["p99"] / 1e3, "max": res["max"] / 1e3}},
            "responses": {f"checkout {k}": v for k, v in sorted(statuses.items())},
            "totals": {"created": created, "captured": 0, "errors": errors},
            "cpu_cores": share}


# --- pgbench --------------------------------------------------------------------------

def pgbench_bin() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(p)
    raise SystemExit("pgbench not found (PATH, /usr/lib/postgresql/*/bin)")


def pgbench(args) -> dict:
    exe = pgbench_bin()
    conn = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
    fresh_database("postgresql", DATA / "work", "pgbench")  # drops and creates ecpa_bench_pgbench
    subprocess.run([exe, "-i", "-s", str(args.pgbench_scale), "-q", *conn, PGBENCH_DB],
                   check=True, capture_output=True)
    clients = args.pgbench_clients or args.clients
    unsettled = settle()
    proc = subprocess.Popen([exe, "-c", str(clients), "-j", "2", "-T", str(args.pgbench_duration),
                             *conn, PGBENCH_DB], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(2)  # connections made
    before = cpu_snapshot({"pgbench": [proc.pid]}, PGBENCH_DB)
    t0 = time.monotonic()
    time.sleep(max(1, args.pgbench_duration - 4))
    after = cpu_snapshot({"pgbench": [proc.pid]}, PGBENCH_DB)
    span = time.monotonic() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"pgbench failed: {err[-2000:]}")
    tps = float(re.search(r"tps = ([\d.]+) \(without initial", out).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    return {"tps": round(tps, 1), "clients": clients, "scale": args.pgbench_scale,
            "latency_avg_ms": float(latency.group(1)) if latency else None,
            "cpu_cores": cpu_share(before, after, span), "unsettled_kb": unsettled}


def settle() -> dict:
    """Before each measured phase, ours and pgbench's alike: what the phase before it
    wrote (its WAL and dirty pages, a dropped database's files) put on disk first, so
    that no phase's commits wait behind another phase's write-back.  Returns the
    kernel's dirty and write-back kB found before settling (printed with the run)."""
    from sqlalchemy import create_engine, text
    mem = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    found = {k: int(mem[k].split()[0]) for k in ("Dirty", "Writeback")}
    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("CHECKPOINT"))
    eng.dispose()
    os.sync()
    return found


# --- main -----------------------------------------------------------------------------

def one_run(run: int, args) -> dict:
    import httpx

    from ecpa.config import reset_settings
    from ecpa.db import dispose_engines

    workdir = DATA / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    url = fresh_database("postgresql", workdir, f"checkout_{run}")
    os.environ["ECPA_DATABASE_URL"] = url
    os.environ.setdefault("ECPA_SECRET_KEY", "bench-secret")
    reset_settings()
    t = time.perf_counter()
    info = build(url, max(args.clients, args.buyers or 0), args.skus, args.stock, args.hot_stock)
    dispose_engines()
    initial = stock_of(url)
    print(f"run {run}: built in {time.perf_counter() - t:.1f} s", flush=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(url, args.workers, port, args)
    info["server_pid"], info["database"] = server.pid, url.rsplit("/", 1)[1]
    try:
        r = httpx.post(f"{base}/api/auth/token", data={"username": "buyer0", "password": PASSWORD},
                       timeout=30)
        assert r.status_code == 200, r.text  # the real sign-in works (not timed)
        phases = {}
        for phase in args.phases.split(","):
            use_wrk = phase == "checkout" and args.client == "wrk"
            unsettled = settle()
            res = phases[phase] = (drive_wrk if use_wrk else drive)(phase, base, info, args, run)
            res["unsettled_kb"] = unsettled
            lat = res["latency_ms"]
            print(f"run {run}: {phase}: {res['orders_per_s']} orders/s"
                  + (f", {res['purchases_per_s']} paid purchases/s" if phase == "purchase" else "")
                  + "; " + "; ".join(f"{k} p50/p95/p99/max {v['p50']}/{v['p95']}/{v['p99']}/{v['max']} ms"
                                     f" (n={v['n']})" for k, v in lat.items())
                  + f"; CPU cores {res['cpu_cores']}; server CPU {res['server_cpu_ms_per_order']} ms"
                  f" and PostgreSQL CPU {res['postgres_cpu_ms_per_order']} ms an order"
                  + (" (a whole purchase)" if phase == "purchase" else "")
                  + f"; errors {res['totals']['errors']}", flush=True)
    finally:
        stop_server(server)
    created = sum(p["totals"]["created"] for p in phases.values())
    captured = sum(p["totals"]["captured"] for p in phases.values())
    unanswered = 2 * args.clients if args.client == "wrk" and "checkout" in phases else 0
    checked = check(url, initial, info["hot"], args.hot_stock, created, captured, unanswered)
    print(f"run {run}: check {checked}", flush=True)
    if not args.pgbench_duration:
        return {"phases": phases, "check": checked}
    pg = pgbench(args)
    print(f"run {run}: pgbench TPC-B -s {pg['scale']} -c {pg['clients']} -j 2 "
          f"-T {args.pgbench_duration}: {pg['tps']} tps (latency avg {pg['latency_avg_ms']} ms); "
          f"CPU cores {pg['cpu_cores']}", flush=True)
    main_rate = phases.get("checkout", next(iter(phases.values())))["orders_per_s"]
    ratio = main_rate / pg["tps"]
    print(f"run {run}: checkout orders/s ÷ pgbench tps = {ratio:.3f}", flush=True)
    if not args.keep:
        from sqlalchemy import create_engine, text
        eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            for name in (url.rsplit("/", 1)[1], PGBENCH_DB):
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()
    return {"phases": phases, "check": checked, "pgbench": pg, "ratio": round(ratio, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients (C)")
    ap.add_argument("--client-procs", type=int, default=1,
                    help="client processes the C clients are spread over")
    ap.add_argument("--duration", type=float, default=30, help="measured seconds a phase")
    ap.add_argument("--warmup", type=float, default=5, help="seconds before measuring")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--client", choices=("wrk", "httpx"), default="wrk",
                    help="what drives the checkout phase: wrk (C, like pgbench; Debian's "
                    "package wrk) or Python httpx clients; the purchase phase always uses httpx")
    ap.add_argument("--phases", default="checkout,purchase")
    ap.add_argument("--buyers", type=int, default=0, help="buyer accounts (default: C)")
    ap.add_argument("--skus", type=int, default=20)
    ap.add_argument("--stock", type=int, default=1_000_000, help="stock of each regular SKU")
    ap.add_argument("--hot-stock", type=int, default=100)
    ap.add_argument("--hot-share", type=float, default=0.2,
                    help="share of checkouts that also ask for the hot SKU")
    ap.add_argument("--idempotency-header", action="store_true",
                    help="send an Idempotency-Key header with each checkout")
    ap.add_argument("--pool-size", type=int, default=-1,
                    help="SQLAlchemy pool size of each worker (ecpa.db's pool is not configurable: "
                    "the benchmark patches it); default C + 4, as each request in flight may hold "
                    "two connections; 0 keeps ecpa.db's (SQLAlchemy's 5 + 10 overflow)")
    ap.add_argument("--max-overflow", type=int, default=0, help="with --pool-size")
    ap.add_argument("--threads", type=int, default=0,
                    help="override AnyIO's thread limit for sync routes (default 40)")
    ap.add_argument("--no-pre-ping", action="store_true",
                    help="create ecpa.db's engine without pool_pre_ping (an experiment)")
    ap.add_argument("--pgbench-scale", type=int, default=10)
    ap.add_argument("--pgbench-duration", type=int, default=30, help="0: no pgbench")
    ap.add_argument("--pgbench-clients", type=int, default=0, help="default: C")
    ap.add_argument("--keep", action="store_true", help="keep the databases")
    ap.add_argument("--server-src", default="",
                    help="run the server from this source tree (a scratch copy of src/ with a fix)")
    args = ap.parse_args()
    if args.pool_size < 0:
        args.pool_size = args.clients + 4

    t = time.perf_counter()
    print(f"load average before: {os.getloadavg()}", flush=True)
    runs = [one_run(run, args) for run in range(args.runs)]
    print(f"load average after: {os.getloadavg()}; {time.perf_counter() - t:.0f} s in all", flush=True)

    def med(*path):
        """The median over the runs of the value at ``path`` in each run's result."""
        def at(r):
            for key in path:
                r = r[key]
            return r
        return statistics.median(at(r) for r in runs)
    summary = {"args": vars(args), "runs": runs, "median": {}}
    m = summary["median"]
    for phase in runs[0]["phases"]:
        m[phase] = {k: med("phases", phase, k)
                    for k in ("orders_per_s", "purchases_per_s", "server_cpu_ms_per_order",
                              "postgres_cpu_ms_per_order")}
        m[phase]["latency_ms"] = {k: {q: med("phases", phase, "latency_ms", k, q)
                                      for q in ("p50", "p95", "p99", "max")}
                                  for k in runs[0]["phases"][phase]["latency_ms"]
                                  if all(k in r["phases"][phase]["latency_ms"] for r in runs)}
    if args.pgbench_duration:
        m["pgbench_tps"] = med("pgbench", "tps")
        m["ratio"] = med("ratio")
        m["ratio_of_medians"] = round(m[next(iter(runs[0]["phases"]))]["orders_per_s"] / m["pgbench_tps"], 3)
    m["all_checks_ok"] = all(r["check"]["ok"] for r in runs)
    m["hot_sku_sold_out_every_run"] = all(r["check"]["hot_sku_sold_out"] for r in runs)
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
