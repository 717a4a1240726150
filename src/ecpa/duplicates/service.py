"""Detection and adjudication of duplicate households.

Detection is set-based SQL on both backends: three self-joins on indexed columns (the
keyed hash of the ID number; name + birth date, then the village; the keyed hash of a
phone, household's or member's) write the matching member pairs into a temporary
table, and three statements fold them into the queue.  Nothing is compared in Python
and no plain ID or phone number is needed: only the keyed hashes are joined.

A pair (``household_a_id < household_b_id``) is queued once.  Re-running detection adds
only what is new: a pending pair gains new reasons and matches; a pair marked distinct
is reopened only by a reason it was not judged on; a merged pair never comes back
(the merged household is out of detection).

Merge semantics (one household survives, the other is marked ``merged_into_id``, never
deleted):

* members: a member of the merged household who is the same person as one of the
  survivor's (same ID number hash, or same name and birth date) stays on the merged
  household, linked to the survivor's member in the merge record; every other member
  moves.  A moved head becomes ``other`` when the survivor has a head.
* status history: every event moves to the survivor, so both histories are kept in one;
  the survivor's current status is, as always, the latest event by date (then id).
  The merged household's own history is also copied into the merge record.
* incomes and living conditions move, except a year/source (year) the survivor already
  has: the survivor's figure stands and the other stays, readable, on the merged row.
* help measures move.  Ledger accounts and postings, enrolments and other modules'
  links stay on the merged household (posted books are not rewritten) and are reached
  through ``merged_into_id`` (``household_family``).

A merge can be undone (``unmerge``), by the merge record, with a reason: what moved goes
back by the ids the record names, a head relabelled is head again, a phone copied to the
survivor is taken off it, the merged household is live again (its number imports, it is
detected again), the pair and the pairs the merge superseded are pending again, and the
record stays, marked undone.  Records added to the survivor since the merge stay with it;
a moved record no longer on the survivor (removed, or replaced by an import) is named in
the undo's report, not invented.  A survivor since merged into a third household is
unmerged from it first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from ..db import in_list, utcnow
from ..errors import Conflict, InvalidInput, NotFound
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.codes import scope_prefix
from ..regions.models import Region
from ..registry.models import (
    HelpMeasure,
    Household,
    Income,
    LivingConditions,
    Member,
    Relation,
    StatusEvent,
)
from ..registry.service import TRANSITIONS
from .models import (
    CandidateState,
    DuplicateCandidate,
    DuplicateMatch,
    HouseholdMerge,
    Reason,
    reason_names,
)

DECIDERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
_CHUNK = 900
# The temporary table of households in focus (not part of the schema).
_FOCUS = Table("dup_focus", MetaData(), Column("id", Integer, primary_key=True))

# Bit-OR of a group's reasons, portable (SQLite has no bit_or aggregate).
_REASONS = ("MAX(CASE WHEN reason = 1 THEN 1 ELSE 0 END) + MAX(CASE WHEN reason = 2 THEN 2 ELSE 0 END)"
            " + MAX(CASE WHEN reason = 4 THEN 4 ELSE 0 END)")


# ---------------------------------------------------------------- detection


def _pair_cols(x1: str, x2: str, m1: str, m2: str) -> str:
    """Select list putting the lower household id first (pairs are ordered)."""
    return (f"CASE WHEN {x1} < {x2} THEN {x1} ELSE {x2} END, "
            f"CASE WHEN {x1} < {x2} THEN {x2} ELSE {x1} END, "
            f"{{reason}}, "
            f"CASE WHEN {x1} < {x2} THEN {m1} ELSE {m2} END, "
            f"CASE WHEN {x1} < {x2} THEN {m2} ELSE {m1} END")


def _detect_sql(focus: str) -> list[str]:
    """The three detection statements; ``focus`` is a condition on ``h1``.  A pair with
    both sides in focus is taken once (``x1 < x2``)."""
    focus2 = focus.replace("h1.", "h2.")
    live = "h1.merged_into_id IS NULL AND h2.merged_into_id IS NULL"
    once = f"(h1.id < h2.id OR NOT ({focus2}))"
    by_id = (
        "INSERT INTO dup_found (a, b, reason, ma, mb) SELECT "
        + _pair_cols("h1.id", "h2.id", "m1.id", "m2.id").format(reason=int(Reason.ID_NUMBER))
        + " FROM member m1 JOIN household h1 ON h1.id = m1.household_id"
        " JOIN member m2 ON m2.id_number_hash = m1.id_number_hash AND m2.household_id <> m1.household_id"
        " JOIN household h2 ON h2.id = m2.household_id"
        f" WHERE {focus} AND {live} AND {once}")
    by_name = (
        "INSERT INTO dup_found (a, b, reason, ma, mb) SELECT "
        + _pair_cols("h1.id", "h2.id", "m1.id", "m2.id").format(reason=int(Reason.NAME_BIRTH_VILLAGE))
        + " FROM member m1 JOIN household h1 ON h1.id = m1.household_id"
        " JOIN member m2 ON m2.name = m1.name AND m2.birth_date = m1.birth_date"
        " AND m2.household_id <> m1.household_id"
        " JOIN household h2 ON h2.id = m2.household_id AND h2.village_code = h1.village_code"
        f" WHERE {focus} AND {live} AND {once}")
    # A phone is the household's (member null) or a member's.
    phones = ("SELECT id AS hid, CAST(NULL AS INTEGER) AS mid, phone_hash AS ph FROM household"
              " WHERE phone_hash IS NOT NULL"
              " UNION ALL SELECT household_id, id, phone_hash FROM member WHERE phone_hash IS NOT NULL")
    by_phone = (
        f"INSERT INTO dup_found (a, b, reason, ma, mb) WITH ph AS ({phones}) SELECT "
        + _pair_cols("h1.id", "h2.id", "p1.mid", "p2.mid").format(reason=int(Reason.PHONE))
        + " FROM ph p1 JOIN household h1 ON h1.id = p1.hid"
        " JOIN ph p2 ON p2.ph = p1.ph AND p2.hid <> p1.hid"
        " JOIN household h2 ON h2.id = p2.hid"
        f" WHERE {focus} AND {live} AND {once}")
    return [by_id, by_name, by_phone]


def _fold(session: Session, actor: Actor, source: str) -> dict:
    """Fold ``dup_found`` into the queue: new pairs, new reasons, reopened pairs, matches."""
    now = utcnow()
    grouped = f"SELECT a, b, {_REASONS} AS r FROM dup_found GROUP BY a, b"
    found = session.scalar(text(f"SELECT COUNT(*) FROM ({grouped}) g"))
    reopened = session.execute(text(
        "UPDATE duplicate_candidate SET state = 'pending', reasons = reasons | f.r,"
        " note = :note"
        f" FROM ({grouped}) f"
        " WHERE household_a_id = f.a AND household_b_id = f.b AND state = 'distinct'"
        " AND (f.r & ~decided_reasons) <> 0"),
        {"note": f"reopened by a new reason ({now:%Y-%m-%d})"}).rowcount
    widened = session.execute(text(
        "UPDATE duplicate_candidate SET reasons = reasons | f.r"
        f" FROM ({grouped}) f"
        " WHERE household_a_id = f.a AND household_b_id = f.b AND state = 'pending'"
        " AND (f.r & ~reasons) <> 0")).rowcount
    queued = session.execute(text(
        "INSERT INTO duplicate_candidate (household_a_id, household_b_id, reasons, decided_reasons,"
        " state, source, found_by, found_at, note)"
        f" SELECT a, b, {_REASONS}, 0, 'pending', :source, :by, :at, '' FROM dup_found f"
        " WHERE NOT EXISTS (SELECT 1 FROM duplicate_candidate c"
        "                   WHERE c.household_a_id = f.a AND c.household_b_id = f.b)"
        " GROUP BY a, b"), {"source": source, "by": actor.username, "at": now}).rowcount
    session.execute(text(
        "INSERT INTO duplicate_match (candidate_id, reason, member_a_id, member_b_id)"
        " SELECT DISTINCT c.id, f.reason, f.ma, f.mb FROM dup_found f"
        " JOIN duplicate_candidate c ON c.household_a_id = f.a AND c.household_b_id = f.b"
        " WHERE c.state = 'pending' AND NOT EXISTS (SELECT 1 FROM duplicate_match d"
        "   WHERE d.candidate_id = c.id AND d.reason = f.reason"
        "   AND COALESCE(d.member_a_id, 0) = COALESCE(f.ma, 0)"
        "   AND COALESCE(d.member_b_id, 0) = COALESCE(f.mb, 0))"))
    by_reason = {name: 0 for name in reason_names(7)}
    for r, n in session.execute(text("SELECT reason, COUNT(*) FROM (SELECT DISTINCT reason, a, b"
                                     " FROM dup_found) d GROUP BY reason")):
        by_reason[reason_names(r)[0]] = n
    return {"pairs_found": found, "queued": queued, "reopened": reopened,
            "widened": widened, "pairs_by_reason": by_reason}


def _run(session: Session, actor: Actor, focus: str, params: dict, source: str,
         setup=None) -> dict:
    session.flush()
    session.execute(text("DROP TABLE IF EXISTS dup_found"))
    session.execute(text("CREATE TEMPORARY TABLE dup_found "
                         "(a INTEGER, b INTEGER, reason INTEGER, ma INTEGER, mb INTEGER)"))
    try:
        if setup:
            setup()
        for stmt in _detect_sql(focus):
            session.execute(text(stmt), params)
        return _fold(session, actor, source)
    finally:
        session.execute(text("DROP TABLE IF EXISTS dup_found"))
        session.expire_all()


def find_in_region(session: Session, actor: Actor, region_code: str | None = None) -> dict:
    """Detect across a region (a whole province, a county, …) — pairs with at least one
    household in it — and queue what is new.  ``None``: the actor's whole scope."""
    require_role(actor, *DECIDERS)
    code = region_code or actor.region_code
    if code is not None:
        if session.get(Region, code) is None:
            raise InvalidInput(f"unknown region {code}", field="region_code", value=code)
        require_region(actor, code)
    prefix = scope_prefix(code) if code else ""
    started = datetime.now()
    out = _run(session, actor, "h1.village_code LIKE :prefix", {"prefix": prefix + "%"}, "scan")
    out["region"] = code
    out["seconds"] = round((datetime.now() - started).total_seconds(), 3)
    audit(session, actor, "duplicates.find", "region", code, {k: v for k, v in out.items()
                                                               if k != "region"})
    return out


