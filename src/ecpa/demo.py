"""The demo: a database with a synthetic poor county, users for each role, and every part
of the platform at work in it — the marketplace, traceability, the service stations,
campaigns, the programs, the cooperative, livelihoods, targeting cases, grievances and
expert advice, the ledger's income written back into the register, the assessment.

Everything after the register's import goes through the use-case functions
(``demo_market``, ``demo_programs``), so building the demo exercises the real paths."""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select

from .config import get_settings, reset_settings, write_default_config
from .db import dispose_engines, session_scope, upgrade
from .demo_market import World, actors, build_market, household_ids
from .demo_programs import build_cases, build_programs, build_voices, write_income
from .measure.models import MonitoringProposal
from .people.access import system_actor
from .people.models import Role
from .people.service import create_user
from .regions.models import Region
from .regions.service import import_regions_csv, load_official, set_poor
from .registry.importer import import_register
from .registry.models import Household, MeasureKind
from .registry.service import assign_measure

DEMO_PASSWORD = "ecpa-demo-2026"

# A county profile in the shape measurement and the model recommender will read.
CHENG_COUNTY_PROFILE = {
    "industries": ["walnut", "Chinese prickly ash", "edible fungus", "traditional medicine"],
    "specialty_products": ["成县核桃", "紫皮大蒜"],
    "infrastructure": {"hardened_road_villages_pct": 100, "broadband_villages_pct": 98,
                       "tap_water_pct": 93},
    "logistics": {"county_warehouse": True, "township_stations_pct": 100,
                  "village_stations_pct": 85, "express_to_village_days": 2},
}


