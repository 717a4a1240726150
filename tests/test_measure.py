"""Measurement: every measure on a small case worked by hand, the properties of the
Alkire-Foster method (Hypothesis), errors that name the column, survey standard errors,
and the command line."""

from __future__ import annotations

import shutil
from datetime import date
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ecpa.errors import InvalidInput
from ecpa.measure.assess import assess
from ecpa.measure.config import load_config
from ecpa.measure.survey import linearised_se
from ecpa.registry.layout import CONDITIONS, HOUSEHOLDS, INCOMES, MEMBERS

YEAR = 2024
V_A, V_B = "621221100001", "621221100002"

PROFILE = """
name = "hand"
k = ["1/2", "1/4"]

[[indicators]]
name = "housing"
dimension = "living"
weight = "1/2"
when = "NOT housing_safe"

[[indicators]]
name = "toilet"
dimension = "living"
weight = "1/4"
when = "toilet = 'none'"

[[indicators]]
name = "school"
dimension = "education"
weight = "1/4"
level = "member"
rule = "any"
when = "age BETWEEN 6 AND 15 AND schooling = 'dropped_out'"
"""


def write_layout(folder: Path, households: list[dict], members: list[dict],
                 incomes: list[dict], conditions: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows, schema in (("households", households, HOUSEHOLDS), ("members", members, MEMBERS),
                               ("incomes", incomes, INCOMES), ("conditions", conditions, CONDITIONS)):
        pq.write_table(pa.Table.from_pylist(rows, schema), folder / f"{name}.parquet")
    return folder


def _hh(hid, village, status="exited", **kw):
    return {"household_id": hid, "province_code": "620000", "county_code": village[:6],
            "township_code": village[:9] + "000", "village_code": village, "status": status, **kw}


def _member(mid, hid, relation="head", sex="male", born=1970, schooling="not_student", **kw):
    return {"member_id": mid, "household_id": hid, "relation": relation, "sex": sex,
            "birth_date": date(born, 6, 1), "schooling": schooling, "medical_insurance": True,
            "education": "primary", **kw}


def _cond(hid, year=YEAR, housing=True, toilet="sanitary", **kw):
    base = {"household_id": hid, "year": year, "housing_safe": housing, "toilet": toilet,
            "drinking_water_safe": True, "food_secure": True, "clothing_secure": True,
            "cooperative_member": False}
    base.update(kw)
    return base


@pytest.fixture
def hand_case(tmp_path: Path):
    """Four households, ten persons.
    H1 (A, 2 persons): unsafe house (1/2)                -> score 1/2, income 2,000/person
    H2 (A, 3 persons): no toilet (1/4) + child out of school (1/4) -> 1/2, income 4,000
    H3 (B, 1 person):  no toilet (1/4)                   -> 1/4, income 2,400
    H4 (B, 4 persons): nothing                           -> 0,   income 2,000"""
    households = [_hh(1, V_A), _hh(2, V_A), _hh(3, V_B), _hh(4, V_B, status=None)]
    members = [
        _member(1, 1), _member(2, 1, "spouse", "female"),
        _member(3, 2, sex="female"), _member(4, 2, "child", born=YEAR - 12, schooling="dropped_out"),
        _member(5, 2, "child", born=YEAR - 8, schooling="primary"),
        _member(6, 3),
        _member(7, 4), _member(8, 4, "spouse", "female"), _member(9, 4, "child", born=YEAR - 10,
                                                                    schooling="primary"),
        _member(10, 4, "parent", born=1940),
    ]
    incomes = [
        {"household_id": 1, "year": YEAR, "source": "wages", "amount_fen": 400_000},
        {"household_id": 2, "year": YEAR, "source": "wages", "amount_fen": 1_200_000},
        {"household_id": 2, "year": YEAR - 1, "source": "wages", "amount_fen": 2_000_000},
        {"household_id": 3, "year": YEAR, "source": "transfers", "amount_fen": 240_000},
        {"household_id": 4, "year": YEAR, "source": "farming_business", "amount_fen": 500_000},
        {"household_id": 4, "year": YEAR, "source": "wages", "amount_fen": 300_000},
    ]
    conditions = [_cond(1, housing=False), _cond(2, toilet="none"), _cond(3, toilet="none"),
                  _cond(4)]
    folder = write_layout(tmp_path / "in", households, members, incomes, conditions)
    (tmp_path / "hand.toml").write_text(PROFILE)
    (tmp_path / "lines.csv").write_text("name,year,amount_yuan,source\ntest_line,2020,3000,hand case\n")
    return folder, tmp_path


def _cfg(tmp: Path, **kw):
    return load_config(None, year=YEAR, profile=str(tmp / "hand.toml"),
                       lines=["test_line", "cn_rural"], lines_files=[str(tmp / "lines.csv")],
                       levels=["county", "village"], **kw)


def _row(df, level="total", code=None, k=None, subgroup=None, **eq):
    m = (df["level"] == level) & (df["subgroup"].isna() if subgroup is None else df["subgroup"] == subgroup)
    if code is not None:
        m &= df["code"] == code
    if k is not None:
        m &= np.isclose(df["k"], float(k))
    for col, v in eq.items():
        m &= df[col] == v
    rows = df[m]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_alkire_foster_worked_by_hand(hand_case):
    folder, tmp = hand_case
    r = assess(folder, _cfg(tmp), tmp / "out")
    t = _row(r.mpi, k=Fraction(1, 2))
    assert t["population"] == 10 and t["households"] == 4
    assert t["H"] == pytest.approx(0.5) and t["A"] == pytest.approx(0.5)
    assert t["M0"] == pytest.approx(0.25)
    assert t["censored_housing"] == pytest.approx(0.2)
    assert t["censored_toilet"] == pytest.approx(0.3)      # H3 is not poor at k = 1/2
    assert t["uncensored_toilet"] == pytest.approx(0.4)
    assert t["censored_school"] == pytest.approx(0.3)
    assert t["contribution_housing"] == pytest.approx(0.4)
    assert t["contribution_toilet"] == pytest.approx(0.3)
    assert t["drivers"].split(",")[0] == "housing"
    t = _row(r.mpi, k=Fraction(1, 4))                       # a score of exactly 1/4 counts
    assert t["H"] == pytest.approx(0.6)
    assert t["M0"] == pytest.approx(0.275)
    assert t["A"] == pytest.approx(2.75 / 6)
    a = _row(r.mpi, "village", V_A, Fraction(1, 2))
    assert (a["H"], a["M0"]) == (pytest.approx(1.0), pytest.approx(0.5))
    b = _row(r.mpi, "village", V_B, Fraction(1, 2))
    assert b["H"] == 0 and b["M0"] == 0


def test_fgt_guarantees_and_monitoring_by_hand(hand_case):
    folder, tmp = hand_case
    r = assess(folder, _cfg(tmp), tmp / "out")
    f = _row(r.fgt, line="test_line")
    assert f["line_yuan"] == 3000
    assert f["headcount_ratio"] == pytest.approx(0.7)        # H1, H3, H4: 7 of 10 persons
    assert f["poverty_gap"] == pytest.approx((2 / 3 + 0.2 + 4 / 3) / 10)
    assert f["squared_poverty_gap"] == pytest.approx((2 * (1 / 3) ** 2 + 0.2 ** 2 + 4 * (1 / 3) ** 2) / 10)
    assert f["poor_households"] == 3
    hh = pd.read_parquet(tmp / "out" / "households.parquet").set_index("household_id")
    assert hh.loc[1, "g_safe_housing"] == 1 and hh.loc[1, "guarantees_failed"] == 1
    assert hh.loc[2, "g_compulsory_education"] == 1
    assert hh.loc[4, "guarantees_failed"] == 0
    assert (hh.loc[2, "d_toilet"], hh.loc[2, "d_school"], hh.loc[2, "d_housing"]) == (1, 1, 0)
    assert hh.loc[1, "assessed_status"] == "poor"             # under the line and unsafe house
    assert hh.loc[2, "assessed_status"] == "poor"             # fails a guarantee
    # The reasons in words, for the households at risk.
    words = pd.read_csv(tmp / "out" / "monitoring.csv").set_index("household_id")
    assert words.loc[1, "fails"] == "safe_housing"
    assert words.loc[2, "fails"] == "compulsory_education"
    assert pd.isna(words.loc[4, "fails"])
    assert words.loc[2, "deprivations"] == "toilet,school"
    # H2: exited, income fell from 20,000 to 12,000 yuan (-40 %), fails a guarantee.
    assert hh.loc[2, "risk_category"] == "unstable_exited"
    assert set(words.loc[2, "risk_reasons"].split(",")) == {"income_fall", "below_monitoring_line",
                                                          "guarantee_failed"}
    assert hh.loc[2, "income_change"] == pytest.approx(-0.4)
    # H4 is not registered, under 1.5 x the monitoring line: marginal.
    assert hh.loc[4, "risk_category"] == "marginal"
    mon = pd.read_csv(tmp / "out" / "monitoring.csv")
    assert set(mon["household_id"]) == {1, 2, 3, 4} - {
        h for h in hh.index if pd.isna(hh.loc[h, "risk_category"])}
    g = _row(r.guarantees)
    assert g["failing_safe_housing"] == pytest.approx(0.2)
    assert g["failing_compulsory_education"] == pytest.approx(0.3)
    for name in ("households.parquet", "mpi.csv", "fgt.csv", "summary.xlsx", "undp_counties.csv"):
        assert (tmp / "out" / name).exists()


def test_subgroups_add_up_to_the_total(hand_case):
    folder, tmp = hand_case
    r = assess(folder, _cfg(tmp), tmp / "out")
    for k in (Fraction(1, 2), Fraction(1, 4)):
        total = _row(r.mpi, k=k)
        for sub in ("head_sex", "head_age_group", "disability"):
            parts = r.mpi[(r.mpi["subgroup"] == sub) & (r.mpi["level"] == "total")
                          & np.isclose(r.mpi["k"], float(k))]
            assert parts["population"].sum() == total["population"]
            assert (parts["population"] / total["population"] * parts["M0"]).sum() == \
                pytest.approx(total["M0"])


def test_changes_between_two_years(hand_case, tmp_path):
    folder, tmp = hand_case
    cond = pq.read_table(folder / "conditions.parquet").to_pylist()
    # The year before, H4's house was unsafe too.
    cond += [_cond(1, YEAR - 1, housing=False), _cond(2, YEAR - 1, toilet="none"),
             _cond(3, YEAR - 1, toilet="none"), _cond(4, YEAR - 1, housing=False)]
    pq.write_table(pa.Table.from_pylist(cond, CONDITIONS), folder / "conditions.parquet")
    r = assess(folder, _cfg(tmp, compare_year=YEAR - 1), tmp / "out")
    c = r.changes[(r.changes["level"] == "total") & r.changes["subgroup"].isna()
                  & np.isclose(r.changes["k"], 0.5)].iloc[0]
    # Before: H1, H2, H4 poor (9 persons) -> M0 = (2*.5 + 3*.5 + 4*.5)/10 = 0.45 (H2's
    # child was a year younger, still of school age).
    assert c["M0_before"] == pytest.approx(0.45)
    assert c["M0"] == pytest.approx(0.25)
    assert c["M0_change"] == pytest.approx(-0.2)
    assert c["M0_relative"] == pytest.approx(-0.2 / 0.45)
    assert c["M0_annualised"] == pytest.approx(-0.2)


# ------------------------------------------------------------ Hypothesis properties

def _random_case(folder: Path, deprivations: list[list[bool]], sizes: list[int]) -> None:
    households, members, conditions = [], [], []
    mid = 0
    for i, (d, n) in enumerate(zip(deprivations, sizes), start=1):
        households.append(_hh(i, V_A if i % 2 else V_B))
        for j in range(n):
            mid += 1
            members.append(_member(mid, i, "head" if j == 0 else "child",
                                   sex="male" if i % 3 else "female",
                                   born=YEAR - 10 if (j == 1 and d[2]) else 1970,
                                   schooling="dropped_out" if (j == 1 and d[2]) else "not_student"))
        conditions.append(_cond(i, housing=not d[0], toilet="none" if d[1] else "sanitary"))
    write_layout(folder, households, members, [], conditions)


cases = st.integers(min_value=2, max_value=12).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=n, max_size=n),
    st.lists(st.integers(min_value=2, max_value=5), min_size=n, max_size=n)))


