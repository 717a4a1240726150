"""Use cases of grievances: filing (by anyone, signed in or not), routing to the
responsible office with a deadline, working a grievance to resolution, the filer's
confirmation or reopening, escalation of overdue ones, queues and statistics.

Deadlines count working days in China time and fall at the end of the last day.  A
working day is Monday to Friday except China's public holidays, plus the weekend days
the State Council's yearly schedule makes working days (调休): the ``holidays`` package
keeps that schedule.  For a year whose schedule it does not hold yet (published each
November for the next year) its estimate counts: the statutory holidays and a weekday off
for each that falls on a weekend, without shifted working days.  A deadline is fixed
when it is set, so one set on an estimate keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache

import holidays

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..market.models import Order, OrderLine, Seller
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role, User
from ..privacy import mask_phone, protector
from ..public_input import new_reference
from ..public_input import normalise_reference as _normalise
from ..public_input import phone as phone_field
from ..public_input import text as text_field
from ..regions.codes import level_of_code, scope_prefix
from ..regions.models import Level, Region
from ..registry.models import Household
from .models import (
    OPEN_STATUSES,
    ActionKind,
    Category,
    FilerKind,
    Grievance,
    GrievanceAction,
    GrievanceRoute,
    OfficeLevel,
    Status,
)

CHINA = timezone(timedelta(hours=8))
MAX_TEXT = 2000
MAX_NAME = 60
# How long after a resolution or rejection the filer may reopen; after it, the daily
# job closes the grievance.
REOPEN_DAYS = 15
# Working days the next office up gets after an escalation.
ESCALATION_DAYS = 5
# Reference alphabet: no 0/O, 1/I/L, so it can be read out over the phone.


@dataclass(frozen=True)
class Route:
    office_level: OfficeLevel
    office_role: str
    deadline_days: int


# The built-in routing table; rows of grievance_route override it.
DEFAULT_ROUTES: dict[Category, Route] = {
    Category.LEFT_OUT: Route(OfficeLevel.TOWNSHIP, Role.COUNTY_OFFICER.value, 15),
    Category.WRONGLY_INCLUDED: Route(OfficeLevel.TOWNSHIP, Role.COUNTY_OFFICER.value, 15),
    Category.WRONG_DATA: Route(OfficeLevel.TOWNSHIP, Role.COUNTY_OFFICER.value, 15),
    Category.MONEY_NOT_RECEIVED: Route(OfficeLevel.COUNTY, Role.COUNTY_OFFICER.value, 10),
    # The marketplace operator; the seller is a party who sees it and answers.
    Category.PRODUCT_COMPLAINT: Route(OfficeLevel.NATIONAL, Role.ADMINISTRATOR.value, 7),
    Category.OTHER: Route(OfficeLevel.COUNTY, Role.COUNTY_OFFICER.value, 15),
}

# Roles an office may have (those who work grievances).
OFFICE_ROLES = (Role.COUNTY_OFFICER.value, Role.ADMINISTRATOR.value)


# --- append-only action log -------------------------------------------------------------

@event.listens_for(GrievanceAction, "before_update")
@event.listens_for(GrievanceAction, "before_delete")
def _refuse_log_edits(_mapper, _connection, target: GrievanceAction) -> None:
    # The log is evidence: once written, no use case may change or remove an entry
    # (mapper events: they cost nothing to flushes of other tables).
    raise Conflict("the grievance action log is append-only: entries cannot be changed or "
                   "deleted", entity="grievance_action", id=target.id)


# --- time --------------------------------------------------------------------------------

@cache
def _china_calendar(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(days off on weekdays and weekends alike, weekend days worked) of ``year``."""
    cn = holidays.country_holidays("CN", years=year)
    return frozenset(cn), frozenset(d for d in cn.weekend_workdays if d.year == year)


def is_working_day(day: date) -> bool:
    off, worked = _china_calendar(day.year)
    return day in worked or (day.weekday() < 5 and day not in off)


def add_working_days(day: date, n: int) -> date:
    """``n`` working days after ``day`` (see the module docstring)."""
    while n > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            n -= 1
    return day


