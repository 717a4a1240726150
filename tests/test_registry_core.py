"""Personal data never in plain text, status history, regions, identity checks,
export round trip."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text

from conftest import COUNTY, TOWNSHIP, VILLAGE_A, good_rows, make_id
from ecpa.db import get_engine, session_scope
from ecpa.errors import Conflict, InvalidInput
from ecpa.people.access import system_actor
from ecpa.registry.identity import check_credit_code, check_resident_id
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Status

ACTOR = system_actor("test")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_database_file_holds_no_id_or_phone_number_in_plain_text(db_url, register_file):
    with session_scope(db_url) as s:
        assert import_register(s, ACTOR, register_file).written
    with get_engine(db_url).connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = open(db_url.removeprefix("sqlite:///"), "rb").read()
    secrets = [r["id_number"] for r in good_rows()] + ["13812345678", "15900001111"]
    assert len(raw) > 10_000
    for value in secrets:
        assert value.encode() not in raw, f"{value} found in the database file"
        assert value[6:14].encode() + value[14:].encode() not in raw
    # The names are there (they are not protected numbers), proving the scan reads data.
    assert "王大山".encode() in raw


def test_postgres_rows_hold_ciphertext_only(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
    with get_engine(db_url).connect() as c:
        dump = " ".join(str(row) for row in c.execute(text("SELECT * FROM member")))
        dump += " ".join(str(row) for row in c.execute(text("SELECT * FROM household")))
    for r in good_rows():
        assert r["id_number"] not in dump
    assert "13812345678" not in dump and "138****5678" in dump


def test_status_history_gives_current_status(db_url, register_file):
    from ecpa.registry.service import current_status, record_status
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        h = s.scalar(select(Household).where(Household.number == "6212210001"))
        assert current_status(s, h.id) == (Status.IDENTIFIED, date(2016, 3, 1))
        record_status(s, ACTOR, h.id, Status.EXITED, date(2019, 12, 1), "income above the line")
        record_status(s, ACTOR, h.id, Status.MONITORED, date(2021, 4, 1), "serious illness")
        record_status(s, ACTOR, h.id, Status.RETURNED, date(2022, 2, 1), "medical costs")
        assert current_status(s, h.id) == (Status.RETURNED, date(2022, 2, 1))
        with pytest.raises(Conflict, match="cannot go from returned to identified"):
            record_status(s, ACTOR, h.id, Status.IDENTIFIED, date(2023, 1, 1), "x")
        with pytest.raises(InvalidInput, match="before the last event"):
            record_status(s, ACTOR, h.id, Status.EXITED, date(2021, 1, 1), "x")
        with pytest.raises(InvalidInput, match="needs a reason"):
            record_status(s, ACTOR, h.id, Status.EXITED, date(2023, 1, 1), "  ")
        # Two events on the same day: the later recorded wins.
        record_status(s, ACTOR, h.id, Status.EXITED, date(2023, 1, 1), "recovered")
        record_status(s, ACTOR, h.id, Status.MONITORED, date(2023, 1, 1), "flood")
        assert current_status(s, h.id)[0] is Status.MONITORED


def test_region_code_that_does_not_fit_its_parent_is_refused(db_url):
    from ecpa.regions.service import import_regions_csv
    with session_scope(db_url) as s:
        n, errors = import_regions_csv(s, ACTOR, "\n".join([
            "code,name,parent_code,is_poor",
            f"621222100000,错乡,{COUNTY},no",        # township under the wrong county
            f"621221101005,某村,{TOWNSHIP},no",      # village of another township
            f"621221100007,某村,{COUNTY},no",        # village directly under a county
            f"62122110,短码,{COUNTY},no",             # malformed code
            f"621221100008,好村,{TOWNSHIP},maybe",   # bad flag
        ]))
    assert n == 0
    text_ = [str(e) for e in errors]
    assert any("row 2" in t and "does not fit its parent 621221" in t for t in text_)
    assert any("row 3" in t and "must start with 621221100" in t for t in text_)
    assert any("row 4" in t and "cannot sit under a county" in t for t in text_)
    assert any("row 5" in t and "not a 6-digit" in t for t in text_)
    assert any("row 6" in t and "is_poor" in t for t in text_)


def test_official_regions_come_from_the_package(db_url):
    from ecpa.regions.models import Level, Region
    with session_scope(db_url) as s:
        gansu = s.get(Region, "620000")
        longnan = s.get(Region, "621200")
        cheng = s.get(Region, COUNTY)
        assert (gansu.name, longnan.name, cheng.name) == ("甘肃省", "陇南市", "成县")
        assert cheng.parent_code == "621200" and longnan.parent_code == "620000"
        counties = s.scalars(select(Region).where(Region.level == Level.COUNTY,
                                                  Region.code.startswith("62"))).all()
        assert len(counties) == 86  # Gansu's 86 county-level divisions
        assert s.get(Region, VILLAGE_A).parent_code == TOWNSHIP


def test_resident_id_checks():
    good = make_id(date(1985, 3, 12), 123, True)
    number, born, sex = check_resident_id(good.lower())
    assert number == good and born == date(1985, 3, 12) and sex.value == "male"
    assert check_resident_id(make_id(date(1985, 3, 12), 124, False))[2].value == "female"
    with pytest.raises(ValueError, match="check digit"):
        check_resident_id(good[:-1] + str((int(good[-1]) + 1) % 10 if good[-1] != "X" else 0))
    with pytest.raises(ValueError, match="18 characters"):
        check_resident_id(good[:-2])
    future = "621221" + "20991231" + "001"
    from stdnum.cn import ric
    with pytest.raises(ValueError, match="impossible birth date"):
        check_resident_id(future + ric.calc_check_digit(future + "0"))
    with pytest.raises(ValueError, match="province"):
        body = "991221198503120012"[:17]
        check_resident_id(body + ric.calc_check_digit(body + "0"))


def test_unified_social_credit_code():
    from stdnum.cn import uscc
    body = "91621221MA71234567"[:17]
    code = body + uscc.calc_check_digit(body)
    assert check_credit_code(code) == code
    bad = body + ("0" if code[-1] != "0" else "1")
    with pytest.raises(ValueError):
        check_credit_code(bad)


def test_revealed_export_round_trips_and_masked_export_masks(db_url, register_file, tmp_path):
    from ecpa.registry.exporter import export_registry
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
    out = tmp_path / "export.csv"
    with session_scope(db_url) as s:
        info = export_registry(s, ACTOR, out, reveal=True)
    assert info["rows"] == 7
    with session_scope(db_url) as s:
        r = import_register(s, ACTOR, out)
    assert r.error_count == 0 and r.households_unchanged + r.households_updated == 3
    assert r.households_created == 0 and r.members_created == 0
    masked = tmp_path / "masked.xlsx"
    with session_scope(db_url) as s:
        export_registry(s, ACTOR, masked)
    from openpyxl import load_workbook
    cells = [c for row in load_workbook(masked).active.iter_rows(values_only=True) for c in row]
    assert good_rows()[0]["id_number"] not in cells
    assert any(isinstance(c, str) and c.startswith("621221") and "********" in c for c in cells)


def test_parquet_export_is_deidentified(db_url, register_file, tmp_path):
    import pyarrow.parquet as pq
    from ecpa.registry.exporter import export_registry
    from ecpa.registry.layout import TABLES
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        export_registry(s, ACTOR, tmp_path / "pq", "parquet")
    for name, schema in TABLES.items():
        table = pq.read_table(tmp_path / "pq" / f"{name}.parquet")
        assert table.schema.equals(schema, check_metadata=False)
    hh = pq.read_table(tmp_path / "pq" / "households.parquet").to_pylist()
    assert sorted(h["size"] for h in hh) == [1, 3, 3]
    assert {h["county_code"] for h in hh} == {COUNTY}
    members = pq.read_table(tmp_path / "pq" / "members.parquet")
    assert "name" not in members.column_names and "id_number" not in members.column_names


def test_money_is_parsed_to_integer_fen():
    from decimal import Decimal
    from ecpa.registry.vocab import money_fen
    assert money_fen("12,345.50") == 1234550
    assert money_fen("0.1") == 10
    assert money_fen(Decimal("3200.05")) == 320005
    for bad, why in (("1,2,3", "comma"), ("3.456", "two decimals"), ("-1", "negative"),
                     ("abc", "not an amount"), ("1e3", "not an amount")):
        with pytest.raises(ValueError, match=why):
            money_fen(bad)
