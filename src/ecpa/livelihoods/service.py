"""Use cases of livelihoods: training sessions and attendance, shops opened and their
monthly net earnings, jobs and wage payments; and the county's summary of them.

Seed 000 §IV: training is the multidimensional path (education: a subsidy is not
income); a shop's net earnings are the entrepreneurship channel and wages the employment
channel of the income-increase path.  Every amount that reaches a household is posted to
the ledger, credited to a household account with its channel and a deterministic
idempotency key (``lh:…``), so ``ledger.service.attributed_income`` sees it and
``write_attributed_income`` carries it into the registry ('farming_business', 'wages').
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..ledger.models import Account, AccountKind, Channel, Posting, Transaction
from ..ledger.service import Leg, open_account, post
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.codes import scope_prefix
from ..regions.models import Region
from ..registry.models import (
    Household,
    Member,
    Organisation,
    OrganisationKind,
    Status,
    StatusEvent,
)
from .models import (
    Attendance,
    Job,
    JobKind,
    Shop,
    ShopEarning,
    ShopKind,
    TrainingSession,
    TrainingTopic,
    WageBasis,
    WagePayment,
)

# Who may record what.  Money goes to the ledger, so only roles that may post it pay.
ORGANISERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)
RECORDERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)
PAYERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
EMPLOYERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.ENTERPRISE)
READERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)
SUMMARY_READERS = (*READERS, Role.ANALYST)

# Households counted as poor on a date: their latest status then.
POOR = (Status.IDENTIFIED, Status.RETURNED)
KEY_PREFIX = "lh:"

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


# ---------------------------------------------------------------- helpers


def _fen(value: object, field: str, *, positive: bool = False, allow_negative: bool = False) -> int:
    if type(value) is not int:
        raise InvalidInput(f"{field} must be integer fen, got {value!r}", field=field)
    if positive and value <= 0:
        raise InvalidInput(f"{field} must be positive (fen), got {value}", field=field)
    if not allow_negative and value < 0:
        raise InvalidInput(f"{field} must not be negative (fen), got {value}", field=field)
    return value


def _text(value: str | None, field: str, max_len: int, required: bool = True) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{field} is empty", field=field)
        return None
    if len(text) > max_len:
        raise InvalidInput(f"{field} is longer than {max_len} characters", field=field)
    return text


def parse_period(period: str, field: str = "period") -> tuple[int, int]:
    m = _PERIOD.match(period or "")
    if not m:
        raise InvalidInput(f"{field} {period!r} is not a month YYYY-MM", field=field)
    return int(m.group(1)), int(m.group(2))


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _month_end(period: str) -> date:
    y, m = parse_period(period)
    return date(y, m, calendar.monthrange(y, m)[1])


def _member(session: Session, actor: Actor, member_id: int,
            field: str = "member_id") -> tuple[Member, Household]:
    """The member and their household, which must be inside the actor's scope."""
    member = session.get(Member, member_id) if type(member_id) is int else None
    if member is None:
        raise InvalidInput(f"{field}: no member with id {member_id!r}", field=field)
    household = session.get(Household, member.household_id)
    if not actor.may_reach(household.village_code):
        raise PermissionDenied(
            f"{field} {member_id}: household {household.number} in {household.village_code} is "
            f"outside your scope ({actor.region_code})", field=field,
            region=household.village_code)
    return member, household


def _household_account(session: Session, household: Household, suffix: str, name: str) -> str:
    code = f"hh:{household.id}:{suffix}"
    open_account(session, code, f"household {household.number}: {name}", AccountKind.HOUSEHOLD,
                 household_id=household.id)
    return code


def _in_region(code: str):
    return Household.village_code.startswith(scope_prefix(code))


# ---------------------------------------------------------------- training


