"""Use cases of the cooperatives: charters, members, labour days, wages, and the
year-end distribution of the surplus.

Money moves only through the ledger, each step under a deterministic idempotency key:

* a wage — ``coop:<c>:wage:<labour record>`` — debits the cooperative's wage account
  and credits the household's account ``hh:<h>:coop:<c>`` through the EMPLOYMENT channel
  (the registry's "wages");
* a distribution — ``coop:<c>:distribution:<year>``, one balanced transaction — debits
  the cooperative's surplus and credits the village collective fund
  ``collective:<region>``, the reserve ``coop:<c>:reserve`` and each member household's
  account: its return by trade through the INDUSTRY channel (a late part of the price of
  what it sold through the cooperative: the registry's "ecommerce"), its dividend through
  the FINANCIAL channel (asset income: the registry's "property");
* a payout — ``coop:<c>:payout:<key>`` — debits the household's account and credits the
  cooperative's ``coop:<c>:payouts``: what the cooperative owed reaches the household's
  bank card (一卡通) or hand.  It is not more income (no channel), and never more than
  the account holds: what is credited and not paid out is the cooperative's debt to the
  household, which ``member_accounts`` shows.

Return by trade.  China's Law on Farmer Specialised Cooperatives (2017, art. 44) returns
the distributable surplus to the members mainly by their trade with the cooperative — at
least 60 % of it — and the rest by shares.  A charter's ``trade_return_bp`` is that part
(0 for a shareholding cooperative whose members do not trade with it, as the Gansu models
of seed 004 are; else from 6000): rounded up, so that it is never below the charter's
rate, and divided by each member's trade recorded in the year, by the same
largest-remainder method as the dividends.

Shares.  Land earns ``shares_per_mu`` a mu, capital a share per ``fen_per_capital_share``,
and labour (if the charter says so) a share per ``labour_days_per_share`` labour days
worked in the year.  Land and capital shares are weighted by the days of the year the
stake was held, so a household that joins in November gets a twelfth or so, and a stake
changed mid-year (leave and join again) counts each part for its days.  Shares are kept
as exact fractions; only the dividends are rounded, by the largest-remainder method, so
that collective + reserve + dividends = surplus to the fen and no household's dividend
is a fen or more from its exact pro-rata share.  The collective's and the reserve's
shares are rounded down (at most their rate) and come off first.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from functools import cache
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import Conflict, InvalidInput, NotFound
from ..ledger.models import Account, AccountKind, Channel, Posting, Transaction
from ..ledger.service import Entry, Leg, open_account, post, post_many
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.models import Region
from ..registry.models import Household, Organisation, OrganisationKind
from .models import (
    Charter,
    Distribution,
    DistributionLine,
    LabourRecord,
    Membership,
    TradeRecord,
)

MANAGERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.COOPERATIVE_MANAGER)
CUSTOM = "custom"
PARAMETERS = ("wage_per_day_fen", "shares_per_mu", "fen_per_capital_share",
              "labour_days_per_share", "collective_bp", "reserve_bp", "trade_return_bp")
# The Law on Farmer Specialised Cooperatives (art. 44): at least 60 % back by trade.
LEAST_TRADE_RETURN_BP = 6000


# --- the four Gansu models -------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    source: str
    why: str
    params: dict = field(default_factory=dict)


@cache
def presets() -> dict[str, Preset]:
    """The charter presets of models.toml: seed 004 §3.1–3.4."""
    raw = tomllib.loads(resources.files(__package__).joinpath("models.toml")
                        .read_text(encoding="utf-8"))
    out = {}
    for key, spec in raw.items():
        params = {p: spec.get(p) for p in PARAMETERS}
        out[key] = Preset(key, spec["title"], spec["source"], " ".join(spec["why"].split()),
                          params)
    return out


# --- accounts ----------------------------------------------------------------------------

def household_account(cooperative_id: int, household_id: int) -> str:
    return f"hh:{household_id}:coop:{cooperative_id}"


def coop_account(cooperative_id: int, purpose: str) -> str:
    return f"coop:{cooperative_id}:{purpose}"  # wages, surplus, reserve


def collective_account(region_code: str) -> str:
    return f"collective:{region_code}"


# --- the arithmetic (pure, so that it can be checked exhaustively) ----------------------

def split_surplus(surplus_fen: int, collective_bp: int, reserve_bp: int) -> tuple[int, int, int]:
    """(collective, reserve, dividends): the first two rounded down, dividends the rest."""
    collective = surplus_fen * collective_bp // 10000
    reserve = surplus_fen * reserve_bp // 10000
    return collective, reserve, surplus_fen - collective - reserve


def trade_return(distributable_fen: int, trade_return_bp: int) -> int:
    """The part of the distributable surplus returned by trade: rounded up, never below
    the charter's rate."""
    return -(-distributable_fen * trade_return_bp // 10000)


def allocate(total_fen: int, weights: dict[int, Fraction]) -> dict[int, int]:
    """Split ``total_fen`` in proportion to ``weights`` by the largest-remainder method:
    everyone gets the floor of their exact share, the fen left over go one each to the
    largest remainders (ties to the smaller key, so the result is reproducible)."""
    whole = sum(weights.values(), Fraction(0))
    if total_fen == 0:
        return dict.fromkeys(weights, 0)
    if whole <= 0:
        raise InvalidInput("no member holds any share: nothing to divide the dividends by")
    out, rest = {}, []
    for key, w in weights.items():
        exact = total_fen * w / whole
        out[key] = exact.numerator // exact.denominator
        rest.append((exact - out[key], key))
    left = total_fen - sum(out.values())
    for _, key in sorted(rest, key=lambda r: (-r[0], r[1]))[:left]:
        out[key] += 1
    return out


def _days_held(m: Membership, year: int) -> int:
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    a = max(m.joined_on, start)
    b = min(m.left_on or end, end)
    return max((b - a).days, 0)


def _decimal(f: Fraction, places: int = 4) -> str:
    with localcontext() as ctx:
        ctx.prec = 40
        return str((Decimal(f.numerator) / Decimal(f.denominator))
                   .quantize(Decimal(1).scaleb(-places)))


# --- lookups and checks ------------------------------------------------------------------

def _cooperative(session: Session, actor: Actor, cooperative_id: int,
                 lock: bool = False) -> Organisation:
    """The cooperative, in the actor's reach; ``lock``: its row locked (PostgreSQL), so
    that a year's trade and its distribution do not interleave."""
    require_role(actor, *MANAGERS)
    q = select(Organisation).where(Organisation.id == cooperative_id)
    coop = session.scalar(q.with_for_update() if lock else q)
    if coop is None or coop.kind is not OrganisationKind.COOPERATIVE:
        raise NotFound(f"no cooperative with id {cooperative_id}", field="cooperative_id")
    require_region(actor, coop.region_code)
    return coop


def _household(session: Session, actor: Actor, household_id: int) -> Household:
    household = session.get(Household, household_id)
    if household is None:
        raise InvalidInput(f"no household {household_id}", field="household_id")
    require_region(actor, household.village_code)
    return household


def _int(field_name: str, value, minimum: int = 0, maximum: int | None = None) -> int:
    if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidInput(f"{field_name} must be an integer {bound}, got {value!r}",
                           field=field_name)
    return value


def land_centimu(value) -> int:
    """Land as given (Decimal, a string like "3.25", or an integer number of mu) in
    hundredths of a mu; a float is refused, since it cannot hold 0.01 mu exactly."""
    if isinstance(value, (float, bool)):
        raise InvalidInput("land_mu must be a decimal string such as \"3.25\", not a float",
                           field="land_mu")
    try:
        mu = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"land_mu {value!r} is not a number", field="land_mu") from None
    centi = mu * 100
    if not mu.is_finite() or mu < 0 or centi != centi.to_integral_value():
        raise InvalidInput(f"land_mu {value!r} must be non-negative with at most two decimals",
                           field="land_mu")
    return int(centi)