def deadline_after(now: datetime, working_days: int) -> datetime:
    """End of the China-time day ``working_days`` working days after ``now`` (naive UTC)."""
    china_day = (now.replace(tzinfo=UTC).astimezone(CHINA)).date()
    last = add_working_days(china_day, working_days)
    end = datetime.combine(last, time(23, 59, 59), tzinfo=CHINA)
    return end.astimezone(UTC).replace(tzinfo=None)


def china_date(at: datetime) -> date:
    return at.replace(tzinfo=UTC).astimezone(CHINA).date()


# --- small checks ------------------------------------------------------------------------


def _category(value: Category | str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise InvalidInput(f"unknown category {value!r}; one of: "
                           + ", ".join(c.value for c in Category), field="category") from None


def _new_reference(session: Session, now: datetime) -> str:
    return new_reference("G", now, lambda ref: session.scalar(
        select(Grievance.id).where(Grievance.reference == ref)) is not None)


def normalise_reference(value: str) -> str:
    return _normalise("G", value)


def _filer_kind(actor: Actor | None) -> FilerKind:
    if actor is None:
        return FilerKind.PUBLIC
    return {
        Role.STATION_KEEPER: FilerKind.STATION,
        Role.VILLAGE_CADRE: FilerKind.CADRE,
        Role.COUNTY_OFFICER: FilerKind.OFFICER,
        Role.ADMINISTRATOR: FilerKind.OFFICER,
    }.get(actor.role, FilerKind.CONSUMER)


# --- routing -----------------------------------------------------------------------------

def _route_for(session: Session, category: Category, region_code: str) -> Route:
    level = level_of_code(region_code)
    best: tuple[tuple[int, int], GrievanceRoute] | None = None
    for row in session.scalars(select(GrievanceRoute).where(GrievanceRoute.category == category)):
        if row.region_prefix and not region_code.startswith(row.region_prefix):
            continue
        if row.region_level and (level is None or row.region_level != level.value):
            continue
        rank = (len(row.region_prefix), 1 if row.region_level else 0)
        if best is None or rank > best[0]:
            best = (rank, row)
    if best is not None:
        row = best[1]
        return Route(row.office_level, row.office_role, row.deadline_days)
    return DEFAULT_ROUTES[category]


def _office_staffed(session: Session, role: str, region_code: str) -> bool:
    return session.scalar(select(User.id).where(
        User.role == Role(role), User.region_code == region_code, User.active.is_(True),
    ).limit(1)) is not None


def _office_for(session: Session, route: Route, region_code: str) -> tuple[OfficeLevel, str, str | None]:
    """The office a route names for a region: (level, role, region code).  A township
    without its own office falls back to the county's; a county without one to the
    administrators."""
    if route.office_level is OfficeLevel.NATIONAL:
        return OfficeLevel.NATIONAL, route.office_role, None
    level = level_of_code(region_code)
    if route.office_level is OfficeLevel.TOWNSHIP and level in (Level.TOWNSHIP, Level.VILLAGE):
        township = region_code[:9] + "000"
        if _office_staffed(session, route.office_role, township):
            return OfficeLevel.TOWNSHIP, route.office_role, township
    county = region_code[:6]
    if _office_staffed(session, route.office_role, county):
        return OfficeLevel.COUNTY, route.office_role, county
    return OfficeLevel.NATIONAL, Role.ADMINISTRATOR.value, None


def _next_office_up(session: Session, g: Grievance) -> tuple[OfficeLevel, str, str | None] | None:
    if g.office_level is OfficeLevel.TOWNSHIP:
        county = g.region_code[:6]
        if _office_staffed(session, Role.COUNTY_OFFICER.value, county):
            return OfficeLevel.COUNTY, Role.COUNTY_OFFICER.value, county
        return OfficeLevel.NATIONAL, Role.ADMINISTRATOR.value, None
    if g.office_level is OfficeLevel.COUNTY:
        return OfficeLevel.NATIONAL, Role.ADMINISTRATOR.value, None
    return None


def routing_table(session: Session) -> list[dict]:
    """The defaults and the administrator's rows, as the routing sees them."""
    rows = [{"category": c.value, "region_prefix": "", "region_level": "", "source": "default",
             "office_level": r.office_level.value, "office_role": r.office_role,
             "deadline_days": r.deadline_days} for c, r in DEFAULT_ROUTES.items()]
    for row in session.scalars(select(GrievanceRoute).order_by(GrievanceRoute.id)):
        rows.append({"category": row.category.value, "region_prefix": row.region_prefix,
                     "region_level": row.region_level, "source": "table",
                     "office_level": row.office_level.value, "office_role": row.office_role,
                     "deadline_days": row.deadline_days,
                     "updated_by": row.updated_by, "updated_at": row.updated_at.isoformat()})
    return rows


def set_route(session: Session, actor: Actor, category: Category | str, *,
              office_level: OfficeLevel | str, office_role: str, deadline_days: int,
              region_prefix: str = "", region_level: str = "") -> GrievanceRoute:
    """Add or replace one routing row (administrators only)."""
    require_role(actor, Role.ADMINISTRATOR)
    category = _category(category)
    try:
        office_level = OfficeLevel(office_level)
    except ValueError:
        raise InvalidInput(f"unknown office_level {office_level!r}", field="office_level") from None
    if office_role not in OFFICE_ROLES:
        raise InvalidInput(f"office_role must be one of {', '.join(OFFICE_ROLES)}",
                           field="office_role")
    if (office_level is OfficeLevel.NATIONAL) != (office_role == Role.ADMINISTRATOR.value):
        raise InvalidInput("administrators are the national office, and only they",
                           field="office_role")
    if isinstance(deadline_days, bool) or not isinstance(deadline_days, int) \
            or not 1 <= deadline_days <= 90:
        raise InvalidInput("deadline_days must be an integer from 1 to 90", field="deadline_days")
    if region_prefix and (not region_prefix.isdigit() or len(region_prefix) > 12):
        raise InvalidInput("region_prefix must be digits of a region code", field="region_prefix")
    if region_level and region_level not in (Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY):
        raise InvalidInput("region_level must be village, township or county",
                           field="region_level")
    row = session.scalar(select(GrievanceRoute).where(
        GrievanceRoute.category == category, GrievanceRoute.region_prefix == region_prefix,
        GrievanceRoute.region_level == region_level))
    if row is None:
        row = GrievanceRoute(category=category, region_prefix=region_prefix,
                             region_level=region_level)
        session.add(row)
    row.office_level, row.office_role, row.deadline_days = office_level, office_role, deadline_days
    row.updated_by, row.updated_at = actor.username, utcnow()
    session.flush()
    audit(session, actor, "set", "grievance_route", row.id,
          {"category": category.value, "region_prefix": region_prefix,
           "region_level": region_level, "office_level": office_level.value,
           "office_role": office_role, "deadline_days": deadline_days})
    return row


# --- the log -----------------------------------------------------------------------------

def _log(session: Session, g: Grievance, action: ActionKind, who: Actor | str, *,
         from_status: Status | None, note: str = "", public: bool = True,
         now: datetime | None = None) -> None:
    username, role = (who, None) if isinstance(who, str) else (who.username, who.role.value)
    session.add(GrievanceAction(
        grievance_id=g.id, at=now or utcnow(), actor=username, actor_role=role, action=action,
        from_status=from_status.value if from_status else None, to_status=g.status.value,
        office_role=g.office_role, office_region_code=g.office_region_code, note=note,
        public=public))


def _assign(session: Session, g: Grievance, office: tuple[OfficeLevel, str, str | None]) -> None:
    g.office_level, g.office_role, g.office_region_code = office


# --- filing ------------------------------------------------------------------------------

def file_grievance(
    session: Session, actor: Actor | None, *, category: Category | str, text: str,
    region_code: str | None = None, household_id: int | None = None,
    order_id: int | None = None, contact_name: str | None = None,
    contact_phone: str | None = None, now: datetime | None = None,
) -> Grievance:
    """File a grievance; ``actor`` None is the anonymous public form.  A station keeper
    files on a villager's behalf: ``contact_name`` is the villager, and the household is
    named unless the grievance is that it was left out (so it is not registered)."""
    now = now or utcnow()
    category = _category(category)
    text = text_field(text, "text", MAX_TEXT, required=True)
    kind = _filer_kind(actor)
    contact_name = text_field(contact_name, "contact_name", MAX_NAME,
                         required=kind is FilerKind.STATION)
    phone = phone_field(contact_phone)

    household = None
    if household_id is not None:
        household = session.get(Household, household_id)
        if household is None or household.merged_into_id is not None:
            raise InvalidInput(f"no household {household_id}", field="household_id")
    elif kind is FilerKind.STATION and category is not Category.LEFT_OUT:
        raise InvalidInput("a station keeper names the villager's household (household_id)",
                           field="household_id")

    seller_id = None
    if category is Category.PRODUCT_COMPLAINT:
        if order_id is None:
            raise InvalidInput("a product complaint names its order (order_id)", field="order_id")
        order = session.get(Order, order_id)
        if actor is None:
            raise PermissionDenied("sign in as the buyer to complain about an order")
        if order is None or (actor.username not in (order.buyer, order.assisted_by)
                             and actor.role is not Role.ADMINISTRATOR):
            # The same answer for "no such order" and "not yours": ids are not probed.
            raise InvalidInput(f"no order {order_id} of yours", field="order_id")
        sellers = sorted(set(session.scalars(
            select(OrderLine.seller_id).where(OrderLine.order_id == order.id))))
        seller_id = sellers[0] if len(sellers) == 1 else None
        if region_code is None and seller_id is not None:
            region_code = session.get(Seller, seller_id).region_code
    elif order_id is not None:
        raise InvalidInput("only a product complaint names an order", field="order_id")

    if region_code is None and household is not None:
        region_code = household.village_code
    if not region_code:
        raise InvalidInput("region_code is required (a village, township or county code)",
                           field="region_code")
    region = session.get(Region, region_code)
    if region is None or region.level not in (Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY):
        raise InvalidInput(f"{region_code} is not a known village, township or county",
                           field="region_code")
    if household is not None and not household.village_code.startswith(scope_prefix(region_code)):
        raise InvalidInput(f"no household {household_id} in {region_code}", field="household_id")
    if kind is FilerKind.STATION:
        # A keeper files for the villagers its station serves.
        require_region(actor, region_code)

    route = _route_for(session, category, region_code)
    g = Grievance(
        reference=_new_reference(session, now), category=category, status=Status.RECEIVED,
        region_code=region_code, text=text, household_id=household_id, order_id=order_id,
        seller_id=seller_id, filer_kind=kind, filed_by=actor.username if actor else None,
        contact_name=contact_name,
        contact_phone_enc=protector().encrypt(phone, "phone") if phone else None,
        contact_phone_masked=mask_phone(phone) if phone else None,
        office_level=OfficeLevel.NATIONAL, office_role=Role.ADMINISTRATOR.value,
        due_at=deadline_after(now, route.deadline_days),
        first_due_at=deadline_after(now, route.deadline_days), filed_at=now)
    session.add(g)
    session.flush()
    _log(session, g, ActionKind.FILE, actor or "public", from_status=None, now=now)
    _assign(session, g, _office_for(session, route, region_code))
    g.status = Status.ASSIGNED
    _log(session, g, ActionKind.ASSIGN, "system", from_status=Status.RECEIVED, now=now,
         note=f"routed to the {g.office_level.value} office")
    session.flush()
    return g


# --- who may do what ---------------------------------------------------------------------

def _handles(actor: Actor, g: Grievance) -> bool:
    """Whether the actor works in the responsible office or one above it in its scope."""
    if actor.role is Role.ADMINISTRATOR:
        return True
    if actor.role.value != g.office_role or g.office_region_code is None:
        return False
    return actor.region_code is not None and actor.may_reach(g.office_region_code)


def _seller_party(session: Session, actor: Actor, g: Grievance) -> bool:
    if g.seller_id is None:
        return False
    seller = session.get(Seller, g.seller_id)
    return seller is not None and seller.manager_username == actor.username


def _may_read(session: Session, actor: Actor, g: Grievance) -> bool:
    if _handles(actor, g) or (g.filed_by is not None and g.filed_by == actor.username):
        return True
    if _seller_party(session, actor, g):
        return True
    # Officers read what happens in their region even when another office handles it.
    return actor.role is Role.COUNTY_OFFICER and actor.may_reach(g.region_code)


def get_grievance(session: Session, grievance_id: int) -> Grievance:
    g = session.get(Grievance, grievance_id)
    if g is None:
        raise NotFound(f"no grievance {grievance_id}", grievance_id=grievance_id)
    return g


def _by_reference(session: Session, reference: str, *, lock: bool = False) -> Grievance:
    stmt = select(Grievance).where(Grievance.reference == normalise_reference(reference))
    g = session.scalar(stmt.with_for_update() if lock else stmt)
    if g is None:
        raise NotFound("no grievance with that reference number")
    return g


# --- working a grievance -----------------------------------------------------------------

ACTIONS = ("start", "comment", "assign", "escalate", "resolve", "reject")


def act(session: Session, actor: Actor, grievance_id: int, action: str, *, note: str = "",
        public: bool | None = None, office_region_code: str | None = None,
        office_role: str | None = None, now: datetime | None = None) -> Grievance:
    """One step by an officer (or, for a comment, the seller of a complained-of order)."""
    now = now or utcnow()
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; one of: {', '.join(ACTIONS)}",
                           field="action")
    note = text_field(note, "note", MAX_TEXT, required=action in ("comment", "resolve", "reject"))
    g = session.scalar(select(Grievance).where(Grievance.id == grievance_id).with_for_update())
    if g is None:
        raise NotFound(f"no grievance {grievance_id}", grievance_id=grievance_id)
    handles = _handles(actor, g)
    if not handles and not (action == "comment" and _seller_party(session, actor, g)):
        raise PermissionDenied(
            f"grievance {g.reference} is with the {g.office_role} office of "
            f"{g.office_region_code or 'the platform'}, outside your scope",
            grievance_id=g.id)
    before = g.status
    if action == "comment":
        # Internal by default: officers' notes are not the filer's to read unless meant to be.
        _log(session, g, ActionKind.COMMENT, actor, from_status=before, note=note,
             public=bool(public), now=now)
        return g
    if g.status not in OPEN_STATUSES:
        raise Conflict(f"grievance {g.reference} is {g.status.value}; only an open grievance "
                       f"can be {action}ed", status=g.status.value)
    if action == "start":
        if g.status is Status.IN_PROGRESS:
            raise Conflict(f"grievance {g.reference} is already in progress")
        g.status = Status.IN_PROGRESS
        _log(session, g, ActionKind.START, actor, from_status=before, note=note,
             public=True if public is None else public, now=now)
    elif action in ("resolve", "reject"):
        g.status = Status.RESOLVED if action == "resolve" else Status.REJECTED
        g.resolution, g.resolved_at, g.outcome = note, now, g.status.value
        # The answer (or the reason for the refusal) is the filer's to read.
        _log(session, g, ActionKind.RESOLVE if action == "resolve" else ActionKind.REJECT,
             actor, from_status=before, note=note, public=True, now=now)
    elif action == "escalate":
        up = _next_office_up(session, g)
        if up is None:
            raise Conflict("the platform's administrators are the last level; nothing above")
        _assign(session, g, up)
        g.status, g.escalations = Status.ASSIGNED, g.escalations + 1
        g.due_at = deadline_after(now, ESCALATION_DAYS)
        _log(session, g, ActionKind.ESCALATE, actor, from_status=before, note=note,
             public=True, now=now)
    else:  # assign: hand it to another office that covers its region
        office_role = office_role or Role.COUNTY_OFFICER.value
        if office_role not in OFFICE_ROLES:
            raise InvalidInput(f"office_role must be one of {', '.join(OFFICE_ROLES)}",
                               field="office_role")
        if office_role == Role.ADMINISTRATOR.value:
            office: tuple[OfficeLevel, str, str | None] = (OfficeLevel.NATIONAL, office_role, None)
        else:
            lvl = level_of_code(office_region_code or "")
            if lvl not in (Level.TOWNSHIP, Level.COUNTY) or session.get(Region, office_region_code) is None:
                raise InvalidInput("office_region_code must be a known township or county",
                                   field="office_region_code")
            if not g.region_code.startswith(scope_prefix(office_region_code)):
                raise InvalidInput(f"office {office_region_code} does not cover the grievance's "
                                   f"region {g.region_code}", field="office_region_code")
            if not _office_staffed(session, office_role, office_region_code):
                raise InvalidInput(f"no active {office_role} at {office_region_code}",
                                   field="office_region_code")
            office = (OfficeLevel(lvl.value), office_role, office_region_code)
        _assign(session, g, office)
        g.status = Status.ASSIGNED
        _log(session, g, ActionKind.ASSIGN, actor, from_status=before, note=note,
             public=bool(public), now=now)
    session.flush()
    return g


