"""`ecpa scenario` replays seed 000's programs with the paper's parameters, and the
programs' commands (`ecpa farm`, `ecpa loan`) work end to end."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import COUNTY
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecpa.cli import app
from ecpa.programs.scenario import run

runner = CliRunner()


def _fen(text: str) -> int:
    return int(Decimal(text.replace(",", "")) * 100)


def test_running_chickens_reproduce_the_papers_figures(tmp_path):
    r = run("chickens", households=60, seed=3, workdir=tmp_path)
    for row in r.rows:  # each household: what was bought back less the advance
        bought, birds = row["bought back"], row["birds"]
        gain = bought * 10_000 - birds * 7_000
        assert _fen(row["net gain"]) == max(gain, 0)  # a failed flock is covered, not in debt
    gains = [_fen(row["net gain"]) for row in r.rows]
    per_bird = sum(gains) / sum(row["birds"] for row in r.rows)
    assert 2_500 < per_bird < 3_000  # "about 30 yuan" a bird, less the birds that died
    assert sum(gains) / len(gains) > 300_000  # "more than 3,000 yuan" a household
    assert r.totals["households"] == "60"
    assert _fen(r.totals["bought back"]) - _fen(r.totals["advanced"]) + _fen(
        r.totals["covered by the guarantee"]) == _fen(r.totals["paid out"])


def test_farming_costs_nothing_and_the_yanling_loans(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "y").mkdir()
    f = run("farming", households=40, workdir=tmp_path / "f")
    per_mu = _fen(f.comparison[0][2].split()[0]) / 100
    assert 85 <= per_mu <= 92  # the paper: 90 yuan a mu, direct and indirect
    for row in f.rows:
        assert _fen(row["premium"]) == row["jin"] * 3  # 3 fen a jin over the market
    y = run("loans", households=40, workdir=tmp_path / "y")
    assert y.totals["loans closed at harvest"] == "40"
    for row in y.rows:
        loan = _fen(row["loan"])
        assert loan == row["mu"] * 20_000
        # Bullet: 8 months at 4.35 % a year, simple interest, to the fen.
        assert _fen(row["interest"]) == int(Decimal(loan) * Decimal("0.0435") * 8 / 12
                                            + Decimal("0.5"))
        assert _fen(row["repaid"]) == loan + _fen(row["interest"])
        assert _fen(row["paid out"]) == _fen(row["proceeds"]) - _fen(row["repaid"])


def test_scenario_command_prints_households_totals_and_the_paper():
    r = runner.invoke(app, ["scenario", "chickens", "--households", "20", "--rows", "2"])
    assert r.exit_code == 0, r.output
    assert "assumptions" in r.output and "gain per bird" in r.output
    assert "18 more households" in r.output
    r = runner.invoke(app, ["scenario", "sheep"])
    assert r.exit_code != 0 and "chickens, farming, loans" in r.output


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_farm_and_loan_commands(db_url, register_file):
    from ecpa.db import session_scope
    from ecpa.people.access import system_actor
    from ecpa.programs.models import LoanRepayment
    from ecpa.registry.importer import import_register
    from ecpa.registry.models import Household, Organisation, OrganisationKind
    with session_scope(db_url) as s:
        import_register(s, system_actor("t"), register_file)
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="合作社",
                            credit_code="93621221MA7K123451", region_code=COUNTY)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add_all([coop, ent])
        s.flush()
        number = s.scalars(select(Household.number).order_by(Household.number)).first()
        ids = coop.id, ent.id

    def ok(*args):
        r = runner.invoke(app, list(args))
        assert r.exit_code == 0, r.output
        return r.output

    assert "farming program 1" in ok("farm", "create", "--preset", "running-chickens",
                                     "--cooperative-id", str(ids[0]), "--enterprise-id",
                                     str(ids[1]), "--start", "2024-03-01")
    ok("farm", "enrol", "1", number, "100", "--date", "2024-03-01")
    ok("loan", "product-add", "chicken loan", "--lender", "credit coop", "--rate", "0.0435",
       "--months", "6", "--method", "bullet", "--max-principal-fen", "5000000",
       "--guarantor", "government:county fund")
    assert "active" in ok("loan", "grant", "1", number, "200000", "--date", "2024-03-01",
                          "--repay-from-program", "1", "--disburse", "--first-due", "2024-03-08")
    assert "10000 fen" in ok("farm", "buy-back", "1", number, "100", "A", "--key", "d1",
                             "--date", "2024-08-08")
    out = ok("farm", "settle", "1", "--date", "2024-08-08")
    # Owed 3,000 yuan; the bullet loan takes 2,000 + 6 months' interest (43.50).
    assert "204350" in out and "paid 95650 fen" in out
    assert '"status": "closed"' in ok("loan", "show", "1", "--as-of", "2024-08-09")
    assert "PAR1 0.0000" in ok("loan", "portfolio", "--as-of", "2024-08-09")
    bad = runner.invoke(app, ["loan", "repay", "1", "100", "--key", "k", "--date", "2024-08-10"])
    assert bad.exit_code == 2 and "closed" in bad.output
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(LoanRepayment)) == 1