def _focus(session: Session, column, values: list) -> None:
    """Fill the temporary ``dup_focus`` with the ids of the households where ``column``
    takes one of ``values`` (set-based, in chunks: one array parameter on PostgreSQL)."""
    session.execute(text("DROP TABLE IF EXISTS dup_focus"))
    session.execute(text("CREATE TEMPORARY TABLE dup_focus (id INTEGER PRIMARY KEY)"))
    step = 50_000 if session.get_bind().dialect.name == "postgresql" else _CHUNK
    values = sorted(set(values))
    for i in range(0, len(values), step):
        session.execute(insert(_FOCUS).from_select(
            ["id"], select(Household.id).where(in_list(session, column, values[i:i + step]))))


def find_for_households(session: Session, actor: Actor, household_ids: list[int] | None = None,
                        source: str = "import", numbers: list[str] | None = None) -> dict:
    """Detect the pairs that involve these households (by id or number; just imported or
    changed), against the whole registry.  Only keyed hashes are compared, so no personal
    data crosses a scope; the queue is scoped when it is read."""
    column, values = ((Household.id, household_ids) if household_ids is not None
                      else (Household.number, numbers or []))
    if not values:
        return {"pairs_found": 0, "queued": 0, "reopened": 0, "widened": 0}
    try:
        out = _run(session, actor, "h1.id IN (SELECT id FROM dup_focus)", {}, source,
                   lambda: _focus(session, column, values))
    finally:
        session.execute(text("DROP TABLE IF EXISTS dup_focus"))
    audit(session, actor, "duplicates.find", "household", None,
          {"households": len(values), "source": source, **out})
    return out