def confirm(session: Session, reference: str, now: datetime | None = None) -> Grievance:
    """The filer accepts the resolution (or the rejection): the grievance is closed."""
    now = now or utcnow()
    g = _by_reference(session, reference, lock=True)
    if g.status not in (Status.RESOLVED, Status.REJECTED):
        raise Conflict(f"grievance is {g.status.value}; only a resolved or rejected grievance "
                       "can be confirmed", status=g.status.value)
    before = g.status
    g.status, g.closed_at = Status.CLOSED, now
    _log(session, g, ActionKind.CONFIRM, "filer", from_status=before, now=now)
    session.flush()
    return g


def reopen(session: Session, reference: str, reason: str, now: datetime | None = None) -> Grievance:
    """The filer disagrees with the resolution within REOPEN_DAYS: back to the office
    that answered, with a fresh deadline."""
    now = now or utcnow()
    reason = text_field(reason, "reason", MAX_TEXT, required=True)
    g = _by_reference(session, reference, lock=True)
    if g.status not in (Status.RESOLVED, Status.REJECTED):
        raise Conflict(f"grievance is {g.status.value}; only a resolved or rejected grievance "
                       "can be reopened", status=g.status.value)
    if now > g.resolved_at + timedelta(days=REOPEN_DAYS):
        raise Conflict(f"the {REOPEN_DAYS} days to reopen have passed; file a new grievance")
    before = g.status
    route = _route_for(session, g.category, g.region_code)
    g.status, g.reopened, g.resolved_at, g.outcome = Status.ASSIGNED, g.reopened + 1, None, None
    g.due_at = deadline_after(now, route.deadline_days)
    _log(session, g, ActionKind.REOPEN, "filer", from_status=before, note=reason, now=now)
    session.flush()
    return g