def create_training(session: Session, actor: Actor, *, title: str, topic: TrainingTopic,
                    organiser: str, region_code: str, start_date: date, end_date: date,
                    hours: int, organiser_id: int | None = None,
                    external_attendees: int = 0) -> TrainingSession:
    """A training session held in a county, township or village."""
    require_role(actor, *ORGANISERS)
    title = _text(title, "title", 200)
    organiser_name = _text(organiser, "organiser", 200, required=organiser_id is None)
    try:
        topic = TrainingTopic(topic)
    except ValueError:
        raise InvalidInput(f"topic {topic!r} is not one of: {', '.join(TrainingTopic)}",
                           field="topic") from None
    if session.get(Region, region_code) is None:
        raise InvalidInput(f"region_code: no region {region_code!r}", field="region_code")
    require_region(actor, region_code)
    if end_date < start_date:
        raise InvalidInput(f"end_date {end_date} is before start_date {start_date}",
                           field="end_date")
    if type(hours) is not int or not 0 < hours <= 2000:
        raise InvalidInput("hours must be a whole number from 1 to 2000", field="hours")
    if type(external_attendees) is not int or external_attendees < 0:
        raise InvalidInput("external_attendees must be a non-negative whole number",
                           field="external_attendees")
    if organiser_id is not None:
        org = session.get(Organisation, organiser_id)
        if org is None:
            raise InvalidInput(f"organiser_id: no organisation {organiser_id}", field="organiser_id")
        organiser_name = organiser_name or org.name
    training = TrainingSession(
        title=title, topic=topic, organiser=organiser_name, organiser_id=organiser_id,
        region_code=region_code, start_date=start_date, end_date=end_date, hours=hours,
        external_attendees=external_attendees, created_by=actor.username)
    session.add(training)
    session.flush()
    audit(session, actor, "create", "training", training.id, {"region": region_code})
    return training


def _training(session: Session, training_id: int) -> TrainingSession:
    training = session.get(TrainingSession, training_id)
    if training is None:
        raise NotFound(f"no training session {training_id}", training_id=training_id)
    return training


def record_attendance(session: Session, actor: Actor, training_id: int, member_id: int, *,
                      completed: bool = True, certificate_no: str | None = None,
                      subsidy_fen: int = 0, paid_on: date | None = None) -> Attendance:
    """A member's attendance.  Recording it again changes no count: the record stays one;
    completion and a certificate may be added later (never taken away by a repeat), and
    a subsidy is paid once (education channel: a saving of the household, not income)."""
    require_role(actor, *RECORDERS)
    training = _training(session, training_id)
    member, household = _member(session, actor, member_id)
    certificate_no = _text(certificate_no, "certificate_no", 64, required=False)
    _fen(subsidy_fen, "subsidy_fen")
    if certificate_no and not completed:
        raise InvalidInput("certificate_no is given but the training is not completed",
                           field="certificate_no")
    if subsidy_fen:
        if actor.role not in PAYERS:
            raise PermissionDenied(f"subsidy_fen: role {actor.role.value} may record attendance "
                                   "but not pay a subsidy", field="subsidy_fen")
        if not completed:
            raise InvalidInput("subsidy_fen: a subsidy is paid for a completed training",
                               field="subsidy_fen")
    row = session.scalar(select(Attendance).where(Attendance.session_id == training.id,
                                                  Attendance.member_id == member.id))
    if row is None:
        row = Attendance(session_id=training.id, member_id=member.id, completed=completed,
                         certificate_no=certificate_no, subsidy_fen=0, recorded_by=actor.username)
        session.add(row)
        session.flush()
        audit(session, actor, "attend", "training", training.id, {"member_id": member.id})
    else:
        if certificate_no and row.certificate_no and certificate_no != row.certificate_no:
            raise Conflict(f"certificate_no: member {member.id} holds certificate "
                           f"{row.certificate_no} for this training", field="certificate_no")
        row.completed = row.completed or completed
        row.certificate_no = row.certificate_no or certificate_no
    if subsidy_fen:
        if row.subsidy_fen and row.subsidy_fen != subsidy_fen:
            raise Conflict(f"subsidy_fen: a subsidy of {row.subsidy_fen} fen was paid for this "
                           "attendance", field="subsidy_fen")
        if not row.subsidy_fen:
            county = training.region_code[:6]
            fund = f"gov:{county}:training-subsidy"
            open_account(session, fund, f"training subsidies of {county}", AccountKind.GOVERNMENT_FUND,
                         region_code=county if session.get(Region, county) else None)
            hh = _household_account(session, household, "training", "training subsidies")
            post(session, actor, f"{KEY_PREFIX}training:{training.id}:subsidy:{member.id}",
                 paid_on or training.end_date, f"{training.title}: subsidy for {member.name}",
                 [Leg(fund, subsidy_fen), Leg(hh, -subsidy_fen, household.id, Channel.EDUCATION)])
            row.subsidy_fen = subsidy_fen
    session.flush()
    return row