def queue_after_import(session: Session, actor: Actor, numbers: list[str]) -> dict:
    """The importer's hook: queue candidates involving the households of the file."""
    return find_for_households(session, actor, source="import", numbers=numbers)


# ---------------------------------------------------------------- reading


def mask_name(name: str) -> str:
    """``王大山`` -> ``王**``: the surname is enough to recognise a family."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def _member_view(m: Member) -> dict:
    return {"id": m.id, "name": mask_name(m.name), "relation": m.relation.value,
            "sex": m.sex.value, "birth_year": m.birth_date.year,
            "id_number": m.id_number_masked, "phone": m.phone_masked}


def _household_view(session: Session, h: Household, visible: bool) -> dict:
    out = {"id": h.id, "number": h.number, "village_code": h.village_code,
           "merged_into_id": h.merged_into_id, "in_scope": visible}
    if visible:
        village = session.get(Region, h.village_code)
        out["village_name"] = village.name if village else None
        out["phone"] = h.phone_masked
        out["members"] = len(h.members)
        head = next((m for m in h.members if m.relation is Relation.HEAD), None)
        out["head"] = mask_name(head.name) if head else None
    return out


def candidate_view(session: Session, actor: Actor, c: DuplicateCandidate) -> dict:
    """A queued pair, masked; members of a household outside the actor's scope are not
    shown (only its number and village, so the officer knows whom to ask)."""
    a, b = session.get(Household, c.household_a_id), session.get(Household, c.household_b_id)
    va, vb = actor.may_reach(a.village_code), actor.may_reach(b.village_code)
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(
        select(DuplicateMatch.member_a_id).where(DuplicateMatch.candidate_id == c.id).union(
            select(DuplicateMatch.member_b_id).where(DuplicateMatch.candidate_id == c.id)))))}
    matches = []
    for d in session.scalars(select(DuplicateMatch).where(DuplicateMatch.candidate_id == c.id)
                             .order_by(DuplicateMatch.reason, DuplicateMatch.id)):
        ma, mb = members.get(d.member_a_id), members.get(d.member_b_id)
        matches.append({
            "reason": reason_names(d.reason)[0],
            "member_a": _member_view(ma) if ma and va else None,
            "member_b": _member_view(mb) if mb and vb else None,
        })
    return {"id": c.id, "state": c.state.value, "reasons": reason_names(c.reasons),
            "source": c.source, "found_at": c.found_at.isoformat(timespec="seconds"),
            "decided_by": c.decided_by,
            "decided_at": c.decided_at.isoformat(timespec="seconds") if c.decided_at else None,
            "note": c.note, "household_a": _household_view(session, a, va),
            "household_b": _household_view(session, b, vb), "matches": matches}


def list_queue(session: Session, actor: Actor, region_code: str | None = None,
               state: CandidateState | None = CandidateState.PENDING,
               page: int = 1, page_size: int = 50) -> tuple[int, list[dict]]:
    """Pairs with at least one household in the actor's scope (and in ``region_code``)."""
    require_role(actor, *DECIDERS)
    if page < 1 or not 1 <= page_size <= 500:
        raise InvalidInput("page must be >= 1 and page_size between 1 and 500")
    stmt = select(DuplicateCandidate)
    for code in (region_code, actor.region_code):
        if code:
            if code == region_code:
                require_region(actor, code)
            like = scope_prefix(code) + "%"
            in_region = select(Household.id).where(Household.village_code.like(like))
            stmt = stmt.where(or_(DuplicateCandidate.household_a_id.in_(in_region),
                                  DuplicateCandidate.household_b_id.in_(in_region)))
    if state is not None:
        stmt = stmt.where(DuplicateCandidate.state == state)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(DuplicateCandidate.id)
                           .offset((page - 1) * page_size).limit(page_size)).all()
    items = [candidate_view(session, actor, c) for c in rows]
    audit(session, actor, "duplicates.list", "duplicate_candidate", None,
          {"region": region_code, "state": state.value if state else None, "returned": len(items)})
    return total, items