def escalate_overdue(session: Session, now: datetime | None = None) -> dict:
    """What the daily timer runs: every open grievance past its deadline moves to the
    next office up and is flagged overdue; resolved ones whose reopening window has
    passed are closed."""
    now = now or utcnow()
    escalated, flagged, closed = [], [], []
    late = session.scalars(select(Grievance).where(
        Grievance.status.in_(OPEN_STATUSES), Grievance.due_at < now).order_by(Grievance.id)
        .with_for_update()).all()
    for g in late:
        before = g.status
        up = _next_office_up(session, g)
        if up is not None:
            _assign(session, g, up)
            g.status, g.overdue, g.escalations = Status.ASSIGNED, True, g.escalations + 1
            g.due_at = deadline_after(now, ESCALATION_DAYS)
            _log(session, g, ActionKind.ESCALATE, "system", from_status=before, now=now,
                 note=f"overdue: moved to the {g.office_level.value} office")
            escalated.append(g.reference)
        elif not g.overdue:
            # Already with the last office: flag it once, do not log it every day.
            g.overdue = True
            _log(session, g, ActionKind.ESCALATE, "system", from_status=before, now=now,
                 note="overdue at the last office")
            flagged.append(g.reference)
    done = session.scalars(select(Grievance).where(
        Grievance.status.in_((Status.RESOLVED, Status.REJECTED)),
        Grievance.resolved_at < now - timedelta(days=REOPEN_DAYS)).order_by(Grievance.id)
        .with_for_update()).all()
    for g in done:
        before = g.status
        g.status, g.closed_at = Status.CLOSED, now
        _log(session, g, ActionKind.CLOSE, "system", from_status=before, now=now,
             note=f"not reopened within {REOPEN_DAYS} days")
        closed.append(g.reference)
    session.flush()
    return {"escalated": escalated, "flagged": flagged, "closed": closed}


