"""Scenario replay: the programs of seed 000 §III.A run with the paper's own parameters
on synthetic households of the paper's counties, through the same code as real programs
(register import, enrolment, advances, buy-back, loans, settlement, the ledger).

Each scenario states what it takes from the paper and what it assumes where the paper is
silent; the figures it prints are read back from the ledger, not computed beside it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import select

from ..config import get_settings, reset_settings
from ..db import dispose_engines, session_factory, session_scope, upgrade
from ..ledger.service import attributed_income
from ..people.access import system_actor
from ..regions.service import import_regions_csv, load_official
from ..registry.importer import import_register
from ..registry.models import Household, Organisation, OrganisationKind
from . import microloans
from .farming import (
    RUNNING_CHICKENS,
    buy_back,
    create_program,
    enrol,
    record_market_price,
    report_loss,
    settle,
)
from .loans import Repayment
from .models import GuarantorKind

ACTOR = system_actor("scenario")


@dataclass
class ScenarioResult:
    name: str
    title: str
    county: str
    source: str
    assumptions: list[str]
    columns: list[str]
    rows: list[dict] = field(default_factory=list)  # one per household
    totals: dict[str, str] = field(default_factory=dict)
    # (what, the paper, this run)
    comparison: list[tuple[str, str, str]] = field(default_factory=list)


def yuan(fen: Decimal | float) -> str:
    return f"{Decimal(fen) / 100:,.2f}"


@dataclass
class _County:
    url: str
    households: list[tuple[int, str]]  # (id, number)
    cooperative_id: int
    enterprise_id: int
    name: str


def _county(workdir: Path, county_code: str, households: int, seed: int) -> _County:
    """A fresh database holding a synthetic county of the paper's: official regions,
    townships and villages, a register imported through the real importer, one
    cooperative and the enterprise (the e-commerce platform)."""
    from ..synth import synth_county, write_regions, write_register

    dispose_engines()
    url = f"sqlite:///{workdir / 'scenario.db'}"
    upgrade(url)
    county = synth_county(seed=seed, county_code=county_code, households=households)
    write_regions(county.regions, workdir / "regions.csv")
    write_register(county.rows, workdir / "register.csv")
    with session_scope(url) as s:
        load_official(s, {county_code[:2]})
        _, errors = import_regions_csv(s, ACTOR, (workdir / "regions.csv").read_text(encoding="utf-8"))
        if errors:
            raise RuntimeError(f"synthetic regions are invalid: {errors[:3]}")
    with session_scope(url) as s:
        result = import_register(s, ACTOR, workdir / "register.csv")
        if result.error_count:
            raise RuntimeError(f"synthetic register is invalid: {result.errors[:3]}")
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name=f"{county.county_name}农民专业合作社",
                            credit_code=f"93{county_code}MA0000001", region_code=county_code)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商平台",
                           credit_code="91110000MA00000001", region_code=county_code)
        s.add_all([coop, ent])
        s.flush()
        rows = s.execute(select(Household.id, Household.number).order_by(Household.number)).all()
        return _County(url, [(i, n) for i, n in rows], coop.id, ent.id, county.county_name)


def running_chickens(c: _County, rng: np.random.Generator) -> ScenarioResult:
    start = date(2016, 5, 9)  # the Wuyi pilot started on 9 May
    r = ScenarioResult(
        "chickens", "Raising chickens costs nothing (running chickens)",
        f"{c.name} (Wuyi county, Hebei)", "seed 000 §III.A.1(1)",
        [("chicks and feed advanced at 70 yuan a bird (not in the paper; it makes the paper's "
         "30-yuan profit at the 100-yuan floor)"),
         ("each household raises 110-130 birds (the paper's >3,000 yuan a household at "
         "~30 yuan a bird means ~100 or more), about 1.5 % die during the cycle, and one flock in fifty loses 40-80 % to disease"),
         ("the local market pays 30 yuan a bird (the paper: 'only sold RMB 30 on average' "
         "before), so the protective floor of 100 yuan sets the buy-back price"),
         ("guaranteed by the county government and the cooperative; a household whose flock "
         "fails is covered, never left in debt")],
        ["household", "birds", "died", "bought back", "advance", "proceeds", "net gain",
         "gain/bird"])
    with session_scope(c.url) as s:
        p = create_program(s, ACTOR, **RUNNING_CHICKENS, start_date=start,
                           cooperative_id=c.cooperative_id, enterprise_id=c.enterprise_id)
        record_market_price(s, ACTOR, p.id, start, 3_000)
        end = start + timedelta(days=p.cycle_days)
        flocks = rng.integers(110, 131, len(c.households))
        died = rng.binomial(flocks, 0.015)
        # About one flock in fifty is struck by disease and loses most of its birds.
        struck = rng.random(len(flocks)) < 0.02
        died[struck] = (flocks[struck] * rng.uniform(0.4, 0.8, struck.sum())).astype(int)
        for (hid, _), birds, dead in zip(c.households, flocks, died):
            enrol(s, ACTOR, p.id, hid, int(birds), start)
            if dead:
                report_loss(s, ACTOR, p.id, hid, int(dead))
            if birds > dead:
                buy_back(s, ACTOR, p.id, hid, f"wuyi-{hid}", end, int(birds - dead), "A")
        pid, cost = p.id, p.input_cost_per_unit_fen
    lines = {x.household_id: x for x in settle(session_factory(c.url), ACTOR, pid, end)}
    with session_scope(c.url) as s:
        income = attributed_income(s, end.year)
    gains = []
    for (hid, number), birds, dead in zip(c.households, flocks, died):
        gain = income.get(hid, {}).get("industry", 0)  # buy-back − advance (+ any cover)
        gains.append(gain)
        r.rows.append({"household": number, "birds": int(birds), "died": int(dead),
                       "bought back": int(birds - dead), "advance": yuan(int(birds) * cost),
                       "proceeds": yuan(lines[hid].bought_fen), "net gain": yuan(gain),
                       "gain/bird": yuan(gain / int(birds))})
    birds_total = int(flocks.sum())
    per_bird = Decimal(sum(gains)) / birds_total
    per_household = Decimal(sum(gains)) / len(gains)
    r.totals = {"households": f"{len(gains):,}", "birds": f"{birds_total:,}",
                "advanced": yuan(birds_total * cost),
                "bought back": yuan(sum(x.bought_fen for x in lines.values())),
                "paid out": yuan(sum(x.paid_fen for x in lines.values())),
                "covered by the guarantee": yuan(sum(x.guarantee_fen for x in lines.values())),
                "households gaining over 3,000 yuan": f"{sum(g > 300_000 for g in gains):,}"}
    r.comparison = [("gain per bird", "about 30 yuan", f"{yuan(per_bird)} yuan"),
                    ("gain per household", "over 3,000 yuan on average",
                     f"{yuan(per_household)} yuan on average")]
    return r


def _wheat(c: _County, rng: np.random.Generator, title: str, start: date, days: int,
           mu_range: tuple[int, int], extra: Callable | None = None):
    """A wheat program bought back at the market price + 3 fen a jin; returns the
    program, land (mu) and harvest (jin) per household."""
    with session_scope(c.url) as s:
        p = create_program(
            s, ACTOR, name=title, product="wheat", unit="jin", cycle_days=days,
            start_date=start, input_cost_per_unit_fen=0, floor_price_fen=0, premium_fen=3,
            grades={"standard": 10_000}, guarantor_kind=GuarantorKind.ENTERPRISE,
            guarantor_name="the platform", cooperative_id=c.cooperative_id,
            enterprise_id=c.enterprise_id)
        end = start + timedelta(days=days)
        record_market_price(s, ACTOR, p.id, end - timedelta(days=7), 118)
        land = rng.integers(mu_range[0], mu_range[1] + 1, len(c.households))
        harvest = land * rng.integers(900, 1_001, len(c.households))
        for (hid, _), mu in zip(c.households, land):
            enrol(s, ACTOR, p.id, hid, int(mu) * 1_100, start)  # at most 1,100 jin a mu
        if extra:
            extra(s, p.id, land)
        for (hid, _), jin in zip(c.households, harvest):
            buy_back(s, ACTOR, p.id, hid, f"wheat-{hid}", end, int(jin), "standard")
        return p.id, end, land, harvest


def farming_costs_nothing(c: _County, rng: np.random.Generator) -> ScenarioResult:
    r = ScenarioResult(
        "farming", "Farming costs nothing", f"{c.name} (Fugou county, Henan)",
        "seed 000 §III.A.1(2)",
        [("seed, fertiliser, plant protection and harvest are given free; their value, 60 yuan "
         "a mu, is not in the paper (its 90 yuan a mu of direct and indirect income less the "
         "~30 yuan of the price premium)"),
         "wheat yields 900-1,000 jin a mu; the market pays 1.18 yuan a jin at harvest",
         "households farm 12-16 mu (the paper's 1,200-1,300 yuan a household at 90 yuan a mu)"],
        ["household", "mu", "jin", "proceeds", "premium", "inputs saved", "gain", "gain/mu"])
    pid, end, land, harvest = _wheat(c, rng, r.title, date(2016, 10, 10), 240, (12, 16))
    lines = {x.household_id: x for x in settle(session_factory(c.url), ACTOR, pid, end)}
    with session_scope(c.url) as s:
        income = attributed_income(s, end.year)
    gains, total_mu = [], int(land.sum())
    for (hid, number), mu, jin in zip(c.households, land, harvest):
        proceeds = income.get(hid, {}).get("industry", 0)
        premium = int(jin) * 3  # what the platform paid over the market
        saved = int(mu) * 6_000
        gains.append(premium + saved)
        r.rows.append({"household": number, "mu": int(mu), "jin": int(jin),
                       "proceeds": yuan(proceeds), "premium": yuan(premium),
                       "inputs saved": yuan(saved), "gain": yuan(premium + saved),
                       "gain/mu": yuan((premium + saved) / int(mu))})
    r.totals = {"households": f"{len(gains):,}", "mu": f"{total_mu:,}",
                "wheat bought back (jin)": f"{int(harvest.sum()):,}",
                "paid out": yuan(sum(x.paid_fen for x in lines.values()))}
    r.comparison = [("income per mu, direct and indirect", "90 yuan",
                     f"{yuan(Decimal(sum(gains)) / total_mu)} yuan"),
                    ("gain per household", "1,200-1,300 yuan on average",
                     f"{yuan(Decimal(sum(gains)) / len(gains))} yuan on average")]
    return r


def yanling_loans(c: _County, rng: np.random.Generator) -> ScenarioResult:
    r = ScenarioResult(
        "loans", "The agricultural loan (Yanling)", f"{c.name} (Yanling county, Henan)",
        "seed 000 §III.A.1(4)",
        [("each household borrows 200 yuan a mu for inputs in October, no collateral, at "
         "4.35 % a year (the paper: 'low interest'), principal and interest due at harvest "
         "on 1 June and deducted from the wheat proceeds"),
         ("the platform buys the wheat at the market price + 3 fen a jin (its rule in "
         "Fugou); 900-1,000 jin a mu, 1.18 yuan a jin"),
         "harvest costs saved: 50 yuan a mu, as the paper reports (a service, not posted)",
         "households farm 10-21 mu (the paper: 1,300 households, 20,000 mu)"],
        ["household", "mu", "loan", "interest", "proceeds", "repaid", "paid out",
         "revenue +", "harvest saved", "net gain"])
    start = date(2016, 10, 1)
    loan_ids: dict[int, int] = {}

    def lend(s, pid, land):
        product = microloans.create_product(
            s, ACTOR, name="agricultural loan", lender_name="the platform's finance arm",
            annual_rate=Decimal("0.0435"), penalty_rate=Decimal("0.0653"), months=8,
            method=Repayment.BULLET, max_principal_fen=5_000_000,
            guarantor_kind=GuarantorKind.COOPERATIVE, guarantor_name="the cooperative",
            guarantee_bp=5_000)
        for (hid, _), area in zip(c.households, land):
            loan = microloans.grant(s, ACTOR, product.id, hid, int(area) * 20_000, start,
                                    "seed and fertiliser", repay_from_program_id=pid)
            microloans.disburse(s, ACTOR, loan.id, start, date(2016, 11, 1))
            loan_ids[hid] = loan.id

    pid, end, land, harvest = _wheat(c, rng, r.title, start, 243, (10, 21), lend)
    lines = {x.household_id: x for x in settle(session_factory(c.url), ACTOR, pid, end)}
    gains, interest_total = [], 0
    with session_scope(c.url) as s:
        for (hid, number), mu, jin in zip(c.households, land, harvest):
            pos = microloans.position(s, s.get(microloans.Loan, loan_ids[hid]), end)
            paid = pos["repayments"]
            interest = sum(x["interest_fen"] for x in paid)
            interest_total += interest
            revenue, saved = int(jin) * 3, int(mu) * 5_000
            gains.append(revenue + saved - interest)
            r.rows.append({"household": number, "mu": int(mu), "loan": yuan(pos["principal_fen"]),
                           "interest": yuan(interest), "proceeds": yuan(lines[hid].bought_fen),
                           "repaid": yuan(lines[hid].loan_repaid_fen),
                           "paid out": yuan(lines[hid].paid_fen), "revenue +": yuan(revenue),
                           "harvest saved": yuan(saved), "net gain": yuan(revenue + saved - interest)})
        closed = sum(s.get(microloans.Loan, i).status.value == "closed" for i in loan_ids.values())
    total_mu = int(land.sum())
    r.totals = {"households": f"{len(gains):,}", "mu": f"{total_mu:,}",
                "lent": yuan(sum(int(mu) * 20_000 for mu in land)),
                "repaid from proceeds": yuan(sum(x.loan_repaid_fen for x in lines.values())),
                "loans closed at harvest": f"{closed:,}", "interest": yuan(interest_total)}
    r.comparison = [
        ("households, mu", "1,300 households, 20,000 mu", f"{len(gains):,} households, {total_mu:,} mu"),
        ("sales revenue per mu", "+30 yuan",
         f"+{yuan(Decimal(sum(int(j) * 3 for j in harvest)) / total_mu)} yuan"),
        ("harvest cost saved per mu", "50 yuan", "50.00 yuan (taken from the paper)"),
        ("net gain per mu after interest", "(not reported)",
         f"{yuan(Decimal(sum(gains)) / total_mu)} yuan")]
    return r


SCENARIOS = {
    "chickens": ("131122", 300, running_chickens),  # Wuyi county, Hebei; the 300 households
    "farming": ("411621", 300, farming_costs_nothing),  # Fugou county, Henan
    "loans": ("411024", 1_300, yanling_loans),  # Yanling county, Henan; the paper's 1,300
}


def run(name: str, households: int | None = None, seed: int = 1,
        workdir: Path | None = None) -> ScenarioResult:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    county_code, default_n, fn = SCENARIOS[name]
    saved = os.environ.get("ECPA_SECRET_KEY")
    if not get_settings().secret_key:
        # A throwaway database of synthetic people: a throwaway key protects it.
        os.environ["ECPA_SECRET_KEY"] = secrets.token_urlsafe(32)
        reset_settings()
    try:
        with tempfile.TemporaryDirectory(prefix="ecpa-scenario-") as tmp:
            c = _county(Path(workdir or tmp), county_code, households or default_n, seed)
            try:
                return fn(c, np.random.default_rng(seed))
            finally:
                dispose_engines()
    finally:
        if saved is None:
            os.environ.pop("ECPA_SECRET_KEY", None)
        reset_settings()
