"""The officials' pages: the county at a glance, a household's page, the register import
with its error report, and the targeting cases.

Every figure comes through the same service functions as the API, with the signed-in
user as the actor, so the role and region rules are the API's: a county officer or an
administrator sees everything of the region; a village cadre its own village, without
the county's measurement, programs or ledger (the API refuses those to a cadre too); an
analyst only de-identified counts and totals — no household, no case.  A section the
user may not see says so instead of failing the page.

Measuring a county exports and assesses its whole register, which takes seconds: the
summary of a measurement is kept in this process per (region, year) for
``MEASURE_TTL_S`` seconds (the page says when it was measured, and offers a refresh);
an import or new proposals through these pages drop the kept summaries at once.
"""

from __future__ import annotations

import math
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from ..api.deps import SessionDep
from ..cases import service as cases
from ..cases.models import Case, CaseKind
from ..errors import EcpaError, InvalidInput, NotFound, PermissionDenied
from ..people.access import Actor, require_region, require_role
from ..people.models import Role
from ..regions.codes import level_of_code, scope_prefix
from ..regions.models import Level, Region
from ..registry import service as registry
from ..registry.models import Household, Income, Status
from . import charts
from .i18n import gettext_
from .pages import signin_required
from .render import render
from .security import check_csrf, current_actor

router = APIRouter(include_in_schema=False)

OFFICIALS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE, Role.ANALYST)
# Who reads households and cases (the registry's readers; an analyst works on
# de-identified exports, never on a household's page).
CASEWORKERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)
MEASURE_TTL_S = 300
REPORT_TTL_S = 3600
STATUS_ORDER = ("identified", "returned", "monitored", "exited")

# English labels of the values the pages show (translated in dashboard.po).
LABELS = {
    # status and colours
    "identified": "Poor (identified)", "returned": "Returned to poverty", "monitored": "Monitored",
    "exited": "Exited", "none": "No status",
    # indicators of the China profile and the global MPI
    "income_level": "Income level", "income_structure": "Income structure",
    "food_clothing": "Food and clothing", "school_attendance": "School attendance",
    "adult_schooling": "Adult schooling", "medical_insurance": "Medical insurance",
    "illness_burden": "Illness burden", "housing": "Housing", "drinking_water": "Drinking water",
    "sanitation": "Sanitation", "cooking_fuel": "Cooking fuel", "road": "Road",
    "social_capital": "Social capital", "nutrition": "Nutrition", "child_mortality": "Child mortality",
    "years_of_schooling": "Years of schooling", "electricity": "Electricity", "assets": "Assets",
    # ledger channels
    "industry": "Industry", "entrepreneurship": "Entrepreneurship", "employment": "Employment",
    "financial": "Financial", "education": "Education", "health": "Health", "ecology": "Ecology",
    "consumption": "Consumption",
    # income sources
    "wages": "Wages", "farming_business": "Farming and business", "property": "Property",
    "transfers": "Transfers", "ecommerce": "E-commerce",
    # relations
    "head": "Head", "spouse": "Spouse", "child": "Child", "child_in_law": "Child-in-law",
    "grandchild": "Grandchild", "parent": "Parent", "grandparent": "Grandparent",
    "sibling": "Sibling", "other": "Other",
    # cases
    "open": "Open", "in_notice": "On public notice", "objected": "Objected", "approved": "Approved",
    "rejected": "Rejected", "withdrawn": "Withdrawn", "identification": "Identification",
    "exit": "Exit", "monitoring_entry": "Entering monitoring", "monitoring_exit": "Leaving monitoring",
    "data_change": "Data change", "took": "took the step", "commented": "commented",
    "upheld": "upheld an objection", "dismissed": "dismissed an objection",
    # monitoring categories and risk reasons
    "unstable_exited": "Exited, unstable", "marginal": "Marginal, easily poor",
    "sudden_hardship": "Sudden hardship", "medical_burden": "Medical burden",
    "guarantee_failed": "A guarantee failed", "income_fall": "Income fell",
    "below_monitoring_line": "Below the monitoring line", "disaster_burden": "Disaster loss",
}