def _run(tmp: Path, tag: str, deprivations, sizes, k: list[str]):
    folder = tmp / f"in_{tag}"
    _random_case(folder, deprivations, sizes)
    cfg = load_config(None, year=YEAR, profile=str(tmp / "hand.toml"), k=k, lines=["cn_rural"],
                      levels=["village"])
    return assess(folder, cfg, tmp / f"out_{tag}")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases, data=st.data())
def test_af_properties(hand_case, case, data):
    _, tmp = hand_case
    deprivations, sizes = case
    weights = [0.5, 0.25, 0.25]
    r = _run(tmp, "p", deprivations, sizes, ["1/4", "1/2", "1"])
    persons = np.array(sizes, dtype=float)
    score = np.array([sum(w for w, x in zip(weights, d) if x) for d in deprivations])
    for k in (0.25, 0.5, 1.0):
        t = _row(r.mpi, k=k)
        # M0 = H x A
        if t["H"] > 0:
            assert t["M0"] == pytest.approx(t["H"] * t["A"])
        else:
            assert t["M0"] == 0
        # The definition, computed independently.
        poor = score >= k
        note(f"k={k} score={score} mpi={r.mpi[(r.mpi.level == 'total') & r.mpi.subgroup.isna()][['k', 'H', 'M0']].values.tolist()}")
        assert t["H"] == pytest.approx((persons * poor).sum() / persons.sum())
        assert t["M0"] == pytest.approx((persons * poor * score).sum() / persons.sum())
        # Subgroup (village) decomposition adds up.
        parts = r.mpi[(r.mpi["level"] == "village") & r.mpi["subgroup"].isna()
                      & np.isclose(r.mpi["k"], k)]
        assert (parts["population"] / t["population"] * parts["M0"]).sum() == pytest.approx(t["M0"])
    # k at the smallest weight is the union approach, k = 1 the intersection approach.
    union = _row(r.mpi, k=0.25)
    assert union["H"] == pytest.approx((persons * np.array([any(d) for d in deprivations])).sum()
                                       / persons.sum())
    inter = _row(r.mpi, k=1.0)
    assert inter["H"] == pytest.approx((persons * np.array([all(d) for d in deprivations])).sum()
                                       / persons.sum())
    # Raising a deprivation never lowers M0.
    i = data.draw(st.integers(0, len(deprivations) - 1))
    j = data.draw(st.integers(0, 2))
    raised = [list(d) for d in deprivations]
    raised[i][j] = True
    r2 = _run(tmp, "q", raised, sizes, ["1/4", "1/2", "1"])
    for k in (0.25, 0.5, 1.0):
        assert _row(r2.mpi, k=k)["M0"] >= _row(r.mpi, k=k)["M0"] - 1e-12


