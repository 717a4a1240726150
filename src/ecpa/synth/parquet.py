"""Streaming millions of synthetic households to the Parquet layout of the registry,
chunk by chunk, with bounded memory (measurement benchmarks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..regions.codes import level_of_code
from ..regions.models import Level
from ..regions.service import official_divisions
from ..registry.layout import CONDITIONS, COUNTIES, HOUSEHOLDS, INCOMES, MEMBERS
from . import calibration as cal
from .draw import INCOME_SOURCES, draw


def _cat(indices: np.ndarray, names: list[str], valid: np.ndarray | None = None) -> pa.Array:
    """Category indices to a string array (decoded from a dictionary array in C)."""
    mask = None if valid is None else ~valid
    arr = pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32), mask=mask),
                                         pa.array(names, pa.string()))
    return arr.cast(pa.string())


def _strings(values: np.ndarray) -> pa.Array:
    uniq, inv = np.unique(values.astype(str), return_inverse=True)
    return _cat(inv, list(uniq))


def stream_parquet(out_dir: str | Path, households: int, seed: int = 1,
                   chunk_households: int = 200_000, year: int = 2024,
                   counties: int = 800, progress: Callable[[int], None] | None = None) -> Path:
    """Write households.parquet, members.parquet, incomes.parquet and conditions.parquet
    for ``households`` synthetic households spread over ``counties`` real counties."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    all_counties = sorted(r["code"] for r in official_divisions()
                          if level_of_code(r["code"]) is Level.COUNTY)
    chosen = np.array(sorted(rng.choice(all_counties, size=min(counties, len(all_counties)),
                                        replace=False)))
    writers = {name: pq.ParquetWriter(out / f"{name}.parquet", schema)
               for name, schema in (("households", HOUSEHOLDS), ("members", MEMBERS),
                                    ("incomes", INCOMES), ("conditions", CONDITIONS))}
    next_hh, next_member, done = 0, 0, 0
    try:
        while done < households:
            n = min(chunk_households, households - done)
            d = draw(rng, n, year)
            hid = np.arange(next_hh, next_hh + n, dtype=np.int64) + 1
            county = chosen[rng.integers(0, len(chosen), n)]
            town = rng.integers(100, 112, n)
            village = rng.integers(1, 21, n)
            town_code = np.char.add(np.char.add(county.astype(str), town.astype(str)), "000")
            village_code = np.char.add(np.char.add(county.astype(str), town.astype(str)),
                                       np.char.zfill(village.astype(str), 3))
            province = np.char.add(county.astype("<U2"), "0000")
            numbers = np.char.add(county.astype(str), np.char.zfill(hid.astype(str), 10))
            is_cat = d.category >= 0
            writers["households"].write_table(pa.Table.from_arrays([
                pa.array(hid), pa.array(numbers.astype(object)), _strings(province),
                _strings(county), _strings(town_code), _strings(village_code),
                _cat(d.status, cal.STATUS[0]), pa.array(d.status_date, pa.date32()),
                _cat(np.where(is_cat, d.category, 0), cal.MONITORING_CATEGORY[0], is_cat),
                pa.array(d.risk_eliminated == 1, mask=~is_cat),
                _cat(d.cause, cal.MAIN_CAUSE[0]),
                pa.array(d.size.astype(np.int16)), pa.array(d.child_deaths),
            ], schema=HOUSEHOLDS))
            total = len(d.m_household)
            wage_known = d.m_wage_fen >= 0
            writers["members"].write_table(pa.Table.from_arrays([
                pa.array(np.arange(next_member, next_member + total, dtype=np.int64) + 1),
                pa.array(hid[d.m_household]), _strings(d.m_relation),
                _cat(np.where(d.m_male, 0, 1), ["male", "female"]),
                pa.array(d.m_birth, pa.date32()), _strings(d.m_education),
                _strings(d.m_schooling), _strings(d.m_health), _strings(d.m_disability),
                _strings(d.m_labour), pa.array(d.m_insured),
                pa.array(np.where(wage_known, d.m_wage_fen, 0), mask=~wage_known),
                pa.array(d.m_undernourished),
            ], schema=MEMBERS))
            for y in sorted(d.income):
                for s_idx, source in enumerate(INCOME_SOURCES):
                    amounts = d.income[y][source]
                    keep = amounts > 0
                    k = int(keep.sum())
                    writers["incomes"].write_table(pa.Table.from_arrays([
                        pa.array(hid[keep]), pa.array(np.full(k, y, np.int16)),
                        _cat(np.full(k, s_idx), list(INCOME_SOURCES)), pa.array(amounts[keep]),
                    ], schema=INCOMES))
            # The year before: the same conditions, less improved (a few more unsafe
            # houses and unsanitary toilets), so that changes over time have a subject.
            worse = rng.random(n) < 0.05
            for y, w in ((year - 1, worse), (year, np.zeros(n, dtype=bool))):
                writers["conditions"].write_table(pa.Table.from_arrays([
                    pa.array(hid), pa.array(np.full(n, y, np.int16)),
                    pa.array(d.housing_safe & ~w), pa.array(d.water_safe),
                    _cat(d.fuel, cal.COOKING_FUEL[0]),
                    _cat(np.where(w, cal.TOILET[0].index("non_sanitary"), d.toilet), cal.TOILET[0]),
                    pa.array(d.electricity), pa.array(d.road), pa.array(d.internet),
                    pa.array(d.food_secure), pa.array(d.clothing_secure),
                    pa.array(d.medical_fen), pa.array(d.disaster_fen),
                    pa.array(d.assets.astype(np.int16)), pa.array(d.cooperative),
                    pa.array(d.kitchen), pa.array(d.tap_water),
                ], schema=CONDITIONS))
            next_hh += n
            next_member += total
            done += n
            if progress:
                progress(done)
    finally:
        for w in writers.values():
            w.close()
    _write_counties(out / "counties.parquet", chosen, rng)
    return out


def _write_counties(path: Path, counties: np.ndarray, rng: np.random.Generator) -> None:
    """County statistics for UNDP's index that households cannot tell (production and
    financial facilities, network and road coverage, night lights), driven by one latent
    level of development per county."""
    n = len(counties)
    dev = rng.beta(2, 2, n)
    def rate(lo, hi, noise=0.08):
        return np.clip(lo + (hi - lo) * dev + rng.normal(0, noise, n), 0, 1)
    pq.write_table(pa.Table.from_arrays([
        pa.array(counties.astype(object)),
        pa.array(np.full(n, None), pa.float64()), pa.array(np.full(n, None), pa.float64()),
        pa.array(np.full(n, None), pa.float64()),
        pa.array(rate(0.6, 1.0)), pa.array(rate(0.2, 0.9)), pa.array(rate(0.7, 1.0)),
        pa.array(rate(0.3, 0.95)), pa.array(np.round(np.exp(rng.normal(0, 0.5, n)) * (0.2 + 5 * dev), 3)),
    ], schema=COUNTIES), path)
