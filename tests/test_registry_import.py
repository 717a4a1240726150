"""Import of register files on SQLite and PostgreSQL: every bad-row kind is reported
with row, column, value and reason and nothing is written; re-import is a no-op."""

from __future__ import annotations

import csv
from datetime import date

import pytest
from sqlalchemy import func, select

from conftest import HEADER, VILLAGE_A, VILLAGE_B, good_rows, make_id, write_csv
from ecpa.db import session_scope
from ecpa.people.access import system_actor
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Income, LivingConditions, Member, StatusEvent

ACTOR = system_actor("test")
TABLES = (Household, Member, Income, LivingConditions, StatusEvent)


def counts(url) -> dict:
    with session_scope(url) as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in TABLES}


def run(url, path, **kw):
    with session_scope(url) as s:
        return import_register(s, ACTOR, path, **kw)


def test_good_file_imports_everything(db_url, register_file):
    r = run(db_url, register_file)
    assert r.error_count == 0 and r.written
    assert (r.households_created, r.members_created, r.status_events) == (3, 7, 3)
    assert counts(db_url) == {"household": 3, "member": 7, "household_income": 5,
                              "living_conditions": 1, "status_event": 3}
    with session_scope(db_url) as s:
        h = s.scalar(select(Household).where(Household.number == "6212210001"))
        incomes = {i.source.value: i.amount_fen for i in
                   s.scalars(select(Income).where(Income.household_id == h.id))}
        assert incomes == {"wages": 600000, "farming_business": 320050, "transfers": 180000}
        child = s.scalar(select(Member).where(Member.name == "王小明"))
        # Birth date and sex come from the ID number.
        assert child.birth_date == date(2014, 6, 30) and child.sex.value == "male"
        assert child.id_number_masked.startswith("621221") and "*" in child.id_number_masked


def test_reimport_changes_nothing(db_url, register_file):
    run(db_url, register_file)
    with session_scope(db_url) as s:
        before = sorted((h.id, h.updated_at, h.import_digest) for h in s.scalars(select(Household)))
    state = counts(db_url)
    r = run(db_url, register_file)
    assert (r.households_created, r.households_updated, r.households_unchanged) == (0, 0, 3)
    assert (r.members_created, r.members_updated, r.members_unchanged) == (0, 0, 7)
    assert r.status_events == 0
    assert counts(db_url) == state
    with session_scope(db_url) as s:
        after = sorted((h.id, h.updated_at, h.import_digest) for h in s.scalars(select(Household)))
    assert after == before


def test_changed_file_updates_only_what_changed(db_url, register_file, tmp_path):
    run(db_url, register_file)
    rows = good_rows()
    rows[3]["income_wages"] = "16000"
    rows[4]["status"], rows[4]["status_date"] = "exited", "2024-06-01"
    r = run(db_url, write_csv(tmp_path / "v2.csv", rows))
    assert (r.households_created, r.households_updated, r.households_unchanged) == (0, 2, 1)
    assert r.status_events == 1
    with session_scope(db_url) as s:
        h = s.scalar(select(Household).where(Household.number == "6212210002"))
        wages = s.scalar(select(Income.amount_fen).where(Income.household_id == h.id))
        assert wages == 1600000


def _bad(rows_edit, tmp_path, name="bad.csv"):
    rows = good_rows()
    rows_edit(rows)
    return write_csv(tmp_path / name, rows)


BROKEN_ID = make_id(date(1968, 4, 2), 1, True)[:-1] + (
    "0" if make_id(date(1968, 4, 2), 1, True)[-1] != "0" else "1")


@pytest.mark.parametrize("edit, row, column, value, reason", [
    (lambda r: r[0].update(village_code="621221100999"), 2, "village_code", "621221100999",
     "unknown village"),
    (lambda r: r[0].update(id_number=BROKEN_ID), 2, "id_number", BROKEN_ID, "check digit"),
    (lambda r: r[1].update(id_number="62122119700912004"), 3, "id_number",
     "62122119700912004", "18 characters"),
    (lambda r: r[2].update(id_number=(lambda b: b + __import__("stdnum.cn.ric").cn.ric.calc_check_digit(b + "0"))(
        "62122120150230003")), 4, "id_number", None, "impossible birth date"),
    (lambda r: r[0].update(income_wages="-300"), 2, "income_wages", "-300", "negative"),
    (lambda r: r[0].update(income_transfers="abc"), 2, "income_transfers", "abc", "not an amount"),
    (lambda r: r[5].update(id_number=r[0]["id_number"]), 7, "id_number", None,
     "member listed in two households: also in household 6212210001 (row 2)"),
    (lambda r: r[3].update(household_number="6212210003"), 6, "village_code", VILLAGE_B,
     "household number 6212210003 is already used for village 621221100001 (row 5)"),
    (lambda r: r[1].update(relation="head"), 3, "relation", "head", "2 heads"),
    (lambda r: r[0].update(sex="female"), 2, "sex", "female", "disagrees with the ID number"),
    (lambda r: r[0].update(status_date="2016-02-30"), 2, "status_date", "2016-02-30", "not a date"),
    (lambda r: r[0].update(relation="boss"), 2, "relation", "boss", "not one of"),
])
def test_each_bad_row_kind_is_reported_and_nothing_written(db_url, tmp_path, edit, row, column,
                                                           value, reason):
    header = HEADER + ["sex"]
    rows = good_rows()
    edit(rows)
    path = write_csv(tmp_path / "bad.csv", rows, header)
    r = run(db_url, path)
    assert not r.written
    assert counts(db_url) == {t.__tablename__: 0 for t in TABLES}
    match = [e for e in r.errors if e.row == row and e.column == column and reason in e.reason]
    assert match, f"expected row {row} {column} '{reason}', got {[str(e) for e in r.errors]}"
    if value is not None:
        assert match[0].value == value
    # The error report beside the input says the same.
    with open(r.error_file, encoding="utf-8-sig") as fh:
        reported = list(csv.DictReader(fh))
    assert any(x["row"] == str(row) and x["column"] == column and reason in x["reason"]
               for x in reported)