# ---------------------------------------------------------------- entrepreneurship


def open_shop(session: Session, actor: Actor, member_id: int, *, name: str, kind: ShopKind,
              opened_on: date, platform: str | None = None,
              training_id: int | None = None) -> Shop:
    """A shop or business a member opened; ``training_id`` the training (attended by
    the member) that led to it.  The same member, name and opening day is the same shop."""
    require_role(actor, *RECORDERS)
    member, _ = _member(session, actor, member_id)
    name = _text(name, "name", 200)
    platform = _text(platform, "platform", 60, required=False)
    try:
        kind = ShopKind(kind)
    except ValueError:
        raise InvalidInput(f"kind {kind!r} is not one of: {', '.join(ShopKind)}",
                           field="kind") from None
    if kind in (ShopKind.ONLINE_SHOP, ShopKind.LIVE_STREAM) and not platform:
        raise InvalidInput(f"platform: on which platform is the {kind.value}?", field="platform")
    if training_id is not None:
        training = session.get(TrainingSession, training_id)
        attended = training is not None and session.scalar(
            select(Attendance.id).where(Attendance.session_id == training_id,
                                        Attendance.member_id == member.id)) is not None
        if not attended:
            raise InvalidInput(f"training_id: member {member.id} did not attend training "
                               f"{training_id}", field="training_id")
        if training.start_date > opened_on:
            raise InvalidInput(f"training_id: training {training_id} began on "
                               f"{training.start_date}, after the shop opened", field="training_id")
    existing = session.scalar(select(Shop).where(Shop.member_id == member.id, Shop.name == name,
                                                 Shop.opened_on == opened_on))
    if existing is not None:
        if (existing.kind, existing.platform, existing.training_id) != (kind, platform, training_id):
            raise Conflict(f"shop {existing.id} {name!r} of member {member.id} opened on "
                           f"{opened_on} is recorded with other details", field="name")
        return existing
    shop = Shop(member_id=member.id, training_id=training_id, name=name, kind=kind,
                platform=platform, opened_on=opened_on, created_by=actor.username)
    session.add(shop)
    session.flush()
    audit(session, actor, "open", "shop", shop.id, {"member_id": member.id})
    return shop


def _shop(session: Session, actor: Actor, shop_id: int) -> tuple[Shop, Member, Household]:
    shop = session.get(Shop, shop_id)
    if shop is None:
        raise NotFound(f"no shop {shop_id}", shop_id=shop_id)
    member, household = _member(session, actor, shop.member_id)
    return shop, member, household


def close_shop(session: Session, actor: Actor, shop_id: int, closed_on: date) -> Shop:
    require_role(actor, *RECORDERS)
    shop, _, _ = _shop(session, actor, shop_id)
    if closed_on < shop.opened_on:
        raise InvalidInput(f"closed_on {closed_on} is before the shop opened ({shop.opened_on})",
                           field="closed_on")
    later = session.scalar(select(func.max(ShopEarning.period)).where(
        ShopEarning.shop_id == shop.id))
    if later and later > _month(closed_on):
        raise InvalidInput(f"closed_on: earnings are recorded for {later}, after {closed_on}",
                           field="closed_on")
    if shop.closed_on != closed_on:
        audit(session, actor, "close", "shop", shop.id,
              {"closed_on": closed_on.isoformat(),
               "was": shop.closed_on.isoformat() if shop.closed_on else None})
        shop.closed_on = closed_on
        session.flush()
    return shop