def label(value) -> str:
    if value is None:
        return "–"
    value = getattr(value, "value", value)
    return gettext_(LABELS.get(value, str(value).replace("_", " ")))


def labels(csv_values: str | None) -> str:
    return "、".join(label(v) for v in (csv_values or "").split(",") if v) or "–"


def pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x * 100:.1f}%"


# ------------------------------------------------------------------ sign-in and scope


def _official(request: Request, session: Session, *roles: Role) -> Actor | Response:
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    require_role(actor, *(roles or OFFICIALS))
    return actor


def _region(session: Session, actor: Actor, code: str | None) -> Region | None:
    """The region the page shows: the one asked for, else the user's own, else (for a
    user with the whole country) the county with the first registered household."""
    code = (code or "").strip() or actor.region_code
    if not code:
        first = session.scalar(select(func.min(Household.village_code)))
        code = first[:6] if first else None
    if not code:
        return None
    region = session.get(Region, code)
    if region is None:
        raise NotFound(f"no region {code}", field="region")
    require_region(actor, code)
    return region


def _year(session: Session, prefix: str, year: int | None) -> int:
    if year:
        if not 1990 <= year <= 2100:
            raise InvalidInput(f"year {year} is out of range", field="year")
        return year
    latest = session.scalar(select(func.max(Income.year)).join(
        Household, Household.id == Income.household_id).where(Household.village_code.startswith(prefix)))
    return latest or date.today().year


def _trail(session: Session, region: Region) -> list[Region]:
    """The region and its parents down from the county."""
    out, r = [], region
    while r is not None and r.level in (Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE):
        out.append(r)
        r = session.get(Region, r.parent_code) if r.parent_code else None
    return out[::-1]


# ------------------------------------------------------------------ status counts


def status_counts(session: Session, actor: Actor, region: Region) -> dict[str, Counter]:
    """Households by village and current status (aggregates: also for an analyst)."""
    require_role(actor, *OFFICIALS)
    require_region(actor, region.code)
    latest = registry._latest_status_subquery()
    sub = (select(Household.village_code.label("v"), latest.label("s"))
           .where(Household.village_code.startswith(scope_prefix(region.code))).subquery())
    out: dict[str, Counter] = {}
    for v, s, n in session.execute(select(sub.c.v, sub.c.s, func.count()).group_by(sub.c.v, sub.c.s)):
        out.setdefault(v, Counter())[getattr(s, "value", s) or "none"] += n
    return out


def village_colour(c: Counter) -> str:
    """Red while a household is poor; yellow when none is but some returned or are
    monitored; green when every registered household has exited; grey: nothing known."""
    if c.get("identified"):
        return "red"
    if c.get("returned") or c.get("monitored"):
        return "yellow"
    if c.get("exited"):
        return "green"
    return "grey"


# ------------------------------------------------------------------ measurement (kept)


@dataclass
class Measured:
    region: str
    year: int
    at: float
    households: int
    k: float
    H: float
    A: float
    M0: float
    drivers: list[str]
    contributions: list[tuple[str, float]]      # indicator, share of M0; largest first
    censored: dict[str, float]                  # indicator, censored headcount ratio
    by_code: dict[str, dict] = field(default_factory=dict)  # H, A, M0 per region code
    income: list[dict] = field(default_factory=list)        # per line, total level
    at_risk: list[dict] = field(default_factory=list)
    exit_candidates: int = 0


_measured: dict[tuple[str, str, int], Measured] = {}
_measured_lock = threading.Lock()


def forget_measurements() -> None:
    with _measured_lock:
        _measured.clear()


def _f(x) -> float | None:
    return None if x is None or math.isnan(float(x)) else float(x)


