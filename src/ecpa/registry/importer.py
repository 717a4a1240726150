"""Import of a household register file (CSV or XLSX, one row per member).

Two passes over the file.  The first parses and checks every row, and then checks the
file against the database (household numbers, members already registered, status
transitions); nothing is written in it.  The second pass, taken only when no row is
bad (or, with ``partial``, for the households none of whose rows is bad), writes in
one transaction.  Memory stays bounded: the first pass keeps one small record per
household and one keyed hash per member, not the rows.

Re-importing the same file writes nothing: each household and member carries a digest
of the values last imported, and a row whose digest is unchanged is skipped.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from ..db import bulk_insert, utcnow
from ..errors import InvalidInput
from ..people.access import Actor, audit, require_role
from ..people.models import AuditEntry, Role
from ..privacy import mask_phone, protector
from ..regions.models import Level, Region
from . import vocab
from .columns import BY_KEY, CONDITION_FIELDS, CONDITION_KEYS, HOUSEHOLD_KEYS, INCOME_KEYS, MEMBER_KEYS, header_map
from .files import read_rows
from .identity import check_resident_id
from .models import Disability, Household, Income, LivingConditions, Member, Relation, Status, StatusEvent
from .service import TRANSITIONS, protected_member_values

MAX_KEPT_ERRORS = 100_000
BATCH_ROWS = 5_000
_CHUNK = 900  # parameters per IN (...) lookup, under SQLite's limits


@dataclass(slots=True)
class RowError:
    row: int
    column: str
    value: str
    reason: str
    household: str = ""

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}, value {self.value!r}: {self.reason}"


@dataclass
class ImportResult:
    file: str
    rows: int = 0
    households: int = 0
    households_created: int = 0
    households_updated: int = 0
    households_unchanged: int = 0
    households_skipped: int = 0
    members_created: int = 0
    members_updated: int = 0
    members_unchanged: int = 0
    status_events: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    error_file: str | None = None
    written: bool = False
    unknown_columns: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        d = {k: v for k, v in vars(self).items() if k != "errors"}
        return d


@dataclass(slots=True)
class _HouseholdAcc:
    first_row: int
    values: list  # household-level values in HOUSEHOLD_KEYS order, merged over rows
    heads: int = 0
    head_rows: list = field(default_factory=list)
    bad: bool = False
    existing_id: int | None = None
    existing_digest: str | None = None


class _Parser:
    """Parses one row into household-level values and member values."""

    def __init__(self, header: list[str]) -> None:
        names = header_map()
        self.index: dict[str, int] = {}
        self.unknown: list[str] = []
        for i, raw in enumerate(header):
            text = str(raw).strip()
            key = names.get(text) or names.get(text.lower())
            if key is None:
                if text:
                    self.unknown.append(text)
                continue
            if key in self.index:
                raise InvalidInput(f"column {key!r} appears twice (header {text!r})", column=text)
            self.index[key] = i
        self.headers = {key: str(header[i]).strip() for key, i in self.index.items()}
        missing = [c.key for c in BY_KEY.values() if c.required and c.key not in self.index]
        if missing:
            raise InvalidInput(
                "missing required column(s): " + ", ".join(
                    f"{k} ({'/'.join(BY_KEY[k].chinese)})" for k in missing),
                missing=missing,
            )
        self.today = date.today()
        self.hh = [(HOUSEHOLD_KEYS.index(k), k, self.index[k], self._converter(k))
                   for k in HOUSEHOLD_KEYS if k in self.index]
        self.mem = [(k, self.index[k], self._converter(k), BY_KEY[k].required)
                    for k in MEMBER_KEYS if k in self.index]

    def parse(self, rowno: int, values: list, errors: list[RowError]):
        """Returns ``(household_number, household_values, member_dict)``; problems are
        appended to ``errors``."""
        width = len(values)
        hh_values: list = [None] * len(HOUSEHOLD_KEYS)
        for pos, key, i, convert in self.hh:
            raw = values[i] if i < width else None
            if raw is None or raw == "" or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                hh_values[pos] = convert(raw)
            except ValueError as exc:
                errors.append(RowError(rowno, self.headers[key], _show(raw), str(exc)))
        member: dict = {}
        for key, i, convert, required in self.mem:
            raw = values[i] if i < width else None
            if raw is None or raw == "" or (isinstance(raw, str) and not raw.strip()):
                if required:
                    errors.append(RowError(rowno, self.headers[key], "", "is required"))
                continue
            try:
                member[key] = convert(raw)
            except ValueError as exc:
                errors.append(RowError(rowno, self.headers[key], _show(raw), str(exc)))
        if "id_number" in member:
            number_, born, sex = member["id_number"]
            member["id_number"] = number_
            given_sex = member.get("sex")
            if given_sex is not None and given_sex is not sex:
                errors.append(RowError(rowno, self.headers["sex"], given_sex.value,
                                       f"disagrees with the ID number ({sex.value})"))
            given_born = member.get("birth_date")
            if given_born is not None and given_born != born:
                errors.append(RowError(rowno, self.headers["birth_date"], given_born.isoformat(),
                                       f"disagrees with the ID number ({born.isoformat()})"))
            member["sex"], member["birth_date"] = sex, born
        return hh_values[0], hh_values, member

    def _converter(self, key: str):
        """A function turning one cell of column ``key`` into its value (or ValueError)."""
        col = BY_KEY[key]
        kind = col.kind
        if kind == "id_number":
            today = self.today

            def id_number(raw):
                if isinstance(raw, (int, float)):
                    raise ValueError("stored as a number, which loses digits: "
                                     "format the column as text")
                return check_resident_id(str(raw), today)
            return id_number
        table = vocab.enum_table(col.enum) if kind == "enum" else {}

        def enum(t):
            # The common case is an exact value; enum_value explains a bad one.
            found = table.get(t)
            return found if found is not None else vocab.enum_value(col.enum, t)

        text_parser = {
            "text": str.strip, "code": str.strip, "enum": enum,
            "bool": vocab.boolean, "money": vocab.money_fen, "date": vocab.parse_date,
            "year": vocab.year, "phone": vocab.phone,
        }[kind]

        def convert(raw):
            if type(raw) is str:
                return text_parser(raw)
            if isinstance(raw, (datetime, date)):  # XLSX cells
                if kind != "date":
                    raise ValueError(f"is a date, expected {kind}")
                return vocab.parse_date(raw)
            if isinstance(raw, float):
                if kind == "money":
                    return vocab.money_fen(Decimal(repr(raw)))
                raw = str(int(raw)) if raw.is_integer() else repr(raw)
            return text_parser(str(raw))
        return convert


def _show(raw) -> str:
    return "" if raw is None else str(raw)


def _digest(*parts) -> str:
    return hashlib.md5(repr(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


_HH = {k: i for i, k in enumerate(HOUSEHOLD_KEYS)}


def import_register(
    session: Session,
    actor: Actor,
    path: str | Path,
    partial: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
    error_file: bool = True,
) -> ImportResult:
    """Import a register file.  See the module docstring for the guarantees."""
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)
    path = Path(path)
    result = ImportResult(file=str(path))
    p = protector()  # fail early, before reading, if no key is configured
    errors: list[RowError] = []

    def add_errors(new: Iterable[RowError], household: str | None = None) -> None:
        for e in new:
            if household is not None:
                e.household = household
            result.error_count += 1
            if len(errors) < MAX_KEPT_ERRORS:
                errors.append(e)

    villages = {
        code for code in session.scalars(select(Region.code).where(Region.level == Level.VILLAGE))
        if actor.may_reach(code)
    }
    outside = set()
    if actor.region_code:
        outside = {code for code in session.scalars(
            select(Region.code).where(Region.level == Level.VILLAGE)) if code not in villages}

    # ------------------------------------------------------------ pass 1: check
    header, rows = read_rows(path)
    parser = _Parser(header)
    result.unknown_columns = parser.unknown
    households: dict[str, _HouseholdAcc] = {}
    members: dict[str, tuple[str, int]] = {}  # id hash -> (household number, row)
    row_errors: list[RowError] = []
    for rowno, values in rows:
        result.rows += 1
        row_errors.clear()
        number, hh_values, member = parser.parse(rowno, values, row_errors)
        if not number:
            if not row_errors or all(e.column != parser.headers["household_number"] for e in row_errors):
                row_errors.append(RowError(rowno, parser.headers["household_number"], "",
                                           "is required"))
            add_errors(row_errors)
            continue
        acc = households.get(number)
        if acc is None:
            acc = households[number] = _HouseholdAcc(rowno, hh_values)
        else:
            for pos, value in enumerate(hh_values):
                if value is None:
                    continue
                held = acc.values[pos]
                if held is None:
                    acc.values[pos] = value
                elif held != value:
                    key = HOUSEHOLD_KEYS[pos]
                    reason = (f"household number {number} is already used for village {held} "
                              f"(row {acc.first_row})") if key == "village_code" else (
                        f"differs from {_plain(held)!r} given earlier for household {number} "
                        f"(first row {acc.first_row})")
                    row_errors.append(RowError(rowno, parser.headers[key], _plain(value), reason))
        village = hh_values[_HH["village_code"]]
        if village is not None and village not in villages:
            reason = ("village outside your region scope" if village in outside
                      else "unknown village code (import the villages first: ecpa regions import)")
            row_errors.append(RowError(rowno, parser.headers["village_code"], village, reason))
        if member.get("relation") is Relation.HEAD:
            acc.heads += 1
            acc.head_rows.append(rowno)
        if "id_number" in member:
            h = p.lookup_hash(member["id_number"], "id_number")
            seen = members.get(h)
            if seen is None:
                members[h] = (number, rowno)
            else:
                where = ("listed twice in this household" if seen[0] == number
                         else f"member listed in two households: also in household {seen[0]}")
                row_errors.append(RowError(rowno, parser.headers["id_number"],
                                           _mask_id(member["id_number"]),
                                           f"{where} (row {seen[1]})"))
        if row_errors:
            acc.bad = True
            add_errors(row_errors, number)
        if progress and result.rows % 10_000 == 0:
            progress("check", result.rows, None)

    # Household-level checks over all of a household's rows.
    for number, acc in households.items():
        vals = acc.values
        problems = []
        if vals[_HH["village_code"]] is None:
            problems.append(RowError(acc.first_row, parser.headers["village_code"], "",
                                     "is required on at least one row of the household"))
        if acc.heads != 1:
            rel = parser.headers["relation"]
            if acc.heads == 0:
                problems.append(RowError(acc.first_row, rel, "", f"household {number} has no head"))
            else:
                rows_txt = ", ".join(map(str, acc.head_rows))
                problems.append(RowError(acc.head_rows[1], rel, "head",
                                         f"household {number} has {acc.heads} heads (rows {rows_txt})"))
        has_year_data = any(vals[_HH[k]] is not None for k in (*INCOME_KEYS, *CONDITION_KEYS))
        if has_year_data and vals[_HH["year"]] is None and "year" in parser.headers:
            problems.append(RowError(acc.first_row, parser.headers["year"], "",
                                     "a year is needed for the incomes and living conditions"))
        elif has_year_data and "year" not in parser.headers:
            problems.append(RowError(acc.first_row, "year", "",
                                     "column year (年度) is needed for incomes and living conditions"))
        if vals[_HH["status_date"]] and vals[_HH["status_date"]] > date.today():
            problems.append(RowError(acc.first_row, parser.headers["status_date"],
                                     vals[_HH["status_date"]].isoformat(), "is in the future"))
        if problems:
            acc.bad = True
            add_errors(problems, number)

    # ------------------------------------------------------------ checks against the database
    existing_members = _check_database(session, households, members, parser, add_errors)
    result.households = len(households)

    errors.sort(key=lambda e: (e.row, e.column))
    result.errors = errors
    bad = {n for n, acc in households.items() if acc.bad}
    if result.error_count and error_file:
        result.error_file = str(write_error_file(path, errors, result.error_count))
    if result.error_count and not partial:
        audit(session, actor, "import.refused", "household", None,
              {"file": path.name, "rows": result.rows, "errors": result.error_count})
        return result
    result.households_skipped = len(bad)

    # ------------------------------------------------------------ pass 2: write
    _write(session, actor, path, parser, households, existing_members, bad, result, progress)
    result.written = True
    if session.get_bind().dialect.name == "postgresql" and (
            result.households_created + result.members_created) > 10_000:
        # Fresh statistics: without them the planner takes the new tables for empty and
        # the next import's lookups run for minutes instead of seconds.
        session.execute(text("ANALYZE household, member, household_income, "
                             "living_conditions, status_event"))
    # Duplicates (issue 6): queue candidate pairs involving the households just written.
    from ..duplicates.service import queue_after_import
    if result.households_created + result.households_updated + result.members_created \
            + result.members_updated:
        queue_after_import(session, actor, [n for n in households if n not in bad])
    audit(session, actor, "import", "household", None,
          {"file": path.name, "sha256": _sha256(path), **{k: v for k, v in result.summary().items()
                                                          if isinstance(v, int)}})
    return result


def _plain(v) -> str:
    if isinstance(v, date):
        return v.isoformat()
    return v.value if hasattr(v, "value") else str(v)


def _mask_id(number: str) -> str:
    from ..privacy import mask_id_number
    return mask_id_number(number)


def _chunks(items: list, n: int = _CHUNK):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _check_database(session, households, members, parser, add_errors):
    """Household numbers used elsewhere, members registered in another household,
    impossible status transitions.  Returns ``{id hash: (member id, digest)}``."""
    for chunk in _chunks(list(households)):
        for hid, number, village, digest, merged_into in session.execute(
            select(Household.id, Household.number, Household.village_code, Household.import_digest,
                   Household.merged_into_id)
            .where(Household.number.in_(chunk))
        ):
            acc = households[number]
            acc.existing_id, acc.existing_digest = hid, digest
            if merged_into is not None:  # duplicates (issue 6): a merged household is closed
                acc.bad = True
                add_errors([RowError(acc.first_row, parser.headers["household_number"], number,
                                     f"household {number} was merged into household id "
                                     f"{merged_into}: change that household instead")], number)
            given = acc.values[_HH["village_code"]]
            if given is not None and given != village:
                acc.bad = True
                add_errors([RowError(acc.first_row, parser.headers["village_code"], given,
                                     f"household number {number} already exists in village {village}")],
                           number)
    existing: dict[str, tuple[int, str | None]] = {}
    for chunk in _chunks(list(members)):
        for h, mid, digest, number in session.execute(
            select(Member.id_number_hash, Member.id, Member.import_digest, Household.number)
            .join(Household, Member.household_id == Household.id)
            # Duplicates (issue 6): the same person kept on a merged household is history.
            .where(Member.id_number_hash.in_(chunk), Household.merged_into_id.is_(None))
        ):
            in_file, row = members[h]
            if number != in_file:
                households[in_file].bad = True
                add_errors([RowError(row, parser.headers["id_number"], "(masked)",
                                     f"member listed in two households: already registered in "
                                     f"household {number}")], in_file)
            else:
                existing[h] = (mid, digest)
    # Status transitions for households that exist and state a status.
    with_status = [acc for acc in households.values()
                   if acc.existing_id and acc.values[_HH["status"]] is not None]
    for chunk in _chunks(with_status):
        latest = _latest_status(session, [a.existing_id for a in chunk])
        for acc in chunk:
            current, since = latest.get(acc.existing_id, (None, None))
            new = acc.values[_HH["status"]]
            if new == current:
                continue
            when = acc.values[_HH["status_date"]] or date.today()
            number = acc.values[0]
            col = parser.headers["status"]
            if new not in TRANSITIONS[current]:
                acc.bad = True
                add_errors([RowError(acc.first_row, col, new.value,
                                     f"cannot go from {current.value if current else 'no status'} "
                                     f"to {new.value}")], number)
            elif since and when < since:
                acc.bad = True
                add_errors([RowError(acc.first_row, parser.headers.get("status_date", col),
                                     when.isoformat(),
                                     f"is before the household's last status event ({since})")],
                           number)
    return existing


def _latest_status(session, household_ids):
    out = {}
    rows = session.execute(
        select(StatusEvent.household_id, StatusEvent.status, StatusEvent.event_date, StatusEvent.id)
        .where(StatusEvent.household_id.in_(household_ids))
        .order_by(StatusEvent.household_id, StatusEvent.event_date, StatusEvent.id)
    )
    for hid, status, when, _ in rows:
        out[hid] = (status, when)  # the last row per household wins
    return out


def _write(session, actor, path, parser, households, existing_members, bad, result, progress):
    p = protector()
    header, rows = read_rows(path)
    if _Parser(header).index != parser.index:
        raise InvalidInput("the file changed while it was being imported")
    ids: dict[str, int] = {}  # household number -> id, for households written or existing
    done: set[str] = set()
    pending_households: list[dict] = []
    pending_members: list[tuple[str, dict]] = []
    pending_year: list[tuple[str, list]] = []  # (number, household values) for incomes/conditions/status
    audit_rows: list[dict] = []
    default_reason = f"recorded by import of {path.name}"
    now = utcnow()
    today = date.today()
    scratch: list[RowError] = []
    n = 0

    def flush():
        if pending_households:
            # Core inserts (executemany), not ORM bulk: a third of the time for 1M rows.
            table = Household.__table__
            new = session.execute(
                # Rows come back paired with their number, so their order does not matter
                # (and SQLite can batch them).
                table.insert().returning(table.c.id, table.c.number),
                pending_households,
            ).all()
            for hid, number in new:
                ids[number] = hid
            pending_households.clear()
        if pending_members:
            bulk_insert(session, Member.__table__,
                        [dict(m, household_id=ids[num]) for num, m in pending_members])
            pending_members.clear()
        incomes, conditions, events = [], [], []
        for number, vals in pending_year:
            hid = ids[number]
            year = vals[_HH["year"]]
            if year is not None:
                for key, source in INCOME_KEYS.items():
                    if vals[_HH[key]] is not None:
                        incomes.append({"household_id": hid, "year": year, "source": source,
                                        "amount_fen": vals[_HH[key]]})
                cond = {attr: vals[_HH[k]] for k, attr in CONDITION_FIELDS.items()}
                if any(v is not None for v in cond.values()):
                    conditions.append({"household_id": hid, "year": year, **cond})
            status = vals[_HH["status"]]
            if status is not None and status is not current_status.get(number):
                events.append({"household_id": hid, "status": status,
                               "event_date": vals[_HH["status_date"]] or today,
                               "reason": vals[_HH["status_reason"]] or default_reason,
                               "recorded_by": actor.username, "recorded_at": now})
        if incomes:
            bulk_insert(session, Income.__table__, incomes)
        if conditions:
            bulk_insert(session, LivingConditions.__table__, conditions)
        if events:
            bulk_insert(session, StatusEvent.__table__, events)
            result.status_events += len(events)
        pending_year.clear()
        if audit_rows:
            for a in audit_rows:
                a["entity_id"] = str(ids[a.pop("number")])
            bulk_insert(session, AuditEntry.__table__, audit_rows)
            audit_rows.clear()

    # Current status of the existing households that the file changes.
    current_status: dict[str, Status | None] = {}
    changed = [(num, acc) for num, acc in households.items()
               if acc.existing_id and num not in bad
               and acc.existing_digest != _household_digest(acc.values)]
    for chunk in _chunks(changed):
        latest = _latest_status(session, [acc.existing_id for _, acc in chunk])
        for num, acc in chunk:
            current_status[num] = latest.get(acc.existing_id, (None, None))[0]

    for rowno, values in rows:
        n += 1
        scratch.clear()
        number, _, member = parser.parse(rowno, values, scratch)
        if not number or number in bad or scratch:
            continue
        acc = households[number]
        if number not in done:
            done.add(number)
            vals = acc.values
            digest = _household_digest(vals)
            columns = _household_columns(vals, p)
            if acc.existing_id is None:
                pending_households.append({**columns, "import_digest": digest})
                pending_year.append((number, vals))
                audit_rows.append({"at": now, "actor": actor.username, "action": "import.create",
                                   "entity": "household", "number": number,
                                   "detail": {"file": path.name}})
                result.households_created += 1
            else:
                ids[number] = acc.existing_id
                if acc.existing_digest == digest:
                    result.households_unchanged += 1
                else:
                    session.execute(update(Household).where(Household.id == acc.existing_id)
                                    .values(**columns, import_digest=digest))
                    year = vals[_HH["year"]]
                    if year is not None:
                        session.execute(delete(Income).where(Income.household_id == acc.existing_id,
                                                             Income.year == year))
                        session.execute(delete(LivingConditions).where(
                            LivingConditions.household_id == acc.existing_id,
                            LivingConditions.year == year))
                    pending_year.append((number, vals))
                    audit_rows.append({"at": now, "actor": actor.username, "action": "import.update",
                                       "entity": "household", "number": number,
                                       "detail": {"file": path.name}})
                    result.households_updated += 1
        mdigest = _digest(number, [member.get(k) for k in MEMBER_KEYS])
        h = p.lookup_hash(member["id_number"], "id_number")
        old = existing_members.get(h)
        if old is not None and old[1] == mdigest:
            result.members_unchanged += 1
            continue
        values_m = _member_columns(member, p)
        values_m["import_digest"] = mdigest
        if old is None:
            pending_members.append((number, values_m))
            result.members_created += 1
        else:
            session.execute(update(Member).where(Member.id == old[0]).values(**values_m))
            result.members_updated += 1
        if len(pending_members) >= BATCH_ROWS or len(pending_households) >= BATCH_ROWS:
            flush()
            if progress:
                progress("write", n, result.rows)
    flush()
    if progress:
        progress("write", n, result.rows)


def _household_digest(vals: list) -> str:
    return _digest(*vals)


def _household_columns(vals: list, p) -> dict:
    phone = vals[_HH["household_phone"]]
    cols = {
        "number": vals[_HH["household_number"]],
        "village_code": vals[_HH["village_code"]],
        "address": vals[_HH["address"]] or "",
        "main_cause": vals[_HH["main_cause"]],
        "monitoring_category": vals[_HH["monitoring_category"]],
        "risk_eliminated": vals[_HH["risk_eliminated"]],
        "phone_enc": None, "phone_hash": None, "phone_masked": None,
    }
    if phone:
        cols.update(phone_enc=p.encrypt(phone, "phone"), phone_hash=p.lookup_hash(phone, "phone"),
                    phone_masked=mask_phone(phone))
    return cols


def _member_columns(member: dict, p) -> dict:
    cols = protected_member_values(p, member["id_number"], member.get("phone"))
    cols.update(
        name=member["name"], relation=member["relation"], sex=member["sex"],
        birth_date=member["birth_date"], education=member.get("education"),
        schooling=member.get("schooling"), health=member.get("health"),
        disability=member.get("disability") or Disability.NONE,
        labour_ability=member.get("labour_ability"),
        medical_insurance=member.get("medical_insurance"),
        monthly_wage_fen=member.get("monthly_wage"),
    )
    return cols


def write_error_file(path: Path, errors: list[RowError], total: int) -> Path:
    """The error report beside the input: ``NAME.errors.csv`` (UTF-8 with BOM for Excel)."""
    out = path.with_name(path.stem + ".errors.csv")
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "column", "value", "reason", "household_number"])
        for e in errors:
            w.writerow([e.row, e.column, e.value, e.reason, e.household])
        if total > len(errors):
            w.writerow(["", "", "", f"... and {total - len(errors)} more errors not listed", ""])
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