def record_shop_earnings(session: Session, actor: Actor, shop_id: int, period: str,
                         net_fen: int) -> ShopEarning:
    """A month's net earnings of a shop (negative: a loss), once per shop and month,
    credited to the household through the entrepreneurship channel at the month's end."""
    require_role(actor, *PAYERS)
    shop, _, household = _shop(session, actor, shop_id)
    parse_period(period)
    _fen(net_fen, "net_fen", allow_negative=True)
    if period < _month(shop.opened_on):
        raise InvalidInput(f"period {period} is before shop {shop.id} opened ({shop.opened_on})",
                           field="period")
    if shop.closed_on and period > _month(shop.closed_on):
        raise InvalidInput(f"period {period}: shop {shop.id} closed on {shop.closed_on}",
                           field="period")
    row = session.scalar(select(ShopEarning).where(ShopEarning.shop_id == shop.id,
                                                   ShopEarning.period == period))
    if row is not None:
        if row.net_fen != net_fen:
            raise Conflict(f"net_fen: earnings of shop {shop.id} for {period} are recorded as "
                           f"{row.net_fen} fen", field="net_fen")
        return row
    row = ShopEarning(shop_id=shop.id, period=period, net_fen=net_fen, recorded_by=actor.username)
    session.add(row)
    session.flush()
    if net_fen:
        business = f"shop:{shop.id}:business"
        open_account(session, business, f"{shop.name}: trading", AccountKind.SELLER)
        hh = _household_account(session, household, f"shop:{shop.id}", shop.name)
        day = min(_month_end(period), shop.closed_on or date.max)
        post(session, actor, f"{KEY_PREFIX}shop:{shop.id}:{period}", day,
             f"{shop.name}: net earnings {period}",
             [Leg(business, net_fen), Leg(hh, -net_fen, household.id, Channel.ENTREPRENEURSHIP)])
    audit(session, actor, "earnings", "shop", shop.id, {"period": period, "net_fen": net_fen})
    return row


# ---------------------------------------------------------------- employment


def add_job(session: Session, actor: Actor, member_id: int, *, kind: JobKind,
            wage_basis: WageBasis, wage_fen: int, start_date: date,
            employer_id: int | None = None, employer_name: str | None = None,
            title: str = "", transfer: bool = False, end_date: date | None = None) -> Job:
    """A member's job, by a registered organisation (``employer_id``) or a named
    employer outside the registry.  An enterprise records jobs with itself as employer."""
    require_role(actor, *EMPLOYERS)
    member, _ = _member(session, actor, member_id)
    try:
        kind, wage_basis = JobKind(kind), WageBasis(wage_basis)
    except ValueError:
        raise InvalidInput(f"kind must be one of {', '.join(JobKind)} and wage_basis one of "
                           f"{', '.join(WageBasis)}", field="kind") from None
    _fen(wage_fen, "wage_fen", positive=True)
    employer_name = _text(employer_name, "employer_name", 200, required=False)
    title = _text(title, "title", 100, required=False) or ""
    if (employer_id is None) == (employer_name is None):
        raise InvalidInput("give either employer_id (a registered organisation) or "
                           "employer_name, not both or neither", field="employer_id")
    if actor.role is Role.ENTERPRISE and employer_id is None:
        raise InvalidInput("employer_id: an enterprise records jobs with itself, a registered "
                           "organisation, as employer", field="employer_id")
    if employer_id is not None:
        org = session.get(Organisation, employer_id)
        if org is None:
            raise InvalidInput(f"employer_id: no organisation {employer_id}", field="employer_id")
        if actor.role is Role.ENTERPRISE:
            if org.kind is not OrganisationKind.ENTERPRISE:
                raise InvalidInput(f"employer_id: organisation {employer_id} is not an enterprise",
                                   field="employer_id")
            require_region(actor, org.region_code)
        employer_name = org.name
    if end_date is not None and end_date < start_date:
        raise InvalidInput(f"end_date {end_date} is before start_date {start_date}",
                           field="end_date")
    existing = session.scalar(select(Job).where(Job.member_id == member.id,
                                                Job.employer_name == employer_name,
                                                Job.start_date == start_date))
    if existing is not None:
        if (existing.employer_id, existing.kind, existing.wage_basis, existing.wage_fen) != (
                employer_id, kind, wage_basis, wage_fen):
            raise Conflict(f"job {existing.id} of member {member.id} with {employer_name} from "
                           f"{start_date} is recorded with other terms", field="start_date")
        return existing
    job = Job(member_id=member.id, employer_id=employer_id, employer_name=employer_name,
              title=title, kind=kind, transfer=bool(transfer), wage_basis=wage_basis,
              wage_fen=wage_fen, start_date=start_date, end_date=end_date,
              created_by=actor.username)
    session.add(job)
    session.flush()
    audit(session, actor, "create", "job", job.id, {"member_id": member.id})
    return job