def get_candidate(session: Session, actor: Actor, candidate_id: int) -> DuplicateCandidate:
    c = session.get(DuplicateCandidate, candidate_id)
    if c is None:
        raise NotFound(f"no duplicate candidate {candidate_id}", candidate_id=candidate_id)
    a, b = session.get(Household, c.household_a_id), session.get(Household, c.household_b_id)
    if not (actor.may_reach(a.village_code) or actor.may_reach(b.village_code)):
        raise NotFound(f"no duplicate candidate {candidate_id}", candidate_id=candidate_id)
    return c


def pair(session: Session, household_1: int, household_2: int) -> DuplicateCandidate | None:
    a, b = sorted((household_1, household_2))
    return session.scalar(select(DuplicateCandidate).where(
        DuplicateCandidate.household_a_id == a, DuplicateCandidate.household_b_id == b))


# ---------------------------------------------------------------- adjudication


def _both_in_scope(session: Session, actor: Actor, ids: tuple[int, int],
                   lock: bool = False) -> dict[int, Household]:
    stmt = select(Household).where(Household.id.in_(ids)).order_by(Household.id)
    if lock:
        # Row locks in id order (PostgreSQL): two merges touching one household serialise.
        stmt = stmt.with_for_update()
    found = {h.id: h for h in session.scalars(stmt)}
    for i in ids:
        if i not in found:
            raise NotFound(f"no household with id {i}", household_id=i)
        # Deciding needs both records: a pair across two counties goes to their prefecture.
        require_region(actor, found[i].village_code)
    return found


