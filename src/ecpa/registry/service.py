"""Use cases of the registry: look households up, create and change them, record
status events and help measures.  Every function takes the acting user, checks role
and region, and writes the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..privacy import Protector, mask_id_number, mask_phone, protector
from ..regions.codes import scope_prefix
from ..regions.models import Level, Region
from .columns import CONDITION_FIELDS
from .identity import check_credit_code, check_resident_id
from .models import (
    Disability,
    HelpMeasure,
    Household,
    Income,
    IncomeSource,
    LivingConditions,
    Member,
    MeasureKind,
    Organisation,
    OrganisationKind,
    Relation,
    Status,
    StatusEvent,
)

READERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)
WRITERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)
# Status changes are decisions of the county (the village proposes; issue of workflows).
STATUS_RECORDERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)

# Which status may follow which.  None: a household with no status yet.
TRANSITIONS: dict[Status | None, set[Status]] = {
    None: {Status.IDENTIFIED, Status.MONITORED},
    Status.IDENTIFIED: {Status.EXITED},
    Status.EXITED: {Status.MONITORED, Status.RETURNED},
    Status.MONITORED: {Status.EXITED, Status.RETURNED, Status.IDENTIFIED},
    Status.RETURNED: {Status.EXITED, Status.MONITORED},
}


def check_transition(current: Status | None, new: Status) -> None:
    if new not in TRANSITIONS[current]:
        now = current.value if current else "no status"
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise Conflict(f"cannot go from {now} to {new.value} (allowed: {allowed})",
                       current=now, requested=new.value)


# ---------------------------------------------------------------- members


@dataclass
class MemberInput:
    name: str
    id_number: str
    relation: Relation
    phone: str | None = None
    education: str | None = None
    schooling: str | None = None
    health: str | None = None
    disability: str | None = None
    labour_ability: str | None = None
    medical_insurance: bool | None = None
    monthly_wage_fen: int | None = None
    extra: dict = field(default_factory=dict)


def protected_member_values(p: Protector, id_number: str, phone: str | None) -> dict:
    """Columns holding a member's personal numbers: ciphertext, keyed hash, mask."""
    values = {
        "id_number_enc": p.encrypt(id_number, "id_number"),
        "id_number_hash": p.lookup_hash(id_number, "id_number"),
        "id_number_masked": mask_id_number(id_number),
        "phone_enc": None, "phone_hash": None, "phone_masked": None,
    }
    if phone:
        values.update(phone_enc=p.encrypt(phone, "phone"), phone_hash=p.lookup_hash(phone, "phone"),
                      phone_masked=mask_phone(phone))
    return values


def _build_member(p: Protector, data: MemberInput) -> Member:
    try:
        number, born, sex = check_resident_id(data.id_number)
    except ValueError as exc:
        raise InvalidInput(f"id_number: {exc}", field="id_number") from None
    values = protected_member_values(p, number, data.phone)
    return Member(
        name=data.name, relation=data.relation, sex=sex, birth_date=born,
        education=data.education, schooling=data.schooling, health=data.health,
        disability=data.disability or Disability.NONE, labour_ability=data.labour_ability,
        medical_insurance=data.medical_insurance, monthly_wage_fen=data.monthly_wage_fen,
        **values,
    )


def _ensure_new_ids(session: Session, members: list[Member]) -> None:
    hashes = [m.id_number_hash for m in members]
    if len(set(hashes)) != len(hashes):
        raise InvalidInput("the same ID number is given twice", field="members")
    clash = session.execute(
        select(Member.id_number_masked, Household.number)
        .join(Household, Member.household_id == Household.id)
        .where(Member.id_number_hash.in_(hashes))
    ).first()
    if clash:
        raise Conflict(f"ID number {clash[0]} is already a member of household {clash[1]}",
                       field="id_number")


# ---------------------------------------------------------------- reading