# --- views -------------------------------------------------------------------------------

def _office_view(session: Session, g: Grievance) -> dict:
    region = session.get(Region, g.office_region_code) if g.office_region_code else None
    return {"level": g.office_level.value, "role": g.office_role,
            "region_code": g.office_region_code,
            "region_name": region.name if region else "ECPA platform"}


def _who(a: GrievanceAction) -> str:
    # The public log says which side acted, never who.
    if a.actor in ("system",):
        return "system"
    if a.action in (ActionKind.FILE, ActionKind.CONFIRM, ActionKind.REOPEN):
        return "filer"
    return "office"


def track(session: Session, reference: str, now: datetime | None = None) -> dict:
    """What anyone holding the reference sees: status, deadline, the office and the
    public part of the log.  No text, names, phones, households or orders."""
    now = now or utcnow()
    g = _by_reference(session, reference)
    region = session.get(Region, g.region_code)
    log = session.scalars(select(GrievanceAction).where(
        GrievanceAction.grievance_id == g.id).order_by(GrievanceAction.id)).all()
    open_ = g.status in OPEN_STATUSES
    reopen_until = (g.resolved_at + timedelta(days=REOPEN_DAYS)
                    if g.status in (Status.RESOLVED, Status.REJECTED) else None)
    return {
        "reference": g.reference, "category": g.category.value, "status": g.status.value,
        "region": {"code": g.region_code, "name": region.name},
        "filed_on": china_date(g.filed_at).isoformat(),
        "due_on": china_date(g.due_at).isoformat(),
        "overdue": g.overdue or (open_ and now > g.due_at),
        "office": _office_view(session, g),
        "resolution": g.resolution if g.outcome else "",
        "reopen_until": china_date(reopen_until).isoformat() if reopen_until else None,
        "log": [{"at": a.at.isoformat(timespec="seconds") + "Z", "action": a.action.value,
                 "by": _who(a), "status": a.to_status, "note": a.note if a.public else ""}
                for a in log],
    }


