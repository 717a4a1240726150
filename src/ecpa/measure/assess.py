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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency; plain Python is slow but right
    def njit(**_options):
        return lambda f: f

from ..errors import InvalidInput
from .config import Config
from .engine import (
    MONITORING_ORDER,
    RISK_CATEGORIES,
    Plan,
    aggregate_sql,
    check_inputs,
    county_sql,
    county_sums_sql,
    facts_sql,
    flag_bits,
    household_pass,
    make_backend,
    make_plan,
    monitoring_sql,
    regions_sql,
    register_inputs,
)

# The longest list written as CSV as well as Parquet: Excel's rows per sheet less the
# header.  A longer CSV (the national monitoring list: 7M households, 1.2 GB) opens in no
# spreadsheet and costs as much to write as the whole assessment of a province; such a
# list is written as Parquet only (docs/measurement.md).
CSV_ROWS = 1_048_575

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


def _terms(plan: Plan) -> list[tuple[str, str, str | None, str | None]]:
    """Every summed figure as (name, amount, fact, second fact): the sum of the amount
    (a column of ``facts_sql``) over the households having both facts (None: all)."""
    out = [("households", "households", None, None), ("population", "population", None, None),
           ("pop_income", "population", "income_known", None)]
    for n in plan.config.lines:
        out += [(f"fgt0_{n}", "population", f"poor_{n}", None),
                (f"fgt1_{n}", f"fgt1_{n}", None, None),
                (f"fgt2_{n}", f"fgt2_{n}", None, None),
                (f"poor_households_{n}", "households", f"poor_{n}", None)]
    out += [(f"g_{g.name}", "population", f"g_{g.name}", None) for g in plan.guarantees]
    out.append(("g_any", "population", "g_any", None))
    out += [(f"uh_{j.name}", "population", f"d_{j.name}", None) for j in plan.indicators]
    for i in range(len(plan.ks)):
        out += [(f"q_{i}", "population", f"mpi_poor_{i}", None),
                (f"qa_{i}", "weighted_score", f"mpi_poor_{i}", None)]
        out += [(f"ch_{i}_{j.name}", "population", f"mpi_poor_{i}", f"d_{j.name}")
                for j in plan.indicators]
    out += [(f"risk_{c}", "households", f"risk_{c}", None) for c in RISK_CATEGORIES]
    return out


@njit(cache=True, nogil=True)
def _accumulate(order, groups, amounts, pattern, amount_of, bit_a, bit_b, outs):  # pragma: no cover
    """outs[k][groups[r, k], t] += amounts[r, amount_of[t]] for every row r that has
    fact bits bit_a[t] and bit_b[t] of its pattern (-1: no condition), in every grouping
    k where the row has a group (-1: none); rows taken in ``order``.  One pass over the
    rows for all the figures of all the groupings: numpy takes a pass per figure and
    grouping (200 of them) and is ten times slower."""
    for q in range(order.shape[0]):
        r = order[q]
        p = pattern[r]
        for t in range(amount_of.shape[0]):
            a = bit_a[t]
            b = bit_b[t]
            if (a < 0 or (p >> a) & 1) and (b < 0 or (p >> b) & 1):
                v = amounts[r, amount_of[t]]
                for k in range(groups.shape[1]):
                    g = groups[r, k]
                    if g >= 0:
                        outs[k][g, t] += v


def _encode(column) -> tuple[np.ndarray, list]:
    """A key column as dictionary indices and the dictionary's values (NULL a value)."""
    enc = pc.dictionary_encode(column, null_encoding="encode")
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks() if enc.num_chunks != 1 else enc.chunk(0)
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


