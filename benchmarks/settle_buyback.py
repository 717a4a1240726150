"""Benchmark: settle a contract-farming buy-back cycle of 100,000 households.

    python benchmarks/settle_buyback.py --households 100000 --runs 3 [--backend postgresql]

Each run builds a fresh, migrated database (not timed): a village, N households, a
"running chickens" program (seed 000: 100 chicks a household, inputs 70 yuan each,
bought back at 100 yuan or more), every household enrolled with its input advance
posted, and a buy-back for each (80 % deliver all 100 birds at grade A; 20 % lose 60
and deliver 40 at grade B, so that the guarantor covers their loss).  Then
``farming.settle`` is timed: it nets each household's advance against its buy-backs
and posts the payout or the guarantee, in committed batches of 1,000 households.  On
PostgreSQL the build ends with ANALYZE, as autovacuum would after such a load.  The
run checks that every household account ends at zero and that a second settlement
posts nothing, and times that second run too."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_register import DATA, fresh_database  # noqa: E402

START, END = date(2024, 3, 1), date(2024, 8, 8)
VILLAGE = "621221100001"


def build(url: str, households: int) -> int:
    from sqlalchemy import insert, select

    from ecpa.db import session_scope, upgrade
    from ecpa.ledger.models import Account, AccountKind, Channel
    from ecpa.ledger.service import Entry, Leg, post_many
    from ecpa.people.access import system_actor
    from ecpa.programs.farming import RUNNING_CHICKENS, _accounts, create_program, household_account
    from ecpa.programs.models import BuyBack, Enrolment
    from ecpa.regions.service import import_regions_csv, load_official
    from ecpa.registry.models import Household, Organisation, OrganisationKind

    actor = system_actor("bench")
    upgrade(url)
    with session_scope(url) as s:
        load_official(s, {"62"})
        _, errors = import_regions_csv(s, actor, "code,name,parent_code,is_poor\n"
                                       "621221100000,城关镇,621221,no\n"
                                       f"{VILLAGE},东关村,621221100000,yes\n")
        assert not errors
        s.execute(insert(Household), [{"number": f"621221{i:09d}", "village_code": VILLAGE}
                                      for i in range(households)])
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="跑步鸡合作社",
                            credit_code="93621221MA7K123451", region_code="621221")
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code="621221")
        s.add_all([coop, ent])
        s.flush()
        program = create_program(s, actor, **RUNNING_CHICKENS, start_date=START,
                                 cooperative_id=coop.id, enterprise_id=ent.id)
        pid, acc = program.id, _accounts(program)
        ids = s.scalars(select(Household.id).order_by(Household.id)).all()
        s.execute(insert(Account), [{"code": household_account(pid, h), "name": f"household {h}",
                                     "kind": AccountKind.HOUSEHOLD, "household_id": h} for h in ids])
        s.execute(insert(Enrolment), [{"program_id": pid, "household_id": h, "units": 100,
                                       "enrolled_on": START, "lost_units": 40 if h % 5 == 0 else 0}
                                      for h in ids])
        enrolment = dict(s.execute(select(Enrolment.household_id, Enrolment.id)).all())
        post_many(s, actor, [Entry(f"farm:{pid}:advance:{h}", START, "inputs for 100 chicken",
                                   [Leg(household_account(pid, h), 700_000, h, Channel.INDUSTRY),
                                    Leg(acc["inputs"], -700_000)]) for h in ids])
        deliveries = [(h, 40, "B", 9_000) if h % 5 == 0 else (h, 100, "A", 10_000) for h in ids]
        s.execute(insert(BuyBack), [{"enrolment_id": enrolment[h], "key": f"bb:{h}",
                                     "delivered_on": END, "quantity": q, "grade": g,
                                     "unit_price_fen": p, "amount_fen": q * p}
                                    for h, q, g, p in deliveries])
        post_many(s, actor, [Entry(f"farm:{pid}:buyback:bb:{h}", END, "buy-back",
                                   [Leg(acc["purchases"], q * p),
                                    Leg(household_account(pid, h), -q * p, h, Channel.INDUSTRY)])
                             for h, q, g, p in deliveries])
    if url.startswith("postgresql"):
        # As autovacuum would after a load this size: plans need the tables' statistics.
        from sqlalchemy import create_engine, text
        eng = create_engine(url, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text("ANALYZE"))
        eng.dispose()
    return pid


def check(url: str, pid: int, households: int) -> None:
    from sqlalchemy import func, select

    from ecpa.db import session_scope
    from ecpa.ledger.models import Account, AccountKind, Posting, Transaction
    with session_scope(url) as s:
        settled = s.scalar(select(func.count()).select_from(Transaction)
                           .where(Transaction.key.like(f"farm:{pid}:settle:%")))
        open_accounts = s.scalar(select(func.count()).select_from(
            select(Account.id).join(Posting, Posting.account_id == Account.id)
            .where(Account.kind == AccountKind.HOUSEHOLD).group_by(Account.id)
            .having(func.sum(Posting.amount_fen) != 0).subquery()))
    assert settled == households, (settled, households)
    assert open_accounts == 0, open_accounts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    from ecpa.config import reset_settings
    from ecpa.db import dispose_engines, session_factory
    from ecpa.people.access import system_actor
    from ecpa.programs.farming import settle

    workdir = DATA / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    firsts, seconds = [], []
    for run in range(args.runs):
        url = fresh_database(args.backend, workdir, run)
        os.environ["ECPA_DATABASE_URL"] = url
        os.environ.setdefault("ECPA_SECRET_KEY", "bench-secret")
        reset_settings()
        t = time.perf_counter()
        pid = build(url, args.households)
        print(f"run {run}: built in {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        lines = settle(session_factory(url), system_actor("bench"), pid, END)
        firsts.append(time.perf_counter() - t)
        t = time.perf_counter()
        again = settle(session_factory(url), system_actor("bench"), pid, END)
        seconds.append(time.perf_counter() - t)
        assert len(lines) == args.households and all(line.already_settled for line in again)
        check(url, pid, args.households)
        print(f"run {run}: settled {len(lines):,} households in {firsts[-1]:.2f} s; "
              f"again in {seconds[-1]:.2f} s (nothing posted)", flush=True)
        dispose_engines()
    print(json.dumps({"backend": args.backend, "households": args.households,
                      "settle_runs_s": firsts, "settle_median_s": statistics.median(firsts),
                      "rerun_runs_s": seconds, "rerun_median_s": statistics.median(seconds)}))


if __name__ == "__main__":
    main()