def summary(g: Grievance, now: datetime | None = None) -> dict:
    now = now or utcnow()
    return {"id": g.id, "reference": g.reference, "category": g.category.value,
            "status": g.status.value, "region_code": g.region_code,
            "filed_at": g.filed_at.isoformat(), "due_at": g.due_at.isoformat(),
            "overdue": g.overdue or (g.status in OPEN_STATUSES and now > g.due_at),
            "office": {"level": g.office_level.value, "role": g.office_role,
                       "region_code": g.office_region_code}}


def detail(session: Session, actor: Actor, grievance_id: int) -> dict:
    """The whole grievance for those who work it (and its filer), with the full log."""
    g = get_grievance(session, grievance_id)
    if not _may_read(session, actor, g):
        raise PermissionDenied(f"grievance {grievance_id} is outside your scope",
                               grievance_id=grievance_id)
    phone = g.contact_phone_masked
    if g.contact_phone_enc and actor.sees_full_personal_data and _handles(actor, g):
        phone = protector().decrypt(g.contact_phone_enc, "phone")
    household = session.get(Household, g.household_id) if g.household_id else None
    audit(session, actor, "read", "grievance", g.id)
    log = session.scalars(select(GrievanceAction).where(
        GrievanceAction.grievance_id == g.id).order_by(GrievanceAction.id)).all()
    return {
        **summary(g), "text": g.text, "filer_kind": g.filer_kind.value, "filed_by": g.filed_by,
        "contact_name": g.contact_name, "contact_phone": phone,
        "household": {"id": household.id, "number": household.number} if household else None,
        "order_id": g.order_id, "seller_id": g.seller_id, "resolution": g.resolution,
        "escalations": g.escalations, "reopened": g.reopened,
        "first_due_at": g.first_due_at.isoformat(),
        "log": [{"id": a.id, "at": a.at.isoformat(), "actor": a.actor, "actor_role": a.actor_role,
                 "action": a.action.value, "from_status": a.from_status, "to_status": a.to_status,
                 "office_role": a.office_role, "office_region_code": a.office_region_code,
                 "note": a.note, "public": a.public} for a in log],
    }