# ------------------------------------------------------------------------ errors

def test_missing_and_malformed_columns_are_named(hand_case):
    folder, tmp = hand_case
    t = pq.read_table(folder / "members.parquet").drop_columns(["birth_date"])
    pq.write_table(t, folder / "members.parquet")
    c = pq.read_table(folder / "conditions.parquet")
    c = c.set_column(c.schema.get_field_index("housing_safe"), "housing_safe",
                     pa.array(["yes"] * len(c)))
    pq.write_table(c, folder / "conditions.parquet")
    with pytest.raises(InvalidInput) as e:
        assess(folder, _cfg(tmp), tmp / "out")
    msg = e.value.message
    assert "members.parquet: column birth_date is missing (required)" in msg
    assert "conditions.parquet: column housing_safe has type string, expected bool" in msg
    assert not (tmp / "out" / "mpi.csv").exists()


def test_a_rule_failing_on_the_data_leaves_no_output(hand_case):
    folder, tmp = hand_case
    first = assess(folder, _cfg(tmp), tmp / "out")
    assert first.households == 4
    (tmp / "cast.toml").write_text(PROFILE.replace("toilet = 'none'", "CAST(toilet AS INTEGER) > 0"))
    cfg = load_config(None, year=YEAR, profile=str(tmp / "cast.toml"), lines=["cn_rural"],
                      levels=["village"])
    with pytest.raises(InvalidInput, match="the assessment failed on the data: .*sanitary"):
        assess(folder, cfg, tmp / "out")
    # The earlier results are untouched and no staging folder is left behind.
    assert pd.read_parquet(tmp / "out" / "mpi.parquet")["level"].isin(["county"]).any()
    assert not (tmp / ".out.partial").exists()