def measure(session: Session, actor: Actor, region: str, year: int, refresh: bool = False) -> Measured:
    """The region's assessment (ecpa.measure.service.assess_region), kept for a few
    minutes.  The user's role and scope are checked on every call, kept or not."""
    from ..measure import service as measure_service
    require_role(actor, *measure_service.READERS)
    require_region(actor, region)
    key = (str(session.get_bind().url), region, year)  # one process may serve two databases (tests)
    with _measured_lock:
        kept = _measured.get(key)
    if kept and not refresh and time.time() - kept.at < MEASURE_TTL_S:
        return kept
    result, at_risk = measure_service.assess_region(session, actor, region, year)
    mpi = result.mpi[result.mpi["subgroup"].isna()]
    k = float(mpi["k"].iloc[0])
    mpi = mpi[mpi["k"] == k]
    total = mpi[mpi["level"] == "total"].iloc[0]
    contrib = sorted(((c.removeprefix("contribution_"), _f(total[c]) or 0.0)
                      for c in mpi.columns if c.startswith("contribution_")),
                     key=lambda t: -t[1])
    censored = {c.removeprefix("censored_"): _f(total[c]) or 0.0
                for c in mpi.columns if c.startswith("censored_")}
    by_code = {row.code: {"H": _f(row.H), "A": _f(row.A), "M0": _f(row.M0), "households": int(row.households)}
               for row in mpi[mpi["level"] != "total"].itertuples()}
    fgt = result.fgt[result.fgt["subgroup"].isna() & (result.fgt["level"] == "total")]
    income = [{"line": r.line, "line_yuan": float(r.line_yuan), "headcount_ratio": _f(r.headcount_ratio),
               "poor_households": int(r.poor_households)} for r in fgt.itertuples()]
    risk = [{"household_id": int(r.household_id), "household_number": r.household_number,
             "village_code": r.village_code, "status": r.status, "category": r.risk_category,
             "reasons": r.risk_reasons or ""} for r in at_risk.itertuples()]
    m = Measured(region, year, time.time(), int(result.households), k, _f(total["H"]) or 0.0,
                 _f(total["A"]) or 0.0, _f(total["M0"]) or 0.0,
                 [d for d in (total["drivers"] or "").split(",") if d], contrib, censored, by_code,
                 income, risk, 0 if result.exit_candidates is None else len(result.exit_candidates))
    with _measured_lock:
        _measured[key] = m
    return m


def contribution_chart(m: Measured) -> str:
    bars = [charts.Bar(name, label(name), share, pct(share)) for name, share in m.contributions if share > 0]
    return charts.bar_chart(bars, title=gettext_("Contribution of each indicator to M0"))


# ------------------------------------------------------------------ other sections


def program_progress(session: Session, actor: Actor, prefix: str) -> list[dict]:
    """Each farming program with households of the region: enrolled, bought back,
    settled (ecpa.programs.farming.program_summary, which keeps to the user's scope)."""
    from ..programs import farming
    from ..programs.models import Enrolment
    require_role(actor, *farming.MANAGERS)
    ids = session.scalars(select(Enrolment.program_id).distinct().join(
        Household, Household.id == Enrolment.household_id)
        .where(Household.village_code.startswith(prefix)).order_by(Enrolment.program_id)).all()
    here = set(session.scalars(select(Household.id).where(Household.village_code.startswith(prefix))))
    out = []
    for pid in ids:
        s = farming.program_summary(session, actor, pid)
        es = [e for e in s["enrolments"] if e["household_id"] in here]
        n = len(es)
        out.append({"id": pid, "name": s["name"], "product": s["product"], "unit": s["unit"],
                    "cycle_ends": s["cycle_ends"], "enrolled": n,
                    "units": sum(e["units"] for e in es),
                    "bought": sum(1 for e in es if e["bought_fen"] > 0),
                    "bought_fen": sum(e["bought_fen"] for e in es),
                    "advance_fen": sum(e["advance_fen"] for e in es),
                    "settled": sum(1 for e in es if e["settled"])})
    return out


