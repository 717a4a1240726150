"""Use cases of the ledger: accounts, posting balanced transactions idempotently,
reversals, closing periods, balances, statements and income attributed to households."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..db import in_list, utcnow
from ..errors import Conflict, InvalidInput, NotFound
from ..people.access import Actor, audit, require_role
from ..people.models import Role
from .models import Account, AccountKind, Channel, Period, Posting, Transaction

POSTERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.COOPERATIVE_MANAGER, Role.ENTERPRISE)


@dataclass(frozen=True)
class Leg:
    account: str  # account code
    amount_fen: int  # + debit, - credit
    household_id: int | None = None
    channel: Channel | None = None


def open_account(session: Session, code: str, name: str, kind: AccountKind,
                 household_id: int | None = None, organisation_id: int | None = None,
                 region_code: str | None = None) -> Account:
    """The account with ``code``, created if missing (opening is idempotent too)."""
    acc = session.scalar(select(Account).where(Account.code == code))
    if acc is not None:
        if acc.kind is not kind:
            raise Conflict(f"account {code} exists with kind {acc.kind.value}", code=code)
        return acc
    acc = Account(code=code, name=name, kind=kind, household_id=household_id,
                  organisation_id=organisation_id, region_code=region_code)
    session.add(acc)
    session.flush()
    return acc


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _check_legs(legs: list[Leg]) -> None:
    if len(legs) < 2:
        raise InvalidInput("a transaction needs at least two legs")
    for i, leg in enumerate(legs):
        if type(leg.amount_fen) is not int:
            raise InvalidInput(f"leg {i}: amount must be integer fen, got {leg.amount_fen!r}",
                               leg=i)
        if leg.amount_fen == 0:
            raise InvalidInput(f"leg {i}: amount is zero", leg=i)
        if leg.channel is not None and leg.household_id is None:
            raise InvalidInput(f"leg {i}: a channel is given without the household it reached",
                               leg=i)
    total = sum(leg.amount_fen for leg in legs)
    if total != 0:
        raise InvalidInput(f"legs do not balance: they sum to {total} fen", total=total)


def _same(txn: Transaction, postings: list[Posting], legs: list[Leg], accounts: dict[str, Account],
          business_date: date) -> bool:
    mine = sorted((accounts[l.account].id, l.amount_fen, l.household_id, l.channel) for l in legs)
    theirs = sorted((p.account_id, p.amount_fen, p.household_id, p.channel) for p in postings)
    return mine == theirs and txn.business_date == business_date


def post(session: Session, actor: Actor, key: str, business_date: date, description: str,
         legs: list[Leg], reverses_id: int | None = None) -> Transaction:
    """Record a balanced transaction once.  Posting the same key again returns the
    transaction already recorded; the same key with other legs is a conflict."""
    require_role(actor, *POSTERS)
    if not key or len(key) > 200:
        raise InvalidInput("an idempotency key of 1 to 200 characters is required", field="key")
    _check_legs(legs)
    codes = {leg.account for leg in legs}
    accounts = {a.code: a for a in session.scalars(select(Account).where(Account.code.in_(codes)))}
    missing = sorted(codes - set(accounts))
    if missing:
        raise InvalidInput(f"unknown account(s): {', '.join(missing)}", accounts=missing)
    existing = session.scalar(select(Transaction).where(Transaction.key == key))
    if existing is not None:
        postings = list(session.scalars(select(Posting).where(Posting.transaction_id == existing.id)))
        if not _same(existing, postings, legs, accounts, business_date):
            raise Conflict(f"idempotency key {key!r} was used for a different transaction",
                           key=key, transaction_id=existing.id)
        return existing
    period = period_of(business_date)
    closed = session.scalar(select(Period.closed).where(Period.code == period))
    if closed:
        raise Conflict(f"period {period} is closed: post into an open period", period=period)
    txn = Transaction(key=key, business_date=business_date, period=period,
                      description=description, reverses_id=reverses_id,
                      recorded_by=actor.username)
    session.add(txn)
    session.flush()
    session.add_all(Posting(transaction_id=txn.id, leg=i, account_id=accounts[leg.account].id,
                            amount_fen=leg.amount_fen, household_id=leg.household_id,
                            channel=leg.channel) for i, leg in enumerate(legs))
    session.flush()
    return txn


@dataclass(frozen=True)
class Entry:
    """One transaction of a batch for ``post_many``."""

    key: str
    business_date: date
    description: str
    legs: list[Leg]


def _chunks(values: list, size: int = 5000):
    # IN lists stay under every database's parameter limit.
    for i in range(0, len(values), size):
        yield values[i:i + size]


def post_many(session: Session, actor: Actor, entries: list[Entry]) -> int:
    """Record many balanced transactions at once (a settlement, a payroll), with the
    checks and the idempotency of ``post`` in a few queries and bulk inserts: a key
    already recorded with the same legs is skipped, with other legs it is a conflict.
    Returns how many transactions were new."""
    from ..db import bulk_insert

    require_role(actor, *POSTERS)
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if not e.key or len(e.key) > 200:
            raise InvalidInput(f"entry {i}: an idempotency key of 1 to 200 characters is required",
                               entry=i)
        if e.key in seen:
            raise InvalidInput(f"entry {i}: key {e.key!r} appears twice in the batch", entry=i)
        seen.add(e.key)
        try:
            _check_legs(e.legs)
        except InvalidInput as exc:
            raise InvalidInput(f"entry {i} ({e.key}): {exc.message}", entry=i) from None
    codes = sorted({leg.account for e in entries for leg in e.legs})
    accounts: dict[str, int] = {}
    for part in _chunks(codes):
        accounts.update(session.execute(select(Account.code, Account.id)
                                        .where(in_list(session, Account.code, part))).all())
    missing = [c for c in codes if c not in accounts]
    if missing:
        raise InvalidInput(f"unknown account(s): {', '.join(missing[:10])}", accounts=missing[:10])
    existing: dict[str, int] = {}
    for part in _chunks([e.key for e in entries]):
        existing.update(session.execute(select(Transaction.key, Transaction.id)
                                        .where(in_list(session, Transaction.key, part))).all())
    if existing:
        recorded: dict[int, list] = {}
        for part in _chunks(list(existing.values())):
            for tid, acc, amount, hh, ch in session.execute(
                    select(Posting.transaction_id, Posting.account_id, Posting.amount_fen,
                           Posting.household_id, Posting.channel)
                    .where(Posting.transaction_id.in_(part))):
                recorded.setdefault(tid, []).append((acc, amount, hh, ch))
        for e in entries:
            if e.key in existing:
                mine = sorted((accounts[l.account], l.amount_fen, l.household_id, l.channel)
                              for l in e.legs)
                if mine != sorted(recorded.get(existing[e.key], [])):
                    raise Conflict(f"idempotency key {e.key!r} was used for a different transaction",
                                   key=e.key, transaction_id=existing[e.key])
    new = [e for e in entries if e.key not in existing]
    if not new:
        return 0
    periods = sorted({period_of(e.business_date) for e in new})
    closed = session.scalars(select(Period.code).where(Period.code.in_(periods),
                                                       Period.closed.is_(True))).all()
    if closed:
        raise Conflict(f"period {closed[0]} is closed: post into an open period", period=closed[0])
    now = utcnow()
    rows = [{"key": e.key, "business_date": e.business_date, "period": period_of(e.business_date),
             "description": e.description, "reverses_id": None, "recorded_by": actor.username,
             "recorded_at": now} for e in new]
    ids: dict[str, int] = {}
    if session.get_bind().dialect.name == "postgresql":
        # Ids drawn from the sequence up front, so that transactions go in with COPY too
        # (a multi-row INSERT … RETURNING of thousands of rows costs more to build than
        # to run).
        drawn = session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('ledger_transaction', 'id')) "
            "FROM generate_series(1, :n)"), {"n": len(rows)}).all()
        for row, tid in zip(rows, drawn):
            row["id"] = tid
            ids[row["key"]] = tid
        bulk_insert(session, Transaction.__table__, rows)
    else:
        for part in _chunks(rows, 2000):
            ids.update(session.execute(
                Transaction.__table__.insert().returning(Transaction.key, Transaction.id),
                part).all())
    bulk_insert(session, Posting.__table__, [
        {"transaction_id": ids[e.key], "leg": i, "account_id": accounts[leg.account],
         "amount_fen": leg.amount_fen, "household_id": leg.household_id, "channel": leg.channel}
        for e in new for i, leg in enumerate(e.legs)])
    session.flush()
    return len(new)


def balances(session: Session, codes: list[str]) -> dict[str, int]:
    """Balances of many accounts in one query per few thousand (missing ones: 0)."""
    out = dict.fromkeys(codes, 0)
    for part in _chunks(codes):
        # Accounts first, then their postings by the indexed account id: a join filtered
        # on codes lets PostgreSQL scan every posting for each batch.
        ids = dict(session.execute(select(Account.id, Account.code)
                                    .where(in_list(session, Account.code, part))).all())
        if ids:
            out.update((ids[aid], int(total)) for aid, total in session.execute(
                select(Posting.account_id, func.sum(Posting.amount_fen))
                .where(in_list(session, Posting.account_id, list(ids))).group_by(Posting.account_id)))
    return out


def reverse(session: Session, actor: Actor, transaction_id: int, key: str, business_date: date,
            reason: str) -> Transaction:
    """Undo a transaction by posting its legs negated (the original stays)."""
    original = session.get(Transaction, transaction_id)
    if original is None:
        raise NotFound(f"no transaction {transaction_id}")
    if original.reverses_id is not None:
        raise Conflict(f"transaction {transaction_id} is itself a reversal")
    already = session.scalar(select(Transaction).where(Transaction.reverses_id == transaction_id))
    if already is not None and already.key != key:
        raise Conflict(f"transaction {transaction_id} was already reversed by {already.id}")
    rows = session.execute(
        select(Account.code, Posting.amount_fen, Posting.household_id, Posting.channel)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.transaction_id == transaction_id).order_by(Posting.leg)).all()
    legs = [Leg(code, -amount, hh, ch) for code, amount, hh, ch in rows]
    return post(session, actor, key, business_date, f"reversal of {transaction_id}: {reason}",
                legs, reverses_id=transaction_id)


def close_period(session: Session, actor: Actor, period: str) -> Period:
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise InvalidInput(f"period {period!r} is not YYYY-MM", field="period")
    row = session.get(Period, period)
    if row is None:
        row = Period(code=period)
        session.add(row)
    if row.closed:
        return row
    row.closed, row.closed_at, row.closed_by = True, utcnow(), actor.username
    session.flush()
    audit(session, actor, "close_period", "ledger", period)
    return row


def _account(session: Session, code: str) -> Account:
    acc = session.scalar(select(Account).where(Account.code == code))
    if acc is None:
        raise NotFound(f"no account {code}")
    return acc


def balance(session: Session, code: str, as_of: date | None = None) -> int:
    """Sum of the account's postings (debits positive) up to ``as_of`` inclusive."""
    acc = _account(session, code)
    stmt = select(func.coalesce(func.sum(Posting.amount_fen), 0)).join(
        Transaction, Transaction.id == Posting.transaction_id).where(Posting.account_id == acc.id)
    if as_of is not None:
        stmt = stmt.where(Transaction.business_date <= as_of)
    return int(session.scalar(stmt))