def test_a_rule_failing_in_a_later_chunk_stops_the_lanes_and_leaves_no_output(tmp_path,
                                                                            monkeypatch):
    """The failure comes from a chunk computed on a lane (not the first chunk): it is
    reported as the data's fault and the staging folder is removed."""
    from ecpa.measure import engine
    from ecpa.synth import stream_parquet
    stream_parquet(tmp_path / "reg", 3000, seed=3, counties=8)
    last = pq.read_table(tmp_path / "reg" / "households.parquet",
                         columns=["household_id"]).column(0).to_pylist()[-1]
    (tmp_path / "late.toml").write_text(PROFILE.replace(
        "toilet = 'none'",
        f"CAST(CASE WHEN household_id = {last} THEN toilet ELSE '1' END AS INTEGER) > 0"))
    cfg = load_config(None, year=YEAR, profile=str(tmp_path / "late.toml"), lines=["cn_rural"])
    monkeypatch.setattr(engine, "CHUNK_HOUSEHOLDS", 700)
    with pytest.raises(InvalidInput, match="the assessment failed on the data"):
        assess(tmp_path / "reg", cfg, tmp_path / "out")
    assert not (tmp_path / ".out.partial").exists() and not (tmp_path / "out").exists()


def test_household_pass_in_chunks_gives_the_same_results(tmp_path, monkeypatch):
    from ecpa.measure import engine
    from ecpa.synth import stream_parquet
    stream_parquet(tmp_path / "reg", 3000, seed=3, counties=8)
    cfg = load_config(None, year=2024, k=["1/3", "1/2"])
    whole = assess(tmp_path / "reg", cfg, tmp_path / "whole")
    monkeypatch.setattr(engine, "CHUNK_HOUSEHOLDS", 700)
    chunked = assess(tmp_path / "reg", cfg, tmp_path / "chunked")
    assert (tmp_path / "chunked" / "households.parquet" / "part-0004.parquet").exists()
    pd.testing.assert_frame_equal(whole.mpi, chunked.mpi)
    pd.testing.assert_frame_equal(whole.fgt, chunked.fgt)
    a = pd.read_parquet(tmp_path / "whole" / "households.parquet").sort_values("household_id")
    b = pd.read_parquet(tmp_path / "chunked" / "households.parquet").sort_values("household_id")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_sums_by_region_number_equal_sums_by_region_codes(tmp_path, monkeypatch):
    """DuckDB sums each household at its region's number (``regions_sql``); grouping the
    same households by their codes and fact patterns (the Spark route) gives the same
    figures at every level — a household without a village code included."""
    from ecpa.measure import engine
    from ecpa.synth import stream_parquet
    stream_parquet(tmp_path / "reg", 2000, seed=5, counties=6)
    path = tmp_path / "reg" / "households.parquet"
    table = pq.read_table(path)
    village = table.column("village_code").to_pylist()
    village[7] = village[1500] = None
    table = table.set_column(table.schema.get_field_index("village_code"), "village_code",
                             pa.array(village, pa.string()))
    pq.write_table(table, path)
    cfg = load_config(None, year=2024, k=["1/3", "1/2"])
    monkeypatch.setattr(engine, "CHUNK_HOUSEHOLDS", 600)
    numbered = assess(tmp_path / "reg", cfg, tmp_path / "numbered")
    monkeypatch.setattr(engine.DuckDBBackend, "sums_in_engine", True)
    by_codes = assess(tmp_path / "reg", cfg, tmp_path / "by_codes")
    for name in ("mpi", "fgt", "guarantees"):
        pd.testing.assert_frame_equal(getattr(numbered, name), getattr(by_codes, name))
    # The households without a village code make one village row and still count in
    # their own counties, which differ.
    counties = table.column("county_code").to_pylist()
    assert counties[7] != counties[1500]
    fgt = numbered.fgt[numbered.fgt["subgroup"].isna()]
    villages = fgt[fgt["level"] == "village"].drop_duplicates("code")
    assert len(villages) == len(set(village))
    assert villages.loc[villages["code"].isna(), "households"].tolist() == [2]
    by_county = fgt[fgt["level"] == "county"].drop_duplicates("code").set_index("code")
    assert by_county["households"].to_dict() == pd.Series(counties).value_counts().to_dict()


