"""The cooperative manager's page (seed 000 §III.A, contract farming that "costs nothing"):
the farming programs of the manager's cooperatives with their figures, and the buy-back
settlement — advance netted, guarantee covering a shortfall, loans repaid, the rest paid —
run from a form and shown line by line."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from ..api.deps import SessionDep
from ..db import session_factory
from ..errors import EcpaError, InvalidInput, NotFound, PermissionDenied
from ..people.access import Actor
from ..people.models import Role
from ..programs import farming
from ..programs.models import FarmingProgram
from ..regions.codes import scope_prefix
from ..registry.models import Household, Organisation, OrganisationKind
from .pages import signin_required
from .render import render
from .security import check_csrf, current_actor

router = APIRouter(include_in_schema=False)

ROLES = (Role.COOPERATIVE_MANAGER, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)


def _manager(request: Request, session) -> Actor | Response:
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    if actor.role not in ROLES:
        raise PermissionDenied("this page is for cooperative managers")
    return actor


def _cooperatives(session, actor: Actor) -> list[Organisation]:
    """The cooperatives in the manager's region (managers are scoped by region)."""
    stmt = select(Organisation).where(Organisation.kind == OrganisationKind.COOPERATIVE)
    if actor.region_code:
        stmt = stmt.where(Organisation.region_code.startswith(scope_prefix(actor.region_code)))
    return list(session.scalars(stmt.order_by(Organisation.name, Organisation.id)))


def _program(session, actor: Actor, program_id: int) -> FarmingProgram:
    program = session.get(FarmingProgram, program_id)
    if program is None:
        raise NotFound(f"no farming program {program_id}")
    coop = session.get(Organisation, program.cooperative_id)
    if not actor.may_reach(coop.region_code):
        raise PermissionDenied(f"program {program_id} belongs to a cooperative outside your "
                               f"region ({actor.region_code})")
    return program


def _figures(summary: dict) -> dict:
    e = summary["enrolments"]
    return {"households": len(e), "units": sum(x["units"] for x in e),
            "lost": sum(x["lost_units"] for x in e),
            "advance_fen": sum(x["advance_fen"] for x in e),
            "bought_fen": sum(x["bought_fen"] for x in e),
            "settled": sum(1 for x in e if x["settled"])}


def _home(request: Request, session, actor: Actor, status: int = 200, **extra) -> Response:
    coops = _cooperatives(session, actor)
    programs = []
    if coops:
        names = {c.id: c.name for c in coops}
        for p in session.scalars(select(FarmingProgram).where(
                FarmingProgram.cooperative_id.in_(list(names))).order_by(FarmingProgram.id)):
            summary = farming.program_summary(session, actor, p.id)
            programs.append({**summary, "cooperative": names[p.cooperative_id],
                             "figures": _figures(summary)})
    return render(request, "coop_home.html", status=status, actor=actor,
                  cooperatives=[{"id": c.id, "name": c.name} for c in coops],
                  programs=programs, today=date.today().isoformat(), **extra)


@router.get("/cooperative")
def cooperative_home(request: Request, session: SessionDep) -> Response:
    actor = _manager(request, session)
    if isinstance(actor, Response):
        return actor
    return _home(request, session, actor)


@router.post("/cooperative/settlement")
def run_settlement(request: Request, session: SessionDep, program_id: int = Form(...),
                   day: str = Form(""), csrf: str = Form("")) -> Response:
    """Settle the program on a day: each household once, whatever happens (the
    settlement's own keys make a second run, or a run after a crash, pay nobody twice)."""
    check_csrf(request, csrf)
    actor = _manager(request, session)
    if isinstance(actor, Response):
        return actor
    program = _program(session, actor, program_id)
    name, unit = program.name, program.unit
    try:
        try:
            when = date.fromisoformat(day.strip())
        except ValueError:
            raise InvalidInput(f"the date {day!r} is not a date (YYYY-MM-DD)", field="day") from None
        session.rollback()  # nothing held while the settlement commits its batches
        lines = farming.settle(session_factory(), actor, program_id, when)
    except EcpaError as exc:
        if isinstance(exc, PermissionDenied):
            raise
        return _home(request, session, actor, status=exc.status, message=exc.message,
                     chosen=program_id, day=day)
    numbers = dict(session.execute(select(Household.id, Household.number).where(
        Household.id.in_([x.household_id for x in lines]))).all()) if lines else {}
    rows = [{"household": numbers.get(x.household_id, x.household_id),
             "bought_fen": x.bought_fen, "advance_fen": x.advance_fen,
             "loan_repaid_fen": x.loan_repaid_fen, "guarantee_fen": x.guarantee_fen,
             "paid_fen": x.paid_fen, "already": x.already_settled} for x in lines]
    totals = {k: sum(r[k] for r in rows) for k in
              ("bought_fen", "advance_fen", "loan_repaid_fen", "guarantee_fen", "paid_fen")}
    return render(request, "coop_settlement.html", actor=actor,
                  program={"id": program_id, "name": name, "unit": unit}, day=when.isoformat(),
                  rows=rows, totals=totals, newly=sum(1 for r in rows if not r["already"]))
