"""The measurement engine: SQL written once (DuckDB's dialect), run on embedded DuckDB
or, transpiled by sqlglot, on Spark.

Two passes.  The household pass joins members, incomes and living conditions to each
household and writes one row per household: its persons, per-capita income, poverty on
every line with its gap, the guarantees it fails, its deprivations and score, whether it
is poor at every k, its monitoring flags and the reasons in words.  The aggregate pass
reads that file once and sums it by every region level and subgroup (GROUPING SETS); the
ratios (H, A, M0, FGT, contributions) are computed from those sums, so subgroup figures
add up to the total exactly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import sqlglot

from ..errors import InvalidInput
from ..registry.models import MonitoringCategory
from .config import Config, Rule
from .lines import PovertyLines
from .rules import HOUSEHOLD_VARS, MEMBER_VARS, SOURCE_TABLE, compile_expression
from .schema import InputTable, inspect_inputs

# Columns of the household result that are not computed from rules.
REGION_COLS = ("province_code", "county_code", "township_code", "village_code")


def _lcm(values: list[int]) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def _any_of(flags: list[str]) -> str:
    return "(" + " OR ".join(f"{f} = 1" for f in flags) + ")" if flags else "FALSE"


def _names(pairs: list[tuple[str, str]]) -> str:
    """concat_ws of the names whose flag is 1 (NULLs are skipped on both engines);
    NULL when none."""
    if not pairs:
        return "CAST(NULL AS VARCHAR)"
    parts = ", ".join(f"CASE WHEN {flag} = 1 THEN '{name}' END" for flag, name in pairs)
    return f"NULLIF(concat_ws(',', {parts}), '')"


@dataclass
class Plan:
    """Everything the SQL needs, resolved and checked."""

    config: Config
    year: int
    line_fen: dict[str, int]
    member_rules: dict[str, tuple[Rule, str, str | None]] = field(default_factory=dict)
    household_rules: dict[str, str] = field(default_factory=dict)  # prefixed name -> SQL
    subgroup_sql: dict[str, str] = field(default_factory=dict)
    required: dict[str, set[str]] = field(default_factory=dict)
    weight_lcm: int = 1
    weight_units: dict[str, int] = field(default_factory=dict)

    @property
    def indicators(self):
        return self.config.af.indicators

    @property
    def ks(self) -> list[Fraction]:
        return self.config.af.k

    @property
    def guarantees(self) -> list[Rule]:
        return self.config.guarantees

    @property
    def primary_line(self) -> str:
        return self.config.lines[0]


def make_plan(config: Config, year: int | None = None) -> Plan:
    year = year or config.year
    lines = PovertyLines.load(*config.lines_files)
    names = list(dict.fromkeys([*config.lines, config.monitoring.line]))
    line_fen = {n: lines.value(n, year).amount_fen for n in names}
    plan = Plan(config, year, line_fen)
    needed: dict[str, set[str]] = {}

    def note(columns: set[str]) -> None:
        for c in columns:
            if c in SOURCE_TABLE:
                needed.setdefault(SOURCE_TABLE[c], set()).add(c)

    def add_rule(prefix: str, rule: Rule, where: str) -> None:
        key = f"{prefix}_{rule.name}"
        if rule.level == "member":
            when = compile_expression(rule.when, MEMBER_VARS, f"{where}.when", line_fen)
            applies = (compile_expression(rule.applies, MEMBER_VARS, f"{where}.applies", line_fen)
                       if rule.applies else None)
            note(when.columns | (applies.columns if applies else set()))
            plan.member_rules[key] = (rule, when.sql, applies.sql if applies else None)
        else:
            if rule.applies:
                raise InvalidInput(f"{where}: 'applies' is for member-level rules")
            when = compile_expression(rule.when, HOUSEHOLD_VARS, f"{where}.when", line_fen)
            note(when.columns)
            plan.household_rules[key] = f"CASE WHEN {when.sql} THEN 1 ELSE 0 END"

    for i, ind in enumerate(config.af.indicators):
        add_rule("d", ind, f"indicator {ind.name}")
    for g in config.guarantees:
        add_rule("g", g, f"guarantee {g.name}")
    for name, text in config.subgroups.items():
        c = compile_expression(text, HOUSEHOLD_VARS, f"subgroup {name}", line_fen)
        note(c.columns)
        plan.subgroup_sql[name] = c.sql
    # Monitoring and UNDP use these where present; they are not required.
    plan.required = needed
    plan.weight_lcm = _lcm([ind.weight.denominator for ind in config.af.indicators])
    plan.weight_units = {ind.name: int(ind.weight * plan.weight_lcm) for ind in config.af.indicators}
    return plan


def _member_bits(plan: Plan) -> dict[str, str]:
    """Member rules folded into three bit masks per household (BIT_OR over members), so
    that the members pass has three aggregates however many rules there are: ``hit`` —
    some applicable member meets the rule; ``app`` — some member is applicable; ``miss`` —
    some applicable member does not meet it (only rules that need them)."""
    parts: dict[str, list[str]] = {"hit": [], "app": [], "miss": []}
    for i, (key, (rule, when, applies)) in enumerate(plan.member_rules.items()):
        app = applies or "TRUE"
        parts["hit"].append(f"CASE WHEN ({app}) AND ({when}) THEN {1 << i} ELSE 0 END")
        if rule.rule != "any" or applies:
            parts["app"].append(f"CASE WHEN ({app}) THEN {1 << i} ELSE 0 END")
        if rule.rule == "all":
            parts["miss"].append(
                f"CASE WHEN ({app}) AND NOT COALESCE(({when}), FALSE) THEN {1 << i} ELSE 0 END")
    return {name: " + ".join(p) for name, p in parts.items() if p}


def _member_rule_value(i: int, rule: Rule) -> str:
    bit = 1 << i
    hit = f"(COALESCE(m_hit, 0) & {bit}) > 0"
    app = f"(COALESCE(m_app, 0) & {bit}) > 0"
    if rule.rule == "any":
        return f"CASE WHEN {hit} THEN 1 ELSE 0 END"
    if rule.rule == "none":
        return f"CASE WHEN {app} AND NOT {hit} THEN 1 ELSE 0 END"
    return f"CASE WHEN {app} AND NOT ((COALESCE(m_miss, 0) & {bit}) > 0) THEN 1 ELSE 0 END"


def household_sql(plan: Plan) -> str:
    """The household pass: one row per household."""
    y = plan.year
    cfg = plan.config
    survey = cfg.survey
    if len(plan.member_rules) > 62:
        raise InvalidInput("at most 62 member-level rules")
    masks = _member_bits(plan)
    mrules = [f"BIT_OR({sql}) AS m_{name}" for name, sql in masks.items()]
    mrule_cols = ", ".join(f"m.m_{name}" for name in masks)
    cond_cols = [c for c in ("housing_safe", "drinking_water_safe", "cooking_fuel", "toilet",
                             "electricity", "road_access", "internet_access", "food_secure",
                             "clothing_secure", "medical_expense_fen", "disaster_loss_fen",
                             "assets_owned", "cooperative_member", "indoor_kitchen", "tap_water")]
    hh_cols = ["province_code", "county_code", "township_code", "village_code", "status",
               "monitoring_category", "risk_eliminated", "main_cause", "size", "child_deaths"]
    design = []
    for role, col in (("survey_weight", survey.weight), ("survey_stratum", survey.strata),
                      ("survey_cluster", survey.cluster)):
        design.append(f'h."{col}" AS {role}' if col else
                      f"CAST(NULL AS {'DOUBLE' if role == 'survey_weight' else 'VARCHAR'}) AS {role}")

    base = f"""