def _charter(session: Session, cooperative_id: int, year: int) -> Charter:
    charter = session.scalar(select(Charter).where(Charter.cooperative_id == cooperative_id,
                                                   Charter.year == year))
    if charter is None:
        raise NotFound(f"cooperative {cooperative_id} has no charter for {year}: set one first",
                       field="year")
    return charter


# --- charters ----------------------------------------------------------------------------

def set_charter(session: Session, actor: Actor, cooperative_id: int, year: int,
                model: str = CUSTOM, collective_region_code: str | None = None,
                **overrides) -> Charter:
    """Create or replace a cooperative's charter for ``year``: the parameters of the
    preset ``model`` (see ``presets()``), each overridable; ``custom`` starts from
    nothing, so every parameter it needs must be given.  A year already distributed
    cannot change its charter."""
    coop = _cooperative(session, actor, cooperative_id)
    _int("year", year, 2000, 2100)
    unknown = sorted(set(overrides) - set(PARAMETERS))
    if unknown:
        raise InvalidInput(f"unknown charter parameter(s): {', '.join(unknown)}", field=unknown[0])
    if model != CUSTOM and model not in presets():
        raise InvalidInput(f"unknown model {model!r}; models: {', '.join(presets())}, {CUSTOM}",
                           field="model")
    base = presets()[model].params if model != CUSTOM else dict.fromkeys(PARAMETERS)
    params = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    for p in ("wage_per_day_fen", "shares_per_mu", "collective_bp", "reserve_bp",
              "trade_return_bp"):
        if params[p] is None:
            params[p] = 0
    _int("wage_per_day_fen", params["wage_per_day_fen"])
    _int("shares_per_mu", params["shares_per_mu"], 0, 1000)
    for p in ("fen_per_capital_share", "labour_days_per_share"):
        if params[p] is not None:
            _int(p, params[p], 1)
    _int("collective_bp", params["collective_bp"], 0, 10000)
    _int("reserve_bp", params["reserve_bp"], 0, 10000)
    _int("trade_return_bp", params["trade_return_bp"], 0, 10000)
    if params["collective_bp"] + params["reserve_bp"] > 10000:
        raise InvalidInput("collective_bp + reserve_bp exceed 10000 (the whole surplus)",
                           field="reserve_bp")
    if params["trade_return_bp"] and not (
            LEAST_TRADE_RETURN_BP <= params["trade_return_bp"] <= 10000):
        raise InvalidInput(
            f"trade_return_bp must be 0 or from {LEAST_TRADE_RETURN_BP} to 10000 (the Law on "
            f"Farmer Specialised Cooperatives returns at least 60 % of the distributable "
            f"surplus by trade), got {params['trade_return_bp']!r}", field="trade_return_bp")
    if params["collective_bp"] > 0:
        if not collective_region_code:
            raise InvalidInput("a share to the village collective needs its region "
                               "(collective_region_code)", field="collective_region_code")
        if session.get(Region, collective_region_code) is None:
            raise InvalidInput(f"no region {collective_region_code}",
                               field="collective_region_code")
        require_region(actor, collective_region_code)
    else:
        collective_region_code = None
    if session.scalar(select(Distribution.id).where(Distribution.cooperative_id == coop.id,
                                                    Distribution.year == year)):
        raise Conflict(f"the {year} surplus of cooperative {coop.id} is already distributed: "
                       "its charter can no longer change")
    charter = session.scalar(select(Charter).where(Charter.cooperative_id == coop.id,
                                                   Charter.year == year))
    if charter is None:
        charter = Charter(cooperative_id=coop.id, year=year)
        session.add(charter)
    charter.model, charter.collective_region_code = model, collective_region_code
    charter.created_by = actor.username
    for p in PARAMETERS:
        setattr(charter, p, params[p])
    session.flush()
    audit(session, actor, "set_charter", "cooperative", coop.id,
          {"year": year, "model": model, **params,
           "collective_region_code": collective_region_code})
    return charter