def _job(session: Session, actor: Actor, job_id: int) -> tuple[Job, Member, Household]:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", job_id=job_id)
    # No user is linked to an organisation yet: an enterprise's own jobs are those its
    # users recorded.
    if actor.role is Role.ENTERPRISE and job.created_by != actor.username:
        raise PermissionDenied(f"job {job_id} was not recorded by {actor.username}",
                               job_id=job_id)
    member, household = _member(session, actor, job.member_id)
    return job, member, household


def end_job(session: Session, actor: Actor, job_id: int, end_date: date) -> Job:
    require_role(actor, *EMPLOYERS)
    job, _, _ = _job(session, actor, job_id)
    if end_date < job.start_date:
        raise InvalidInput(f"end_date {end_date} is before the job started ({job.start_date})",
                           field="end_date")
    later = session.scalar(select(func.max(WagePayment.period)).where(WagePayment.job_id == job.id))
    if later and later > _month(end_date):
        raise InvalidInput(f"end_date: wages are paid for {later}, after {end_date}",
                           field="end_date")
    if job.end_date != end_date:
        audit(session, actor, "end", "job", job.id,
              {"end_date": end_date.isoformat(),
               "was": job.end_date.isoformat() if job.end_date else None})
        job.end_date = end_date
        session.flush()
    return job


def pay_wage(session: Session, actor: Actor, job_id: int, period: str, *,
             key: str | None = None, amount_fen: int | None = None, days: int | None = None,
             paid_on: date | None = None) -> WagePayment:
    """A wage payment for the month worked, idempotent by ``key`` (default: the month),
    credited to the household through the employment channel.  Without an amount a
    monthly job pays its month's wage and a daily job ``days`` times its day's wage."""
    require_role(actor, *EMPLOYERS)
    job, member, household = _job(session, actor, job_id)
    year, month = parse_period(period)
    key = _text(key, "key", 100, required=False) or period
    if period < _month(job.start_date):
        raise InvalidInput(f"period {period} is before job {job.id} started ({job.start_date})",
                           field="period")
    if job.end_date and period > _month(job.end_date):
        raise InvalidInput(f"period {period}: job {job.id} ended on {job.end_date}, it cannot "
                           "be paid for a later month", field="period")
    if days is not None and (type(days) is not int
                             or not 0 < days <= calendar.monthrange(year, month)[1]):
        raise InvalidInput(f"days must be a whole number from 1 to the days of {period}",
                           field="days")
    if amount_fen is None:
        if job.wage_basis is WageBasis.DAILY:
            if days is None:
                raise InvalidInput("days: a daily job is paid by the days worked",
                                   field="days")
            amount_fen = days * job.wage_fen
        else:
            amount_fen = job.wage_fen
    _fen(amount_fen, "amount_fen", positive=True)
    paid_on = paid_on or _month_end(period)
    if paid_on < date(year, month, 1):
        raise InvalidInput(f"paid_on {paid_on} is before the month worked ({period})",
                           field="paid_on")
    row = session.scalar(select(WagePayment).where(WagePayment.job_id == job.id,
                                                   WagePayment.key == key))
    if row is not None:
        if (row.period, row.amount_fen, row.paid_on) != (period, amount_fen, paid_on):
            raise Conflict(f"key: payment {key!r} of job {job.id} is recorded as {row.amount_fen} "
                           f"fen for {row.period} paid on {row.paid_on}", field="key")
        return row
    row = WagePayment(job_id=job.id, key=key, period=period, days=days, amount_fen=amount_fen,
                      paid_on=paid_on, recorded_by=actor.username)
    session.add(row)
    session.flush()
    if job.employer_id is not None:
        org = session.get(Organisation, job.employer_id)
        employer = f"employer:{org.id}:wages"
        open_account(session, employer, f"{org.name}: wages", AccountKind.COOPERATIVE
                     if org.kind is OrganisationKind.COOPERATIVE else AccountKind.ENTERPRISE,
                     organisation_id=org.id)
    else:
        employer = f"employer:job:{job.id}:wages"
        open_account(session, employer, f"{job.employer_name}: wages", AccountKind.EXTERNAL)
    hh = _household_account(session, household, f"job:{job.id}", f"wages from {job.employer_name}")
    post(session, actor, f"{KEY_PREFIX}job:{job.id}:wage:{key}", paid_on,
         f"{job.employer_name}: wages of {member.name} for {period}",
         [Leg(employer, amount_fen), Leg(hh, -amount_fen, household.id, Channel.EMPLOYMENT)])
    audit(session, actor, "pay", "job", job.id, {"period": period, "amount_fen": amount_fen})
    return row


