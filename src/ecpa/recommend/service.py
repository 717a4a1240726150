"""Scoring a county's profile against the models of the knowledge base.

A profile (the JSON kept in ``Region.profile``, or a file) is read into capabilities
between 0 and 1; a model's score is the weighted share of its needs the county meets; a
model whose required needs are not met is halved and its missing needs are named as the
gaps to close first (seed 004 §4.4).  The answer ranks the development models (seed 001
Table I) and, separately, the organisational arrangements (seed 004 §3), because a county
chooses both: what to build on, and who organises it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import InvalidInput

REQUIRED_BAR = 0.5  # a capability at or above this counts as present


def _num(profile: dict, *path, default=0.0) -> float:
    value = profile
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    raise InvalidInput(f"profile field {'.'.join(path)} must be a number or true/false, got {value!r}",
                       field=".".join(path))


def _share(x: float) -> float:
    return max(0.0, min(1.0, x))


def capabilities(profile: dict) -> dict[str, float]:
    """What the county has, each between 0 and 1, and how it is read from the profile."""
    population = max(_num(profile, "population", default=1.0), 1.0)
    villages = max(_num(profile, "villages", default=1.0), 1.0)
    specialty = 1.0 if profile.get("specialty_products") else 0.0
    cooperatives = _share(_num(profile, "cooperatives") / villages)  # one a village is full
    express_days = _num(profile, "logistics", "express_to_village_days", default=7.0)
    logistics = (_num(profile, "logistics", "county_warehouse")
                 + _share(_num(profile, "logistics", "village_stations_pct") / 100)
                 + _share(2.0 / max(express_days, 1.0))) / 3
    gov = profile.get("government") or {}
    return {
        "specialty_product": specialty,
        "no_specialty": 1.0 - specialty,
        "traditional_industry": 1.0 if profile.get("traditional_industry") else 0.0,
        "broadband": _share(_num(profile, "infrastructure", "broadband_villages_pct") / 100),
        "logistics": logistics,
        "cold_chain": _num(profile, "logistics", "cold_chain"),
        "village_service_points": _share(_num(profile, "logistics", "village_stations_pct") / 100),
        # One online shop per 100 people is a county of e-commerce entrepreneurs.
        "entrepreneurs": _share(_num(profile, "online_shops") / (population / 100)),
        # Five people trained per 1,000 is a county that trains.
        "training": _share(_num(profile, "trained_people") / (population / 1000 * 5)),
        "cooperatives": cooperatives,
        "weak_cooperatives": 1.0 - cooperatives,
        "leading_enterprise": _num(profile, "leading_enterprise"),
        "industrial_park": _num(profile, "industrial_park"),
        "government_capacity": (_num(gov, "ecommerce_office") + _num(gov, "demonstration_county")) / 2,
        "public_ecommerce_company": _num(gov, "public_ecommerce_company"),
        "government_platform": _num(gov, "ecommerce_town"),
        "platform_partner": _num(profile, "platform_partner"),
        "transport_hub": _num(profile, "transport_hub"),
    }


@dataclass(frozen=True)
class Model:
    key: str
    name: str
    name_zh: str
    source: str
    summary: str
    needs: dict[str, float]
    requires: tuple[str, ...]
    extra: dict


@lru_cache(maxsize=4)
def knowledge(path: str | None = None) -> dict[str, list[Model]]:
    text = (Path(path).read_text(encoding="utf-8") if path else
            resources.files(__package__).joinpath("knowledge.toml").read_text(encoding="utf-8"))
    raw = tomllib.loads(text)
    known = set(capabilities({}))
    out: dict[str, list[Model]] = {}
    for group in ("models", "arrangements"):
        out[group] = []
        for key, m in raw.get(group, {}).items():
            unknown = (set(m["needs"]) | set(m.get("requires", []))) - known
            if unknown:
                raise InvalidInput(f"{group}.{key}: unknown need(s) {sorted(unknown)}; known: "
                                   f"{sorted(known)}", field=f"{group}.{key}")
            extra = {k: v for k, v in m.items() if k not in
                     ("name", "name_zh", "source", "summary", "needs", "requires")}
            out[group].append(Model(key, m["name"], m["name_zh"], m["source"], m["summary"],
                                    {k: float(v) for k, v in m["needs"].items()},
                                    tuple(m.get("requires", [])), extra))
    return out


def score(model: Model, caps: dict[str, float]) -> dict:
    total = sum(model.needs.values())
    met = sum(w * caps[n] for n, w in model.needs.items()) / total
    missing = [n for n in model.requires if caps[n] < REQUIRED_BAR]
    value = met * (0.5 if missing else 1.0)
    reasons = sorted((n for n in model.needs if caps[n] >= REQUIRED_BAR),
                     key=lambda n: -model.needs[n] * caps[n])
    gaps = missing + sorted((n for n in model.needs if caps[n] < REQUIRED_BAR and n not in missing),
                            key=lambda n: -model.needs[n])
    return {"key": model.key, "name": model.name, "name_zh": model.name_zh,
            "source": model.source, "summary": model.summary, "score": round(value, 3),
            "reasons": [{"need": n, "have": round(caps[n], 2), "weight": model.needs[n]} for n in reasons],
            "gaps": [{"need": n, "have": round(caps[n], 2), "weight": model.needs.get(n, 0),
                      "required": n in missing} for n in gaps],
            **{k: v for k, v in model.extra.items() if k in ("family", "chain", "leads", "builds_on",
                                                             "lifts_income", "weakness")}}


def recommend(profile: dict, knowledge_file: str | None = None, top: int = 3) -> dict:
    if not isinstance(profile, dict):
        raise InvalidInput("a county profile is a JSON object", field="profile")
    caps = capabilities(profile)
    kb = knowledge(knowledge_file)
    ranked = {group: sorted((score(m, caps) for m in models), key=lambda r: (-r["score"], r["key"]))
              for group, models in kb.items()}
    return {"capabilities": {k: round(v, 2) for k, v in caps.items()},
            "models": ranked["models"][:top], "arrangements": ranked["arrangements"][:top],
            "all_models": [(r["key"], r["score"]) for r in ranked["models"]],
            "note": "No model is copied blindly (seed 004 §4.4): close the gaps first, and "
                    "combine the strengths of several models."}


def recommend_county(session, actor, county_code: str, top: int = 3) -> dict:
    from ..errors import NotFound
    from ..people.access import require_region
    from ..regions.models import Region
    require_region(actor, county_code)
    region = session.get(Region, county_code)
    if region is None:
        raise NotFound(f"no region {county_code}", field="county_code")
    if not region.profile:
        raise InvalidInput(f"{region.name} ({county_code}) has no profile yet: give its specialty "
                           "products, infrastructure, logistics, online shops, cooperatives …",
                           field="profile")
    return {"county_code": county_code, "county": region.name, **recommend(region.profile, top=top)}