def get_charter(session: Session, actor: Actor, cooperative_id: int, year: int) -> Charter:
    _cooperative(session, actor, cooperative_id)
    return _charter(session, cooperative_id, year)


def charter_view(charter: Charter) -> dict:
    preset = presets().get(charter.model)
    return {"cooperative_id": charter.cooperative_id, "year": charter.year,
            "model": charter.model, "model_title": preset.title if preset else None,
            "model_source": preset.source if preset else None,
            **{p: getattr(charter, p) for p in PARAMETERS},
            "collective_region_code": charter.collective_region_code}


# --- members -----------------------------------------------------------------------------

def _open_membership(session: Session, cooperative_id: int, household_id: int) -> Membership | None:
    return session.scalar(select(Membership).where(
        Membership.cooperative_id == cooperative_id, Membership.household_id == household_id,
        Membership.left_on.is_(None)))


def join(session: Session, actor: Actor, cooperative_id: int, household_id: int, day: date,
         land_mu=0, labourers: int = 0, capital_fen: int = 0) -> Membership:
    """A household joins with land (mu, exact to 0.01), labourers and capital (fen).
    Joining again with the same stake changes nothing; to change a stake, leave and
    join again on the same day."""
    coop = _cooperative(session, actor, cooperative_id)
    household = _household(session, actor, household_id)
    centimu = land_centimu(land_mu)
    _int("labourers", labourers, 0, 100)
    _int("capital_fen", capital_fen)
    if centimu == 0 and labourers == 0 and capital_fen == 0:
        raise InvalidInput("a member brings land, labour or capital", field="land_mu")
    current = _open_membership(session, coop.id, household.id)
    if current is not None:
        if (current.land_centimu, current.labourers, current.capital_fen) == (
                centimu, labourers, capital_fen):
            return current
        raise Conflict(f"household {household.number} is a member since {current.joined_on} "
                       "with another stake: leave and join again to change it")
    last_left = session.scalar(select(Membership.left_on).where(
        Membership.cooperative_id == coop.id, Membership.household_id == household.id)
        .order_by(Membership.left_on.desc()).limit(1))
    if last_left is not None and day < last_left:
        raise InvalidInput(f"household {household.number} was a member until {last_left}: "
                           "it cannot join again before that", field="date")
    m = Membership(cooperative_id=coop.id, household_id=household.id, joined_on=day,
                   land_centimu=centimu, labourers=labourers, capital_fen=capital_fen)
    session.add(m)
    session.flush()
    open_account(session, household_account(coop.id, household.id),
                 f"household {household.number} in cooperative {coop.name}",
                 AccountKind.HOUSEHOLD, household_id=household.id)
    audit(session, actor, "join", "cooperative", coop.id,
          {"household_id": household.id, "land_centimu": centimu, "labourers": labourers,
           "capital_fen": capital_fen, "joined_on": day.isoformat()})
    return m