def channel_income(session: Session, actor: Actor, prefix: str, year: int) -> list[dict]:
    """The year's income traced by the ledger to the region's households, by channel
    (ecpa.ledger.service.attributed_income; readers as for the ledger's API)."""
    from ..ledger.api import READERS
    from ..ledger.models import Channel
    from ..ledger.service import attributed_income
    require_role(actor, *READERS)
    ids = set(session.scalars(select(Household.id).where(Household.village_code.startswith(prefix))))
    total: Counter = Counter()
    reached: Counter = Counter()
    for hid, by_channel in attributed_income(session, year).items():
        if hid in ids:
            for ch, fen in by_channel.items():
                total[ch] += fen
                reached[ch] += 1
    from ..ledger.models import INCOME_CHANNELS
    # The four channels of the income-increase path always; the others where money moved.
    return [{"channel": c.value, "fen": int(total.get(c.value, 0)), "households": reached.get(c.value, 0)}
            for c in Channel if c in INCOME_CHANNELS or total.get(c.value)]


def channel_chart(rows: list[dict]) -> str:
    from .render import yuan
    bars = [charts.Bar(r["channel"], label(r["channel"]), r["fen"], yuan(r["fen"])) for r in rows]
    return charts.bar_chart(bars, title=gettext_("Traced income by channel"), colour="#2e7d32")


def pavilion_sales(session: Session, actor: Actor, region: Region) -> list[dict]:
    """Completed orders' lines (not refunded) by the county their product comes from:
    the products of the region (the region being in the user's scope), under the
    pavilion of their county; for a province or prefecture, each of its counties."""
    from ..market.models import Order, OrderLine, OrderState, Pavilion, Product, Sku
    county = func.substr(Product.origin_code, 1, 6)
    q = (select(county, func.sum(OrderLine.amount_fen), func.count(distinct(Order.id)),
                func.sum(OrderLine.quantity))
         .join(Order, Order.id == OrderLine.order_id).join(Sku, Sku.id == OrderLine.sku_id)
         .join(Product, Product.id == Sku.product_id)
         .where(Order.state == OrderState.COMPLETED, OrderLine.refunded.is_(False)))
    q = q.where(Product.origin_code.startswith(scope_prefix(region.code)))
    local = level_of_code(region.code) in (Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE)
    shown = {region.code[:6]} if local else None
    sold = {c: (int(fen or 0), int(n), int(qty or 0)) for c, fen, n, qty in session.execute(q.group_by(county))}
    titles = dict(session.execute(select(Pavilion.county_code, Pavilion.title)).all())
    if shown is None:  # a province or prefecture: its counties' pavilions
        shown = {c for c in titles if c.startswith(scope_prefix(region.code)) and actor.may_reach(c)}
    out = []
    for code in sorted(set(sold) | (shown & set(titles))):
        r = session.get(Region, code)
        fen, n, qty = sold.get(code, (0, 0, 0))
        out.append({"county_code": code, "county": r.name if r else code,
                    "title": titles.get(code), "fen": fen, "orders": n, "quantity": qty})
    return sorted(out, key=lambda x: -x["fen"])


def _section(fn, *args):
    """A section's data, or the reason the user may not see it."""
    try:
        return fn(*args), None
    except PermissionDenied:
        return None, gettext_("Not shown for your role.")
    except InvalidInput as exc:
        return None, exc.message


def alerts(session: Session, actor: Actor, region: str) -> list[dict]:
    """Live cases of the region the monitoring acts on: the assessment's proposals and
    every monitoring case (ecpa.cases.service.queue: the next step and whether I may)."""
    require_role(actor, *CASEWORKERS)
    return [c for c in cases.queue(session, actor, region)
            if c["origin"].startswith("assessment:")
            or c["kind"] in (CaseKind.MONITORING_ENTRY.value, CaseKind.MONITORING_EXIT.value)]


# ------------------------------------------------------------------ the dashboard


