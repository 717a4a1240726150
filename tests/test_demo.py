"""`ecpa demo --no-serve` builds a working demo: a county, its register, a login per role,
and every part of the platform with something real in it — a pavilion with products, a
traceable batch, a village station with its keeper, paid orders, a settled program, a
case on public notice, income traced to households by channel."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecpa.cli import app

VILLAGE = "621221100001"  # the first village: the cadre's and the keeper's


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
        for role in ("administrator", "county_officer", "village_cadre", "station_keeper",
                     "cooperative_manager", "enterprise", "consumer", "analyst"):
            assert role in r.output
        assert "keeper" in r.output and "assessed 2024" in r.output
        from ecpa.api.app import create_app
        client = TestClient(create_app())

        def login(user: str) -> dict:
            token = client.post("/api/auth/token", data={"username": user,
                                                         "password": "ecpa-demo-2026"}).json()
            return {"Authorization": f"Bearer {token['access_token']}"}

        headers = login("officer")
        listed = client.get("/api/households", headers=headers).json()
        assert listed["total"] == 400
        county = client.get("/api/regions/621221", headers=headers).json()
        assert county["name"] == "成县" and county["is_poor"] and len(county["children"]) >= 8
        _check_populated(client, headers, login("keeper"))
    finally:
        dispose_engines()
        monkeypatch.delenv("ECPA_DATABASE_URL", raising=False)
        reset_settings()


def _check_populated(client: TestClient, officer: dict, keeper: dict) -> None:
    from sqlalchemy import func, select

    from ecpa.db import session_scope
    from ecpa.demo import DEMO_YEAR
    from ecpa.ledger.service import attributed_income
    from ecpa.market.models import Order, OrderState
    from ecpa.people.access import system_actor
    from ecpa.programs import farming
    from ecpa.programs.models import FarmingProgram
    from ecpa.trace.models import Batch

    # The county pavilion, with products from the first village, on the API and the page.
    pavilion = client.get("/api/market/pavilions/621221").json()
    names = {p["name"] for p in pavilion["products"]}
    assert {"成县核桃", "大红袍花椒", "土蜂蜜", "复合肥 15-15-15"} <= names
    assert any(p["category"] == "tourism" for p in pavilion["products"])
    assert any(p["origin_code"] == VILLAGE for p in pavilion["featured"])
    assert all(p["seller"]["poverty_linked"] for p in pavilion["featured"])
    page = client.get("/pavilions/621221")
    assert page.status_code == 200 and "成县核桃" in page.text

    with session_scope() as s:
        # A batch of walnuts from the first village, with its public trace page.
        batch = s.scalar(select(Batch).where(Batch.origin_code == VILLAGE).order_by(Batch.id))
        gtin, lot = batch.gtin, batch.lot
        # Orders paid through the test gateway; most completed (the sellers paid).
        states = dict(s.execute(select(Order.state, func.count()).group_by(Order.state)).all())
        assert states[OrderState.COMPLETED] >= 10 and states.get(OrderState.PAID, 0) >= 1
        assisted = s.scalar(select(func.count()).select_from(Order)
                            .where(Order.assisted_by == "keeper",
                                   Order.state == OrderState.COMPLETED))
        assert assisted >= 1
        # The running chickens, settled.
        program = s.scalar(select(FarmingProgram))
        summary = farming.program_summary(s, system_actor("test"), program.id)
        assert len(summary["enrolments"]) >= 50
        assert all(e["settled"] for e in summary["enrolments"])
        # Income traced to households in the demo year, by channel.
        income = attributed_income(s, DEMO_YEAR)
        channels = {c for by in income.values() for c in by}
        assert {"industry", "employment", "financial", "entrepreneurship"} <= channels
        assert len(income) >= 50

    trace = client.get(f"/trace/01/{gtin}/10/{lot}")
    assert trace.status_code == 200 and "成县核桃" in trace.text

    # The service network: the first village's station and its keeper.
    network = client.get("/api/stations", params={"county": "621221"}, headers=officer).json()
    assert VILLAGE in str(network) and "keeper" in str(network)

    # A case on public notice in the first village, on the notice board.
    board = client.get(f"/api/cases/notices/{VILLAGE}").json()
    assert board["cases"], board
    page = client.get(f"/notices/{VILLAGE}")
    assert page.status_code == 200 and str(board["cases"][0]["case"]) in page.text
    queue = client.get("/api/cases", headers=keeper)
    assert queue.status_code == 200
