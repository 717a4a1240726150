"""The configuration of an assessment: a TOML file an analyst edits.

Indicators, guarantees and subgroups are rules written as SQL boolean expressions over
named columns (``age BETWEEN 6 AND 15 AND schooling = 'dropped_out'``).  A statistician
can write them, they are checked against the known columns before anything runs, and
the same text runs on DuckDB and, transpiled by sqlglot, on Spark.
"""

from __future__ import annotations

import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..errors import InvalidInput

PROFILES = Path(__file__).with_name("profiles")
LEVELS = ("province", "county", "township", "village")


def _fraction(value: object) -> Fraction:
    """Weights and cutoffs as exact fractions ('1/6', 0.5, '0.3333'), so that weights add
    up to exactly one and a score equal to k is not lost to rounding."""
    try:
        return Fraction(str(value)).limit_denominator(10_000)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{value!r} is not a number or a fraction like 1/6") from None


class Rule(BaseModel):
    """A yes/no test of a household.  ``level = "household"``: ``when`` is evaluated on
    the household's row.  ``level = "member"``: ``rule = "any"`` is true when some member
    satisfies ``when``; ``"none"`` when no member does (among the members that
    ``applies`` selects, and only if there is one); ``"all"`` when every such member does."""

    model_config = {"extra": "forbid"}
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    level: Literal["household", "member"] = "household"
    rule: Literal["any", "none", "all"] = "any"
    when: str
    applies: str | None = None
    label_zh: str | None = None


class Indicator(Rule):
    dimension: str
    weight: Fraction

    @field_validator("weight", mode="before")
    @classmethod
    def _w(cls, v: object) -> Fraction:
        w = _fraction(v)
        if not 0 < w <= 1:
            raise ValueError(f"weight {v} must be above 0 and at most 1")
        return w


class Profile(BaseModel):
    model_config = {"extra": "forbid"}
    name: str
    title: str = ""
    k: list[Fraction] = Field(default_factory=lambda: [Fraction(1, 3)])
    indicators: list[Indicator]

    @field_validator("k", mode="before")
    @classmethod
    def _k(cls, v: object) -> list[Fraction]:
        values = [_fraction(x) for x in (v if isinstance(v, list) else [v])]
        for x in values:
            if not 0 < x <= 1:
                raise ValueError(f"poverty cutoff k = {x} must be above 0 and at most 1")
        return values

    @model_validator(mode="after")
    def _weights(self) -> "Profile":
        total = sum((i.weight for i in self.indicators), Fraction(0))
        if total != 1:
            raise ValueError(f"indicator weights add up to {total} ({float(total):.4f}), not 1")
        names = [i.name for i in self.indicators]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"indicator names repeated: {', '.join(dupes)}")
        return self


# The "two no worries, three guarantees" (两不愁三保障) and safe drinking water, as
# counties checked them; editable like any rule.
DEFAULT_GUARANTEES = [
    Rule(name="food", when="food_secure = FALSE", label_zh="不愁吃"),
    Rule(name="clothing", when="clothing_secure = FALSE", label_zh="不愁穿"),
    Rule(name="compulsory_education", level="member",
         when="age BETWEEN 6 AND 15 AND schooling IN ('dropped_out', 'not_student')",
         label_zh="义务教育有保障"),
    Rule(name="basic_medical", level="member", when="medical_insurance = FALSE",
         label_zh="基本医疗有保障"),
    Rule(name="safe_housing", when="housing_safe = FALSE", label_zh="住房安全有保障"),
    Rule(name="safe_water", when="drinking_water_safe = FALSE", label_zh="饮水安全有保障"),
]

DEFAULT_SUBGROUPS = {
    "head_sex": "head_sex",
    "head_age_group": ("CASE WHEN head_age < 30 THEN 'under_30' WHEN head_age < 45 THEN '30_44' "
                       "WHEN head_age < 60 THEN '45_59' WHEN head_age >= 60 THEN '60_plus' END"),
    "disability": "CASE WHEN has_disabled = 1 THEN 'with_disabled_member' ELSE 'none' END",
}