def leave(session: Session, actor: Actor, cooperative_id: int, household_id: int,
          day: date) -> Membership:
    """End a household's membership on ``day`` (its stake counts up to the day before)."""
    coop = _cooperative(session, actor, cooperative_id)
    household = _household(session, actor, household_id)
    m = _open_membership(session, coop.id, household.id)
    if m is None:
        done = session.scalar(select(Membership).where(
            Membership.cooperative_id == coop.id, Membership.household_id == household.id,
            Membership.left_on == day))
        if done is not None:
            return done  # the same leave again
        raise NotFound(f"household {household.number} is not a member of cooperative {coop.id}")
    if day < m.joined_on:
        raise InvalidInput(f"cannot leave before joining ({m.joined_on})", field="date")
    m.left_on = day
    session.flush()
    audit(session, actor, "leave", "cooperative", coop.id,
          {"household_id": household.id, "left_on": day.isoformat()})
    return m


def members(session: Session, actor: Actor, cooperative_id: int,
            on: date | None = None) -> list[dict]:
    """Memberships (all, or those in force on ``on``) with their stakes."""
    coop = _cooperative(session, actor, cooperative_id)
    rows = session.execute(
        select(Membership, Household.number, Household.village_code)
        .join(Household, Household.id == Membership.household_id)
        .where(Membership.cooperative_id == coop.id)
        .order_by(Household.number, Membership.joined_on)).all()
    out = []
    for m, number, village in rows:
        if not actor.may_reach(village):
            continue
        if on is not None and not (m.joined_on <= on and (m.left_on is None or on < m.left_on)):
            continue
        out.append({**membership_view(m), "household_number": number})
    return out


def membership_view(m: Membership) -> dict:
    return {"household_id": m.household_id, "joined_on": m.joined_on.isoformat(),
            "left_on": m.left_on.isoformat() if m.left_on else None,
            # Hundredths of a mu shown as the exact decimal, e.g. "3.25".
            "land_mu": str(Decimal(m.land_centimu).scaleb(-2)),
            "labourers": m.labourers, "capital_fen": m.capital_fen}


# --- labour and wages --------------------------------------------------------------------

