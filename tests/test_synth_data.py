"""The synthetic county: reproducible, valid, calibrated; and the Parquet stream."""

from __future__ import annotations

import csv
from collections import Counter

import pyarrow.parquet as pq
import pytest

from ecpa.regions.codes import fits_parent, level_of_code
from ecpa.regions.models import Level
from ecpa.registry.identity import check_resident_id
from ecpa.synth import stream_parquet, synth_county, write_register


@pytest.fixture(scope="module")
def county():
    return synth_county(seed=3, households=1500)


def test_reproducible_from_seed(county):
    assert synth_county(seed=3, households=1500).rows == county.rows
    assert synth_county(seed=4, households=1500).rows != county.rows


def test_ids_valid_unique_and_consistent(county):
    ids = [r["id_number"] for r in county.rows]
    assert len(ids) == len(set(ids))
    for r in county.rows:
        number, born, sex = check_resident_id(r["id_number"])
        assert born.isoformat() == r["birth_date"] and sex.value == r["sex"]


def test_households_have_one_head_and_plausible_figures(county):
    heads = Counter(r["household_number"] for r in county.rows if r["relation"] == "head")
    sizes = Counter(r["household_number"] for r in county.rows)
    assert set(heads.values()) == {1} and set(heads) == set(sizes)
    mean_size = sum(sizes.values()) / len(sizes)
    assert 3.0 < mean_size < 3.6
    below = 0
    for r in county.rows:
        if r["relation"] == "head":
            total = sum(float(r[k] or 0) for k in r if k.startswith("income_"))
            below += total / sizes[r["household_number"]] < 4000
    assert 0.02 < below / len(sizes) < 0.10
    statuses = Counter(r["status"] for r in county.rows if r["relation"] == "head")
    assert statuses.most_common(1)[0][0] == "exited" and statuses["monitored"] > 0


def test_region_codes_fit_their_parents(county):
    for r in county.regions:
        level = level_of_code(r["code"])
        assert level in (Level.TOWNSHIP, Level.VILLAGE)
        assert fits_parent(r["code"], r["parent_code"])
    villages = {r["code"] for r in county.regions if level_of_code(r["code"]) is Level.VILLAGE}
    assert {r["village_code"] for r in county.rows if r["village_code"]} <= villages


def test_register_written_as_csv_and_xlsx(county, tmp_path):
    from openpyxl import load_workbook
    rows = county.rows[:50]
    write_register(rows, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", encoding="utf-8-sig") as fh:
        back = list(csv.DictReader(fh))
    assert back[0]["id_number"] == rows[0]["id_number"] and len(back) == 50
    write_register(rows, tmp_path / "r.xlsx")
    sheet = list(load_workbook(tmp_path / "r.xlsx").active.iter_rows(values_only=True))
    assert sheet[0][0] == "household_number" and sheet[1][sheet[0].index("id_number")] == rows[0]["id_number"]


def test_stream_parquet_matches_layout(tmp_path):
    from ecpa.registry.layout import TABLES
    stream_parquet(tmp_path, 20_000, seed=2, chunk_households=7_000)
    tables = {n: pq.read_table(tmp_path / f"{n}.parquet") for n in TABLES}
    for name, schema in TABLES.items():
        assert tables[name].schema.equals(schema, check_metadata=False)
    hh = tables["households"]
    ids = hh.column("household_id").to_pylist()
    assert len(ids) == 20_000 == len(set(ids))
    assert set(tables["members"].column("household_id").to_pylist()) == set(ids)
    assert sum(hh.column("size").to_pylist()) == tables["members"].num_rows
    for v in hh.column("village_code").to_pylist()[:500]:
        assert level_of_code(v) is Level.VILLAGE
    assert set(tables["incomes"].column("year").to_pylist()) == {2023, 2024}