# ---------------------------------------------------------------- reading


def _person(member: Member, household: Household) -> dict:
    return {"member_id": member.id, "name": member.name, "household_id": household.id,
            "household_number": household.number, "village_code": household.village_code}


def _county_prefix(actor: Actor) -> str:
    # Sessions are no personal data: a village cadre sees those of its whole county,
    # where its villagers are trained too.
    return scope_prefix(actor.region_code)[:6]


def training_view(session: Session, actor: Actor, training_id: int) -> dict:
    """A session with the attendees inside the actor's scope."""
    require_role(actor, *READERS)
    t = _training(session, training_id)
    if actor.region_code and not t.region_code.startswith(_county_prefix(actor)):
        raise PermissionDenied(f"training {training_id} was held outside your county",
                               training_id=training_id)
    attendees = []
    rows = session.execute(
        select(Attendance, Member, Household).join(Member, Member.id == Attendance.member_id)
        .join(Household, Household.id == Member.household_id)
        .where(Attendance.session_id == t.id).order_by(Attendance.id))
    for a, m, h in rows:
        if actor.may_reach(h.village_code):
            attendees.append({**_person(m, h), "completed": a.completed,
                              "certificate_no": a.certificate_no, "subsidy_fen": a.subsidy_fen})
    return {"id": t.id, "title": t.title, "topic": t.topic.value, "organiser": t.organiser,
            "organiser_id": t.organiser_id, "region_code": t.region_code,
            "start_date": t.start_date.isoformat(), "end_date": t.end_date.isoformat(),
            "hours": t.hours, "external_attendees": t.external_attendees,
            "attendees": attendees}


def list_trainings(session: Session, actor: Actor, region_code: str | None = None,
                   year: int | None = None) -> list[dict]:
    """Sessions held inside the actor's scope (and ``region_code``), by start date."""
    require_role(actor, *READERS)
    stmt = select(TrainingSession).order_by(TrainingSession.start_date, TrainingSession.id)
    if region_code:
        require_region(actor, region_code)
        stmt = stmt.where(TrainingSession.region_code.startswith(scope_prefix(region_code)))
    if actor.region_code:
        stmt = stmt.where(TrainingSession.region_code.startswith(_county_prefix(actor)))
    if year:
        stmt = stmt.where(TrainingSession.start_date >= date(year, 1, 1),
                          TrainingSession.start_date <= date(year, 12, 31))
    counts = dict(session.execute(select(Attendance.session_id, func.count())
                                  .group_by(Attendance.session_id)).all())
    return [{"id": t.id, "title": t.title, "topic": t.topic.value, "organiser": t.organiser,
             "region_code": t.region_code, "start_date": t.start_date.isoformat(),
             "end_date": t.end_date.isoformat(), "hours": t.hours,
             "attendees": counts.get(t.id, 0), "external_attendees": t.external_attendees}
            for t in session.scalars(stmt)]


def _shop_view(shop: Shop, m: Member, h: Household, earned: int) -> dict:
    return {"id": shop.id, **_person(m, h), "name": shop.name, "kind": shop.kind.value,
            "platform": shop.platform, "training_id": shop.training_id,
            "opened_on": shop.opened_on.isoformat(),
            "closed_on": shop.closed_on.isoformat() if shop.closed_on else None,
            "net_earnings_fen": earned}


def list_shops(session: Session, actor: Actor, region_code: str | None = None) -> list[dict]:
    require_role(actor, *READERS)
    stmt = (select(Shop, Member, Household).join(Member, Member.id == Shop.member_id)
            .join(Household, Household.id == Member.household_id).order_by(Shop.id))
    for code in (region_code, actor.region_code):
        if code:
            stmt = stmt.where(_in_region(code))
    if region_code:
        require_region(actor, region_code)
    earned = dict(session.execute(select(ShopEarning.shop_id, func.sum(ShopEarning.net_fen))
                                  .group_by(ShopEarning.shop_id)).all())
    return [_shop_view(s, m, h, int(earned.get(s.id, 0))) for s, m, h in session.execute(stmt)]