def test_member_already_registered_in_another_household(db_url, register_file, tmp_path):
    run(db_url, register_file)
    rows = [dict(household_number="6212210009", village_code=VILLAGE_A, name="王大山",
                 id_number=good_rows()[0]["id_number"], relation="head")]
    r = run(db_url, write_csv(tmp_path / "dup.csv", rows))
    assert not r.written
    assert r.errors[0].row == 2 and "already registered in household 6212210001" in r.errors[0].reason


def test_partial_writes_only_households_without_bad_rows(db_url, tmp_path):
    path = _bad(lambda r: r[1].update(income_wages="x", id_number="123"), tmp_path)
    r = run(db_url, path, partial=True)
    assert r.written and r.households_skipped == 1
    assert r.households_created == 2 and r.members_created == 4
    with session_scope(db_url) as s:
        numbers = set(s.scalars(select(Household.number)))
    assert numbers == {"6212210002", "6212210003"}


def test_missing_required_column_is_named(db_url, tmp_path):
    from ecpa.errors import InvalidInput
    header = [h for h in HEADER if h != "id_number"]
    path = write_csv(tmp_path / "nocol.csv", good_rows(), header)
    with pytest.raises(InvalidInput, match="id_number"):
        run(db_url, path)


def test_chinese_headers_and_xlsx(db_url, tmp_path):
    from openpyxl import Workbook
    zh = {"household_number": "户编号", "village_code": "村代码", "name": "姓名",
          "id_number": "证件号码", "relation": "与户主关系", "labour_ability": "劳动技能",
          "schooling": "在校生状况", "monthly_wage": "务工月收入"}
    rows = [
        {"户编号": "6212210101", "村代码": VILLAGE_A, "姓名": "杨树林",
         "证件号码": make_id(date(1975, 3, 3), 11, True), "与户主关系": "户主",
         "劳动技能": "普通劳动力", "在校生状况": "非在校生", "务工月收入": "3000"},
        {"户编号": "6212210101", "姓名": "杨小花", "证件号码": make_id(date(2012, 8, 8), 12, False),
         "与户主关系": "之女", "劳动技能": "无劳动力", "在校生状况": "小学", "务工月收入": ""},
    ]
    wb = Workbook()
    ws = wb.active
    ws.append(list(zh.values()))
    for row in rows:
        ws.append([row.get(h) for h in zh.values()])
    path = tmp_path / "register.xlsx"
    wb.save(path)
    r = run(db_url, path)
    assert r.error_count == 0, [str(e) for e in r.errors]
    with session_scope(db_url) as s:
        daughter = s.scalar(select(Member).where(Member.name == "杨小花"))
        assert daughter.relation.value == "child" and daughter.schooling.value == "primary"
        head = s.scalar(select(Member).where(Member.name == "杨树林"))
        assert head.monthly_wage_fen == 300000 and head.labour_ability.value == "ordinary"


def test_xlsx_id_number_stored_as_number_is_refused(db_url, tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["household_number", "village_code", "name", "id_number", "relation"])
    ws.append(["6212210201", VILLAGE_A, "张三", 622122197503030111, "head"])
    path = tmp_path / "numeric.xlsx"
    wb.save(path)
    r = run(db_url, path)
    assert not r.written and "format the column as text" in r.errors[0].reason


def test_village_cadre_imports_only_its_village_and_every_change_is_audited(db_url, register_file):
    from ecpa.people.access import Actor
    from ecpa.people.models import AuditEntry, Role
    cadre = Actor("cadre_a", Role.VILLAGE_CADRE, VILLAGE_A)
    with session_scope(db_url) as s:
        r = import_register(s, cadre, register_file)
    assert not r.written
    outside = [e for e in r.errors if e.column == "village_code"]
    assert outside and all(e.value == VILLAGE_B and "outside your region scope" in e.reason
                           for e in outside)
    r = run(db_url, register_file)
    with session_scope(db_url) as s:
        created = s.scalars(select(AuditEntry.entity_id).where(
            AuditEntry.action == "import.create")).all()
        ids = {str(i) for i in s.scalars(select(Household.id))}
        summary = s.scalars(select(AuditEntry).where(AuditEntry.action == "import")).one()
    assert set(created) == ids and len(created) == 3
    assert summary.detail["households_created"] == 3 and len(summary.detail["sha256"]) == 64
