"""The data-quality engine: every rule of ``rules.toml`` run in DuckDB over a folder of
the registry's Parquet layout, and the findings written as worklists per village.

A rule is a SELECT checked with sqlglot (a query, nothing else; only the tables the
engine provides; it returns household_id, value and, for member rules, member_id).
Before the rules run, the engine builds two tables per chunk of households: ``members``
with each member's age, and ``hh`` with one row per household (member aggregates,
income and conditions of the year), so that most rules are a filter over one table."""

from __future__ import annotations

import csv
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from ..errors import InvalidInput
from ..measure.lines import PovertyLines
from ..measure.schema import parquet_path
from ..regions.codes import level_of_code, scope_prefix
from ..registry import layout as registry_layout

LIBRARY = Path(__file__).with_name("rules.toml")
SEVERITIES = ("error", "warning")
# Tables a rule may read (see the head of rules.toml).
TABLES = {"households", "members", "incomes", "conditions", "hh", "lines"}
_CODE = re.compile(r"^Q-[A-Z]{3}-\d{3}$")
_PLACEHOLDER = re.compile(r"\{(year|as_of|today|line:[A-Za-z0-9_]+)\}")
_FORBIDDEN = (exp.Insert, exp.Delete, exp.Update, exp.Create, exp.Drop, exp.Command,
              exp.Copy, exp.Alter)
# Households per chunk: the members and hh tables of a chunk stay in memory.
CHUNK_HOUSEHOLDS = 2_000_000
REGISTERED = "('identified', 'exited', 'monitored', 'returned')"
STUDENT = "('preschool', 'primary', 'junior_secondary', 'senior_secondary', 'vocational', 'higher')"


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    field: str
    message_zh: str
    message_en: str
    sql: str
    level: str = "household"
    bad: dict = field(default_factory=dict, compare=False, hash=False)
    good: dict = field(default_factory=dict, compare=False, hash=False)


def _placeholders(sql: str, year: int, as_of: date, today: date, lines: PovertyLines) -> str:
    def put(m: re.Match) -> str:
        key = m.group(1)
        if key == "year":
            return str(year)
        if key == "as_of":
            return f"DATE '{as_of.isoformat()}'"
        if key == "today":
            return f"DATE '{today.isoformat()}'"
        return str(lines.value(key.split(":", 1)[1], year).amount_fen)
    return _PLACEHOLDER.sub(put, sql)