def _latest_status_subquery():
    return (
        select(StatusEvent.status)
        .where(StatusEvent.household_id == Household.id)
        .order_by(StatusEvent.event_date.desc(), StatusEvent.id.desc())
        .limit(1)
        .correlate(Household)
        .scalar_subquery()
    )


def current_status(session: Session, household_id: int) -> tuple[Status | None, date | None]:
    row = session.execute(
        select(StatusEvent.status, StatusEvent.event_date)
        .where(StatusEvent.household_id == household_id)
        .order_by(StatusEvent.event_date.desc(), StatusEvent.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else (None, None)


@dataclass
class HouseholdFilter:
    region_code: str | None = None
    status: Status | None = None
    number: str | None = None
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    monitoring_category: str | None = None


def _scoped(stmt: Select, actor: Actor, region_code: str | None) -> Select:
    if region_code:
        require_region(actor, region_code)
        stmt = stmt.where(Household.village_code.startswith(scope_prefix(region_code)))
    if actor.region_code:
        stmt = stmt.where(Household.village_code.startswith(scope_prefix(actor.region_code)))
    return stmt


def list_households(
    session: Session, actor: Actor, flt: HouseholdFilter, page: int = 1, page_size: int = 50
) -> tuple[int, list[dict]]:
    """Households matching the filter inside the actor's scope, one page, masked."""
    require_role(actor, *READERS)
    if page < 1 or not 1 <= page_size <= 500:
        raise InvalidInput("page must be >= 1 and page_size between 1 and 500")
    status_col = _latest_status_subquery().label("status")
    head = (
        select(Member.name).where(Member.household_id == Household.id,
                                  Member.relation == Relation.HEAD)
        .limit(1).correlate(Household).scalar_subquery().label("head_name")
    )
    size = (select(func.count(Member.id)).where(Member.household_id == Household.id)
            .correlate(Household).scalar_subquery().label("size"))
    stmt = select(Household.id, Household.number, Household.village_code, Region.name,
                  head, size, status_col, Household.monitoring_category).join(
        Region, Region.code == Household.village_code)
    stmt = _scoped(stmt, actor, flt.region_code)
    if flt.number:
        stmt = stmt.where(Household.number == flt.number)
    if flt.monitoring_category:
        stmt = stmt.where(Household.monitoring_category == flt.monitoring_category)
    member_conds = []
    if flt.name:
        member_conds.append(Member.name.startswith(flt.name))
    if flt.id_number or flt.phone:
        p = protector()
        if flt.id_number:
            member_conds.append(Member.id_number_hash == p.lookup_hash(flt.id_number.strip().upper(), "id_number"))
        if flt.phone:
            ph = p.lookup_hash(flt.phone.strip(), "phone")
            member_conds.append(Member.phone_hash == ph)
    if member_conds:
        stmt = stmt.where(Household.id.in_(select(Member.household_id).where(*member_conds)))
    if flt.status:
        stmt = stmt.where(_latest_status_subquery() == flt.status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(
        stmt.order_by(Household.number).offset((page - 1) * page_size).limit(page_size)
    ).all()
    items = [
        {
            "id": r.id, "number": r.number, "village_code": r.village_code,
            "village_name": r.name,
            "head_name": r.head_name,
            "size": r.size, "status": r.status.value if r.status else None,
            "monitoring_category": r.monitoring_category.value if r.monitoring_category else None,
        }
        for r in rows
    ]
    audit(session, actor, "list", "household", None,
          {"filter": {k: v for k, v in vars(flt).items() if v and k not in ("id_number", "phone")},
           "returned": len(items)})
    return total, items


def _load(session: Session, actor: Actor, household_id: int) -> Household:
    household = session.get(Household, household_id,
                            options=[selectinload(Household.members)])
    if household is None:
        raise NotFound(f"no household with id {household_id}", household_id=household_id)
    require_region(actor, household.village_code)
    return household


def _load_live(session: Session, actor: Actor, household_id: int) -> Household:
    """A household to change: not one merged into another (its records live on the
    survivor; a change here would clash when the merge is undone)."""
    household = _load(session, actor, household_id)
    if household.merged_into_id is not None:
        raise Conflict(f"household {household.number} was merged into household "
                       f"{household.merged_into_id}: change the survivor, or undo the merge",
                       household_id=household_id)
    return household


def get_household(session: Session, actor: Actor, household_id: int, reveal: bool = False) -> dict:
    """The household's whole record.  ID and phone numbers are masked unless ``reveal``
    is asked by a role whose work needs them; a reveal is audited as such."""
    require_role(actor, *READERS)
    h = _load(session, actor, household_id)
    if reveal and not actor.sees_full_personal_data:
        raise PermissionDenied(f"role {actor.role.value} may not see full ID numbers")
    p = protector() if reveal else None
    audit(session, actor, "reveal" if reveal else "read", "household", h.id)
    return household_view(session, h, p)


def household_view(session: Session, h: Household, p: Protector | None) -> dict:
    def number(enc, masked, fld):
        if enc is None:
            return None
        return p.decrypt(enc, fld) if p else masked

    status_rows = session.scalars(
        select(StatusEvent).where(StatusEvent.household_id == h.id)
        .order_by(StatusEvent.event_date, StatusEvent.id)).all()
    incomes = session.scalars(
        select(Income).where(Income.household_id == h.id).order_by(Income.year, Income.source)).all()
    conditions = session.scalars(
        select(LivingConditions).where(LivingConditions.household_id == h.id)
        .order_by(LivingConditions.year)).all()
    measures = session.scalars(
        select(HelpMeasure).where(HelpMeasure.household_id == h.id).order_by(HelpMeasure.id)).all()
    current = status_rows[-1] if status_rows else None
    by_year: dict[int, dict] = {}
    for inc in incomes:
        by_year.setdefault(inc.year, {})[inc.source.value] = inc.amount_fen
    return {
        "id": h.id, "number": h.number, "village_code": h.village_code, "address": h.address,
        "phone": number(h.phone_enc, h.phone_masked, "phone"),
        "main_cause": _v(h.main_cause), "monitoring_category": _v(h.monitoring_category),
        "risk_eliminated": h.risk_eliminated,
        "status": current.status.value if current else None,
        "status_since": current.event_date.isoformat() if current else None,
        "members": [
            {
                "id": m.id, "name": m.name, "relation": m.relation.value, "sex": m.sex.value,
                "birth_date": m.birth_date.isoformat(),
                "id_number": number(m.id_number_enc, m.id_number_masked, "id_number"),
                "phone": number(m.phone_enc, m.phone_masked, "phone"),
                "education": _v(m.education), "schooling": _v(m.schooling),
                "health": _v(m.health), "disability": _v(m.disability),
                "labour_ability": _v(m.labour_ability), "medical_insurance": m.medical_insurance,
                "monthly_wage_fen": m.monthly_wage_fen,
            }
            for m in h.members
        ],
        "incomes": [
            {"year": y, "by_source_fen": src, "total_fen": sum(src.values())}
            for y, src in sorted(by_year.items())
        ],
        "living_conditions": [
            {"year": c.year, **{attr: _v(getattr(c, attr)) for attr in CONDITION_FIELDS.values()}}
            for c in conditions
        ],
        "status_history": [
            {"id": e.id, "status": e.status.value, "date": e.event_date.isoformat(),
             "reason": e.reason, "recorded_by": e.recorded_by}
            for e in status_rows
        ],
        "help_measures": [
            {"id": m.id, "kind": m.kind.value, "description": m.description,
             "cadre_name": m.cadre_name, "start_date": m.start_date.isoformat(),
             "end_date": m.end_date.isoformat() if m.end_date else None}
            for m in measures
        ],
    }


def _v(x):
    return getattr(x, "value", x)


# ---------------------------------------------------------------- writing


def create_household(
    session: Session, actor: Actor, number: str, village_code: str, members: list[MemberInput],
    address: str = "", phone: str | None = None, **fields,
) -> Household:
    require_role(actor, *WRITERS)
    village = session.get(Region, village_code)
    if village is None or village.level is not Level.VILLAGE:
        raise InvalidInput(f"unknown village {village_code}", field="village_code")
    require_region(actor, village_code)
    if session.scalar(select(Household.id).where(Household.number == number)) is not None:
        raise Conflict(f"household number {number} exists", field="number")
    heads = sum(1 for m in members if m.relation is Relation.HEAD)
    if heads != 1:
        raise InvalidInput(f"a household needs exactly one head, got {heads}", field="members")
    p = protector()
    built = [_build_member(p, m) for m in members]
    _ensure_new_ids(session, built)
    h = Household(number=number, village_code=village_code, address=address, **fields)
    if phone:
        h.phone_enc, h.phone_hash, h.phone_masked = (
            p.encrypt(phone, "phone"), p.lookup_hash(phone, "phone"), mask_phone(phone))
    h.members = built
    session.add(h)
    session.flush()
    audit(session, actor, "create", "household", h.id, {"members": len(built)})
    return h


HOUSEHOLD_EDITABLE = {"address", "main_cause", "monitoring_category", "risk_eliminated"}


def update_household(session: Session, actor: Actor, household_id: int, changes: dict) -> Household:
    require_role(actor, *WRITERS)
    h = _load_live(session, actor, household_id)
    unknown = set(changes) - HOUSEHOLD_EDITABLE - {"phone", "village_code"}
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    if "village_code" in changes:
        code = changes.pop("village_code")
        village = session.get(Region, code)
        if village is None or village.level is not Level.VILLAGE:
            raise InvalidInput(f"unknown village {code}", field="village_code")
        require_region(actor, code)
        h.village_code = code
    if "phone" in changes:
        phone = changes.pop("phone")
        p = protector()
        h.phone_enc, h.phone_hash, h.phone_masked = (
            (p.encrypt(phone, "phone"), p.lookup_hash(phone, "phone"), mask_phone(phone))
            if phone else (None, None, None))
    for key, value in changes.items():
        setattr(h, key, value)
    session.flush()
    audit(session, actor, "update", "household", h.id, {"fields": sorted(changes)})
    return h


def add_member(session: Session, actor: Actor, household_id: int, data: MemberInput) -> Member:
    require_role(actor, *WRITERS)
    h = _load_live(session, actor, household_id)
    if data.relation is Relation.HEAD and any(m.relation is Relation.HEAD for m in h.members):
        raise Conflict("the household already has a head", field="relation")
    member = _build_member(protector(), data)
    _ensure_new_ids(session, [member])
    h.members.append(member)
    session.flush()
    audit(session, actor, "add_member", "household", h.id, {"member_id": member.id})
    return member


def set_income(session: Session, actor: Actor, household_id: int, year: int,
               source: IncomeSource, amount_fen: int) -> None:
    require_role(actor, *WRITERS)
    h = _load_live(session, actor, household_id)
    if amount_fen < 0:
        raise InvalidInput("amount_fen must not be negative", field="amount_fen")
    row = session.scalar(select(Income).where(Income.household_id == h.id, Income.year == year,
                                              Income.source == source))
    if row is None:
        session.add(Income(household_id=h.id, year=year, source=source, amount_fen=amount_fen))
    else:
        row.amount_fen = amount_fen
    session.flush()
    audit(session, actor, "set_income", "household", h.id,
          {"year": year, "source": source.value, "amount_fen": amount_fen})


def set_conditions(session: Session, actor: Actor, household_id: int, year: int, values: dict) -> None:
    require_role(actor, *WRITERS)
    h = _load_live(session, actor, household_id)
    row = session.scalar(select(LivingConditions).where(
        LivingConditions.household_id == h.id, LivingConditions.year == year))
    if row is None:
        row = LivingConditions(household_id=h.id, year=year)
        session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    session.flush()
    audit(session, actor, "set_conditions", "household", h.id, {"year": year})


def record_status(session: Session, actor: Actor, household_id: int, status: Status,
                  event_date: date, reason: str) -> StatusEvent:
    """Append a status event; the current status follows from the history."""
    require_role(actor, *STATUS_RECORDERS)
    h = _load_live(session, actor, household_id)
    if not reason.strip():
        raise InvalidInput("a status change needs a reason", field="reason")
    if event_date > date.today():
        raise InvalidInput(f"event date {event_date} is in the future", field="event_date")
    current, since = current_status(session, h.id)
    if since and event_date < since:
        raise InvalidInput(f"event date {event_date} is before the last event ({since})",
                           field="event_date")
    check_transition(current, status)
    event = StatusEvent(household_id=h.id, status=status, event_date=event_date,
                        reason=reason.strip(), recorded_by=actor.username)
    session.add(event)
    session.flush()
    audit(session, actor, "status", "household", h.id,
          {"from": current.value if current else None, "to": status.value})
    return event


def assign_measure(session: Session, actor: Actor, household_id: int, kind: MeasureKind,
                   cadre_name: str, start_date: date, description: str = "",
                   end_date: date | None = None, cadre_user_id: int | None = None) -> HelpMeasure:
    require_role(actor, *WRITERS)
    h = _load_live(session, actor, household_id)
    if not cadre_name.strip():
        raise InvalidInput("a help measure needs its responsible cadre", field="cadre_name")
    if end_date and end_date < start_date:
        raise InvalidInput("end_date is before start_date", field="end_date")
    m = HelpMeasure(household_id=h.id, kind=kind, description=description, cadre_name=cadre_name,
                    cadre_user_id=cadre_user_id, start_date=start_date, end_date=end_date,
                    recorded_by=actor.username)
    session.add(m)
    session.flush()
    audit(session, actor, "help_measure", "household", h.id, {"kind": kind.value})
    return m


# ---------------------------------------------------------------- organisations

ORGANISATION_WRITERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.COOPERATIVE_MANAGER,
                        Role.ENTERPRISE)


def register_organisation(session: Session, actor: Actor, kind: OrganisationKind, name: str,
                          credit_code: str, region_code: str) -> Organisation:
    """A cooperative or enterprise, with its unified social credit code checked."""
    require_role(actor, *ORGANISATION_WRITERS)
    try:
        code = check_credit_code(credit_code)
    except ValueError as exc:
        raise InvalidInput(f"credit_code {credit_code!r}: {exc}", field="credit_code") from None
    region = session.get(Region, region_code)
    if region is None:
        raise InvalidInput(f"unknown region {region_code}", field="region_code")
    require_region(actor, region_code)
    if not name.strip():
        raise InvalidInput("name is empty", field="name")
    if session.scalar(select(Organisation.id).where(Organisation.credit_code == code)) is not None:
        raise Conflict(f"an organisation with credit code {code} is registered", field="credit_code")
    org = Organisation(kind=kind, name=name.strip(), credit_code=code, region_code=region_code)
    session.add(org)
    session.flush()
    audit(session, actor, "create", "organisation", org.id, {"kind": kind.value})
    return org


def list_organisations(session: Session, actor: Actor, region_code: str | None = None,
                       kind: OrganisationKind | None = None) -> list[Organisation]:
    """Organisations are public information (name, credit code); scope still applies."""
    stmt = select(Organisation).order_by(Organisation.name)
    for code in (region_code, actor.region_code):
        if code:
            stmt = stmt.where(Organisation.region_code.startswith(scope_prefix(code)))
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    return list(session.scalars(stmt))