@pytest.mark.parametrize("chunk", [None, 700])
def test_figures_do_not_depend_on_the_order_of_the_households(tmp_path, monkeypatch, chunk):
    """The same register with its households in another order (as another export, or
    the engine's threads, give them) yields the same figures to the last bit: sums of
    floating-point amounts (weights times gaps) are taken in household order."""
    from ecpa.measure import engine
    from ecpa.synth import stream_parquet
    stream_parquet(tmp_path / "reg", 3000, seed=11, counties=4)
    shutil.copytree(tmp_path / "reg", tmp_path / "shuffled")
    table = pq.read_table(tmp_path / "reg" / "households.parquet")
    rng = np.random.default_rng(3)
    pq.write_table(table.take(pa.array(rng.permutation(table.num_rows))),
                   tmp_path / "shuffled" / "households.parquet")
    if chunk:
        monkeypatch.setattr(engine, "CHUNK_HOUSEHOLDS", chunk)
    cfg = load_config(None, year=2024, k=["1/3", "1/2"])
    first = assess(tmp_path / "reg", cfg, tmp_path / "a")
    second = assess(tmp_path / "shuffled", cfg, tmp_path / "b")
    for name in ("mpi", "fgt", "guarantees"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name),
                                      check_exact=True)
    # Gaps are fractions: the FGT sums are ones whose order matters.
    assert first.fgt["squared_poverty_gap"].gt(0).any()


