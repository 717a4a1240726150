"""The household pass without hash tables (measure/direct.py) against the grouped SQL:
the same households.parquet and the same tables, in files in household order or not,
with ids dense or sparse; and the grouped SQL where the direct pass must not be used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ecpa.measure import direct, engine
from ecpa.measure.assess import assess
from ecpa.measure.config import load_config
from ecpa.measure.engine import DuckDBBackend
from ecpa.synth import stream_parquet

TABLES = ("households", "members", "incomes", "conditions")


@pytest.fixture(scope="module")
def register(tmp_path_factory) -> Path:
    """3,000 synthetic households with the awkward cases added: households without
    members, without incomes or without conditions, members without a head or a birth
    date, incomes of NULL amount, and members and incomes of no listed household."""
    folder = tmp_path_factory.mktemp("direct") / "reg"
    stream_parquet(folder, 3000, seed=13, counties=8, chunk_households=1000)
    t = {name: pq.read_table(folder / f"{name}.parquet") for name in TABLES}
    hid = t["members"].column("household_id")
    keep = pc.invert(pc.is_in(hid, pa.array([5, 6, 7, 1500], pa.int64())))
    members = t["members"].filter(keep)
    rel = members.column("relation").to_pylist()
    born = members.column("birth_date").to_pylist()
    for i in range(0, len(rel), 97):
        rel[i] = "other"
        born[i] = None
    members = members.set_column(members.schema.get_field_index("relation"), "relation",
                                 pa.array(rel, pa.string()))
    members = members.set_column(members.schema.get_field_index("birth_date"), "birth_date",
                                 pa.array(born, pa.date32()))
    orphan = members.slice(0, 3).set_column(1, "household_id", pa.array([99_999] * 3, pa.int64()))
    t["members"] = pa.concat_tables([members, orphan])
    incomes = t["incomes"].filter(pc.invert(pc.is_in(t["incomes"].column("household_id"),
                                                     pa.array([8, 9, 2000], pa.int64()))))
    amount = incomes.column("amount_fen").to_pylist()
    for i in range(0, len(amount), 53):
        amount[i] = None
    t["incomes"] = incomes.set_column(incomes.schema.get_field_index("amount_fen"), "amount_fen",
                                      pa.array(amount, pa.int64()))
    t["conditions"] = t["conditions"].filter(
        pc.invert(pc.is_in(t["conditions"].column("household_id"), pa.array([10, 11], pa.int64()))))
    for name, table in t.items():
        pq.write_table(table, folder / f"{name}.parquet", row_group_size=700)
    return folder


def _variant(src: Path, dst: Path, change) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        table = pq.read_table(f)
        if f.stem in TABLES:
            table = change(f.stem, table)
        pq.write_table(table, dst / f.name, row_group_size=700)
    return dst


def _shuffled(name: str, table: pa.Table) -> pa.Table:
    return table.take(np.random.default_rng(1).permutation(table.num_rows))


def _sparse(name: str, table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("household_id")
    return table.set_column(i, "household_id", pc.multiply(table.column(i), 1_000_003))


def _assess(folder: Path, out: Path, direct_pass: bool, **kw):
    cfg = load_config(None, year=2024, k=["1/3", "1/2"], **kw)
    return assess(folder, cfg, out, backend=DuckDBBackend(direct=direct_pass))


def _same_outputs(a: Path, b: Path) -> None:
    ha = pd.read_parquet(a / "households.parquet").sort_values("household_id", ignore_index=True)
    hb = pd.read_parquet(b / "households.parquet").sort_values("household_id", ignore_index=True)
    pd.testing.assert_frame_equal(ha, hb)
    one = a / "households.parquet"
    schema = pq.read_schema(one if one.is_file() else next(one.iterdir()))
    other = b / "households.parquet"
    # The same types; whether Parquet marks a column 'required' follows the data.
    assert [(f.name, f.type) for f in schema] == \
        [(f.name, f.type) for f in pq.read_schema(other if other.is_file() else next(other.iterdir()))]
    # Counts and labels exactly; ratios to rounding: the figures are float sums over the
    # households in the order the pass gives them (not fixed on either path).
    for name in ("mpi", "fgt", "guarantees", "undp_counties"):
        ta, tb = pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet")
        floats = [c for c in ta.columns if pd.api.types.is_float_dtype(ta[c])]
        pd.testing.assert_frame_equal(ta.drop(columns=floats), tb.drop(columns=floats),
                                      check_exact=True)
        pd.testing.assert_frame_equal(ta[floats], tb[floats], check_exact=False, rtol=1e-12,
                                      atol=0)
    keys = ["village_code", "household_id"]
    pd.testing.assert_frame_equal(pd.read_parquet(a / "monitoring.parquet").sort_values(keys, ignore_index=True),
                                  pd.read_parquet(b / "monitoring.parquet").sort_values(keys, ignore_index=True))


@pytest.fixture
def used(monkeypatch) -> list:
    """Whether each chunk took the direct pass (True) or the grouped SQL (False)."""
    seen: list = []
    real = direct.household_rows

    def spy(backend, plan):
        view = real(backend, plan)
        seen.append(view is not None)
        return view

    monkeypatch.setattr(direct, "household_rows", spy)
    return seen


@pytest.mark.parametrize("chunk,profile", [(None, "china"), (700, "china"), (700, "global_mpi")])
def test_direct_pass_gives_the_grouped_results(register, tmp_path, monkeypatch, used, chunk,
                                               profile):
    if chunk:
        monkeypatch.setattr(engine, "CHUNK_HOUSEHOLDS", chunk)
    _assess(register, tmp_path / "sql", False, profile=profile)
    assert used == []
    _assess(register, tmp_path / "direct", True, profile=profile)
    assert used and all(used)
    _same_outputs(tmp_path / "sql", tmp_path / "direct")


@pytest.mark.parametrize("change", [_shuffled, _sparse], ids=["unsorted", "sparse ids"])
def test_direct_pass_needs_no_order_nor_dense_ids(register, tmp_path, monkeypatch, used, change):
    folder = _variant(register, tmp_path / "in", change)
    monkeypatch.setattr(engine, "CHUNK_HOUSEHOLDS", 1000)
    _assess(folder, tmp_path / "sql", False)
    _assess(folder, tmp_path / "direct", True)
    assert used and all(used)
    _same_outputs(tmp_path / "sql", tmp_path / "direct")


@pytest.mark.parametrize("table", ["households", "conditions"])
def test_duplicates_fall_back_to_the_grouped_sql(register, tmp_path, used, table):
    """Household 3 listed twice, or its conditions of 2024 twice: the joins give two
    rows, which the direct pass cannot."""
    def twice(name: str, t: pa.Table) -> pa.Table:
        if name != table:
            return t
        again = pc.equal(t.column("household_id"), 3)
        if name == "conditions":
            again = pc.and_(again, pc.equal(t.column("year"), 2024))
        return pa.concat_tables([t, t.filter(again)])

    folder = _variant(register, tmp_path / "in", twice)
    _assess(folder, tmp_path / "sql", False)
    _assess(folder, tmp_path / "direct", True)
    assert used == [False]
    _same_outputs(tmp_path / "sql", tmp_path / "direct")
    hh = pd.read_parquet(tmp_path / "direct" / "households.parquet")
    assert (hh["household_id"] == 3).sum() == 2


def test_a_sum_beyond_64_bits_falls_back(tmp_path):
    from ecpa.measure.engine import make_plan
    backend = DuckDBBackend()
    big = 2**62
    pq.write_table(pa.table({"household_id": [1, 1, 2], "year": pa.array([2024] * 3, pa.int16()),
                             "source": ["wages"] * 3, "amount_fen": [big, big, 5]}),
                   tmp_path / "incomes.parquet")
    backend.register_parquet("incomes", tmp_path / "incomes.parquet")
    plan = make_plan(load_config(None, year=2024))
    rows = backend.arrow(engine.figures_sql(engine.income_rows_sql(plan),
                                            engine.income_figures(plan), grouped=False))
    pos = np.array([0, 0, 1], dtype=np.int64)
    assert direct._reduced(rows, pos, engine.income_figures(plan), 2) is None
    ok = direct._reduced(rows.slice(1), pos[1:], engine.income_figures(plan), 2)
    assert ok[0].to_pylist() == [big, 5]
