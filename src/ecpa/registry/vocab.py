"""Parsing of field values, English or Chinese, as they appear in register files and
in the exports of the national monitoring system."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from .models import (
    CookingFuel,
    Disability,
    Education,
    Health,
    LabourAbility,
    MeasureKind,
    MonitoringCategory,
    PovertyCause,
    Relation,
    Schooling,
    Sex,
    Status,
    Toilet,
)

# Chinese labels of each value; the English value itself is always accepted too.
CHINESE: dict[type[StrEnum], dict[str, StrEnum]] = {
    Sex: {"男": Sex.MALE, "女": Sex.FEMALE},
    Relation: {
        "户主": Relation.HEAD, "本人": Relation.HEAD, "配偶": Relation.SPOUSE,
        "之子": Relation.CHILD, "之女": Relation.CHILD, "子女": Relation.CHILD,
        "儿子": Relation.CHILD, "女儿": Relation.CHILD,
        "之儿媳": Relation.CHILD_IN_LAW, "之女婿": Relation.CHILD_IN_LAW,
        "儿媳": Relation.CHILD_IN_LAW, "女婿": Relation.CHILD_IN_LAW,
        "之孙子": Relation.GRANDCHILD, "之孙女": Relation.GRANDCHILD,
        "孙子": Relation.GRANDCHILD, "孙女": Relation.GRANDCHILD,
        "之父": Relation.PARENT, "之母": Relation.PARENT, "父亲": Relation.PARENT,
        "母亲": Relation.PARENT, "之祖父": Relation.GRANDPARENT, "之祖母": Relation.GRANDPARENT,
        "之兄弟姐妹": Relation.SIBLING, "兄弟姐妹": Relation.SIBLING, "其他": Relation.OTHER,
    },
    Education: {
        "学龄前儿童": Education.PRESCHOOL, "学龄前": Education.PRESCHOOL,
        "文盲或半文盲": Education.ILLITERATE, "文盲": Education.ILLITERATE,
        "小学": Education.PRIMARY, "初中": Education.JUNIOR, "高中": Education.SENIOR,
        "中专": Education.VOCATIONAL, "中职": Education.VOCATIONAL, "高职": Education.VOCATIONAL,
        "大专": Education.COLLEGE, "大专及以上": Education.COLLEGE,
        "本科及以上": Education.COLLEGE,
    },
    Health: {
        "健康": Health.HEALTHY, "长期慢性病": Health.CHRONIC, "患有大病": Health.SERIOUS,
        "大病": Health.SERIOUS, "残疾": Health.DISABLED,
    },
    Disability: {
        "无": Disability.NONE, "否": Disability.NONE, "一级": Disability.GRADE1,
        "二级": Disability.GRADE2, "三级": Disability.GRADE3, "四级": Disability.GRADE4,
        "1": Disability.GRADE1, "2": Disability.GRADE2, "3": Disability.GRADE3,
        "4": Disability.GRADE4,
    },
    LabourAbility: {
        "技能劳动力": LabourAbility.SKILLED, "普通劳动力": LabourAbility.ORDINARY,
        "弱劳动力或半劳动力": LabourAbility.WEAK, "弱劳动力": LabourAbility.WEAK,
        "半劳动力": LabourAbility.WEAK, "丧失劳动力": LabourAbility.LOST,
        "无劳动力": LabourAbility.NONE,
    },
    Schooling: {
        "非在校生": Schooling.NOT_STUDENT, "学前教育": Schooling.PRESCHOOL,
        "小学": Schooling.PRIMARY, "初中": Schooling.JUNIOR, "七年级": Schooling.JUNIOR,
        "八年级": Schooling.JUNIOR, "九年级": Schooling.JUNIOR, "高中": Schooling.SENIOR,
        "普通高中": Schooling.SENIOR, "中职": Schooling.VOCATIONAL, "高职": Schooling.VOCATIONAL,
        "大专": Schooling.HIGHER, "本科": Schooling.HIGHER, "研究生": Schooling.HIGHER,
        "辍学": Schooling.DROPPED_OUT, "失学辍学": Schooling.DROPPED_OUT,
    },
    MonitoringCategory: {
        "脱贫不稳定户": MonitoringCategory.UNSTABLE_EXITED,
        "边缘易致贫户": MonitoringCategory.MARGINAL,
        "突发严重困难户": MonitoringCategory.SUDDEN_HARDSHIP,
    },
    PovertyCause: {
        "因病": PovertyCause.ILLNESS, "因残": PovertyCause.DISABILITY,
        "因学": PovertyCause.EDUCATION, "因灾": PovertyCause.DISASTER,
        "缺土地": PovertyCause.LACK_LAND, "缺水": PovertyCause.LACK_WATER,
        "缺技术": PovertyCause.LACK_SKILLS, "缺劳力": PovertyCause.LACK_LABOUR,
        "缺资金": PovertyCause.LACK_CAPITAL, "交通条件落后": PovertyCause.TRANSPORT,
        "自身发展动力不足": PovertyCause.LACK_MOTIVATION, "其他": PovertyCause.OTHER,
    },
    Status: {
        "贫困户": Status.IDENTIFIED, "已识别": Status.IDENTIFIED, "未脱贫": Status.IDENTIFIED,
        "已脱贫": Status.EXITED, "脱贫": Status.EXITED, "脱贫户": Status.EXITED,
        "监测": Status.MONITORED, "监测户": Status.MONITORED, "返贫": Status.RETURNED,
    },
    CookingFuel: {
        "电或燃气": CookingFuel.ELECTRIC_GAS, "电": CookingFuel.ELECTRIC_GAS,
        "燃气": CookingFuel.ELECTRIC_GAS, "沼气": CookingFuel.BIOGAS, "煤": CookingFuel.COAL,
        "柴草": CookingFuel.WOOD_STRAW,
    },
    Toilet: {"卫生厕所": Toilet.SANITARY, "非卫生厕所": Toilet.NON_SANITARY, "无厕所": Toilet.NONE},
    MeasureKind: {
        "产业": MeasureKind.INDUSTRY, "就业": MeasureKind.EMPLOYMENT,
        "教育": MeasureKind.EDUCATION, "健康": MeasureKind.HEALTH, "住房": MeasureKind.HOUSING,
        "电商": MeasureKind.ECOMMERCE, "金融": MeasureKind.FINANCE,
        "社会保障": MeasureKind.SOCIAL_SECURITY, "生态": MeasureKind.ECOLOGY,
        "易地搬迁": MeasureKind.RELOCATION, "其他": MeasureKind.OTHER,
    },
}

_TRUE = {"是", "yes", "y", "true", "t", "1", "有"}
_FALSE = {"否", "no", "n", "false", "f", "0", "无"}
_MONEY = re.compile(r"^\d+(\.\d{1,2})?$")
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d{1,2})?$")
_PHONE = re.compile(r"^1[3-9]\d{9}$|^0\d{2,3}-?\d{7,8}$")


_LOOKUP: dict[type[StrEnum], dict[str, StrEnum]] = {}


def enum_table(enum_cls: type[StrEnum]) -> dict[str, StrEnum]:
    table = _LOOKUP.get(enum_cls)
    if table is None:
        table = {m.value: m for m in enum_cls} | CHINESE.get(enum_cls, {})
        _LOOKUP[enum_cls] = table
    return table


def enum_value(enum_cls: type[StrEnum], raw: str) -> StrEnum:
    text = raw.strip()
    table = enum_table(enum_cls)
    found = table.get(text)
    if found is None:
        found = table.get(text.lower())
    if found is None:
        allowed = ", ".join(m.value for m in enum_cls)
        raise ValueError(f"not one of: {allowed} (or their Chinese labels)")
    return found


def boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected 是/否 or yes/no")


def money_fen(raw: str | int | float | Decimal) -> int:
    """Yuan as written (``1234.5``) to integer fen; refuses negative or non-numeric."""
    if isinstance(raw, (int, Decimal)) and not isinstance(raw, bool):
        value = Decimal(raw)
    else:
        text = str(raw).strip()
        if "," in text:
            # Thousands separators only where they belong: 12,345.50 but not 1,2,3.
            if not _GROUPED.match(text):
                raise ValueError("not an amount in yuan (misplaced comma)")
            text = text.replace(",", "")
        if text.startswith("-"):
            raise ValueError("must not be negative")
        if not _MONEY.match(text):
            raise ValueError("not an amount in yuan with at most two decimals")
        value = Decimal(text)
    if value < 0:
        raise ValueError("must not be negative")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError("more than two decimals")
    return int(fen)


def parse_date(raw: str | date | datetime) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = raw.strip()
    if len(text) == 10 and text[4] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError("not a date (use YYYY-MM-DD)") from None
    for fmt in ( "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("not a date (use YYYY-MM-DD)")


def year(raw: str) -> int:
    text = str(raw).strip()
    if not text.isdigit() or not 1978 <= int(text) <= 2100:
        raise ValueError("not a year between 1978 and 2100")
    return int(text)


def phone(raw: str) -> str:
    text = raw.strip().replace(" ", "")
    if not _PHONE.match(text):
        raise ValueError("not a mobile (11 digits starting with 1) or landline number")
    return text


def label(value: StrEnum | None, lang: str = "en") -> str:
    """The display label of a value in English (its value) or Chinese (first label)."""
    if value is None:
        return ""
    if lang.startswith("zh"):
        for text, member in CHINESE.get(type(value), {}).items():
            if member is value:
                return text
    return value.value
