"""The household pass without hash tables (DuckDB only).

DuckDB's household pass groups 3.3 member rows and about 8 income rows per household in
hash tables and joins them, and the conditions, to the households: most of its time.
Here DuckDB only projects each table's rows of the chunk (the member rules are still its
SQL), a household's rows are found by its position in the chunk's households — an array
indexed by household id where the ids are dense, else a binary search — and compiled
loops reduce them (``_reduce``).  Every figure lands at its household's position, so
the household row is assembled side by side and the rest of ``household_sql`` runs on
it unchanged.

No order of the files is needed: ``ecpa synth`` and the exporter write members,
incomes and conditions clustered by household (so a chunk's row groups are few) but not
sorted within a batch.  Where the result could differ from the joins' — a household id
twice or NULL among the households, two conditions rows of one household for the year,
a sum beyond 64 bits — ``household_rows`` returns None and the chunk takes the SQL."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency
    def njit(**_options):
        return lambda f: f

from .engine import (
    COND_COLS,
    Plan,
    figures_sql,
    income_figures,
    income_rows_sql,
    member_figures,
    member_rows_sql,
)

OPS = {"count": 0, "sum": 1, "max": 2, "bit_or": 3}
VIEW = "direct_rows"


@njit(cache=True, nogil=True)
def _valid(bitmap, r):  # pragma: no cover
    """Row r of an Arrow validity bitmap (empty: no NULLs)."""
    return bitmap.shape[0] == 0 or (bitmap[r >> 3] >> (r & 7)) & 1 == 1


@njit(cache=True, nogil=True)
def _reduce(pos, values, bitmap, op, out, seen):  # pragma: no cover
    """out[pos[r]] = the aggregate ``op`` (OPS) of values[r] over the non-NULL rows r
    of each position; ``seen`` marks positions with a value (NULL elsewhere, as SQL's
    aggregates).  True when a sum overflows 64 bits."""
    overflow = False
    for r in range(pos.shape[0]):
        p = pos[r]
        if p < 0 or not _valid(bitmap, r):
            continue
        if op == 0:
            out[p] += 1
        elif not seen[p]:
            out[p] = values[r]
        elif op == 1:
            a = out[p]
            v = values[r]
            s = a + v
            if ((a ^ s) & (v ^ s)) < 0:
                overflow = True
            out[p] = s
        elif op == 2:
            out[p] = max(out[p], values[r])
        else:
            out[p] |= values[r]
        seen[p] = True
    return overflow


@njit(cache=True, nogil=True)
def _dense_positions(ids, bitmap, table, lo):  # pragma: no cover
    out = np.full(ids.shape[0], -1, np.int64)
    for r in range(ids.shape[0]):
        if _valid(bitmap, r):
            k = ids[r] - lo
            if 0 <= k < table.shape[0]:
                out[r] = table[k]
    return out


@njit(cache=True, nogil=True)
def _row_of(pos, n):  # pragma: no cover
    """The row at each of ``n`` positions (-1: none), and whether one had two."""
    out = np.full(n, -1, np.int64)
    for r in range(pos.shape[0]):
        p = pos[r]
        if p >= 0:
            if out[p] >= 0:
                return out, True
            out[p] = r
    return out, False


_NO_NULLS = np.empty(0, dtype=np.uint8)


def _raw(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """An integer or boolean column's values (whatever is under a NULL) and its
    validity bitmap (empty: no NULLs), without copying where Arrow need not."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.int8())
    if arr.offset:  # bitmaps are read from bit 0
        arr = pa.concat_arrays([arr])
    validity, data = arr.buffers()[:2]
    # One integer type for the kernels: each further one costs a compilation.
    values = np.frombuffer(data, dtype=arr.type.to_pandas_dtype())[:len(arr)].astype(
        np.int64, copy=False)
    if not arr.null_count or validity is None:
        return values, _NO_NULLS
    return values, np.frombuffer(validity, dtype=np.uint8)