def mark_distinct(session: Session, actor: Actor, candidate_id: int, note: str = "") -> dict:
    """Two different households: never proposed again for the reasons seen now."""
    require_role(actor, *DECIDERS)
    c = get_candidate(session, actor, candidate_id)
    _both_in_scope(session, actor, (c.household_a_id, c.household_b_id))
    if c.state is not CandidateState.PENDING:
        raise Conflict(f"candidate {c.id} is already {c.state.value}", state=c.state.value)
    c.state, c.decided_reasons = CandidateState.DISTINCT, c.reasons
    c.decided_by, c.decided_at, c.note = actor.username, utcnow(), note.strip()
    session.flush()
    audit(session, actor, "duplicates.distinct", "duplicate_candidate", c.id,
          {"households": [c.household_a_id, c.household_b_id], "reasons": reason_names(c.reasons)})
    return candidate_view(session, actor, c)


def merge(session: Session, actor: Actor, survivor_id: int, merged_id: int, note: str = "",
          candidate_id: int | None = None) -> dict:
    """Merge ``merged_id`` into ``survivor_id`` (see the module docstring)."""
    require_role(actor, *DECIDERS)
    if survivor_id == merged_id:
        raise InvalidInput("a household cannot be merged into itself")
    hh = _both_in_scope(session, actor, (survivor_id, merged_id), lock=True)
    survivor, merged = hh[survivor_id], hh[merged_id]
    for h in (survivor, merged):
        if h.merged_into_id is not None:
            raise Conflict(f"household {h.number} was already merged into household "
                           f"{h.merged_into_id}", household=h.number)
    c = pair(session, survivor_id, merged_id)
    if candidate_id is not None and (c is None or c.id != candidate_id):
        raise InvalidInput(f"candidate {candidate_id} is not the pair of these households")
    if c is not None and c.state is not CandidateState.PENDING:
        raise Conflict(f"candidate {c.id} is {c.state.value}; only a pending pair is merged",
                       state=c.state.value)
    now = utcnow()
    if c is None:  # an officer may merge a pair detection did not find
        a, b = sorted((survivor_id, merged_id))
        c = DuplicateCandidate(household_a_id=a, household_b_id=b, reasons=0, decided_reasons=0,
                               state=CandidateState.PENDING, source="manual",
                               found_by=actor.username, found_at=now, note="")
        session.add(c)
        session.flush()

    # Members: the same person stays behind, linked; the others move.
    kept = list(survivor.members)
    by_hash = {m.id_number_hash: m for m in kept}
    by_name = {(m.name, m.birth_date): m for m in kept}
    has_head = any(m.relation is Relation.HEAD for m in kept)
    moved, linked, relabelled = [], [], []
    for m in merged.members:
        twin = by_hash.get(m.id_number_hash) or by_name.get((m.name, m.birth_date))
        if twin is not None:
            linked.append({"member_id": m.id, "same_person_as": twin.id})
            continue
        moved.append(m.id)
        if m.relation is Relation.HEAD and has_head:
            relabelled.append({"member_id": m.id, "was": m.relation.value})
    if moved:
        session.execute(update(Member).where(Member.id.in_(moved)).values(household_id=survivor_id))
    if relabelled:
        session.execute(update(Member).where(Member.id.in_([r["member_id"] for r in relabelled]))
                        .values(relation=Relation.OTHER))

    events = session.scalars(select(StatusEvent).where(StatusEvent.household_id == merged_id)
                             .order_by(StatusEvent.event_date, StatusEvent.id)).all()
    history = [{"id": e.id, "status": e.status.value, "date": e.event_date.isoformat(),
                "reason": e.reason, "recorded_by": e.recorded_by} for e in events]
    if events:
        session.execute(update(StatusEvent).where(StatusEvent.household_id == merged_id)
                        .values(household_id=survivor_id))

    have = set(session.execute(select(Income.year, Income.source)
                               .where(Income.household_id == survivor_id)).all())
    incomes = session.execute(select(Income.id, Income.year, Income.source)
                              .where(Income.household_id == merged_id)).all()
    move_inc = [i for i, y, s in incomes if (y, s) not in have]
    stay_inc = [i for i, y, s in incomes if (y, s) in have]
    if move_inc:
        session.execute(update(Income).where(Income.id.in_(move_inc)).values(household_id=survivor_id))

    years = set(session.scalars(select(LivingConditions.year)
                                .where(LivingConditions.household_id == survivor_id)))
    conds = session.execute(select(LivingConditions.id, LivingConditions.year)
                            .where(LivingConditions.household_id == merged_id)).all()
    move_cond = [i for i, y in conds if y not in years]
    stay_cond = [i for i, y in conds if y in years]
    if move_cond:
        session.execute(update(LivingConditions).where(LivingConditions.id.in_(move_cond))
                        .values(household_id=survivor_id))

    measures = list(session.scalars(select(HelpMeasure.id).where(HelpMeasure.household_id == merged_id)))
    if measures:
        session.execute(update(HelpMeasure).where(HelpMeasure.household_id == merged_id)
                        .values(household_id=survivor_id))

    phone_copied = survivor.phone_hash is None and merged.phone_hash is not None
    if phone_copied:
        survivor.phone_enc, survivor.phone_hash, survivor.phone_masked = (
            merged.phone_enc, merged.phone_hash, merged.phone_masked)
    merged.merged_into_id = survivor_id
    # Other open pairs of the merged household no longer exist as such.
    superseded = list(session.scalars(select(DuplicateCandidate.id).where(
        DuplicateCandidate.state == CandidateState.PENDING, DuplicateCandidate.id != c.id,
        or_(DuplicateCandidate.household_a_id == merged_id,
            DuplicateCandidate.household_b_id == merged_id))))

    detail = {
        "members_moved": moved, "members_linked": linked, "relation_changed": relabelled,
        "status_events_moved": [e["id"] for e in history], "merged_status_history": history,
        "incomes_moved": move_inc, "incomes_kept_on_merged": stay_inc,
        "conditions_moved": move_cond, "conditions_kept_on_merged": stay_cond,
        "help_measures_moved": measures, "phone_copied": phone_copied,
        "superseded_candidates": superseded,
        "reasons": reason_names(c.reasons),
        "left_linked": "ledger accounts and postings, program, cooperative and marketplace "
                       "records stay on the merged household (reached via merged_into_id)",
    }
    record = HouseholdMerge(survivor_id=survivor_id, merged_id=merged_id, candidate_id=c.id,
                            decided_by=actor.username, decided_at=now, note=note.strip(),
                            detail=detail)
    session.add(record)
    c.state, c.decided_by, c.decided_at, c.note = CandidateState.MERGED, actor.username, now, note.strip()
    if superseded:
        session.execute(update(DuplicateCandidate).where(DuplicateCandidate.id.in_(superseded))
                        .values(state=CandidateState.SUPERSEDED,
                                note=f"household {merged.number} merged into {survivor.number}"))
    session.flush()
    session.expire_all()
    summary = {"survivor": survivor_id, "merged": merged_id, "candidate": c.id,
               "members_moved": len(moved), "members_linked": len(linked),
               "status_events_moved": len(history), "incomes_moved": len(move_inc),
               "help_measures_moved": len(measures)}
    audit(session, actor, "duplicates.merge", "household", survivor_id, summary)
    audit(session, actor, "duplicates.merged_into", "household", merged_id, summary)
    return merge_view(record)