def queue(session: Session, actor: Actor, *, status: Status | str | None = None,
          overdue_only: bool = False, within: bool = False,
          now: datetime | None = None) -> list[dict]:
    """The actor's office queue (``within``: every office inside its scope, for
    supervisors), plus product complaints on the sellers it manages."""
    now = now or utcnow()
    conds = []
    if actor.role is Role.ADMINISTRATOR:
        conds.append(Grievance.office_role == Role.ADMINISTRATOR.value if not within
                     else Grievance.id.isnot(None))
    elif actor.role.value in OFFICE_ROLES and actor.region_code:
        if within:
            conds.append((Grievance.office_role == actor.role.value)
                         & Grievance.office_region_code.startswith(scope_prefix(actor.region_code)))
        else:
            conds.append((Grievance.office_role == actor.role.value)
                         & (Grievance.office_region_code == actor.region_code))
    sellers = select(Seller.id).where(Seller.manager_username == actor.username)
    conds.append(Grievance.seller_id.in_(sellers))
    stmt = select(Grievance).where(or_(*conds))
    if status:
        try:
            status = Status(status)
        except ValueError:
            raise InvalidInput(f"unknown status {status!r}", field="status") from None
        stmt = stmt.where(Grievance.status == status)
    else:
        stmt = stmt.where(Grievance.status.in_(OPEN_STATUSES))
    if overdue_only:
        stmt = stmt.where(or_(Grievance.overdue.is_(True),
                              Grievance.status.in_(OPEN_STATUSES) & (Grievance.due_at < now)))
    return [summary(g, now) for g in session.scalars(stmt.order_by(Grievance.due_at, Grievance.id))]


