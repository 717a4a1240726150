"""The registry's panel of households over years, for impact evaluation.

Built from the de-identified Parquet layout of the registry (``registry/layout.py``): the
live database of a region is exported to a temporary folder with the actor's scope checks
(as measurement does), and a national export or ``ecpa synth --parquet`` folder is read the
same way.  Participation in the evaluated program comes from the database: enrolments in
a farming program (``programs.models.Enrolment``) or help measures of a kind
(``registry.models.HelpMeasure``).

One row per household and year (``Panel.long``) holds per-capita income (the sum of the
year's income records over the household's members, yuan) and income poverty (below the
year's poverty line); one row per household (``Panel.cross``) holds the treatment, the
outcomes at baseline and follow-up and the baseline characteristics used for matching and
weighting.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role

EVALUATORS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.ANALYST)
OUTCOMES = ("income_pc", "poor")

# Years of schooling of the registry's education levels (for the head's education).
EDUCATION_YEARS = {"preschool": 0, "illiterate": 0, "primary": 6, "junior_secondary": 9,
                   "senior_secondary": 12, "vocational": 12, "college": 15}
ABLE = ("skilled", "ordinary")
CONDITION_COVARIATES = ("housing_safe", "drinking_water_safe", "road_access", "internet_access",
                        "cooperative_member", "tap_water")
HOUSEHOLD_COVARIATES = ("size", "head_age", "head_female", "head_education_years",
                        "labour_share", "children_share", "elderly_share", "disability",
                        "chronic_illness")


@dataclass(frozen=True)
class Treatment:
    """What is evaluated: a farming program (by id) or a kind of help measure.  A
    household's participation starts on its enrolment date, or on the start date of its
    first help measure of the kind."""

    program_id: int | None = None
    measure_kind: str | None = None

    def __post_init__(self) -> None:
        if (self.program_id is None) == (self.measure_kind is None):
            raise InvalidInput("name one treatment: a program id or a help-measure kind",
                               field="treatment")
        if self.measure_kind is not None:
            from ..registry.models import MeasureKind
            kinds = [k.value for k in MeasureKind]
            if self.measure_kind not in kinds:
                raise InvalidInput(f"unknown help-measure kind {self.measure_kind!r}; known: "
                                   + ", ".join(kinds), field="treatment", value=self.measure_kind)

    @classmethod
    def parse(cls, spec: str) -> Treatment:
        """``program:3`` or ``measure:ecommerce`` (a bare number is a program id)."""
        kind, _, value = spec.partition(":")
        if not value:
            kind, value = ("program", kind) if kind.isdigit() else ("measure", kind)
        if kind == "program":
            if not value.isdigit():
                raise InvalidInput(f"program id {value!r} is not a number", field="treatment")
            return cls(program_id=int(value))
        if kind == "measure":
            return cls(measure_kind=value)
        raise InvalidInput(f"treatment {spec!r}: use program:ID or measure:KIND", field="treatment")

    @property
    def label(self) -> str:
        return (f"program:{self.program_id}" if self.program_id is not None
                else f"measure:{self.measure_kind}")


@dataclass
class Panel:
    long: pd.DataFrame
    cross: pd.DataFrame
    covariates: list[str]
    baseline: int
    followup: int
    treatment: str
    line: dict
    excluded: dict = field(default_factory=dict)

    def summary(self) -> dict:
        t = self.cross["treated"].astype(bool)
        return {"treatment": self.treatment, "baseline": self.baseline,
                "followup": self.followup, "households": len(self.cross),
                "treated": int(t.sum()), "comparison": int((~t).sum()),
                "excluded": self.excluded, "poverty_line": self.line,
                "covariates": self.covariates}


def participation(session, treatment: Treatment, household_ids: list[int] | None = None) -> pd.DataFrame:
    """household_id, start_date: when each household began to take part."""
    from sqlalchemy import func, select

    from ..programs.models import Enrolment, FarmingProgram
    from ..registry.models import HelpMeasure, MeasureKind

    if treatment.program_id is not None:
        if session.get(FarmingProgram, treatment.program_id) is None:
            raise InvalidInput(f"no farming program {treatment.program_id}",
                               field="treatment", value=treatment.program_id)
        stmt = (select(Enrolment.household_id, func.min(Enrolment.enrolled_on))
                .where(Enrolment.program_id == treatment.program_id)
                .group_by(Enrolment.household_id))
    else:
        stmt = (select(HelpMeasure.household_id, func.min(HelpMeasure.start_date))
                .where(HelpMeasure.kind == MeasureKind(treatment.measure_kind))
                .group_by(HelpMeasure.household_id))
    rows = session.execute(stmt).all()
    df = pd.DataFrame(rows, columns=["household_id", "start_date"])
    if household_ids is not None:
        df = df[df["household_id"].isin(set(household_ids))]
    return df


def build_panel(session, actor: Actor, region: str, treatment: Treatment, baseline: int,
                followup: int, line: str = "cn_rural") -> Panel:
    """The panel of a region (a county or below, within the actor's scope) from the live
    database, through the de-identified Parquet export."""
    from ..registry.exporter import export_parquet

    require_role(actor, *EVALUATORS)
    require_region(actor, region)
    _check_years(baseline, followup)
    with tempfile.TemporaryDirectory(prefix="ecpa-evaluate-") as tmp:
        n = export_parquet(session, actor, Path(tmp), region)
        if n == 0:
            raise InvalidInput(f"no households registered in region {region}",
                               field="region", value=region)
        tables = read_tables(Path(tmp))
    part = participation(session, treatment, tables["households"]["household_id"].tolist())
    audit(session, actor, "evaluate_panel", "region", None,
          {"region": region, "treatment": treatment.label, "baseline": baseline,
           "followup": followup, "households": n})
    return panel_from_tables(tables, part, baseline, followup, treatment.label, line)


def read_tables(directory: Path) -> dict[str, pd.DataFrame]:
    """The four tables of a Parquet export (``registry/layout.py``)."""
    out = {}
    for name in ("households", "members", "incomes", "conditions"):
        path = Path(directory) / f"{name}.parquet"
        if not path.exists():
            raise InvalidInput(f"{path} is missing: not a registry export", file=str(path))
        out[name] = pd.read_parquet(path)
    return out


def _check_years(baseline: int, followup: int) -> None:
    if not (1990 <= baseline < followup <= 2100):
        raise InvalidInput(f"baseline {baseline} must come before follow-up {followup}",
                           field="baseline")


def _bool(s: pd.Series) -> pd.Series:
    return s.astype("boolean").fillna(False).astype(float)


def panel_from_tables(tables: dict[str, pd.DataFrame], part: pd.DataFrame, baseline: int,
                      followup: int, treatment: str = "treatment", line: str = "cn_rural",
                      lines=None) -> Panel:
    """The panel from the registry's tables and the participation dates.

    Treated: households whose participation began after the baseline year and no later
    than the follow-up year.  Households that had begun by the baseline year are left out
    (treated in both years); households that began later, or never, are the comparison
    group.  Households without income records in either year are left out."""
    from ..measure.lines import PovertyLines

    _check_years(baseline, followup)
    lines = lines or PovertyLines.load()
    line_fen = {y: lines.value(line, y).amount_fen for y in (baseline, followup)}
    hh = tables["households"][["household_id", "village_code", "size"]].copy()
    hh["size"] = hh["size"].astype(int)
    excluded = {"no_members": int((hh["size"] <= 0).sum())}
    hh = hh[hh["size"] > 0]

    inc = tables["incomes"]
    inc = inc[inc["year"].isin([baseline, followup])]
    total = (inc.groupby(["household_id", "year"])["amount_fen"].sum().unstack("year")
             .reindex(columns=[baseline, followup]))
    have = total.notna().all(axis=1)
    complete = set(total.index[have])
    excluded["missing_income"] = int((~hh["household_id"].isin(complete)).sum())
    hh = hh[hh["household_id"].isin(complete)]

    start = part.copy()
    start["start_year"] = pd.to_datetime(start["start_date"]).dt.year
    start = start.groupby("household_id")["start_year"].min()
    hh["start_year"] = hh["household_id"].map(start)
    already = hh["start_year"] <= baseline
    excluded["treated_by_baseline"] = int(already.sum())
    hh = hh[~already]
    hh["treated"] = ((hh["start_year"] > baseline) & (hh["start_year"] <= followup)).astype(int)

    cross = hh.set_index("household_id")
    for year, tag in ((baseline, "base"), (followup, "follow")):
        pc = total.loc[cross.index, year] / cross["size"] / 100.0
        cross[f"income_pc_{tag}"] = pc
        cross[f"poor_{tag}"] = (pc * 100.0 < line_fen[year]).astype(int)
    cross = cross.join(_member_covariates(tables["members"], baseline), how="left")
    cond = tables["conditions"]
    cond = cond[cond["year"] == baseline].set_index("household_id")
    for c in CONDITION_COVARIATES:
        col = cond[c] if c in cond.columns else pd.Series(dtype="boolean")
        cross[c] = _bool(col.reindex(cross.index))
    cross["toilet_sanitary"] = (cond["toilet"].reindex(cross.index) == "sanitary").astype(float) \
        if "toilet" in cond.columns else 0.0
    for c in HOUSEHOLD_COVARIATES:
        if c in cross.columns:
            cross[c] = cross[c].astype(float).fillna(cross[c].astype(float).median())
    cross = cross.reset_index()
    cross["income_pc"] = cross["income_pc_follow"]
    cross["poor"] = cross["poor_follow"]
    covariates = (list(HOUSEHOLD_COVARIATES) + list(CONDITION_COVARIATES)
                  + ["toilet_sanitary", "income_pc_base"])

    rows = []
    for year, tag in ((baseline, "base"), (followup, "follow")):
        part_y = cross[["household_id", "village_code", "treated",
                        f"income_pc_{tag}", f"poor_{tag}"]].rename(
            columns={f"income_pc_{tag}": "income_pc", f"poor_{tag}": "poor"})
        part_y["year"] = year
        part_y["d"] = part_y["treated"] * int(year == followup)
        rows.append(part_y)
    long = pd.concat(rows, ignore_index=True)
    return Panel(long=long, cross=cross, covariates=covariates, baseline=baseline,
                 followup=followup, treatment=treatment,
                 line={"name": line, **{str(y): v / 100 for y, v in line_fen.items()}},
                 excluded=excluded)


def _member_covariates(members: pd.DataFrame, baseline: int) -> pd.DataFrame:
    m = members.copy()
    birth = pd.to_datetime(m["birth_date"])
    m["age"] = baseline - birth.dt.year
    g = m.groupby("household_id")
    size = g.size()
    out = pd.DataFrame(index=size.index)
    head = m[m["relation"] == "head"].drop_duplicates("household_id").set_index("household_id")
    out["head_age"] = head["age"].astype(float)
    out["head_female"] = (head["sex"] == "female").astype(float)
    out["head_education_years"] = head["education"].map(EDUCATION_YEARS).astype(float)
    out["labour_share"] = m.assign(a=m["labour_ability"].isin(ABLE)).groupby("household_id")["a"].mean()
    out["children_share"] = m.assign(a=m["age"] < 16).groupby("household_id")["a"].mean()
    out["elderly_share"] = m.assign(a=m["age"] >= 65).groupby("household_id")["a"].mean()
    disabled = m["disability"].fillna("none").ne("none") | m["health"].eq("disabled")
    out["disability"] = m.assign(a=disabled).groupby("household_id")["a"].max().astype(float)
    ill = m["health"].isin(["chronic_illness", "serious_illness"])
    out["chronic_illness"] = m.assign(a=ill).groupby("household_id")["a"].max().astype(float)
    return out


# ------------------------------------------------------------------ simulated panels


@dataclass
class Simulation:
    tables: dict[str, pd.DataFrame]
    participation: pd.DataFrame
    effect_yuan: float
    baseline: int
    followup: int


def simulate(seed: int = 1, households: int = 2000, effect_yuan: float = 300.0,
             baseline: int = 2023, followup: int = 2024, villages: int = 20,
             county: str = "621221") -> Simulation:
    """Registry tables (the Parquet layout) of households observed in two years, with a
    known effect: participants' per-capita income rises by ``effect_yuan`` in the
    follow-up year.  Participation is selected on observables (the head's education, the
    household's labour, disability, internet access); incomes have household effects
    (which depend on the same observables and on an unobserved, independent part),
    village effects, a common change between the years and transitory noise.  So both
    unconfoundedness (given the baseline characteristics) and parallel trends hold, and
    each estimator should recover the effect."""
    rng = np.random.default_rng(seed)
    n = households
    ids = np.arange(1, n + 1)
    village_codes = np.array([f"{county}{100 + v // 10:03d}{v % 10 + 1:03d}" for v in range(villages)])
    village = rng.integers(0, villages, n)
    village_effect = rng.normal(0, 400, villages)[village]
    size = np.minimum(1 + rng.poisson(2.2, n), 8)
    head_age = rng.integers(25, 76, n)
    head_female = rng.random(n) < 0.2
    edu_levels = np.array(["illiterate", "primary", "junior_secondary", "senior_secondary", "college"])
    edu = rng.choice(len(edu_levels), n, p=[0.15, 0.35, 0.35, 0.12, 0.03])
    edu_years = np.array([EDUCATION_YEARS[e] for e in edu_levels])[edu]
    disabled = rng.random(n) < 0.08
    internet = rng.random(n) < 0.5
    housing = rng.random(n) < 0.85

    member_rows, labour_able = [], np.zeros(n)
    mid = 0
    for i in range(n):
        for k in range(size[i]):
            mid += 1
            if k == 0:
                rel, sex, age = "head", "female" if head_female[i] else "male", head_age[i]
                education = edu_levels[edu[i]]
                ability = "weak" if disabled[i] else rng.choice(ABLE + ("weak",), p=[0.3, 0.6, 0.1])
                disability = "grade3" if disabled[i] else "none"
            else:
                rel = "spouse" if k == 1 else "child"
                sex = "female" if (k == 1) != head_female[i] else "male"
                age = head_age[i] - 2 if k == 1 else int(rng.integers(1, max(2, head_age[i] - 18)))
                education = "primary" if age >= 7 else "preschool"
                ability = rng.choice(ABLE + ("weak", "none"), p=[0.2, 0.5, 0.1, 0.2]) if age >= 16 else "none"
                disability = "none"
            labour_able[i] += ability in ABLE
            member_rows.append({
                "member_id": mid, "household_id": ids[i], "relation": rel, "sex": sex,
                "birth_date": date(int(baseline - age), 1 + int(rng.integers(0, 12)),
                                   1 + int(rng.integers(0, 28))),
                "education": education, "schooling": None,
                "health": "disabled" if disability != "none" else "healthy",
                "disability": disability, "labour_ability": ability})
    labour_share = labour_able / size

    # Selection on observables.
    z = (-1.0 + 0.15 * (edu_years - 6) + 1.5 * (labour_share - 0.5) + 0.8 * internet
         - 0.8 * disabled)
    treated = rng.random(n) < 1 / (1 + np.exp(-z))
    # Per-capita income (yuan): household effect + village effect + year + effect + noise.
    alpha = (4000 + 150 * edu_years + 2000 * labour_share - 800 * disabled + 500 * internet
             + village_effect + rng.normal(0, 800, n))
    y0 = alpha + rng.normal(0, 400, n)
    y1 = alpha + 400 + effect_yuan * treated + rng.normal(0, 400, n)

    income_rows, cond_rows = [], []
    shares = (("wages", 0.5), ("farming_business", 0.35), ("transfers", 0.15))
    for year, y in ((baseline, y0), (followup, y1)):
        total = np.maximum(np.round(y * size * 100), 0).astype(np.int64)
        for i in range(n):
            left = int(total[i])
            for j, (source, share) in enumerate(shares):
                amount = left if j == len(shares) - 1 else int(total[i] * share)
                left -= amount
                income_rows.append({"household_id": ids[i], "year": year, "source": source,
                                    "amount_fen": amount})
            cond_rows.append({"household_id": ids[i], "year": year,
                              "housing_safe": bool(housing[i]), "drinking_water_safe": True,
                              "internet_access": bool(internet[i]), "toilet": "sanitary"
                              if housing[i] else "non_sanitary"})
    hh = pd.DataFrame({"household_id": ids, "household_number": [f"SIM{seed:03d}{i:06d}" for i in ids],
                       "village_code": village_codes[village], "size": size})
    part = pd.DataFrame({"household_id": ids[treated],
                         "start_date": [date(followup, 3, 1)] * int(treated.sum())})
    return Simulation(tables={"households": hh, "members": pd.DataFrame(member_rows),
                              "incomes": pd.DataFrame(income_rows),
                              "conditions": pd.DataFrame(cond_rows)},
                      participation=part, effect_yuan=effect_yuan, baseline=baseline,
                      followup=followup)
