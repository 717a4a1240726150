"""Targeting procedures as cases that move through configured steps (procedures.toml).

Each step is taken by a user whose role and region level the step names, never by the
user who took the previous step (maker-checker).  A notice step opens when the case
reaches it and can be taken only after its days have passed; an objection filed during
the notice stops the case until an officer reviews it (upheld: the case is rejected;
dismissed: the notice starts again in full).  Only the last step writes the registry —
the household's status history is written by completed cases, and by nothing else
except the initial import of an existing register.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..people.access import Actor, audit, require_region
from ..people.models import Role
from ..regions.codes import level_of_code
from ..registry.models import Household, MonitoringCategory, PovertyCause, Status
from ..registry.service import check_transition, current_status, record_status
from .models import Attachment, Case, CaseAction, CaseKind, CaseState, Objection

LIVE = (CaseState.OPEN, CaseState.IN_NOTICE, CaseState.OBJECTED)
MAX_ATTACHMENT = 5 * 1024 * 1024
# Key data a data-change case may set on the household.
CHANGEABLE = {"address": str, "main_cause": PovertyCause}
# The familiar colours of the status: red poor, green exited, yellow returned or at risk.
COLOUR = {Status.IDENTIFIED: "red", Status.EXITED: "green", Status.RETURNED: "yellow",
          Status.MONITORED: "yellow"}


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    title_zh: str
    roles: tuple[Role, ...]
    level: str  # village, township, county or any
    notice_days: int = 0


@dataclass(frozen=True)
class Procedure:
    kind: CaseKind
    title: str
    title_zh: str
    steps: tuple[Step, ...]


@lru_cache(maxsize=1)
def procedures() -> dict[CaseKind, Procedure]:
    raw = tomllib.loads(resources.files(__package__).joinpath("procedures.toml")
                        .read_text(encoding="utf-8"))
    out = {}
    for kind in CaseKind:
        p = raw[kind.value]
        out[kind] = Procedure(kind, p["title"], p["title_zh"], tuple(
            Step(s["key"], s["title"], s["title_zh"], tuple(Role(r) for r in s["roles"]),
                 s["level"], s.get("notice_days", 0)) for s in p["steps"]))
    return out


def colour(status: Status | None, at_risk: bool = False) -> str:
    if status is None:
        return "grey"
    return "yellow" if at_risk and status is Status.EXITED else COLOUR[status]


def target_status(kind: CaseKind, current: Status | None) -> Status | None:
    """The status a completed case writes (None: it writes no status)."""
    if kind is CaseKind.IDENTIFICATION:
        return Status.RETURNED if current is Status.EXITED else Status.IDENTIFIED
    if kind is CaseKind.EXIT:
        return Status.EXITED
    if kind is CaseKind.MONITORING_ENTRY:
        return Status.MONITORED
    return None


def _household(session: Session, actor: Actor, household_id: int) -> Household:
    h = session.get(Household, household_id)
    if h is None:
        raise InvalidInput(f"no household {household_id}", field="household_id")
    require_region(actor, h.village_code)
    return h


def _check_payload(session: Session, kind: CaseKind, household: Household, payload: dict) -> dict:
    current, _ = current_status(session, household.id)
    target = target_status(kind, current)
    if target is not None:
        check_transition(current, target)
    if kind is CaseKind.MONITORING_ENTRY:
        try:
            return {"category": MonitoringCategory(payload.get("category")).value}
        except ValueError:
            raise InvalidInput("entering monitoring needs a category: one of "
                               f"{', '.join(c.value for c in MonitoringCategory)}",
                               field="payload.category") from None
    if kind is CaseKind.MONITORING_EXIT:
        if current is not Status.MONITORED or household.risk_eliminated:
            raise Conflict(f"household {household.id} is not a monitored household at risk",
                           field="household_id")
        return {}
    if kind is CaseKind.DATA_CHANGE:
        fields = payload.get("fields") or {}
        if not isinstance(fields, dict):
            raise InvalidInput("payload.fields maps field names to new values", field="payload.fields")
        if not fields:
            raise InvalidInput("a data change names the fields to change", field="payload.fields")
        out = {}
        for name, value in fields.items():
            if name not in CHANGEABLE:
                raise InvalidInput(f"{name!r} cannot be changed by a case; one of "
                                   f"{', '.join(CHANGEABLE)}", field=f"payload.fields.{name}")
            try:
                out[name] = CHANGEABLE[name](value) if value is not None else None
            except ValueError:
                raise InvalidInput(f"{value!r} is not a valid {name}",
                                   field=f"payload.fields.{name}") from None
            out[name] = getattr(out[name], "value", out[name])
        return {"fields": out}
    return {}


def open_case(session: Session, actor: Actor, kind: CaseKind | str, household_id: int,
              reason: str, payload: dict | None = None, *, today: date | None = None,
              origin: str = "manual", propose_only: bool = False) -> Case:
    """Open a case; its first step is taken by the opener (a proposal from the
    assessment is opened with no step taken, for an officer to take up or dismiss)."""
    try:
        kind = CaseKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown case kind {kind!r}; one of {', '.join(k.value for k in CaseKind)}",
                           field="kind") from None
    household = _household(session, actor, household_id)
    if not reason.strip():
        raise InvalidInput("a case needs a reason", field="reason")
    live = session.scalar(select(Case.id).where(Case.household_id == household_id,
                                                Case.kind == kind, Case.state.in_(LIVE)))
    if live is not None:
        raise Conflict(f"household {household_id} already has an open {kind.value} case ({live})",
                       field="household_id", case=live)
    checked = _check_payload(session, kind, household, payload or {})
    case = Case(kind=kind, household_id=household_id, village_code=household.village_code,
                state=CaseState.OPEN, step=0, reason=reason.strip(), origin=origin,
                payload=checked, opened_by=actor.username)
    session.add(case)
    session.flush()
    audit(session, actor, "open", "targeting_case", case.id, {"kind": kind.value, "origin": origin})
    if not propose_only:
        take_step(session, actor, case.id, reason, today=today)
    return case


def get_case(session: Session, case_id: int, lock: bool = False) -> Case:
    q = select(Case).where(Case.id == case_id)
    case = session.scalar(q.with_for_update() if lock else q)
    if case is None:
        raise NotFound(f"no case {case_id}", field="case_id")
    return case


def current_step(case: Case) -> Step | None:
    steps = procedures()[case.kind].steps
    return steps[case.step] if case.step < len(steps) else None


def _authorise(actor: Actor, case: Case, step: Step) -> None:
    if actor.role not in step.roles and actor.role is not Role.ADMINISTRATOR:
        raise PermissionDenied(f"step {step.key!r} ({step.title}) is taken by "
                               f"{', '.join(r.value for r in step.roles)}, not {actor.role.value}",
                               field="step", step=step.key)
    require_region(actor, case.village_code)
    if step.level != "any" and actor.role is not Role.ADMINISTRATOR:
        level = level_of_code(actor.region_code).value if actor.region_code else "country"
        if level != step.level:
            raise PermissionDenied(f"step {step.key!r} is taken at the {step.level} level; "
                                   f"your scope is a {level}", field="step", step=step.key)


def _last_taker(session: Session, case: Case) -> str | None:
    return session.scalar(select(CaseAction.username).where(
        CaseAction.case_id == case.id, CaseAction.action == "took")
        .order_by(CaseAction.id.desc()).limit(1))


def _log(session: Session, actor: Actor, case: Case, step: str, action: str, comment: str = "") -> None:
    session.add(CaseAction(case_id=case.id, step=step, action=action, username=actor.username,
                           role=actor.role.value, comment=comment))


def take_step(session: Session, actor: Actor, case_id: int, comment: str = "", *,
              expected: str | None = None, today: date | None = None) -> Case:
    """Take the case's next step.  ``expected`` names the step the user means to take:
    a step out of order is refused, never skipped to."""
    today = today or date.today()
    case = get_case(session, case_id, lock=True)
    if case.state is CaseState.OBJECTED:
        raise Conflict(f"case {case_id} is stopped by an objection: it must be reviewed first",
                       field="case_id")
    if case.state not in LIVE:
        raise Conflict(f"case {case_id} is {case.state.value}", field="case_id")
    step = current_step(case)
    if expected is not None and expected != step.key:
        raise Conflict(f"case {case_id} is at step {step.key!r}, not {expected!r}: steps are "
                       "taken in order", field="step", current=step.key)
    _authorise(actor, case, step)
    if _last_taker(session, case) == actor.username:
        raise Conflict(f"{actor.username} took the previous step of case {case_id}; another "
                       "user must take this one (maker-checker)", field="step")
    if step.notice_days and today <= case.notice_end:
        raise Conflict(f"the public notice of case {case_id} runs until {case.notice_end}",
                       field="step", notice_end=case.notice_end.isoformat())
    _log(session, actor, case, step.key, "took", comment)
    case.step += 1
    following = current_step(case)
    if following is None:
        _complete(session, actor, case, today)
    elif following.notice_days:
        case.state, case.notice_start = CaseState.IN_NOTICE, today
        case.notice_end = today + timedelta(days=following.notice_days)
    else:
        case.state, case.notice_start, case.notice_end = CaseState.OPEN, None, None
    session.flush()
    audit(session, actor, "step", "targeting_case", case.id, {"step": step.key})
    return case


def _complete(session: Session, actor: Actor, case: Case, today: date) -> None:
    """The last step: write the registry."""
    household = session.get(Household, case.household_id)
    current, _ = current_status(session, household.id)
    target = target_status(case.kind, current)
    why = f"case {case.id} ({case.kind.value}): {case.reason}"
    if target is not None:
        record_status(session, actor, household.id, target, today, why)
    if case.kind is CaseKind.MONITORING_ENTRY:
        household.monitoring_category = MonitoringCategory(case.payload["category"])
        household.risk_eliminated = False
    elif case.kind is CaseKind.MONITORING_EXIT:
        household.risk_eliminated = True
    elif case.kind is CaseKind.DATA_CHANGE:
        for name, value in case.payload["fields"].items():
            setattr(household, name, CHANGEABLE[name](value) if value is not None else None)
    from ..db import utcnow
    case.state, case.closed_at = CaseState.APPROVED, utcnow()
    if case.origin.startswith("assessment:"):
        _settle_proposal(session, case, accepted=True)


def reject(session: Session, actor: Actor, case_id: int, comment: str) -> Case:
    """Refuse the case at its current step (by a user who may take that step)."""
    case = get_case(session, case_id, lock=True)
    if case.state not in LIVE:
        raise Conflict(f"case {case_id} is {case.state.value}", field="case_id")
    if not comment.strip():
        raise InvalidInput("say why the case is rejected", field="comment")
    step = current_step(case)
    _authorise(actor, case, step)
    _log(session, actor, case, step.key, "rejected", comment)
    return _close(session, case, CaseState.REJECTED)


def withdraw(session: Session, actor: Actor, case_id: int, comment: str) -> Case:
    """Withdraw a case (the opener, or an officer of its county); a proposal from the
    assessment is dismissed this way."""
    case = get_case(session, case_id, lock=True)
    require_region(actor, case.village_code)
    if case.state not in LIVE:
        raise Conflict(f"case {case_id} is {case.state.value}", field="case_id")
    if actor.username != case.opened_by and actor.role not in (Role.COUNTY_OFFICER, Role.ADMINISTRATOR):
        raise PermissionDenied("only the opener or a county officer withdraws a case", field="case_id")
    _log(session, actor, case, "-", "withdrew", comment)
    if case.origin.startswith("assessment:"):
        _settle_proposal(session, case, accepted=False)
    return _close(session, case, CaseState.WITHDRAWN)


def _close(session: Session, case: Case, state: CaseState) -> Case:
    from ..db import utcnow
    case.state, case.closed_at = state, utcnow()
    session.flush()
    return case


def comment(session: Session, actor: Actor, case_id: int, text: str) -> CaseAction:
    case = get_case(session, case_id)
    require_region(actor, case.village_code)
    if actor.role in (Role.CONSUMER, Role.ENTERPRISE):
        raise PermissionDenied("only officials comment on a case", field="case_id")
    if not text.strip():
        raise InvalidInput("a comment needs text", field="text")
    row = CaseAction(case_id=case.id, step="-", action="commented", username=actor.username,
                     role=actor.role.value, comment=text)
    session.add(row)
    session.flush()
    return row


def attach(session: Session, actor: Actor, case_id: int, filename: str, media_type: str,
           data: bytes) -> Attachment:
    import hashlib
    case = get_case(session, case_id)
    require_region(actor, case.village_code)
    if actor.role in (Role.CONSUMER, Role.ENTERPRISE):
        raise PermissionDenied("only officials attach documents to a case", field="case_id")
    if not data or len(data) > MAX_ATTACHMENT:
        raise InvalidInput(f"an attachment is 1 byte to {MAX_ATTACHMENT // 1024 // 1024} MB",
                           field="file")
    row = Attachment(case_id=case.id, filename=filename[:200] or "attachment",
                     media_type=media_type[:100] or "application/octet-stream",
                     sha256=hashlib.sha256(data).hexdigest(), data=data, added_by=actor.username)
    session.add(row)
    session.flush()
    return row


def object_to(session: Session, case_id: int, filed_by: str, text: str,
              today: date | None = None) -> Objection:
    """Anyone may object while a case is on public notice; the case stops for review."""
    today = today or date.today()
    case = get_case(session, case_id, lock=True)
    if case.state not in (CaseState.IN_NOTICE, CaseState.OBJECTED) or not (
            case.notice_start <= today <= case.notice_end):
        raise Conflict(f"case {case_id} is not on public notice", field="case_id")
    if not text.strip():
        raise InvalidInput("say what the objection is", field="text")
    row = Objection(case_id=case.id, filed_by=(filed_by or "anonymous")[:100], text=text[:4000])
    session.add(row)
    case.state = CaseState.OBJECTED
    session.flush()
    return row


def review_objection(session: Session, actor: Actor, objection_id: int, upheld: bool,
                     review: str, today: date | None = None) -> Case:
    """A township or county officer reviews an objection: upheld, the case is rejected;
    dismissed (and none other open), the notice starts again for its full period."""
    from ..db import utcnow
    today = today or date.today()
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise NotFound(f"no objection {objection_id}", field="objection_id")
    case = get_case(session, objection.case_id, lock=True)
    if actor.role not in (Role.COUNTY_OFFICER, Role.ADMINISTRATOR):
        raise PermissionDenied("objections are reviewed by the township or the county",
                               field="objection_id")
    require_region(actor, case.village_code)
    if objection.upheld is not None:
        raise Conflict(f"objection {objection_id} was already reviewed", field="objection_id")
    if not review.strip():
        raise InvalidInput("write the review's finding", field="review")
    objection.upheld, objection.reviewed_by = upheld, actor.username
    objection.review, objection.reviewed_at = review, utcnow()
    step = current_step(case)
    _log(session, actor, case, step.key if step else "-", "upheld" if upheld else "dismissed", review)
    if case.state is not CaseState.OBJECTED:
        # Already rejected or withdrawn (another objection upheld): the review is kept,
        # the case stays closed.
        session.flush()
        return case
    if upheld:
        return _close(session, case, CaseState.REJECTED)
    still_open = session.scalar(select(Objection.id).where(Objection.case_id == case.id,
                                                           Objection.upheld.is_(None)))
    if still_open is None:
        case.state, case.notice_start = CaseState.IN_NOTICE, today
        case.notice_end = today + timedelta(days=current_step(case).notice_days)
    session.flush()
    return case


# The station keeper files applications for villagers and follows them (its village only).
OFFICIALS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE, Role.STATION_KEEPER)


def require_official(actor: Actor) -> None:
    """Cases name households and why: only officials read them (region-scoped)."""
    from ..people.access import require_role
    require_role(actor, *OFFICIALS)


def case_view(session: Session, case: Case, *, detail: bool = True) -> dict:
    proc = procedures()[case.kind]
    household = session.get(Household, case.household_id)
    status, _ = current_status(session, household.id)
    out = {"id": case.id, "kind": case.kind.value, "title": proc.title, "title_zh": proc.title_zh,
           "household_id": household.id, "household_number": household.number,
           "village_code": case.village_code, "state": case.state.value, "origin": case.origin,
           "reason": case.reason, "payload": case.payload,
           "current_step": (s := current_step(case)) and s.key,
           "steps": [{"key": st.key, "title": st.title, "title_zh": st.title_zh,
                      "roles": [r.value for r in st.roles], "level": st.level,
                      "notice_days": st.notice_days, "done": i < case.step}
                     for i, st in enumerate(proc.steps)],
           "notice": {"start": case.notice_start.isoformat(), "end": case.notice_end.isoformat()}
           if case.notice_start else None,
           "household_status": status and status.value,
           "colour": colour(status, at_risk=case.kind is CaseKind.MONITORING_ENTRY and case.state in LIVE)}
    if detail:
        out["actions"] = [{"step": a.step, "action": a.action, "by": a.username, "role": a.role,
                           "comment": a.comment, "at": a.at.isoformat(timespec="seconds")}
                          for a in session.scalars(select(CaseAction).where(CaseAction.case_id == case.id)
                                                   .order_by(CaseAction.id))]
        out["objections"] = [{"id": o.id, "filed_by": o.filed_by, "text": o.text,
                              "filed_at": o.filed_at.isoformat(timespec="seconds"),
                              "upheld": o.upheld, "review": o.review}
                             for o in session.scalars(select(Objection).where(Objection.case_id == case.id)
                                                      .order_by(Objection.id))]
        out["attachments"] = [{"id": a.id, "filename": a.filename, "media_type": a.media_type,
                               "sha256": a.sha256, "size": len(a.data), "by": a.added_by}
                              for a in session.scalars(select(Attachment).where(Attachment.case_id == case.id)
                                                       .order_by(Attachment.id))]
    return out


def queue(session: Session, actor: Actor, region: str | None = None,
          state: str | None = None, kind: str | None = None, limit: int = 200) -> list[dict]:
    """The cases of a region, the next step of each, and whether this user may take it."""
    require_official(actor)
    region = region or actor.region_code or ""
    if region:
        require_region(actor, region)
    q = select(Case).where(Case.village_code.startswith(region))
    try:
        q = q.where(Case.state == CaseState(state)) if state else q.where(Case.state.in_(LIVE))
        if kind:
            q = q.where(Case.kind == CaseKind(kind))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="state" if state else "kind") from None
    out = []
    for case in session.scalars(q.order_by(Case.id).limit(limit)):
        view = case_view(session, case, detail=False)
        step = current_step(case)
        try:
            _authorise(actor, case, step) if step else None
            view["you_may_act"] = step is not None and case.state is not CaseState.OBJECTED
        except PermissionDenied:
            view["you_may_act"] = False
        out.append(view)
    return out


def _settle_proposal(session: Session, case: Case, accepted: bool) -> None:
    from ..measure.models import MonitoringProposal, ProposalState
    year = int(case.origin.split(":")[1])
    for p in session.scalars(select(MonitoringProposal).where(
            MonitoringProposal.household_id == case.household_id, MonitoringProposal.year == year,
            MonitoringProposal.state == ProposalState.OPEN)):
        p.state = ProposalState.ACCEPTED if accepted else ProposalState.DISMISSED


def propose_from_assessment(session: Session, actor: Actor, region: str, year: int) -> dict:
    """Measure the region from the live register and turn what it finds into proposed
    cases for an officer to work through: entering monitoring for the households flagged
    at risk, exit for registered poor households measured out of poverty.  A household
    with a live case of that kind is skipped; re-running adds nothing new."""
    from ..measure.service import assess_region, propose_monitoring
    if actor.role not in (Role.COUNTY_OFFICER, Role.ADMINISTRATOR):
        raise PermissionDenied("proposals are drawn up by a county officer", field="region")
    result, at_risk = assess_region(session, actor, region, year)
    propose_monitoring(session, actor, at_risk, year)
    made = {"monitoring_entry": 0, "exit": 0, "skipped": 0}
    origin = f"assessment:{year}"
    for row in at_risk.itertuples(index=False):
        made[_propose(session, actor, CaseKind.MONITORING_ENTRY, int(row.household_id),
                      f"assessment {year}: {row.risk_reasons or row.risk_category}",
                      {"category": row.risk_category}, origin)] += 1
    for row in result.exit_candidates.itertuples(index=False):
        made[_propose(session, actor, CaseKind.EXIT, int(row.household_id),
                      f"assessment {year}: above every line, no guarantee failed", {}, origin)] += 1
    return made


def _propose(session: Session, actor: Actor, kind: CaseKind, household_id: int, reason: str,
             payload: dict, origin: str) -> str:
    try:
        with session.begin_nested():
            open_case(session, actor, kind, household_id, reason, payload, origin=origin,
                      propose_only=True)
        return kind.value
    except (Conflict, InvalidInput):
        return "skipped"
