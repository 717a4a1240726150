"""``ecpa assess``: input folder + configuration -> output folder.

Writes ``households.parquet`` (every household's assessed status with its reasons),
``mpi``, ``fgt``, ``guarantees``, ``undp_counties``, ``monitoring`` (Parquet and CSV),
``changes`` when a comparison year is set, and ``summary.xlsx``.  The ratios are
computed here from the engine's sums (small tables), the same way on either engine."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import InvalidInput
from .config import Config
from .engine import (
    RISK_CATEGORIES,
    Plan,
    aggregate_sql,
    check_inputs,
    county_sql,
    flag_bits,
    household_pass,
    regions_sql,
    make_backend,
    make_plan,
    monitoring_sql,
    register_inputs,
)

STEPS = ("check input", "households", "aggregates", "counties", "monitoring", "write")


@dataclass
class Result:
    out_dir: Path
    households: int
    mpi: pd.DataFrame
    fgt: pd.DataFrame
    guarantees: pd.DataFrame
    undp: pd.DataFrame
    monitoring_count: int
    changes: pd.DataFrame | None = None
    # Registered poor households the assessment finds out of poverty (live database runs).
    exit_candidates: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _num(table: pa.Table, name: str, dtype=float) -> np.ndarray:
    """A numeric column as numpy, nulls as 0."""
    return pc.fill_null(table.column(name), 0).to_numpy().astype(dtype, copy=False)


def _measures(sums: pa.Table, plan: Plan):
    """Every summed fact as (name, function giving its vector over the engine's rows):
    counts and weighted sums times the bits of each row's fact pattern.  Computed one at
    a time so that memory stays at a few vectors however many facts there are."""
    pat = _num(sums, "pattern", np.int64)
    index = {name: i for i, (name, _) in enumerate(flag_bits(plan))}

    def bit(name: str) -> np.ndarray:
        return (pat >> index[name]) & 1

    pop = _num(sums, "population")
    hh = _num(sums, "households")
    ws = _num(sums, "weighted_score")
    out = [("households", lambda: hh), ("population", lambda: pop),
           ("pop_income", lambda: pop * bit("income_known"))]
    for n in plan.config.lines:
        out += [(f"fgt0_{n}", lambda n=n: pop * bit(f"poor_{n}")),
                (f"fgt1_{n}", lambda n=n: _num(sums, f"fgt1_{n}")),
                (f"fgt2_{n}", lambda n=n: _num(sums, f"fgt2_{n}")),
                (f"poor_households_{n}", lambda n=n: hh * bit(f"poor_{n}"))]
    out += [(f"g_{g.name}", lambda g=g: pop * bit(f"g_{g.name}")) for g in plan.guarantees]
    out.append(("g_any", lambda: pop * bit("g_any")))
    out += [(f"uh_{j.name}", lambda j=j: pop * bit(f"d_{j.name}")) for j in plan.indicators]
    for i in range(len(plan.ks)):
        out += [(f"q_{i}", lambda i=i: pop * bit(f"mpi_poor_{i}")),
                (f"qa_{i}", lambda i=i: ws * bit(f"mpi_poor_{i}"))]
        out += [(f"ch_{i}_{j.name}", lambda i=i, j=j: pop * (bit(f"mpi_poor_{i}") & bit(f"d_{j.name}")))
                for j in plan.indicators]
    out += [(f"risk_{c}", lambda c=c: hh * bit(f"risk_{c}")) for c in RISK_CATEGORIES]
    return out


def _codes(*columns: pa.Array) -> tuple[np.ndarray, list[list]]:
    """Integer group codes for rows keyed by one or more (string) columns, and each key
    column of the groups: every column dictionary-encoded in Arrow, the indices combined
    in mixed radix and factorised."""
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    dictionaries = []
    for col in columns:
        enc = pc.dictionary_encode(col, null_encoding="encode")
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        values = enc.dictionary.to_pylist()
        combined = combined * max(len(values), 1) + enc.indices.to_numpy(zero_copy_only=False)
        dictionaries.append(values)
    codes, uniq = pd.factorize(combined)
    keys = []
    for values in reversed(dictionaries):
        uniq, r = np.divmod(uniq, max(len(values), 1))
        keys.append([values[i] for i in r])
    return codes, keys[::-1]


def rollup(sums: pa.Table, plan: Plan, regions: pa.Table | None = None) -> pd.DataFrame:
    """From the engine's rows (finest region x fact pattern, and top level x subgroup x
    pattern), the sums of every fact for every level and subgroup, labelled with level
    ('total', 'province', …), code, subgroup and its value.  Sums by np.bincount:
    the finest rows into finest regions once, then those into each coarser level."""
    levels = plan.config.levels
    keys = [f"{lv}_code" for lv in levels]
    subs = list(plan.subgroup_sql)
    measures = _measures(sums, plan)
    finest = np.ones(sums.num_rows, dtype=bool)
    for s in subs:
        finest &= _num(sums, f"lvl_sg_{s}", np.int64) == 1
    fine_rows = sums.filter(pa.array(finest))
    # Finest regions, and each level's group of every finest region.
    if keys:
        fine_codes, (fine,) = _codes(fine_rows.column(keys[-1]))
        n_fine = len(fine)
        # Parents of every finest region (the first seen, should codes disagree).
        parents = (regions.to_pandas() if regions is not None else pd.DataFrame(columns=keys)) \
            .drop_duplicates(keys[-1]).set_index(keys[-1]).reindex(pd.Index(fine, dtype=object))
        fine_keys = [parents[k].to_numpy(dtype=object) for k in keys[:-1]] + [np.asarray(fine, dtype=object)]
    else:
        fine_codes, fine_keys, n_fine = np.zeros(int(finest.sum()), dtype=np.int64), [], 1
    level_groups = [("total", np.zeros(n_fine, dtype=np.int64), [None], None)]
    for lv, column in zip(levels, fine_keys):
        codes, (uniq,) = _codes(pa.array(column, pa.string()))
        level_groups.append((lv, codes, list(uniq), None))
    sub_groups = []
    for s in subs:
        rows = _num(sums, f"lvl_sg_{s}", np.int64) == 0
        part = sums.filter(pa.array(rows))
        vals = part.column(f"sg_{s}")
        codes, (uniq,) = _codes(vals)
        sub_groups.append((rows, "total", codes, [None] * len(uniq), (s, list(uniq))))
        if keys:
            codes, (top, uniq) = _codes(part.column(keys[0]), vals)
            sub_groups.append((rows, levels[0], codes, list(top), (s, list(uniq))))
    level_sums = [{} for _ in level_groups]
    sub_sums = [{} for _ in sub_groups]
    for name, vector in measures:
        v = vector()
        fine = np.bincount(fine_codes, weights=v[finest], minlength=n_fine)
        for out, (_, codes, labels, _) in zip(level_sums, level_groups):
            out[name] = np.bincount(codes, weights=fine, minlength=len(labels))
        for out, (rows, _, codes, labels, _) in zip(sub_sums, sub_groups):
            out[name] = np.bincount(codes, weights=v[rows], minlength=len(labels))
    parts = []
    for (level, _, labels, _), values in zip(level_groups, level_sums):
        parts.append(_labelled(level, labels, None, [None] * len(labels), values))
    for (_, level, _, labels, (s, sub_values)), values in zip(sub_groups, sub_sums):
        parts.append(_labelled(level, labels, s, sub_values, values))
    frame = pd.concat(parts, ignore_index=True)
    # A stable order whatever the input's: total first, then level by level, by code.
    order = {lv: i for i, lv in enumerate(["total", *levels])}
    frame = frame.assign(_lv=frame["level"].map(order),
                         _sub=frame["subgroup"].notna()).sort_values(
        ["_sub", "subgroup", "_lv", "code", "subgroup_value"], na_position="first",
        kind="stable").drop(columns=["_lv", "_sub"]).reset_index(drop=True)
    counts = ["households"] + [c for c in frame.columns if c.startswith(("poor_households_", "risk_"))]
    frame[counts] = frame[counts].round().astype("int64")
    return frame


def _labelled(level: str, codes: list, subgroup: str | None, sub_values: list,
              values: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(codes)
    head = pd.DataFrame({"level": [level] * n, "code": codes, "subgroup": [subgroup] * n,
                         "subgroup_value": sub_values})
    return pd.concat([head, pd.DataFrame(values)], axis=1)


def _div(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / b, np.nan)


def af_table(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """H, A, M0, censored/uncensored headcounts and contributions for every k."""
    rows = []
    ind = plan.indicators
    for i, k in enumerate(plan.ks):
        t = frame[["level", "code", "subgroup", "subgroup_value", "households", "population"]].copy()
        t.insert(4, "k", float(k))
        pop = frame["population"]
        t["H"] = _div(frame[f"q_{i}"], pop)
        t["M0"] = _div(frame[f"qa_{i}"], pop)
        t["A"] = _div(frame[f"qa_{i}"], frame[f"q_{i}"])
        t["poor_population"] = frame[f"q_{i}"]
        contrib = {}
        for j in ind:
            ch = _div(frame[f"ch_{i}_{j.name}"], pop)
            t[f"censored_{j.name}"] = ch
            t[f"uncensored_{j.name}"] = _div(frame[f"uh_{j.name}"], pop)
            contrib[j.name] = _div(float(j.weight) * ch, t["M0"])
        for j in ind:
            t[f"contribution_{j.name}"] = contrib[j.name]
        t["drivers"] = top_names(pd.DataFrame(contrib), 3, largest=True)
        rows.append(t)
    return pd.concat(rows, ignore_index=True)


def top_names(values: pd.DataFrame, n: int, largest: bool) -> list[str]:
    """Per row, the names of the ``n`` largest positive (or smallest) values, comma-joined;
    missing values never count."""
    v = values.to_numpy(dtype=float)
    names = np.asarray(values.columns)
    key = np.where(np.isnan(v), np.inf, -v if largest else v)
    order = np.argsort(key, axis=1, kind="stable")[:, :n]
    picked = np.take_along_axis(key, order, axis=1)
    ok = np.isfinite(picked) & ((picked < 0) if largest else True)
    return [",".join(names[o][m]) for o, m in zip(order, ok)]


def fgt_table(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    rows = []
    for name in plan.config.lines:
        t = frame[["level", "code", "subgroup", "subgroup_value", "households"]].copy()
        t["line"] = name
        t["line_yuan"] = plan.line_fen[name] / 100
        t["population"] = frame["pop_income"]
        t["poor_population"] = frame[f"fgt0_{name}"]
        t["poor_households"] = frame[f"poor_households_{name}"]
        t["headcount_ratio"] = _div(frame[f"fgt0_{name}"], frame["pop_income"])
        t["poverty_gap"] = _div(frame[f"fgt1_{name}"], frame["pop_income"])
        t["squared_poverty_gap"] = _div(frame[f"fgt2_{name}"], frame["pop_income"])
        rows.append(t)
    return pd.concat(rows, ignore_index=True)


def guarantees_table(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    t = frame[["level", "code", "subgroup", "subgroup_value", "households", "population"]].copy()
    for g in plan.guarantees:
        t[f"failing_{g.name}"] = _div(frame[f"g_{g.name}"], frame["population"])
    t["failing_any"] = _div(frame["g_any"], frame["population"])
    for cat in ("unstable_exited", "marginal", "sudden_hardship"):
        t[f"at_risk_{cat}"] = frame[f"risk_{cat}"]
    return t


def undp_table(county_shares: pd.DataFrame, counties: pd.DataFrame | None,
               config: Config) -> pd.DataFrame:
    """UNDP's composite: min-max normalised indicators (higher is better), weighted mean,
    ranked from the most deprived county (rank 1); the weakest indicators named."""
    weights = config.undp.weights
    t = county_shares.copy()
    if counties is not None and len(counties):
        # County statistics from the counties file take precedence over register shares.
        t = t.merge(counties, on="county_code", how="outer", suffixes=("_register", ""))
        for col in list(weights):
            reg = f"{col}_register"
            if reg in t.columns:
                t[col] = t[col].where(t[col].notna(), t[reg])
                t = t.drop(columns=[reg])
    used = [c for c in weights if c in t.columns and t[c].notna().any() and weights[c] > 0]
    missing = [c for c in weights if c not in used]
    if not used or t.empty:
        return pd.DataFrame(columns=["county_code", "composite", "rank", "weakest"])
    norm = {}
    for c in used:
        v = t[c].astype(float)
        lo, hi = v.min(), v.max()
        norm[c] = (v - lo) / (hi - lo) if hi > lo else pd.Series(1.0, index=t.index)
    n = pd.DataFrame(norm)
    w = pd.Series({c: float(weights[c]) for c in used})
    avail = n.notna().astype(float) * w
    t["composite"] = (n.fillna(0) * w).sum(axis=1) / avail.sum(axis=1)
    t["indicators_used"] = n.notna().sum(axis=1)
    t["weakest"] = top_names(n, config.undp.weakest, largest=False)
    for c in used:
        t[f"normalised_{c}"] = n[c]
    t = t.sort_values(["composite", "county_code"], na_position="last").reset_index(drop=True)
    t["rank"] = np.arange(1, len(t) + 1)
    t.attrs["not_available"] = missing
    return t


def _write(df: pd.DataFrame, out: Path, name: str) -> None:
    # pyarrow writes CSV many times faster than pandas (village tables are large).
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, out / f"{name}.parquet")
    pacsv.write_csv(table, out / f"{name}.csv")


def _summary_xlsx(result: Result, plan: Plan, path: Path) -> None:
    with pd.ExcelWriter(path, engine="xlsxwriter") as xw:
        overview = pd.DataFrame([
            ("year", plan.year), ("profile", plan.config.af.name),
            ("k", ", ".join(str(k) for k in plan.ks)), ("households", result.households),
            ("households at risk", result.monitoring_count),
        ] + [(f"line {n} (yuan/person/year)", plan.line_fen[n] / 100) for n in plan.config.lines],
            columns=["item", "value"])
        overview.to_excel(xw, sheet_name="overview", index=False)
        top = ["total", "province", "county"]
        # The workbook is for reading: H, A, M0 and contributions (the censored and
        # uncensored headcounts are in mpi.csv).
        mpi = result.mpi[[c for c in result.mpi.columns
                          if not c.startswith(("censored_", "uncensored_", "se_", "ci_"))]]
        for name, df in (("mpi", mpi), ("fgt", result.fgt), ("guarantees", result.guarantees)):
            df[df["level"].isin(top)].to_excel(xw, sheet_name=name, index=False)
        cols = [c for c in ("rank", "county_code", "composite", "weakest") if c in result.undp]
        result.undp[cols + [c for c in result.undp.columns if c not in cols]].to_excel(
            xw, sheet_name="undp_counties", index=False)
        if result.changes is not None:
            ch = result.changes
            ch[ch["level"].isin(top)].to_excel(xw, sheet_name="changes", index=False)


def run_pass(backend, plan: Plan, tables, hh_path: Path) -> pd.DataFrame:
    """Household pass to ``hh_path``, then the aggregate pass; returns the sums."""
    household_pass(backend, plan, tables, hh_path)
    backend.register_parquet("hh", hh_path)
    levels = plan.config.levels
    regions = backend.arrow(regions_sql(levels)) if levels else None
    return rollup(backend.arrow(aggregate_sql(plan, levels)), plan, regions)


def changes_table(now: pd.DataFrame, before: pd.DataFrame, years: int) -> pd.DataFrame:
    """Absolute, relative and annualised change of H, A and M0 between two years."""
    keys = ["level", "code", "subgroup", "subgroup_value", "k"]
    m = now.merge(before, on=keys, suffixes=("", "_before"))
    out = m[keys].copy()
    for x in ("H", "A", "M0"):
        a, b = m[x].astype(float), m[f"{x}_before"].astype(float)
        out[f"{x}_before"], out[x] = b, a
        out[f"{x}_change"] = a - b
        out[f"{x}_relative"] = _div(a - b, b)
        out[f"{x}_annualised"] = (a - b) / years
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{x}_annualised_relative"] = np.where(b > 0, (a / b) ** (1 / years) - 1, np.nan)
    return out


def assess(input_dir: Path, config: Config, out_dir: Path, engine: str = "duckdb",
           progress: Callable[[str], None] | None = None, backend=None,
           memory_limit: str | None = None) -> Result:
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    say = progress or (lambda step: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        timings[step] = now - t0
        t0 = now

    say("check input")
    plan = make_plan(config)
    tables = check_inputs(plan, input_dir)
    # Results are written to a staging folder and moved into place only when all are
    # written: a failed run leaves no half-written output.
    final_dir = out_dir
    out_dir = final_dir.parent / f".{final_dir.name}.partial"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    own = backend is None
    if own:
        opts = {"memory_limit": memory_limit} if engine == "duckdb" and memory_limit else {}
        backend = make_backend(engine, **opts)
    try:
        register_inputs(backend, tables)
        lap("check input")
        say("households")
        hh_path = out_dir / "households.parquet"
        if hh_path.is_dir():
            shutil.rmtree(hh_path)
        sums = run_pass(backend, plan, tables, hh_path)
        lap("households+aggregates")
        say("aggregates")
        mpi = af_table(sums, plan)
        fgt = fgt_table(sums, plan)
        guar = guarantees_table(sums, plan)
        total_households = int(sums.loc[(sums["level"] == "total") & sums["subgroup"].isna(),
                                        "households"].iloc[0]) if len(sums) else 0
        if plan.config.survey.weight or plan.config.survey.cluster:
            from .survey import survey_errors
            cols = ["weight", "survey_stratum", "survey_cluster", "score", "income_pc_fen"] + \
                   [f"mpi_poor_{i}" for i in range(len(plan.ks))] + \
                   [f"{p}_{n}" for n in plan.config.lines for p in ("poor", "gap")] + \
                   [f"{lv}_code" for lv in plan.config.levels] + \
                   [f"sg_{s}" for s in plan.subgroup_sql]
            hh = backend.arrow(f"SELECT {', '.join(cols)} FROM hh").to_pandas()
            mpi, fgt = survey_errors(mpi, fgt, hh, plan)
        say("counties")
        shares = backend.arrow(county_sql()).to_pandas()
        counties = None
        if "counties" in tables:
            counties = backend.arrow("SELECT * FROM counties").to_pandas()
            counties = counties.dropna(axis=1, how="all")
        undp = undp_table(shares, counties, config)
        lap("counties")
        say("monitoring")
        mon_path = out_dir / "monitoring.parquet"
        if mon_path.is_dir():
            shutil.rmtree(mon_path)
        backend.to_parquet(monitoring_sql(plan), mon_path)
        monitoring = backend.arrow("SELECT COUNT(*) AS n FROM hh WHERE risk_category IS NOT NULL")
        mon_count = int(monitoring.column(0)[0].as_py())
        lap("monitoring")
        changes = None
        if config.compare_year:
            say("comparison year")
            before_plan = make_plan(config, year=config.compare_year)
            tmp = out_dir / f".households_{config.compare_year}.parquet"
            before = af_table(run_pass(backend, before_plan, tables, tmp), before_plan)
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            backend.register_parquet("hh", hh_path)
            changes = changes_table(mpi, before, config.year - config.compare_year)
            lap("comparison year")
        say("write")
        result = Result(out_dir, total_households, mpi, fgt, guar, undp, mon_count, changes,
                        timings)
        _write(mpi, out_dir, "mpi")
        _write(fgt, out_dir, "fgt")
        _write(guar, out_dir, "guarantees")
        _write(undp, out_dir, "undp_counties")
        if changes is not None:
            _write(changes, out_dir, "changes")
        backend.register_parquet("monitoring_out", mon_path)
        backend.to_csv("SELECT * FROM monitoring_out", out_dir / "monitoring.csv")
        _summary_xlsx(result, plan, out_dir / "summary.xlsx")
        (out_dir / "summary.json").write_text(json.dumps({
            "year": plan.year, "profile": plan.config.af.name, "engine": backend.name,
            "households": total_households, "at_risk": mon_count,
            "k": [str(k) for k in plan.ks],
            "lines_fen": plan.line_fen,
            "undp_indicators_not_available": undp.attrs.get("not_available", []),
            "seconds": timings,
        }, indent=2, ensure_ascii=False), encoding="utf-8")
        lap("write")
        _publish(out_dir, final_dir)
        result.out_dir = final_dir
        return result
    except BaseException as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        if _engine_error(exc):
            # A rule that passed the checks can still fail on the data (a cast of a
            # text value, say): say so plainly, with the engine's own words.
            raise InvalidInput(f"the assessment failed on the data: {str(exc).strip()}",
                               engine=backend.name) from exc
        raise
    finally:
        if own:
            backend.close()


def _engine_error(exc: BaseException) -> bool:
    try:
        import duckdb
        if isinstance(exc, duckdb.Error):
            return True
    except ImportError:
        pass
    return type(exc).__module__.startswith(("pyspark.errors", "py4j"))


def _publish(staging: Path, final: Path) -> None:
    final.mkdir(parents=True, exist_ok=True)
    for item in staging.iterdir():
        target = final / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    staging.rmdir()