def test_column_mapping_for_a_survey(hand_case):
    folder, tmp = hand_case
    t = pq.read_table(folder / "households.parquet").rename_columns(
        ["hhid" if n == "household_id" else n for n in HOUSEHOLDS.names])
    pq.write_table(t, folder / "households.parquet")
    with pytest.raises(InvalidInput, match="households.parquet: column household_id is missing"):
        assess(folder, _cfg(tmp), tmp / "out")
    r = assess(folder, _cfg(tmp, mapping={"households": {"household_id": "hhid"}}), tmp / "out")
    assert _row(r.mpi, k=0.5)["M0"] == pytest.approx(0.25)


def test_bad_rules_and_weights_are_refused(tmp_path):
    bad = PROFILE.replace("toilet = 'none'", "toilets = 'none'")
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(InvalidInput, match=r"indicator toilet\.when: unknown column\(s\) toilets"):
        assess(tmp_path, load_config(None, year=YEAR, profile=str(tmp_path / "bad.toml")), tmp_path / "o")
    (tmp_path / "w.toml").write_text(PROFILE.replace('weight = "1/2"', 'weight = "1/3"'))
    with pytest.raises(InvalidInput, match="weights add up to 5/6"):
        load_config(None, year=YEAR, profile=str(tmp_path / "w.toml"))
    (tmp_path / "q.toml").write_text(PROFILE.replace("NOT housing_safe", "(SELECT 1)"))
    with pytest.raises(InvalidInput, match="must be an expression, not a query"):
        assess(tmp_path, load_config(None, year=YEAR, profile=str(tmp_path / "q.toml")), tmp_path / "o")