def _moved_back(session: Session, model, ids: list[int], survivor_id: int, merged_id: int,
                **values) -> tuple[list[int], list[int]]:
    """Rows of ``model`` named by the merge record that are still on the survivor, moved
    back to the merged household; returns (moved back, not found there)."""
    if not ids:
        return [], []
    here = set(session.scalars(select(model.id).where(model.id.in_(ids),
                                                      model.household_id == survivor_id)))
    back = [i for i in ids if i in here]
    if back:
        session.execute(update(model).where(model.id.in_(back))
                        .values(household_id=merged_id, **values))
    return back, [i for i in ids if i not in here]


def unmerge(session: Session, actor: Actor, merge_id: int, reason: str) -> dict:
    """Undo a merge (see the module docstring): everything the record says moved goes
    back, the merged household is live again, its pairs pending again."""
    require_role(actor, *DECIDERS)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("undoing a merge needs a reason", field="reason")
    record = session.get(HouseholdMerge, merge_id)
    if record is None:
        raise NotFound(f"no merge record {merge_id}", field="merge_id")
    survivor_id, merged_id = record.survivor_id, record.merged_id
    hh = _both_in_scope(session, actor, (survivor_id, merged_id), lock=True)
    survivor, merged = hh[survivor_id], hh[merged_id]
    # Read again under the households' locks: two undos at once, the second sees the first.
    session.refresh(record)
    if record.undone_at is not None:
        raise Conflict(f"merge {merge_id} was undone on "
                       f"{record.undone_at.isoformat(timespec='seconds')} by {record.undone_by}")
    if survivor.merged_into_id is not None:
        later = session.scalar(select(HouseholdMerge.id).where(
            HouseholdMerge.merged_id == survivor_id, HouseholdMerge.undone_at.is_(None)))
        raise Conflict(f"household {survivor.number} was merged into household "
                       f"{survivor.merged_into_id} since: undo merge {later} first",
                       merge_id=later)
    d = record.detail
    # What the merged household got since the merge (before it was closed to writes)
    # stays, and what would clash with it stays on the survivor, named in the report.
    has_head = session.scalar(select(Member.id).where(Member.household_id == merged_id,
                                                      Member.relation == Relation.HEAD).limit(1))
    relabelled = {r["member_id"] for r in d.get("relation_changed", [])}
    plain = [i for i in d["members_moved"] if i not in relabelled or has_head]
    members, members_gone = _moved_back(session, Member, plain, survivor_id, merged_id)
    heads, heads_gone = _moved_back(session, Member, [] if has_head else sorted(relabelled),
                                    survivor_id, merged_id, relation=Relation.HEAD)
    taken = set(session.execute(select(Income.year, Income.source)
                                .where(Income.household_id == merged_id)).all())
    clash_inc = [i for i, y, s in session.execute(
        select(Income.id, Income.year, Income.source).where(Income.id.in_(d["incomes_moved"])))
        if (y, s) in taken]
    years = set(session.scalars(select(LivingConditions.year)
                                .where(LivingConditions.household_id == merged_id)))
    clash_cond = [i for i, y in session.execute(
        select(LivingConditions.id, LivingConditions.year)
        .where(LivingConditions.id.in_(d["conditions_moved"]))) if y in years]
    events, events_gone = _moved_back(session, StatusEvent, d["status_events_moved"],
                                      survivor_id, merged_id)
    incomes, incomes_gone = _moved_back(session, Income,
                                        [i for i in d["incomes_moved"] if i not in clash_inc],
                                        survivor_id, merged_id)
    conds, conds_gone = _moved_back(session, LivingConditions,
                                    [i for i in d["conditions_moved"] if i not in clash_cond],
                                    survivor_id, merged_id)
    measures, measures_gone = _moved_back(session, HelpMeasure, d["help_measures_moved"],
                                          survivor_id, merged_id)
    # The phone the survivor took from the merged household, if it still has it.  A merge
    # recorded before the record said so: the same ciphertext (a random nonce each time a
    # phone is protected) can only be the copy.
    copied = d.get("phone_copied")
    if copied is None:
        copied = merged.phone_enc is not None and survivor.phone_enc == merged.phone_enc
    if copied and survivor.phone_hash == merged.phone_hash:
        survivor.phone_enc = survivor.phone_hash = survivor.phone_masked = None
    session.flush()
    # Status changes recorded on the survivor since the merge were decided on the two
    # histories together: each whose status does not follow from the one before it now
    # is named for the county to review (the history is append-only).
    review = []
    for hid in (survivor_id, merged_id):
        before = None
        for e in session.scalars(select(StatusEvent).where(StatusEvent.household_id == hid)
                                 .order_by(StatusEvent.event_date, StatusEvent.id)):
            if e.recorded_at > record.decided_at and e.status not in TRANSITIONS[before]:
                review.append({"event_id": e.id, "household_id": hid, "date": e.event_date.isoformat(),
                               "from": before.value if before else None, "to": e.status.value})
            before = e.status
    merged.merged_into_id = None
    now = utcnow()
    # The pair, and the pairs this merge superseded, are to be judged again.
    superseded = d.get("superseded_candidates")
    if superseded is None:  # a merge recorded before the list was kept: by its note
        superseded = list(session.scalars(select(DuplicateCandidate.id).where(
            DuplicateCandidate.state == CandidateState.SUPERSEDED,
            DuplicateCandidate.note == f"household {merged.number} merged into {survivor.number}")))
    # Only pairs of two live households: one merged since elsewhere stays as it is.
    reopened = [c.id for c in session.scalars(select(DuplicateCandidate).where(
        DuplicateCandidate.id.in_([i for i in [record.candidate_id, *superseded] if i is not None])))
        if all(session.get(Household, h).merged_into_id is None
               for h in (c.household_a_id, c.household_b_id) if h != merged_id)]
    if reopened:
        session.execute(update(DuplicateCandidate).where(
            DuplicateCandidate.id.in_(reopened),
            DuplicateCandidate.state.in_([CandidateState.MERGED, CandidateState.SUPERSEDED]))
            .values(state=CandidateState.PENDING, decided_by=None, decided_at=None,
                    note=f"merge {merge_id} undone: {reason}"))
    record.undone_by, record.undone_at, record.undo_reason = actor.username, now, reason
    record.undo_detail = {
        "members_moved_back": members + heads, "heads_restored": heads,
        "status_events_moved_back": events, "incomes_moved_back": incomes,
        "conditions_moved_back": conds, "help_measures_moved_back": measures,
        "phone_removed_from_survivor": bool(copied) and survivor.phone_hash is None,
        "candidates_reopened": reopened, "status_changes_to_review": review,
        # Kept on the survivor: the merged household has its own since the merge.
        "kept_on_survivor": {"incomes": clash_inc, "conditions": clash_cond,
                             "heads_left_other": sorted(relabelled) if has_head else []},
        # Named in the record but no longer on the survivor: removed, or replaced.
        "not_found_on_survivor": {
            "members": members_gone + heads_gone, "status_events": events_gone,
            "incomes": incomes_gone, "conditions": conds_gone, "help_measures": measures_gone},
    }
    session.flush()
    session.expire_all()
    summary = {"merge": merge_id, "survivor": survivor_id, "merged": merged_id,
               "members_moved_back": len(members) + len(heads), "status_events_moved_back": len(events),
               "incomes_moved_back": len(incomes), "reason": reason}
    audit(session, actor, "duplicates.unmerge", "household", survivor_id, summary)
    audit(session, actor, "duplicates.unmerged", "household", merged_id, summary)
    return merge_view(session.get(HouseholdMerge, merge_id))