WITH mem AS (
  SELECT *, {y} - EXTRACT(YEAR FROM birth_date) AS age FROM members
),
m AS (
  SELECT household_id,
    COUNT(*) AS n_members,
    MAX(sex) FILTER (WHERE relation = 'head') AS head_sex,
    MAX(age) FILTER (WHERE relation = 'head') AS head_age,
    COUNT(*) FILTER (WHERE monthly_wage_fen > 0) AS wage_earners,
    COUNT(*) FILTER (WHERE labour_ability IN ('skilled', 'ordinary')) AS able_labour,
    MAX(CASE WHEN disability IS NOT NULL AND disability <> 'none' THEN 1 ELSE 0 END) AS has_disabled
    {''.join(', ' + s for s in mrules)}
  FROM mem GROUP BY household_id
),
inc AS (
  SELECT household_id,
    SUM(amount_fen) FILTER (WHERE year = {y}) AS income_fen,
    SUM(amount_fen) FILTER (WHERE year = {y - 1}) AS income_prev_fen,
    COUNT(*) FILTER (WHERE year = {y} AND amount_fen > 0) AS income_sources,
    MAX(amount_fen) FILTER (WHERE year = {y}) AS top_source_fen
  FROM incomes WHERE year IN ({y}, {y - 1}) GROUP BY household_id
),
cond AS (
  SELECT * FROM conditions WHERE year = {y}
),
base AS (
  SELECT h.household_id, {', '.join('h.' + c for c in hh_cols)},
    m.n_members, COALESCE(m.n_members, CAST(h.size AS BIGINT)) AS persons,
    m.head_sex, m.head_age, COALESCE(m.wage_earners, 0) AS wage_earners,
    COALESCE(m.able_labour, 0) AS able_labour, COALESCE(m.has_disabled, 0) AS has_disabled,
    i.income_fen, i.income_prev_fen, COALESCE(i.income_sources, 0) AS income_sources,
    CASE WHEN i.income_fen IS NOT NULL AND COALESCE(m.n_members, h.size) > 0
         THEN CAST(i.income_fen AS DOUBLE) / COALESCE(m.n_members, h.size) END AS income_pc_fen,
    CASE WHEN i.income_prev_fen > 0
         THEN CAST(i.income_fen - i.income_prev_fen AS DOUBLE) / i.income_prev_fen END AS income_change,
    CASE WHEN i.income_fen > 0 THEN CAST(i.top_source_fen AS DOUBLE) / i.income_fen END AS max_source_share,
    {', '.join('c.' + c for c in cond_cols)},
    {', '.join(design)}
    {(', ' + mrule_cols) if mrule_cols else ''}
  FROM households h
  LEFT JOIN m ON m.household_id = h.household_id
  LEFT JOIN inc i ON i.household_id = h.household_id
  LEFT JOIN cond c ON c.household_id = h.household_id
)"""

    # Rules evaluated on the base row.
    rule_cols = []
    for key, sql in plan.household_rules.items():
        rule_cols.append(f"{sql} AS {key}")
    for i, (key, (rule, _, _)) in enumerate(plan.member_rules.items()):
        rule_cols.append(f"{_member_rule_value(i, rule)} AS {key}")
    line_cols = []
    for name in plan.config.lines:
        z = plan.line_fen[name]
        line_cols.append(f"CASE WHEN income_pc_fen IS NULL THEN NULL WHEN income_pc_fen < {z} "
                         f"THEN 1 ELSE 0 END AS poor_{name}")
        line_cols.append(f"CASE WHEN income_pc_fen IS NULL THEN NULL WHEN income_pc_fen < {z} "
                         f"THEN ({z} - income_pc_fen) / {z} ELSE 0.0 END AS gap_{name}")
    sub_cols = [f"CAST({sql} AS VARCHAR) AS sg_{name}" for name, sql in plan.subgroup_sql.items()]
    ruled = (f"{base},\nruled AS (\n  SELECT base.*, {', '.join(rule_cols + line_cols + sub_cols)}"
             f"\n  FROM base\n)")

    # Score as an exact integer numerator over the weights' common denominator.
    units = plan.weight_units
    score_num = " + ".join(f"{u} * d_{n}" for n, u in units.items())
    mon = plan.config.monitoring
    zm = plan.line_fen[mon.line]
    g_flags = [f"g_{g.name}" for g in plan.guarantees]
    flags = {
        "below_monitoring_line": f"CASE WHEN income_pc_fen < {zm} THEN 1 ELSE 0 END",
        "income_fall": f"CASE WHEN income_change < -{mon.income_fall} THEN 1 ELSE 0 END",
        "medical_burden": (f"CASE WHEN medical_expense_fen > 0 AND (income_fen IS NULL OR "
                           f"medical_expense_fen > {mon.medical_share} * income_fen) THEN 1 ELSE 0 END"),
        "disaster_burden": (f"CASE WHEN disaster_loss_fen > 0 AND (income_fen IS NULL OR "
                            f"disaster_loss_fen > {mon.disaster_share} * income_fen) THEN 1 ELSE 0 END"),
        "guarantee_failed": f"CASE WHEN {_any_of(g_flags)} THEN 1 ELSE 0 END",
    }
    scored = (f"{ruled},\nscored AS (\n  SELECT ruled.*, {score_num} AS score_num, "
              + ", ".join(f"{sql} AS f_{name}" for name, sql in flags.items())
              + ",\n    CASE WHEN income_pc_fen < {:.1f} THEN 1 ELSE 0 END AS f_marginal_income"
              .format(mon.marginal_factor * zm)
              + "\n  FROM ruled\n)")

    k_cols = []
    for i, k in enumerate(plan.ks):
        k_cols.append(f"CASE WHEN score_num * {k.denominator} >= {k.numerator * plan.weight_lcm} "
                      f"THEN 1 ELSE 0 END AS mpi_poor_{i}")
    sudden = "(f_income_fall = 1 OR f_medical_burden = 1 OR f_disaster_burden = 1)"
    risk_category = (
        "CASE WHEN status = 'exited' AND (f_below_monitoring_line = 1 OR f_guarantee_failed = 1 "
        f"OR {sudden}) THEN 'unstable_exited' "
        f"WHEN (status IS NULL OR status NOT IN ('identified', 'returned', 'exited', 'monitored')) "
        f"AND {sudden} THEN 'sudden_hardship' "
        "WHEN (status IS NULL OR status NOT IN ('identified', 'returned', 'exited', 'monitored')) "
        "AND (f_marginal_income = 1 OR f_guarantee_failed = 1) THEN 'marginal' END")
    primary = plan.primary_line
    g_sum = " + ".join(g_flags) if g_flags else "0"
    weight = "CAST(persons AS DOUBLE) * COALESCE(CAST(survey_weight AS DOUBLE), 1.0)"
    final = f"""{scored},