def test_poverty_lines_table(tmp_path):
    from ecpa.measure.lines import PovertyLines
    lines = PovertyLines.load()
    assert lines.value("cn_rural", 2010).amount_fen == 230_000
    assert lines.value("cn_rural", 2019).amount_yuan == 3218
    assert lines.value("cn_rural", 2024).year == 2020        # carried forward
    with pytest.raises(InvalidInput, match="no value for 2015"):
        lines.value("cn_monitoring", 2015)
    bad = tmp_path / "l.csv"
    bad.write_text("name,year,amount_yuan,source\nmine,2024,12.345,x\nok,20x4,100,y\n")
    with pytest.raises(InvalidInput) as e:
        PovertyLines.load(bad)
    assert "row 2, column amount_yuan: '12.345'" in e.value.message
    assert "row 3, column year: '20x4'" in e.value.message
    own = tmp_path / "own.csv"
    own.write_text("name,year,amount_yuan,source\ngansu_monitoring,2024,7000,province\n")
    assert PovertyLines.load(own).value("gansu_monitoring", 2025).amount_fen == 700_000


# ------------------------------------------------------------------- survey design

def test_linearised_se_of_a_proportion():
    """Simple random sample, one person per household: the linearised SE of H is the
    textbook sqrt(p (1 - p) / (n - 1))."""
    rng = np.random.default_rng(3)
    y = (rng.random(200) < 0.3).astype(float)
    x = np.ones(200)
    dom = pd.Series([""] * 200)
    one = pd.Series(["s"] * 200)
    se = linearised_se(y, x, dom, one, pd.Series(np.arange(200).astype(str)))
    p = y.mean()
    assert se[""] == pytest.approx(np.sqrt(p * (1 - p) / 199))


def test_survey_weights_and_clusters(hand_case):
    folder, tmp = hand_case
    t = pq.read_table(folder / "households.parquet")
    t = t.append_column("wt", pa.array([2.0, 1.0, 1.0, 1.0])).append_column(
        "psu", pa.array(["c1", "c1", "c2", "c2"]))
    pq.write_table(t, folder / "households.parquet")
    r = assess(folder, _cfg(tmp, survey={"weight": "wt", "cluster": "psu"}), tmp / "out")
    tot = _row(r.mpi, k=0.5)
    # H1 counts twice: poor persons 2*2 + 3 = 7 of 2*2 + 3 + 1 + 4 = 12.
    assert tot["H"] == pytest.approx(7 / 12)
    assert tot["se_H"] > 0 and tot["ci_low_H"] < tot["H"] < tot["ci_high_H"]
    # Two clusters, one all poor and one all non-poor: z sums are +/- equal.
    z1 = (7 - 7 / 12 * 7) / 12
    assert tot["se_H"] == pytest.approx(np.sqrt(2 * (z1 ** 2 + z1 ** 2)))
    f = _row(r.fgt, line="test_line")
    # Income poverty on the 3,000-yuan line: H1 (2 persons x 2), H3 (1), H4 (4) -> 9 of 12.
    assert f["headcount_ratio"] == pytest.approx(9 / 12)
    assert f["se_headcount_ratio"] > 0
    assert f["ci_low_headcount_ratio"] < f["headcount_ratio"] < f["ci_high_headcount_ratio"]


# --------------------------------------------------------------------- command line

