"""`ecpa demo --no-serve` builds a working demo: a county, its register, a login per role."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecpa.cli import app


def test_demo_builds_and_serves_the_api(tmp_path, monkeypatch):
    from ecpa.config import reset_settings
    from ecpa.db import dispose_engines
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECPA_SECRET_KEY", raising=False)
    monkeypatch.delenv("ECPA_DATABASE_URL", raising=False)
    monkeypatch.setenv("ECPA_CONFIG", str(tmp_path / "ecpa.toml"))
    reset_settings()
    try:
        r = CliRunner().invoke(app, ["demo", "--no-serve", "--households", "400"])
        assert r.exit_code == 0, r.output
        assert (tmp_path / "ecpa.toml").exists() and (tmp_path / "ecpa-demo.db").exists()
        for role in ("administrator", "county_officer", "village_cadre", "cooperative_manager",
                     "enterprise", "consumer", "analyst"):
            assert role in r.output
        from ecpa.api.app import create_app
        client = TestClient(create_app())
        token = client.post("/api/auth/token", data={"username": "officer",
                                                     "password": "ecpa-demo-2026"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        listed = client.get("/api/households", headers=headers).json()
        assert listed["total"] == 400
        county = client.get("/api/regions/621221", headers=headers).json()
        assert county["name"] == "成县" and county["is_poor"] and len(county["children"]) >= 8
    finally:
        dispose_engines()
        monkeypatch.delenv("ECPA_DATABASE_URL", raising=False)
        reset_settings()