@router.get("/dashboard")
def dashboard(request: Request, session: SessionDep, region: str | None = None,
              year: int | None = None, refresh: bool = False) -> Response:
    actor = _official(request, session)
    if isinstance(actor, Response):
        return actor
    place = _region(session, actor, region)
    if place is None:
        return render(request, "dash_index.html", actor=actor, place=None, flash=None)
    prefix = scope_prefix(place.code)
    year = _year(session, prefix, year)
    counts = status_counts(session, actor, place)
    # Villages and townships of the region, with their counts.
    if place.level is Level.VILLAGE:
        villages = [place]
    else:
        villages = session.scalars(select(Region).where(
            Region.level == Level.VILLAGE, Region.code.startswith(prefix)).order_by(Region.code)).all()
    town_codes = sorted({v.parent_code for v in villages if v.parent_code})
    towns = {r.code: r for r in session.scalars(select(Region).where(Region.code.in_(town_codes)))}
    measured, measured_note = _section(measure, session, actor, place.code, year, refresh)
    groups, table, totals = [], [], Counter()
    for tcode in town_codes:
        tv = [v for v in villages if v.parent_code == tcode]
        tsum: Counter = Counter()
        rows, tiles = [], []
        for v in tv:
            c = counts.get(v.code, Counter())
            tsum.update(c)
            h = measured.by_code.get(v.code, {}).get("H") if measured else None
            colour = village_colour(c)
            rows.append({"code": v.code, "name": v.name, "counts": c, "total": sum(c.values()),
                         "colour": colour, "H": h})
            lines = [f"{c.get('identified', 0)}·{c.get('returned', 0) + c.get('monitored', 0)}·{c.get('exited', 0)}"]
            if h is not None:
                lines.append(f"H {pct(h)}")
            tip = (f"{v.name}: " + ", ".join(f"{label(s)} {c.get(s, 0)}" for s in STATUS_ORDER)
                   + (f", H {pct(h)}" if h is not None else ""))
            tiles.append(charts.Tile(v.code, v.name, colour, f"/dashboard?region={v.code}&year={year}",
                                     tuple(lines), tip))
        totals.update(tsum)
        town = towns.get(tcode)
        tname = town.name if town else tcode
        groups.append((tname, tiles))
        th = measured.by_code.get(tcode, {}).get("H") if measured else None
        table.append({"code": tcode, "name": tname, "counts": tsum, "total": sum(tsum.values()),
                      "colour": village_colour(tsum), "H": th, "villages": rows})
    tile_svg = charts.tile_grid(groups, title=gettext_("Villages coloured by poverty"))
    alert_rows, alerts_note = _section(alerts, session, actor, place.code)
    programs, programs_note = _section(program_progress, session, actor, prefix)
    channels, channels_note = _section(channel_income, session, actor, prefix, year)
    sales = pavilion_sales(session, actor, place)
    households = None
    if place.level is Level.VILLAGE and actor.role in CASEWORKERS:
        _, households = registry.list_households(session, actor, registry.HouseholdFilter(region_code=place.code),
                                                 page_size=200)
    flash = request.session.pop("flash", None)
    return render(
        request, "dash_index.html", actor=actor, place=place, trail=_trail(session, place), year=year,
        totals=totals, table=table, tile_svg=tile_svg, measured=measured, measured_note=measured_note,
        chart=contribution_chart(measured) if measured else None,
        measured_at=datetime.fromtimestamp(measured.at).strftime("%H:%M:%S") if measured else None,
        ttl_min=MEASURE_TTL_S // 60, alerts=alert_rows, alerts_note=alerts_note,
        programs=programs, programs_note=programs_note, channels=channels, channels_note=channels_note,
        channel_svg=channel_chart(channels) if channels else None,
        channels_total=sum(r["fen"] for r in channels) if channels else 0,
        sales=sales, households=households, flash=flash, statuses=STATUS_ORDER,
        label=label, labels=labels, pct=pct, may_propose=actor.role in (Role.COUNTY_OFFICER, Role.ADMINISTRATOR))


