"""HTTP routes of the cooperatives: the Gansu models, charters, members, labour days,
wages, members' trade, the year-end distribution with its statement, and members'
accounts with their payouts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import Decimal

from fastapi import Query
from pydantic import BaseModel, Field, StrictInt

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service

router = ApiRouter(prefix="/api/cooperatives", tags=["cooperatives"])


class CharterIn(BaseModel):
    model: str = Field(service.CUSTOM, description="gansu-3.1 … gansu-3.4, or custom")
    wage_per_day_fen: StrictInt | None = Field(None, ge=0, description="integer fen per labour day")
    shares_per_mu: StrictInt | None = Field(None, ge=0, le=1000)
    fen_per_capital_share: StrictInt | None = Field(None, gt=0, description="capital per share, fen")
    labour_days_per_share: StrictInt | None = Field(None, gt=0)
    collective_bp: StrictInt | None = Field(None, ge=0, le=10000, description="basis points")
    reserve_bp: StrictInt | None = Field(None, ge=0, le=10000, description="basis points")
    trade_return_bp: StrictInt | None = Field(
        None, ge=0, le=10000,
        description="share of the distributable surplus returned by members' trade, basis "
                    "points: 0, or at least 6000 as the cooperatives law asks")
    collective_region_code: str | None = Field(None, description="the village collective's region")


class JoinIn(BaseModel):
    household_id: int
    date: date
    land_mu: Decimal = Field(Decimal(0), ge=0, decimal_places=2,
                             description="mu, as a decimal string such as \"3.25\"")
    labourers: StrictInt = Field(0, ge=0, le=100)
    capital_fen: StrictInt = Field(0, ge=0, description="integer fen")


class LeaveIn(BaseModel):
    date: date


class LabourIn(BaseModel):
    household_id: int
    key: str = Field(min_length=1, max_length=100, description="idempotency key of the record")
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    days: StrictInt = Field(gt=0)


class TradeIn(BaseModel):
    household_id: int
    key: str = Field(min_length=1, max_length=100, description="idempotency key of the record")
    date: date
    product: str = Field(min_length=1, max_length=100, description="what was delivered or bought")
    value_fen: StrictInt = Field(gt=0, description="value traded, integer fen")


class PayoutIn(BaseModel):
    household_id: int
    key: str = Field(min_length=1, max_length=100, description="the transfer's or receipt's number")
    date: date
    amount_fen: StrictInt = Field(gt=0, description="integer fen")
    method: str = Field("bank_transfer", description="bank_transfer (一卡通) or cash")


class WagesIn(BaseModel):
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    date: date


class DistributeIn(BaseModel):
    year: int = Field(ge=2000, le=2100)
    surplus_fen: StrictInt = Field(gt=0, description="the year's surplus, integer fen")
    date: date


@router.get("/models")
def models(actor: ActorDep) -> list[dict]:
    """The four Gansu models (seed 004 §3) as charter presets."""
    return [{"key": p.key, "title": p.title, "source": p.source, "why": p.why, **p.params}
            for p in service.presets().values()]


@router.put("/{cooperative_id}/charters/{year}")
def set_charter(cooperative_id: int, year: int, body: CharterIn, session: SessionDep,
                actor: ActorDep) -> dict:
    params = body.model_dump()
    charter = service.set_charter(session, actor, cooperative_id, year, **params)
    return service.charter_view(charter)


@router.get("/{cooperative_id}/charters/{year}")
def get_charter(cooperative_id: int, year: int, session: SessionDep, actor: ActorDep) -> dict:
    return service.charter_view(service.get_charter(session, actor, cooperative_id, year))


@router.get("/{cooperative_id}/members")
def members(cooperative_id: int, session: SessionDep, actor: ActorDep,
            on: date | None = None) -> list[dict]:
    return service.members(session, actor, cooperative_id, on)


@router.post("/{cooperative_id}/members", status_code=201)
def join(cooperative_id: int, body: JoinIn, session: SessionDep, actor: ActorDep) -> dict:
    m = service.join(session, actor, cooperative_id, body.household_id, body.date, body.land_mu,
                     body.labourers, body.capital_fen)
    return service.membership_view(m)


@router.post("/{cooperative_id}/members/{household_id}/leave")
def leave(cooperative_id: int, household_id: int, body: LeaveIn, session: SessionDep,
          actor: ActorDep) -> dict:
    m = service.leave(session, actor, cooperative_id, household_id, body.date)
    return {"household_id": m.household_id, "joined_on": m.joined_on.isoformat(),
            "left_on": m.left_on.isoformat()}


@router.post("/{cooperative_id}/labour", status_code=201)
def labour(cooperative_id: int, body: LabourIn, session: SessionDep, actor: ActorDep) -> dict:
    r = service.record_labour(session, actor, cooperative_id, body.household_id, body.key,
                              body.period, body.days)
    return {"household_id": r.household_id, "key": r.key, "period": r.period, "days": r.days}


@router.post("/{cooperative_id}/trades", status_code=201)
def trade(cooperative_id: int, body: TradeIn, session: SessionDep, actor: ActorDep) -> dict:
    """A member household's trade with the cooperative, for the return by trade."""
    r = service.record_trade(session, actor, cooperative_id, body.household_id, body.key,
                             body.date, body.value_fen, body.product)
    return {"household_id": r.household_id, "key": r.key, "date": r.traded_on.isoformat(),
            "product": r.product, "value_fen": r.value_fen}


@router.get("/{cooperative_id}/trades")
def trades(cooperative_id: int, session: SessionDep, actor: ActorDep,
           year: int = Query(ge=2000, le=2100)) -> dict:
    return service.trades(session, actor, cooperative_id, year)


@router.post("/{cooperative_id}/payouts", status_code=201)
def pay_out(cooperative_id: int, body: PayoutIn, session: SessionDep, actor: ActorDep) -> dict:
    """Pay a member household what the cooperative owes it (never more)."""
    return service.pay_out(session, actor, cooperative_id, body.household_id, body.key,
                           body.date, body.amount_fen, body.method)


@router.get("/{cooperative_id}/accounts")
def accounts(cooperative_id: int, session: SessionDep, actor: ActorDep) -> list[dict]:
    """Each member household's account: credited by channel, paid out, still owed."""
    return service.member_accounts(session, actor, cooperative_id)


@router.post("/{cooperative_id}/wages")
def wages(cooperative_id: int, body: WagesIn, session: SessionDep, actor: ActorDep) -> dict:
    """Pay the period's labour days; a repeat pays only what was recorded since."""
    lines = service.pay_wages(session, actor, cooperative_id, body.period, body.date)
    return {"period": body.period, "date": body.date.isoformat(),
            "paid_now_fen": sum(x.wage_fen for x in lines if not x.already_paid),
            "lines": [asdict(x) for x in lines]}


@router.post("/{cooperative_id}/distributions", status_code=201)
def distribute(cooperative_id: int, body: DistributeIn, session: SessionDep,
               actor: ActorDep) -> dict:
    return service.distribute(session, actor, cooperative_id, body.year, body.surplus_fen,
                              body.date)


@router.get("/{cooperative_id}/distributions/{year}")
def statement(cooperative_id: int, year: int, session: SessionDep, actor: ActorDep) -> dict:
    return service.statement(session, actor, cooperative_id, year)