class Monitoring(BaseModel):
    """Thresholds of dynamic monitoring (防返贫动态监测)."""

    model_config = {"extra": "forbid"}
    line: str = "cn_monitoring"
    income_fall: float = Field(0.3, gt=0, lt=1, description="fall in income on the year before")
    medical_share: float = Field(0.5, gt=0, description="medical expenses against income")
    disaster_share: float = Field(0.5, gt=0, description="disaster losses against income")
    marginal_factor: float = Field(1.5, ge=1, description="marginal: income under this times the line")


class Undp(BaseModel):
    """UNDP's county composite index (seed 001 §IV.A): 8 indicators, higher is better."""

    model_config = {"extra": "forbid"}
    weights: dict[str, float] = Field(default_factory=lambda: {
        "sanitary_toilet_rate": 1, "indoor_kitchen_rate": 1, "tap_water_rate": 1,
        "mobile_internet_coverage": 1, "production_facility_coverage": 1,
        "road_coverage": 1, "financial_facility_coverage": 1, "night_light_density": 1})
    weakest: int = Field(3, ge=1, le=8)


class Survey(BaseModel):
    """Sample-survey design, as household columns: the standard errors follow it."""

    model_config = {"extra": "forbid"}
    weight: str | None = None
    strata: str | None = None
    cluster: str | None = None


class Config(BaseModel):
    model_config = {"extra": "forbid"}
    year: int = Field(ge=1990, le=2100)
    lines: list[str] = Field(default_factory=lambda: ["cn_rural", "cn_monitoring"])
    lines_files: list[Path] = Field(default_factory=list)
    profile: str | Profile = "china"
    k: list[Fraction] | None = None
    levels: list[Literal["province", "county", "township", "village"]] = Field(
        default_factory=lambda: list(LEVELS))
    subgroups: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SUBGROUPS))
    guarantees: list[Rule] = Field(default_factory=lambda: list(DEFAULT_GUARANTEES))
    monitoring: Monitoring = Field(default_factory=Monitoring)
    undp: Undp = Field(default_factory=Undp)
    survey: Survey = Field(default_factory=Survey)
    compare_year: int | None = None
    # mapping[table][layout column] = column name in the input files
    mapping: dict[Literal["households", "members", "incomes", "conditions", "counties"],
                  dict[str, str]] = Field(default_factory=dict)

    @field_validator("k", mode="before")
    @classmethod
    def _k(cls, v: object) -> list[Fraction] | None:
        return None if v is None else Profile._k(v)

    @model_validator(mode="after")
    def _resolve(self) -> "Config":
        if isinstance(self.profile, str):
            self.profile = load_profile(self.profile)
        if self.k is not None:
            self.profile = self.profile.model_copy(update={"k": self.k})
        if self.compare_year is not None and self.compare_year >= self.year:
            raise ValueError(f"compare_year {self.compare_year} must be before year {self.year}")
        return self

    @property
    def af(self) -> Profile:
        assert isinstance(self.profile, Profile)
        return self.profile


def _explain(exc: ValidationError, where: str) -> InvalidInput:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return InvalidInput(f"{where}: " + "; ".join(parts), errors=parts)


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES / f"{name_or_path}.toml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.toml")))
            raise InvalidInput(f"unknown profile {name_or_path!r}; shipped: {known}, or a .toml path")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, str(path)) from None


def load_config(path: Path | None = None, **overrides: object) -> Config:
    """Read a configuration file (or the defaults), with command-line overrides."""
    data: dict = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"{path}: {exc}") from None
        base = Path(path).parent
        data["lines_files"] = [str(base / p) for p in data.get("lines_files", [])]
        prof = data.get("profile")
        if isinstance(prof, str) and prof.endswith(".toml"):
            data["profile"] = str(base / prof)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if data.get("year") is None:
        raise InvalidInput("give the assessment year: --year, or year = … in the configuration",
                           field="year")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, str(path or "configuration")) from None