def check_rule(rule: Rule) -> None:
    """Refuse a rule that is not a plain query over the engine's tables returning the
    columns the engine needs; the error names the rule."""
    where = f"rule {rule.code}"
    if not _CODE.match(rule.code):
        raise InvalidInput(f"{where}: a code looks like Q-ABC-001", field="code", value=rule.code)
    if rule.severity not in SEVERITIES:
        raise InvalidInput(f"{where}: severity must be error or warning", field="severity")
    if rule.level not in ("household", "member"):
        raise InvalidInput(f"{where}: level must be household or member", field="level")
    if not (rule.message_zh and rule.message_en and rule.field):
        raise InvalidInput(f"{where}: field, message_zh and message_en are required")
    sample = _placeholders(rule.sql, 2024, date(2024, 12, 31), date(2024, 12, 31),
                           _lines())
    try:
        tree = sqlglot.parse_one(sample, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise InvalidInput(f"{where}: cannot read the query: {exc}", field="sql") from None
    if not isinstance(tree, exp.Query) or any(tree.find_all(*_FORBIDDEN)):
        raise InvalidInput(f"{where}: must be a SELECT query", field="sql")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    unknown = sorted({t.name for t in tree.find_all(exp.Table)} - TABLES - ctes)
    if unknown:
        raise InvalidInput(f"{where}: unknown table(s) {', '.join(unknown)}; "
                           f"known: {', '.join(sorted(TABLES))}", field="sql")
    outputs = set(tree.named_selects)
    needed = {"household_id", "value"} | ({"member_id"} if rule.level == "member" else set())
    if needed - outputs:
        raise InvalidInput(f"{where}: the query must return {', '.join(sorted(needed))} "
                           f"(returns {', '.join(sorted(outputs))})", field="sql")


@lru_cache(maxsize=1)
def _lines() -> PovertyLines:
    return PovertyLines.load()


def load_rules(path: Path | None = None) -> list[Rule]:
    """The rule library, every rule checked; codes are unique."""
    path = path or LIBRARY
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    rules: list[Rule] = []
    seen: set[str] = set()
    for raw in data.get("rule", []):
        try:
            rule = Rule(**raw)
        except TypeError as exc:
            raise InvalidInput(f"{path}: rule {raw.get('code', '?')}: {exc}") from None
        if rule.code in seen:
            raise InvalidInput(f"{path}: rule code {rule.code} appears twice", field="code")
        seen.add(rule.code)
        check_rule(rule)
        rules.append(rule)
    return rules


# ---------------------------------------------------------------- running


@dataclass
class Run:
    out_dir: Path
    year: int
    as_of: date
    households: int
    findings: int
    counts: list[dict]                     # rule, severity, count, message
    timings: dict[str, float] = field(default_factory=dict)
    findings_path: Path | None = None


# Columns without which no rule can run; any other column of the layout may be absent
# (its rules then find nothing).
REQUIRED = {"households": {"household_id", "household_number", "village_code"},
            "members": {"household_id", "member_id"},
            "incomes": {"household_id", "year", "source", "amount_fen"},
            "conditions": {"household_id", "year"}}
_SQL_TYPE = {pa.int16(): "SMALLINT", pa.int64(): "BIGINT", pa.string(): "VARCHAR",
             pa.bool_(): "BOOLEAN", pa.date32(): "DATE"}


@dataclass
class LayoutTable:
    name: str
    path: Path
    select: str

    def source(self) -> str:
        return str(self.path / "*.parquet") if self.path.is_dir() else str(self.path)


def inspect_layout(folder: Path) -> dict[str, LayoutTable]:
    """The four tables of the layout (registry/layout.py), each presented with every
    layout column (typed NULL where the file lacks it); all problems named at once."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder of the Parquet layout", field="layout")
    problems, out = [], {}
    for name, schema in registry_layout.TABLES.items():
        path = parquet_path(folder, name)
        if path is None:
            problems.append(f"{name}.parquet is missing from {folder}")
            continue
        try:
            names = set(pq.read_schema(path).names if path.is_file()
                        else pq.ParquetDataset(path).schema.names)
        except (pa.ArrowInvalid, OSError) as exc:
            problems.append(f"{name}.parquet cannot be read as Parquet: {exc}")
            continue
        missing = sorted(REQUIRED[name] - names)
        if missing:
            problems.append(f"{name}.parquet: column(s) {', '.join(missing)} missing")
        items = [f'CAST("{f.name}" AS {_SQL_TYPE[f.type]}) AS {f.name}' if f.name in names
                 else f"CAST(NULL AS {_SQL_TYPE[f.type]}) AS {f.name}" for f in schema]
        out[name] = LayoutTable(name, path, ", ".join(items))
    if problems:
        raise InvalidInput("input does not fit the layout: " + "; ".join(problems),
                           field="layout", errors=problems)
    return out


def _lines_table(con, lines: PovertyLines) -> None:
    rows = []
    for name in lines.names:
        for y in range(2010, 2041):
            try:
                rows.append((name, y, lines.value(name, y).amount_fen))
            except InvalidInput:
                continue
    con.execute("CREATE OR REPLACE TEMP TABLE lines (name VARCHAR, year INTEGER, amount_fen BIGINT)")
    con.executemany("INSERT INTO lines VALUES (?, ?, ?)", rows)


def _register(con, tables, region: str | None, chunk: tuple[int, int] | None) -> None:
    """Views over the Parquet files, restricted to a region and a chunk of ids."""
    conds = []
    if chunk:
        conds.append(f"household_id BETWEEN {chunk[0]} AND {chunk[1]}")
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    for name, t in tables.items():
        body = f"SELECT {t.select} FROM read_parquet('{t.source()}'){where}"
        if name == "households" and region:
            body = (f"SELECT * FROM ({body}) WHERE village_code LIKE '{scope_prefix(region)}%'")
        con.execute(f"CREATE OR REPLACE VIEW raw_{name} AS {body}")
    con.execute("CREATE OR REPLACE VIEW households AS SELECT * FROM raw_households")
    for name in ("incomes", "conditions"):
        # A region's other tables: only rows of its households (semi join).
        sql = (f"SELECT r.* FROM raw_{name} r SEMI JOIN raw_households h USING (household_id)"
               if region else f"SELECT * FROM raw_{name}")
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def _build(con, year: int, as_of: date, region: str | None) -> None:
    """The per-chunk tables every rule reads: members with their age, and hh."""
    semi = " SEMI JOIN raw_households h USING (household_id)" if region else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE members AS
        SELECT r.*, CAST(date_sub('year', r.birth_date, DATE '{as_of.isoformat()}') AS INTEGER) AS age
        FROM raw_members r{semi}""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE hh AS
WITH m AS (
  SELECT household_id, COUNT(*) AS n_members,
    COUNT(*) FILTER (WHERE relation = 'head') AS heads,
    COUNT(*) FILTER (WHERE relation = 'spouse') AS spouses,
    MAX(age) FILTER (WHERE relation = 'head') AS head_age,
    MAX(sex) FILTER (WHERE relation = 'head') AS head_sex,
    COUNT(*) FILTER (WHERE schooling IN {STUDENT}) AS students,
    COUNT(*) FILTER (WHERE labour_ability IN ('skilled', 'ordinary')) AS able_labour,
    COUNT(*) FILTER (WHERE labour_ability IN ('skilled', 'ordinary', 'weak')) AS workers,
    COUNT(*) FILTER (WHERE health IN ('chronic_illness', 'serious_illness')) AS ill_members,
    COUNT(*) FILTER (WHERE health = 'disabled' OR disability IN ('grade1', 'grade2', 'grade3', 'grade4'))
      AS disabled_members,
    COALESCE(SUM(monthly_wage_fen) FILTER (WHERE monthly_wage_fen > 0), 0) AS monthly_wages_fen
  FROM members GROUP BY household_id
),
i AS (
  SELECT household_id,
    SUM(amount_fen) FILTER (WHERE year = {year}) AS income_fen,
    SUM(amount_fen) FILTER (WHERE year = {year} AND source = 'wages') AS wages_fen,
    SUM(amount_fen) FILTER (WHERE year = {year - 1}) AS income_prev_fen
  FROM incomes WHERE year IN ({year}, {year - 1}) GROUP BY household_id
),
c AS (SELECT * EXCLUDE (year) FROM conditions WHERE year = {year})
SELECT h.*, m.* EXCLUDE (household_id), i.* EXCLUDE (household_id),
  CASE WHEN m.n_members > 0 THEN CAST(i.income_fen AS DOUBLE) / m.n_members END AS income_pc_fen,
  c.household_id IS NOT NULL AS has_conditions, c.* EXCLUDE (household_id)
FROM households h
LEFT JOIN m ON m.household_id = h.household_id
LEFT JOIN i ON i.household_id = h.household_id
LEFT JOIN c ON c.household_id = h.household_id""")


