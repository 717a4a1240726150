"""Impact evaluation: the estimators reproduce the NSW experimental benchmark and move the
non-experimental CPS comparison towards it (LaLonde 1986; Dehejia and Wahba 1999), recover
a known effect on simulated panels, and answer through the API and the CLI from a registry
with a program effect planted in its incomes (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from conftest import COUNTY, PW, VILLAGE_A, login, make_id, write_csv
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecpa.db import session_scope
from ecpa.errors import InvalidInput
from ecpa.evaluate import impact, service
from ecpa.evaluate.panel import Treatment, panel_from_tables, simulate

# The Dehejia-Wahba covariates of the propensity score for the CPS comparison.
DW = ["age", "age2", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75", "u74", "u75"]
BENCHMARK = 1794.34


def _nsw(df: pd.DataFrame) -> pd.DataFrame:
    d = df.reset_index(drop=True).copy()
    for c in ("re74", "re75", "re78"):
        d[c] = d[c].astype("float64")
    d["age2"] = d["age"].astype(float) ** 2
    d["u74"] = (d["re74"] == 0).astype(float)
    d["u75"] = (d["re75"] == 0).astype(float)
    return d


@pytest.fixture(scope="module")
def nsw():
    from causaldata import nsw_mixtape
    return _nsw(nsw_mixtape.load_pandas().data)


@pytest.fixture(scope="module")
def nsw_cps(nsw):
    from causaldata import cps_mixtape
    return _nsw(pd.concat([nsw[nsw["treat"] == 1], cps_mixtape.load_pandas().data]))


# ------------------------------------------------------------------ NSW validation


def test_experimental_benchmark_is_reproduced_exactly(nsw):
    # causaldata's nsw_mixtape is the Dehejia-Wahba subsample of LaLonde's NSW men:
    # 185 treated, 260 experimental controls.  Published benchmark: $1,794 (SE 633),
    # Dehejia and Wahba (1999), JASA 94(448), Table 3 ("NSW" row), the difference in mean
    # 1978 earnings (the data as used in Cunningham, Causal Inference: The Mixtape, ch. 5).
    # Published to the dollar; pinned here to the cent: 6,349.14 - 4,554.80 = 1,794.34.
    assert (nsw["treat"] == 1).sum() == 185 and (nsw["treat"] == 0).sum() == 260
    e = impact.difference_in_means(nsw, "re78", "treat")
    assert round(e.estimate, 2) == BENCHMARK
    assert round(e.estimate) == 1794
    assert round(e.details["se_homoskedastic"]) == 633        # DW's (conventional) SE
    assert e.covers(BENCHMARK) and e.ci[0] > 0


def test_naive_cps_comparison_is_strongly_negative(nsw_cps):
    # DW 1999 Table 3, CPS-1 (15,992 men), unadjusted difference: -$8,498 (SE 712).
    e = impact.difference_in_means(nsw_cps, "re78", "treat")
    assert e.n_control == 15992 and e.n_treated == 185
    assert round(e.estimate) == -8498
    assert round(e.details["se_homoskedastic"]) == 712
    assert e.ci[1] < -7000


@pytest.mark.parametrize("method", ["psm", "ipw"])
def test_matching_and_weighting_move_the_cps_estimate_to_the_benchmark(nsw_cps, method):
    # With DW's covariates the literature's propensity-score estimates on CPS-1 are
    # roughly $1,500-1,800 against the $1,794 benchmark.  Ours (1-NN matching with
    # replacement on the min-max common support; ATT weights): about $1,984 (SE 805) and
    # $1,715 (SE 733); docs/evaluation.md keeps the figures.  The exact figure depends on
    # choices (neighbours, trimming, the logit's terms), so the test asserts what is
    # defensible: far from the naive -8,498, within $1,000 of the benchmark, the benchmark
    # inside the 95% interval, and covariates balanced after adjustment.
    naive = impact.difference_in_means(nsw_cps, "re78", "treat").estimate
    if method == "psm":
        e = impact.psm(nsw_cps, "re78", "treat", DW)
        assert e.estimate == pytest.approx(1984, abs=1)
    else:
        e = impact.ipw(nsw_cps, "re78", "treat", DW)
        assert e.estimate == pytest.approx(1715, abs=1)
    assert abs(e.estimate - BENCHMARK) < 1000 < abs(naive - BENCHMARK)
    assert e.covers(BENCHMARK)
    assert e.ci[0] > naive
    smd = pd.DataFrame(e.balance).set_index("covariate")
    assert smd["smd_before"].abs().max() > 1.0           # earnings, marriage: far apart
    assert smd["smd_after"].abs().max() < 0.15           # balanced after adjustment
    o = e.overlap
    assert o["treated"]["n"] == 185 and o["control"]["n"] == 15992
    # A few treated men have scores above every CPS man's: outside the common support.
    assert 0 < o["treated_outside_control_range"] == o["dropped_treated"] < 20
    assert o["control"]["p50"] < 0.01 < o["treated"]["p50"]
    d = e.as_dict()
    assert d["ci95"][0] < d["estimate"] < d["ci95"][1] and d["caveats"]


def test_psm_standard_error_is_abadie_imbens_and_more_neighbours_change_little(nsw_cps):
    one = impact.psm(nsw_cps, "re78", "treat", DW, neighbours=1)
    five = impact.psm(nsw_cps, "re78", "treat", DW, neighbours=5)
    assert "Abadie-Imbens" in one.se_method
    assert five.n_control > one.n_control and five.se < one.se
    assert abs(five.estimate - BENCHMARK) < 1000 and five.covers(BENCHMARK)


# ------------------------------------------------------------------ simulated panels


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_estimators_recover_a_known_effect_on_simulated_panels(seed):
    sim = simulate(seed=seed, households=2000, effect_yuan=300.0)
    panel = panel_from_tables(sim.tables, sim.participation, sim.baseline, sim.followup)
    answer = service.estimate(panel, "income_pc")
    # Selection on observables: the naive comparison is far off (about +1,000 yuan).
    assert answer["naive_difference"]["estimate"] > 600
    got = {e["method"].split(" (")[0]: e for e in answer["estimates"]}
    assert set(got) == {"difference in differences", "propensity-score matching",
                        "inverse-probability weighting"}
    for e in got.values():
        low, high = e["ci95"]
        assert low <= 300 <= high, e
        assert abs(e["estimate"] - 300) < 3 * e["se"]
    assert got["difference in differences"]["se"] < 60          # household effects removed
    psm = got["propensity-score matching"]
    assert max(abs(r["smd_after"]) for r in psm["balance"]) < 0.1
    assert answer["excluded"] == {"no_members": 0, "missing_income": 0, "treated_by_baseline": 0}


def test_poverty_outcome_and_village_clusters():
    sim = simulate(seed=4, households=1500, effect_yuan=800.0)
    panel = panel_from_tables(sim.tables, sim.participation, sim.baseline, sim.followup,
                              line="cn_rural")
    answer = service.estimate(panel, "poor", cluster="village")
    for e in answer["estimates"]:
        assert -1 <= e["estimate"] <= 0.0 + 3 * e["se"]
        assert math.isfinite(e["se"]) and e["se"] > 0
    did = answer["estimates"][0]
    assert "village" in did["se_method"] and "20 clusters" in did["se_method"]


def test_panel_definitions():
    """Per-capita income, the poverty line, who is treated and who is left out."""
    hh = pd.DataFrame({"household_id": [1, 2, 3, 4, 5], "village_code": [VILLAGE_A] * 5,
                       "size": [2, 1, 3, 1, 1]})
    members = pd.DataFrame([
        {"household_id": h, "relation": "head" if k == 0 else "child",
         "sex": "female" if h == 2 else "male", "birth_date": date(1970, 1, 1),
         "education": "primary", "health": "healthy", "disability": "none",
         "labour_ability": "ordinary"}
        for h, n in [(1, 2), (2, 1), (3, 3), (4, 1), (5, 1)] for k in range(n)])
    incomes = pd.DataFrame([
        {"household_id": h, "year": y, "source": "wages", "amount_fen": a}
        for h, y, a in [(1, 2023, 600_000), (1, 2024, 1_000_000), (2, 2023, 300_000),
                        (2, 2024, 500_000), (3, 2023, 900_000), (3, 2024, 1_500_000),
                        (4, 2023, 100_000), (5, 2024, 100_000)]])
    conditions = pd.DataFrame({"household_id": [1], "year": [2023], "internet_access": [True]})
    part = pd.DataFrame({"household_id": [1, 3], "start_date": [date(2024, 5, 1), date(2022, 1, 1)]})
    panel = panel_from_tables({"households": hh, "members": members, "incomes": incomes,
                               "conditions": conditions}, part, 2023, 2024)
    c = panel.cross.set_index("household_id")
    assert list(c.index) == [1, 2]                      # 3 treated before; 4, 5 lack a year
    assert panel.excluded == {"no_members": 0, "missing_income": 2, "treated_by_baseline": 1}
    assert c.loc[1, "income_pc_base"] == 3000 and c.loc[1, "income_pc_follow"] == 5000
    assert c.loc[1, "treated"] == 1 and c.loc[2, "treated"] == 0
    # China's rural line carried forward from 2020 (4,000 yuan at current prices or so).
    line = panel.line["2023"]
    assert c.loc[1, "poor_base"] == int(3000 < line) and c.loc[2, "poor_follow"] == int(5000 < line)
    assert c.loc[1, "internet_access"] == 1 and c.loc[2, "internet_access"] == 0
    assert c.loc[2, "head_female"] == 1 and c.loc[1, "head_age"] == 53
    assert sorted(panel.long["year"].unique()) == [2023, 2024]
    assert panel.long.set_index(["household_id", "year"]).loc[(1, 2024), "d"] == 1


def test_bad_requests_are_named():
    with pytest.raises(InvalidInput):
        Treatment()
    with pytest.raises(InvalidInput, match="unknown help-measure kind"):
        Treatment(measure_kind="magic")
    assert Treatment.parse("program:3").program_id == 3
    assert Treatment.parse("ecommerce").measure_kind == "ecommerce"
    sim = simulate(seed=1, households=200)
    panel = panel_from_tables(sim.tables, sim.participation, sim.baseline, sim.followup)
    with pytest.raises(InvalidInput, match="unknown outcome"):
        service.estimate(panel, "happiness")
    with pytest.raises(InvalidInput, match="unknown method"):
        service.estimate(panel, methods=["rdd"])
    with pytest.raises(InvalidInput, match="trim rule"):
        service.estimate(panel, methods=["ipw"], trim="0.7")


# ------------------------------------------------------------------ end to end


def _register_rows(sim, year: int) -> list[dict]:
    """The simulated households as rows of the register file, for one year."""
    t = sim.tables
    inc = t["incomes"][t["incomes"]["year"] == year].pivot(
        index="household_id", columns="source", values="amount_fen")
    cond = t["conditions"][t["conditions"]["year"] == year].set_index("household_id")
    hh = t["households"].set_index("household_id")
    rows = []
    for m in t["members"].itertuples(index=False):
        row = {"household_number": f"62122109{m.household_id:04d}", "name": f"成员{m.member_id}",
               "id_number": make_id(m.birth_date, m.member_id % 499, m.sex == "male"),
               "relation": m.relation, "education": m.education, "health": m.health,
               "disability": m.disability, "labour_ability": m.labour_ability}
        if m.relation == "head":
            h = m.household_id
            row.update(village_code=hh.loc[h, "village_code"], year=str(year),
                       **{f"income_{s}": f"{int(inc.loc[h, s]) / 100:.2f}" for s in inc.columns},
                       housing_safe="yes" if cond.loc[h, "housing_safe"] else "no",
                       internet_access="yes" if cond.loc[h, "internet_access"] else "no",
                       toilet=cond.loc[h, "toilet"])
        rows.append(row)
    return rows


HEADER = ["household_number", "village_code", "year", "income_wages", "income_farming_business",
          "income_transfers", "housing_safe", "internet_access", "toilet", "name", "id_number",
          "relation", "education", "health", "disability", "labour_ability"]
EFFECT = 1000.0


@pytest.fixture
def registry(db_url, tmp_path):
    """240 households of the demo township over 2023-2024; a buy-back program in 2024
    whose participants gained 1,000 yuan per person (planted in their incomes), and the
    same households on an e-commerce help measure."""
    from sqlalchemy import select

    from ecpa.people.access import system_actor
    from ecpa.people.models import Role
    from ecpa.people.service import create_user
    from ecpa.programs.farming import RUNNING_CHICKENS, create_program, enrol
    from ecpa.registry.importer import import_register
    from ecpa.registry.models import (
        Household,
        MeasureKind,
        Organisation,
        OrganisationKind,
    )
    from ecpa.registry.service import assign_measure

    sim = simulate(seed=11, households=240, effect_yuan=EFFECT, villages=2, county=COUNTY)
    actor = system_actor("test")
    with session_scope(db_url) as s:
        for year in (2023, 2024):
            report = import_register(s, actor, write_csv(tmp_path / f"r{year}.csv",
                                                         _register_rows(sim, year), HEADER))
            assert not report.errors, report.errors[:3]
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="跑步鸡合作社",
                            credit_code="93621221MA7K123451", region_code=COUNTY)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add_all([coop, ent])
        s.flush()
        program = create_program(s, actor, **RUNNING_CHICKENS, start_date=date(2024, 3, 1),
                                 cooperative_id=coop.id, enterprise_id=ent.id)
        ids = dict(s.execute(select(Household.number, Household.id)).all())
        for hid in sim.participation["household_id"]:
            h = ids[f"62122109{hid:04d}"]
            enrol(s, actor, program.id, h, 10, date(2024, 3, 1))
            assign_measure(s, actor, h, MeasureKind.ECOMMERCE, "张干部", date(2024, 3, 1))
        create_user(s, actor, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, actor, "analyst", PW, Role.ANALYST, COUNTY)
        create_user(s, actor, "cadre_a", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, actor, "other", PW, Role.COUNTY_OFFICER, "621222")
        program_id = program.id
    from ecpa.api.app import create_app
    return TestClient(create_app()), program_id, len(sim.participation)


def test_api_estimates_the_planted_program_effect(registry):
    client, program_id, n_treated = registry
    body = {"region": COUNTY, "program_id": program_id, "baseline": 2023, "followup": 2024}
    r = client.post("/api/evaluate/impact", json=body, headers=login(client, "officer"))
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["treated"] == n_treated and a["treated"] + a["comparison"] == 240
    assert a["outcome"] == "income_pc" and not a["errors"]
    assert a["naive_difference"]["estimate"] > EFFECT + 200       # selection inflates it
    est = {e["method"].split(" (")[0]: e for e in a["estimates"]}
    did = est["difference in differences"]
    assert did["ci95"][0] <= EFFECT <= did["ci95"][1]
    assert abs(did["estimate"] - EFFECT) < 250
    for name in ("propensity-score matching", "inverse-probability weighting"):
        e = est[name]
        assert e["ci95"][0] <= EFFECT <= e["ci95"][1], e
        assert {"covariate", "smd_before", "smd_after"} <= set(e["balance"][0])
        assert {"treated", "control", "share_treated_outside_support", "rule"} <= set(e["overlap"])
        assert any("unconfoundedness" in c for c in e["caveats"])
    assert any("parallel trends" in c for c in did["caveats"])

    # The same households through their help measures; the analyst may ask too.
    r = client.post("/api/evaluate/impact", headers=login(client, "analyst"),
                    json={"region": COUNTY, "measure_kind": "ecommerce", "baseline": 2023,
                          "followup": 2024, "methods": ["did"], "outcome": "poor",
                          "cluster": "village"})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["treated"] == n_treated and a["outcome"] == "poor"
    did = a["estimates"][0]
    assert -1 <= did["estimate"] <= 1 and did["se"] >= 0
    assert any("only 2 clusters" in c for c in did["caveats"])


def test_api_checks_role_scope_and_input_and_the_cli(registry):
    client, program_id, _ = registry
    body = {"region": COUNTY, "program_id": program_id, "baseline": 2023, "followup": 2024}
    assert client.post("/api/evaluate/impact", json=body).status_code == 401
    r = client.post("/api/evaluate/impact", json=body, headers=login(client, "cadre_a"))
    assert r.status_code == 403
    r = client.post("/api/evaluate/impact", json=body, headers=login(client, "other"))
    assert r.status_code == 403 and "outside your scope" in r.json()["message"]
    h = login(client, "officer")
    r = client.post("/api/evaluate/impact", json={**body, "measure_kind": "ecommerce"}, headers=h)
    assert r.status_code == 422
    r = client.post("/api/evaluate/impact", json={**body, "followup": 2023}, headers=h)
    assert r.status_code == 422
    r = client.post("/api/evaluate/impact", json={**body, "program_id": 999}, headers=h)
    assert r.status_code == 422 and "no farming program 999" in r.json()["message"]
    r = client.post("/api/evaluate/impact", json={**body, "baseline": 2019, "followup": 2020},
                    headers=h)
    assert r.status_code == 422 and "too few households" in r.json()["message"]

    # The command line (the same database, the operator's own rights).
    from ecpa.cli import app
    res = CliRunner().invoke(app, ["evaluate", "impact", "--region", COUNTY, "--program",
                                   str(program_id), "--baseline", "2023", "--followup", "2024"])
    assert res.exit_code == 0, res.output
    for text in ("difference in differences", "propensity-score matching",
                 "inverse-probability weighting", "naive", "DiD", "PSM", "IPW", "95% CI",
                 "Abadie-Imbens", "overlap", "balance"):
        assert text in res.output, text
    res = CliRunner().invoke(app, ["evaluate", "impact", "--region", COUNTY, "--baseline", "2023",
                                   "--followup", "2024"])
    assert res.exit_code == 1 and "name one treatment" in res.output


def test_the_impact_report_renders_on_the_web_and_as_excel_and_pdf(registry):
    import io
    import re
    import zipfile
    client, program_id, _ = registry
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text).group(1)
    client.post("/signin", data={"username": "officer", "password": PW, "csrf": csrf})
    q = {"region": COUNTY, "program_id": program_id, "baseline": 2023, "followup": 2024}
    page = client.get("/reports/impact", params=q, headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "帮扶有效吗" in page.text
    assert "DiD" in page.text and "PSM" in page.text and "对照组平衡性" in page.text
    book = zipfile.ZipFile(io.BytesIO(client.get("/reports/impact", params=q | {"fmt": "xlsx"}).content))
    assert {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"} <= set(book.namelist())
    assert client.get("/reports/impact", params=q | {"fmt": "pdf"}).content.startswith(b"%PDF")