def _job_view(job: Job, m: Member, h: Household, paid: int) -> dict:
    return {"id": job.id, **_person(m, h), "employer_id": job.employer_id,
            "employer_name": job.employer_name, "title": job.title, "kind": job.kind.value,
            "transfer": job.transfer, "wage_basis": job.wage_basis.value,
            "wage_fen": job.wage_fen, "start_date": job.start_date.isoformat(),
            "end_date": job.end_date.isoformat() if job.end_date else None, "paid_fen": paid}


def list_jobs(session: Session, actor: Actor, region_code: str | None = None) -> list[dict]:
    """Jobs of members inside the actor's scope; an enterprise sees the jobs it recorded."""
    require_role(actor, *READERS, Role.ENTERPRISE)
    stmt = (select(Job, Member, Household).join(Member, Member.id == Job.member_id)
            .join(Household, Household.id == Member.household_id).order_by(Job.id))
    for code in (region_code, actor.region_code):
        if code:
            stmt = stmt.where(_in_region(code))
    if region_code:
        require_region(actor, region_code)
    if actor.role is Role.ENTERPRISE:
        stmt = stmt.where(Job.created_by == actor.username)
    paid = dict(session.execute(select(WagePayment.job_id, func.sum(WagePayment.amount_fen))
                                .group_by(WagePayment.job_id)).all())
    return [_job_view(j, m, h, int(paid.get(j.id, 0))) for j, m, h in session.execute(stmt)]


def job_view(session: Session, actor: Actor, job_id: int) -> dict:
    require_role(actor, *READERS, Role.ENTERPRISE)
    job, m, h = _job(session, actor, job_id)
    payments = session.scalars(select(WagePayment).where(WagePayment.job_id == job.id)
                               .order_by(WagePayment.period, WagePayment.id)).all()
    return {**_job_view(job, m, h, sum(p.amount_fen for p in payments)),
            "payments": [{"key": p.key, "period": p.period, "days": p.days,
                          "amount_fen": p.amount_fen, "paid_on": p.paid_on.isoformat()}
                         for p in payments]}


def _status_history(session: Session, households) -> dict[int, list[tuple[date, Status]]]:
    """Dated status events of the households selected by the ``households`` subquery."""
    history: dict[int, list[tuple[date, Status]]] = {}
    for hid, day, status in session.execute(
            select(StatusEvent.household_id, StatusEvent.event_date, StatusEvent.status)
            .where(StatusEvent.household_id.in_(households))
            .order_by(StatusEvent.event_date, StatusEvent.id)):
        history.setdefault(hid, []).append((day, status))
    return history


def _was_poor(history: list[tuple[date, Status]], day: date) -> bool:
    current = None
    for when, status in history:
        if when > day:
            break
        current = status
    return current in POOR