def statement(session: Session, code: str, start: date, end: date) -> dict:
    """Opening balance, each posting in order with the running balance, closing balance."""
    acc = _account(session, code)
    opening = balance(session, code, date.fromordinal(start.toordinal() - 1))
    rows = session.execute(
        select(Transaction.id, Transaction.business_date, Transaction.description,
               Posting.amount_fen, Posting.channel)
        .join(Transaction, Transaction.id == Posting.transaction_id)
        .where(Posting.account_id == acc.id, Transaction.business_date >= start,
               Transaction.business_date <= end)
        .order_by(Transaction.business_date, Transaction.id, Posting.leg)).all()
    running, lines = opening, []
    for tid, day, desc, amount, channel in rows:
        running += amount
        lines.append({"transaction_id": tid, "date": day.isoformat(), "description": desc,
                      "amount_fen": amount, "channel": channel.value if channel else None,
                      "balance_fen": running})
    return {"account": code, "from": start.isoformat(), "to": end.isoformat(),
            "opening_fen": opening, "lines": lines, "closing_fen": running}


def attributed_income(session: Session, year: int) -> dict[int, dict[str, int]]:
    """Money that reached each household in ``year``, by channel, in fen.

    Counted on the household's own side: credits to the household's accounts are income
    (a household account is a liability of the platform to the household, so money owed to
    it is a credit); its reversals net out automatically.
    """
    rows = session.execute(
        select(Posting.household_id, Posting.channel, func.sum(-Posting.amount_fen))
        .join(Transaction, Transaction.id == Posting.transaction_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.household_id.is_not(None), Posting.channel.is_not(None),
               Account.kind == AccountKind.HOUSEHOLD,
               Transaction.business_date >= date(year, 1, 1),
               Transaction.business_date <= date(year, 12, 31))
        .group_by(Posting.household_id, Posting.channel)).all()
    out: dict[int, dict[str, int]] = {}
    for hid, channel, amount in rows:
        out.setdefault(hid, {})[channel.value] = int(amount)
    return out


