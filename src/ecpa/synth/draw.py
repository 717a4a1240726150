"""Vectorised draws of households and members (numpy), shared by the county generator
and the Parquet stream so that both follow one calibration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from . import calibration as cal

INCOME_SOURCES = ("wages", "farming_business", "property", "transfers", "ecommerce")


def _choice(rng: np.random.Generator, spec: tuple[list, list], n: int) -> np.ndarray:
    """Indices into ``spec[0]`` drawn with probabilities ``spec[1]``."""
    return rng.choice(len(spec[0]), size=n, p=np.asarray(spec[1]) / np.sum(spec[1]))


@dataclass
class Draw:
    n: int
    size: np.ndarray
    status: np.ndarray            # index into cal.STATUS[0]
    status_date: np.ndarray       # datetime64[D]
    cause: np.ndarray             # index into cal.MAIN_CAUSE[0]
    category: np.ndarray          # index into cal.MONITORING_CATEGORY[0], -1 if none
    risk_eliminated: np.ndarray   # 1 yes, 0 no, -1 not a monitoring object
    income: dict[int, dict[str, np.ndarray]]  # year -> source -> fen (int64)
    housing_safe: np.ndarray
    water_safe: np.ndarray
    fuel: np.ndarray
    toilet: np.ndarray
    electricity: np.ndarray
    road: np.ndarray
    internet: np.ndarray
    food_secure: np.ndarray
    clothing_secure: np.ndarray
    medical_fen: np.ndarray
    disaster_fen: np.ndarray
    assets: np.ndarray
    cooperative: np.ndarray
    kitchen: np.ndarray
    tap_water: np.ndarray
    child_deaths: np.ndarray
    # members
    m_household: np.ndarray
    m_relation: np.ndarray        # strings (object)
    m_male: np.ndarray
    m_birth: np.ndarray           # datetime64[D]
    m_education: np.ndarray
    m_schooling: np.ndarray
    m_health: np.ndarray
    m_disability: np.ndarray
    m_labour: np.ndarray
    m_insured: np.ndarray
    m_wage_fen: np.ndarray        # -1: none
    m_undernourished: np.ndarray


def _dates(rng, n, start: str, end: str) -> np.ndarray:
    lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
    return lo + rng.integers(0, int((hi - lo).astype(int)) + 1, size=n).astype("timedelta64[D]")


def draw(rng: np.random.Generator, n: int, year: int) -> Draw:
    sizes_v, sizes_p = cal.HOUSEHOLD_SIZE
    size = np.asarray(sizes_v)[_choice(rng, (sizes_v, sizes_p), n)]
    status = _choice(rng, cal.STATUS, n)
    names = cal.STATUS[0]
    today = date.today().isoformat()
    end = min(f"{year}-12-31", today)
    status_date = np.where(
        status == names.index("identified"), _dates(rng, n, "2014-03-01", "2016-12-31"),
        np.where(status == names.index("exited"), _dates(rng, n, "2016-06-01", "2020-12-31"),
                 _dates(rng, n, "2021-01-01", end)))
    monitored = status == names.index("monitored")
    at_risk = monitored | (status == names.index("returned"))
    category = np.where(monitored, _choice(rng, cal.MONITORING_CATEGORY, n), -1)
    risk_eliminated = np.where(monitored, (rng.random(n) < 0.3).astype(int), -1)
    cause = _choice(rng, cal.MAIN_CAUSE, n)

    # Incomes: per-capita log-normal around the calibrated mean, split by source shares.
    income: dict[int, dict[str, np.ndarray]] = {}
    mean = cal.PER_CAPITA_INCOME_2019 * (1 + cal.INCOME_GROWTH) ** (year - 2019)
    median = mean / np.exp(cal.INCOME_SIGMA ** 2 / 2)
    per_capita = median * np.exp(rng.normal(0, cal.INCOME_SIGMA, n))
    per_capita = np.where(at_risk, per_capita * cal.AT_RISK_INCOME_FACTOR, per_capita)
    shares = np.array(list(cal.INCOME_SHARES.values()))
    mix = rng.dirichlet(shares * 40, size=n)  # household-specific composition
    has_ecom = rng.random(n) < cal.ECOMMERCE_HOUSEHOLD_SHARE
    ecom_part = np.where(has_ecom, rng.uniform(*cal.ECOMMERCE_SHARE_OF_BUSINESS, n), 0.0)
    for y, factor in ((year - 1, 1 / (1 + cal.INCOME_GROWTH)), (year, 1.0)):
        noise = rng.normal(1.0, 0.06, n) if y != year else np.ones(n)
        total = per_capita * size * factor * noise
        parts = mix * total[:, None]
        business = parts[:, 1]
        income[y] = {
            "wages": np.round(parts[:, 0] * 100).astype(np.int64),
            "farming_business": np.round(business * (1 - ecom_part) * 100).astype(np.int64),
            "property": np.round(parts[:, 2] * 100).astype(np.int64),
            "transfers": np.round(parts[:, 3] * 100).astype(np.int64),
            "ecommerce": np.round(business * ecom_part * 100).astype(np.int64),
        }

    # Members: slot 0 is the head; the rest by the head's age.
    total = int(size.sum())
    m_household = np.repeat(np.arange(n), size)
    starts = np.concatenate(([0], np.cumsum(size)[:-1]))
    slot = np.arange(total) - np.repeat(starts, size)
    head_age = np.clip(rng.normal(52, 12, n), 24, 86)[m_household]
    last = slot == (size[m_household] - 1)
    old, young = head_age >= 58, head_age < 45
    spouse = (slot == 1) & (rng.random(total) < cal.SPOUSE)
    relation = np.full(total, "child", dtype=object)
    relation[slot == 0] = "head"
    relation[spouse] = "spouse"
    relation[(slot >= 3) & old] = "grandchild"
    relation[(slot >= 2) & young & last & (size[m_household] >= 4)] = "parent"
    age = np.empty(total)
    is_ = {r: relation == r for r in ("head", "spouse", "child", "grandchild", "parent")}
    age[is_["head"]] = head_age[is_["head"]]
    age[is_["spouse"]] = head_age[is_["spouse"]] + rng.normal(-2, 3, is_["spouse"].sum())
    age[is_["child"]] = head_age[is_["child"]] - rng.uniform(20, 36, is_["child"].sum())
    age[is_["grandchild"]] = head_age[is_["grandchild"]] - rng.uniform(44, 62, is_["grandchild"].sum())
    age[is_["parent"]] = head_age[is_["parent"]] + rng.uniform(22, 32, is_["parent"].sum())
    age = np.clip(age, rng.uniform(0, 3, total), 100)
    head_male = rng.random(n) < 0.85
    male = rng.random(total) < 0.5
    male[is_["head"]] = head_male[m_household[is_["head"]]]
    male[is_["spouse"]] = ~head_male[m_household[is_["spouse"]]]
    ref = np.datetime64(f"{year}-07-01", "D")
    # A random day within the year of age, so that clipped ages do not pile on one date.
    birth = ref - (age * 365.25).astype("timedelta64[D]") - rng.integers(0, 365, total).astype("timedelta64[D]")
    birth = np.minimum(birth, np.datetime64(today, "D"))

    # Education and schooling by age.
    education = np.select(
        [age < 6, age < 12, age < 15, age < 40, age < 60],
        ["preschool", "primary", "junior_secondary",
         np.where(rng.random(total) < 0.35, "senior_secondary",
                  np.where(rng.random(total) < 0.2, "vocational", "junior_secondary")),
         np.where(rng.random(total) < 0.6, "primary", "junior_secondary")],
        np.where(rng.random(total) < 0.45, "illiterate", "primary"),
    ).astype(object)
    u = rng.random(total)
    schooling = np.select(
        [age < 3, age < 6, age < 12, age < 15, age < 18, age < 22],
        ["not_student",
         np.where(u < 0.85, "preschool", "not_student"),
         np.where(u < cal.SCHOOL_ENROLMENT["primary"], "primary", "dropped_out"),
         np.where(u < cal.SCHOOL_ENROLMENT["junior_secondary"], "junior_secondary", "dropped_out"),
         np.where(u < cal.SCHOOL_ENROLMENT["senior"],
                  np.where(u < 0.5, "senior_secondary", "vocational"), "not_student"),
         np.where(u < 0.3, "higher", "not_student")],
        "not_student",
    ).astype(object)

    # Health rises with age; illness is the largest cause in poor households.
    h = rng.random(total)
    chronic_p = 0.04 + np.clip(age - 30, 0, None) / 160
    health = np.where(h < 0.04, "disabled",
                      np.where(h < 0.07, "serious_illness",
                               np.where(h < 0.07 + chronic_p, "chronic_illness", "healthy"))).astype(object)
    disabled = health == "disabled"
    disability = np.full(total, "none", dtype=object)
    disability[disabled] = np.array(["grade1", "grade2", "grade3", "grade4"])[
        rng.integers(0, 4, disabled.sum())]
    working_age = (age >= 16) & (age < 65)
    unwell = (health == "serious_illness") | disabled
    lab = rng.random(total)
    labour = np.where(~working_age & (age < 16), "none",
                      np.where(age >= 75, "lost",
                               np.where(unwell, np.where(lab < 0.5, "weak", "lost"),
                                        np.where(~working_age, "weak",
                                                 np.where(lab < 0.15, "skilled",
                                                          np.where(lab < 0.9, "ordinary", "weak")))))).astype(object)
    able = np.isin(labour, ["skilled", "ordinary"])
    works = able & (rng.random(total) < cal.MIGRANT_WORK)
    wage = np.where(works, rng.integers(cal.MONTHLY_WAGE[0], cal.MONTHLY_WAGE[1] + 1, total) * 100, -1)

    # Medical spending follows the household's sickest member.
    serious = np.zeros(n, dtype=bool)
    np.logical_or.at(serious, m_household, (health == "serious_illness") | (health == "disabled"))
    lo, hi = np.where(serious, cal.SERIOUS_MEDICAL_EXPENSE_YUAN[0], cal.MEDICAL_EXPENSE_YUAN[0]), \
        np.where(serious, cal.SERIOUS_MEDICAL_EXPENSE_YUAN[1], cal.MEDICAL_EXPENSE_YUAN[1])
    medical = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    disaster = np.where(rng.random(n) < cal.DISASTER_SHARE,
                        np.exp(rng.uniform(*np.log(cal.DISASTER_LOSS_YUAN), n)), 0.0)

    return Draw(
        n=n, size=size, status=status, status_date=status_date, cause=cause,
        category=category, risk_eliminated=risk_eliminated, income=income,
        housing_safe=rng.random(n) < cal.HOUSING_SAFE,
        water_safe=rng.random(n) < cal.DRINKING_WATER_SAFE,
        fuel=_choice(rng, cal.COOKING_FUEL, n), toilet=_choice(rng, cal.TOILET, n),
        electricity=rng.random(n) < cal.ELECTRICITY, road=rng.random(n) < cal.ROAD_ACCESS,
        internet=rng.random(n) < cal.INTERNET_ACCESS,
        food_secure=rng.random(n) < cal.FOOD_SECURE,
        clothing_secure=rng.random(n) < cal.CLOTHING_SECURE,
        medical_fen=np.round(medical * 100).astype(np.int64),
        disaster_fen=np.round(disaster * 100).astype(np.int64),
        assets=np.asarray(cal.ASSETS_OWNED[0])[_choice(rng, cal.ASSETS_OWNED, n)],
        cooperative=rng.random(n) < cal.COOPERATIVE_MEMBER,
        kitchen=rng.random(n) < cal.INDOOR_KITCHEN,
        tap_water=rng.random(n) < cal.TAP_WATER,
        child_deaths=(rng.random(n) < cal.CHILD_DEATH).astype(np.int16),
        m_household=m_household, m_relation=relation, m_male=male, m_birth=birth,
        m_education=education, m_schooling=schooling, m_health=health, m_disability=disability,
        m_labour=labour, m_insured=rng.random(total) < cal.MEDICAL_INSURANCE,
        m_wage_fen=wage.astype(np.int64),
        m_undernourished=rng.random(total) < cal.UNDERNOURISHED,
    )