def _rule_sql(rule: Rule, sql: str) -> str:
    member = "member_id" if rule.level == "member" else "CAST(NULL AS BIGINT)"
    return (f"SELECT '{rule.code}' AS code, CAST(household_id AS BIGINT) AS household_id, "
            f"CAST({member} AS BIGINT) AS member_id, CAST(value AS VARCHAR) AS value "
            f"FROM ({sql}) q")


def default_year(tables) -> int:
    import duckdb
    src = tables["incomes"].source()
    y = duckdb.connect().execute(f"SELECT MAX(year) FROM read_parquet('{src}')").fetchone()[0]
    return int(y) if y is not None else date.today().year


def run_rules(layout: Path, out_dir: Path, year: int | None = None, region: str | None = None,
              as_of: date | None = None, rules: list[Rule] | None = None,
              today: date | None = None, memory_limit: str | None = None,
              progress: Callable[[str], None] | None = None) -> Run:
    """Run every rule over the layout folder; write ``findings.parquet`` (one row per
    finding, with the household's number and region codes and the member's relation and
    birth date) and ``summary.csv`` into ``out_dir``."""
    import duckdb

    layout, out_dir = Path(layout), Path(out_dir)
    if region and level_of_code(region) is None:
        raise InvalidInput(f"{region} is not a region code", field="region", value=region)
    tables = inspect_layout(layout)
    rules = rules if rules is not None else load_rules()
    year = year or default_year(tables)
    today = today or date.today()
    as_of = as_of or min(date(year, 12, 31), today)
    lines = _lines()
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    con = duckdb.connect()
    try:
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")  # the CLI prints its own summary
        _lines_table(con, lines)
        _register(con, tables, region, None)
        lo, hi, n = con.execute("SELECT MIN(household_id), MAX(household_id), COUNT(*) "
                                "FROM households").fetchone()
        chunks: list[tuple[int, int] | None] = [None]
        if n and n > CHUNK_HOUSEHOLDS:
            parts = -(-n // CHUNK_HOUSEHOLDS)
            step = (hi - lo) // parts + 1
            chunks = [(lo + i * step, min(hi, lo + (i + 1) * step - 1)) for i in range(parts)]
        con.execute("CREATE TEMP TABLE findings (code VARCHAR, household_id BIGINT, "
                    "member_id BIGINT, value VARCHAR)")
        con.execute("CREATE TEMP TABLE found_members (household_id BIGINT, member_id BIGINT, "
                    "relation VARCHAR, birth_date DATE)")
        sqls = {r.code: _rule_sql(r, _placeholders(r.sql, year, as_of, today, lines)) for r in rules}
        for chunk in chunks:
            if chunk:
                _register(con, tables, region, chunk)
            t = time.perf_counter()
            _build(con, year, as_of, region)
            timings["prepare"] = timings.get("prepare", 0.0) + time.perf_counter() - t
            for rule in rules:
                if progress:
                    progress(rule.code)
                t = time.perf_counter()
                try:
                    con.execute(f"INSERT INTO findings {sqls[rule.code]}")
                except duckdb.Error as exc:
                    raise InvalidInput(f"rule {rule.code} failed on the data: {exc}",
                                       field="sql", rule=rule.code) from None
                timings[rule.code] = timings.get(rule.code, 0.0) + time.perf_counter() - t
            # The member's relation and birth date help a cadre find the person (the
            # layout has no names); kept per chunk while the members table is there.
            con.execute("INSERT INTO found_members SELECT DISTINCT m.household_id, m.member_id, "
                        "m.relation, m.birth_date FROM members m "
                        "JOIN findings f ON f.member_id = m.member_id "
                        "AND f.household_id = m.household_id")
        t = time.perf_counter()
        _register(con, tables, region, None)
        meta = _meta_table(rules)
        con.register("rule_meta", meta)
        path = out_dir / "findings.parquet"
        con.execute(f"""COPY (
            SELECT h.province_code, h.county_code, h.township_code, h.village_code,
              h.household_number, f.household_id, f.member_id, fm.relation AS member_relation,
              fm.birth_date AS member_birth_date, f.code, r.severity, r.field, f.value,
              r.message_zh, r.message_en
            FROM findings f JOIN households h USING (household_id)
            JOIN rule_meta r USING (code)
            LEFT JOIN found_members fm ON fm.member_id = f.member_id AND fm.household_id = f.household_id
            ORDER BY h.village_code, h.household_number, f.code, f.member_id
        ) TO '{path}' (FORMAT PARQUET, COMPRESSION ZSTD)""")
        counts = con.execute("SELECT code, COUNT(*) FROM findings GROUP BY code").fetchall()
        total_households = con.execute("SELECT COUNT(*) FROM households").fetchone()[0]
        timings["write"] = time.perf_counter() - t
    finally:
        con.close()
    by_code = dict(counts)
    summary = [{"rule": r.code, "severity": r.severity, "count": int(by_code.get(r.code, 0)),
                "field": r.field, "message_zh": r.message_zh, "message_en": r.message_en}
               for r in rules]
    with open(out_dir / "summary.csv", "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(summary[0]) if summary else ["rule"])
        w.writeheader()
        w.writerows(summary)
    return Run(out_dir, year, as_of, int(total_households), sum(by_code.values()), summary,
               timings, path)


def _meta_table(rules: list[Rule]) -> pa.Table:
    return pa.table({k: [getattr(r, k) for r in rules]
                     for k in ("code", "severity", "field", "message_zh", "message_en")})


# ---------------------------------------------------------------- worklists

WORKLIST_COLUMNS = [
    ("household_number", "户编号 household"), ("member_relation", "成员关系 member"),
    ("member_birth_date", "出生日期 born"), ("code", "规则 rule"),
    ("severity", "级别 severity"), ("field", "字段 field"), ("value", "当前值 value"),
    ("message_zh", "问题"), ("message_en", "problem"),
]


def write_worklists(findings: Path, out_dir: Path, xlsx: bool = True,
                    xlsx_max_rows: int = 200_000) -> dict:
    """One CSV per village (``villages/<county>/<village>.csv``, UTF-8 with BOM so that
    Excel and WPS on a cadre's computer show the Chinese), errors first; and, per county,
    a workbook with a sheet per village for the township and county offices (skipped
    for a county with more than ``xlsx_max_rows`` findings, where the CSVs serve)."""
    table = pq.read_table(findings)
    out_dir = Path(out_dir)
    if table.num_rows == 0:
        return {"villages": 0, "workbooks": 0}
    sev = pc.if_else(pc.equal(table["severity"], "error"), 0, 1)
    table = table.append_column("_sev", sev).sort_by(
        [("county_code", "ascending"), ("village_code", "ascending"), ("_sev", "ascending"),
         ("household_number", "ascending"), ("code", "ascending")])
    keys = [k for k, _ in WORKLIST_COLUMNS]
    cols = {k: table[k].to_pylist() for k in keys}
    cols["member_birth_date"] = [d.isoformat() if d else "" for d in cols["member_birth_date"]]
    villages = table["village_code"].to_pylist()
    counties = table["county_code"].to_pylist()
    header = [h for _, h in WORKLIST_COLUMNS]
    n_villages = n_books = 0
    start = 0
    total = table.num_rows
    while start < total:
        county = counties[start]
        end = start
        while end < total and counties[end] == county:
            end += 1
        book = None
        if xlsx and end - start <= xlsx_max_rows:
            import xlsxwriter  # several times faster than openpyxl for many small sheets
            book = xlsxwriter.Workbook(str(out_dir / f"worklist_{county}.xlsx"),
                                       {"in_memory": True})
        folder = out_dir / "villages" / str(county)
        folder.mkdir(parents=True, exist_ok=True)
        i = start
        while i < end:
            village = villages[i]
            j = i
            while j < end and villages[j] == village:
                j += 1
            rows = [[cols[k][r] if cols[k][r] is not None else "" for k in keys] for r in range(i, j)]
            with open(folder / f"{village}.csv", "w", encoding="utf-8-sig", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(header)
                w.writerows(rows)
            if book is not None:
                ws = book.add_worksheet(str(village)[:31])
                ws.write_row(0, 0, header)
                for r, row in enumerate(rows, start=1):
                    ws.write_row(r, 0, row)
            n_villages += 1
            i = j
        if book is not None:
            book.close()
            n_books += 1
        start = end
    return {"villages": n_villages, "workbooks": n_books}