class _Groups:
    """Figures summed by a key, over chunks of rows: global group numbers for the keys
    seen so far and a growing matrix of sums (group x figure)."""

    def __init__(self, n_terms: int) -> None:
        self.keys: list = []
        self.index = pd.Index([], dtype=object)
        self.sums = np.zeros((1024, n_terms))

    def row_ids(self, encoded: list[tuple[np.ndarray, list]], mask: np.ndarray | None,
                n: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's group number (-1 where ``mask`` is False), new keys getting new
        numbers; and the first row of each new key."""
        rows = np.arange(n) if mask is None else np.flatnonzero(mask)
        combined = np.zeros(len(rows), dtype=np.int64)
        for indices, values in encoded:
            combined = combined * max(len(values), 1) + indices[rows]
        local, uniq = pd.factorize(combined)
        keys = []
        for _, values in reversed(encoded):
            uniq, r = np.divmod(uniq, max(len(values), 1))
            keys.append([values[i] for i in r])
        uniques = keys[0] if len(keys) == 1 else list(zip(*keys[::-1]))
        if not encoded:
            uniques = [None] * len(uniq)
        known = self.index.get_indexer(pd.Index(uniques, dtype=object, tupleize_cols=False))
        new = np.flatnonzero(known < 0)
        first = np.empty(len(uniques), dtype=np.int64)
        first[local[::-1]] = rows[::-1]
        if len(new):
            known[new] = np.arange(len(self.keys), len(self.keys) + len(new))
            self.keys += [uniques[i] for i in new]
            self.index = pd.Index(self.keys, dtype=object, tupleize_cols=False)
            if len(self.keys) > len(self.sums):
                grown = np.zeros((max(len(self.keys), 2 * len(self.sums)), self.sums.shape[1]))
                grown[:len(self.sums)] = self.sums
                self.sums = grown
        out = np.full(n, -1, dtype=np.int64)
        out[rows] = known[local]
        return out, first[new]

    def result(self) -> np.ndarray:
        return self.sums[:len(self.keys)]


class _Numbered:
    """Figures summed by a number the engine already gave each row (0..n-1)."""

    def __init__(self, n: int, n_terms: int) -> None:
        self.sums = np.zeros((max(n, 1), n_terms))
        self.n = n

    def result(self) -> np.ndarray:
        return self.sums[:self.n]


class Sums:
    """The figures of every region level and subgroup, summed chunk by chunk from the
    rows of ``facts_sql`` (one per household) or ``aggregate_sql`` (per region and fact
    pattern, with ``lvl_*`` columns): by the finest region, and by each subgroup within
    the top level.  ``frame`` rolls them up to every level."""

    def __init__(self, plan: Plan, regions: pa.Table | None = None) -> None:
        """``regions``: the finest regions as numbered by ``regions_sql`` (in number
        order), when the rows carry that number (``facts_sql(numbered=True)``)."""
        self.plan = plan
        self.terms = _terms(plan)
        bits = {name: i for i, (name, _) in enumerate(flag_bits(plan))}
        self.amount_names = list(dict.fromkeys(t[1] for t in self.terms))
        self.spec = (np.array([self.amount_names.index(t[1]) for t in self.terms], np.int64),
                     np.array([bits[t[2]] if t[2] else -1 for t in self.terms], np.int64),
                     np.array([bits[t[3]] if t[3] else -1 for t in self.terms], np.int64))
        self.keys = [f"{lv}_code" for lv in plan.config.levels]
        self.fine = _Groups(len(self.terms))
        self.parents: list[pa.Table] = []  # level codes of each finest region
        if regions is not None and self.keys:
            self.fine = _Numbered(regions.num_rows, len(self.terms))
            self.parents = [regions.select(self.keys)]
        self.subs = {s: _Groups(len(self.terms)) for s in plan.subgroup_sql}

    def add(self, rows: pa.Table) -> None:
        n = rows.num_rows
        if not n:
            return
        amounts = np.column_stack([_num(rows, name) for name in self.amount_names])
        pattern = np.ascontiguousarray(_num(rows, "pattern", np.int64))
        encoded: dict[str, tuple[np.ndarray, list]] = {}

        def enc(names: list[str]) -> list:
            for name in names:
                if name not in encoded:
                    encoded[name] = _encode(rows.column(name))
            return [encoded[name] for name in names]

        # Rows of aggregate_sql belong to one grouping each; household rows to all.
        grouped = bool(self.subs) and f"lvl_sg_{next(iter(self.subs))}" in rows.column_names
        finest = None
        if grouped:
            finest = np.ones(n, dtype=bool)
            for s in self.subs:
                finest &= _num(rows, f"lvl_sg_{s}", np.int64) == 1
        if isinstance(self.fine, _Numbered):
            fine = _num(rows, "region_no", np.int64)
        else:
            fine, new = self.fine.row_ids(enc(self.keys), finest, n)
            if self.keys and len(new):
                self.parents.append(rows.select(self.keys).take(pa.array(new)))
        groups = [fine]
        for s, g in self.subs.items():
            mine = (_num(rows, f"lvl_sg_{s}", np.int64) == 0) if grouped else None
            groups.append(g.row_ids(enc(self.keys[:1] + [f"sg_{s}"]), mine, n)[0])
        outs = [self.fine] + list(self.subs.values())
        # Household rows are summed in household order, whatever order the engine's
        # threads gave them in: floating-point sums depend on the order of their terms,
        # and the same register must give the same figures to the last digit every run.
        # (The engine returns them in runs already ordered: the sort costs a few ms.)
        order = (np.argsort(_num(rows, "household_id", np.int64), kind="stable")
                 if "household_id" in rows.column_names else np.arange(n))
        _accumulate(order, np.ascontiguousarray(np.column_stack(groups)), amounts, pattern,
                    *self.spec, tuple(g.sums for g in outs))

    def frame(self) -> pd.DataFrame:
        """The sums of every figure for every level and subgroup, labelled with level
        ('total', 'province', …), code, subgroup and its value."""
        levels, keys = self.plan.config.levels, self.keys
        names = [t[0] for t in self.terms]
        fine_sums = self.fine.result()
        if keys:
            # The level codes of every finest region (a combination of them), in
            # the order of the finest regions' numbers.
            parents = pa.concat_tables(self.parents) if self.parents else None
            fine_keys = [np.asarray(parents.column(k).to_pylist() if parents else [], dtype=object)
                         for k in keys]
        else:
            fine_keys, fine_sums = [], fine_sums[:1] if len(fine_sums) else np.zeros((1, len(names)))
        # (level, codes, subgroup, its values, sums): total first, then level by level,
        # then each subgroup (by name) for the total and within the top level.
        parts = [("total", [None], None, [None], fine_sums.sum(axis=0)[None, :])]
        for lv, column in zip(levels, fine_keys):
            codes, (uniq,) = _codes(pa.array(column, pa.string()))
            parts.append((lv, list(uniq), None, [None] * len(uniq),
                          _group_sums(codes, fine_sums, len(uniq))))
        for s in sorted(self.subs):
            groups = self.subs[s]
            sums = groups.result()
            pairs = groups.keys if keys else [(None, k) for k in groups.keys]
            # In key order, not the order the keys were first met in, so that the
            # totals are summed in the same order every run.
            order = _key_order([p[0] for p in pairs], [p[-1] for p in pairs])
            pairs, sums = [pairs[i] for i in order], sums[order]
            codes, (uniq,) = _codes(pa.array([p[-1] for p in pairs], pa.string()))
            parts.append(("total", [None] * len(uniq), s, list(uniq),
                          _group_sums(codes, sums, len(uniq))))
            if keys:
                parts.append((levels[0], [p[0] for p in pairs], s, [p[-1] for p in pairs], sums))
        # A stable order whatever the input's: within a part by code and subgroup value.
        head = {"level": [], "code": [], "subgroup": [], "subgroup_value": []}
        matrices = []
        for level, codes, subgroup, values, sums in parts:
            order = _key_order(codes, values)
            head["level"] += [level] * len(order)
            head["code"] += [codes[i] for i in order]
            head["subgroup"] += [subgroup] * len(order)
            head["subgroup_value"] += [values[i] for i in order]
            matrices.append(sums[order])
        matrix = np.vstack(matrices)
        counts = [t for t, name in enumerate(names)
                  if name == "households" or name.startswith(("poor_households_", "risk_"))]
        columns = {name: matrix[:, t] for t, name in enumerate(names)}
        for t in counts:
            columns[names[t]] = matrix[:, t].round().astype("int64")
        labels = pd.DataFrame({"level": head.pop("level")})
        for name, values in head.items():  # object columns: NULL codes stay None
            labels[name] = pd.Series(values, dtype=object)
        return pd.concat([labels, pd.DataFrame(columns)], axis=1)


def _key_order(codes: list, values: list) -> np.ndarray:
    """Positions of (code, subgroup value) pairs sorted by code then value, NULL first."""
    return pd.DataFrame({"c": codes, "v": values}, dtype=object).sort_values(
        ["c", "v"], na_position="first", kind="stable").index.to_numpy()


@njit(cache=True, nogil=True)
def _group_sums_kernel(codes, matrix, out):  # pragma: no cover
    for r in range(codes.shape[0]):
        g = codes[r]
        for t in range(matrix.shape[1]):
            out[g, t] += matrix[r, t]


def _group_sums(codes: np.ndarray, matrix: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``matrix`` summed by group code (one pass; row-major)."""
    out = np.zeros((n, matrix.shape[1]))
    _group_sums_kernel(np.ascontiguousarray(codes, dtype=np.int64), np.ascontiguousarray(matrix), out)
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


def rollup(sums: pa.Table, plan: Plan) -> pd.DataFrame:
    """The figures of every level and subgroup from one table of engine rows."""
    acc = Sums(plan)
    acc.add(sums)
    return acc.frame()


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
    # The names that count come first in each row (missing and non-positive values sort
    # last): join the first ok.sum() names, a column at a time (half a million regions).
    count = ok.sum(axis=1)
    out = np.full(len(v), "", dtype=object)
    for j in range(order.shape[1]):
        picked_names = names[order[:, j]].astype(object)
        out = np.where(count > j, (out + "," if j else out) + picked_names, out)
    return out.tolist()


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


def run_pass(backend, plan: Plan, tables, hh_path: Path | None,
             each_chunk: Callable[[object, bool], None] | None = None,
             after_chunks: Callable[[], None] | None = None) -> pd.DataFrame:
    """The household pass to ``hh_path`` and the sums of its results, chunk by chunk
    while each chunk is in memory (``each_chunk(b, first)`` adds what else the caller
    gathers, with ``b`` the engine connection holding the chunk; ``after_chunks()``
    starts what can go on beside the roll-up); returns the sums of every level and
    subgroup."""
    levels = plan.config.levels
    if backend.sums_in_engine or not levels:
        sums = Sums(plan)
        rows_sql = aggregate_sql(plan, levels) if backend.sums_in_engine else facts_sql(plan, levels)
    else:
        # The finest regions numbered once, from the whole register, before the chunks.
        backend.append("regions", regions_sql(levels), True)
        sums = Sums(plan, backend.arrow("SELECT * FROM regions ORDER BY region_no"))
        rows_sql = facts_sql(plan, levels, numbered=True)
    # Chunks finish in any order on the engine's lanes; their rows are summed by one
    # thread in chunk order all the same, so that the figures are the same to the last
    # bit from run to run.
    waiting: dict[int, pa.Table] = {}
    summed = [0]

    def add_in_order(i: int, rows: pa.Table) -> None:
        waiting[i] = rows
        while summed[0] in waiting:
            sums.add(waiting.pop(summed[0]))
            summed[0] += 1

    with ThreadPoolExecutor(max_workers=1) as adder:
        added = []

        def work(b, i: int) -> None:
            rows = b.arrow(rows_sql)
            if each_chunk:
                each_chunk(b, i == 0)
            added.append(adder.submit(add_in_order, i, rows))

        household_pass(backend, plan, tables, hh_path, work)
        for job in added:
            job.result()
    if hh_path is not None:
        backend.register_parquet("hh", hh_path)
    if not backend.sums_in_engine and levels:
        backend.drop("regions")
    if after_chunks:
        after_chunks()
    return sums.frame()


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
    background = ThreadPoolExecutor(max_workers=1)
    monitoring = None
    try:
        register_inputs(backend, tables)
        lap("check input")
        say("households")
        hh_path = out_dir / "households.parquet"
        if hh_path.is_dir():
            shutil.rmtree(hh_path)

        def gather(b, first: bool) -> None:
            # From each chunk's results while they are in memory: UNDP's county sums
            # and the households at risk.
            b.append("county_sums", county_sums_sql(), first)
            b.append("monitoring_rows", monitoring_sql(plan), first)

        mon_count = 0
        mon_path = out_dir / "monitoring.parquet"

        def write_monitoring(b) -> None:
            try:
                b.to_parquet(f"SELECT * FROM monitoring_rows {MONITORING_ORDER}", mon_path)
                if mon_count <= CSV_ROWS:
                    b.to_csv(f"SELECT * FROM monitoring_rows {MONITORING_ORDER}",
                             out_dir / "monitoring.csv")
            finally:
                if b is not backend:
                    b.close()

        def start_monitoring() -> None:
            # The monitoring list (7M households sorted by village at 30M, 4 s) is
            # written by the engine on its own connection while Python rolls the sums
            # up and makes the tables; where the engine has no second connection, in
            # its turn below.
            nonlocal mon_count, monitoring
            mon_count = int(backend.arrow("SELECT COUNT(*) AS n FROM monitoring_rows")
                            .column(0)[0].as_py())
            if hasattr(backend, "lane"):
                monitoring = background.submit(write_monitoring, backend.lane())

        sums = run_pass(backend, plan, tables, hh_path, gather, start_monitoring)
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
        shares = backend.arrow(county_sql("county_sums")).to_pandas()
        counties = None
        if "counties" in tables:
            counties = backend.arrow("SELECT * FROM counties").to_pandas()
            counties = counties.dropna(axis=1, how="all")
        undp = undp_table(shares, counties, config)
        lap("counties")
        say("monitoring")
        if monitoring is None:
            write_monitoring(backend)
        else:
            monitoring.result()
        backend.drop("county_sums", "monitoring_rows")
        lap("monitoring")
        changes = None
        if config.compare_year:
            say("comparison year")
            before_plan = make_plan(config, year=config.compare_year)
            # Only the sums of the earlier year are needed: its household results are
            # kept in memory where the engine can (DuckDB), else in a scratch file.
            tmp = None if backend.name == "duckdb" else \
                out_dir / f".households_{config.compare_year}.parquet"
            before = af_table(run_pass(backend, before_plan, tables, tmp), before_plan)
            if tmp is not None:
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            backend.register_parquet("hh", hh_path)
            changes = changes_table(mpi, before, config.year - config.compare_year)
            lap("comparison year")
        say("write")
        result = Result(out_dir, total_households, mpi, fgt, guar, undp, mon_count, changes,
                        timings)
        tables_out = {"mpi": mpi, "fgt": fgt, "guarantees": guar, "undp_counties": undp}
        if changes is not None:
            tables_out["changes"] = changes
        # Arrow writes Parquet and CSV without the GIL: the tables (half a million
        # villages each) are written two at a time while the workbook is made.
        with ThreadPoolExecutor(max_workers=2) as pool:
            written = [pool.submit(_write, df, out_dir, name) for name, df in tables_out.items()]
            _summary_xlsx(result, plan, out_dir / "summary.xlsx")
            for job in written:
                job.result()
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
        background.shutdown(wait=True)  # nothing still writing into the staging folder
        shutil.rmtree(out_dir, ignore_errors=True)
        if _engine_error(exc):
            # A rule that passed the checks can still fail on the data (a cast of a
            # text value, say): say so plainly, with the engine's own words.
            raise InvalidInput(f"the assessment failed on the data: {str(exc).strip()}",
                               engine=backend.name) from exc
        raise
    finally:
        background.shutdown(wait=True)
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