# Where the ledger's income channels go in the registry's income records. Savings on the
# multidimensional path (education, health, ecology, consumption) are not income and are
# not written.
CHANNEL_SOURCE = {
    Channel.INDUSTRY: "ecommerce",            # sales and buy-back of the household's produce
    Channel.ENTREPRENEURSHIP: "farming_business",
    Channel.EMPLOYMENT: "wages",
    Channel.FINANCIAL: "property",            # dividends, asset income
}


def write_attributed_income(session: Session, actor: Actor, year: int) -> dict[str, int]:
    """Write a year's attributed income into the registry's income records, so that
    measurement sees it.  The registry's figure for a source is often a survey answer
    that may already include part of what the ledger traced, so the traced amount is a
    floor: a record is created where there is none and raised where it is lower, never
    lowered.  Running it again changes nothing."""
    from ..registry.models import Household, Income, IncomeSource

    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    traced: dict[tuple[int, str], int] = {}
    for hid, channels in attributed_income(session, year).items():
        for channel, amount in channels.items():
            source = CHANNEL_SOURCE.get(Channel(channel))
            if source:
                traced[(hid, source)] = traced.get((hid, source), 0) + amount
    counts = {"created": 0, "raised": 0, "unchanged": 0, "outside_scope": 0}
    if not traced:
        return counts
    villages = dict(session.execute(
        select(Household.id, Household.village_code)
        .where(Household.id.in_({hid for hid, _ in traced}))).all())
    existing = {(r.household_id, r.source.value): r for r in session.scalars(
        select(Income).where(Income.year == year,
                             Income.household_id.in_({hid for hid, _ in traced})))}
    for (hid, source), amount in sorted(traced.items()):
        if amount <= 0:
            continue
        if not actor.may_reach(villages[hid]):
            counts["outside_scope"] += 1
            continue
        row = existing.get((hid, source))
        if row is None:
            session.add(Income(household_id=hid, year=year, source=IncomeSource(source),
                               amount_fen=amount))
            counts["created"] += 1
        elif row.amount_fen < amount:
            row.amount_fen = amount
            counts["raised"] += 1
        else:
            counts["unchanged"] += 1
    session.flush()
    audit(session, actor, "write_attributed_income", "ledger", None, {"year": year, **counts})
    return counts
