"""Routes: accounts, idempotent transactions, reversals, balances, statements, periods."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, StrictInt

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from ..errors import InvalidInput
from ..people.access import require_role
from ..people.models import Role
from . import service
from .models import AccountKind, Channel

router = ApiRouter(prefix="/api/ledger", tags=["ledger"])
READERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.COOPERATIVE_MANAGER, Role.ENTERPRISE,
           Role.ANALYST)


class AccountIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    kind: AccountKind
    household_id: int | None = None
    organisation_id: int | None = None
    region_code: str | None = None


class LegIn(BaseModel):
    account: str
    amount_fen: StrictInt = Field(description="integer fen; positive debit, negative credit")
    household_id: int | None = None
    channel: Channel | None = None


class TransactionIn(BaseModel):
    key: str = Field(min_length=1, max_length=200, description="idempotency key")
    date: date
    description: str = Field(min_length=1, max_length=500)
    legs: list[LegIn] = Field(min_length=2)


class ReversalIn(BaseModel):
    key: str = Field(min_length=1, max_length=200)
    date: date
    reason: str = Field(min_length=1, max_length=400)


def _txn(t) -> dict:
    return {"id": t.id, "key": t.key, "date": t.business_date.isoformat(), "period": t.period,
            "description": t.description, "reverses_id": t.reverses_id}


@router.post("/accounts", status_code=201)
def open_account(body: AccountIn, session: SessionDep, actor: ActorDep) -> dict:
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    acc = service.open_account(session, **body.model_dump())
    return {"id": acc.id, "code": acc.code, "kind": acc.kind.value}


@router.post("/transactions", status_code=201)
def post_transaction(body: TransactionIn, session: SessionDep, actor: ActorDep) -> dict:
    legs = [service.Leg(l.account, l.amount_fen, l.household_id, l.channel) for l in body.legs]
    return _txn(service.post(session, actor, body.key, body.date, body.description, legs))


@router.post("/transactions/{transaction_id}/reversal", status_code=201)
def reverse(transaction_id: int, body: ReversalIn, session: SessionDep, actor: ActorDep) -> dict:
    return _txn(service.reverse(session, actor, transaction_id, body.key, body.date, body.reason))


@router.get("/accounts/{code}/statement")
def statement(code: str, start: date, end: date, session: SessionDep, actor: ActorDep) -> dict:
    require_role(actor, *READERS)
    if end < start:
        raise InvalidInput("end is before start", field="end")
    return service.statement(session, code, start, end)


@router.post("/periods/{period}/close")
def close(period: str, session: SessionDep, actor: ActorDep) -> dict:
    row = service.close_period(session, actor, period)
    return {"period": row.code, "closed": row.closed}


@router.post("/attributed-income/{year}")
def write_attributed_income(year: int, session: SessionDep, actor: ActorDep) -> dict:
    """Write the year's income traced to households into the registry's income records
    (created where missing, raised where lower; idempotent)."""
    if not 1990 <= year <= 2100:
        raise InvalidInput(f"year {year} is out of range", field="year", value=year)
    return {"year": year, **service.write_attributed_income(session, actor, year)}
