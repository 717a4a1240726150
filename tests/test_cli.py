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