def build_demo(database: Path, households: int = 3000, seed: int = 1,
               console: Console | None = None) -> list[tuple[str, str, str, str]]:
    """Rebuild ``database`` as a demo and return the logins (role, user, password, scope)."""
    from .synth import synth_county, write_regions, write_register

    console = console or Console()
    if not get_settings().secret_key and not os.environ.get("ECPA_SECRET_KEY"):
        path = write_default_config()
        console.print(f"wrote {path} with a new secret key for personal data")
    database = database.resolve()
    dispose_engines()
    for suffix in ("", "-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    os.environ["ECPA_DATABASE_URL"] = url
    reset_settings()
    upgrade(url)
    actor = system_actor("demo")
    county = synth_county(seed=seed, households=households, year=DEMO_YEAR)
    regions_csv = database.with_name(database.stem + "-regions.csv")
    register = database.with_name(database.stem + "-register.csv")
    write_regions(county.regions, regions_csv)
    write_register(county.rows, register)
    with session_scope(url) as s:
        n = load_official(s)
        console.print(f"loaded {n} official provinces, prefectures and counties")
        added, errors = import_regions_csv(s, actor, regions_csv.read_text(encoding="utf-8"))
        if errors:
            raise RuntimeError(f"demo regions are invalid: {errors[:3]}")
        set_poor(s, actor, county.county_code, True)
        s.get(Region, county.county_code).profile = CHENG_COUNTY_PROFILE
        console.print(f"{county.county_name}: {added} townships and villages")
    with session_scope(url) as s:
        result = import_register(s, actor, register)
        if result.error_count:
            raise RuntimeError(f"demo register is invalid: {result.errors[:3]}")
        console.print(f"imported {result.households_created} households, "
                      f"{result.members_created} members from {register.name}")
    with session_scope(url) as s:
        _assign_measures(s, actor, seed)
    villages = sorted(r["code"] for r in county.regions
                      if len(r["code"]) == 12 and r["code"][9:] != "000")
    first_village = villages[0]
    logins = [
        (Role.ADMINISTRATOR, "admin", None),
        (Role.COUNTY_OFFICER, "officer", county.county_code),
        (Role.VILLAGE_CADRE, "cadre", first_village),
        # A second cadre and the township's office: no user takes two steps of a case in
        # a row, and the township reviews and verifies.
        (Role.VILLAGE_CADRE, "cadre2", first_village),
        (Role.COUNTY_OFFICER, "township", first_village[:9] + "000"),
        (Role.STATION_KEEPER, "keeper", first_village),
        (Role.COOPERATIVE_MANAGER, "coop", county.county_code),
        (Role.ENTERPRISE, "enterprise", None),
        (Role.CONSUMER, "consumer", None),
        (Role.ANALYST, "analyst", None),
    ]
    out = []
    with session_scope(url) as s:
        for role, name, region in logins:
            create_user(s, actor, name, DEMO_PASSWORD, role, region, display_name=name)
            scope = "nationwide"
            if region:
                scope = f"{region} {s.get(Region, region).name}"
            out.append((role.value, name, DEMO_PASSWORD, scope))
    world = _world(url, county.county_code, first_village, seed)
    # The marketplace, the programs and the casework, through their use cases.
    build_market(world)
    build_programs(world)
    build_cases(world)
    build_voices(world)
    write_income(world)
    with session_scope(url) as s:
        # The county measured from the live register (with the income the ledger traced);
        # the households at risk become monitoring proposals and proposed cases.
        from .cases.service import propose_from_assessment
        from .measure.service import assess_region
        officer = world.officer
        result, _ = assess_region(s, officer, county.county_code, DEMO_YEAR)
        made = propose_from_assessment(s, officer, county.county_code, DEMO_YEAR)
        proposed = s.scalar(select(func.count()).select_from(MonitoringProposal))
        m = result.mpi[(result.mpi["level"] == "total") & result.mpi["subgroup"].isna()].iloc[0]
        f = result.fgt[(result.fgt["level"] == "total") & result.fgt["subgroup"].isna()].iloc[0]
        console.print(f"assessed {DEMO_YEAR}: {f['headcount_ratio']:.1%} of persons under the "
                      f"{f['line_yuan']:,.0f}-yuan line; MPI H {m['H']:.1%}, M0 {m['M0']:.4f} "
                      f"(driven by {m['drivers']}); {proposed} monitoring proposals")
        world.note(f"cases: {'; '.join(world.ids['cases']) or 'none'} in the first village; "
                   f"{made['monitoring_entry']} monitoring-entry and {made['exit']} exit cases "
                   "proposed from the assessment")
    with session_scope(url) as s:
        from .quality.service import run_region
        record, _ = run_region(s, world.officer, county.county_code, DEMO_YEAR, xlsx=False)
        world.note(f"data quality: {record.findings} findings on the villages' worklists")
    console.print("the demo county holds:")
    for line in world.notes:
        console.print(f"  • {line}")
    return out


def _world(url: str, county_code: str, village: str, seed: int) -> World:
    rng = random.Random(seed)
    households, in_village = household_ids(url, village)
    a = actors(county_code, village)
    return World(url=url, year=DEMO_YEAR, county=county_code, township=village[:9] + "000",
                 village=village, households=households, village_households=in_village,
                 rng=rng, **a)


DEMO_YEAR = 2024  # the year of the synthetic register's incomes and conditions


def _assign_measures(session, actor, seed: int) -> None:
    """Help measures for about a third of the households, each with a cadre."""
    from sqlalchemy import select

    rng = random.Random(seed)
    cadres = ["王建国", "李红梅", "张志强", "赵丽华", "陈卫东", "刘秀英"]
    kinds = [MeasureKind.INDUSTRY, MeasureKind.ECOMMERCE, MeasureKind.EMPLOYMENT,
             MeasureKind.EDUCATION, MeasureKind.HEALTH, MeasureKind.FINANCE]
    notes = {
        MeasureKind.INDUSTRY: "walnut orchard inputs through the cooperative",
        MeasureKind.ECOMMERCE: "online shop training; products listed in the county pavilion",
        MeasureKind.EMPLOYMENT: "job at the county e-commerce park",
        MeasureKind.EDUCATION: "school subsidy for children",
        MeasureKind.HEALTH: "family doctor contract; serious-illness insurance",
        MeasureKind.FINANCE: "small no-collateral loan, 50,000 yuan",
    }
    ids = session.scalars(select(Household.id).order_by(Household.id)).all()
    for hid in ids:
        if rng.random() < 0.35:
            kind = rng.choice(kinds)
            assign_measure(session, actor, hid, kind, rng.choice(cadres),
                           date(2018, 1, 1) + timedelta(days=rng.randrange(0, 2000)), notes[kind])