def _period_bounds(period: str) -> tuple[date, date]:
    if not isinstance(period, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise InvalidInput(f"period {period!r} is not YYYY-MM", field="period")
    y, mth = int(period[:4]), int(period[5:])
    return date(y, mth, 1), date(y + (mth == 12), mth % 12 + 1, 1)


def record_labour(session: Session, actor: Actor, cooperative_id: int, household_id: int,
                  key: str, period: str, days: int) -> LabourRecord:
    """Labour days a member household worked in a month; idempotent by ``key``."""
    coop = _cooperative(session, actor, cooperative_id)
    household = _household(session, actor, household_id)
    if not isinstance(key, str) or not 0 < len(key) <= 100:
        raise InvalidInput("an idempotency key of 1 to 100 characters is required", field="key")
    start, end = _period_bounds(period)
    done = session.scalar(select(LabourRecord).where(LabourRecord.cooperative_id == coop.id,
                                                     LabourRecord.key == key))
    if done is not None:
        if (done.household_id, done.period, done.days) != (household.id, period, days):
            raise Conflict(f"labour key {key!r} was used for another record")
        return done
    spans = session.scalars(select(Membership).where(
        Membership.cooperative_id == coop.id, Membership.household_id == household.id,
        Membership.joined_on < end)).all()
    spans = [m for m in spans if m.left_on is None or m.left_on > start]
    if not spans:
        raise InvalidInput(f"household {household.number} was not a member in {period}",
                           field="household_id")
    # A household's labourers can work at most every day of the month between them.
    most = (end - start).days * max(max(m.labourers for m in spans), 1)
    _int("days", days, 1, most)
    row = LabourRecord(cooperative_id=coop.id, household_id=household.id, key=key,
                       period=period, days=days, recorded_by=actor.username)
    session.add(row)
    session.flush()
    return row


@dataclass
class WageLine:
    household_id: int
    key: str
    days: int
    wage_fen: int
    already_paid: bool


def _wage_key(cooperative_id: int, record_id: int) -> str:
    return f"coop:{cooperative_id}:wage:{record_id}"


def pay_wages(session: Session, actor: Actor, cooperative_id: int, period: str,
              day: date) -> list[WageLine]:
    """Pay every labour record of ``period`` at the charter's wage per labour day, one
    ledger transaction per record under a fixed key: run again, it pays only what was
    recorded since."""
    coop = _cooperative(session, actor, cooperative_id)
    start, _ = _period_bounds(period)
    charter = _charter(session, coop.id, start.year)
    if charter.wage_per_day_fen <= 0:
        raise InvalidInput(f"the {start.year} charter ({charter.model}) pays no wage per "
                           "labour day", field="wage_per_day_fen")
    if day < start:
        raise InvalidInput(f"wages for {period} cannot be paid before {start}", field="date")
    records = session.scalars(select(LabourRecord).where(
        LabourRecord.cooperative_id == coop.id, LabourRecord.period == period)
        .order_by(LabourRecord.id)).all()
    keys = [_wage_key(coop.id, r.id) for r in records]
    paid = set(session.scalars(select(Transaction.key).where(Transaction.key.in_(keys)))) if keys else set()
    wages = open_account(session, coop_account(coop.id, "wages"), f"{coop.name}: wages",
                         AccountKind.COOPERATIVE, organisation_id=coop.id)
    lines, entries = [], []
    for r, key in zip(records, keys):
        if key in paid:
            # What was paid, as recorded in the ledger (the wage may have changed since).
            lines.append(WageLine(r.household_id, r.key, r.days, None, True))
            continue
        amount = r.days * charter.wage_per_day_fen
        lines.append(WageLine(r.household_id, r.key, r.days, amount, False))
        entries.append(Entry(key, day, f"{coop.name}: wages for {r.days} labour days in {period}",
                             [Leg(wages.code, amount),
                              Leg(household_account(coop.id, r.household_id), -amount,
                                  r.household_id, Channel.EMPLOYMENT)]))
    if paid:
        from ..ledger.models import Posting
        got = dict(session.execute(
            select(Transaction.key, Posting.amount_fen)
            .join(Posting, Posting.transaction_id == Transaction.id)
            .where(Transaction.key.in_(paid), Posting.channel == Channel.EMPLOYMENT)).all())
        for line, key in zip(lines, keys):
            if line.already_paid:
                line.wage_fen = -int(got[key])
    post_many(session, actor, entries)
    if entries:
        audit(session, actor, "pay_wages", "cooperative", coop.id,
              {"period": period, "records": len(entries),
               "total_fen": sum(e.legs[0].amount_fen for e in entries)})
    return lines


# --- members' trade ---------------------------------------------------------------------

def record_trade(session: Session, actor: Actor, cooperative_id: int, household_id: int,
                 key: str, day: date, value_fen: int, product: str) -> TradeRecord:
    """A member household's trade with the cooperative on ``day`` (produce delivered to
    it or inputs bought from it), by value; idempotent by ``key``.  Only a member on
    that day trades as a member."""
    coop = _cooperative(session, actor, cooperative_id, lock=True)
    household = _household(session, actor, household_id)
    if not isinstance(key, str) or not 0 < len(key) <= 100:
        raise InvalidInput("an idempotency key of 1 to 100 characters is required", field="key")
    if not isinstance(product, str) or not 0 < len(product.strip()) <= 100:
        raise InvalidInput("the product traded (1 to 100 characters) is required",
                           field="product")
    _int("value_fen", value_fen, 1)
    done = session.scalar(select(TradeRecord).where(TradeRecord.cooperative_id == coop.id,
                                                    TradeRecord.key == key))
    if done is not None:
        if (done.household_id, done.traded_on, done.value_fen, done.product) != (
                household.id, day, value_fen, product.strip()):
            raise Conflict(f"trade key {key!r} was used for another record")
        return done
    member = session.scalar(select(Membership.id).where(
        Membership.cooperative_id == coop.id, Membership.household_id == household.id,
        Membership.joined_on <= day,
        (Membership.left_on.is_(None)) | (Membership.left_on > day)).limit(1))
    if member is None:
        raise InvalidInput(f"household {household.number} was not a member of cooperative "
                           f"{coop.id} on {day}", field="household_id")
    if session.scalar(select(Distribution.id).where(Distribution.cooperative_id == coop.id,
                                                    Distribution.year == day.year)):
        raise Conflict(f"the {day.year} surplus of cooperative {coop.id} is already "
                       "distributed: trade of that year can no longer be recorded")
    row = TradeRecord(cooperative_id=coop.id, household_id=household.id, key=key,
                      traded_on=day, product=product.strip(), value_fen=value_fen,
                      recorded_by=actor.username)
    session.add(row)
    session.flush()
    return row


def trade_volumes(session: Session, cooperative_id: int, year: int) -> dict[int, int]:
    """Each member household's trade with the cooperative in ``year``, fen."""
    rows = session.execute(
        select(TradeRecord.household_id, func.sum(TradeRecord.value_fen))
        .where(TradeRecord.cooperative_id == cooperative_id,
               TradeRecord.traded_on >= date(year, 1, 1),
               TradeRecord.traded_on < date(year + 1, 1, 1))
        .group_by(TradeRecord.household_id))
    return {hid: int(total) for hid, total in rows}


def trades(session: Session, actor: Actor, cooperative_id: int, year: int) -> dict:
    """The year's trade records and each member's total (members out of the reader's
    reach anonymous)."""
    coop = _cooperative(session, actor, cooperative_id)
    _int("year", year, 2000, 2100)
    rows = session.execute(
        select(TradeRecord, Household.number, Household.village_code)
        .join(Household, Household.id == TradeRecord.household_id)
        .where(TradeRecord.cooperative_id == coop.id,
               TradeRecord.traded_on >= date(year, 1, 1),
               TradeRecord.traded_on < date(year + 1, 1, 1))
        .order_by(TradeRecord.traded_on, TradeRecord.id)).all()
    records = [{"key": r.key, "household_id": r.household_id,
                "household_number": number if actor.may_reach(village) else None,
                "date": r.traded_on.isoformat(), "product": r.product, "value_fen": r.value_fen}
               for r, number, village in rows]
    volumes = trade_volumes(session, coop.id, year)
    return {"cooperative_id": coop.id, "year": year, "total_fen": sum(volumes.values()),
            "by_household": [{"household_id": h, "value_fen": v} for h, v in sorted(volumes.items())],
            "records": records}


# --- members' accounts and payouts ---------------------------------------------------------

PAYOUT_METHODS = ("bank_transfer", "cash")


def _owed(session: Session, code: str) -> int:
    """What the cooperative owes on a household account (its credits less its debits)."""
    return -int(session.scalar(
        select(func.coalesce(func.sum(Posting.amount_fen), 0))
        .join(Account, Account.id == Posting.account_id).where(Account.code == code)))


def pay_out(session: Session, actor: Actor, cooperative_id: int, household_id: int, key: str,
            day: date, amount_fen: int, method: str = "bank_transfer") -> dict:
    """Pay a member household what the cooperative owes it, to its bank card or in cash;
    idempotent by ``key`` (the transfer's or the receipt's number)."""
    coop = _cooperative(session, actor, cooperative_id, lock=True)
    household = _household(session, actor, household_id)
    if not isinstance(key, str) or not 0 < len(key) <= 100:
        raise InvalidInput("an idempotency key of 1 to 100 characters is required", field="key")
    _int("amount_fen", amount_fen, 1)
    if method not in PAYOUT_METHODS:
        raise InvalidInput(f"method must be one of {', '.join(PAYOUT_METHODS)}, got {method!r}",
                           field="method")
    code = household_account(coop.id, household.id)
    txn_key = f"coop:{coop.id}:payout:{key}"
    done = session.scalar(select(Transaction.id).where(Transaction.key == txn_key))
    if done is None:
        owed = _owed(session, code)
        if amount_fen > owed:
            raise InvalidInput(f"cooperative {coop.id} owes household {household.number} "
                               f"{owed} fen: {amount_fen} fen cannot be paid out",
                               field="amount_fen")
    payouts = open_account(session, coop_account(coop.id, "payouts"),
                           f"{coop.name}: paid out to members", AccountKind.COOPERATIVE,
                           organisation_id=coop.id)
    # The same key with another amount or household is a conflict (the ledger says so).
    post(session, actor, txn_key, day, f"{coop.name}: paid to household {household.number} "
         f"({method.replace('_', ' ')})",
         [Leg(code, amount_fen, household.id), Leg(payouts.code, -amount_fen)])
    if done is None:
        audit(session, actor, "pay_out", "cooperative", coop.id,
              {"household_id": household.id, "amount_fen": amount_fen, "method": method})
    return {"cooperative_id": coop.id, "household_id": household.id, "key": key,
            "date": day.isoformat(), "amount_fen": amount_fen, "method": method,
            "owed_fen": _owed(session, code)}


def member_accounts(session: Session, actor: Actor, cooperative_id: int) -> list[dict]:
    """Each member household's account: what it was credited, by channel (wages,
    dividends, return by trade), what was paid out, and what is still owed."""
    coop = _cooperative(session, actor, cooperative_id)
    rows = session.execute(
        select(Account.household_id, Household.number, Household.village_code,
               Posting.channel, func.sum(Posting.amount_fen))
        .join(Posting, Posting.account_id == Account.id)
        .join(Household, Household.id == Account.household_id)
        .where(Account.code.like(f"hh:%:coop:{coop.id}"))
        .group_by(Account.household_id, Household.number, Household.village_code, Posting.channel)
        .order_by(Household.number)).all()
    out: dict[int, dict] = {}
    for hid, number, village, channel, total in rows:
        if not actor.may_reach(village):
            continue
        line = out.setdefault(hid, {"household_id": hid, "household_number": number,
                                    "credited_fen": {}, "paid_out_fen": 0, "owed_fen": 0})
        if channel is None:
            line["paid_out_fen"] += int(total)
        else:
            line["credited_fen"][channel.value] = -int(total)
        line["owed_fen"] -= int(total)
    return list(out.values())


# --- the year-end distribution -------------------------------------------------------------

@dataclass
class Stake:
    land: Fraction = Fraction(0)
    capital: Fraction = Fraction(0)
    labour: Fraction = Fraction(0)

    @property
    def total(self) -> Fraction:
        return self.land + self.capital + self.labour


def stakes(session: Session, charter: Charter) -> dict[int, Stake]:
    """Each household's shares in the charter's year (exact fractions)."""
    year, cid = charter.year, charter.cooperative_id
    ydays = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    out: dict[int, Stake] = {}
    for m in session.scalars(select(Membership).where(
            Membership.cooperative_id == cid, Membership.joined_on < date(year + 1, 1, 1))
            .order_by(Membership.id)):
        held = _days_held(m, year)
        if held == 0:
            continue
        s = out.setdefault(m.household_id, Stake())
        part = Fraction(held, ydays)
        s.land += Fraction(m.land_centimu * charter.shares_per_mu, 100) * part
        if charter.fen_per_capital_share:
            s.capital += Fraction(m.capital_fen, charter.fen_per_capital_share) * part
    if charter.labour_days_per_share:
        for hid, days in session.execute(
                select(LabourRecord.household_id, LabourRecord.days)
                .where(LabourRecord.cooperative_id == cid,
                       LabourRecord.period.like(f"{year:04d}-%"))):
            s = out.setdefault(hid, Stake())
            s.labour += Fraction(days, charter.labour_days_per_share)
    return out


def _distribution_key(cooperative_id: int, year: int) -> str:
    return f"coop:{cooperative_id}:distribution:{year}"


def distribute(session: Session, actor: Actor, cooperative_id: int, year: int,
               surplus_fen: int, day: date) -> dict:
    """Distribute a year's surplus: the collective's share and the reserve first, of the
    rest the charter's part back by trade, and what is left as dividends by share; one
    balanced ledger transaction with a fixed key.  The same
    distribution again returns its statement and pays nobody twice; another surplus
    for a year already distributed is a conflict."""
    coop = _cooperative(session, actor, cooperative_id, lock=True)
    _int("surplus_fen", surplus_fen, 1)
    if day.year < year:
        raise InvalidInput(f"the {year} surplus cannot be distributed before {year}",
                           field="date")
    done = session.scalar(select(Distribution).where(Distribution.cooperative_id == coop.id,
                                                     Distribution.year == year))
    if done is not None:
        if (done.surplus_fen, done.business_date) != (surplus_fen, day):
            raise Conflict(f"the {year} surplus of cooperative {coop.id} was already distributed: "
                           f"{done.surplus_fen} fen on {done.business_date}")
        return statement(session, actor, coop.id, year)
    charter = _charter(session, coop.id, year)
    collective, reserve, distributable = split_surplus(surplus_fen, charter.collective_bp,
                                                       charter.reserve_bp)
    by_trade = trade_return(distributable, charter.trade_return_bp)
    volumes = trade_volumes(session, coop.id, year)
    if by_trade and not volumes:
        raise InvalidInput(f"the {year} charter returns {charter.trade_return_bp / 100:g} % of "
                           f"the surplus by trade, but no member's trade with the cooperative "
                           f"is recorded in {year}", field="trade_return_bp")
    returned = allocate(by_trade, {h: Fraction(v) for h, v in volumes.items()}) if by_trade else {}
    dividends = distributable - by_trade
    held = stakes(session, charter)
    weights = {hid: s.total for hid, s in held.items() if s.total > 0}
    paid = allocate(dividends, weights)
    households = sorted(set(paid) | set(returned))
    surplus_acc = open_account(session, coop_account(coop.id, "surplus"),
                               f"{coop.name}: surplus to distribute", AccountKind.COOPERATIVE,
                               organisation_id=coop.id)
    legs = [Leg(surplus_acc.code, surplus_fen)]
    if collective:
        region = charter.collective_region_code
        acc = open_account(session, collective_account(region),
                           f"village collective development fund of {region}",
                           AccountKind.VILLAGE_COLLECTIVE, region_code=region)
        legs.append(Leg(acc.code, -collective))
    if reserve:
        acc = open_account(session, coop_account(coop.id, "reserve"), f"{coop.name}: reserve",
                           AccountKind.COOPERATIVE, organisation_id=coop.id)
        legs.append(Leg(acc.code, -reserve))
    for hid in households:
        if returned.get(hid):
            legs.append(Leg(household_account(coop.id, hid), -returned[hid], hid, Channel.INDUSTRY))
        if paid.get(hid):
            legs.append(Leg(household_account(coop.id, hid), -paid[hid], hid, Channel.FINANCIAL))
    post(session, actor, _distribution_key(coop.id, year), day,
         f"{coop.name}: distribution of the {year} surplus", legs)
    dist = Distribution(cooperative_id=coop.id, year=year, business_date=day,
                        surplus_fen=surplus_fen, collective_fen=collective, reserve_fen=reserve,
                        trade_return_fen=by_trade, total_trade_fen=sum(volumes.values()),
                        dividends_fen=dividends, total_shares=str(sum(weights.values(), Fraction(0))),
                        created_by=actor.username)
    session.add(dist)
    session.flush()
    none = Stake()
    session.add_all(DistributionLine(distribution_id=dist.id, household_id=hid,
                                     land_shares=str(held.get(hid, none).land),
                                     capital_shares=str(held.get(hid, none).capital),
                                     labour_shares=str(held.get(hid, none).labour),
                                     trade_fen=volumes.get(hid, 0),
                                     trade_return_fen=returned.get(hid, 0),
                                     dividend_fen=paid.get(hid, 0)) for hid in households)
    session.flush()
    audit(session, actor, "distribute", "cooperative", coop.id,
          {"year": year, "surplus_fen": surplus_fen, "collective_fen": collective,
           "reserve_fen": reserve, "trade_return_fen": by_trade, "dividends_fen": dividends,
           "households": len(households)})
    return statement(session, actor, coop.id, year)


def statement(session: Session, actor: Actor, cooperative_id: int, year: int) -> dict:
    """The distribution statement of a year: per member household its land, capital and
    labour shares (exact, and to 4 decimals), its exact pro-rata share and the dividend
    paid, its trade and its exact and paid return by trade; the collective's share, the
    reserve and the part returned by trade."""
    coop = _cooperative(session, actor, cooperative_id)
    dist = session.scalar(select(Distribution).where(Distribution.cooperative_id == coop.id,
                                                     Distribution.year == year))
    if dist is None:
        raise NotFound(f"the {year} surplus of cooperative {coop.id} is not distributed yet")
    charter = _charter(session, coop.id, year)
    total = Fraction(dist.total_shares)
    rows = session.execute(
        select(DistributionLine, Household.number, Household.village_code)
        .join(Household, Household.id == DistributionLine.household_id)
        .where(DistributionLine.distribution_id == dist.id)
        .order_by(Household.number)).all()
    lines = []
    for line, number, village in rows:
        land, capital, labour = (Fraction(line.land_shares), Fraction(line.capital_shares),
                                 Fraction(line.labour_shares))
        shares = land + capital + labour
        exact = dist.dividends_fen * shares / total if total else Fraction(0)
        exact_return = (Fraction(dist.trade_return_fen * line.trade_fen, dist.total_trade_fen)
                        if dist.total_trade_fen else Fraction(0))
        lines.append({"household_id": line.household_id,
                      # Members outside the reader's scope stay anonymous.
                      "household_number": number if actor.may_reach(village) else None,
                      "land_shares": _decimal(land), "capital_shares": _decimal(capital),
                      "labour_shares": _decimal(labour), "shares": _decimal(shares),
                      "shares_exact": str(shares), "exact_dividend_fen": _decimal(exact, 2),
                      "dividend_fen": line.dividend_fen, "trade_fen": line.trade_fen,
                      "exact_trade_return_fen": _decimal(exact_return, 2),
                      "trade_return_fen": line.trade_return_fen,
                      "paid_fen": line.trade_return_fen + line.dividend_fen})
    preset = presets().get(charter.model)
    return {"cooperative_id": coop.id, "cooperative": coop.name, "year": year,
            "model": charter.model, "model_source": preset.source if preset else None,
            "date": dist.business_date.isoformat(),
            "transaction_key": _distribution_key(coop.id, year),
            "surplus_fen": dist.surplus_fen,
            "collective": {"region_code": charter.collective_region_code,
                           "account": collective_account(charter.collective_region_code)
                           if charter.collective_region_code else None,
                           "bp": charter.collective_bp, "fen": dist.collective_fen},
            "reserve": {"bp": charter.reserve_bp, "fen": dist.reserve_fen},
            "trade_return": {"bp": charter.trade_return_bp, "fen": dist.trade_return_fen,
                             "total_trade_fen": dist.total_trade_fen},
            "dividends_fen": dist.dividends_fen, "total_shares": _decimal(total),
            "members": lines}