def merge_view(r: HouseholdMerge) -> dict:
    """A merge record; it carries ids, dates and statuses only (no personal data)."""
    return {"id": r.id, "survivor_id": r.survivor_id, "merged_id": r.merged_id,
            "candidate_id": r.candidate_id, "decided_by": r.decided_by,
            "decided_at": r.decided_at.isoformat(timespec="seconds"), "note": r.note,
            "detail": r.detail, "undone_by": r.undone_by,
            "undone_at": r.undone_at.isoformat(timespec="seconds") if r.undone_at else None,
            "undo_reason": r.undo_reason, "undo_detail": r.undo_detail}


def merges_of(session: Session, actor: Actor, household_id: int) -> list[dict]:
    """The merge records naming a household, as survivor or merged (its history)."""
    require_role(actor, *DECIDERS, Role.VILLAGE_CADRE)
    h = session.get(Household, household_id)
    if h is None:
        raise NotFound(f"no household with id {household_id}", household_id=household_id)
    require_region(actor, h.village_code)
    rows = session.scalars(select(HouseholdMerge).where(or_(
        HouseholdMerge.survivor_id == household_id, HouseholdMerge.merged_id == household_id))
        .order_by(HouseholdMerge.id)).all()
    audit(session, actor, "duplicates.merges", "household", household_id)
    return [merge_view(r) for r in rows]


def household_family(session: Session, household_id: int) -> list[int]:
    """The household and every household merged into it (transitively): the ids under
    which its ledger postings and program records may be filed."""
    ids, frontier = [household_id], [household_id]
    while frontier:
        frontier = list(session.scalars(select(Household.id).where(
            Household.merged_into_id.in_(frontier))))
        ids.extend(frontier)
    return ids