judged AS (
  SELECT scored.*, {g_sum} AS guarantees_failed, {risk_category} AS risk_category FROM scored
)
SELECT household_id, {', '.join(REGION_COLS)}, status, main_cause, persons,
  {weight} AS weight, survey_stratum, survey_cluster,
  income_fen, income_pc_fen, income_change,
  {', '.join(f'poor_{n}, gap_{n}' for n in plan.config.lines)},
  {', '.join(f'g_{g.name}' for g in plan.guarantees) + ',' if g_flags else ''}
  guarantees_failed,
  {', '.join(f'd_{ind.name}' for ind in plan.indicators)},
  score_num, CAST(score_num AS DOUBLE) / {plan.weight_lcm} AS score,
  {', '.join(k_cols)},
  {', '.join('f_' + n for n in flags)},
  risk_category,
  CASE WHEN poor_{primary} = 1 OR guarantees_failed > 0 THEN 'poor'
       WHEN risk_category IS NOT NULL THEN 'at_risk'
       WHEN poor_{primary} IS NULL THEN 'unknown_income'
       ELSE 'not_poor' END AS assessed_status,
  {', '.join('sg_' + n for n in plan.subgroup_sql) + ',' if plan.subgroup_sql else ''}
  CASE WHEN toilet IS NULL THEN NULL WHEN toilet = 'sanitary' THEN 1 ELSE 0 END AS u_sanitary_toilet,
  CASE WHEN indoor_kitchen IS NULL THEN NULL WHEN indoor_kitchen THEN 1 ELSE 0 END AS u_indoor_kitchen,
  CASE WHEN tap_water IS NULL THEN NULL WHEN tap_water THEN 1 ELSE 0 END AS u_tap_water,
  CASE WHEN internet_access IS NULL THEN NULL WHEN internet_access THEN 1 ELSE 0 END AS u_internet,
  CASE WHEN road_access IS NULL THEN NULL WHEN road_access THEN 1 ELSE 0 END AS u_road