@router.post("/dashboard/proposals")
def propose(request: Request, session: SessionDep, region: str = Form(...), year: int = Form(...),
            csrf: str = Form("")) -> Response:
    """Turn the assessment into proposed cases (ecpa.cases.service.propose_from_assessment)."""
    check_csrf(request, csrf)
    actor = _official(request, session)
    if isinstance(actor, Response):
        return actor
    made = cases.propose_from_assessment(session, actor, region, year)
    forget_measurements()
    request.session["flash"] = gettext_("Proposed: %(m)d to enter monitoring, %(e)d to exit, "
                                        "%(s)d skipped.") % {"m": made["monitoring_entry"],
                                                             "e": made["exit"], "s": made["skipped"]}
    return RedirectResponse(f"/dashboard?region={region}&year={year}", status_code=303)


# ------------------------------------------------------------------ a household


def household_ledger(session: Session, household_id: int) -> list[dict]:
    """The household's traced income by year and channel (the rule of
    ecpa.ledger.service.attributed_income, for one household)."""
    from ..ledger.models import Account, AccountKind, Posting, Transaction
    year = func.extract("year", Transaction.business_date)
    rows = session.execute(
        select(year, Posting.channel, func.sum(-Posting.amount_fen))
        .join(Transaction, Transaction.id == Posting.transaction_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.household_id == household_id, Posting.channel.is_not(None),
               Account.kind == AccountKind.HOUSEHOLD)
        .group_by(year, Posting.channel)).all()
    by_year: dict[int, dict[str, int]] = {}
    for y, ch, fen in rows:
        by_year.setdefault(int(y), {})[getattr(ch, "value", ch)] = int(fen)
    return [{"year": y, "by_channel": ch, "total": sum(ch.values())} for y, ch in sorted(by_year.items())]


@router.get("/households/{household_id}")
def household(household_id: int, request: Request, session: SessionDep) -> Response:
    actor = _official(request, session, *CASEWORKERS)
    if isinstance(actor, Response):
        return actor
    view = registry.get_household(session, actor, household_id)  # masked; scope checked, audited
    status = Status(view["status"]) if view["status"] else None
    at_risk = bool(view["monitoring_category"]) and not view["risk_eliminated"]
    for e in view["status_history"]:
        e["colour"] = cases.colour(Status(e["status"]))
    live = [cases.case_view(session, c, detail=False) for c in session.scalars(
        select(Case).where(Case.household_id == household_id, Case.state.in_(cases.LIVE)).order_by(Case.id))]
    village = session.get(Region, view["village_code"])
    return render(request, "dash_household.html", actor=actor, h=view, colour=cases.colour(status, at_risk),
                  village=village, trail=_trail(session, village) if village else [],
                  cases=live, ledger=household_ledger(session, household_id), label=label,
                  sources=("wages", "farming_business", "property", "transfers", "ecommerce"))


# ------------------------------------------------------------------ register import


@dataclass
class _Report:
    username: str
    folder: Path
    file: Path
    name: str
    at: float


_reports: dict[str, _Report] = {}
_reports_lock = threading.Lock()


def _sweep() -> None:
    now = time.time()
    with _reports_lock:
        old = [t for t, r in _reports.items() if now - r.at > REPORT_TTL_S]
        gone = [_reports.pop(t) for t in old]
    for r in gone:
        shutil.rmtree(r.folder, ignore_errors=True)


@router.get("/registry/import")
def import_form(request: Request, session: SessionDep) -> Response:
    actor = _official(request, session, *CASEWORKERS)
    if isinstance(actor, Response):
        return actor
    return render(request, "dash_import.html", actor=actor, result=None, message=None)


