"""The model recommender: the papers' own counties put their own model first; reasons and
gaps; the knowledge base is a file an expert edits (a bad edit is named); API and CLI."""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import pytest
from conftest import COUNTY, PW, login
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecpa.errors import InvalidInput
from ecpa.recommend.service import capabilities, recommend

EXAMPLES = tomllib.loads(resources.files("ecpa.recommend").joinpath("examples.toml")
                         .read_text(encoding="utf-8"))


@pytest.mark.parametrize("county", sorted(EXAMPLES))
def test_each_papers_county_gets_its_own_model_first(county):
    profile = EXAMPLES[county]
    result = recommend(profile)
    if "model" in profile:
        assert result["models"][0]["key"] == profile["model"], result["all_models"]
    else:
        assert result["arrangements"][0]["key"] == profile["arrangement"]


def test_reasons_and_gaps_for_a_county_that_lacks_what_a_model_needs():
    # Longnan's profile without its government's e-commerce office and demonstration
    # status: the Longnan model is still relevant (walnuts) but the missing government
    # capacity is named as the gap to close first.
    weak = dict(EXAMPLES["longnan"], government={})
    result = recommend(weak, top=7)
    longnan = next(m for m in result["models"] if m["key"] == "longnan")
    assert longnan["gaps"][0] == {"need": "government_capacity", "have": 0.0, "weight": 3.0,
                                  "required": True}
    assert longnan["score"] < recommend(EXAMPLES["longnan"])["models"][0]["score"] / 1.5
    assert {"need": "specialty_product", "have": 1.0, "weight": 3.0} in longnan["reasons"]


def test_bad_profiles_and_knowledge_are_named(tmp_path):
    with pytest.raises(InvalidInput, match="online_shops must be a number"):
        capabilities({"online_shops": "many"})
    bad = tmp_path / "kb.toml"
    bad.write_text('[models.x]\nname="x"\nname_zh="x"\nsource="s"\nsummary="s"\n'
                   '[models.x.needs]\nmagic = 1\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"models.x: unknown need\(s\) \['magic'\]"):
        recommend({}, knowledge_file=str(bad))


def test_recommendation_for_a_county_over_http_and_cli(db_url, tmp_path):
    from ecpa.api.app import create_app
    from ecpa.cli import app
    from ecpa.db import session_scope
    from ecpa.people.access import system_actor
    from ecpa.people.models import Role
    from ecpa.people.service import create_user
    from ecpa.regions.models import Region
    with session_scope(db_url) as s:
        create_user(s, system_actor("t"), "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        s.get(Region, COUNTY).profile = {k: v for k, v in EXAMPLES["longnan"].items() if k != "model"}
    client = TestClient(create_app())
    r = client.get(f"/api/recommend/counties/{COUNTY}", headers=login(client, "officer"))
    assert r.status_code == 200 and r.json()["models"][0]["key"] == "longnan"
    assert client.get("/api/recommend/counties/621222", headers=login(client, "officer")).status_code == 403
    out = CliRunner().invoke(app, ["recommend", COUNTY])
    assert out.exit_code == 0 and "Longnan model" in out.output
    profile = tmp_path / "shaji.json"
    profile.write_text(json.dumps(EXAMPLES["shaji"]), encoding="utf-8")
    out = CliRunner().invoke(app, ["recommend", "--profile", str(profile)])
    assert out.exit_code == 0 and "Shaji model" in out.output.split("\n")[3]