FROM judged"""
    return final


def flag_bits(plan: Plan) -> list[tuple[str, str]]:
    """The 0/1 facts about a household that the figures sum, each a bit of one integer
    pattern (name, SQL over the household results)."""
    bits = [("income_known", "CASE WHEN income_pc_fen IS NOT NULL THEN 1 ELSE 0 END")]
    bits += [(f"poor_{n}", f"COALESCE(poor_{n}, 0)") for n in plan.config.lines]
    bits += [(f"g_{g.name}", f"g_{g.name}") for g in plan.guarantees]
    bits.append(("g_any", "CASE WHEN guarantees_failed > 0 THEN 1 ELSE 0 END"))
    bits += [(f"d_{ind.name}", f"d_{ind.name}") for ind in plan.indicators]
    bits += [(f"mpi_poor_{i}", f"mpi_poor_{i}") for i in range(len(plan.ks))]
    bits += [(f"risk_{c}", f"CASE WHEN risk_category = '{c}' THEN 1 ELSE 0 END")
             for c in RISK_CATEGORIES]
    if len(bits) > 62:
        raise InvalidInput(f"too many indicators, guarantees, lines and cutoffs together "
                           f"({len(bits)} facts; at most 62)")
    return bits


# The registry's monitoring object categories, which dynamic monitoring proposes.
RISK_CATEGORIES = tuple(c.value for c in MonitoringCategory)


def regions_sql(levels: list[str]) -> str:
    """Every finest region of the register — each combination of the levels' codes, a
    NULL code among them, so that households without a village code still count in
    their own township and county — numbered from 0 in code order.
    ``facts_sql(numbered=True)`` gives each household its region's number, so that the
    figures are summed at that position with no keys to encode in Python."""
    keys = ", ".join(f"{lv}_code" for lv in levels)
    order = ", ".join(f"{lv}_code NULLS FIRST" for lv in levels)
    return (f"SELECT CAST(row_number() OVER (ORDER BY {order}) - 1 AS BIGINT) AS region_no, "
            f"{keys} FROM households GROUP BY {keys}")


def facts_sql(plan: Plan, levels: list[str], numbered: bool = False) -> str:
    """One row per household of the results: the top and finest region, the subgroups,
    the pattern of the household's 0/1 facts (``flag_bits``, one bit each) and the
    weighted amounts the figures sum; and the household id, in whose order they are
    summed.  A household row is a row of ``aggregate_sql`` grouped by itself
    (``households`` = 1), so the roll-up takes either.  ``numbered``: the finest region
    as its number in the table ``regions`` (``regions_sql``) instead of its codes."""
    keys = [f"{lv}_code" for lv in levels]
    subs = [f"sg_{n}" for n in plan.subgroup_sql]
    if numbered and keys:
        region = "LEFT JOIN regions r ON " + " AND ".join(
            f"hh.{k} IS NOT DISTINCT FROM r.{k}" for k in keys)
        keys = ["r.region_no"] + [f"hh.{keys[0]}"] * bool(subs)
    else:
        region = ""
    pattern = " + ".join(f"CAST({sql} AS BIGINT) * {1 << i}"
                         for i, (_, sql) in enumerate(flag_bits(plan)))
    amounts = ["CAST(1 AS BIGINT) AS households", "weight AS population",
               "weight * score AS weighted_score"]
    for n in plan.config.lines:
        amounts += [f"weight * gap_{n} AS fgt1_{n}", f"weight * gap_{n} * gap_{n} AS fgt2_{n}"]
    return (f"SELECT hh.household_id, {', '.join(keys + subs)}, {pattern} AS pattern, "
            f"{', '.join(amounts)} FROM hh {region}")


def aggregate_sql(plan: Plan, levels: list[str]) -> str:
    """``facts_sql`` summed in the engine, grouped by the finest region (all level codes)
    and by each subgroup within the top level, and within those by the pattern of the
    household's facts; ``lvl_*`` columns say which keys a row is grouped by.  For
    engines that ship results to the driver (Spark): fewer rows than households where
    many share a pattern.  The roll-up recovers each fact's sums from the patterns' bits
    (``assess.Sums``)."""
    keys = [f"{lv}_code" for lv in levels]
    subs = [f"sg_{n}" for n in plan.subgroup_sql]
    # The finest region with its parents' codes (for the roll-up to every level).
    sets = [f"({', '.join(keys)}, pattern)" if keys else "(pattern)"]
    sets += [f"({keys[0]}, {s}, pattern)" if keys else f"({s}, pattern)" for s in subs]
    sums = ["SUM(households) AS households", "SUM(population) AS population",
            "SUM(weighted_score) AS weighted_score"]
    for n in plan.config.lines:
        sums += [f"SUM(fgt1_{n}) AS fgt1_{n}", f"SUM(fgt2_{n}) AS fgt2_{n}"]
    grouping = [f"GROUPING({c}) AS lvl_{c}" for c in subs]
    return (f"SELECT {', '.join(grouping + keys + subs + ['pattern'] + sums)}\n"
            f"FROM ({facts_sql(plan, levels)}) facts\n"
            f"GROUP BY GROUPING SETS ({', '.join(sets)})")


UNDP_SHARES = {"sanitary_toilet_rate": "u_sanitary_toilet", "indoor_kitchen_rate": "u_indoor_kitchen",
               "tap_water_rate": "u_tap_water", "mobile_internet_coverage": "u_internet",
               "road_coverage": "u_road"}


def county_sums_sql() -> str:
    """Per county, the households and, for UNDP's shares, the sum and the count of each
    known 0/1 household value: additive, so that chunks of households add up."""
    sums = [f"SUM({u}) AS sum_{u}, COUNT({u}) AS n_{u}" for u in UNDP_SHARES.values()]
    return (f"SELECT county_code, COUNT(*) AS households, {', '.join(sums)} "
            "FROM hh WHERE county_code IS NOT NULL GROUP BY county_code")


def county_sql(table: str) -> str:
    """Household-based shares for UNDP's county index, from ``county_sums_sql`` rows
    (one or more per county): the share of households with each value among those where
    it is known."""
    shares = [f"SUM(sum_{u}) / SUM(n_{u}) AS {name}" for name, u in UNDP_SHARES.items()]
    return (f"SELECT county_code, CAST(SUM(households) AS BIGINT) AS households, {', '.join(shares)} "
            f"FROM {table} GROUP BY county_code")


MONITORING_FLAGS = ("below_monitoring_line", "income_fall", "medical_burden", "disaster_burden",
                    "guarantee_failed")


def reasons_sql(plan: Plan) -> str:
    """The reasons in words, from the 0/1 columns of the household results: the
    guarantees failed, the deprivations, the monitoring flags (comma-separated)."""
    fails = _names([(f"g_{g.name}", g.name) for g in plan.guarantees])
    deprived = _names([(f"d_{ind.name}", ind.name) for ind in plan.indicators])
    risks = _names([(f"f_{n}", n) for n in MONITORING_FLAGS])
    return f"{fails} AS fails, {deprived} AS deprivations, {risks} AS risk_reasons"


def monitoring_sql(plan: Plan) -> str:
    """The households at risk with their reasons (unordered: ``MONITORING_ORDER``)."""
    return ("SELECT household_id, province_code, county_code, township_code, village_code, "
            "status, persons, income_pc_fen, income_change, risk_category, assessed_status, "
            f"{reasons_sql(plan)} "
            "FROM hh WHERE risk_category IS NOT NULL")


# The monitoring list village by village, as a reviewer reads it.
MONITORING_ORDER = "ORDER BY village_code, household_id"


# ---------------------------------------------------------------- backends


class DuckDBBackend:
    """Embedded DuckDB: the default engine."""

    name = "duckdb"
    # Household rows go to the roll-up as they are: summing them by region and fact
    # pattern in DuckDB first costs more than it saves (nearly every household of a
    # village has its own pattern).
    sums_in_engine = False

    def __init__(self, memory_limit: str | None = None, threads: int | None = None,
                 temp_directory: str | None = None) -> None:
        import duckdb
        self.con = duckdb.connect()
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if temp_directory:
            self.con.execute(f"SET temp_directory = '{temp_directory}'")
        self.con.execute("SET preserve_insertion_order = false")
        # A lane's views and scratch tables are its own (temporary); tables are shared.
        self.scope = ""

    def lane(self) -> DuckDBBackend:
        """Another connection to the same database, for a lane of the household pass:
        the views it registers are its own, the tables it adds to are everyone's."""
        other = object.__new__(DuckDBBackend)
        other.con = self.con.cursor()
        other.scope = "TEMP "
        return other

    def threads(self, n: int | None = None) -> int:
        """The engine's worker threads (set when ``n`` is given); the previous number."""
        before = int(self.con.execute("SELECT current_setting('threads')").fetchone()[0])
        if n:
            self.con.execute(f"SET threads = {int(n)}")
        return before

    def register_parquet(self, name: str, path: Path, select: str = "*",
                         where: str | None = None) -> None:
        src = str(path / "*.parquet") if path.is_dir() else str(path)
        self.con.execute(f"CREATE OR REPLACE {self.scope}VIEW {name} AS SELECT {select} "
                         f"FROM read_parquet('{src}')" + (f" WHERE {where}" if where else ""))

    def to_parquet(self, sql: str, path: Path, compression: str = "ZSTD") -> None:
        self.con.execute(f"COPY ({sql}) TO '{path}' (FORMAT PARQUET, COMPRESSION {compression})")

    def to_csv(self, sql: str, path: Path) -> None:
        self.con.execute(f"COPY ({sql}) TO '{path}' (FORMAT CSV, HEADER)")

    def materialize(self, name: str, sql: str, path: Path | None) -> None:
        """``sql`` computed once as the view ``name``: written to ``path`` and read back
        from there by the chunk's later queries (a Parquet scan of the few columns each
        needs costs less than holding every column in a table); held in memory when
        there is no file to write."""
        if path is None:
            self.con.execute(f"CREATE OR REPLACE {self.scope}TABLE {name}__data AS {sql}")
            self.con.execute(f"CREATE OR REPLACE {self.scope}VIEW {name} AS "
                             f"SELECT * FROM {name}__data")
            return
        # LZ4: the household results of a national register are 30M rows; ZSTD makes
        # them a third smaller but takes about twice as long to write.
        self.to_parquet(sql, path, "LZ4_RAW")
        self.register_parquet(name, path)

    def append(self, name: str, sql: str, first: bool) -> None:
        """Rows of ``sql`` added to the table ``name`` (created by the first call)."""
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}" if first
                         else f"INSERT INTO {name} {sql}")

    def drop(self, *names: str) -> None:
        for name in names:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        self.con.close()