class _Positions:
    """Each household id's position among the chunk's households."""

    def __init__(self, ids: np.ndarray) -> None:
        self.lo = int(ids.min())
        span = int(ids.max()) - self.lo + 1
        self.dense = span <= 4 * len(ids) + 1024
        at = np.arange(len(ids), dtype=np.int64)
        if self.dense:
            self.table = np.full(span, -1, dtype=np.int64)
            self.table[ids - self.lo] = at
            self.unique = bool((self.table[ids - self.lo] == at).all())
        else:
            self.order = np.argsort(ids, kind="stable")
            self.sorted = ids[self.order]
            self.unique = not bool((np.diff(self.sorted) == 0).any())

    def of(self, col: pa.ChunkedArray) -> np.ndarray:
        ids, bitmap = _raw(col)
        if self.dense:
            return _dense_positions(ids, bitmap, self.table, self.lo)
        i = np.minimum(np.searchsorted(self.sorted, ids), len(self.sorted) - 1)
        found = self.sorted[i] == ids
        if len(bitmap):
            found &= pc.is_valid(col).to_numpy(zero_copy_only=False)
        return np.where(found, self.order[i], -1)


def _reduced(rows: pa.Table, pos: np.ndarray, figures, n: int) -> list[pa.Array] | None:
    """The ``figures`` (engine.member_figures …) of ``rows`` at ``n`` positions."""
    out = []
    for name, op, _ in figures:
        acc = np.zeros(n, dtype=np.int64)
        seen = np.zeros(n, dtype=np.bool_)
        if op == "count":
            _reduce(pos, acc, _NO_NULLS, 0, acc, seen)
            out.append(pa.array(acc, mask=~seen))
            continue
        col = rows.column(name)
        words = None
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            if op != "max":
                return None
            # Strings as their rank among the values (byte order, as DuckDB's MAX).
            enc = pc.dictionary_encode(col.combine_chunks())
            words = enc.dictionary.to_pylist()
            rank = np.empty(len(words), dtype=np.int64)
            rank[np.argsort(np.array(words, dtype=object), kind="stable")] = np.arange(len(words))
            indices, bitmap = _raw(enc.indices)
            values = rank[indices] if len(words) else np.zeros(len(col), dtype=np.int64)
            words = sorted(words)
        elif pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
            values, bitmap = _raw(col)
        else:
            return None
        if _reduce(pos, values, bitmap, OPS[op], acc, seen):
            return None
        if words is None:
            out.append(pa.array(acc, mask=~seen))
        else:
            out.append(pa.DictionaryArray.from_arrays(
                pa.array(acc, pa.int64(), mask=~seen), pa.array(words, pa.string()))
                .cast(pa.string()))
    return out


def _types(backend, sql: str) -> dict[str, str]:
    return {r[0]: r[1] for r in backend.con.execute(f"DESCRIBE {sql}").fetchall()}


def household_rows(backend, plan: Plan) -> str | None:
    """Every household of the registered inputs (a chunk) with its figures from members,
    incomes and conditions, as the view ``VIEW`` for ``household_sql(plan, VIEW)``; None
    where the grouped SQL must do it."""
    hh = backend.arrow("SELECT * FROM households")
    ids = hh.column("household_id")
    if not len(ids) or ids.null_count:
        return None
    at = _Positions(_raw(ids)[0].astype(np.int64, copy=False))
    if not at.unique:
        return None
    n = hh.num_rows
    columns = dict(zip(hh.column_names, hh.columns))
    casts = {}
    for figures, rows in ((member_figures(plan), member_rows_sql(plan)),
                          (income_figures(plan), income_rows_sql(plan))):
        # The types the grouped SQL gives each figure (HUGEINT sums …), kept.
        casts.update(_types(backend, figures_sql(rows, figures, grouped=True)))
        table = backend.arrow(figures_sql(rows, figures, grouped=False))
        arrays = _reduced(table, at.of(table.column("household_id")), figures, n)
        if arrays is None:
            return None
        for (name, _, _), array in zip(figures, arrays):
            if name in columns:
                return None
            columns[name] = array
    cond = backend.arrow(f"SELECT household_id, {', '.join(COND_COLS)} FROM conditions "
                         f"WHERE year = {plan.year}")
    row, twice = _row_of(at.of(cond.column("household_id")), n)
    if twice:
        return None
    cond = cond.select(list(COND_COLS)).take(pa.array(row, mask=row < 0))
    for name in COND_COLS:
        if name in columns:
            return None
        columns[name] = cond.column(name)
    table = pa.table(columns)
    backend.con.register(f"{VIEW}__arrow", table)
    select = [f'CAST("{c}" AS {casts[c]}) AS "{c}"' if c in casts and c != "household_id"
              else f'"{c}"' for c in table.column_names]
    backend.con.execute(f"CREATE OR REPLACE VIEW {VIEW} AS SELECT {', '.join(select)} "
                        f"FROM {VIEW}__arrow")
    return VIEW