def summary(session: Session, actor: Actor, region_code: str, year: int) -> dict:
    """The figures seed 000 reports, for a region and year: people trained, shops
    opened, jobs held, and the income each channel brought to the region's households.

    People are counted by where their household lives; a training counts in the year it
    began; a trainee is "from a poor household" if the household's status on the first
    day of the training was identified or returned; a shop is "opened by a trainee" if
    it names its training or its opener had completed a training begun by its opening;
    income is what the ledger posted from these records with a business date in the year.
    """
    require_role(actor, *SUMMARY_READERS)
    if session.get(Region, region_code) is None:
        raise InvalidInput(f"region: no region {region_code!r}", field="region")
    require_region(actor, region_code)
    if type(year) is not int or not 1980 <= year <= 2100:
        raise InvalidInput(f"year {year!r} is out of range", field="year")
    first, last = date(year, 1, 1), date(year, 12, 31)
    in_region = _in_region(region_code)

    # Training: attendances of the region's people at sessions begun in the year.
    attended = (select(Attendance.member_id, Attendance.completed, Member.household_id,
                       TrainingSession.start_date, TrainingSession.topic)
                .join(TrainingSession, TrainingSession.id == Attendance.session_id)
                .join(Member, Member.id == Attendance.member_id)
                .join(Household, Household.id == Member.household_id)
                .where(in_region, TrainingSession.start_date >= first,
                       TrainingSession.start_date <= last))
    rows = session.execute(attended).all()
    history = _status_history(session, attended.with_only_columns(Member.household_id))
    completed = {r.member_id for r in rows if r.completed}
    poor = {r.member_id for r in rows
            if r.completed and _was_poor(history.get(r.household_id, []), r.start_date)}
    by_topic: dict[str, set[int]] = {}
    for r in rows:
        if r.completed:
            by_topic.setdefault(r.topic.value, set()).add(r.member_id)
    held = session.execute(
        select(func.count(), func.coalesce(func.sum(TrainingSession.hours), 0),
               func.coalesce(func.sum(TrainingSession.external_attendees), 0))
        .where(TrainingSession.region_code.startswith(scope_prefix(region_code)),
               TrainingSession.start_date >= first, TrainingSession.start_date <= last)).one()

    # Entrepreneurship: shops of the region's people.
    shops = session.execute(
        select(Shop.id, Shop.member_id, Shop.training_id, Shop.opened_on, Shop.closed_on)
        .join(Member, Member.id == Shop.member_id)
        .join(Household, Household.id == Member.household_id)
        .where(in_region, Shop.opened_on <= last)).all()
    opened = [s for s in shops if s.opened_on >= first]
    openers = (select(Shop.member_id).join(Member, Member.id == Shop.member_id)
               .join(Household, Household.id == Member.household_id)
               .where(in_region, Shop.opened_on >= first, Shop.opened_on <= last))
    trained_by: dict[int, date] = dict(session.execute(
        select(Attendance.member_id, func.min(TrainingSession.start_date))
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(Attendance.completed.is_(True), Attendance.member_id.in_(openers))
        .group_by(Attendance.member_id)).all())
    by_trainees = [s for s in opened if s.training_id is not None
                   or (s.member_id in trained_by and trained_by[s.member_id] <= s.opened_on)]

    # Employment: jobs held at any time in the year.
    jobs = session.execute(
        select(Job.id, Job.member_id, Job.start_date, Job.transfer)
        .join(Member, Member.id == Job.member_id)
        .join(Household, Household.id == Member.household_id)
        .where(in_region, Job.start_date <= last,
               or_(Job.end_date.is_(None), Job.end_date >= first))).all()

    # Income: the ledger's postings from these records.
    income = {c.value: 0 for c in (Channel.ENTREPRENEURSHIP, Channel.EMPLOYMENT, Channel.EDUCATION)}
    reached: set[int] = set()
    for hid, channel, amount in session.execute(
            select(Posting.household_id, Posting.channel, func.sum(-Posting.amount_fen))
            .join(Transaction, Transaction.id == Posting.transaction_id)
            .join(Account, Account.id == Posting.account_id)
            .join(Household, Household.id == Posting.household_id)
            .where(Transaction.key.startswith(KEY_PREFIX), Account.kind == AccountKind.HOUSEHOLD,
                   Posting.channel.is_not(None), in_region,
                   and_(Transaction.business_date >= first, Transaction.business_date <= last))
            .group_by(Posting.household_id, Posting.channel)):
        income[channel.value] = income.get(channel.value, 0) + int(amount)
        reached.add(hid)
    return {
        "region": region_code, "year": year,
        "training": {
            "sessions_held": held[0], "hours_held": int(held[1]),
            "external_attendees": int(held[2]),
            "attendances": len(rows), "people_attended": len({r.member_id for r in rows}),
            "people_trained": len(completed), "trainees_from_poor_households": len(poor),
            "people_trained_by_topic": {k: len(v) for k, v in sorted(by_topic.items())},
        },
        "entrepreneurship": {
            "shops_opened": len(opened),
            "shops_opened_still_open": sum(1 for s in opened
                                           if s.closed_on is None or s.closed_on > last),
            "shops_open_at_year_end": sum(1 for s in shops
                                          if s.closed_on is None or s.closed_on > last),
            "shops_opened_by_trainees": len(by_trainees),
            "people_opened_shops": len({s.member_id for s in opened}),
        },
        "employment": {
            "jobs_held": len(jobs), "people_employed": len({j.member_id for j in jobs}),
            "jobs_started": sum(1 for j in jobs if j.start_date >= first),
            "transfer_jobs": sum(1 for j in jobs if j.transfer),
        },
        "income_fen": income,
        "households_with_income": len(reached),
    }
