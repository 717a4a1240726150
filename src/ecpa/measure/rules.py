"""Rules (indicators, guarantees, subgroups) as checked SQL expressions.

An expression is parsed by sqlglot, refused if it is anything but a scalar expression,
and every column it names must be one the engine provides at the rule's level; the
error names the rule, the column and the columns that exist.  ``{line:NAME}`` stands for
the poverty line NAME of the assessment year, in fen per person per year."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from ..errors import InvalidInput
from .schema import TABLES

# Columns a member-level rule may use: the member's own, plus its age in completed
# years at the end of the assessment year.
MEMBER_VARS = {c for c in TABLES["members"] if c != "household_id"} | {"age"}

# Columns a household-level rule may use: the household's, its living conditions of
# the year, and what the engine derives from members and incomes.
DERIVED_VARS = {
    "persons", "n_members", "head_sex", "head_age", "wage_earners", "able_labour",
    "has_disabled", "income_fen", "income_prev_fen", "income_pc_fen", "income_change",
    "income_sources", "max_source_share",
}
HOUSEHOLD_VARS = ({c for c in TABLES["households"]} | {c for c in TABLES["conditions"]
                  if c not in ("household_id", "year")} | DERIVED_VARS)

# For each optional layout column a rule may name: the table it comes from.
SOURCE_TABLE = {c: t for t in ("households", "conditions", "members")
                for c, col in TABLES[t].items() if not col.required}

_LINE = re.compile(r"\{line:([A-Za-z0-9_]+)\}")
_FORBIDDEN = (exp.Query, exp.Subquery, exp.Command, exp.Insert, exp.Delete, exp.Update,
              exp.Create, exp.Drop)


class CompiledRule:
    def __init__(self, sql: str, columns: set[str]) -> None:
        self.sql = sql
        self.columns = columns


def compile_expression(text: str, allowed: set[str], where: str,
                       line_fen: dict[str, int] | None = None) -> CompiledRule:
    line_fen = line_fen or {}

    def put_line(m: re.Match) -> str:
        name = m.group(1)
        if name not in line_fen:
            raise InvalidInput(f"{where}: poverty line {name!r} is not among the lines of "
                               f"this assessment ({', '.join(sorted(line_fen)) or 'none'})",
                               field=where, value=text)
        return str(line_fen[name])

    filled = _LINE.sub(put_line, text)
    try:
        tree = sqlglot.parse_one(filled, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise InvalidInput(f"{where}: cannot read the expression {text!r}: {exc}",
                           field=where, value=text) from None
    if isinstance(tree, _FORBIDDEN) or any(tree.find_all(*_FORBIDDEN)):
        raise InvalidInput(f"{where}: {text!r} must be an expression, not a query",
                           field=where, value=text)
    columns = {c.name for c in tree.find_all(exp.Column)}
    unknown = sorted(columns - allowed)
    if unknown:
        raise InvalidInput(f"{where}: unknown column(s) {', '.join(unknown)} in {text!r}; "
                           f"known here: {', '.join(sorted(allowed))}", field=where, value=text)
    return CompiledRule(tree.sql(dialect="duckdb"), columns)
