"""The command line end to end: import with a bad file, then a good one, find, status."""

from __future__ import annotations

from typer.testing import CliRunner

from conftest import good_rows, write_csv
from ecpa.cli import app

runner = CliRunner()


def test_import_bad_then_good_then_find_and_status(db_url, tmp_path):
    rows = good_rows()
    rows[0]["income_wages"] = "1,2,3"
    bad = write_csv(tmp_path / "bad.csv", rows)
    r = runner.invoke(app, ["registry", "import", str(bad)])
    assert r.exit_code == 1
    assert "row 2, column income_wages, value '1,2,3'" in r.output
    assert "nothing written" in r.output
    assert (tmp_path / "bad.errors.csv").exists()

    good = write_csv(tmp_path / "good.csv", good_rows())
    r = runner.invoke(app, ["registry", "import", str(good)])
    assert r.exit_code == 0, r.output
    assert "3 created" in r.output
    r = runner.invoke(app, ["registry", "import", str(good)])
    assert r.exit_code == 0 and "0 created, 0 updated, 3 unchanged" in r.output

    r = runner.invoke(app, ["registry", "find", "--status", "monitored"])
    assert r.exit_code == 0 and "6212210003" in r.output and "6212210001" not in r.output
    # A status changes only through a case (ecpa case …), never by a direct command.
    r = runner.invoke(app, ["registry", "status", "6212210003", "exited", "--reason", "x"])
    assert r.exit_code != 0 and "No such command" in r.output
    r = runner.invoke(app, ["registry", "show", "6212210001"])
    assert r.exit_code == 0 and "138****5678" in r.output


def test_every_command_has_help():
    for args in (["--help"], ["registry", "import", "--help"], ["registry", "export", "--help"],
                 ["regions", "import", "--help"], ["synth", "--help"], ["demo", "--help"],
                 ["users", "add", "--help"], ["init", "--help"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Usage" in r.output, args


def test_a_loan_repaid_early_from_the_command_line(db_url, tmp_path):
    """A county officer's loan by CLI: a product that reduces principal on prepayment,
    a loan to a household, its payoff shown, and the payoff repaid closes it."""
    import json

    good = write_csv(tmp_path / "good.csv", good_rows())
    assert runner.invoke(app, ["registry", "import", str(good)]).exit_code == 0
    base = ["loan", "product-add", "microcredit", "--lender", "rural credit cooperative",
            "--rate", "0.0435", "--months", "12", "--max-principal-fen", "5000000",
            "--guarantor", "government:risk fund", "--method", "bullet"]
    r = runner.invoke(app, base + ["--prepayment", "sometimes"])
    assert r.exit_code != 0 and "prepayment must be one of" in r.output and "sometimes" in r.output
    r = runner.invoke(app, base)
    assert r.exit_code == 0 and "loan product 1" in r.output, r.output
    r = runner.invoke(app, ["loan", "grant", "1", "6212210001", "1000000", "--date", "2024-03-01",
                            "--disburse", "--first-due", "2024-04-01"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["loan", "show", "1", "--as-of", "2024-09-01"])
    assert r.exit_code == 0, r.output
    # 10,000 yuan at 4.35 % for the 184 of 365 days it was out: 21,928.77 -> 21,929 fen.
    shown = json.loads(r.output)
    assert shown["payoff_fen"] == 1_021_929 and shown["prepayment"] == "reduce_principal"
    r = runner.invoke(app, ["loan", "repay", "1", "1021929", "--key", "k1", "--date", "2024-09-01"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["loan", "show", "1", "--as-of", "2024-09-02"])
    assert json.loads(r.output)["status"] == "closed"