class SparkBackend:
    """PySpark (local or a cluster): the same SQL, transpiled from DuckDB's dialect."""

    name = "spark"
    # Sums by region and fact pattern in the cluster; only those rows go to the driver.
    sums_in_engine = True

    def __init__(self, session=None, master: str = "local[2]") -> None:
        if session is None:
            from pyspark.sql import SparkSession
            session = (SparkSession.builder.master(master).appName("ecpa-assess")
                       .config("spark.ui.enabled", "false")
                       .config("spark.sql.shuffle.partitions", "4")
                       .config("spark.sql.session.timeZone", "UTC")
                       .getOrCreate())
        self.spark = session

    @staticmethod
    def transpile(sql: str) -> str:
        return sqlglot.transpile(sql, read="duckdb", write="spark")[0]

    def sql(self, text: str):
        return self.spark.sql(self.transpile(text))

    def register_parquet(self, name: str, path: Path, select: str = "*",
                         where: str | None = None) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(f"{name}__raw")
        self.sql(f"SELECT {select} FROM {name}__raw" + (f" WHERE {where}" if where else "")
                 ).createOrReplaceTempView(name)


    def to_parquet(self, sql: str, path: Path, compression: str = "zstd") -> None:
        self.sql(sql).write.mode("overwrite").option("compression", compression.lower()) \
            .parquet(str(path))

    def to_csv(self, sql: str, path: Path) -> None:
        # One file, as on DuckDB: the households at risk are few enough for the driver.
        import pyarrow.csv as pacsv
        pacsv.write_csv(self.arrow(sql), path)

    def arrow(self, sql: str) -> pa.Table:
        return self.sql(sql).toArrow()

    def materialize(self, name: str, sql: str, path: Path) -> None:
        self.to_parquet(sql, path)
        self.register_parquet(name, path)

    def append(self, name: str, sql: str, first: bool) -> None:
        df = self.sql(sql)
        if not first:
            df = self.spark.table(name).unionByName(df)
        df.cache().createOrReplaceTempView(name)

    def drop(self, *names: str) -> None:
        for name in names:
            self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        pass