def test_cli_assess_on_synthetic_register(tmp_path):
    from ecpa.cli import app
    from ecpa.synth import stream_parquet
    stream_parquet(tmp_path / "reg", 3000, seed=5, counties=20)
    res = CliRunner().invoke(app, ["assess", str(tmp_path / "reg"), str(tmp_path / "out"),
                                   "--year", "2024", "--k", "1/3,1/2"])
    assert res.exit_code == 0, res.output
    assert "3,000 households assessed" in res.output
    mpi = pd.read_parquet(tmp_path / "out" / "mpi.parquet")
    assert set(mpi["level"]) == {"total", "province", "county", "township", "village"}
    undp = pd.read_csv(tmp_path / "out" / "undp_counties.csv")
    assert len(undp) == 20 and list(undp["rank"]) == list(range(1, 21))
    assert undp["composite"].is_monotonic_increasing
    assert undp["weakest"].str.split(",").str.len().eq(3).all()
    res = CliRunner().invoke(app, ["assess", str(tmp_path / "nothing"), str(tmp_path / "o2"),
                                   "--year", "2024"])
    assert res.exit_code == 2 and "is not a folder of Parquet files" in " ".join(res.output.split())
    (tmp_path / "gansu.csv").write_text("name,year,amount_yuan,source\n"
                                        "gansu_monitoring,2023,6900,provincial line\n")
    res = CliRunner().invoke(app, ["assess", str(tmp_path / "reg"), str(tmp_path / "o3"),
                                   "--year", "2024", "--profile", "global_mpi",
                                   "--lines-file", str(tmp_path / "gansu.csv"),
                                   "--lines", "gansu_monitoring,wb_extreme_2017ppp"])
    assert res.exit_code == 0, res.output
    fgt = pd.read_csv(tmp_path / "o3" / "fgt.csv")
    assert set(fgt["line"]) == {"gansu_monitoring", "wb_extreme_2017ppp"}
    assert set(fgt.loc[fgt["line"] == "gansu_monitoring", "line_yuan"]) == {6900}


# ------------------------------------------------------------------------- Spark

@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    import os
    if not shutil.which("java"):
        if os.environ.get("CI"):
            pytest.fail("java is needed for the Spark path in CI")
        pytest.skip("no java: Spark path not tested")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master("local[2]").appName("ecpa-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _same(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> None:
    a = a.sort_values(keys, na_position="first").reset_index(drop=True)
    b = b.sort_values(keys, na_position="first").reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        if pd.api.types.is_numeric_dtype(a[c]) and pd.api.types.is_numeric_dtype(b[c]):
            np.testing.assert_allclose(a[c].astype(float), b[c].astype(float), rtol=1e-9,
                                       atol=1e-12, err_msg=c)
        else:
            assert a[c].fillna("").astype(str).tolist() == b[c].fillna("").astype(str).tolist(), c


def test_spark_gives_the_same_numbers_as_duckdb(spark, tmp_path):
    from ecpa.measure.engine import SparkBackend
    from ecpa.synth import stream_parquet
    stream_parquet(tmp_path / "reg", 2000, seed=11, counties=6)
    cfg = load_config(None, year=2024, k=["1/3", "1/2"], compare_year=2023)
    duck = assess(tmp_path / "reg", cfg, tmp_path / "duck")
    sp = assess(tmp_path / "reg", cfg, tmp_path / "spark", engine="spark",
                backend=SparkBackend(spark))
    keys = ["level", "code", "subgroup", "subgroup_value"]
    _same(duck.mpi, sp.mpi, keys + ["k"])
    _same(duck.fgt, sp.fgt, keys + ["line"])
    _same(duck.guarantees, sp.guarantees, keys)
    _same(duck.undp, sp.undp, ["county_code"])
    _same(duck.changes, sp.changes, keys + ["k"])
    assert duck.monitoring_count == sp.monitoring_count > 0
    hd = pd.read_parquet(tmp_path / "duck" / "households.parquet")
    hs = pd.read_parquet(tmp_path / "spark" / "households.parquet")
    _same(hd, hs[hd.columns], ["household_id"])
