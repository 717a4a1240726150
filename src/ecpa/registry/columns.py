"""The columns of a household register file (CSV or XLSX), one row per member.

Each column has an English header and the Chinese headers of the national
monitoring system's exports; either is accepted.  Household-level columns may be
given on every row of the household or only on one (the head's); where given twice
they must agree.  ``docs/registry-import.md`` documents them; ``ecpa registry
columns`` prints this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .models import (
    CookingFuel,
    Disability,
    Education,
    Health,
    IncomeSource,
    LabourAbility,
    MonitoringCategory,
    PovertyCause,
    Relation,
    Schooling,
    Sex,
    Status,
    Toilet,
)


@dataclass(frozen=True)
class Column:
    key: str
    english: str
    chinese: tuple[str, ...]
    level: str  # "household" or "member"
    kind: str  # text, code, id_number, phone, enum, bool, money, date, year
    required: bool = False
    enum: type[StrEnum] | None = None
    help: str = ""


def _c(key, zh, level, kind, required=False, enum=None, help=""):
    return Column(key, key, tuple(zh), level, kind, required, enum, help)


COLUMNS: tuple[Column, ...] = (
    _c("household_number", ["户编号", "户码"], "household", "text", True,
       help="national household number, unique"),
    _c("village_code", ["村代码", "行政村代码", "行政区划代码"], "household", "code", True,
       help="12-digit statistical code of the village"),
    _c("address", ["家庭住址", "住址"], "household", "text"),
    _c("household_phone", ["联系电话"], "household", "phone"),
    _c("main_cause", ["主要致贫原因", "致贫原因"], "household", "enum", enum=PovertyCause),
    _c("monitoring_category", ["监测对象类别"], "household", "enum", enum=MonitoringCategory),
    _c("risk_eliminated", ["风险是否已消除"], "household", "bool"),
    _c("status", ["贫困户状态", "脱贫状态"], "household", "enum", enum=Status,
       help="current poverty status; recorded as an event when it differs"),
    _c("status_date", ["状态日期"], "household", "date", help="date of that status"),
    _c("status_reason", ["状态原因"], "household", "text"),
    _c("year", ["年度"], "household", "year",
       help="year of the incomes and living conditions on the row"),
    _c("income_wages", ["工资性收入"], "household", "money", help="yuan per year"),
    _c("income_farming_business", ["生产经营性收入"], "household", "money"),
    _c("income_property", ["财产性收入"], "household", "money"),
    _c("income_transfers", ["转移性收入"], "household", "money"),
    _c("income_ecommerce", ["电商收入"], "household", "money"),
    _c("housing_safe", ["住房是否安全", "是否危房改造完成"], "household", "bool"),
    _c("drinking_water_safe", ["饮水是否安全"], "household", "bool"),
    _c("cooking_fuel", ["主要燃料类型"], "household", "enum", enum=CookingFuel),
    _c("toilet", ["厕所类型"], "household", "enum", enum=Toilet),
    _c("electricity", ["是否通生活用电"], "household", "bool"),
    _c("road_access", ["是否通硬化路"], "household", "bool"),
    _c("internet_access", ["是否通宽带", "是否通网络"], "household", "bool"),
    _c("food_secure", ["是否不愁吃", "不愁吃"], "household", "bool"),
    _c("clothing_secure", ["是否不愁穿", "不愁穿"], "household", "bool"),
    _c("medical_expense", ["医疗自付费用", "医疗支出"], "household", "money",
       help="out-of-pocket medical spending in the year, yuan"),
    _c("disaster_loss", ["灾害损失"], "household", "money", help="yuan, in the year"),
    _c("cooperative_member", ["是否加入合作社"], "household", "bool"),
    _c("indoor_kitchen", ["是否有室内厨房"], "household", "bool"),
    _c("tap_water", ["是否通自来水"], "household", "bool"),
    _c("name", ["姓名"], "member", "text", True),
    _c("id_number", ["证件号码", "身份证号", "身份证号码"], "member", "id_number", True),
    _c("relation", ["与户主关系"], "member", "enum", True, enum=Relation),
    _c("sex", ["性别"], "member", "enum", enum=Sex, help="checked against the ID number"),
    _c("birth_date", ["出生日期"], "member", "date", help="checked against the ID number"),
    _c("phone", ["手机号码", "本人电话"], "member", "phone"),
    _c("education", ["文化程度"], "member", "enum", enum=Education),
    _c("schooling", ["在校生状况"], "member", "enum", enum=Schooling),
    _c("health", ["健康状况"], "member", "enum", enum=Health),
    _c("disability", ["残疾等级"], "member", "enum", enum=Disability),
    _c("labour_ability", ["劳动技能"], "member", "enum", enum=LabourAbility),
    _c("medical_insurance", ["是否参加城乡居民基本医疗保险", "参加医疗保险"], "member", "bool"),
    _c("monthly_wage", ["务工月收入"], "member", "money", help="yuan per month"),
)

BY_KEY = {c.key: c for c in COLUMNS}
HOUSEHOLD_KEYS = tuple(c.key for c in COLUMNS if c.level == "household")
MEMBER_KEYS = tuple(c.key for c in COLUMNS if c.level == "member")
INCOME_KEYS = {f"income_{s.value}": s for s in IncomeSource}
# Living-condition columns of the file -> attributes of LivingConditions (money in fen).
CONDITION_FIELDS = {
    "housing_safe": "housing_safe", "drinking_water_safe": "drinking_water_safe",
    "cooking_fuel": "cooking_fuel", "toilet": "toilet", "electricity": "electricity",
    "road_access": "road_access", "internet_access": "internet_access",
    "food_secure": "food_secure", "clothing_secure": "clothing_secure",
    "medical_expense": "medical_expense_fen", "disaster_loss": "disaster_loss_fen",
    "cooperative_member": "cooperative_member", "indoor_kitchen": "indoor_kitchen",
    "tap_water": "tap_water",
}
CONDITION_KEYS = tuple(CONDITION_FIELDS)


def header_map() -> dict[str, str]:
    """Every accepted header (lower-cased English, Chinese) -> column key."""
    out: dict[str, str] = {}
    for col in COLUMNS:
        out[col.english.lower()] = col.key
        for zh in col.chinese:
            out[zh] = col.key
    return out