def make_backend(engine: str, **options):
    if engine == "duckdb":
        return DuckDBBackend(**options)
    if engine == "spark":
        return SparkBackend(**options)
    raise InvalidInput(f"unknown engine {engine!r}; use duckdb or spark", field="engine")


def register_inputs(backend, tables: dict[str, InputTable], where: str | None = None) -> None:
    """The input views; ``where`` restricts every household-keyed table (a chunk)."""
    for name, t in tables.items():
        keyed = where and name != "counties"
        backend.register_parquet(name, t.path, t.select_list(), where if keyed else None)


# Households per chunk of the household pass: small enough that its hash tables stay in
# memory and the chunk's sums (taken while the next chunk is computed) stay small.  At
# 10M households the whole assessment took 108 CPU seconds in chunks of 1M, 121 in
# chunks of 4M (CPU time: the machine was shared, wall times were not comparable).
CHUNK_HOUSEHOLDS = 1_000_000
# Chunks computed at once (``household_pass``).
LANES = 2


def household_chunks(backend, tables: dict[str, InputTable]) -> list[tuple[int, int]]:
    """Household-id ranges for the household pass on DuckDB, when the register is large.
    Each chunk filters every input; where a file is in household order (as the exporter
    and synth write it) Parquet's row-group statistics let the scan skip the rest."""
    if backend.name != "duckdb":
        return []
    lo, hi, n = backend.arrow("SELECT MIN(household_id), MAX(household_id), COUNT(*) "
                              "FROM households").to_pylist()[0].values()
    if not n or n <= CHUNK_HOUSEHOLDS:
        return []
    parts = -(-n // CHUNK_HOUSEHOLDS)
    step = (hi - lo) // parts + 1
    return [(lo + i * step, min(hi, lo + (i + 1) * step - 1)) for i in range(parts)]


def household_pass(backend, plan: Plan, tables: dict[str, InputTable], out: Path | None,
                   work: Callable[[object, int], None]) -> None:
    """The household pass into ``out`` (a file, or a folder of parts when chunked; not
    written when None).  After each chunk (or the whole register) ``work(b, i)`` runs
    with the view ``hh`` of ``b`` holding the results of chunk ``i`` (chunk 0 is done
    before any other).

    A large register goes in chunks of households, two at a time on DuckDB: two lanes,
    each a connection computing one chunk on one thread.  On two cores that is a fifth
    faster than one chunk at a time on both threads: a chunk's hash aggregates and joins
    cost less CPU on one thread than shared between two (2.6 against 2.9 CPU seconds
    for a million households) and while one lane waits the other works."""
    chunks = household_chunks(backend, tables)
    if not chunks:
        try:
            backend.materialize("hh", household_sql(plan), out)
            work(backend, 0)
        finally:
            backend.drop("hh__data")
        return
    if out is not None:
        out.mkdir(parents=True)
    failed = threading.Event()

    def chunk(b, i: int) -> None:
        lo, hi = chunks[i]
        register_inputs(b, tables, f"household_id BETWEEN {lo} AND {hi}")
        b.materialize("hh", household_sql(plan),
                      out / f"part-{i:04d}.parquet" if out is not None else None)
        work(b, i)

    def lane(b, mine: range) -> None:
        try:
            for i in mine:
                if failed.is_set():
                    return
                chunk(b, i)
        except BaseException:
            failed.set()
            raise

    threads = backend.threads()
    try:
        # The first chunk alone, on every thread: it creates what the others add to.
        chunk(backend, 0)
        backend.threads(max(1, threads - LANES + 1))
        lanes = [backend.lane() for _ in range(LANES)]
        try:
            with ThreadPoolExecutor(max_workers=LANES) as pool:
                jobs = [pool.submit(lane, b, range(1 + k, len(chunks), LANES))
                        for k, b in enumerate(lanes)]
                for job in jobs:
                    job.result()
        finally:
            for b in lanes:
                b.close()
    finally:
        backend.threads(threads)
        register_inputs(backend, tables)
        backend.drop("hh__data")


def check_inputs(plan: Plan, folder: Path) -> dict[str, InputTable]:
    survey = plan.config.survey
    extra = {"households": {c for c in (survey.weight, survey.strata, survey.cluster) if c}}
    required = {t: set(cs) for t, cs in plan.required.items()}
    required.setdefault("households", set()).update(f"{lv}_code" for lv in plan.config.levels)
    return inspect_inputs(folder, plan.config.mapping, required, extra)