def list_region(session: Session, actor: Actor, region_code: str, *,
                status: Status | str | None = None, now: datetime | None = None) -> list[dict]:
    """Every grievance filed in a region (officers in scope; the CLI)."""
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    if session.get(Region, region_code) is None:
        raise InvalidInput(f"unknown region {region_code}", field="region_code")
    require_region(actor, region_code)
    stmt = select(Grievance).where(Grievance.region_code.startswith(scope_prefix(region_code)))
    if status:
        try:
            stmt = stmt.where(Grievance.status == Status(status))
        except ValueError:
            raise InvalidInput(f"unknown status {status!r}", field="status") from None
    return [summary(g, now) for g in session.scalars(stmt.order_by(Grievance.id))]


def stats(session: Session, actor: Actor, region_code: str, now: datetime | None = None) -> dict:
    """Per region and its child regions: filed, open, overdue, resolved, resolved
    within the first deadline; and the open ones by category."""
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.ANALYST)
    now = now or utcnow()
    region = session.get(Region, region_code)
    if region is None:
        raise InvalidInput(f"unknown region {region_code}", field="region_code")
    require_region(actor, region_code)
    prefix = scope_prefix(region_code)
    children = {r.code: r.name for r in session.scalars(
        select(Region).where(Region.parent_code == region_code))}
    rows = session.execute(select(
        Grievance.region_code, Grievance.category, Grievance.status, Grievance.due_at,
        Grievance.first_due_at, Grievance.resolved_at, Grievance.overdue, Grievance.escalations,
        Grievance.outcome,
    ).where(Grievance.region_code.startswith(prefix))).all()

    def blank() -> dict:
        return {"filed": 0, "open": 0, "overdue": 0, "resolved": 0,
                "resolved_within_deadline": 0}

    total, by_child, by_category = blank(), {}, {c.value: 0 for c in Category}
    for code, category, status, due, first_due, resolved_at, overdue, escalations, outcome in rows:
        child = next((c for c in children if code.startswith(scope_prefix(c))), None)
        buckets = [total] + ([by_child.setdefault(child, blank())] if child else [])
        is_open = status in OPEN_STATUSES
        was_resolved = outcome == Status.RESOLVED.value
        for b in buckets:
            b["filed"] += 1
            b["open"] += is_open
            b["overdue"] += bool(is_open and (overdue or now > due))
            if was_resolved:
                b["resolved"] += 1
                b["resolved_within_deadline"] += bool(
                    escalations == 0 and not overdue and resolved_at <= first_due)
        if is_open:
            by_category[category.value] += 1
    return {"region_code": region_code, "name": region.name, **total,
            "open_by_category": by_category,
            "children": [{"region_code": c, "name": children[c], **by_child[c]}
                         for c in sorted(by_child)]}
