"""A synthetic poor county: townships, villages and a household register in the
import format, reproducible from a seed."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from stdnum.cn import ric

from ..regions.service import official_divisions
from ..registry.columns import COLUMNS
from . import calibration as cal
from .draw import draw

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "建国军华明伟强平芳秀英兰玉珍桂梅红丽春燕霞金凤志勇海涛德福荣贵生成林山峰宝娟晓东亮斌超小丽婷杰文"
PLACE = "东西南北上下前后中新大小高河山川石岭坪沟湾坝峪庄堡寨柳杨槐松桥泉溪谷阳"
STATUS_REASON = {
    "identified": "income below the national line; identified after democratic appraisal",
    "exited": "per-capita income above the line and two no worries, three guarantees met",
    "monitored": "risk of returning to poverty: illness or income drop",
    "returned": "serious illness; medical costs pushed income below the line",
}
PHONE_PREFIXES = ("138", "139", "150", "151", "158", "159", "183", "186", "187", "189")


@dataclass
class SynthCounty:
    county_code: str
    county_name: str
    regions: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)


def _name(rng: np.random.Generator, surname: str, length: int | None = None) -> str:
    k = length or (1 if rng.random() < 0.3 else 2)
    return surname + "".join(GIVEN[i] for i in rng.integers(0, len(GIVEN), k))


def _place(rng: np.random.Generator, used: set[str], suffix: str) -> str:
    while True:
        name = "".join(PLACE[i] for i in rng.integers(0, len(PLACE), 2)) + suffix
        if name not in used:
            used.add(name)
            return name


def make_regions(rng: np.random.Generator, county_code: str, households: int) -> list[dict]:
    """Townships (12-digit codes: county + 3 digits + 000) and their villages."""
    n_town = int(np.clip(households // 300, 8, 14))
    regions, used = [], set()
    for t in range(n_town):
        town_code = f"{county_code}{100 + t:03d}000"
        town_name = "城关镇" if t == 0 else _place(rng, used, "镇" if rng.random() < 0.6 else "乡")
        regions.append({"code": town_code, "name": town_name, "parent_code": county_code,
                        "is_poor": False})
        for v in range(int(rng.integers(10, 26))):
            regions.append({"code": f"{town_code[:9]}{v + 1:03d}", "name": _place(rng, used, "村"),
                            "parent_code": town_code,
                            "is_poor": bool(rng.random() < cal.POOR_VILLAGE_SHARE)})
    return regions


def county_name(code: str) -> str:
    for rec in official_divisions():
        if rec["code"] == code:
            return rec["name"]
    raise ValueError(f"{code} is not an official county code")


def synth_county(seed: int = 1, county_code: str = "621221", households: int = 3000,
                 year: int = 2024) -> SynthCounty:
    rng = np.random.default_rng(seed)
    out = SynthCounty(county_code, county_name(county_code))
    out.regions = make_regions(rng, county_code, households)
    villages = [r["code"] for r in out.regions if r["code"][9:] != "000"]
    poor = [r["code"] for r in out.regions if r["is_poor"]]
    d = draw(rng, households, year)
    # Poor villages hold more of the registered households.
    pick_poor = rng.random(households) < 0.6
    village_of = np.where(pick_poor, np.array(poor)[rng.integers(0, len(poor), households)],
                          np.array(villages)[rng.integers(0, len(villages), households)])
    surname_of = rng.integers(0, len(SURNAMES), households)
    seq: dict[tuple, int] = defaultdict(int)
    keys = [c.key for c in COLUMNS]
    blank = dict.fromkeys(keys, "")
    status_names, cause_names = cal.STATUS[0], cal.MAIN_CAUSE[0]
    cat_names = cal.MONITORING_CATEGORY[0]
    member_starts = np.concatenate(([0], np.cumsum(d.size)))
    for h in range(households):
        number = f"{county_code}{h + 1:07d}"
        surname = SURNAMES[surname_of[h]]
        st = status_names[d.status[h]]
        head_row = {
            "household_number": number, "village_code": str(village_of[h]),
            "address": f"{int(rng.integers(1, 9))}组{int(rng.integers(1, 80))}号",
            "main_cause": cause_names[d.cause[h]],
            "status": st, "status_date": str(d.status_date[h]), "status_reason": STATUS_REASON[st],
            "year": str(year),
            "housing_safe": _yn(d.housing_safe[h]), "drinking_water_safe": _yn(d.water_safe[h]),
            "cooking_fuel": cal.COOKING_FUEL[0][d.fuel[h]], "toilet": cal.TOILET[0][d.toilet[h]],
            "electricity": _yn(d.electricity[h]), "road_access": _yn(d.road[h]),
            "internet_access": _yn(d.internet[h]),
            "food_secure": _yn(d.food_secure[h]), "clothing_secure": _yn(d.clothing_secure[h]),
            "medical_expense": _yuan(int(d.medical_fen[h])),
            "disaster_loss": _yuan(int(d.disaster_fen[h])) if d.disaster_fen[h] else "",
            "cooperative_member": _yn(d.cooperative[h]), "indoor_kitchen": _yn(d.kitchen[h]),
            "tap_water": _yn(d.tap_water[h]),
        }
        if d.category[h] >= 0:
            head_row["monitoring_category"] = cat_names[d.category[h]]
            head_row["risk_eliminated"] = _yn(d.risk_eliminated[h] == 1)
        for source, amounts in d.income[year].items():
            if amounts[h] > 0:
                head_row[f"income_{source}"] = _yuan(int(amounts[h]))
        if rng.random() < cal.HEAD_PHONE:
            head_row["household_phone"] = _phone(rng)
        for m in range(member_starts[h], member_starts[h + 1]):
            relation = d.m_relation[m]
            male = bool(d.m_male[m])
            born = d.m_birth[m]
            # Three digits give 500 numbers per birth date and sex; past that, the next day.
            while seq[(born, male)] >= 500:
                born = born + np.timedelta64(1, "D")
            seq[(born, male)] += 1
            birth = str(born)
            body = county_code + birth.replace("-", "")
            k = (born, male)
            body += f"{(seq[k] - 1) * 2 + (1 if male else 0):03d}"
            family = surname if relation in ("head", "child", "grandchild") or (
                relation == "parent" and male) else SURNAMES[int(rng.integers(0, len(SURNAMES)))]
            row = dict(blank) if m != member_starts[h] else dict(blank, **head_row)
            row.update({
                "household_number": number, "name": _name(rng, family),
                "id_number": body + ric.calc_check_digit(body + "0"),
                "relation": relation, "sex": "male" if male else "female", "birth_date": birth,
                "education": d.m_education[m], "schooling": d.m_schooling[m],
                "health": d.m_health[m], "disability": d.m_disability[m],
                "labour_ability": d.m_labour[m], "medical_insurance": _yn(d.m_insured[m]),
                "monthly_wage": _yuan(int(d.m_wage_fen[m])) if d.m_wage_fen[m] >= 0 else "",
            })
            out.rows.append(row)
    return out


def _yn(flag) -> str:
    return "yes" if flag else "no"


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _phone(rng: np.random.Generator) -> str:
    return PHONE_PREFIXES[int(rng.integers(0, len(PHONE_PREFIXES)))] + f"{int(rng.integers(0, 10**8)):08d}"


def write_regions(regions: list[dict], path: str | Path) -> Path:
    """Townships and villages as the CSV that ``ecpa regions import`` reads."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["code", "name", "parent_code", "is_poor"])
        for r in regions:
            w.writerow([r["code"], r["name"], r["parent_code"], "yes" if r["is_poor"] else "no"])
    return path


def write_register(rows: list[dict], path: str | Path) -> Path:
    """Rows as CSV (UTF-8 with BOM, for Excel) or XLSX (all cells text), by suffix."""
    path = Path(path)
    keys = [c.key for c in COLUMNS]
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("register")
        ws.append(keys)
        for row in rows:
            ws.append([row.get(k, "") for k in keys])
        wb.save(path)
        return path
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path