@router.post("/registry/import")
def import_file(request: Request, session: SessionDep, file: Annotated[UploadFile, File()],
                csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    actor = _official(request, session, *CASEWORKERS)
    if isinstance(actor, Response):
        return actor
    from ..registry.importer import import_register
    name = Path(file.filename or "register.csv").name
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        return render(request, "dash_import.html", actor=actor, result=None, status=422,
                      message=gettext_("Choose a .csv or .xlsx register file."))
    _sweep()
    folder = Path(tempfile.mkdtemp(prefix="ecpa-import-"))
    path = folder / f"register{suffix}"
    with path.open("wb") as fh:
        shutil.copyfileobj(file.file, fh)
    try:
        with session.begin_nested():
            result = import_register(session, actor, path)
    except EcpaError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, PermissionDenied):
            raise
        return render(request, "dash_import.html", actor=actor, result=None, status=exc.status,
                      message=exc.message, name=name)
    token = None
    if result.error_file:
        token = secrets.token_urlsafe(24)
        with _reports_lock:
            _reports[token] = _Report(actor.username, folder, Path(result.error_file),
                                      Path(name).stem + ".errors.csv", time.time())
    else:
        shutil.rmtree(folder, ignore_errors=True)
    if result.written:
        forget_measurements()
    return render(request, "dash_import.html", actor=actor, result=result, name=name, token=token,
                  errors=result.errors[:200], status=200 if result.written else 422, message=None)


@router.get("/registry/import/errors/{token}")
def import_errors(token: str, request: Request, session: SessionDep) -> Response:
    actor = _official(request, session, *CASEWORKERS)
    if isinstance(actor, Response):
        return actor
    with _reports_lock:
        report = _reports.get(token)
    if (report is None or report.username != actor.username
            or time.time() - report.at > REPORT_TTL_S or not report.file.exists()):
        raise NotFound("no such error report (they are kept for an hour, for the user who imported)")
    return FileResponse(report.file, media_type="text/csv; charset=utf-8", filename=report.name)


# ------------------------------------------------------------------ cases


@router.get("/cases")
def case_list(request: Request, session: SessionDep, region: str | None = None,
              state: str | None = None, kind: str | None = None) -> Response:
    actor = _official(request, session, *CASEWORKERS)
    if isinstance(actor, Response):
        return actor
    try:
        rows = cases.queue(session, actor, region or None, state or None, kind or None)
    except ValueError:
        raise InvalidInput("unknown case state or kind", field="state") from None
    return render(request, "dash_cases.html", actor=actor, cases=rows, label=label,
                  region=region or actor.region_code or "")


def _may_take(actor: Actor, case: Case) -> bool:
    step = cases.current_step(case)
    if step is None or case.state not in cases.LIVE:
        return False
    try:
        cases._authorise(actor, case, step)
    except PermissionDenied:
        return False
    return True


def _case_page(request: Request, session: Session, actor: Actor, case_id: int,
               message: str | None = None, status: int = 200) -> Response:
    case = cases.get_case(session, case_id)
    require_region(actor, case.village_code)
    view = cases.case_view(session, case)
    return render(request, "dash_case.html", actor=actor, c=view, label=label, status=status,
                  message=message, may_take=_may_take(actor, case),
                  live=case.state in cases.LIVE,
                  may_withdraw=case.state in cases.LIVE and (
                      actor.username == case.opened_by
                      or actor.role in (Role.COUNTY_OFFICER, Role.ADMINISTRATOR)))


@router.get("/cases/{case_id}")
def case_page(case_id: int, request: Request, session: SessionDep) -> Response:
    actor = _official(request, session, *CASEWORKERS)
    if isinstance(actor, Response):
        return actor
    return _case_page(request, session, actor, case_id)


@router.post("/cases/{case_id}")
def case_action(case_id: int, request: Request, session: SessionDep, action: str = Form(...),
                comment: str = Form(""), step: str = Form(""), csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = _official(request, session, *CASEWORKERS)
    if isinstance(actor, Response):
        return actor
    try:
        with session.begin_nested():
            if action == "step":
                cases.take_step(session, actor, case_id, comment, expected=step or None)
            elif action == "reject":
                cases.reject(session, actor, case_id, comment)
            elif action == "withdraw":
                cases.withdraw(session, actor, case_id, comment)
            elif action == "comment":
                cases.comment(session, actor, case_id, comment)
            else:
                raise InvalidInput(f"unknown action {action!r}", field="action")
    except EcpaError as exc:
        if isinstance(exc, NotFound):
            raise
        return _case_page(request, session, actor, case_id, exc.message, exc.status)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
